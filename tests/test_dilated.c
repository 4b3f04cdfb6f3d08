/* test_dilated.c - ring-dilated (LongNet) attention against the literal gather oracle.

   Build (from the repository root):
     cc -std=c99 -O2 -fopenmp -DRINGATTN_USE_CBLAS -I. -Ireference -Itests \
        -I/usr/include/x86_64-linux-gnu/openblas-pthread \
        tests/test_dilated.c reference/ringattn_ref.c -lopenblas -lm

   The oracle (reference/ringattn_ref.c) gathers every segment's dilated positions and attends
   densely within them (head-group mix), or runs dense attention over a stacked key axis of
   G copies (LSE mix); ringattn.h instead walks strided runs inside ring blocks. Agreement
   means the index maps, the head groups (cumulative, remainder to the first groups), the
   offsets and the block skipping are right.

   Groups:
     forward       7 configurations (h divisible / not divisible by G, G > h, rates > 1 with
                   offsets g mod r_g, a segment longer and shorter than a chunk, n = 96 over
                   p = 7, GQA with b = 2 and dv != d) x p in {1,2,3,4,8} (7 for n = 96) x
                   causal {none, bottom-right, top-left} x mix {head groups, LSE} x {f64, f32};
                   out and lse under the policy of docs/golden.md (test_util.h)
     ring == p=1   every f64 output equals the single-member output within 1e-12
     determinism   num_threads 1 and 2 give bit-identical results at fixed p
     backward      dq, dk, dv vs the oracle in f64, both mixes, causal on/off, p in {1,3,4}
     finite diff   central differences of sum(w o out) at p = 3 on n = 16, h = 3, d = 4, segments
                   [8, 4], rates [2, 1]: every element of dq, dk, dv
     skipping      n = 4096, one segment of 256, p = 8: only the 8 diagonal blocks are
                   multiplied; flops of segments [512, 1024] rates [1, 2] vs dense against the
                   analytic ratio sum_g h_g s_g / r_g^2 / (h n)
     bad input     NULL arrays, segment/rate 0 or negative, n not a multiple of a segment,
                   nq != nk, window + dilation: the right code, an error detail naming the
                   index, outputs (and stats) untouched
     NaN isolation NaN planted in q, k, v at a position: every row that cannot see it (other
                   segment, not in its dilated pattern) is bit-identical to the clean run
   The closing lines give the worst errors over all groups. */
#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"
#include "ringattn_ref.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- configurations */

#define MAXG 6

typedef struct {
    const char *name;
    int64_t b, n, h, hk, d, dv;
    int G;
    int64_t seg[MAXG], rate[MAXG];
} dconf;

static const dconf CONFIGS[] = {
    /* h divisible by G, rates > 1 */
    { "h3 [8,16,32]/[1,2,4]",      1, 64, 3, 3, 16, 16, 3, { 8, 16, 32 }, { 1, 2, 4 } },
    /* offsets o_g = g mod r_g: 0 and 1; two heads per group */
    { "h4 [4,8]/[2,3]",            1, 64, 4, 4, 8, 8, 2, { 4, 8 }, { 2, 3 } },
    /* h = 12 over G = 5: groups of 3,3,2,2,2 heads (fkodom's slicing would be wrong here) */
    { "h12 G5",                    1, 64, 12, 12, 8, 8, 5, { 4, 8, 16, 32, 64 }, { 1, 2, 3, 2, 4 } },
    /* G > h: group 2 has no head at all, the output is still divided by G = 3 */
    { "h2 G3",                     1, 64, 2, 2, 8, 8, 3, { 8, 16, 32 }, { 2, 2, 4 } },
    /* one segment of 32: longer than a p = 8 chunk (8 rows) */
    { "seg32 r2 (> chunk)",        1, 64, 2, 2, 16, 16, 1, { 32 }, { 2 } },
    /* segments of 8 and 16: shorter than a p = 2 chunk (32 rows) */
    { "seg8,16 r1,3 (< chunk)",    1, 64, 2, 2, 16, 16, 2, { 8, 16 }, { 1, 3 } },
    /* n = 96: uneven chunks for p = 7; offset 2 mod 5 = 2 */
    { "n96 [12,32,96]/[1,2,5]",    1, 96, 3, 3, 8, 8, 3, { 12, 32, 96 }, { 1, 2, 5 } },
    /* batch 2, GQA (4 q heads on 2 kv heads), dv != d */
    { "b2 GQA dv!=d",              2, 64, 4, 2, 16, 8, 2, { 16, 32 }, { 2, 1 } },
};
#define NCONFIGS ((int)(sizeof CONFIGS / sizeof CONFIGS[0]))

static const char *mix_name(int mix) { return mix ? "lse" : "groups"; }
static const char *dt_name(ringattn_dtype dt) { return dt == RINGATTN_F64 ? "f64" : "f32"; }

/* the group of q head hh: G contiguous ranges, the first h mod G one head larger */
static int group_of(int64_t h, int G, int64_t hh)
{
    int64_t start = 0;
    int g;
    for (g = 0; g < G; g++) {
        int64_t size = h / G + (g < h % G ? 1 : 0);
        if (hh < start + size) return g;
        start += size;
    }
    return -1;
}

static int in_pattern(int64_t s, int64_t r, int64_t o, int64_t i)
{
    return (i % s) >= o && ((i % s) - o) % r == 0;
}

/* does row i of q head hh see key j? (the DESIGN semantics, written independently) */
static int sees(const dconf *c, int mix, int causal, int64_t hh, int64_t i, int64_t j)
{
    int g;
    if (causal && j > i) return 0;
    for (g = 0; g < c->G; g++) {
        int64_t s = c->seg[g], r = c->rate[g], o;
        if (mix == 0 && g != group_of(c->h, c->G, hh)) continue;
        o = (mix == 0) ? g % r : hh % r;
        if (in_pattern(s, r, o, i) && in_pattern(s, r, o, j) && i / s == j / s) return 1;
    }
    return 0;
}

/* the most keys a row can meet (the nk of the f32 tolerance): its patterns' sparse lengths */
static int64_t max_keys(const dconf *c, int mix)
{
    int64_t m = 0;
    int g;
    for (g = 0; g < c->G; g++) {
        int64_t k = (c->seg[g] + c->rate[g] - 1) / c->rate[g];
        if (mix) m += k; else if (k > m) m = k;
    }
    return m;
}

static ref_problem make_ref(const dconf *c, int causal, int mix)
{
    ref_problem rp;
    memset(&rp, 0, sizeof rp);
    rp.b = c->b; rp.nq = rp.nk = c->n; rp.h = c->h; rp.hk = c->hk; rp.d = c->d; rp.dv = c->dv;
    rp.scale = 1.0 / sqrt((double)c->d);
    rp.causal = causal;
    rp.window_left = rp.window_right = -1;
    rp.num_groups = c->G; rp.segment_lengths = c->seg; rp.dilation_rates = c->rate;
    rp.mix = mix;
    return rp;
}

