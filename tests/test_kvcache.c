/* test_kvcache.c - ringattn_forward_kvcache (queries against a KV cache, contiguous or paged,
   with new keys appended and split-KV partials) against the naive f64 oracle ref_kvcache,
   which gathers the pages by hand and computes the final result over all keys at once and
   every split's partial over the split's keys alone (it merges nothing).

   Tolerances: the policy of docs/golden.md (test_util.h), nk = the longest sequence, the
   score bound smax grown by what the options add (max |slope| * max(nq, L) + max |sink|):
     f64 compute: out 1e-12 * max(max|ref|, max|V|); lse 1e-12 * max(1, max|ref|).
     f32 compute: out vmax u (2 d smax + nk + 16); lse u (2 d smax + nk + 16) + u |ref|;
                  f16 / bf16 storage of out adds its one final rounding u_storage |ref|;
                  fp8 (e4m3) storage of q and the cache: the oracle reads the same fp8 values.

   Groups (one line each; exit 1 on any failure):
     1. f64: a grid of cases (paged with permuted pages and a table row padded with entries
        no key uses, contiguous, sequences of length 0 and lengths not a multiple of the page,
        new keys appended, nq = 1, 2, 4 and nq > L with causal, GQA / MQA, causal
        bottom-right / top-left / none, windows, softcap, sinks, ALiBi per head and per
        batch, everything at once) x {num_splits 1 .. L + 2, split_size 1, 2, 3, the page, L,
        L + 1}: the final out / lse and every split partial against the oracle; the test's
        own log-sum-exp merge of the returned partials equals the oracle's final result;
        ringattn_kvcache_num_splits equals the oracle's count.
     2. f32 compute: f32, f16, bf16 and fp8 (e4m3) storage, the same checks under the policy.
     3. ring: the oracle ref_kvcache equals the dense oracle ref_forward_ex over each gathered
        sequence (1e-13); ringattn_forward with ring_size 2 .. 4 over each gathered sequence
        equals the cache path (f64 tolerance); one split, no sinks, a contiguous cache, no new
        keys and ring_size 1 equals ringattn_forward on the same view bit for bit.
     4. update_cache: the cache buffers afterwards equal the originals with exactly the new
        keys' slots written (byte comparison of the whole buffers, paged and contiguous);
        without update_cache the cache is byte-identical; the results do not depend on it.
     5. bad input (each a single change to a valid call): a negative status, a sentence in
        error_detail, no byte of out, lse, the partials or the cache changed, and
        ringattn_check_kvcache_call returns the same status and sentence.
     6. num_threads 1 and 2 give bit-identical outputs and partials.
     7. ringattn_kvcache_num_splits equals the oracle's count (every sequence empty included)
        and is negative for a negative num_splits or split_size, batch 0, split_size without
        cache_seqlens.

   Build by hand:
     gcc -std=c99 -O1 -fopenmp -I. -Ireference -Itests tests/test_kvcache.c \
         reference/ringattn_ref.c -lm */
#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"
#include "ringattn_ref.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { O_SINKS = 1, O_ALIBI = 2, O_ALIBI_BH = 4 };

typedef struct {
    const char *name;
    int64_t b, nq, h, hk, d, dv;
    int64_t page;          /* 0: contiguous cache                                  */
    int64_t n_cache;       /* contiguous: rows per sequence                        */
    int64_t spare;         /* paged: blocks no sequence uses                       */
    int32_t lens[4];       /* cache_seqlens                                        */
    int64_t n_new;
    int causal, wl, wr;
    double softcap;
    unsigned opts;
    ringattn_dtype storage, compute;
    uint64_t seed;
} kcase;

/* ---------------------------------------------------------------- storage helpers */

static void tb_sentinel(tbuf *b)
{
    int64_t i;
    for (i = 0; i < b->count; i++) ringattn__store(b->data, b->t.dtype, i, TEST_SENTINEL);
}

static size_t tb_bytes(const tbuf *b) { return (size_t)b->count * ringattn__dtype_size(b->t.dtype); }

static double *dalloc(int64_t n) { return (double *)calloc((size_t)(n > 0 ? n : 1), sizeof(double)); }

/* out's dtype: the storage, but f32 for fp8 storage */
static ringattn_dtype out_dtype(const kcase *c)
{
    return (c->storage == RINGATTN_FP8_E4M3 || c->storage == RINGATTN_FP8_E5M2) ? RINGATTN_F32 : c->storage;
}

static double out_u(const kcase *c)
{
    ringattn_dtype t = out_dtype(c);
    if (c->compute == RINGATTN_F64) return 0;
    return t == RINGATTN_F16 ? 1.0 / 2048 : t == RINGATTN_BF16 ? 1.0 / 256 : 0.0;
}

/* ---------------------------------------------------------------- a case's inputs */

typedef struct {
    int64_t Lmax, nblocks, max_blocks, nrow, nqv;
    int64_t ncache;                 /* rows of the cache: nblocks * page or b * n_cache */
    double *q, *kc, *vc, *kn, *vn;  /* logical values, on the storage grid              */
    double sinks[8], slopes[32];
    int32_t *table, lens[4];
    tbuf Q, KC, VC, KN, VN;
    ref_kv_problem rp;
    double smax, vmax;
} kdata;

static int64_t case_len(const kcase *c, int64_t bb) { return (int64_t)c->lens[bb] + c->n_new; }

static void data_free(kdata *D)
{
    free(D->q); free(D->kc); free(D->vc); free(D->kn); free(D->vn); free(D->table);
    tb_free(&D->Q); tb_free(&D->KC); tb_free(&D->VC); tb_free(&D->KN); tb_free(&D->VN);
}

/* the vectors' largest norm over n rows of w values */
static double max_norm(const double *x, int64_t n, int64_t w)
{
    double m = 0;
    int64_t i, c;
    for (i = 0; i < n; i++) {
        double s = 0;
        for (c = 0; c < w; c++) s += x[i * w + c] * x[i * w + c];
        if (s > m) m = s;
    }
    return sqrt(m);
}

