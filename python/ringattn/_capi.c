/* _capi.c - the C library of the Python package: the implementations of ringattn.h and
   ringattn_layer.h compiled once, plus flat entry points that ctypes can call without
   mirroring ringattn_config or the comparison result (structs that may grow): the Python side
   sees only ringattn_tensor (a fixed layout), the small option struct below, and arrays of
   numbers.

   Every entry point returns the library's status and, on error, its sentence in err[]. */
#define RINGATTN_IMPLEMENTATION
#include "ringattn_layer.h"   /* includes ringattn.h: both implementations */

#include <stddef.h>
#include <string.h>

#include "golden_heatmap.c"   /* tools/: the SVG writer of `ringattn-golden compare --heatmap` */

/* bumped whenever a signature or ringattn_py_options changes: _lib.py checks it */
#define RINGATTN_PY_ABI 5

typedef struct {
    double scale;
    int causal, ring_size, num_threads, compute;
    const int64_t *segment_lengths, *dilation_rates;
    int num_groups, mix;
    int window_left, window_right, partition;
    double softcap;
    const int64_t *cu_seqlens_q, *cu_seqlens_k;
    int num_seqs;
    int round_p, p_dtype, round_s, round_block, block_dtype;   /* precision emulation */
    const double *q_descale, *k_descale, *v_descale;          /* fp8 descale factors */
    int descale_size;
    int round_state, state_dtype;
    /* the score options (ringattn_config's fields of the same names); outputs too: dsinks,
       dbias (backward), max_logit (forward); NULL = absent / not wanted */
    const double *sinks;
    double *dsinks;
    const double *alibi_slopes;
    int alibi_size;
    const ringattn_tensor *bias;
    ringattn_tensor *dbias;
    const ringattn_tensor *mask;
    int (*mask_block_fn)(void *user, int64_t b, int64_t h, const int64_t *q_pos, int64_t nr,
                         const int64_t *k_pos, int64_t nc, unsigned char *visible);
    void *mask_user;
    const int64_t *document_ids_q, *document_ids_k;
    ringattn_tensor *max_logit;
} ringattn_py_options;

int ringattn_py_abi(void);
int ringattn_py_event_layout(int64_t *out, int cap);
int ringattn_py_options_layout(int64_t *out, int cap);
int ringattn_py_forward_steps(const ringattn_py_options *o, const ringattn_tensor *q, const ringattn_tensor *k,
                              const ringattn_tensor *v, ringattn_tensor *out, ringattn_tensor *lse,
                              ringattn_trace_fn fn, void *user, char *err, size_t err_size);
int ringattn_py_backward_steps(const ringattn_py_options *o, const ringattn_tensor *q, const ringattn_tensor *k,
                               const ringattn_tensor *v, const ringattn_tensor *out, const ringattn_tensor *lse,
                               const ringattn_tensor *dout, ringattn_tensor *dq, ringattn_tensor *dk,
                               ringattn_tensor *dv, ringattn_trace_fn fn, void *user, char *err, size_t err_size);
int ringattn_py_trace_result(const ringattn_trace_event *ev, int block, ringattn_tensor *out, ringattn_tensor *lse,
                             char *err, size_t err_size);
int ringattn_py_trace_grads(const ringattn_trace_event *ev, ringattn_tensor *dq, ringattn_tensor *dk,
                            ringattn_tensor *dv, char *err, size_t err_size);
int ringattn_py_heatmap(const char *path, const ringattn_tensor *got, const ringattn_tensor *ref,
                        const ringattn_tensor *baseline, const double policy[7], int empty_lse, int ring_size,
                        int partition, const char *what, const char *title, char *err, size_t err_size);
int ringattn_py_forward(const ringattn_py_options *o, const ringattn_tensor *q, const ringattn_tensor *k,
                        const ringattn_tensor *v, ringattn_tensor *out, ringattn_tensor *lse,
                        char *err, size_t err_size);
int ringattn_py_backward(const ringattn_py_options *o, const ringattn_tensor *q, const ringattn_tensor *k,
                         const ringattn_tensor *v, const ringattn_tensor *out, const ringattn_tensor *lse,
                         const ringattn_tensor *dout, ringattn_tensor *dq, ringattn_tensor *dk,
                         ringattn_tensor *dv, char *err, size_t err_size);
int ringattn_py_plan(const ringattn_py_options *o, const int64_t shape[7], int pass, int64_t info[14],
                     char *err, size_t err_size);
