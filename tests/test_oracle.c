/* test_oracle.c - the oracle itself is checked before anything is checked against it.

     1. a 2x2 case computed by hand (no mask, top-left causal), and a row that sees nothing;
     2. ref_visible against the mask rules written out for a few (i, j);
     3. NaN in a key/value no row can see never reaches an output;
     4. dilated consistency: one group with s = n, r = 1 is dense attention (both mixes); two
        identical LSE-mix patterns count every key twice: same output, lse + log 2;
     5. ref_backward against central finite differences of ref_forward (f64, h = 1e-5) for
        dense (plain, both causal modes, GQA, dv != d, window) and dilated (both mixes),
        on the loss L = sum(out * W) with random W: relative error <= 1e-7.

   Build: cc -std=c99 -Ireference tests/test_oracle.c reference/ringattn_ref.c -lm */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringattn_ref.h"
#include "test_util.h"

static ref_problem problem(int64_t b, int64_t nq, int64_t nk, int64_t h, int64_t hk, int64_t d,
                           int64_t dv, int causal)
{
    ref_problem p;
    memset(&p, 0, sizeof p);
    p.b = b; p.nq = nq; p.nk = nk; p.h = h; p.hk = hk; p.d = d; p.dv = dv;
    p.scale = 1.0 / sqrt((double)d);
    p.causal = causal;
    p.window_left = -1; p.window_right = -1;
    return p;
}

static int close_to(double a, double b) { return fabs(a - b) <= 1e-14 * (1.0 + fabs(b)); }

/* 1. hand-computed: q = k = I (2x2), v = [[1,2],[3,4]], scale 1 */
static void test_hand(int *failures)
{
    double q[4] = { 1, 0, 0, 1 }, k[4] = { 1, 0, 0, 1 }, v[4] = { 1, 2, 3, 4 };
    double out[4], lse[2], e = exp(1.0);
    ref_problem p = problem(1, 2, 2, 1, 1, 2, 2, 0);
    p.scale = 1.0;
    CHECK(ref_forward(&p, q, k, v, out, lse) == 0, "ref_forward failed");
    /* S = I: row 0 weights (e, 1)/(e+1), row 1 weights (1, e)/(e+1) */
    CHECK(close_to(out[0], (e * 1 + 3) / (e + 1)) && close_to(out[1], (e * 2 + 4) / (e + 1)),
          "no mask row 0: got (%g, %g)", out[0], out[1]);
    CHECK(close_to(out[2], (1 + e * 3) / (e + 1)) && close_to(out[3], (2 + e * 4) / (e + 1)),
          "no mask row 1: got (%g, %g)", out[2], out[3]);
    CHECK(close_to(lse[0], log(e + 1)) && close_to(lse[1], log(e + 1)), "no mask lse (%g, %g)", lse[0], lse[1]);

    p.causal = 2;   /* row 0 sees key 0 only: out = v_0, lse = S_00 = 1 */
    CHECK(ref_forward(&p, q, k, v, out, lse) == 0, "ref_forward failed");
    CHECK(out[0] == 1 && out[1] == 2 && close_to(lse[0], 1.0), "causal row 0: (%g, %g) lse %g", out[0], out[1], lse[0]);
    CHECK(close_to(out[2], (1 + e * 3) / (e + 1)) && close_to(lse[1], log(e + 1)), "causal row 1");

    /* bottom-right, nq = 3 > nk = 2: row 0 sees j <= -1, nothing -> out 0, lse -inf */
    {
        double q3[6] = { 1, 0, 0, 1, 1, 1 }, o3[6], l3[3];
        ref_problem p3 = problem(1, 3, 2, 1, 1, 2, 2, 1);
        CHECK(ref_forward(&p3, q3, k, v, o3, l3) == 0, "ref_forward failed");
        CHECK(o3[0] == 0 && o3[1] == 0 && l3[0] == -INFINITY, "empty row: (%g, %g) lse %g", o3[0], o3[1], l3[0]);
        CHECK(o3[2] == 1 && o3[3] == 2 && close_to(l3[1], 0.0), "row 1 sees key 0 only (S = 0)");
    }
}

