/* ringattn_ref.h - the naive f64 oracle that every ringattn test compares against.

   Deliberately obvious: for each (batch, head) it materialises the whole score matrix
   S = scale * Q K^T, applies the mask literally, and takes a two-pass softmax. No blocking,
   no online softmax, no ring, no strides: if this file and ringattn.h agree, the ring's
   bookkeeping is right, because nothing here shares its shape with the ring.

   Layouts (all f64, contiguous, row-major):
     q [b, nq, h, d]   k [b, nk, hk, d]   v [b, nk, hk, dv]   out [b, nq, h, dv]
     lse [b, h, nq]    (natural log, scale included; -inf for a row that sees no key)
   q head hh reads kv head hh / (h / hk) (GQA / MQA).
   Score options (sinks, ALiBi, bias, masks, document ids; ref_problem below): added to the
   materialised score matrix literally, the sink as one more column of the two-pass softmax.

   Dilated attention (num_groups > 0, needs nq == nk, no window):
     mix 0 (head groups, fkodom / DarcStar DilatedAttention): heads in G contiguous groups, the
       first h mod G one head larger; group g gathers, in every segment of length s_g, the
       positions j*s_g + (g mod r_g) + t*r_g, attends densely within that gathered sequence
       (causal in gathered index space), scatters back, 0 elsewhere, and the whole output is
       divided by G. lse is the row's own sub-sequence lse (-inf if the row is not gathered).
     mix 1 (LongNet eq. 10): every head takes every pattern g, offset (head mod r_g); a row's
       softmax runs over the multiset union of its patterns' keys, written literally as dense
       attention over a stacked key axis of length G*nk.

   Build: compile reference/ringattn_ref.c alongside the test (C99 or C++11). */
#ifndef RINGATTN_REF_H
#define RINGATTN_REF_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t b, nq, nk, h, hk, d, dv;   /* hk divides h: q head hh uses kv head hh / (h/hk)      */
    double scale;                      /* already resolved (callers pass 1/sqrt(d) themselves)  */
    int causal;                        /* 0 none; 1 bottom-right (j <= i + nk - nq); 2 top-left (j <= i) */
    int window_left, window_right;     /* -1 = unbounded; else i+off-wl <= j <= i+off+wr,
                                          off = nk - nq unless causal == 2 (then 0)             */
    int num_groups;                    /* dilated groups; 0 = dense                             */
    const int64_t *segment_lengths, *dilation_rates;
    int mix;                           /* 0 head groups, 1 LongNet LSE mix                      */
    int num_seqs;                      /* varlen (b = 1): sequences packed along the tokens;
                                          query i and key j must lie in the same sequence s, and
                                          the causal/window rules apply to positions local to it
                                          (i - cu_q[s], j - cu_k[s], with nq_s, nk_s)         */
    const int64_t *cu_seqlens_q, *cu_seqlens_k;
    double softcap;                    /* > 0: each logit s becomes softcap * tanh(s / softcap) */
    /* score options (dense only: any of them with num_groups > 0 is bad input); all off when
       zero / NULL. The final score of query i, key j, batch bb, q head hh is
         s = softcap(scale q.k) + bias[bb][hh][i][j] - slope(bb, hh) |i + nk - nq - j|
       (varlen: |i - j + ke - qe|, [qb,qe) and [kb,ke) the sequence's global ranges) over the
       pairs ref_visible_ex allows; a sink is one more column of the softmax, never of out. */
    const double *sinks;               /* h logits (not scaled): exp(sinks[hh]) joins each row's
                                          denominator; lse includes it; a row that sees no key
                                          has out 0, lse sinks[hh]                              */
    const double *alibi_slopes;        /* alibi_size = h (slope [hh]) or b * h ([bb][hh])       */
    int alibi_size;
    const double *bias;                /* [bias_b][bias_h][nq][nk], bias_b in {1, b}, bias_h in
                                          {1, h} (1 = broadcast), contiguous                    */
    int64_t bias_b, bias_h;
    const unsigned char *mask;         /* [mask_b][mask_h][nq][nk], nonzero = may attend        */
    int64_t mask_b, mask_h;
    int (*mask_fn)(void *user, int64_t b, int64_t h, int64_t i, int64_t j);   /* 0 = masked */
    void *mask_user;
    const int64_t *document_ids_q;     /* nq and nk ids (every batch): same document or masked; */
    const int64_t *document_ids_k;     /* both or neither                                      */
} ref_problem;

/* out [b,nq,h,dv], lse [b,h,nq] (lse may be NULL). 0 on success, -1 on bad input or no memory. */
int ref_forward(const ref_problem *p, const double *q, const double *k, const double *v,
                double *out, double *lse);

/* ref_forward, and max_logit [b,h,nq] (may be NULL): each row's largest final score over the
   keys it sees (never the sink), -inf for a row that sees none. */
int ref_forward_ex(const ref_problem *p, const double *q, const double *k, const double *v,
                   double *out, double *lse, double *max_logit);

