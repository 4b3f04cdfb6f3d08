/* test_mpi.c - ringattn_mpi.h against the single-process ring, under mpiexec -n P.

     mpiexec -n P test_mpi cases    every option of the core, forward and backward, f64, f32
                                    and bf16 storage: each rank's local outputs must be
                                    bit-identical (memcmp) to the rows member `rank` writes in
                                    ringattn_forward / ringattn_backward with ring_size = P and
                                    the same partition (computed by every rank on the whole
                                    sequence); also ringattn_mpi_positions against the pieces,
                                    and a huge V on one rank only (the forward's V shift of
                                    the whole sequence).
     mpiexec -n P test_mpi faults   the agreement up front (a config field or a shape that
                                    differs on one rank, one rank's bad argument, a wrong
                                    share of rows, ring_size != P, the core's own refusals in
                                    the core's words) and a rank that fails mid-ring and says
                                    so, forward and backward: every rank returns the same
                                    status, outputs untouched, long before the timeout; then a
                                    normal call on the same communicator is still exact. And
                                    f32 compute's range: an entry beyond it on one rank, a q
                                    and a k row norm on two ranks whose product is: every
                                    rank returns ERANGE as the single process does.
     mpiexec -n P test_mpi silent   a rank that goes silent mid-ring (P >= 2): the others
                                    return RINGATTN_ETIMEDOUT within a bounded time (timeout
                                    1 s), outputs untouched. Run on its own: after a timeout
                                    the operation that timed out stays pending inside MPI.

   Every rank prints its failures; rank 0 prints the verdict. Exit 0 pass, 1 fail. tests/
   mpi_run.sh starts mpiexec (and exits 77 when there is none). */
#define RINGATTN_IMPLEMENTATION
#define RINGATTN_MPI_IMPLEMENTATION
#define RINGATTN_MPI_TESTING          /* the fault injection: ringattn_mpi_*_faulty */
#include "ringattn_mpi.h"
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(cond, ...) do { if (!(cond)) { (*failures)++; printf("rank %d FAIL %s:%d: ", g_rank, __FILE__, __LINE__); \
                                              printf(__VA_ARGS__); printf("\n"); fflush(stdout); } } while (0)

static int g_rank = 0, g_size = 1;   /* set once in main, read-only after: not mutable state of the library */

static double rnd(uint64_t *s)   /* splitmix64 -> uniform (-1, 1): the same data on every rank */
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull; z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

typedef struct {
    const char *name;
    int64_t b, nq, nk, h, hk, d, dv;
    int causal, wl, wr;
    ringattn_partition part;
    int groups; int64_t seg[3], rate[3]; ringattn_mix mix;
    double softcap, scale;
    int nseq; int64_t cuq[5], cuk[5];
    ringattn_dtype ct, st;           /* compute and storage dtypes */
    int threads;
} mcase;

typedef struct { void *data; size_t es; int64_t shape[4]; } buf4;   /* a contiguous array */

static buf4 buf_new(ringattn_dtype dt, int64_t a, int64_t b, int64_t c, int64_t d)
{
    buf4 x; x.es = dt == RINGATTN_F64 ? 8 : dt == RINGATTN_F32 ? 4 : 2;
    x.shape[0] = a; x.shape[1] = b; x.shape[2] = c; x.shape[3] = d;
    x.data = calloc((size_t)(a * b * c * d), x.es);
    return x;
}

static void buf_fill(buf4 *x, ringattn_dtype dt, uint64_t seed)
{
    int64_t i, n = x->shape[0] * x->shape[1] * x->shape[2] * x->shape[3];
    for (i = 0; i < n; i++) {
        double v = rnd(&seed);
        if (dt == RINGATTN_F64) ((double *)x->data)[i] = v;
        else if (dt == RINGATTN_F32) ((float *)x->data)[i] = (float)v;
        else { float f = (float)v; uint32_t u; memcpy(&u, &f, 4); ((uint16_t *)x->data)[i] = (uint16_t)(u >> 16); }
    }
}

/* rows `pos` of axis `ax` (1 for [b, n, h, d], 2 for lse [b, h, n, 1]) into a new buffer */
static buf4 buf_rows(const buf4 *x, int ax, const int64_t *pos, int64_t rows)
{
    buf4 y = *x; int64_t i0, i1, r, inner, outer;
    y.shape[ax] = rows;
    y.data = calloc((size_t)(y.shape[0] * y.shape[1] * y.shape[2] * y.shape[3]) + 1, x->es);
    inner = (ax == 1) ? x->shape[2] * x->shape[3] : x->shape[3];
    outer = (ax == 1) ? x->shape[0] : x->shape[0] * x->shape[1];
    for (i0 = 0; i0 < outer; i0++)
        for (r = 0; r < rows; r++) {
            i1 = pos[r];
            memcpy((char *)y.data + (size_t)((i0 * rows + r) * inner) * x->es,
                   (const char *)x->data + (size_t)((i0 * x->shape[ax] + i1) * inner) * x->es, (size_t)inner * x->es);
        }
    return y;
}

static ringattn_tensor view(buf4 *x, ringattn_dtype dt)
{
    return ringattn_tensor_bnhd(x->data, dt, x->shape[0], x->shape[1], x->shape[2], x->shape[3]);
}

static size_t nbytes(const buf4 *x) { return (size_t)(x->shape[0] * x->shape[1] * x->shape[2] * x->shape[3]) * x->es; }

static ringattn_config case_cfg(const mcase *c)
{
    ringattn_config cfg = ringattn_default_config();
    cfg.causal = c->causal; cfg.window_left = c->wl; cfg.window_right = c->wr;
    cfg.partition = c->part; cfg.softcap = c->softcap; cfg.scale = c->scale;
    cfg.compute = c->ct; cfg.num_threads = c->threads < 0 ? 1 + g_rank % 2 : c->threads;   /* -1: 1 or 2 by rank */
    if (c->groups) { cfg.num_groups = c->groups; cfg.segment_lengths = c->seg; cfg.dilation_rates = c->rate; cfg.mix = c->mix; }
    if (c->nseq) { cfg.num_seqs = c->nseq; cfg.cu_seqlens_q = c->cuq; cfg.cu_seqlens_k = c->cuk; }
    return cfg;
}

/* the whole problem on every rank */
typedef struct {
    buf4 q, k, v, o, l, dO, dq, dk, dv;     /* global                          */
    int64_t *pq, *pk, rq, rk;               /* this rank's positions            */
    buf4 lq, lk, lv, lo, ll, ldO;           /* this rank's local inputs          */
} world;

static void world_free(world *w)
{
    buf4 *all[15]; int i;
    all[0] = &w->q; all[1] = &w->k; all[2] = &w->v; all[3] = &w->o; all[4] = &w->l; all[5] = &w->dO;
    all[6] = &w->dq; all[7] = &w->dk; all[8] = &w->dv; all[9] = &w->lq; all[10] = &w->lk; all[11] = &w->lv;
    all[12] = &w->lo; all[13] = &w->ll; all[14] = &w->ldO;
    for (i = 0; i < 15; i++) free(all[i]->data);
    free(w->pq); free(w->pk);
}

