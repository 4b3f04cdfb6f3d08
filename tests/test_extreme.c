/* test_extreme.c - the edges: extreme values, degenerate and huge shapes, masked NaN/Inf, and
   the ring's error as p grows.

   Groups (one line each; exit 1 on any failure):
     1. logits up to +-1e4 (d = 1 and d = 8): no overflow, every output finite, lse within
        1e-12 relative of the oracle in f64 (f32: the policy of docs/golden.md), backward finite and
        within 1e-12 of the gradient scale in f64;
     2. scales: tiny (1e-30, 1e-300: a plain average of the values) and huge (f64 1e300, f32
        1e30: the softmax is one-hot) against the oracle;
     3. all-masked rows (bottom-right causal with nq > nk, a window that misses every key,
        dilated rows outside every pattern): out exactly 0, lse -inf, dq rows exactly 0, all
        gradients finite and equal to the oracle's;
     4. n = 1, d = 1, d = 512 against the oracle (f64 and f32);
     5. byte counts that overflow 64 bits (shapes, strides, the plan) are refused with
        RINGATTN_EOVERFLOW and nothing is written;
     6. masked positions never influence a row: NaN / Inf planted in keys and values a row
        cannot see (causal future, outside a window, another dilated segment or position,
        another packed sequence when varlen is implemented) leave the row bit-identical to the
        clean run; planted where the row can see them they reach it (NaN, not a silent 0),
        and the same way on every run;
     7. the f32 error does not grow with the ring: over a grid of (n, d, causal), the max error
        / max|V| at p = 16 is within 2x the error at p = 1; the table of error vs p is printed.
   Exit 0 pass, 1 fail. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"
#include "ringattn_ref.h"
#include "test_util.h"

/* ---------------------------------------------------------------- a problem in f64 storage */
typedef struct {
    int64_t b, nq, nk, h, hk, d, dv;
    double scale;                        /* 0: 1/sqrt(d) */
    int causal, wl, wr, p, threads, groups;
    const int64_t *seg, *rate;
    ringattn_mix mix;
    ringattn_dtype ct;
} xp;

typedef struct {
    double *q, *k, *v, *g;               /* inputs (g = dout)                               */
    double *o, *l, *dq, *dk, *dv;        /* library outputs                                 */
    double *ro, *rl, *rdq, *rdk, *rdv;   /* oracle                                          */
    int64_t nq_, nk_, nv_, no_, nl_;
} xd;

static double *dal(int64_t n)
{
    double *p = (double *)calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    if (!p) { printf("out of memory\n"); exit(1); }
    return p;
}

static void xd_new(const xp *P, xd *D, uint64_t seed)
{
    D->nq_ = P->b * P->nq * P->h * P->d; D->nk_ = P->b * P->nk * P->hk * P->d;
    D->nv_ = P->b * P->nk * P->hk * P->dv; D->no_ = P->b * P->nq * P->h * P->dv; D->nl_ = P->b * P->h * P->nq;
    D->q = dal(D->nq_); D->k = dal(D->nk_); D->v = dal(D->nv_); D->g = dal(D->no_);
    D->o = dal(D->no_); D->l = dal(D->nl_); D->dq = dal(D->nq_); D->dk = dal(D->nk_); D->dv = dal(D->nv_);
    D->ro = dal(D->no_); D->rl = dal(D->nl_); D->rdq = dal(D->nq_); D->rdk = dal(D->nk_); D->rdv = dal(D->nv_);
    fill_normal(D->q, D->nq_, seed); fill_normal(D->k, D->nk_, seed + 1);
    fill_normal(D->v, D->nv_, seed + 2); fill_normal(D->g, D->no_, seed + 3);
}
static void xd_free(xd *D)
{
    free(D->q); free(D->k); free(D->v); free(D->g); free(D->o); free(D->l); free(D->dq); free(D->dk);
    free(D->dv); free(D->ro); free(D->rl); free(D->rdq); free(D->rdk); free(D->rdv);
}

static double resolved_scale(const xp *P) { return P->scale != 0 ? P->scale : 1.0 / sqrt((double)P->d); }

static void ref_of(const xp *P, ref_problem *r)
{
    memset(r, 0, sizeof *r);
    r->b = P->b; r->nq = P->nq; r->nk = P->nk; r->h = P->h; r->hk = P->hk; r->d = P->d; r->dv = P->dv;
    r->scale = resolved_scale(P); r->causal = P->causal; r->window_left = P->wl; r->window_right = P->wr;
    r->num_groups = P->groups; r->segment_lengths = P->seg; r->dilation_rates = P->rate; r->mix = (int)P->mix;
}

static void cfg_of(const xp *P, ringattn_config *c)
{
    *c = ringattn_default_config();
    c->scale = P->scale; c->causal = P->causal; c->window_left = P->wl; c->window_right = P->wr;
    c->ring_size = P->p; c->num_threads = P->threads; c->compute = P->ct;
    if (P->groups) { c->num_groups = P->groups; c->segment_lengths = P->seg; c->dilation_rates = P->rate; c->mix = P->mix; }
}

