/* test_concurrency.c - ringattn_forward / ringattn_backward are safe to call from many threads
   at once (no global mutable state), and concurrent calls give exactly the results of the
   same calls made one at a time.

   One set of read-only inputs (q, k, v, dout in f32 and f64) is shared by every thread. A
   table of configurations (ring sizes 1..5, causal modes, windows, GQA, dv != d, dilated
   head-group and LSE mixes, f32 / f64 compute, 1 or 2 OpenMP threads per call, forward and
   backward) is first run one call at a time to get reference outputs. Then THREADS pthreads
   run the whole table ROUNDS times at once, each starting at a different entry, each into
   its own output buffers, and compare every output with memcmp: bit-identical or fail.
   .ci/run also runs this test under ThreadSanitizer (a build without OpenMP and BLAS, so
   that every access is instrumented). Exit 0 pass, 1 fail. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"
#include "test_util.h"

#define THREADS 8
#define ROUNDS 3

/* the shared inputs: the largest shape of the table, viewed smaller by each case */
#define B 2
#define N 24
#define H 4
#define D 8

typedef struct {
    int backward, p, threads, causal, wl, wr, groups;
    int64_t nq, nk, h, hk, d, dv;
    ringattn_dtype ct;
    ringattn_mix mix;
} cc_case;

static const int64_t cc_seg[3] = { 6, 12, 24 };
static const int64_t cc_rate[3] = { 1, 2, 3 };