/* the global inputs (seeded alike on every rank), zeroed outputs, and this rank's positions */
static void world_alloc(const mcase *c, world *w)
{
    memset(w, 0, sizeof *w);
    w->q = buf_new(c->st, c->b, c->nq, c->h, c->d);   buf_fill(&w->q, c->st, 11);
    w->k = buf_new(c->st, c->b, c->nk, c->hk, c->d);  buf_fill(&w->k, c->st, 12);
    w->v = buf_new(c->st, c->b, c->nk, c->hk, c->dv); buf_fill(&w->v, c->st, 13);
    w->dO = buf_new(c->st, c->b, c->nq, c->h, c->dv); buf_fill(&w->dO, c->st, 14);
    w->o = buf_new(c->st, c->b, c->nq, c->h, c->dv);
    w->l = buf_new(c->st, c->b, c->h, c->nq, 1);
    w->dq = buf_new(c->st, c->b, c->nq, c->h, c->d);
    w->dk = buf_new(c->st, c->b, c->nk, c->hk, c->d);
    w->dv = buf_new(c->st, c->b, c->nk, c->hk, c->dv);
    w->rq = ringattn_mpi_positions(c->part, c->nq, g_size, g_rank, NULL);
    w->rk = ringattn_mpi_positions(c->part, c->nk, g_size, g_rank, NULL);
    w->pq = (int64_t *)malloc(sizeof(int64_t) * (size_t)(w->rq + 1));
    w->pk = (int64_t *)malloc(sizeof(int64_t) * (size_t)(w->rk + 1));
    (void)ringattn_mpi_positions(c->part, c->nq, g_size, g_rank, w->pq);
    (void)ringattn_mpi_positions(c->part, c->nk, g_size, g_rank, w->pk);
}

/* this rank's local inputs: its rows of the global ones (o and l as they are now) */
static void world_slice(world *w)
{
    w->lq = buf_rows(&w->q, 1, w->pq, w->rq); w->lk = buf_rows(&w->k, 1, w->pk, w->rk);
    w->lv = buf_rows(&w->v, 1, w->pk, w->rk); w->lo = buf_rows(&w->o, 1, w->pq, w->rq);
    w->ll = buf_rows(&w->l, 2, w->pq, w->rq); w->ldO = buf_rows(&w->dO, 1, w->pq, w->rq);
}

/* global forward and backward with ring_size = P (the single-process ring), and the local slices */
static int world_make(const mcase *c, world *w, int *failures)
{
    ringattn_config cfg = case_cfg(c);
    ringattn_tensor Q, K, V, O, L, DO, DQ, DK, DV;
    int st;
    world_alloc(c, w);
    cfg.ring_size = g_size;
    Q = view(&w->q, c->st); K = view(&w->k, c->st); V = view(&w->v, c->st); O = view(&w->o, c->st);
    L = view(&w->l, c->st); DO = view(&w->dO, c->st); DQ = view(&w->dq, c->st); DK = view(&w->dk, c->st);
    DV = view(&w->dv, c->st);
    st = ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
    CHECK(st == 0, "%s: ringattn_forward: %s", c->name, ringattn_strerror(st));
    if (st) return st;
    st = ringattn_backward(&cfg, &Q, &K, &V, &O, &L, &DO, &DQ, &DK, &DV);
    CHECK(st == 0, "%s: ringattn_backward: %s", c->name, ringattn_strerror(st));
    if (st) return st;
    world_slice(w);
    return 0;
}

/* one case: forward (out, lse) and backward (dq, dk, dv) through MPI, memcmp'd with the slices */
static void run_case(const mcase *c, int *failures)
{
    world w; ringattn_config cfg = case_cfg(c);
    buf4 mo, ml, mdq, mdk, mdv, ro, rl, rdq, rdk, rdv;
    ringattn_tensor Q, K, V, O, L, DO, LO, LL, DQ, DK, DV;
    char detail[256] = "";
    int st, f0 = *failures;
    if (world_make(c, &w, failures)) { world_free(&w); return; }
    mo = buf_new(c->st, c->b, w.rq, c->h, c->dv); ml = buf_new(c->st, c->b, c->h, w.rq, 1);
    mdq = buf_new(c->st, c->b, w.rq, c->h, c->d); mdk = buf_new(c->st, c->b, w.rk, c->hk, c->d);
    mdv = buf_new(c->st, c->b, w.rk, c->hk, c->dv);
    ro = buf_rows(&w.o, 1, w.pq, w.rq); rl = buf_rows(&w.l, 2, w.pq, w.rq);
    rdq = buf_rows(&w.dq, 1, w.pq, w.rq); rdk = buf_rows(&w.dk, 1, w.pk, w.rk); rdv = buf_rows(&w.dv, 1, w.pk, w.rk);
    cfg.error_detail = detail; cfg.error_detail_size = sizeof detail;
    cfg.ring_size = (c->nq & 1) ? g_size : 0;   /* both spellings of "the communicator's size" */
    Q = view(&w.lq, c->st); K = view(&w.lk, c->st); V = view(&w.lv, c->st);
    O = view(&mo, c->st); L = view(&ml, c->st);
    st = ringattn_mpi_forward(&cfg, MPI_COMM_WORLD, &Q, &K, &V, &O, &L);
    CHECK(st == 0, "%s: ringattn_mpi_forward: %s (%s)", c->name, ringattn_strerror(st), detail);
    CHECK(memcmp(mo.data, ro.data, nbytes(&mo)) == 0, "%s: forward out differs from the single-process ring", c->name);
    CHECK(memcmp(ml.data, rl.data, nbytes(&ml)) == 0, "%s: forward lse differs from the single-process ring", c->name);
    LO = view(&w.lo, c->st); LL = view(&w.ll, c->st); DO = view(&w.ldO, c->st);
    DQ = view(&mdq, c->st); DK = view(&mdk, c->st); DV = view(&mdv, c->st);
    st = ringattn_mpi_backward(&cfg, MPI_COMM_WORLD, &Q, &K, &V, &LO, &LL, &DO, &DQ, &DK, &DV);
    CHECK(st == 0, "%s: ringattn_mpi_backward: %s (%s)", c->name, ringattn_strerror(st), detail);
    CHECK(memcmp(mdq.data, rdq.data, nbytes(&mdq)) == 0, "%s: dq differs from the single-process ring", c->name);
    CHECK(memcmp(mdk.data, rdk.data, nbytes(&mdk)) == 0, "%s: dk differs from the single-process ring", c->name);
    CHECK(memcmp(mdv.data, rdv.data, nbytes(&mdv)) == 0, "%s: dv differs from the single-process ring", c->name);
    if (g_rank == 0) printf("  %-34s p=%d  %s\n", c->name, g_size, *failures == f0 ? "bit-identical" : "FAILED");
    free(mo.data); free(ml.data); free(mdq.data); free(mdk.data); free(mdv.data);
    free(ro.data); free(rl.data); free(rdq.data); free(rdk.data); free(rdv.data);
    world_free(&w);
}

