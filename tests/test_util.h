/* test_util.h - helpers shared by the ringattn tests (header only, static inline, no state).

   - a seeded RNG (splitmix64): the same seed gives the same inputs on every machine;
   - fill / convert / sentinel helpers for f32 and f64 buffers;
   - the tolerance policy of docs/golden.md, in one place:
       f64 compute: |got - ref| <= 1e-12 * max(max|ref|, max|V|, 1e-300)
                    (lse: 1e-12 * max(1, max|ref|), lse being a log, not in units of V)
       f32 compute: u = 2^-24, smax = max |scale| ||q_i|| ||k_j||, vmax = max|v|;
                    out: |got - ref| <= vmax * u * (2 d smax + nk + 16)
                    lse: |got - ref| <= u * (2 d smax + nk + 16) + u |ref|
     plus, when a tensor is STORED in f32 but computed in f64, the one final rounding to
     storage, u |ref|, which no compute precision can avoid;
   - compare_report(): worst error (absolute and as a fraction of the allowed tolerance), the
     first mismatches with their index, llm.c style (stop after 10); -inf == -inf, NaN fails;
   - tbuf (with ringattn.h included first): a contiguous tensor of any dtype filled from and
     read into f64, and round_all(), a buffer rounded to what a dtype stores;
   - CHECK(cond, fmt, ...): counts into `*failures`, which the calling function must have in
     scope (an `int *failures` parameter): no global counters.
   Exit codes: 0 pass, 1 fail, 77 skipped. */
#ifndef RINGATTN_TEST_UTIL_H
#define RINGATTN_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_PASS 0
#define TEST_FAIL 1
#define TEST_SKIP 77

/* count a failure and say where; needs `int *failures` in scope */
#define CHECK(cond, ...)                                                 \
    do {                                                                 \
        if (!(cond)) {                                                   \
            printf("  FAIL %s:%d: ", __FILE__, __LINE__);                \
            printf(__VA_ARGS__);                                         \
            printf("\n");                                                \
            ++*failures;                                                 \
        }                                                                \
    } while (0)

/* ---------------------------------------------------------------- RNG */

typedef struct { uint64_t s; } test_rng;

static inline test_rng rng_seed(uint64_t seed)
{
    test_rng r;
    r.s = seed;
    return r;
}

