/* test_options.c - the score options (ringattn_config: sinks, alibi_slopes, bias, mask,
   mask_fn, mask_block_fn, document ids, max_logit; dsinks and dbias in the backward) against
   the naive f64 oracle (ref_forward_ex / ref_backward_ex), which materialises the score
   matrix and applies each option literally.

   Tolerances: the policy of docs/golden.md (test_util.h), with the score bound smax grown by
   what the options add to a score (max |bias| + max |slope| * max(nq, nk) + max |sink|):
     f64 compute: out 1e-12 * max(max|ref|, max|V|); lse and max_logit 1e-12 * max(1, max|ref|);
                  dq / dk / dv 1e-12 * max(1, max|ref|); dsinks[h] 1e-12 * max(1, sum over its
                  rows of |exp(sink - lse) D|); dbias 1e-12 * max(1, max|ref|) * (the number of
                  (batch, head) pairs summed into one entry).
     f32 compute: out vmax u (2 d smax + nk + 16); lse and max_logit u (2 d smax + nk + 16) +
                  u |ref|; gradients the same with max(1, max|ref|) for vmax and nq + nk for nk
                  (test_backward.c's policy), dsinks and dbias scaled as in f64; f16 / bf16
                  storage adds its one final rounding, u_storage |ref|, and in the backward,
                  which reads out and dout as stored, 8 u_storage of the gradient's scale.

   Groups (one line each; exit 1 on any failure):
     1. every option alone, then all of them at once, x {causal bottom-right, top-left with
        nq > nk, bottom-right with nq < nk, a window, softcap, GQA, varlen} x {contiguous,
        zigzag, striped} x ring sizes 1..4, forward and backward in f64 against the oracle;
        each ring size > 1 equal to ring size 1 within the same tolerance.
     2. the same options in f32 compute (f32 storage), and f16 / bf16 storage; bias stored in
        f64, f32, f16 and bf16.
     3. rows that see nothing under a mask: out exactly 0, lse -inf (sinks[h] with sinks),
        max_logit -inf, dq 0, no NaN anywhere.
     4. a document mask whose documents lie inside the members' chunks: fully masked ring
        steps are skipped (stats.blocks_skipped > 0) and the result is still the oracle's.
     5. dq, dk, dv, dsinks and dbias against central finite differences of ringattn_forward
        (f64, steps 1e-4 and 5e-5, Richardson-extrapolated) with every option on; a backward with sinks but dsinks NULL gives the
        same dq.
     6. num_threads 1 and 2 give bit-identical outputs and gradients with every option on.
     7. bad input: dsinks without sinks, dbias without bias, a wrong alibi_size, a bias or mask
        shape that does not broadcast, a mask not of dtype BOOL, a bias of dtype BOOL,
        document ids on one side only, a max_logit or dbias of the wrong shape, each option
        with dilated attention, a mask_block_fn that asks to stop (RINGATTN_ECALLBACK): a
        negative status, error_detail set, every output untouched.
   The summary gives the worst error per option: f64 as a relative error (of the scale each
   tolerance names), f32 as a fraction of the policy.

   Build by hand:
     gcc -std=c99 -O1 -fopenmp -I. -Ireference -Itests tests/test_options.c \
         reference/ringattn_ref.c -lm */
#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"
#include "ringattn_ref.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- the options of one case */

enum {
    O_SINKS = 1, O_ALIBI = 2, O_ALIBI_BH = 4, O_BIAS = 8, O_MASK = 16, O_MASK_FN = 32,
    O_MASK_BLOCK = 64, O_DOCS = 128, O_MAX_LOGIT = 256
};

typedef struct {
    const char *name;
    int64_t b, nq, nk, h, hk, d, dv;
    int causal, wl, wr, p, threads;
    ringattn_partition part;
    double softcap;
    int nseq;
    const int64_t *cuq, *cuk;
    ringattn_dtype storage, compute, bias_dtype;
    unsigned opts;
    int64_t bias_b, bias_h, mask_b, mask_h;   /* their shapes, when O_BIAS / O_MASK */
    double mask_density;                      /* fraction of true entries in the mask tensor */
    int ndocs;                                /* O_DOCS: documents of equal length            */
    uint64_t seed;
} ocase;

/* mask_fn and mask_block_fn: one predicate, deterministic, different per batch and head */
typedef struct { uint64_t salt; int abort_call; } mask_user;

static int mask_pred(const mask_user *u, int64_t b, int64_t h, int64_t i, int64_t j)
{
    test_rng r = rng_seed(u->salt ^ ((uint64_t)b * 1000003u) ^ ((uint64_t)h * 7919u) ^
                          ((uint64_t)i << 20) ^ ((uint64_t)j << 40));
    if (h % 2 == 1 && (i + j) % 5 == 0) return 0;
    return rng_next(&r) % 8 != 0;
}

static int cb_mask_fn(void *user, int64_t b, int64_t h, int64_t i, int64_t j)
{
    return mask_pred((const mask_user *)user, b, h, i, j);
}

static int cb_mask_block(void *user, int64_t b, int64_t h, const int64_t *qp, int64_t nr,
                         const int64_t *kp, int64_t nc, unsigned char *visible)
{
    const mask_user *u = (const mask_user *)user;
    int64_t r, c;
    if (u->abort_call) return 1;
    for (r = 0; r < nr; r++)
        for (c = 0; c < nc; c++) visible[r * nc + c] = (unsigned char)mask_pred(u, b, h, qp[r], kp[c]);
    return 0;
}

/* mask_fn and mask_block_fn both given: the oracle sees their AND */
static int cb_mask_both(void *user, int64_t b, int64_t h, int64_t i, int64_t j)
{
    const mask_user *u = (const mask_user *)user;
    mask_user u2 = *u;
    u2.salt = u->salt + 1;
    return mask_pred(u, b, h, i, j) && mask_pred(&u2, b, h, i, j);
}

static int cb_mask_block_salt1(void *user, int64_t b, int64_t h, const int64_t *qp, int64_t nr,
                               const int64_t *kp, int64_t nc, unsigned char *visible)
{
    mask_user u2 = *(const mask_user *)user;
    u2.salt += 1;
    return cb_mask_block(&u2, b, h, qp, nr, kp, nc, visible);
}

/* ---------------------------------------------------------------- storage helpers */

static double storage_u(ringattn_dtype t)
{
    return t == RINGATTN_F16 ? 1.0 / 2048 : t == RINGATTN_BF16 ? 1.0 / 256 : t == RINGATTN_F32 ? TEST_U32 : 0.0;
}

/* ---------------------------------------------------------------- inputs and the oracle */

typedef struct {
    int64_t nq_, nk_, nv_, nqv, nl, nb, nm;   /* element counts                      */
    double *q, *k, *v, *g;                    /* logical inputs (on the storage grid) */
    double sinks[16], slopes[64];
    double *bias;                             /* on the bias dtype's grid             */
    unsigned char *mask;
    int64_t *docq, *dock;
    mask_user mu;
    ref_problem rp;
    /* the oracle's results */
    double *ro, *rl, *rml, *rdq, *rdk, *rdv, rds[16], *rdb;
    double smax;                              /* the f32 policy's score bound         */
} odata;

typedef struct {   /* what ringattn returned, as logical f64 */
    double *out, *lse, *ml, *dq, *dk, *dv, ds[16], *db;
    ringattn_stats stats;
    int st_fwd, st_bwd;
} ores;

static void data_free(odata *D)
{
    free(D->q); free(D->k); free(D->v); free(D->g); free(D->bias); free(D->mask);
    free(D->docq); free(D->dock); free(D->ro); free(D->rl); free(D->rml);
    free(D->rdq); free(D->rdk); free(D->rdv); free(D->rdb);
}

