/* test_variants.c - ring partitions (contiguous, zigzag, striped), varlen packing, softcap.

   1. zigzag / striped forward and backward vs the naive f64 oracle (f64 within 1e-12 of the
      output / gradient scale; f32 forward within the policy of docs/golden.md): causal both alignments,
      none, windows, nq != nk, GQA, uneven sizes, ring sizes, threads 1 and 2.
   2. varlen (cu_seqlens, batch 1) vs the oracle's literal rule (same sequence, local
      positions, per-sequence causal alignment), with every partition, empty sequences,
      nq != nk per sequence, windows; forward and backward. 2b. softcap (cap * tanh(s / cap))
      vs the oracle with each partition, varlen, GQA, f32; its gradient by finite differences.
   3. determinism: bit-identical for a fixed partition and p across thread counts.
   4. causal load balance at n = 8192, p = 8: per-member work (stats.member_flops_min/max) for
      contiguous vs zigzag vs striped; zigzag and striped within 10 %.
   5. bad input: varlen arrays NULL / not starting at 0 / decreasing / not ending at n, batch
      > 1 with varlen, zigzag with p > min(nq, nk) / 2, striped or varlen with dilation,
      cu_seqlens without num_seqs — each refused with its status and outputs untouched. */
#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"
#include "ringattn_ref.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

static int failures = 0;
static double worst_f64 = 0, worst_grad = 0, worst_f32 = 0;   /* of the current group */
#define CHECK(cond, ...) do { if (!(cond)) { failures++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                                              printf(__VA_ARGS__); printf("\n"); } } while (0)

static double rnd(uint64_t *s)   /* splitmix64 -> uniform (-1, 1) */
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull; z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

typedef struct {
    int64_t nq, nk, h, hk, d;
    int causal, wl, wr, p, threads;
    ringattn_partition part;
    int nseq; const int64_t *cuq, *cuk;
    ringattn_dtype ct;
    double softcap;
} vcase;

static const char *part_name(ringattn_partition p)
{
    return p == RINGATTN_ZIGZAG ? "zigzag" : p == RINGATTN_STRIPED ? "striped" : "contiguous";
}

static double max_abs(const double *x, size_t n)
{
    double m = 0; size_t i;
    for (i = 0; i < n; i++) if (fabs(x[i]) > m) m = fabs(x[i]);
    return m;
}

/* worst |a - b| with -inf == -inf; NaN anywhere counts as infinite */
static double max_diff(const double *a, const double *b, size_t n)
{
    double m = 0; size_t i;
    for (i = 0; i < n; i++) {
        double e;
        if (a[i] == -INFINITY && b[i] == -INFINITY) continue;
        e = fabs(a[i] - b[i]);
        if (!(e <= m)) m = (e == e) ? e : INFINITY;
    }
    return m;
}

