/* ringattn_ref.c - the naive f64 oracle (see ringattn_ref.h).

   Everything reduces to one routine, `attend`: a single (batch, head) whose query rows
   qpos[0..nr) attend to keys kpos[0..nc) under an explicit mask [nr][nc]. The three
   semantics only differ in what they gather:
     dense         rows 0..nq-1, keys 0..nk-1, mask = ref_visible(i, j)
     dilated mix 0 rows = keys = one segment's dilated positions, mask = causal in that
                   gathered sequence; output scaled by 1/G
     dilated mix 1 rows 0..n-1, keys = G stacked copies of 0..n-1, mask = "both in pattern g,
                   same segment (and j <= i when causal)"
   Inside `attend` the math is the textbook one: materialise S, then per row
   pass 1 max, pass 2 sum of exp, pass 3 the weighted sum of values. The score options
   (dense only) are literal too: S gets + bias - ALiBi, the mask ANDs in the options' masks
   (ref_visible_ex), and a sink is one more column of the softmax with no value. */
#include "ringattn_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ref_visible(const ref_problem *p, int64_t i, int64_t j)
{
    /* the diagonal the causal mask and the window are measured from */
    int64_t off = (p->causal == 2) ? 0 : p->nk - p->nq;
    if (p->num_seqs > 0) {   /* varlen: same sequence, then the rules in its local positions */
        int s = 0;
        while (s < p->num_seqs && !(i >= p->cu_seqlens_q[s] && i < p->cu_seqlens_q[s + 1])) s++;
        if (s == p->num_seqs || j < p->cu_seqlens_k[s] || j >= p->cu_seqlens_k[s + 1]) return 0;
        i -= p->cu_seqlens_q[s]; j -= p->cu_seqlens_k[s];
        off = (p->causal == 2) ? 0 : (p->cu_seqlens_k[s + 1] - p->cu_seqlens_k[s])
                                   - (p->cu_seqlens_q[s + 1] - p->cu_seqlens_q[s]);
    }
    if (p->causal != 0 && j > i + off) return 0;
    if (p->window_left >= 0 && j < i + off - p->window_left) return 0;
    if (p->window_right >= 0 && j > i + off + p->window_right) return 0;
    return 1;
}

int ref_visible_ex(const ref_problem *p, int64_t bb, int64_t hh, int64_t i, int64_t j)
{
    if (!ref_visible(p, i, j)) return 0;
    if (p->mask) {
        int64_t mb = p->mask_b == 1 ? 0 : bb, mh = p->mask_h == 1 ? 0 : hh;
        if (!p->mask[((mb * p->mask_h + mh) * p->nq + i) * p->nk + j]) return 0;
    }
    if (p->mask_fn && !p->mask_fn(p->mask_user, bb, hh, i, j)) return 0;
    if (p->document_ids_q && p->document_ids_q[i] != p->document_ids_k[j]) return 0;
    return 1;
}

/* what the score options add to the (capped) logit of (bb, hh, i, j): bias, minus ALiBi */
static double score_options(const ref_problem *p, int64_t bb, int64_t hh, int64_t i, int64_t j)
{
    double add = 0;
    if (p->bias) {
        int64_t b1 = p->bias_b == 1 ? 0 : bb, h1 = p->bias_h == 1 ? 0 : hh;
        add += p->bias[((b1 * p->bias_h + h1) * p->nq + i) * p->nk + j];
    }
    if (p->alibi_slopes) {
        double slope = p->alibi_slopes[p->alibi_size == p->h ? hh : bb * p->h + hh];
        int64_t dist = i + p->nk - p->nq - j;
        if (p->num_seqs > 0) {   /* varlen: |i - j + ke - qe|, the sequence's global ends */
            int s = 0;
            while (s < p->num_seqs && !(i >= p->cu_seqlens_q[s] && i < p->cu_seqlens_q[s + 1])) s++;
            if (s == p->num_seqs) return add;   /* a row in no sequence sees nothing anyway */
            dist = i - j + p->cu_seqlens_k[s + 1] - p->cu_seqlens_q[s + 1];
        }
        add -= slope * (double)(dist < 0 ? -dist : dist);
    }
    return add;
}

/* ---------------------------------------------------------------- the one dense routine */

