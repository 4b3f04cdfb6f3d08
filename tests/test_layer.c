/* test_layer.c - the multihead (dilated) attention layer: ringattn_layer_forward/backward.

   Errors are max|got - ref| / max(1, max|ref|) per tensor.
   1. against the naive f64 oracle (reference/ringattn_layer_ref.c: triple-loop projections,
      the naive attention oracle, LayerNorm with its Jacobian written out): output and every
      gradient, f64 compute (err <= 1e-11) and f32 compute (err <= 2e-4), over
      dense, ring, dilated, ring-dilated (both mixes), causal, cross attention with nq != nk,
      fused and separate weights, with and without biases / LayerNorm / its affine, both
      activation layouts, strided f32 weights;
   2. the self-attention fast path against the same call as cross attention on copies;
   3. central finite differences of the loss sum(y * dy) for EVERY parameter element and
      every input element (f64, small shapes, self and cross): |fd - grad| <= 1e-7 max(1, |grad|max);
   4. the PyTorch goldens in reference/golden/layer/ (reference/generate_golden.py): every case,
      the files loaded as they are (rank-r .npy = the layer's tensors), f64 compute at several
      ring sizes (err <= 1e-10) and f32 compute (err <= 1e-4);
   5. the initialisation: seedable, deterministic, the documented statistics, and bit for bit
      the weights the Python port of the generator wrote into reference/golden/layer/example;
   6. every validation error: status, a sentence in error_detail, outputs untouched;
      allocation failures at every allocation: ENOMEM, outputs untouched, nothing leaked.
   argv[1]: the source root (Meson passes it). Prints the worst errors it measured. */
#include <stdlib.h>

/* counting allocator, so that failures can be injected (state in alloc_user, not global) */
typedef struct { long count, fail_at, live; } test_alloc;
static void *test_malloc(size_t sz, void *user)
{
    test_alloc *a = (test_alloc *)user;
    void *p;
    if (!a) return malloc(sz);
    if (a->count++ == a->fail_at) return NULL;
    p = malloc(sz);
    if (p) a->live++;
    return p;
}
static void test_free(void *p, void *user)
{
    test_alloc *a = (test_alloc *)user;
    if (a && p) a->live--;
    free(p);
}
#define RINGATTN_MALLOC(sz, user) test_malloc(sz, user)
#define RINGATTN_FREE(p, user) test_free(p, user)
#define RINGATTN_IMPLEMENTATION
#include "ringattn_layer.h"
#include "test_util.h"
#include "ringattn_layer_ref.h"

enum { T_Y, T_DXQ, T_DXK, T_DXV, T_DWQ, T_DWK, T_DWV, T_DWO, T_DBQ, T_DBK, T_DBV, T_DBO, T_DG, T_DB, T_N };
static const char *tnames[T_N] = { "y", "dx_q", "dx_k", "dx_v", "dwq", "dwk", "dwv", "dwo",
                                   "dbq", "dbk", "dbv", "dbo", "dln_gamma", "dln_beta" };

typedef struct { double f64[T_N], f32[T_N]; } worst_table;

typedef struct {
    const char *name;
    int64_t b, nq, nk, E, H;
    int self, fused, ln, bias, affine;
    int causal, ring, threads;
    int groups; int64_t seg[4], rate[4]; int mix;
    int alt_form;      /* activations as [b, n, 1, E] */
    int f32_weights;   /* weights stored f32 with a row stride of E + 3 (strided views) */
} lcase;

/* inputs (f64), all contiguous; win = Wq | Wk | Wv [3E, E], bin likewise */
typedef struct {
    double *xq, *xk, *xv, *dy, *win, *bin, *wo, *bo, *gam, *bet;
    float *wf;                            /* f32 strided copies of win | wo when f32_weights */
} ldata;
typedef struct { double *t[T_N]; } lres;  /* T_DWQ..T_DWV adjacent ([3E, E]), T_DBQ..T_DBV too */

static double *dalloc(int64_t n) { return (double *)calloc((size_t)(n > 0 ? n : 1), sizeof(double)); }

static int64_t t_count(const lcase *c, int t)
{
    int64_t E = c->E;
    switch (t) {
    case T_Y: case T_DXQ: return c->b * c->nq * E;
    case T_DXK: case T_DXV: return c->b * c->nk * E;
    case T_DWQ: case T_DWK: case T_DWV: case T_DWO: return E * E;
    default: return E;
    }
}

static void res_alloc(const lcase *c, lres *r)
{
    int t;
    r->t[T_DWQ] = dalloc(3 * c->E * c->E); r->t[T_DWK] = r->t[T_DWQ] + c->E * c->E; r->t[T_DWV] = r->t[T_DWK] + c->E * c->E;
    r->t[T_DBQ] = dalloc(3 * c->E); r->t[T_DBK] = r->t[T_DBQ] + c->E; r->t[T_DBV] = r->t[T_DBK] + c->E;
    for (t = 0; t < T_N; t++)
        if (!(t >= T_DWQ && t <= T_DWV) && !(t >= T_DBQ && t <= T_DBV)) r->t[t] = dalloc(t_count(c, t));
}
static void res_free(lres *r)
{
    int t;
    for (t = 0; t < T_N; t++)
        if (t != T_DWK && t != T_DWV && t != T_DBK && t != T_DBV) free(r->t[t]);
}

static void data_make(const lcase *c, ldata *d, uint64_t seed)
{
    int64_t E = c->E, mq = c->b * c->nq, mk = c->b * c->nk, i, j;
    test_rng r = rng_seed(seed);
    memset(d, 0, sizeof *d);
    d->xq = dalloc(mq * E); d->xk = dalloc(mk * E); d->xv = dalloc(mk * E); d->dy = dalloc(mq * E);
    d->win = dalloc(3 * E * E); d->bin = dalloc(3 * E); d->wo = dalloc(E * E); d->bo = dalloc(E);
    d->gam = dalloc(E); d->bet = dalloc(E);
    for (i = 0; i < mq * E; i++) { d->xq[i] = rng_normal(&r); d->dy[i] = rng_normal(&r); }
    for (i = 0; i < mk * E; i++) { d->xk[i] = rng_normal(&r); d->xv[i] = rng_normal(&r); }
    if (c->self) { memcpy(d->xk, d->xq, sizeof(double) * (size_t)(mq * E)); memcpy(d->xv, d->xq, sizeof(double) * (size_t)(mq * E)); }
    for (i = 0; i < 3 * E * E; i++) d->win[i] = rng_normal(&r) / sqrt((double)E) * 1.5;
    for (i = 0; i < E * E; i++) d->wo[i] = rng_normal(&r) / sqrt((double)E);
    for (i = 0; i < E; i++) {
        for (j = 0; j < 3; j++) d->bin[j * E + i] = c->bias ? 0.5 * rng_normal(&r) : 0.0;
        d->bo[i] = c->bias ? 0.5 * rng_normal(&r) : 0.0;
        d->gam[i] = (c->ln && c->affine) ? 1.0 + 0.3 * rng_normal(&r) : 1.0;
        d->bet[i] = (c->ln && c->affine) ? 0.3 * rng_normal(&r) : 0.0;
    }
    if (c->f32_weights) {   /* [3E + E] rows of pitch E + 3; the f64 arrays get the rounded values */
        d->wf = (float *)calloc((size_t)(4 * E * (E + 3)), sizeof(float));
        for (i = 0; i < 4 * E; i++)
            for (j = 0; j < E; j++) {
                double *src = i < 3 * E ? &d->win[i * E + j] : &d->wo[(i - 3 * E) * E + j];
                d->wf[i * (E + 3) + j] = (float)*src;
                *src = (double)(float)*src;
            }
    }
}
static void data_free(ldata *d)
{
    free(d->xq); free(d->xk); free(d->xv); free(d->dy); free(d->win); free(d->bin); free(d->wo);
    free(d->bo); free(d->gam); free(d->bet); free(d->wf);
}

