/* test_steps.c - per-step goldens: what a ring member's state means after each step.

   For each case the forward runs with cfg.trace_blocks and a trace callback that reads, at
   every (member i, step t), ringattn_trace_positions / ringattn_trace_result: the block
   (Q_i over the chunk held alone) and the running result (over every chunk received so far).
   Checked:
     - the last step's running out / lse equal the final outputs bit for bit, and the final
       outputs equal those of the same call without trace_blocks bit for bit (the option
       does not touch the fast path's arithmetic), with the same block / tile counts;
     - each block equals the oracle over that chunk alone, each running result the oracle
       over the union of the chunks received up to t (dense cases: the oracle's own mask
       rule ref_visible decides each pair; an all-keys run of the same helper equals
       ref_forward); a block with no visible pair is marked skipped with lse = -inf, out = 0;
     - backward: the running dQ_i after the last step and the travelling dK/dV when they come
       home equal the final gradients bit for bit; the dK/dV partial sums after step t equal
       ref_backward with dO kept only on the rows of the members the chunk has visited, and
       the running dQ_i the oracle's dQ over the received keys;
     - ringattn_trace_result / _grads / _positions refuse bad arguments with a sentence. */
#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"
#include "ringattn_ref.h"
#include "test_util.h"

typedef struct {
    int src, computed;
    int64_t rows, keys, tiles;
    int64_t *qpos, *kpos;
    double *bout, *blse, *out, *lse;   /* forward */
    double *dq, *dk, *dv;              /* backward */
} rec;

typedef struct {
    int p, bad;                         /* bad: a helper failed inside the callback */
    rec *r;                             /* [member * p + step] */
} logbook;

static void *xcalloc(size_t n, size_t s)
{
    void *x = calloc(n ? n : 1, s);
    if (!x) { printf("out of memory\n"); exit(TEST_FAIL); }
    return x;
}

/* each (member, step) writes only its own record: safe with members as threads */
static void on_step(const ringattn_trace_event *ev, void *user)
{
    logbook *L = (logbook *)user;
    rec *r = &L->r[ev->member * L->p + ev->step];
    int64_t b = ev->batch, h = ev->heads;
    r->src = ev->src; r->computed = ev->computed; r->rows = ev->rows; r->keys = ev->keys; r->tiles = ev->tiles;
    if (!r->qpos) {
        r->qpos = (int64_t *)xcalloc((size_t)ev->rows, sizeof(int64_t));
        r->kpos = (int64_t *)xcalloc((size_t)ev->keys, sizeof(int64_t));
    }
    if (ringattn_trace_positions(ev, 0, r->qpos, ev->rows) != ev->rows) L->bad = 1;
    if (ringattn_trace_positions(ev, 1, r->kpos, ev->keys) != ev->keys) L->bad = 1;
    if (ev->pass == 0) {
        ringattn_tensor o, l;
        r->bout = (double *)xcalloc((size_t)(b * ev->rows * h * ev->dim_v), sizeof(double));
        r->out = (double *)xcalloc((size_t)(b * ev->rows * h * ev->dim_v), sizeof(double));
        r->blse = (double *)xcalloc((size_t)(b * h * ev->rows), sizeof(double));
        r->lse = (double *)xcalloc((size_t)(b * h * ev->rows), sizeof(double));
        o = ringattn_tensor_bnhd(r->bout, RINGATTN_F64, b, ev->rows, h, ev->dim_v);
        l = ringattn_tensor_lse(r->blse, RINGATTN_F64, b, h, ev->rows);
        if (ringattn_trace_result(ev, 1, &o, &l, NULL) != RINGATTN_OK) L->bad = 1;
        o.data = r->out; l.data = r->lse;
        if (ringattn_trace_result(ev, 0, &o, &l, NULL) != RINGATTN_OK) L->bad = 1;
    } else {
        ringattn_tensor dq, dk, dv;
        r->dq = (double *)xcalloc((size_t)(b * ev->rows * h * ev->dim), sizeof(double));
        r->dk = (double *)xcalloc((size_t)(b * ev->keys * ev->kv_heads * ev->dim), sizeof(double));
        r->dv = (double *)xcalloc((size_t)(b * ev->keys * ev->kv_heads * ev->dim_v), sizeof(double));
        dq = ringattn_tensor_bnhd(r->dq, RINGATTN_F64, b, ev->rows, h, ev->dim);
        dk = ringattn_tensor_bnhd(r->dk, RINGATTN_F64, b, ev->keys, ev->kv_heads, ev->dim);
        dv = ringattn_tensor_bnhd(r->dv, RINGATTN_F64, b, ev->keys, ev->kv_heads, ev->dim_v);
        if (ringattn_trace_grads(ev, &dq, &dk, &dv, NULL) != RINGATTN_OK) L->bad = 1;
    }
}