/* library forward (and backward, from its own out / lse) on f64 storage */
static int lib_run(const xp *P, xd *D, int backward)
{
    ringattn_tensor Q = ringattn_tensor_bnhd(D->q, RINGATTN_F64, P->b, P->nq, P->h, P->d);
    ringattn_tensor K = ringattn_tensor_bnhd(D->k, RINGATTN_F64, P->b, P->nk, P->hk, P->d);
    ringattn_tensor V = ringattn_tensor_bnhd(D->v, RINGATTN_F64, P->b, P->nk, P->hk, P->dv);
    ringattn_tensor O = ringattn_tensor_bnhd(D->o, RINGATTN_F64, P->b, P->nq, P->h, P->dv);
    ringattn_tensor L = ringattn_tensor_lse(D->l, RINGATTN_F64, P->b, P->h, P->nq);
    ringattn_tensor G = ringattn_tensor_bnhd(D->g, RINGATTN_F64, P->b, P->nq, P->h, P->dv);
    ringattn_tensor DQ = ringattn_tensor_bnhd(D->dq, RINGATTN_F64, P->b, P->nq, P->h, P->d);
    ringattn_tensor DK = ringattn_tensor_bnhd(D->dk, RINGATTN_F64, P->b, P->nk, P->hk, P->d);
    ringattn_tensor DV = ringattn_tensor_bnhd(D->dv, RINGATTN_F64, P->b, P->nk, P->hk, P->dv);
    ringattn_config cfg;
    int st;
    cfg_of(P, &cfg);
    st = ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
    if (st != RINGATTN_OK || !backward) return st;
    return ringattn_backward(&cfg, &Q, &K, &V, &O, &L, &G, &DQ, &DK, &DV);
}

static int ref_run(const xp *P, xd *D, int backward)
{
    ref_problem r;
    ref_of(P, &r);
    if (ref_forward(&r, D->q, D->k, D->v, D->ro, D->rl) != 0) return -1;
    if (backward && ref_backward(&r, D->q, D->k, D->v, D->g, D->rdq, D->rdk, D->rdv) != 0) return -1;
    return 0;
}

static int all_finite(const double *x, int64_t n)
{
    int64_t i;
    for (i = 0; i < n; i++) if (!isfinite(x[i])) return 0;
    return 1;
}

/* forward (+ backward) vs the oracle: f64 1e-12 of the scale; f32 the policy of docs/golden.md (and the
   gradient scale version of test_backward.c); returns the worst error / tolerance */
static double check_vs_oracle(const char *what, const xp *P, xd *D, int backward, int *failures)
{
    int64_t dims[4];
    test_tol t;
    test_cmp c;
    double worst = 0, vmax = max_abs_f64(D->v, D->nv_);
    int st = lib_run(P, D, backward);
    CHECK(st == RINGATTN_OK, "%s: library returned %d", what, st);
    CHECK(ref_run(P, D, backward) == 0, "%s: oracle failed", what);
    if (st != RINGATTN_OK) return INFINITY;
    dims[0] = P->b; dims[1] = P->nq; dims[2] = P->h; dims[3] = P->dv;
    if (P->ct == RINGATTN_F64) t = tol_f64_out(max_abs_f64(D->ro, D->no_), vmax);
    else t = tol_f32_out(tol_smax(D->q, D->k, P->b, P->nq, P->nk, P->h, P->hk, P->d, resolved_scale(P)), vmax, P->d,
                         P->nk * (P->groups && P->mix == RINGATTN_MIX_LSE ? P->groups : 1));
    c = compare_report("out", D->o, D->ro, dims, "bnhd", t);
    CHECK(c.bad == 0, "%s: out: %lld elements out of tolerance", what, (long long)c.bad);
    if (c.max_frac > worst) worst = c.max_frac;
    dims[1] = P->h; dims[2] = P->nq; dims[3] = 1;
    if (P->ct == RINGATTN_F64) t = tol_f64_lse(max_abs_finite_f64(D->rl, D->nl_));
    else t = tol_f32_lse(tol_smax(D->q, D->k, P->b, P->nq, P->nk, P->h, P->hk, P->d, resolved_scale(P)), P->d,
                         P->nk * (P->groups && P->mix == RINGATTN_MIX_LSE ? P->groups : 1));
    c = compare_report("lse", D->l, D->rl, dims, "bhn.", t);
    CHECK(c.bad == 0, "%s: lse: %lld elements out of tolerance", what, (long long)c.bad);
    if (c.max_frac > worst) worst = c.max_frac;
    if (backward) {
        const double *got[3], *ref[3]; int64_t n[3], i; const char *nm[3] = { "dq", "dk", "dv" };
        got[0] = D->dq; got[1] = D->dk; got[2] = D->dv; ref[0] = D->rdq; ref[1] = D->rdk; ref[2] = D->rdv;
        n[0] = D->nq_; n[1] = D->nk_; n[2] = D->nv_;
        for (i = 0; i < 3; i++) {
            double gs = max_abs_f64(ref[i], n[i]);
            CHECK(all_finite(got[i], n[i]), "%s: %s has a non-finite element", what, nm[i]);
            dims[0] = 1; dims[1] = 1; dims[2] = 1; dims[3] = n[i];
            t.abs = 1e-12 * (gs > 1 ? gs : 1); t.rel = 0;
            if (P->ct == RINGATTN_F64) {
                c = compare_report(nm[i], got[i], ref[i], dims, "...x", t);
                CHECK(c.bad == 0, "%s: %s: %lld elements out of tolerance", what, nm[i], (long long)c.bad);
                if (c.max_frac > worst) worst = c.max_frac;
            }
        }
    }
    return worst;
}