static void res_free(ores *R)
{
    free(R->out); free(R->lse); free(R->ml); free(R->dq); free(R->dk); free(R->dv); free(R->db);
}

static double *dalloc(int64_t n) { return (double *)calloc((size_t)(n > 0 ? n : 1), sizeof(double)); }

/* inputs of case c, rounded to their storage, and the oracle's answers; 0 on success */
static int data_new(const ocase *c, odata *D)
{
    int64_t i, j, hh;
    test_rng r = rng_seed(c->seed * 7919u + 17u);
    memset(D, 0, sizeof *D);
    D->nq_ = c->b * c->nq * c->h * c->d; D->nk_ = c->b * c->nk * c->hk * c->d;
    D->nv_ = c->b * c->nk * c->hk * c->dv; D->nqv = c->b * c->nq * c->h * c->dv;
    D->nl = c->b * c->h * c->nq;
    D->nb = (c->opts & O_BIAS) ? c->bias_b * c->bias_h * c->nq * c->nk : 0;
    D->nm = (c->opts & O_MASK) ? c->mask_b * c->mask_h * c->nq * c->nk : 0;
    D->q = dalloc(D->nq_); D->k = dalloc(D->nk_); D->v = dalloc(D->nv_); D->g = dalloc(D->nqv);
    D->bias = dalloc(D->nb);
    D->mask = (unsigned char *)calloc((size_t)(D->nm > 0 ? D->nm : 1), 1);
    D->docq = (int64_t *)calloc((size_t)c->nq, sizeof(int64_t));
    D->dock = (int64_t *)calloc((size_t)c->nk, sizeof(int64_t));
    D->ro = dalloc(D->nqv); D->rl = dalloc(D->nl); D->rml = dalloc(D->nl);
    D->rdq = dalloc(D->nq_); D->rdk = dalloc(D->nk_); D->rdv = dalloc(D->nv_); D->rdb = dalloc(D->nb);
    for (i = 0; i < D->nq_; i++) D->q[i] = 1.5 * rng_normal(&r);
    for (i = 0; i < D->nk_; i++) D->k[i] = 1.5 * rng_normal(&r);
    for (i = 0; i < D->nv_; i++) D->v[i] = rng_normal(&r);
    for (i = 0; i < D->nqv; i++) D->g[i] = rng_normal(&r);
    round_all(D->q, D->nq_, c->storage); round_all(D->k, D->nk_, c->storage);
    round_all(D->v, D->nv_, c->storage); round_all(D->g, D->nqv, c->storage);
    for (hh = 0; hh < c->h; hh++) D->sinks[hh] = 1.5 * rng_normal(&r);
    /* ALiBi's geometric slopes 2^(-8 (h+1) / H), per batch scaled a little differently */
    for (i = 0; i < ((c->opts & O_ALIBI_BH) ? c->b : 1); i++)
        for (hh = 0; hh < c->h; hh++)
            D->slopes[i * c->h + hh] = pow(2.0, -8.0 * (double)(hh + 1) / (double)c->h) * (1.0 + 0.25 * (double)i);
    for (i = 0; i < D->nb; i++) D->bias[i] = rng_normal(&r);
    round_all(D->bias, D->nb, c->bias_dtype);
    for (i = 0; i < D->nm; i++) D->mask[i] = (unsigned char)(rng_uniform(&r) < c->mask_density);
    for (i = 0; i < c->nq; i++) D->docq[i] = c->ndocs > 0 ? (i * c->ndocs) / c->nq : 0;
    for (j = 0; j < c->nk; j++) D->dock[j] = c->ndocs > 0 ? (j * c->ndocs) / c->nk : 0;
    D->mu.salt = c->seed;

    memset(&D->rp, 0, sizeof D->rp);
    D->rp.b = c->b; D->rp.nq = c->nq; D->rp.nk = c->nk; D->rp.h = c->h; D->rp.hk = c->hk;
    D->rp.d = c->d; D->rp.dv = c->dv; D->rp.scale = 1.0 / sqrt((double)c->d);
    D->rp.causal = c->causal; D->rp.window_left = c->wl; D->rp.window_right = c->wr;
    D->rp.num_seqs = c->nseq; D->rp.cu_seqlens_q = c->cuq; D->rp.cu_seqlens_k = c->cuk;
    D->rp.softcap = c->softcap;
    if (c->opts & O_SINKS) D->rp.sinks = D->sinks;
    if (c->opts & (O_ALIBI | O_ALIBI_BH)) {
        D->rp.alibi_slopes = D->slopes;
        D->rp.alibi_size = (int)((c->opts & O_ALIBI_BH) ? c->b * c->h : c->h);
    }
    if (c->opts & O_BIAS) { D->rp.bias = D->bias; D->rp.bias_b = c->bias_b; D->rp.bias_h = c->bias_h; }
    if (c->opts & O_MASK) { D->rp.mask = D->mask; D->rp.mask_b = c->mask_b; D->rp.mask_h = c->mask_h; }
    if ((c->opts & O_MASK_FN) && (c->opts & O_MASK_BLOCK)) D->rp.mask_fn = cb_mask_both;
    else if (c->opts & (O_MASK_FN | O_MASK_BLOCK)) D->rp.mask_fn = cb_mask_fn;
    D->rp.mask_user = &D->mu;
    if (c->opts & O_DOCS) { D->rp.document_ids_q = D->docq; D->rp.document_ids_k = D->dock; }

    if (ref_forward_ex(&D->rp, D->q, D->k, D->v, D->ro, D->rl, D->rml) != 0) return -1;
    if (ref_backward_ex(&D->rp, D->q, D->k, D->v, D->g, D->rdq, D->rdk, D->rdv,
                        (c->opts & O_SINKS) ? D->rds : NULL, (c->opts & O_BIAS) ? D->rdb : NULL) != 0) return -1;
    {   /* the f32 policy's score bound, grown by what the options add */
        double extra = 0, m = 0;
        D->smax = tol_smax(D->q, D->k, c->b, c->nq, c->nk, c->h, c->hk, c->d, D->rp.scale);
        if (c->opts & O_BIAS) extra += max_abs_f64(D->bias, D->nb);
        if (c->opts & (O_ALIBI | O_ALIBI_BH))
            extra += max_abs_f64(D->slopes, D->rp.alibi_size) * (double)(c->nq > c->nk ? c->nq : c->nk);
        if (c->opts & O_SINKS) { m = max_abs_f64(D->sinks, c->h); extra += m; }
        D->smax += extra;
    }
    return 0;
}

