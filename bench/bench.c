/* bench.c - ring attention speed against the BLAS ceiling, measured in the same run.

   For each configuration: the median wall time of --reps runs of ringattn_forward (and
   ringattn_backward), its GFLOP/s, and the ratio to cblas_sgemm / cblas_dgemm GFLOP/s measured
   in this same process with the same number of threads (a square GEMM of size --gemm).
   FLOPs: forward 4*b*h*nq*nk*d (half when causal), backward 2.5x that.
   Output: CSV on stdout, one header line (the last column names the kernels that ran: "avx512
   f32", "avx2 f64", ...). Build: meson (target bench; bench-avx2 is the same program with
   the AVX2 kernels only, -DRINGATTN_NO_AVX512) or
     cc -O2 -fopenmp -DRINGATTN_USE_CBLAS -I. bench/bench.c -lopenblas -lm

   Options (lists are comma separated):
     --n 4096   --d 64   --h 8   --b 1   --p 1,2,4,8   --threads 1,2   --causal 0
     --dtype f32   a list of: f32, f64 (storage and compute), bf16, f16 (storage; f32 compute,
                   the output stored in it too: what a GPU port hands over), bf16-emul, f16-emul
                   (the same storage with the precision emulation of a port's baseline: P
                   rounded to it before P V, round_p)
     --pass fwd (fwd,bwd)   --reps 5   --gemm 2048
     --partition 0 (0 contiguous, 1 zigzag, 2 striped; a list)
     --segments 2048,4096,8192 --rates 1,2,4   dilated attention (LongNet, the seed's head-group
                mix); its FLOPs are the ones multiplied (ringattn_stats.flops), not 4*b*h*n*n*d */
#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench_util.h"

#ifndef RINGATTN_USE_CBLAS
#error "bench/bench.c compares against BLAS: build it with -DRINGATTN_USE_CBLAS"
#endif
#ifdef _OPENMP
#include <omp.h>
#endif
/* OpenBLAS's own knob; the bench (not the library) may set process-wide state */
void openblas_set_num_threads(int);


static void set_threads(int t)
{
    openblas_set_num_threads(t);
#ifdef _OPENMP
    omp_set_num_threads(t);
#endif
}

/* the --dtype names: storage type, and 1 when P is rounded to it (the emulated baseline) */
static const struct { const char *name; ringattn_dtype dt; int emul; } dtypes[] = {
    { "f32", RINGATTN_F32, 0 }, { "f64", RINGATTN_F64, 0 }, { "bf16", RINGATTN_BF16, 0 },
    { "f16", RINGATTN_F16, 0 }, { "bf16-emul", RINGATTN_BF16, 1 }, { "f16-emul", RINGATTN_F16, 1 },
};
#define NDTYPES (int)(sizeof dtypes / sizeof dtypes[0])

/* "f32,bf16-emul" -> the indices into dtypes[]; -1 on an unknown name */
static int parse_dtypes(const char *s, int *out, int max)
{
    int n = 0, k;
    while (*s && n < max) {
        size_t len = strcspn(s, ",");
        for (k = 0; k < NDTYPES; k++)
            if (strlen(dtypes[k].name) == len && !strncmp(s, dtypes[k].name, len)) break;
        if (k == NDTYPES) return -1;
        out[n++] = k;
        s += len + (s[len] == ',');
    }
    return n;
}

/* GEMM ceiling: median GFLOP/s of an n x n x n multiply */
static double gemm_gflops(int f64, int n, int reps)
{
    size_t es = f64 ? 8 : 4, i;
    void *a = malloc((size_t)n * n * es), *b = malloc((size_t)n * n * es), *c = malloc((size_t)n * n * es);
    double t[64]; int r;
    for (i = 0; i < (size_t)n * n; i++) {
        if (f64) { ((double *)a)[i] = 1e-3 * (double)(i % 13); ((double *)b)[i] = 1e-3 * (double)(i % 7); }
        else { ((float *)a)[i] = 1e-3f * (float)(i % 13); ((float *)b)[i] = 1e-3f * (float)(i % 7); }
    }
    for (r = 0; r <= reps; r++) {   /* run 0 warms up */
        double t0 = now();
        if (f64) cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0, (double *)a, n, (double *)b, n, 0.0, (double *)c, n);
        else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, (float *)a, n, (float *)b, n, 0.0f, (float *)c, n);
        if (r) t[r - 1] = now() - t0;
    }
    free(a); free(b); free(c);
    return 2.0 * n * (double)n * n / median(t, reps) * 1e-9;
}

