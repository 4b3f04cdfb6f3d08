/* ringattn_layer.h - the multihead (dilated) attention layer around ringattn.h's attention:
   q/k/v projections, ring / dilated attention, LayerNorm, output projection, forward and
   backward, and its initialisation. Companion header, stb style.
                                                               Version 0.1 (see end of file)
   USAGE
     In exactly ONE C or C++ file of your project:
         #define RINGATTN_IMPLEMENTATION
         #include "ringattn_layer.h"          (includes ringattn.h)
     Everywhere else just #include "ringattn_layer.h".
     The one switch emits both implementations, ringattn.h's and then the layer's (which
     calls ringattn.h's internal functions, so it must live in the same file): there is no
     separate layer switch. The file that holds ringattn.h's implementation must therefore
     include ringattn_layer.h (before or after ringattn.h) for the layer to be compiled.
     Build lines are ringattn.h's:
         cc -std=c99 -I. myfile.c -lm
         cc -std=c99 -fopenmp -DRINGATTN_USE_CBLAS -I. myfile.c -lopenblas -lm

     Minimal call (x: [batch, seq, E] floats; wqkv [3E, E], wo [E, E] in nn.Linear layout):
         ringattn_layer_params P = ringattn_layer_default_params(E, num_heads);
         P.w.wqkv = ringattn_layer_matrix(wqkv, RINGATTN_F32, 3 * E, E);
         P.w.wo = ringattn_layer_matrix(wo, RINGATTN_F32, E, E);
         ringattn_tensor X = ringattn_layer_bne(x, RINGATTN_F32, b, n, E);
         ringattn_tensor Y = ringattn_layer_bne(y, RINGATTN_F32, b, n, E);
         ringattn_config cfg = ringattn_default_config();     the attention's config
         int st = ringattn_layer_forward(&cfg, &P, &X, NULL, NULL, &Y);     self-attention

   WHAT IT COMPUTES
     RingMultiheadDilatedAttention / fkodom's MultiheadDilatedAttention as one call:
         Q = x_q Wq^T + bq    K = x_k Wk^T + bk    V = x_v Wv^T + bv
         A = attention(Q, K, V)          ringattn_forward / ringattn_backward, cfg unchanged
         Z = LayerNorm(A) over E         (when params->layer_norm)
         y = Z Wo^T + bo
     See "the layer" below for tensors, weights, self/cross attention, backward and errors,
     and docs/layer.md for the semantics and the PyTorch goldens.

   COMPILE-TIME OPTIONS: those of ringattn.h, set where ringattn.h wants them. In particular
     RINGATTN_USE_CBLAS        implementation file only: the projections through cblas_sgemm /
                               cblas_dgemm; without it a plain built-in GEMM (this header's).
     RINGATTN_MALLOC / RINGATTN_FREE
                               every byte the layer allocates goes through them too (two
                               blocks per call, with cfg->alloc_user).
     RINGATTN_STATIC           everywhere: the layer's functions become static as well.

   LICENSE: MIT (end of file), as ringattn.h.
*/
#ifndef RINGATTN_LAYER_H
#define RINGATTN_LAYER_H

#include "ringattn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- the layer (multihead dilated attention)
   RingMultiheadDilatedAttention / fkodom's MultiheadDilatedAttention as one call, for people
   who port a whole layer and want the whole layer as a reference:

       Q = x_q Wq^T + bq    K = x_k Wk^T + bk    V = x_v Wv^T + bv      (nn.Linear, [out, in])
       A = attention(Q, K, V)    heads: [b, n, E] read as [b, n, H, E/H] ("b n (h d)")
       Z = LayerNorm(A) over E   (MAGNETO sub-LN, when params->layer_norm; biased variance)
       y = Z Wo^T + bo

   attention() is ringattn_forward / ringattn_backward with the caller's config, unchanged:
   dense, ring, dilated or ring-dilated, causal, window, softcap, partition, mix, compute.
   Projections and LayerNorm run in cfg->compute (F32 or F64; LN statistics in double).

   Tensors: every layer tensor is a ringattn_tensor holding a rank-r array padded with
   trailing 1s, which is exactly what ringattn_npy_load gives for a rank-r .npy file:
     activations x_q, y, dy, dx_q   [b, nq, E, 1]   (also accepted: [b, nq, 1, E], i.e.
     x_k, x_v, dx_k, dx_v           [b, nk, E, 1]    ringattn_tensor_bnhd with h = 1, d = E)
     weights wq wk wv wo            [E, E, 1, 1]     row-major [out, in], y = x W^T + b
     fused wqkv                     [3E, E, 1, 1]    rows q | k | v (nn.MultiheadAttention's
                                                     in_proj_weight); bias bqkv [3E, 1, 1, 1]
     biases bq bk bv bo, ln_gamma, ln_beta  [E, 1, 1, 1]
   Any storage dtype (F32, F64, F16, BF16) and any strides, per tensor. A tensor with
   data == NULL is absent: a bias absent = no bias (nn.Linear bias=False), ln_gamma absent = 1,
   ln_beta absent = 0 (LayerNorm without affine). Give either wqkv (+ optional bqkv) or all of
   wq, wk, wv (+ optional bq, bk, bv), not both; wo is required.

   Self-attention: x_k and x_v NULL, or views identical to x_q (same data, dtype, shape and
   strides). Then one GEMM makes Q|K|V, and in backward dx_q receives the whole input
   gradient (the sum of the three paths) and dx_k, dx_v must be NULL. Otherwise (cross
   attention, nk may differ from nq for dense attention) each of dx_q, dx_k, dx_v receives
   its own input's gradient; any of them may be NULL (not wanted).

   Backward recomputes the forward (projections, attention with lse, LN statistics) from
   the inputs: nothing is cached between calls, and the only memory held is this call's.
   It overwrites (does not accumulate) every gradient it is given; grads may be NULL (no
   parameter gradients) and each of its tensors may be absent; a gradient given for an
   absent parameter, or in the other layout (dwq for a fused wqkv), is an error. y may be
   given to backward too (the recomputed forward output; NULL = not wanted).

   Errors (nothing written, outputs untouched): ENULL (a required tensor or its data),
   ESHAPE (embed_dim or num_heads < 1, embed_dim % num_heads != 0, a shape not as above),
   ECONFIG (both weight layouts, layer_norm not 0/1, ln_eps < 0 or not finite, LN tensors
   with layer_norm = 0, a gradient for an absent parameter, dx_k/dx_v in self-attention),
   EALIAS (an output shares its data pointer with any other tensor of the call), EOVERFLOW
   (b*n or 3E beyond a BLAS int), and every error of ringattn_plan for the attention's shape
   [b, nq/nk, H, E/H] (ring size, dilation, ...). ENOMEM leaves the outputs untouched too.
   The head dimension has no limit here (fkodom's d % 8 == 0, d <= 128 are xFormers' limits).
   cfg->stats, when set, describes the last attention call (in backward: ringattn_backward);
   cfg->trace sees the attention's ring steps. */
typedef struct {
    ringattn_tensor wq, wk, wv;           /* [E, E] each, or absent when wqkv is given          */
    ringattn_tensor bq, bk, bv;           /* [E] each, optional                                 */
    ringattn_tensor wqkv, bqkv;           /* fused [3E, E] and [3E] (optional bias)             */
    ringattn_tensor wo, bo;               /* [E, E] required, [E] optional                      */
    ringattn_tensor ln_gamma, ln_beta;    /* [E] optional (absent: 1 and 0)                     */
} ringattn_layer_weights;