static ringattn_config case_cfg(const lcase *c, ringattn_dtype compute)
{
    ringattn_config cfg = ringattn_default_config();
    cfg.compute = compute;
    cfg.causal = c->causal;
    cfg.ring_size = c->ring;
    cfg.num_threads = c->threads;
    cfg.num_groups = c->groups;
    cfg.segment_lengths = c->groups ? c->seg : NULL;
    cfg.dilation_rates = c->groups ? c->rate : NULL;
    cfg.mix = c->mix ? RINGATTN_MIX_LSE : RINGATTN_MIX_HEAD_GROUPS;
    return cfg;
}

static ringattn_tensor act(double *x, const lcase *c, int64_t n)
{
    return c->alt_form ? ringattn_tensor_bnhd(x, RINGATTN_F64, c->b, n, 1, c->E)
                       : ringattn_layer_bne(x, RINGATTN_F64, c->b, n, c->E);
}

static ringattn_layer_params case_params(const lcase *c, ldata *d)
{
    int64_t E = c->E;
    int i;
    ringattn_layer_params P = ringattn_layer_default_params(E, c->H);
    P.layer_norm = c->ln;
    if (c->fused) {
        P.w.wqkv = ringattn_layer_matrix(d->win, RINGATTN_F64, 3 * E, E);
        if (c->bias) P.w.bqkv = ringattn_layer_vector(d->bin, RINGATTN_F64, 3 * E);
    } else {
        ringattn_tensor *ws[3], *bs[3];
        ws[0] = &P.w.wq; ws[1] = &P.w.wk; ws[2] = &P.w.wv; bs[0] = &P.w.bq; bs[1] = &P.w.bk; bs[2] = &P.w.bv;
        for (i = 0; i < 3; i++) {
            *ws[i] = ringattn_layer_matrix(d->win + i * E * E, RINGATTN_F64, E, E);
            if (c->bias) *bs[i] = ringattn_layer_vector(d->bin + i * E, RINGATTN_F64, E);
        }
    }
    P.w.wo = ringattn_layer_matrix(d->wo, RINGATTN_F64, E, E);
    if (c->f32_weights) {   /* the same weights as strided f32 views */
        ringattn_tensor *ws[4];
        ws[0] = &P.w.wq; ws[1] = &P.w.wk; ws[2] = &P.w.wv; ws[3] = &P.w.wo;
        if (c->fused) {
            P.w.wqkv = ringattn_layer_matrix(d->wf, RINGATTN_F32, 3 * E, E);
            P.w.wqkv.stride[0] = E + 3;
        }
        for (i = c->fused ? 3 : 0; i < 4; i++) {
            *ws[i] = ringattn_layer_matrix(d->wf + i * E * (E + 3), RINGATTN_F32, E, E);
            ws[i]->stride[0] = E + 3;
        }
    }
    if (c->bias) P.w.bo = ringattn_layer_vector(d->bo, RINGATTN_F64, E);
    if (c->ln && c->affine) {
        P.w.ln_gamma = ringattn_layer_vector(d->gam, RINGATTN_F64, E);
        P.w.ln_beta = ringattn_layer_vector(d->bet, RINGATTN_F64, E);
    }
    return P;
}

/* the same layout for the gradients, into r */
static ringattn_layer_grads case_grads(const lcase *c, const ringattn_layer_params *P, lres *r)
{
    int64_t E = c->E;
    ringattn_layer_grads G;
    memset(&G, 0, sizeof G);
    if (c->fused) {
        G.wqkv = ringattn_layer_matrix(r->t[T_DWQ], RINGATTN_F64, 3 * E, E);
        if (P->w.bqkv.data) G.bqkv = ringattn_layer_vector(r->t[T_DBQ], RINGATTN_F64, 3 * E);
    } else {
        G.wq = ringattn_layer_matrix(r->t[T_DWQ], RINGATTN_F64, E, E);
        G.wk = ringattn_layer_matrix(r->t[T_DWK], RINGATTN_F64, E, E);
        G.wv = ringattn_layer_matrix(r->t[T_DWV], RINGATTN_F64, E, E);
        if (P->w.bq.data) {
            G.bq = ringattn_layer_vector(r->t[T_DBQ], RINGATTN_F64, E);
            G.bk = ringattn_layer_vector(r->t[T_DBK], RINGATTN_F64, E);
            G.bv = ringattn_layer_vector(r->t[T_DBV], RINGATTN_F64, E);
        }
    }
    G.wo = ringattn_layer_matrix(r->t[T_DWO], RINGATTN_F64, E, E);
    if (P->w.bo.data) G.bo = ringattn_layer_vector(r->t[T_DBO], RINGATTN_F64, E);
    if (P->w.ln_gamma.data) G.ln_gamma = ringattn_layer_vector(r->t[T_DG], RINGATTN_F64, E);
    if (P->w.ln_beta.data) G.ln_beta = ringattn_layer_vector(r->t[T_DB], RINGATTN_F64, E);
    return G;
}

/* forward + backward of the library into r; returns the status */
static int run_lib(const lcase *c, ldata *d, ringattn_dtype compute, lres *r, int *failures)
{
    ringattn_config cfg = case_cfg(c, compute);
    ringattn_layer_params P = case_params(c, d);
    ringattn_layer_grads G = case_grads(c, &P, r);
    ringattn_tensor xq = act(d->xq, c, c->nq), xk = act(d->xk, c, c->nk), xv = act(d->xv, c, c->nk);
    ringattn_tensor dy = act(d->dy, c, c->nq), y = act(r->t[T_Y], c, c->nq), dxq = act(r->t[T_DXQ], c, c->nq);
    ringattn_tensor dxk = act(r->t[T_DXK], c, c->nk), dxv = act(r->t[T_DXV], c, c->nk), y2;
    double *yf = dalloc(t_count(c, T_Y));
    char detail[256] = "";
    int st;
    int64_t i;
    cfg.error_detail = detail; cfg.error_detail_size = sizeof detail;
    y2 = act(yf, c, c->nq);
    st = ringattn_layer_forward(&cfg, &P, &xq, c->self ? NULL : &xk, c->self ? NULL : &xv, &y2);
    CHECK(st == RINGATTN_OK, "%s: forward status %d (%s)", c->name, st, detail);
    st = ringattn_layer_backward(&cfg, &P, &xq, c->self ? NULL : &xk, c->self ? NULL : &xv, &dy, &y, &dxq,
                                 c->self ? NULL : &dxk, c->self ? NULL : &dxv, &G);
    CHECK(st == RINGATTN_OK, "%s: backward status %d (%s)", c->name, st, detail);
    for (i = 0; i < t_count(c, T_Y); i++)
        if (yf[i] != r->t[T_Y][i]) { CHECK(0, "%s: forward y != backward's y at %lld", c->name, (long long)i); break; }
    free(yf);
    return st;
}

