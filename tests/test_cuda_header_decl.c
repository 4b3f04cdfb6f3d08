/* test_cuda_header_decl.c - ringattn_cuda.h as a plain C99 declaration header (no CUDA
   headers needed): calls ringattn_cuda_forward and ringattn_cuda_forward_kvcache,
   implemented in test_cuda_header.cu. */
#include "ringattn_cuda.h"

#include <string.h>

int cuda_header_decl_check(void);
int cuda_header_decl_kvcache_check(void);

int cuda_header_decl_check(void)
{
    double q[4] = { 0.5, -1.0, 1.5, 0.25 }, o[4];
    ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F64, 1, 2, 1, 2);
    ringattn_tensor O = ringattn_tensor_bnhd(o, RINGATTN_F64, 1, 2, 1, 2);
    ringattn_config cfg = ringattn_default_config();
    /* host memory: RINGATTN_EUNSUPPORTED with a GPU, RINGATTN_ECUDA without one */
    return ringattn_cuda_forward(&cfg, &Q, &Q, &Q, &O, NULL);
}

int cuda_header_decl_kvcache_check(void)
{
    double q[4] = { 0.5, -1.0, 1.5, 0.25 }, kc[6] = { 1, 2, 3, 4, 5, 6 }, o[4];
    int32_t seqlens[1] = { 3 };
    ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F64, 1, 2, 1, 2);
    ringattn_tensor K = ringattn_tensor_bnhd(kc, RINGATTN_F64, 1, 3, 1, 2);
    ringattn_tensor O = ringattn_tensor_bnhd(o, RINGATTN_F64, 1, 2, 1, 2);
    ringattn_config cfg = ringattn_default_config();
    ringattn_kvcache kv;
    memset(&kv, 0, sizeof kv);
    kv.k_cache = &K; kv.v_cache = &K; kv.cache_seqlens = seqlens; kv.num_splits = 2;
    /* host memory: RINGATTN_EUNSUPPORTED with a GPU, RINGATTN_ECUDA without one */
    return ringattn_cuda_forward_kvcache(&cfg, &kv, &Q, &O, NULL);
}