int main(int argc, char **argv)
{
    long ns[16] = { 4096 }, ds[16] = { 64 }, ps[16] = { 1, 2, 4, 8 }, ths[16] = { 1, 2 }, cs[4] = { 0 }, parts[4] = { 0 };
    int nn = 1, nd = 1, np = 4, nth = 2, nc = 1, npart = 1, reps = 5, gemm_n = 2048, i;
    long h = 8, b = 1;
    int64_t segs[8], rates[8]; long lv[8]; int nseg = 0, nrate = 0, j;
    int dts[8] = { 0 }, ndt = 1, do_fwd = 1, do_bwd = 0;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = (i + 1 < argc) ? argv[i + 1] : "";
        if (!strcmp(a, "--n")) { nn = parse_list(v, ns, 16); i++; }
        else if (!strcmp(a, "--d")) { nd = parse_list(v, ds, 16); i++; }
        else if (!strcmp(a, "--p")) { np = parse_list(v, ps, 16); i++; }
        else if (!strcmp(a, "--threads")) { nth = parse_list(v, ths, 16); i++; }
        else if (!strcmp(a, "--causal")) { nc = parse_list(v, cs, 4); i++; }
        else if (!strcmp(a, "--partition")) { npart = parse_list(v, parts, 4); i++; }
        else if (!strcmp(a, "--h")) { h = atol(v); i++; }
        else if (!strcmp(a, "--segments")) { nseg = parse_list(v, lv, 8); for (j = 0; j < nseg; j++) segs[j] = lv[j]; i++; }
        else if (!strcmp(a, "--rates")) { nrate = parse_list(v, lv, 8); for (j = 0; j < nrate; j++) rates[j] = lv[j]; i++; }
        else if (!strcmp(a, "--b")) { b = atol(v); i++; }
        else if (!strcmp(a, "--reps")) { reps = atoi(v); i++; }
        else if (!strcmp(a, "--gemm")) { gemm_n = atoi(v); i++; }
        else if (!strcmp(a, "--dtype")) {
            if ((ndt = parse_dtypes(v, dts, 8)) < 1) { fprintf(stderr, "--dtype: a list of f32, f64, bf16, f16, bf16-emul, f16-emul\n"); return 2; }
            i++;
        }
        else if (!strcmp(a, "--pass")) { do_fwd = strstr(v, "fwd") != NULL; do_bwd = strstr(v, "bwd") != NULL; i++; }
        else { fprintf(stderr, "unknown option %s (see the comment at the top of bench/bench.c)\n", a); return 2; }
    }
    if (reps < 1 || reps > 64) { fprintf(stderr, "--reps must be 1..64\n"); return 2; }
    if (nseg != nrate) { fprintf(stderr, "--segments and --rates need the same number of entries\n"); return 2; }
    printf("dtype,pass,b,h,n,d,causal,partition,p,threads,median_s,gflops,gemm_gflops,ratio_to_gemm,kernels\n");
    {
        int it, id, in, ic, ip, idt;
        for (idt = 0; idt < ndt; idt++) {
            ringattn_dtype dt = dtypes[dts[idt]].dt;   /* storage */
            int f64 = dt == RINGATTN_F64, emul = dtypes[dts[idt]].emul;
            const char *dname = dtypes[dts[idt]].name;
            for (it = 0; it < nth; it++) {
                double ceiling;
                set_threads((int)ths[it]);
                ceiling = gemm_gflops(f64, gemm_n, reps);
                for (in = 0; in < nn; in++) for (id = 0; id < nd; id++) for (ic = 0; ic < nc; ic++) {
                    long n = ns[in], d = ds[id];
                    size_t es = ringattn__dtype_size(dt), x, cnt = (size_t)(b * n * h * d);
                    void *q = malloc(cnt * es), *k = malloc(cnt * es), *v = malloc(cnt * es), *o = malloc(cnt * es);
                    void *g = malloc(cnt * es), *dq = malloc(cnt * es), *dk = malloc(cnt * es), *dv = malloc(cnt * es);
                    float *lse = (float *)malloc((size_t)(b * h * n) * sizeof(float));
                    ringattn_tensor Q, K, V, O, G, DQ, DK, DV, L;
                    if (!q || !k || !v || !o || !g || !dq || !dk || !dv || !lse) { fprintf(stderr, "out of memory\n"); return 1; }
                    for (x = 0; x < cnt; x++) {
                        double a = 0.5 * ((double)((x * 2654435761u) % 1000) / 500.0 - 1.0);
                        ringattn__store(q, dt, (int64_t)x, a); ringattn__store(k, dt, (int64_t)x, -a * 0.7);
                        ringattn__store(v, dt, (int64_t)x, a * 0.3); ringattn__store(g, dt, (int64_t)x, a);
                    }
                    Q = ringattn_tensor_bnhd(q, dt, b, n, h, d); K = ringattn_tensor_bnhd(k, dt, b, n, h, d);
                    V = ringattn_tensor_bnhd(v, dt, b, n, h, d); O = ringattn_tensor_bnhd(o, dt, b, n, h, d);
                    G = ringattn_tensor_bnhd(g, dt, b, n, h, d); DQ = ringattn_tensor_bnhd(dq, dt, b, n, h, d);
                    DK = ringattn_tensor_bnhd(dk, dt, b, n, h, d); DV = ringattn_tensor_bnhd(dv, dt, b, n, h, d);
                    L = ringattn_tensor_lse(lse, RINGATTN_F32, b, h, n);
                    for (ip = 0; ip < np * npart; ip++) {
                        ringattn_config cfg = ringattn_default_config();
                        long part = parts[ip / np], pp = ps[ip % np];
                        double tf[64], tb[64], flops = 4.0 * b * h * (double)n * n * d * (cs[ic] ? 0.5 : 1.0);
                        int r, st = 0;
                        if (pp > n / (part == 1 ? 2 : 1)) continue;
                        cfg.partition = (ringattn_partition)part;
                        cfg.compute = f64 ? RINGATTN_F64 : RINGATTN_F32; cfg.causal = (int)cs[ic]; cfg.ring_size = (int)pp;
                        cfg.num_threads = (int)ths[it];
                        if (emul) { cfg.round_p = 1; cfg.p_dtype = dt; }
                        if (nseg) { cfg.segment_lengths = segs; cfg.dilation_rates = rates; cfg.num_groups = nseg; }
                        for (r = 0; r <= reps && st == 0; r++) {   /* run 0 warms up */
                            ringattn_stats stats;
                            double t0 = now();
                            cfg.stats = nseg ? &stats : NULL;
                            st = ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
                            if (r) tf[r - 1] = now() - t0;
                            if (nseg && st == 0) flops = (double)stats.flops;
                            cfg.stats = NULL;
                            if (do_bwd && st == 0) {
                                t0 = now();
                                st = ringattn_backward(&cfg, &Q, &K, &V, &O, &L, &G, &DQ, &DK, &DV);
                                if (r) tb[r - 1] = now() - t0;
                            }
                        }
                        if (st) { fprintf(stderr, "ringattn: %s\n", ringattn_strerror(st)); return 1; }
                        if (do_fwd) {
                            double t = median(tf, reps);
                            printf("%s,fwd,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%.6f,%.2f,%.2f,%.3f,%s\n", dname,
                                   b, h, n, d, cs[ic], part, pp, ths[it], t, flops / t * 1e-9, ceiling, flops / t * 1e-9 / ceiling,
                                   ringattn__kernels_for(cfg.compute)->name);
                        }
                        if (do_bwd) {
                            double t = median(tb, reps);
                            printf("%s,bwd,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%.6f,%.2f,%.2f,%.3f,%s\n", dname,
                                   b, h, n, d, cs[ic], part, pp, ths[it], t, 2.5 * flops / t * 1e-9, ceiling,
                                   2.5 * flops / t * 1e-9 / ceiling, ringattn__kernels_for(cfg.compute)->name);
                        }
                        fflush(stdout);
                    }
                    free(q); free(k); free(v); free(o); free(g); free(dq); free(dk); free(dv); free(lse);
                }
            }
        }
    }
    return 0;
}