static void data_new(const kcase *c, kdata *D)
{
    test_rng r = rng_seed(c->seed * 7919u + 3u);
    int64_t i, bb, hh, used = 0;
    int64_t nq_ = c->b * c->nq * c->h * c->d, nn = c->b * c->n_new;
    int64_t *perm;
    memset(D, 0, sizeof *D);
    for (bb = 0; bb < c->b; bb++) {
        D->lens[bb] = c->lens[bb];
        if (case_len(c, bb) > D->Lmax) D->Lmax = case_len(c, bb);
    }
    D->nrow = c->b * c->h * c->nq; D->nqv = c->b * c->nq * c->h * c->dv;
    if (c->page > 0) {
        /* every sequence gets the pages its cached and new keys need, one more entry in its
           row than it uses (a block that does not exist: no call may read it) */
        D->max_blocks = 1;
        for (bb = 0; bb < c->b; bb++) {
            int64_t need = (case_len(c, bb) + c->page - 1) / c->page;
            used += need;
            if (need + 1 > D->max_blocks) D->max_blocks = need + 1;
        }
        D->nblocks = used + c->spare;
        if (D->nblocks < 1) D->nblocks = 1;
        D->ncache = D->nblocks * c->page;
        /* a random permutation of the blocks, dealt out in order */
        perm = (int64_t *)malloc(sizeof(int64_t) * (size_t)D->nblocks);
        for (i = 0; i < D->nblocks; i++) perm[i] = i;
        for (i = D->nblocks - 1; i > 0; i--) {
            int64_t j = (int64_t)(rng_next(&r) % (uint64_t)(i + 1)), t = perm[i];
            perm[i] = perm[j]; perm[j] = t;
        }
        D->table = (int32_t *)malloc(sizeof(int32_t) * (size_t)(c->b * D->max_blocks));
        used = 0;
        for (bb = 0; bb < c->b; bb++) {
            int64_t need = (case_len(c, bb) + c->page - 1) / c->page, e;
            for (e = 0; e < D->max_blocks; e++)
                D->table[bb * D->max_blocks + e] = e < need ? (int32_t)perm[used++]
                                                 : (int32_t)(e % 2 ? -1 - e : D->nblocks + 1000 + e);
        }
        free(perm);
    } else {
        D->ncache = c->b * c->n_cache;
        D->table = (int32_t *)malloc(sizeof(int32_t));
    }
    D->q = dalloc(nq_);
    D->kc = dalloc(D->ncache * c->hk * c->d); D->vc = dalloc(D->ncache * c->hk * c->dv);
    /* (n_new 0: one zero row per sequence, the tensors' placeholder that no call is given) */
    D->kn = dalloc(c->b * (c->n_new > 0 ? c->n_new : 1) * c->hk * c->d);
    D->vn = dalloc(c->b * (c->n_new > 0 ? c->n_new : 1) * c->hk * c->dv);
    for (i = 0; i < nq_; i++) D->q[i] = 1.5 * rng_normal(&r);
    for (i = 0; i < D->ncache * c->hk * c->d; i++) D->kc[i] = 1.5 * rng_normal(&r);
    for (i = 0; i < D->ncache * c->hk * c->dv; i++) D->vc[i] = rng_normal(&r);
    for (i = 0; i < nn * c->hk * c->d; i++) D->kn[i] = 1.5 * rng_normal(&r);
    for (i = 0; i < nn * c->hk * c->dv; i++) D->vn[i] = rng_normal(&r);
    round_all(D->q, nq_, c->storage);
    round_all(D->kc, D->ncache * c->hk * c->d, c->storage); round_all(D->vc, D->ncache * c->hk * c->dv, c->storage);
    round_all(D->kn, nn * c->hk * c->d, c->storage); round_all(D->vn, nn * c->hk * c->dv, c->storage);
    for (hh = 0; hh < c->h; hh++) D->sinks[hh] = 1.5 * rng_normal(&r);
    for (bb = 0; bb < ((c->opts & O_ALIBI_BH) ? c->b : 1); bb++)
        for (hh = 0; hh < c->h; hh++)
            D->slopes[bb * c->h + hh] = pow(2.0, -8.0 * (double)(hh + 1) / (double)c->h) * (1.0 + 0.25 * (double)bb);

    tb_new(&D->Q, c->storage, c->b, c->nq, c->h, c->d); tb_write(&D->Q, D->q);
    if (c->page > 0) {
        tb_new(&D->KC, c->storage, D->nblocks, c->page, c->hk, c->d);
        tb_new(&D->VC, c->storage, D->nblocks, c->page, c->hk, c->dv);
    } else {
        tb_new(&D->KC, c->storage, c->b, c->n_cache, c->hk, c->d);
        tb_new(&D->VC, c->storage, c->b, c->n_cache, c->hk, c->dv);
    }
    tb_write(&D->KC, D->kc); tb_write(&D->VC, D->vc);
    tb_new(&D->KN, c->storage, c->b, c->n_new > 0 ? c->n_new : 1, c->hk, c->d); tb_write(&D->KN, D->kn);
    tb_new(&D->VN, c->storage, c->b, c->n_new > 0 ? c->n_new : 1, c->hk, c->dv); tb_write(&D->VN, D->vn);

    memset(&D->rp, 0, sizeof D->rp);
    D->rp.b = c->b; D->rp.nq = c->nq; D->rp.h = c->h; D->rp.hk = c->hk; D->rp.d = c->d; D->rp.dv = c->dv;
    D->rp.scale = 1.0 / sqrt((double)c->d);
    D->rp.causal = c->causal; D->rp.window_left = c->wl; D->rp.window_right = c->wr;
    D->rp.softcap = c->softcap;
    if (c->opts & O_SINKS) D->rp.sinks = D->sinks;
    if (c->opts & (O_ALIBI | O_ALIBI_BH)) {
        D->rp.alibi_slopes = D->slopes;
        D->rp.alibi_size = (int)((c->opts & O_ALIBI_BH) ? c->b * c->h : c->h);
    }
    D->rp.k_cache = D->kc; D->rp.v_cache = D->vc;
    D->rp.b_cache = c->b; D->rp.n_cache = c->n_cache;
    if (c->page > 0) {
        D->rp.block_table = D->table; D->rp.max_blocks = D->max_blocks;
        D->rp.num_blocks = D->nblocks; D->rp.page_size = c->page;
    }
    D->rp.cache_seqlens = D->lens;
    if (c->n_new > 0) { D->rp.k_new = D->kn; D->rp.v_new = D->vn; D->rp.n_new = c->n_new; }

    /* the f32 policy's score bound (every cache row and new key: a superset) and vmax */
    D->smax = D->rp.scale * max_norm(D->q, c->b * c->nq * c->h, c->d) *
              fmax(max_norm(D->kc, D->ncache * c->hk, c->d), max_norm(D->kn, nn * c->hk, c->d));
    if (c->opts & (O_ALIBI | O_ALIBI_BH))
        D->smax += max_abs_f64(D->slopes, D->rp.alibi_size) * (double)(c->nq > D->Lmax ? c->nq : D->Lmax);
    if (c->opts & O_SINKS) D->smax += max_abs_f64(D->sinks, c->h);
    D->vmax = fmax(max_abs_f64(D->vc, D->ncache * c->hk * c->dv), max_abs_f64(D->vn, nn * c->hk * c->dv));
}

/* ---------------------------------------------------------------- one library call */

typedef struct {
    int64_t num_splits, split_size;
    int threads, update, want_splits, no_new;
} krun;

typedef struct {
    double *out, *lse, *sout, *slse;
    int64_t S;
    int st;
    char err[256];
} kres;

static void res_free(kres *R) { free(R->out); free(R->lse); free(R->sout); free(R->slse); }

static void kv_setup(const kcase *c, kdata *D, const krun *k, ringattn_config *cfg, ringattn_kvcache *kv,
                     char *err, size_t errn)
{
    *cfg = ringattn_default_config();
    cfg->causal = c->causal; cfg->window_left = c->wl; cfg->window_right = c->wr;
    cfg->softcap = c->softcap; cfg->compute = c->compute; cfg->num_threads = k->threads;
    cfg->error_detail = err; cfg->error_detail_size = errn;
    if (c->opts & O_SINKS) cfg->sinks = D->sinks;
    if (c->opts & (O_ALIBI | O_ALIBI_BH)) { cfg->alibi_slopes = D->slopes; cfg->alibi_size = D->rp.alibi_size; }
    memset(kv, 0, sizeof *kv);
    kv->k_cache = &D->KC.t; kv->v_cache = &D->VC.t;
    if (c->page > 0) { kv->block_table = D->table; kv->max_blocks = D->max_blocks; }
    kv->cache_seqlens = D->lens;
    if (c->n_new > 0 && !k->no_new) { kv->k_new = &D->KN.t; kv->v_new = &D->VN.t; }
    kv->num_splits = k->num_splits; kv->split_size = k->split_size; kv->update_cache = k->update;
}