static void run_ref(const lcase *c, const ldata *d, lres *r, int *failures)
{
    ref_layer L;
    int64_t E = c->E, i;
    int rc;
    memset(&L, 0, sizeof L);
    L.b = c->b; L.nq = c->nq; L.nk = c->nk; L.E = E; L.H = c->H;
    L.attn.causal = c->causal; L.attn.window_left = L.attn.window_right = -1;
    L.attn.num_groups = c->groups; L.attn.segment_lengths = c->seg; L.attn.dilation_rates = c->rate;
    L.attn.mix = c->mix;
    L.layer_norm = c->ln; L.ln_eps = 1e-5;
    L.wq = d->win; L.wk = d->win + E * E; L.wv = d->win + 2 * E * E; L.wo = d->wo;
    L.bq = d->bin; L.bk = d->bin + E; L.bv = d->bin + 2 * E; L.bo = d->bo; L.gamma = d->gam; L.beta = d->bet;
    rc = ref_layer_forward(&L, d->xq, d->xk, d->xv, r->t[T_Y]);
    CHECK(rc == 0, "%s: ref_layer_forward failed", c->name);
    rc = ref_layer_backward(&L, d->xq, d->xk, d->xv, d->dy, r->t[T_DXQ], r->t[T_DXK], r->t[T_DXV],
                            r->t[T_DWQ], r->t[T_DWK], r->t[T_DWV], r->t[T_DBQ], r->t[T_DBK], r->t[T_DBV],
                            r->t[T_DWO], r->t[T_DBO], r->t[T_DG], r->t[T_DB]);
    CHECK(rc == 0, "%s: ref_layer_backward failed", c->name);
    if (c->self)   /* one input: its gradient is the sum of the three paths */
        for (i = 0; i < t_count(c, T_DXQ); i++) r->t[T_DXQ][i] += r->t[T_DXK][i] + r->t[T_DXV][i];
}

/* max |got - ref| / max(1, max|ref|): relative for the usual magnitudes, absolute for
   gradients that are 0 in exact arithmetic (dbk: a bias on every key shifts a row's scores
   by one constant, which the softmax ignores) */
static double rel_err(const double *got, const double *ref, int64_t n)
{
    double m = max_abs_f64(ref, n), e = 0;
    if (m < 1) m = 1;
    int64_t i;
    for (i = 0; i < n; i++) {
        double x = fabs(got[i] - ref[i]);
        if (!(x <= e)) e = x;   /* NaN propagates */
    }
    return m > 0 ? e / m : e;
}

static int tensor_wanted(const lcase *c, int t)
{
    if (c->self && (t == T_DXK || t == T_DXV)) return 0;
    if (!c->bias && t >= T_DBQ && t <= T_DBO) return 0;
    if (!(c->ln && c->affine) && (t == T_DG || t == T_DB)) return 0;
    return 1;
}

static void check_oracle(const lcase *c, worst_table *worst, int *failures)
{
    ldata d; lres lib, ref;
    int pass, t;
    data_make(c, &d, 0x1a7e5 + (uint64_t)c->E * 131 + (uint64_t)c->nq);
    res_alloc(c, &ref);
    run_ref(c, &d, &ref, failures);
    for (pass = 0; pass < 2; pass++) {
        ringattn_dtype ct = pass ? RINGATTN_F32 : RINGATTN_F64;
        double tol = pass ? 2e-4 : 1e-11, w = 0;
        res_alloc(c, &lib);
        if (run_lib(c, &d, ct, &lib, failures) == RINGATTN_OK) {
            for (t = 0; t < T_N; t++) {
                double e;
                if (!tensor_wanted(c, t)) continue;
                e = rel_err(lib.t[t], ref.t[t], t_count(c, t));
                CHECK(e <= tol, "%s (%s compute): %s rel err %.3e > %.1e", c->name, pass ? "f32" : "f64",
                      tnames[t], e, tol);
                if (pass == 0 && e > worst->f64[t]) worst->f64[t] = e;
                if (pass == 1 && e > worst->f32[t]) worst->f32[t] = e;
                if (e > w) w = e;
            }
        }
        printf("  %-28s %s compute: worst rel err over y and all gradients %.2e\n", c->name, pass ? "f32" : "f64", w);
        res_free(&lib);
    }
    res_free(&ref);
    data_free(&d);
}

/* ---------------------------------------------------------------- self vs cross on copies */
static void check_self_path(int *failures)
{
    lcase c;
    ldata d; lres s, x;
    int64_t i, n;
    double ey, ex, m;
    memset(&c, 0, sizeof c);
    c.name = "self_vs_cross"; c.b = 2; c.nq = c.nk = 16; c.E = 16; c.H = 4; c.self = 1; c.fused = 0;
    c.ln = 1; c.bias = 1; c.affine = 1; c.ring = 2; c.groups = 2; c.seg[0] = 8; c.seg[1] = 16;
    c.rate[0] = 1; c.rate[1] = 2;
    data_make(&c, &d, 77);
    res_alloc(&c, &s); res_alloc(&c, &x);
    run_lib(&c, &d, RINGATTN_F64, &s, failures);
    c.self = 0;            /* the same numbers in three buffers: the cross-attention path */
    run_lib(&c, &d, RINGATTN_F64, &x, failures);
    n = t_count(&c, T_Y);
    ey = rel_err(s.t[T_Y], x.t[T_Y], n);
    for (i = 0; i < n; i++) x.t[T_DXQ][i] += x.t[T_DXK][i] + x.t[T_DXV][i];
    ex = rel_err(s.t[T_DXQ], x.t[T_DXQ], n);
    m = rel_err(s.t[T_DWQ], x.t[T_DWQ], 3 * c.E * c.E);
    CHECK(ey <= 1e-13 && ex <= 1e-13 && m <= 1e-13, "self-attention path vs cross on copies: y %.2e dx %.2e dW_in %.2e",
          ey, ex, m);
    printf("  self-attention fast path vs cross path on copies: y %.1e, dx %.1e, dW_in %.1e (rel)\n", ey, ex, m);
    res_free(&s); res_free(&x); data_free(&d);
}

/* ---------------------------------------------------------------- finite differences */
static double loss_of(const lcase *c, ldata *d, double *ybuf)
{
    ringattn_config cfg = case_cfg(c, RINGATTN_F64);
    ringattn_layer_params P = case_params(c, d);
    ringattn_tensor xq = act(d->xq, c, c->nq), xk = act(d->xk, c, c->nk), xv = act(d->xv, c, c->nk);
    ringattn_tensor y = act(ybuf, c, c->nq);
    double L = 0;
    int64_t i;
    if (ringattn_layer_forward(&cfg, &P, &xq, c->self ? NULL : &xk, c->self ? NULL : &xv, &y) != RINGATTN_OK)
        return NAN;
    for (i = 0; i < t_count(c, T_Y); i++) L += ybuf[i] * d->dy[i];
    return L;
}

typedef struct { const char *name; double *p; int64_t n; double *g; } fd_param;

static double check_fd(const lcase *c, int *failures)
{
    ldata d; lres g;
    double *ybuf, worst = 0, h = 1e-5;
    int64_t E = c->E, mq = c->b * c->nq, mk = c->b * c->nk, i;
    int k, count = 0, np = 0;
    fd_param prm[12];
    data_make(c, &d, 4242);
    res_alloc(c, &g);
    ybuf = dalloc(mq * E);
    if (run_lib(c, &d, RINGATTN_F64, &g, failures) != RINGATTN_OK) goto out;
#define PRM(nm, ptr, cnt, grad) do { prm[np].name = nm; prm[np].p = ptr; prm[np].n = cnt; prm[np].g = grad; np++; } while (0)
    PRM("W_in (q|k|v)", d.win, 3 * E * E, g.t[T_DWQ]);
    PRM("wo", d.wo, E * E, g.t[T_DWO]);
    if (c->bias) { PRM("b_in (q|k|v)", d.bin, 3 * E, g.t[T_DBQ]); PRM("bo", d.bo, E, g.t[T_DBO]); }
    if (c->ln && c->affine) { PRM("ln_gamma", d.gam, E, g.t[T_DG]); PRM("ln_beta", d.bet, E, g.t[T_DB]); }
    PRM("x_q", d.xq, mq * E, g.t[T_DXQ]);
    if (!c->self) { PRM("x_k", d.xk, mk * E, g.t[T_DXK]); PRM("x_v", d.xv, mk * E, g.t[T_DXV]); }
#undef PRM
    for (k = 0; k < np; k++) {
        double gmax = max_abs_f64(prm[k].g, prm[k].n), wk = 0;
        for (i = 0; i < prm[k].n; i++) {
            double save = prm[k].p[i], lp, lm, fd, e;
            prm[k].p[i] = save + h; lp = loss_of(c, &d, ybuf);
            prm[k].p[i] = save - h; lm = loss_of(c, &d, ybuf);
            prm[k].p[i] = save;
            fd = (lp - lm) / (2 * h);
            e = fabs(fd - prm[k].g[i]) / (gmax > 1 ? gmax : 1);
            if (!(e <= wk)) wk = e;
            count++;
        }
        CHECK(wk <= 1e-7, "%s: finite differences of %s: worst %.3e", c->name, prm[k].name, wk);
        printf("    %-14s %5lld elements, worst %.2e\n", prm[k].name, (long long)prm[k].n, wk);
        if (!(wk <= worst)) worst = wk;
    }
    printf("  %-28s finite differences: %d elements, worst |fd - grad| / max(1, max|grad|) = %.2e\n",
           c->name, count, worst);
out:
    free(ybuf); res_free(&g); data_free(&d);
    return worst;
}

