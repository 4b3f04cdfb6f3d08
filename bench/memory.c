/* memory.c - planned vs measured bytes per ring member, forward and backward, at real length.

   Runs ringattn_forward and ringattn_backward at b=1, h=8, n=65536, d=64 (f32) for
   p = 1, 2, 4, 8, 16 and prints ringattn_plan()'s per-member bytes beside the bytes the
   members really allocated (cfg.stats, counted at the allocator), and the ratio to p = 1.
   Every member buffer is sized by the shape, never by the mask, so the call uses a window
   of (0, 0) -- each query sees only its own key -- to keep the arithmetic O(n) while the
   allocations are exactly those of dense attention at this length.

   Options: --n 65536 --h 8 --d 64 --p 1,2,4,8,16                                          */
#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    long n = 65536, h = 8, d = 64, ps[16] = { 1, 2, 4, 8, 16 };
    int np = 5, i, pass;
    size_t base[2] = { 0, 0 };
    for (i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n")) n = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--h")) h = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--d")) d = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--p")) {
            const char *s = argv[i + 1]; np = 0;
            while (*s && np < 16) { char *e; ps[np++] = strtol(s, &e, 10); s = (*e == ',') ? e + 1 : e; if (e == s && *s) break; }
        } else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    {
        size_t cnt = (size_t)(n * h * d), x;
        float *q = (float *)malloc(cnt * 4), *k = (float *)malloc(cnt * 4), *v = (float *)malloc(cnt * 4);
        float *o = (float *)malloc(cnt * 4), *g = (float *)malloc(cnt * 4), *dq = (float *)malloc(cnt * 4);
        float *dk = (float *)malloc(cnt * 4), *dv = (float *)malloc(cnt * 4), *lse = (float *)malloc((size_t)(n * h) * 4);
        ringattn_tensor Q, K, V, O, G, DQ, DK, DV, L;
        if (!q || !k || !v || !o || !g || !dq || !dk || !dv || !lse) { fprintf(stderr, "out of memory for the inputs\n"); return 1; }
        for (x = 0; x < cnt; x++) { q[x] = (float)(x % 17) * 0.01f; k[x] = (float)(x % 13) * 0.01f; v[x] = (float)(x % 11) * 0.01f; g[x] = v[x]; }
        Q = ringattn_tensor_bnhd(q, RINGATTN_F32, 1, n, h, d); K = ringattn_tensor_bnhd(k, RINGATTN_F32, 1, n, h, d);
        V = ringattn_tensor_bnhd(v, RINGATTN_F32, 1, n, h, d); O = ringattn_tensor_bnhd(o, RINGATTN_F32, 1, n, h, d);
        G = ringattn_tensor_bnhd(g, RINGATTN_F32, 1, n, h, d); DQ = ringattn_tensor_bnhd(dq, RINGATTN_F32, 1, n, h, d);
        DK = ringattn_tensor_bnhd(dk, RINGATTN_F32, 1, n, h, d); DV = ringattn_tensor_bnhd(dv, RINGATTN_F32, 1, n, h, d);
        L = ringattn_tensor_lse(lse, RINGATTN_F32, 1, h, n);
        printf("b=1 h=%ld n=%ld d=%ld f32; bytes per member (member-owned: Q, O/dQ, row stats, K/V and dK/dV buffers)\n", h, n, d);
        printf("pass,p,planned_bytes,measured_bytes,ratio_p1_to_p,scratch_bytes_per_thread,threads\n");
        for (pass = 0; pass <= 1; pass++)
            for (i = 0; i < np; i++) {
                ringattn_config cfg = ringattn_default_config();
                ringattn_stats st; int rc;
                cfg.ring_size = (int)ps[i]; cfg.stats = &st;
                cfg.window_left = 0; cfg.window_right = 0;
                rc = pass == 0 ? ringattn_forward(&cfg, &Q, &K, &V, &O, &L)
                               : ringattn_backward(&cfg, &Q, &K, &V, &O, &L, &G, &DQ, &DK, &DV);
                if (rc) { fprintf(stderr, "p=%ld: %s\n", ps[i], ringattn_strerror(rc)); return 1; }
                if (i == 0) base[pass] = st.peak_bytes_per_member;
                printf("%s,%ld,%zu,%zu,%.3f,%zu,%d\n", pass ? "bwd" : "fwd", ps[i], st.planned_bytes_per_member,
                       st.peak_bytes_per_member, (double)base[pass] / (double)st.peak_bytes_per_member,
                       st.scratch_bytes_per_thread, st.num_threads);
                fflush(stdout);
                if (st.planned_bytes_per_member != st.peak_bytes_per_member) { fprintf(stderr, "planned != measured\n"); return 1; }
            }
        free(q); free(k); free(v); free(o); free(g); free(dq); free(dk); free(dv); free(lse);
    }
    return 0;
}