/* one case: forward (+ backward in f64) against the oracle */
static void run_case(const vcase *c, uint64_t seed)
{
    size_t nq = (size_t)(c->nq * c->h * c->d), nk = (size_t)(c->nk * c->hk * c->d), nl = (size_t)(c->h * c->nq), i;
    double *q = (double *)malloc(nq * 8), *k = (double *)malloc(nk * 8), *v = (double *)malloc(nk * 8);
    double *g = (double *)malloc(nq * 8), *ro = (double *)malloc(nq * 8), *rl = (double *)malloc(nl * 8);
    double *rdq = (double *)malloc(nq * 8), *rdk = (double *)malloc(nk * 8), *rdv = (double *)malloc(nk * 8);
    double *o = (double *)malloc(nq * 8), *l = (double *)malloc(nl * 8);
    double *dq = (double *)malloc(nq * 8), *dk = (double *)malloc(nk * 8), *dv = (double *)malloc(nk * 8);
    float *qf = (float *)malloc(nq * 4), *kf = (float *)malloc(nk * 4), *vf = (float *)malloc(nk * 4), *of = (float *)malloc(nq * 4);
    ref_problem rp; ringattn_config cfg = ringattn_default_config(); char err[256] = "";
    int f64 = c->ct == RINGATTN_F64, st;
    double smax = 0, vmax, tol, eo, el;
    for (i = 0; i < nq; i++) { q[i] = 2 * rnd(&seed); g[i] = rnd(&seed); }
    for (i = 0; i < nk; i++) { k[i] = 2 * rnd(&seed); v[i] = rnd(&seed); }
    if (!f64) {   /* the oracle sees the same f32-rounded inputs */
        for (i = 0; i < nq; i++) { qf[i] = (float)q[i]; q[i] = qf[i]; }
        for (i = 0; i < nk; i++) { kf[i] = (float)k[i]; k[i] = kf[i]; vf[i] = (float)v[i]; v[i] = vf[i]; }
    }
    memset(&rp, 0, sizeof rp);
    rp.b = 1; rp.nq = c->nq; rp.nk = c->nk; rp.h = c->h; rp.hk = c->hk; rp.d = rp.dv = c->d;
    rp.scale = 1.0 / sqrt((double)c->d); rp.causal = c->causal;
    rp.window_left = c->wl; rp.window_right = c->wr;
    rp.num_seqs = c->nseq; rp.cu_seqlens_q = c->cuq; rp.cu_seqlens_k = c->cuk;
    rp.softcap = c->softcap; cfg.softcap = c->softcap;
    CHECK(ref_forward(&rp, q, k, v, ro, rl) == 0, "oracle forward");
    cfg.causal = c->causal; cfg.window_left = c->wl; cfg.window_right = c->wr;
    cfg.ring_size = c->p; cfg.num_threads = c->threads; cfg.partition = c->part; cfg.compute = c->ct;
    cfg.num_seqs = c->nseq; cfg.cu_seqlens_q = c->cuq; cfg.cu_seqlens_k = c->cuk;
    cfg.error_detail = err; cfg.error_detail_size = sizeof err;
    vmax = max_abs(v, nk);
    {   /* smax = max |scale| ||q_i|| ||k_j|| for the f32 policy */
        double qn = 0, kn = 0; int64_t r, x;
        for (r = 0; r < c->nq * c->h; r++) { double s2 = 0; for (x = 0; x < c->d; x++) s2 += q[r * c->d + x] * q[r * c->d + x]; if (s2 > qn) qn = s2; }
        for (r = 0; r < c->nk * c->hk; r++) { double s2 = 0; for (x = 0; x < c->d; x++) s2 += k[r * c->d + x] * k[r * c->d + x]; if (s2 > kn) kn = s2; }
        smax = sqrt(qn) * sqrt(kn) / sqrt((double)c->d);
    }
    if (f64) {
        ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F64, 1, c->nq, c->h, c->d);
        ringattn_tensor K = ringattn_tensor_bnhd(k, RINGATTN_F64, 1, c->nk, c->hk, c->d);
        ringattn_tensor V = ringattn_tensor_bnhd(v, RINGATTN_F64, 1, c->nk, c->hk, c->d);
        ringattn_tensor O = ringattn_tensor_bnhd(o, RINGATTN_F64, 1, c->nq, c->h, c->d);
        ringattn_tensor L = ringattn_tensor_lse(l, RINGATTN_F64, 1, c->h, c->nq);
        ringattn_tensor G = ringattn_tensor_bnhd(g, RINGATTN_F64, 1, c->nq, c->h, c->d);
        ringattn_tensor DQ = ringattn_tensor_bnhd(dq, RINGATTN_F64, 1, c->nq, c->h, c->d);
        ringattn_tensor DK = ringattn_tensor_bnhd(dk, RINGATTN_F64, 1, c->nk, c->hk, c->d);
        ringattn_tensor DV = ringattn_tensor_bnhd(dv, RINGATTN_F64, 1, c->nk, c->hk, c->d);
        double gs;
        st = ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
        CHECK(st == 0, "%s forward: %s (%s)", part_name(c->part), ringattn_strerror(st), err);
        eo = max_diff(o, ro, nq); el = max_diff(l, rl, nl);
        tol = 1e-12 * (max_abs(ro, nq) > vmax ? max_abs(ro, nq) : vmax);
        if (eo > worst_f64) worst_f64 = eo;
        if (el > worst_f64) worst_f64 = el;
        CHECK(eo <= tol && el <= 1e-12 * (1 + max_abs(rl, nl)),
              "%s p=%d nq=%lld nk=%lld causal=%d win=%d,%d seqs=%d: out err %.3g lse err %.3g",
              part_name(c->part), c->p, (long long)c->nq, (long long)c->nk, c->causal, c->wl, c->wr, c->nseq, eo, el);
        CHECK(ref_backward(&rp, q, k, v, g, rdq, rdk, rdv) == 0, "oracle backward");
        st = ringattn_backward(&cfg, &Q, &K, &V, &O, &L, &G, &DQ, &DK, &DV);
        CHECK(st == 0, "%s backward: %s (%s)", part_name(c->part), ringattn_strerror(st), err);
        gs = max_abs(rdq, nq); if (max_abs(rdk, nk) > gs) gs = max_abs(rdk, nk); if (max_abs(rdv, nk) > gs) gs = max_abs(rdv, nk);
        if (gs < 1) gs = 1;
        eo = max_diff(dq, rdq, nq); el = max_diff(dk, rdk, nk); if (max_diff(dv, rdv, nk) > el) el = max_diff(dv, rdv, nk);
        if (eo / gs > worst_grad) worst_grad = eo / gs;
        if (el / gs > worst_grad) worst_grad = el / gs;
        CHECK(eo <= 1e-12 * gs && el <= 1e-12 * gs, "%s p=%d seqs=%d backward: dq err %.3g, dk/dv err %.3g",
              part_name(c->part), c->p, c->nseq, eo, el);
    } else {
        ringattn_tensor Q = ringattn_tensor_bnhd(qf, RINGATTN_F32, 1, c->nq, c->h, c->d);
        ringattn_tensor K = ringattn_tensor_bnhd(kf, RINGATTN_F32, 1, c->nk, c->hk, c->d);
        ringattn_tensor V = ringattn_tensor_bnhd(vf, RINGATTN_F32, 1, c->nk, c->hk, c->d);
        ringattn_tensor O = ringattn_tensor_bnhd(of, RINGATTN_F32, 1, c->nq, c->h, c->d);
        double u = 1.0 / 16777216.0;
        st = ringattn_forward(&cfg, &Q, &K, &V, &O, NULL);
        CHECK(st == 0, "%s f32 forward: %s (%s)", part_name(c->part), ringattn_strerror(st), err);
        for (i = 0; i < nq; i++) o[i] = of[i];
        eo = max_diff(o, ro, nq);
        tol = vmax * u * (2.0 * (double)c->d * smax + (double)c->nk + 16.0);
        if (eo / tol > worst_f32) worst_f32 = eo / tol;
        CHECK(eo <= tol, "%s f32 p=%d: out err %.3g > policy %.3g", part_name(c->part), c->p, eo, tol);
    }
    free(q); free(k); free(v); free(g); free(ro); free(rl); free(rdq); free(rdk); free(rdv);
    free(o); free(l); free(dq); free(dk); free(dv); free(qf); free(kf); free(vf); free(of);
}