typedef struct {
    const ref_problem *p;
    const double *q, *k, *v, *dout;   /* full tensors (dout NULL in forward)        */
    double *out, *lse, *max_logit;    /* forward outputs                            */
    double *dq, *dk, *dv;             /* backward outputs, accumulated into (+=)    */
    double *dsinks, *dbias;           /* backward outputs of the options (+=)       */
    double mul;                       /* out = mul * softmax(S) V (1/G for mix 0)   */
} ref_io;

/* One (batch bb, q head hh): rows qpos[0..nr) against keys kpos[0..nc), mask [nr][nc].
   Forward: sets out and lse of the rows. Backward: adds the rows' gradients. Masked
   entries are skipped, never multiplied by zero, so NaN in an invisible key stays out.
   With a sink the row's softmax has one more column, the logit sinks[hh], that has no
   value vector: it only enlarges the denominator. */
static int attend(const ref_io *io, int64_t bb, int64_t hh, int64_t nr, const int64_t *qpos,
                  int64_t nc, const int64_t *kpos, const unsigned char *mask)
{
    const ref_problem *p = io->p;
    int64_t d = p->d, dv = p->dv, kh = hh / (p->h / p->hk), i, j, c;
    double *S = (double *)malloc(sizeof(double) * (size_t)(2 * nr * nc + 2 * nc + 1));
    double *C, *P, *dP;
    int sink = p->sinks != NULL;
    double sk = sink ? p->sinks[hh] : 0.0;
    if (!S) return -1;
    C = S + nr * nc;          /* the capped logits, before the options (for softcap's gradient) */
    P = C + nr * nc;          /* one row of probabilities */
    dP = P + nc;              /* one row of dO . v_j      */

    /* (B, N, H, D) element addresses, spelled out */
#define Q_(i)  (io->q + ((bb * p->nq + (i)) * p->h + hh) * d)
#define K_(j)  (io->k + ((bb * p->nk + (j)) * p->hk + kh) * d)
#define V_(j)  (io->v + ((bb * p->nk + (j)) * p->hk + kh) * dv)

    /* S = scale * Q K^T over ALL pairs, visible or not */
    for (i = 0; i < nr; i++)
        for (j = 0; j < nc; j++) {
            const double *qi = Q_(qpos[i]), *kj = K_(kpos[j]);
            double s = 0;
            for (c = 0; c < d; c++) s += qi[c] * kj[c];
            S[i * nc + j] = p->scale * s;
            /* softcap (Gemma 2): the logit is cap * tanh(s / cap) */
            if (p->softcap > 0) S[i * nc + j] = p->softcap * tanh(S[i * nc + j] / p->softcap);
            C[i * nc + j] = S[i * nc + j];
            /* the options: + bias - ALiBi (dense only, so qpos / kpos are positions) */
            if (p->bias || p->alibi_slopes) S[i * nc + j] += score_options(p, bb, hh, qpos[i], kpos[j]);
        }

    for (i = 0; i < nr; i++) {
        const double *Si = S + i * nc;
        const unsigned char *Mi = mask + i * nc;
        double m = 0, sum = 0, lse, M;
        int any = 0;
        /* pass 1: row max over visible keys */
        for (j = 0; j < nc; j++)
            if (Mi[j] && (!any || Si[j] > m)) { m = Si[j]; any = 1; }
        if (!io->dout && io->max_logit)   /* the keys' max, never the sink's */
            io->max_logit[(bb * p->h + hh) * p->nq + qpos[i]] = any ? m : -INFINITY;
        if (!any) {   /* sees nothing: out = 0, lse = -inf (the sink's logit with one), no gradient */
            if (!io->dout) {
                double *o = io->out + ((bb * p->nq + qpos[i]) * p->h + hh) * dv;
                for (c = 0; c < dv; c++) o[c] = 0.0;
                if (io->lse) io->lse[(bb * p->h + hh) * p->nq + qpos[i]] = sink ? sk : -INFINITY;
            }
            continue;
        }
        /* the sink is one more column: the max over it too */
        M = (sink && sk > m) ? sk : m;
        /* pass 2: normaliser, stably */
        for (j = 0; j < nc; j++)
            if (Mi[j]) sum += exp(Si[j] - M);
        if (sink) sum += exp(sk - M);
        lse = M + log(sum);
        for (j = 0; j < nc; j++) P[j] = Mi[j] ? exp(Si[j] - M) / sum : 0.0;

        if (!io->dout) {
            /* pass 3: out_i = mul * sum_j P_ij v_j */
            double *o = io->out + ((bb * p->nq + qpos[i]) * p->h + hh) * dv;
            for (c = 0; c < dv; c++) {
                double acc = 0;
                for (j = 0; j < nc; j++)
                    if (Mi[j]) acc += P[j] * V_(kpos[j])[c];
                o[c] = io->mul * acc;
            }
            if (io->lse) io->lse[(bb * p->h + hh) * p->nq + qpos[i]] = lse;
        } else {
            /* backward of out_i = mul * P_i V: the row sees dO_i = mul * dout_i */
            const double *go = io->dout + ((bb * p->nq + qpos[i]) * p->h + hh) * dv;
            double D = 0;
            double *gq = io->dq + ((bb * p->nq + qpos[i]) * p->h + hh) * d;
            for (j = 0; j < nc; j++) {
                double s = 0;
                if (!Mi[j]) continue;
                for (c = 0; c < dv; c++) s += io->mul * go[c] * V_(kpos[j])[c];
                dP[j] = s;
                D += P[j] * s;
            }
            /* the sink column: P_sink = exp(sink - lse), dP_sink = 0, so dsink = -P_sink D */
            if (sink && io->dsinks) io->dsinks[hh] += -(exp(sk - M) / sum) * D;
            for (j = 0; j < nc; j++) {
                double ds;
                double *gk = io->dk + ((bb * p->nk + kpos[j]) * p->hk + kh) * d;
                double *gv = io->dv + ((bb * p->nk + kpos[j]) * p->hk + kh) * dv;
                const double *kj = K_(kpos[j]), *qi = Q_(qpos[i]);
                if (!Mi[j]) continue;
                ds = P[j] * (dP[j] - D);                       /* dS = P * (dP - D)   */
                if (io->dbias) {   /* dL/dbias = dS, summed over the bias's broadcast axes */
                    int64_t b1 = p->bias_b == 1 ? 0 : bb, h1 = p->bias_h == 1 ? 0 : hh;
                    io->dbias[((b1 * p->bias_h + h1) * p->nq + qpos[i]) * p->nk + kpos[j]] += ds;
                }
                if (p->softcap > 0) {   /* through the cap: d(cap tanh(x/cap))/dx = 1 - tanh^2 */
                    double t = C[i * nc + j] / p->softcap;
                    ds *= 1.0 - t * t;
                }
                for (c = 0; c < d; c++) gq[c] += p->scale * ds * kj[c];   /* dq = scale dS K   */
                for (c = 0; c < d; c++) gk[c] += p->scale * ds * qi[c];   /* dk = scale dS^T Q */
                for (c = 0; c < dv; c++) gv[c] += P[j] * io->mul * go[c]; /* dv = P^T dO       */
            }
        }
    }
#undef Q_
#undef K_
#undef V_
    free(S);
    return 0;
}

