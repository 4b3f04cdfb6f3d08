/* test_forward.c - ring forward against the naive f64 oracle.

   Build (from the repository root):
     cc -std=c99 -O2 -fopenmp -DRINGATTN_USE_CBLAS -I. -Ireference \
        -I/usr/include/x86_64-linux-gnu/openblas-pthread \
        tests/test_forward.c reference/ringattn_ref.c -lopenblas -lm

   Every case: seeded normal q, k, v (rounded to the storage dtype, so the oracle sees exactly
   what ringattn sees), the oracle's out and lse in f64, ringattn_forward on strided views,
   outputs read back through the views and compared under the tolerance policy of docs/golden.md
   (test_util.h), plus cfg.stats (ring_steps, blocks computed + skipped = p^2, causal skips).

   Groups:
     ring size     p in {1,2,3,4,7,8} x causal {none, bottom-right, top-left} x {f64, f32},
                   threads cycling through 1, 2, 4
     seq length    n in {1, 7, 64, 129, 1000}
     head dim      d in {1, 16, 64, 128}, dv != d
     nq != nk      (64, 129) and (129, 64), every causal mode
     batch/heads   b = 2, h = 3; GQA (h = 4, hk = 2); MQA
     layouts       a [b,h,n,d] buffer through strides; a negative sequence stride
     dtypes        f64 storage + f32 compute, f32 storage + f64 compute, f32 lse with f64
                   compute, an explicit scale
     window        sliding windows, alone and with causal
     determinism   bit-identical across num_threads 1, 2, 4 at fixed p
     NaN future    NaN planted in causal-future keys and values: rows that cannot see them
                   are bit-identical to the clean run
     empty rows    bottom-right causal with nq > nk: out exactly 0, lse -inf, no NaN
   The closing lines give the worst f64 and f32 errors over all groups. */
#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"
#include "ringattn_ref.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- strided buffers */

enum { LAYOUT_BNHD, LAYOUT_BHND, LAYOUT_REVERSED };
static const char *const layout_name[] = { "bnhd", "bhnd", "reversed-n" };

typedef struct {
    void *base;              /* what malloc returned (the view may start elsewhere) */
    int64_t count;           /* elements in the buffer                              */
    ringattn_tensor t;       /* the view handed to ringattn                         */
} test_buf;

static size_t dtype_size(ringattn_dtype dt) { return dt == RINGATTN_F64 ? 8 : 4; }

/* a logical [s0, s1, s2, s3] view on a fresh buffer in the given physical layout:
     bnhd      contiguous
     bhnd      the buffer is [s0][s2][s1][s3]; axes 1 and 2 swapped through strides
     reversed  contiguous, but axis 1 runs backwards (data at the last row, negative stride) */
static int make_buf(test_buf *tb, ringattn_dtype dt, int layout, int64_t s0, int64_t s1,
                    int64_t s2, int64_t s3)
{
    ringattn_tensor *t = &tb->t;
    tb->count = s0 * s1 * s2 * s3;
    tb->base = malloc(dtype_size(dt) * (size_t)tb->count);
    if (!tb->base) return -1;
    t->dtype = dt;
    t->shape[0] = s0; t->shape[1] = s1; t->shape[2] = s2; t->shape[3] = s3;
    t->stride[0] = s1 * s2 * s3; t->stride[1] = s2 * s3; t->stride[2] = s3; t->stride[3] = 1;
    t->data = tb->base;
    if (layout == LAYOUT_BHND) { t->stride[1] = s3; t->stride[2] = s1 * s3; }
    if (layout == LAYOUT_REVERSED) {
        t->stride[1] = -s2 * s3;
        t->data = (char *)tb->base + dtype_size(dt) * (size_t)((s1 - 1) * s2 * s3);
    }
    return 0;
}

static int64_t view_offset(const ringattn_tensor *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3)
{
    return i0 * t->stride[0] + i1 * t->stride[1] + i2 * t->stride[2] + i3 * t->stride[3];
}