/* softcap gradient by central finite differences of loss = sum(out * W), f64 */
static double softcap_fd(void)
{
    enum { N = 9, H = 2, D = 3 };
    double q[N * H * D], k[N * H * D], v[N * H * D], w[N * H * D], o[N * H * D], l[H * N];
    double dq[N * H * D], dk[N * H * D], dv[N * H * D], worst = 0;
    double *x[3]; double *gr[3]; int a, i, j;
    uint64_t seed = 99;
    ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F64, 1, N, H, D), K = ringattn_tensor_bnhd(k, RINGATTN_F64, 1, N, H, D);
    ringattn_tensor V = ringattn_tensor_bnhd(v, RINGATTN_F64, 1, N, H, D), O = ringattn_tensor_bnhd(o, RINGATTN_F64, 1, N, H, D);
    ringattn_tensor W = ringattn_tensor_bnhd(w, RINGATTN_F64, 1, N, H, D), L = ringattn_tensor_lse(l, RINGATTN_F64, 1, H, N);
    ringattn_tensor DQ = ringattn_tensor_bnhd(dq, RINGATTN_F64, 1, N, H, D), DK = ringattn_tensor_bnhd(dk, RINGATTN_F64, 1, N, H, D);
    ringattn_tensor DV = ringattn_tensor_bnhd(dv, RINGATTN_F64, 1, N, H, D);
    ringattn_config cfg = ringattn_default_config();
    cfg.compute = RINGATTN_F64; cfg.causal = 1; cfg.ring_size = 3; cfg.softcap = 1.5; cfg.partition = RINGATTN_STRIPED;
    for (i = 0; i < N * H * D; i++) { q[i] = 3 * rnd(&seed); k[i] = 3 * rnd(&seed); v[i] = rnd(&seed); w[i] = rnd(&seed); }
    CHECK(ringattn_forward(&cfg, &Q, &K, &V, &O, &L) == 0, "softcap forward");
    CHECK(ringattn_backward(&cfg, &Q, &K, &V, &O, &L, &W, &DQ, &DK, &DV) == 0, "softcap backward");
    x[0] = q; x[1] = k; x[2] = v; gr[0] = dq; gr[1] = dk; gr[2] = dv;
    for (a = 0; a < 3; a++)
        for (i = 0; i < N * H * D; i++) {
            double keep = x[a][i], lp = 0, lm = 0, fd, e, h = 1e-5;
            x[a][i] = keep + h; ringattn_forward(&cfg, &Q, &K, &V, &O, NULL);
            for (j = 0; j < N * H * D; j++) lp += o[j] * w[j];
            x[a][i] = keep - h; ringattn_forward(&cfg, &Q, &K, &V, &O, NULL);
            for (j = 0; j < N * H * D; j++) lm += o[j] * w[j];
            x[a][i] = keep;
            fd = (lp - lm) / (2 * h);
            e = fabs(fd - gr[a][i]) / (fabs(fd) > 1e-3 ? fabs(fd) : 1e-3);
            if (e > worst) worst = e;
        }
    CHECK(worst <= 1e-7, "softcap finite differences: worst relative error %.3g", worst);
    return worst;
}

