/* ringattn_ref.h - the naive f64 oracle that every ringattn test compares against.

   Deliberately obvious: for each (batch, head) it materialises the whole score matrix
   S = scale * Q K^T, applies the mask literally, and takes a two-pass softmax. No blocking,
   no online softmax, no ring, no strides: if this file and ringattn.h agree, the ring's
   bookkeeping is right, because nothing here shares its shape with the ring.

   Layouts (all f64, contiguous, row-major):
     q [b, nq, h, d]   k [b, nk, hk, d]   v [b, nk, hk, dv]   out [b, nq, h, dv]
     lse [b, h, nq]    (natural log, scale included; -inf for a row that sees no key)
   q head hh reads kv head hh / (h / hk) (GQA / MQA).

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
} ref_problem;

/* out [b,nq,h,dv], lse [b,h,nq] (lse may be NULL). 0 on success, -1 on bad input or no memory. */
int ref_forward(const ref_problem *p, const double *q, const double *k, const double *v,
                double *out, double *lse);

/* dout [b,nq,h,dv] -> dq [b,nq,h,d], dk [b,nk,hk,d], dv [b,nk,hk,dv] (all overwritten; dk and
   dv summed over the q heads sharing a kv head). 0 on success, -1 on bad input or no memory. */
int ref_backward(const ref_problem *p, const double *q, const double *k, const double *v,
                 const double *dout, double *dq, double *dk, double *dv);

/* the dense mask rule, literally: 1 if query i may see key j */
int ref_visible(const ref_problem *p, int64_t i, int64_t j);

#ifdef __cplusplus
}
#endif
#endif /* RINGATTN_REF_H */
