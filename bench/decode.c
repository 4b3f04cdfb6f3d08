/* decode.c - decoding against a paged KV cache: the memory bandwidth ringattn_forward_kvcache
   reaches, against the machine's copy bandwidth measured in the same run.

   Decoding reads the whole cache once per call and does little arithmetic per byte, so it is
   memory-bound: the bytes of K and V read per second, set against the bytes a plain copy
   moves per second (memcpy, the same threads), is how close it comes to its limit.

     one row per (nq, compute dtype, splits): b sequences of --len cached keys each, pages of
     --page keys dealt to the sequences through a shuffled block table, h q heads over hk k/v
     heads of dim d, causal (bottom-right), f32 storage; median of --reps calls
     copy_gbs: memcpy of a buffer as large as the cache, 2 halves on 2 threads (the same
     --threads), median of --reps; gbs = cache bytes / call time; ratio = gbs / copy_gbs

   Output: CSV on stdout (b,nq,len,page,h,hk,d,compute,splits,threads,seconds,gbs,copy_gbs,ratio).

     --b 8  --nq 1,4  --len 32768  --page 16  --h 32  --hk 8  --d 128  --splits 1,16
     --compute f32,f64  --threads 2  --reps 5
   Build: meson (target bench-decode) or cc -O2 -fopenmp -I. bench/decode.c -lm */
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

/* bytes copied per second by memcpy over n bytes, split into nt parts on nt threads */
static double copy_gbs(char *dst, const char *src, size_t n, int nt, int reps)
{
    double t[32];
    int r;
    for (r = 0; r < reps; r++) {
        double t0 = now();
        int i;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
        for (i = 0; i < nt; i++) {
            size_t a = n / (size_t)nt * (size_t)i, z = (i == nt - 1) ? n : n / (size_t)nt * (size_t)(i + 1);
            memcpy(dst + a, src + a, z - a);
        }
        t[r] = now() - t0;
    }
    return (double)n / median(t, reps) / 1e9;
}

