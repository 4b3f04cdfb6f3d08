/* options.c - what each score option costs, against the same call without it, in one run.

   Each row times ringattn_forward (and ringattn_backward) with an option and the baseline the
   option is measured against, interleaved (option, baseline, option, ...) so that both see the
   same machine state; median of --reps each. f32 compute, b = 1, 2 threads by default.

     gptoss    a gpt-oss attention block: GQA 8:1 (h = 8, hk = 1), causal, window 128, sinks
               vs the same block without sinks
     alibi     causal, ALiBi slopes per head                 vs causal
     bias      causal, an f32 bias [1][h][n][n]              vs causal
     docs      causal, document ids (n / 1024 documents)     vs the same documents as varlen
               (cu_seqlens): the same visible pairs; the document mask also against dense
               causal (blocks computed / skipped from ringattn_stats)
     mask      causal, a dense bool mask equal to a window of 256 vs the window itself

   Output: CSV on stdout (case,pass,n,d,p,threads,option_s,baseline_s,ratio,blocks_computed,
   blocks_skipped), ratio = option time / baseline time.

     --n 4096  --d 64  --h 8  --p 1,4  --threads 2  --reps 5  --pass fwd,bwd
     --cases gptoss,alibi,bias,docs,mask
   Build: meson (target bench-options) or cc -O2 -fopenmp -DRINGATTN_USE_CBLAS -I. bench/options.c -lopenblas -lm */
#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench_util.h"
#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct {
    ringattn_tensor Q, K, V, O, L, G, DQ, DK, DV;
} problem;

/* one timed call; returns seconds (or -1 on error, with the sentence on stderr) */
static double run(ringattn_config *cfg, problem *x, int bwd)
{
    char err[256] = "";
    double t0;
    int st;
    cfg->error_detail = err; cfg->error_detail_size = sizeof err;
    if (!bwd) {
        t0 = now();
        st = ringattn_forward(cfg, &x->Q, &x->K, &x->V, &x->O, &x->L);
    } else {
        t0 = now();
        st = ringattn_backward(cfg, &x->Q, &x->K, &x->V, &x->O, &x->L, &x->G, &x->DQ, &x->DK, &x->DV);
    }
    if (st) { fprintf(stderr, "ringattn: %s (%s)\n", ringattn_strerror(st), err); return -1; }
    return now() - t0;
}