/* logical contiguous f64 -> view, converting to the view's dtype */
static void write_view(const ringattn_tensor *t, const double *x)
{
    int64_t i0, i1, i2, i3, n = 0;
    for (i0 = 0; i0 < t->shape[0]; i0++)
    for (i1 = 0; i1 < t->shape[1]; i1++)
    for (i2 = 0; i2 < t->shape[2]; i2++)
    for (i3 = 0; i3 < t->shape[3]; i3++, n++) {
        int64_t o = view_offset(t, i0, i1, i2, i3);
        if (t->dtype == RINGATTN_F64) ((double *)t->data)[o] = x[n];
        else ((float *)t->data)[o] = (float)x[n];
    }
}

/* view -> logical contiguous f64 (exact: f32 -> f64 loses nothing) */
static void read_view(const ringattn_tensor *t, double *x)
{
    int64_t i0, i1, i2, i3, n = 0;
    for (i0 = 0; i0 < t->shape[0]; i0++)
    for (i1 = 0; i1 < t->shape[1]; i1++)
    for (i2 = 0; i2 < t->shape[2]; i2++)
    for (i3 = 0; i3 < t->shape[3]; i3++, n++) {
        int64_t o = view_offset(t, i0, i1, i2, i3);
        x[n] = (t->dtype == RINGATTN_F64) ? ((double *)t->data)[o] : (double)((float *)t->data)[o];
    }
}

static void sentinel_buf(test_buf *tb)
{
    if (tb->t.dtype == RINGATTN_F64) fill_sentinel_f64((double *)tb->base, tb->count);
    else fill_sentinel_f32((float *)tb->base, tb->count);
}

/* ---------------------------------------------------------------- one case */

typedef struct {
    int64_t b, nq, nk, h, hk, d, dv;
    int causal, p, threads, layout, wl, wr;
    ringattn_dtype storage, compute, lse_dtype;
    double scale;                 /* as given to ringattn: 0 = 1/sqrt(d) */
    uint64_t seed;
} fwd_case;

static fwd_case base_case(int64_t n, int p, ringattn_dtype dt)
{
    fwd_case c;
    memset(&c, 0, sizeof c);
    c.b = 1; c.nq = n; c.nk = n; c.h = 2; c.hk = 2; c.d = 16; c.dv = 16;
    c.p = p; c.threads = 1; c.layout = LAYOUT_BNHD; c.wl = -1; c.wr = -1;
    c.storage = dt; c.compute = dt; c.lse_dtype = dt;
    c.seed = 1;
    return c;
}

/* worst errors by kind of result: [0] f32 compute, [1] f64 compute and f64 storage,
   [2] f64 compute rounded into f32 storage (its own tolerance has the final rounding) */
typedef struct {
    double out_abs[3], out_frac[3], lse_abs[3], lse_frac[3];
    int cases, failed;
} tally;

/* fo, fl: the kind (index above) of the out and of the lse result */
static void tally_add(tally *t, int fo, int fl, test_cmp o, test_cmp l)
{
    if (o.max_abs > t->out_abs[fo]) t->out_abs[fo] = o.max_abs;
    if (o.max_frac > t->out_frac[fo]) t->out_frac[fo] = o.max_frac;
    if (l.max_abs > t->lse_abs[fl]) t->lse_abs[fl] = l.max_abs;
    if (l.max_frac > t->lse_frac[fl]) t->lse_frac[fl] = l.max_frac;
}

static void tally_merge(tally *into, const tally *g)
{
    int i;
    for (i = 0; i < 3; i++) {
        if (g->out_abs[i] > into->out_abs[i]) into->out_abs[i] = g->out_abs[i];
        if (g->out_frac[i] > into->out_frac[i]) into->out_frac[i] = g->out_frac[i];
        if (g->lse_abs[i] > into->lse_abs[i]) into->lse_abs[i] = g->lse_abs[i];
        if (g->lse_frac[i] > into->lse_frac[i]) into->lse_frac[i] = g->lse_frac[i];
    }
    into->cases += g->cases; into->failed += g->failed;
}

static void print_group(const char *name, const tally *g)
{
    printf("%-12s %3d cases, %d failed | f64 out %.2e (%.3f tol) lse %.2e (%.3f tol) | "
           "f32 out %.2e (%.3f tol) lse %.2e (%.3f tol)\n", name, g->cases, g->failed,
           g->out_abs[1], g->out_frac[1], g->lse_abs[1], g->lse_frac[1],
           g->out_abs[0], g->out_frac[0], g->lse_abs[0], g->lse_frac[0]);
}