static void book_free(logbook *L)
{
    int x;
    for (x = 0; x < L->p * L->p; x++) {
        rec *r = &L->r[x];
        free(r->qpos); free(r->kpos); free(r->bout); free(r->blse); free(r->out); free(r->lse);
        free(r->dq); free(r->dk); free(r->dv);
    }
    free(L->r);
}

typedef struct {
    const char *name;
    int64_t b, nq, nk, h, hk, d, dv;
    int p, causal, wl, wr;
    ringattn_partition part;
    int ngroups; int64_t seg[2], rate[2];
    ringattn_dtype compute;
} tcase;

/* the oracle's attention of row (bb, pos, hh) over the keys kpos[0..nkeys) it may see
   (ref_visible, the oracle's literal mask rule): two-pass softmax in f64 */
static void naive_row(const ref_problem *rp, const double *q, const double *k, const double *v,
                      int64_t bb, int64_t pos, int64_t hh, const int64_t *kpos, int64_t nkeys,
                      double *out, double *lse)
{
    int64_t j, c, kh = hh / (rp->h / rp->hk);
    double m = -INFINITY, l = 0;
    const double *qi = q + ((bb * rp->nq + pos) * rp->h + hh) * rp->d;
    for (c = 0; c < rp->dv; c++) out[c] = 0;
    for (j = 0; j < nkeys; j++) {
        const double *kj = k + ((bb * rp->nk + kpos[j]) * rp->hk + kh) * rp->d;
        double s = 0;
        if (!ref_visible(rp, pos, kpos[j])) continue;
        for (c = 0; c < rp->d; c++) s += qi[c] * kj[c];
        s *= rp->scale;
        if (s > m) m = s;
    }
    if (m == -INFINITY) { *lse = -INFINITY; return; }
    for (j = 0; j < nkeys; j++) {
        const double *kj = k + ((bb * rp->nk + kpos[j]) * rp->hk + kh) * rp->d;
        const double *vj = v + ((bb * rp->nk + kpos[j]) * rp->hk + kh) * rp->dv;
        double s = 0, e;
        if (!ref_visible(rp, pos, kpos[j])) continue;
        for (c = 0; c < rp->d; c++) s += qi[c] * kj[c];
        e = exp(s * rp->scale - m);
        l += e;
        for (c = 0; c < rp->dv; c++) out[c] += e * vj[c];
    }
    for (c = 0; c < rp->dv; c++) out[c] /= l;
    *lse = m + log(l);
}

/* the oracle's dQ of row (bb, pos, hh) over the keys kpos[0..nkeys): P from the final lse,
   dS = P (dP - D), dq = scale * sum dS k */
static void naive_dq_row(const ref_problem *rp, const double *q, const double *k, const double *v,
                         const double *dout, const double *lse, const double *out,
                         int64_t bb, int64_t pos, int64_t hh, const int64_t *kpos, int64_t nkeys, double *dq)
{
    int64_t j, c, kh = hh / (rp->h / rp->hk);
    const double *qi = q + ((bb * rp->nq + pos) * rp->h + hh) * rp->d;
    const double *gi = dout + ((bb * rp->nq + pos) * rp->h + hh) * rp->dv;
    const double *oi = out + ((bb * rp->nq + pos) * rp->h + hh) * rp->dv;
    double L = lse[(bb * rp->h + hh) * rp->nq + pos], D = 0;
    for (c = 0; c < rp->d; c++) dq[c] = 0;
    if (L == -INFINITY) return;
    for (c = 0; c < rp->dv; c++) D += gi[c] * oi[c];
    for (j = 0; j < nkeys; j++) {
        const double *kj = k + ((bb * rp->nk + kpos[j]) * rp->hk + kh) * rp->d;
        const double *vj = v + ((bb * rp->nk + kpos[j]) * rp->hk + kh) * rp->dv;
        double s = 0, dp = 0, pr;
        if (!ref_visible(rp, pos, kpos[j])) continue;
        for (c = 0; c < rp->d; c++) s += qi[c] * kj[c];
        for (c = 0; c < rp->dv; c++) dp += gi[c] * vj[c];
        pr = exp(s * rp->scale - L);
        for (c = 0; c < rp->d; c++) dq[c] += rp->scale * pr * (dp - D) * kj[c];
    }
}