/* ---------------------------------------------------------------- PyTorch goldens */
typedef struct {
    char name[64];
    int64_t b, nq, nk, E, H;
    int ln, causal, groups, nring, mix;
    int64_t seg[8], rate[8], rings[8];
    double ln_eps;
} gcase;

static int parse_list64(const char *s, int64_t *out, int max)
{
    int n = 0;
    if (!strcmp(s, "-")) return 0;
    while (*s && n < max) {
        char *end;
        out[n++] = strtoll(s, &end, 10);
        if (end == s) return -1;
        s = (*end == ',') ? end + 1 : end;
    }
    return n;
}

static int parse_gcase(char *line, gcase *c)
{
    char *tok = strtok(line, " \t\r\n");
    if (!tok || tok[0] == '#') return -1;
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", tok);
    c->ln_eps = 1e-5;
    while ((tok = strtok(NULL, " \t\r\n")) != NULL) {
        char *v = strchr(tok, '=');
        if (!v) continue;
        *v++ = 0;
        if (!strcmp(tok, "b")) c->b = atoll(v);
        else if (!strcmp(tok, "nq")) c->nq = atoll(v);
        else if (!strcmp(tok, "nk")) c->nk = atoll(v);
        else if (!strcmp(tok, "E")) c->E = atoll(v);
        else if (!strcmp(tok, "H")) c->H = atoll(v);
        else if (!strcmp(tok, "layer_norm")) c->ln = atoi(v);
        else if (!strcmp(tok, "ln_eps")) c->ln_eps = atof(v);
        else if (!strcmp(tok, "causal"))
            c->causal = !strcmp(v, "bottom-right") ? RINGATTN_CAUSAL_BOTTOM_RIGHT
                      : !strcmp(v, "top-left") ? RINGATTN_CAUSAL_TOP_LEFT : RINGATTN_CAUSAL_NONE;
        else if (!strcmp(tok, "segments")) c->groups = parse_list64(v, c->seg, 8);
        else if (!strcmp(tok, "dilations")) (void)parse_list64(v, c->rate, 8);
        else if (!strcmp(tok, "rings")) c->nring = parse_list64(v, c->rings, 8);
        else if (!strcmp(tok, "mix")) c->mix = !strcmp(v, "lse");
    }
    return (c->b > 0 && c->E > 0 && c->H > 0 && c->nring > 0) ? 0 : -2;
}

static const char *wfiles[RINGATTN__LW_N] = { "wq", "wk", "wv", "bq", "bk", "bv", "wqkv", "bqkv", "wo", "bo",
                                              "ln_gamma", "ln_beta" };

static int file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* one golden case at one ring size and compute dtype: worst rel err over y and all gradients */
static double golden_run(const gcase *gc, const char *dir, int ring, ringattn_dtype ct, worst_table *worst,
                         int *failures)
{
    ringattn_npy_array in[4 + RINGATTN__LW_N], ref[4 + RINGATTN__LW_N];
    int have[4 + RINGATTN__LW_N];
    ringattn_tensor out[4 + RINGATTN__LW_N];
    ringattn_layer_params P = ringattn_layer_default_params(gc->E, gc->H);
    ringattn_layer_grads G;
    ringattn_tensor *pw[RINGATTN__LW_N], *gw[RINGATTN__LW_N];
    ringattn_config cfg = ringattn_default_config();
    static const char *act_in[4] = { "x_q", "x_k", "x_v", "dy" };
    static const char *act_out[4] = { "y", "dx_q", "dx_k", "dx_v" };
    static const int wt[RINGATTN__LW_N] = { T_DWQ, T_DWK, T_DWV, T_DBQ, T_DBK, T_DBV, T_DWQ, T_DBQ, T_DWO, T_DBO,
                                            T_DG, T_DB };
    char path[1024], detail[256] = "";
    double w = 0;
    int i, st;
    size_t es = ct == RINGATTN_F64 ? 8 : 4;
    memset(&G, 0, sizeof G);
    memset(in, 0, sizeof in); memset(ref, 0, sizeof ref); memset(have, 0, sizeof have); memset(out, 0, sizeof out);
    pw[0] = &P.w.wq; pw[1] = &P.w.wk; pw[2] = &P.w.wv; pw[3] = &P.w.bq; pw[4] = &P.w.bk; pw[5] = &P.w.bv;
    pw[6] = &P.w.wqkv; pw[7] = &P.w.bqkv; pw[8] = &P.w.wo; pw[9] = &P.w.bo; pw[10] = &P.w.ln_gamma; pw[11] = &P.w.ln_beta;
    gw[0] = &G.wq; gw[1] = &G.wk; gw[2] = &G.wv; gw[3] = &G.bq; gw[4] = &G.bk; gw[5] = &G.bv;
    gw[6] = &G.wqkv; gw[7] = &G.bqkv; gw[8] = &G.wo; gw[9] = &G.bo; gw[10] = &G.ln_gamma; gw[11] = &G.ln_beta;
    P.layer_norm = gc->ln; P.ln_eps = gc->ln_eps;
    cfg.compute = ct; cfg.causal = gc->causal; cfg.ring_size = ring;
    cfg.num_groups = gc->groups; cfg.segment_lengths = gc->groups ? gc->seg : NULL;
    cfg.dilation_rates = gc->groups ? gc->rate : NULL; cfg.mix = gc->mix ? RINGATTN_MIX_LSE : RINGATTN_MIX_HEAD_GROUPS;
    cfg.error_detail = detail; cfg.error_detail_size = sizeof detail;
    /* inputs and weights: the files as they are */
    for (i = 0; i < 4 + RINGATTN__LW_N; i++) {
        const char *nm = i < 4 ? act_in[i] : wfiles[i - 4];
        snprintf(path, sizeof path, "%s/%s.npy", dir, nm);
        if (!file_exists(path)) continue;
        st = ringattn_npy_load(path, &in[i], NULL);
        CHECK(st == RINGATTN_OK, "golden %s: cannot load %s", gc->name, path);
        if (st != RINGATTN_OK) goto out;
        have[i] = 1;
        if (i >= 4) *pw[i - 4] = in[i].t;
    }
    /* references, and outputs of the same shapes stored in the compute dtype */
    for (i = 0; i < 4 + RINGATTN__LW_N; i++) {
        int64_t n;
        char nm[32];
        if (i < 4) snprintf(nm, sizeof nm, "%s", act_out[i]); else snprintf(nm, sizeof nm, "d%s", wfiles[i - 4]);
        snprintf(path, sizeof path, "%s/%s.npy", dir, nm);
        if (!file_exists(path)) continue;
        st = ringattn_npy_load(path, &ref[i], NULL);
        CHECK(st == RINGATTN_OK, "golden %s: cannot load %s", gc->name, path);
        if (st != RINGATTN_OK) goto out;
        n = ref[i].t.shape[0] * ref[i].t.shape[1] * ref[i].t.shape[2] * ref[i].t.shape[3];
        out[i] = ref[i].t;
        out[i].dtype = ct;
        out[i].data = calloc((size_t)n, es);
        out[i].stride[3] = 1; out[i].stride[2] = out[i].shape[3]; out[i].stride[1] = out[i].shape[2] * out[i].shape[3];
        out[i].stride[0] = out[i].shape[1] * out[i].stride[1];
        if (i >= 4) *gw[i - 4] = out[i];
    }
    if (!have[0] || !have[3] || !out[0].data) { CHECK(0, "golden %s: x_q, dy or y missing", gc->name); goto out; }
    st = ringattn_layer_backward(&cfg, &P, &in[0].t, have[1] ? &in[1].t : NULL, have[2] ? &in[2].t : NULL,
                                 &in[3].t, &out[0], out[1].data ? &out[1] : NULL, out[2].data ? &out[2] : NULL,
                                 out[3].data ? &out[3] : NULL, &G);
    CHECK(st == RINGATTN_OK, "golden %s: backward status %d (%s)", gc->name, st, detail);
    if (st != RINGATTN_OK) goto out;
    for (i = 0; i < 4 + RINGATTN__LW_N; i++) {
        ringattn_compare_result res, r0;
        ringattn_compare_policy pol = ringattn_compare_default_policy(RINGATTN_F64);
        ringattn_tensor z;
        double e, zero = 0;
        int t;
        if (!out[i].data) continue;
        pol.atol = 0; pol.rtol = 0; pol.k = 0; pol.eps = 0;
        st = ringattn_compare(&out[i], &ref[i].t, NULL, &pol, &res, NULL);
        CHECK(st == RINGATTN_OK, "golden %s: compare status %d", gc->name, st);
        z = ref[i].t;   /* max |ref| = the largest error of an all-zero array */
        z.data = &zero; z.dtype = RINGATTN_F64; z.stride[0] = z.stride[1] = z.stride[2] = z.stride[3] = 0;
        (void)ringattn_compare(&z, &ref[i].t, NULL, &pol, &r0, NULL);
        e = res.nonfinite_mismatch ? INFINITY : res.max_abs / (r0.max_abs > 1 ? r0.max_abs : 1);
        CHECK(e <= (ct == RINGATTN_F64 ? 1e-10 : 1e-4), "golden %s ring %d %s compute: %s%s rel err %.3e",
              gc->name, ring, ct == RINGATTN_F64 ? "f64" : "f32", i < 4 ? "" : "d", i < 4 ? act_out[i] : wfiles[i - 4], e);
        if (e > w) w = e;
        t = i < 4 ? i : wt[i - 4];
        if (ct == RINGATTN_F64 && e > worst->f64[t]) worst->f64[t] = e;
        if (ct == RINGATTN_F32 && e > worst->f32[t]) worst->f32[t] = e;
    }
out:
    for (i = 0; i < 4 + RINGATTN__LW_N; i++) { ringattn_npy_free(&in[i]); ringattn_npy_free(&ref[i]); free(out[i].data); }
    return w;
}