/* ringattn_forward then (backward) ringattn_backward on case c; results as f64 in R */
static void lib_run(const ocase *c, odata *D, ores *R, int backward, int threads, int p)
{
    tbuf Q, K, V, O, L, ML, G, DQ, DK, DV, BI, DB, MK;
    ringattn_config cfg = ringattn_default_config();
    ringattn_dtype ld = c->compute == RINGATTN_F64 ? RINGATTN_F64 : RINGATTN_F32;
    char err[256] = "";
    memset(R, 0, sizeof *R);
    tb_new(&Q, c->storage, c->b, c->nq, c->h, c->d); tb_write(&Q, D->q);
    tb_new(&K, c->storage, c->b, c->nk, c->hk, c->d); tb_write(&K, D->k);
    tb_new(&V, c->storage, c->b, c->nk, c->hk, c->dv); tb_write(&V, D->v);
    tb_new(&G, c->storage, c->b, c->nq, c->h, c->dv); tb_write(&G, D->g);
    tb_new(&O, c->storage, c->b, c->nq, c->h, c->dv);
    tb_new(&L, ld, c->b, c->h, c->nq, 1); tb_new(&ML, ld, c->b, c->h, c->nq, 1);
    tb_new(&DQ, c->storage, c->b, c->nq, c->h, c->d);
    tb_new(&DK, c->storage, c->b, c->nk, c->hk, c->d);
    tb_new(&DV, c->storage, c->b, c->nk, c->hk, c->dv);
    tb_new(&BI, c->bias_dtype, D->nb ? c->bias_b : 1, D->nb ? c->bias_h : 1, D->nb ? c->nq : 1, D->nb ? c->nk : 1);
    tb_new(&DB, ld, D->nb ? c->bias_b : 1, D->nb ? c->bias_h : 1, D->nb ? c->nq : 1, D->nb ? c->nk : 1);
    tb_new(&MK, RINGATTN_BOOL, D->nm ? c->mask_b : 1, D->nm ? c->mask_h : 1, D->nm ? c->nq : 1, D->nm ? c->nk : 1);
    if (D->nb) tb_write(&BI, D->bias);
    if (D->nm) memcpy(MK.data, D->mask, (size_t)D->nm);
    cfg.causal = c->causal; cfg.window_left = c->wl; cfg.window_right = c->wr;
    cfg.ring_size = p; cfg.num_threads = threads; cfg.partition = c->part; cfg.compute = c->compute;
    cfg.softcap = c->softcap; cfg.num_seqs = c->nseq; cfg.cu_seqlens_q = c->cuq; cfg.cu_seqlens_k = c->cuk;
    cfg.error_detail = err; cfg.error_detail_size = sizeof err; cfg.stats = &R->stats;
    if (c->opts & O_SINKS) { cfg.sinks = D->sinks; cfg.dsinks = R->ds; }
    if (c->opts & (O_ALIBI | O_ALIBI_BH)) { cfg.alibi_slopes = D->slopes; cfg.alibi_size = D->rp.alibi_size; }
    if (c->opts & O_BIAS) { cfg.bias = &BI.t; cfg.dbias = &DB.t; }
    if (c->opts & O_MASK) cfg.mask = &MK.t;
    if (c->opts & O_MASK_FN) cfg.mask_fn = cb_mask_fn;
    if (c->opts & O_MASK_BLOCK) cfg.mask_block_fn = (c->opts & O_MASK_FN) ? cb_mask_block_salt1 : cb_mask_block;
    cfg.mask_user = &D->mu;
    if (c->opts & O_DOCS) { cfg.document_ids_q = D->docq; cfg.document_ids_k = D->dock; }
    if (c->opts != 0) cfg.max_logit = &ML.t;   /* "none" is the plain call, no option at all */
    R->out = dalloc(D->nqv); R->lse = dalloc(D->nl); R->ml = dalloc(D->nl);
    R->dq = dalloc(D->nq_); R->dk = dalloc(D->nk_); R->dv = dalloc(D->nv_); R->db = dalloc(D->nb);
    R->st_fwd = ringattn_forward(&cfg, &Q.t, &K.t, &V.t, &O.t, &L.t);
    if (R->st_fwd != 0) printf("    %s p=%d: forward: %s (%s)\n", c->name, p, ringattn_strerror(R->st_fwd), err);
    tb_read(&O, R->out); tb_read(&L, R->lse); tb_read(&ML, R->ml);
    if (backward && R->st_fwd == 0) {
        cfg.max_logit = NULL;
        R->st_bwd = ringattn_backward(&cfg, &Q.t, &K.t, &V.t, &O.t, &L.t, &G.t, &DQ.t, &DK.t, &DV.t);
        if (R->st_bwd != 0) printf("    %s p=%d: backward: %s (%s)\n", c->name, p, ringattn_strerror(R->st_bwd), err);
        tb_read(&DQ, R->dq); tb_read(&DK, R->dk); tb_read(&DV, R->dv);
        if (D->nb) tb_read(&DB, R->db);
    }
    tb_free(&Q); tb_free(&K); tb_free(&V); tb_free(&G); tb_free(&O); tb_free(&L); tb_free(&ML);
    tb_free(&DQ); tb_free(&DK); tb_free(&DV); tb_free(&BI); tb_free(&DB); tb_free(&MK);
}

/* ---------------------------------------------------------------- comparison */

/* worst error of a group, as a fraction of its tolerance: [0] f64, [1] f32 storage, [2] f16 / bf16 */
typedef struct {
    double fwd[3], bwd[3];
    int cases, failed;
} tally;

static void tally_fold(tally *t, int cls, int fwd, double frac)
{
    double *x = fwd ? &t->fwd[cls] : &t->bwd[cls];
    if (frac > *x || frac != frac) *x = frac;
}

/* the number of (batch, head) pairs summed into one dbias entry */
static double bias_fold(const ocase *c)
{
    return (double)(c->b / c->bias_b) * (double)(c->h / c->bias_h);
}