typedef ringattn_layer_weights ringattn_layer_grads;   /* same fields: d(loss)/d(that weight) */

typedef struct {
    int64_t embed_dim;                    /* E                                                  */
    int64_t num_heads;                    /* H, divides E; head dim E / H                       */
    int layer_norm;                       /* 1: LayerNorm before out proj (fkodom default), 0 off */
    double ln_eps;                        /* LayerNorm epsilon; 0 -> 1e-5 (PyTorch default)     */
    ringattn_layer_weights w;
} ringattn_layer_params;

/* E, H, layer_norm = 1, ln_eps = 1e-5, every weight absent */
RINGATTN_API ringattn_layer_params ringattn_layer_default_params(int64_t embed_dim, int64_t num_heads);
/* contiguous views: [b, n, E] activations, [rows, cols] matrices, [n] vectors (trailing 1s) */
RINGATTN_API ringattn_tensor ringattn_layer_bne(void *data, ringattn_dtype dtype, int64_t b, int64_t n, int64_t e);
RINGATTN_API ringattn_tensor ringattn_layer_matrix(void *data, ringattn_dtype dtype, int64_t rows, int64_t cols);
RINGATTN_API ringattn_tensor ringattn_layer_vector(void *data, ringattn_dtype dtype, int64_t n);

/* y [b, nq, E] = layer(x_q, x_k, x_v). x_k, x_v: NULL = x_q (self-attention). */
RINGATTN_API int ringattn_layer_forward(const ringattn_config *cfg, const ringattn_layer_params *params,
                                        const ringattn_tensor *x_q, const ringattn_tensor *x_k,
                                        const ringattn_tensor *x_v, ringattn_tensor *y);

/* dy [b, nq, E] -> dx_q, dx_k, dx_v (each may be NULL), grads (may be NULL), y (may be NULL). */
RINGATTN_API int ringattn_layer_backward(const ringattn_config *cfg, const ringattn_layer_params *params,
                                         const ringattn_tensor *x_q, const ringattn_tensor *x_k,
                                         const ringattn_tensor *x_v, const ringattn_tensor *dy,
                                         ringattn_tensor *y, ringattn_tensor *dx_q, ringattn_tensor *dx_k,
                                         ringattn_tensor *dx_v, ringattn_layer_grads *grads);

/* Initialisation as fkodom's MultiheadDilatedAttention._reset_parameters (MAGNETO):
   Wq, Wk ~ xavier_normal (gain 1), Wv, Wo ~ xavier_normal (gain gamma_init), i.e.
   N(0, (gain * sqrt(2 / (fan_in + fan_out)))^2) = N(0, gain^2 / E) for [E, E]; a fused
   wqkv is drawn as its three [E, E] blocks; biases 0, ln_gamma 1, ln_beta 0 (absent
   tensors are skipped). Draw order: Wq, Wk, Wv, Wo, each row-major, one normal per element
   from `rng`: xoshiro256** seeded by splitmix64, normal = sqrt(-2 ln u1) cos(2 pi u2) with
   u1 = (1 + (next >> 11)) 2^-53, u2 = (next >> 11) 2^-53 (two draws per normal).
   reference/generate_golden.py has the same generator in Python. The state is the
   caller's: no global state. Validates params like the entry points (ENULL, ESHAPE,
   EDTYPE, ECONFIG, also when gamma_init is not finite; EALIAS when two weights share a data
   pointer; cfg may be NULL) and writes nothing on error. */
typedef struct { uint64_t s[4]; } ringattn_layer_rng;
RINGATTN_API ringattn_layer_rng ringattn_layer_rng_seed(uint64_t seed);
RINGATTN_API uint64_t ringattn_layer_rng_next(ringattn_layer_rng *rng);     /* xoshiro256** */
RINGATTN_API double ringattn_layer_rng_normal(ringattn_layer_rng *rng);     /* Box-Muller, N(0,1) */
RINGATTN_API int ringattn_layer_init(const ringattn_config *cfg, ringattn_layer_params *params,
                                     double gamma_init, ringattn_layer_rng *rng);

#ifdef __cplusplus
}
#endif
#endif /* RINGATTN_LAYER_H */

/* ======================================================================================== */
/*                                    IMPLEMENTATION                                        */
/* ======================================================================================== */
#if defined(RINGATTN_IMPLEMENTATION) && !defined(RINGATTN_LAYER_IMPLEMENTATION_DONE)
#define RINGATTN_LAYER_IMPLEMENTATION_DONE
#ifndef RINGATTN_IMPLEMENTATION_DONE
#error "ringattn_layer.h: ringattn.h's implementation must come first in this file"
#endif

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- the layer
   Q|K|V projections, ringattn_forward / ringattn_backward, LayerNorm, output projection.
   Everything the layer holds lives in two blocks allocated per call (compute-dtype
   matrices, double row statistics and bias sums); the inputs are gathered into contiguous
   [rows, E] matrices first, so any strides and storage dtypes work and every GEMM is plain
   row-major. Backward recomputes the forward: no state survives a call. */

/* ---------------------------------------------------------------- the projections' GEMM
   Row-major C[M x N] = alpha * op(A)[M x K] * op(B)[K x N] + beta * C; beta == 0 ignores C.
   Built with RINGATTN_USE_CBLAS: ringattn.h's cblas call; otherwise a plain loop. */
#ifndef RINGATTN_USE_CBLAS
static void ringattn__layer_gemm_f32(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
                                     const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                                     float *C, int64_t ldc)
{
    int64_t i, j, k;
    for (i = 0; i < M; i++) {
        float *c = C + i * ldc;
        for (j = 0; j < N; j++) c[j] = (beta == 0) ? 0.0f : beta * c[j];
        if (tb) {            /* B^T: row j of B is contiguous, so take dot products */
            for (j = 0; j < N; j++) {
                const float *b = B + j * ldb; float s = 0;
                for (k = 0; k < K; k++) s += (ta ? A[k * lda + i] : A[i * lda + k]) * b[k];
                c[j] += alpha * s;
            }
        } else {             /* B: stream its rows into c (unit stride inner loop) */
            for (k = 0; k < K; k++) {
                const float *b = B + k * ldb;
                float a = alpha * (ta ? A[k * lda + i] : A[i * lda + k]);
                for (j = 0; j < N; j++) c[j] += a * b[j];
            }
        }
    }
}

static void ringattn__layer_gemm_f64(int ta, int tb, int64_t M, int64_t N, int64_t K, double alpha,
                                     const double *A, int64_t lda, const double *B, int64_t ldb, double beta,
                                     double *C, int64_t ldc)
{
    int64_t i, j, k;
    for (i = 0; i < M; i++) {
        double *c = C + i * ldc;
        for (j = 0; j < N; j++) c[j] = (beta == 0) ? 0.0 : beta * c[j];
        if (tb) {
            for (j = 0; j < N; j++) {
                const double *b = B + j * ldb; double s = 0;
                for (k = 0; k < K; k++) s += (ta ? A[k * lda + i] : A[i * lda + k]) * b[k];
                c[j] += alpha * s;
            }
        } else {
            for (k = 0; k < K; k++) {
                const double *b = B + k * ldb;
                double a = alpha * (ta ? A[k * lda + i] : A[i * lda + k]);
                for (j = 0; j < N; j++) c[j] += a * b[j];
            }
        }
    }
}
#endif

