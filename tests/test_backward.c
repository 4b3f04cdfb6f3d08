/* test_backward.c - ringattn_backward against the naive f64 oracle, finite differences, and
   its contracts (empty rows, NaN isolation, determinism, memory plan, bad input).

   Groups (one line of output each, then a summary; exit 1 on any failure):
     1. f64 compute + f64 storage vs ref_backward, within 1e-12 of the gradient scale
        (max |ref| of that tensor, floor 1): ring sizes, lengths, nq != nk with both causal
        alignments, head dims, dv != d, batch/heads, GQA, permuted strided views, threads.
     2. central finite differences of loss = sum(out * W) (so dout = W) in f64, step 1e-5:
        |fd - an| / max(|fd|, |an|, 1e-3) <= 1e-7 for every element of q, k and v.
     3. f32 compute and storage vs the oracle (fed the same f32-rounded inputs) under the
        the gradient policy of docs/golden.md |got - ref| <= G * u * (2*d*smax + nq + nk + 16), u = 2^-24,
        G = max(1, max|ref|) of that tensor, smax = max |scale| * ||q_i|| * ||k_j|| -- the
        forward's worst-case bound with the gradient scale for vmax and both sequence lengths
        (dK/dV sum over queries as O sums over keys); the worst ratio error / bound is printed.
     4. fully masked rows (bottom-right causal, nq > nk) give dq rows of exactly 0 and finite
        gradients; NaN planted in keys/values in the causal future of a member's queries leaves
        the dq of every row that cannot see them bit-identical to the clean run.
     5. bit-identical gradients for a fixed ring size across num_threads 1, 2, 4.
     6. stats: measured peak == planned == ringattn_plan() for the backward pass; planned
        backward bytes per member at n = 65536 for p = 1, 4, 16 scale as 1/p.
     7. bad input: the call fails with the right status and leaves every output untouched.

   Build by hand:
     gcc -std=c99 -O2 -fopenmp -DRINGATTN_USE_CBLAS -I. -Ireference -Itests \
         -I/usr/include/x86_64-linux-gnu/openblas-pthread \
         tests/test_backward.c reference/ringattn_ref.c -lopenblas -lm
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"
#include "ringattn_ref.h"
#include "test_util.h"

/* ---------------------------------------------------------------- bookkeeping */

/* CHECK (test_util.h) counts into the `int *failures` every function below takes */

#define TOL_F64   1e-12     /* group 1: relative to the gradient scale                          */
#define TOL_FD    1e-7      /* group 2: per element, relative with a 1e-3 floor                 */
#define FD_STEP   1e-5
#define TOL_U     (1.0 / 16777216.0)   /* group 3: u = 2^-24, the f32 unit roundoff           */


/* ---------------------------------------------------------------- seeded inputs */

/* one stream for the whole run: every case gets fresh, reproducible data */
static test_rng rng;

static double *dalloc(int64_t n)
{
    double *p = (double *)calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    if (!p) { printf("out of memory\n"); exit(1); }
    return p;
}

static void fill(double *x, int64_t n, double amp, int round_f32)
{
    int64_t i;
    for (i = 0; i < n; i++) {
        x[i] = amp * (2.0 * rng_uniform(&rng) - 1.0);   /* uniform in [-amp, amp) */
    }
    if (round_f32) round_to_f32(x, n);
}

/* ---------------------------------------------------------------- strided views */
/* A [b, n, h, d] tensor stored either contiguously, or permuted as a [b, h, n, d + 1] buffer
   (one padding column per row, filled with a sentinel that must survive the call). */

#define PAD_SENTINEL TEST_SENTINEL

typedef struct {
    void *buf; int64_t count; int permuted;
    ringattn_tensor t;
} view;

static view view_new(ringattn_dtype dt, int64_t b, int64_t n, int64_t h, int64_t d, int permuted)
{
    view v; int64_t i, dp = permuted ? d + 1 : d;
    v.permuted = permuted;
    v.count = b * n * h * dp;
    v.buf = calloc((size_t)v.count, dt == RINGATTN_F64 ? 8 : 4);
    if (!v.buf) { printf("out of memory\n"); exit(1); }
    v.t = ringattn_tensor_bnhd(v.buf, dt, b, n, h, d);
    if (permuted) {
        v.t.stride[0] = h * n * dp; v.t.stride[1] = dp; v.t.stride[2] = n * dp; v.t.stride[3] = 1;
    }
    for (i = 0; i < v.count; i++) {
        if (dt == RINGATTN_F64) ((double *)v.buf)[i] = PAD_SENTINEL;
        else ((float *)v.buf)[i] = (float)PAD_SENTINEL;
    }
    return v;
}

static int64_t view_at(const view *v, int64_t bb, int64_t r, int64_t hh, int64_t c)
{
    return bb * v->t.stride[0] + r * v->t.stride[1] + hh * v->t.stride[2] + c * v->t.stride[3];
}

static double elem(const void *buf, ringattn_dtype dt, int64_t i)
{
    return dt == RINGATTN_F64 ? ((const double *)buf)[i] : (double)((const float *)buf)[i];
}

/* contiguous f64 [b, n, h, d] <-> the view */
static void view_set(view *v, const double *src)
{
    int64_t bb, r, hh, c, i = 0;
    for (bb = 0; bb < v->t.shape[0]; bb++)
    for (r = 0; r < v->t.shape[1]; r++)
    for (hh = 0; hh < v->t.shape[2]; hh++)
    for (c = 0; c < v->t.shape[3]; c++, i++) {
        int64_t at = view_at(v, bb, r, hh, c);
        if (v->t.dtype == RINGATTN_F64) ((double *)v->buf)[at] = src[i];
        else ((float *)v->buf)[at] = (float)src[i];
    }
}

