/* test_stats.c - the memory plan is what a call really allocates, and it scales as n/p.

   Every allocation of ringattn.h goes through RINGATTN_MALLOC / RINGATTN_FREE; this test
   routes them to a counting allocator (the cfg->alloc_user pointer), so the bytes are
   measured independently of the library's own bookkeeping:
     - total bytes allocated by a call == sum over members of their private bytes + one
       scratch tile per thread + the ring table, and everything is freed again; three
       allocations in all (the member and thread tables, one block for every buffer);
     - stats.peak_bytes_per_member == stats.planned_bytes_per_member == ringattn_plan();
     - per-member bytes scale as 1/p at fixed n (planned for n = 65536 and for 10^9 tokens
       on 4096 members, measured at n = 4096);
     - the trace callback sees every (member, step) once, holding chunk (member - step) mod p;
     - stats: ring_steps, hand-offs, blocks computed + skipped = p^2, causal skips. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { size_t live, peak, total; long allocs, frees; } counter;

static void *count_malloc(size_t n, void *user)
{
    counter *c = (counter *)user;
    size_t *p = (size_t *)malloc(n + 16);   /* keep the size in front: 16 keeps alignment */
    if (!p) return NULL;
    p[0] = n; c->live += n; c->total += n; c->allocs++;
    if (c->live > c->peak) c->peak = c->live;
    return (char *)p + 16;
}
static void count_free(void *ptr, void *user)
{
    counter *c = (counter *)user;
    size_t *p = (size_t *)((char *)ptr - 16);
    c->live -= p[0]; c->frees++;
    free(p);
}

#define RINGATTN_MALLOC(sz, user) count_malloc(sz, user)
#define RINGATTN_FREE(p, user) count_free(p, user)
#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"

static int failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                                              printf(__VA_ARGS__); printf("\n"); } } while (0)

typedef struct { int p; int *seen; } trace_log;
static void on_trace(const ringattn_trace_event *ev, void *user)
{
    trace_log *t = (trace_log *)user;
    /* members may be threads: each writes its own slots only */
    t->seen[ev->member * t->p + ev->step] += 1 + 100 * (ev->src != ((ev->member - ev->step) % t->p + t->p) % t->p);
}