static mcase base_case(const char *name, int64_t n, ringattn_dtype ct)
{
    mcase c;
    memset(&c, 0, sizeof c);
    c.name = name; c.b = 2; c.nq = c.nk = n; c.h = 2; c.hk = 2; c.d = 8; c.dv = 8;
    c.wl = c.wr = -1; c.ct = ct; c.st = ct; c.threads = 0;
    return c;
}

static void test_positions(int *failures)
{
    int64_t n, pos[64], seen[64], cnt, i; int p, r, part;
    for (part = 0; part < 3; part++)
        for (p = 1; p <= 4; p++)
            for (n = 2 * p; n <= 41; n += 13) {
                memset(seen, 0, sizeof seen);
                for (r = 0; r < p; r++) {
                    cnt = ringattn_mpi_positions((ringattn_partition)part, n, p, r, pos);
                    CHECK(cnt == ringattn_mpi_positions((ringattn_partition)part, n, p, r, NULL), "positions count");
                    for (i = 0; i < cnt; i++) {
                        CHECK(pos[i] >= 0 && pos[i] < n, "position %lld outside [0, %lld)", (long long)pos[i], (long long)n);
                        if (pos[i] >= 0 && pos[i] < n) seen[pos[i]]++;
                        if (i) CHECK(pos[i] > pos[i - 1], "positions not increasing");
                    }
                }
                for (i = 0; i < n; i++) CHECK(seen[i] == 1, "part %d n %lld p %d: position %lld held %lld times",
                                              part, (long long)n, p, (long long)i, (long long)seen[i]);
            }
    CHECK(ringattn_mpi_positions(RINGATTN_CONTIGUOUS, 10, 2, 2, NULL) == RINGATTN_ECONFIG, "rank == p accepted");
    CHECK(ringattn_mpi_positions((ringattn_partition)7, 10, 2, 0, NULL) == RINGATTN_ECONFIG, "bad partition accepted");
    CHECK(ringattn_mpi_positions(RINGATTN_CONTIGUOUS, 0, 1, 0, NULL) == RINGATTN_ECONFIG, "n = 0 accepted");
}

static void test_cases(int *failures)
{
    mcase c;
    test_positions(failures);
    c = base_case("dense f64, n uneven", 37, RINGATTN_F64); run_case(&c, failures);
    c = base_case("dense f32, threads 2", 37, RINGATTN_F32); c.threads = 2; run_case(&c, failures);
    c = base_case("causal bottom-right f32 nq<nk GQA dv", 40, RINGATTN_F32);
    c.nk = 48; c.h = 4; c.hk = 2; c.dv = 12; c.causal = RINGATTN_CAUSAL_BOTTOM_RIGHT; run_case(&c, failures);
    c = base_case("causal top-left f64 nq>nk", 48, RINGATTN_F64);
    c.nk = 40; c.causal = RINGATTN_CAUSAL_TOP_LEFT; run_case(&c, failures);
    c = base_case("MQA causal f32", 32, RINGATTN_F32); c.h = 3; c.hk = 1; c.causal = 1; run_case(&c, failures);
    c = base_case("window 5/3 f32", 41, RINGATTN_F32); c.wl = 5; c.wr = 3; run_case(&c, failures);
    c = base_case("window 4 causal f64 scale", 41, RINGATTN_F64); c.wl = 4; c.causal = 1; c.scale = 0.3;
    run_case(&c, failures);
    c = base_case("zigzag causal f64", 40, RINGATTN_F64); c.part = RINGATTN_ZIGZAG; c.causal = 1; run_case(&c, failures);
    c = base_case("zigzag GQA f32 threads 2", 35, RINGATTN_F32); c.part = RINGATTN_ZIGZAG; c.h = 4; c.hk = 2;
    c.causal = 1; c.threads = 2; run_case(&c, failures);
    c = base_case("striped causal f32", 38, RINGATTN_F32); c.part = RINGATTN_STRIPED; c.causal = 1; run_case(&c, failures);
    c = base_case("striped window f64 nq<nk", 30, RINGATTN_F64); c.part = RINGATTN_STRIPED; c.nk = 36;
    c.wl = 6; c.wr = 2; run_case(&c, failures);
    c = base_case("softcap 5 f32", 33, RINGATTN_F32); c.softcap = 5.0; c.causal = 1; run_case(&c, failures);
    c = base_case("bf16 storage, f32 compute", 36, RINGATTN_F32); c.st = RINGATTN_BF16; c.causal = 1;
    run_case(&c, failures);
    c = base_case("f32 storage, f64 compute", 36, RINGATTN_F64); c.st = RINGATTN_F32; run_case(&c, failures);
    c = base_case("dilated head groups f32", 48, RINGATTN_F32); c.h = 4; c.hk = 4;
    c.groups = 2; c.seg[0] = 8; c.seg[1] = 16; c.rate[0] = 1; c.rate[1] = 2; run_case(&c, failures);
    c = base_case("dilated head groups causal f64 GQA", 48, RINGATTN_F64); c.h = 6; c.hk = 3; c.causal = 1;
    c.groups = 3; c.seg[0] = 8; c.seg[1] = 16; c.seg[2] = 48; c.rate[0] = 1; c.rate[1] = 2; c.rate[2] = 4;
    run_case(&c, failures);
    c = base_case("dilated LSE mix f64", 48, RINGATTN_F64); c.h = 3; c.hk = 3; c.mix = RINGATTN_MIX_LSE;
    c.groups = 2; c.seg[0] = 12; c.seg[1] = 24; c.rate[0] = 1; c.rate[1] = 3; run_case(&c, failures);
    c = base_case("dilated LSE mix zigzag causal f32", 48, RINGATTN_F32); c.mix = RINGATTN_MIX_LSE; c.causal = 1;
    c.part = RINGATTN_ZIGZAG; c.groups = 2; c.seg[0] = 8; c.seg[1] = 16; c.rate[0] = 1; c.rate[1] = 2;
    run_case(&c, failures);
    c = base_case("dilated zigzag head groups f64", 48, RINGATTN_F64); c.part = RINGATTN_ZIGZAG;
    c.groups = 2; c.seg[0] = 16; c.seg[1] = 48; c.rate[0] = 2; c.rate[1] = 3; run_case(&c, failures);
    /* K|V blocks of 64..256 KiB: beyond the eager limit, so the transfers are rendezvous and
       move while the master thread polls between units */
    c = base_case("causal f32, large blocks, threads 2", 512, RINGATTN_F32); c.b = 1; c.h = 4; c.hk = 4;
    c.d = c.dv = 32; c.causal = 1; c.threads = 2; run_case(&c, failures);
    c = base_case("zigzag GQA f64, large blocks", 256, RINGATTN_F64); c.b = 1; c.h = 4; c.hk = 2;
    c.d = c.dv = 32; c.causal = 1; c.part = RINGATTN_ZIGZAG; run_case(&c, failures);
    c = base_case("GQA f32, 1 or 2 threads by rank", 64, RINGATTN_F32); c.b = 3; c.h = 4; c.hk = 2;
    c.causal = 1; c.threads = -1; run_case(&c, failures);
    c = base_case("varlen causal f32", 48, RINGATTN_F32); c.b = 1; c.nseq = 3; c.causal = 1;
    c.cuq[0] = 0; c.cuq[1] = 10; c.cuq[2] = 10; c.cuq[3] = 48; c.cuk[0] = 0; c.cuk[1] = 10; c.cuk[2] = 10; c.cuk[3] = 48;
    run_case(&c, failures);
    c = base_case("varlen zigzag nq!=nk f64", 40, RINGATTN_F64); c.b = 1; c.nk = 44; c.nseq = 2; c.causal = 1;
    c.part = RINGATTN_ZIGZAG; c.cuq[0] = 0; c.cuq[1] = 17; c.cuq[2] = 40; c.cuk[0] = 0; c.cuk[1] = 20; c.cuk[2] = 44;
    run_case(&c, failures);
    c = base_case("varlen striped window f32", 40, RINGATTN_F32); c.b = 1; c.nseq = 2; c.wl = 3; c.wr = 1;
    c.part = RINGATTN_STRIPED; c.cuq[0] = 0; c.cuq[1] = 25; c.cuq[2] = 40; c.cuk[0] = 0; c.cuk[1] = 25; c.cuk[2] = 40;
    run_case(&c, failures);
}