static ringattn_config make_cfg(const dconf *c, int p, int causal, int mix, ringattn_dtype ct,
                                int threads)
{
    ringattn_config cfg = ringattn_default_config();
    cfg.ring_size = p; cfg.num_threads = threads; cfg.causal = causal; cfg.compute = ct;
    cfg.num_groups = c->G; cfg.segment_lengths = c->seg; cfg.dilation_rates = c->rate;
    cfg.mix = mix ? RINGATTN_MIX_LSE : RINGATTN_MIX_HEAD_GROUPS;
    return cfg;
}

/* ---------------------------------------------------------------- inputs and one library call */

typedef struct {
    const dconf *c;
    int64_t nq_el, nk_el, nv_el, no_el, nl_el;   /* element counts of q, k, v, out, lse */
    double *q, *k, *v;
} dinputs;

static int inputs_make(dinputs *in, const dconf *c, uint64_t seed, int f32_grid)
{
    memset(in, 0, sizeof *in);
    in->c = c;
    in->nq_el = c->b * c->n * c->h * c->d;
    in->nk_el = c->b * c->n * c->hk * c->d;
    in->nv_el = c->b * c->n * c->hk * c->dv;
    in->no_el = c->b * c->n * c->h * c->dv;
    in->nl_el = c->b * c->h * c->n;
    in->q = (double *)malloc(sizeof(double) * (size_t)in->nq_el);
    in->k = (double *)malloc(sizeof(double) * (size_t)in->nk_el);
    in->v = (double *)malloc(sizeof(double) * (size_t)in->nv_el);
    if (!in->q || !in->k || !in->v) return -1;
    fill_normal(in->q, in->nq_el, seed * 3 + 1);
    fill_normal(in->k, in->nk_el, seed * 3 + 2);
    fill_normal(in->v, in->nv_el, seed * 3 + 3);
    if (f32_grid) {   /* the oracle sees exactly what f32 storage holds */
        round_to_f32(in->q, in->nq_el); round_to_f32(in->k, in->nk_el); round_to_f32(in->v, in->nv_el);
    }
    return 0;
}

static void inputs_free(dinputs *in) { free(in->q); free(in->k); free(in->v); }

/* ringattn_forward with storage dtype = compute dtype; results come back as f64 */
static int lib_forward(const ringattn_config *cfg, const dinputs *in, double *out, double *lse)
{
    const dconf *c = in->c;
    int st;
    if (cfg->compute == RINGATTN_F64) {
        ringattn_tensor Q = ringattn_tensor_bnhd(in->q, RINGATTN_F64, c->b, c->n, c->h, c->d);
        ringattn_tensor K = ringattn_tensor_bnhd(in->k, RINGATTN_F64, c->b, c->n, c->hk, c->d);
        ringattn_tensor V = ringattn_tensor_bnhd(in->v, RINGATTN_F64, c->b, c->n, c->hk, c->dv);
        ringattn_tensor O = ringattn_tensor_bnhd(out, RINGATTN_F64, c->b, c->n, c->h, c->dv);
        ringattn_tensor L = ringattn_tensor_lse(lse, RINGATTN_F64, c->b, c->h, c->n);
        st = ringattn_forward(cfg, &Q, &K, &V, &O, lse ? &L : NULL);
    } else {
        float *q = (float *)malloc(sizeof(float) * (size_t)in->nq_el);
        float *k = (float *)malloc(sizeof(float) * (size_t)in->nk_el);
        float *v = (float *)malloc(sizeof(float) * (size_t)in->nv_el);
        float *o = (float *)malloc(sizeof(float) * (size_t)in->no_el);
        float *l = (float *)malloc(sizeof(float) * (size_t)in->nl_el);
        st = -1000;
        if (q && k && v && o && l) {
            ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F32, c->b, c->n, c->h, c->d);
            ringattn_tensor K = ringattn_tensor_bnhd(k, RINGATTN_F32, c->b, c->n, c->hk, c->d);
            ringattn_tensor V = ringattn_tensor_bnhd(v, RINGATTN_F32, c->b, c->n, c->hk, c->dv);
            ringattn_tensor O = ringattn_tensor_bnhd(o, RINGATTN_F32, c->b, c->n, c->h, c->dv);
            ringattn_tensor L = ringattn_tensor_lse(l, RINGATTN_F32, c->b, c->h, c->n);
            f64_to_f32(in->q, q, in->nq_el); f64_to_f32(in->k, k, in->nk_el); f64_to_f32(in->v, v, in->nv_el);
            st = ringattn_forward(cfg, &Q, &K, &V, &O, lse ? &L : NULL);
            f32_to_f64(o, out, in->no_el);
            if (lse) f32_to_f64(l, lse, in->nl_el);
        }
        free(q); free(k); free(v); free(o); free(l);
    }
    return st;
}

/* ---------------------------------------------------------------- tallies */

typedef struct {
    double f64_abs, f64_frac;   /* out and lse (and gradients) with f64 compute */
    double f32_abs, f32_frac;   /* f32 compute                                   */
    int cases, failed;
} tally;

static void tally_add(tally *t, int f32, test_cmp r)
{
    if (f32) {
        if (r.max_abs > t->f32_abs) t->f32_abs = r.max_abs;
        if (r.max_frac > t->f32_frac) t->f32_frac = r.max_frac;
    } else {
        if (r.max_abs > t->f64_abs) t->f64_abs = r.max_abs;
        if (r.max_frac > t->f64_frac) t->f64_frac = r.max_frac;
    }
}

static void tally_merge(tally *into, const tally *g)
{
    if (g->f64_abs > into->f64_abs) into->f64_abs = g->f64_abs;
    if (g->f64_frac > into->f64_frac) into->f64_frac = g->f64_frac;
    if (g->f32_abs > into->f32_abs) into->f32_abs = g->f32_abs;
    if (g->f32_frac > into->f32_frac) into->f32_frac = g->f32_frac;
    into->cases += g->cases; into->failed += g->failed;
}

static void print_group(const char *name, const tally *g)
{
    printf("%-14s %4d cases, %d failed | f64 %.2e (%.3f of tol) | f32 %.2e (%.3f of tol)\n",
           name, g->cases, g->failed, g->f64_abs, g->f64_frac, g->f32_abs, g->f32_frac);
}

/* ---------------------------------------------------------------- forward vs the oracle */