/* run one forward (or forward + backward) and check every bookkeeping identity */
static void check_call(int64_t nq, int64_t nk, int64_t h, int64_t hk, int64_t d, int p, int threads,
                       int causal, ringattn_dtype ct, int backward)
{
    int64_t b = 1, i;
    size_t es = ct == RINGATTN_F64 ? 8 : 4;
    void *q = calloc((size_t)(b * nq * h * d), es), *k = calloc((size_t)(b * nk * hk * d), es);
    void *v = calloc((size_t)(b * nk * hk * d), es), *o = calloc((size_t)(b * nq * h * d), es);
    void *g = calloc((size_t)(b * nq * h * d), es), *dq = calloc((size_t)(b * nq * h * d), es);
    void *dk = calloc((size_t)(b * nk * hk * d), es), *dv = calloc((size_t)(b * nk * hk * d), es);
    double *lse = (double *)calloc((size_t)(b * h * nq), sizeof(double));
    ringattn_tensor Q = ringattn_tensor_bnhd(q, ct, b, nq, h, d), K = ringattn_tensor_bnhd(k, ct, b, nk, hk, d);
    ringattn_tensor V = ringattn_tensor_bnhd(v, ct, b, nk, hk, d), O = ringattn_tensor_bnhd(o, ct, b, nq, h, d);
    ringattn_tensor G = ringattn_tensor_bnhd(g, ct, b, nq, h, d), DQ = ringattn_tensor_bnhd(dq, ct, b, nq, h, d);
    ringattn_tensor DK = ringattn_tensor_bnhd(dk, ct, b, nk, hk, d), DV = ringattn_tensor_bnhd(dv, ct, b, nk, hk, d);
    ringattn_tensor L = ringattn_tensor_lse(lse, RINGATTN_F64, b, h, nq);
    ringattn_config cfg = ringattn_default_config();
    ringattn_stats st; ringattn_plan_info plan; ringattn_shape sh;
    counter c; trace_log tl; int pass, st_code;
    memset(&plan, 0, sizeof plan);
    memset(&c, 0, sizeof c);
    for (i = 0; i < b * nq * h * d; i++) {   /* any finite values will do for bookkeeping */
        if (ct == RINGATTN_F64) ((double *)q)[i] = 0.01 * (double)(i % 7); else ((float *)q)[i] = 0.01f * (float)(i % 7);
    }
    cfg.ring_size = p; cfg.num_threads = threads; cfg.causal = causal; cfg.compute = ct;
    cfg.stats = &st; cfg.alloc_user = &c;
    tl.p = p; tl.seen = (int *)calloc((size_t)(p * p), sizeof(int));
    cfg.trace = on_trace; cfg.trace_user = &tl;
    sh.batch = b; sh.seq_q = nq; sh.seq_k = nk; sh.heads_q = h; sh.heads_kv = hk; sh.dim_qk = d; sh.dim_v = d;
    for (pass = 0; pass <= backward; pass++) {
        int64_t x; int bad_trace = 0;
        memset(&c, 0, sizeof c); memset(tl.seen, 0, sizeof(int) * (size_t)(p * p));
        st_code = pass == 0 ? ringattn_forward(&cfg, &Q, &K, &V, &O, &L)
                            : ringattn_backward(&cfg, &Q, &K, &V, &O, &L, &G, &DQ, &DK, &DV);
        CHECK(st_code == 0, "status %d (%s)", st_code, ringattn_strerror(st_code));
        if (st_code) break;
        CHECK(ringattn_plan(&cfg, &sh, pass, &plan) == 0, "plan failed");
        /* the library's own count, the plan, and the allocator's count all agree */
        CHECK(st.peak_bytes_per_member == st.planned_bytes_per_member,
              "pass %d nq %lld p %d: measured %zu != planned %zu", pass, (long long)nq, p,
              st.peak_bytes_per_member, st.planned_bytes_per_member);
        CHECK(plan.member_bytes == st.planned_bytes_per_member, "ringattn_plan %zu != stats %zu",
              plan.member_bytes, st.planned_bytes_per_member);
        CHECK(c.live == 0 && c.allocs == c.frees, "leak: %zu bytes live, %ld allocs, %ld frees", c.live, c.allocs, c.frees);
        CHECK(plan.total_bytes == (size_t)p * plan.member_bytes + (size_t)plan.num_threads * plan.tile_bytes
                                  + plan.shared_bytes, "total_bytes is not p * member + threads * tile + shared");
        CHECK(st.scratch_bytes_per_thread == plan.tile_bytes, "scratch per thread %zu != planned %zu",
              st.scratch_bytes_per_thread, plan.tile_bytes);
        CHECK(plan.num_threads == st.num_threads, "planned threads %d != used %d", plan.num_threads, st.num_threads);
        CHECK(c.total <= plan.total_bytes, "allocator saw %zu bytes > planned total %zu", c.total, plan.total_bytes);
        if (nq % p == 0 && nk % p == 0)   /* equal chunks: exactly p members of the planned size */
            CHECK(c.total == plan.total_bytes, "allocator saw %zu bytes, expected %zu", c.total, plan.total_bytes);
        CHECK(c.peak == c.total, "buffers are allocated once per call (peak %zu, total %zu)", c.peak, c.total);
        /* the member and thread tables and one block for every buffer (ringattn__arena): an
           allocator that keeps a freed block serves the next call without fresh pages */
        CHECK(c.allocs == 3, "a call made %ld allocations, not 3 (its two tables and one block)", c.allocs);
        CHECK(st.ring_steps == p && st.ring_size == p, "ring_steps %lld", (long long)st.ring_steps);
        CHECK(st.blocks_computed + st.blocks_skipped == (int64_t)p * p, "blocks %lld + %lld != p^2",
              (long long)st.blocks_computed, (long long)st.blocks_skipped);
        CHECK(st.handoffs == (int64_t)p * (p - 1) + (pass ? (int64_t)p * p : 0), "handoffs %lld", (long long)st.handoffs);
        if (causal && nq == nk)   /* contiguous causal: every block above the diagonal skipped */
            CHECK(st.blocks_skipped == (int64_t)p * (p - 1) / 2, "causal skipped %lld, expected %d",
                  (long long)st.blocks_skipped, p * (p - 1) / 2);
        for (x = 0; x < (int64_t)p * p; x++) bad_trace |= tl.seen[x] != 1;
        CHECK(!bad_trace, "trace: every (member, step) exactly once with src = (member - step) mod p");
        CHECK(st.num_threads >= 1 && st.num_threads <= (threads ? threads : 64), "num_threads %d", st.num_threads);
    }
    free(q); free(k); free(v); free(o); free(g); free(dq); free(dk); free(dv); free(lse); free(tl.seen);
}