static void ringattn__layer_gemm(ringattn_dtype t, int ta, int tb, int64_t M, int64_t N, int64_t K,
                                 double alpha, const void *A, int64_t lda, const void *B, int64_t ldb,
                                 double beta, void *C, int64_t ldc)
{
#ifdef RINGATTN_USE_CBLAS
    ringattn__gemm(t, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#else
    if (t == RINGATTN_F32)
        ringattn__layer_gemm_f32(ta, tb, M, N, K, (float)alpha, (const float *)A, lda,
                                 (const float *)B, ldb, (float)beta, (float *)C, ldc);
    else
        ringattn__layer_gemm_f64(ta, tb, M, N, K, alpha, (const double *)A, lda,
                                 (const double *)B, ldb, beta, (double *)C, ldc);
#endif
}

enum { RINGATTN__LW_WQ, RINGATTN__LW_WK, RINGATTN__LW_WV, RINGATTN__LW_BQ, RINGATTN__LW_BK,
       RINGATTN__LW_BV, RINGATTN__LW_WQKV, RINGATTN__LW_BQKV, RINGATTN__LW_WO, RINGATTN__LW_BO,
       RINGATTN__LW_LNG, RINGATTN__LW_LNB, RINGATTN__LW_N };

static const char *const ringattn__lw_names[RINGATTN__LW_N] = {
    "wq", "wk", "wv", "bq", "bk", "bv", "wqkv", "bqkv", "wo", "bo", "ln_gamma", "ln_beta" };

/* the 12 weight views of a weights struct, in the enum's order (const or not) */
static void ringattn__layer_list(const ringattn_layer_weights *w, const ringattn_tensor *t[RINGATTN__LW_N])
{
    t[RINGATTN__LW_WQ] = &w->wq; t[RINGATTN__LW_WK] = &w->wk; t[RINGATTN__LW_WV] = &w->wv;
    t[RINGATTN__LW_BQ] = &w->bq; t[RINGATTN__LW_BK] = &w->bk; t[RINGATTN__LW_BV] = &w->bv;
    t[RINGATTN__LW_WQKV] = &w->wqkv; t[RINGATTN__LW_BQKV] = &w->bqkv;
    t[RINGATTN__LW_WO] = &w->wo; t[RINGATTN__LW_BO] = &w->bo;
    t[RINGATTN__LW_LNG] = &w->ln_gamma; t[RINGATTN__LW_LNB] = &w->ln_beta;
}

/* expected [rows, cols] of weight i (cols 1 for a vector) */
static void ringattn__layer_wshape(int i, int64_t E, int64_t want[4])
{
    int fused = (i == RINGATTN__LW_WQKV || i == RINGATTN__LW_BQKV);
    int matrix = (i == RINGATTN__LW_WQ || i == RINGATTN__LW_WK || i == RINGATTN__LW_WV ||
                  i == RINGATTN__LW_WQKV || i == RINGATTN__LW_WO);
    want[0] = fused ? 3 * E : E; want[1] = matrix ? E : 1; want[2] = 1; want[3] = 1;
}

static ringattn_tensor ringattn__layer_view(void *data, ringattn_dtype dtype, int64_t a, int64_t b, int64_t c)
{
    ringattn_tensor t;
    t.data = data; t.dtype = dtype;
    t.shape[0] = a; t.shape[1] = b; t.shape[2] = c; t.shape[3] = 1;
    t.stride[3] = 1; t.stride[2] = 1; t.stride[1] = c; t.stride[0] = b * c;
    return t;
}

RINGATTN_API ringattn_tensor ringattn_layer_bne(void *data, ringattn_dtype dtype, int64_t b, int64_t n, int64_t e)
{
    return ringattn__layer_view(data, dtype, b, n, e);
}
RINGATTN_API ringattn_tensor ringattn_layer_matrix(void *data, ringattn_dtype dtype, int64_t rows, int64_t cols)
{
    return ringattn__layer_view(data, dtype, rows, cols, 1);
}
RINGATTN_API ringattn_tensor ringattn_layer_vector(void *data, ringattn_dtype dtype, int64_t n)
{
    return ringattn__layer_view(data, dtype, n, 1, 1);
}

RINGATTN_API ringattn_layer_params ringattn_layer_default_params(int64_t embed_dim, int64_t num_heads)
{
    ringattn_layer_params p;
    memset(&p, 0, sizeof p);
    p.embed_dim = embed_dim; p.num_heads = num_heads;
    p.layer_norm = 1; p.ln_eps = 1e-5;
    return p;
}

/* a layer tensor as 3 axes (shape0, shape1, shape2 * shape3): one of shape2, shape3 is 1 */
static void ringattn__layer_dims(const ringattn_tensor *t, int64_t n[3], int64_t s[3])
{
    n[0] = t->shape[0]; n[1] = t->shape[1]; n[2] = t->shape[2] * t->shape[3];
    s[0] = t->stride[0]; s[1] = t->stride[1]; s[2] = t->shape[3] > 1 ? t->stride[3] : t->stride[2];
}

/* tensor -> contiguous buffer (dir 0) or contiguous buffer -> tensor (dir 1); buf has dtype bt */
static void ringattn__layer_copy(const ringattn_tensor *t, void *buf, ringattn_dtype bt, int dir)
{
    int64_t n[3], s[3], i, j, k, at = 0;
    ringattn__layer_dims(t, n, s);
    for (i = 0; i < n[0]; i++)
        for (j = 0; j < n[1]; j++)
            for (k = 0; k < n[2]; k++, at++) {
                int64_t o = i * s[0] + j * s[1] + k * s[2];
                if (dir == 0) ringattn__store(buf, bt, at, ringattn__load(t->data, t->dtype, o));
                else ringattn__store(t->data, t->dtype, o, ringattn__load(buf, bt, at));
            }
}

/* an activation: [b, n, E, 1] or [b, n, 1, E]; b, n < 0 = take the tensor's */
static int ringattn__layer_act(const ringattn_config *cfg, const ringattn_tensor *t, const char *name,
                               int64_t b, int64_t n, int64_t E, int output)
{
    int st;
    if ((st = ringattn__check_view(cfg, t, name, NULL, output)) != RINGATTN_OK) return st;
    if ((b >= 0 && t->shape[0] != b) || (n >= 0 && t->shape[1] != n) ||
        !((t->shape[2] == E && t->shape[3] == 1) || (t->shape[2] == 1 && t->shape[3] == E)))
        return ringattn__fail(cfg, RINGATTN_ESHAPE,
                              "%s has shape [%lld, %lld, %lld, %lld], expected [b, n, E] = [%lld, %lld, %lld] "
                              "as [b, n, E, 1] (or [b, n, 1, E])", name,
                              (long long)t->shape[0], (long long)t->shape[1], (long long)t->shape[2],
                              (long long)t->shape[3], (long long)(b >= 0 ? b : t->shape[0]),
                              (long long)(n >= 0 ? n : t->shape[1]), (long long)E);
    return RINGATTN_OK;
}

static int ringattn__same_view(const ringattn_tensor *a, const ringattn_tensor *b)
{
    int i;
    if (a->data != b->data || a->dtype != b->dtype) return 0;
    for (i = 0; i < 4; i++)
        if (a->shape[i] != b->shape[i] || a->stride[i] != b->stride[i]) return 0;
    return 1;
}

/* E, H, layer_norm, ln_eps and the weights: layout, presence, shapes */
static int ringattn__layer_check_params(const ringattn_config *cfg, const ringattn_layer_params *p)
{
    const ringattn_tensor *w[RINGATTN__LW_N];
    int64_t E, want[4]; int i, st, fused, sep;
    if (!p) return ringattn__fail(cfg, RINGATTN_ENULL, "params is NULL");
    E = p->embed_dim;
    if (E < 1 || p->num_heads < 1)
        return ringattn__fail(cfg, RINGATTN_ESHAPE, "embed_dim = %lld and num_heads = %lld must be >= 1",
                              (long long)E, (long long)p->num_heads);
    if (E % p->num_heads != 0)
        return ringattn__fail(cfg, RINGATTN_ESHAPE, "embed_dim = %lld is not a multiple of num_heads = %lld",
                              (long long)E, (long long)p->num_heads);
    if (E > RINGATTN__BLAS_INT_MAX / 3)
        return ringattn__fail(cfg, RINGATTN_EOVERFLOW, "3 * embed_dim exceeds a BLAS int");
    if (p->layer_norm != 0 && p->layer_norm != 1)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "layer_norm = %d, must be 0 or 1", p->layer_norm);
    if (!(p->ln_eps >= 0) || p->ln_eps == INFINITY)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "ln_eps must be finite and >= 0 (0 = 1e-5)");
    ringattn__layer_list(&p->w, w);
    fused = w[RINGATTN__LW_WQKV]->data != NULL;
    sep = w[RINGATTN__LW_WQ]->data || w[RINGATTN__LW_WK]->data || w[RINGATTN__LW_WV]->data ||
          w[RINGATTN__LW_BQ]->data || w[RINGATTN__LW_BK]->data || w[RINGATTN__LW_BV]->data;
    if (fused && sep)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "give either wqkv (+ bqkv) or wq, wk, wv (+ bq, bk, bv), not both");
    if (!fused && w[RINGATTN__LW_BQKV]->data)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "bqkv given without wqkv");
    if (!fused)
        for (i = RINGATTN__LW_WQ; i <= RINGATTN__LW_WV; i++)
            if (!w[i]->data)
                return ringattn__fail(cfg, RINGATTN_ENULL, "%s is absent (data NULL) and no fused wqkv is given",
                                      ringattn__lw_names[i]);
    if (!w[RINGATTN__LW_WO]->data) return ringattn__fail(cfg, RINGATTN_ENULL, "wo is absent (data NULL)");
    if (!p->layer_norm && (w[RINGATTN__LW_LNG]->data || w[RINGATTN__LW_LNB]->data))
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "ln_gamma / ln_beta given but layer_norm = 0");
    for (i = 0; i < RINGATTN__LW_N; i++) {
        if (!w[i]->data) continue;
        ringattn__layer_wshape(i, E, want);
        if ((st = ringattn__check_view(cfg, w[i], ringattn__lw_names[i], want, 0)) != RINGATTN_OK) return st;
    }
    return RINGATTN_OK;
}