static void view_get(const view *v, double *dst)
{
    int64_t bb, r, hh, c, i = 0;
    for (bb = 0; bb < v->t.shape[0]; bb++)
    for (r = 0; r < v->t.shape[1]; r++)
    for (hh = 0; hh < v->t.shape[2]; hh++)
    for (c = 0; c < v->t.shape[3]; c++, i++)
        dst[i] = elem(v->buf, v->t.dtype, view_at(v, bb, r, hh, c));
}

/* the padding column of a permuted view still holds the sentinel */
static int view_pad_intact(const view *v)
{
    int64_t i, dp = v->t.shape[3] + 1;
    if (!v->permuted) return 1;
    for (i = dp - 1; i < v->count; i += dp)
        if (elem(v->buf, v->t.dtype, i) != PAD_SENTINEL) return 0;
    return 1;
}

static void view_free(view *v) { free(v->buf); v->buf = NULL; }

/* ---------------------------------------------------------------- comparison */

/* dq, dk, dv against the oracle's, element-wise: |got - ref| <= mul * max(1, max|ref|) with
   max|ref| taken per tensor (the gradient scale). Mismatches are printed by compare_report
   with their (b, n, h, d) index. Returns the worst error / tolerance over the three;
   err_scaled[t] gets max|got - ref| / max(1, max|ref|) of each. */
static double compare_grads(const char *cs, int64_t b, int64_t nq, int64_t nk, int64_t h,
                            int64_t hk, int64_t d, int64_t dv, const double *const got[3],
                            const double *const ref[3], double mul, double err_scaled[3],
                            int *failures)
{
    static const char *names[3] = { "dq", "dk", "dv" };
    double worst = 0;
    int t;
    for (t = 0; t < 3; t++) {
        int64_t dims[4];
        test_tol tol; test_cmp r; double gscale;
        dims[0] = b; dims[1] = t == 0 ? nq : nk; dims[2] = t == 0 ? h : hk; dims[3] = t == 2 ? dv : d;
        gscale = max_abs_f64(ref[t], dims[0] * dims[1] * dims[2] * dims[3]);
        if (gscale < 1) gscale = 1;
        tol.abs = mul * gscale; tol.rel = 0;
        r = compare_report(names[t], got[t], ref[t], dims, "bnhd", tol);
        CHECK(r.bad == 0, "%s: %s: %lld elements out of tolerance (worst error %.3g of the gradient scale %.3g)",
              cs, names[t], (long long)r.bad, r.max_abs / gscale, gscale);
        err_scaled[t] = r.bad ? INFINITY : r.max_abs / gscale;
        if (!(r.max_frac <= worst)) worst = r.max_frac;
    }
    return worst;
}

/* ---------------------------------------------------------------- one problem */

typedef struct {
    int64_t b, nq, nk, h, hk, d, dv;
    int causal, p, threads, permuted;
    double scale;                 /* 0 = default 1/sqrt(d) */
} bw_case;

typedef struct {                  /* inputs (contiguous f64) and the oracle's gradients */
    double *q, *k, *v, *dout;
    double *rdq, *rdk, *rdv;
    double scale;
} bw_data;

static int64_t nq_elems(const bw_case *c, int64_t d) { return c->b * c->nq * c->h * d; }
static int64_t nk_elems(const bw_case *c, int64_t d) { return c->b * c->nk * c->hk * d; }

static void ref_problem_of(const bw_case *c, ref_problem *rp)
{
    memset(rp, 0, sizeof *rp);
    rp->b = c->b; rp->nq = c->nq; rp->nk = c->nk; rp->h = c->h; rp->hk = c->hk;
    rp->d = c->d; rp->dv = c->dv;
    rp->scale = c->scale != 0 ? c->scale : 1.0 / sqrt((double)c->d);
    rp->causal = c->causal; rp->window_left = -1; rp->window_right = -1;
}

static void data_new(const bw_case *c, bw_data *D, int round_f32, double qamp)
{
    ref_problem rp;
    D->q = dalloc(nq_elems(c, c->d));  D->k = dalloc(nk_elems(c, c->d));
    D->v = dalloc(nk_elems(c, c->dv)); D->dout = dalloc(nq_elems(c, c->dv));
    D->rdq = dalloc(nq_elems(c, c->d)); D->rdk = dalloc(nk_elems(c, c->d));
    D->rdv = dalloc(nk_elems(c, c->dv));
    fill(D->q, nq_elems(c, c->d), qamp, round_f32);
    fill(D->k, nk_elems(c, c->d), 1.0, round_f32);
    fill(D->v, nk_elems(c, c->dv), 1.0, round_f32);
    fill(D->dout, nq_elems(c, c->dv), 1.0, round_f32);
    ref_problem_of(c, &rp);
    D->scale = rp.scale;
    if (ref_backward(&rp, D->q, D->k, D->v, D->dout, D->rdq, D->rdk, D->rdv) != 0) {
        printf("ref_backward failed\n"); exit(1);
    }
}

static void data_free(bw_data *D)
{
    free(D->q); free(D->k); free(D->v); free(D->dout); free(D->rdq); free(D->rdk); free(D->rdv);
}

/* The library on one case: forward (out, lse) then backward, storage and compute in `ct`.
   q, dout, dq, dk, dv are permuted strided views when c->permuted. Gradients come back as
   contiguous f64 [b, n, h, d] arrays. Returns the backward status. */