/* inputs, oracle, library buffers and what came back, for one case */
typedef struct {
    fwd_case c;
    ref_problem rp;
    double *q, *k, *v;               /* logical inputs (on the storage grid)     */
    double *ref_out, *ref_lse;
    double *got_out, *got_lse;
    test_buf Q, K, V, O, L;
    ringattn_stats stats;
} fwd_run;

static void run_free(fwd_run *r)
{
    free(r->q); free(r->k); free(r->v); free(r->ref_out); free(r->ref_lse);
    free(r->got_out); free(r->got_lse);
    free(r->Q.base); free(r->K.base); free(r->V.base); free(r->O.base); free(r->L.base);
}

static const char *dt_name(ringattn_dtype dt) { return dt == RINGATTN_F64 ? "f64" : "f32"; }

static void describe(const fwd_case *c)
{
    printf("    case b=%lld nq=%lld nk=%lld h=%lld hk=%lld d=%lld dv=%lld causal=%d p=%d threads=%d "
           "layout=%s window=(%d,%d) storage=%s compute=%s lse=%s scale=%g seed=%llu\n",
           (long long)c->b, (long long)c->nq, (long long)c->nk, (long long)c->h, (long long)c->hk,
           (long long)c->d, (long long)c->dv, c->causal, c->p, c->threads, layout_name[c->layout],
           c->wl, c->wr, dt_name(c->storage), dt_name(c->compute), dt_name(c->lse_dtype), c->scale,
           (unsigned long long)c->seed);
}

/* allocate, draw inputs, run the oracle */
static int run_setup(fwd_run *r, const fwd_case *c)
{
    int64_t nq_ = c->b * c->nq * c->h, nk_ = c->b * c->nk * c->hk;
    memset(r, 0, sizeof *r);
    r->c = *c;
    r->q = (double *)malloc(sizeof(double) * (size_t)(nq_ * c->d));
    r->k = (double *)malloc(sizeof(double) * (size_t)(nk_ * c->d));
    r->v = (double *)malloc(sizeof(double) * (size_t)(nk_ * c->dv));
    r->ref_out = (double *)malloc(sizeof(double) * (size_t)(nq_ * c->dv));
    r->got_out = (double *)malloc(sizeof(double) * (size_t)(nq_ * c->dv));
    r->ref_lse = (double *)malloc(sizeof(double) * (size_t)nq_);
    r->got_lse = (double *)malloc(sizeof(double) * (size_t)nq_);
    if (!r->q || !r->k || !r->v || !r->ref_out || !r->got_out || !r->ref_lse || !r->got_lse) return -1;
    if (make_buf(&r->Q, c->storage, c->layout, c->b, c->nq, c->h, c->d) ||
        make_buf(&r->K, c->storage, c->layout, c->b, c->nk, c->hk, c->d) ||
        make_buf(&r->V, c->storage, c->layout, c->b, c->nk, c->hk, c->dv) ||
        make_buf(&r->O, c->storage, c->layout, c->b, c->nq, c->h, c->dv) ||
        make_buf(&r->L, c->lse_dtype, c->layout, c->b, c->h, c->nq, 1)) return -1;
    fill_normal(r->q, nq_ * c->d, c->seed * 3 + 0);
    fill_normal(r->k, nk_ * c->d, c->seed * 3 + 1);
    fill_normal(r->v, nk_ * c->dv, c->seed * 3 + 2);
    if (c->storage == RINGATTN_F32) {   /* the oracle must see what the library sees */
        round_to_f32(r->q, nq_ * c->d); round_to_f32(r->k, nk_ * c->d); round_to_f32(r->v, nk_ * c->dv);
    }
    write_view(&r->Q.t, r->q); write_view(&r->K.t, r->k); write_view(&r->V.t, r->v);

    memset(&r->rp, 0, sizeof r->rp);
    r->rp.b = c->b; r->rp.nq = c->nq; r->rp.nk = c->nk; r->rp.h = c->h; r->rp.hk = c->hk;
    r->rp.d = c->d; r->rp.dv = c->dv;
    r->rp.scale = (c->scale != 0) ? c->scale : 1.0 / sqrt((double)c->d);   /* resolved here */
    r->rp.causal = c->causal; r->rp.window_left = c->wl; r->rp.window_right = c->wr;
    return ref_forward(&r->rp, r->q, r->k, r->v, r->ref_out, r->ref_lse);
}