/* ---------------------------------------------------------------- 1. logits up to +-1e4 */
/* the largest |q_i . k_j| over (batch, q head, i, j), scale 1 */
static double max_score(const xp *P, const xd *D)
{
    int64_t bb, hh, i, j, c;
    double m = 0;
    for (bb = 0; bb < P->b; bb++)
    for (hh = 0; hh < P->h; hh++)
    for (i = 0; i < P->nq; i++)
    for (j = 0; j < P->nk; j++) {
        const double *q = D->q + ((bb * P->nq + i) * P->h + hh) * P->d;
        const double *k = D->k + ((bb * P->nk + j) * P->hk + hh / (P->h / P->hk)) * P->d;
        double s = 0;
        for (c = 0; c < P->d; c++) s += q[c] * k[c];
        if (fabs(s) > m) m = fabs(s);
    }
    return m;
}

static void group_logits(int *failures)
{
    static const int ps[] = { 1, 3, 4 };
    int ip, ic, id, f0 = *failures, count = 0;
    double worst = 0;
    for (id = 0; id < 2; id++)
    for (ic = 0; ic < 2; ic++)
    for (ip = 0; ip < 3; ip++) {
        xp P; xd D; int64_t i; double amp;
        char what[96];
        memset(&P, 0, sizeof P);
        P.b = 1; P.nq = 12; P.nk = 12; P.h = 2; P.hk = 2; P.d = id ? 8 : 1; P.dv = 3;
        P.scale = 1.0; P.causal = 1; P.wl = P.wr = -1; P.p = ps[ip]; P.threads = 2;
        P.ct = ic ? RINGATTN_F32 : RINGATTN_F64;
        xd_new(&P, &D, 500 + (uint64_t)(id * 10 + ic));
        /* scale q so that the largest |score| is exactly about 1e4 */
        amp = 1e4 / max_score(&P, &D);
        for (i = 0; i < D.nq_; i++) D.q[i] *= sqrt(amp);
        for (i = 0; i < D.nk_; i++) D.k[i] *= sqrt(amp);
        if (ic) { round_to_f32(D.q, D.nq_); round_to_f32(D.k, D.nk_); round_to_f32(D.v, D.nv_); round_to_f32(D.g, D.no_); }
        sprintf(what, "logits 1e4 d=%lld %s p=%d", (long long)P.d, ic ? "f32" : "f64", P.p);
        {
            double w = check_vs_oracle(what, &P, &D, !ic, failures), smax = max_score(&P, &D);
            CHECK(smax > 9e3 && smax < 1.1e4, "%s: the largest |score| is %g, not about 1e4", what, smax);
            CHECK(all_finite(D.o, D.no_) && all_finite(D.l, D.nl_), "%s: non-finite output", what);
            if (w > worst) worst = w;
        }
        count++;
        xd_free(&D);
    }
    printf("1. logits to +-1e4:      %3d cases, worst error / tolerance %.3g  %s\n", count, worst,
           *failures == f0 ? "ok" : "FAIL");
}