int ringattn_py_compare(const ringattn_tensor *got, const ringattn_tensor *ref, const ringattn_tensor *baseline,
                        const double policy[7], int empty_lse, const char *axes, double fres[19],
                        int64_t ires[14], int64_t bad_at[4 * RINGATTN_COMPARE_KEEP],
                        double bad_val[4 * RINGATTN_COMPARE_KEEP], char *report, size_t report_size,
                        char *err, size_t err_size);
int ringattn_py_layer_forward(const ringattn_py_options *o, int64_t embed_dim, int64_t num_heads,
                              int layer_norm, double ln_eps, const ringattn_tensor w[12],
                              const ringattn_tensor *x_q, const ringattn_tensor *x_k,
                              const ringattn_tensor *x_v, ringattn_tensor *y, char *err, size_t err_size);
int ringattn_py_layer_backward(const ringattn_py_options *o, int64_t embed_dim, int64_t num_heads,
                               int layer_norm, double ln_eps, const ringattn_tensor w[12],
                               const ringattn_tensor *x_q, const ringattn_tensor *x_k,
                               const ringattn_tensor *x_v, const ringattn_tensor *dy, ringattn_tensor *dx_q,
                               ringattn_tensor *dx_k, ringattn_tensor *dx_v, ringattn_tensor g[12],
                               int want_grads, char *err, size_t err_size);

int ringattn_py_rule_policy(int rule, int dtype, const char *what, int softcap, int gqa, double out[4]);
int ringattn_py_forward_kvcache(const ringattn_py_options *o, const ringattn_tensor *q, ringattn_tensor *k_cache,
                                ringattn_tensor *v_cache, const int32_t *block_table, int64_t max_blocks,
                                const int32_t *cache_seqlens, const ringattn_tensor *k_new,
                                const ringattn_tensor *v_new, int64_t num_splits, int64_t split_size,
                                int update_cache, ringattn_tensor *split_out, ringattn_tensor *split_lse,
                                int64_t num_split_outputs, ringattn_tensor *out, ringattn_tensor *lse,
                                char *err, size_t err_size);
int64_t ringattn_py_kvcache_num_splits(const ringattn_py_options *o, const ringattn_tensor *q,
                                       ringattn_tensor *k_cache, ringattn_tensor *v_cache,
                                       const int32_t *block_table, int64_t max_blocks,
                                       const int32_t *cache_seqlens, const ringattn_tensor *k_new,
                                       const ringattn_tensor *v_new, int64_t num_splits, int64_t split_size,
                                       char *err, size_t err_size);

int ringattn_py_abi(void) { return RINGATTN_PY_ABI; }

/* ringattn_compare_rule_policy: atol, rtol, k, eps of a rule for one tensor */
int ringattn_py_rule_policy(int rule, int dtype, const char *what, int softcap, int gqa, double out[4])
{
    ringattn_compare_policy p = ringattn_compare_rule_policy(rule, (ringattn_dtype)dtype, what, softcap, gqa);
    out[0] = p.atol; out[1] = p.rtol; out[2] = p.k; out[3] = p.eps;
    return RINGATTN_OK;
}

/* ringattn_trace_event as this compiler lays it out: sizeof, then the offset of every field in
   declaration order. _lib.py mirrors the struct in ctypes and refuses to load when one number
   differs, so a field added or moved in ringattn.h fails at import, not as garbage. */