typedef struct {
    int64_t b, nq, nk, E, H, d, mq, mk;
    int self, fused, ln;
    double eps;
} ringattn__layer_shape;

/* every argument of a layer call, before anything is written or allocated */
static int ringattn__layer_check(const ringattn_config *cfg, const ringattn_layer_params *p, int pass,
                                 const ringattn_tensor *xq, const ringattn_tensor *xk,
                                 const ringattn_tensor *xv, const ringattn_tensor *dy,
                                 const ringattn_tensor *y, const ringattn_tensor *dxq,
                                 const ringattn_tensor *dxk, const ringattn_tensor *dxv,
                                 const ringattn_layer_grads *g, ringattn__layer_shape *L)
{
    const ringattn_tensor *w[RINGATTN__LW_N], *gw[RINGATTN__LW_N];
    const ringattn_tensor *all[4 + 4 + 2 * RINGATTN__LW_N];
    const char *names[4 + 4 + 2 * RINGATTN__LW_N];
    char gnames[RINGATTN__LW_N][16];
    ringattn_shape s; ringattn_plan_info plan;
    int64_t want[4]; int st, i, n = 0, first_out;
    if ((st = ringattn__layer_check_params(cfg, p)) != RINGATTN_OK) return st;
    memset(L, 0, sizeof *L);
    L->E = p->embed_dim; L->H = p->num_heads; L->d = L->E / L->H;
    L->fused = p->w.wqkv.data != NULL; L->ln = p->layer_norm;
    L->eps = p->ln_eps > 0 ? p->ln_eps : 1e-5;
    if ((st = ringattn__layer_act(cfg, xq, "x_q", -1, -1, L->E, 0)) != RINGATTN_OK) return st;
    L->b = xq->shape[0]; L->nq = xq->shape[1];
    if ((xk == NULL) != (xv == NULL))
        return ringattn__fail(cfg, RINGATTN_ENULL, "x_k and x_v must both be NULL (self-attention) or both be given");
    L->self = !xk || (ringattn__same_view(xk, xq) && ringattn__same_view(xv, xq));
    if (L->self) { xk = xv = NULL; L->nk = L->nq; }
    else {
        if ((st = ringattn__layer_act(cfg, xk, "x_k", L->b, -1, L->E, 0)) != RINGATTN_OK) return st;
        L->nk = xk->shape[1];
        if ((st = ringattn__layer_act(cfg, xv, "x_v", L->b, L->nk, L->E, 0)) != RINGATTN_OK) return st;
    }
    {
        int ovf = 0;
        L->mq = ringattn__mul(L->b, L->nq, &ovf); L->mk = ringattn__mul(L->b, L->nk, &ovf);
        if (ovf || L->mq > RINGATTN__BLAS_INT_MAX || L->mk > RINGATTN__BLAS_INT_MAX)
            return ringattn__fail(cfg, RINGATTN_EOVERFLOW, "batch * seq exceeds a BLAS int");
    }
    /* the attention inside: its config against its shape, as ringattn_forward/backward will */
    s.batch = L->b; s.seq_q = L->nq; s.seq_k = L->nk; s.heads_q = s.heads_kv = L->H;
    s.dim_qk = s.dim_v = L->d;
    if ((st = ringattn_plan(cfg, &s, pass, &plan)) != RINGATTN_OK) return st;
    if (pass == 0) {
        if ((st = ringattn__layer_act(cfg, y, "y", L->b, L->nq, L->E, 1)) != RINGATTN_OK) return st;
    } else {
        if ((st = ringattn__layer_act(cfg, dy, "dy", L->b, L->nq, L->E, 0)) != RINGATTN_OK) return st;
        if (y && (st = ringattn__layer_act(cfg, y, "y", L->b, L->nq, L->E, 1)) != RINGATTN_OK) return st;
        if (dxq && (st = ringattn__layer_act(cfg, dxq, "dx_q", L->b, L->nq, L->E, 1)) != RINGATTN_OK) return st;
        if (L->self && (dxk || dxv))
            return ringattn__fail(cfg, RINGATTN_ECONFIG, "self-attention: dx_q receives the whole input gradient; "
                                  "dx_k and dx_v must be NULL");
        if (dxk && (st = ringattn__layer_act(cfg, dxk, "dx_k", L->b, L->nk, L->E, 1)) != RINGATTN_OK) return st;
        if (dxv && (st = ringattn__layer_act(cfg, dxv, "dx_v", L->b, L->nk, L->E, 1)) != RINGATTN_OK) return st;
    }
    ringattn__layer_list(&p->w, w);
    if (g) {
        ringattn__layer_list(g, gw);
        for (i = 0; i < RINGATTN__LW_N; i++) {
            snprintf(gnames[i], sizeof gnames[i], "grads->%s", ringattn__lw_names[i]);
            if (!gw[i]->data) continue;
            if (!w[i]->data) {
                if (i == RINGATTN__LW_LNG || i == RINGATTN__LW_LNB)   /* implicit 1 / 0: a weight all the same */
                    return ringattn__fail(cfg, RINGATTN_ECONFIG, "grads->%s given but params has no %s",
                                          ringattn__lw_names[i], ringattn__lw_names[i]);
                return ringattn__fail(cfg, RINGATTN_ECONFIG, "grads->%s given but params has no %s (absent, or the "
                                      "other weight layout)", ringattn__lw_names[i], ringattn__lw_names[i]);
            }
            ringattn__layer_wshape(i, L->E, want);
            if ((st = ringattn__check_view(cfg, gw[i], gnames[i], want, 1)) != RINGATTN_OK) return st;
        }
    }
    /* outputs must not share data with anything else of the call */
    all[n] = xq; names[n++] = "x_q"; all[n] = xk; names[n++] = "x_k"; all[n] = xv; names[n++] = "x_v";
    all[n] = dy; names[n++] = "dy";
    for (i = 0; i < RINGATTN__LW_N; i++) { all[n] = w[i]->data ? w[i] : NULL; names[n++] = ringattn__lw_names[i]; }
    first_out = n;
    all[n] = y; names[n++] = "y"; all[n] = dxq; names[n++] = "dx_q";
    all[n] = dxk; names[n++] = "dx_k"; all[n] = dxv; names[n++] = "dx_v";
    if (g) for (i = 0; i < RINGATTN__LW_N; i++) { all[n] = gw[i]->data ? gw[i] : NULL; names[n++] = gnames[i]; }
    return ringattn__check_alias(cfg, all, names, n, first_out);
}