/* ---------------------------------------------------------------- faults */

/* every rank's status must be `want`, the same everywhere */
static void check_same(int st, int want, const char *what, int *failures)
{
    int lo = st, hi = st;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    CHECK(st == want, "%s: status %d (%s), expected %d (%s)", what, st, ringattn_strerror(st), want, ringattn_strerror(want));
    CHECK(lo == hi, "%s: the ranks returned different statuses (%d .. %d)", what, lo, hi);
}

/* the same, and rank 0 prints what it returned and why: the transcript of the fault tests */
static void check_same_said(int st, int want, const char *what, const char *detail, int *failures)
{
    check_same(st, want, what, failures);
    if (g_rank == 0) printf("    %-44s -> %3d  %s\n", what, st, st ? detail : "");
}

/* seconds of this process's CPU time: a wait polls, so it burns CPU while it runs, but a rank
   that is stopped or descheduled (another job on a shared machine) accrues none; wall time
   would blame the library for that */
static double cpu_s(void) { return (double)clock() / CLOCKS_PER_SEC; }

static int untouched(const buf4 *x)
{
    size_t i, n = nbytes(x);
    for (i = 0; i < n; i++) if (((const unsigned char *)x->data)[i] != 0xA5) return 0;
    return 1;
}

typedef enum { F_NONE, F_CAUSAL_ONE, F_HEADS_ONE, F_NULL_ONE, F_ROWS_ONE, F_RING_SIZE, F_BAD_CAUSAL_ALL,
               F_SEGMENT_ALL, F_ALIAS_ONE, F_PASS_ONE, F_NULL_CFG_ONE } fkind;

/* one call with something wrong; returns its status, with outputs checked untouched */
static int faulty_call(int pass, fkind kind, const ringattn_mpi_options *opt, const ringattn_mpi_fault_plan *fault,
                       char *detail, size_t dsz, int *failures)
{
    mcase c = base_case("fault", 32, RINGATTN_F32);
    ringattn_config cfg;
    world w;
    buf4 mo, ml, mdq, mdk, mdv, ro;
    ringattn_tensor Q, K, V, O, L, LO, LL, DO, DQ, DK, DV;
    int st, last = g_size - 1, bad_rows = (kind == F_ROWS_ONE && g_rank == 0) ? -1 : 0;
    c.causal = 1; c.h = 4; c.hk = 2;
    if (kind == F_HEADS_ONE && g_rank == last) { c.h = 2; c.hk = 1; }   /* consistent locally, not globally */
    if (world_make(&c, &w, failures)) { world_free(&w); return 1; }
    if (kind == F_SEGMENT_ALL) { c.groups = 1; c.seg[0] = 12; c.rate[0] = 1; }   /* 32 % 12 != 0 */
    cfg = case_cfg(&c);
    cfg.error_detail = detail; cfg.error_detail_size = dsz; detail[0] = 0;
    if (kind == F_CAUSAL_ONE && g_rank == last) cfg.causal = 0;
    if (kind == F_RING_SIZE) cfg.ring_size = g_size + 1;
    if (kind == F_BAD_CAUSAL_ALL) cfg.causal = 7;
    mo = buf_new(c.st, c.b, w.rq + bad_rows, c.h, c.dv); ml = buf_new(c.st, c.b, c.h, w.rq + bad_rows, 1);
    mdq = buf_new(c.st, c.b, w.rq + bad_rows, c.h, c.d); mdk = buf_new(c.st, c.b, w.rk + bad_rows, c.hk, c.d);
    mdv = buf_new(c.st, c.b, w.rk + bad_rows, c.hk, c.dv);
    memset(mo.data, 0xA5, nbytes(&mo)); memset(ml.data, 0xA5, nbytes(&ml)); memset(mdq.data, 0xA5, nbytes(&mdq));
    memset(mdk.data, 0xA5, nbytes(&mdk)); memset(mdv.data, 0xA5, nbytes(&mdv));
    if (bad_rows) {   /* rank 0 holds one row less than its share: with n - 1 in all, every
                         rank's share moves, so the ranks that differ refuse (ESHAPE) */
        free(w.lq.data); free(w.lk.data); free(w.lv.data); free(w.lo.data); free(w.ll.data); free(w.ldO.data);
        w.lq = buf_new(c.st, c.b, w.rq - 1, c.h, c.d); w.lk = buf_new(c.st, c.b, w.rk - 1, c.hk, c.d);
        w.lv = buf_new(c.st, c.b, w.rk - 1, c.hk, c.dv); w.lo = buf_new(c.st, c.b, w.rq - 1, c.h, c.dv);
        w.ll = buf_new(c.st, c.b, c.h, w.rq - 1, 1); w.ldO = buf_new(c.st, c.b, w.rq - 1, c.h, c.dv);
    }
    Q = view(&w.lq, c.st); K = view(&w.lk, c.st); V = view(&w.lv, c.st);
    O = view(&mo, c.st); L = view(&ml, c.st);
    LO = view(&w.lo, c.st); LL = view(&w.ll, c.st); DO = view(&w.ldO, c.st);
    DQ = view(&mdq, c.st); DK = view(&mdk, c.st); DV = view(&mdv, c.st);
    if (kind == F_NULL_ONE && g_rank == last) { O.data = NULL; DQ.data = NULL; }
    if (kind == F_ALIAS_ONE && g_rank == 0) { O.data = w.lq.data; DQ.data = w.lq.data; }
    if (kind == F_PASS_ONE) pass = (g_rank == last) ? 1 - pass : pass;
    {
        const ringattn_config *cp = (kind == F_NULL_CFG_ONE && g_rank == last) ? NULL : &cfg;
        if (pass == 0) st = ringattn_mpi_forward_faulty(cp, opt, fault, MPI_COMM_WORLD, &Q, &K, &V, &O, &L);
        else st = ringattn_mpi_backward_faulty(cp, opt, fault, MPI_COMM_WORLD, &Q, &K, &V, &LO, &LL, &DO, &DQ, &DK, &DV);
    }
    if (st != 0) {
        if (kind != F_ALIAS_ONE || g_rank != 0) {
            CHECK(untouched(&mo) && untouched(&ml), "outputs written on error (forward)");
        }
        CHECK(untouched(&mdk) && untouched(&mdv), "outputs written on error (dk, dv)");
        if (kind != F_NULL_ONE && kind != F_ALIAS_ONE) CHECK(untouched(&mdq), "outputs written on error (dq)");
    } else if (pass == 0) {   /* a clean call: exact */
        ro = buf_rows(&w.o, 1, w.pq, w.rq);
        CHECK(memcmp(mo.data, ro.data, nbytes(&mo)) == 0, "forward after a fault differs from the single-process ring");
        free(ro.data);
    } else {
        ro = buf_rows(&w.dk, 1, w.pk, w.rk);
        CHECK(memcmp(mdk.data, ro.data, nbytes(&mdk)) == 0, "backward after a fault differs from the single-process ring");
        free(ro.data);
    }
    free(mo.data); free(ml.data); free(mdq.data); free(mdk.data); free(mdv.data);
    world_free(&w);
    return st;
}

