/* test_simd.c - the fused kernels and the exps as chosen at run time on x86-64 (AVX2+FMA,
   AVX-512F) give the same bits as the portable C code, in f32 and f64 compute.

   This file holds the library as built by default; tests/simd_scalar.c holds a second private
   copy built with RINGATTN_NO_SIMD and RINGATTN_NO_DISPATCH. Both run the same forward and
   backward calls (lengths that are and are not multiples of 4, 8 and 16, d = 19 (columns
   left over from the vectors), causal ragged tiles, scores far below the exp's underflow, masked NaN) and every output must match with memcmp.
   Then each entry of the kernel table on its own, against the portable C table: the row
   functions on every length 0..300, the fused kernels on row blocks of 1..14 rows, the
   precision emulation's rounding on every sign, exponent and rounding cut of a float, the
   range rule's row scan (norm2) and the f32 output's last division (row_out) on every length
   0..300 with huge, tiny and non-finite values.
   Sums follow one fixed order in both, so even the softmax denominators agree bit for bit. */
#define RINGATTN_STATIC
#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif
int simd_scalar_forward(const ringattn_config *cfg, const ringattn_tensor *q, const ringattn_tensor *k,
                        const ringattn_tensor *v, ringattn_tensor *out, ringattn_tensor *lse);
int simd_scalar_backward(const ringattn_config *cfg, const ringattn_tensor *q, const ringattn_tensor *k,
                         const ringattn_tensor *v, const ringattn_tensor *out, const ringattn_tensor *lse,
                         const ringattn_tensor *dout, ringattn_tensor *dq, ringattn_tensor *dk,
                         ringattn_tensor *dv);
#ifdef __cplusplus
}
#endif

static uint64_t rng = 88172645463325252ull;
static double urand(void)   /* xorshift64, [-1, 1) */
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (double)(rng >> 11) / 4503599627370496.0 - 1.0;
}

static float *fill(int64_t count, double amp)
{
    float *x = (float *)malloc((size_t)count * sizeof *x);
    int64_t i;
    for (i = 0; i < count; i++) x[i] = (float)(amp * urand());
    return x;
}

static int same(const char *what, const void *a, const void *b, size_t bytes, const char *label)
{
    if (memcmp(a, b, bytes) == 0) return 1;
    printf("FAIL %s: %s differs between the vector kernels and the portable C\n", label, what);
    return 0;
}


/* one table entry against the portable C, on lengths around every vector and block size:
   the row functions over n = 0..300 (with -inf, NaN and far-underflowing scores), the fused
   kernels on row blocks of 1..14 rows (register blocks and their repeated last row) */
static char *buf(size_t bytes) { return (char *)calloc(bytes ? bytes : 1, 1); }
static void fillt(void *x, int f64, int64_t n, double amp, double shift)
{
    int64_t i;
    for (i = 0; i < n; i++) {
        double y = amp * urand() + shift;
        if (f64) ((double *)x)[i] = y; else ((float *)x)[i] = (float)y;
    }
}
static void sett(void *x, int f64, int64_t i, double y)
{
    if (f64) ((double *)x)[i] = y; else ((float *)x)[i] = (float)y;
}

