/* ringattn_layer_ref.h - the naive f64 oracle of the multihead (dilated) attention layer of
   ringattn_layer.h.

   y = LayerNorm(attention(x_q Wq^T + bq, x_k Wk^T + bk, x_v Wv^T + bv)) Wo^T + bo, written as
   literally as possible: every projection is a triple loop, the attention is ref_forward /
   ref_backward of ringattn_ref.h on [b, n, H, E/H] (the same memory as [b, n, E]), the
   LayerNorm's backward multiplies by its Jacobian written out element by element
       d xhat_j / d a_i = rstd (delta_ij - 1/E - xhat_i xhat_j / E)
   (no shared shape with the library's closed form). Nothing here knows about rings.

   Layouts (f64, contiguous, row-major): x_q [b, nq, E], x_k, x_v [b, nk, E], y and dy
   [b, nq, E]; weights [E, E] as nn.Linear ([out, in]); biases, gamma, beta [E]. A NULL bias
   is 0, a NULL gamma 1, a NULL beta 0. Build: compile alongside reference/ringattn_ref.c. */
#ifndef RINGATTN_LAYER_REF_H
#define RINGATTN_LAYER_REF_H

#include "ringattn_ref.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t b, nq, nk, E, H;
    ref_problem attn;        /* causal, scale (0 = 1/sqrt(E/H)), window, dilation, mix, softcap:
                                set by the caller; b, nq, nk, h, hk, d, dv are filled in here   */
    int layer_norm;          /* 1: LayerNorm over E before the output projection                  */
    double ln_eps;
    const double *wq, *wk, *wv, *bq, *bk, *bv, *wo, *bo, *gamma, *beta;
} ref_layer;

/* y [b, nq, E]. 0 on success, -1 on bad input or no memory. */
int ref_layer_forward(const ref_layer *L, const double *xq, const double *xk, const double *xv, double *y);

/* Every gradient is overwritten (all required): dxq [b, nq, E], dxk, dxv [b, nk, E], weights
   [E, E], vectors [E] (dbq etc. are computed even when the bias is NULL). For self-attention
   pass the same x three times and add dxq + dxk + dxv. 0 on success, -1 on failure. */
int ref_layer_backward(const ref_layer *L, const double *xq, const double *xk, const double *xv,
                       const double *dy, double *dxq, double *dxk, double *dxv,
                       double *dwq, double *dwk, double *dwv, double *dbq, double *dbk, double *dbv,
                       double *dwo, double *dbo, double *dgamma, double *dbeta);

#ifdef __cplusplus
}
#endif
#endif /* RINGATTN_LAYER_REF_H */