/* 2. the mask rules, written out */
static void test_visible(int *failures)
{
    ref_problem p = problem(1, 4, 6, 1, 1, 1, 1, 1);   /* bottom-right: j <= i + 2 */
    CHECK(ref_visible(&p, 0, 2) && !ref_visible(&p, 0, 3) && ref_visible(&p, 3, 5), "bottom-right");
    p.causal = 2;                                      /* top-left: j <= i */
    CHECK(ref_visible(&p, 1, 1) && !ref_visible(&p, 1, 2), "top-left");
    p.causal = 0; p.window_left = 1; p.window_right = 0; /* i+2-1 <= j <= i+2 */
    CHECK(!ref_visible(&p, 1, 1) && ref_visible(&p, 1, 2) && ref_visible(&p, 1, 3) && !ref_visible(&p, 1, 4),
          "window (1, 0), off = nk - nq");
    p.causal = 2; p.window_left = 2; p.window_right = -1; /* i-2 <= j <= i */
    CHECK(!ref_visible(&p, 3, 0) && ref_visible(&p, 3, 1) && !ref_visible(&p, 3, 4), "window with top-left");
}

/* 3. NaN in an invisible key and value: top-left causal, key 5 is seen only by row 5 */
static void test_nan(int *failures)
{
    enum { N = 6, D = 3 };
    double q[N * D], k[N * D], v[N * D], o1[N * D], o2[N * D], l1[N], l2[N];
    ref_problem p = problem(1, N, N, 1, 1, D, D, 2);
    int i;
    fill_normal(q, N * D, 1); fill_normal(k, N * D, 2); fill_normal(v, N * D, 3);
    CHECK(ref_forward(&p, q, k, v, o1, l1) == 0, "ref_forward failed");
    for (i = 0; i < D; i++) { k[(N - 1) * D + i] = NAN; v[(N - 1) * D + i] = NAN; }
    CHECK(ref_forward(&p, q, k, v, o2, l2) == 0, "ref_forward failed");
    CHECK(memcmp(o1, o2, sizeof(double) * (N - 1) * D) == 0 && memcmp(l1, l2, sizeof(double) * (N - 1)) == 0,
          "NaN in the last key leaked into rows that cannot see it");
    CHECK(o2[(N - 1) * D] != o2[(N - 1) * D], "the row that sees the NaN key should be NaN");
}