/* the library on case c; results as f64 in R (split tensors when k->want_splits) */
static void lib_run(const kcase *c, kdata *D, const krun *k, kres *R)
{
    ringattn_config cfg;
    ringattn_kvcache kv;
    tbuf O, L, *SO = NULL, *SL = NULL;
    ringattn_tensor *so = NULL, *sl = NULL;
    ringattn_dtype ld = c->compute == RINGATTN_F64 ? RINGATTN_F64 : RINGATTN_F32;
    int64_t s;
    memset(R, 0, sizeof *R);
    kv_setup(c, D, k, &cfg, &kv, R->err, sizeof R->err);
    R->S = ringattn_kvcache_num_splits(&cfg, &kv, c->b);
    tb_new(&O, out_dtype(c), c->b, c->nq, c->h, c->dv);
    tb_new(&L, ld, c->b, c->h, c->nq, 1);
    R->out = dalloc(D->nqv); R->lse = dalloc(D->nrow);
    if (k->want_splits && R->S > 0) {
        SO = (tbuf *)calloc((size_t)R->S, sizeof(tbuf)); SL = (tbuf *)calloc((size_t)R->S, sizeof(tbuf));
        so = (ringattn_tensor *)calloc((size_t)R->S, sizeof(ringattn_tensor));
        sl = (ringattn_tensor *)calloc((size_t)R->S, sizeof(ringattn_tensor));
        for (s = 0; s < R->S; s++) {
            tb_new(&SO[s], ld, c->b, c->nq, c->h, c->dv); tb_new(&SL[s], ld, c->b, c->h, c->nq, 1);
            so[s] = SO[s].t; sl[s] = SL[s].t;
        }
        kv.split_out = so; kv.split_lse = sl; kv.num_split_outputs = R->S;
        R->sout = dalloc(R->S * D->nqv); R->slse = dalloc(R->S * D->nrow);
    }
    R->st = ringattn_forward_kvcache(&cfg, &kv, &D->Q.t, &O.t, &L.t);
    if (R->st != 0) printf("    %s: ringattn_forward_kvcache: %s (%s)\n", c->name, ringattn_strerror(R->st), R->err);
    tb_read(&O, R->out); tb_read(&L, R->lse);
    for (s = 0; SO && s < R->S; s++) {
        tb_read(&SO[s], R->sout + s * D->nqv); tb_read(&SL[s], R->slse + s * D->nrow);
        tb_free(&SO[s]); tb_free(&SL[s]);
    }
    free(SO); free(SL); free(so); free(sl);
    tb_free(&O); tb_free(&L);
}

/* ---------------------------------------------------------------- comparison */

typedef struct { double worst[2]; int cases, failed; } tally;   /* [0] f64, [1] f32 fraction */

static void fold(tally *t, const kcase *c, double frac)
{
    double *x = &t->worst[c->compute == RINGATTN_F64 ? 0 : 1];
    if (frac > *x || frac != frac) *x = frac;
}

/* out [b,nq,h,dv] and lse [b,h,nq] against ref under the policy; nk = the keys a row may
   meet; returns the number of failed tensors */
static int cmp_pair(const kcase *c, const kdata *D, const char *what, const double *out, const double *lse,
                    const double *rout, const double *rlse, int64_t nk, double urel, tally *t)
{
    int64_t dims[4];
    test_tol tol;
    test_cmp r;
    char name[200];
    int bad = 0;
    dims[0] = c->b; dims[1] = c->nq; dims[2] = c->h; dims[3] = c->dv;
    if (c->compute == RINGATTN_F64) tol = tol_f64_out(max_abs_f64(rout, D->nqv), D->vmax);
    else { tol = tol_f32_out(D->smax, D->vmax, c->d, nk); tol.rel = urel; }
    snprintf(name, sizeof name, "%s %s out", c->name, what);
    r = compare_report(name, out, rout, dims, "bnhd", tol);
    fold(t, c, c->compute == RINGATTN_F64 ? r.max_abs / (tol.abs / 1e-12) : r.max_frac);
    if (c->compute == RINGATTN_F64 && r.bad) fold(t, c, INFINITY);
    bad += r.bad > 0;
    dims[0] = c->b; dims[1] = c->h; dims[2] = c->nq; dims[3] = 1;
    if (c->compute == RINGATTN_F64) tol = tol_f64_lse(max_abs_finite_f64(rlse, D->nrow));
    else tol = tol_f32_lse(D->smax, c->d, nk);
    snprintf(name, sizeof name, "%s %s lse", c->name, what);
    r = compare_report(name, lse, rlse, dims, "bhn.", tol);
    fold(t, c, c->compute == RINGATTN_F64 ? r.max_abs / (tol.abs / 1e-12) : r.max_frac);
    if (c->compute == RINGATTN_F64 && r.bad) fold(t, c, INFINITY);
    bad += r.bad > 0;
    return bad;
}

/* The test's own merge of S partials: per row, M = the largest lse_s (and the sink),
   lse = M + log(sum_s exp(lse_s - M) [+ exp(sink - M)]), out = sum_s exp(lse_s - lse) out_s.
   A row with every lse_s = -inf and no sink: out 0, lse -inf. */
static void merge_partials(const kcase *c, const kdata *D, int64_t S, const double *sout, const double *slse,
                           double *out, double *lse)
{
    int64_t bb, hh, i, s, x;
    for (bb = 0; bb < c->b; bb++)
        for (hh = 0; hh < c->h; hh++)
            for (i = 0; i < c->nq; i++) {
                int64_t li = (bb * c->h + hh) * c->nq + i, oi = ((bb * c->nq + i) * c->h + hh) * c->dv;
                double M = -INFINITY, sum = 0, l;
                int sink = (c->opts & O_SINKS) != 0;
                for (s = 0; s < S; s++) if (slse[s * D->nrow + li] > M) M = slse[s * D->nrow + li];
                if (sink && D->sinks[hh] > M) M = D->sinks[hh];
                for (x = 0; x < c->dv; x++) out[oi + x] = 0.0;
                if (M == -INFINITY) { lse[li] = -INFINITY; continue; }
                for (s = 0; s < S; s++) sum += exp(slse[s * D->nrow + li] - M);
                if (sink) sum += exp(D->sinks[hh] - M);
                l = M + log(sum);
                lse[li] = l;
                for (s = 0; s < S; s++) {
                    double w = exp(slse[s * D->nrow + li] - l);
                    if (w == 0) continue;
                    for (x = 0; x < c->dv; x++) out[oi + x] += w * sout[s * D->nqv + oi + x];
                }
            }
}

/* one split configuration of case c: library vs oracle, partials vs oracle, the merges */
static int check_splits(const kcase *c, kdata *D, int64_t num_splits, int64_t split_size, tally *t)
{
    krun k;
    kres R;
    int64_t S, s;
    double *ro = dalloc(D->nqv), *rl = dalloc(D->nrow), *rso, *rsl, *mo = dalloc(D->nqv), *ml = dalloc(D->nrow);
    int bad = 0;
    char what[96];
    memset(&k, 0, sizeof k);
    k.num_splits = num_splits; k.split_size = split_size; k.threads = 1; k.want_splits = 1;
    D->rp.num_splits = num_splits; D->rp.split_size = split_size;
    S = ref_kvcache_num_splits(&D->rp);
    rso = dalloc(S * D->nqv); rsl = dalloc(S * D->nrow);
    if (ref_kvcache(&D->rp, D->q, ro, rl, rso, rsl) != 0) {
        printf("    %s: the oracle refused the case\n", c->name);
        free(ro); free(rl); free(rso); free(rsl); free(mo); free(ml);
        return 1;
    }
    lib_run(c, D, &k, &R);
    if (R.st != 0 || R.S != S) {
        if (R.S != S) printf("    %s splits=%lld size=%lld: ringattn_kvcache_num_splits %lld, oracle %lld\n", c->name,
                             (long long)num_splits, (long long)split_size, (long long)R.S, (long long)S);
        bad++;
    } else {
        snprintf(what, sizeof what, "splits=%lld size=%lld", (long long)num_splits, (long long)split_size);
        bad += cmp_pair(c, D, what, R.out, R.lse, ro, rl, D->Lmax, out_u(c), t);
        for (s = 0; s < S; s++) {
            snprintf(what, sizeof what, "splits=%lld size=%lld partial %lld", (long long)num_splits,
                     (long long)split_size, (long long)s);
            bad += cmp_pair(c, D, what, R.sout + s * D->nqv, R.slse + s * D->nrow,
                            rso + s * D->nqv, rsl + s * D->nrow, D->Lmax, 0.0, t);
        }
        /* the returned partials, merged by the test, give the result */
        merge_partials(c, D, S, R.sout, R.slse, mo, ml);
        snprintf(what, sizeof what, "splits=%lld size=%lld merged partials", (long long)num_splits, (long long)split_size);
        bad += cmp_pair(c, D, what, mo, ml, ro, rl, D->Lmax, 0.0, t);
    }
    /* the oracle's own partials, merged, give its own result (f64: the oracle agrees with itself) */
    merge_partials(c, D, S, rso, rsl, mo, ml);
    {
        kcase c64 = *c;
        c64.compute = RINGATTN_F64;
        snprintf(what, sizeof what, "splits=%lld size=%lld oracle partials merged", (long long)num_splits,
                 (long long)split_size);
        bad += cmp_pair(&c64, D, what, mo, ml, ro, rl, D->Lmax, 0.0, t);
    }
    res_free(&R);
    free(ro); free(rl); free(rso); free(rsl); free(mo); free(ml);
    return bad;
}

