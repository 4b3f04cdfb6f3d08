/* gradcheck.c - how to check ANY attention backward (a GPU kernel's dumped gradients, a new
   CPU path, a port) against the reference, step by step.

   The recipe:
     1. make seeded inputs q, k, v and an upstream gradient dout, in double;
     2. run ringattn_forward in f64 to get out and lse (the backward needs both);
     3. run ringattn_backward in f64: these are the REFERENCE gradients dq, dk, dv;
     4. produce the gradients UNDER TEST. Here that is ringattn_backward itself, in f32
        compute, on a ring of 4 members run by 2 threads, standing in for your kernel:
        replace step 4 by loading your kernel's dq, dk, dv (and feed it the same inputs);
     5. compare element-wise, print the first few mismatches with their (b, n, h, d) index,
        and give a verdict against the tolerance;
     6. spot-check a few elements of the reference dq by central finite differences in f64,
        so that the reference itself is seen to be a gradient of the loss.

   The loss behind every gradient here is  L = sum(out * dout),  so dL/dout = dout.

   Build and run (only ringattn.h is needed):
     cc -std=c99 -I. examples/gradcheck.c -lm && ./a.out
     ./a.out --inject      corrupt one element of the dk under test, to see what a failure
                           looks like (exit code 1)
   Exit code 0 when every check passes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"

/* the problem: causal (bottom-right) GQA attention, 4 query heads sharing 2 k/v heads */
#define B   2
#define NQ  96
#define NK  96
#define H   4
#define HK  2
#define D   32
#define DV  32
#define CAUSAL RINGATTN_CAUSAL_BOTTOM_RIGHT

/* f32 gradient tolerance, relative to each tensor's gradient scale max(1, max|ref|) and
   growing with the largest score a row can meet, smax = |scale| max ||q_i|| max ||k_j|| */
#define F32_TOL 1e-4
#define FD_STEP 1e-5      /* finite-difference step (f64)                                    */
#define FD_TOL  1e-6      /* |fd - an| / max(|fd|, |an|, 1e-3)                               */
#define SHOW    5         /* mismatches printed per tensor                                   */

/* ---------------------------------------------------------------- small helpers */