/* 4. dilated special cases that must reduce to dense attention */
static void test_dilated_consistency(int *failures)
{
    enum { B = 2, N = 8, H = 3, D = 4 };
    double q[B * N * H * D], k[B * N * H * D], v[B * N * H * D];
    double od[B * N * H * D], ld[B * H * N], ox[B * N * H * D], lx[B * H * N];
    int64_t seg[2] = { N, N }, rate[2] = { 1, 1 };
    int causal, mix, i;
    fill_normal(q, B * N * H * D, 11); fill_normal(k, B * N * H * D, 12); fill_normal(v, B * N * H * D, 13);
    for (causal = 0; causal <= 1; causal++) {
        ref_problem p = problem(B, N, N, H, H, D, D, causal);
        CHECK(ref_forward(&p, q, k, v, od, ld) == 0, "dense failed");
        p.segment_lengths = seg; p.dilation_rates = rate;
        for (mix = 0; mix <= 1; mix++) {
            double err = 0;
            p.num_groups = 1; p.mix = mix;
            CHECK(ref_forward(&p, q, k, v, ox, lx) == 0, "dilated failed");
            for (i = 0; i < B * N * H * D; i++) err = fmax(err, fabs(ox[i] - od[i]));
            for (i = 0; i < B * H * N; i++) err = fmax(err, fabs(lx[i] - ld[i]));
            CHECK(err <= 1e-14, "G=1, s=n, r=1, mix %d, causal %d: differs from dense by %g", mix, causal, err);
        }
        /* two identical patterns: every key counted twice -> same softmax, lse + log 2 */
        p.num_groups = 2; p.mix = 1;
        CHECK(ref_forward(&p, q, k, v, ox, lx) == 0, "dilated failed");
        {
            double err = 0;
            for (i = 0; i < B * N * H * D; i++) err = fmax(err, fabs(ox[i] - od[i]));
            for (i = 0; i < B * H * N; i++) err = fmax(err, fabs(lx[i] - (ld[i] + log(2.0))));
            CHECK(err <= 1e-14, "LSE mix, duplicated pattern, causal %d: off by %g", causal, err);
        }
    }
    /* head groups: G = 2 of 3 heads (sizes 2, 1), s = 4, r = 2 for group 1 (offset 1):
       head 2 gathers positions 1, 3 | 5, 7; position 0 of head 2 gets 0 output, lse -inf */
    {
        int64_t s2[2] = { 8, 4 }, r2[2] = { 1, 2 };
        ref_problem p = problem(B, N, N, H, H, D, D, 0);
        p.num_groups = 2; p.segment_lengths = s2; p.dilation_rates = r2;
        CHECK(ref_forward(&p, q, k, v, ox, lx) == 0, "dilated failed");
        CHECK(ox[(0 * H + 2) * D] == 0 && lx[2 * N + 0] == -INFINITY, "head 2, position 0 is not gathered");
        CHECK(ox[(1 * H + 2) * D] != 0 && isfinite(lx[2 * N + 1]), "head 2, position 1 is gathered");
        /* head 2 position 1 sees only positions 1 and 3, output halved (G = 2) */
        {
            double s1 = 0, s3 = 0, m, w1, w3, want;
            int c;
            for (c = 0; c < D; c++) {
                s1 += q[(1 * H + 2) * D + c] * k[(1 * H + 2) * D + c];
                s3 += q[(1 * H + 2) * D + c] * k[(3 * H + 2) * D + c];
            }
            s1 *= p.scale; s3 *= p.scale;
            m = fmax(s1, s3); w1 = exp(s1 - m); w3 = exp(s3 - m);
            want = 0.5 * (w1 * v[(1 * H + 2) * D] + w3 * v[(3 * H + 2) * D]) / (w1 + w3);
            CHECK(close_to(ox[(1 * H + 2) * D], want), "head 2 position 1: got %.17g want %.17g",
                  ox[(1 * H + 2) * D], want);
            CHECK(close_to(lx[2 * N + 1], m + log(w1 + w3)), "head 2 position 1 lse");
        }
    }
}

/* 5. backward vs central finite differences of forward, on L = sum(out * W) */
static double loss(const ref_problem *p, const double *q, const double *k, const double *v,
                   const double *w, double *out)
{
    int64_t i, n = p->b * p->nq * p->h * p->dv;
    double s = 0;
    if (ref_forward(p, q, k, v, out, NULL) != 0) return NAN;
    for (i = 0; i < n; i++) s += out[i] * w[i];
    return s;
}

/* worst |fd - analytic| / max|analytic| over one input tensor x (perturbed in place) */
static double fd_error(const ref_problem *p, double *q, double *k, double *v, const double *w,
                       double *out, double *x, int64_t n, const double *grad)
{
    const double h = 1e-5;
    double err = 0, gmax = max_abs_f64(grad, n);
    int64_t i;
    for (i = 0; i < n; i++) {
        double x0 = x[i], lp, lm;
        x[i] = x0 + h; lp = loss(p, q, k, v, w, out);
        x[i] = x0 - h; lm = loss(p, q, k, v, w, out);
        x[i] = x0;
        err = fmax(err, fabs((lp - lm) / (2 * h) - grad[i]));
    }
    return err / (gmax > 0 ? gmax : 1.0);
}

