/* test_oracle.c - the oracle itself is checked before anything is checked against it.

     1. a 2x2 case computed by hand (no mask, top-left causal), and a row that sees nothing;
     2. ref_visible against the mask rules written out for a few (i, j);
     3. NaN in a key/value no row can see never reaches an output;
     4. dilated consistency: one group with s = n, r = 1 is dense attention (both mixes); two
        identical LSE-mix patterns count every key twice: same output, lse + log 2;
     5. ref_backward against central finite differences of ref_forward (f64, h = 1e-5) for
        dense (plain, both causal modes, GQA, dv != d, window) and dilated (both mixes),
        on the loss L = sum(out * W) with random W: relative error <= 1e-7.
     6. the score options: a sink, ALiBi, a bias and the masks on the 2x2 case by hand (an empty
        row with a sink has lse = sink; max_logit), the varlen ALiBi distance, and
        ref_backward_ex (dq, dk, dv, dsinks, dbias) against finite differences with every
        option on (bias broadcast over batches, over heads, and not at all).

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

/* every gradient of the oracle against central differences of its forward: dq, dk, dv, and
   with sinks or a bias dsinks and dbias (their inputs perturbed through the problem's const
   pointers); without options through ref_backward, with them through ref_backward_ex */
static void check_gradients(const char *name, const ref_problem *p, int *failures)
{
    int64_t nq_ = p->b * p->nq * p->h, nk_ = p->b * p->nk * p->hk;
    int64_t nb = p->bias ? p->bias_b * p->bias_h * p->nq * p->nk : 0;
    int opts = p->sinks || p->bias;
    double *q = (double *)malloc(sizeof(double) * (size_t)(nq_ * p->d));
    double *k = (double *)malloc(sizeof(double) * (size_t)(nk_ * p->d));
    double *v = (double *)malloc(sizeof(double) * (size_t)(nk_ * p->dv));
    double *w = (double *)malloc(sizeof(double) * (size_t)(nq_ * p->dv));
    double *out = (double *)malloc(sizeof(double) * (size_t)(nq_ * p->dv));
    double *dq = (double *)malloc(sizeof(double) * (size_t)(nq_ * p->d));
    double *dk = (double *)malloc(sizeof(double) * (size_t)(nk_ * p->d));
    double *dv = (double *)malloc(sizeof(double) * (size_t)(nk_ * p->dv));
    double *ds = (double *)malloc(sizeof(double) * (size_t)p->h);
    double *db = (double *)malloc(sizeof(double) * (size_t)(nb > 0 ? nb : 1));
    double eq, ek, ev, es = 0, eb = 0;
    fill_normal(q, nq_ * p->d, 21); fill_normal(k, nk_ * p->d, 22);
    fill_normal(v, nk_ * p->dv, 23); fill_normal(w, nq_ * p->dv, 24);
    if (opts)
        CHECK(ref_backward_ex(p, q, k, v, w, dq, dk, dv, p->sinks ? ds : NULL, p->bias ? db : NULL) == 0,
              "%s: ref_backward_ex failed", name);
    else CHECK(ref_backward(p, q, k, v, w, dq, dk, dv) == 0, "%s: ref_backward failed", name);
    eq = fd_error(p, q, k, v, w, out, q, nq_ * p->d, dq);
    ek = fd_error(p, q, k, v, w, out, k, nk_ * p->d, dk);
    ev = fd_error(p, q, k, v, w, out, v, nk_ * p->dv, dv);
    if (p->sinks) es = fd_error(p, q, k, v, w, out, (double *)(uintptr_t)p->sinks, p->h, ds);
    if (p->bias) eb = fd_error(p, q, k, v, w, out, (double *)(uintptr_t)p->bias, nb, db);
    printf("  backward vs finite differences, %-34s rel err dq %.1e dk %.1e dv %.1e", name, eq, ek, ev);
    if (opts) printf(" dsinks %.1e dbias %.1e", es, eb);
    printf("\n");
    CHECK(eq <= 1e-7 && ek <= 1e-7 && ev <= 1e-7 && es <= 1e-7 && eb <= 1e-7, "%s: finite-difference mismatch", name);
    free(q); free(k); free(v); free(w); free(out); free(dq); free(dk); free(dv); free(ds); free(db);
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

/* 6. the score options */
static int close_tol(double a, double b) { return fabs(a - b) <= 1e-13 * (1.0 + fabs(b)); }

static int doc_mask_fn(void *user, int64_t b, int64_t h, int64_t i, int64_t j)
{
    (void)user; (void)b;
    return h == 0 || (i + j) % 3 != 1;   /* head 1 drops a few pairs */
}

static void test_options_hand(int *failures)
{
    double q[4] = { 1, 0, 0, 1 }, k[4] = { 1, 0, 0, 1 }, v[4] = { 1, 2, 3, 4 };
    double out[4], lse[2], ml[2], e = exp(1.0), sink = 0.5, es = exp(0.5);
    ref_problem p = problem(1, 2, 2, 1, 1, 2, 2, 0);
    p.scale = 1.0;
    /* a sink: one more term exp(sink) in each denominator, no value */
    p.sinks = &sink;
    CHECK(ref_forward_ex(&p, q, k, v, out, lse, ml) == 0, "sink forward failed");
    CHECK(close_tol(out[0], (e * 1 + 3) / (e + 1 + es)) && close_tol(out[3], (2 + e * 4) / (e + 1 + es)),
          "sink: out (%g, %g)", out[0], out[3]);
    CHECK(close_tol(lse[0], log(e + 1 + es)) && ml[0] == 1.0 && ml[1] == 1.0, "sink: lse %g max_logit %g", lse[0], ml[0]);
    /* a sink larger than every score (stabilised on it, not on the keys) */
    sink = 800;
    CHECK(ref_forward_ex(&p, q, k, v, out, lse, ml) == 0, "big sink forward failed");
    CHECK(close_tol(lse[0], 800.0) && fabs(out[0]) < 1e-300 && ml[0] == 1.0, "big sink: lse %g out %g", lse[0], out[0]);
    sink = 0.5;
    /* bottom-right causal, nq = 3 > nk = 2: row 0 sees nothing */
    {
        double q3[6] = { 1, 0, 0, 1, 1, 1 }, o3[6], l3[3], m3[3];
        ref_problem p3 = problem(1, 3, 2, 1, 1, 2, 2, 1);
        p3.sinks = &sink;
        CHECK(ref_forward_ex(&p3, q3, k, v, o3, l3, m3) == 0, "sink empty row failed");
        CHECK(o3[0] == 0 && o3[1] == 0 && l3[0] == 0.5 && m3[0] == -INFINITY,
              "empty row with a sink: (%g, %g) lse %g max_logit %g", o3[0], o3[1], l3[0], m3[0]);
    }
    p.sinks = NULL;
    /* ALiBi, slope 0.25: row i, key j lose 0.25 |i - j| (nq = nk) */
    {
        double slope = 0.25;
        p.alibi_slopes = &slope; p.alibi_size = 1;
        CHECK(ref_forward_ex(&p, q, k, v, out, lse, ml) == 0, "alibi forward failed");
        CHECK(close_tol(lse[0], log(e + exp(-0.25))) && close_tol(ml[0], 1.0), "alibi row 0: lse %g", lse[0]);
        p.alibi_slopes = NULL; p.alibi_size = 0;
    }
    /* a bias on one pair, and a mask that hides key 0 from row 1 */
    {
        double bias[4] = { 0, 2, 0, 0 };
        unsigned char mask[4] = { 1, 1, 0, 1 };
        p.bias = bias; p.bias_b = 1; p.bias_h = 1;
        p.mask = mask; p.mask_b = 1; p.mask_h = 1;
        CHECK(ref_forward_ex(&p, q, k, v, out, lse, ml) == 0, "bias/mask forward failed");
        /* row 0: scores (1, 2); row 1: key 1 only, score 1 */
        CHECK(close_tol(lse[0], log(e + e * e)) && ml[0] == 2.0, "bias row 0: lse %g max %g", lse[0], ml[0]);
        CHECK(out[2] == 3 && out[3] == 4 && lse[1] == 1.0, "mask row 1: (%g, %g) lse %g", out[2], out[3], lse[1]);
        p.bias = NULL; p.mask = NULL;
    }
    /* the visibility rule: documents and mask_fn AND the causal rule */
    {
        int64_t dq_[4] = { 0, 0, 1, 1 }, dk_[4] = { 0, 0, 1, 1 };
        ref_problem p4 = problem(1, 4, 4, 2, 2, 1, 1, 1);
        p4.document_ids_q = dq_; p4.document_ids_k = dk_;
        CHECK(ref_visible_ex(&p4, 0, 0, 1, 0) && !ref_visible_ex(&p4, 0, 0, 2, 1) &&
              ref_visible_ex(&p4, 0, 0, 3, 2) && !ref_visible_ex(&p4, 0, 0, 2, 3), "document ids");
        p4.mask_fn = doc_mask_fn;
        CHECK(ref_visible_ex(&p4, 0, 0, 1, 0) && !ref_visible_ex(&p4, 0, 1, 1, 0), "mask_fn per head");
    }
    /* varlen ALiBi: |i - j + ke - qe| with the sequence's global ends */
    {
        int64_t cq[3] = { 0, 2, 5 }, ck[3] = { 0, 3, 4 };
        double q5[5] = { 0, 0, 0, 0, 0 }, k4[4] = { 0, 0, 0, 0 }, v4[4] = { 1, 2, 3, 4 }, o5[5], l5[5];
        double slope = 1.0;
        ref_problem p5 = problem(1, 5, 4, 1, 1, 1, 1, 0);
        p5.num_seqs = 2; p5.cu_seqlens_q = cq; p5.cu_seqlens_k = ck;
        p5.alibi_slopes = &slope; p5.alibi_size = 1;
        CHECK(ref_forward(&p5, q5, k4, v4, o5, l5) == 0, "varlen alibi failed");
        /* row 0 (seq 0: qe 2, ke 3): keys 0..2 at distances |0 - j + 1| = 1, 0, 1 */
        CHECK(close_tol(l5[0], log(2 * exp(-1.0) + 1)), "varlen alibi row 0: lse %g", l5[0]);
        /* row 2 (seq 1: qe 5, ke 4): key 3 at |2 - 3 - 1| = 2 */
        CHECK(close_tol(l5[2], -2.0) && o5[2] == 4, "varlen alibi row 2: lse %g", l5[2]);
    }
}

static void test_options_backward(int *failures)
{
    double sinks[4] = { 0.3, -1.0, 2.5, 0.0 }, slopes[8] = { 0.5, 0.25, 0.125, 0.0625, 0.7, 0.1, 0.2, 0.3 };
    double bias[2 * 4 * 6 * 7];
    unsigned char mask[2 * 6 * 7];
    int64_t docq[6] = { 0, 0, 1, 1, 1, 2 }, dock[7] = { 0, 0, 0, 1, 1, 2, 2 };
    int64_t i;
    ref_problem p;
    fill_normal(bias, 2 * 4 * 6 * 7, 41);
    for (i = 0; i < 2 * 6 * 7; i++) mask[i] = (unsigned char)((i * 7) % 5 != 0);
    p = problem(2, 6, 7, 4, 2, 3, 2, 1);
    p.sinks = sinks;
    check_gradients("sinks, causal, GQA", &p, failures);
    p.sinks = NULL; p.alibi_slopes = slopes; p.alibi_size = 8; p.causal = 2;
    check_gradients("alibi [b][h], top-left", &p, failures);
    p.alibi_slopes = NULL; p.bias = bias; p.bias_b = 2; p.bias_h = 4; p.causal = 0;
    check_gradients("bias [b][h][nq][nk]", &p, failures);
    p.bias_b = 1; p.bias_h = 4; p.softcap = 1.5;
    check_gradients("bias [1][h], softcap", &p, failures);
    p.bias_b = 2; p.bias_h = 1; p.softcap = 0; p.mask = mask; p.mask_b = 2; p.mask_h = 1;
    check_gradients("bias [b][1], mask [b][1]", &p, failures);
    p.sinks = sinks; p.alibi_slopes = slopes; p.alibi_size = 4; p.bias_b = 1; p.bias_h = 1;
    p.document_ids_q = docq; p.document_ids_k = dock; p.mask_fn = doc_mask_fn; p.causal = 1;
    p.window_left = 3; p.softcap = 2.0;
    check_gradients("everything at once", &p, failures);
    /* bad input */
    {
        double x[512];
        ref_problem b = problem(1, 4, 4, 2, 2, 1, 1, 0);
        int64_t seg = 4, rate = 1, ids[4] = { 0, 0, 0, 0 };
        b.alibi_slopes = slopes; b.alibi_size = 3;
        CHECK(ref_forward(&b, x, x, x, x, NULL) == -1, "alibi_size 3 with h 2 must be refused");
        b.alibi_size = 2; b.num_groups = 1; b.segment_lengths = &seg; b.dilation_rates = &rate;
        CHECK(ref_forward(&b, x, x, x, x, NULL) == -1, "options with dilation must be refused");
        b = problem(1, 4, 4, 2, 2, 1, 1, 0);
        b.bias = x; b.bias_b = 1; b.bias_h = 3;
        CHECK(ref_forward(&b, x, x, x, x + 256, NULL) == -1, "bias of 3 heads with h 2 must be refused");
        b.bias = NULL; b.document_ids_q = ids;
        CHECK(ref_forward(&b, x, x, x, x + 256, NULL) == -1, "document ids of one side must be refused");
        b.document_ids_q = NULL;
        CHECK(ref_backward_ex(&b, x, x, x, x, x + 64, x + 128, x + 192, x + 256, NULL) == -1,
              "dsinks without sinks must be refused");
    }
}

int main(void)
{
    int nfail = 0, *failures = &nfail;
    test_hand(failures);
    test_visible(failures);
    test_nan(failures);
    test_dilated_consistency(failures);
    test_backward(failures);
    test_options_hand(failures);
    test_options_backward(failures);
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