static unsigned long long rng_state = 42;
static double uniform(void)                       /* splitmix64 -> [-1, 1) */
{
    unsigned long long z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

static void must(int status, const char *what)
{
    if (status != RINGATTN_OK) {
        fprintf(stderr, "%s failed: %s\n", what, ringattn_strerror(status));
        exit(2);
    }
}

static float *to_f32(const double *x, size_t n)
{
    float *y = (float *)xcalloc(n, sizeof(float));
    size_t i;
    for (i = 0; i < n; i++) y[i] = (float)x[i];
    return y;
}

/* largest row norm of a contiguous [b, n, heads, dim] tensor */
static double max_row_norm(const double *x, size_t rows, size_t dim)
{
    size_t r, c; double best = 0;
    for (r = 0; r < rows; r++) {
        double s = 0;
        for (c = 0; c < dim; c++) s += x[r * dim + c] * x[r * dim + c];
        if (s > best) best = s;
    }
    return sqrt(best);
}

/* ---------------------------------------------------------------- step 5: the comparison */

/* got (the implementation under test, f32) vs ref (f64), both contiguous [b, n, h, d].
   Passes iff every |got - ref| <= tol, tol = F32_TOL * max(1, max|ref|) * (1 + smax). */
static int compare(const char *name, const float *got, const double *ref,
                   int b, int n, int h, int d, double smax)
{
    size_t count = (size_t)b * n * h * d, i, bad = 0;
    double gscale = 1, tol, worst = 0;
    for (i = 0; i < count; i++) if (fabs(ref[i]) > gscale) gscale = fabs(ref[i]);
    tol = F32_TOL * gscale * (1 + smax);
    printf("  %s: a few values   ", name);      /* eyeball some pairs, llm.c style */
    for (i = count - count / 4; i < count - count / 4 + 3; i++) printf(" %+.6f/%+.6f", (double)got[i], ref[i]);
    printf("   (under test / reference)\n");
    for (i = 0; i < count; i++) {
        double err = fabs((double)got[i] - ref[i]);
        if (!(err <= tol)) {                   /* also true for NaN */
            if (bad < SHOW) {
                int c = (int)(i % d), hh = (int)(i / d % h), r = (int)(i / ((size_t)d * h) % n);
                int bb = (int)(i / ((size_t)d * h * n));
                printf("    MISMATCH %s[b=%d, n=%d, h=%d, d=%d]: got %.8g, reference %.8g, |diff| %.3g > tol %.3g\n",
                       name, bb, r, hh, c, (double)got[i], ref[i], err, tol);
            }
            bad++;
        }
        if (err > worst || err != err) worst = err;
    }
    printf("  %s: max |diff| %.3g, tolerance %.3g (gradient scale %.3g), %zu of %zu out of tolerance -> %s\n",
           name, worst, tol, gscale, bad, count, bad ? "FAIL" : "ok");
    return bad == 0;
}

/* ---------------------------------------------------------------- step 6: finite differences */

/* L = sum(out * dout) with out from an f64 forward (one member: the plainest reference) */
static double loss(const double *q, const double *k, const double *v, const double *dout, double *out)
{
    ringattn_tensor Q = ringattn_tensor_bnhd((void *)q, RINGATTN_F64, B, NQ, H, D);
    ringattn_tensor K = ringattn_tensor_bnhd((void *)k, RINGATTN_F64, B, NK, HK, D);
    ringattn_tensor V = ringattn_tensor_bnhd((void *)v, RINGATTN_F64, B, NK, HK, DV);
    ringattn_tensor O = ringattn_tensor_bnhd(out, RINGATTN_F64, B, NQ, H, DV);
    ringattn_config cfg = ringattn_default_config();
    size_t i; double s = 0;
    cfg.compute = RINGATTN_F64; cfg.causal = CAUSAL; cfg.ring_size = 1; cfg.num_threads = 1;
    must(ringattn_forward(&cfg, &Q, &K, &V, &O, NULL), "ringattn_forward (finite differences)");
    for (i = 0; i < (size_t)B * NQ * H * DV; i++) s += out[i] * dout[i];
    return s;
}

int main(int argc, char **argv)
{
    const size_t nq_el = (size_t)B * NQ * H * D, nk_el = (size_t)B * NK * HK * D;
    const size_t nv_el = (size_t)B * NK * HK * DV, no_el = (size_t)B * NQ * H * DV;
    const size_t nl_el = (size_t)B * H * NQ;
    int inject = argc > 1 && strcmp(argv[1], "--inject") == 0;
    int ok = 1, i;
    double smax, scale = 1.0 / sqrt((double)D);
    size_t j;

    /* -------- 1. inputs: q, k, v and the upstream gradient dout, in double -------------- */
    double *q = (double *)xcalloc(nq_el, sizeof(double)), *k = (double *)xcalloc(nk_el, sizeof(double));
    double *v = (double *)xcalloc(nv_el, sizeof(double)), *dout = (double *)xcalloc(no_el, sizeof(double));
    double *out = (double *)xcalloc(no_el, sizeof(double)), *lse = (double *)xcalloc(nl_el, sizeof(double));
    double *dq = (double *)xcalloc(nq_el, sizeof(double)), *dk = (double *)xcalloc(nk_el, sizeof(double));
    double *dv = (double *)xcalloc(nv_el, sizeof(double));
    for (j = 0; j < nq_el; j++) q[j] = uniform();
    for (j = 0; j < nk_el; j++) k[j] = uniform();
    for (j = 0; j < nv_el; j++) v[j] = uniform();
    for (j = 0; j < no_el; j++) dout[j] = uniform();
    /* round the inputs to f32 once, so that reference and test see exactly the same numbers
       and only the arithmetic differs */
    for (j = 0; j < nq_el; j++) q[j] = (float)q[j];
    for (j = 0; j < nk_el; j++) k[j] = (float)k[j];
    for (j = 0; j < nv_el; j++) v[j] = (float)v[j];
    for (j = 0; j < no_el; j++) dout[j] = (float)dout[j];
    smax = scale * max_row_norm(q, (size_t)B * NQ * H, D) * max_row_norm(k, (size_t)B * NK * HK, D);
    printf("gradcheck: b=%d nq=%d nk=%d h=%d hk=%d d=%d dv=%d, causal bottom-right, smax %.3g\n",
           B, NQ, NK, H, HK, D, DV, smax);

    /* -------- 2. reference forward, f64: out and lse ------------------------------------ */
    {
        ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F64, B, NQ, H, D);
        ringattn_tensor K = ringattn_tensor_bnhd(k, RINGATTN_F64, B, NK, HK, D);
        ringattn_tensor V = ringattn_tensor_bnhd(v, RINGATTN_F64, B, NK, HK, DV);
        ringattn_tensor O = ringattn_tensor_bnhd(out, RINGATTN_F64, B, NQ, H, DV);
        ringattn_tensor L = ringattn_tensor_lse(lse, RINGATTN_F64, B, H, NQ);
        ringattn_tensor G = ringattn_tensor_bnhd(dout, RINGATTN_F64, B, NQ, H, DV);
        ringattn_tensor DQ = ringattn_tensor_bnhd(dq, RINGATTN_F64, B, NQ, H, D);
        ringattn_tensor DK = ringattn_tensor_bnhd(dk, RINGATTN_F64, B, NK, HK, D);
        ringattn_tensor DV_ = ringattn_tensor_bnhd(dv, RINGATTN_F64, B, NK, HK, DV);
        ringattn_config cfg = ringattn_default_config();
        cfg.compute = RINGATTN_F64;     /* the reference computes in double ...            */
        cfg.causal = CAUSAL;
        cfg.ring_size = 1;              /* ... on a single member: no ring at all          */
        cfg.num_threads = 1;
        must(ringattn_forward(&cfg, &Q, &K, &V, &O, &L), "reference ringattn_forward");

    /* -------- 3. reference backward, f64: dq, dk, dv ------------------------------------ */
        must(ringattn_backward(&cfg, &Q, &K, &V, &O, &L, &G, &DQ, &DK, &DV_), "reference ringattn_backward");
    }

    /* -------- 4. the gradients under test ----------------------------------------------- */
    /* Stand-in for your kernel: f32 storage and compute, 4 ring members on 2 threads. A
       backward needs the out and lse of ITS OWN forward (they are what a training step
       saves), so the f32 forward runs first. With a real kernel: give it the f32 inputs
       below, dump its dq, dk, dv as float [b, n, h, d], and load them into tdq, tdk, tdv. */
    {
        float *fq = to_f32(q, nq_el), *fk = to_f32(k, nk_el), *fv = to_f32(v, nv_el);
        float *fdout = to_f32(dout, no_el);
        float *fout = (float *)xcalloc(no_el, sizeof(float)), *flse = (float *)xcalloc(nl_el, sizeof(float));
        float *tdq = (float *)xcalloc(nq_el, sizeof(float)), *tdk = (float *)xcalloc(nk_el, sizeof(float));
        float *tdv = (float *)xcalloc(nv_el, sizeof(float));
        ringattn_tensor Q = ringattn_tensor_bnhd(fq, RINGATTN_F32, B, NQ, H, D);
        ringattn_tensor K = ringattn_tensor_bnhd(fk, RINGATTN_F32, B, NK, HK, D);
        ringattn_tensor V = ringattn_tensor_bnhd(fv, RINGATTN_F32, B, NK, HK, DV);
        ringattn_tensor O = ringattn_tensor_bnhd(fout, RINGATTN_F32, B, NQ, H, DV);
        ringattn_tensor L = ringattn_tensor_lse(flse, RINGATTN_F32, B, H, NQ);
        ringattn_tensor G = ringattn_tensor_bnhd(fdout, RINGATTN_F32, B, NQ, H, DV);
        ringattn_tensor DQ = ringattn_tensor_bnhd(tdq, RINGATTN_F32, B, NQ, H, D);
        ringattn_tensor DK = ringattn_tensor_bnhd(tdk, RINGATTN_F32, B, NK, HK, D);
        ringattn_tensor DV_ = ringattn_tensor_bnhd(tdv, RINGATTN_F32, B, NK, HK, DV);
        ringattn_config cfg = ringattn_default_config();
        cfg.compute = RINGATTN_F32;
        cfg.causal = CAUSAL;
        cfg.ring_size = 4;
        cfg.num_threads = 2;
        must(ringattn_forward(&cfg, &Q, &K, &V, &O, &L), "ringattn_forward under test");
        must(ringattn_backward(&cfg, &Q, &K, &V, &O, &L, &G, &DQ, &DK, &DV_), "ringattn_backward under test");
        if (inject) tdk[(size_t)(1 * NK + 17) * HK * D + 1 * D + 5] += 0.01f;   /* dk[1, 17, 1, 5] */

    /* -------- 5. compare element-wise ---------------------------------------------------- */
        printf("step 5: f32, 4 members / 2 threads vs the f64 reference (tolerance %.0e * scale * (1 + smax))\n",
               F32_TOL);
        ok &= compare("dq", tdq, dq, B, NQ, H, D, smax);
        ok &= compare("dk", tdk, dk, B, NK, HK, D, smax);
        ok &= compare("dv", tdv, dv, B, NK, HK, DV, smax);
        free(fq); free(fk); free(fv); free(fdout); free(fout); free(flse); free(tdq); free(tdk); free(tdv);
    }

    /* -------- 6. finite-difference spot check of the reference dq ----------------------- */
    /* dL/dq[e] ~ (L(q + h e) - L(q - h e)) / 2h, in f64. Row 0 of a causal problem sees key 0
       only, so its softmax is the constant 1 and its dq is exactly 0; the last row sees every
       key. */
    printf("step 6: central finite differences of L = sum(out * dout), step %.0e\n", FD_STEP);
    {
        static const int picks[6][4] = {   /* (b, n, h, d) */
            { 0, 0, 0, 0 }, { 0, 1, 3, 7 }, { 0, 47, 1, 31 }, { 1, 48, 2, 16 }, { 1, 90, 0, 3 }, { 1, 95, 3, 30 }
        };
        for (i = 0; i < 6; i++) {
            size_t e = (((size_t)picks[i][0] * NQ + picks[i][1]) * H + picks[i][2]) * D + picks[i][3];
            double keep = q[e], lp, lm, fd, den, rel;
            q[e] = keep + FD_STEP; lp = loss(q, k, v, dout, out);
            q[e] = keep - FD_STEP; lm = loss(q, k, v, dout, out);
            q[e] = keep;
            fd = (lp - lm) / (2 * FD_STEP);
            den = fabs(fd) > fabs(dq[e]) ? fabs(fd) : fabs(dq[e]);
            rel = fabs(fd - dq[e]) / (den > 1e-3 ? den : 1e-3);
            printf("  dq[b=%d, n=%2d, h=%d, d=%2d]: finite difference %+.10f, backward %+.10f, rel %.2e %s\n",
                   picks[i][0], picks[i][1], picks[i][2], picks[i][3], fd, dq[e], rel,
                   rel <= FD_TOL ? "ok" : "FAIL");
            ok &= rel <= FD_TOL;
        }
    }

    printf("%s\n", ok ? "gradcheck: all checks passed" : "gradcheck: FAILED");
    free(q); free(k); free(v); free(dout); free(out); free(lse); free(dq); free(dk); free(dv);
    return ok ? 0 : 1;
}