/* ---------------------------------------------------------------- the three semantics */

/* dense: every row against every key, mask by ref_visible */
static int run_dense(const ref_io *io)
{
    const ref_problem *p = io->p;
    int64_t nq = p->nq, nk = p->nk, bb, hh, i, j;
    int64_t *qpos = (int64_t *)malloc(sizeof(int64_t) * (size_t)(nq + nk));
    unsigned char *mask = (unsigned char *)malloc((size_t)(nq * nk));
    int st = 0;
    if (!qpos || !mask) { free(qpos); free(mask); return -1; }
    for (i = 0; i < nq; i++) qpos[i] = i;
    for (j = 0; j < nk; j++) qpos[nq + j] = j;
    for (bb = 0; bb < p->b && st == 0; bb++)
        for (hh = 0; hh < p->h && st == 0; hh++) {
            /* the mask of this (batch, head): the options' masks may differ per pair */
            for (i = 0; i < nq; i++)
                for (j = 0; j < nk; j++) mask[i * nk + j] = (unsigned char)ref_visible_ex(p, bb, hh, i, j);
            st = attend(io, bb, hh, nq, qpos, nk, qpos + nq, mask);
        }
    free(qpos); free(mask);
    return st;
}

/* mix 0 (head groups): gather each segment's dilated positions, attend densely within them */
static int run_head_groups(const ref_io *io)
{
    const ref_problem *p = io->p;
    int64_t n = p->nq, G = p->num_groups, bb, hh, g, t, u, jseg;
    int64_t *pos = (int64_t *)malloc(sizeof(int64_t) * (size_t)n);
    unsigned char *mask = (unsigned char *)malloc((size_t)(n * n));
    int st = 0;
    if (!pos || !mask) { free(pos); free(mask); return -1; }
    for (hh = 0; hh < p->h && st == 0; hh++) {
        /* the group of head hh: G contiguous ranges, the first h mod G one head larger */
        int64_t start = 0, s, r, o;
        for (g = 0; g < G; g++) {
            int64_t size = p->h / G + (g < p->h % G ? 1 : 0);
            if (hh < start + size) break;
            start += size;
        }
        s = p->segment_lengths[g]; r = p->dilation_rates[g]; o = g % r;
        for (jseg = 0; jseg < n / s && st == 0; jseg++) {
            int64_t m = 0;
            for (t = 0; jseg * s + o + t * r < (jseg + 1) * s; t++) pos[m++] = jseg * s + o + t * r;
            if (m == 0) continue;
            /* causal in the gathered index space: gathered key u visible to gathered query t iff u <= t */
            for (t = 0; t < m; t++)
                for (u = 0; u < m; u++) mask[t * m + u] = (unsigned char)(p->causal == 0 || u <= t);
            for (bb = 0; bb < p->b && st == 0; bb++)
                st = attend(io, bb, hh, m, pos, m, pos, mask);
        }
    }
    free(pos); free(mask);
    return st;
}