static int check_goldens(const char *root, worst_table *worst, int *failures)
{
    char path[1024], line[1024];
    FILE *f;
    int cases = 0;
    snprintf(path, sizeof path, "%s/reference/golden/layer/manifest.txt", root);
    f = fopen(path, "r");
    CHECK(f != NULL, "cannot open %s (regenerate with reference/generate_golden.py)", path);
    if (!f) return 0;
    while (fgets(line, sizeof line, f)) {
        gcase gc;
        char dir[1024];
        int k, rc = parse_gcase(line, &gc);
        double w64 = 0, w32;
        if (rc == -1) continue;
        CHECK(rc == 0, "bad manifest line for %s", gc.name);
        if (rc) continue;
        snprintf(dir, sizeof dir, "%s/reference/golden/layer/%s", root, gc.name);
        for (k = 0; k < gc.nring; k++) {
            double w = golden_run(&gc, dir, (int)gc.rings[k], RINGATTN_F64, worst, failures);
            if (w > w64) w64 = w;
        }
        w32 = golden_run(&gc, dir, (int)gc.rings[gc.nring - 1], RINGATTN_F32, worst, failures);
        printf("  golden %-24s rings %d..%lld: f64 worst rel err %.2e, f32 %.2e\n", gc.name,
               (int)gc.rings[0], (long long)gc.rings[gc.nring - 1], w64, w32);
        cases++;
    }
    fclose(f);
    CHECK(cases > 0, "no golden layer cases in %s", path);
    return cases;
}

/* ---------------------------------------------------------------- initialisation */
static void check_init(const char *root, int *failures)
{
    int64_t E = 64, i;
    double *w = dalloc(4 * E * E), *b = dalloc(4 * E), sd[4];
    ringattn_layer_params P = ringattn_layer_default_params(E, 8);
    ringattn_layer_rng r1 = ringattn_layer_rng_seed(7), r2;
    int k, st;
    P.w.wqkv = ringattn_layer_matrix(w, RINGATTN_F64, 3 * E, E);
    P.w.bqkv = ringattn_layer_vector(b, RINGATTN_F64, 3 * E);
    P.w.wo = ringattn_layer_matrix(w + 3 * E * E, RINGATTN_F64, E, E);
    P.w.bo = ringattn_layer_vector(b + 3 * E, RINGATTN_F64, E);
    for (i = 0; i < 4 * E; i++) b[i] = 5;
    st = ringattn_layer_init(NULL, &P, 0.5, &r1);
    CHECK(st == RINGATTN_OK, "init status %d", st);
    for (k = 0; k < 4; k++) {
        double s = 0;
        for (i = 0; i < E * E; i++) s += w[k * E * E + i] * w[k * E * E + i];
        sd[k] = sqrt(s / (double)(E * E));
        CHECK(fabs(sd[k] / ((k >= 2 ? 0.5 : 1.0) / sqrt((double)E)) - 1) < 0.05,
              "init: std of block %d is %.4f, expected %.4f", k, sd[k], (k >= 2 ? 0.5 : 1.0) / sqrt((double)E));
    }
    for (i = 0; i < 4 * E; i++) if (b[i] != 0) { CHECK(0, "init: bias %lld not 0", (long long)i); break; }
    printf("  init: std of Wq Wk Wv Wo = %.4f %.4f %.4f %.4f (expected %.4f %.4f %.4f %.4f), biases 0\n",
           sd[0], sd[1], sd[2], sd[3], 1 / sqrt((double)E), 1 / sqrt((double)E), 0.5 / sqrt((double)E), 0.5 / sqrt((double)E));
    {   /* the same seed gives the same weights; separate wq/wk/wv draw what the fused rows draw */
        double *w2 = dalloc(4 * E * E);
        ringattn_layer_params Q = ringattn_layer_default_params(E, 8);
        Q.w.wq = ringattn_layer_matrix(w2, RINGATTN_F64, E, E);
        Q.w.wk = ringattn_layer_matrix(w2 + E * E, RINGATTN_F64, E, E);
        Q.w.wv = ringattn_layer_matrix(w2 + 2 * E * E, RINGATTN_F64, E, E);
        Q.w.wo = ringattn_layer_matrix(w2 + 3 * E * E, RINGATTN_F64, E, E);
        r2 = ringattn_layer_rng_seed(7);
        st = ringattn_layer_init(NULL, &Q, 0.5, &r2);
        CHECK(st == RINGATTN_OK && !memcmp(w, w2, sizeof(double) * (size_t)(4 * E * E)),
              "init: same seed, separate layout: different weights");
        r2 = ringattn_layer_rng_seed(8);
        (void)ringattn_layer_init(NULL, &Q, 0.5, &r2);
        CHECK(memcmp(w, w2, sizeof(double) * (size_t)(4 * E * E)) != 0, "init: seeds 7 and 8 gave the same weights");
        free(w2);
    }
    free(w); free(b);
    {   /* bit for bit what the Python port of the generator wrote (f32): examples/layer.c's recipe,
           seed 42, gamma_init 0.5, then x_q and dy ~ N(0, 1) from the same generator */
        char path[1024];
        ringattn_npy_array a[4];
        static const char *nm[4] = { "wqkv", "wo", "x_q", "dy" };
        int ok = 1, j;
        memset(a, 0, sizeof a);
        for (j = 0; j < 4; j++) {
            snprintf(path, sizeof path, "%s/reference/golden/layer/example/%s.npy", root, nm[j]);
            if (ringattn_npy_load(path, &a[j], NULL) != RINGATTN_OK || a[j].t.dtype != RINGATTN_F32) ok = 0;
        }
        CHECK(ok, "init: cannot load reference/golden/layer/example/{wqkv,wo,x_q,dy}.npy as f32");
        if (ok) {
            int64_t Eg = a[1].t.shape[0], nx = a[2].t.shape[0] * a[2].t.shape[1] * a[2].t.shape[2], mism = 0, total = 0;
            float *wf = (float *)calloc((size_t)(4 * Eg * Eg + 2 * nx), sizeof(float));
            ringattn_layer_params Q = ringattn_layer_default_params(Eg, 1);
            ringattn_layer_rng rg = ringattn_layer_rng_seed(42);
            Q.w.wqkv = ringattn_layer_matrix(wf, RINGATTN_F32, 3 * Eg, Eg);
            Q.w.wo = ringattn_layer_matrix(wf + 3 * Eg * Eg, RINGATTN_F32, Eg, Eg);
            st = ringattn_layer_init(NULL, &Q, 0.5, &rg);
            for (i = 0; i < 2 * nx; i++) wf[4 * Eg * Eg + i] = (float)ringattn_layer_rng_normal(&rg);
            for (j = 0; j < 4; j++) {
                int64_t off = j == 0 ? 0 : j == 1 ? 3 * Eg * Eg : j == 2 ? 4 * Eg * Eg : 4 * Eg * Eg + nx;
                int64_t cnt = j == 0 ? 3 * Eg * Eg : j == 1 ? Eg * Eg : nx;
                for (i = 0; i < cnt; i++, total++)
                    if (((const float *)a[j].t.data)[i] != wf[off + i]) mism++;
            }
            CHECK(st == RINGATTN_OK && mism == 0, "init: %lld of %lld values differ from the Python port's",
                  (long long)mism, (long long)total);
            printf("  init: seed 42 reproduces the Python port's wqkv, wo, x_q, dy bit for bit (%lld f32 values, %lld differ)\n",
                   (long long)total, (long long)mism);
            free(wf);
        }
        for (j = 0; j < 4; j++) ringattn_npy_free(&a[j]);
    }
}

