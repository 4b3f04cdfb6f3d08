/* cuda_golden.cu - run ringattn_cuda_forward on q/k/v (from .npy files, or seeded random
   inputs of a given shape) and compare it with the CPU (ringattn_forward, f64) through
   ringattn_compare: the GPU-port check of the README, end to end, with the GPU side being
   ringattn_cuda.h itself.

   Build (from the repository root):
     nvcc -O2 -I. -gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=compute_80 \
          examples/cuda_golden.cu -o cuda_golden
   Run:
     cuda_golden q.npy k.npy v.npy [options]
     cuda_golden --random B,N,H,D[,HK] [--seed S] [options]
   options:
     --causal none|bottom-right|top-left   --ring P   --f64   --partition contiguous|zigzag|striped
     --window L,R   --softcap C   --seqs K (varlen: K packed sequences of unequal lengths, batch 1)
     --segments s1,s2,.. --dilations r1,r2,.. [--mix head-groups|lse]   (dilated)
     --repeat N   (time N more calls after the checked one: GPU time per call, with cudaEvents)
     --brief      (one line: verdict, errors against the tolerance, GPU ms per call)
     --emulate    (no GPU: the same kernels run as host block programs over host memory, the
                   way tests/test_cuda.cu checks them; slow, for small shapes; no timing)
   q, k, v: [batch, seq, heads, dim] arrays (f16, bf16 as <u2, f32 or f64); --random draws
   N(0, 1) f32 inputs. The GPU computes in f32 (--f64: f64) into outputs of that type; the
   reference is the CPU in f64. The tolerance is the README's policy, per element:
     f64: |got - ref| <= 1e-12 max(max|O|, max|V|)          (out and lse)
     f32: out |got - ref| <= vmax u (2 d smax + nk + 16),  lse <= u (2 d smax + nk + 16) + u |lse|
   (u = 2^-24, smax = |scale| max||q|| max||k||), given to ringattn_compare as atol / rtol.
   Exit 0 within tolerance, 1 outside, 2 bad input, 77 no CUDA device. */
#define RINGATTN_IMPLEMENTATION
#define RINGATTN_CUDA_IMPLEMENTATION
#include "ringattn_cuda.h"
#include "ringattn_layer.h"   /* ringattn_layer_rng: the seeded N(0, 1) inputs of --random */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXG 16

static int usage(void)
{
    fprintf(stderr, "usage: cuda_golden (q.npy k.npy v.npy | --random B,N,H,D[,HK] [--seed S])\n"
                    "         [--causal none|bottom-right|top-left] [--ring P] [--f64]\n"
                    "         [--partition contiguous|zigzag|striped] [--window L,R] [--softcap C] [--seqs K]\n"
                    "         [--segments s1,.. --dilations r1,.. [--mix head-groups|lse]] [--repeat N] [--brief]\n"
                    "         [--emulate]\n");
    return 2;
}

/* "a,b,c" -> up to max int64s; returns the count, -1 on a malformed list */
static int parse_list(const char *s, int64_t *out, int max)
{
    int n = 0;
    char *end;
    while (*s) {
        if (n == max) return -1;
        out[n++] = strtoll(s, &end, 10);
        if (end == s || (*end && *end != ',')) return -1;
        s = *end ? end + 1 : end;
    }
    return n;
}

/* a device copy of a host view: same bytes, same strides (contiguous views here) */
static int to_device(const ringattn_tensor *h, ringattn_tensor *d, size_t es)
{
    size_t n = (size_t)(h->shape[0] * h->shape[1] * h->shape[2] * h->shape[3]);
    *d = *h;
    if (cudaMalloc(&d->data, n * es) != cudaSuccess) return -1;
    return cudaMemcpy(d->data, h->data, n * es, cudaMemcpyHostToDevice) == cudaSuccess ? 0 : -1;
}

static size_t esize(ringattn_dtype t) { return t == RINGATTN_F64 ? 8 : t == RINGATTN_F32 ? 4 : 2; }

/* max over rows (b, n, h) of the row's 2-norm, and max |x| */
static void norms(const ringattn_tensor *t, double *maxnorm, double *maxabs)
{
    int64_t i0, i1, i2, i3;
    *maxnorm = 0; *maxabs = 0;
    for (i0 = 0; i0 < t->shape[0]; i0++) for (i1 = 0; i1 < t->shape[1]; i1++) for (i2 = 0; i2 < t->shape[2]; i2++) {
        double s = 0;
        for (i3 = 0; i3 < t->shape[3]; i3++) {
            double x = ringattn__load(t->data, t->dtype, ringattn__index(t, i0, i1, i2, i3));
            s += x * x;
            if (fabs(x) > *maxabs) *maxabs = fabs(x);
        }
        if (sqrt(s) > *maxnorm) *maxnorm = sqrt(s);
    }
}