/* [b, n, H, d] attention view of E-wide rows at pitch ld inside a projection buffer */
static ringattn_tensor ringattn__layer_heads(void *data, ringattn_dtype ct, const ringattn__layer_shape *L,
                                             int64_t n, int64_t ld)
{
    ringattn_tensor t;
    t.data = data; t.dtype = ct;
    t.shape[0] = L->b; t.shape[1] = n; t.shape[2] = L->H; t.shape[3] = L->d;
    t.stride[0] = n * ld; t.stride[1] = ld; t.stride[2] = L->d; t.stride[3] = 1;
    return t;
}


/* C[m, 0:E) at pitch ldc += bias (compute dtype) */
static void ringattn__layer_bias(ringattn_dtype ct, void *C, int64_t ldc, int64_t m, int64_t E, const void *bias)
{
    int64_t r, j;
    for (r = 0; r < m; r++)
        for (j = 0; j < E; j++)
            ringattn__store(C, ct, r * ldc + j, ringattn__load(C, ct, r * ldc + j) + ringattn__load(bias, ct, j));
}

/* sum[j] = sum over rows r of G[r, j] (pitch ld), in double */
static void ringattn__layer_colsum(ringattn_dtype ct, const void *G, int64_t ld, int64_t m, int64_t E, double *sum)
{
    int64_t r, j;
    for (j = 0; j < E; j++) sum[j] = 0;
    for (r = 0; r < m; r++)
        for (j = 0; j < E; j++) sum[j] += ringattn__load(G, ct, r * ld + j);
}

/* the input projections. Self-attention: one GEMM X W_in^T -> [mq, 3E] rows q|k|v (pitch 3E).
   Cross: three GEMMs into Q [mq, E], K [mk, E], V [mk, E] (pitch E). Returns the pitch. */
static int64_t ringattn__layer_project(ringattn_dtype ct, size_t es, const ringattn__layer_shape *L,
                                       const void *Xq, const void *Xk, const void *Xv, const void *Win,
                                       const void *bin, void *Pr, void **Q, void **K, void **V)
{
    const int64_t E = L->E, mq = L->mq, mk = L->mk;
    if (L->self) {
        *Q = Pr; *K = ringattn__at(Pr, E, es); *V = ringattn__at(Pr, 2 * E, es);
        ringattn__layer_gemm(ct, 0, 1, mq, 3 * E, E, 1.0, Xq, E, Win, E, 0.0, *Q, 3 * E);
        ringattn__layer_bias(ct, *Q, 3 * E, mq, 3 * E, bin);
        return 3 * E;
    }
    *Q = Pr; *K = ringattn__at(Pr, mq * E, es); *V = ringattn__at(Pr, (mq + mk) * E, es);
    ringattn__layer_gemm(ct, 0, 1, mq, E, E, 1.0, Xq, E, Win, E, 0.0, *Q, E);
    ringattn__layer_gemm(ct, 0, 1, mk, E, E, 1.0, Xk, E, ringattn__at(Win, E * E, es), E, 0.0, *K, E);
    ringattn__layer_gemm(ct, 0, 1, mk, E, E, 1.0, Xv, E, ringattn__at(Win, 2 * E * E, es), E, 0.0, *V, E);
    ringattn__layer_bias(ct, *Q, E, mq, E, bin);
    ringattn__layer_bias(ct, *K, E, mk, E, ringattn__at(bin, E, es));
    ringattn__layer_bias(ct, *V, E, mk, E, ringattn__at(bin, 2 * E, es));
    return E;
}

/* LayerNorm over E of each of m rows (biased variance, as torch.nn.LayerNorm): Z from A,
   keeping each row's mean and 1/std for the backward */
static void ringattn__layer_norm_forward(ringattn_dtype ct, const void *A, void *Z, const void *gam,
                                         const void *bet, int64_t m, int64_t E, double eps,
                                         double *mean, double *rstd)
{
    int64_t r, j;
    for (r = 0; r < m; r++) {
        double mu = 0, var = 0, rs;
        for (j = 0; j < E; j++) mu += ringattn__load(A, ct, r * E + j);
        mu /= (double)E;
        for (j = 0; j < E; j++) { double c = ringattn__load(A, ct, r * E + j) - mu; var += c * c; }
        var /= (double)E;
        rs = 1.0 / sqrt(var + eps);
        mean[r] = mu; rstd[r] = rs;
        for (j = 0; j < E; j++)
            ringattn__store(Z, ct, r * E + j, (ringattn__load(A, ct, r * E + j) - mu) * rs *
                            ringattn__load(gam, ct, j) + ringattn__load(bet, ct, j));
    }
}

/* its backward, G = dZ in, dA out: xh = (a - mu) rstd; dgamma += dz xh; dbeta += dz;
   dxh = dz gamma; da = rstd (dxh - mean(dxh) - xh mean(dxh xh)) */
static void ringattn__layer_norm_backward(ringattn_dtype ct, const void *A, void *G, const void *gam,
                                          int64_t m, int64_t E, const double *mean, const double *rstd,
                                          double *dgam, double *dbet)
{
    int64_t r, j;
    for (r = 0; r < m; r++) {
        double m1 = 0, m2 = 0;
        for (j = 0; j < E; j++) {
            double xh = (ringattn__load(A, ct, r * E + j) - mean[r]) * rstd[r];
            double dz = ringattn__load(G, ct, r * E + j), dxh = dz * ringattn__load(gam, ct, j);
            dgam[j] += dz * xh; dbet[j] += dz;
            m1 += dxh; m2 += dxh * xh;
        }
        m1 /= (double)E; m2 /= (double)E;
        for (j = 0; j < E; j++) {
            double xh = (ringattn__load(A, ct, r * E + j) - mean[r]) * rstd[r];
            double dxh = ringattn__load(G, ct, r * E + j) * ringattn__load(gam, ct, j);
            ringattn__store(G, ct, r * E + j, rstd[r] * (dxh - m1 - xh * m2));
        }
    }
}