/* ---------------------------------------------------------------- errors */
typedef struct {
    float x[128], wqkv[192], bqkv[24], wo[64], bo[8], g[8], be[8], dy[128], xk[128];
    float y[128], dx[128], dwqkv[192], dbqkv[24], dwo[64], dbo[8], dg[8], db[8], dxk[128];
} err_bufs;

static void err_outputs_fill(err_bufs *e)
{
    fill_sentinel_f32(e->y, 128); fill_sentinel_f32(e->dx, 128); fill_sentinel_f32(e->dwqkv, 192);
    fill_sentinel_f32(e->dbqkv, 24); fill_sentinel_f32(e->dwo, 64); fill_sentinel_f32(e->dbo, 8);
    fill_sentinel_f32(e->dg, 8); fill_sentinel_f32(e->db, 8); fill_sentinel_f32(e->dxk, 128);
}
static int err_outputs_untouched(const err_bufs *e)
{
    return all_sentinel_f32(e->y, 128) && all_sentinel_f32(e->dx, 128) && all_sentinel_f32(e->dwqkv, 192) &&
           all_sentinel_f32(e->dbqkv, 24) && all_sentinel_f32(e->dwo, 64) && all_sentinel_f32(e->dbo, 8) &&
           all_sentinel_f32(e->dg, 8) && all_sentinel_f32(e->db, 8) && all_sentinel_f32(e->dxk, 128);
}

/* the call under test: 0 forward, 1 backward (self), 2 backward (cross), 3 init */
typedef struct {
    ringattn_config cfg; int null_cfg;
    ringattn_layer_params P; int null_params;
    ringattn_tensor x, xk, xv, dy, y, dx, dxk;
    const ringattn_tensor *pxk, *pxv, *pdy; ringattn_tensor *py, *pdx, *pdxk;
    ringattn_layer_grads G;
    double gamma_init; int null_rng;
} err_call;

static void err_setup(err_bufs *e, err_call *c, char *detail, size_t dsz)
{
    int64_t i;
    for (i = 0; i < 128; i++) {
        e->x[i] = (float)((i * 37 % 11) - 5) * 0.1f; e->dy[i] = (float)((i * 13 % 7) - 3) * 0.1f; e->xk[i] = e->x[i] * 0.5f;
    }
    for (i = 0; i < 192; i++) e->wqkv[i] = (float)((i * 7 % 13) - 6) * 0.05f;
    for (i = 0; i < 64; i++) e->wo[i] = (float)((i * 5 % 9) - 4) * 0.05f;
    for (i = 0; i < 24; i++) e->bqkv[i] = 0.01f * (float)i;
    for (i = 0; i < 8; i++) { e->bo[i] = 0.02f; e->g[i] = 1.0f; e->be[i] = 0.0f; }
    err_outputs_fill(e);
    memset(c, 0, sizeof *c);
    c->cfg = ringattn_default_config();
    c->cfg.error_detail = detail; c->cfg.error_detail_size = dsz;
    c->cfg.ring_size = 2;
    c->P = ringattn_layer_default_params(8, 2);
    c->P.w.wqkv = ringattn_layer_matrix(e->wqkv, RINGATTN_F32, 24, 8);
    c->P.w.bqkv = ringattn_layer_vector(e->bqkv, RINGATTN_F32, 24);
    c->P.w.wo = ringattn_layer_matrix(e->wo, RINGATTN_F32, 8, 8);
    c->P.w.bo = ringattn_layer_vector(e->bo, RINGATTN_F32, 8);
    c->P.w.ln_gamma = ringattn_layer_vector(e->g, RINGATTN_F32, 8);
    c->P.w.ln_beta = ringattn_layer_vector(e->be, RINGATTN_F32, 8);
    c->x = ringattn_layer_bne(e->x, RINGATTN_F32, 2, 8, 8);
    c->xk = ringattn_layer_bne(e->xk, RINGATTN_F32, 2, 8, 8);
    c->xv = c->xk;
    c->dy = ringattn_layer_bne(e->dy, RINGATTN_F32, 2, 8, 8);
    c->y = ringattn_layer_bne(e->y, RINGATTN_F32, 2, 8, 8);
    c->dx = ringattn_layer_bne(e->dx, RINGATTN_F32, 2, 8, 8);
    c->dxk = ringattn_layer_bne(e->dxk, RINGATTN_F32, 2, 8, 8);
    c->pdy = &c->dy; c->py = &c->y; c->pdx = &c->dx;
    c->G.wqkv = ringattn_layer_matrix(e->dwqkv, RINGATTN_F32, 24, 8);
    c->G.bqkv = ringattn_layer_vector(e->dbqkv, RINGATTN_F32, 24);
    c->G.wo = ringattn_layer_matrix(e->dwo, RINGATTN_F32, 8, 8);
    c->G.bo = ringattn_layer_vector(e->dbo, RINGATTN_F32, 8);
    c->G.ln_gamma = ringattn_layer_vector(e->dg, RINGATTN_F32, 8);
    c->G.ln_beta = ringattn_layer_vector(e->db, RINGATTN_F32, 8);
    c->gamma_init = 1.0;
}