int main(int argc, char **argv)
{
    long ns[8] = { 4096 }, ps[8] = { 1, 4 }, ths[4] = { 2 }, d = 64, h = 8, lv[8];
    int nn = 1, np = 2, nth = 1, reps = 5, do_fwd = 1, do_bwd = 1, i, c;
    const char *cases = "gptoss,alibi,bias,docs,mask";
    const char *names[5] = { "gptoss", "alibi", "bias", "docs", "mask" };
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = (i + 1 < argc) ? argv[i + 1] : "";
        if (!strcmp(a, "--n")) { nn = parse_list(v, ns, 8); i++; }
        else if (!strcmp(a, "--d")) { if (parse_list(v, lv, 1) == 1) d = lv[0]; i++; }
        else if (!strcmp(a, "--h")) { h = atol(v); i++; }
        else if (!strcmp(a, "--p")) { np = parse_list(v, ps, 8); i++; }
        else if (!strcmp(a, "--threads")) { nth = parse_list(v, ths, 4); i++; }
        else if (!strcmp(a, "--reps")) { reps = atoi(v); i++; }
        else if (!strcmp(a, "--pass")) { do_fwd = strstr(v, "fwd") != NULL; do_bwd = strstr(v, "bwd") != NULL; i++; }
        else if (!strcmp(a, "--cases")) { cases = v; i++; }
        else { fprintf(stderr, "unknown option %s (see the comment at the top of bench/options.c)\n", a); return 2; }
    }
    if (reps < 1 || reps > 64) { fprintf(stderr, "--reps must be 1..64\n"); return 2; }
    printf("case,pass,n,d,p,threads,option_s,baseline_s,ratio,blocks_computed,blocks_skipped\n");
    for (c = 0; c < 5; c++) {
        int in, ip, it, pass;
        if (!strstr(cases, names[c])) continue;
        for (in = 0; in < nn; in++) {
            long n = ns[in], hk = (c == 0) ? 1 : h, x;
            size_t qn = (size_t)(n * h * d), kn = (size_t)(n * hk * d);
            float *q = (float *)malloc(qn * 4), *k = (float *)malloc(kn * 4), *v = (float *)malloc(kn * 4);
            float *o = (float *)malloc(qn * 4), *g = (float *)malloc(qn * 4), *dq = (float *)malloc(qn * 4);
            float *dk = (float *)malloc(kn * 4), *dv = (float *)malloc(kn * 4), *lse = (float *)malloc((size_t)(h * n) * 4);
            float *bias = NULL; unsigned char *mask = NULL;
            int64_t *docs = (int64_t *)malloc((size_t)n * sizeof(int64_t)), cu[64];
            double sinks[64], slopes[64];
            ringattn_tensor Bt, Mt;
            problem X;
            int ndocs = (int)(n / 1024 > 1 ? n / 1024 : 1);
            if (!q || !k || !v || !o || !g || !dq || !dk || !dv || !lse || !docs || h > 64 || ndocs > 63) {
                fprintf(stderr, "out of memory (or h > 64)\n"); return 1;
            }
            for (x = 0; x < (long)qn; x++) { double a = 0.5 * ((double)(((size_t)x * 2654435761u) % 1000) / 500.0 - 1.0); q[x] = (float)a; g[x] = (float)a; }
            for (x = 0; x < (long)kn; x++) { double a = 0.5 * ((double)(((size_t)x * 2246822519u) % 1000) / 500.0 - 1.0); k[x] = (float)(-0.7 * a); v[x] = (float)(0.3 * a); }
            for (x = 0; x < h; x++) { sinks[x] = 0.1 * (double)x; slopes[x] = 1.0 / (double)(1 << (x % 8 + 1)); }
            for (x = 0; x < n; x++) docs[x] = x * ndocs / n;
            for (x = 0; x <= ndocs; x++) cu[x] = x * n / ndocs;
            if (c == 2) {
                bias = (float *)malloc((size_t)(h * n * n) * 4);
                if (!bias) { fprintf(stderr, "out of memory for the bias\n"); return 1; }
                for (x = 0; x < h * n * n; x++) bias[x] = (float)(0.01 * (double)(x % 97));
                Bt = ringattn_tensor_bnhd(bias, RINGATTN_F32, 1, h, n, n);
            }
            if (c == 4) {
                long r, j;
                mask = (unsigned char *)malloc((size_t)(n * n));
                if (!mask) { fprintf(stderr, "out of memory for the mask\n"); return 1; }
                for (r = 0; r < n; r++) for (j = 0; j < n; j++) mask[r * n + j] = (unsigned char)(j >= r - 255);
                Mt = ringattn_tensor_bnhd(mask, RINGATTN_BOOL, 1, 1, n, n);
            }
            X.Q = ringattn_tensor_bnhd(q, RINGATTN_F32, 1, n, h, d); X.K = ringattn_tensor_bnhd(k, RINGATTN_F32, 1, n, hk, d);
            X.V = ringattn_tensor_bnhd(v, RINGATTN_F32, 1, n, hk, d); X.O = ringattn_tensor_bnhd(o, RINGATTN_F32, 1, n, h, d);
            X.G = ringattn_tensor_bnhd(g, RINGATTN_F32, 1, n, h, d); X.DQ = ringattn_tensor_bnhd(dq, RINGATTN_F32, 1, n, h, d);
            X.DK = ringattn_tensor_bnhd(dk, RINGATTN_F32, 1, n, hk, d); X.DV = ringattn_tensor_bnhd(dv, RINGATTN_F32, 1, n, hk, d);
            X.L = ringattn_tensor_lse(lse, RINGATTN_F32, 1, h, n);
            for (it = 0; it < nth; it++)
            for (ip = 0; ip < np; ip++)
            for (pass = 0; pass < 2; pass++) {
                ringattn_config opt = ringattn_default_config(), base;
                ringattn_stats st;
                double to[64], tb[64];
                int r;
                if ((pass == 0 && !do_fwd) || (pass == 1 && !do_bwd)) continue;
                opt.compute = RINGATTN_F32; opt.causal = RINGATTN_CAUSAL_BOTTOM_RIGHT;
                opt.ring_size = (int)ps[ip]; opt.num_threads = (int)ths[it];
#ifdef _OPENMP
                omp_set_num_threads((int)ths[it]);
#endif
                if (c == 0) { opt.window_left = 127; opt.window_right = 0; }
                base = opt;
                if (c == 0) opt.sinks = sinks;
                if (c == 1) { opt.alibi_slopes = slopes; opt.alibi_size = (int)h; }
                if (c == 2) opt.bias = &Bt;
                if (c == 3) {
                    opt.document_ids_q = opt.document_ids_k = docs;
                    base.cu_seqlens_q = base.cu_seqlens_k = cu; base.num_seqs = ndocs;
                }
                if (c == 4) { opt.mask = &Mt; base.window_left = 255; }
                if (run(&opt, &X, 0) < 0) return 1;            /* warm-up, and the forward's out / lse */
                for (r = 0; r < reps; r++) {
                    if ((to[r] = run(&opt, &X, pass)) < 0 || (tb[r] = run(&base, &X, pass)) < 0) return 1;
                }
                opt.stats = &st;
                if (run(&opt, &X, pass) < 0) return 1;
                printf("%s,%s,%ld,%ld,%ld,%ld,%.6f,%.6f,%.3f,%lld,%lld\n", names[c], pass ? "bwd" : "fwd", n, d, ps[ip],
                       ths[it], median(to, reps), median(tb, reps), median(to, reps) / median(tb, reps),
                       (long long)st.blocks_computed, (long long)st.blocks_skipped);
                fflush(stdout);
            }
            free(q); free(k); free(v); free(o); free(g); free(dq); free(dk); free(dv); free(lse); free(docs);
            free(bias); free(mask);
        }
    }
    return 0;
}