/* the input projections backward: dW_in = dP^T X, db_in = colsum dP, dX = dP W_in (dX[i]
   NULL: not wanted). dP is Q | K | V laid out as the projection wrote them (pitch ld). */
static void ringattn__layer_project_back(ringattn_dtype ct, size_t es, const ringattn__layer_shape *L,
                                         const void *dP, int64_t ld, void *const dpart[3],
                                         const void *const X[3], const void *Win, void *dWin,
                                         double *dbin, void *const dX[3])
{
    const int64_t E = L->E, mq = L->mq, mk = L->mk;
    int i;
    if (L->self) {
        ringattn__layer_gemm(ct, 1, 0, 3 * E, E, mq, 1.0, dP, ld, X[0], E, 0.0, dWin, E);
        ringattn__layer_colsum(ct, dP, ld, mq, 3 * E, dbin);
        if (dX[0]) ringattn__layer_gemm(ct, 0, 0, mq, E, 3 * E, 1.0, dP, ld, Win, E, 0.0, dX[0], E);
        return;
    }
    for (i = 0; i < 3; i++) {
        const int64_t m = i == 0 ? mq : mk;
        ringattn__layer_gemm(ct, 1, 0, E, E, m, 1.0, dpart[i], E, X[i], E, 0.0, ringattn__at(dWin, i * E * E, es), E);
        ringattn__layer_colsum(ct, dpart[i], E, m, E, dbin + i * E);
        if (dX[i])
            ringattn__layer_gemm(ct, 0, 0, m, E, E, 1.0, dpart[i], E, ringattn__at(Win, i * E * E, es), E, 0.0, dX[i], E);
    }
}