static int run_grid(const kcase *c, tally *t)
{
    kdata D;
    int64_t n, i;
    int bad = 0;
    const int64_t sizes[6] = { 1, 2, 3, 0, 0, 0 };
    int64_t sz[6];
    tally one;
    data_new(c, &D);
    memcpy(sz, sizes, sizeof sz);
    sz[3] = c->page > 0 ? c->page : 4; sz[4] = D.Lmax > 0 ? D.Lmax : 1; sz[5] = D.Lmax + 1;
    memset(&one, 0, sizeof one);
    for (n = 1; n <= D.Lmax + 2; n++) bad += check_splits(c, &D, n, 0, &one);
    for (i = 0; i < 6; i++) bad += check_splits(c, &D, 0, sz[i], &one);
    if (c->compute == RINGATTN_F64) printf("    %-24s worst %.3g (relative)\n", c->name, one.worst[0]);
    else printf("    %-24s worst %.3f of the policy\n", c->name, one.worst[1]);
    fold(t, c, one.worst[c->compute == RINGATTN_F64 ? 0 : 1]);
    if (c->compute != RINGATTN_F64) {   /* the oracle's self-merge, always judged in f64 */
        kcase c64 = *c;
        c64.compute = RINGATTN_F64;
        fold(t, &c64, one.worst[0]);
    }
    t->cases++;
    if (bad) t->failed++;
    data_free(&D);
    return bad;
}

/* ---------------------------------------------------------------- the cases */

#define F64 RINGATTN_F64
#define F32 RINGATTN_F32
#define BR RINGATTN_CAUSAL_BOTTOM_RIGHT
#define TL RINGATTN_CAUSAL_TOP_LEFT
#define NC RINGATTN_CAUSAL_NONE

/*  name                      b nq h hk d dv page ncache spare lens          new causal wl wr cap opts storage compute seed */
static const kcase grid[] = {
    { "paged nq=1",           3, 1, 4, 2, 8, 8, 4, 0, 2, { 0, 7, 13, 0 }, 0, BR, -1, -1, 0, 0, F64, F64, 1 },
    { "paged new MQA",        2, 2, 4, 1, 8, 6, 3, 0, 1, { 5, 0, 0, 0 }, 2, BR, -1, -1, 0, 0, F64, F64, 2 },
    { "contiguous nq=4",      2, 4, 2, 2, 6, 5, 0, 12, 0, { 12, 9, 0, 0 }, 1, BR, -1, -1, 0, 0, F64, F64, 3 },
    { "contiguous no new",    3, 2, 4, 2, 4, 4, 0, 10, 0, { 10, 3, 1, 0 }, 0, BR, -1, -1, 0, 0, F64, F64, 4 },
    { "nq > L",               2, 6, 2, 1, 4, 4, 2, 0, 0, { 2, 0, 0, 0 }, 1, BR, -1, -1, 0, 0, F64, F64, 5 },
    { "nq > L sinks",         2, 6, 2, 1, 4, 4, 2, 0, 0, { 2, 0, 0, 0 }, 1, BR, -1, -1, 0, O_SINKS, F64, F64, 6 },
    { "window left",          2, 4, 4, 2, 8, 8, 4, 0, 1, { 9, 14, 0, 0 }, 1, BR, 3, -1, 0, 0, F64, F64, 7 },
    { "window both, no causal", 2, 2, 2, 2, 8, 8, 5, 0, 0, { 11, 6, 0, 0 }, 2, NC, 2, 2, 0, 0, F64, F64, 8 },
    { "top-left causal",      2, 4, 2, 1, 8, 8, 3, 0, 0, { 7, 2, 0, 0 }, 1, TL, -1, -1, 0, 0, F64, F64, 9 },
    { "no causal",            2, 3, 4, 4, 4, 4, 4, 0, 0, { 6, 0, 0, 0 }, 1, NC, -1, -1, 0, 0, F64, F64, 10 },
    { "softcap",              2, 2, 4, 2, 8, 8, 4, 0, 0, { 10, 5, 0, 0 }, 0, BR, -1, -1, 3.0, 0, F64, F64, 11 },
    { "sinks",                3, 1, 4, 2, 8, 8, 4, 0, 0, { 10, 0, 5, 0 }, 0, BR, -1, -1, 0, O_SINKS, F64, F64, 12 },
    { "alibi per head",       2, 2, 4, 2, 8, 8, 4, 0, 0, { 10, 5, 0, 0 }, 1, BR, -1, -1, 0, O_ALIBI, F64, F64, 13 },
    { "alibi per batch",      2, 2, 4, 2, 8, 8, 0, 11, 0, { 10, 5, 0, 0 }, 1, BR, -1, -1, 0, O_ALIBI_BH, F64, F64, 14 },
    { "everything",           3, 4, 6, 3, 8, 7, 3, 0, 2, { 8, 0, 13, 0 }, 2, BR, 5, -1, 4.0, O_SINKS | O_ALIBI_BH, F64, F64, 15 },
    { "everything top-left",  2, 4, 4, 2, 8, 8, 4, 0, 1, { 9, 3, 0, 0 }, 1, TL, 2, 1, 4.0, O_SINKS | O_ALIBI, F64, F64, 16 },
};

static const kcase grid32[] = {
    { "f32 paged",            2, 2, 4, 2, 16, 16, 4, 0, 1, { 11, 6, 0, 0 }, 1, BR, -1, -1, 0, 0, F32, F32, 21 },
    { "f32 everything",       2, 4, 4, 2, 16, 16, 4, 0, 1, { 9, 14, 0, 0 }, 2, BR, 6, -1, 5.0, O_SINKS | O_ALIBI_BH, F32, F32, 22 },
    { "f16 paged",            2, 2, 4, 2, 16, 16, 4, 0, 1, { 11, 6, 0, 0 }, 1, BR, -1, -1, 0, O_SINKS, RINGATTN_F16, F32, 23 },
    { "bf16 paged",           2, 2, 4, 1, 16, 16, 4, 0, 1, { 11, 6, 0, 0 }, 1, BR, -1, -1, 0, O_ALIBI, RINGATTN_BF16, F32, 24 },
    { "fp8 e4m3 paged",       2, 2, 4, 2, 16, 16, 4, 0, 1, { 11, 6, 0, 0 }, 1, BR, -1, -1, 0, 0, RINGATTN_FP8_E4M3, F32, 25 },
    { "bf16 contiguous",      2, 1, 4, 2, 16, 16, 0, 20, 0, { 17, 3, 0, 0 }, 1, BR, -1, -1, 0, 0, RINGATTN_BF16, F32, 26 },
};

#define NGRID ((int)(sizeof grid / sizeof grid[0]))
#define NGRID32 ((int)(sizeof grid32 / sizeof grid32[0]))

/* ---------------------------------------------------------------- 3. the ring */