/* mix 1 (LongNet eq. 10): dense attention over a stacked key axis (g, j) of length G*n */
static int run_lse_mix(const ref_io *io)
{
    const ref_problem *p = io->p;
    int64_t n = p->nq, G = p->num_groups, bb, hh, g, i, j;
    int64_t *pos = (int64_t *)malloc(sizeof(int64_t) * (size_t)(n + G * n));
    unsigned char *mask = (unsigned char *)malloc((size_t)(n * G * n));
    int st = 0;
    if (!pos || !mask) { free(pos); free(mask); return -1; }
    for (i = 0; i < n; i++) pos[i] = i;
    for (g = 0; g < G; g++)
        for (j = 0; j < n; j++) pos[n + g * n + j] = j;   /* stacked key (g, j) is key j */
    for (hh = 0; hh < p->h && st == 0; hh++) {
        for (i = 0; i < n; i++)
            for (g = 0; g < G; g++) {
                int64_t s = p->segment_lengths[g], r = p->dilation_rates[g], o = hh % r;
                for (j = 0; j < n; j++) {
                    int in_i = (i % s) >= o && ((i % s) - o) % r == 0;
                    int in_j = (j % s) >= o && ((j % s) - o) % r == 0;
                    int vis = in_i && in_j && i / s == j / s && (p->causal == 0 || j <= i);
                    mask[i * G * n + g * n + j] = (unsigned char)vis;
                }
            }
        for (bb = 0; bb < p->b && st == 0; bb++)
            st = attend(io, bb, hh, n, pos, G * n, pos + n, mask);
    }
    free(pos); free(mask);
    return st;
}

/* ---------------------------------------------------------------- entry points */

static int valid(const ref_problem *p)
{
    int g;
    if (p->b < 1 || p->nq < 1 || p->nk < 1 || p->h < 1 || p->hk < 1 || p->d < 1 || p->dv < 1) return 0;
    if (p->h % p->hk != 0 || p->causal < 0 || p->causal > 2) return 0;
    if (p->window_left < -1 || p->window_right < -1) return 0;
    if (p->num_groups < 0) return 0;
    /* the options: dense only, shapes that broadcast, document ids on both sides or neither */
    if (p->num_groups > 0 && (p->sinks || p->alibi_slopes || p->bias || p->mask || p->mask_fn ||
                              p->document_ids_q || p->document_ids_k)) return 0;
    if (p->alibi_slopes && p->alibi_size != p->h && p->alibi_size != p->b * p->h) return 0;
    if (p->bias && ((p->bias_b != 1 && p->bias_b != p->b) || (p->bias_h != 1 && p->bias_h != p->h))) return 0;
    if (p->mask && ((p->mask_b != 1 && p->mask_b != p->b) || (p->mask_h != 1 && p->mask_h != p->h))) return 0;
    if (!p->document_ids_q != !p->document_ids_k) return 0;
    if (p->num_groups > 0) {
        if (p->nq != p->nk || p->window_left >= 0 || p->window_right >= 0) return 0;
        if (!p->segment_lengths || !p->dilation_rates || (p->mix != 0 && p->mix != 1)) return 0;
        for (g = 0; g < p->num_groups; g++)
            if (p->segment_lengths[g] < 1 || p->dilation_rates[g] < 1 ||
                p->nq % p->segment_lengths[g] != 0) return 0;
    }
    return 1;
}