static int same_bits(double a, double b)
{
    return a == b || (a != a && b != b);
}

static int run_case(const tcase *c, int *failures)
{
    int64_t b = c->b, nq = c->nq, nk = c->nk, h = c->h, hk = c->hk, d = c->d, dv = c->dv;
    int p = c->p, i, t, dense = c->ngroups == 0, f0 = *failures;
    int64_t nqe = b * nq * h, nke = b * nk * hk, x, r, e, bb, hh;
    double *q = (double *)xcalloc((size_t)(nqe * d), sizeof(double));
    double *k = (double *)xcalloc((size_t)(nke * d), sizeof(double));
    double *v = (double *)xcalloc((size_t)(nke * dv), sizeof(double));
    double *dout = (double *)xcalloc((size_t)(nqe * dv), sizeof(double));
    double *out = (double *)xcalloc((size_t)(nqe * dv), sizeof(double));
    double *out0 = (double *)xcalloc((size_t)(nqe * dv), sizeof(double));
    double *lse = (double *)xcalloc((size_t)(b * h * nq), sizeof(double));
    double *lse0 = (double *)xcalloc((size_t)(b * h * nq), sizeof(double));
    double *dq = (double *)xcalloc((size_t)(nqe * d), sizeof(double));
    double *dk = (double *)xcalloc((size_t)(nke * d), sizeof(double));
    double *dvv = (double *)xcalloc((size_t)(nke * dv), sizeof(double));
    double *rdq = (double *)xcalloc((size_t)(nqe * d), sizeof(double));
    double *rdk = (double *)xcalloc((size_t)(nke * d), sizeof(double));
    double *rdv = (double *)xcalloc((size_t)(nke * dv), sizeof(double));
    double *mdout = (double *)xcalloc((size_t)(nqe * dv), sizeof(double));
    double *ro = (double *)xcalloc((size_t)dv, sizeof(double)), rl;
    double *rout = (double *)xcalloc((size_t)(nqe * dv), sizeof(double));
    double *rlse = (double *)xcalloc((size_t)(b * h * nq), sizeof(double));
    int64_t *keys = (int64_t *)xcalloc((size_t)nk, sizeof(int64_t));
    ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F64, b, nq, h, d);
    ringattn_tensor K = ringattn_tensor_bnhd(k, RINGATTN_F64, b, nk, hk, d);
    ringattn_tensor V = ringattn_tensor_bnhd(v, RINGATTN_F64, b, nk, hk, dv);
    ringattn_tensor G = ringattn_tensor_bnhd(dout, RINGATTN_F64, b, nq, h, dv);
    ringattn_tensor O = ringattn_tensor_bnhd(out, RINGATTN_F64, b, nq, h, dv);
    ringattn_tensor O0 = ringattn_tensor_bnhd(out0, RINGATTN_F64, b, nq, h, dv);
    ringattn_tensor Lt = ringattn_tensor_lse(lse, RINGATTN_F64, b, h, nq);
    ringattn_tensor L0 = ringattn_tensor_lse(lse0, RINGATTN_F64, b, h, nq);
    ringattn_tensor DQ = ringattn_tensor_bnhd(dq, RINGATTN_F64, b, nq, h, d);
    ringattn_tensor DK = ringattn_tensor_bnhd(dk, RINGATTN_F64, b, nk, hk, d);
    ringattn_tensor DV = ringattn_tensor_bnhd(dvv, RINGATTN_F64, b, nk, hk, dv);
    ringattn_config cfg = ringattn_default_config(), plain;
    ringattn_stats st, st0;
    ref_problem rp;
    logbook F, B;
    char err[256] = "";
    double vmax, omax = 1, lmax = 1, gt = c->compute == RINGATTN_F64 ? 1e-11 : 1e-4;
    test_tol to, tl;

    printf("%s: b=%lld nq=%lld nk=%lld h=%lld hk=%lld p=%d\n", c->name, (long long)b, (long long)nq,
           (long long)nk, (long long)h, (long long)hk, p);
    fill_normal(q, nqe * d, 11); fill_normal(k, nke * d, 12); fill_normal(v, nke * dv, 13);
    fill_normal(dout, nqe * dv, 14);
    cfg.ring_size = p; cfg.causal = c->causal; cfg.compute = c->compute;
    cfg.window_left = c->wl; cfg.window_right = c->wr; cfg.partition = c->part;
    cfg.num_groups = c->ngroups; cfg.segment_lengths = c->seg; cfg.dilation_rates = c->rate;
    cfg.error_detail = err; cfg.error_detail_size = sizeof err;
    plain = cfg;
    memset(&rp, 0, sizeof rp);
    rp.b = b; rp.nq = nq; rp.nk = nk; rp.h = h; rp.hk = hk; rp.d = d; rp.dv = dv;
    rp.scale = 1.0 / sqrt((double)d); rp.causal = c->causal; rp.window_left = c->wl; rp.window_right = c->wr;
    rp.num_groups = c->ngroups; rp.segment_lengths = c->seg; rp.dilation_rates = c->rate;

    /* the plain call, then the traced one */
    plain.stats = &st0;
    CHECK(ringattn_forward(&plain, &Q, &K, &V, &O0, &L0) == RINGATTN_OK, "plain forward: %s", err);
    F.p = p; F.bad = 0; F.r = (rec *)xcalloc((size_t)(p * p), sizeof(rec));
    cfg.trace = on_step; cfg.trace_user = &F; cfg.trace_blocks = 1; cfg.stats = &st;
    CHECK(ringattn_forward(&cfg, &Q, &K, &V, &O, &Lt) == RINGATTN_OK, "traced forward: %s", err);
    CHECK(!F.bad, "a trace helper failed inside the forward callback");
    CHECK(memcmp(out, out0, (size_t)(nqe * dv) * sizeof(double)) == 0, "trace_blocks changed the output bits");
    CHECK(memcmp(lse, lse0, (size_t)(b * h * nq) * sizeof(double)) == 0, "trace_blocks changed the lse bits");
    CHECK(st.blocks_computed == st0.blocks_computed && st.tiles_computed == st0.tiles_computed &&
          st.flops == st0.flops, "trace_blocks changed the counted work");
    CHECK(st.peak_bytes_per_member == st.planned_bytes_per_member &&
          st.planned_bytes_per_member > st0.planned_bytes_per_member,
          "the block state is planned and measured (%zu planned, %zu held, %zu without)",
          st.planned_bytes_per_member, st.peak_bytes_per_member, st0.planned_bytes_per_member);

    vmax = max_abs_f64(v, nke * dv);
    if (dense) {   /* the naive helper over all keys is the oracle's forward */
        for (x = 0; x < nk; x++) keys[x] = x;
        CHECK(ref_forward(&rp, q, k, v, rout, rlse) == 0, "oracle forward");
        for (bb = 0; bb < b; bb++) for (x = 0; x < nq; x++) for (hh = 0; hh < h; hh++) {
            naive_row(&rp, q, k, v, bb, x, hh, keys, nk, ro, &rl);
            for (e = 0; e < dv; e++)
                CHECK(fabs(ro[e] - rout[((bb * nq + x) * h + hh) * dv + e]) <= 1e-12 * (vmax + 1),
                      "naive helper vs ref_forward at (%lld, %lld, %lld)", (long long)bb, (long long)x, (long long)hh);
        }
        omax = max_abs_f64(rout, nqe * dv); lmax = max_abs_finite_f64(rlse, b * h * nq);
    }
    to = c->compute == RINGATTN_F64 ? tol_f64_out(omax, vmax) : tol_f32_out(tol_smax(q, k, b, nq, nk, h, hk, d, rp.scale), vmax, d, nk);
    tl = c->compute == RINGATTN_F64 ? tol_f64_lse(lmax) : tol_f32_lse(tol_smax(q, k, b, nq, nk, h, hk, d, rp.scale), d, nk);

    for (i = 0; i < p; i++) {
        int64_t nrec = 0;   /* keys received so far */
        for (t = 0; t < p; t++) {
            rec *R = &F.r[i * p + t];
            int64_t bad_last = 0, bad_blk = 0, bad_run = 0, any_visible = 0, bad_skip = 0;
            CHECK(R->src == ((i - t) % p + p) % p, "member %d step %d: src %d", i, t, R->src);
            for (x = 0; x < R->keys; x++) keys[nrec + x] = R->kpos[x];
            nrec += R->keys;
            for (bb = 0; bb < b; bb++) for (hh = 0; hh < h; hh++) for (r = 0; r < R->rows; r++) {
                int64_t pos = R->qpos[r], at = (bb * h + hh) * R->rows + r;
                double *bo = R->bout + ((bb * R->rows + r) * h + hh) * dv;
                double *so = R->out + ((bb * R->rows + r) * h + hh) * dv;
                if (t == p - 1) {   /* the last running state is the final output, bit for bit */
                    bad_last += !same_bits(R->lse[at], lse[(bb * h + hh) * nq + pos]);
                    for (e = 0; e < dv; e++) bad_last += !same_bits(so[e], out[((bb * nq + pos) * h + hh) * dv + e]);
                }
                if (R->blse[at] != -INFINITY) any_visible = 1;
                if (!dense) continue;
                naive_row(&rp, q, k, v, bb, pos, hh, R->kpos, R->keys, ro, &rl);
                bad_blk += !(same_bits(rl, R->blse[at]) || fabs(rl - R->blse[at]) <= tl.abs + tl.rel * fabs(rl));
                for (e = 0; e < dv; e++) bad_blk += !(fabs(ro[e] - bo[e]) <= to.abs + to.rel * fabs(ro[e]));
                if (rl == -INFINITY) for (e = 0; e < dv; e++) bad_skip += bo[e] != 0;
                naive_row(&rp, q, k, v, bb, pos, hh, keys, nrec, ro, &rl);
                bad_run += !(same_bits(rl, R->lse[at]) || fabs(rl - R->lse[at]) <= tl.abs + tl.rel * fabs(rl));
                for (e = 0; e < dv; e++) bad_run += !(fabs(ro[e] - so[e]) <= to.abs + to.rel * fabs(ro[e]));
            }
            CHECK(bad_last == 0, "member %d: last step's running out/lse differ from the final outputs (%lld)", i, (long long)bad_last);
            CHECK(bad_blk == 0, "member %d step %d: block vs the oracle over chunk %d: %lld elements", i, t, R->src, (long long)bad_blk);
            CHECK(bad_run == 0, "member %d step %d: running vs the oracle over %d chunks: %lld elements", i, t, t + 1, (long long)bad_run);
            CHECK(bad_skip == 0, "member %d step %d: a row that sees nothing has block_out != 0", i, t);
            CHECK(R->computed == (R->tiles > 0), "member %d step %d: computed flag", i, t);
            if (!R->computed) CHECK(!any_visible, "member %d step %d: skipped block with a finite block_lse", i, t);
        }
    }

    /* backward */
    B.p = p; B.bad = 0; B.r = (rec *)xcalloc((size_t)(p * p), sizeof(rec));
    cfg.trace_user = &B; cfg.trace_blocks = 0; cfg.stats = NULL;
    CHECK(ringattn_backward(&cfg, &Q, &K, &V, &O, &Lt, &G, &DQ, &DK, &DV) == RINGATTN_OK, "traced backward: %s", err);
    CHECK(!B.bad, "a trace helper failed inside the backward callback");
    for (i = 0; i < p; i++) {
        int64_t nrec = 0;
        for (t = 0; t < p; t++) {
            rec *R = &B.r[i * p + t];
            int src = R->src, j;
            int64_t bad_last = 0, bad_dq = 0, bad_dkv = 0;
            for (x = 0; x < R->keys; x++) keys[nrec + x] = R->kpos[x];
            nrec += R->keys;
            for (bb = 0; bb < b; bb++) {
                for (r = 0; r < R->rows; r++) for (hh = 0; hh < h; hh++) {
                    double *g = R->dq + ((bb * R->rows + r) * h + hh) * d;
                    int64_t pos = R->qpos[r];
                    if (t == p - 1)
                        for (e = 0; e < d; e++) bad_last += !same_bits(g[e], dq[((bb * nq + pos) * h + hh) * d + e]);
                    if (!dense) continue;
                    naive_dq_row(&rp, q, k, v, dout, lse, out, bb, pos, hh, keys, nrec, rdq);
                    for (e = 0; e < d; e++) bad_dq += !(fabs(rdq[e] - g[e]) <= gt * (1 + fabs(rdq[e])));
                }
                if (t == p - 1)   /* chunk src's dK/dV arrive home after this step, complete */
                    for (r = 0; r < R->keys; r++) for (hh = 0; hh < hk; hh++) {
                        int64_t pos = R->kpos[r];
                        for (e = 0; e < d; e++)
                            bad_last += !same_bits(R->dk[((bb * R->keys + r) * hk + hh) * d + e], dk[((bb * nk + pos) * hk + hh) * d + e]);
                        for (e = 0; e < dv; e++)
                            bad_last += !same_bits(R->dv[((bb * R->keys + r) * hk + hh) * dv + e], dvv[((bb * nk + pos) * hk + hh) * dv + e]);
                    }
            }
            if (dense) {   /* dK/dV of chunk src so far: dO kept on the rows of members src .. i */
                memset(mdout, 0, (size_t)(nqe * dv) * sizeof(double));
                for (j = 0; j <= t; j++) {
                    rec *H = &B.r[((src + j) % p) * p + j];   /* the member that held chunk src at step j */
                    for (bb = 0; bb < b; bb++) for (r = 0; r < H->rows; r++)
                        memcpy(mdout + (bb * nq + H->qpos[r]) * h * dv, dout + (bb * nq + H->qpos[r]) * h * dv,
                               (size_t)(h * dv) * sizeof(double));
                }
                CHECK(ref_backward(&rp, q, k, v, mdout, rdq, rdk, rdv) == 0, "oracle backward");
                for (bb = 0; bb < b; bb++) for (r = 0; r < R->keys; r++) for (hh = 0; hh < hk; hh++) {
                    int64_t pos = R->kpos[r];
                    for (e = 0; e < d; e++) {
                        double want = rdk[((bb * nk + pos) * hk + hh) * d + e];
                        bad_dkv += !(fabs(R->dk[((bb * R->keys + r) * hk + hh) * d + e] - want) <= gt * (1 + fabs(want)));
                    }
                    for (e = 0; e < dv; e++) {
                        double want = rdv[((bb * nk + pos) * hk + hh) * dv + e];
                        bad_dkv += !(fabs(R->dv[((bb * R->keys + r) * hk + hh) * dv + e] - want) <= gt * (1 + fabs(want)));
                    }
                }
            }
            CHECK(bad_last == 0, "member %d: last step's dQ / arriving dK, dV differ from the final gradients (%lld)", i, (long long)bad_last);
            CHECK(bad_dq == 0, "member %d step %d: running dQ vs the oracle over %d chunks: %lld", i, t, t + 1, (long long)bad_dq);
            CHECK(bad_dkv == 0, "member %d step %d: travelling dK/dV of chunk %d vs the oracle: %lld", i, t, src, (long long)bad_dkv);
        }
    }
    book_free(&F); book_free(&B);
    free(q); free(k); free(v); free(dout); free(out); free(out0); free(lse); free(lse0);
    free(dq); free(dk); free(dvv); free(rdq); free(rdk); free(rdv); free(mdout); free(ro); free(rout); free(rlse); free(keys);
    printf("  %s\n", *failures == f0 ? "ok" : "FAILED");
    return 0;
}