/* ---------------------------------------------------------------- 2. tiny and huge scales */
static void group_scales(int *failures)
{
    static const double sc64[] = { 1e-30, 1e-300, 1e300 }, sc32[] = { 1e-30, 1e30 };
    int i, f0 = *failures, count = 0;
    for (i = 0; i < 5; i++) {
        xp P; xd D; int64_t j, r, c;
        char what[96];
        int f32 = i >= 3;
        double s = f32 ? sc32[i - 3] : sc64[i];
        memset(&P, 0, sizeof P);
        P.b = 1; P.nq = 10; P.nk = 10; P.h = 1; P.hk = 1; P.d = 4; P.dv = 4;
        P.scale = s; P.causal = 0; P.wl = P.wr = -1; P.p = 3; P.threads = 1;
        P.ct = f32 ? RINGATTN_F32 : RINGATTN_F64;
        xd_new(&P, &D, 600 + (uint64_t)i);
        if (f32) { round_to_f32(D.q, D.nq_); round_to_f32(D.k, D.nk_); round_to_f32(D.v, D.nv_); }
        sprintf(what, "scale %g %s", s, f32 ? "f32" : "f64");
        CHECK(lib_run(&P, &D, 0) == RINGATTN_OK, "%s: call failed", what);
        CHECK(ref_run(&P, &D, 0) == 0, "%s: oracle failed", what);
        CHECK(all_finite(D.o, D.no_) && all_finite(D.l, D.nl_), "%s: non-finite output", what);
        for (r = 0; r < P.nq; r++) {
            double err = 0, lerr = fabs(D.l[r] - D.rl[r]), tol, ltol;
            for (c = 0; c < P.dv; c++) err = fmax(err, fabs(D.o[r * P.dv + c] - D.ro[r * P.dv + c]));
            if (s < 1) {   /* every weight is 1 / nk: the mean of V, lse = log nk (+ tiny) */
                tol = (f32 ? TEST_U32 * (double)(P.nk + 16) : 1e-12) * max_abs_f64(D.v, D.nv_);
                ltol = f32 ? TEST_U32 * (double)(P.nk + 16) : 1e-12;
            } else {       /* one-hot: the value of the best key; lse = the best score */
                tol = (f32 ? 1e-6 : 1e-12) * max_abs_f64(D.v, D.nv_);
                ltol = (f32 ? 4 * TEST_U32 : 1e-12) * fabs(D.rl[r]);
            }
            CHECK(err <= tol, "%s: row %lld: out error %.3g > %.3g", what, (long long)r, err, tol);
            CHECK(lerr <= ltol, "%s: row %lld: lse %.17g vs %.17g", what, (long long)r, D.l[r], D.rl[r]);
        }
        (void)j;
        count++;
        xd_free(&D);
    }
    printf("2. tiny and huge scales: %3d cases (1e-300 .. 1e300)  %s\n", count, *failures == f0 ? "ok" : "FAIL");
}

/* ---------------------------------------------------------------- 3. all-masked rows */
static void group_masked_rows(int *failures)
{
    static const int64_t seg[2] = { 4, 8 }, rate[2] = { 2, 4 };
    int kind, ic, f0 = *failures, count = 0, empty_total = 0;
    for (kind = 0; kind < 3; kind++)
    for (ic = 0; ic < 2; ic++) {
        xp P; xd D; int64_t bb, hh, i, c, empty = 0;
        char what[96];
        memset(&P, 0, sizeof P);
        P.b = 2; P.h = 2; P.hk = 1; P.d = 5; P.dv = 3; P.threads = 2; P.wl = P.wr = -1;
        P.ct = ic ? RINGATTN_F32 : RINGATTN_F64;
        if (kind == 0) { P.nq = 13; P.nk = 6; P.causal = 1; P.p = 3; }                /* nq > nk            */
        if (kind == 1) { P.nq = 9; P.nk = 12; P.wl = 0; P.wr = 0; P.causal = 2; P.p = 4; }  /* window misses keys */
        if (kind == 2) { P.nq = P.nk = 16; P.groups = 2; P.seg = seg; P.rate = rate; P.p = 4; }   /* dilated       */
        if (kind == 1) P.nk = 5;   /* top-left, window 0: query i sees key i only, rows >= 5 see none */
        xd_new(&P, &D, 700 + (uint64_t)(kind * 2 + ic));
        if (ic) { round_to_f32(D.q, D.nq_); round_to_f32(D.k, D.nk_); round_to_f32(D.v, D.nv_); round_to_f32(D.g, D.no_); }
        sprintf(what, "empty rows kind %d %s", kind, ic ? "f32" : "f64");
        CHECK(lib_run(&P, &D, 1) == RINGATTN_OK, "%s: call failed", what);
        CHECK(ref_run(&P, &D, 1) == 0, "%s: oracle failed", what);
        for (bb = 0; bb < P.b; bb++)
        for (hh = 0; hh < P.h; hh++)
        for (i = 0; i < P.nq; i++) {
            int64_t li = (bb * P.h + hh) * P.nq + i;
            if (D.rl[li] != -INFINITY) continue;
            empty++;
            CHECK(D.l[li] == -INFINITY, "%s: row b=%lld h=%lld i=%lld: lse %g, want -inf", what, (long long)bb,
                  (long long)hh, (long long)i, D.l[li]);
            for (c = 0; c < P.dv; c++)
                CHECK(D.o[((bb * P.nq + i) * P.h + hh) * P.dv + c] == 0.0, "%s: empty row output not 0", what);
            for (c = 0; c < P.d; c++)
                CHECK(D.dq[((bb * P.nq + i) * P.h + hh) * P.d + c] == 0.0, "%s: empty row dq not 0", what);
        }
        CHECK(empty > 0, "%s: no empty row in the case", what);
        CHECK(all_finite(D.dq, D.nq_) && all_finite(D.dk, D.nk_) && all_finite(D.dv, D.nv_),
              "%s: non-finite gradient", what);
        CHECK(all_finite(D.o, D.no_), "%s: non-finite output", what);
        {   /* and the rest equals the oracle */
            double w = check_vs_oracle(what, &P, &D, 1, failures);
            (void)w;
        }
        empty_total += (int)empty;
        count++;
        xd_free(&D);
    }
    printf("3. all-masked rows:      %3d cases, %d empty rows: out 0, lse -inf, dq 0, finite gradients  %s\n",
           count, empty_total, *failures == f0 ? "ok" : "FAIL");
}