/* ringattn_forward on the views (outputs pre-filled with a sentinel), then read back */
static int run_library(fwd_run *r)
{
    ringattn_config cfg = ringattn_default_config();
    int st;
    cfg.causal = r->c.causal; cfg.ring_size = r->c.p; cfg.num_threads = r->c.threads;
    cfg.compute = r->c.compute; cfg.scale = r->c.scale;
    cfg.window_left = r->c.wl; cfg.window_right = r->c.wr;
    cfg.stats = &r->stats;
    sentinel_buf(&r->O); sentinel_buf(&r->L);
    st = ringattn_forward(&cfg, &r->Q.t, &r->K.t, &r->V.t, &r->O.t, &r->L.t);
    if (st == RINGATTN_OK) { read_view(&r->O.t, r->got_out); read_view(&r->L.t, r->got_lse); }
    return st;
}

/* compare against the oracle under the policy; check the stats */
static void run_check(fwd_run *r, tally *g, int *failures)
{
    const fwd_case *c = &r->c;
    int64_t nq_ = c->b * c->nq * c->h, before = *failures;
    int64_t odims[4], ldims[4];
    int f64 = (c->compute == RINGATTN_F64);
    double vmax = max_abs_f64(r->v, c->b * c->nk * c->hk * c->dv);
    test_tol to, tl;
    test_cmp co, cl;
    odims[0] = c->b; odims[1] = c->nq; odims[2] = c->h; odims[3] = c->dv;
    ldims[0] = c->b; ldims[1] = c->h; ldims[2] = c->nq; ldims[3] = 1;
    if (f64) {
        to = tol_f64_out(max_abs_f64(r->ref_out, nq_ * c->dv), vmax);
        tl = tol_f64_lse(max_abs_finite_f64(r->ref_lse, nq_));
        /* f64 compute into f32 storage: one unavoidable final rounding */
        if (c->storage == RINGATTN_F32) to.rel += TEST_U32;
        if (c->lse_dtype == RINGATTN_F32) tl.rel += TEST_U32;
    } else {
        double smax = tol_smax(r->q, r->k, c->b, c->nq, c->nk, c->h, c->hk, c->d, r->rp.scale);
        to = tol_f32_out(smax, vmax, c->d, c->nk);
        tl = tol_f32_lse(smax, c->d, c->nk);
    }
    co = compare_report("out", r->got_out, r->ref_out, odims, "bnhd", to);
    cl = compare_report("lse", r->got_lse, r->ref_lse, ldims, "bhn.", tl);
    CHECK(co.bad == 0, "out: %lld elements out of tolerance (worst %.3g x tol)", (long long)co.bad, co.max_frac);
    CHECK(cl.bad == 0, "lse: %lld elements out of tolerance (worst %.3g x tol)", (long long)cl.bad, cl.max_frac);

    /* the ring ran p steps and visited every (member, step) block exactly once */
    CHECK(r->stats.ring_size == c->p && r->stats.ring_steps == c->p, "stats: ring_size %d ring_steps %lld, want %d",
          r->stats.ring_size, (long long)r->stats.ring_steps, c->p);
    CHECK(r->stats.blocks_computed + r->stats.blocks_skipped == (int64_t)c->p * c->p,
          "stats: blocks computed %lld + skipped %lld != p^2 = %d", (long long)r->stats.blocks_computed,
          (long long)r->stats.blocks_skipped, c->p * c->p);
    if (c->causal && c->nq == c->nk && c->wl < 0 && c->wr < 0)   /* strictly-future chunks never multiplied */
        CHECK(r->stats.blocks_skipped == (int64_t)c->p * (c->p - 1) / 2,
              "stats: causal skipped %lld blocks, want p(p-1)/2 = %d", (long long)r->stats.blocks_skipped,
              c->p * (c->p - 1) / 2);

    tally_add(g, f64 ? (c->storage == RINGATTN_F64 ? 1 : 2) : 0, f64 ? (c->lse_dtype == RINGATTN_F64 ? 1 : 2) : 0,
              co, cl);
    g->cases++;
    if (*failures != before) { g->failed++; describe(c); }
}