static void test_faults(int *failures)
{
    ringattn_mpi_options opt = ringattn_mpi_default_options();
    ringattn_mpi_fault_plan fp = { RINGATTN_MPI_FAULT_NONE, -1, -1 };
    char detail[512], want[512];
    int pass, st, step;
    opt.timeout_s = 30;
    for (pass = 0; pass < 2; pass++) {
        const char *pn = pass ? "backward" : "forward";
        char what[128];
        if (g_size > 1) {
            st = faulty_call(pass, F_CAUSAL_ONE, &opt, &fp, detail, sizeof detail, failures);
            sprintf(what, "%s: causal differs on one rank", pn); check_same_said(st, RINGATTN_ECONFIG, what, detail, failures);
            CHECK(strstr(detail, "disagree on causal") != NULL, "%s: detail '%s' does not name causal", what, detail);
            st = faulty_call(pass, F_HEADS_ONE, &opt, &fp, detail, sizeof detail, failures);
            sprintf(what, "%s: heads differ on one rank", pn); check_same_said(st, RINGATTN_ESHAPE, what, detail, failures);
            CHECK(strstr(detail, "disagree on heads_q") != NULL, "%s: detail '%s' does not name heads_q", what, detail);
            st = faulty_call(pass, F_ROWS_ONE, &opt, &fp, detail, sizeof detail, failures);
            sprintf(what, "%s: rank 0 holds one row too few", pn); check_same_said(st, RINGATTN_ESHAPE, what, detail, failures);
            st = faulty_call(pass, F_PASS_ONE, &opt, &fp, detail, sizeof detail, failures);
            sprintf(what, "%s: one rank calls the other pass", pn); check_same_said(st, RINGATTN_ECONFIG, what, detail, failures);
            CHECK(strstr(detail, "disagree on the pass") != NULL, "%s: detail '%s'", what, detail);
        }
        st = faulty_call(pass, F_NULL_ONE, &opt, &fp, detail, sizeof detail, failures);
        sprintf(what, "%s: a NULL output on the last rank", pn); check_same_said(st, RINGATTN_ENULL, what, detail, failures);
        if (g_rank != g_size - 1) CHECK(strstr(detail, "refused the call") != NULL, "%s: detail '%s'", what, detail);
        st = faulty_call(pass, F_NULL_CFG_ONE, &opt, &fp, detail, sizeof detail, failures);
        sprintf(what, "%s: cfg NULL on the last rank", pn); check_same_said(st, RINGATTN_ENULL, what, detail, failures);
        st = faulty_call(pass, F_ALIAS_ONE, &opt, &fp, detail, sizeof detail, failures);
        sprintf(what, "%s: an aliased output on rank 0", pn); check_same_said(st, RINGATTN_EALIAS, what, detail, failures);
        st = faulty_call(pass, F_RING_SIZE, &opt, &fp, detail, sizeof detail, failures);
        sprintf(what, "%s: ring_size = P + 1", pn); check_same_said(st, RINGATTN_ECONFIG, what, detail, failures);
        CHECK(strstr(detail, "communicator has") != NULL, "%s: detail '%s'", what, detail);
        /* the core's refusals, in the core's words */
        {
            mcase c = base_case("words", 32, RINGATTN_F32);
            ringattn_config cfg = case_cfg(&c);
            world w; ringattn_tensor Q, K, V, O;
            (void)world_make(&c, &w, failures);
            cfg.error_detail = want; cfg.error_detail_size = sizeof want; cfg.causal = 7; cfg.ring_size = g_size;
            Q = view(&w.q, c.st); K = view(&w.k, c.st); V = view(&w.v, c.st); O = view(&w.o, c.st);
            CHECK(ringattn_forward(&cfg, &Q, &K, &V, &O, NULL) == RINGATTN_ECONFIG, "core accepts causal = 7");
            st = faulty_call(pass, F_BAD_CAUSAL_ALL, &opt, &fp, detail, sizeof detail, failures);
            sprintf(what, "%s: causal = 7 everywhere", pn); check_same_said(st, RINGATTN_ECONFIG, what, detail, failures);
            if (g_rank == 0) CHECK(strcmp(detail, want) == 0, "%s: '%s' is not the core's '%s'", what, detail, want);
            cfg.causal = 1; cfg.num_groups = 1; cfg.segment_lengths = c.seg; cfg.dilation_rates = c.rate;
            c.seg[0] = 12; c.rate[0] = 1;
            CHECK(ringattn_forward(&cfg, &Q, &K, &V, &O, NULL) == RINGATTN_ESEGMENT, "core accepts n %% s != 0");
            st = faulty_call(pass, F_SEGMENT_ALL, &opt, &fp, detail, sizeof detail, failures);
            sprintf(what, "%s: n not a multiple of the segment", pn); check_same_said(st, RINGATTN_ESEGMENT, what, detail, failures);
            if (g_rank == 0) CHECK(strcmp(detail, want) == 0, "%s: '%s' is not the core's '%s'", what, detail, want);
            world_free(&w);
        }
        /* mid-ring: a rank fails and says so; the others stop long before the 30 s timeout */
        for (step = 0; step < g_size; step += (g_size > 2 ? g_size - 1 : 1)) {
            double t0;
            fp.fault = RINGATTN_MPI_FAULT_ANNOUNCE; fp.rank = g_size - 1; fp.step = step;
            MPI_Barrier(MPI_COMM_WORLD);
            t0 = cpu_s();
            st = faulty_call(pass, F_NONE, &opt, &fp, detail, sizeof detail, failures);
            sprintf(what, "%s: rank %d fails at step %d", pn, g_size - 1, step);
            check_same_said(st, RINGATTN_EMPI, what, detail, failures);
            /* EMPI, not ETIMEDOUT, on every rank already says no one waited for the deadline */
            CHECK(cpu_s() - t0 < 10.0, "%s: took %.1f s of CPU (the timeout is 30 s)", what, cpu_s() - t0);
            if (g_rank == 0 && g_rank != g_size - 1)
                CHECK(strstr(detail, "first") != NULL, "%s: detail '%s' does not name the failing rank", what, detail);
            fp.fault = RINGATTN_MPI_FAULT_NONE; fp.rank = -1; fp.step = -1;
            /* the communicator is clean afterwards: the same call succeeds, bit-identical */
            st = faulty_call(pass, F_NONE, &opt, &fp, detail, sizeof detail, failures);
            sprintf(what, "%s: a clean call after the fault", pn); check_same_said(st, RINGATTN_OK, what, detail, failures);
        }
        if (g_rank == 0) printf("  faults %-8s p=%d done\n", pn, g_size);
    }
}