/* ---------------------------------------------------------------- 4. n = 1, d = 1, d = 512 */
static void group_shapes(int *failures)
{
    int i, ic, f0 = *failures, count = 0;
    double worst = 0;
    for (i = 0; i < 4; i++)
    for (ic = 0; ic < 2; ic++) {
        xp P; xd D; char what[96];
        memset(&P, 0, sizeof P);
        P.b = 1; P.h = 2; P.hk = 1; P.wl = P.wr = -1; P.threads = 2; P.ct = ic ? RINGATTN_F32 : RINGATTN_F64;
        switch (i) {
        case 0: P.nq = 1; P.nk = 1; P.d = 4; P.dv = 4; P.p = 1; break;            /* n = 1            */
        case 1: P.nq = 1; P.nk = 9; P.d = 3; P.dv = 2; P.p = 1; P.causal = 1; break;   /* one query     */
        case 2: P.nq = 17; P.nk = 17; P.d = 1; P.dv = 1; P.p = 4; P.causal = 1; break; /* d = 1         */
        default: P.nq = 16; P.nk = 16; P.d = 512; P.dv = 512; P.p = 4; P.causal = 2; break; /* d = 512 */
        }
        xd_new(&P, &D, 800 + (uint64_t)(i * 2 + ic));
        if (ic) { round_to_f32(D.q, D.nq_); round_to_f32(D.k, D.nk_); round_to_f32(D.v, D.nv_); round_to_f32(D.g, D.no_); }
        sprintf(what, "shape nq=%lld nk=%lld d=%lld %s", (long long)P.nq, (long long)P.nk, (long long)P.d, ic ? "f32" : "f64");
        {
            double w = check_vs_oracle(what, &P, &D, 1, failures);
            if (w > worst) worst = w;
        }
        count++;
        xd_free(&D);
    }
    printf("4. n = 1, d = 1, d = 512: %2d cases, worst error / tolerance %.3g  %s\n", count, worst,
           *failures == f0 ? "ok" : "FAIL");
}

/* ---------------------------------------------------------------- 5. overflowing sizes */
static void group_overflow(int *failures)
{
    double q[16], k[16], v[16], o[16], l[16];
    ringattn_config cfg = ringattn_default_config();
    ringattn_tensor Q, K, V, O, L;
    ringattn_shape sh;
    ringattn_plan_info plan;
    char err[160];
    int i, f0 = *failures, count = 0;
    for (i = 0; i < 16; i++) { q[i] = k[i] = v[i] = 0.5; }
    cfg.error_detail = err; cfg.error_detail_size = sizeof err;
    for (i = 0; i < 6; i++) {
        int st;
        Q = ringattn_tensor_bnhd(q, RINGATTN_F64, 1, 4, 1, 4);
        K = ringattn_tensor_bnhd(k, RINGATTN_F64, 1, 4, 1, 4);
        V = ringattn_tensor_bnhd(v, RINGATTN_F64, 1, 4, 1, 4);
        O = ringattn_tensor_bnhd(o, RINGATTN_F64, 1, 4, 1, 4);
        L = ringattn_tensor_lse(l, RINGATTN_F64, 1, 1, 4);
        switch (i) {
        case 0: Q = ringattn_tensor_bnhd(q, RINGATTN_F64, (int64_t)1 << 20, (int64_t)1 << 20, (int64_t)1 << 20, 4); break;
        case 1: Q.stride[1] = (int64_t)1 << 62; break;                      /* extent overflows     */
        case 2: K.stride[1] = (int64_t)1 << 61; break;                      /* bytes of extent      */
        case 3: O.stride[1] = INT64_MIN; break;                             /* |stride| overflows   */
        case 4: V.stride[0] = INT64_MAX; V.shape[0] = 1; V.stride[1] = INT64_MAX / 2; break;
        default: L.stride[2] = (int64_t)1 << 62; break;                     /* an output's extent   */
        }
        fill_sentinel_f64(o, 16); fill_sentinel_f64(l, 16);
        err[0] = 0;
        st = ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
        CHECK(st == RINGATTN_EOVERFLOW, "overflow case %d: status %d (%s), want RINGATTN_EOVERFLOW", i, st, err);
        CHECK(all_sentinel_f64(o, 16) && all_sentinel_f64(l, 16), "overflow case %d: an output was written", i);
        count++;
    }
    /* the plan: a per-member workspace beyond 2^64 bytes */
    sh.batch = (int64_t)1 << 21; sh.seq_q = sh.seq_k = (int64_t)1 << 30; sh.heads_q = sh.heads_kv = (int64_t)1 << 10;
    sh.dim_qk = sh.dim_v = 1024;
    cfg.ring_size = 1;
    {
        int st = ringattn_plan(&cfg, &sh, 0, &plan);
        CHECK(st == RINGATTN_EOVERFLOW, "plan of 2^80 bytes: status %d, want RINGATTN_EOVERFLOW", st);
        st = ringattn_plan(&cfg, &sh, 1, &plan);
        CHECK(st == RINGATTN_EOVERFLOW, "backward plan of 2^80 bytes: status %d, want RINGATTN_EOVERFLOW", st);
        count += 2;
    }
    printf("5. overflowing sizes:    %3d cases refused with RINGATTN_EOVERFLOW, nothing written  %s\n", count,
           *failures == f0 ? "ok" : "FAIL");
}