static const cc_case cases[] = {
    /* bwd p  th causal wl  wr  G   nq  nk  h  hk d  dv  compute */
    { 0, 1, 1, 0, -1, -1, 0, 24, 24, 4, 4, 8, 8, RINGATTN_F32, RINGATTN_MIX_HEAD_GROUPS },
    { 0, 3, 1, 1, -1, -1, 0, 17, 23, 4, 2, 8, 5, RINGATTN_F32, RINGATTN_MIX_HEAD_GROUPS },
    { 0, 4, 2, 2, -1, -1, 0, 24, 11, 2, 1, 3, 8, RINGATTN_F64, RINGATTN_MIX_HEAD_GROUPS },
    { 0, 5, 2, 0,  3,  2, 0, 20, 20, 4, 1, 8, 8, RINGATTN_F32, RINGATTN_MIX_HEAD_GROUPS },
    { 0, 2, 1, 1, -1, -1, 3, 24, 24, 4, 4, 8, 8, RINGATTN_F32, RINGATTN_MIX_HEAD_GROUPS },
    { 0, 4, 2, 0, -1, -1, 3, 24, 24, 2, 2, 4, 6, RINGATTN_F64, RINGATTN_MIX_LSE },
    { 1, 1, 1, 0, -1, -1, 0, 24, 24, 4, 4, 8, 8, RINGATTN_F64, RINGATTN_MIX_HEAD_GROUPS },
    { 1, 3, 2, 1, -1, -1, 0, 17, 23, 4, 2, 8, 5, RINGATTN_F32, RINGATTN_MIX_HEAD_GROUPS },
    { 1, 4, 1, 2,  5, -1, 0, 24, 16, 4, 1, 6, 8, RINGATTN_F32, RINGATTN_MIX_HEAD_GROUPS },
    { 1, 2, 2, 1, -1, -1, 2, 24, 24, 4, 2, 8, 8, RINGATTN_F64, RINGATTN_MIX_HEAD_GROUPS },
    { 1, 3, 1, 0, -1, -1, 3, 24, 24, 2, 1, 8, 4, RINGATTN_F32, RINGATTN_MIX_LSE },
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* read-only after main() fills them */
static float in32[4][B * N * H * D];
static double in64[4][B * N * H * D];

typedef struct {
    unsigned char *o, *l, *dq, *dk, *dv;   /* outputs, in the compute dtype (lse f64) */
    size_t no, nl, ndq, ndk, ndv;          /* bytes */
} cc_out;

static void out_new(const cc_case *c, cc_out *r)
{
    size_t es = c->ct == RINGATTN_F64 ? 8 : 4;
    r->no = (size_t)(B * c->nq * c->h * c->dv) * es;
    r->nl = (size_t)(B * c->h * c->nq) * 8;
    r->ndq = (size_t)(B * c->nq * c->h * c->d) * es;
    r->ndk = (size_t)(B * c->nk * c->hk * c->d) * es;
    r->ndv = (size_t)(B * c->nk * c->hk * c->dv) * es;
    r->o = (unsigned char *)calloc(r->no, 1); r->l = (unsigned char *)calloc(r->nl, 1);
    r->dq = (unsigned char *)calloc(r->ndq, 1); r->dk = (unsigned char *)calloc(r->ndk, 1);
    r->dv = (unsigned char *)calloc(r->ndv, 1);
    if (!r->o || !r->l || !r->dq || !r->dk || !r->dv) { printf("out of memory\n"); exit(1); }
}
static void out_free(cc_out *r) { free(r->o); free(r->l); free(r->dq); free(r->dk); free(r->dv); }

/* one call; backward first runs its own forward for out / lse (also a concurrent call) */
static int run(const cc_case *c, cc_out *r)
{
    ringattn_dtype ct = c->ct;
    void *q = ct == RINGATTN_F64 ? (void *)in64[0] : (void *)in32[0];
    void *k = ct == RINGATTN_F64 ? (void *)in64[1] : (void *)in32[1];
    void *v = ct == RINGATTN_F64 ? (void *)in64[2] : (void *)in32[2];
    void *g = ct == RINGATTN_F64 ? (void *)in64[3] : (void *)in32[3];
    ringattn_tensor Q = ringattn_tensor_bnhd(q, ct, B, c->nq, c->h, c->d);
    ringattn_tensor K = ringattn_tensor_bnhd(k, ct, B, c->nk, c->hk, c->d);
    ringattn_tensor V = ringattn_tensor_bnhd(v, ct, B, c->nk, c->hk, c->dv);
    ringattn_tensor O = ringattn_tensor_bnhd(r->o, ct, B, c->nq, c->h, c->dv);
    ringattn_tensor L = ringattn_tensor_lse(r->l, RINGATTN_F64, B, c->h, c->nq);
    ringattn_tensor G = ringattn_tensor_bnhd(g, ct, B, c->nq, c->h, c->dv);
    ringattn_tensor DQ = ringattn_tensor_bnhd(r->dq, ct, B, c->nq, c->h, c->d);
    ringattn_tensor DK = ringattn_tensor_bnhd(r->dk, ct, B, c->nk, c->hk, c->d);
    ringattn_tensor DV = ringattn_tensor_bnhd(r->dv, ct, B, c->nk, c->hk, c->dv);
    ringattn_config cfg = ringattn_default_config();
    ringattn_stats st;
    int s;
    cfg.ring_size = c->p; cfg.num_threads = c->threads; cfg.causal = c->causal; cfg.compute = ct;
    cfg.window_left = c->wl; cfg.window_right = c->wr; cfg.stats = &st;
    if (c->groups) {
        cfg.num_groups = c->groups; cfg.segment_lengths = cc_seg; cfg.dilation_rates = cc_rate; cfg.mix = c->mix;
    }
    s = ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
    if (s != RINGATTN_OK || !c->backward) return s;
    return ringattn_backward(&cfg, &Q, &K, &V, &O, &L, &G, &DQ, &DK, &DV);
}

static cc_out ref[NCASES];

typedef struct { int id, mismatches, errors; } worker;

static void *work(void *arg)
{
    worker *w = (worker *)arg;
    int round, j;
    for (round = 0; round < ROUNDS; round++)
        for (j = 0; j < NCASES; j++) {
            int ci = (j + w->id * 5 + round) % NCASES;
            const cc_case *c = &cases[ci];
            cc_out r;
            out_new(c, &r);
            if (run(c, &r) != RINGATTN_OK) w->errors++;
            else if (memcmp(r.o, ref[ci].o, r.no) || memcmp(r.l, ref[ci].l, r.nl) ||
                     (c->backward && (memcmp(r.dq, ref[ci].dq, r.ndq) || memcmp(r.dk, ref[ci].dk, r.ndk) ||
                                      memcmp(r.dv, ref[ci].dv, r.ndv))))
                w->mismatches++;
            out_free(&r);
        }
    return NULL;
}

int main(void)
{
    pthread_t tid[THREADS];
    worker w[THREADS];
    int i, fails = 0, *failures = &fails, started = 0, calls = 0;
    for (i = 0; i < 4; i++) {
        fill_normal(in64[i], B * N * H * D, 100 + (uint64_t)i);
        f64_to_f32(in64[i], in32[i], B * N * H * D);
    }
    for (i = 0; i < NCASES; i++) {           /* the same calls, one at a time */
        int s;
        out_new(&cases[i], &ref[i]);
        s = run(&cases[i], &ref[i]);
        CHECK(s == RINGATTN_OK, "case %d: sequential call failed (%d)", i, s);
    }
    for (i = 0; i < THREADS; i++) {
        w[i].id = i; w[i].mismatches = 0; w[i].errors = 0;
        if (pthread_create(&tid[i], NULL, work, &w[i]) != 0) { printf("  pthread_create failed\n"); break; }
        started++;
    }
    CHECK(started == THREADS, "only %d of %d threads started", started, THREADS);
    for (i = 0; i < started; i++) {
        pthread_join(tid[i], NULL);
        CHECK(w[i].errors == 0, "thread %d: %d calls failed", i, w[i].errors);
        CHECK(w[i].mismatches == 0, "thread %d: %d results differ from the sequential calls", i, w[i].mismatches);
        calls += ROUNDS * NCASES;
    }
    for (i = 0; i < NCASES; i++) out_free(&ref[i]);
    printf("%d threads, %d concurrent calls over %d configurations (forward and backward): %s\n", started,
           calls, NCASES, fails ? "FAIL" : "every result bit-identical to the one-at-a-time call");
    return fails ? TEST_FAIL : TEST_PASS;
}