#define RINGATTN_PY_OFF(f) offsetof(ringattn_trace_event, f)
int ringattn_py_event_layout(int64_t *out, int cap)
{
    const size_t v[] = {
        sizeof(ringattn_trace_event),
        RINGATTN_PY_OFF(pass), RINGATTN_PY_OFF(member), RINGATTN_PY_OFF(step), RINGATTN_PY_OFF(ring_size),
        RINGATTN_PY_OFF(src), RINGATTN_PY_OFF(computed), RINGATTN_PY_OFF(q_begin), RINGATTN_PY_OFF(q_end),
        RINGATTN_PY_OFF(k_begin), RINGATTN_PY_OFF(k_end), RINGATTN_PY_OFF(tiles), RINGATTN_PY_OFF(batch),
        RINGATTN_PY_OFF(heads), RINGATTN_PY_OFF(rows), RINGATTN_PY_OFF(row_max), RINGATTN_PY_OFF(row_sum),
        RINGATTN_PY_OFF(dtype), RINGATTN_PY_OFF(dim), RINGATTN_PY_OFF(dim_v), RINGATTN_PY_OFF(kv_heads),
        RINGATTN_PY_OFF(keys), RINGATTN_PY_OFF(q_pieces), RINGATTN_PY_OFF(k_pieces), RINGATTN_PY_OFF(q_pos0),
        RINGATTN_PY_OFF(q_count), RINGATTN_PY_OFF(q_stride), RINGATTN_PY_OFF(k_pos0), RINGATTN_PY_OFF(k_count),
        RINGATTN_PY_OFF(k_stride), RINGATTN_PY_OFF(out_scale), RINGATTN_PY_OFF(acc), RINGATTN_PY_OFF(block_acc),
        RINGATTN_PY_OFF(block_max), RINGATTN_PY_OFF(block_sum), RINGATTN_PY_OFF(dkv), RINGATTN_PY_OFF(kv_pitch)
    };
    int n = (int)(sizeof v / sizeof v[0]), i;
    for (i = 0; i < n && i < cap; i++) out[i] = (int64_t)v[i];
    return n;
}
#undef RINGATTN_PY_OFF

/* the same for ringattn_py_options: sizeof, then the offset of every field */
#define RINGATTN_PY_OFF(f) offsetof(ringattn_py_options, f)
int ringattn_py_options_layout(int64_t *out, int cap)
{
    const size_t v[] = {
        sizeof(ringattn_py_options),
        RINGATTN_PY_OFF(scale), RINGATTN_PY_OFF(causal), RINGATTN_PY_OFF(ring_size), RINGATTN_PY_OFF(num_threads),
        RINGATTN_PY_OFF(compute), RINGATTN_PY_OFF(segment_lengths), RINGATTN_PY_OFF(dilation_rates),
        RINGATTN_PY_OFF(num_groups), RINGATTN_PY_OFF(mix), RINGATTN_PY_OFF(window_left),
        RINGATTN_PY_OFF(window_right), RINGATTN_PY_OFF(partition), RINGATTN_PY_OFF(softcap),
        RINGATTN_PY_OFF(cu_seqlens_q), RINGATTN_PY_OFF(cu_seqlens_k), RINGATTN_PY_OFF(num_seqs),
        RINGATTN_PY_OFF(round_p), RINGATTN_PY_OFF(p_dtype), RINGATTN_PY_OFF(round_s), RINGATTN_PY_OFF(round_block),
        RINGATTN_PY_OFF(block_dtype), RINGATTN_PY_OFF(q_descale), RINGATTN_PY_OFF(k_descale),
        RINGATTN_PY_OFF(v_descale), RINGATTN_PY_OFF(descale_size), RINGATTN_PY_OFF(round_state),
        RINGATTN_PY_OFF(state_dtype), RINGATTN_PY_OFF(sinks), RINGATTN_PY_OFF(dsinks),
        RINGATTN_PY_OFF(alibi_slopes), RINGATTN_PY_OFF(alibi_size), RINGATTN_PY_OFF(bias), RINGATTN_PY_OFF(dbias),
        RINGATTN_PY_OFF(mask), RINGATTN_PY_OFF(mask_block_fn), RINGATTN_PY_OFF(mask_user),
        RINGATTN_PY_OFF(document_ids_q), RINGATTN_PY_OFF(document_ids_k), RINGATTN_PY_OFF(max_logit)
    };
    int n = (int)(sizeof v / sizeof v[0]), i;
    for (i = 0; i < n && i < cap; i++) out[i] = (int64_t)v[i];
    return n;
}
#undef RINGATTN_PY_OFF