int main(int argc, char **argv)
{
    long b = 8, len = 32768, page = 16, h = 32, hk = 8, d = 128, nqs[8] = { 1, 4 }, splits[8] = { 1, 16 };
    int nnq = 2, nsp = 2, nt = 2, reps = 5, do32 = 1, do64 = 1, i, a, c, r;
    for (i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--b")) b = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--nq")) nnq = parse_list(argv[i + 1], nqs, 8);
        else if (!strcmp(argv[i], "--len")) len = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--page")) page = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--h")) h = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--hk")) hk = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--d")) d = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--splits")) nsp = parse_list(argv[i + 1], splits, 8);
        else if (!strcmp(argv[i], "--compute")) { do32 = strstr(argv[i + 1], "f32") != NULL; do64 = strstr(argv[i + 1], "f64") != NULL; }
        else if (!strcmp(argv[i], "--threads")) nt = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (reps < 1 || reps > 32 || nt < 1 || b < 1 || len < 1 || page < 1 || hk < 1 || h % hk) {
        fprintf(stderr, "bad options\n"); return 2;
    }
    {
        long pages = (len + page - 1) / page, nblocks = b * pages, nqmax = 1;
        size_t cache = (size_t)nblocks * (size_t)page * (size_t)hk * (size_t)d;   /* elements of K (and of V) */
        float *kc = (float *)malloc(cache * sizeof(float)), *vc = (float *)malloc(cache * sizeof(float));
        int32_t *table = (int32_t *)malloc(sizeof(int32_t) * (size_t)nblocks), *seqlens = (int32_t *)malloc(sizeof(int32_t) * (size_t)b);
        char *cpy;
        double gcopy;
        unsigned s = 12345u;
        for (a = 0; a < nnq; a++) if (nqs[a] > nqmax) nqmax = nqs[a];
        {
            float *q = (float *)malloc(sizeof(float) * (size_t)(b * nqmax * h * d)), *o = (float *)malloc(sizeof(float) * (size_t)(b * nqmax * h * d));
            float *lse = (float *)malloc(sizeof(float) * (size_t)(b * h * nqmax));
            size_t e;
            if (!kc || !vc || !table || !seqlens || !q || !o || !lse) { fprintf(stderr, "out of memory\n"); return 1; }
            for (e = 0; e < cache; e++) { s = s * 1103515245u + 12345u; kc[e] = (float)((s >> 9) & 0xffff) / 65536.0f - 0.5f; vc[e] = kc[e] * 0.5f; }
            for (e = 0; e < (size_t)(b * nqmax * h * d); e++) { s = s * 1103515245u + 12345u; q[e] = (float)((s >> 9) & 0xffff) / 65536.0f - 0.5f; }
            for (e = 0; e < (size_t)nblocks; e++) table[e] = (int32_t)e;
            for (e = (size_t)nblocks - 1; e > 0; e--) {   /* the pages of every sequence scattered */
                size_t j; int32_t t;
                s = s * 1103515245u + 12345u; j = (size_t)(s >> 4) % (e + 1);
                t = table[e]; table[e] = table[j]; table[j] = t;
            }
            for (e = 0; e < (size_t)b; e++) seqlens[e] = (int32_t)len;
            cpy = (char *)malloc(2 * cache * sizeof(float));
            if (!cpy) { fprintf(stderr, "out of memory\n"); return 1; }
            memcpy(cpy, kc, cache * sizeof(float)); memcpy(cpy + cache * sizeof(float), vc, cache * sizeof(float));
            {   /* copy bandwidth: the cache's bytes (K and V) into a second buffer */
                char *dst = (char *)malloc(2 * cache * sizeof(float));
                if (!dst) { fprintf(stderr, "out of memory\n"); return 1; }
                memset(dst, 0, 2 * cache * sizeof(float));
                gcopy = copy_gbs(dst, cpy, 2 * cache * sizeof(float), nt, reps);
                free(dst);
            }
            free(cpy);
            printf("b,nq,len,page,h,hk,d,compute,splits,threads,seconds,gbs,copy_gbs,ratio\n");
            for (c = 0; c < 2; c++) {
                if ((c == 0 && !do32) || (c == 1 && !do64)) continue;
                for (a = 0; a < nnq; a++)
                    for (i = 0; i < nsp; i++) {
                        ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F32, b, nqs[a], h, d);
                        ringattn_tensor O = ringattn_tensor_bnhd(o, RINGATTN_F32, b, nqs[a], h, d);
                        ringattn_tensor L = ringattn_tensor_lse(lse, RINGATTN_F32, b, h, nqs[a]);
                        ringattn_tensor KC = ringattn_tensor_bnhd(kc, RINGATTN_F32, nblocks, page, hk, d);
                        ringattn_tensor VC = ringattn_tensor_bnhd(vc, RINGATTN_F32, nblocks, page, hk, d);
                        ringattn_config cfg = ringattn_default_config();
                        ringattn_kvcache kv;
                        char err[256] = "";
                        double t[32], sec, bytes;
                        int st = 0;
                        memset(&kv, 0, sizeof kv);
                        kv.k_cache = &KC; kv.v_cache = &VC; kv.block_table = table; kv.max_blocks = pages;
                        kv.cache_seqlens = seqlens; kv.num_splits = splits[i];
                        cfg.compute = c ? RINGATTN_F64 : RINGATTN_F32; cfg.causal = RINGATTN_CAUSAL_BOTTOM_RIGHT;
                        cfg.num_threads = nt; cfg.error_detail = err; cfg.error_detail_size = sizeof err;
                        for (r = 0; r < reps && st == 0; r++) {
                            double t0 = now();
                            st = ringattn_forward_kvcache(&cfg, &kv, &Q, &O, &L);
                            t[r] = now() - t0;
                        }
                        if (st) { fprintf(stderr, "ringattn: %s (%s)\n", ringattn_strerror(st), err); return 1; }
                        sec = median(t, reps);
                        bytes = (double)b * (double)len * (double)hk * (double)(2 * d) * sizeof(float);
                        printf("%ld,%ld,%ld,%ld,%ld,%ld,%ld,%s,%ld,%d,%.6f,%.3f,%.3f,%.3f\n", b, nqs[a], len, page, h, hk, d,
                               c ? "f64" : "f32", splits[i], nt, sec, bytes / sec / 1e9, gcopy, bytes / sec / 1e9 / gcopy);
                        fflush(stdout);
                    }
            }
            free(q); free(o); free(lse);
        }
        free(kc); free(vc); free(table); free(seqlens);
    }
    return 0;
}
