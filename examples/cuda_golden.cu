/* cuda_golden.cu - run ringattn_cuda_forward on q/k/v from .npy files and compare it with
   the CPU (ringattn_forward, f64) through ringattn_compare: the GPU-port check of the README,
   end to end, with the GPU side being ringattn_cuda.h itself.

   Build (from the repository root):
     nvcc -O2 -I. -gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=compute_80 \
          examples/cuda_golden.cu -o cuda_golden
   Run:
     cuda_golden q.npy k.npy v.npy [--causal none|bottom-right|top-left] [--ring P] [--f64]
   q, k, v: [batch, seq, heads, dim] arrays (f16, bf16 as <u2, f32 or f64). The GPU computes
   in f32 (--f64: f64) with f32 outputs; the reference is the CPU in f64. Prints the compare
   report for out and lse. Exit 0 within tolerance (policy (a), f32 defaults, or f64 with
   --f64), 1 outside, 2 bad input, 77 no CUDA device. */
#define RINGATTN_IMPLEMENTATION
#define RINGATTN_CUDA_IMPLEMENTATION
#include "ringattn_cuda.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "usage: cuda_golden q.npy k.npy v.npy [--causal none|bottom-right|top-left] [--ring P] [--f64]\n");
    return 2;
}

/* a device copy of a host view: same bytes, same strides (contiguous npy views here) */
static int to_device(const ringattn_tensor *h, ringattn_tensor *d, size_t es)
{
    size_t n = (size_t)(h->shape[0] * h->shape[1] * h->shape[2] * h->shape[3]);
    *d = *h;
    if (cudaMalloc(&d->data, n * es) != cudaSuccess) return -1;
    return cudaMemcpy(d->data, h->data, n * es, cudaMemcpyHostToDevice) == cudaSuccess ? 0 : -1;
}

static size_t esize(ringattn_dtype t) { return t == RINGATTN_F64 ? 8 : t == RINGATTN_F32 ? 4 : 2; }

int main(int argc, char **argv)
{
    ringattn_npy_array in[3];
    ringattn_config cfg = ringattn_default_config();
    char detail[512] = "", report[4096];
    int i, st, count = 0, pass = 1;
    ringattn_dtype ct = RINGATTN_F32;
    int64_t b, nq, h, dv;
    size_t no, nl;
    double *ref_o, *ref_l;
    void *got_o, *got_l, *dev_o = NULL, *dev_l = NULL;
    ringattn_tensor dq, dk, dvv, O, L, RO, RL, GO, GL;
    cfg.error_detail = detail; cfg.error_detail_size = sizeof detail;
    if (argc < 4) return usage();
    for (i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--f64")) ct = RINGATTN_F64;
        else if (!strcmp(argv[i], "--ring") && i + 1 < argc) cfg.ring_size = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--causal") && i + 1 < argc) {
            const char *m = argv[++i];
            cfg.causal = !strcmp(m, "bottom-right") ? RINGATTN_CAUSAL_BOTTOM_RIGHT
                       : !strcmp(m, "top-left") ? RINGATTN_CAUSAL_TOP_LEFT : RINGATTN_CAUSAL_NONE;
        } else return usage();
    }
    memset(in, 0, sizeof in);
    for (i = 0; i < 3; i++)
        if ((st = ringattn_npy_load(argv[i + 1], &in[i], &cfg)) != RINGATTN_OK) {
            fprintf(stderr, "%s: %s (%s)\n", argv[i + 1], ringattn_strerror(st), detail);
            return 2;
        }
    b = in[0].t.shape[0]; nq = in[0].t.shape[1]; h = in[0].t.shape[2]; dv = in[2].t.shape[3];
    no = (size_t)(b * nq * h * dv); nl = (size_t)(b * h * nq);
    ref_o = (double *)malloc(no * 8); ref_l = (double *)malloc(nl * 8);
    got_o = malloc(no * 8); got_l = malloc(nl * 8);
    if (!ref_o || !ref_l || !got_o || !got_l) { fprintf(stderr, "out of memory\n"); return 2; }

    /* the reference: the CPU in f64 */
    RO = ringattn_tensor_bnhd(ref_o, RINGATTN_F64, b, nq, h, dv);
    RL = ringattn_tensor_lse(ref_l, RINGATTN_F64, b, h, nq);
    cfg.compute = RINGATTN_F64;
    if ((st = ringattn_forward(&cfg, &in[0].t, &in[1].t, &in[2].t, &RO, &RL)) != RINGATTN_OK) {
        fprintf(stderr, "ringattn_forward: %s (%s)\n", ringattn_strerror(st), detail);
        return 2;
    }

    /* the GPU */
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        printf("no CUDA device: nothing to compare (the CPU reference ran)\n");
        return 77;
    }
    if (to_device(&in[0].t, &dq, esize(in[0].t.dtype)) || to_device(&in[1].t, &dk, esize(in[1].t.dtype)) ||
        to_device(&in[2].t, &dvv, esize(in[2].t.dtype)) ||
        cudaMalloc(&dev_o, no * esize(ct)) != cudaSuccess || cudaMalloc(&dev_l, nl * esize(ct)) != cudaSuccess) {
        fprintf(stderr, "could not copy the inputs to the GPU\n");
        return 2;
    }
    O = ringattn_tensor_bnhd(dev_o, ct, b, nq, h, dv);
    L = ringattn_tensor_lse(dev_l, ct, b, h, nq);
    cfg.compute = ct;
    if ((st = ringattn_cuda_forward(&cfg, &dq, &dk, &dvv, &O, &L)) != RINGATTN_OK) {
        fprintf(stderr, "ringattn_cuda_forward: %s (%s)\n", ringattn_strerror(st), detail);
        return 2;
    }
    cudaMemcpy(got_o, dev_o, no * esize(ct), cudaMemcpyDeviceToHost);
    cudaMemcpy(got_l, dev_l, nl * esize(ct), cudaMemcpyDeviceToHost);
    GO = ringattn_tensor_bnhd(got_o, ct, b, nq, h, dv);
    GL = ringattn_tensor_lse(got_l, ct, b, h, nq);

    for (i = 0; i < 2; i++) {
        ringattn_compare_result res;
        ringattn_compare_policy pol = ringattn_compare_default_policy(ct);
        if ((st = ringattn_compare(i ? &GL : &GO, i ? &RL : &RO, NULL, &pol, &res, &cfg)) != RINGATTN_OK) {
            fprintf(stderr, "ringattn_compare: %s (%s)\n", ringattn_strerror(st), detail);
            return 2;
        }
        ringattn_compare_format(&res, i ? "bhn." : "bnhd", report, sizeof report);
        printf("== %s (GPU %s vs CPU f64)\n%s", i ? "lse" : "out", ct == RINGATTN_F64 ? "f64" : "f32", report);
        pass &= res.pass;
    }
    for (i = 0; i < 3; i++) { cudaFree(i == 0 ? dq.data : i == 1 ? dk.data : dvv.data); ringattn_npy_free(&in[i]); }
    cudaFree(dev_o); cudaFree(dev_l);
    free(ref_o); free(ref_l); free(got_o); free(got_l);
    return pass ? 0 : 1;
}