/* got vs the oracle (or, with `ref` results given, vs ring size 1) under the policy */
static int compare(const ocase *c, const odata *D, const ores *R, const ores *base, int backward,
                   tally *t, int p)
{
    int f32 = c->compute != RINGATTN_F64, bad = 0, a;
    int cls = !f32 ? 0 : (c->storage == RINGATTN_F16 || c->storage == RINGATTN_BF16) ? 2 : 1;
    double vmax = max_abs_f64(D->v, D->nv_), us = c->compute == RINGATTN_F64 ? 0 : storage_u(c->storage);
    double w = 2.0 * (double)c->d * D->smax;
    int64_t dims[4];
    test_tol tol; test_cmp r;
    const double *ro = base ? base->out : D->ro, *rl = base ? base->lse : D->rl, *rml = base ? base->ml : D->rml;
    char what[160];
    if (c->storage == RINGATTN_F32) us = 0;   /* f32 compute stores f32: no extra rounding */
    /* out */
    dims[0] = c->b; dims[1] = c->nq; dims[2] = c->h; dims[3] = c->dv;
    if (!f32) tol = tol_f64_out(max_abs_f64(D->ro, D->nqv), vmax);
    else { tol = tol_f32_out(D->smax, vmax, c->d, c->nk); tol.rel = us; }
    snprintf(what, sizeof what, "%s p=%d out", c->name, p);
    r = compare_report(what, R->out, ro, dims, "bnhd", tol);
    tally_fold(t, cls, 1, r.max_frac); bad += r.bad > 0;
    /* lse, max_logit */
    dims[0] = c->b; dims[1] = c->h; dims[2] = c->nq; dims[3] = 1;
    for (a = 0; a < (c->opts != 0 ? 2 : 1); a++) {   /* max_logit is asked for with any option */
        const double *ref = a ? D->rml : D->rl;
        if (!f32) tol = tol_f64_lse(max_abs_finite_f64(ref, D->nl));
        else tol = tol_f32_lse(D->smax, c->d, c->nk);
        snprintf(what, sizeof what, "%s p=%d %s", c->name, p, a ? "max_logit" : "lse");
        r = compare_report(what, a ? R->ml : R->lse, a ? rml : rl, dims, "bhn.", tol);
        tally_fold(t, cls, 1, r.max_frac); bad += r.bad > 0;
    }
    if (!backward) return bad;
    /* dq, dk, dv */
    for (a = 0; a < 3; a++) {
        const double *ref = a == 0 ? D->rdq : a == 1 ? D->rdk : D->rdv;
        const double *got = a == 0 ? R->dq : a == 1 ? R->dk : R->dv;
        const double *cmp_to = base ? (a == 0 ? base->dq : a == 1 ? base->dk : base->dv) : ref;
        int64_t n = a == 0 ? D->nq_ : a == 1 ? D->nk_ : D->nv_;
        double gs = max_abs_f64(ref, n);
        if (gs < 1) gs = 1;
        dims[0] = c->b; dims[1] = a == 0 ? c->nq : c->nk; dims[2] = a == 0 ? c->h : c->hk;
        dims[3] = a == 2 ? c->dv : c->d;
        tol.abs = f32 ? gs * (TEST_U32 * (w + (double)(c->nq + c->nk) + 16.0) + 8.0 * us) : 1e-12 * gs;
        tol.rel = us;
        snprintf(what, sizeof what, "%s p=%d %s", c->name, p, a == 0 ? "dq" : a == 1 ? "dk" : "dv");
        r = compare_report(what, got, cmp_to, dims, "bnhd", tol);
        tally_fold(t, cls, 0, r.max_frac); bad += r.bad > 0;
    }
    if (c->opts & O_SINKS) {   /* dsinks[h]: scaled by the sum of the magnitudes it adds up */
        int64_t bb, hh, i, x;
        for (hh = 0; hh < c->h; hh++) {
            double sum = 0, err, allowed;
            for (bb = 0; bb < c->b; bb++)
                for (i = 0; i < c->nq; i++) {
                    double Dr = 0, l = D->rl[(bb * c->h + hh) * c->nq + i];
                    for (x = 0; x < c->dv; x++)
                        Dr += D->g[((bb * c->nq + i) * c->h + hh) * c->dv + x] * D->ro[((bb * c->nq + i) * c->h + hh) * c->dv + x];
                    if (l > -INFINITY) sum += fabs(exp(D->sinks[hh] - l) * Dr);
                }
            if (sum < 1) sum = 1;
            allowed = f32 ? sum * (TEST_U32 * (w + (double)(c->nq + c->nk) + 16.0) + 8.0 * us) : 1e-12 * sum;
            err = fabs(R->ds[hh] - (base ? base->ds[hh] : D->rds[hh]));
            if (!(err <= allowed)) {
                printf("    mismatch %s p=%d dsinks[%lld]: got %.17g ref %.17g (err %.3g, tol %.3g)\n", c->name, p,
                       (long long)hh, R->ds[hh], base ? base->ds[hh] : D->rds[hh], err, allowed);
                bad++;
            }
            tally_fold(t, cls, 0, err / allowed);
        }
    }
    if (c->opts & O_BIAS) {
        double gs = max_abs_f64(D->rdb, D->nb);
        if (gs < 1) gs = 1;
        gs *= bias_fold(c);
        dims[0] = c->bias_b; dims[1] = c->bias_h; dims[2] = c->nq; dims[3] = c->nk;
        tol.abs = f32 ? gs * (TEST_U32 * (w + (double)(c->nq + c->nk) + 16.0) + 8.0 * us) : 1e-12 * gs;
        tol.rel = f32 ? TEST_U32 : 0;
        snprintf(what, sizeof what, "%s p=%d dbias", c->name, p);
        r = compare_report(what, R->db, base ? base->db : D->rdb, dims, "bhij", tol);
        tally_fold(t, cls, 0, r.max_frac); bad += r.bad > 0;
    }
    return bad;
}

/* one case at ring sizes p_lo..p_hi: each against the oracle, and each p > 1 against p = 1 */
static void run_case(const ocase *c, int p_lo, int p_hi, tally *t, int *failures)
{
    odata D;
    ores base, R;
    int p, have_base = 0, backward = 1;
    if (data_new(c, &D) != 0) {
        CHECK(0, "%s: the oracle refused the case", c->name);
        data_free(&D);
        return;
    }
    memset(&base, 0, sizeof base);
    for (p = p_lo; p <= p_hi; p++) {
        int bad;
        if (c->part == RINGATTN_ZIGZAG && 2 * p > (c->nq < c->nk ? c->nq : c->nk)) continue;
        lib_run(c, &D, &R, backward, p == 1 ? 1 : c->threads, p);
        t->cases++;
        CHECK(R.st_fwd == 0 && R.st_bwd == 0, "%s p=%d: status %d / %d", c->name, p, R.st_fwd, R.st_bwd);
        if (R.st_fwd != 0 || R.st_bwd != 0) { t->failed++; res_free(&R); continue; }
        bad = compare(c, &D, &R, NULL, backward, t, p);
        if (have_base) bad += compare(c, &D, &R, &base, backward, t, p);
        CHECK(bad == 0, "%s (%s, p=%d): %d results off", c->name,
              c->part == RINGATTN_ZIGZAG ? "zigzag" : c->part == RINGATTN_STRIPED ? "striped" : "contiguous", p, bad);
        if (bad) t->failed++;
        if (p == 1) { base = R; have_base = 1; }
        else res_free(&R);
    }
    if (have_base) res_free(&base);
    data_free(&D);
}

/* ---------------------------------------------------------------- 1, 2: the grid */

typedef struct { const char *name; unsigned opts; int64_t bias_b, bias_h, mask_b, mask_h; } optset;

enum { OPT_NONE, OPT_MAX_LOGIT, OPT_SINKS, OPT_ALIBI_H, OPT_ALIBI_BH, OPT_BIAS_BH, OPT_BIAS_1H, OPT_BIAS_B1,
       OPT_BIAS_11, OPT_MASK_BH, OPT_MASK_11, OPT_MASK_FN, OPT_MASK_BLOCK, OPT_DOCS, OPT_ALL };

static const optset optsets[] = {
    { "none",                 0, 0, 0, 0, 0 },
    { "max_logit",            O_MAX_LOGIT, 0, 0, 0, 0 },
    { "sinks",                O_SINKS, 0, 0, 0, 0 },
    { "alibi [h]",            O_ALIBI, 0, 0, 0, 0 },
    { "alibi [b][h]",         O_ALIBI_BH, 0, 0, 0, 0 },
    { "bias [b][h]",          O_BIAS, 2, 2, 0, 0 },
    { "bias [1][h]",          O_BIAS, 1, 2, 0, 0 },
    { "bias [b][1]",          O_BIAS, 2, 1, 0, 0 },
    { "bias [1][1]",          O_BIAS, 1, 1, 0, 0 },
    { "mask [b][h]",          O_MASK, 0, 0, 2, 2 },
    { "mask [1][1]",          O_MASK, 0, 0, 1, 1 },
    { "mask_fn",              O_MASK_FN, 0, 0, 0, 0 },
    { "mask_block_fn",        O_MASK_BLOCK, 0, 0, 0, 0 },
    { "document ids",         O_DOCS, 0, 0, 0, 0 },
    { "everything",           O_SINKS | O_ALIBI | O_BIAS | O_MASK | O_MASK_FN | O_MASK_BLOCK | O_DOCS, 1, 2, 2, 1 },
};
#define NOPTS ((int)(sizeof optsets / sizeof optsets[0]))

static const int64_t cuq_[4] = { 0, 9, 9, 26 }, cuk_[4] = { 0, 7, 15, 26 };