static ringattn_config config_of(const ringattn_py_options *o, char *err, size_t err_size)
{
    ringattn_config c = ringattn_default_config();
    c.scale = o->scale;
    c.causal = o->causal;
    c.ring_size = o->ring_size;
    c.num_threads = o->num_threads;
    c.compute = (ringattn_dtype)o->compute;
    c.segment_lengths = o->segment_lengths;
    c.dilation_rates = o->dilation_rates;
    c.num_groups = o->num_groups;
    c.mix = (ringattn_mix)o->mix;
    c.window_left = o->window_left;
    c.window_right = o->window_right;
    c.partition = (ringattn_partition)o->partition;
    c.softcap = o->softcap;
    c.cu_seqlens_q = o->cu_seqlens_q;
    c.cu_seqlens_k = o->cu_seqlens_k;
    c.num_seqs = o->num_seqs;
    c.round_p = o->round_p;
    c.p_dtype = (ringattn_dtype)o->p_dtype;
    c.round_s = o->round_s;
    c.round_block = o->round_block;
    c.block_dtype = (ringattn_dtype)o->block_dtype;
    c.q_descale = o->q_descale; c.k_descale = o->k_descale; c.v_descale = o->v_descale;
    c.descale_size = o->descale_size;
    c.round_state = o->round_state;
    c.state_dtype = (ringattn_dtype)o->state_dtype;
    c.sinks = o->sinks;
    c.dsinks = o->dsinks;
    c.alibi_slopes = o->alibi_slopes;
    c.alibi_size = o->alibi_size;
    c.bias = o->bias;
    c.dbias = o->dbias;
    c.mask = o->mask;
    c.mask_block_fn = o->mask_block_fn;
    c.mask_user = o->mask_user;
    c.document_ids_q = o->document_ids_q;
    c.document_ids_k = o->document_ids_k;
    c.max_logit = o->max_logit;
    c.error_detail = err;
    c.error_detail_size = err_size;
    if (err && err_size) err[0] = 0;
    return c;
}

int ringattn_py_forward(const ringattn_py_options *o, const ringattn_tensor *q, const ringattn_tensor *k,
                        const ringattn_tensor *v, ringattn_tensor *out, ringattn_tensor *lse,
                        char *err, size_t err_size)
{
    ringattn_config c = config_of(o, err, err_size);
    return ringattn_forward(&c, q, k, v, out, lse);
}

int ringattn_py_backward(const ringattn_py_options *o, const ringattn_tensor *q, const ringattn_tensor *k,
                         const ringattn_tensor *v, const ringattn_tensor *out, const ringattn_tensor *lse,
                         const ringattn_tensor *dout, ringattn_tensor *dq, ringattn_tensor *dk,
                         ringattn_tensor *dv, char *err, size_t err_size)
{
    ringattn_config c = config_of(o, err, err_size);
    return ringattn_backward(&c, q, k, v, out, lse, dout, dq, dk, dv);
}

/* shape: batch, seq_q, seq_k, heads_q, heads_kv, dim_qk, dim_v; info: ringattn_plan_info's
   fields in declaration order */
int ringattn_py_plan(const ringattn_py_options *o, const int64_t shape[7], int pass, int64_t info[14],
                     char *err, size_t err_size)
{
    ringattn_config c = config_of(o, err, err_size);
    ringattn_shape s; ringattn_plan_info p; int st;
    s.batch = shape[0]; s.seq_q = shape[1]; s.seq_k = shape[2]; s.heads_q = shape[3];
    s.heads_kv = shape[4]; s.dim_qk = shape[5]; s.dim_v = shape[6];
    st = ringattn_plan(&c, &s, pass, &p);
    if (st != RINGATTN_OK) return st;
    info[0] = p.ring_size; info[1] = p.chunk_q; info[2] = p.chunk_k;
    info[3] = (int64_t)p.q_bytes; info[4] = (int64_t)p.acc_bytes; info[5] = (int64_t)p.row_bytes;
    info[6] = (int64_t)p.kv_bytes; info[7] = (int64_t)p.dkv_bytes; info[8] = (int64_t)p.member_bytes;
    info[9] = p.num_threads; info[10] = (int64_t)p.tile_bytes; info[11] = (int64_t)p.shared_bytes;
    info[12] = (int64_t)p.total_bytes; info[13] = 0;
    return RINGATTN_OK;
}

/* the comparison policy from the Python arguments: atol, rtol (< 0: the dtype's default), k, eps,
   rule (RINGATTN_RULE_*), baseline_err, baseline_mismatch */
static ringattn_compare_policy py_policy(ringattn_dtype t, const double policy[7], int empty_lse)
{
    ringattn_compare_policy pol = ringattn_compare_default_policy(t);
    if (policy[0] >= 0) pol.atol = policy[0];
    if (policy[1] >= 0) pol.rtol = policy[1];
    pol.k = policy[2]; pol.eps = policy[3];
    pol.rule = (int)policy[4]; pol.baseline_err = policy[5]; pol.baseline_mismatch = policy[6];
    pol.empty_lse = empty_lse;
    return pol;
}