/* ringattn_forward, b = 1, over sequence bb gathered (f64), ring size p; out [nq,h,dv], lse [h,nq] */
static int ring_seq(const kcase *c, kdata *D, int64_t bb, int p, double *out, double *lse)
{
    int64_t L = case_len(c, bb);
    double *kg = dalloc(L * c->hk * c->d), *vg = dalloc(L * c->hk * c->dv);
    ringattn_config cfg = ringattn_default_config();
    ringattn_tensor Q, K, V, O, LS;
    char err[256] = "";
    int st;
    if (ref_kvcache_gather(&D->rp, bb, kg, vg) != 0) { free(kg); free(vg); return -100; }
    Q = ringattn_tensor_bnhd(D->q + bb * c->nq * c->h * c->d, RINGATTN_F64, 1, c->nq, c->h, c->d);
    K = ringattn_tensor_bnhd(kg, RINGATTN_F64, 1, L, c->hk, c->d);
    V = ringattn_tensor_bnhd(vg, RINGATTN_F64, 1, L, c->hk, c->dv);
    O = ringattn_tensor_bnhd(out, RINGATTN_F64, 1, c->nq, c->h, c->dv);
    LS = ringattn_tensor_bnhd(lse, RINGATTN_F64, 1, c->h, c->nq, 1);
    cfg.causal = c->causal; cfg.window_left = c->wl; cfg.window_right = c->wr; cfg.softcap = c->softcap;
    cfg.compute = RINGATTN_F64; cfg.ring_size = p; cfg.num_threads = 1;
    cfg.error_detail = err; cfg.error_detail_size = sizeof err;
    if (c->opts & O_SINKS) cfg.sinks = D->sinks;
    if (c->opts & (O_ALIBI | O_ALIBI_BH)) {   /* per batch: this batch's h slopes */
        cfg.alibi_slopes = D->slopes + ((c->opts & O_ALIBI_BH) ? bb * c->h : 0);
        cfg.alibi_size = (int)c->h;
    }
    st = ringattn_forward(&cfg, &Q, &K, &V, &O, &LS);
    if (st != 0) printf("    %s: ringattn_forward p=%d: %s (%s)\n", c->name, p, ringattn_strerror(st), err);
    free(kg); free(vg);
    return st;
}

/* the oracle's two forms agree: ref_kvcache's result for sequence bb equals ref_forward_ex (the
   dense oracle) over the sequence gathered, b = 1, nk = L; returns the worst relative error */
static double oracle_dense(const kcase *c, kdata *D, const double *out, const double *lse, int *failures)
{
    int64_t bb, i, n = c->nq * c->h * c->dv;
    double worst = 0;
    for (bb = 0; bb < c->b; bb++) {
        int64_t L = case_len(c, bb);
        double *kg = dalloc(L * c->hk * c->d), *vg = dalloc(L * c->hk * c->dv);
        double *o = dalloc(n), *l = dalloc(c->h * c->nq), scale;
        ref_problem rp;
        if (L == 0) { free(kg); free(vg); free(o); free(l); continue; }
        ref_kvcache_gather(&D->rp, bb, kg, vg);
        memset(&rp, 0, sizeof rp);
        rp.b = 1; rp.nq = c->nq; rp.nk = L; rp.h = c->h; rp.hk = c->hk; rp.d = c->d; rp.dv = c->dv;
        rp.scale = D->rp.scale; rp.causal = c->causal; rp.window_left = c->wl; rp.window_right = c->wr;
        rp.softcap = c->softcap; rp.sinks = D->rp.sinks;
        if (D->rp.alibi_slopes) {
            rp.alibi_slopes = D->slopes + ((c->opts & O_ALIBI_BH) ? bb * c->h : 0);
            rp.alibi_size = (int)c->h;
        }
        CHECK(ref_forward_ex(&rp, D->q + bb * c->nq * c->h * c->d, kg, vg, o, l, NULL) == 0,
              "%s: ref_forward_ex refused sequence %lld", c->name, (long long)bb);
        scale = fmax(max_abs_f64(o, n), D->vmax);
        for (i = 0; i < n; i++) {
            double e = fabs(o[i] - out[bb * n + i]) / scale;
            CHECK(e <= 1e-13, "%s: sequence %lld element %lld: ref_kvcache %.17g, ref_forward %.17g", c->name,
                  (long long)bb, (long long)i, out[bb * n + i], o[i]);
            if (e > worst) worst = e;
        }
        for (i = 0; i < c->h * c->nq; i++) {
            double a = lse[bb * c->h * c->nq + i], b2 = l[i];
            CHECK(a == b2 || fabs(a - b2) <= 1e-13 * fmax(1, fabs(b2)), "%s: sequence %lld lse %lld: ref_kvcache %.17g, "
                  "ref_forward %.17g", c->name, (long long)bb, (long long)i, a, b2);
        }
        free(kg); free(vg); free(o); free(l);
    }
    return worst;
}