/* variant v of the base shape: b 2, h 2, d 8, n 24 */
static ocase variant(int v, const optset *o, ringattn_partition part, uint64_t seed)
{
    ocase c;
    memset(&c, 0, sizeof c);
    c.name = o->name;
    c.b = 2; c.nq = c.nk = 24; c.h = c.hk = 2; c.d = c.dv = 8;
    c.wl = c.wr = -1; c.threads = 2; c.part = part;
    c.storage = c.compute = c.bias_dtype = RINGATTN_F64;
    c.opts = o->opts; c.bias_b = o->bias_b; c.bias_h = o->bias_h; c.mask_b = o->mask_b; c.mask_h = o->mask_h;
    c.mask_density = 0.7; c.ndocs = 3; c.seed = seed;
    switch (v) {
    case 0: c.causal = 1; break;                                     /* bottom-right, nq = nk  */
    case 1: c.causal = 2; c.nq = 30; c.nk = 22; break;               /* top-left, nq > nk      */
    case 2: c.causal = 1; c.nq = 20; c.nk = 27; break;               /* bottom-right, nq < nk  */
    case 3: c.wl = 5; c.wr = 3; break;                               /* a window, not causal   */
    case 4: c.causal = 1; c.softcap = 1.5; break;                    /* softcap                */
    case 5: c.causal = 1; c.h = 4; c.hk = 2; c.dv = 6; break;        /* GQA, dv != d           */
    default: c.causal = 1; c.b = 1; c.nq = c.nk = 26; c.nseq = 3; c.cuq = cuq_; c.cuk = cuk_; break;   /* varlen */
    }
    /* shapes that follow b and h */
    if (c.bias_b > 1) c.bias_b = c.b;
    if (c.bias_h > 1) c.bias_h = c.h;
    if (c.mask_b > 1) c.mask_b = c.b;
    if (c.mask_h > 1) c.mask_h = c.h;
    return c;
}

static void print_tally(const char *name, const tally *t)
{
    printf("  %-16s %4d runs, %d failed | f64 rel err fwd %.2e bwd %.2e | of the policy: f32 fwd %.3f bwd %.3f, "
           "f16/bf16 fwd %.3f bwd %.3f\n", name, t->cases, t->failed, t->fwd[0] * 1e-12, t->bwd[0] * 1e-12,
           t->fwd[1], t->bwd[1], t->fwd[2], t->bwd[2]);
}

static void test_grid(tally *tall, int *failures)
{
    int o, v, pi, f0 = *failures;
    uint64_t seed = 1;
    printf("1. each option alone and all at once x 7 variants x 3 partitions x p 1..4, f64 vs the oracle:\n");
    for (o = 0; o < NOPTS; o++) {
        tally t;
        memset(&t, 0, sizeof t);
        for (v = 0; v < 7; v++)
            for (pi = 0; pi < 3; pi++) {
                ocase c = variant(v, &optsets[o], (ringattn_partition)pi, seed++);
                run_case(&c, 1, 4, &t, failures);
            }
        print_tally(optsets[o].name, &t);
        tall[o].fwd[0] = t.fwd[0]; tall[o].bwd[0] = t.bwd[0];
        tall[o].cases += t.cases; tall[o].failed += t.failed;
    }
    printf("1. %s\n", *failures == f0 ? "ok" : "FAILED");
}

static void test_f32(tally *tall, int *failures)
{
    static const ringattn_dtype half[2] = { RINGATTN_F16, RINGATTN_BF16 };
    static const ringattn_dtype bias_dt[4] = { RINGATTN_F64, RINGATTN_F32, RINGATTN_F16, RINGATTN_BF16 };
    int o, v, f0 = *failures;
    uint64_t seed = 1000;
    printf("2. f32 compute (f32, f16, bf16 storage; bias in f64 / f32 / f16 / bf16) vs the oracle:\n");
    for (o = 0; o < NOPTS; o++) {
        tally t;
        memset(&t, 0, sizeof t);
        for (v = 0; v < 7; v++) {
            ocase c = variant(v, &optsets[o], (ringattn_partition)(v % 3), seed++);
            c.storage = c.compute = RINGATTN_F32;
            c.bias_dtype = bias_dt[v % 4];
            run_case(&c, 3, 3, &t, failures);
            if (v == 0 || v == 5) {   /* half storage: f32 compute */
                c = variant(v, &optsets[o], (ringattn_partition)(v % 3), seed++);
                c.storage = half[v == 5]; c.compute = RINGATTN_F32; c.bias_dtype = half[v != 5];
                run_case(&c, 2, 2, &t, failures);
            }
        }
        print_tally(optsets[o].name, &t);
        tall[o].fwd[1] = t.fwd[1]; tall[o].bwd[1] = t.bwd[1];
        tall[o].fwd[2] = t.fwd[2]; tall[o].bwd[2] = t.bwd[2];
        tall[o].cases += t.cases; tall[o].failed += t.failed;
    }
    printf("2. %s\n", *failures == f0 ? "ok" : "FAILED");
}

/* ---------------------------------------------------------------- 3. empty rows */

static void test_empty_rows(int *failures)
{
    int with_sinks, f0 = *failures;
    for (with_sinks = 0; with_sinks <= 1; with_sinks++) {
        ocase c;
        odata D;
        ores R;
        int p;
        int64_t i, j, bb, hh, x;
        c = variant(0, &optsets[OPT_MASK_BH], RINGATTN_ZIGZAG, 77 + (uint64_t)with_sinks);
        c.name = with_sinks ? "empty rows, sinks" : "empty rows";
        c.causal = 0;
        if (with_sinks) c.opts |= O_SINKS;
        if (data_new(&c, &D) != 0) { CHECK(0, "oracle"); data_free(&D); continue; }
        /* rows 3 and 17 of (batch 1, head 0), and row 20 of every (batch, head), see nothing */
        for (j = 0; j < c.nk; j++) {
            D.mask[((1 * c.mask_h + 0) * c.nq + 3) * c.nk + j] = 0;
            D.mask[((1 * c.mask_h + 0) * c.nq + 17) * c.nk + j] = 0;
            for (bb = 0; bb < c.mask_b; bb++)
                for (hh = 0; hh < c.mask_h; hh++) D.mask[((bb * c.mask_h + hh) * c.nq + 20) * c.nk + j] = 0;
        }
        CHECK(ref_forward_ex(&D.rp, D.q, D.k, D.v, D.ro, D.rl, D.rml) == 0, "oracle");
        CHECK(ref_backward_ex(&D.rp, D.q, D.k, D.v, D.g, D.rdq, D.rdk, D.rdv, with_sinks ? D.rds : NULL, NULL) == 0, "oracle");
        for (p = 1; p <= 4; p++) {
            tally t;
            memset(&t, 0, sizeof t);
            lib_run(&c, &D, &R, 1, 2, p);
            CHECK(R.st_fwd == 0 && R.st_bwd == 0, "%s p=%d: status %d / %d", c.name, p, R.st_fwd, R.st_bwd);
            CHECK(compare(&c, &D, &R, NULL, 1, &t, p) == 0, "%s p=%d: differs from the oracle", c.name, p);
            for (bb = 0; bb < c.b; bb++)
                for (hh = 0; hh < c.h; hh++)
                    for (i = 0; i < c.nq; i++) {
                        int empty = i == 20 || (bb == 1 && hh == 0 && (i == 3 || i == 17));
                        double l = R.lse[(bb * c.h + hh) * c.nq + i], m = R.ml[(bb * c.h + hh) * c.nq + i];
                        if (!empty) continue;
                        for (x = 0; x < c.dv; x++)
                            CHECK(R.out[((bb * c.nq + i) * c.h + hh) * c.dv + x] == 0.0, "%s p=%d: out of an empty row", c.name, p);
                        for (x = 0; x < c.d; x++)
                            CHECK(R.dq[((bb * c.nq + i) * c.h + hh) * c.d + x] == 0.0, "%s p=%d: dq of an empty row", c.name, p);
                        CHECK(with_sinks ? l == D.sinks[hh] : l == -INFINITY, "%s p=%d: lse of an empty row %g", c.name, p, l);
                        CHECK(m == -INFINITY, "%s p=%d: max_logit of an empty row %g", c.name, p, m);
                    }
            for (i = 0; i < D.nqv; i++) CHECK(R.out[i] == R.out[i], "%s: NaN in out", c.name);
            for (i = 0; i < D.nq_; i++) CHECK(R.dq[i] == R.dq[i], "%s: NaN in dq", c.name);
            for (i = 0; i < D.nk_; i++) CHECK(R.dk[i] == R.dk[i], "%s: NaN in dk", c.name);
            for (i = 0; i < c.h; i++) CHECK(R.ds[i] == R.ds[i], "%s: NaN in dsinks", c.name);
            res_free(&R);
        }
        data_free(&D);
    }
    printf("3. rows that see nothing: out 0, lse -inf or the sink, max_logit -inf, dq 0, no NaN: %s\n",
           *failures == f0 ? "ok" : "FAILED");
}