/* one (config, causal, mix, dtype) over every ring size; f64 outputs also against p = 1 */
static void forward_sweep(const dconf *c, int causal, int mix, ringattn_dtype ct, tally *g,
                          tally *ring, int *failures)
{
    static const int ps_default[5] = { 1, 2, 3, 4, 8 };
    static const int ps_96[6] = { 1, 2, 3, 4, 7, 8 };
    const int *ps = (c->n == 96) ? ps_96 : ps_default;
    int nps = (c->n == 96) ? 6 : 5, ip, f32 = (ct == RINGATTN_F32);
    dinputs in;
    ref_problem rp = make_ref(c, causal, mix);
    double *ref_out = NULL, *ref_lse = NULL, *out = NULL, *lse = NULL, *out1 = NULL;
    test_tol to, tl;
    int64_t od[4], ld[4];
    if (inputs_make(&in, c, 100 + (uint64_t)(c - CONFIGS), f32) != 0) { CHECK(0, "out of memory"); goto done; }
    ref_out = (double *)malloc(sizeof(double) * (size_t)in.no_el);
    ref_lse = (double *)malloc(sizeof(double) * (size_t)in.nl_el);
    out = (double *)malloc(sizeof(double) * (size_t)in.no_el);
    lse = (double *)malloc(sizeof(double) * (size_t)in.nl_el);
    out1 = (double *)malloc(sizeof(double) * (size_t)in.no_el);
    if (!ref_out || !ref_lse || !out || !lse || !out1) { CHECK(0, "out of memory"); goto done; }
    if (ref_forward(&rp, in.q, in.k, in.v, ref_out, ref_lse) != 0) { CHECK(0, "oracle failed"); goto done; }
    od[0] = c->b; od[1] = c->n; od[2] = c->h; od[3] = c->dv;
    ld[0] = c->b; ld[1] = c->h; ld[2] = c->n; ld[3] = 1;
    if (f32) {
        double smax = tol_smax(in.q, in.k, c->b, c->n, c->n, c->h, c->hk, c->d, rp.scale);
        to = tol_f32_out(smax, max_abs_f64(in.v, in.nv_el), c->d, max_keys(c, mix));
        tl = tol_f32_lse(smax, c->d, max_keys(c, mix));
    } else {
        to = tol_f64_out(max_abs_f64(ref_out, in.no_el), max_abs_f64(in.v, in.nv_el));
        tl = tol_f64_lse(max_abs_finite_f64(ref_lse, in.nl_el));
    }
    for (ip = 0; ip < nps; ip++) {
        ringattn_stats stats;
        ringattn_config cfg = make_cfg(c, ps[ip], causal, mix, ct, ip % 2 ? 2 : 0);
        test_cmp ro, rl;
        int st, before = *failures;
        char what[160];
        cfg.stats = &stats;
        fill_sentinel_f64(out, in.no_el); fill_sentinel_f64(lse, in.nl_el);
        st = lib_forward(&cfg, &in, out, lse);
        CHECK(st == RINGATTN_OK, "%s p=%d causal=%d mix=%s %s: status %d", c->name, ps[ip], causal,
              mix_name(mix), dt_name(ct), st);
        if (st != RINGATTN_OK) { g->cases++; g->failed++; continue; }
        snprintf(what, sizeof what, "out(%s p=%d c=%d %s %s)", c->name, ps[ip], causal, mix_name(mix), dt_name(ct));
        ro = compare_report(what, out, ref_out, od, "bnhd", to);
        snprintf(what, sizeof what, "lse(%s p=%d c=%d %s %s)", c->name, ps[ip], causal, mix_name(mix), dt_name(ct));
        rl = compare_report(what, lse, ref_lse, ld, "bhn.", tl);
        CHECK(ro.bad == 0 && rl.bad == 0, "%s p=%d causal=%d mix=%s %s: %lld out, %lld lse mismatches",
              c->name, ps[ip], causal, mix_name(mix), dt_name(ct), (long long)ro.bad, (long long)rl.bad);
        CHECK(stats.ring_size == ps[ip] && stats.ring_steps == ps[ip] &&
              stats.blocks_computed + stats.blocks_skipped == (int64_t)ps[ip] * ps[ip],
              "%s p=%d: stats ring %d steps %lld blocks %lld + %lld", c->name, ps[ip], stats.ring_size,
              (long long)stats.ring_steps, (long long)stats.blocks_computed, (long long)stats.blocks_skipped);
        tally_add(g, f32, ro); tally_add(g, f32, rl);
        g->cases++;
        if (*failures != before) g->failed++;
        /* ring == single member (f64): every p within 1e-12 of the p = 1 output */
        if (!f32) {
            if (ps[ip] == 1) memcpy(out1, out, sizeof(double) * (size_t)in.no_el);
            else {
                test_cmp r;
                before = *failures;
                snprintf(what, sizeof what, "out(%s p=%d c=%d %s) vs p=1", c->name, ps[ip], causal, mix_name(mix));
                r = compare_report(what, out, out1, od, "bnhd",
                                   tol_f64_out(max_abs_f64(out1, in.no_el), max_abs_f64(in.v, in.nv_el)));
                CHECK(r.bad == 0, "%s p=%d causal=%d mix=%s: differs from p = 1", c->name, ps[ip], causal,
                      mix_name(mix));
                tally_add(ring, 0, r);
                ring->cases++;
                if (*failures != before) ring->failed++;
            }
        }
    }
done:
    inputs_free(&in);
    free(ref_out); free(ref_lse); free(out); free(lse); free(out1);
}

static void group_forward(tally *g, tally *ring, int *failures)
{
    static const int causals[3] = { 0, 1, 2 };
    int ic, ik, mix, idt;
    for (ic = 0; ic < NCONFIGS; ic++) {
        tally cg;
        memset(&cg, 0, sizeof cg);
        for (ik = 0; ik < 3; ik++)
            for (mix = 0; mix < 2; mix++)
                for (idt = 0; idt < 2; idt++) {
                    /* top-left causal equals bottom-right when nq == nk: f64 only */
                    if (causals[ik] == 2 && idt == 1) continue;
                    forward_sweep(&CONFIGS[ic], causals[ik], mix, idt ? RINGATTN_F32 : RINGATTN_F64, &cg,
                                  ring, failures);
                }
        printf("  forward %-24s %3d cases, %d failed | f64 %.2e (%.3f of tol) | f32 %.2e (%.3f of tol)\n",
               CONFIGS[ic].name, cg.cases, cg.failed, cg.f64_abs, cg.f64_frac, cg.f32_abs, cg.f32_frac);
        tally_merge(g, &cg);
    }
}

/* ---------------------------------------------------------------- determinism */