/* the whole round trip for one case */
static void check_case(const fwd_case *c, tally *g, int *failures)
{
    fwd_run r;
    int st;
    if (c->p > c->nq || c->p > c->nk) return;   /* every member needs a query and a key */
    if (run_setup(&r, c) != 0) { CHECK(0, "setup or oracle failed"); describe(c); run_free(&r); return; }
    st = run_library(&r);
    CHECK(st == RINGATTN_OK, "ringattn_forward returned %d (%s)", st, ringattn_strerror(st));
    if (st == RINGATTN_OK) run_check(&r, g, failures);
    else { g->cases++; g->failed++; describe(c); }
    run_free(&r);
}

/* ---------------------------------------------------------------- the grid */

static const ringattn_dtype both[2] = { RINGATTN_F64, RINGATTN_F32 };

static void group_ring_sizes(tally *g, int *failures)
{
    static const int ps[6] = { 1, 2, 3, 4, 7, 8 };
    static const int threads[3] = { 1, 2, 4 };
    int ip, causal, it, k = 0;
    for (ip = 0; ip < 6; ip++)
        for (causal = 0; causal <= 2; causal++)
            for (it = 0; it < 2; it++, k++) {
                fwd_case c = base_case(129, ps[ip], both[it]);
                c.causal = causal; c.threads = threads[k % 3]; c.seed = 100 + (uint64_t)k;
                check_case(&c, g, failures);
            }
}

static void group_lengths(tally *g, int *failures)
{
    /* (n, p, causal): every n, small and large rings, causal on and off */
    static const int cfgs[][3] = { { 1, 1, 0 }, { 1, 1, 1 }, { 7, 7, 1 }, { 7, 3, 0 }, { 64, 8, 2 },
                                   { 64, 4, 0 }, { 129, 7, 1 }, { 1000, 8, 1 }, { 1000, 7, 0 },
                                   { 1000, 3, 2 } };
    int i, it;
    for (i = 0; i < (int)(sizeof cfgs / sizeof cfgs[0]); i++)
        for (it = 0; it < 2; it++) {
            fwd_case c = base_case(cfgs[i][0], cfgs[i][1], both[it]);
            c.causal = cfgs[i][2]; c.d = c.dv = 64; c.threads = 1 + (i % 2);
            c.seed = 200 + (uint64_t)(2 * i + it);
            check_case(&c, g, failures);
        }
}

static void group_head_dims(tally *g, int *failures)
{
    static const int64_t dims[][2] = { { 1, 1 }, { 16, 16 }, { 64, 64 }, { 128, 128 }, { 64, 32 }, { 16, 48 } };
    int i, it;
    for (i = 0; i < 6; i++)
        for (it = 0; it < 2; it++) {
            fwd_case c = base_case(64, 4, both[it]);
            c.d = dims[i][0]; c.dv = dims[i][1]; c.causal = i % 3; c.threads = 2;
            c.seed = 300 + (uint64_t)(2 * i + it);
            check_case(&c, g, failures);
        }
}

static void group_nq_ne_nk(tally *g, int *failures)
{
    static const int64_t shapes[2][2] = { { 64, 129 }, { 129, 64 } };
    static const int ps[2] = { 3, 8 };
    int is, causal, ip, it, k = 0;
    for (is = 0; is < 2; is++)
        for (causal = 0; causal <= 2; causal++)
            for (ip = 0; ip < 2; ip++)
                for (it = 0; it < 2; it++, k++) {
                    fwd_case c = base_case(shapes[is][0], ps[ip], both[it]);
                    c.nk = shapes[is][1]; c.causal = causal; c.threads = (k % 2) ? 2 : 4;
                    c.seed = 400 + (uint64_t)k;
                    check_case(&c, g, failures);
                }
}

static void group_heads(tally *g, int *failures)
{
    /* (b, h, hk): batch and heads > 1, GQA, MQA */
    static const int64_t bh[3][3] = { { 2, 3, 3 }, { 2, 4, 2 }, { 1, 4, 1 } };
    int i, it;
    for (i = 0; i < 3; i++)
        for (it = 0; it < 2; it++) {
            fwd_case c = base_case(100, 4, both[it]);
            c.b = bh[i][0]; c.h = bh[i][1]; c.hk = bh[i][2]; c.causal = 1 + (i % 2); c.threads = 4;
            c.seed = 500 + (uint64_t)(2 * i + it);
            check_case(&c, g, failures);
        }
}