static int run(const ref_io *io)
{
    if (io->p->num_groups == 0) return run_dense(io);
    return io->p->mix == 0 ? run_head_groups(io) : run_lse_mix(io);
}

int ref_forward(const ref_problem *p, const double *q, const double *k, const double *v,
                double *out, double *lse)
{
    return ref_forward_ex(p, q, k, v, out, lse, NULL);
}

int ref_forward_ex(const ref_problem *p, const double *q, const double *k, const double *v,
                   double *out, double *lse, double *max_logit)
{
    ref_io io;
    int64_t i, nrow;
    if (!p || !q || !k || !v || !out || !valid(p)) return -1;
    nrow = p->b * p->nq * p->h;
    memset(&io, 0, sizeof io);
    io.p = p; io.q = q; io.k = k; io.v = v; io.out = out; io.lse = lse; io.max_logit = max_logit;
    io.mul = (p->num_groups > 0 && p->mix == 0) ? 1.0 / (double)p->num_groups : 1.0;
    /* rows no pattern gathers keep these: out 0, lse -inf */
    for (i = 0; i < nrow * p->dv; i++) out[i] = 0.0;
    if (lse) for (i = 0; i < nrow; i++) lse[i] = -INFINITY;
    if (max_logit) for (i = 0; i < nrow; i++) max_logit[i] = -INFINITY;
    return run(&io);
}

int ref_backward(const ref_problem *p, const double *q, const double *k, const double *v,
                 const double *dout, double *dq, double *dk, double *dv)
{
    return ref_backward_ex(p, q, k, v, dout, dq, dk, dv, NULL, NULL);
}

int ref_backward_ex(const ref_problem *p, const double *q, const double *k, const double *v,
                    const double *dout, double *dq, double *dk, double *dv,
                    double *dsinks, double *dbias)
{
    ref_io io;
    int64_t i;
    if (!p || !q || !k || !v || !dout || !dq || !dk || !dv || !valid(p)) return -1;
    if ((dsinks && !p->sinks) || (dbias && !p->bias)) return -1;
    memset(&io, 0, sizeof io);
    io.p = p; io.q = q; io.k = k; io.v = v; io.dout = dout;
    io.dq = dq; io.dk = dk; io.dv = dv; io.dsinks = dsinks; io.dbias = dbias;
    io.mul = (p->num_groups > 0 && p->mix == 0) ? 1.0 / (double)p->num_groups : 1.0;
    /* gradients are accumulated by `attend`: start from zero */
    for (i = 0; i < p->b * p->nq * p->h * p->d; i++) dq[i] = 0.0;
    for (i = 0; i < p->b * p->nk * p->hk * p->d; i++) dk[i] = 0.0;
    for (i = 0; i < p->b * p->nk * p->hk * p->dv; i++) dv[i] = 0.0;
    if (dsinks) for (i = 0; i < p->h; i++) dsinks[i] = 0.0;
    if (dbias) for (i = 0; i < p->bias_b * p->bias_h * p->nq * p->nk; i++) dbias[i] = 0.0;
    return run(&io);
}

/* ---------------------------------------------------------------- a KV cache (decoding)
   Plain loops: gather the sequence's keys by hand, then for every (batch, head, row) the
   textbook softmax over the keys of a range [j0, j1): all L keys with the sink for the final
   result, one split's keys without it for a partial. */

static int64_t kv_len(const ref_kv_problem *p, int64_t bb)
{
    return (int64_t)p->cache_seqlens[bb] + p->n_new;
}