static void group_determinism(tally *g, int *failures)
{
    int ic, mix, idt;
    for (ic = 0; ic < NCONFIGS; ic += 2)
        for (mix = 0; mix < 2; mix++)
            for (idt = 0; idt < 2; idt++) {
                const dconf *c = &CONFIGS[ic];
                ringattn_dtype ct = idt ? RINGATTN_F32 : RINGATTN_F64;
                dinputs in;
                double *o1 = NULL, *o2 = NULL, *l1 = NULL, *l2 = NULL;
                int p = (c->n == 96) ? 7 : 4;
                if (inputs_make(&in, c, 7, idt) == 0) {
                    ringattn_config c1 = make_cfg(c, p, 1, mix, ct, 1), c2 = make_cfg(c, p, 1, mix, ct, 2);
                    o1 = (double *)malloc(sizeof(double) * (size_t)in.no_el);
                    o2 = (double *)malloc(sizeof(double) * (size_t)in.no_el);
                    l1 = (double *)malloc(sizeof(double) * (size_t)in.nl_el);
                    l2 = (double *)malloc(sizeof(double) * (size_t)in.nl_el);
                    if (o1 && o2 && l1 && l2) {
                        int s1 = lib_forward(&c1, &in, o1, l1), s2 = lib_forward(&c2, &in, o2, l2);
                        int before = *failures;
                        CHECK(s1 == 0 && s2 == 0, "%s: status %d %d", c->name, s1, s2);
                        CHECK(memcmp(o1, o2, sizeof(double) * (size_t)in.no_el) == 0 &&
                              memcmp(l1, l2, sizeof(double) * (size_t)in.nl_el) == 0,
                              "%s p=%d mix=%s %s: threads 1 and 2 differ", c->name, p, mix_name(mix), dt_name(ct));
                        g->cases++;
                        if (*failures != before) g->failed++;
                    } else CHECK(0, "out of memory");
                } else CHECK(0, "out of memory");
                inputs_free(&in);
                free(o1); free(o2); free(l1); free(l2);
            }
}

/* ---------------------------------------------------------------- backward */

typedef struct {
    double *out, *lse, *dout, *dq, *dk, *dv, *rdq, *rdk, *rdv;
} bufs_bwd;

static void bwd_free(bufs_bwd *b)
{
    free(b->out); free(b->lse); free(b->dout); free(b->dq); free(b->dk); free(b->dv);
    free(b->rdq); free(b->rdk); free(b->rdv);
}

static int bwd_alloc(bufs_bwd *b, const dinputs *in)
{
    b->out = (double *)malloc(sizeof(double) * (size_t)in->no_el);
    b->lse = (double *)malloc(sizeof(double) * (size_t)in->nl_el);
    b->dout = (double *)malloc(sizeof(double) * (size_t)in->no_el);
    b->dq = (double *)malloc(sizeof(double) * (size_t)in->nq_el);
    b->dk = (double *)malloc(sizeof(double) * (size_t)in->nk_el);
    b->dv = (double *)malloc(sizeof(double) * (size_t)in->nv_el);
    b->rdq = (double *)malloc(sizeof(double) * (size_t)in->nq_el);
    b->rdk = (double *)malloc(sizeof(double) * (size_t)in->nk_el);
    b->rdv = (double *)malloc(sizeof(double) * (size_t)in->nv_el);
    return (b->out && b->lse && b->dout && b->dq && b->dk && b->dv && b->rdq && b->rdk && b->rdv) ? 0 : -1;
}

/* library forward (f64) then backward; gradients into b->dq, dk, dv */
static int lib_fwd_bwd(const ringattn_config *cfg, const dinputs *in, bufs_bwd *b)
{
    const dconf *c = in->c;
    int st = lib_forward(cfg, in, b->out, b->lse);
    if (st == RINGATTN_OK) {
        ringattn_tensor Q = ringattn_tensor_bnhd(in->q, RINGATTN_F64, c->b, c->n, c->h, c->d);
        ringattn_tensor K = ringattn_tensor_bnhd(in->k, RINGATTN_F64, c->b, c->n, c->hk, c->d);
        ringattn_tensor V = ringattn_tensor_bnhd(in->v, RINGATTN_F64, c->b, c->n, c->hk, c->dv);
        ringattn_tensor O = ringattn_tensor_bnhd(b->out, RINGATTN_F64, c->b, c->n, c->h, c->dv);
        ringattn_tensor L = ringattn_tensor_lse(b->lse, RINGATTN_F64, c->b, c->h, c->n);
        ringattn_tensor dO = ringattn_tensor_bnhd(b->dout, RINGATTN_F64, c->b, c->n, c->h, c->dv);
        ringattn_tensor dQ = ringattn_tensor_bnhd(b->dq, RINGATTN_F64, c->b, c->n, c->h, c->d);
        ringattn_tensor dK = ringattn_tensor_bnhd(b->dk, RINGATTN_F64, c->b, c->n, c->hk, c->d);
        ringattn_tensor dV = ringattn_tensor_bnhd(b->dv, RINGATTN_F64, c->b, c->n, c->hk, c->dv);
        st = ringattn_backward(cfg, &Q, &K, &V, &O, &L, &dO, &dQ, &dK, &dV);
    }
    return st;
}

static void group_backward(tally *g, int *failures)
{
    static const int cfgs[] = { 0, 1, 2, 3, 6, 7 };
    static const int ps[3] = { 1, 3, 4 };
    int ic, causal, mix, ip;
    for (ic = 0; ic < (int)(sizeof cfgs / sizeof cfgs[0]); ic++)
        for (causal = 0; causal < 2; causal++)
            for (mix = 0; mix < 2; mix++) {
                const dconf *c = &CONFIGS[cfgs[ic]];
                ref_problem rp = make_ref(c, causal, mix);
                dinputs in;
                bufs_bwd b;
                int64_t qd[4], kd[4], vd[4];
                memset(&b, 0, sizeof b);
                qd[0] = kd[0] = vd[0] = c->b; qd[1] = kd[1] = vd[1] = c->n;
                qd[2] = c->h; kd[2] = vd[2] = c->hk; qd[3] = kd[3] = c->d; vd[3] = c->dv;
                if (inputs_make(&in, c, 31 + (uint64_t)ic, 0) != 0 || bwd_alloc(&b, &in) != 0) {
                    CHECK(0, "out of memory");
                } else {
                    fill_normal(b.dout, in.no_el, 999);
                    if (ref_backward(&rp, in.q, in.k, in.v, b.dout, b.rdq, b.rdk, b.rdv) != 0) CHECK(0, "oracle failed");
                    else for (ip = 0; ip < 3; ip++) {
                        ringattn_config cfg = make_cfg(c, ps[ip], causal, mix, RINGATTN_F64, 0);
                        int st, before = *failures;
                        test_cmp r[3];
                        char what[3][160];
                        fill_sentinel_f64(b.dq, in.nq_el); fill_sentinel_f64(b.dk, in.nk_el);
                        fill_sentinel_f64(b.dv, in.nv_el);
                        st = lib_fwd_bwd(&cfg, &in, &b);
                        g->cases++;
                        CHECK(st == RINGATTN_OK, "%s p=%d: backward status %d", c->name, ps[ip], st);
                        if (st != RINGATTN_OK) { g->failed++; continue; }
                        snprintf(what[0], sizeof what[0], "dq(%s p=%d c=%d %s)", c->name, ps[ip], causal, mix_name(mix));
                        snprintf(what[1], sizeof what[1], "dk(%s p=%d c=%d %s)", c->name, ps[ip], causal, mix_name(mix));
                        snprintf(what[2], sizeof what[2], "dv(%s p=%d c=%d %s)", c->name, ps[ip], causal, mix_name(mix));
                        /* 1e-12 relative to the gradient's own scale */
                        r[0] = compare_report(what[0], b.dq, b.rdq, qd, "bnhd", tol_f64_out(max_abs_f64(b.rdq, in.nq_el), 0));
                        r[1] = compare_report(what[1], b.dk, b.rdk, kd, "bnhd", tol_f64_out(max_abs_f64(b.rdk, in.nk_el), 0));
                        r[2] = compare_report(what[2], b.dv, b.rdv, vd, "bnhd", tol_f64_out(max_abs_f64(b.rdv, in.nv_el), 0));
                        CHECK(r[0].bad == 0 && r[1].bad == 0 && r[2].bad == 0,
                              "%s p=%d causal=%d mix=%s: gradient mismatches dq %lld dk %lld dv %lld", c->name,
                              ps[ip], causal, mix_name(mix), (long long)r[0].bad, (long long)r[1].bad,
                              (long long)r[2].bad);
                        tally_add(g, 0, r[0]); tally_add(g, 0, r[1]); tally_add(g, 0, r[2]);
                        if (*failures != before) g->failed++;
                    }
                }
                inputs_free(&in);
                bwd_free(&b);
            }
}