static void group_layouts(tally *g, int *failures)
{
    int layout, it, causal;
    for (layout = LAYOUT_BHND; layout <= LAYOUT_REVERSED; layout++)
        for (it = 0; it < 2; it++)
            for (causal = 0; causal <= 1; causal++) {
                fwd_case c = base_case(77, 3, both[it]);
                c.b = 2; c.h = 3; c.hk = 3; c.layout = layout; c.causal = causal; c.threads = 2;
                c.seed = 600 + (uint64_t)(layout * 4 + it * 2 + causal);
                check_case(&c, g, failures);
            }
}

static void group_dtypes(tally *g, int *failures)
{
    fwd_case c = base_case(96, 4, RINGATTN_F64);
    c.causal = 1; c.threads = 2;
    c.compute = RINGATTN_F32; c.lse_dtype = RINGATTN_F32; c.seed = 701;   /* f64 storage, f32 compute */
    check_case(&c, g, failures);
    c.storage = RINGATTN_F32; c.compute = RINGATTN_F64; c.lse_dtype = RINGATTN_F64; c.seed = 702;
    check_case(&c, g, failures);                                          /* f32 storage, f64 compute */
    c.storage = RINGATTN_F64; c.compute = RINGATTN_F64; c.lse_dtype = RINGATTN_F32; c.seed = 703;
    check_case(&c, g, failures);                                          /* f32 lse, f64 compute */
    c = base_case(96, 3, RINGATTN_F64);
    c.scale = 0.3; c.causal = 2; c.seed = 704;                            /* explicit scale */
    check_case(&c, g, failures);
    c = base_case(96, 3, RINGATTN_F32);
    c.scale = -0.7; c.seed = 705;                                         /* negative scale */
    check_case(&c, g, failures);
}

static void group_window(tally *g, int *failures)
{
    /* (nq, nk, causal, wl, wr) */
    static const int w[][5] = { { 100, 100, 0, 8, 0 }, { 100, 100, 0, 5, 3 }, { 64, 129, 0, 5, 3 },
                                { 129, 64, 1, 10, -1 }, { 100, 100, 2, 20, -1 }, { 100, 100, 0, -1, 2 } };
    int i, it;
    for (i = 0; i < (int)(sizeof w / sizeof w[0]); i++)
        for (it = 0; it < 2; it++) {
            fwd_case c = base_case(w[i][0], 4, both[it]);
            c.nk = w[i][1]; c.causal = w[i][2]; c.wl = w[i][3]; c.wr = w[i][4]; c.threads = 2;
            c.seed = 800 + (uint64_t)(2 * i + it);
            check_case(&c, g, failures);
        }
}

/* same p, num_threads 1, 2, 4: every output bit identical */
static void group_determinism(tally *g, int *failures)
{
    static const int ps[2] = { 4, 7 };
    int ip, it, nt;
    for (ip = 0; ip < 2; ip++)
        for (it = 0; it < 2; it++) {
            fwd_case c = base_case(129, ps[ip], both[it]);
            fwd_run r;
            double *out1, *lse1;
            int64_t no, nl;
            c.b = 2; c.h = 3; c.hk = 3; c.causal = 1; c.seed = 900 + (uint64_t)(2 * ip + it);
            no = c.b * c.nq * c.h * c.dv; nl = c.b * c.h * c.nq;
            out1 = (double *)malloc(sizeof(double) * (size_t)no);
            lse1 = (double *)malloc(sizeof(double) * (size_t)nl);
            if (!out1 || !lse1 || run_setup(&r, &c) != 0) { CHECK(0, "setup failed"); free(out1); free(lse1); return; }
            for (nt = 1; nt <= 4; nt *= 2) {
                int st;
                r.c.threads = nt;
                st = run_library(&r);
                CHECK(st == RINGATTN_OK, "ringattn_forward returned %d", st);
                if (st != RINGATTN_OK) break;
                if (nt == 1) {
                    run_check(&r, g, failures);
                    memcpy(out1, r.got_out, sizeof(double) * (size_t)no);
                    memcpy(lse1, r.got_lse, sizeof(double) * (size_t)nl);
                } else {
                    CHECK(memcmp(out1, r.got_out, sizeof(double) * (size_t)no) == 0 &&
                          memcmp(lse1, r.got_lse, sizeof(double) * (size_t)nl) == 0,
                          "p=%d %s: num_threads=%d differs from num_threads=1", c.p, dt_name(c.compute), nt);
                }
            }
            run_free(&r); free(out1); free(lse1);
        }
}

