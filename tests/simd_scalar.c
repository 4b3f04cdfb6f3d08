/* simd_scalar.c - the second translation unit of test_simd.c: a private copy of the library
   built with RINGATTN_NO_SIMD and RINGATTN_NO_DISPATCH, so its f32 exp runs one element at a
   time. test_simd.c compares it bit for bit with the vectorised copy. */
#define RINGATTN_STATIC
#define RINGATTN_NO_SIMD
#define RINGATTN_NO_DISPATCH
#define RINGATTN_NO_NPY
#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"

int simd_scalar_forward(const ringattn_config *cfg, const ringattn_tensor *q, const ringattn_tensor *k,
                        const ringattn_tensor *v, ringattn_tensor *out, ringattn_tensor *lse);
int simd_scalar_backward(const ringattn_config *cfg, const ringattn_tensor *q, const ringattn_tensor *k,
                         const ringattn_tensor *v, const ringattn_tensor *out, const ringattn_tensor *lse,
                         const ringattn_tensor *dout, ringattn_tensor *dq, ringattn_tensor *dk,
                         ringattn_tensor *dv);

int simd_scalar_forward(const ringattn_config *cfg, const ringattn_tensor *q, const ringattn_tensor *k,
                        const ringattn_tensor *v, ringattn_tensor *out, ringattn_tensor *lse)
{
    return ringattn_forward(cfg, q, k, v, out, lse);
}

int simd_scalar_backward(const ringattn_config *cfg, const ringattn_tensor *q, const ringattn_tensor *k,
                         const ringattn_tensor *v, const ringattn_tensor *out, const ringattn_tensor *lse,
                         const ringattn_tensor *dout, ringattn_tensor *dq, ringattn_tensor *dk,
                         ringattn_tensor *dv)
{
    return ringattn_backward(cfg, q, k, v, out, lse, dout, dq, dk, dv);
}