static int kv_valid(const ref_kv_problem *p)
{
    int64_t bb, j;
    if (!p || p->b < 1 || p->nq < 1 || p->h < 1 || p->hk < 1 || p->d < 1 || p->dv < 1) return 0;
    if (p->h % p->hk != 0 || p->causal < 0 || p->causal > 2) return 0;
    if (p->window_left < -1 || p->window_right < -1 || p->n_new < 0) return 0;
    if (p->num_splits < 0 || p->split_size < 0) return 0;
    if (!p->k_cache || !p->v_cache || !p->cache_seqlens) return 0;
    if ((p->k_new == NULL) != (p->v_new == NULL) || (p->n_new > 0 && !p->k_new)) return 0;
    if (p->alibi_slopes && p->alibi_size != p->h && p->alibi_size != p->b * p->h) return 0;
    if (p->block_table) {
        if (p->page_size < 1 || p->num_blocks < 1 || p->max_blocks < 1) return 0;
    } else if (p->b_cache < p->b || p->n_cache < 0) return 0;
    for (bb = 0; bb < p->b; bb++) {
        int64_t n = p->cache_seqlens[bb];
        if (n < 0) return 0;
        if (!p->block_table && n > p->n_cache) return 0;
        for (j = 0; j < n; j++)
            if (ref_kvcache_row(p, bb, j) < 0) return 0;
    }
    return 1;
}

int64_t ref_kvcache_row(const ref_kv_problem *p, int64_t bb, int64_t j)
{
    int64_t page, block;
    if (!p->block_table) return bb * p->n_cache + j;
    page = j / p->page_size;
    if (page >= p->max_blocks) return -1;                 /* the table row is too short */
    block = p->block_table[bb * p->max_blocks + page];
    if (block < 0 || block >= p->num_blocks) return -1;   /* not a block of the cache   */
    return block * p->page_size + j % p->page_size;
}

int64_t ref_kvcache_num_splits(const ref_kv_problem *p)
{
    int64_t bb, S = 1;
    if (!p || p->b < 1 || !p->cache_seqlens || p->num_splits < 0 || p->split_size < 0) return -1;
    if (p->split_size == 0) return p->num_splits > 1 ? p->num_splits : 1;
    for (bb = 0; bb < p->b; bb++) {
        int64_t L = kv_len(p, bb), n = (L + p->split_size - 1) / p->split_size;
        if (n > S) S = n;
    }
    return S;
}

int ref_kvcache_gather(const ref_kv_problem *p, int64_t bb, double *k, double *v)
{
    int64_t n = p->cache_seqlens[bb], L = kv_len(p, bb), j, c;
    for (j = 0; j < L; j++) {
        const double *ks, *vs;
        if (j < n) {
            int64_t row = ref_kvcache_row(p, bb, j);
            if (row < 0) return -1;
            ks = p->k_cache + row * p->hk * p->d;
            vs = p->v_cache + row * p->hk * p->dv;
        } else {
            ks = p->k_new + (bb * p->n_new + (j - n)) * p->hk * p->d;
            vs = p->v_new + (bb * p->n_new + (j - n)) * p->hk * p->dv;
        }
        for (c = 0; c < p->hk * p->d; c++) k[j * p->hk * p->d + c] = ks[c];
        for (c = 0; c < p->hk * p->dv; c++) v[j * p->hk * p->dv + c] = vs[c];
    }
    return 0;
}

/* 1 if query i (of nq) may see key j of a sequence of L keys */
static int kv_visible(const ref_kv_problem *p, int64_t L, int64_t i, int64_t j)
{
    int64_t off = (p->causal == 2) ? 0 : L - p->nq;
    if (p->causal != 0 && j > i + off) return 0;
    if (p->window_left >= 0 && j < i + off - p->window_left) return 0;
    if (p->window_right >= 0 && j > i + off + p->window_right) return 0;
    return 1;
}

/* The final score of row i, key j (gathered k of the sequence), q head hh of batch bb */
static double kv_score(const ref_kv_problem *p, int64_t L, const double *qi, const double *k,
                       int64_t bb, int64_t hh, int64_t i, int64_t j)
{
    int64_t kh = hh / (p->h / p->hk), c, dist;
    double s = 0;
    for (c = 0; c < p->d; c++) s += qi[c] * k[(j * p->hk + kh) * p->d + c];
    s *= p->scale;
    if (p->softcap > 0) s = p->softcap * tanh(s / p->softcap);
    if (p->alibi_slopes) {
        double slope = p->alibi_slopes[p->alibi_size == p->h ? hh : bb * p->h + hh];
        dist = i + L - p->nq - j;
        s -= slope * (double)(dist < 0 ? -dist : dist);
    }
    return s;
}