static int lib_grads(const bw_case *c, const bw_data *D, ringattn_dtype ct,
                     double *dq, double *dk, double *dv, ringattn_stats *stats, int *pads_ok)
{
    view Q = view_new(ct, c->b, c->nq, c->h, c->d, c->permuted);
    view K = view_new(ct, c->b, c->nk, c->hk, c->d, 0);
    view V = view_new(ct, c->b, c->nk, c->hk, c->dv, 0);
    view O = view_new(ct, c->b, c->nq, c->h, c->dv, 0);
    view G = view_new(ct, c->b, c->nq, c->h, c->dv, c->permuted);
    view DQ = view_new(ct, c->b, c->nq, c->h, c->d, c->permuted);
    view DK = view_new(ct, c->b, c->nk, c->hk, c->d, c->permuted);
    view DV = view_new(ct, c->b, c->nk, c->hk, c->dv, c->permuted);
    void *lse = calloc((size_t)(c->b * c->h * c->nq), ct == RINGATTN_F64 ? 8 : 4);
    ringattn_tensor L = ringattn_tensor_lse(lse, ct, c->b, c->h, c->nq);
    ringattn_config cfg = ringattn_default_config();
    int st;
    cfg.compute = ct; cfg.ring_size = c->p; cfg.num_threads = c->threads; cfg.causal = c->causal;
    cfg.scale = c->scale;
    view_set(&Q, D->q); view_set(&K, D->k); view_set(&V, D->v); view_set(&G, D->dout);
    st = ringattn_forward(&cfg, &Q.t, &K.t, &V.t, &O.t, &L);
    if (st == RINGATTN_OK) {
        cfg.stats = stats;
        st = ringattn_backward(&cfg, &Q.t, &K.t, &V.t, &O.t, &L, &G.t, &DQ.t, &DK.t, &DV.t);
    }
    view_get(&DQ, dq); view_get(&DK, dk); view_get(&DV, dv);
    if (pads_ok) *pads_ok = view_pad_intact(&Q) && view_pad_intact(&G) && view_pad_intact(&DQ) &&
                            view_pad_intact(&DK) && view_pad_intact(&DV);
    view_free(&Q); view_free(&K); view_free(&V); view_free(&O); view_free(&G);
    view_free(&DQ); view_free(&DK); view_free(&DV); free(lse);
    return st;
}

static void case_str(const bw_case *c, char *buf)
{
    sprintf(buf, "b=%lld nq=%lld nk=%lld h=%lld hk=%lld d=%lld dv=%lld causal=%d p=%d threads=%d%s",
            (long long)c->b, (long long)c->nq, (long long)c->nk, (long long)c->h, (long long)c->hk,
            (long long)c->d, (long long)c->dv, c->causal, c->p, c->threads,
            c->permuted ? " permuted" : "");
}

/* ---------------------------------------------------------------- 1. f64 vs the oracle */

static double f64_case(const bw_case *c, int *failures)
{
    bw_data D; int st, pads_ok = 0;
    double *dq = dalloc(nq_elems(c, c->d)), *dk = dalloc(nk_elems(c, c->d)), *dv = dalloc(nk_elems(c, c->dv));
    double worst = 0, err[3];
    char cs[256];
    data_new(c, &D, 0, 1.0);
    st = lib_grads(c, &D, RINGATTN_F64, dq, dk, dv, NULL, &pads_ok);
    case_str(c, cs);
    CHECK(st == RINGATTN_OK, "%s: status %d (%s)", cs, st, ringattn_strerror(st));
    CHECK(pads_ok, "%s: a strided view's padding was written", cs);
    if (st == RINGATTN_OK) {
        const double *got[3], *ref[3];
        got[0] = dq; got[1] = dk; got[2] = dv; ref[0] = D.rdq; ref[1] = D.rdk; ref[2] = D.rdv;
        compare_grads(cs, c->b, c->nq, c->nk, c->h, c->hk, c->d, c->dv, got, ref, TOL_F64, err, failures);
        worst = err[0] > err[1] ? err[0] : err[1];
        if (err[2] > worst) worst = err[2];
    }
    data_free(&D); free(dq); free(dk); free(dv);
    return worst;
}

static double group_oracle(int *failures)
{
    static const int64_t ns[] = { 1, 7, 64, 129 };
    static const int ps[] = { 1, 2, 3, 4, 7, 8 };
    static const int64_t ds[] = { 1, 16, 64 };
    static const int ths[] = { 1, 2, 4 };
    int in, ip, ic, count = 0, f0 = *failures;
    double worst = 0, e;
    bw_case c;
    /* the grid: nq == nk, every causal mode */
    for (in = 0; in < 4; in++)
    for (ip = 0; ip < 6; ip++)
    for (ic = 0; ic < 3; ic++) {
        if (ps[ip] > ns[in]) continue;
        memset(&c, 0, sizeof c);
        c.b = 1; c.nq = c.nk = ns[in]; c.h = 2; c.hk = 2;
        c.d = c.dv = ds[(ip + ic) % 3];
        c.causal = ic; c.p = ps[ip]; c.threads = ths[(ip + in) % 3];
        c.permuted = (ip + ic + in) % 2;
        e = f64_case(&c, failures); if (e > worst) worst = e; count++;
    }
    /* nq != nk both ways, every causal mode (bottom-right, top-left, none) */
    for (in = 0; in < 4; in++)
    for (ic = 0; ic < 3; ic++) {
        static const int64_t nqs[] = { 64, 129, 7, 40 }, nks[] = { 129, 64, 40, 7 };
        static const int pp[] = { 4, 3, 7, 2 };
        memset(&c, 0, sizeof c);
        c.b = 1; c.nq = nqs[in]; c.nk = nks[in]; c.h = 2; c.hk = 2;
        c.d = c.dv = ds[(in + ic) % 3];
        c.causal = ic; c.p = pp[in]; c.threads = ths[(in + ic) % 3]; c.permuted = (in + ic) % 2;
        e = f64_case(&c, failures); if (e > worst) worst = e; count++;
    }
    /* one of each: long, dv != d, batch and heads, GQA, explicit scale */
    memset(&c, 0, sizeof c);
    c.b = 1; c.nq = c.nk = 300; c.h = 1; c.hk = 1; c.d = c.dv = 16; c.causal = 1; c.p = 7; c.threads = 4;
    c.permuted = 1;
    e = f64_case(&c, failures); if (e > worst) worst = e; count++;
    c.nq = c.nk = 64; c.h = c.hk = 2; c.d = 16; c.dv = 8; c.causal = 2; c.p = 3; c.threads = 2;
    e = f64_case(&c, failures); if (e > worst) worst = e; count++;
    c.b = 2; c.h = c.hk = 3; c.nq = 37; c.nk = 53; c.d = c.dv = 16; c.causal = 1; c.p = 4; c.threads = 2;
    c.permuted = 0;
    e = f64_case(&c, failures); if (e > worst) worst = e; count++;
    c.b = 1; c.h = 4; c.hk = 2; c.nq = c.nk = 129; c.d = c.dv = 16; c.causal = 1; c.p = 8; c.threads = 4;
    c.permuted = 1;
    e = f64_case(&c, failures); if (e > worst) worst = e; count++;
    c.h = 4; c.hk = 1; c.nq = 50; c.nk = 70; c.d = 16; c.dv = 24; c.causal = 2; c.p = 3; c.threads = 2;
    c.scale = 0.3;
    e = f64_case(&c, failures); if (e > worst) worst = e; count++;
    /* d >= 128: the blocks a cblas build sends through whole-tile GEMMs (the fused kernels
       otherwise), dense, causal and ragged, dv == d and dv != d */
    c.b = 1; c.h = 2; c.hk = 2; c.nq = c.nk = 129; c.d = c.dv = 128; c.causal = 0; c.p = 3; c.threads = 2;
    c.scale = 0; c.permuted = 1;
    e = f64_case(&c, failures); if (e > worst) worst = e; count++;
    c.nq = 100; c.nk = 140; c.d = 160; c.dv = 64; c.causal = 1; c.p = 4; c.permuted = 0;
    e = f64_case(&c, failures); if (e > worst) worst = e; count++;
    printf("1. f64 vs oracle:        %3d cases, worst error %.3g (tolerance %.0e)  %s\n", count, worst,
           TOL_F64, *failures == f0 ? "ok" : "FAILED");
    return worst;
}

