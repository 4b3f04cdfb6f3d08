/* mpi.c - the MPI ring (ringattn_mpi.h): time per step, communication hidden behind compute,
   and bytes per rank against the planner.

     mpiexec -n P bench-mpi [--n 4096] [--b 1] [--h 8] [--d 64] [--reps 5] [--causal]
                            [--f64] [--pass fwd|bwd|both]
     bench-mpi --plan [--n 1000000000] [--p 4096] [--b 1] [--h 8] [--d 64]

   Run mode, per pass, median over reps (>= 5) of each rank's figures, one CSV row per rank:
     step_ms      ring wall time / p (the p steps, without setup and the final write)
     compute_ms   this rank's OpenMP compute region / p, less its MPI tests inside it
     poll_ms      the master thread's MPI tests while computing and between dK|dV slices / p
                  (on shared memory the receiver copies the data inside these calls)
     wait_ms      this rank's waits after compute / p (its transfers, and its neighbours'
                  lateness); dkv_ms: the backward dK|dV hand-off's part of it
     comm_ms      the same messages alone / p: K|V hand-offs (p - 1) and, in backward, the p
                  dK|dV hand-offs, the same sizes, ring neighbours, no compute
     exposed_ms   step_ms - the slowest rank's compute_ms (a ring step cannot end before its
                  slowest member computed; waiting for a slower neighbour is not
                  communication): the communication time the ring did not hide
     hidden       1 - exposed_ms / comm_ms, clamped to [0, 1] (exposed < 0 is noise): the
                  fraction of the transfer time that overlapped compute. On loopback comm_ms
                  is small and noisy, and oversubscribed ranks (more ranks than cores) time-
                  slice, which inflates every figure. The backward dK|dV hand-off cannot
                  overlap (a block's dK|dV is complete only after its step and is needed at
                  the start of the next), so backward's hidden is at most about one half.
     peak_bytes   every byte the library allocated on the rank at its peak, counted at
                  RINGATTN_MALLOC / RINGATTN_FREE (member buffers, thread tiles, the small
                  ring tables); member_bytes = the rank's member buffers (stats);
     plan_member  ringattn_plan's member_bytes; plan_rank = plan_member + threads * tile_bytes.
   --plan: ringattn_plan() alone for n tokens over p ranks (f32 compute, dense, b, h = h_kv, d):
   the per-rank bytes of forward and backward, computed, nothing run, no MPI needed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* every allocation of the library, counted per rank (size kept in a 16-byte prefix) */
typedef struct { size_t cur, peak; } bench_count;
static void *bench_malloc(size_t sz, void *user)
{
    bench_count *c = (bench_count *)user;
    size_t *p = (size_t *)malloc(sz + 16);
    if (!p) return NULL;
    p[0] = sz;
    if (c) { c->cur += sz; if (c->cur > c->peak) c->peak = c->cur; }
    return (char *)p + 16;
}
static void bench_free(void *q, void *user)
{
    bench_count *c = (bench_count *)user;
    size_t *p = (size_t *)((char *)q - 16);
    if (c) c->cur -= p[0];
    free(p);
}
#define RINGATTN_MALLOC(sz, user) bench_malloc((sz), (user))
#define RINGATTN_FREE(p, user) bench_free((p), (user))
#define RINGATTN_IMPLEMENTATION
#define RINGATTN_MPI_IMPLEMENTATION
#include "ringattn_mpi.h"

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *x, int n) { qsort(x, (size_t)n, sizeof *x, cmp_d); return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]); }

static int plan_mode(long long n, int p, long long b, long long h, long long d)
{
    ringattn_config cfg = ringattn_default_config();
    ringattn_shape s;
    int pass;
    char err[256] = "";
    cfg.ring_size = p; cfg.num_threads = 1; cfg.error_detail = err; cfg.error_detail_size = sizeof err;
    s.batch = b; s.seq_q = s.seq_k = n; s.heads_q = s.heads_kv = h; s.dim_qk = s.dim_v = d;
    printf("ringattn_plan: n = %lld tokens, p = %d ranks, b = %lld, h = h_kv = %lld, d = %lld, f32 compute, "
           "dense (the buffers do not depend on the mask), 1 thread per rank\n", n, p, b, h, d);
    printf("pass,chunk_rows,q_bytes,acc_bytes,row_bytes,kv_bytes,dkv_bytes,member_bytes,tile_bytes,rank_bytes,rank_GiB\n");
    for (pass = 0; pass < 2; pass++) {
        ringattn_plan_info pl;
        int st = ringattn_plan(&cfg, &s, pass, &pl);
        if (st) { fprintf(stderr, "ringattn_plan: %s (%s)\n", ringattn_strerror(st), err); return 1; }
        printf("%s,%lld,%zu,%zu,%zu,%zu,%zu,%zu,%zu,%zu,%.3f\n", pass ? "backward" : "forward",
               (long long)pl.chunk_q, pl.q_bytes, pl.acc_bytes, pl.row_bytes, pl.kv_bytes, pl.dkv_bytes,
               pl.member_bytes, pl.tile_bytes, pl.member_bytes + pl.tile_bytes,
               (double)(pl.member_bytes + pl.tile_bytes) / (1024.0 * 1024.0 * 1024.0));
    }
    return 0;
}