static int err_run(err_call *c, int which)
{
    ringattn_layer_rng rng = ringattn_layer_rng_seed(1);
    const ringattn_config *cfg = c->null_cfg ? NULL : &c->cfg;
    const ringattn_layer_params *P = c->null_params ? NULL : &c->P;
    ringattn_layer_params Q;
    switch (which) {
    case 0: return ringattn_layer_forward(cfg, P, &c->x, c->pxk, c->pxv, c->py);
    case 1: return ringattn_layer_backward(cfg, P, &c->x, c->pxk, c->pxv, c->pdy, c->py, c->pdx, c->pdxk, NULL, &c->G);
    case 2: return ringattn_layer_backward(cfg, P, &c->x, &c->xk, &c->xv, c->pdy, c->py, c->pdx, c->pdxk, NULL, &c->G);
    default:   /* init writes weights: point them at the output buffers, to see that nothing is written */
        Q = c->P;
        if (Q.w.wqkv.data) Q.w.wqkv.data = c->G.wqkv.data;
        if (Q.w.bqkv.data) Q.w.bqkv.data = c->G.bqkv.data;
        if (Q.w.wo.data) Q.w.wo.data = c->G.wo.data;
        if (Q.w.bo.data) Q.w.bo.data = c->G.bo.data;
        if (Q.w.ln_gamma.data) Q.w.ln_gamma.data = c->G.ln_gamma.data;
        if (Q.w.ln_beta.data) Q.w.ln_beta.data = c->G.ln_beta.data;
        return ringattn_layer_init(cfg, c->null_params ? NULL : &Q, c->gamma_init, c->null_rng ? NULL : &rng);
    }
}

static void check_errors(int *failures)
{
    err_bufs e;
    err_call c;
    char detail[512];
    int k, st, n = 0;
    static const int64_t seg_bad[1] = { 3 }, one[1] = { 1 };
    for (k = 0; k < 4; k++) {   /* the valid calls first */
        err_setup(&e, &c, detail, sizeof detail);
        if (k == 2) c.pdxk = &c.dxk;
        st = err_run(&c, k);
        CHECK(st == RINGATTN_OK, "errors: the valid call %d fails: %d (%s)", k, st, detail);
    }
    for (k = 0; ; k++) {
        int which = 0, want = 0;
        const char *what = NULL;
        err_setup(&e, &c, detail, sizeof detail);
        detail[0] = 0;
        switch (k) {
        case 0: what = "cfg NULL"; c.null_cfg = 1; want = RINGATTN_ENULL; break;
        case 1: what = "params NULL"; c.null_params = 1; want = RINGATTN_ENULL; break;
        case 2: what = "embed_dim % num_heads"; c.P.num_heads = 3; want = RINGATTN_ESHAPE; break;
        case 3: what = "num_heads 0"; c.P.num_heads = 0; want = RINGATTN_ESHAPE; break;
        case 4: what = "embed_dim 0"; c.P.embed_dim = 0; want = RINGATTN_ESHAPE; break;
        case 5: what = "layer_norm 2"; c.P.layer_norm = 2; want = RINGATTN_ECONFIG; break;
        case 6: what = "ln_eps < 0"; c.P.ln_eps = -1; want = RINGATTN_ECONFIG; break;
        case 7: what = "ln_eps NaN"; c.P.ln_eps = NAN; want = RINGATTN_ECONFIG; break;
        case 8: what = "both layouts"; c.P.w.wq = c.P.w.wo; want = RINGATTN_ECONFIG; break;
        case 9: what = "no input weights"; c.P.w.wqkv.data = NULL; c.P.w.bqkv.data = NULL; want = RINGATTN_ENULL; break;
        case 10: what = "wo absent"; c.P.w.wo.data = NULL; want = RINGATTN_ENULL; break;
        case 11: what = "wqkv [2E, E]"; c.P.w.wqkv.shape[0] = 16; want = RINGATTN_ESHAPE; break;
        case 12: what = "bo [E+1]"; c.P.w.bo.shape[0] = 9; want = RINGATTN_ESHAPE; break;
        case 13: what = "bqkv without wqkv"; c.P.w.wqkv.data = NULL; want = RINGATTN_ECONFIG; break;
        case 14: what = "wk absent (separate)"; c.P.w.wqkv.data = NULL; c.P.w.bqkv.data = NULL;
                 c.P.w.wq = c.P.w.wv = c.P.w.wo; want = RINGATTN_ENULL; break;
        case 15: what = "ln_gamma with layer_norm 0"; c.P.layer_norm = 0; want = RINGATTN_ECONFIG; break;
        case 16: what = "weight dtype 99"; c.P.w.wo.dtype = (ringattn_dtype)99; want = RINGATTN_EDTYPE; break;
        case 17: what = "x_q E mismatch"; c.x.shape[2] = 4; want = RINGATTN_ESHAPE; break;
        case 18: what = "x_q as [b, n, 2, E/2]"; c.x.shape[2] = 2; c.x.shape[3] = 4; want = RINGATTN_ESHAPE; break;
        case 19: what = "x_k without x_v"; c.pxk = &c.xk; want = RINGATTN_ENULL; break;
        case 20: what = "x_k batch"; c.pxk = &c.xk; c.pxv = &c.xv; c.xk.shape[0] = 1; want = RINGATTN_ESHAPE; break;
        case 21: what = "x_v length != x_k"; c.pxk = &c.xk; c.xv.shape[1] = 4; c.pxv = &c.xv; want = RINGATTN_ESHAPE; break;
        case 22: what = "y NULL"; c.py = NULL; want = RINGATTN_ENULL; break;
        case 23: what = "y wrong n"; c.y.shape[1] = 4; want = RINGATTN_ESHAPE; break;
        case 24: what = "y aliases x_q"; c.y.data = e.x; want = RINGATTN_EALIAS; break;
        case 25: what = "y aliases wo"; c.y.data = e.wo; want = RINGATTN_EALIAS; break;
        case 26: what = "y zero stride"; c.y.stride[1] = 0; want = RINGATTN_ESTRIDE; break;
        case 27: what = "ring_size > n"; c.cfg.ring_size = 9; want = RINGATTN_ECONFIG; break;
        case 28: what = "compute F16"; c.cfg.compute = RINGATTN_F16; want = RINGATTN_EDTYPE; break;
        case 29: what = "n not a multiple of a segment"; c.cfg.num_groups = 1; c.cfg.segment_lengths = seg_bad;
                 c.cfg.dilation_rates = one; want = RINGATTN_ESEGMENT; break;
        case 30: what = "dilated cross nq != nk"; c.cfg.num_groups = 1; c.cfg.segment_lengths = one;
                 c.cfg.dilation_rates = one; c.pxk = &c.xk; c.pxv = &c.xv; c.xk.shape[1] = c.xv.shape[1] = 4;
                 want = RINGATTN_ESEGMENT; break;
        case 31: what = "dy NULL"; which = 1; c.pdy = NULL; want = RINGATTN_ENULL; break;
        case 32: what = "dy wrong E"; which = 1; c.dy.shape[2] = 4; want = RINGATTN_ESHAPE; break;
        case 33: what = "dx_k in self-attention"; which = 1; c.pdxk = &c.dxk; want = RINGATTN_ECONFIG; break;
        case 34: what = "grads wq, params fused"; which = 1; c.G.wq = c.G.wo; c.G.wo.data = NULL; want = RINGATTN_ECONFIG; break;
        case 35: what = "grads bo without bo"; which = 1; c.P.w.bo.data = NULL; want = RINGATTN_ECONFIG; break;
        case 36: what = "grads wo aliases wo"; which = 1; c.G.wo.data = e.wo; want = RINGATTN_EALIAS; break;
        case 37: what = "grads wo aliases dx_q"; which = 1; c.G.wo.data = e.dx; want = RINGATTN_EALIAS; break;
        case 38: what = "grads wo wrong shape"; which = 1; c.G.wo.shape[1] = 4; want = RINGATTN_ESHAPE; break;
        case 39: what = "dx_q aliases dy"; which = 1; c.dx.data = e.dy; want = RINGATTN_EALIAS; break;
        case 40: what = "dx_k wrong n (cross)"; which = 2; c.pdxk = &c.dxk; c.dxk.shape[1] = 4; want = RINGATTN_ESHAPE; break;
        case 41: what = "grads ln_gamma zero stride"; which = 1; c.G.ln_gamma.stride[0] = 0; want = RINGATTN_ESTRIDE; break;
        case 42: what = "grads gamma, LN without affine"; which = 1; c.P.w.ln_gamma.data = NULL; want = RINGATTN_ECONFIG; break;
        case 43: what = "backward: bad causal"; which = 1; c.cfg.causal = 5; want = RINGATTN_ECONFIG; break;
        case 44: what = "init: rng NULL"; which = 3; c.null_rng = 1; want = RINGATTN_ENULL; break;
        case 45: what = "init: gamma_init NaN"; which = 3; c.gamma_init = NAN; want = RINGATTN_ECONFIG; break;
        case 46: what = "init: E % H"; which = 3; c.P.num_heads = 3; want = RINGATTN_ESHAPE; break;
        case 47: what = "init: wqkv wrong shape"; which = 3; c.P.w.wqkv.shape[0] = 8; want = RINGATTN_ESHAPE; break;
        default: break;
        }
        if (!what) break;
        st = err_run(&c, which);
        CHECK(st == want, "errors: %s: status %d (%s), expected %d (%s)", what, st, ringattn_strerror(st), want,
              ringattn_strerror(want));
        CHECK(err_outputs_untouched(&e), "errors: %s: an output was written", what);
        CHECK(c.null_cfg || detail[0] != 0, "errors: %s: no error_detail", what);
        if (k == 2 || k == 13 || k == 21 || k == 33 || k == 34 || k == 36)
            printf("    e.g. %-26s -> %d \"%s\"\n", what, st, detail);
        n++;
    }
    printf("  errors: %d bad calls, each refused with the expected status, a detail, outputs untouched\n", n);
}