/* the helpers refuse what they cannot do, in words, and write nothing */
typedef struct { int n; int *failures; } refusals;

static void on_refuse(const ringattn_trace_event *ev, void *user)
{
    refusals *R = (refusals *)user;
    int *failures = R->failures;
    char err[256] = "";
    ringattn_config c = ringattn_default_config();
    double buf[64], sentinel = 12345.0; int64_t pos[64]; int x;
    ringattn_tensor o = ringattn_tensor_bnhd(buf, RINGATTN_F64, ev->batch, ev->rows, ev->heads, ev->dim_v);
    ringattn_tensor wrong = ringattn_tensor_bnhd(buf, RINGATTN_F64, ev->batch, ev->rows + 1, ev->heads, ev->dim_v);
    c.error_detail = err; c.error_detail_size = sizeof err;
    if (ev->member != 0 || ev->step != 0) return;
    R->n++;
    for (x = 0; x < 64; x++) buf[x] = sentinel;
    CHECK(ringattn_trace_result(ev, 1, &o, NULL, &c) == RINGATTN_EUNSUPPORTED && strstr(err, "trace_blocks"),
          "block result without trace_blocks: '%s'", err);
    CHECK(ringattn_trace_result(ev, 0, &wrong, NULL, &c) == RINGATTN_ESHAPE && strstr(err, "out"), "wrong shape: '%s'", err);
    CHECK(ringattn_trace_result(ev, 2, &o, NULL, &c) == RINGATTN_ECONFIG, "block = 2");
    CHECK(ringattn_trace_result(ev, 0, NULL, NULL, &c) == RINGATTN_ENULL, "no outputs");
    CHECK(ringattn_trace_grads(ev, &o, NULL, NULL, &c) == RINGATTN_ECONFIG && strstr(err, "backward"), "grads of a forward event: '%s'", err);
    CHECK(ringattn_trace_positions(ev, 0, pos, ev->rows - 1) == RINGATTN_ESHAPE, "positions: cap too small");
    CHECK(ringattn_trace_positions(NULL, 0, pos, 64) == RINGATTN_ENULL, "positions: NULL event");
    for (x = 0; x < 64; x++) CHECK(buf[x] == sentinel, "a refused call wrote its output");
    CHECK(ringattn_trace_result(NULL, 0, &o, NULL, &c) == RINGATTN_ENULL, "NULL event");
}

