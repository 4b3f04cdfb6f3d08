/* test_simd.c - the fused kernels and the exps as chosen at run time on x86-64 (AVX2+FMA,
   AVX-512F) give the same bits as the portable C code, in f32 and f64 compute.

   This file holds the library as built by default; tests/simd_scalar.c holds a second private
   copy built with RINGATTN_NO_SIMD and RINGATTN_NO_DISPATCH. Both run the same forward and
   backward calls (lengths that are and are not multiples of 4, 8 and 16, d = 19 (columns
   left over from the vectors), causal ragged tiles, scores far below the exp's underflow, masked NaN) and every output must match with memcmp.
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
    printf("test_simd: %d cases, %d failed\n", cases, fails);
    return fails ? 1 : 0;
}