static int ringattn__layer_execute(const ringattn_config *cfg, const ringattn_layer_params *p, int pass,
                                   const ringattn_tensor *xq, const ringattn_tensor *xk,
                                   const ringattn_tensor *xv, const ringattn_tensor *dy,
                                   ringattn_tensor *y, ringattn_tensor *dxq, ringattn_tensor *dxk,
                                   ringattn_tensor *dxv, ringattn_layer_grads *g)
{
    const ringattn_tensor *w[RINGATTN__LW_N], *gw[RINGATTN__LW_N];
    ringattn__layer_shape L;
    ringattn_dtype ct;
    size_t es;
    int64_t E, mq, mk, ld, nel = 0, ndb, j, i;
    int st, ovf = 0;
    void *buf; double *dbl;
    /* compute-dtype pieces of buf (element offsets) */
    int64_t o_win, o_bin, o_wo, o_bo, o_gam, o_bet, o_xq, o_xk, o_xv, o_p, o_a, o_z, o_y;
    int64_t o_dy = 0, o_g = 0, o_dp = 0, o_dwin = 0, o_dwo = 0, o_dxq = 0, o_dxk = 0, o_dxv = 0;
    void *Q, *K, *V, *A, *Z;
    ringattn_tensor tq, tk, tv, ta, tl;
    double *mean, *rstd, *lse, *dbin, *dbo, *dgam, *dbet;

    if (!cfg) return RINGATTN_ENULL;
    if ((st = ringattn__layer_check(cfg, p, pass, xq, xk, xv, dy, y, dxq, dxk, dxv, g, &L)) != RINGATTN_OK)
        return st;
    if (L.self) xk = xv = xq;
    ct = cfg->compute; es = ringattn__dtype_size(ct);
    E = L.E; mq = L.mq; mk = L.mk;
    ringattn__layer_list(&p->w, w);

    /* ---- workspace layout (overflow-checked element counts) */
#define RINGATTN__TAKE(o, count) do { o = nel; nel = ringattn__add(nel, (count), &ovf); } while (0)
    RINGATTN__TAKE(o_win, ringattn__mul(3 * E, E, &ovf));
    RINGATTN__TAKE(o_bin, 3 * E);
    RINGATTN__TAKE(o_wo, ringattn__mul(E, E, &ovf));
    RINGATTN__TAKE(o_bo, E); RINGATTN__TAKE(o_gam, E); RINGATTN__TAKE(o_bet, E);
    RINGATTN__TAKE(o_xq, ringattn__mul(mq, E, &ovf));
    RINGATTN__TAKE(o_xk, L.self ? 0 : ringattn__mul(mk, E, &ovf));
    RINGATTN__TAKE(o_xv, L.self ? 0 : ringattn__mul(mk, E, &ovf));
    RINGATTN__TAKE(o_p, ringattn__mul(ringattn__add(mq, 2 * mk, &ovf), E, &ovf));   /* Q | K | V */
    RINGATTN__TAKE(o_a, ringattn__mul(mq, E, &ovf));
    RINGATTN__TAKE(o_z, ringattn__mul(mq, E, &ovf));
    RINGATTN__TAKE(o_y, ringattn__mul(mq, E, &ovf));
    if (pass == 1) {
        RINGATTN__TAKE(o_dy, ringattn__mul(mq, E, &ovf));
        RINGATTN__TAKE(o_g, ringattn__mul(mq, E, &ovf));
        RINGATTN__TAKE(o_dp, ringattn__mul(ringattn__add(mq, 2 * mk, &ovf), E, &ovf));
        RINGATTN__TAKE(o_dwin, ringattn__mul(3 * E, E, &ovf));
        RINGATTN__TAKE(o_dwo, ringattn__mul(E, E, &ovf));
        RINGATTN__TAKE(o_dxq, ringattn__mul(mq, E, &ovf));
        RINGATTN__TAKE(o_dxk, ringattn__mul(mk, E, &ovf));
        RINGATTN__TAKE(o_dxv, ringattn__mul(mk, E, &ovf));
    }
#undef RINGATTN__TAKE
    /* doubles: mean, rstd per query row; lse [b, H, nq]; bias / LN gradient sums */
    ndb = ringattn__add(ringattn__mul(2, mq, &ovf), ringattn__mul(mq, L.H, &ovf), &ovf);
    ndb = ringattn__add(ndb, 6 * E, &ovf);
    (void)ringattn__mul(nel, (int64_t)es, &ovf); (void)ringattn__mul(ndb, 8, &ovf);
    if (ovf || (uint64_t)nel > (uint64_t)(SIZE_MAX / es) || (uint64_t)ndb > (uint64_t)(SIZE_MAX / 8))
        return ringattn__fail(cfg, RINGATTN_EOVERFLOW, "the layer's workspace overflows a size_t");
    buf = RINGATTN_MALLOC((size_t)nel * es, cfg->alloc_user);
    dbl = buf ? (double *)RINGATTN_MALLOC((size_t)ndb * sizeof(double), cfg->alloc_user) : NULL;
    if (!buf || !dbl) {
        if (buf) RINGATTN_FREE(buf, cfg->alloc_user);
        return ringattn__fail(cfg, RINGATTN_ENOMEM, "could not allocate the layer's workspace (%lld + %lld bytes)",
                              (long long)nel * (long long)es, (long long)ndb * 8);
    }
    mean = dbl; rstd = mean + mq; lse = rstd + mq; dbin = lse + mq * L.H;
    dbo = dbin + 3 * E; dgam = dbo + E; dbet = dgam + E;

    /* ---- weights into compute dtype: W_in [3E, E] = Wq | Wk | Wv, b_in [3E], Wo, bo, gamma, beta */
    for (i = 0; i < 3 * E; i++) ringattn__store(buf, ct, o_bin + i, 0.0);
    for (i = 0; i < E; i++) {
        ringattn__store(buf, ct, o_bo + i, 0.0);
        ringattn__store(buf, ct, o_gam + i, 1.0);
        ringattn__store(buf, ct, o_bet + i, 0.0);
    }
    if (L.fused) {
        ringattn__layer_copy(w[RINGATTN__LW_WQKV], ringattn__at(buf, o_win, es), ct, 0);
        if (w[RINGATTN__LW_BQKV]->data) ringattn__layer_copy(w[RINGATTN__LW_BQKV], ringattn__at(buf, o_bin, es), ct, 0);
    } else {
        for (i = 0; i < 3; i++) {
            ringattn__layer_copy(w[RINGATTN__LW_WQ + i], ringattn__at(buf, o_win + i * E * E, es), ct, 0);
            if (w[RINGATTN__LW_BQ + i]->data)
                ringattn__layer_copy(w[RINGATTN__LW_BQ + i], ringattn__at(buf, o_bin + i * E, es), ct, 0);
        }
    }
    ringattn__layer_copy(w[RINGATTN__LW_WO], ringattn__at(buf, o_wo, es), ct, 0);
    if (w[RINGATTN__LW_BO]->data) ringattn__layer_copy(w[RINGATTN__LW_BO], ringattn__at(buf, o_bo, es), ct, 0);
    if (w[RINGATTN__LW_LNG]->data) ringattn__layer_copy(w[RINGATTN__LW_LNG], ringattn__at(buf, o_gam, es), ct, 0);
    if (w[RINGATTN__LW_LNB]->data) ringattn__layer_copy(w[RINGATTN__LW_LNB], ringattn__at(buf, o_bet, es), ct, 0);

    /* ---- project: the inputs into compute dtype, then Q, K, V */
    ringattn__layer_copy(xq, ringattn__at(buf, o_xq, es), ct, 0);
    if (!L.self) {
        ringattn__layer_copy(xk, ringattn__at(buf, o_xk, es), ct, 0);
        ringattn__layer_copy(xv, ringattn__at(buf, o_xv, es), ct, 0);
    }
    ld = ringattn__layer_project(ct, es, &L, ringattn__at(buf, o_xq, es), ringattn__at(buf, o_xk, es),
                                 ringattn__at(buf, o_xv, es), ringattn__at(buf, o_win, es), ringattn__at(buf, o_bin, es),
                                 ringattn__at(buf, o_p, es), &Q, &K, &V);

    /* ---- attention: A [b, nq, H, d] = rows [mq, E] ("b n (h d)") */
    A = ringattn__at(buf, o_a, es);
    tq = ringattn__layer_heads(Q, ct, &L, L.nq, ld);
    tk = ringattn__layer_heads(K, ct, &L, L.nk, ld);
    tv = ringattn__layer_heads(V, ct, &L, L.nk, ld);
    ta = ringattn__layer_heads(A, ct, &L, L.nq, E);
    tl = ringattn_tensor_lse(lse, RINGATTN_F64, L.b, L.H, L.nq);
    st = ringattn_forward(cfg, &tq, &tk, &tv, &ta, pass == 1 ? &tl : NULL);
    if (st != RINGATTN_OK) goto done;

    /* ---- layer norm */
    Z = A;
    if (L.ln) {
        Z = ringattn__at(buf, o_z, es);
        ringattn__layer_norm_forward(ct, A, Z, ringattn__at(buf, o_gam, es), ringattn__at(buf, o_bet, es), mq, E, L.eps,
                                     mean, rstd);
    }

    /* ---- project back (the output projection) */
    ringattn__layer_gemm(ct, 0, 1, mq, E, E, 1.0, Z, E, ringattn__at(buf, o_wo, es), E, 0.0,
                         ringattn__at(buf, o_y, es), E);
    ringattn__layer_bias(ct, ringattn__at(buf, o_y, es), E, mq, E, ringattn__at(buf, o_bo, es));
    if (pass == 0) { ringattn__layer_copy(y, ringattn__at(buf, o_y, es), ct, 1); goto done; }

    /* ======== backward: the same steps in reverse */
    {
        void *dY = ringattn__at(buf, o_dy, es), *G = ringattn__at(buf, o_g, es), *dP = ringattn__at(buf, o_dp, es);
        void *dQ, *dK, *dV;
        ringattn_tensor tg, tdq, tdk, tdv;
        ringattn__layer_copy(dy, dY, ct, 0);
        /* out proj: dWo = dY^T Z, dbo = colsum dY, dZ = dY Wo */
        ringattn__layer_gemm(ct, 1, 0, E, E, mq, 1.0, dY, E, Z, E, 0.0, ringattn__at(buf, o_dwo, es), E);
        ringattn__layer_colsum(ct, dY, E, mq, E, dbo);
        ringattn__layer_gemm(ct, 0, 0, mq, E, E, 1.0, dY, E, ringattn__at(buf, o_wo, es), E, 0.0, G, E);
        /* layer norm */
        for (j = 0; j < E; j++) dgam[j] = dbet[j] = 0;
        if (L.ln) ringattn__layer_norm_backward(ct, A, G, ringattn__at(buf, o_gam, es), mq, E, mean, rstd, dgam, dbet);
        /* attention backward into dQ | dK | dV, laid out as Q | K | V */
        if (L.self) { dQ = dP; dK = ringattn__at(dP, E, es); dV = ringattn__at(dP, 2 * E, es); }
        else { dQ = dP; dK = ringattn__at(dP, mq * E, es); dV = ringattn__at(dP, (mq + mk) * E, es); }
        tg = ringattn__layer_heads(G, ct, &L, L.nq, E);
        tdq = ringattn__layer_heads(dQ, ct, &L, L.nq, ld);
        tdk = ringattn__layer_heads(dK, ct, &L, L.nk, ld);
        tdv = ringattn__layer_heads(dV, ct, &L, L.nk, ld);
        st = ringattn_backward(cfg, &tq, &tk, &tv, &ta, &tl, &tg, &tdq, &tdk, &tdv);
        if (st != RINGATTN_OK) goto done;
        /* the input projections */
        {
            void *dpart[3], *dX[3];
            const void *X[3];
            dpart[0] = dQ; dpart[1] = dK; dpart[2] = dV;
            X[0] = ringattn__at(buf, o_xq, es); X[1] = ringattn__at(buf, o_xk, es); X[2] = ringattn__at(buf, o_xv, es);
            dX[0] = dxq ? ringattn__at(buf, o_dxq, es) : NULL;
            dX[1] = (!L.self && dxk) ? ringattn__at(buf, o_dxk, es) : NULL;
            dX[2] = (!L.self && dxv) ? ringattn__at(buf, o_dxv, es) : NULL;
            ringattn__layer_project_back(ct, es, &L, dP, ld, dpart, X, ringattn__at(buf, o_win, es),
                                         ringattn__at(buf, o_dwin, es), dbin, dX);
        }
        /* ---- every output written only now, after every step succeeded */
        if (y) ringattn__layer_copy(y, ringattn__at(buf, o_y, es), ct, 1);
        if (dxq) ringattn__layer_copy(dxq, ringattn__at(buf, o_dxq, es), ct, 1);
        if (dxk) ringattn__layer_copy(dxk, ringattn__at(buf, o_dxk, es), ct, 1);
        if (dxv) ringattn__layer_copy(dxv, ringattn__at(buf, o_dxv, es), ct, 1);
        if (g) {
            ringattn__layer_list(g, gw);
            for (i = 0; i < RINGATTN__LW_N; i++) {
                ringattn_tensor *t = (ringattn_tensor *)gw[i];   /* grads is the caller's, writable */
                const void *src; ringattn_dtype sd = ct;
                if (!t->data) continue;
                switch (i) {
                case RINGATTN__LW_WQ: case RINGATTN__LW_WK: case RINGATTN__LW_WV:
                    src = ringattn__at(buf, o_dwin + (i - RINGATTN__LW_WQ) * E * E, es); break;
                case RINGATTN__LW_WQKV: src = ringattn__at(buf, o_dwin, es); break;
                case RINGATTN__LW_WO: src = ringattn__at(buf, o_dwo, es); break;
                case RINGATTN__LW_BQ: case RINGATTN__LW_BK: case RINGATTN__LW_BV:
                    src = dbin + (i - RINGATTN__LW_BQ) * E; sd = RINGATTN_F64; break;
                case RINGATTN__LW_BQKV: src = dbin; sd = RINGATTN_F64; break;
                case RINGATTN__LW_BO: src = dbo; sd = RINGATTN_F64; break;
                case RINGATTN__LW_LNG: src = dgam; sd = RINGATTN_F64; break;
                default: src = dbet; sd = RINGATTN_F64; break;
                }
                ringattn__layer_copy(t, (void *)src, sd, 1);
            }
        }
    }
done:
    RINGATTN_FREE(dbl, cfg->alloc_user);
    RINGATTN_FREE(buf, cfg->alloc_user);
    return st;
}