/* ---------------------------------------------------------------- 2. finite differences */

/* loss = sum(out * W) through the library's own forward, in f64 */
static double fd_loss(const bw_case *c, const double *q, const double *k, const double *v,
                      const double *W, double *out, int *failures)
{
    ringattn_tensor Q = ringattn_tensor_bnhd((void *)q, RINGATTN_F64, c->b, c->nq, c->h, c->d);
    ringattn_tensor K = ringattn_tensor_bnhd((void *)k, RINGATTN_F64, c->b, c->nk, c->hk, c->d);
    ringattn_tensor V = ringattn_tensor_bnhd((void *)v, RINGATTN_F64, c->b, c->nk, c->hk, c->dv);
    ringattn_tensor O = ringattn_tensor_bnhd(out, RINGATTN_F64, c->b, c->nq, c->h, c->dv);
    ringattn_config cfg = ringattn_default_config();
    int64_t i, n = nq_elems(c, c->dv);
    long double s = 0;
    cfg.compute = RINGATTN_F64; cfg.ring_size = c->p; cfg.num_threads = 1; cfg.causal = c->causal;
    if (ringattn_forward(&cfg, &Q, &K, &V, &O, NULL) != RINGATTN_OK) { ++*failures; return NAN; }
    for (i = 0; i < n; i++) s += (long double)out[i] * (long double)W[i];
    return (double)s;
}

static double fd_case(const bw_case *c, int *failures)
{
    bw_data D; int t, st;
    double *dq = dalloc(nq_elems(c, c->d)), *dk = dalloc(nk_elems(c, c->d)), *dv = dalloc(nk_elems(c, c->dv));
    double *out = dalloc(nq_elems(c, c->dv)), worst = 0;
    char cs[256];
    data_new(c, &D, 0, 1.0);                       /* D.dout plays W */
    st = lib_grads(c, &D, RINGATTN_F64, dq, dk, dv, NULL, NULL);
    case_str(c, cs);
    CHECK(st == RINGATTN_OK, "%s: status %d", cs, st);
    for (t = 0; t < 3; t++) {
        double *x = t == 0 ? D.q : t == 1 ? D.k : D.v;
        const double *an = t == 0 ? dq : t == 1 ? dk : dv;
        int64_t i, n = t == 0 ? nq_elems(c, c->d) : t == 1 ? nk_elems(c, c->d) : nk_elems(c, c->dv);
        for (i = 0; i < n; i++) {
            double keep = x[i], lp, lm, fd, den, e;
            x[i] = keep + FD_STEP; lp = fd_loss(c, D.q, D.k, D.v, D.dout, out, failures);
            x[i] = keep - FD_STEP; lm = fd_loss(c, D.q, D.k, D.v, D.dout, out, failures);
            x[i] = keep;
            fd = (lp - lm) / (2 * FD_STEP);
            den = fabs(fd) > fabs(an[i]) ? fabs(fd) : fabs(an[i]);
            if (den < 1e-3) den = 1e-3;
            e = fabs(fd - an[i]) / den;
            if (!(e == e)) e = INFINITY;
            CHECK(e <= TOL_FD, "%s: d%s[%lld]: finite difference %.12g, backward %.12g (rel %.3g)", cs,
                  t == 0 ? "q" : t == 1 ? "k" : "v", (long long)i, fd, an[i], e);
            if (e > worst) worst = e;
        }
    }
    data_free(&D); free(dq); free(dk); free(dv); free(out);
    return worst;
}