/* policy: atol, rtol, k, eps (a negative atol/rtol = the default by got's dtype), rule, baseline_err,
   baseline_mismatch.
   fres: max_abs, max_abs_got, max_abs_ref, max_rel, max_rel_got, max_rel_ref,
         baseline_max_abs, bound, atol, rtol, k, eps, mean_abs, baseline_mean_abs, floor,
         mismatch, baseline_mismatch, mismatch_limit, storage_floor.
   ires: count, nonfinite_mismatch, outside, policy, kept, pass, max_abs_at[4], max_rel_at[4].
   bad_at / bad_val: kept x (index[4]) and kept x (got, ref, err, allowed). */
int ringattn_py_compare(const ringattn_tensor *got, const ringattn_tensor *ref, const ringattn_tensor *baseline,
                        const double policy[7], int empty_lse, const char *axes, double fres[19],
                        int64_t ires[14], int64_t bad_at[4 * RINGATTN_COMPARE_KEEP],
                        double bad_val[4 * RINGATTN_COMPARE_KEEP], char *report, size_t report_size,
                        char *err, size_t err_size)
{
    ringattn_config c = ringattn_default_config();
    ringattn_compare_policy pol; ringattn_compare_result r; int st, i, a;
    c.error_detail = err; c.error_detail_size = err_size;
    if (err && err_size) err[0] = 0;
    if (!got) return ringattn__fail(&c, RINGATTN_ENULL, "got is NULL");
    pol = py_policy(got->dtype, policy, empty_lse);
    st = ringattn_compare(got, ref, baseline, &pol, &r, &c);
    if (st != RINGATTN_OK) return st;
    fres[0] = r.max_abs; fres[1] = r.max_abs_got; fres[2] = r.max_abs_ref;
    fres[3] = r.max_rel; fres[4] = r.max_rel_got; fres[5] = r.max_rel_ref;
    fres[6] = r.baseline_max_abs; fres[7] = r.bound;
    fres[8] = r.used.atol; fres[9] = r.used.rtol; fres[10] = r.used.k; fres[11] = r.used.eps;
    fres[12] = r.mean_abs; fres[13] = r.baseline_mean_abs; fres[14] = r.floor;
    fres[15] = r.mismatch; fres[16] = r.baseline_mismatch; fres[17] = r.mismatch_limit;
    fres[18] = r.storage_floor;
    ires[0] = r.count; ires[1] = r.nonfinite_mismatch; ires[2] = r.outside; ires[3] = r.policy;
    ires[4] = r.kept; ires[5] = r.pass;
    for (a = 0; a < 4; a++) { ires[6 + a] = r.max_abs_at[a]; ires[10 + a] = r.max_rel_at[a]; }
    for (i = 0; i < r.kept; i++) {
        for (a = 0; a < 4; a++) bad_at[4 * i + a] = r.bad[i].at[a];
        bad_val[4 * i] = r.bad[i].got; bad_val[4 * i + 1] = r.bad[i].ref;
        bad_val[4 * i + 2] = r.bad[i].err; bad_val[4 * i + 3] = r.bad[i].allowed;
    }
    ringattn_compare_format(&r, axes, report, report_size);
    return RINGATTN_OK;
}

/* w[12] / g[12]: wq wk wv bq bk bv wqkv bqkv wo bo ln_gamma ln_beta; data NULL = absent */
static void weights_of(ringattn_layer_weights *lw, const ringattn_tensor w[12])
{
    lw->wq = w[0]; lw->wk = w[1]; lw->wv = w[2]; lw->bq = w[3]; lw->bk = w[4]; lw->bv = w[5];
    lw->wqkv = w[6]; lw->bqkv = w[7]; lw->wo = w[8]; lw->bo = w[9]; lw->ln_gamma = w[10]; lw->ln_beta = w[11];
}

static ringattn_layer_params params_of(int64_t embed_dim, int64_t num_heads, int layer_norm, double ln_eps,
                                       const ringattn_tensor w[12])
{
    ringattn_layer_params p = ringattn_layer_default_params(embed_dim, num_heads);
    p.layer_norm = layer_norm;
    p.ln_eps = ln_eps;
    weights_of(&p.w, w);
    return p;
}

int ringattn_py_layer_forward(const ringattn_py_options *o, int64_t embed_dim, int64_t num_heads,
                              int layer_norm, double ln_eps, const ringattn_tensor w[12],
                              const ringattn_tensor *x_q, const ringattn_tensor *x_k,
                              const ringattn_tensor *x_v, ringattn_tensor *y, char *err, size_t err_size)
{
    ringattn_config c = config_of(o, err, err_size);
    ringattn_layer_params p = params_of(embed_dim, num_heads, layer_norm, ln_eps, w);
    return ringattn_layer_forward(&c, &p, x_q, x_k, x_v, y);
}