/* ---------------------------------------------------------------- 4. skipped steps */

static void test_skipped(int *failures)
{
    int f0 = *failures, causal;
    for (causal = 0; causal <= 1; causal++) {
        ocase c;
        odata D;
        ores R;
        tally t;
        memset(&t, 0, sizeof t);
        c = variant(0, &optsets[OPT_DOCS], RINGATTN_CONTIGUOUS, 91);
        c.name = "documents in chunks";
        c.nq = c.nk = 64; c.ndocs = 4; c.causal = causal;   /* p = 4: one document per member */
        if (data_new(&c, &D) != 0) { CHECK(0, "oracle"); data_free(&D); continue; }
        lib_run(&c, &D, &R, 1, 2, 4);
        CHECK(R.st_fwd == 0 && R.st_bwd == 0, "%s: status %d / %d", c.name, R.st_fwd, R.st_bwd);
        CHECK(compare(&c, &D, &R, NULL, 1, &t, 4) == 0, "%s: differs from the oracle", c.name);
        printf("   documents of 16 in chunks of 16, p 4, %s: blocks computed %lld, skipped %lld (backward)\n",
               causal ? "causal" : "not causal", (long long)R.stats.blocks_computed, (long long)R.stats.blocks_skipped);
        CHECK(R.stats.blocks_skipped > 0, "%s: no ring step skipped", c.name);
        CHECK(R.stats.blocks_computed == 4, "%s: %lld blocks computed, the 4 diagonal ones expected",
              c.name, (long long)R.stats.blocks_computed);
        res_free(&R);
        data_free(&D);
    }
    printf("4. fully masked ring steps skipped under a document mask: %s\n", *failures == f0 ? "ok" : "FAILED");
}

/* ---------------------------------------------------------------- 5. finite differences */

typedef struct {
    ringattn_config cfg;
    tbuf Q, K, V, O, W, BI;
    double *w;
} fd_setup;

static double fd_loss(fd_setup *S)
{
    double o[4096], l = 0;
    int64_t i;
    if (ringattn_forward(&S->cfg, &S->Q.t, &S->K.t, &S->V.t, &S->O.t, NULL) != 0) return NAN;
    tb_read(&S->O, o);
    for (i = 0; i < S->O.count; i++) l += o[i] * S->w[i];
    return l;
}

/* worst |fd - an| / max(|fd|, |an|, 1e-3) over the n entries of x (f64 data, perturbed in
   place); fd: central differences at steps h and h/2, Richardson-extrapolated (error O(h^4)) */
static double fd_worst(fd_setup *S, double *x, int64_t n, const double *grad)
{
    double worst = 0, h = 1e-4;
    int64_t i;
    for (i = 0; i < n; i++) {
        double keep = x[i], lp, lm, fd, fd2, den, e;
        x[i] = keep + h; lp = fd_loss(S);
        x[i] = keep - h; lm = fd_loss(S);
        fd = (lp - lm) / (2 * h);
        x[i] = keep + h / 2; lp = fd_loss(S);
        x[i] = keep - h / 2; lm = fd_loss(S);
        x[i] = keep;
        fd2 = (lp - lm) / h;
        fd = (4 * fd2 - fd) / 3;
        den = fabs(fd) > fabs(grad[i]) ? fabs(fd) : fabs(grad[i]);
        e = fabs(fd - grad[i]) / (den > 1e-3 ? den : 1e-3);
        if (!(e <= worst)) worst = e;
    }
    return worst;
}

static void test_fd(int *failures)
{
    enum { B = 2, NQ = 7, NK = 9, H = 2, HK = 1, DD = 3 };
    double q[B * NQ * H * DD], k[B * NK * HK * DD], v[B * NK * HK * DD], w[B * NQ * H * DD];
    double o[B * NQ * H * DD], l[B * H * NQ], dq[B * NQ * H * DD], dk[B * NK * HK * DD], dv[B * NK * HK * DD];
    double dq2[B * NQ * H * DD], bias[H * NQ * NK], db[H * NQ * NK], sinks[H] = { 0.7, -0.4 }, ds[H];
    double slopes[H] = { 0.3, 0.1 }, wq, wk, wv, ws, wb;
    unsigned char mask[B * NQ * NK];
    int64_t docq[NQ] = { 0, 0, 0, 1, 1, 1, 1 }, dock[NK] = { 0, 0, 0, 0, 1, 1, 1, 1, 1 };
    mask_user mu;
    fd_setup S;
    ringattn_tensor L = ringattn_tensor_lse(l, RINGATTN_F64, B, H, NQ);
    ringattn_tensor DQ = ringattn_tensor_bnhd(dq, RINGATTN_F64, B, NQ, H, DD);
    ringattn_tensor DQ2 = ringattn_tensor_bnhd(dq2, RINGATTN_F64, B, NQ, H, DD);
    ringattn_tensor DK = ringattn_tensor_bnhd(dk, RINGATTN_F64, B, NK, HK, DD);
    ringattn_tensor DV = ringattn_tensor_bnhd(dv, RINGATTN_F64, B, NK, HK, DD);
    ringattn_tensor MK = ringattn_tensor_bnhd(mask, RINGATTN_BOOL, B, 1, NQ, NK);
    ringattn_tensor DB = ringattn_tensor_bnhd(db, RINGATTN_F64, 1, H, NQ, NK);
    test_rng r = rng_seed(4242);
    int64_t i;
    int st;
    for (i = 0; i < B * NQ * H * DD; i++) { q[i] = 1.5 * rng_normal(&r); w[i] = rng_normal(&r); }
    for (i = 0; i < B * NK * HK * DD; i++) { k[i] = 1.5 * rng_normal(&r); v[i] = rng_normal(&r); }
    for (i = 0; i < H * NQ * NK; i++) bias[i] = rng_normal(&r);
    for (i = 0; i < B * NQ * NK; i++) mask[i] = (unsigned char)(rng_uniform(&r) < 0.8);
    mu.salt = 5; mu.abort_call = 0;
    memset(&S, 0, sizeof S);
    S.Q.t = ringattn_tensor_bnhd(q, RINGATTN_F64, B, NQ, H, DD); S.Q.count = B * NQ * H * DD;
    S.K.t = ringattn_tensor_bnhd(k, RINGATTN_F64, B, NK, HK, DD); S.K.count = B * NK * HK * DD;
    S.V.t = ringattn_tensor_bnhd(v, RINGATTN_F64, B, NK, HK, DD); S.V.count = B * NK * HK * DD;
    S.O.t = ringattn_tensor_bnhd(o, RINGATTN_F64, B, NQ, H, DD); S.O.count = B * NQ * H * DD; S.O.data = o;
    S.W.t = ringattn_tensor_bnhd(w, RINGATTN_F64, B, NQ, H, DD);
    S.BI.t = ringattn_tensor_bnhd(bias, RINGATTN_F64, 1, H, NQ, NK);
    S.w = w;
    S.cfg = ringattn_default_config();
    S.cfg.compute = RINGATTN_F64; S.cfg.causal = 1; S.cfg.ring_size = 3; S.cfg.partition = RINGATTN_STRIPED;
    S.cfg.softcap = 2.0; S.cfg.window_left = 5;
    S.cfg.sinks = sinks; S.cfg.alibi_slopes = slopes; S.cfg.alibi_size = H;
    S.cfg.bias = &S.BI.t; S.cfg.mask = &MK; S.cfg.mask_fn = cb_mask_fn; S.cfg.mask_user = &mu;
    S.cfg.document_ids_q = docq; S.cfg.document_ids_k = dock;
    st = ringattn_forward(&S.cfg, &S.Q.t, &S.K.t, &S.V.t, &S.O.t, &L);
    CHECK(st == 0, "finite differences: forward %s", ringattn_strerror(st));
    S.cfg.dsinks = ds; S.cfg.dbias = &DB;
    st = ringattn_backward(&S.cfg, &S.Q.t, &S.K.t, &S.V.t, &S.O.t, &L, &S.W.t, &DQ, &DK, &DV);
    CHECK(st == 0, "finite differences: backward %s", ringattn_strerror(st));
    /* sinks given, dsinks and dbias not wanted: the same dq */
    S.cfg.dsinks = NULL; S.cfg.dbias = NULL;
    st = ringattn_backward(&S.cfg, &S.Q.t, &S.K.t, &S.V.t, &S.O.t, &L, &S.W.t, &DQ2, &DK, &DV);
    CHECK(st == 0 && memcmp(dq, dq2, sizeof dq) == 0, "backward with dsinks = dbias = NULL: status %d or dq differs", st);
    st = ringattn_backward(&S.cfg, &S.Q.t, &S.K.t, &S.V.t, &S.O.t, &L, &S.W.t, &DQ, &DK, &DV);
    if (st != 0) return;
    wq = fd_worst(&S, q, S.Q.count, dq);
    wk = fd_worst(&S, k, S.K.count, dk);
    wv = fd_worst(&S, v, S.V.count, dv);
    ws = fd_worst(&S, sinks, H, ds);
    wb = fd_worst(&S, bias, H * NQ * NK, db);
    printf("5. finite differences, every option on (f64, striped p 3, softcap, window, MQA): worst relative error "
           "dq %.2e dk %.2e dv %.2e dsinks %.2e dbias %.2e: %s\n", wq, wk, wv, ws, wb,
           (wq <= 1e-7 && wk <= 1e-7 && wv <= 1e-7 && ws <= 1e-7 && wb <= 1e-7) ? "ok" : "FAILED");
    CHECK(wq <= 1e-7 && wk <= 1e-7 && wv <= 1e-7 && ws <= 1e-7 && wb <= 1e-7, "finite differences");
}