/* ---------------------------------------------------------------- what the whole sequence decides */

/* One call through the single-process ring (every rank, the whole sequence) and through MPI
   (this rank's chunks), inputs as w holds them: both must return `want`. On success the local
   outputs must be bit-identical to the single-process rows and finite; on failure untouched,
   with the single-process sentence on every rank when `same_words`, else on the rank that
   refused (`who`) and "refused the call" on the others. */
static void whole_call(const mcase *c, world *w, int pass, int want, int same_words, int who, const char *what,
                       int *failures)
{
    ringattn_config cfg = case_cfg(c);
    char want_detail[512] = "", detail[512] = "";
    buf4 m[5], ref[5];
    const char *mname[5] = { "out", "lse", "dq", "dk", "dv" };
    ringattn_tensor Q, K, V, O, L, DO, DQ, DK, DV;
    int st, i, n = pass ? 3 : 2, first = pass ? 2 : 0;
    cfg.ring_size = g_size;
    cfg.error_detail = want_detail; cfg.error_detail_size = sizeof want_detail;
    Q = view(&w->q, c->st); K = view(&w->k, c->st); V = view(&w->v, c->st); O = view(&w->o, c->st);
    L = view(&w->l, c->st); DO = view(&w->dO, c->st); DQ = view(&w->dq, c->st); DK = view(&w->dk, c->st);
    DV = view(&w->dv, c->st);
    st = pass ? ringattn_backward(&cfg, &Q, &K, &V, &O, &L, &DO, &DQ, &DK, &DV)
              : ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
    CHECK(st == want, "%s: single process: status %d (%s), expected %d", what, st, want_detail, want);
    world_slice(w);
    m[0] = buf_new(c->st, c->b, w->rq, c->h, c->dv); m[1] = buf_new(c->st, c->b, c->h, w->rq, 1);
    m[2] = buf_new(c->st, c->b, w->rq, c->h, c->d); m[3] = buf_new(c->st, c->b, w->rk, c->hk, c->d);
    m[4] = buf_new(c->st, c->b, w->rk, c->hk, c->dv);
    ref[0] = buf_rows(&w->o, 1, w->pq, w->rq); ref[1] = buf_rows(&w->l, 2, w->pq, w->rq);
    ref[2] = buf_rows(&w->dq, 1, w->pq, w->rq); ref[3] = buf_rows(&w->dk, 1, w->pk, w->rk);
    ref[4] = buf_rows(&w->dv, 1, w->pk, w->rk);
    for (i = 0; i < 5; i++) memset(m[i].data, 0xA5, nbytes(&m[i]));
    cfg.ring_size = 0; cfg.error_detail = detail; cfg.error_detail_size = sizeof detail;
    Q = view(&w->lq, c->st); K = view(&w->lk, c->st); V = view(&w->lv, c->st);
    O = view(&m[0], c->st); L = view(&m[1], c->st);
    if (pass) {
        ringattn_tensor LO = view(&w->lo, c->st), LL = view(&w->ll, c->st);
        DO = view(&w->ldO, c->st); DQ = view(&m[2], c->st); DK = view(&m[3], c->st); DV = view(&m[4], c->st);
        st = ringattn_mpi_backward(&cfg, MPI_COMM_WORLD, &Q, &K, &V, &LO, &LL, &DO, &DQ, &DK, &DV);
    } else st = ringattn_mpi_forward(&cfg, MPI_COMM_WORLD, &Q, &K, &V, &O, &L);
    if (want == RINGATTN_OK) check_same(st, want, what, failures);
    else check_same_said(st, want, what, detail, failures);
    for (i = first; i < first + n; i++) {
        if (st != RINGATTN_OK) { CHECK(untouched(&m[i]), "%s: %s written on error", what, mname[i]); continue; }
        CHECK(memcmp(m[i].data, ref[i].data, nbytes(&m[i])) == 0, "%s: %s differs from the single-process ring",
              what, mname[i]);
        {
            int64_t j, cnt = nbytes(&m[i]) / m[i].es;
            for (j = 0; j < cnt; j++) {
                double x = c->st == RINGATTN_F64 ? ((double *)m[i].data)[j] : (double)((float *)m[i].data)[j];
                if (!(x - x == 0)) { CHECK(0, "%s: %s[%lld] = %g is not finite", what, mname[i], (long long)j, x); break; }
            }
        }
    }
    if (want != RINGATTN_OK && (same_words || g_rank == who))
        CHECK(strcmp(detail, want_detail) == 0, "%s: '%s' is not the single-process '%s'", what, detail, want_detail);
    else if (want != RINGATTN_OK)
        CHECK(strstr(detail, "refused the call") != NULL, "%s: detail '%s'", what, detail);
    for (i = 0; i < 5; i++) { free(m[i].data); free(ref[i].data); }
}

/* element (b, global row r, head hh, column x) of a global [b, n, h, d] buffer */
static void put(buf4 *x, ringattn_dtype dt, int64_t b, int64_t r, int64_t hh, int64_t col, double val)
{
    size_t i = (size_t)(((b * x->shape[1] + r) * x->shape[2] + hh) * x->shape[3] + col);
    if (dt == RINGATTN_F64) ((double *)x->data)[i] = val; else ((float *)x->data)[i] = (float)val;
}

/* The forward holds a huge V as 2^-vshift V (ringattn__v_shift), the shift set by max|V| over
   the whole sequence. Here only the last rank's keys hold V near a quarter of the largest
   value, all positive, and a scale of 1e-6 makes every weight about 1: unshifted, any member's
   accumulator overflows on that block alone. Every rank must take the shift of the whole. */