int ringattn_py_layer_backward(const ringattn_py_options *o, int64_t embed_dim, int64_t num_heads,
                               int layer_norm, double ln_eps, const ringattn_tensor w[12],
                               const ringattn_tensor *x_q, const ringattn_tensor *x_k,
                               const ringattn_tensor *x_v, const ringattn_tensor *dy, ringattn_tensor *dx_q,
                               ringattn_tensor *dx_k, ringattn_tensor *dx_v, ringattn_tensor g[12],
                               int want_grads, char *err, size_t err_size)
{
    ringattn_config c = config_of(o, err, err_size);
    ringattn_layer_params p = params_of(embed_dim, num_heads, layer_norm, ln_eps, w);
    ringattn_layer_grads gr;
    int st;
    weights_of(&gr, g);
    st = ringattn_layer_backward(&c, &p, x_q, x_k, x_v, dy, NULL, dx_q, dx_k, dx_v, want_grads ? &gr : NULL);
    return st;
}

/* Per-step goldens: the ring with cfg->trace = fn at every (member, step). One thread, so fn
   (a Python function through ctypes) is never entered from two threads at once; the results
   do not depend on the thread count. The forward also carries each step's block alone. */
int ringattn_py_forward_steps(const ringattn_py_options *o, const ringattn_tensor *q, const ringattn_tensor *k,
                              const ringattn_tensor *v, ringattn_tensor *out, ringattn_tensor *lse,
                              ringattn_trace_fn fn, void *user, char *err, size_t err_size)
{
    ringattn_config c = config_of(o, err, err_size);
    if (!fn) return ringattn__fail(&c, RINGATTN_ENULL, "the trace callback is NULL");
    c.num_threads = 1; c.trace = fn; c.trace_user = user; c.trace_blocks = 1;
    return ringattn_forward(&c, q, k, v, out, lse);
}

int ringattn_py_backward_steps(const ringattn_py_options *o, const ringattn_tensor *q, const ringattn_tensor *k,
                               const ringattn_tensor *v, const ringattn_tensor *out, const ringattn_tensor *lse,
                               const ringattn_tensor *dout, ringattn_tensor *dq, ringattn_tensor *dk,
                               ringattn_tensor *dv, ringattn_trace_fn fn, void *user, char *err, size_t err_size)
{
    ringattn_config c = config_of(o, err, err_size);
    if (!fn) return ringattn__fail(&c, RINGATTN_ENULL, "the trace callback is NULL");
    c.num_threads = 1; c.trace = fn; c.trace_user = user;
    return ringattn_backward(&c, q, k, v, out, lse, dout, dq, dk, dv);
}

/* ringattn_trace_result / _grads with the error sentence in err[] (ctypes sees no config) */
int ringattn_py_trace_result(const ringattn_trace_event *ev, int block, ringattn_tensor *out, ringattn_tensor *lse,
                             char *err, size_t err_size)
{
    ringattn_config c = ringattn_default_config();
    c.error_detail = err; c.error_detail_size = err_size;
    if (err && err_size) err[0] = 0;
    return ringattn_trace_result(ev, block, out, lse, &c);
}

int ringattn_py_trace_grads(const ringattn_trace_event *ev, ringattn_tensor *dq, ringattn_tensor *dk,
                            ringattn_tensor *dv, char *err, size_t err_size)
{
    ringattn_config c = ringattn_default_config();
    c.error_detail = err; c.error_detail_size = err_size;
    if (err && err_size) err[0] = 0;
    return ringattn_trace_grads(ev, dq, dk, dv, &c);
}

/* Report.heatmap(): the comparison again (same policy), drawn by the CLI's writer. got / ref
   are [b, n, h, d] views (lse [b, h, n, 1] with what = "lse"). */