/* ---------------------------------------------------------------- 6. determinism */

static void test_threads(int *failures)
{
    int f0 = *failures, ct;
    for (ct = 0; ct < 2; ct++) {
        ocase c = variant(5, &optsets[OPT_ALL], RINGATTN_ZIGZAG, 555);
        odata D;
        ores R1, R2;
        c.nq = c.nk = 40;
        c.compute = c.storage = ct ? RINGATTN_F32 : RINGATTN_F64;
        c.bias_dtype = RINGATTN_F32;
        if (data_new(&c, &D) != 0) { CHECK(0, "oracle"); data_free(&D); continue; }
        lib_run(&c, &D, &R1, 1, 1, 4);
        lib_run(&c, &D, &R2, 1, 2, 4);
        CHECK(R1.st_fwd == 0 && R1.st_bwd == 0 && R2.st_fwd == 0 && R2.st_bwd == 0, "threads: status");
        CHECK(memcmp(R1.out, R2.out, sizeof(double) * (size_t)D.nqv) == 0 &&
              memcmp(R1.lse, R2.lse, sizeof(double) * (size_t)D.nl) == 0 &&
              memcmp(R1.ml, R2.ml, sizeof(double) * (size_t)D.nl) == 0, "threads 1 and 2: forward differs");
        CHECK(memcmp(R1.dq, R2.dq, sizeof(double) * (size_t)D.nq_) == 0 &&
              memcmp(R1.dk, R2.dk, sizeof(double) * (size_t)D.nk_) == 0 &&
              memcmp(R1.dv, R2.dv, sizeof(double) * (size_t)D.nv_) == 0, "threads 1 and 2: dq/dk/dv differ");
        CHECK(memcmp(R1.ds, R2.ds, sizeof(double) * (size_t)c.h) == 0, "threads 1 and 2: dsinks differ");
        CHECK(memcmp(R1.db, R2.db, sizeof(double) * (size_t)D.nb) == 0, "threads 1 and 2: dbias differs");
        res_free(&R1); res_free(&R2);
        data_free(&D);
    }
    printf("6. num_threads 1 and 2 bit-identical with every option on (f64 and f32): %s\n", *failures == f0 ? "ok" : "FAILED");
}

/* ---------------------------------------------------------------- 7. bad input */

