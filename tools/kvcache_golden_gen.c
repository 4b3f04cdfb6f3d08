/* kvcache_golden_gen.c - the inputs and the oracle's goldens for kvcache_cli.sh (ringattn-golden
   compute-kvcache end to end), without NumPy.

   kvcache_golden_gen DIR writes
     DIR/in/       q.npy [2, 3, 4, 8], k_cache.npy / v_cache.npy paged [7, 4, 2, 8], k_new.npy /
                   v_new.npy [2, 1, 2, 8] (f64); cache_seqlens.npy (int32 '<i4': 9 and 0, so the
                   second sequence's queries partly see nothing), block_table.npy (int32 (2, 4),
                   pages permuted, the unused entries -1), sinks.npy (4), alibi.npy (2, 4);
                   and for the refusals: seqlens_i8.npy ('<i8', the same lengths, read too),
                   seqlens_f64.npy (a float file), table_bad.npy (a block past the cache)
     DIR/plain/    out.npy, lse.npy and split_SSS_out.npy / split_SSS_lse.npy of the naive f64
                   oracle (ref_kvcache) with bottom-right causal and 3 splits
     DIR/opts/     the same with sinks, per-batch ALiBi, softcap 4, window 5,-1, split_size 4
   Every value is a deterministic function of its position (no RNG, no libm differences that
   matter: the oracle's exp / log / tanh are the goldens' only rounding). */
#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"
#include "ringattn_ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B 2
#define NQ 3
#define H 4
#define HK 2
#define D 8
#define PAGE 4
#define NBLK 7
#define MAXB 4
#define NNEW 1

static int save(const char *dir, const char *name, double *x, int64_t s0, int64_t s1, int64_t s2, int64_t s3, int rank)
{
    char path[4096], err[256] = "";
    ringattn_config c = ringattn_default_config();
    ringattn_tensor t = ringattn_tensor_bnhd(x, RINGATTN_F64, s0, s1, s2, s3);
    c.error_detail = err; c.error_detail_size = sizeof err;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (ringattn_npy_save(path, &t, rank, &c) != RINGATTN_OK) { fprintf(stderr, "%s: %s\n", path, err); return -1; }
    return 0;
}

/* an integer .npy, version 1.0, C order: descr '<i4' or '<i8', little-endian bytes by hand */
static int save_int(const char *dir, const char *name, const int32_t *x, int64_t n0, int64_t n1, int rank, int bytes)
{
    char path[4096], hdr[128];
    unsigned char pre[10], e[8];
    int64_t i;
    int len, k;
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (rank == 1) len = snprintf(hdr, sizeof hdr, "{'descr': '<i%d', 'fortran_order': False, 'shape': (%lld,), }", bytes, (long long)n0);
    else len = snprintf(hdr, sizeof hdr, "{'descr': '<i%d', 'fortran_order': False, 'shape': (%lld, %lld), }", bytes,
                        (long long)n0, (long long)n1);
    while ((10 + len + 1) % 64 != 0) hdr[len++] = ' ';
    hdr[len++] = '\n';
    memcpy(pre, "\x93NUMPY\x01\x00", 8);
    pre[8] = (unsigned char)(len & 255); pre[9] = (unsigned char)(len >> 8);
    if (!(f = fopen(path, "wb"))) { perror(path); return -1; }
    fwrite(pre, 1, 10, f);
    fwrite(hdr, 1, (size_t)len, f);
    for (i = 0; i < n0 * n1; i++) {
        int64_t v = x[i];
        for (k = 0; k < bytes; k++) e[k] = (unsigned char)(((uint64_t)v >> (8 * k)) & 255);
        fwrite(e, 1, (size_t)bytes, f);
    }
    return fclose(f) ? -1 : 0;
}

static double val(int64_t i, double a, double b) { return sin(a * (double)i + b) * 1.5; }

static int golden(const char *dir, ref_kv_problem *p, const double *q)
{
    int64_t S = ref_kvcache_num_splits(p), s, nqv = B * NQ * H * D, nl = B * H * NQ;
    double *out = (double *)malloc(sizeof(double) * (size_t)nqv), *lse = (double *)malloc(sizeof(double) * (size_t)nl);
    double *so = (double *)malloc(sizeof(double) * (size_t)(S * nqv)), *sl = (double *)malloc(sizeof(double) * (size_t)(S * nl));
    char name[64];
    int rc = 0;
    if (ref_kvcache(p, q, out, lse, so, sl) != 0) { fprintf(stderr, "the oracle refused the case\n"); return -1; }
    rc |= save(dir, "out.npy", out, B, NQ, H, D, 4);
    rc |= save(dir, "lse.npy", lse, B, H, NQ, 1, 3);
    for (s = 0; s < S; s++) {
        snprintf(name, sizeof name, "split_%03lld_out.npy", (long long)s);
        rc |= save(dir, name, so + s * nqv, B, NQ, H, D, 4);
        snprintf(name, sizeof name, "split_%03lld_lse.npy", (long long)s);
        rc |= save(dir, name, sl + s * nl, B, H, NQ, 1, 3);
    }
    free(out); free(lse); free(so); free(sl);
    return rc;
}