static void check_gradients(const char *name, const ref_problem *p, int *failures)
{
    int64_t nq_ = p->b * p->nq * p->h, nk_ = p->b * p->nk * p->hk;
    double *q = (double *)malloc(sizeof(double) * (size_t)(nq_ * p->d));
    double *k = (double *)malloc(sizeof(double) * (size_t)(nk_ * p->d));
    double *v = (double *)malloc(sizeof(double) * (size_t)(nk_ * p->dv));
    double *w = (double *)malloc(sizeof(double) * (size_t)(nq_ * p->dv));
    double *out = (double *)malloc(sizeof(double) * (size_t)(nq_ * p->dv));
    double *dq = (double *)malloc(sizeof(double) * (size_t)(nq_ * p->d));
    double *dk = (double *)malloc(sizeof(double) * (size_t)(nk_ * p->d));
    double *dv = (double *)malloc(sizeof(double) * (size_t)(nk_ * p->dv));
    double eq, ek, ev;
    fill_normal(q, nq_ * p->d, 21); fill_normal(k, nk_ * p->d, 22);
    fill_normal(v, nk_ * p->dv, 23); fill_normal(w, nq_ * p->dv, 24);
    CHECK(ref_backward(p, q, k, v, w, dq, dk, dv) == 0, "%s: ref_backward failed", name);
    eq = fd_error(p, q, k, v, w, out, q, nq_ * p->d, dq);
    ek = fd_error(p, q, k, v, w, out, k, nk_ * p->d, dk);
    ev = fd_error(p, q, k, v, w, out, v, nk_ * p->dv, dv);
    printf("  backward vs finite differences, %-34s rel err dq %.1e dk %.1e dv %.1e\n", name, eq, ek, ev);
    CHECK(eq <= 1e-7 && ek <= 1e-7 && ev <= 1e-7, "%s: finite-difference mismatch", name);
    free(q); free(k); free(v); free(w); free(out); free(dq); free(dk); free(dv);
}

static void test_backward(int *failures)
{
    int64_t seg[3] = { 6, 3, 6 }, rate[3] = { 1, 2, 3 };
    ref_problem p = problem(2, 5, 5, 2, 2, 3, 3, 0);
    check_gradients("dense, no mask", &p, failures);
    p = problem(1, 7, 5, 4, 2, 3, 2, 1);                 /* GQA, dv != d, nq > nk: empty rows */
    check_gradients("bottom-right, GQA, nq > nk, dv != d", &p, failures);
    p = problem(2, 4, 7, 2, 1, 2, 3, 2);
    check_gradients("top-left, MQA, nq < nk", &p, failures);
    p = problem(1, 6, 6, 2, 2, 3, 3, 0);
    p.window_left = 2; p.window_right = 1;
    check_gradients("window (2, 1)", &p, failures);
    p = problem(2, 6, 6, 5, 5, 3, 2, 1);
    p.num_groups = 3; p.segment_lengths = seg; p.dilation_rates = rate;
    check_gradients("dilated head groups, causal", &p, failures);
    p.mix = 1; p.causal = 0;
    check_gradients("dilated LSE mix", &p, failures);
    p.causal = 1;
    check_gradients("dilated LSE mix, causal", &p, failures);
}

int main(void)
{
    int nfail = 0, *failures = &nfail;
    test_hand(failures);
    test_visible(failures);
    test_nan(failures);
    test_dilated_consistency(failures);
    test_backward(failures);
    /* bad input is refused */
    {
        ref_problem p = problem(1, 4, 6, 2, 2, 1, 1, 0);
        double x[64];
        int64_t seg = 4, rate = 1;
        p.num_groups = 1; p.segment_lengths = &seg; p.dilation_rates = &rate;
        CHECK(ref_forward(&p, x, x, x, x, NULL) == -1, "dilated with nq != nk must be refused");
        p = problem(1, 4, 4, 3, 2, 1, 1, 0);
        CHECK(ref_forward(&p, x, x, x, x, NULL) == -1, "hk not dividing h must be refused");
    }
    printf("test_oracle: %s (%d failures)\n", nfail ? "FAIL" : "ok", nfail);
    return nfail ? TEST_FAIL : TEST_PASS;
}