int ringattn_py_heatmap(const char *path, const ringattn_tensor *got, const ringattn_tensor *ref,
                        const ringattn_tensor *baseline, const double policy[7], int empty_lse, int ring_size,
                        int partition, const char *what, const char *title, char *err, size_t err_size)
{
    ringattn_config c = ringattn_default_config();
    ringattn_compare_policy pol; ringattn_compare_result r; int st;
    c.error_detail = err; c.error_detail_size = err_size;
    if (err && err_size) err[0] = 0;
    if (!path || !what || !title) return ringattn__fail(&c, RINGATTN_ENULL, "path, what or title is NULL");
    if (!got) return ringattn__fail(&c, RINGATTN_ENULL, "got is NULL");
    if (ring_size < 1) return ringattn__fail(&c, RINGATTN_ECONFIG, "ring_size = %d, must be >= 1", ring_size);
    if (partition < RINGATTN_CONTIGUOUS || partition > RINGATTN_STRIPED)
        return ringattn__fail(&c, RINGATTN_ECONFIG, "partition = %d, must be 0, 1 or 2", partition);
    pol = py_policy(got->dtype, policy, empty_lse);
    st = ringattn_compare(got, ref, baseline, &pol, &r, &c);
    if (st != RINGATTN_OK) return st;
    if (write_heatmap(path, got, ref, &r, ring_size, (ringattn_partition)partition, what, title))
        return ringattn__fail(&c, RINGATTN_EIO, "cannot write %s", path);
    return RINGATTN_OK;
}

/* The KV cache (ringattn_forward_kvcache): ringattn_kvcache from flat arguments. block_table
   NULL = contiguous cache; k_new / v_new NULL = no new keys; split_out / split_lse arrays of
   num_split_outputs views, or NULL. */
static ringattn_kvcache kvcache_of(ringattn_tensor *k_cache, ringattn_tensor *v_cache, const int32_t *block_table,
                                   int64_t max_blocks, const int32_t *cache_seqlens, const ringattn_tensor *k_new,
                                   const ringattn_tensor *v_new, int64_t num_splits, int64_t split_size,
                                   int update_cache, ringattn_tensor *split_out, ringattn_tensor *split_lse,
                                   int64_t num_split_outputs)
{
    ringattn_kvcache kv;
    memset(&kv, 0, sizeof kv);
    kv.k_cache = k_cache; kv.v_cache = v_cache;
    kv.block_table = block_table; kv.max_blocks = max_blocks;
    kv.cache_seqlens = cache_seqlens;
    kv.k_new = k_new; kv.v_new = v_new;
    kv.num_splits = num_splits; kv.split_size = split_size;
    kv.update_cache = update_cache;
    kv.split_out = split_out; kv.split_lse = split_lse;
    kv.num_split_outputs = num_split_outputs;
    return kv;
}

int ringattn_py_forward_kvcache(const ringattn_py_options *o, const ringattn_tensor *q, ringattn_tensor *k_cache,
                                ringattn_tensor *v_cache, const int32_t *block_table, int64_t max_blocks,
                                const int32_t *cache_seqlens, const ringattn_tensor *k_new,
                                const ringattn_tensor *v_new, int64_t num_splits, int64_t split_size,
                                int update_cache, ringattn_tensor *split_out, ringattn_tensor *split_lse,
                                int64_t num_split_outputs, ringattn_tensor *out, ringattn_tensor *lse,
                                char *err, size_t err_size)
{
    ringattn_config c = config_of(o, err, err_size);
    ringattn_kvcache kv = kvcache_of(k_cache, v_cache, block_table, max_blocks, cache_seqlens, k_new, v_new,
                                     num_splits, split_size, update_cache, split_out, split_lse,
                                     num_split_outputs);
    return ringattn_forward_kvcache(&c, &kv, q, out, lse);
}

/* ringattn_kvcache_num_splits for q's batch: the count, or a negative status */
int64_t ringattn_py_kvcache_num_splits(const ringattn_py_options *o, const ringattn_tensor *q,
                                       ringattn_tensor *k_cache, ringattn_tensor *v_cache,
                                       const int32_t *block_table, int64_t max_blocks,
                                       const int32_t *cache_seqlens, const ringattn_tensor *k_new,
                                       const ringattn_tensor *v_new, int64_t num_splits, int64_t split_size,
                                       char *err, size_t err_size)
{
    ringattn_config c = config_of(o, err, err_size);
    ringattn_kvcache kv = kvcache_of(k_cache, v_cache, block_table, max_blocks, cache_seqlens, k_new, v_new,
                                     num_splits, split_size, 0, NULL, NULL, 0);
    if (!q) return ringattn__fail(&c, RINGATTN_ENULL, "q is NULL");
    return ringattn_kvcache_num_splits(&c, &kv, q->shape[0]);
}