static double group_fd(int *failures)
{
    int ip, ik, count = 0, f0 = *failures;
    double worst = 0, e;
    for (ik = 0; ik < 5; ik++)
    for (ip = 0; ip < 2; ip++) {
        bw_case c;
        memset(&c, 0, sizeof c);
        c.b = 1; c.h = 2; c.hk = 2; c.d = 3; c.dv = 3; c.p = ip ? 3 : 1; c.threads = 1;
        switch (ik) {
        case 0: c.nq = c.nk = 10; c.causal = 0; break;                     /* dense            */
        case 1: c.nq = 12; c.nk = 8; c.causal = 1; break;                  /* bottom-right     */
        case 2: c.nq = 8; c.nk = 12; c.causal = 1; break;
        case 3: c.nq = 8; c.nk = 12; c.causal = 2; break;                  /* top-left         */
        default: c.nq = c.nk = 9; c.h = 4; c.hk = 2; c.causal = 1; c.dv = 2; break;   /* GQA   */
        }
        if (ik == 3 && ip) { c.nq = 12; c.nk = 8; }                        /* top-left, nq > nk */
        e = fd_case(&c, failures); if (e > worst) worst = e; count++;
    }
    printf("2. finite differences:   %3d cases, worst relative error %.3g (tolerance %.0e)  %s\n", count,
           worst, TOL_FD, *failures == f0 ? "ok" : "FAILED");
    return worst;
}

/* ---------------------------------------------------------------- 3. f32 gradient policy */

static double f32_case(const bw_case *c, double qamp, double *worst_err, int *failures)
{
    bw_data D; int st, t;
    double *dq = dalloc(nq_elems(c, c->d)), *dk = dalloc(nk_elems(c, c->d)), *dv = dalloc(nk_elems(c, c->dv));
    double smax, worst = 0, err[3] = { 0, 0, 0 };
    char cs[256];
    data_new(c, &D, 1, qamp);                      /* the oracle sees the same f32 inputs */
    smax = tol_smax(D.q, D.k, c->b, c->nq, c->nk, c->h, c->hk, c->d, D.scale);
    st = lib_grads(c, &D, RINGATTN_F32, dq, dk, dv, NULL, NULL);
    case_str(c, cs);
    CHECK(st == RINGATTN_OK, "%s: status %d", cs, st);
    if (st == RINGATTN_OK) {
        const double *got[3], *ref[3];
        got[0] = dq; got[1] = dk; got[2] = dv; ref[0] = D.rdq; ref[1] = D.rdk; ref[2] = D.rdv;
        worst = compare_grads(cs, c->b, c->nq, c->nk, c->h, c->hk, c->d, c->dv, got, ref,
                              TOL_U * (2.0 * (double)c->d * smax + (double)(c->nq + c->nk) + 16.0), err, failures);
    }
    printf("   %-76s smax %5.2f  err/scale dq %.1e dk %.1e dv %.1e  ratio %.3g\n", cs, smax,
           err[0], err[1], err[2], worst);
    for (t = 0; t < 3; t++) if (err[t] > *worst_err) *worst_err = err[t];
    data_free(&D); free(dq); free(dk); free(dv);
    return worst;
}

static double group_f32(int *failures)
{
    int count = 0, f0 = *failures, i;
    double worst = 0, worst_err = 0, e;
    for (i = 0; i < 8; i++) {
        bw_case c; double qamp = 1.0;
        memset(&c, 0, sizeof c);
        c.b = 1; c.h = 2; c.hk = 2; c.threads = 2;
        switch (i) {
        case 0: c.nq = c.nk = 129; c.d = c.dv = 64; c.p = 4; c.causal = 1; break;
        case 1: c.nq = c.nk = 300; c.d = c.dv = 16; c.p = 7; c.causal = 0; c.permuted = 1; break;
        case 2: c.nq = 129; c.nk = 64; c.d = c.dv = 64; c.p = 3; c.causal = 1; break;
        case 3: c.nq = 64; c.nk = 129; c.d = 16; c.dv = 32; c.p = 8; c.causal = 2; break;
        case 4: c.nq = c.nk = 129; c.h = 4; c.hk = 1; c.d = c.dv = 64; c.p = 4; c.causal = 1; break;
        case 5: c.nq = c.nk = 129; c.d = c.dv = 64; c.p = 4; c.causal = 1; qamp = 4.0; break;   /* sharp */
        case 6: c.nq = c.nk = 129; c.d = c.dv = 128; c.p = 4; c.causal = 1; break;   /* d >= 128 */
        default: c.nq = c.nk = 300; c.d = c.dv = 1; c.p = 2; c.causal = 0; qamp = 8.0; break;
        }
        e = f32_case(&c, qamp, &worst_err, failures); if (e > worst) worst = e; count++;
    }
    printf("3. f32 policy:           %3d cases, worst ratio error/bound %.3g (bound G*u*(2*d*smax+nq+nk+16)); "
           "worst error %.3g of the gradient scale  %s\n", count, worst, worst_err, *failures == f0 ? "ok" : "FAILED");
    return worst;
}

/* ---------------------------------------------------------------- 4. empty rows and NaN */

static int all_finite(const double *x, int64_t n)
{
    int64_t i;
    for (i = 0; i < n; i++) if (!(x[i] - x[i] == 0)) return 0;
    return 1;
}

