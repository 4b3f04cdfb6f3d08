/* step_through.c - watch the ring work, one step at a time.

   8 tokens, 4 ring members, head dimension 2, one head, f64. num_threads = 1 runs the members
   one after another (the step-through mode: the same arithmetic as with threads, bit for
   bit), and cfg.trace is called after every (member, step): it prints which K/V chunk the
   member holds, the query and key positions of the block, whether the block was multiplied
   or skipped, and the member's running row maximum m and row sum l afterwards. Then the
   final outputs are printed next to a naive attention computed in this file. It runs once
   without a mask and once causal.

   Build and run:  cc -std=c99 -I. examples/step_through.c -lm && ./a.out */
#include <math.h>
#include <stdio.h>

#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"

#define N 8   /* tokens    */
#define P 4   /* members   */
#define D 2   /* head dim  */

/* [N][D]: one batch, one head, so [b, n, h, d] is just [n][d] */
static const double q[N][D] = { { 1.0,  0.0}, { 0.5,  1.0}, {-1.0,  0.5}, { 0.0, -1.0},
                                { 1.5,  0.5}, {-0.5, -0.5}, { 0.25, 1.5}, { 1.0, -1.0} };
static const double k[N][D] = { { 0.5,  0.5}, {-1.0,  1.0}, { 1.0,  0.0}, { 0.0,  1.5},
                                {-0.5, -1.0}, { 1.0,  1.0}, { 0.5, -0.5}, {-1.5,  0.5} };
static const double v[N][D] = { { 0.0,  1.0}, { 1.0, -1.0}, { 2.0,  1.0}, { 3.0, -1.0},
                                { 4.0,  1.0}, { 5.0, -1.0}, { 6.0,  1.0}, { 7.0, -1.0} };

static void print_value(double x)
{
    if (x == -INFINITY) printf("  -inf");
    else printf("%6.3f", x);
}

/* called by the library after member ev->member finished ring step ev->step */
static void show_step(const ringattn_trace_event *ev, void *user)
{
    int64_t r;
    (void)user;
    if (ev->member == 0)
        printf("-----+--------+--------------+---------+------+----------+--------------------------------------------\n");
    printf("%4d | %6d | member %-5d | %lld..%lld    | %lld..%lld | %-8s |",
           ev->step, ev->member, ev->src, (long long)ev->q_begin, (long long)ev->q_end - 1,
           (long long)ev->k_begin, (long long)ev->k_end - 1, ev->computed ? "computed" : "skipped");
    for (r = 0; r < ev->rows; r++) {       /* b = h = 1: row r is query q_begin + r */
        printf("  q%lld: m=", (long long)(ev->q_begin + r));
        print_value(ev->row_max[r]);
        printf(" l=");
        print_value(ev->row_sum[r]);
    }
    printf("\n");
}

/* the same attention, written out: query i sees keys 0..last(i) */
static void naive(int causal, double out[N][D], double lse[N])
{
    int i, j, c;
    for (i = 0; i < N; i++) {
        int last = causal ? i : N - 1;
        double s[N], m = -INFINITY, l = 0;
        for (j = 0; j <= last; j++) {
            s[j] = (q[i][0] * k[j][0] + q[i][1] * k[j][1]) / sqrt((double)D);
            if (s[j] > m) m = s[j];
        }
        for (j = 0; j <= last; j++) l += exp(s[j] - m);
        for (c = 0; c < D; c++) {
            out[i][c] = 0;
            for (j = 0; j <= last; j++) out[i][c] += exp(s[j] - m) / l * v[j][c];
        }
        lse[i] = m + log(l);
    }
}

static int run(int causal)
{
    double out[N][D], lse[N], ref[N][D], ref_lse[N], worst = 0;
    ringattn_tensor Q = ringattn_tensor_bnhd((void *)q, RINGATTN_F64, 1, N, 1, D);
    ringattn_tensor K = ringattn_tensor_bnhd((void *)k, RINGATTN_F64, 1, N, 1, D);
    ringattn_tensor V = ringattn_tensor_bnhd((void *)v, RINGATTN_F64, 1, N, 1, D);
    ringattn_tensor O = ringattn_tensor_bnhd(out, RINGATTN_F64, 1, N, 1, D);
    ringattn_tensor L = ringattn_tensor_lse(lse, RINGATTN_F64, 1, 1, N);
    ringattn_config cfg = ringattn_default_config();
    int i, st;

    cfg.ring_size = P;
    cfg.num_threads = 1;
    cfg.compute = RINGATTN_F64;
    cfg.causal = causal ? RINGATTN_CAUSAL_BOTTOM_RIGHT : RINGATTN_CAUSAL_NONE;
    cfg.trace = show_step;

    printf("\n=== %s ===\n", causal ? "causal: query i sees keys 0..i" : "no mask: every query sees every key");
    printf("step | member | holds K/V of | queries | keys | block    | after the step, per query: running max m, running sum l\n");
    st = ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
    if (st != RINGATTN_OK) {
        printf("ringattn_forward: %s\n", ringattn_strerror(st));
        return 1;
    }

    naive(causal, ref, ref_lse);
    printf("\nfinal: O = acc / l and lse = m + log l, next to a naive attention over the visible keys\n");
    printf("query |      ring O       |      naive O      | ring lse | naive lse\n");
    for (i = 0; i < N; i++) {
        printf("%5d | %8.5f %8.5f | %8.5f %8.5f | %8.5f | %8.5f\n", i, out[i][0], out[i][1],
               ref[i][0], ref[i][1], lse[i], ref_lse[i]);
        if (fabs(out[i][0] - ref[i][0]) > worst) worst = fabs(out[i][0] - ref[i][0]);
        if (fabs(out[i][1] - ref[i][1]) > worst) worst = fabs(out[i][1] - ref[i][1]);
        if (fabs(lse[i] - ref_lse[i]) > worst) worst = fabs(lse[i] - ref_lse[i]);
    }
    printf("largest difference: %.1e (%s)\n", worst, worst <= 1e-12 ? "agree" : "DISAGREE");
    return worst <= 1e-12 ? 0 : 1;
}

int main(void)
{
    int bad;
    printf("Ring attention, step by step: %d tokens, %d ring members, each owning %d queries and\n"
           "the keys/values at the same positions. At step t member i holds the K/V chunk of\n"
           "member (i - t) mod %d, folds that block into its running state and passes the chunk on\n"
           "to member i + 1. Scores are q.k / sqrt(%d); m is the largest score a query has seen so\n"
           "far, l the sum of exp(score - m) over the keys it has seen so far. A block none of\n"
           "whose keys is visible to the member's queries is skipped: nothing is multiplied.\n",
           N, P, N / P, P, D);
    bad = run(0);
    bad |= run(1);
    return bad;
}