static void test_refusals(int *failures)
{
    double q[4 * 2], k[4 * 2], v[4 * 2], o[4 * 2];
    ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F64, 1, 4, 1, 2);
    ringattn_tensor K = ringattn_tensor_bnhd(k, RINGATTN_F64, 1, 4, 1, 2);
    ringattn_tensor V = ringattn_tensor_bnhd(v, RINGATTN_F64, 1, 4, 1, 2);
    ringattn_tensor O = ringattn_tensor_bnhd(o, RINGATTN_F64, 1, 4, 1, 2);
    ringattn_config cfg = ringattn_default_config();
    refusals R; char err[256] = "";
    printf("refusals\n");
    fill_normal(q, 8, 1); fill_normal(k, 8, 2); fill_normal(v, 8, 3);
    R.n = 0; R.failures = failures;
    cfg.ring_size = 2; cfg.trace = on_refuse; cfg.trace_user = &R;
    cfg.error_detail = err; cfg.error_detail_size = sizeof err;
    CHECK(ringattn_forward(&cfg, &Q, &K, &V, &O, NULL) == RINGATTN_OK, "forward: %s", err);
    CHECK(R.n == 1, "the refusal callback ran");
    cfg.trace_blocks = 2;
    CHECK(ringattn_forward(&cfg, &Q, &K, &V, &O, NULL) == RINGATTN_ECONFIG && strstr(err, "trace_blocks"),
          "trace_blocks = 2 refused: '%s'", err);
}