static int table_check(const ringattn__kernels *V, const ringattn__kernels *C, int f64)
{
    size_t es = f64 ? 8 : 4;
    int fails = 0, kind;
    int64_t n, nr, j;
    char label[96];
    for (kind = 0; kind < 3; kind++)
    for (n = 0; n <= 300; n++) {
        char *a = buf((size_t)n * es), *b = buf((size_t)n * es);
        double ma, mb, sa, sb;
        fillt(a, f64, n, kind == 1 ? (f64 ? 800.0 : 60.0) : 8.0, -2.0);   /* kind 1: across the exp's underflow */
        if (kind == 2 && n > 0) {                          /* kind 2: -inf and NaN entries */
            sett(a, f64, n / 3, -INFINITY);
            if (n > 4) sett(a, f64, n - 2, NAN);
        }
        memcpy(b, a, (size_t)n * es);
        ma = V->row_max(a, n); mb = C->row_max(b, n);
        snprintf(label, sizeof label, "%s row functions n=%d kind=%d", V->name, (int)n, kind);
        if (memcmp(&ma, &mb, sizeof ma) != 0 && !(ma != ma && mb != mb)) {
            printf("FAIL %s: row_max %.17g != %.17g\n", label, ma, mb); fails++;
        }
        if (mb != mb || mb == -INFINITY) mb = 0.5;
        sa = V->row_exp(a, n, mb); sb = C->row_exp(b, n, mb);
        fails += !same("row_exp", a, b, (size_t)n * es, label);
        fails += !same("row_exp's sum", &sa, &sb, sizeof sa, label);
        fillt(a, f64, n, 8.0, -2.0); memcpy(b, a, (size_t)n * es);
        V->row_prob(a, n, 1.2345678901234567); C->row_prob(b, n, 1.2345678901234567);
        fails += !same("row_prob", a, b, (size_t)n * es, label);
        free(a); free(b);
    }
    for (nr = 1; nr <= 14; nr++) {
        static const int64_t ds[] = { 1, 7, 24, 64 }, ns2[] = { 1, 17, 40 };
        size_t di, ni;
        for (di = 0; di < sizeof ds / sizeof ds[0]; di++)
        for (ni = 0; ni < sizeof ns2 / sizeof ns2[0]; ni++) {
            int64_t d = ds[di], nk = ns2[ni], np = (nk + RINGATTN__PANEL - 1) / RINGATTN__PANEL, i, dx = d + 3;
            char *q = buf((size_t)(nr * d) * es), *kp = buf((size_t)(np * RINGATTN__PANEL * d) * es);
            char *s0 = buf((size_t)(nr * np * RINGATTN__PANEL) * es), *s1 = buf((size_t)(nr * np * RINGATTN__PANEL) * es);
            char *v = buf((size_t)(nk * dx) * es), *o0 = buf((size_t)(nr * dx) * es), *o1 = buf((size_t)(nr * dx) * es);
            char *t0 = buf((size_t)(nk * dx) * es), *t1 = buf((size_t)(nk * dx) * es);
            const void *qr[16], *kr[8], *pr[16]; void *sr0[16], *sr1[16], *or0[16], *or1[16];
            snprintf(label, sizeof label, "%s kernels nr=%d d=%d n=%d", V->name, (int)nr, (int)d, (int)nk);
            fillt(q, f64, nr * d, 1.0, 0.0); fillt(kp, f64, np * RINGATTN__PANEL * d, 1.0, 0.0);
            fillt(v, f64, nk * dx, 1.0, 0.0); fillt(o0, f64, nr * dx, 1.0, 0.0);
            memcpy(o1, o0, (size_t)(nr * dx) * es);
            fillt(t0, f64, nk * dx, 1.0, 0.0); memcpy(t1, t0, (size_t)(nk * dx) * es);
            for (j = 0; j < np; j++) kr[j] = kp + (size_t)(j * RINGATTN__PANEL * d) * es;
            for (i = 0; i < nr; i++) {
                qr[i] = q + (size_t)(i * d) * es;
                sr0[i] = s0 + (size_t)(i * np * RINGATTN__PANEL) * es; sr1[i] = s1 + (size_t)(i * np * RINGATTN__PANEL) * es;
                pr[i] = sr0[i];
                or0[i] = o0 + (size_t)(i * dx) * es; or1[i] = o1 + (size_t)(i * dx) * es;
            }
            V->qk(nr, qr, d, kr, np, 0.125, sr0); C->qk(nr, qr, d, kr, np, 0.125, sr1);
            fails += !same("qk", s0, s1, (size_t)(nr * np * RINGATTN__PANEL) * es, label);
            V->pv(nr, pr, nk, v, dx, dx, or0); C->pv(nr, pr, nk, v, dx, dx, or1);
            fails += !same("pv", o0, o1, (size_t)(nr * dx) * es, label);
            /* pt: the rows of P (nr of them, np * PANEL apart) transposed onto nk keys */
            V->pt(nr, s0, np * RINGATTN__PANEL, nk, o0, dx, dx, t0, dx);
            C->pt(nr, s0, np * RINGATTN__PANEL, nk, o0, dx, dx, t1, dx);
            fails += !same("pt", t0, t1, (size_t)(nk * dx) * es, label);
            free(q); free(kp); free(s0); free(s1); free(v); free(o0); free(o1); free(t0); free(t1);
        }
    }
    {   /* row_round (the precision emulation), every target type: floats whose bits 13..31 take
           all 2^19 values (every sign, exponent and bf16 / f16 cut, so every tie and carry of
           both roundings) under seven patterns of the low 13 bits, rows of 4093 (a ragged tail) */
        static const uint32_t lows[] = { 0x0000u, 0x0001u, 0x0FFFu, 0x1000u, 0x1001u, 0x1FFFu, 0x0A5Au };
        static const ringattn_dtype pts[] = { RINGATTN_BF16, RINGATTN_F16, RINGATTN_F32,
                                              RINGATTN_FP8_E4M3, RINGATTN_FP8_E5M2, RINGATTN_F64 };
        const int64_t row = 4093, total = (int64_t)1 << 19;
        char *a = buf((size_t)row * es), *b = buf((size_t)row * es);
        size_t li, pi;
        for (pi = 0; pi < sizeof pts / sizeof pts[0]; pi++)
        for (li = 0; li < sizeof lows / sizeof lows[0]; li++) {
            int64_t hi0, bad = 0;
            for (hi0 = 0; hi0 < total; hi0 += row) {
                int64_t m = total - hi0 < row ? total - hi0 : row;
                for (j = 0; j < m; j++) {
                    uint32_t u = (uint32_t)(hi0 + j) << 13 | lows[li];
                    float f;
                    memcpy(&f, &u, sizeof f);
                    sett(a, f64, j, f);
                }
                memcpy(b, a, (size_t)m * es);
                V->row_round(a, m, pts[pi]); C->row_round(b, m, pts[pi]);
                bad += memcmp(a, b, (size_t)m * es) != 0;
            }
            if (bad) {
                printf("FAIL %s row_round to dtype %d, low bits %04x: %d rows differ\n", V->name, (int)pts[pi],
                       (unsigned)lows[li], (int)bad);
                fails++;
            }
        }
        free(a); free(b);
    }
    {   /* norm2 (the range rule's scan of a float row): every length 0..300 and start offsets
           0..3, ordinary values, huge ones (near FLT_MAX), subnormals, NaN and +-Inf mixed in */
        static const float odd[] = { NAN, INFINITY, -INFINITY, 3.0e38f, -3.4028235e38f, 1.0e-45f, -0.0f };
        float *x = (float *)malloc(310 * sizeof *x);
        int64_t n, off, bad = 0;
        for (n = 0; n <= 300; n++)
        for (off = 0; off < 4; off++) {
            double s4a[4] = { 0.5, 0, 1, 0 }, s4b[4] = { 0.5, 0, 1, 0 }, ba = 0.25, bb = 0.25;   /* they add on */
            for (j = 0; j < n + off; j++)
                x[j] = (j % 11 == 3) ? odd[(j / 11 + n) % 7] : (float)(urand() * ((j % 5 == 0) ? 1e19 : 2.0));
            V->norm2(x + off, n, s4a, &ba); C->norm2(x + off, n, s4b, &bb);
            bad += memcmp(s4a, s4b, sizeof s4a) != 0 || memcmp(&ba, &bb, sizeof ba) != 0;
        }
        if (bad) { printf("FAIL %s norm2: %d rows differ\n", V->name, (int)bad); fails++; }
        free(x);
    }
    {   /* row_out (a finished row of f32 output): every length 0..300, l from 1 to 1e30, a
           power-of-two gdiv, values with NaN, Inf, huge and subnormal ones mixed in */
        static const double odd[] = { NAN, INFINITY, -INFINITY, 3.0e38, -1.0e-45, 0.0, 1.0e-300 };
        char *x = buf(310 * es);
        float *y0 = (float *)malloc(310 * sizeof *y0), *y1 = (float *)malloc(310 * sizeof *y1);
        int64_t n, bad = 0;
        for (n = 0; n <= 300; n++) {
            double l = pow(10.0, (double)(n % 31)) * (1.0 + 0.5 * urand()), g = ldexp(1.0, (int)(n % 5) - 2);
            for (j = 0; j < n; j++) sett(x, f64, j, (j % 13 == 5) ? odd[(j / 13 + n) % 7] : urand() * l * 3.0);
            V->row_out(y0, x, n, l, g); C->row_out(y1, x, n, l, g);
            bad += memcmp(y0, y1, (size_t)n * sizeof *y0) != 0;
        }
        if (bad) { printf("FAIL %s row_out: %d rows differ\n", V->name, (int)bad); fails++; }
        free(x); free(y0); free(y1);
    }
    return fails;
}