RINGATTN_API int ringattn_layer_forward(const ringattn_config *cfg, const ringattn_layer_params *params,
                                        const ringattn_tensor *x_q, const ringattn_tensor *x_k,
                                        const ringattn_tensor *x_v, ringattn_tensor *y)
{
    return ringattn__layer_execute(cfg, params, 0, x_q, x_k, x_v, NULL, y, NULL, NULL, NULL, NULL);
}

RINGATTN_API int ringattn_layer_backward(const ringattn_config *cfg, const ringattn_layer_params *params,
                                         const ringattn_tensor *x_q, const ringattn_tensor *x_k,
                                         const ringattn_tensor *x_v, const ringattn_tensor *dy,
                                         ringattn_tensor *y, ringattn_tensor *dx_q, ringattn_tensor *dx_k,
                                         ringattn_tensor *dx_v, ringattn_layer_grads *grads)
{
    return ringattn__layer_execute(cfg, params, 1, x_q, x_k, x_v, dy, y, dx_q, dx_k, dx_v, grads);
}

/* ---- initialisation: xoshiro256** (Blackman & Vigna), seeded through splitmix64 */
RINGATTN_API ringattn_layer_rng ringattn_layer_rng_seed(uint64_t seed)
{
    ringattn_layer_rng r; int i;
    for (i = 0; i < 4; i++) {
        uint64_t z = (seed += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        r.s[i] = z ^ (z >> 31);
    }
    return r;
}

RINGATTN_API uint64_t ringattn_layer_rng_next(ringattn_layer_rng *rng)
{
    uint64_t *s = rng->s, x = s[1] * 5, result = ((x << 7) | (x >> 57)) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}

RINGATTN_API double ringattn_layer_rng_normal(ringattn_layer_rng *rng)
{
    double u1 = (double)((ringattn_layer_rng_next(rng) >> 11) + 1) * (1.0 / 9007199254740992.0);   /* (0, 1] */
    double u2 = (double)(ringattn_layer_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);         /* [0, 1) */
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* rows [r0, r0 + E) of a weight view: N(0, std^2), row-major */
static void ringattn__layer_draw(ringattn_tensor *t, int64_t r0, int64_t E, double sd, ringattn_layer_rng *rng)
{
    int64_t i, j;
    for (i = 0; i < E; i++)
        for (j = 0; j < E; j++)
            ringattn__store(t->data, t->dtype, (r0 + i) * t->stride[0] + j * t->stride[1],
                            sd * ringattn_layer_rng_normal(rng));
}

static void ringattn__layer_fill(ringattn_tensor *t, double v)
{
    int64_t i;
    if (!t->data) return;
    for (i = 0; i < t->shape[0]; i++) ringattn__store(t->data, t->dtype, i * t->stride[0], v);
}

RINGATTN_API int ringattn_layer_init(const ringattn_config *cfg, ringattn_layer_params *params,
                                     double gamma_init, ringattn_layer_rng *rng)
{
    ringattn_layer_weights *w;
    const ringattn_tensor *l[RINGATTN__LW_N];
    double sd; int st, i, j;
    int64_t E;
    if ((st = ringattn__layer_check_params(cfg, params)) != RINGATTN_OK) return st;
    if (!rng) return ringattn__fail(cfg, RINGATTN_ENULL, "rng is NULL");
    if (!(gamma_init == gamma_init) || gamma_init == INFINITY || gamma_init == -INFINITY)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "gamma_init must be finite");
    w = &params->w; E = params->embed_dim;
    ringattn__layer_list(w, l);
    for (i = 0; i < RINGATTN__LW_N; i++)       /* weights are inputs of every later call: no aliasing */
        for (j = 0; j < i; j++)
            if (l[i]->data && l[j]->data == l[i]->data)
                return ringattn__fail(cfg, RINGATTN_EALIAS, "%s shares its data pointer with %s",
                                      ringattn__lw_names[i], ringattn__lw_names[j]);
    sd = 1.0 / sqrt((double)E);                /* xavier_normal_: gain * sqrt(2 / (E + E)) */
    if (w->wqkv.data) {
        ringattn__layer_draw(&w->wqkv, 0, E, sd, rng);
        ringattn__layer_draw(&w->wqkv, E, E, sd, rng);
        ringattn__layer_draw(&w->wqkv, 2 * E, E, gamma_init * sd, rng);
    } else {
        ringattn__layer_draw(&w->wq, 0, E, sd, rng);
        ringattn__layer_draw(&w->wk, 0, E, sd, rng);
        ringattn__layer_draw(&w->wv, 0, E, gamma_init * sd, rng);
    }
    ringattn__layer_draw(&w->wo, 0, E, gamma_init * sd, rng);
    ringattn__layer_fill(&w->bq, 0); ringattn__layer_fill(&w->bk, 0); ringattn__layer_fill(&w->bv, 0);
    ringattn__layer_fill(&w->bqkv, 0); ringattn__layer_fill(&w->bo, 0);
    ringattn__layer_fill(&w->ln_gamma, 1); ringattn__layer_fill(&w->ln_beta, 0);
    return RINGATTN_OK;
}

#ifdef __cplusplus
}
#endif

#endif /* RINGATTN_IMPLEMENTATION */

/*
   VERSION HISTORY
     0.1  the layer of ringattn.h 0.1 in its own header, unchanged: forward, backward (input
          and parameter gradients), xavier/MAGNETO initialisation with xoshiro256**.

   LICENSE (MIT)
     Copyright (c) 2026 the ringattn authors. Permission is hereby granted, free of charge, to
     any person obtaining a copy of this software and associated documentation files (the
     "Software"), to deal in the Software without restriction, including without limitation
     the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
     of the Software, and to permit persons to whom the Software is furnished to do so, subject
     to the following conditions: The above copyright notice and this permission notice shall be
     included in all copies or substantial portions of the Software. THE SOFTWARE IS PROVIDED
     "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED.
*/