/* out at x[i] = keep + delta (library forward, f64) */
static int fd_out(const ringattn_config *cfg, const dinputs *in, double *x, double keep, double delta,
                  double *out)
{
    int st;
    x[0] = keep + delta;
    st = lib_forward(cfg, in, out, NULL);
    x[0] = keep;
    return st;
}

static void group_finite_diff(tally *g, double *worst_rel, int *failures)
{
    static const dconf tiny = { "tiny n16 h3 d4", 1, 16, 3, 3, 4, 4, 2, { 8, 4 }, { 2, 1 } };
    int causal, mix;
    for (causal = 0; causal < 2; causal++)
        for (mix = 0; mix < 2; mix++) {
            dinputs in;
            bufs_bwd b;
            double *o_m1 = NULL, *o_p2 = NULL, *o_m2 = NULL;
            memset(&b, 0, sizeof b);
            if (inputs_make(&in, &tiny, 55, 0) == 0) {
                o_m1 = (double *)malloc(sizeof(double) * (size_t)in.no_el);
                o_p2 = (double *)malloc(sizeof(double) * (size_t)in.no_el);
                o_m2 = (double *)malloc(sizeof(double) * (size_t)in.no_el);
            }
            if (!o_m1 || !o_p2 || !o_m2 || bwd_alloc(&b, &in) != 0) CHECK(0, "out of memory");
            else {
                ringattn_config cfg = make_cfg(&tiny, 3, causal, mix, RINGATTN_F64, 0);   /* chunks 6, 5, 5 */
                int st, which, before = *failures, bad = 0;
                fill_normal(b.dout, in.no_el, 77);
                st = lib_fwd_bwd(&cfg, &in, &b);
                CHECK(st == RINGATTN_OK, "finite diff: backward status %d", st);
                for (which = 0; which < 3 && st == RINGATTN_OK; which++) {
                    double *x = which == 0 ? in.q : which == 1 ? in.k : in.v;
                    const double *an = which == 0 ? b.dq : which == 1 ? b.dk : b.dv;
                    int64_t nel = which == 0 ? in.nq_el : which == 1 ? in.nk_el : in.nv_el, i;
                    for (i = 0; i < nel; i++) {
                        /* the fourth-order central stencil on d loss / dx, loss = sum(w o out):
                           truncation ~h^4, and the loss differences are summed element by
                           element, so every output the perturbation cannot reach cancels
                           exactly instead of adding rounding noise */
                        const double h = 1e-3;
                        double keep = x[i], fd = 0, den, rel;
                        int64_t e;
                        int s1 = fd_out(&cfg, &in, x + i, keep, h, b.out);
                        int s2 = fd_out(&cfg, &in, x + i, keep, -h, o_m1);
                        int s3 = fd_out(&cfg, &in, x + i, keep, 2 * h, o_p2);
                        int s4 = fd_out(&cfg, &in, x + i, keep, -2 * h, o_m2);
                        for (e = 0; e < in.no_el; e++)
                            fd += b.dout[e] * (8.0 * (b.out[e] - o_m1[e]) - (o_p2[e] - o_m2[e]));
                        fd /= 12.0 * h;
                        s1 |= s2 | s3 | s4;
                        den = fabs(fd) > fabs(an[i]) ? fabs(fd) : fabs(an[i]);
                        if (den < 1e-3) den = 1e-3;
                        rel = fabs(fd - an[i]) / den;
                        if (rel > *worst_rel) *worst_rel = rel;
                        if (s1 != 0 || !(rel <= 1e-7)) {
                            if (bad++ < 5)
                                printf("    fd mismatch d%c[%lld] causal=%d mix=%s: fd %.12g analytic %.12g rel %.3g\n",
                                       "qkv"[which], (long long)i, causal, mix_name(mix), fd, an[i], rel);
                        }
                    }
                }
                CHECK(bad == 0, "finite differences causal=%d mix=%s: %d elements off", causal, mix_name(mix), bad);
                g->cases++;
                if (*failures != before) g->failed++;
            }
            inputs_free(&in);
            bwd_free(&b);
            free(o_m1); free(o_p2); free(o_m2);
        }
}

/* ---------------------------------------------------------------- skipping and flops */

static int stats_run(int64_t n, int64_t h, int64_t d, int p, int G, const int64_t *seg, const int64_t *rate,
                     ringattn_stats *stats)
{
    size_t cnt = (size_t)(n * h * d);
    float *q = (float *)calloc(cnt, sizeof(float)), *k = (float *)calloc(cnt, sizeof(float));
    float *v = (float *)calloc(cnt, sizeof(float)), *o = (float *)calloc(cnt, sizeof(float));
    int st = -1000;
    if (q && k && v && o) {
        ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F32, 1, n, h, d);
        ringattn_tensor K = ringattn_tensor_bnhd(k, RINGATTN_F32, 1, n, h, d);
        ringattn_tensor V = ringattn_tensor_bnhd(v, RINGATTN_F32, 1, n, h, d);
        ringattn_tensor O = ringattn_tensor_bnhd(o, RINGATTN_F32, 1, n, h, d);
        ringattn_config cfg = ringattn_default_config();
        size_t i;
        test_rng r = rng_seed(5);
        for (i = 0; i < cnt; i++) { q[i] = (float)rng_normal(&r); k[i] = (float)rng_normal(&r); v[i] = (float)rng_normal(&r); }
        cfg.ring_size = p; cfg.num_groups = G; cfg.segment_lengths = seg; cfg.dilation_rates = rate;
        cfg.stats = stats;
        st = ringattn_forward(&cfg, &Q, &K, &V, &O, NULL);
    }
    free(q); free(k); free(v); free(o);
    return st;
}