int main(int argc, char **argv)
{
    ringattn_npy_array in[3];
    ringattn_tensor T[3];
    ringattn_config cfg = ringattn_default_config();
    char detail[512] = "", report[4096];
    int i, st, count = 0, pass = 1, files = 0, brief = 0, repeat = 0, nseg = 0, nrate = 0, nseqs = 0, emulate = 0;
    ringattn_dtype ct = RINGATTN_F32;
    int64_t shape[5] = { 0, 0, 0, 0, 0 }, seg[MAXG], rate[MAXG], win[2], *cu = NULL;
    uint64_t seed = 1;
    int64_t b, nq, nk, h, d, dv;
    size_t no, nl;
    double *ref_o, *ref_l, qn, kn, qa, ka, vn, vmax, scale, smax, omax, lmax, worst[2] = { 0, 0 }, frac[2] = { 0, 0 };
    double ms = 0;
    void *got_o, *got_l, *dev_o = NULL, *dev_l = NULL, *host[3] = { NULL, NULL, NULL };
    ringattn_tensor dq, dk, dvv, O, L, RO, RL, GO, GL;
    cfg.error_detail = detail; cfg.error_detail_size = sizeof detail;
    memset(in, 0, sizeof in);
    if (argc < 2) return usage();
    i = 1;
    if (strcmp(argv[1], "--random") != 0) {
        if (argc < 4) return usage();
        files = 1; i = 4;
    }
    for (; i < argc; i++) {
        const char *a = argv[i], *v = (i + 1 < argc) ? argv[i + 1] : NULL;
        if (!strcmp(a, "--f64")) { ct = RINGATTN_F64; continue; }
        if (!strcmp(a, "--brief")) { brief = 1; continue; }
        if (!strcmp(a, "--emulate")) { emulate = 1; continue; }
        if (!v) return usage();
        i++;
        if (!strcmp(a, "--random")) { if (parse_list(v, shape, 5) < 4) return usage(); }
        else if (!strcmp(a, "--seed")) seed = (uint64_t)strtoull(v, NULL, 10);
        else if (!strcmp(a, "--ring")) cfg.ring_size = atoi(v);
        else if (!strcmp(a, "--repeat")) repeat = atoi(v);
        else if (!strcmp(a, "--softcap")) cfg.softcap = atof(v);
        else if (!strcmp(a, "--seqs")) nseqs = atoi(v);
        else if (!strcmp(a, "--segments")) { if ((nseg = parse_list(v, seg, MAXG)) < 1) return usage(); }
        else if (!strcmp(a, "--dilations")) { if ((nrate = parse_list(v, rate, MAXG)) < 1) return usage(); }
        else if (!strcmp(a, "--window")) {
            if (parse_list(v, win, 2) != 2) return usage();
            cfg.window_left = (int)win[0]; cfg.window_right = (int)win[1];
        } else if (!strcmp(a, "--mix")) {
            if (!strcmp(v, "lse")) cfg.mix = RINGATTN_MIX_LSE;
            else if (!strcmp(v, "head-groups")) cfg.mix = RINGATTN_MIX_HEAD_GROUPS;
            else return usage();
        } else if (!strcmp(a, "--partition")) {
            if (!strcmp(v, "zigzag")) cfg.partition = RINGATTN_ZIGZAG;
            else if (!strcmp(v, "striped")) cfg.partition = RINGATTN_STRIPED;
            else if (!strcmp(v, "contiguous")) cfg.partition = RINGATTN_CONTIGUOUS;
            else return usage();
        } else if (!strcmp(a, "--causal")) {
            cfg.causal = !strcmp(v, "bottom-right") ? RINGATTN_CAUSAL_BOTTOM_RIGHT
                       : !strcmp(v, "top-left") ? RINGATTN_CAUSAL_TOP_LEFT
                       : !strcmp(v, "none") ? RINGATTN_CAUSAL_NONE : -1;
            if (cfg.causal < 0) return usage();
        } else return usage();
    }
    if (nseg != nrate) { fprintf(stderr, "--segments and --dilations need the same count\n"); return 2; }
    if (nseg) { cfg.num_groups = nseg; cfg.segment_lengths = seg; cfg.dilation_rates = rate; }

    if (files) {
        for (i = 0; i < 3; i++) {
            if ((st = ringattn_npy_load(argv[i + 1], &in[i], &cfg)) != RINGATTN_OK) {
                fprintf(stderr, "%s: %s (%s)\n", argv[i + 1], ringattn_strerror(st), detail);
                return 2;
            }
            T[i] = in[i].t;
        }
    } else {   /* seeded N(0, 1) inputs in f32 */
        ringattn_layer_rng rng = ringattn_layer_rng_seed(seed);
        int64_t hk = shape[4] > 0 ? shape[4] : shape[2], n = shape[1], j, cnt;
        if (shape[0] < 1 || n < 1 || shape[2] < 1 || shape[3] < 1) return usage();
        for (i = 0; i < 3; i++) {
            cnt = shape[0] * n * (i ? hk : shape[2]) * shape[3];
            host[i] = malloc((size_t)cnt * sizeof(float));
            if (!host[i]) { fprintf(stderr, "out of memory\n"); return 2; }
            for (j = 0; j < cnt; j++) ((float *)host[i])[j] = (float)ringattn_layer_rng_normal(&rng);
            T[i] = ringattn_tensor_bnhd(host[i], RINGATTN_F32, shape[0], n, i ? hk : shape[2], shape[3]);
        }
    }
    if (nseqs > 0) {   /* varlen: sequence j gets a length proportional to j + 1 (unequal) */
        int64_t n = T[0].shape[1], tot = (int64_t)nseqs * (nseqs + 1) / 2, j;
        if (T[1].shape[1] != n) { fprintf(stderr, "--seqs needs nq == nk\n"); return 2; }
        cu = (int64_t *)malloc(sizeof(int64_t) * (size_t)(nseqs + 1));
        if (!cu) { fprintf(stderr, "out of memory\n"); return 2; }
        cu[0] = 0;
        for (j = 1; j <= nseqs; j++) cu[j] = (j == nseqs) ? n : cu[j - 1] + n * j / tot;
        cfg.num_seqs = nseqs; cfg.cu_seqlens_q = cu; cfg.cu_seqlens_k = cu;
    }

    b = T[0].shape[0]; nq = T[0].shape[1]; h = T[0].shape[2]; d = T[0].shape[3];
    nk = T[1].shape[1]; dv = T[2].shape[3];
    no = (size_t)(b * nq * h * dv); nl = (size_t)(b * h * nq);
    ref_o = (double *)malloc(no * 8); ref_l = (double *)malloc(nl * 8);
    got_o = malloc(no * 8); got_l = malloc(nl * 8);
    if (!ref_o || !ref_l || !got_o || !got_l) { fprintf(stderr, "out of memory\n"); return 2; }

    /* the reference: the CPU in f64 */
    RO = ringattn_tensor_bnhd(ref_o, RINGATTN_F64, b, nq, h, dv);
    RL = ringattn_tensor_lse(ref_l, RINGATTN_F64, b, h, nq);
    cfg.compute = RINGATTN_F64;
    if ((st = ringattn_forward(&cfg, &T[0], &T[1], &T[2], &RO, &RL)) != RINGATTN_OK) {
        fprintf(stderr, "ringattn_forward: %s (%s)\n", ringattn_strerror(st), detail);
        return 2;
    }

    /* the GPU (or, emulated, its kernels on the host) */
    cfg.compute = ct;
    if (emulate) {
        O = ringattn_tensor_bnhd(got_o, ct, b, nq, h, dv);
        L = ringattn_tensor_lse(got_l, ct, b, h, nq);
        if ((st = ringattn_cuda__forward(&cfg, &T[0], &T[1], &T[2], &O, &L, 1, 0)) != RINGATTN_OK) {
            fprintf(stderr, "ringattn_cuda_forward (emulated): %s (%s)\n", ringattn_strerror(st), detail);
            return 2;
        }
        repeat = 0;
    } else {
        if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
            printf("no CUDA device: nothing to compare (the CPU reference ran)\n");
            return 77;
        }
        if (to_device(&T[0], &dq, esize(T[0].dtype)) || to_device(&T[1], &dk, esize(T[1].dtype)) ||
            to_device(&T[2], &dvv, esize(T[2].dtype)) ||
            cudaMalloc(&dev_o, no * esize(ct)) != cudaSuccess || cudaMalloc(&dev_l, nl * esize(ct)) != cudaSuccess) {
            fprintf(stderr, "could not copy the inputs to the GPU\n");
            return 2;
        }
        O = ringattn_tensor_bnhd(dev_o, ct, b, nq, h, dv);
        L = ringattn_tensor_lse(dev_l, ct, b, h, nq);
        if ((st = ringattn_cuda_forward(&cfg, &dq, &dk, &dvv, &O, &L)) != RINGATTN_OK) {
            fprintf(stderr, "ringattn_cuda_forward: %s (%s)\n", ringattn_strerror(st), detail);
            return 2;
        }
        if (repeat > 0) {   /* the whole call: validation, cudaMalloc of the ring, kernels, sync */
            cudaEvent_t e0, e1;
            float t = 0;
            cudaEventCreate(&e0); cudaEventCreate(&e1);
            cudaEventRecord(e0, (cudaStream_t)cfg.stream);
            for (i = 0; i < repeat && st == RINGATTN_OK; i++) st = ringattn_cuda_forward(&cfg, &dq, &dk, &dvv, &O, &L);
            cudaEventRecord(e1, (cudaStream_t)cfg.stream);
            cudaEventSynchronize(e1);
            cudaEventElapsedTime(&t, e0, e1);
            ms = (double)t / repeat;
            cudaEventDestroy(e0); cudaEventDestroy(e1);
            if (st != RINGATTN_OK) {
                fprintf(stderr, "ringattn_cuda_forward: %s (%s)\n", ringattn_strerror(st), detail);
                return 2;
            }
        }
        cudaMemcpy(got_o, dev_o, no * esize(ct), cudaMemcpyDeviceToHost);
        cudaMemcpy(got_l, dev_l, nl * esize(ct), cudaMemcpyDeviceToHost);
    }
    GO = ringattn_tensor_bnhd(got_o, ct, b, nq, h, dv);
    GL = ringattn_tensor_lse(got_l, ct, b, h, nq);

    /* the README's tolerance policy as atol / rtol */
    norms(&T[0], &qn, &qa); norms(&T[1], &kn, &ka); norms(&T[2], &vn, &vmax);
    scale = cfg.scale != 0 ? cfg.scale : 1.0 / sqrt((double)d);
    smax = fabs(scale) * qn * kn;
    omax = 0; lmax = 0;
    {
        size_t j;
        for (j = 0; j < no; j++) if (fabs(ref_o[j]) > omax) omax = fabs(ref_o[j]);
        for (j = 0; j < nl; j++) if (isfinite(ref_l[j]) && fabs(ref_l[j]) > lmax) lmax = fabs(ref_l[j]);
    }
    for (i = 0; i < 2; i++) {
        ringattn_compare_result res;
        ringattn_compare_policy pol = ringattn_compare_default_policy(ct);
        const double u = 1.0 / 16777216.0, grow = 2.0 * (double)d * smax + (double)nk + 16.0;
        if (ct == RINGATTN_F64) { pol.atol = 1e-12 * (i ? (lmax > vmax ? lmax : vmax) : (omax > vmax ? omax : vmax)); pol.rtol = 0; }
        else if (i == 0) { pol.atol = vmax * u * grow; pol.rtol = 0; }
        else { pol.atol = u * grow; pol.rtol = u; }
        if ((st = ringattn_compare(i ? &GL : &GO, i ? &RL : &RO, NULL, &pol, &res, &cfg)) != RINGATTN_OK) {
            fprintf(stderr, "ringattn_compare: %s (%s)\n", ringattn_strerror(st), detail);
            return 2;
        }
        worst[i] = res.max_abs;
        {   /* the worst element's share of its own allowance (all four tensors are contiguous) */
            size_t j, n = i ? nl : no;
            const double *ref = i ? ref_l : ref_o;
            const void *got = i ? got_l : got_o;
            for (j = 0; j < n; j++) {
                double g = ringattn__load(got, ct, (int64_t)j), e;
                if (!isfinite(ref[j]) || !isfinite(g)) continue;   /* non-finite: res.pass decides */
                e = fabs(g - ref[j]) / (pol.atol + pol.rtol * fabs(ref[j]));
                if (e > frac[i]) frac[i] = e;
            }
        }
        if (!brief) {
            ringattn_compare_format(&res, i ? "bhn." : "bnhd", report, sizeof report);
            printf("== %s (GPU%s %s vs CPU f64; tolerance atol %.3g rtol %.3g)\n%s", i ? "lse" : "out",
                   emulate ? " emulated" : "", ct == RINGATTN_F64 ? "f64" : "f32", pol.atol, pol.rtol, report);
        }
        pass &= res.pass;
    }
    if (brief)
        printf("%s out_err=%.3e out_frac=%.2e lse_err=%.3e lse_frac=%.2e gpu_ms=%.3f\n", pass ? "PASS" : "FAIL",
               worst[0], frac[0], worst[1], frac[1], ms);
    else if (repeat > 0)
        printf("GPU time per call: %.3f ms (mean of %d calls after the checked one)\n", ms, repeat);
    for (i = 0; i < 3 && !emulate; i++) cudaFree(i == 0 ? dq.data : i == 1 ? dk.data : dvv.data);
    for (i = 0; i < 3; i++) {
        ringattn_npy_free(&in[i]);
        free(host[i]);
    }
    if (!emulate) { cudaFree(dev_o); cudaFree(dev_l); }
    free(ref_o); free(ref_l); free(got_o); free(got_l); free(cu);
    return pass ? 0 : 1;
}