int main(void)
{
    static const int64_t ns[] = { 1, 5, 8, 13, 64, 100, 257 };
    static const double amps[] = { 1.0, 30.0 };   /* 30: many weights underflow to 0 */
    int fails = 0, cases = 0;
    size_t ni, ai;
    int causal, p, ct, di;
    for (ct = 0; ct < 2; ct++)          /* compute f32, f64 (storage of the inputs: f32) */
    for (di = 0; di < 2; di++)          /* d = 24, and 19 (columns left over from the vectors) */
    for (ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
    for (ai = 0; ai < sizeof amps / sizeof amps[0]; ai++)
    for (causal = 0; causal <= 1; causal++)
    for (p = 1; p <= 3; p += 2) if (p <= ns[ni]) {
        int64_t n = ns[ni], h = 2, d = di ? 19 : 24, cnt = n * h * d;
        ringattn_dtype odt = ct ? RINGATTN_F64 : RINGATTN_F32;   /* outputs in the compute dtype */
        size_t oes = ct ? 8 : 4;
        float *q = fill(cnt, amps[ai]), *k = fill(cnt, amps[ai]), *v = fill(cnt, 1.0), *dout = fill(cnt, 1.0);
        float *o[2], *l[2], *dq[2], *dk[2], *dv[2];
        ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F32, 1, n, h, d);
        ringattn_tensor K = ringattn_tensor_bnhd(k, RINGATTN_F32, 1, n, h, d);
        ringattn_tensor V = ringattn_tensor_bnhd(v, RINGATTN_F32, 1, n, h, d);
        ringattn_tensor DO = ringattn_tensor_bnhd(dout, RINGATTN_F32, 1, n, h, d);
        ringattn_config cfg = ringattn_default_config();
        char label[96];
        int s, st[4] = { 0, 0, 0, 0 };
        cfg.causal = causal; cfg.ring_size = p; cfg.num_threads = 1; cfg.compute = odt;
        if (causal && n > 4) k[(n - 1) * h * d] = NAN;   /* the last key: hidden from all but the last row */
        for (s = 0; s < 2; s++) {
            ringattn_tensor O, L, DQ, DK, DV;
            o[s] = fill(2 * cnt, 0); l[s] = fill(2 * n * h, 0);   /* room for doubles */
            dq[s] = fill(2 * cnt, 0); dk[s] = fill(2 * cnt, 0); dv[s] = fill(2 * cnt, 0);
            O = ringattn_tensor_bnhd(o[s], odt, 1, n, h, d);
            L = ringattn_tensor_lse(l[s], odt, 1, h, n);
            DQ = ringattn_tensor_bnhd(dq[s], odt, 1, n, h, d);
            DK = ringattn_tensor_bnhd(dk[s], odt, 1, n, h, d);
            DV = ringattn_tensor_bnhd(dv[s], odt, 1, n, h, d);
            if (s == 0) {
                st[0] = ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
                st[1] = ringattn_backward(&cfg, &Q, &K, &V, &O, &L, &DO, &DQ, &DK, &DV);
            } else {
                st[2] = simd_scalar_forward(&cfg, &Q, &K, &V, &O, &L);
                st[3] = simd_scalar_backward(&cfg, &Q, &K, &V, &O, &L, &DO, &DQ, &DK, &DV);
            }
        }
        snprintf(label, sizeof label, "%s n=%d d=%d amp=%g causal=%d p=%d", ct ? "f64" : "f32", (int)n, (int)d,
                 amps[ai], causal, p);
        cases++;
        if (st[0] || st[1] || st[2] || st[3]) { printf("FAIL %s: status %d %d %d %d\n", label, st[0], st[1], st[2], st[3]); fails++; }
        else {
            int ok = same("out", o[0], o[1], (size_t)cnt * oes, label) & same("lse", l[0], l[1], (size_t)(n * h) * oes, label)
                   & same("dq", dq[0], dq[1], (size_t)cnt * oes, label) & same("dk", dk[0], dk[1], (size_t)cnt * oes, label)
                   & same("dv", dv[0], dv[1], (size_t)cnt * oes, label);
            fails += !ok;
        }
        for (s = 0; s < 2; s++) { free(o[s]); free(l[s]); free(dq[s]); free(dk[s]); free(dv[s]); }
        free(q); free(k); free(v); free(dout);
    }
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    printf("test_simd: this CPU %s AVX2+FMA, %s AVX-512F; the kernels checked: %s, %s\n",
           __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? "has" : "lacks",
           __builtin_cpu_supports("avx512f") ? "has" : "lacks",
           ringattn__kernels_for(RINGATTN_F32)->name, ringattn__kernels_for(RINGATTN_F64)->name);
#endif
    {   /* the tables themselves, entry by entry */
        int tf = table_check(ringattn__kernels_for(RINGATTN_F32), &ringattn__kernels_c32, 0);
        tf += table_check(ringattn__kernels_for(RINGATTN_F64), &ringattn__kernels_c64, 1);
        printf("test_simd: kernel tables against the portable C: %d differences\n", tf);
        fails += tf;
    }
    printf("test_simd: %d cases, %d failed\n", cases, fails);
    return fails ? 1 : 0;
}