int main(int argc, char **argv)
{
    static double q[B * NQ * H * D], kc[NBLK * PAGE * HK * D], vc[NBLK * PAGE * HK * D];
    static double kn[B * NNEW * HK * D], vn[B * NNEW * HK * D], sinks[H], alibi[B * H];
    /* sequence 0: 9 cached + 1 new = 10 keys, pages 5, 2, 6 (of 4 slots); sequence 1: 0 + 1,
       page 3; the unused entries -1 */
    static const int32_t lens[B] = { 9, 0 }, table[B * MAXB] = { 5, 2, 6, -1, 3, -1, -1, -1 };
    static const int32_t table_bad[B * MAXB] = { 5, 7, 6, -1, 3, -1, -1, -1 };
    char in[4096], sub[4096];
    ref_kv_problem p;
    int64_t i;
    int rc = 0;
    if (argc != 2) { fprintf(stderr, "usage: kvcache_golden_gen DIR (DIR/in, DIR/plain, DIR/opts must exist)\n"); return 2; }
    for (i = 0; i < B * NQ * H * D; i++) q[i] = val(i, 0.37, 0.1);
    for (i = 0; i < NBLK * PAGE * HK * D; i++) { kc[i] = val(i, 0.53, 0.7); vc[i] = val(i, 0.29, 1.3); }
    for (i = 0; i < B * NNEW * HK * D; i++) { kn[i] = val(i, 0.61, 2.1); vn[i] = val(i, 0.43, 0.4); }
    for (i = 0; i < H; i++) sinks[i] = 0.5 - 0.3 * (double)i;
    for (i = 0; i < B * H; i++) alibi[i] = pow(2.0, -2.0 * (double)(i % H + 1)) * (1.0 + 0.5 * (double)(i / H));
    snprintf(in, sizeof in, "%s/in", argv[1]);
    rc |= save(in, "q.npy", q, B, NQ, H, D, 4);
    rc |= save(in, "k_cache.npy", kc, NBLK, PAGE, HK, D, 4);
    rc |= save(in, "v_cache.npy", vc, NBLK, PAGE, HK, D, 4);
    rc |= save(in, "k_new.npy", kn, B, NNEW, HK, D, 4);
    rc |= save(in, "v_new.npy", vn, B, NNEW, HK, D, 4);
    rc |= save(in, "sinks.npy", sinks, H, 1, 1, 1, 1);
    rc |= save(in, "alibi.npy", alibi, B, H, 1, 1, 2);
    rc |= save_int(in, "cache_seqlens.npy", lens, B, 1, 1, 4);
    rc |= save_int(in, "block_table.npy", table, B, MAXB, 2, 4);
    rc |= save_int(in, "seqlens_i8.npy", lens, B, 1, 1, 8);
    rc |= save_int(in, "table_bad.npy", table_bad, B, MAXB, 2, 4);
    {
        double l[B] = { 9, 0 };
        rc |= save(in, "seqlens_f64.npy", l, B, 1, 1, 1, 1);
    }

    memset(&p, 0, sizeof p);
    p.b = B; p.nq = NQ; p.h = H; p.hk = HK; p.d = D; p.dv = D;
    p.scale = 1.0 / sqrt((double)D);
    p.causal = 1; p.window_left = -1; p.window_right = -1;
    p.k_cache = kc; p.v_cache = vc;
    p.block_table = table; p.max_blocks = MAXB; p.num_blocks = NBLK; p.page_size = PAGE;
    p.cache_seqlens = lens; p.k_new = kn; p.v_new = vn; p.n_new = NNEW;
    p.num_splits = 3;
    snprintf(sub, sizeof sub, "%s/plain", argv[1]);
    rc |= golden(sub, &p, q);

    p.sinks = sinks; p.alibi_slopes = alibi; p.alibi_size = B * H;
    p.softcap = 4.0; p.window_left = 5;
    p.num_splits = 0; p.split_size = 4;
    snprintf(sub, sizeof sub, "%s/opts", argv[1]);
    rc |= golden(sub, &p, q);
    return rc ? 1 : 0;
}