static void check_alloc_failures(int *failures)
{
    err_bufs e;
    err_call c;
    char detail[256];
    test_alloc a;
    int which;
    for (which = 0; which < 3; which++) {
        long k, fails = 0;
        for (k = 0; k < 1000; k++) {
            int st;
            err_setup(&e, &c, detail, sizeof detail);
            if (which == 2) c.pdxk = &c.dxk;
            a.count = 0; a.fail_at = k; a.live = 0;
            c.cfg.alloc_user = &a;
            st = err_run(&c, which);
            CHECK(a.live == 0, "alloc failure %ld (call %d): %ld blocks leaked", k, which, a.live);
            if (st == RINGATTN_OK) break;
            fails++;
            CHECK(st == RINGATTN_ENOMEM, "alloc failure %ld (call %d): status %d", k, which, st);
            CHECK(err_outputs_untouched(&e), "alloc failure %ld (call %d): an output was written", k, which);
        }
        printf("  allocation failures: call %d refused cleanly at each of its %ld allocations\n", which, fails);
    }
}

int main(int argc, char **argv)
{
    const char *root = argc > 1 ? argv[1] : ".";
    int fail_count = 0, *failures = &fail_count, i, t;
    worst_table worst, gworst;
    double fd, fdw = 0;
    static const lcase cases[] = {
        /* name                      b  nq  nk  E  H self fused ln bias aff causal ring thr G  seg         rate      mix alt f32w */
        { "dense_self_fused",        2, 12, 12, 16, 2, 1, 1, 1, 1, 1, 0, 1, 1, 0, {0},        {0},       0, 0, 0 },
        { "ring3_causal_separate",   1, 12, 12, 12, 3, 1, 0, 1, 1, 1, 2, 3, 0, 0, {0},        {0},       0, 0, 0 },
        { "dilated_ring2_threads",   2, 16, 16, 16, 4, 1, 1, 1, 1, 1, 0, 2, 2, 2, {4, 8},     {1, 2},    0, 0, 0 },
        { "dilated_causal_lse_mix",  1, 16, 16, 12, 3, 1, 0, 1, 0, 1, 2, 2, 1, 2, {8, 16},    {1, 2},    1, 0, 0 },
        { "dilated3_unequal_groups", 1, 24, 24, 28, 7, 1, 1, 1, 1, 1, 2, 4, 1, 3, {6, 12, 24}, {1, 2, 4}, 0, 1, 0 },
        { "cross_dense_causal_noln", 2, 10, 14,  8, 2, 0, 0, 0, 1, 0, 1, 2, 1, 0, {0},        {0},       0, 0, 0 },
        { "cross_ring4_ln_noaffine", 1, 12, 12, 16, 4, 0, 1, 1, 1, 0, 0, 4, 1, 0, {0},        {0},       0, 1, 1 },
        { "cross_dilated_f32w",      1, 16, 16, 16, 2, 0, 0, 1, 1, 1, 0, 2, 1, 1, {16},       {2},       0, 0, 1 },
    };
    memset(&worst, 0, sizeof worst);
    memset(&gworst, 0, sizeof gworst);
    printf("1. against the naive f64 oracle (err = max|got - ref| / max(1, max|ref|))\n");
    for (i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) check_oracle(&cases[i], &worst, failures);
    printf("2. self-attention fast path\n");
    check_self_path(failures);
    printf("3. finite differences (f64, central, h = 1e-5, loss = sum(y * dy))\n");
    {
        lcase c1, c2;
        memset(&c1, 0, sizeof c1);
        c1.name = "fd_self_dilated_ring2"; c1.b = 1; c1.nq = c1.nk = 8; c1.E = 8; c1.H = 2; c1.self = 1; c1.fused = 1;
        c1.ln = 1; c1.bias = 1; c1.affine = 1; c1.causal = 2; c1.ring = 2; c1.threads = 1; c1.groups = 2;
        c1.seg[0] = 4; c1.seg[1] = 8; c1.rate[0] = 1; c1.rate[1] = 2;
        c2 = c1;
        c2.name = "fd_cross_dense_ring2"; c2.self = 0; c2.fused = 0; c2.nk = 12; c2.groups = 0; c2.causal = 1;
        fd = check_fd(&c1, failures); if (fd > fdw) fdw = fd;
        fd = check_fd(&c2, failures); if (fd > fdw) fdw = fd;
    }
    printf("4. PyTorch goldens (reference/golden/layer)\n");
    check_goldens(root, &gworst, failures);
    printf("5. initialisation\n");
    check_init(root, failures);
    printf("6. errors\n");
    check_errors(failures);
    check_alloc_failures(failures);
    printf("\nworst errors, max|got - ref| / max(1, max|ref|):\n  %-10s %12s %12s %12s %12s\n", "tensor", "oracle f64",
           "oracle f32", "torch f64", "torch f32");
    for (t = 0; t < T_N; t++)
        printf("  %-10s %12.2e %12.2e %12.2e %12.2e\n", tnames[t], worst.f64[t], worst.f32[t], gworst.f64[t], gworst.f32[t]);
    printf("worst finite-difference error: %.2e\n", fdw);
    printf("%s (%d failures)\n", fail_count ? "FAIL" : "PASS", fail_count);
    return fail_count ? TEST_FAIL : TEST_PASS;
}
