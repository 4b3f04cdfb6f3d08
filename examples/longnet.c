/* longnet.c - ring-dilated (LongNet) attention over a million tokens on one machine.

   The seed system's flagship run: n = 1,048,576 tokens split over p = 8 ring members, three
   dilated groups (segments 2048, 4096, 8192 with rates 1, 2, 4), one head per group, d = 64,
   f32, the seed's head-group mix. Each member holds only its own chunk of Q, its running
   output and two K/V buffers; K/V blocks that share no segment with a member's queries are
   never multiplied, so the work follows sum_g n * s_g / r_g^2 instead of n^2.

   Then the memory-scaling table at n = 65536 (same segments and rates): ring sizes 1..16,
   the per-member bytes the library planned and measured, and their ratio to ring 1.

   Build:
     cc -std=c99 -O2 -fopenmp -DRINGATTN_USE_CBLAS -I. examples/longnet.c -lopenblas -lm
   Run:
     ./a.out                 the 1M-token run, then the table (about 3.3 GB of inputs/outputs)
     ./a.out --quick         the table only
     ./a.out --heads 6       h heads (split into the 3 groups, the first h mod 3 one larger)
*/
#if !defined(_OPENMP) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 199309L   /* clock_gettime */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"

#define NUM_GROUPS 3
static const int64_t SEGMENTS[NUM_GROUPS] = { 2048, 4096, 8192 };
static const int64_t RATES[NUM_GROUPS]    = { 1, 2, 4 };

enum { BAD_OUTPUT = -100 };   /* run_forward: the call succeeded but produced non-finite values */

static double now_seconds(void)
{
#if defined(_OPENMP)
    return omp_get_wtime();
#elif defined(CLOCK_MONOTONIC)
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#else
    return (double)clock() / CLOCKS_PER_SEC;   /* CPU time: fine without threads */
#endif
}

/* deterministic values in [-1, 1): a 64-bit LCG, upper bits */
static void fill_uniform(float *x, size_t count, uint64_t seed)
{
    size_t i;
    uint64_t s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (i = 0; i < count; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)((double)(s >> 40) / (double)(1ULL << 24) * 2.0 - 1.0);
    }
}

static double mib(double bytes) { return bytes / (1024.0 * 1024.0); }

static ringattn_config dilated_config(int p, ringattn_stats *stats)
{
    ringattn_config cfg = ringattn_default_config();
    cfg.ring_size = p;
    cfg.num_groups = NUM_GROUPS;
    cfg.segment_lengths = SEGMENTS;
    cfg.dilation_rates = RATES;
    cfg.mix = RINGATTN_MIX_HEAD_GROUPS;
    cfg.stats = stats;
    return cfg;
}

/* One dilated forward at (n, h, d, p): allocates, fills, runs, frees. Returns the status
   (RINGATTN_ENOMEM when the inputs themselves cannot be allocated), the stats and the time. */