static void test_vshift(int *failures)
{
    int k, part;
    for (k = 0; k < 2; k++)
        for (part = 0; part < 3; part += 2) {
            ringattn_dtype dt = k ? RINGATTN_F64 : RINGATTN_F32;
            double big = (k ? DBL_MAX : (double)FLT_MAX) / 4;
            mcase c = base_case(k ? "V near DBL_MAX/4 on the last rank" : "V near FLT_MAX/4 on the last rank", 40, dt);
            world w;
            int64_t pos[64], np, r, b, hh, col;
            uint64_t seed = 21;
            char what[128];
            int f0 = *failures;
            c.part = (ringattn_partition)part; c.scale = 1e-6; c.threads = 2;
            world_alloc(&c, &w);
            np = ringattn_mpi_positions(c.part, c.nk, g_size, g_size - 1, pos);
            for (r = 0; r < np; r++)
                for (b = 0; b < c.b; b++) for (hh = 0; hh < c.hk; hh++) for (col = 0; col < c.dv; col++)
                    put(&w.v, dt, b, pos[r], hh, col, big * (0.75 + 0.25 * fabs(rnd(&seed))));
            sprintf(what, "%s, %s", c.name, part ? "striped" : "contiguous");
            whole_call(&c, &w, 0, RINGATTN_OK, 0, 0, what, failures);
            if (g_rank == 0) printf("  %-34s p=%d  %s\n", what, g_size, *failures == f0 ? "bit-identical" : "FAILED");
            world_free(&w);
        }
}

/* f32 compute's range (ringattn__check_range) under MPI: an entry beyond the float range on one
   rank (q forward, dout backward) is that rank's refusal, which every rank returns; a q row
   norm on rank 0 times a k row norm on the last rank beyond FLT_MAX / 2 (each rank's own
   product is fine) is decided from the whole sequence, on every rank in the single-process
   words. */
static void test_range(int *failures)
{
    int pass, kind;
    for (pass = 0; pass < 2; pass++)
        for (kind = 0; kind < 2; kind++) {
            mcase c = base_case("range", 32, RINGATTN_F32);
            world w;
            int64_t pos[64];
            char what[128];
            int last = g_size - 1;
            c.st = RINGATTN_F64; c.causal = 1;
            world_alloc(&c, &w);
            if (kind == 0) {   /* 1e39 in the last rank's q (forward) or rank 0's dout (backward) */
                int who = pass ? 0 : last;
                (void)ringattn_mpi_positions(c.part, c.nq, g_size, who, pos);
                put(pass ? &w.dO : &w.q, c.st, 1, pos[0], 1, 3, 1e39);
                sprintf(what, "%s: 1e39 in rank %d's %s", pass ? "backward" : "forward", who, pass ? "dout" : "q");
                whole_call(&c, &w, pass, RINGATTN_ERANGE, 0, who, what, failures);
            } else {           /* ||q|| = 1e20 on rank 0, ||k|| = 1e20 on the last rank */
                (void)ringattn_mpi_positions(c.part, c.nq, g_size, 0, pos);
                put(&w.q, c.st, 0, pos[0], 0, 0, 1e20);
                (void)ringattn_mpi_positions(c.part, c.nk, g_size, last, pos);
                put(&w.k, c.st, 1, pos[0], 1, 5, 1e20);
                sprintf(what, "%s: ||q|| on rank 0 x ||k|| on rank %d", pass ? "backward" : "forward", last);
                whole_call(&c, &w, pass, RINGATTN_ERANGE, 1, 0, what, failures);
            }
            world_free(&w);
        }
    if (g_rank == 0) printf("  range p=%d done\n", g_size);
}

/* The score options through the MPI ring against the single-process ring of the same size:
   sinks, ALiBi per (batch, head), a bias broadcast over batches with its gradient, document
   ids, max_logit; out, lse, max_logit, dq, dk, dv and dbias bit-identical, dsinks to
   rounding (the ranks' partial sums are added in rank order). Then the host callbacks,
   which every rank refuses with nothing written. */
static int mask_all(void *user, int64_t b, int64_t h, int64_t q, int64_t k)
{
    (void)user; (void)b; (void)h; (void)q; (void)k;
    return 1;
}