static void group_skipping(tally *g, double *flops_ratio, double *analytic_ratio, int *failures)
{
    static const int64_t seg1[1] = { 256 }, rate1[1] = { 1 };
    static const int64_t seg2[2] = { 512, 1024 }, rate2[2] = { 1, 2 };
    ringattn_stats s1, s2, sd;
    int st, before = *failures, gi;
    const int64_t n = 4096, d = 16, h2 = 2;
    double analytic = 0;

    /* each member's queries share segments only with its own chunk: 8 of 64 blocks */
    st = stats_run(n, 1, d, 8, 1, seg1, rate1, &s1);
    CHECK(st == RINGATTN_OK, "skip run: status %d", st);
    if (st == RINGATTN_OK) {
        printf("  skip: n=4096 seg [256] rate [1] p=8: %lld blocks computed, %lld skipped, flops %.4g\n",
               (long long)s1.blocks_computed, (long long)s1.blocks_skipped, s1.flops);
        CHECK(s1.blocks_computed == 8 && s1.blocks_skipped == 56, "blocks computed %lld (want 8), skipped %lld (want 56)",
              (long long)s1.blocks_computed, (long long)s1.blocks_skipped);
        /* exactly the n/s diagonal segments: n * s pairs, 2 (d + dv) flops each */
        CHECK(s1.flops == 2.0 * (double)n * 256.0 * (double)(2 * d), "flops %.6g, want %.6g", s1.flops,
              2.0 * (double)n * 256.0 * (double)(2 * d));
    }
    g->cases++;

    /* [512, 1024] / [1, 2], one head per group, vs dense at the same n and p */
    st = stats_run(n, h2, d, 8, 2, seg2, rate2, &s2);
    CHECK(st == RINGATTN_OK, "dilated flops run: status %d", st);
    st = stats_run(n, h2, d, 8, 0, NULL, NULL, &sd);
    CHECK(st == RINGATTN_OK, "dense flops run: status %d", st);
    for (gi = 0; gi < 2; gi++)   /* heads in g * n * s_g / r_g^2, over h * n^2 */
        analytic += 1.0 * (double)n * (double)seg2[gi] / (double)(rate2[gi] * rate2[gi]);
    analytic /= (double)h2 * (double)n * (double)n;
    *analytic_ratio = analytic;
    if (*failures == before) {
        double ratio = s2.flops / sd.flops;
        *flops_ratio = ratio;
        printf("  flops: dilated [512,1024]/[1,2] %.4g vs dense %.4g: ratio %.5f, analytic %.5f "
               "(%.1f%% off); blocks %lld computed, %lld skipped\n", s2.flops, sd.flops, ratio, analytic,
               100.0 * fabs(ratio / analytic - 1.0), (long long)s2.blocks_computed, (long long)s2.blocks_skipped);
        CHECK(fabs(ratio / analytic - 1.0) <= 0.2, "flops ratio %.5f vs analytic %.5f: more than 20%% off", ratio, analytic);
        CHECK(ratio < 0.2, "dilated flops are not << dense (ratio %.3f)", ratio);
        /* group 1's 1024-segments span two chunks: each member computes its own chunk and its
           partner's, 16 of 64 blocks */
        CHECK(s2.blocks_computed == 16 && s2.blocks_skipped == 48, "blocks computed %lld (want 16), skipped %lld (want 48)",
              (long long)s2.blocks_computed, (long long)s2.blocks_skipped);
        CHECK(sd.blocks_computed == 64 && sd.blocks_skipped == 0, "dense: blocks %lld computed, %lld skipped",
              (long long)sd.blocks_computed, (long long)sd.blocks_skipped);
    }
    g->cases++;
    if (*failures != before) g->failed++;
}

/* ---------------------------------------------------------------- bad input */

/* one refused call: status, detail substring, outputs and stats untouched; also through
   ringattn_backward and ringattn_plan */
static void expect_refused(const char *label, ringattn_config cfg, int64_t nq, int64_t nk, int want,
                           const char *detail_has, tally *g, int *failures)
{
    const int64_t h = 2, d = 4;
    float *q = (float *)calloc((size_t)(nq * h * d), sizeof(float));
    float *k = (float *)calloc((size_t)(nk * h * d), sizeof(float));
    float *v = (float *)calloc((size_t)(nk * h * d), sizeof(float));
    float *o = (float *)malloc(sizeof(float) * (size_t)(nq * h * d));
    float *l = (float *)malloc(sizeof(float) * (size_t)(nq * h));
    float *dq = (float *)malloc(sizeof(float) * (size_t)(nq * h * d));
    float *dk = (float *)malloc(sizeof(float) * (size_t)(nk * h * d));
    float *dv = (float *)malloc(sizeof(float) * (size_t)(nk * h * d));
    char detail[256];
    ringattn_stats stats, stats0;
    int before = *failures;
    if (q && k && v && o && l && dq && dk && dv) {
        ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F32, 1, nq, h, d);
        ringattn_tensor K = ringattn_tensor_bnhd(k, RINGATTN_F32, 1, nk, h, d);
        ringattn_tensor V = ringattn_tensor_bnhd(v, RINGATTN_F32, 1, nk, h, d);
        ringattn_tensor O = ringattn_tensor_bnhd(o, RINGATTN_F32, 1, nq, h, d);
        ringattn_tensor L = ringattn_tensor_lse(l, RINGATTN_F32, 1, h, nq);
        ringattn_tensor dQ = ringattn_tensor_bnhd(dq, RINGATTN_F32, 1, nq, h, d);
        ringattn_tensor dK = ringattn_tensor_bnhd(dk, RINGATTN_F32, 1, nk, h, d);
        ringattn_tensor dV = ringattn_tensor_bnhd(dv, RINGATTN_F32, 1, nk, h, d);
        ringattn_shape shape;
        ringattn_plan_info plan;
        int st;
        memset(&stats0, 0xA5, sizeof stats0);
        stats = stats0;
        cfg.stats = &stats;
        cfg.error_detail = detail; cfg.error_detail_size = sizeof detail;
        detail[0] = '\0';
        fill_sentinel_f32(o, nq * h * d); fill_sentinel_f32(l, nq * h);
        fill_sentinel_f32(dq, nq * h * d); fill_sentinel_f32(dk, nk * h * d); fill_sentinel_f32(dv, nk * h * d);
        st = ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
        CHECK(st == want, "%s: forward returned %d (%s), want %d", label, st, ringattn_strerror(st), want);
        CHECK(strstr(detail, detail_has) != NULL, "%s: error detail \"%s\" does not contain \"%s\"", label,
              detail, detail_has);
        CHECK(all_sentinel_f32(o, nq * h * d) && all_sentinel_f32(l, nq * h), "%s: forward wrote its outputs", label);
        CHECK(memcmp(&stats, &stats0, sizeof stats) == 0, "%s: stats written on error", label);
        printf("  refused %-34s %3d %-14s \"%s\"\n", label, st,
               st == RINGATTN_ENULL ? "(ENULL)" : st == RINGATTN_ESEGMENT ? "(ESEGMENT)" :
               st == RINGATTN_EUNSUPPORTED ? "(EUNSUPPORTED)" : "(?)", detail);
        /* the backward refuses the same call (o and l as inputs hold sentinels: never read) */
        detail[0] = '\0';
        st = ringattn_backward(&cfg, &Q, &K, &V, &O, &L, &Q /* dout: same shape, d == dv */, &dQ, &dK, &dV);
        CHECK(st == want, "%s: backward returned %d, want %d", label, st, want);
        CHECK(all_sentinel_f32(dq, nq * h * d) && all_sentinel_f32(dk, nk * h * d) && all_sentinel_f32(dv, nk * h * d),
              "%s: backward wrote its outputs", label);
        shape.batch = 1; shape.seq_q = nq; shape.seq_k = nk; shape.heads_q = shape.heads_kv = h;
        shape.dim_qk = shape.dim_v = d;
        st = ringattn_plan(&cfg, &shape, 0, &plan);
        CHECK(st == want, "%s: ringattn_plan returned %d, want %d", label, st, want);
    } else CHECK(0, "out of memory");
    g->cases++;
    if (*failures != before) g->failed++;
    free(q); free(k); free(v); free(o); free(l); free(dq); free(dk); free(dv);
}