/* dout [b,nq,h,dv] -> dq [b,nq,h,d], dk [b,nk,hk,d], dv [b,nk,hk,dv] (all overwritten; dk and
   dv summed over the q heads sharing a kv head). 0 on success, -1 on bad input or no memory. */
int ref_backward(const ref_problem *p, const double *q, const double *k, const double *v,
                 const double *dout, double *dq, double *dk, double *dv);

/* ref_backward, and (each may be NULL) dsinks [h] (needs sinks): dL/dsinks[hh] =
   -sum over batches and rows of exp(sinks[hh] - lse) * D, D = rowsum(dout . out); dbias in the
   bias's shape [bias_b][bias_h][nq][nk] (needs bias): dL/ds, summed over broadcast axes. */
int ref_backward_ex(const ref_problem *p, const double *q, const double *k, const double *v,
                    const double *dout, double *dq, double *dk, double *dv,
                    double *dsinks, double *dbias);

/* the dense mask rule, literally: 1 if query i may see key j (causal, window, varlen) */
int ref_visible(const ref_problem *p, int64_t i, int64_t j);

/* ref_visible AND the options' masks of (batch bb, q head hh): mask, mask_fn, document ids */
int ref_visible_ex(const ref_problem *p, int64_t bb, int64_t hh, int64_t i, int64_t j);


/* ---------------------------------------------------------------- a KV cache (decoding)
   Queries against a KV cache, written out plainly. Sequence bb has L = cache_seqlens[bb] +
   n_new keys: its cached keys 0 .. cache_seqlens[bb]-1, then the n_new keys of k_new / v_new.
   Cached key j of sequence bb is row ref_kvcache_row(p, bb, j) of the cache: contiguous
   (block_table NULL), row bb * n_cache + j of [b_cache][n_cache][hk][d]; paged, row
   block * page_size + j % page_size of [num_blocks][page_size][hk][d] with block =
   block_table[bb * max_blocks + j / page_size]. Query i sits at position i + L - nq; the
   mask is ref_visible's with nk = L (causal 1 bottom-right, 2 top-left, windows aligned the
   same way), ALiBi's distance |i + L - nq - j|, the sink one more column of the final
   softmax (never of a split's).
   Splits: c = split_size when > 0, else ceil(L / max(num_splits, 1)); split s holds keys
   [min(s c, L), min(s c + c, L)). Each split's partial is computed directly over its own
   keys: out_s normalised within the split, lse_s its log-sum-exp (out 0, lse -inf when the
   row sees none of them). Nothing here merges partials: the final result is computed over
   all L keys at once. */
typedef struct {
    int64_t b, nq, h, hk, d, dv;       /* hk divides h                                          */
    double scale;                      /* already resolved                                      */
    int causal;                        /* 0 none, 1 bottom-right, 2 top-left                    */
    int window_left, window_right;     /* -1 = unbounded                                        */
    double softcap;                    /* > 0: softcap * tanh(s / softcap)                      */
    const double *sinks;               /* h logits or NULL                                      */
    const double *alibi_slopes;        /* alibi_size = h or b * h, or NULL                      */
    int alibi_size;
    const double *k_cache, *v_cache;   /* [b_cache][n_cache][hk][d|dv], or paged
                                          [num_blocks][page_size][hk][d|dv]                     */
    int64_t b_cache, n_cache;          /* contiguous                                            */
    const int32_t *block_table;        /* NULL: contiguous; else [b][max_blocks]                */
    int64_t max_blocks, num_blocks, page_size;
    const int32_t *cache_seqlens;      /* b entries                                             */
    const double *k_new, *v_new;       /* [b][n_new][hk][d|dv] or NULL (n_new 0)                */
    int64_t n_new;
    int64_t num_splits, split_size;    /* as ringattn_kvcache                                   */
} ref_kv_problem;

/* The number of splits: max(num_splits, 1), or with split_size > 0 the largest
   ceil(L / split_size) over the batch (at least 1). -1 on bad input. */
int64_t ref_kvcache_num_splits(const ref_kv_problem *p);

/* The cache row of cached key j (< cache_seqlens[bb]) of sequence bb; -1 if the block table
   points outside the cache (or the row is too short). */
int64_t ref_kvcache_row(const ref_kv_problem *p, int64_t bb, int64_t j);

/* Sequence bb gathered: k [L][hk][d], v [L][hk][dv] (L = cache_seqlens[bb] + n_new). 0 or -1. */
int ref_kvcache_gather(const ref_kv_problem *p, int64_t bb, double *k, double *v);

/* out [b,nq,h,dv] and lse [b,h,nq] (may be NULL) over all keys; split_out
   [S][b][nq][h][dv] and split_lse [S][b][h][nq] (either may be NULL), S =
   ref_kvcache_num_splits(p). 0 on success, -1 on bad input (a block outside the cache, a
   negative length, a length beyond the cache or the table row) or no memory. */
int ref_kvcache(const ref_kv_problem *p, const double *q, double *out, double *lse,
                double *split_out, double *split_lse);

#ifdef __cplusplus
}
#endif
#endif /* RINGATTN_REF_H */
