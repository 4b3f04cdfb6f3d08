/* demo.c - ring attention over 2048 tokens, checked against a naive attention.

   b = 1, h = 4, n = 2048, d = 64, random f32 inputs. For ring sizes p = 1, 2, 4, 8, without
   and with a causal mask, it runs ringattn_forward and compares every output element and
   every lse with a naive f64 attention written out below (whole score rows, two-pass
   softmax, no ring), under the README's f32 tolerance policy. Per p it prints the wall time,
   the largest errors, the bytes each ring member was planned to hold and actually held and
   the score-tile scratch of each thread (cfg.stats), and how many (member, step) blocks were
   computed or skipped (a causal mask skips the blocks above the diagonal).

   It is also the copy-in example: it needs nothing but ringattn.h.
     cc -std=c99 -O2 -I. examples/demo.c -lm                     (members one after another)
     cc -std=c99 -O2 -fopenmp -DRINGATTN_USE_CBLAS -I. examples/demo.c -lopenblas -lm
   Run:
     ./demo            n = 2048
     ./demo --quick    n = 256 (what the test suite runs)
   Exit status 0 when every error is within the tolerance, 1 otherwise. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 199309L   /* clock_gettime under -std=c99 */
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* xorshift64*: the same inputs on every machine */
static double uniform(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    *state = x;
    return (double)((x * 2685821657736338717ULL) >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* Naive attention for one batch, in f64. q, k, v, out: [n, h, d]; lse: [h, n].
   Causal with n_q == n_k: query i sees keys 0..i. */
static void naive_attention(int n, int h, int d, const float *q, const float *k, const float *v,
                            int causal, double *out, double *lse)
{
    double scale = 1.0 / sqrt((double)d);
    double *s = (double *)malloc((size_t)n * sizeof(double));
    int hh, i, j, c;
    for (hh = 0; hh < h; hh++)
    for (i = 0; i < n; i++) {
        int last = causal ? i : n - 1;      /* keys 0..last are visible */
        double m = -INFINITY, l = 0;
        /* pass 1: scores and their maximum */
        for (j = 0; j <= last; j++) {
            double dot = 0;
            for (c = 0; c < d; c++)
                dot += (double)q[((size_t)i * h + hh) * d + c] * (double)k[((size_t)j * h + hh) * d + c];
            s[j] = scale * dot;
            if (s[j] > m) m = s[j];
        }
        /* pass 2: weights, their sum, the weighted sum of values */
        for (j = 0; j <= last; j++) { s[j] = exp(s[j] - m); l += s[j]; }
        for (c = 0; c < d; c++) {
            double acc = 0;
            for (j = 0; j <= last; j++) acc += s[j] * (double)v[((size_t)j * h + hh) * d + c];
            out[((size_t)i * h + hh) * d + c] = acc / l;
        }
        lse[(size_t)hh * n + i] = m + log(l);
    }
    free(s);
}

/* largest Euclidean norm of a row of x [rows, d] */
static double max_row_norm(const float *x, size_t rows, int d)
{
    double best = 0;
    size_t r; int c;
    for (r = 0; r < rows; r++) {
        double ss = 0;
        for (c = 0; c < d; c++) ss += (double)x[r * d + c] * (double)x[r * d + c];
        if (sqrt(ss) > best) best = sqrt(ss);
    }
    return best;
}

int main(int argc, char **argv)
{
    const int b = 1, h = 4, d = 64;
    const int n = (argc > 1 && strcmp(argv[1], "--quick") == 0) ? 256 : 2048;
    const int rings[4] = { 1, 2, 4, 8 };
    const size_t count = (size_t)b * n * h * d;
    float *q = (float *)malloc(count * sizeof(float));
    float *k = (float *)malloc(count * sizeof(float));
    float *v = (float *)malloc(count * sizeof(float));
    float *o = (float *)malloc(count * sizeof(float));
    float *lse = (float *)malloc((size_t)b * h * n * sizeof(float));
    double *ref = (double *)malloc(count * sizeof(double));
    double *ref_lse = (double *)malloc((size_t)b * h * n * sizeof(double));
    double vmax = 0, smax, u = ldexp(1.0, -24), growth;
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    size_t x;
    int causal, ip, failures = 0;

    if (!q || !k || !v || !o || !lse || !ref || !ref_lse) { fprintf(stderr, "out of memory\n"); return 1; }
    for (x = 0; x < count; x++) q[x] = (float)uniform(&seed);
    for (x = 0; x < count; x++) k[x] = (float)uniform(&seed);
    for (x = 0; x < count; x++) { v[x] = (float)uniform(&seed); if (fabs(v[x]) > vmax) vmax = fabs(v[x]); }

    /* the tolerance policy (README, "Tolerance"): f32 compute, u = 2^-24,
       |O - ref| <= vmax * u * (2 d smax + nk + 16),  |lse - ref| <= u * (2 d smax + nk + 16) + u |lse| */
    smax = max_row_norm(q, (size_t)b * n * h, d) * max_row_norm(k, (size_t)b * n * h, d) / sqrt((double)d);
    growth = 2.0 * d * smax + n + 16;

    printf("ringattn demo: b=%d h=%d n=%d d=%d, f32 in and out, f32 compute\n", b, h, n, d);
#ifdef _OPENMP
    printf("ring members: OpenMP threads (up to %d)", omp_get_max_threads());
#else
    printf("ring members: one after another (built without OpenMP)");
#endif
#ifdef RINGATTN_USE_CBLAS
    printf(", blocks multiplied by cblas\n");
#else
    printf(", blocks multiplied by the built-in GEMM\n");
#endif
    printf("tolerance: |O - ref| <= %.3g, |lse - ref| <= %.3g + u*|lse|\n\n", vmax * u * growth, u * growth);
    printf("%-7s %2s %7s %9s %10s %10s %6s %11s %11s %9s %16s\n", "mask", "p", "threads", "time ms",
           "max|dO|", "max|dlse|", "/bound", "planned B", "measured B", "scratch B", "blocks comp/skip");

    for (causal = 0; causal <= 1; causal++) {
        naive_attention(n, h, d, q, k, v, causal, ref, ref_lse);   /* b = 1 */
        for (ip = 0; ip < 4; ip++) {
            ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F32, b, n, h, d);
            ringattn_tensor K = ringattn_tensor_bnhd(k, RINGATTN_F32, b, n, h, d);
            ringattn_tensor V = ringattn_tensor_bnhd(v, RINGATTN_F32, b, n, h, d);
            ringattn_tensor O = ringattn_tensor_bnhd(o, RINGATTN_F32, b, n, h, d);
            ringattn_tensor L = ringattn_tensor_lse(lse, RINGATTN_F32, b, h, n);
            ringattn_config cfg = ringattn_default_config();
            ringattn_stats stats;
            double t0, ms, err_o = 0, err_l = 0, worst = 0;
            int st;

            cfg.ring_size = rings[ip];
            cfg.causal = causal ? RINGATTN_CAUSAL_BOTTOM_RIGHT : RINGATTN_CAUSAL_NONE;
            cfg.stats = &stats;
            t0 = now_ms();
            st = ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
            ms = now_ms() - t0;
            if (st != RINGATTN_OK) {
                printf("p=%d: ringattn_forward failed: %s\n", rings[ip], ringattn_strerror(st));
                failures++;
                continue;
            }
            for (x = 0; x < count; x++) {
                double e = fabs((double)o[x] - ref[x]);
                if (!(e <= err_o)) err_o = e;                 /* a NaN is the worst error */
                if (!(e / (vmax * u * growth) <= worst)) worst = e / (vmax * u * growth);
            }
            for (x = 0; x < (size_t)b * h * n; x++) {
                double e = fabs((double)lse[x] - ref_lse[x]);
                double bound = u * growth + u * fabs(ref_lse[x]);
                if (!(e <= err_l)) err_l = e;
                if (!(e / bound <= worst)) worst = e / bound;
            }
            printf("%-7s %2d %7d %9.1f %10.2e %10.2e %6.0e %11lu %11lu %9lu %9ld/%ld\n",
                   causal ? "causal" : "none", rings[ip], stats.num_threads, ms, err_o, err_l, worst,
                   (unsigned long)stats.planned_bytes_per_member,
                   (unsigned long)stats.peak_bytes_per_member,
                   (unsigned long)stats.scratch_bytes_per_thread,
                   (long)stats.blocks_computed, (long)stats.blocks_skipped);
            if (!(worst <= 1.0)) failures++;
        }
    }
    printf("\n%s\n", failures ? "FAIL: an error exceeds the tolerance" : "all results within the tolerance");
    free(q); free(k); free(v); free(o); free(lse); free(ref); free(ref_lse);
    return failures ? 1 : 0;
}