static void group_bad_input(tally *g, int *failures)
{
    static const int64_t seg_ok[2] = { 8, 16 }, rate_ok[2] = { 1, 2 };
    static const int64_t seg_zero[2] = { 8, 0 }, seg_neg[2] = { 8, -16 }, seg_24[2] = { 8, 24 };
    static const int64_t rate_zero[2] = { 1, 0 }, rate_neg[2] = { -1, 2 };
    ringattn_config base = ringattn_default_config(), c;
    base.num_groups = 2; base.segment_lengths = seg_ok; base.dilation_rates = rate_ok; base.ring_size = 2;

    c = base; c.segment_lengths = NULL;
    expect_refused("segment_lengths NULL", c, 64, 64, RINGATTN_ENULL, "segment_lengths", g, failures);
    c = base; c.dilation_rates = NULL;
    expect_refused("dilation_rates NULL", c, 64, 64, RINGATTN_ENULL, "dilation_rates", g, failures);
    c = base; c.segment_lengths = seg_zero;
    expect_refused("segment_lengths[1] = 0", c, 64, 64, RINGATTN_ESEGMENT, "segment_lengths[1]", g, failures);
    c = base; c.segment_lengths = seg_neg;
    expect_refused("segment_lengths[1] = -16", c, 64, 64, RINGATTN_ESEGMENT, "segment_lengths[1]", g, failures);
    c = base; c.dilation_rates = rate_zero;
    expect_refused("dilation_rates[1] = 0", c, 64, 64, RINGATTN_ESEGMENT, "dilation_rates[1]", g, failures);
    c = base; c.dilation_rates = rate_neg;
    expect_refused("dilation_rates[0] = -1", c, 64, 64, RINGATTN_ESEGMENT, "dilation_rates[0]", g, failures);
    c = base; c.segment_lengths = seg_24;
    expect_refused("n = 64 not a multiple of 24", c, 64, 64, RINGATTN_ESEGMENT, "segment_lengths[1]", g, failures);
    c = base;
    expect_refused("nq = 64 != nk = 32", c, 64, 32, RINGATTN_ESEGMENT, "nq == nk", g, failures);
    c = base; c.window_left = 4;
    expect_refused("window_left + dilation", c, 64, 64, RINGATTN_EUNSUPPORTED, "window", g, failures);
    c = base; c.window_right = 0; c.causal = 1;
    expect_refused("window_right + dilation", c, 64, 64, RINGATTN_EUNSUPPORTED, "window", g, failures);
}

/* ---------------------------------------------------------------- NaN isolation */

static int rows_equal(const double *a, const double *b, int64_t n)
{
    return memcmp(a, b, sizeof(double) * (size_t)n) == 0;
}

/* NaN in q, k and v of (batch 0, head hh, position j): rows of head hh that cannot see key j
   keep their clean bits; rows that do see it must turn NaN (the plant is real) */
static void nan_case(const dconf *c, int p, int causal, int mix, ringattn_dtype ct, int64_t hh, int64_t j,
                     tally *g, int *failures)
{
    dinputs in;
    double *o0 = NULL, *l0 = NULL, *o1 = NULL, *l1 = NULL;
    int before = *failures;
    if (inputs_make(&in, c, 404, ct == RINGATTN_F32) != 0) { CHECK(0, "out of memory"); inputs_free(&in); return; }
    o0 = (double *)malloc(sizeof(double) * (size_t)in.no_el); o1 = (double *)malloc(sizeof(double) * (size_t)in.no_el);
    l0 = (double *)malloc(sizeof(double) * (size_t)in.nl_el); l1 = (double *)malloc(sizeof(double) * (size_t)in.nl_el);
    if (o0 && o1 && l0 && l1) {
        ringattn_config cfg = make_cfg(c, p, causal, mix, ct, 0);
        int64_t kh = hh / (c->h / c->hk), i, x, hidden = 0, seen = 0, bad_hidden = 0, bad_seen = 0;
        int s0 = lib_forward(&cfg, &in, o0, l0), s1;
        for (x = 0; x < c->d; x++) {
            in.q[(j * c->h + hh) * c->d + x] = NAN;
            in.k[(j * c->hk + kh) * c->d + x] = NAN;
        }
        for (x = 0; x < c->dv; x++) in.v[(j * c->hk + kh) * c->dv + x] = NAN;
        s1 = lib_forward(&cfg, &in, o1, l1);
        CHECK(s0 == 0 && s1 == 0, "NaN case: status %d %d", s0, s1);
        for (i = 0; i < c->n && s0 == 0 && s1 == 0; i++) {
            const double *r0 = o0 + (i * c->h + hh) * c->dv, *r1 = o1 + (i * c->h + hh) * c->dv;
            /* row j's own query is NaN: it is hidden only if it sees no key at all */
            int row_sees_any = 0, row_sees_j = sees(c, mix, causal, hh, i, j);
            for (x = 0; x < c->n; x++) row_sees_any |= sees(c, mix, causal, hh, i, x);
            if (i == j ? !row_sees_any : !row_sees_j) {
                hidden++;
                if (!rows_equal(r0, r1, c->dv) || !rows_equal(l0 + hh * c->n + i, l1 + hh * c->n + i, 1)) {
                    if (bad_hidden++ < 3)
                        printf("    NaN leak %s p=%d c=%d %s %s: head %lld key %lld reached row %lld (out %g, was %g)\n",
                               c->name, p, causal, mix_name(mix), dt_name(ct), (long long)hh, (long long)j,
                               (long long)i, r1[0], r0[0]);
                }
            } else {
                seen++;
                if (!(r1[0] != r1[0])) bad_seen++;
            }
        }
        /* other heads never touch the planted head's q (and, without GQA, its k and v) */
        for (i = 0; i < c->n && c->hk == c->h; i++)
            for (x = 0; x < c->h; x++)
                if (x != hh && !rows_equal(o0 + (i * c->h + x) * c->dv, o1 + (i * c->h + x) * c->dv, c->dv))
                    bad_hidden++;
        CHECK(bad_hidden == 0, "%s p=%d causal=%d mix=%s %s: NaN at (head %lld, pos %lld) changed %lld hidden rows",
              c->name, p, causal, mix_name(mix), dt_name(ct), (long long)hh, (long long)j, (long long)bad_hidden);
        CHECK(bad_seen == 0, "%s: %lld rows that see the NaN stayed finite", c->name, (long long)bad_seen);
        CHECK(hidden > 0, "%s: NaN case has no hidden row (%lld seeing)", c->name, (long long)seen);
    } else CHECK(0, "out of memory");
    g->cases++;
    if (*failures != before) g->failed++;
    inputs_free(&in);
    free(o0); free(o1); free(l0); free(l1);
}