/* NaN in keys and values that some rows cannot see: those rows must not change by one bit.
   (nq, nk, causal, first poisoned key, p): the poison sits in the last ring chunk. */
static void group_nan_future(tally *g, int *failures)
{
    static const int cases[][5] = { { 129, 129, 1, 100, 4 }, { 129, 129, 2, 97, 4 }, { 64, 129, 2, 80, 3 },
                                    { 64, 129, 1, 125, 4 } };
    int i, it;
    for (i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++)
        for (it = 0; it < 2; it++) {
            fwd_case c = base_case(cases[i][0], cases[i][4], both[it]);
            fwd_run r;
            int64_t no, nl, j0 = cases[i][3], bb, ii, hh, j, x, off, clean_rows = 0;
            double *out1, *lse1, *kp, *vp;
            int st;
            c.nk = cases[i][1]; c.causal = cases[i][2]; c.b = 2; c.threads = 2;
            c.seed = 1000 + (uint64_t)(2 * i + it);
            no = c.b * c.nq * c.h * c.dv; nl = c.b * c.h * c.nq;
            off = (c.causal == 2) ? 0 : c.nk - c.nq;
            out1 = (double *)malloc(sizeof(double) * (size_t)no);
            lse1 = (double *)malloc(sizeof(double) * (size_t)nl);
            kp = (double *)malloc(sizeof(double) * (size_t)(c.b * c.nk * c.hk * c.d));
            vp = (double *)malloc(sizeof(double) * (size_t)(c.b * c.nk * c.hk * c.dv));
            if (!out1 || !lse1 || !kp || !vp || run_setup(&r, &c) != 0) {
                CHECK(0, "setup failed"); free(out1); free(lse1); free(kp); free(vp); return;
            }
            st = run_library(&r);                          /* clean run, checked against the oracle */
            CHECK(st == RINGATTN_OK, "ringattn_forward returned %d", st);
            if (st == RINGATTN_OK) {
                run_check(&r, g, failures);
                memcpy(out1, r.got_out, sizeof(double) * (size_t)no);
                memcpy(lse1, r.got_lse, sizeof(double) * (size_t)nl);
                /* poison keys and values j >= j0 in every batch and kv head */
                memcpy(kp, r.k, sizeof(double) * (size_t)(c.b * c.nk * c.hk * c.d));
                memcpy(vp, r.v, sizeof(double) * (size_t)(c.b * c.nk * c.hk * c.dv));
                for (bb = 0; bb < c.b; bb++)
                    for (j = j0; j < c.nk; j++)
                        for (hh = 0; hh < c.hk; hh++) {
                            for (x = 0; x < c.d; x++) kp[((bb * c.nk + j) * c.hk + hh) * c.d + x] = NAN;
                            for (x = 0; x < c.dv; x++) vp[((bb * c.nk + j) * c.hk + hh) * c.dv + x] = NAN;
                        }
                write_view(&r.K.t, kp); write_view(&r.V.t, vp);
                st = run_library(&r);
                CHECK(st == RINGATTN_OK, "ringattn_forward (poisoned) returned %d", st);
                /* rows whose last visible key i + off is before j0 must be bit-identical */
                for (bb = 0; bb < c.b && st == RINGATTN_OK; bb++)
                    for (ii = 0; ii < c.nq && ii + off < j0; ii++) {
                        int64_t o = (bb * c.nq + ii) * c.h * c.dv;
                        int same = memcmp(out1 + o, r.got_out + o, sizeof(double) * (size_t)(c.h * c.dv)) == 0;
                        for (hh = 0; hh < c.h; hh++)
                            same = same && memcmp(&lse1[(bb * c.h + hh) * c.nq + ii],
                                                  &r.got_lse[(bb * c.h + hh) * c.nq + ii], sizeof(double)) == 0;
                        CHECK(same, "nq=%lld nk=%lld causal=%d %s: row b=%lld i=%lld changed after NaN in keys >= %lld",
                              (long long)c.nq, (long long)c.nk, c.causal, dt_name(c.compute), (long long)bb,
                              (long long)ii, (long long)j0);
                        if (!same) break;
                        clean_rows++;
                    }
                CHECK(clean_rows > 0, "no row was left to check");
            }
            run_free(&r); free(out1); free(lse1); free(kp); free(vp);
        }
}