/* 3. the same partition and p give the same bits whatever the thread count */
static void determinism(ringattn_partition part)
{
    int64_t n = 300, h = 2, d = 16; size_t cnt = (size_t)(n * h * d), i;
    float *q = (float *)malloc(cnt * 4), *o1 = (float *)malloc(cnt * 4), *o2 = (float *)malloc(cnt * 4);
    uint64_t seed = 7; int t;
    ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F32, 1, n, h, d);
    for (i = 0; i < cnt; i++) q[i] = (float)rnd(&seed);
    for (t = 1; t <= 4; t *= 2) {
        ringattn_config cfg = ringattn_default_config();
        ringattn_tensor O = ringattn_tensor_bnhd(t == 1 ? o1 : o2, RINGATTN_F32, 1, n, h, d);
        cfg.partition = part; cfg.ring_size = 5; cfg.causal = 1; cfg.num_threads = t;
        CHECK(ringattn_forward(&cfg, &Q, &Q, &Q, &O, NULL) == 0, "determinism run");
        if (t > 1) CHECK(memcmp(o1, o2, cnt * 4) == 0, "%s: threads 1 and %d differ", part_name(part), t);
    }
    free(q); free(o1); free(o2);
}

/* 4. per-member causal work at n = 8192, p = 8 */
static void balance(void)
{
    int64_t n = 8192, h = 1, d = 8; size_t cnt = (size_t)(n * h * d), i;
    float *q = (float *)calloc(cnt, 4), *o = (float *)malloc(cnt * 4);
    ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F32, 1, n, h, d), O = ringattn_tensor_bnhd(o, RINGATTN_F32, 1, n, h, d);
    int k;
    for (i = 0; i < cnt; i++) q[i] = (float)((i * 7) % 5) * 0.1f;
    printf("4. causal work per member, n=8192 p=8 (flops; max/min):\n");
    for (k = 0; k < 3; k++) {
        ringattn_config cfg = ringattn_default_config(); ringattn_stats st;
        ringattn_partition part = (ringattn_partition)k;
        cfg.partition = part; cfg.ring_size = 8; cfg.causal = 1; cfg.stats = &st;
        CHECK(ringattn_forward(&cfg, &Q, &Q, &Q, &O, NULL) == 0, "balance run");
        printf("   %-10s min %.4g  max %.4g  max/min %.3f  (blocks computed %lld, skipped %lld)\n", part_name(part),
               st.member_flops_min, st.member_flops_max, st.member_flops_max / st.member_flops_min,
               (long long)st.blocks_computed, (long long)st.blocks_skipped);
        if (part != RINGATTN_CONTIGUOUS)
            CHECK(st.member_flops_max <= 1.10 * st.member_flops_min, "%s not balanced within 10 %%", part_name(part));
        else
            CHECK(st.member_flops_max > 2.0 * st.member_flops_min, "contiguous causal should be unbalanced");
    }
    free(q); free(o);
}