static void group_nan(tally *g, int *failures)
{
    static const int ps[3] = { 1, 3, 4 };
    int ip, causal, mix, idt;
    for (ip = 0; ip < 3; ip++)
        for (causal = 0; causal < 2; causal++)
            for (mix = 0; mix < 2; mix++)
                for (idt = 0; idt < 2; idt++) {
                    ringattn_dtype ct = idt ? RINGATTN_F32 : RINGATTN_F64;
                    /* config 0 (h3 [8,16,32]/[1,2,4]), head 2 = group 2 (s 32, r 4, offset 2):
                       position 34 is in its pattern in segment 1, so every row of segment 0
                       and every row off the pattern is blind to it; under LSE the rate-1 and
                       rate-2 patterns let more rows of [32, 48) see it */
                    nan_case(&CONFIGS[0], ps[ip], causal, mix, ct, 2, 34, g, failures);
                    /* config 1 (h4 [4,8]/[2,3]), head 3 = group 1 (s 8, r 3, offset 1):
                       12 is on the pattern (8 + 1 + 3), 13 is off it (under LSE, 13 is on the
                       rate-2 pattern of offset 3 mod 2 = 1) */
                    nan_case(&CONFIGS[1], ps[ip], causal, mix, ct, 3, 12, g, failures);
                    nan_case(&CONFIGS[1], ps[ip], causal, mix, ct, 3, 13, g, failures);
                    /* head 0, position 5: on no pattern of head 0 under either mix (5 mod 4 = 1
                       is off rate 2 offset 0; 5 mod 8 = 5 is off rate 3 offset 0): no row sees
                       it, and row 5 itself outputs 0 without reading its NaN query */
                    nan_case(&CONFIGS[1], ps[ip], causal, mix, ct, 0, 5, g, failures);
                }
}

/* ---------------------------------------------------------------- main */

int main(void)
{
    int nfail = 0, *failures = &nfail, before;
    tally total, fwd, ring, det, bwd, fdg, skip, bad, nan;
    double fd_worst = 0, ratio = 0, analytic = 0;
    memset(&total, 0, sizeof total);
    memset(&fwd, 0, sizeof fwd); memset(&ring, 0, sizeof ring); memset(&det, 0, sizeof det);
    memset(&bwd, 0, sizeof bwd); memset(&fdg, 0, sizeof fdg); memset(&skip, 0, sizeof skip);
    memset(&bad, 0, sizeof bad); memset(&nan, 0, sizeof nan);

    before = nfail; group_forward(&fwd, &ring, failures);
    if (nfail != before && fwd.failed == 0) fwd.failed = 1;
    print_group("forward", &fwd);
    print_group("ring == p=1", &ring);
    before = nfail; group_determinism(&det, failures);
    if (nfail != before && det.failed == 0) det.failed = 1;
    print_group("determinism", &det);
    before = nfail; group_backward(&bwd, failures);
    if (nfail != before && bwd.failed == 0) bwd.failed = 1;
    print_group("backward", &bwd);
    before = nfail; group_finite_diff(&fdg, &fd_worst, failures);
    if (nfail != before && fdg.failed == 0) fdg.failed = 1;
    printf("%-14s %4d cases, %d failed | worst rel err %.3e (limit 1e-7)\n", "finite diff", fdg.cases,
           fdg.failed, fd_worst);
    before = nfail; group_skipping(&skip, &ratio, &analytic, failures);
    if (nfail != before && skip.failed == 0) skip.failed = 1;
    printf("%-14s %4d cases, %d failed | dilated/dense flops %.5f, analytic %.5f\n", "skipping", skip.cases,
           skip.failed, ratio, analytic);
    before = nfail; group_bad_input(&bad, failures);
    if (nfail != before && bad.failed == 0) bad.failed = 1;
    printf("%-14s %4d cases, %d failed\n", "bad input", bad.cases, bad.failed);
    before = nfail; group_nan(&nan, failures);
    if (nfail != before && nan.failed == 0) nan.failed = 1;
    printf("%-14s %4d cases, %d failed\n", "NaN isolation", nan.cases, nan.failed);

    tally_merge(&total, &fwd); tally_merge(&total, &ring); tally_merge(&total, &det);
    tally_merge(&total, &bwd); tally_merge(&total, &fdg); tally_merge(&total, &skip);
    tally_merge(&total, &bad); tally_merge(&total, &nan);
    printf("worst forward f64: %.3e abs (%.4f of tol); f32: %.3e abs (%.4f of tol)\n",
           fwd.f64_abs, fwd.f64_frac, fwd.f32_abs, fwd.f32_frac);
    printf("worst ring vs p=1 (f64): %.3e abs (%.4f of tol); backward f64: %.3e abs (%.4f of tol); "
           "finite diff rel %.3e\n", ring.f64_abs, ring.f64_frac, bwd.f64_abs, bwd.f64_frac, fd_worst);
    printf("test_dilated: %s (%d cases, %d failed checks)\n", nfail ? "FAIL" : "ok", total.cases, nfail);
    return nfail ? TEST_FAIL : TEST_PASS;
}