static int test_ring(int *failures)
{
    int ci, p, checked = 0, exact = 0;
    double worst = 0, oworst = 0;
    for (ci = 0; ci < NGRID; ci++) {
        const kcase *c = &grid[ci];
        kdata D;
        krun k;
        kres R;
        int64_t bb, i, hh, x;
        data_new(c, &D);
        memset(&k, 0, sizeof k);
        k.num_splits = 3; k.threads = 1;
        lib_run(c, &D, &k, &R);
        CHECK(R.st == 0, "%s: the cache path failed", c->name);
        {   /* first the oracles against each other */
            double *ro = dalloc(D.nqv), *rl = dalloc(D.nrow), w;
            D.rp.num_splits = 1; D.rp.split_size = 0;
            CHECK(ref_kvcache(&D.rp, D.q, ro, rl, NULL, NULL) == 0, "%s: ref_kvcache refused the case", c->name);
            w = oracle_dense(c, &D, ro, rl, failures);
            if (w > oworst) oworst = w;
            free(ro); free(rl);
        }
        for (bb = 0; bb < c->b && R.st == 0; bb++) {
            int64_t L = case_len(c, bb);
            double *o = dalloc(c->nq * c->h * c->dv), *l = dalloc(c->h * c->nq);
            for (p = 2; p <= 4; p++) {
                test_tol to, tl;
                if (p > c->nq || p > L) continue;   /* a ring of p members needs p rows and p keys */
                CHECK(ring_seq(c, &D, bb, p, o, l) == 0, "%s batch %lld: ringattn_forward p=%d failed", c->name, (long long)bb, p);
                to = tol_f64_out(max_abs_f64(o, c->nq * c->h * c->dv), D.vmax);
                tl = tol_f64_lse(max_abs_finite_f64(l, c->h * c->nq));
                for (i = 0; i < c->nq; i++)
                    for (hh = 0; hh < c->h; hh++) {
                        double gl = R.lse[(bb * c->h + hh) * c->nq + i], rl = l[hh * c->nq + i];
                        CHECK(gl == rl || fabs(gl - rl) <= tl.abs, "%s batch %lld p=%d: lse[%lld][%lld] %.17g, ring %.17g",
                              c->name, (long long)bb, p, (long long)hh, (long long)i, gl, rl);
                        for (x = 0; x < c->dv; x++) {
                            double g = R.out[((bb * c->nq + i) * c->h + hh) * c->dv + x], r = o[(i * c->h + hh) * c->dv + x];
                            CHECK(fabs(g - r) <= to.abs, "%s batch %lld p=%d: out[%lld][%lld][%lld] %.17g, ring %.17g",
                                  c->name, (long long)bb, p, (long long)i, (long long)hh, (long long)x, g, r);
                            if (fabs(g - r) / (to.abs / 1e-12) > worst) worst = fabs(g - r) / (to.abs / 1e-12);
                        }
                    }
                checked++;
            }
            free(o); free(l);
        }
        res_free(&R);
        /* one split, no sinks, a contiguous cache, no new keys: ringattn_forward, ring size 1,
           bottom-right causal, on the same view, bit for bit */
        if (c->page == 0 && c->causal == BR) {
            kcase c1 = *c;
            c1.opts &= ~(unsigned)O_SINKS;
            memset(&k, 0, sizeof k);
            k.num_splits = 1; k.threads = 1; k.no_new = 1;
            D.rp.sinks = NULL;
            lib_run(&c1, &D, &k, &R);
            CHECK(R.st == 0, "%s: the cache path (one split) failed", c->name);
            for (bb = 0; bb < c->b && R.st == 0; bb++) {
                int64_t L = c->lens[bb];
                double *o = dalloc(c->nq * c->h * c->dv), *l = dalloc(c->h * c->nq);
                ringattn_config cfg = ringattn_default_config();
                ringattn_tensor Q, K, V, O, LS;
                int st;
                if (L == 0) { free(o); free(l); continue; }
                Q = D.Q.t; Q.data = (double *)D.Q.data + bb * c->nq * c->h * c->d; Q.shape[0] = 1;
                K = D.KC.t; K.data = (double *)D.KC.data + bb * c->n_cache * c->hk * c->d; K.shape[0] = 1; K.shape[1] = L;
                V = D.VC.t; V.data = (double *)D.VC.data + bb * c->n_cache * c->hk * c->dv; V.shape[0] = 1; V.shape[1] = L;
                O = ringattn_tensor_bnhd(o, RINGATTN_F64, 1, c->nq, c->h, c->dv);
                LS = ringattn_tensor_bnhd(l, RINGATTN_F64, 1, c->h, c->nq, 1);
                cfg.causal = RINGATTN_CAUSAL_BOTTOM_RIGHT; cfg.window_left = c->wl; cfg.window_right = c->wr;
                cfg.softcap = c->softcap; cfg.compute = RINGATTN_F64; cfg.ring_size = 1; cfg.num_threads = 1;
                if (c->opts & (O_ALIBI | O_ALIBI_BH)) {
                    cfg.alibi_slopes = D.slopes + ((c->opts & O_ALIBI_BH) ? bb * c->h : 0);
                    cfg.alibi_size = (int)c->h;
                }
                st = ringattn_forward(&cfg, &Q, &K, &V, &O, &LS);
                CHECK(st == 0, "%s batch %lld: ringattn_forward (ring size 1) failed", c->name, (long long)bb);
                for (i = 0; i < c->nq && st == 0; i++)
                    for (hh = 0; hh < c->h; hh++) {
                        double gl = R.lse[(bb * c->h + hh) * c->nq + i];
                        CHECK(memcmp(&gl, &l[hh * c->nq + i], sizeof gl) == 0,
                              "%s batch %lld: one split lse[%lld][%lld] %.17g, ringattn_forward %.17g (not bit-identical)",
                              c->name, (long long)bb, (long long)hh, (long long)i, gl, l[hh * c->nq + i]);
                        CHECK(memcmp(&R.out[((bb * c->nq + i) * c->h + hh) * c->dv], &o[(i * c->h + hh) * c->dv],
                                     sizeof(double) * (size_t)c->dv) == 0,
                              "%s batch %lld: one split out row (%lld, %lld) differs from ringattn_forward's",
                              c->name, (long long)bb, (long long)i, (long long)hh);
                    }
                exact++;
                free(o); free(l);
            }
            res_free(&R);
        }
        data_free(&D);
    }
    printf("3. ring: %d ringattn_forward runs (ring size 2..4) vs the cache path, worst %.3g (relative); "
           "%d sequences bit-identical to ring size 1; ref_kvcache vs the dense oracle on the gathered "
           "sequences, worst %.3g\n", checked, worst, exact, oworst);
    CHECK(checked > 20 && exact > 3, "too few ring comparisons (%d, %d)", checked, exact);
    return 0;
}

/* ---------------------------------------------------------------- 4. update_cache */

static int test_update(int *failures)
{
    static const int which[3] = { 1, 6, 2 };   /* paged with new keys (x2), contiguous with new keys */
    int w, n = 0;
    for (w = 0; w < 3; w++) {
        kcase c = grid[which[w]];
        kdata D;
        krun k;
        kres R0, R1;
        unsigned char *k0, *v0, *ke, *ve;
        size_t es, kb, vb;
        int64_t bb, j;
        if (w == 2) { c.lens[0] = 7; c.lens[1] = 9; c.n_new = 2; c.n_cache = 12; }   /* room for the new keys */
        data_new(&c, &D);
        es = ringattn__dtype_size(c.storage);
        kb = tb_bytes(&D.KC); vb = tb_bytes(&D.VC);
        k0 = (unsigned char *)malloc(kb); v0 = (unsigned char *)malloc(vb);
        ke = (unsigned char *)malloc(kb); ve = (unsigned char *)malloc(vb);
        memcpy(k0, D.KC.data, kb); memcpy(v0, D.VC.data, vb);
        memset(&k, 0, sizeof k);
        k.num_splits = 2; k.threads = 1; k.want_splits = 1;
        lib_run(&c, &D, &k, &R0);
        CHECK(R0.st == 0 && memcmp(k0, D.KC.data, kb) == 0 && memcmp(v0, D.VC.data, vb) == 0,
              "%s: without update_cache the cache changed", c.name);
        /* what the cache must become: the original, the new keys' slots written */
        memcpy(ke, k0, kb); memcpy(ve, v0, vb);
        for (bb = 0; bb < c.b; bb++)
            for (j = 0; j < c.n_new; j++) {
                int64_t row;
                int32_t saved = D.lens[bb];
                D.lens[bb] = saved + (int32_t)c.n_new;   /* the row of key lens + j, as a cached key */
                row = ref_kvcache_row(&D.rp, bb, saved + j);
                D.lens[bb] = saved;
                CHECK(row >= 0, "%s: no slot for new key %lld of batch %lld", c.name, (long long)j, (long long)bb);
                if (row < 0) continue;
                memcpy(ke + (size_t)(row * c.hk * c.d) * es, (unsigned char *)D.KN.data + (size_t)((bb * c.n_new + j) * c.hk * c.d) * es,
                       (size_t)(c.hk * c.d) * es);
                memcpy(ve + (size_t)(row * c.hk * c.dv) * es, (unsigned char *)D.VN.data + (size_t)((bb * c.n_new + j) * c.hk * c.dv) * es,
                       (size_t)(c.hk * c.dv) * es);
            }
        k.update = 1;
        lib_run(&c, &D, &k, &R1);
        CHECK(R1.st == 0, "%s: update_cache failed", c.name);
        CHECK(memcmp(ke, D.KC.data, kb) == 0, "%s: update_cache: k_cache is not the original with the new keys' slots written", c.name);
        CHECK(memcmp(ve, D.VC.data, vb) == 0, "%s: update_cache: v_cache is not the original with the new keys' slots written", c.name);
        CHECK(memcmp(R0.out, R1.out, sizeof(double) * (size_t)D.nqv) == 0 &&
              memcmp(R0.lse, R1.lse, sizeof(double) * (size_t)D.nrow) == 0 &&
              memcmp(R0.sout, R1.sout, sizeof(double) * (size_t)(R0.S * D.nqv)) == 0,
              "%s: the results depend on update_cache", c.name);
        n++;
        res_free(&R0); res_free(&R1);
        free(k0); free(v0); free(ke); free(ve);
        data_free(&D);
    }
    printf("4. update_cache: %d caches (paged and contiguous) written exactly at the new keys' slots\n", n);
    return 0;
}

/* ---------------------------------------------------------------- 5. bad input */