/* softmax of row i over the visible keys of [j0, j1) (and the sink when sink != NULL):
   o[dv] and *lse; no key and no sink: o = 0, lse = -inf */
static void kv_row(const ref_kv_problem *p, int64_t L, const double *k, const double *v,
                   const double *qi, int64_t bb, int64_t hh, int64_t i, int64_t j0, int64_t j1,
                   const double *sink, double *S, double *o, double *lse)
{
    int64_t kh = hh / (p->h / p->hk), j, c;
    double m = -INFINITY, sum = 0;
    int any = 0;
    for (j = j0; j < j1; j++) {
        if (!kv_visible(p, L, i, j)) continue;
        S[j] = kv_score(p, L, qi, k, bb, hh, i, j);
        if (!any || S[j] > m) m = S[j];
        any = 1;
    }
    for (c = 0; c < p->dv; c++) o[c] = 0.0;
    if (!any) { *lse = sink ? *sink : -INFINITY; return; }
    if (sink && *sink > m) m = *sink;
    for (j = j0; j < j1; j++)
        if (kv_visible(p, L, i, j)) sum += exp(S[j] - m);
    if (sink) sum += exp(*sink - m);
    for (j = j0; j < j1; j++) {
        double w;
        if (!kv_visible(p, L, i, j)) continue;
        w = exp(S[j] - m) / sum;
        for (c = 0; c < p->dv; c++) o[c] += w * v[(j * p->hk + kh) * p->dv + c];
    }
    *lse = m + log(sum);
}

int ref_kvcache(const ref_kv_problem *p, const double *q, double *out, double *lse,
                double *split_out, double *split_lse)
{
    int64_t bb, hh, i, s, S, Lmax = 0, nrow;
    double *k, *v, *sc, *o;
    if (!kv_valid(p) || !q || !out) return -1;
    S = ref_kvcache_num_splits(p);
    for (bb = 0; bb < p->b; bb++) if (kv_len(p, bb) > Lmax) Lmax = kv_len(p, bb);
    k = (double *)malloc(sizeof(double) * (size_t)((Lmax + 1) * p->hk * (p->d + p->dv) + Lmax + 1 + p->dv));
    if (!k) return -1;
    v = k + (Lmax + 1) * p->hk * p->d;
    sc = v + (Lmax + 1) * p->hk * p->dv;
    o = sc + Lmax + 1;
    nrow = p->b * p->h * p->nq;
    for (bb = 0; bb < p->b; bb++) {
        int64_t L = kv_len(p, bb);
        if (ref_kvcache_gather(p, bb, k, v) != 0) { free(k); return -1; }
        for (hh = 0; hh < p->h; hh++)
            for (i = 0; i < p->nq; i++) {
                const double *qi = q + ((bb * p->nq + i) * p->h + hh) * p->d;
                int64_t oi = ((bb * p->nq + i) * p->h + hh) * p->dv, li = (bb * p->h + hh) * p->nq + i, c;
                double l;
                /* (a) the final result, directly over all L keys, with the sink */
                kv_row(p, L, k, v, qi, bb, hh, i, 0, L, p->sinks ? &p->sinks[hh] : NULL, sc, o, &l);
                for (c = 0; c < p->dv; c++) out[oi + c] = o[c];
                if (lse) lse[li] = l;
                /* (b) each split alone, over its own keys, no sink */
                for (s = 0; s < S && (split_out || split_lse); s++) {
                    int64_t cs = p->split_size > 0 ? p->split_size
                                 : (L + (p->num_splits > 1 ? p->num_splits : 1) - 1) / (p->num_splits > 1 ? p->num_splits : 1);
                    int64_t j0 = s * cs < L ? s * cs : L, j1 = s * cs + cs < L ? s * cs + cs : L;
                    kv_row(p, L, k, v, qi, bb, hh, i, j0, j1, NULL, sc, o, &l);
                    if (split_out)
                        for (c = 0; c < p->dv; c++) split_out[s * p->b * p->nq * p->h * p->dv + oi + c] = o[c];
                    if (split_lse) split_lse[s * nrow + li] = l;
                }
            }
    }
    free(k);
    return 0;
}