int main(void)
{
    static const int ps[] = { 1, 2, 4, 8, 16 };
    ringattn_config cfg = ringattn_default_config();
    ringattn_shape sh; ringattn_plan_info plan, plan1;
    int i, pass;

    /* 1. measured == planned, allocator == library, over shapes, ring sizes, both passes */
    check_call(64, 64, 2, 2, 16, 4, 2, 0, RINGATTN_F32, 1);
    check_call(64, 64, 2, 2, 16, 4, 1, 1, RINGATTN_F64, 1);
    check_call(100, 37, 4, 2, 8, 3, 2, 1, RINGATTN_F32, 1);     /* uneven chunks, GQA */
    check_call(37, 100, 2, 1, 8, 7, 4, 2, RINGATTN_F64, 1);
    check_call(1, 1, 1, 1, 1, 1, 1, 0, RINGATTN_F32, 1);
    check_call(300, 300, 1, 1, 4, 16, 2, 1, RINGATTN_F32, 0);

    /* 2. n/p scaling, planned: n = 65536 (b=1, h=8, d=64, f32) */
    sh.batch = 1; sh.seq_q = sh.seq_k = 65536; sh.heads_q = sh.heads_kv = 8; sh.dim_qk = sh.dim_v = 64;
    for (pass = 0; pass <= 1; pass++) {
        printf("%s bytes per member, n=65536 b=1 h=8 d=64 f32:\n", pass ? "backward" : "forward");
        for (i = 0; i < 5; i++) {
            cfg.ring_size = ps[i];
            if (ringattn_plan(&cfg, &sh, pass, &plan) != 0) { failures++; continue; }
            if (i == 0) plan1 = plan;
            printf("  p=%2d  %12zu bytes  (p=1 / this = %.3f)\n", ps[i], plan.member_bytes,
                   (double)plan1.member_bytes / (double)plan.member_bytes);
            /* a member owns only O(n/p) buffers (score tiles belong to threads): exactly 1/p */
            CHECK((double)plan.member_bytes * ps[i] == (double)plan1.member_bytes,
                  "p=%d: member bytes do not scale as 1/p", ps[i]);
        }
    }
    /* 3. a billion tokens on 4096 members: planned without allocating anything */
    sh.seq_q = sh.seq_k = 1000000000; cfg.ring_size = 4096;
    CHECK(ringattn_plan(&cfg, &sh, 0, &plan) == 0, "plan for 1e9 tokens");
    printf("1e9 tokens, 4096 members, h=8 d=64 f32: forward %zu bytes per member (chunk %lld)\n",
           plan.member_bytes, (long long)plan.chunk_q);
    CHECK(ringattn_plan(&cfg, &sh, 1, &plan) == 0, "plan for 1e9 tokens, backward");
    printf("                                       backward %zu bytes per member\n", plan.member_bytes);
    /* and a shape whose workspace cannot be addressed is refused, not wrapped around */
    sh.heads_q = sh.heads_kv = (int64_t)1 << 40; cfg.ring_size = 1;
    CHECK(ringattn_plan(&cfg, &sh, 0, &plan) == RINGATTN_EOVERFLOW, "overflowing plan must fail");

    /* 4. measured per-member bytes follow 1/p at n = 4096 */
    {
        size_t base = 0;
        printf("measured forward bytes per member, n=4096 b=1 h=2 d=32 f32:\n");
        for (i = 0; i < 5; i++) {
            int64_t n = 4096, h = 2, d = 32;
            float *q = (float *)calloc((size_t)(n * h * d), 4), *o = (float *)calloc((size_t)(n * h * d), 4);
            ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F32, 1, n, h, d);
            ringattn_tensor O = ringattn_tensor_bnhd(o, RINGATTN_F32, 1, n, h, d);
            ringattn_config c2 = ringattn_default_config(); ringattn_stats st; counter cnt;
            memset(&cnt, 0, sizeof cnt);
            c2.ring_size = ps[i]; c2.stats = &st; c2.alloc_user = &cnt; c2.causal = 1;
            /* q doubles as k and v: inputs may alias each other, only outputs may not */
            CHECK(ringattn_forward(&c2, &Q, &Q, &Q, &O, NULL) == 0, "forward n=4096 p=%d", ps[i]);
            if (i == 0) base = st.peak_bytes_per_member;
            printf("  p=%2d  measured %10zu  planned %10zu  (p=1 / this = %.3f)\n", ps[i],
                   st.peak_bytes_per_member, st.planned_bytes_per_member,
                   (double)base / (double)st.peak_bytes_per_member);
            CHECK(st.peak_bytes_per_member == st.planned_bytes_per_member, "measured != planned");
            /* measured, a member's bytes shrink exactly as 1/p (n/p is whole here) */
            CHECK(st.peak_bytes_per_member * (size_t)ps[i] == base,
                  "p=%d: measured member bytes do not scale as 1/p", ps[i]);
            free(q); free(o);
        }
    }
    printf("%s (%d failures)\n", failures ? "FAILED" : "ok", failures);
    return failures ? 1 : 0;
}