enum {
    B_BLOCK_HIGH, B_BLOCK_NEG, B_LEN_NEG, B_LEN_PAST_ROW, B_ROW_SHORT, B_LEN_PAST_CACHE, B_UPDATE_PAST_CACHE,
    B_UPDATE_PAST_ROW, B_K_ONLY, B_V_ONLY, B_NEW_DTYPE, B_VCACHE_DTYPE, B_Q_DIM, B_OUT_SHAPE, B_LSE_SHAPE,
    B_VCACHE_SHAPE, B_NEW_BATCH, B_SPLITS_FEWER, B_SPLITS_MORE, B_SPLIT_SHAPE, B_SPLITS_NEG, B_SIZE_NEG,
    B_BOTH_SPLITS, B_RING, B_DILATION, B_BIAS, B_MASK, B_MAX_LOGIT, B_TRACE, B_NULL_LENS, B_NULL_CACHE, B_NUM
};

static const char *bad_name[B_NUM] = {
    "a block index past the cache", "a negative block index", "a negative cache_seqlens",
    "cache_seqlens past the pages of the table row", "a table row too short (max_blocks)",
    "cache_seqlens past n_cache", "update_cache with no room in the contiguous cache",
    "update_cache with new keys past the table row", "k_new without v_new", "v_new without k_new",
    "k_new of another dtype than the cache", "v_cache of another dtype than k_cache", "q of another head dim",
    "out of the wrong shape", "lse of the wrong shape", "v_cache of another page size", "k_new of another batch",
    "one split tensor too few", "one split tensor too many", "a split tensor of the wrong shape",
    "negative num_splits", "negative split_size", "num_splits 3 and split_size 2", "ring_size 2", "dilation", "a bias", "a mask", "max_logit",
    "a trace callback", "cache_seqlens NULL", "k_cache NULL"
};

static void trace_nop(const ringattn_trace_event *ev, void *user) { (void)ev; (void)user; }

static int test_bad(int *failures)
{
    int which, cont, n = 0;
    for (cont = 0; cont < 2; cont++)
        for (which = 0; which < B_NUM; which++) {
            kcase c = cont ? grid[2] : grid[1];   /* contiguous / paged, both with new keys */
            kdata D;
            krun k;
            ringattn_config cfg;
            ringattn_kvcache kv;
            tbuf O, L, SO[4], SL[4], O2, KN2, Q2;
            ringattn_tensor so[4], sl[4], bias_t, mask_t, ml_t;
            unsigned char *k0, *v0, mask_byte = 1;
            double bias_v = 0, ml_v[64];
            int64_t seg = 1, rate = 1, S, s;
            char err[256] = "", err2[256] = "";
            int st, st2, untouched = 1;
            if (cont && (which <= B_ROW_SHORT || which == B_UPDATE_PAST_ROW)) continue;
            if (!cont && (which == B_LEN_PAST_CACHE || which == B_UPDATE_PAST_CACHE)) continue;
            if (cont) c.n_cache = 14;   /* room for the new keys, so only the change is wrong */
            data_new(&c, &D);
            memset(&k, 0, sizeof k);
            /* update_cache on, except where a length past the cache must be refused for reading */
            k.num_splits = 3; k.threads = 1; k.update = which != B_LEN_PAST_ROW && which != B_LEN_PAST_CACHE;
            kv_setup(&c, &D, &k, &cfg, &kv, err, sizeof err);
            S = ringattn_kvcache_num_splits(&cfg, &kv, c.b);
            CHECK(S == 3, "%s: ringattn_kvcache_num_splits %lld", c.name, (long long)S);
            tb_new(&O, RINGATTN_F64, c.b, c.nq, c.h, c.dv); tb_sentinel(&O);
            tb_new(&L, RINGATTN_F64, c.b, c.h, c.nq, 1); tb_sentinel(&L);
            tb_new(&O2, RINGATTN_F64, c.b, c.nq + 1, c.h, c.dv); tb_sentinel(&O2);
            tb_new(&KN2, c.storage, c.b + 1, c.n_new, c.hk, c.d);
            tb_new(&Q2, c.storage, c.b, c.nq, c.h, c.d + 1);
            for (s = 0; s < 4; s++) {
                tb_new(&SO[s], RINGATTN_F64, c.b, c.nq, c.h, c.dv); tb_sentinel(&SO[s]);
                tb_new(&SL[s], RINGATTN_F64, c.b, c.h, c.nq, 1); tb_sentinel(&SL[s]);
                so[s] = SO[s].t; sl[s] = SL[s].t;
            }
            kv.split_out = so; kv.split_lse = sl; kv.num_split_outputs = 3;
            k0 = (unsigned char *)malloc(tb_bytes(&D.KC)); v0 = (unsigned char *)malloc(tb_bytes(&D.VC));
            memcpy(k0, D.KC.data, tb_bytes(&D.KC)); memcpy(v0, D.VC.data, tb_bytes(&D.VC));
            {
                /* the valid call is valid */
                char e0[256] = "";
                cfg.error_detail = e0;
                st = ringattn_check_kvcache_call(&cfg, &kv, &D.Q.t, &O.t, &L.t, NULL);
                CHECK(st == 0, "%s: the unchanged call is refused: %s (%s)", c.name, ringattn_strerror(st), e0);
                cfg.error_detail = err;
            }
            switch (which) {
            case B_BLOCK_HIGH: D.table[0] = (int32_t)D.nblocks; break;
            case B_BLOCK_NEG: D.table[0] = -1; break;
            case B_LEN_NEG: D.lens[1] = -1; break;
            case B_LEN_PAST_ROW: D.lens[0] = (int32_t)(D.max_blocks * c.page + 1); break;
            case B_ROW_SHORT: kv.max_blocks = 1; break;
            case B_LEN_PAST_CACHE: D.lens[0] = (int32_t)(c.n_cache + 1); break;
            case B_UPDATE_PAST_CACHE: D.lens[0] = (int32_t)(c.n_cache - c.n_new + 1); break;
            case B_UPDATE_PAST_ROW: D.lens[0] = (int32_t)(D.max_blocks * c.page - c.n_new + 1); break;
            case B_K_ONLY: kv.v_new = NULL; break;
            case B_V_ONLY: kv.k_new = NULL; break;
            case B_NEW_DTYPE: D.KN.t.dtype = RINGATTN_F32; break;
            case B_VCACHE_DTYPE: D.VC.t.dtype = RINGATTN_F32; break;
            case B_Q_DIM: break;
            case B_OUT_SHAPE: break;
            case B_LSE_SHAPE: L.t.shape[2] = c.nq - 1; break;
            case B_VCACHE_SHAPE: D.VC.t.shape[1] -= 1; break;
            case B_NEW_BATCH: kv.k_new = &KN2.t; break;
            case B_SPLITS_FEWER: kv.num_split_outputs = 2; break;
            case B_SPLITS_MORE: kv.num_split_outputs = 4; break;
            case B_SPLIT_SHAPE: so[1].shape[3] = c.dv + 1; so[1].stride[2] = c.dv + 1; break;
            case B_SPLITS_NEG: kv.num_splits = -1; break;
            case B_SIZE_NEG: kv.split_size = -2; break;
            case B_BOTH_SPLITS: kv.split_size = 2; break;
            case B_RING: cfg.ring_size = 2; break;
            case B_DILATION: cfg.num_groups = 1; cfg.segment_lengths = &seg; cfg.dilation_rates = &rate; break;
            case B_BIAS: bias_t = ringattn_tensor_bnhd(&bias_v, RINGATTN_F64, 1, 1, 1, 1); cfg.bias = &bias_t; break;
            case B_MASK: mask_t = ringattn_tensor_bnhd(&mask_byte, RINGATTN_BOOL, 1, 1, 1, 1); cfg.mask = &mask_t; break;
            case B_MAX_LOGIT: ml_t = ringattn_tensor_bnhd(ml_v, RINGATTN_F64, c.b, c.h, c.nq, 1); cfg.max_logit = &ml_t; break;
            case B_TRACE: cfg.trace = trace_nop; break;
            case B_NULL_LENS: kv.cache_seqlens = NULL; break;
            case B_NULL_CACHE: kv.k_cache = NULL; break;
            }
            st = ringattn_forward_kvcache(&cfg, &kv, which == B_Q_DIM ? &Q2.t : &D.Q.t,
                                          which == B_OUT_SHAPE ? &O2.t : &O.t, &L.t);
            cfg.error_detail = err2;
            st2 = ringattn_check_kvcache_call(&cfg, &kv, which == B_Q_DIM ? &Q2.t : &D.Q.t,
                                              which == B_OUT_SHAPE ? &O2.t : &O.t, &L.t, NULL);
            CHECK(st < 0, "%s: %s: status %d", c.name, bad_name[which], st);
            CHECK(err[0] != '\0', "%s: %s: no error_detail", c.name, bad_name[which]);
            CHECK(st2 == st && strcmp(err, err2) == 0, "%s: %s: ringattn_check_kvcache_call says %d (%s), the call %d (%s)",
                  c.name, bad_name[which], st2, err2, st, err);
            /* nothing written: every output still the sentinel, the cache byte-identical */
            L.t.shape[2] = c.nq;
            untouched &= all_sentinel_f64((double *)O.data, O.count) && all_sentinel_f64((double *)O2.data, O2.count);
            untouched &= all_sentinel_f64((double *)L.data, L.count);
            for (s = 0; s < 4; s++)
                untouched &= all_sentinel_f64((double *)SO[s].data, SO[s].count) && all_sentinel_f64((double *)SL[s].data, SL[s].count);
            untouched &= memcmp(k0, D.KC.data, tb_bytes(&D.KC)) == 0 && memcmp(v0, D.VC.data, tb_bytes(&D.VC)) == 0;
            CHECK(untouched, "%s: %s: an output or the cache was written", c.name, bad_name[which]);
            if (st < 0 && untouched && err[0]) n++;
            printf("    %s, %s: %s\n", cont ? "contiguous" : "paged", bad_name[which], err);
            tb_free(&O); tb_free(&L); tb_free(&O2); tb_free(&KN2); tb_free(&Q2);
            for (s = 0; s < 4; s++) { tb_free(&SO[s]); tb_free(&SL[s]); }
            free(k0); free(v0);
            data_free(&D);
        }
    printf("5. bad input: %d refused calls, each with a sentence, nothing written, the check agreeing\n", n);
    return 0;
}