static void empty_rows_case(int p, ringattn_dtype ct, int *failures)
{
    bw_case c; bw_data D; int st;
    double *dq, *dk, *dv; int64_t i, empty;
    char cs[256];
    memset(&c, 0, sizeof c);
    c.b = 2; c.nq = 20; c.nk = 8; c.h = 2; c.hk = 1; c.d = 5; c.dv = 3; c.causal = 1; c.p = p;
    c.threads = 2;
    empty = c.nq - c.nk;             /* query rows 0 .. nq-nk-1 see no key (bottom-right) */
    dq = dalloc(nq_elems(&c, c.d)); dk = dalloc(nk_elems(&c, c.d)); dv = dalloc(nk_elems(&c, c.dv));
    data_new(&c, &D, ct == RINGATTN_F32, 1.0);
    st = lib_grads(&c, &D, ct, dq, dk, dv, NULL, NULL);
    case_str(&c, cs);
    CHECK(st == RINGATTN_OK, "%s: status %d", cs, st);
    for (i = 0; i < nq_elems(&c, c.d); i++) {
        int64_t row = (i / (c.d * c.h)) % c.nq;
        if (row < empty) CHECK(dq[i] == 0.0, "%s: dq of masked row %lld is %g, not 0", cs, (long long)row, dq[i]);
        if (row < empty && dq[i] != 0.0) break;
    }
    CHECK(all_finite(dq, nq_elems(&c, c.d)) && all_finite(dk, nk_elems(&c, c.d)) &&
          all_finite(dv, nk_elems(&c, c.dv)), "%s: a gradient is not finite", cs);
    if (ct == RINGATTN_F64 && st == RINGATTN_OK) {        /* and the rest is still right */
        const double *got[3], *ref[3]; double err[3];
        got[0] = dq; got[1] = dk; got[2] = dv; ref[0] = D.rdq; ref[1] = D.rdk; ref[2] = D.rdv;
        compare_grads(cs, c.b, c.nq, c.nk, c.h, c.hk, c.d, c.dv, got, ref, TOL_F64, err, failures);
    }
    data_free(&D); free(dq); free(dk); free(dv);
}

/* NaN in key row nan_k and value row nan_v; every query row that cannot see either must get
   a dq bit-identical to the clean run. Returns how many rows were compared. */
static int64_t nan_case(int64_t nq, int64_t nk, int causal, int p, int threads, int64_t nan_k,
                        int64_t nan_v, ringattn_dtype ct, int *failures)
{
    bw_case c; bw_data D; ref_problem rp;
    double *dq0, *dq1, *dk, *dv; int st0, st1; int64_t i, bb, hh, checked = 0, seen_nan = 0;
    char cs[256];
    memset(&c, 0, sizeof c);
    c.b = 1; c.nq = nq; c.nk = nk; c.h = 2; c.hk = 2; c.d = 8; c.dv = 8; c.causal = causal;
    c.p = p; c.threads = threads;
    ref_problem_of(&c, &rp);
    dq0 = dalloc(nq_elems(&c, c.d)); dq1 = dalloc(nq_elems(&c, c.d));
    dk = dalloc(nk_elems(&c, c.d)); dv = dalloc(nk_elems(&c, c.dv));
    data_new(&c, &D, ct == RINGATTN_F32, 1.0);
    st0 = lib_grads(&c, &D, ct, dq0, dk, dv, NULL, NULL);
    for (bb = 0; bb < c.b; bb++)
    for (hh = 0; hh < c.hk; hh++) {
        D.k[((bb * nk + nan_k) * c.hk + hh) * c.d] = NAN;
        D.v[((bb * nk + nan_v) * c.hk + hh) * c.dv + c.dv - 1] = NAN;
    }
    st1 = lib_grads(&c, &D, ct, dq1, dk, dv, NULL, NULL);
    case_str(&c, cs);
    CHECK(st0 == RINGATTN_OK && st1 == RINGATTN_OK, "%s: status %d / %d", cs, st0, st1);
    for (i = 0; i < nq; i++) {
        size_t row = (size_t)(c.h * c.d), off = (size_t)i * row;
        if (ref_visible(&rp, i, nan_k) || ref_visible(&rp, i, nan_v)) {
            seen_nan += !all_finite(dq1 + off, (int64_t)row);
            continue;
        }
        CHECK(memcmp(dq0 + off, dq1 + off, row * sizeof(double)) == 0,
              "%s: NaN at key %lld / value %lld changed dq of row %lld, which cannot see them",
              cs, (long long)nan_k, (long long)nan_v, (long long)i);
        checked++;
    }
    CHECK(seen_nan > 0, "%s: rows that see the NaN should have a NaN gradient", cs);
    data_free(&D); free(dq0); free(dq1); free(dk); free(dv);
    return checked;
}

static void group_masked(int *failures)
{
    int f0 = *failures; int64_t rows = 0;
    empty_rows_case(1, RINGATTN_F64, failures); empty_rows_case(3, RINGATTN_F64, failures); empty_rows_case(8, RINGATTN_F64, failures);
    empty_rows_case(1, RINGATTN_F32, failures); empty_rows_case(4, RINGATTN_F32, failures);
    /* nq == nk, p = 4: keys 62, 63 live in member 3's chunk, in the future of members 0-2 */
    rows += nan_case(64, 64, 2, 4, 2, 62, 63, RINGATTN_F64, failures);
    rows += nan_case(64, 64, 1, 4, 1, 63, 62, RINGATTN_F32, failures);
    /* bottom-right, nq < nk: row i sees j <= i + 16; key 63 is seen only by row 47 */
    rows += nan_case(48, 64, 1, 4, 4, 63, 63, RINGATTN_F64, failures);
    /* top-left, nq > nk: rows past nk see everything */
    rows += nan_case(100, 40, 2, 3, 2, 39, 38, RINGATTN_F32, failures);
    printf("4. masked rows and NaN:  dq of empty rows exactly 0, gradients finite; %lld clean rows bit-equal  %s\n",
           (long long)rows, *failures == f0 ? "ok" : "FAILED");
}

/* ---------------------------------------------------------------- 5. determinism */