static void test_options_mpi(int *failures)
{
    int part, docsorted;
    for (part = 0; part < 3; part++)
    for (docsorted = 0; docsorted < 2; docsorted++) {
        mcase c = base_case("score options", 26, RINGATTN_F64);
        world w;
        double sinks[8], slopes[16], dsinks_ref[8], dsinks[8];
        int64_t docs[64];
        buf4 bias, dbias_ref, dbias, ml_ref, m[6], ref[6];
        const char *mname[6] = { "out", "lse", "max_logit", "dq", "dk", "dv" };
        ringattn_config cfg;
        ringattn_tensor Q, K, V, O, L, DO, DQ, DK, DV, BT, DBT, ML;
        char detail[512] = "";
        uint64_t seed = 99 + (uint64_t)part;
        int st, i, j, f0 = *failures;
        c.part = (ringattn_partition)part; c.causal = 1;
        world_alloc(&c, &w);
        for (j = 0; j < c.h; j++) sinks[j] = rnd(&seed);
        for (j = 0; j < c.b * c.h; j++) slopes[j] = 0.1 * fabs(rnd(&seed));
        for (j = 0; j < c.nq; j++) docs[j] = docsorted ? j / 9 : j % 3;
        bias = buf_new(c.st, 1, c.h, c.nq, c.nk); buf_fill(&bias, c.st, 5);
        dbias_ref = buf_new(c.st, 1, c.h, c.nq, c.nk); dbias = buf_new(c.st, 1, c.h, c.nq, c.nk);
        ml_ref = buf_new(c.st, c.b, c.h, c.nq, 1);
        cfg = case_cfg(&c);
        cfg.sinks = sinks; cfg.alibi_slopes = slopes; cfg.alibi_size = (int)(c.b * c.h);
        BT = view(&bias, c.st); cfg.bias = &BT;
        cfg.document_ids_q = cfg.document_ids_k = docs;
        /* the single-process ring of the same size */
        cfg.ring_size = g_size; cfg.error_detail = detail; cfg.error_detail_size = sizeof detail;
        Q = view(&w.q, c.st); K = view(&w.k, c.st); V = view(&w.v, c.st); O = view(&w.o, c.st);
        L = view(&w.l, c.st); DO = view(&w.dO, c.st); DQ = view(&w.dq, c.st); DK = view(&w.dk, c.st);
        DV = view(&w.dv, c.st); ML = view(&ml_ref, c.st); DBT = view(&dbias_ref, c.st);
        cfg.max_logit = &ML;
        st = ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
        CHECK(st == 0, "options: single-process forward: %s", detail);
        cfg.max_logit = NULL; cfg.dsinks = dsinks_ref; cfg.dbias = &DBT;
        st = ringattn_backward(&cfg, &Q, &K, &V, &O, &L, &DO, &DQ, &DK, &DV);
        CHECK(st == 0, "options: single-process backward: %s", detail);
        world_slice(&w);
        /* the MPI ring, on this rank's rows */
        m[0] = buf_new(c.st, c.b, w.rq, c.h, c.dv); m[1] = buf_new(c.st, c.b, c.h, w.rq, 1);
        m[2] = buf_new(c.st, c.b, c.h, w.rq, 1); m[3] = buf_new(c.st, c.b, w.rq, c.h, c.d);
        m[4] = buf_new(c.st, c.b, w.rk, c.hk, c.d); m[5] = buf_new(c.st, c.b, w.rk, c.hk, c.dv);
        ref[0] = buf_rows(&w.o, 1, w.pq, w.rq); ref[1] = buf_rows(&w.l, 2, w.pq, w.rq);
        ref[2] = buf_rows(&ml_ref, 2, w.pq, w.rq); ref[3] = buf_rows(&w.dq, 1, w.pq, w.rq);
        ref[4] = buf_rows(&w.dk, 1, w.pk, w.rk); ref[5] = buf_rows(&w.dv, 1, w.pk, w.rk);
        cfg.ring_size = 0; cfg.dsinks = NULL; cfg.dbias = NULL;
        Q = view(&w.lq, c.st); K = view(&w.lk, c.st); V = view(&w.lv, c.st);
        O = view(&m[0], c.st); L = view(&m[1], c.st); ML = view(&m[2], c.st);
        cfg.max_logit = &ML;
        st = ringattn_mpi_forward(&cfg, MPI_COMM_WORLD, &Q, &K, &V, &O, &L);
        CHECK(st == 0, "options, partition %d: ringattn_mpi_forward: %s", part, detail);
        {
            ringattn_tensor LO = view(&w.lo, c.st), LL = view(&w.ll, c.st);
            DO = view(&w.ldO, c.st); DQ = view(&m[3], c.st); DK = view(&m[4], c.st); DV = view(&m[5], c.st);
            DBT = view(&dbias, c.st);
            cfg.max_logit = NULL; cfg.dsinks = dsinks; cfg.dbias = &DBT;
            st = ringattn_mpi_backward(&cfg, MPI_COMM_WORLD, &Q, &K, &V, &LO, &LL, &DO, &DQ, &DK, &DV);
            CHECK(st == 0, "options, partition %d: ringattn_mpi_backward: %s", part, detail);
        }
        for (i = 0; i < 6; i++)
            CHECK(memcmp(m[i].data, ref[i].data, nbytes(&m[i])) == 0,
                  "options, partition %d, documents %s: %s differs from the single-process ring", part,
                  docsorted ? "sorted" : "interleaved", mname[i]);
        CHECK(memcmp(dbias.data, dbias_ref.data, nbytes(&dbias)) == 0,
              "options, partition %d: dbias differs from the single-process ring", part);
        for (j = 0; j < c.h; j++)
            CHECK(fabs(dsinks[j] - dsinks_ref[j]) <= 1e-12 * (1 + fabs(dsinks_ref[j])),
                  "options, partition %d: dsinks[%d] = %.17g, single process %.17g", part, j, dsinks[j], dsinks_ref[j]);
        if (g_rank == 0)
            printf("  score options p=%d partition %d, documents %-11s %s\n", g_size, part,
                   docsorted ? "sorted" : "interleaved", *failures == f0 ? "bit-identical (dsinks to 1e-12)" : "FAILED");
        for (i = 0; i < 6; i++) { free(m[i].data); free(ref[i].data); }
        free(bias.data); free(dbias.data); free(dbias_ref.data); free(ml_ref.data);
        world_free(&w);
    }
    {   /* a host callback: refused on every rank, nothing written */
        mcase c = base_case("score options", 24, RINGATTN_F64);
        world w;
        buf4 o, l;
        ringattn_config cfg = case_cfg(&c);
        ringattn_tensor Q, K, V, O, L;
        char detail[512] = "";
        world_alloc(&c, &w);
        world_slice(&w);
        o = buf_new(c.st, c.b, w.rq, c.h, c.dv); l = buf_new(c.st, c.b, c.h, w.rq, 1);
        Q = view(&w.lq, c.st); K = view(&w.lk, c.st); V = view(&w.lv, c.st); O = view(&o, c.st); L = view(&l, c.st);
        cfg.ring_size = 0; cfg.error_detail = detail; cfg.error_detail_size = sizeof detail;
        cfg.mask_fn = mask_all;
        memset(o.data, 0xA5, nbytes(&o)); memset(l.data, 0xA5, nbytes(&l));
        {
            int st = ringattn_mpi_forward(&cfg, MPI_COMM_WORLD, &Q, &K, &V, &O, &L);
            CHECK(st == RINGATTN_EUNSUPPORTED && strstr(detail, "mask_fn") != NULL,
                  "mask_fn under MPI: status %d (%s), expected EUNSUPPORTED", st, detail);
            CHECK(untouched(&o) && untouched(&l), "mask_fn under MPI: an output was written");
        }
        free(o.data); free(l.data);
        world_free(&w);
    }
}

static void test_silent(int *failures)
{
    ringattn_mpi_options opt = ringattn_mpi_default_options();
    ringattn_mpi_fault_plan fp = { RINGATTN_MPI_FAULT_NONE, -1, -1 };
    char detail[512];
    double t0, dt;
    int st;
    opt.timeout_s = 1.0;
    fp.fault = RINGATTN_MPI_FAULT_SILENT; fp.rank = g_size - 1; fp.step = g_size > 2 ? 1 : 0;
    MPI_Barrier(MPI_COMM_WORLD);
    t0 = cpu_s();
    st = faulty_call(1, F_NONE, &opt, &fp, detail, sizeof detail, failures);
    dt = cpu_s() - t0;
    CHECK(st == RINGATTN_ETIMEDOUT, "silent rank %d: status %d (%s), expected ETIMEDOUT (%s)", g_size - 1, st,
          ringattn_strerror(st), detail);
    CHECK(dt < 8.0, "silent rank: took %.1f s of CPU with a 1 s timeout", dt);
    printf("  silent: rank %d returned %s after %.2f s of CPU (%s)\n", g_rank, ringattn_strerror(st), dt, detail);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int provided, failures = 0, total = 0;
    const char *mode = argc > 1 ? argv[1] : "cases";
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    if (g_rank == 0) printf("test_mpi %s: %d ranks, thread level %d\n", mode, g_size, provided);
    if (strcmp(mode, "cases") == 0) { test_cases(&failures); test_vshift(&failures); test_options_mpi(&failures); }
    else if (strcmp(mode, "faults") == 0) { test_faults(&failures); test_range(&failures); }
    else if (strcmp(mode, "silent") == 0) {
        if (g_size < 2) { if (g_rank == 0) printf("SKIP: silent needs 2 ranks or more\n"); MPI_Finalize(); return 77; }
        test_silent(&failures);
        /* no collective on MPI_COMM_WORLD after a timeout: the silent rank's peers may still
           hold the timed-out operation; every rank reports by its exit status */
        if (failures) printf("rank %d: %d failure(s)\n", g_rank, failures);
        MPI_Finalize();
        return failures ? 1 : 0;
    } else { if (g_rank == 0) printf("unknown mode %s\n", mode); MPI_Finalize(); return 2; }
    MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (g_rank == 0) printf("%s: %s (%d failure(s) over %d ranks)\n", mode, total ? "FAIL" : "PASS", total, g_size);
    MPI_Finalize();
    return total ? 1 : 0;
}