static void test_bad_input(int *failures)
{
    enum { B = 2, N = 16, H = 2, DD = 4 };
    double q[B * N * H * DD], o[B * N * H * DD], l[B * H * N], ml[B * H * N], dq[B * N * H * DD];
    double dk[B * N * H * DD], dv[B * N * H * DD], bias[B * H * N * N], db[B * H * N * N];
    double sinks[H] = { 0, 1 }, ds[H], slopes[B * H] = { 0.5, 0.25, 0.5, 0.25 };
    unsigned char mask[B * H * N * N];
    float maskf[B * H * N * N];
    int64_t ids[N], seg[1] = { 8 }, rate[1] = { 2 };
    mask_user mu;
    ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F64, B, N, H, DD);
    ringattn_tensor O = ringattn_tensor_bnhd(o, RINGATTN_F64, B, N, H, DD);
    ringattn_tensor L = ringattn_tensor_lse(l, RINGATTN_F64, B, H, N);
    ringattn_tensor DQ = ringattn_tensor_bnhd(dq, RINGATTN_F64, B, N, H, DD);
    ringattn_tensor DK = ringattn_tensor_bnhd(dk, RINGATTN_F64, B, N, H, DD);
    ringattn_tensor DV = ringattn_tensor_bnhd(dv, RINGATTN_F64, B, N, H, DD);
    int k, n = 0, f0 = *failures;
    int64_t i;
    test_rng r = rng_seed(3);
    for (i = 0; i < B * N * H * DD; i++) q[i] = rng_normal(&r);
    for (i = 0; i < B * H * N * N; i++) { bias[i] = 0.1; mask[i] = 1; maskf[i] = 1; }
    for (i = 0; i < N; i++) ids[i] = i / 4;
    mu.salt = 1; mu.abort_call = 1;
    for (k = 0; k < 22; k++) {
        ringattn_config cfg = ringattn_default_config();
        ringattn_tensor BI = ringattn_tensor_bnhd(bias, RINGATTN_F64, B, H, N, N);
        ringattn_tensor DB = ringattn_tensor_bnhd(db, RINGATTN_F64, B, H, N, N);
        ringattn_tensor MK = ringattn_tensor_bnhd(mask, RINGATTN_BOOL, B, H, N, N);
        ringattn_tensor MLT = ringattn_tensor_lse(ml, RINGATTN_F64, B, H, N);
        char err[256] = "";
        const char *what = "";
        int backward = 0, st, untouched;
        cfg.compute = RINGATTN_F64; cfg.ring_size = 2; cfg.causal = 1;
        cfg.error_detail = err; cfg.error_detail_size = sizeof err;
        switch (k) {
        case 0: what = "dsinks without sinks"; backward = 1; cfg.dsinks = ds; break;
        case 1: what = "dbias without bias"; backward = 1; cfg.dbias = &DB; break;
        case 2: what = "alibi_size 3 (h 2, b 2)"; cfg.alibi_slopes = slopes; cfg.alibi_size = 3; break;
        case 3: what = "alibi_size 0 with slopes"; cfg.alibi_slopes = slopes; cfg.alibi_size = 0; break;
        case 4: what = "bias of 3 heads"; BI = ringattn_tensor_bnhd(bias, RINGATTN_F64, 1, 3, N, N); cfg.bias = &BI; break;
        case 5: what = "bias with nk - 1 columns"; BI = ringattn_tensor_bnhd(bias, RINGATTN_F64, B, H, N, N - 1); cfg.bias = &BI; break;
        case 6: what = "mask of 3 batches"; MK = ringattn_tensor_bnhd(mask, RINGATTN_BOOL, 3, 1, N, N); cfg.mask = &MK; break;
        case 7: what = "mask with nq + 1 rows"; MK = ringattn_tensor_bnhd(mask, RINGATTN_BOOL, 1, 1, N + 1, N); cfg.mask = &MK; break;
        case 8: what = "mask of dtype f32"; MK = ringattn_tensor_bnhd(maskf, RINGATTN_F32, B, H, N, N); cfg.mask = &MK; break;
        case 9: what = "bias of dtype BOOL"; BI = ringattn_tensor_bnhd(mask, RINGATTN_BOOL, B, H, N, N); cfg.bias = &BI; break;
        case 10: what = "document_ids_q only"; cfg.document_ids_q = ids; break;
        case 11: what = "document_ids_k only"; cfg.document_ids_k = ids; break;
        case 12: what = "max_logit of the wrong shape"; MLT = ringattn_tensor_lse(ml, RINGATTN_F64, B, H, N - 1); cfg.max_logit = &MLT; break;
        case 13: what = "dbias of the wrong shape"; backward = 1; cfg.bias = &BI;
                 DB = ringattn_tensor_bnhd(db, RINGATTN_F64, 1, H, N, N); cfg.dbias = &DB; break;
        case 14: what = "sinks with dilation"; cfg.sinks = sinks; break;
        case 15: what = "alibi with dilation"; cfg.alibi_slopes = slopes; cfg.alibi_size = H; break;
        case 16: what = "bias with dilation"; cfg.bias = &BI; break;
        case 17: what = "mask with dilation"; cfg.mask = &MK; break;
        case 18: what = "mask_fn with dilation"; cfg.mask_fn = cb_mask_fn; cfg.mask_user = &mu; break;
        case 19: what = "document ids with dilation"; cfg.document_ids_q = cfg.document_ids_k = ids; break;
        case 20: what = "mask_block_fn asks to stop (forward)"; cfg.mask_block_fn = cb_mask_block; cfg.mask_user = &mu; break;
        default: what = "mask_block_fn asks to stop (backward)"; backward = 1; cfg.mask_block_fn = cb_mask_block;
                 cfg.mask_user = &mu; break;
        }
        if (k >= 14 && k <= 19) { cfg.num_groups = 1; cfg.segment_lengths = seg; cfg.dilation_rates = rate; }
        fill_sentinel_f64(o, B * N * H * DD); fill_sentinel_f64(l, B * H * N); fill_sentinel_f64(ml, B * H * N);
        fill_sentinel_f64(dq, B * N * H * DD); fill_sentinel_f64(dk, B * N * H * DD); fill_sentinel_f64(dv, B * N * H * DD);
        fill_sentinel_f64(db, B * H * N * N); fill_sentinel_f64(ds, H);
        if (!backward) st = ringattn_forward(&cfg, &Q, &Q, &Q, &O, &L);
        else {
            /* a valid forward first (without the bad field), then the backward with it */
            ringattn_config c2 = cfg;
            c2.dsinks = NULL; c2.dbias = NULL; c2.mask_block_fn = NULL;
            st = ringattn_forward(&c2, &Q, &Q, &Q, &O, &L);
            CHECK(st == 0, "%s: the valid forward failed: %s (%s)", what, ringattn_strerror(st), err);
            err[0] = 0;
            st = ringattn_backward(&cfg, &Q, &Q, &Q, &O, &L, &O, &DQ, &DK, &DV);
        }
        untouched = all_sentinel_f64(dq, B * N * H * DD) && all_sentinel_f64(dk, B * N * H * DD) &&
                    all_sentinel_f64(dv, B * N * H * DD) && all_sentinel_f64(db, B * H * N * N) &&
                    all_sentinel_f64(ds, H) && all_sentinel_f64(ml, B * H * N);
        if (!backward) untouched = untouched && all_sentinel_f64(o, B * N * H * DD) && all_sentinel_f64(l, B * H * N);
        printf("   %-40s -> %d %s\n", what, st, st < 0 ? ringattn_strerror(st) : "(accepted)");
        CHECK(st < 0, "%s: accepted", what);
        CHECK(st >= 0 || err[0] != 0, "%s: no error detail", what);
        CHECK(untouched, "%s: an output was written", what);
        CHECK(k < 20 || st == RINGATTN_ECALLBACK, "%s: status %d, RINGATTN_ECALLBACK expected", what, st);
        n++;
    }
    {   /* max_logit alone with dilation */
        ringattn_config cfg = ringattn_default_config();
        ringattn_tensor MLT = ringattn_tensor_lse(ml, RINGATTN_F64, B, H, N);
        char err[256] = "";
        int st;
        cfg.compute = RINGATTN_F64; cfg.error_detail = err; cfg.error_detail_size = sizeof err;
        cfg.num_groups = 1; cfg.segment_lengths = seg; cfg.dilation_rates = rate; cfg.max_logit = &MLT;
        fill_sentinel_f64(o, B * N * H * DD); fill_sentinel_f64(ml, B * H * N);
        st = ringattn_forward(&cfg, &Q, &Q, &Q, &O, NULL);
        printf("   %-40s -> %d %s\n", "max_logit with dilation", st, st < 0 ? ringattn_strerror(st) : "(accepted)");
        CHECK(st < 0 && err[0] != 0 && all_sentinel_f64(o, B * N * H * DD) && all_sentinel_f64(ml, B * H * N),
              "max_logit with dilation: status %d, or an output written", st);
        n++;
    }
    printf("7. bad input: %d cases refused with outputs untouched: %s\n", n, *failures == f0 ? "ok" : "FAILED");
}

/* ---------------------------------------------------------------- main */

int main(void)
{
    int nfail = 0, *failures = &nfail, o;
    tally tall[NOPTS];
    memset(tall, 0, sizeof tall);
    test_bad_input(failures);
    test_grid(tall, failures);
    test_f32(tall, failures);
    test_empty_rows(failures);
    test_skipped(failures);
    test_fd(failures);
    test_threads(failures);
    printf("summary, worst error per option (f64: relative, of the tolerance's scale; f32, f16/bf16: fraction of "
           "the policy):\n");
    for (o = 0; o < NOPTS; o++) print_tally(optsets[o].name, &tall[o]);
    printf("test_options: %s (%d failures)\n", nfail ? "FAIL" : "ok", nfail);
    return nfail ? TEST_FAIL : TEST_PASS;
}