/* ---------------------------------------------------------------- 6. threads */

static int test_threads(int *failures)
{
    static const int which[3] = { 0, 14, 15 };
    int w, n = 0;
    for (w = 0; w < 3; w++) {
        const kcase *c = &grid[which[w]];
        kdata D;
        krun k;
        kres R1, R2;
        data_new(c, &D);
        memset(&k, 0, sizeof k);
        k.num_splits = 4; k.want_splits = 1;
        k.threads = 1; lib_run(c, &D, &k, &R1);
        k.threads = 2; lib_run(c, &D, &k, &R2);
        CHECK(R1.st == 0 && R2.st == 0 && R1.S == R2.S, "%s: a threaded call failed", c->name);
        if (R1.st == 0 && R2.st == 0 && R1.S == R2.S) {
            CHECK(memcmp(R1.out, R2.out, sizeof(double) * (size_t)D.nqv) == 0 &&
                  memcmp(R1.lse, R2.lse, sizeof(double) * (size_t)D.nrow) == 0 &&
                  memcmp(R1.sout, R2.sout, sizeof(double) * (size_t)(R1.S * D.nqv)) == 0 &&
                  memcmp(R1.slse, R2.slse, sizeof(double) * (size_t)(R1.S * D.nrow)) == 0,
                  "%s: num_threads 1 and 2 differ", c->name);
            n++;
        }
        res_free(&R1); res_free(&R2);
        data_free(&D);
    }
    printf("6. threads: %d cases bit-identical for num_threads 1 and 2\n", n);
    return 0;
}

/* ---------------------------------------------------------------- 7. ringattn_kvcache_num_splits */

/* the count against the oracle's over lengths (all empty included), num_splits and split_size;
   negative for bad input */
static int test_num_splits(int *failures)
{
    static const int32_t lens_set[4][3] = { { 0, 0, 0 }, { 1, 0, 0 }, { 7, 12, 3 }, { 16, 4, 0 } };
    static const int64_t ns[5] = { 0, 1, 2, 5, 40 }, sz[5] = { 0, 1, 3, 4, 100 };
    int li, a, c, n = 0;
    for (li = 0; li < 4; li++)
        for (c = 0; c < 2; c++)   /* without and with one new key */
            for (a = 0; a < 10; a++) {
                kcase kc = grid[0];
                kdata D;
                krun k;
                ringattn_config cfg;
                ringattn_kvcache kv;
                char err[256] = "";
                int64_t got, want;
                memcpy(kc.lens, lens_set[li], sizeof lens_set[li]);
                kc.n_new = c;
                data_new(&kc, &D);
                memset(&k, 0, sizeof k);
                k.num_splits = a < 5 ? ns[a] : 0; k.split_size = a < 5 ? 0 : sz[a - 5];
                kv_setup(&kc, &D, &k, &cfg, &kv, err, sizeof err);
                D.rp.num_splits = k.num_splits; D.rp.split_size = k.split_size;
                got = ringattn_kvcache_num_splits(&cfg, &kv, kc.b);
                want = ref_kvcache_num_splits(&D.rp);
                CHECK(got == want, "lengths %d,%d,%d + %d new, num_splits %lld, split_size %lld: %lld splits, the oracle %lld",
                      lens_set[li][0], lens_set[li][1], lens_set[li][2], c, (long long)k.num_splits,
                      (long long)k.split_size, (long long)got, (long long)want);
                n++;
                if (a == 0) {   /* bad input: a negative count or size, both set, no batch, no lengths */
                    kv.num_splits = -1;
                    CHECK(ringattn_kvcache_num_splits(&cfg, &kv, kc.b) < 0, "num_splits -1 accepted");
                    kv.num_splits = 0; kv.split_size = -3;
                    CHECK(ringattn_kvcache_num_splits(&cfg, &kv, kc.b) < 0, "split_size -3 accepted");
                    kv.split_size = 0;
                    CHECK(ringattn_kvcache_num_splits(&cfg, &kv, 0) < 0, "batch 0 accepted");
                    kv.cache_seqlens = NULL; kv.split_size = 2;   /* split_size needs the lengths */
                    CHECK(ringattn_kvcache_num_splits(&cfg, &kv, kc.b) < 0, "split_size without cache_seqlens accepted");
                }
                data_free(&D);
            }
    printf("7. ringattn_kvcache_num_splits: %d counts equal to the oracle's, bad input refused\n", n);
    return 0;
}

/* ---------------------------------------------------------------- main */

int main(void)
{
    int failures_ = 0, *failures = &failures_, i;
    tally t64, t32;
    memset(&t64, 0, sizeof t64); memset(&t32, 0, sizeof t32);
    for (i = 0; i < NGRID; i++) run_grid(&grid[i], &t64);
    printf("1. f64 vs the oracle: %d cases x every split count and split_size, %d failed; worst %.3g (relative)\n",
           t64.cases, t64.failed, t64.worst[0]);
    CHECK(t64.failed == 0, "f64 grid: %d cases failed", t64.failed);
    for (i = 0; i < NGRID32; i++) run_grid(&grid32[i], &t32);
    printf("2. f32 compute (f32, f16, bf16, fp8 storage) vs the oracle: %d cases, %d failed; worst %.3f of the policy "
           "(oracle self-merge %.3g relative)\n", t32.cases, t32.failed, t32.worst[1], t32.worst[0]);
    CHECK(t32.failed == 0, "f32 grid: %d cases failed", t32.failed);
    test_ring(failures);
    test_update(failures);
    test_bad(failures);
    test_threads(failures);
    test_num_splits(failures);
    printf("%s: %d failure(s)\n", failures_ ? "FAIL" : "PASS", failures_);
    return failures_ ? TEST_FAIL : TEST_PASS;
}