/* ---------------------------------------------------------------- 6. masked NaN / Inf */

/* may query i of q head hh see key j? (dense rules of docs/semantics.md, and the dilated patterns) */
static int visible(const xp *P, int64_t hh, int64_t i, int64_t j)
{
    ref_problem r;
    int g;
    ref_of(P, &r);
    if (P->groups == 0) return ref_visible(&r, i, j);
    for (g = 0; g < P->groups; g++) {
        int64_t s = P->seg[g], rt = P->rate[g], off, G = P->groups, gi;
        if (P->mix == RINGATTN_MIX_HEAD_GROUPS) {     /* head hh belongs to one group */
            int64_t base = P->h / G, rem = P->h % G;
            gi = hh < rem * (base + 1) ? hh / (base + 1) : rem + (hh - rem * (base + 1)) / base;
            if (gi != g) continue;
            off = g % rt;
        } else off = hh % rt;
        if (i / s != j / s) continue;
        if (i % s < off || (i % s - off) % rt != 0 || j % s < off || (j % s - off) % rt != 0) continue;
        if (P->causal && j > i) continue;
        return 1;
    }
    return 0;
}

/* plant `bad` at key j0 (every dimension of k or v, every batch and kv head) and check every
   row: unseen -> bit-identical to the clean run, seen -> non-finite, twice the same bits */
static void nan_case(const char *name, const xp *P, int64_t j0, double bad, int in_v, int *rows_same,
                     int *rows_hit, int *failures)
{
    xd D; int64_t bb, hh, i, c, kh;
    double *o0, *l0, *o1, *l1;
    char what[160];
    sprintf(what, "%s: %s in %s at key %lld, %s p=%d", name, bad != bad ? "NaN" : "Inf", in_v ? "v" : "k",
            (long long)j0, P->ct == RINGATTN_F32 ? "f32" : "f64", P->p);
    xd_new(P, &D, 900);
    CHECK(lib_run(P, &D, 0) == RINGATTN_OK, "%s: clean call failed", what);
    o0 = dal(D.no_); l0 = dal(D.nl_); o1 = dal(D.no_); l1 = dal(D.nl_);
    memcpy(o0, D.o, sizeof(double) * (size_t)D.no_); memcpy(l0, D.l, sizeof(double) * (size_t)D.nl_);
    for (bb = 0; bb < P->b; bb++)
        for (kh = 0; kh < P->hk; kh++) {
            if (in_v) for (c = 0; c < P->dv; c++) D.v[((bb * P->nk + j0) * P->hk + kh) * P->dv + c] = bad;
            else for (c = 0; c < P->d; c++) D.k[((bb * P->nk + j0) * P->hk + kh) * P->d + c] = bad;
        }
    CHECK(lib_run(P, &D, 0) == RINGATTN_OK, "%s: call failed", what);
    memcpy(o1, D.o, sizeof(double) * (size_t)D.no_); memcpy(l1, D.l, sizeof(double) * (size_t)D.nl_);
    CHECK(lib_run(P, &D, 0) == RINGATTN_OK, "%s: second call failed", what);
    CHECK(memcmp(o1, D.o, sizeof(double) * (size_t)D.no_) == 0 && memcmp(l1, D.l, sizeof(double) * (size_t)D.nl_) == 0,
          "%s: two runs with the same NaN/Inf differ", what);
    for (bb = 0; bb < P->b; bb++)
    for (hh = 0; hh < P->h; hh++)
    for (i = 0; i < P->nq; i++) {
        const double *ro0 = o0 + ((bb * P->nq + i) * P->h + hh) * P->dv, *ro1 = o1 + ((bb * P->nq + i) * P->h + hh) * P->dv;
        int64_t li = (bb * P->h + hh) * P->nq + i;
        if (!visible(P, hh, i, j0)) {
            int same = memcmp(ro0, ro1, sizeof(double) * (size_t)P->dv) == 0 && memcmp(&l0[li], &l1[li], sizeof(double)) == 0;
            CHECK(same, "%s: row b=%lld h=%lld i=%lld cannot see key %lld but changed", what, (long long)bb,
                  (long long)hh, (long long)i, (long long)j0);
            (*rows_same)++;
        } else {
            int hit = 0;
            for (c = 0; c < P->dv; c++) hit += !isfinite(ro1[c]);
            if (bad != bad && !in_v) {      /* a NaN score: the whole row is NaN */
                for (c = 0; c < P->dv; c++)
                    CHECK(ro1[c] != ro1[c], "%s: row b=%lld h=%lld i=%lld sees the NaN key but out[%lld] = %g",
                          what, (long long)bb, (long long)hh, (long long)i, (long long)c, ro1[c]);
                CHECK(l1[li] != l1[li], "%s: row i=%lld sees the NaN key but lse = %g", what, (long long)i, l1[li]);
            }
            /* an infinite key gives an infinite (or NaN) score: -inf is a weight of 0 and may
               leave the row finite, so only NaN keys and non-finite values must show */
            if (!(in_v == 0 && isinf(bad)))
            CHECK(hit > 0, "%s: row b=%lld h=%lld i=%lld sees the bad key but its output is finite", what,
                  (long long)bb, (long long)hh, (long long)i);
            (*rows_hit)++;
        }
    }
    free(o0); free(l0); free(o1); free(l1);
    xd_free(&D);
}