/* splitmix64: tiny, full period, good enough to make test data */
static inline uint64_t rng_next(test_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* uniform in [0, 1), 53 random bits */
static inline double rng_uniform(test_rng *r)
{
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* approximately N(0, 1): Irwin-Hall sum of 12 uniforms, no libm involved, so the data is
   bit-identical across platforms */
static inline double rng_normal(test_rng *r)
{
    double s = 0;
    int i;
    for (i = 0; i < 12; i++) s += rng_uniform(r);
    return s - 6.0;
}

static inline void fill_normal(double *x, int64_t n, uint64_t seed)
{
    test_rng r = rng_seed(seed);
    int64_t i;
    for (i = 0; i < n; i++) x[i] = rng_normal(&r);
}

/* ---------------------------------------------------------------- conversions, sentinels */

static inline void f64_to_f32(const double *src, float *dst, int64_t n)
{
    int64_t i;
    for (i = 0; i < n; i++) dst[i] = (float)src[i];
}

static inline void f32_to_f64(const float *src, double *dst, int64_t n)
{
    int64_t i;
    for (i = 0; i < n; i++) dst[i] = (double)src[i];
}

/* round f64 data to the f32 grid in place, so an f64 oracle sees exactly what f32 storage holds */
static inline void round_to_f32(double *x, int64_t n)
{
    int64_t i;
    for (i = 0; i < n; i++) x[i] = (double)(float)x[i];
}

#define TEST_SENTINEL 12345.0

static inline void fill_sentinel_f64(double *x, int64_t n)
{
    int64_t i;
    for (i = 0; i < n; i++) x[i] = TEST_SENTINEL;
}

static inline void fill_sentinel_f32(float *x, int64_t n)
{
    int64_t i;
    for (i = 0; i < n; i++) x[i] = (float)TEST_SENTINEL;
}

static inline int all_sentinel_f64(const double *x, int64_t n)
{
    int64_t i;
    for (i = 0; i < n; i++) if (x[i] != TEST_SENTINEL) return 0;
    return 1;
}

static inline int all_sentinel_f32(const float *x, int64_t n)
{
    int64_t i;
    for (i = 0; i < n; i++) if (x[i] != (float)TEST_SENTINEL) return 0;
    return 1;
}

/* ---------------------------------------------------------------- tolerance policy */

#define TEST_U32 (1.0 / 16777216.0)   /* 2^-24: unit roundoff of f32 */

static inline double max_abs_f64(const double *x, int64_t n)
{
    double m = 0;
    int64_t i;
    for (i = 0; i < n; i++) if (fabs(x[i]) > m) m = fabs(x[i]);
    return m;
}

/* largest finite |x| (lse has -inf rows) */
static inline double max_abs_finite_f64(const double *x, int64_t n)
{
    double m = 0;
    int64_t i;
    for (i = 0; i < n; i++) if (isfinite(x[i]) && fabs(x[i]) > m) m = fabs(x[i]);
    return m;
}

/* smax = max over (batch, q head, i, j) of |scale| ||q_i|| ||k_j||, the largest score a row
   could meet; q [b,nq,h,d], k [b,nk,hk,d], f64 */
static inline double tol_smax(const double *q, const double *k, int64_t b, int64_t nq,
                              int64_t nk, int64_t h, int64_t hk, int64_t d, double scale)
{
    double smax = 0;
    int64_t bb, hh, i, c;
    for (bb = 0; bb < b; bb++)
        for (hh = 0; hh < h; hh++) {
            int64_t kh = hh / (h / hk);
            double qn = 0, kn = 0;
            for (i = 0; i < nq; i++) {
                const double *x = q + ((bb * nq + i) * h + hh) * d;
                double s = 0;
                for (c = 0; c < d; c++) s += x[c] * x[c];
                if (s > qn) qn = s;
            }
            for (i = 0; i < nk; i++) {
                const double *x = k + ((bb * nk + i) * hk + kh) * d;
                double s = 0;
                for (c = 0; c < d; c++) s += x[c] * x[c];
                if (s > kn) kn = s;
            }
            if (fabs(scale) * sqrt(qn) * sqrt(kn) > smax) smax = fabs(scale) * sqrt(qn) * sqrt(kn);
        }
    return smax;
}

/* an element passes iff |got - ref| <= abs + rel * |ref| */
typedef struct { double abs, rel; } test_tol;

static inline test_tol tol_f32_out(double smax, double vmax, int64_t d, int64_t nk)
{
    test_tol t;
    t.abs = vmax * TEST_U32 * (2.0 * (double)d * smax + (double)nk + 16.0);
    t.rel = 0;
    return t;
}

static inline test_tol tol_f32_lse(double smax, int64_t d, int64_t nk)
{
    test_tol t;
    t.abs = TEST_U32 * (2.0 * (double)d * smax + (double)nk + 16.0);
    t.rel = TEST_U32;
    return t;
}

static inline test_tol tol_f64_out(double max_ref, double vmax)
{
    test_tol t;
    double s = max_ref > vmax ? max_ref : vmax;
    t.abs = 1e-12 * (s > 1e-300 ? s : 1e-300);
    t.rel = 0;
    return t;
}

static inline test_tol tol_f64_lse(double max_ref)
{
    test_tol t;
    t.abs = 1e-12 * (max_ref > 1.0 ? max_ref : 1.0);
    t.rel = 0;
    return t;
}

/* ---------------------------------------------------------------- comparison */

typedef struct {
    double max_abs;    /* worst |got - ref| over finite pairs            */
    double max_frac;   /* worst |got - ref| / tolerance (> 1 is a fail)  */
    int64_t bad;       /* elements out of tolerance, NaN, or inf mismatch */
} test_cmp;

/* got vs ref, both contiguous f64 with logical dims[4] (named by `axes`, e.g. "bnhd" or
   "bhn."); prints the first 10 mismatches with their index */
static inline test_cmp compare_report(const char *what, const double *got, const double *ref,
                                      const int64_t dims[4], const char *axes, test_tol tol)
{
    test_cmp r;
    int64_t n = dims[0] * dims[1] * dims[2] * dims[3], i;
    r.max_abs = 0; r.max_frac = 0; r.bad = 0;
    for (i = 0; i < n; i++) {
        double g = got[i], f = ref[i], err, allowed;
        int ok;
        if (g != g || f != f) { ok = 0; err = INFINITY; }
        else if (isinf(g) || isinf(f)) { ok = (g == f); err = ok ? 0.0 : INFINITY; }
        else {
            err = fabs(g - f);
            allowed = tol.abs + tol.rel * fabs(f);
            ok = err <= allowed;
            if (err > r.max_abs) r.max_abs = err;
            if (allowed > 0 && err / allowed > r.max_frac) r.max_frac = err / allowed;
            if (allowed == 0 && err > 0) r.max_frac = INFINITY;
        }
        if (!ok) {
            if (r.bad < 10) {
                int64_t i3 = i % dims[3], i2 = (i / dims[3]) % dims[2];
                int64_t i1 = (i / (dims[3] * dims[2])) % dims[1], i0 = i / (dims[3] * dims[2] * dims[1]);
                printf("    mismatch %s[%c=%lld %c=%lld %c=%lld %c=%lld]: got %.17g ref %.17g "
                       "(err %.3g, tol %.3g)\n", what, axes[0], (long long)i0, axes[1], (long long)i1,
                       axes[2], (long long)i2, axes[3], (long long)i3, g, f, err,
                       tol.abs + tol.rel * fabs(f));
            }
            r.bad++;
        }
    }
    if (r.bad > 10) printf("    ... %lld mismatches in %s in all\n", (long long)r.bad, what);
    if (r.bad > 0 && r.max_frac < 1.0) r.max_frac = INFINITY;   /* NaN / inf mismatch */
    return r;
}

#ifdef RINGATTN_H   /* helpers over ringattn.h's types and conversions (when it is included first) */
/* a contiguous tensor of any dtype holding logical f64 data */
typedef struct {
    void *data;
    int64_t count;
    ringattn_tensor t;
} tbuf;

static inline void tb_new(tbuf *b, ringattn_dtype dt, int64_t s0, int64_t s1, int64_t s2, int64_t s3)
{
    b->count = s0 * s1 * s2 * s3;
    b->data = calloc((size_t)(b->count > 0 ? b->count : 1), ringattn__dtype_size(dt));
    b->t = ringattn_tensor_bnhd(b->data, dt, s0, s1, s2, s3);
}

static inline void tb_write(tbuf *b, const double *x)
{
    int64_t i;
    for (i = 0; i < b->count; i++) ringattn__store(b->data, b->t.dtype, i, x[i]);
}

static inline void tb_read(const tbuf *b, double *x)
{
    int64_t i;
    for (i = 0; i < b->count; i++) x[i] = ringattn__load(b->data, b->t.dtype, i);
}

static inline void tb_free(tbuf *b) { free(b->data); b->data = NULL; }

/* x rounded in place to what dtype t stores */
static inline void round_all(double *x, int64_t n, ringattn_dtype t)
{
    int64_t i;
    for (i = 0; i < n; i++) x[i] = ringattn__round(x[i], t);
}
#endif

#endif /* RINGATTN_TEST_UTIL_H */