/* bottom-right causal, nq > nk: the first nq - nk rows see no key at all */
static void group_empty_rows(tally *g, int *failures)
{
    static const int ps[3] = { 1, 4, 7 };
    int ip, it;
    for (ip = 0; ip < 3; ip++)
        for (it = 0; it < 2; it++) {
            fwd_case c = base_case(129, ps[ip], both[it]);
            fwd_run r;
            int64_t bb, i, hh, x, nan = 0, nonzero = 0, finite_lse = 0;
            int st;
            c.nk = 64; c.causal = 1; c.b = 2; c.threads = 4; c.seed = 1100 + (uint64_t)(2 * ip + it);
            if (run_setup(&r, &c) != 0) { CHECK(0, "setup failed"); run_free(&r); return; }
            st = run_library(&r);
            CHECK(st == RINGATTN_OK, "ringattn_forward returned %d", st);
            if (st == RINGATTN_OK) {
                run_check(&r, g, failures);
                for (i = 0; i < c.b * c.nq * c.h * c.dv; i++) nan += r.got_out[i] != r.got_out[i];
                for (i = 0; i < c.b * c.h * c.nq; i++) nan += r.got_lse[i] != r.got_lse[i];
                for (bb = 0; bb < c.b; bb++)
                    for (i = 0; i < c.nq - c.nk; i++)
                        for (hh = 0; hh < c.h; hh++) {
                            for (x = 0; x < c.dv; x++)
                                nonzero += r.got_out[((bb * c.nq + i) * c.h + hh) * c.dv + x] != 0.0;
                            finite_lse += r.got_lse[(bb * c.h + hh) * c.nq + i] != -INFINITY;
                        }
                CHECK(nan == 0, "p=%d %s: %lld NaN in the outputs", c.p, dt_name(c.compute), (long long)nan);
                CHECK(nonzero == 0 && finite_lse == 0, "p=%d %s: empty rows: %lld nonzero outputs, %lld lse != -inf",
                      c.p, dt_name(c.compute), (long long)nonzero, (long long)finite_lse);
            }
            run_free(&r);
        }
}

int main(void)
{
    int nfail = 0, *failures = &nfail;
    tally total;
    typedef void (*group_fn)(tally *, int *);
    static const group_fn fns[] = { group_ring_sizes, group_lengths, group_head_dims, group_nq_ne_nk,
                                    group_heads, group_layouts, group_dtypes, group_window,
                                    group_determinism, group_nan_future, group_empty_rows };
    static const char *const names[] = { "ring size", "seq length", "head dim", "nq != nk", "batch/heads",
                                         "layouts", "dtypes", "window", "determinism", "NaN future",
                                         "empty rows" };
    int i;
    memset(&total, 0, sizeof total);
    for (i = 0; i < (int)(sizeof fns / sizeof fns[0]); i++) {
        tally g;
        int before = nfail;
        memset(&g, 0, sizeof g);
        fns[i](&g, failures);
        if (nfail != before && g.failed == 0) g.failed = 1;   /* a failure outside a compared case */
        print_group(names[i], &g);
        tally_merge(&total, &g);
    }
    printf("worst f64 (f64 compute and storage):   out %.3e abs (%.4f of tol), lse %.3e abs (%.4f of tol)\n",
           total.out_abs[1], total.out_frac[1], total.lse_abs[1], total.lse_frac[1]);
    printf("worst f32 (f32 compute):               out %.3e abs (%.4f of tol), lse %.3e abs (%.4f of tol)\n",
           total.out_abs[0], total.out_frac[0], total.lse_abs[0], total.lse_frac[0]);
    printf("worst f64 compute into f32 storage:    out %.3e abs (%.4f of tol), lse %.3e abs (%.4f of tol)\n",
           total.out_abs[2], total.out_frac[2], total.lse_abs[2], total.lse_frac[2]);
    printf("test_forward: %s (%d cases, %d failed checks)\n", nfail ? "FAIL" : "ok", total.cases, nfail);
    return nfail ? TEST_FAIL : TEST_PASS;
}