static void group_threads(int *failures)
{
    static const int ths[] = { 1, 2, 4 };
    int f0 = *failures, icase, it, runs = 0;
    for (icase = 0; icase < 4; icase++) {
        bw_case c; bw_data D;
        ringattn_dtype ct = (icase % 2) ? RINGATTN_F32 : RINGATTN_F64;
        double *g[3][3];
        char cs[256];
        memset(&c, 0, sizeof c);
        c.b = 2; c.h = 2; c.hk = 1; c.d = 16; c.dv = 16;
        c.nq = icase < 2 ? 129 : 90; c.nk = icase < 2 ? 129 : 150;
        c.p = icase < 2 ? 4 : 7; c.causal = icase % 3; c.permuted = icase == 3;
        data_new(&c, &D, ct == RINGATTN_F32, 1.0);
        for (it = 0; it < 3; it++) {
            g[it][0] = dalloc(nq_elems(&c, c.d)); g[it][1] = dalloc(nk_elems(&c, c.d));
            g[it][2] = dalloc(nk_elems(&c, c.dv));
            c.threads = ths[it];
            CHECK(lib_grads(&c, &D, ct, g[it][0], g[it][1], g[it][2], NULL, NULL) == RINGATTN_OK, "status");
            runs++;
        }
        case_str(&c, cs);
        for (it = 1; it < 3; it++) {
            CHECK(memcmp(g[0][0], g[it][0], sizeof(double) * (size_t)nq_elems(&c, c.d)) == 0 &&
                  memcmp(g[0][1], g[it][1], sizeof(double) * (size_t)nk_elems(&c, c.d)) == 0 &&
                  memcmp(g[0][2], g[it][2], sizeof(double) * (size_t)nk_elems(&c, c.dv)) == 0,
                  "%s (%s): gradients with %d threads differ from 1 thread", cs,
                  ct == RINGATTN_F32 ? "f32" : "f64", ths[it]);
        }
        for (it = 0; it < 3; it++) { free(g[it][0]); free(g[it][1]); free(g[it][2]); }
        data_free(&D);
    }
    printf("5. threads 1/2/4:        %3d runs, gradients bit-identical for a fixed ring size  %s\n", runs,
           *failures == f0 ? "ok" : "FAILED");
}

/* ---------------------------------------------------------------- 6. stats and the plan */

static void group_stats(int *failures)
{
    static const int ps[] = { 1, 4, 16 };
    int f0 = *failures, i, icase;
    size_t bytes[3];
    for (icase = 0; icase < 3; icase++) {
        bw_case c; bw_data D; ringattn_stats st; ringattn_plan_info plan;
        ringattn_config cfg = ringattn_default_config(); ringattn_shape sh;
        double *dq, *dk, *dv;
        memset(&c, 0, sizeof c); memset(&st, 0, sizeof st); memset(&plan, 0, sizeof plan);
        c.b = 1; c.h = 4; c.hk = 2; c.d = 16; c.dv = 8; c.threads = 2;
        c.nq = icase == 1 ? 100 : 129; c.nk = icase == 2 ? 70 : 129; c.p = icase == 0 ? 4 : 3;
        c.causal = icase;
        dq = dalloc(nq_elems(&c, c.d)); dk = dalloc(nk_elems(&c, c.d)); dv = dalloc(nk_elems(&c, c.dv));
        data_new(&c, &D, 0, 1.0);
        CHECK(lib_grads(&c, &D, RINGATTN_F64, dq, dk, dv, &st, NULL) == RINGATTN_OK, "status");
        cfg.compute = RINGATTN_F64; cfg.ring_size = c.p; cfg.causal = c.causal;
        sh.batch = c.b; sh.seq_q = c.nq; sh.seq_k = c.nk; sh.heads_q = c.h; sh.heads_kv = c.hk;
        sh.dim_qk = c.d; sh.dim_v = c.dv;
        CHECK(ringattn_plan(&cfg, &sh, 1, &plan) == RINGATTN_OK, "plan");
        CHECK(st.planned_bytes_per_member == st.peak_bytes_per_member,
              "backward: planned %zu != measured peak %zu", st.planned_bytes_per_member, st.peak_bytes_per_member);
        CHECK(st.planned_bytes_per_member == plan.member_bytes,
              "backward: stats planned %zu != ringattn_plan %zu", st.planned_bytes_per_member, plan.member_bytes);
        CHECK(st.ring_size == c.p && st.ring_steps == c.p, "ring_size %d", st.ring_size);
        data_free(&D); free(dq); free(dk); free(dv);
    }
    for (i = 0; i < 3; i++) {
        ringattn_config cfg = ringattn_default_config(); ringattn_shape sh; ringattn_plan_info plan;
        sh.batch = 1; sh.seq_q = sh.seq_k = 65536; sh.heads_q = sh.heads_kv = 8; sh.dim_qk = sh.dim_v = 64;
        cfg.ring_size = ps[i];                      /* f32 compute is the default */
        memset(&plan, 0, sizeof plan);
        CHECK(ringattn_plan(&cfg, &sh, 1, &plan) == RINGATTN_OK, "plan p=%d", ps[i]);
        bytes[i] = plan.member_bytes;
    }
    {
        double r = (double)bytes[0] / (double)bytes[2];
        CHECK(fabs(r / 16.0 - 1.0) <= 0.05, "p=1 / p=16 backward bytes ratio %.3f, expected about 16", r);
        printf("6. stats:                planned == measured == ringattn_plan; backward bytes/member n=65536 "
               "b=1 h=8 d=64 f32: p=1 %zu, p=4 %zu, p=16 %zu (p=1/p=16 = %.3f)  %s\n",
               bytes[0], bytes[1], bytes[2], r, *failures == f0 ? "ok" : "FAILED");
    }
}

/* ---------------------------------------------------------------- 7. bad input */