/* varlen (packed sequences), when this build implements it: NaN in sequence 1's keys must not
   reach sequence 0's rows. Returns 0 when varlen is refused as unsupported. */
static int varlen_case(ringattn_dtype ct, int *rows_same, int *failures)
{
    int64_t n = 12, h = 2, d = 4, i, c;
    int64_t cu[3] = { 0, 5, 12 };
    double *q = dal(n * h * d), *k = dal(n * h * d), *v = dal(n * h * d), *o0 = dal(n * h * d), *o1 = dal(n * h * d);
    double *l0 = dal(h * n), *l1 = dal(h * n);
    ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F64, 1, n, h, d), K = ringattn_tensor_bnhd(k, RINGATTN_F64, 1, n, h, d);
    ringattn_tensor V = ringattn_tensor_bnhd(v, RINGATTN_F64, 1, n, h, d), O = ringattn_tensor_bnhd(o0, RINGATTN_F64, 1, n, h, d);
    ringattn_tensor L = ringattn_tensor_lse(l0, RINGATTN_F64, 1, h, n);
    ringattn_config cfg = ringattn_default_config();
    int st, ok = 1;
    fill_normal(q, n * h * d, 31); fill_normal(k, n * h * d, 32); fill_normal(v, n * h * d, 33);
    cfg.num_seqs = 2; cfg.cu_seqlens_q = cu; cfg.cu_seqlens_k = cu; cfg.ring_size = 3; cfg.compute = ct;
    st = ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
    if (st == RINGATTN_EUNSUPPORTED) ok = 0;
    else {
        CHECK(st == RINGATTN_OK, "varlen: clean call returned %d", st);
        for (i = 6; i < 12; i += 3) for (c = 0; c < h * d; c++) { k[i * h * d + c] = NAN; v[(i + 1) * h * d + c] = INFINITY; }
        O.data = o1; L.data = l1;
        st = ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
        CHECK(st == RINGATTN_OK, "varlen: call returned %d", st);
        CHECK(memcmp(o0, o1, sizeof(double) * (size_t)(5 * h * d)) == 0, "varlen: NaN in sequence 1 changed sequence 0");
        for (c = 0; c < h; c++)
            CHECK(memcmp(l0 + c * n, l1 + c * n, 5 * sizeof(double)) == 0, "varlen: NaN in sequence 1 changed an lse of sequence 0");
        *rows_same += (int)(5 * h);
    }
    free(q); free(k); free(v); free(o0); free(o1); free(l0); free(l1);
    return ok;
}