/* the ring's messages without the ring: p - 1 K|V hand-offs (+ p dK|dV in backward) */
static double comm_alone(MPI_Comm comm, void *a, void *b, size_t bytes, int p, int pass)
{
    int rank, t, j, units = (int)(bytes / 4);
    double t0;
    MPI_Datatype u;
    MPI_Comm_rank(comm, &rank);
    MPI_Type_contiguous(4, MPI_BYTE, &u); MPI_Type_commit(&u);
    MPI_Barrier(comm);
    t0 = MPI_Wtime();
    for (j = 0; j < (pass ? 2 : 1); j++)
        for (t = 0; t < (j ? p : p - 1); t++) {
            MPI_Request rq[2];
            MPI_Irecv(b, units, u, (rank + p - 1) % p, 1, comm, &rq[0]);
            MPI_Isend(a, units, u, (rank + 1) % p, 1, comm, &rq[1]);
            MPI_Waitall(2, rq, MPI_STATUSES_IGNORE);
        }
    t0 = MPI_Wtime() - t0;
    MPI_Type_free(&u);
    return t0;
}

int main(int argc, char **argv)
{
    long long n = 4096, b = 1, h = 8, d = 64, plan_n = 1000000000LL;
    int reps = 5, causal = 0, f64 = 0, passes = 3, plan = 0, plan_p = 4096, i, provided, rank, size, pass, r;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--plan")) plan = 1;
        else if (!strcmp(a, "--causal")) causal = 1;
        else if (!strcmp(a, "--f64")) f64 = 1;
        else if (v && !strcmp(a, "--n")) { n = plan_n = atoll(v); i++; }
        else if (v && !strcmp(a, "--p")) { plan_p = atoi(v); i++; }
        else if (v && !strcmp(a, "--b")) { b = atoll(v); i++; }
        else if (v && !strcmp(a, "--h")) { h = atoll(v); i++; }
        else if (v && !strcmp(a, "--d")) { d = atoll(v); i++; }
        else if (v && !strcmp(a, "--reps")) { reps = atoi(v); i++; }
        else if (v && !strcmp(a, "--pass")) { passes = !strcmp(v, "fwd") ? 1 : !strcmp(v, "bwd") ? 2 : 3; i++; }
        else { fprintf(stderr, "unknown option %s (see the top of bench/mpi.c)\n", a); return 2; }
    }
    if (plan) return plan_mode(plan_n, plan_p, b, h, d);
    if (reps < 1) reps = 1;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (rank == 0) {
        printf("# bench-mpi: p = %d ranks, n = %lld, b = %lld, h = %lld, d = %lld, %s, %s, %d reps (median), "
               "thread level %d\n", size, n, b, h, d, f64 ? "f64" : "f32", causal ? "causal" : "dense", reps, provided);
        printf("pass,p,rank,threads,step_ms,compute_ms,poll_ms,wait_ms,dkv_ms,comm_ms,exposed_ms,hidden,peak_bytes,"
               "member_bytes,plan_member,plan_rank\n");
    }
    {
        ringattn_dtype dt = f64 ? RINGATTN_F64 : RINGATTN_F32;
        size_t es = f64 ? 8 : 4;
        int64_t rows = ringattn_mpi_positions(RINGATTN_CONTIGUOUS, n, size, rank, NULL), x;
        size_t cnt = (size_t)(b * rows * h * d);
        char *q = (char *)malloc(cnt * es), *k = (char *)malloc(cnt * es), *v = (char *)malloc(cnt * es);
        char *o = (char *)calloc(cnt, es), *g = (char *)malloc(cnt * es), *dq = (char *)malloc(cnt * es);
        char *dk = (char *)malloc(cnt * es), *dv = (char *)malloc(cnt * es), *l = (char *)calloc((size_t)(b * h * rows), es);
        ringattn_tensor Q, K, V, O, G, DQ, DK, DV, L;
        ringattn_config cfg = ringattn_default_config();
        ringattn_mpi_options opt = ringattn_mpi_default_options();
        ringattn_mpi_stats ms;
        bench_count count;
        char err[256] = "";
        if (!q || !k || !v || !o || !g || !dq || !dk || !dv || !l) { fprintf(stderr, "out of memory\n"); MPI_Abort(MPI_COMM_WORLD, 1); }
        for (x = 0; x < (int64_t)cnt; x++) {   /* any data: the cost does not depend on it */
            double a = (double)((x * 7 + rank * 3) % 19) * 0.02 - 0.2, c = (double)((x * 5 + 1) % 23) * 0.01;
            if (f64) { ((double *)q)[x] = a; ((double *)k)[x] = c; ((double *)v)[x] = a + c; ((double *)g)[x] = c; }
            else { ((float *)q)[x] = (float)a; ((float *)k)[x] = (float)c; ((float *)v)[x] = (float)(a + c); ((float *)g)[x] = (float)c; }
        }
        Q = ringattn_tensor_bnhd(q, dt, b, rows, h, d); K = ringattn_tensor_bnhd(k, dt, b, rows, h, d);
        V = ringattn_tensor_bnhd(v, dt, b, rows, h, d); O = ringattn_tensor_bnhd(o, dt, b, rows, h, d);
        G = ringattn_tensor_bnhd(g, dt, b, rows, h, d); DQ = ringattn_tensor_bnhd(dq, dt, b, rows, h, d);
        DK = ringattn_tensor_bnhd(dk, dt, b, rows, h, d); DV = ringattn_tensor_bnhd(dv, dt, b, rows, h, d);
        L = ringattn_tensor_lse(l, dt, b, h, rows);
        cfg.compute = dt; cfg.causal = causal; cfg.alloc_user = &count;
        cfg.error_detail = err; cfg.error_detail_size = sizeof err;
        opt.stats = &ms;
        for (pass = 0; pass < 2; pass++) {
            double *step = (double *)malloc(sizeof(double) * (size_t)reps * 6), *comp = step + reps, *expo = comp + reps;
            double *dkv = expo + reps, *comm = dkv + reps, *poll = comm + reps, row[11], *all = NULL;
            size_t peak = 0, member = 0;
            ringattn_plan_info pl;
            ringattn_shape s;
            void *ba, *bb;
            if (!(passes & (1 << pass))) { free(step); continue; }
            s.batch = b; s.seq_q = s.seq_k = n; s.heads_q = s.heads_kv = h; s.dim_qk = s.dim_v = d;
            cfg.ring_size = size;
            if (ringattn_plan(&cfg, &s, pass, &pl)) { fprintf(stderr, "plan: %s\n", err); MPI_Abort(MPI_COMM_WORLD, 1); }
            cfg.ring_size = 0;
            ba = calloc(1, pl.kv_bytes / 2); bb = calloc(1, pl.kv_bytes / 2);
            for (r = 0; r < reps + 1; r++) {   /* one warm-up call, then reps */
                int st;
                count.cur = count.peak = 0;
                MPI_Barrier(MPI_COMM_WORLD);
                st = pass == 0 ? ringattn_mpi_forward_ex(&cfg, &opt, MPI_COMM_WORLD, &Q, &K, &V, &O, &L)
                               : ringattn_mpi_backward_ex(&cfg, &opt, MPI_COMM_WORLD, &Q, &K, &V, &O, &L, &G, &DQ, &DK, &DV);
                if (st) { fprintf(stderr, "rank %d: %s (%s)\n", rank, ringattn_strerror(st), err); MPI_Abort(MPI_COMM_WORLD, 1); }
                if (r == 0) continue;
                step[r - 1] = ms.ring_s / size * 1e3; comp[r - 1] = ms.compute_s / size * 1e3;
                expo[r - 1] = ms.wait_s / size * 1e3; dkv[r - 1] = ms.dkv_s / size * 1e3;
                poll[r - 1] = ms.poll_s / size * 1e3;
                comm[r - 1] = comm_alone(MPI_COMM_WORLD, ba, bb, pl.kv_bytes / 2, size, pass) / size * 1e3;
                if (count.peak > peak) peak = count.peak;
                member = ms.member_bytes;
            }
            row[0] = median(step, reps); row[1] = median(comp, reps); row[2] = median(expo, reps);
            row[3] = median(dkv, reps); row[4] = median(comm, reps);
            row[5] = 0;
            row[6] = (double)peak; row[7] = (double)member; row[8] = (double)pl.member_bytes;
            row[9] = (double)(pl.member_bytes + (size_t)ms.num_threads * pl.tile_bytes);
            row[10] = median(poll, reps);
            if (rank == 0) all = (double *)malloc(sizeof(double) * 11 * (size_t)size);
            MPI_Gather(row, 11, MPI_DOUBLE, all, 11, MPI_DOUBLE, 0, MPI_COMM_WORLD);
            if (rank == 0) {
                double maxc = 0;
                for (i = 0; i < size; i++) if (all[11 * i + 1] > maxc) maxc = all[11 * i + 1];
                for (i = 0; i < size; i++) {
                    const double *w = all + 11 * i;
                    double exposed = w[0] - maxc, hid = w[4] > 0 ? 1.0 - exposed / w[4] : 1.0;
                    hid = hid < 0 ? 0 : hid > 1 ? 1 : hid;
                    printf("%s,%d,%d,%d,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.0f,%.0f,%.0f,%.0f\n", pass ? "backward" : "forward",
                           size, i, ms.num_threads, w[0], w[1], w[10], w[2], w[3], w[4], exposed, hid, w[6], w[7], w[8], w[9]);
                }
                free(all);
            }
            free(ba); free(bb); free(step);
        }
        free(q); free(k); free(v); free(o); free(g); free(dq); free(dk); free(dv); free(l);
    }
    MPI_Finalize();
    return 0;
}