/* 5. bad input */
static void bad_input(void)
{
    double q[64 * 2 * 4], o[64 * 2 * 4], l[2 * 64];
    ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F64, 1, 64, 2, 4);
    ringattn_tensor O = ringattn_tensor_bnhd(o, RINGATTN_F64, 1, 64, 2, 4);
    ringattn_tensor L = ringattn_tensor_lse(l, RINGATTN_F64, 1, 2, 64);
    ringattn_tensor Q2 = ringattn_tensor_bnhd(q, RINGATTN_F64, 2, 32, 2, 4);
    ringattn_tensor O2 = ringattn_tensor_bnhd(o, RINGATTN_F64, 2, 32, 2, 4);
    int64_t good[3] = { 0, 30, 64 }, nozero[3] = { 1, 30, 64 }, down[3] = { 0, 40, 30 }, shortend[3] = { 0, 30, 60 };
    int64_t seg[1] = { 16 }, rate[1] = { 2 };
    size_t j; int k;
    memset(q, 0, sizeof q);
    for (k = 0; k < 10; k++) {
        ringattn_config cfg = ringattn_default_config(); char err[200] = ""; int want, st;
        const ringattn_tensor *qq = &Q; ringattn_tensor *oo = &O;
        cfg.error_detail = err; cfg.error_detail_size = sizeof err;
        cfg.num_seqs = 2; cfg.cu_seqlens_q = good; cfg.cu_seqlens_k = good;
        switch (k) {
        case 0: cfg.cu_seqlens_k = NULL; want = RINGATTN_ENULL; break;
        case 1: cfg.cu_seqlens_q = nozero; want = RINGATTN_ECONFIG; break;
        case 2: cfg.cu_seqlens_k = down; want = RINGATTN_ECONFIG; break;
        case 3: cfg.cu_seqlens_q = shortend; want = RINGATTN_ECONFIG; break;
        case 4: qq = &Q2; oo = &O2; cfg.cu_seqlens_q = cfg.cu_seqlens_k = good; want = RINGATTN_ESHAPE; break;
        case 5: cfg.num_seqs = 0; want = RINGATTN_ECONFIG; break;
        case 6: cfg.num_groups = 1; cfg.segment_lengths = seg; cfg.dilation_rates = rate; want = RINGATTN_EUNSUPPORTED; break;
        case 7: cfg.num_seqs = 0; cfg.cu_seqlens_q = cfg.cu_seqlens_k = NULL; cfg.partition = RINGATTN_ZIGZAG;
                cfg.ring_size = 33; want = RINGATTN_ECONFIG; break;
        case 8: cfg.num_seqs = 0; cfg.cu_seqlens_q = cfg.cu_seqlens_k = NULL; cfg.partition = RINGATTN_STRIPED;
                cfg.num_groups = 1; cfg.segment_lengths = seg; cfg.dilation_rates = rate; want = RINGATTN_EUNSUPPORTED; break;
        default: cfg.num_seqs = 0; cfg.cu_seqlens_q = cfg.cu_seqlens_k = NULL; cfg.partition = (ringattn_partition)3;
                 want = RINGATTN_ECONFIG; break;
        }
        for (j = 0; j < 512; j++) o[j] = 12345.0;
        for (j = 0; j < 128; j++) l[j] = 12345.0;
        st = ringattn_forward(&cfg, qq, qq, qq, oo, k == 4 ? NULL : &L);
        CHECK(st == want, "bad input %d: status %d, expected %d (%s)", k, st, want, err);
        CHECK(err[0] != 0, "bad input %d: no error detail", k);
        for (j = 0; j < 512; j++) if (o[j] != 12345.0) { CHECK(0, "bad input %d wrote out", k); break; }
        for (j = 0; j < 128; j++) if (l[j] != 12345.0) { CHECK(0, "bad input %d wrote lse", k); break; }
    }
    printf("5. bad input: 10 cases refused with outputs untouched\n");
}