static void group_errors(int *failures)
{
    const int64_t b = 1, n = 16, h = 2, d = 4;
    const int64_t ne = b * n * h * d;
    double *q = dalloc(ne), *k = dalloc(ne), *v = dalloc(ne), *o = dalloc(ne), *g = dalloc(ne);
    double *g2 = dalloc(ne + h * d), *lse = dalloc(b * h * (n + 1));
    double *dq = dalloc(ne), *dk = dalloc(ne), *dv = dalloc(ne);
    ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F64, b, n, h, d);
    ringattn_tensor K = ringattn_tensor_bnhd(k, RINGATTN_F64, b, n, h, d);
    ringattn_tensor V = ringattn_tensor_bnhd(v, RINGATTN_F64, b, n, h, d);
    ringattn_tensor O = ringattn_tensor_bnhd(o, RINGATTN_F64, b, n, h, d);
    ringattn_tensor G = ringattn_tensor_bnhd(g, RINGATTN_F64, b, n, h, d);
    ringattn_tensor L = ringattn_tensor_lse(lse, RINGATTN_F64, b, h, n);
    ringattn_tensor DQ = ringattn_tensor_bnhd(dq, RINGATTN_F64, b, n, h, d);
    ringattn_tensor DK = ringattn_tensor_bnhd(dk, RINGATTN_F64, b, n, h, d);
    ringattn_tensor DV = ringattn_tensor_bnhd(dv, RINGATTN_F64, b, n, h, d);
    ringattn_tensor G_bad = ringattn_tensor_bnhd(g2, RINGATTN_F64, b, n + 1, h, d);
    ringattn_tensor L_bad = ringattn_tensor_lse(lse, RINGATTN_F64, b, h, n + 1);
    ringattn_tensor L_swapped = ringattn_tensor_lse(lse, RINGATTN_F64, b, n, h);   /* [b, n, h] */
    ringattn_tensor DQ_alias = DK, DQ_zero = DQ;
    ringattn_config cfg = ringattn_default_config();
    char detail[256];
    int f0 = *failures, i, icase, ncase = 7;
    fill(q, ne, 1, 0); fill(k, ne, 1, 0); fill(v, ne, 1, 0); fill(g, ne, 1, 0); fill(g2, ne + h * d, 1, 0);
    cfg.compute = RINGATTN_F64; cfg.ring_size = 2;
    cfg.error_detail = detail; cfg.error_detail_size = sizeof detail;
    CHECK(ringattn_forward(&cfg, &Q, &K, &V, &O, &L) == RINGATTN_OK, "forward");
    DQ_alias.data = dk;              /* dq and dk share storage */
    DQ_zero.stride[1] = 0;           /* every sequence position written to one place */
    for (icase = 0; icase < ncase; icase++) {
        int st = 0, want = 0; const char *what = "";
        for (i = 0; i < ne; i++) dq[i] = dk[i] = dv[i] = PAD_SENTINEL;
        detail[0] = 0;
        switch (icase) {
        case 0: what = "NULL lse"; want = RINGATTN_ENULL;
            st = ringattn_backward(&cfg, &Q, &K, &V, &O, NULL, &G, &DQ, &DK, &DV); break;
        case 1: what = "NULL dout"; want = RINGATTN_ENULL;
            st = ringattn_backward(&cfg, &Q, &K, &V, &O, &L, NULL, &DQ, &DK, &DV); break;
        case 2: what = "dout shape [b, n+1, h, d]"; want = RINGATTN_ESHAPE;
            st = ringattn_backward(&cfg, &Q, &K, &V, &O, &L, &G_bad, &DQ, &DK, &DV); break;
        case 3: what = "lse shape [b, h, n+1, 1]"; want = RINGATTN_ESHAPE;
            st = ringattn_backward(&cfg, &Q, &K, &V, &O, &L_bad, &G, &DQ, &DK, &DV); break;
        case 4: what = "lse shape [b, n, h, 1]"; want = RINGATTN_ESHAPE;
            st = ringattn_backward(&cfg, &Q, &K, &V, &O, &L_swapped, &G, &DQ, &DK, &DV); break;
        case 5: what = "dq aliasing dk"; want = RINGATTN_EALIAS;
            st = ringattn_backward(&cfg, &Q, &K, &V, &O, &L, &G, &DQ_alias, &DK, &DV); break;
        default: what = "dq with a zero stride"; want = RINGATTN_ESTRIDE;
            st = ringattn_backward(&cfg, &Q, &K, &V, &O, &L, &G, &DQ_zero, &DK, &DV); break;
        }
        CHECK(st == want, "%s: status %d (%s), expected %d", what, st, ringattn_strerror(st), want);
        for (i = 0; i < ne; i++)
            if (dq[i] != PAD_SENTINEL || dk[i] != PAD_SENTINEL || dv[i] != PAD_SENTINEL) break;
        CHECK(i == ne, "%s: an output was written before the call failed", what);
        CHECK(detail[0] != 0, "%s: no error_detail", what);
    }
    /* and the same arguments, made right, succeed */
    CHECK(ringattn_backward(&cfg, &Q, &K, &V, &O, &L, &G, &DQ, &DK, &DV) == RINGATTN_OK, "valid call");
    printf("7. bad input:            %3d cases rejected with outputs untouched  %s\n", ncase,
           *failures == f0 ? "ok" : "FAILED");
    free(q); free(k); free(v); free(o); free(g); free(g2); free(lse); free(dq); free(dk); free(dv);
}

/* ---------------------------------------------------------------- main */

int main(void)
{
    int nfail = 0, *failures = &nfail;
    double worst_f64, worst_fd, worst_f32;
    rng = rng_seed(20260512);
    worst_f64 = group_oracle(failures);
    worst_fd = group_fd(failures);
    worst_f32 = group_f32(failures);
    group_masked(failures);
    group_threads(failures);
    group_stats(failures);
    group_errors(failures);
    printf("summary: worst f64 error %.3g (tol %.0e), worst FD error %.3g (tol %.0e), "
           "worst f32 ratio %.3g (tol 1)\n", worst_f64, TOL_F64, worst_fd, TOL_FD, worst_f32);
    printf("%s (%d failures)\n", nfail ? "FAILED" : "ok", nfail);
    return nfail ? TEST_FAIL : TEST_PASS;
}