static void group_nan(int *failures)
{
    static const int64_t seg[3] = { 4, 8, 16 }, rate[3] = { 1, 2, 4 };
    int f0 = *failures, same = 0, hit = 0, ic, ip, cases = 0, varlen = 0;
    static const int ps[] = { 1, 4 };
    for (ic = 0; ic < 2; ic++)
    for (ip = 0; ip < 2; ip++) {
        xp P;
        memset(&P, 0, sizeof P);
        P.ct = ic ? RINGATTN_F32 : RINGATTN_F64;
        P.b = 2; P.nq = 16; P.nk = 16; P.h = 2; P.hk = 2; P.d = 4; P.dv = 3; P.wl = P.wr = -1;
        P.p = ps[ip]; P.threads = 2;
        /* causal future */
        P.causal = 1;
        nan_case("causal future", &P, 10, NAN, 0, &same, &hit, failures);
        nan_case("causal future", &P, 10, INFINITY, 1, &same, &hit, failures);
        nan_case("causal future", &P, 3, -INFINITY, 1, &same, &hit, failures);
        nan_case("causal future", &P, 12, INFINITY, 0, &same, &hit, failures);
        /* bottom-right with nq < nk: the last keys are the future of the first queries */
        P.nq = 8; P.p = ip ? 4 : 1;
        nan_case("causal nq<nk", &P, 12, NAN, 1, &same, &hit, failures);
        P.nq = 16;
        /* outside a window (no causal) */
        P.causal = 0; P.wl = 2; P.wr = 1;
        nan_case("window", &P, 7, NAN, 0, &same, &hit, failures);
        nan_case("window", &P, 7, INFINITY, 1, &same, &hit, failures);
        P.wl = P.wr = -1;
        /* dilated: other segments and positions outside a head's pattern */
        P.groups = 3; P.seg = seg; P.rate = rate; P.h = 3; P.hk = 3;
        P.mix = RINGATTN_MIX_HEAD_GROUPS;
        nan_case("dilated head groups", &P, 5, NAN, 0, &same, &hit, failures);
        nan_case("dilated head groups", &P, 9, INFINITY, 1, &same, &hit, failures);
        P.causal = 1;
        nan_case("dilated head groups causal", &P, 6, NAN, 1, &same, &hit, failures);
        P.causal = 0; P.mix = RINGATTN_MIX_LSE; P.h = 4; P.hk = 2;
        nan_case("dilated lse mix", &P, 5, NAN, 0, &same, &hit, failures);
        nan_case("dilated lse mix", &P, 11, -INFINITY, 1, &same, &hit, failures);
        cases += 12;
        varlen += varlen_case(P.ct, &same, failures);
    }
    printf("6. masked NaN/Inf:       %3d cases, %d unseen rows bit-identical, %d seeing rows non-finite%s  %s\n",
           cases, same, hit, varlen ? ", varlen included" : " (varlen not implemented: skipped)",
           *failures == f0 ? "ok" : "FAIL");
}

/* ---------------------------------------------------------------- 7. error vs ring size */
static void group_error_vs_p(int *failures)
{
    static const int ps[] = { 1, 2, 4, 8, 16 };
    static const int64_t ns[] = { 64, 256, 1024 }, ds[] = { 16, 64 };
    int in, id, ic, ip, f0 = *failures;
    printf("7. f32 error vs ring size, against the f64 oracle: rms |got - ref| / max|V| (checked: p=16 within\n"
           "   2x of p=1) and, in brackets, the max |got - ref| / max|V| (one element: noisy at a few ulp)\n");
    printf("      n    d  causal        p=1              p=2              p=4              p=8              p=16       "
           "rms p16/p1 (max)\n");
    for (in = 0; in < 3; in++)
    for (id = 0; id < 2; id++)
    for (ic = 0; ic < 2; ic++) {
        xp P; xd D; double err[5], emax[5], vmax; int64_t i;
        memset(&P, 0, sizeof P);
        P.b = 1; P.nq = P.nk = ns[in]; P.h = 1; P.hk = 1; P.d = ds[id]; P.dv = ds[id];
        P.causal = ic; P.wl = P.wr = -1; P.threads = 2; P.ct = RINGATTN_F32;
        xd_new(&P, &D, 1000 + (uint64_t)(in * 4 + id * 2 + ic));
        for (i = 0; i < D.nq_; i++) D.q[i] *= 1.5;      /* peaky enough to need the rescaling */
        round_to_f32(D.q, D.nq_); round_to_f32(D.k, D.nk_); round_to_f32(D.v, D.nv_);
        CHECK(ref_run(&P, &D, 0) == 0, "oracle failed");
        vmax = max_abs_f64(D.v, D.nv_);
        for (ip = 0; ip < 5; ip++) {
            int64_t j; double e = 0, ss = 0;
            P.p = ps[ip];
            CHECK(lib_run(&P, &D, 0) == RINGATTN_OK, "n=%lld p=%d: call failed", (long long)P.nq, P.p);
            for (j = 0; j < D.no_; j++) { e = fmax(e, fabs(D.o[j] - D.ro[j])); ss += (D.o[j] - D.ro[j]) * (D.o[j] - D.ro[j]); }
            err[ip] = sqrt(ss / (double)D.no_) / vmax;
            emax[ip] = e / vmax;
        }
        printf("   %5lld %4lld  %6d", (long long)P.nq, (long long)P.d, ic);
        for (ip = 0; ip < 5; ip++) printf("  %.2e (%.1e)", err[ip], emax[ip]);
        printf("  %5.2f (%4.2f)\n", err[4] / err[0], emax[4] / emax[0]);
        CHECK(err[4] <= 2.0 * err[0], "n=%lld d=%lld causal=%d: error at p=16 (%.3g) > 2x the error at p=1 (%.3g)",
              (long long)P.nq, (long long)P.d, ic, err[4], err[0]);
        xd_free(&D);
    }
    printf("   error at p=16 within 2x the error at p=1 everywhere: %s\n", *failures == f0 ? "ok" : "FAIL");
}

int main(void)
{
    int fails = 0;
    group_logits(&fails);
    group_scales(&fails);
    group_masked_rows(&fails);
    group_shapes(&fails);
    group_overflow(&fails);
    group_nan(&fails);
    group_error_vs_p(&fails);
    printf("%s\n", fails ? "FAIL" : "PASS");
    return fails ? TEST_FAIL : TEST_PASS;
}