int main(void)
{
    static const int64_t cq1[4] = { 0, 10, 10, 37 }, ck1[4] = { 0, 7, 20, 37 };   /* an empty sequence */
    static const int64_t cq2[4] = { 0, 5, 21, 40 }, ck2[4] = { 0, 9, 30, 33 };   /* nq != nk per seq */
    int f0, ip, pi, ci; uint64_t seed = 1;
    /* 1. partitions */
    f0 = failures;
    for (pi = 1; pi <= 2; pi++)
    for (ci = 0; ci < 9; ci++) {
        vcase c; memset(&c, 0, sizeof c);
        c.h = 2; c.hk = 2; c.d = 8; c.wl = c.wr = -1; c.threads = 2; c.ct = RINGATTN_F64;
        c.part = (ringattn_partition)pi;
        switch (ci) {
        case 0: c.nq = c.nk = 64; c.causal = 1; c.p = 4; break;
        case 1: c.nq = c.nk = 67; c.causal = 1; c.p = 3; c.threads = 1; break;          /* uneven */
        case 2: c.nq = 50; c.nk = 70; c.causal = 1; c.p = 3; break;                     /* nq < nk */
        case 3: c.nq = 70; c.nk = 50; c.causal = 2; c.p = 4; break;                     /* top-left */
        case 4: c.nq = c.nk = 64; c.causal = 0; c.p = 7; c.wl = 5; c.wr = 3; break;     /* window */
        case 5: c.nq = c.nk = 64; c.causal = 1; c.p = 8; c.wl = 9; break;
        case 6: c.nq = c.nk = 48; c.causal = 1; c.p = 2; c.h = 4; c.hk = 2; break;     /* GQA */
        case 7: c.nq = c.nk = 129; c.causal = 1; c.p = 5; c.ct = RINGATTN_F32; break;  /* f32 */
        default: c.nq = c.nk = 16; c.causal = 1; c.p = 8; break;                       /* p at its limit */
        }
        run_case(&c, seed++);
    }
    printf("1. zigzag / striped vs the oracle (forward + backward): f64 out/lse %.3g, grads %.3g of scale, f32 %.3g of policy: %s\n",
           worst_f64, worst_grad, worst_f32, failures == f0 ? "ok" : "FAILED");
    worst_f64 = worst_grad = worst_f32 = 0;
    /* 2. varlen */
    f0 = failures;
    for (ip = 0; ip < 3; ip++)
    for (ci = 0; ci < 5; ci++) {
        vcase c; memset(&c, 0, sizeof c);
        c.h = 2; c.hk = 1; c.d = 8; c.wl = c.wr = -1; c.threads = 2; c.ct = RINGATTN_F64;
        c.part = (ringattn_partition)ip; c.nseq = 3;
        if (ci % 2 == 0) { c.nq = c.nk = 37; c.cuq = cq1; c.cuk = ck1; }
        else { c.nq = 40; c.nk = 33; c.cuq = cq2; c.cuk = ck2; }
        c.p = ip == 1 ? 3 : 4;
        switch (ci) {
        case 0: c.causal = 1; break;
        case 1: c.causal = 1; c.wl = 2; break;
        case 2: c.causal = 2; break;
        case 3: c.causal = 0; c.p = 2; break;
        default: c.causal = 1; c.ct = RINGATTN_F32; break;
        }
        run_case(&c, seed++);
    }
    printf("2. varlen vs the oracle, every partition (forward + backward): f64 out/lse %.3g, grads %.3g of scale, f32 %.3g of policy: %s\n",
           worst_f64, worst_grad, worst_f32, failures == f0 ? "ok" : "FAILED");
    worst_f64 = worst_grad = worst_f32 = 0;
    /* softcap, with each partition, varlen and GQA */
    f0 = failures;
    for (ci = 0; ci < 5; ci++) {
        vcase c; memset(&c, 0, sizeof c);
        c.h = 2; c.hk = 2; c.d = 8; c.wl = c.wr = -1; c.threads = 2; c.ct = RINGATTN_F64; c.softcap = 2.0;
        c.nq = c.nk = 64; c.causal = 1; c.p = 4;
        switch (ci) {
        case 0: break;
        case 1: c.part = RINGATTN_ZIGZAG; c.softcap = 0.5; break;
        case 2: c.part = RINGATTN_STRIPED; c.causal = 2; c.nq = 40; c.nk = 50; break;
        case 3: c.nseq = 3; c.nq = c.nk = 37; c.cuq = cq1; c.cuk = ck1; c.h = 4; c.hk = 1; break;
        default: c.ct = RINGATTN_F32; c.nq = c.nk = 129; c.p = 5; break;
        }
        run_case(&c, seed++);
    }
    {
        double fd = softcap_fd();
        printf("2b. softcap vs the oracle (forward + backward): f64 out/lse %.3g, grads %.3g of scale, f32 %.3g of policy; "
               "finite differences %.3g: %s\n", worst_f64, worst_grad, worst_f32, fd, failures == f0 ? "ok" : "FAILED");
    }
    f0 = failures;
    determinism(RINGATTN_ZIGZAG); determinism(RINGATTN_STRIPED);
    printf("3. threads 1/2/4 bit-identical for zigzag and striped: %s\n", failures == f0 ? "ok" : "FAILED");
    balance();
    bad_input();
    printf("%s (%d failures)\n", failures ? "FAILED" : "ok", failures);
    return failures ? 1 : 0;
}
