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

#ifdef __cplusplus
}
#endif
#endif /* RINGATTN_REF_H */