static int run_forward(int64_t n, int64_t h, int64_t d, int p, ringattn_stats *stats,
                       double *seconds, char *detail, size_t detail_size)
{
    size_t count = (size_t)(n * h * d);
    float *q = (float *)malloc(count * sizeof(float));
    float *k = (float *)malloc(count * sizeof(float));
    float *v = (float *)malloc(count * sizeof(float));
    float *o = (float *)malloc(count * sizeof(float));
    float *lse = (float *)malloc((size_t)(n * h) * sizeof(float));
    int st;
    if (!q || !k || !v || !o || !lse) {
        snprintf(detail, detail_size, "could not allocate the inputs/outputs: 4 x %.1f MiB + %.1f MiB",
                 mib((double)count * sizeof(float)), mib((double)(n * h) * sizeof(float)));
        st = RINGATTN_ENOMEM;
    } else {
        ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F32, 1, n, h, d);
        ringattn_tensor K = ringattn_tensor_bnhd(k, RINGATTN_F32, 1, n, h, d);
        ringattn_tensor V = ringattn_tensor_bnhd(v, RINGATTN_F32, 1, n, h, d);
        ringattn_tensor O = ringattn_tensor_bnhd(o, RINGATTN_F32, 1, n, h, d);
        ringattn_tensor L = ringattn_tensor_lse(lse, RINGATTN_F32, 1, h, n);
        ringattn_config cfg = dilated_config(p, stats);
        double t0;
        cfg.error_detail = detail; cfg.error_detail_size = detail_size;
        detail[0] = '\0';
        fill_uniform(q, count, 1); fill_uniform(k, count, 2); fill_uniform(v, count, 3);
#ifdef _OPENMP
        /* Workaround: a ring of one member runs in a team of one thread, where the OpenMP
           build of OpenBLAS does not see it is inside a parallel region and threads every
           small tile GEMM (20x+ slower on a busy machine). One member uses one thread
           anyway, so cap the threads for that call only. */
        int keep_threads = omp_get_max_threads();
        if (p == 1) omp_set_num_threads(1);
#endif
        t0 = now_seconds();
        st = ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
        *seconds = now_seconds() - t0;
#ifdef _OPENMP
        omp_set_num_threads(keep_threads);
#endif
        if (st == RINGATTN_OK) {   /* a sanity line: outputs are finite */
            size_t i, bad = 0;
            for (i = 0; i < count; i++) bad += !(o[i] == o[i]) || o[i] > 1e30f || o[i] < -1e30f;
            if (bad) { snprintf(detail, detail_size, "%lu non-finite outputs", (unsigned long)bad); st = BAD_OUTPUT; }
        }
    }
    free(q); free(k); free(v); free(o); free(lse);
    return st;
}

static int flagship(int64_t h)
{
    const int64_t n = 1048576, d = 64; const int p = 8;
    ringattn_stats stats; ringattn_plan_info dense_plan, dil_plan; ringattn_shape shape;
    ringattn_config dense = ringattn_default_config();
    ringattn_config cfg = dilated_config(p, NULL);
    double secs = 0, dense_flops, analytic = 0;
    char detail[256];
    int64_t g, st;

    printf("== LongNet ring-dilated forward: n = %lld tokens, h = %lld, d = %lld, p = %d, f32 ==\n",
           (long long)n, (long long)h, (long long)d, p);
    printf("   segments [2048, 4096, 8192], rates [1, 2, 4], head-group mix, b = 1\n");

    shape.batch = 1; shape.seq_q = shape.seq_k = n; shape.heads_q = shape.heads_kv = h;
    shape.dim_qk = shape.dim_v = d;
    dense.ring_size = p;
    if (ringattn_plan(&cfg, &shape, 0, &dil_plan) != RINGATTN_OK ||
        ringattn_plan(&dense, &shape, 0, &dense_plan) != RINGATTN_OK) {
        fprintf(stderr, "longnet: ringattn_plan failed\n");
        return 1;
    }
    printf("   inputs/outputs: 4 tensors x %.1f MiB; ring buffers: %d members x %.1f MiB planned\n",
           mib((double)(n * h * d) * 4.0), p, mib((double)dil_plan.member_bytes));
    fflush(stdout);   /* the run takes a while: show what it is doing */

    st = run_forward(n, h, d, p, &stats, &secs, detail, sizeof detail);
    if (st == RINGATTN_ENOMEM) {
        fprintf(stderr, "longnet: out of memory at n = %lld: %s\n"
                        "         (try --quick for the small table, or fewer heads)\n",
                (long long)n, detail[0] ? detail : ringattn_strerror((int)st));
        return 1;
    }
    if (st != RINGATTN_OK) {
        fprintf(stderr, "longnet: forward failed (%lld): %s: %s\n", (long long)st,
                st == BAD_OUTPUT ? "sanity check" : ringattn_strerror((int)st), detail);
        return 1;
    }

    /* the work dense attention would do, and what the dilated patterns should need:
       per group (heads in g) * n * s_g / r_g^2 query-key pairs, each 2(d + dv) flops */
    dense_flops = 2.0 * (double)n * (double)n * (double)(2 * d) * (double)h;
    for (g = 0; g < NUM_GROUPS; g++) {
        int64_t hg = h / NUM_GROUPS + (g < h % NUM_GROUPS);
        analytic += (double)hg * (double)n * (double)SEGMENTS[g] / (double)(RATES[g] * RATES[g])
                  * 2.0 * (double)(2 * d);
    }

    printf("   wall time            %.2f s  (%d threads)\n", secs, stats.num_threads);
    printf("   blocks               %lld computed, %lld skipped of %d (member, step) blocks\n",
           (long long)stats.blocks_computed, (long long)stats.blocks_skipped, p * p);
    printf("   flops                %.3e  (analytic sum_g h_g n s_g / r_g^2 x 4d: %.3e)\n",
           stats.flops, analytic);
    printf("   throughput           %.1f GFLOP/s\n", stats.flops / secs * 1e-9);
    printf("   per member, planned  %zu bytes (%.1f MiB)\n", stats.planned_bytes_per_member,
           mib((double)stats.planned_bytes_per_member));
    printf("   per member, measured %zu bytes (%.1f MiB); ring table %zu bytes\n",
           stats.peak_bytes_per_member, mib((double)stats.peak_bytes_per_member), stats.shared_bytes);
    printf("-- dense attention at the same n --\n");
    printf("   ring per member      %zu bytes (%.1f MiB), ringattn_plan with num_groups = 0\n"
           "                        (the ring's memory is O(n/p) whatever the pattern; the pattern\n"
           "                        changes the work, and a non-ring dense kernel would need:)\n",
           dense_plan.member_bytes, mib((double)dense_plan.member_bytes));
    printf("   score matrix n^2 x 4 %.3e bytes (%.1f TiB) per head, never materialised here\n",
           (double)n * (double)n * 4.0, (double)n * (double)n * 4.0 / (1024.0 * 1024.0 * 1024.0 * 1024.0));
    printf("   flops                %.3e  (%.0fx the dilated run)\n", dense_flops, dense_flops / stats.flops);
    fflush(stdout);
    return 0;
}