int main(void)
{
    static const tcase cases[] = {
        /* name                          b  nq  nk  h hk d dv  p causal wl  wr  partition          groups */
        { "causal zigzag ring of 4, GQA", 2, 32, 32, 2, 1, 8, 4, 4, 1, -1, -1, RINGATTN_ZIGZAG,     0, {0, 0}, {0, 0}, RINGATTN_F64 },
        { "causal striped ring of 3",     1, 19, 19, 2, 2, 4, 4, 3, 1, -1, -1, RINGATTN_STRIPED,    0, {0, 0}, {0, 0}, RINGATTN_F64 },
        { "cross top-left, contiguous",   1, 13, 22, 1, 1, 4, 3, 4, 2, -1, -1, RINGATTN_CONTIGUOUS, 0, {0, 0}, {0, 0}, RINGATTN_F64 },
        { "window 3,1, bottom-right",     1, 17, 21, 2, 1, 4, 4, 3, 1,  3,  1, RINGATTN_CONTIGUOUS, 0, {0, 0}, {0, 0}, RINGATTN_F64 },
        { "no mask, uneven chunks",       1, 11, 11, 1, 1, 3, 5, 3, 0, -1, -1, RINGATTN_CONTIGUOUS, 0, {0, 0}, {0, 0}, RINGATTN_F64 },
        { "causal zigzag, f32 compute",   1, 24, 24, 2, 2, 8, 8, 4, 1, -1, -1, RINGATTN_ZIGZAG,     0, {0, 0}, {0, 0}, RINGATTN_F32 },
        { "dilated causal, 2 groups",     1, 32, 32, 4, 4, 4, 4, 4, 1, -1, -1, RINGATTN_CONTIGUOUS, 2, {8, 16}, {1, 2}, RINGATTN_F64 },
    };
    int failures = 0, n = (int)(sizeof cases / sizeof cases[0]), i;
    for (i = 0; i < n; i++) run_case(&cases[i], &failures);
    test_refusals(&failures);
    printf("%s: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
    return failures ? TEST_FAIL : TEST_PASS;
}