static int scaling_table(int64_t h)
{
    const int64_t n = 65536, d = 64;
    static const int rings[5] = { 1, 2, 4, 8, 16 };
    size_t base = 0;
    int i;
    printf("== memory per member at n = %lld (h = %lld, d = %lld, same segments/rates, f32) ==\n",
           (long long)n, (long long)h, (long long)d);
    printf("   %4s  %14s  %14s  %10s  %8s  %9s\n", "ring", "planned B", "measured B", "MiB", "vs ring1",
           "time s");
    for (i = 0; i < 5; i++) {
        ringattn_stats stats; double secs = 0; char detail[256];
        int st = run_forward(n, h, d, rings[i], &stats, &secs, detail, sizeof detail);
        if (st != RINGATTN_OK) {
            fprintf(stderr, "longnet: ring %d failed (%d): %s\n", rings[i], st, detail);
            return 1;
        }
        if (i == 0) base = stats.peak_bytes_per_member;
        printf("   %4d  %14zu  %14zu  %10.2f  %8.3f  %9.3f\n", rings[i], stats.planned_bytes_per_member,
               stats.peak_bytes_per_member, mib((double)stats.peak_bytes_per_member),
               (double)stats.peak_bytes_per_member / (double)base, secs);
        fflush(stdout);
    }
    return 0;
}

static void usage(const char *argv0)
{
    printf("usage: %s [--quick] [--heads H]\n"
           "  --quick     skip the 1,048,576-token run, print only the memory-scaling table\n"
           "  --heads H   number of heads (default 3: one per dilated group)\n", argv0);
}

int main(int argc, char **argv)
{
    int quick = 0, i, rc = 0;
    int64_t h = 3;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) quick = 1;
        else if (strcmp(argv[i], "--heads") == 0 && i + 1 < argc) h = atoll(argv[++i]);
        else if (strncmp(argv[i], "--heads=", 8) == 0) h = atoll(argv[i] + 8);
        else if (strcmp(argv[i], "--help") == 0) { usage(argv[0]); return 0; }
        else { usage(argv[0]); return 2; }
    }
    if (h < 1 || h > 4096) { fprintf(stderr, "longnet: --heads must be in 1..4096\n"); return 2; }
    if (!quick) rc = flagship(h);
    if (rc == 0) rc = scaling_table(h);
    return rc;
}
