/* ringattn_cuda.h - the CUDA companion of ringattn.h: the same ring attention (dense, causal,
   windowed, softcapped, GQA, varlen, dilated LongNet in both mixes; contiguous, zigzag and
   striped partitions; the score options: sinks, ALiBi, bias, masks, document ids, max logit),
   forward and backward, and decoding against a KV cache (contiguous or paged, split-KV),
   as CUDA kernels, with exactly the arguments of ringattn_forward / ringattn_backward /
   ringattn_forward_kvcache and tensors in device memory.
                                                               Version 0.4 (see end of file)
   USAGE
     In exactly ONE .cu file of your project (compiled by nvcc):
         #define RINGATTN_IMPLEMENTATION           (the CPU library, unless another file has it)
         #define RINGATTN_CUDA_IMPLEMENTATION
         #include "ringattn_cuda.h"
     Everywhere else (C or C++) just #include "ringattn_cuda.h": the declarations need no CUDA
     header. The implementation calls ringattn_plan() of ringattn.h to validate the config.

     Build line (sm_90 code plus compute_80 PTX that the driver can JIT for other GPUs):
         nvcc -O2 -I. -gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=compute_80 \
              myfile.cu -o myprog

     Swapping the CPU call for the GPU one (q, k, v, out, lse: views of device memory):
         int st = ringattn_cuda_forward(&cfg, &Q, &K, &V, &O, &L);   cfg.stream = a cudaStream_t
     and for decoding (the caches, new keys, partials, cache_seqlens and the block table in
     device memory too):
         int st = ringattn_cuda_forward_kvcache(&cfg, &kv, &Q, &O, &L);

   WHAT IT COMPUTES
     What ringattn_forward / ringattn_backward compute, for the same config, within the
     README's tolerance policy (f64: 1e-12 of the output scale; f32: the f32 bound). The ring
     is the same: the sequence is dealt to ring_size members by the CPU's partition
     (ringattn__pieces: contiguous chunks, zigzag pairs of chunks, or stripes), each member
     owns device buffers sized for its share (packed Q_i, running O_i / m_i / l_i, two K/V
     buffers), and at step t member i folds in the K/V share of member (i - t) mod p, then
     hands it to member i + 1 with cudaMemcpyAsync (device to device). Members run one after
     another on one stream of one GPU (no peer-to-peer between GPUs in this version).

   OPTIONS, AS ON THE CPU
     supported  every config the CPU accepts: causal (both alignments), window_left/right,
                scale, softcap (forward and backward), GQA/MQA, dv != d, any strides
                (negative too), f32/f64/f16/bf16 storage (exact loads, one
                round-to-nearest-even store), f32/f64 compute, partitions (contiguous,
                zigzag, striped), varlen (cu_seqlens_q/k, causal and window aligned per
                sequence), dilated attention with both mixes (segments, rates, head groups,
                /G), ring_size, stats, trace, stream; the score options: sinks and dsinks,
                ALiBi, bias and dbias, the dense mask, document ids, max_logit (bias, dbias,
                mask, max_logit: views of device memory; sinks, alibi_slopes, document ids:
                host arrays, copied by the call; dsinks: a host array the call writes).
     rejected   exactly what the CPU rejects, with its status and sentence (the checks are
                ringattn_check_call / ringattn_plan of ringattn.h), plus tensors whose data is
                not device memory (the score options' views too), head dims too large for one
                row of Q, K, V in shared memory, the host callbacks mask_fn / mask_block_fn
                (a kernel cannot call them: give the mask as cfg->mask or document ids), all
                RINGATTN_EUNSUPPORTED. cfg->error_detail says which.
     differs    ring_size = 0 means 1 member (one GPU), not "one per thread"; num_threads is
                validated and has no effect (results never depend on it on the CPU either);
                alloc_user / RINGATTN_MALLOC are not used (cudaMalloc, and malloc for the
                host-side block tables); a dense mask or unsorted document ids are applied
                pair by pair inside the blocks the other rules plan (the CPU also drops
                blocks they empty), so blocks_computed / tiles_computed / flops may then
                exceed the CPU's; sorted document ids cut rows as on the CPU.
     errors     CUDA failures return RINGATTN_ECUDA (RINGATTN_ENOMEM for
                cudaErrorMemoryAllocation) with the call and cudaGetErrorString in
                cfg->error_detail; no device at all is RINGATTN_ECUDA too.

   COMPILE-TIME OPTIONS (define before including)
     RINGATTN_CUDA_IMPLEMENTATION  in one .cu file: emit the implementation.
     RINGATTN_CUDA_API             everywhere: decoration of the three public functions.
     RINGATTN_CUDA_TILE            implementation file: the most query rows / keys per CUDA
                                   block (= threads per block), default 64, 1..64. A smaller
                                   tile is used when the rows of a tile do not fit in shared
                                   memory (large head dims, f64).

   THE KERNELS (one paragraph each; the code below is in the same order)
     pack / unpack      element-wise: the rows of a member's pieces in a strided [b, n, heads,
                        dim] view of any storage dtype -> its packed [b][heads][rows][dim]
                        buffer in the compute type, and back. Loads are exact (f16/bf16 decoded bit by bit), stores round
                        once to nearest even from double: the conversions of ringattn.h.
     forward tile       FlashAttention-2 structure: one CUDA block per (query tile, block of
                        the ring step), one thread per query row. The Q tile, the tile's slice
                        of the running O, m and l go to shared memory; K/V tiles are streamed
                        through shared memory; for each K/V tile a row computes the scores of
                        the keys it may see (masked keys are skipped, never multiplied by 0),
                        their max, rescales its O row once (the online-softmax merge: its
                        scalar core is ringattn.h's ringattn__merge_rescale / _fold) and adds
                        P V. A softcap maps each visible score before the merge, then the
                        score options add their term (ringattn__score_term: bias, ALiBi) and
                        hide pairs (ringattn__pair_visible: mask, unsorted document ids:
                        skipped; sorted ids narrow the rows, ringattn__doc_visible); the
                        row's max logit is kept with m and l. O, m, l go back to the member's
                        buffers (a sink is the rows' initial state: (m, l) = (sink, 1)).
     forward finish     element-wise: O = acc / l (times 1/G for head groups), lse = m + log l
                        (0 and -inf for a row that saw no key), stored into the user's views.
     backward rows      element-wise: per query row, D = rowsum(dO o O) (in double, from the
                        stored dO and O) and the saved lse, into the member's row arrays.
     backward dQ tile   one CUDA block per (query tile, block), one thread per query row: P is
                        recomputed from lse (exp(s - lse); through the softcap when set),
                        dP = dO V^T, dS = P (dP - D) (times 1 - (C / cap)^2 with a softcap),
                        dQ += scale dS K. dQ stays in the member. With score options P comes
                        from the final score, and with dbias the dS of the final score goes
                        to a [b][h][nq][nk] f64 workspace (each pair by its row's thread).
     backward dK/dV     one CUDA block per (key tile, block), one thread per key: streams the
                        query tiles, recomputes P and dS the same way, dV += P^T dO,
                        dK += scale dS^T Q into the travelling dK/dV buffer of the K/V chunk.
                        Two kernels, each output row written by exactly one thread: no atomics,
                        deterministic.
     KV cache           ringattn_cuda_forward_kvcache: an element-wise gather of every
                        sequence's keys (pages through the block table, then k_new) into
                        one [b][hk][L_max][d] buffer in the compute type; per split, one
                        launch of the forward tile kernel over the (sequence, head) blocks
                        with keys in it, each block's causal and ALiBi offsets set to the
                        split's place in its sequence (no sink inside a split); an
                        element-wise kernel per split that makes each row's partial (out_s,
                        lse_s, in double), writes split_out / split_lse and merges it into the
                        row's result with ringattn__merge_row (f64, from the sink's state);
                        the forward finish; with update_cache an element-wise write of
                        k_new / v_new into their slots. The CPU's order of operations
                        (ringattn_forward_kvcache); its checks (ringattn_check_kvcache_call)
                        on host copies of cache_seqlens and the table's used entries.
     dbias, dsinks      element-wise, after the ring: the workspace summed over the bias's
                        broadcast axes (ringattn__dbias_sum), and dsinks from the stored lse,
                        out and dout: parts of 2048 rows per head (ringattn__dsink_part), then
                        their sum in order per head (ringattn__dsink_finish).
   Blocks (the ringattn__block of the CPU: runs of query and key positions with a position
   stride and a buffer stride, and the causal offset of their segment) are planned on the host
   with ringattn.h's own geometry (ringattn__pieces, ringattn__pattern, ringattn__segment_range,
   ringattn__segment_at, ringattn__run) in ringattn__unit's order, and launched in "waves" such
   that no two blocks of one launch write the same rows (GQA heads sharing a K/V head, LongNet
   patterns sharing a query row, query or key pieces of a zigzag share go to different waves,
   in the CPU's order). Only the kernels' arithmetic is this header's own: the per-element
   forms of ringattn.h's dense kernels (exp with the f32 max / lse split, softcap and its
   derivative), which are GEMM-and-row routines on the CPU.

   Every kernel is written as a "block program": a __host__ __device__ function whose
   per-thread parts are RINGATTN_CUDA__EACH_THREAD regions separated by RINGATTN_CUDA__SYNC().
   On the GPU a region is the calling thread's part and SYNC is __syncthreads(); compiled for
   the host, a region loops over the threads and SYNC does nothing. State that lives across a
   barrier is in shared memory. This lets the test run the very same kernel code on the CPU
   (the internal ringattn_cuda__execute with emulate = 1), which is how it was checked without a
   GPU; see tests/test_cuda.cu.

   LICENSE: MIT (end of file), like ringattn.h.
*/
#ifndef RINGATTN_CUDA_H
#define RINGATTN_CUDA_H

#include "ringattn.h"

#ifndef RINGATTN_CUDA_API
#define RINGATTN_CUDA_API extern
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Exactly the arguments of ringattn_forward / ringattn_backward; every tensor's data in
   device memory (cudaMalloc, cudaMallocManaged or mapped pinned host memory), cfg->stream a
   cudaStream_t (NULL: the default stream). The call returns when the results are written
   (the stream is synchronized), so the status covers the kernels too. */
RINGATTN_CUDA_API int ringattn_cuda_forward(const ringattn_config *cfg,
                                            const ringattn_tensor *q, const ringattn_tensor *k,
                                            const ringattn_tensor *v, ringattn_tensor *out,
                                            ringattn_tensor *lse /* may be NULL */);

RINGATTN_CUDA_API int ringattn_cuda_backward(const ringattn_config *cfg,
                                             const ringattn_tensor *q, const ringattn_tensor *k,
                                             const ringattn_tensor *v, const ringattn_tensor *out,
                                             const ringattn_tensor *lse, const ringattn_tensor *dout,
                                             ringattn_tensor *dq, ringattn_tensor *dk,
                                             ringattn_tensor *dv);

/* Exactly the arguments of ringattn_forward_kvcache (decoding against a KV cache,
   contiguous or paged, split-KV partials): q, out, lse, the caches, k_new / v_new and the
   split tensors are views of device memory, and so are kv->cache_seqlens and kv->block_table
   (as FlashAttention takes them); the call copies those two to the host to validate them
   with ringattn_check_kvcache_call and to plan. update_cache writes the cache on the device
   after the result. */
RINGATTN_CUDA_API int ringattn_cuda_forward_kvcache(const ringattn_config *cfg, const ringattn_kvcache *kv,
                                                    const ringattn_tensor *q, ringattn_tensor *out,
                                                    ringattn_tensor *lse /* may be NULL */);

#ifdef __cplusplus
}
#endif
#endif /* RINGATTN_CUDA_H */

/* ======================================================================================== */
/*                                    IMPLEMENTATION                                        */
/* ======================================================================================== */
#if defined(RINGATTN_CUDA_IMPLEMENTATION) && !defined(RINGATTN_CUDA_IMPLEMENTATION_DONE)
#define RINGATTN_CUDA_IMPLEMENTATION_DONE

#ifndef __CUDACC__
#error "ringattn_cuda.h: RINGATTN_CUDA_IMPLEMENTATION must be compiled by nvcc (in a .cu file)"
#endif

#include <cuda_runtime.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef RINGATTN_CUDA_TILE
#define RINGATTN_CUDA_TILE 64
#endif
typedef char ringattn_cuda__check_tile[(RINGATTN_CUDA_TILE >= 1 && RINGATTN_CUDA_TILE <= 64) ? 1 : -1];

#define RINGATTN_CUDA__HD __host__ __device__

/* A block program's per-thread region and barrier (see the top comment). Inside a region,
   `continue` ends this thread's part of the region on both sides. */
#ifdef __CUDA_ARCH__
#define RINGATTN_CUDA__EACH_THREAD(t, nt) \
    for (int t = (int)threadIdx.x, t##_once_ = 1; t##_once_; t##_once_ = 0)
#define RINGATTN_CUDA__SYNC() __syncthreads()
#else
#define RINGATTN_CUDA__EACH_THREAD(t, nt) for (int t = 0; t < (nt); t++)
#define RINGATTN_CUDA__SYNC() ((void)0)
#endif

/* ---------------------------------------------------------------- the problem, the blocks */
/* The problem is ringattn.h's own (ringattn__problem, filled by ringattn__problem_set), passed
   to kernels by value; nt is the tile (rows or keys per CUDA block = threads per block) and
   seg / rate / cuq / cuk are host pointers, used by the host-side planning only. Conversions
   (ringattn__load / ringattn__store / ringattn__index), partition pieces, dilated runs,
   segments, head groups and the merge's scalar core are ringattn.h's RINGATTN__HD functions. */

/* One block of a ring step (ringattn__block of ringattn.h): query positions qa, qa+qps, ...
   (nr of them) against key positions ka, ka+kps, ... (nc of them), at buffer rows qrow,
   qrow+rs, ... and krow, krow+rs, ...; off aligns the causal mask (per sequence in varlen). */
typedef struct {
    int64_t qa, ka, qps, kps, rs, nr, nc, off;
    int64_t qrow;                  /* row of qa in the member's [b][h][rows] arrays           */
    int64_t krow;                  /* row of ka in the K/V buffer's [b][hk][ck] rows          */
    int64_t bb, hh, aoff;          /* batch, q head, ALiBi's offset (ringattn__segment_aoff)  */
} ringattn_cuda__block;

/* Visible key columns [*lo, *hi) (0 <= lo <= hi <= nc) of block row i: ringattn.h's own
   rules over the whole block, the intervals (ringattn__visible) and sorted document ids
   (ringattn__doc_visible: each row's document is one interval of keys). */
static RINGATTN_CUDA__HD inline void ringattn_cuda__row_bounds(const ringattn__problem *P,
                                                               const ringattn_cuda__block *B,
                                                               int64_t i, int64_t *lo, int64_t *hi)
{
    int64_t a = 0, z = B->nc, qpos = B->qa + i * B->qps;
    ringattn__visible(P->causal, P->wl, P->wr, B->off, qpos, B->ka, B->kps, &a, &z);
    if (P->docs_sorted && a < z) ringattn__doc_visible(P, qpos, B->ka, B->kps, &a, &z);
    if (z < a) z = a;
    *lo = a; *hi = z;
}

/* 1 if a pair mask asked pair by pair (cfg->mask, unsorted document ids: ringattn.h's
   ringattn__pair_visible) hides key position kpos from query position qpos of block B; the
   interval rules and sorted document ids are the bounds'. */
static RINGATTN_CUDA__HD inline int ringattn_cuda__hidden(const ringattn__problem *P, const ringattn_cuda__block *B,
                                                          int64_t qpos, int64_t kpos)
{
    return P->pairs && !ringattn__pair_visible(P, B->bb, B->hh, qpos, kpos);
}

/* Buffer row r of a member's pieces (rows of piece 0, then of piece 1) -> its position. */
static RINGATTN_CUDA__HD inline int64_t ringattn_cuda__pos(const ringattn__piece *pc, int np, int64_t r)
{
    const ringattn__piece *k = (np == 2 && r >= pc[1].row0) ? &pc[1] : &pc[0];
    return k->pos0 + (r - k->row0) * k->stride;
}

/* softcap (Gemma 2 / FlashAttention): s -> cap tanh(s / cap), in the compute type, as
   ringattn__row_softcap forms it */
static RINGATTN_CUDA__HD inline float ringattn_cuda__tanh(float x) { return tanhf(x); }
static RINGATTN_CUDA__HD inline double ringattn_cuda__tanh(double x) { return tanh(x); }
template <typename T>
static RINGATTN_CUDA__HD inline T ringattn_cuda__softcap(T s, double cap)
{
    return (T)cap * ringattn_cuda__tanh(s / (T)cap);
}

/* Softmax weights in the compute precision, as ringattn.h forms them: f32 subtracts the max
   (a float) or the lse as a float pair hi + lo, then ringattn.h's own exps (the same bits). */
static RINGATTN_CUDA__HD inline float ringattn_cuda__exp_minus(float s, double m)
{
    float hi = (float)m, lo = (float)(m - (double)hi);
    return ringattn__expf(s, hi, lo);   /* the CPU's exp: the same bits */
}
static RINGATTN_CUDA__HD inline double ringattn_cuda__exp_minus(double s, double m) { return ringattn__exp(s - m); }

/* ---------------------------------------------------------------- element-wise kernels */
/* Each is a functor f(i) over i in [0, n); ringattn_cuda__each runs it on the GPU (a
   grid-stride loop) or, emulated, in a plain loop. */

template <typename F>
__global__ void ringattn_cuda__each_kernel(F f, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    for (; i < n; i += (int64_t)gridDim.x * blockDim.x) f(i);
}

/* A member's pieces (ringattn__pieces: rows of piece 0, then of piece 1) of a [b, n, heads,
   dim] view -> packed [b][heads][pitch][dim], times mul (ringattn__pack) */
template <typename T>
struct ringattn_cuda__pack {
    ringattn_tensor t; ringattn__piece pc[2]; int np; int64_t rows, pitch; T *dst; double mul;
    RINGATTN_CUDA__HD void operator()(int64_t i) const
    {
        int64_t dim = t.shape[3], heads = t.shape[2];
        int64_t c = i % dim, x = i / dim, r = x % rows, hh, bb;
        x /= rows; hh = x % heads; bb = x / heads;
        dst[((bb * heads + hh) * pitch + r) * dim + c] =   /* (T): the compute type's one rounding */
            (T)(ringattn__load(t.data, t.dtype, ringattn__index(&t, bb, ringattn_cuda__pos(pc, np, r), hh, c)) * mul);
    }
};

/* the inverse: packed [b][heads][pitch][dim] -> the pieces' rows of a view (ringattn__unpack) */
template <typename T>
struct ringattn_cuda__unpack {
    ringattn_tensor t; ringattn__piece pc[2]; int np; int64_t rows, pitch; const T *src;
    RINGATTN_CUDA__HD void operator()(int64_t i) const
    {
        int64_t dim = t.shape[3], heads = t.shape[2];
        int64_t c = i % dim, x = i / dim, r = x % rows, hh, bb;
        x /= rows; hh = x % heads; bb = x / heads;
        ringattn__store(t.data, t.dtype, ringattn__index(&t, bb, ringattn_cuda__pos(pc, np, r), hh, c),
                        (double)src[((bb * heads + hh) * pitch + r) * dim + c]);
    }
};

/* a member's running state before step 0: m = -inf, l = 0, or with sinks the sink of the
   row's head counted once, (m, l) = (sink, 1) (ringattn__member_setup); the row's max logit
   -inf */
struct ringattn_cuda__init_rows {
    double *m, *l, *x; const double *sinks; int64_t h, rows;
    RINGATTN_CUDA__HD void operator()(int64_t i) const
    {
        if (sinks) { m[i] = sinks[(i / rows) % h]; l[i] = 1.0; }
        else { m[i] = -(double)INFINITY; l[i] = 0.0; }
        if (x) x[i] = -(double)INFINITY;
    }
};

/* precision emulation (round_state), after a step: one row held as a port holds (out, lse)
   between steps (ringattn__hold_row: the CPU's rule) */
template <typename T>
struct ringattn_cuda__hold_rows {
    T *acc; double *m, *l; int64_t dv; ringattn_dtype st;
    RINGATTN_CUDA__HD void operator()(int64_t i) const
    {
        ringattn__hold_row(acc + i * dv, sizeof(T) == 8 ? RINGATTN_F64 : RINGATTN_F32, dv, &m[i], &l[i], st);
    }
};

/* after the last step, one element (row, c) of a member's rows: O = acc / l * gdiv, and for
   c == 0 the lse and the max logit (ringattn__member_finish) */
template <typename T>
struct ringattn_cuda__forward_finish {
    ringattn_tensor o, lse, ml; int has_lse; ringattn__piece pc[2]; int np; int64_t h, rows, dv;
    const T *acc; const double *m, *l, *x; double gdiv;
    RINGATTN_CUDA__HD void operator()(int64_t i) const
    {
        int64_t c = i % dv, at = i / dv, r = at % rows, hh = (at / rows) % h, bb = at / rows / h;
        int64_t pos = ringattn_cuda__pos(pc, np, r);
        ringattn__store(o.data, o.dtype, ringattn__index(&o, bb, pos, hh, c),
                        ringattn__finish_out((double)acc[at * dv + c], l[at], gdiv));
        if (c == 0 && has_lse)
            ringattn__store(lse.data, lse.dtype, ringattn__index(&lse, bb, hh, pos, 0), ringattn__finish_lse(m[at], l[at]));
        if (c == 0 && x)
            ringattn__store(ml.data, ml.dtype, ringattn__index(&ml, bb, hh, pos, 0), x[at]);
    }
};

/* backward with dbias, one element of dbias (in the bias's shape): the score gradients of the
   [b][h][nq][nk] workspace summed over its broadcast axes (ringattn__dbias_sum) */
struct ringattn_cuda__dbias_reduce {
    ringattn__problem P; const double *g; ringattn_tensor db;
    RINGATTN_CUDA__HD void operator()(int64_t x) const
    {
        int64_t j = x % P.nk, i = (x / P.nk) % P.nq, th = (x / P.nk / P.nq) % db.shape[1];
        int64_t tb = x / P.nk / P.nq / db.shape[1];
        ringattn__store(db.data, db.dtype, ringattn__index(&db, tb, th, i, j), ringattn__dbias_sum(&P, g, &db, tb, th, i, j));
    }
};

/* backward with sinks: dsinks from the stored lse, out, dout in two element-wise passes,
   deterministic: part x = (head, chunk of RINGATTN_CUDA__DSINK_ROWS rows) sums its rows
   (ringattn__dsink_part), then one thread per head adds its parts in order
   (ringattn__dsink_finish) */
#define RINGATTN_CUDA__DSINK_ROWS 2048
struct ringattn_cuda__dsink_parts {
    ringattn__problem P; ringattn_tensor lse, dout, out; double *part; int64_t chunks;
    RINGATTN_CUDA__HD void operator()(int64_t x) const
    {
        int64_t hh = x / chunks, x0 = (x % chunks) * RINGATTN_CUDA__DSINK_ROWS, x1 = x0 + RINGATTN_CUDA__DSINK_ROWS;
        if (x1 > P.b * P.nq) x1 = P.b * P.nq;
        part[x] = ringattn__dsink_part(&P, &lse, &dout, &out, hh, x0, x1);
    }
};
struct ringattn_cuda__dsinks {
    ringattn__problem P; const double *part; int64_t chunks; double *dsinks;
    RINGATTN_CUDA__HD void operator()(int64_t hh) const
    {
        double sum = 0;
        int64_t c;
        for (c = 0; c < chunks; c++) sum += part[hh * chunks + c];
        dsinks[hh] = ringattn__dsink_finish(&P, hh, sum);
    }
};

/* backward, one query row: D = rowsum(dO o O) in double from the stored tensors, and the
   saved lse (the row part of ringattn__member_setup) */
struct ringattn_cuda__backward_rows {
    ringattn_tensor dout, out, lse; ringattn__piece pc[2]; int np; int64_t h, rows, dv; double *rs_lse, *rs_d;
    RINGATTN_CUDA__HD void operator()(int64_t at) const
    {
        int64_t r = at % rows, hh = (at / rows) % h, bb = at / rows / h;
        int64_t pos = ringattn_cuda__pos(pc, np, r);
        rs_d[at] = ringattn__row_D(&dout, &out, bb, pos, hh, dv);
        rs_lse[at] = ringattn__load(lse.data, lse.dtype, ringattn__index(&lse, bb, hh, pos, 0));
    }
};

/* ---------------------------------------------------------------- tile kernels: shared memory */

enum { RINGATTN_CUDA__FWD = 0, RINGATTN_CUDA__DQ = 1, RINGATTN_CUDA__DKV = 2 };

/* One CUDA block's shared memory: per-row state first (8-byte types), then the tiles.
   forward: q, o, k, v   dQ: q, dq, dout, k, v   dK/dV: q, dout, k, v, dk, dv */
template <typename T>
struct ringattn_cuda__smem {
    double *m, *l;                 /* per row, forward: running max and sum (else NULL)       */
    double *lse, *D;               /* per row, backward: lse and D (else NULL); same place    */
    double *x;                     /* per row, forward with max_logit: the row's max score    */
    int64_t *lo, *hi;              /* per row: visible key columns [lo, hi) of the block      */
    int64_t *flag;                 /* block-uniform values written by thread 0                */
    T *q, *o, *dq, *dout, *k, *v, *dk, *dv;
};

/* carve `base` (NULL: just measure) for a tile of nt rows (ml: the forward's max_logit rows
   too); returns the bytes */
template <typename T>
static RINGATTN_CUDA__HD size_t ringattn_cuda__layout(char *base, int kind, int64_t nt, int64_t d, int64_t dv,
                                                      int ml, ringattn_cuda__smem<T> *S)
{
    size_t off = 0;
    ringattn_cuda__smem<T> L;
#define RINGATTN_CUDA__CARVE(ptr, type, count) \
    do { (ptr) = base ? (type *)(void *)(base + off) : (type *)0; \
         off += (((size_t)(count) * sizeof(type)) + 15) / 16 * 16; } while (0)
    L.m = L.l = L.lse = L.D = L.x = (double *)0;
    if (kind == RINGATTN_CUDA__FWD) { RINGATTN_CUDA__CARVE(L.m, double, nt); RINGATTN_CUDA__CARVE(L.l, double, nt); }
    if (kind == RINGATTN_CUDA__FWD && ml) RINGATTN_CUDA__CARVE(L.x, double, nt);   /* max_logit */
    else { RINGATTN_CUDA__CARVE(L.lse, double, nt); RINGATTN_CUDA__CARVE(L.D, double, nt); }
    RINGATTN_CUDA__CARVE(L.lo, int64_t, nt);
    RINGATTN_CUDA__CARVE(L.hi, int64_t, nt);
    RINGATTN_CUDA__CARVE(L.flag, int64_t, 2);
    RINGATTN_CUDA__CARVE(L.q, T, nt * d);
    RINGATTN_CUDA__CARVE(L.k, T, nt * d);
    RINGATTN_CUDA__CARVE(L.v, T, nt * dv);
    L.o = L.dq = L.dout = L.dk = L.dv = (T *)0;
    if (kind == RINGATTN_CUDA__FWD) RINGATTN_CUDA__CARVE(L.o, T, nt * dv);
    if (kind == RINGATTN_CUDA__DQ) RINGATTN_CUDA__CARVE(L.dq, T, nt * d);
    if (kind != RINGATTN_CUDA__FWD) RINGATTN_CUDA__CARVE(L.dout, T, nt * dv);
    if (kind == RINGATTN_CUDA__DKV) { RINGATTN_CUDA__CARVE(L.dk, T, nt * d); RINGATTN_CUDA__CARVE(L.dv, T, nt * dv); }
#undef RINGATTN_CUDA__CARVE
    if (S) *S = L;
    return off;
}

/* What a tile kernel works on: the problem, this launch's blocks, one member's buffers. */
template <typename T>
struct ringattn_cuda__tile_args {
    ringattn__problem P;
    const ringattn_cuda__block *blocks;
    T *q;                          /* member Q_i [b][h][rows][d]                              */
    T *o;                          /* forward: running O_i [..][dv]                           */
    double *m, *l;                 /* forward: running row max and sum [b][h][rows]           */
    double *x;                     /* forward with max_logit: the rows' max score, else NULL  */
    T *dq;                         /* backward: dQ_i [..][d]                                  */
    const T *dout;                 /* backward: dO_i (already divided by G) [..][dv]          */
    double *lse, *D;               /* backward: lse_i, D_i [b][h][rows]                       */
    const T *kv;                   /* the K/V chunk held: K [b][hk][ck][d], then V [..][dv]   */
    T *dkv;                        /* backward: its travelling dK, dV, same layout            */
    int64_t kvhalf;                /* elements of K in a K/V buffer (V follows)               */
    double *dbias;                 /* backward with dbias: the [b][h][nq][nk] f64 workspace   */
};

/* ---------------------------------------------------------------- forward tile kernel */

/* One row's part of a K/V tile: keys [c0, c0 + nc) of the block, of which the row sees
   [lo, hi); r is its row in block B. The online-softmax merge of ringattn__merge, for one row:
     m_new = max(m, max_j s_j);   l = l exp(m - m_new) + sum_j exp(s_j - m_new)
     O     = O exp(m - m_new) + sum_j exp(s_j - m_new) v_j
   With score options, s_j = softcap(scale q.k_j) + ringattn__score_term (bias, ALiBi), in
   double with one rounding to the compute type as ringattn__row_options forms it; pairs a
   pair mask hides (ringattn__pair_visible) are skipped. The row's max logit is the max of the
   final scores (ringattn__merge's rule). */
template <typename T>
static RINGATTN_CUDA__HD void ringattn_cuda__forward_row(const ringattn__problem *P, const ringattn_cuda__block *B,
                                                         const ringattn_cuda__smem<T> &S, int i, int64_t r,
                                                         int64_t c0, int64_t nc)
{
    T s[RINGATTN_CUDA_TILE];
    unsigned char hid[RINGATTN_CUDA_TILE];
    int64_t a = S.lo[i] - c0, z = S.hi[i] - c0, j, c, d = P->d, dv = P->dv, qpos = B->qa + r * B->qps;
    const T *q = S.q + i * d;
    T *o = S.o + i * dv;
    double mx = -(double)INFINITY, mnew = 0, alpha = 0, sum = 0;
    int nan = 0;
    if (a < 0) a = 0;
    if (z > nc) z = nc;
    if (a >= z) return;                     /* no visible key in this tile: nothing read */
    for (j = a; j < z; j++) {               /* S = scale * q K^T, visible keys only */
        T dot = 0;
        int64_t kpos = B->ka + (c0 + j) * B->kps;
        hid[j] = (unsigned char)ringattn_cuda__hidden(P, B, qpos, kpos);
        if (hid[j]) { s[j] = -(T)INFINITY; continue; }   /* a pair mask: skipped */
        for (c = 0; c < d; c++) dot += q[c] * S.k[j * d + c];
        s[j] = (T)P->scale * dot;
        if (P->round_s) s[j] = (T)ringattn__round((double)s[j], P->pt);         /* precision emulation */
        if (P->softcap > 0) s[j] = ringattn_cuda__softcap(s[j], P->softcap);   /* before the merge */
        if (P->modify) s[j] = (T)ringattn__score_term(P, B->bb, B->hh, qpos, kpos, B->aoff, (double)s[j]);
        if ((double)s[j] > mx) mx = (double)s[j];
        if (s[j] != s[j]) nan = 1;
    }
    if (mx == -(double)INFINITY && nan) mx = (double)NAN;   /* ringattn__row_max: only NaNs seen */
    if (S.x && (mx > S.x[i] || mx != mx)) S.x[i] = mx;      /* max_logit (ringattn__merge) */
    if (!ringattn__merge_rescale(S.m[i], mx, &mnew, &alpha)) return;   /* contributes nothing */
    for (j = a; j < z; j++) {
        if (hid[j]) continue;
        s[j] = ringattn_cuda__exp_minus(s[j], mnew); sum += (double)s[j];
    }
    if (P->round_p)   /* precision emulation: P rounded after l, before P V (ringattn__round) */
        for (j = a; j < z; j++) if (!hid[j]) s[j] = (T)ringattn__round((double)s[j], P->pt);
    ringattn__merge_fold(&S.m[i], &S.l[i], mnew, alpha, sum);
    if (alpha != 1.0) for (c = 0; c < dv; c++) o[c] *= (T)alpha;
    for (c = 0; c < dv; c++) {              /* O += P V */
        T acc = o[c];
        for (j = a; j < z; j++) if (!hid[j]) acc += s[j] * S.v[j * dv + c];
        o[c] = acc;
    }
}

/* The key columns [*kmin, *kmax) that any of the tile's nr rows sees (their bounds are in
   S.lo / S.hi): thread 0 finds them and every thread reads them after the barrier. Called by
   every thread of the block. */
template <typename T>
static RINGATTN_CUDA__HD void ringattn_cuda__tile_span(const ringattn_cuda__smem<T> &S, int nt, int64_t nr,
                                                       int64_t nc, int64_t *kmin, int64_t *kmax)
{
    RINGATTN_CUDA__EACH_THREAD(i, nt) {
        int64_t lo = nc, hi = 0, x;
        if (i != 0) continue;
        for (x = 0; x < nr; x++)
            if (S.lo[x] < S.hi[x]) { if (S.lo[x] < lo) lo = S.lo[x]; if (S.hi[x] > hi) hi = S.hi[x]; }
        S.flag[0] = lo; S.flag[1] = hi;
    }
    RINGATTN_CUDA__SYNC();
    *kmin = S.flag[0]; *kmax = S.flag[1];
}

/* Block program: query tile bx of block by. Q, O, m, l of the tile's rows into shared
   memory; K/V tiles streamed through shared memory; each thread folds its row. */
template <typename T>
static RINGATTN_CUDA__HD void ringattn_cuda__forward_tile(const ringattn_cuda__tile_args<T> &A, int64_t bx,
                                                          int64_t by, char *smem)
{
    const ringattn__problem *P = &A.P;
    const ringattn_cuda__block B = A.blocks[by];
    const int nt = P->nt;
    const int64_t d = P->d, dv = P->dv, r0 = bx * nt;
    const int64_t ldq = B.rs * d, ldv = B.rs * dv;          /* a run is a matrix with stride r */
    int64_t nr, c0, kmin, kmax;
    ringattn_cuda__smem<T> S;
    T *qg, *og; double *mg, *lg, *xg; const T *kg, *vg;
    if (r0 >= B.nr) return;                                /* uniform: the whole CUDA block */
    nr = (B.nr - r0 < nt) ? B.nr - r0 : nt;
    ringattn_cuda__layout<T>(smem, RINGATTN_CUDA__FWD, nt, d, dv, A.x != NULL, &S);
    qg = A.q + (B.qrow + r0 * B.rs) * d;                    /* row i at qg + i * ldq */
    og = A.o + (B.qrow + r0 * B.rs) * dv;
    mg = A.m + B.qrow + r0 * B.rs;                        /* row i at mg[i * r]    */
    lg = A.l + B.qrow + r0 * B.rs;
    xg = A.x ? A.x + B.qrow + r0 * B.rs : (double *)0;
    kg = A.kv + B.krow * d;                                /* key c at kg + c * ldq */
    vg = A.kv + A.kvhalf + B.krow * dv;

    /* pass 1: each thread loads its row and its visible key range */
    RINGATTN_CUDA__EACH_THREAD(i, nt) {
        int64_t c;
        S.lo[i] = S.hi[i] = 0;
        if (i >= nr) continue;
        ringattn_cuda__row_bounds(P, &B, r0 + i, &S.lo[i], &S.hi[i]);
        for (c = 0; c < d; c++) S.q[i * d + c] = qg[i * ldq + c];
        for (c = 0; c < dv; c++) S.o[i * dv + c] = og[i * ldv + c];
        S.m[i] = mg[i * B.rs];
        S.l[i] = lg[i * B.rs];
        if (xg) S.x[i] = xg[i * B.rs];
    }
    RINGATTN_CUDA__SYNC();
    /* pass 2: the key columns any row of the tile sees */
    ringattn_cuda__tile_span(S, nt, nr, B.nc, &kmin, &kmax);
    /* pass 3: K/V tiles on the grid of multiples of nt that the rows can see */
    for (c0 = kmin / nt * nt; c0 < kmax; c0 += nt) {
        int64_t nc = (B.nc - c0 < nt) ? B.nc - c0 : nt;
        RINGATTN_CUDA__EACH_THREAD(j, nt) {                /* thread j loads key c0 + j */
            int64_t c;
            if (j >= nc) continue;
            for (c = 0; c < d; c++) S.k[j * d + c] = kg[(c0 + j) * ldq + c];
            for (c = 0; c < dv; c++) S.v[j * dv + c] = vg[(c0 + j) * ldv + c];
        }
        RINGATTN_CUDA__SYNC();
        RINGATTN_CUDA__EACH_THREAD(i, nt) {
            if (i >= nr) continue;
            ringattn_cuda__forward_row<T>(P, &B, S, i, r0 + i, c0, nc);
        }
        RINGATTN_CUDA__SYNC();
    }
    /* pass 4: the running state back to the member */
    RINGATTN_CUDA__EACH_THREAD(i, nt) {
        int64_t c;
        if (i >= nr) continue;
        for (c = 0; c < dv; c++) og[i * ldv + c] = S.o[i * dv + c];
        mg[i * B.rs] = S.m[i];
        lg[i * B.rs] = S.l[i];
        if (xg) xg[i * B.rs] = S.x[i];
    }
}

/* ---------------------------------------------------------------- backward tile kernels */

/* One visible pair of the backward pass, from its score s = scale q.k and dP = dO.v: the
   probability P recomputed from the saved lse, and dS, the gradient of the raw score, as
   ringattn__backward_block forms them (ringattn__row_prob / ringattn__row_dsoftmax, or
   through a softcap ringattn__row_softcap / ringattn__row_dsoftcap):
     P = exp(S - lse),  dS = P (dP - D)                      without softcap
     P = exp(C - lse),  dS = P (dP - D) (1 - (C / cap)^2)    C = cap tanh(S / cap)          */
template <typename T>
static RINGATTN_CUDA__HD inline void ringattn_cuda__dscore(const ringattn__problem *P, T s, T dp, double lse,
                                                           double D, T *p, T *ds)
{
    if (P->round_s) {   /* precision emulation: S and dP as eager low-precision attention stores them */
        s = (T)ringattn__round((double)s, P->pt);
        dp = (T)ringattn__round((double)dp, P->pt);
    }
    if (P->softcap > 0) {
        T cs = ringattn_cuda__softcap(s, P->softcap), c = cs / (T)P->softcap;
        *p = (T)exp((double)cs - lse);
        *ds = *p * (dp - (T)D) * ((T)1 - c * c);
        if (P->round_p) {
            *p = (T)ringattn__round((double)*p, P->pt);
            *ds = (T)ringattn__round((double)*ds, P->pt);
        }
        return;
    }
    *p = ringattn_cuda__exp_minus(s, lse);
    *ds = *p * (dp - (T)D);
    if (P->round_p) {   /* precision emulation: P and dS as the products read them */
        *p = (T)ringattn__round((double)*p, P->pt);
        *ds = (T)ringattn__round((double)*ds, P->pt);
    }
}

/* The same with score options (ringattn__bwd_row_options): the final score
   x = softcap(s) + bias - ALiBi (ringattn__score_term, in double, one rounding),
   P = exp(x - lse), dS of the final score *dx = P (dP - D) (what dbias sums), then the
   softcap's derivative (1 - (C / cap)^2, in double) for dS of the raw score. */
template <typename T>
static RINGATTN_CUDA__HD inline void ringattn_cuda__dscore_options(const ringattn__problem *P, const ringattn_cuda__block *B,
                                                                   int64_t qpos, int64_t kpos, T s, T dp, double lse,
                                                                   double D, T *p, T *ds, T *dx)
{
    T x;
    if (P->round_s) {   /* precision emulation: S and dP as eager low-precision attention stores them */
        s = (T)ringattn__round((double)s, P->pt);
        dp = (T)ringattn__round((double)dp, P->pt);
    }
    if (P->softcap > 0) s = ringattn_cuda__softcap(s, P->softcap);
    x = P->modify ? (T)ringattn__score_term(P, B->bb, B->hh, qpos, kpos, B->aoff, (double)s) : s;
    *p = ringattn_cuda__exp_minus(x, lse);
    *dx = *p * (dp - (T)D);
    *ds = *dx;
    if (P->softcap > 0) {
        double c = (double)s / P->softcap;
        *ds = (T)((double)*dx * (1.0 - c * c));
    }
    if (P->round_p) {   /* precision emulation: P and dS as the products read them */
        *p = (T)ringattn__round((double)*p, P->pt);
        *ds = (T)ringattn__round((double)*ds, P->pt);
    }
}

/* Block program: dQ of query tile bx of block by (ringattn__backward_block, the dQ part).
   Rows with lse = -inf saw nothing in the forward pass and get no gradient. */
template <typename T>
static RINGATTN_CUDA__HD void ringattn_cuda__dq_tile(const ringattn_cuda__tile_args<T> &A, int64_t bx,
                                                     int64_t by, char *smem)
{
    const ringattn__problem *P = &A.P;
    const ringattn_cuda__block B = A.blocks[by];
    const int nt = P->nt;
    const int64_t d = P->d, dv = P->dv, r0 = bx * nt;
    const int64_t ldq = B.rs * d, ldv = B.rs * dv;
    int64_t nr, c0, kmin, kmax;
    ringattn_cuda__smem<T> S;
    T *qg, *dqg; const T *gg, *kg, *vg; const double *lseg, *Dg;
    if (r0 >= B.nr) return;
    nr = (B.nr - r0 < nt) ? B.nr - r0 : nt;
    ringattn_cuda__layout<T>(smem, RINGATTN_CUDA__DQ, nt, d, dv, 0, &S);
    qg = A.q + (B.qrow + r0 * B.rs) * d;
    dqg = A.dq + (B.qrow + r0 * B.rs) * d;
    gg = A.dout + (B.qrow + r0 * B.rs) * dv;
    lseg = A.lse + B.qrow + r0 * B.rs;
    Dg = A.D + B.qrow + r0 * B.rs;
    kg = A.kv + B.krow * d;
    vg = A.kv + A.kvhalf + B.krow * dv;

    RINGATTN_CUDA__EACH_THREAD(i, nt) {
        int64_t c;
        S.lo[i] = S.hi[i] = 0;
        if (i >= nr) continue;
        S.lse[i] = lseg[i * B.rs];
        S.D[i] = Dg[i * B.rs];
        ringattn_cuda__row_bounds(P, &B, r0 + i, &S.lo[i], &S.hi[i]);
        if (S.lse[i] == -(double)INFINITY) S.lo[i] = S.hi[i];
        for (c = 0; c < d; c++) { S.q[i * d + c] = qg[i * ldq + c]; S.dq[i * d + c] = dqg[i * ldq + c]; }
        for (c = 0; c < dv; c++) S.dout[i * dv + c] = gg[i * ldv + c];
    }
    RINGATTN_CUDA__SYNC();
    ringattn_cuda__tile_span(S, nt, nr, B.nc, &kmin, &kmax);
    for (c0 = kmin / nt * nt; c0 < kmax; c0 += nt) {
        int64_t nc = (B.nc - c0 < nt) ? B.nc - c0 : nt;
        RINGATTN_CUDA__EACH_THREAD(j, nt) {
            int64_t c;
            if (j >= nc) continue;
            for (c = 0; c < d; c++) S.k[j * d + c] = kg[(c0 + j) * ldq + c];
            for (c = 0; c < dv; c++) S.v[j * dv + c] = vg[(c0 + j) * ldv + c];
        }
        RINGATTN_CUDA__SYNC();
        RINGATTN_CUDA__EACH_THREAD(i, nt) {
            int64_t a = S.lo[i] - c0, z = S.hi[i] - c0, j, c, qpos = B.qa + (r0 + i) * B.qps;
            const T *q = S.q + i * d, *g = S.dout + i * dv;
            T *dq = S.dq + i * d;
            if (i >= nr) continue;
            if (a < 0) a = 0;
            if (z > nc) z = nc;
            for (j = a; j < z; j++) {
                T s = 0, dp = 0, p, ds, dx, w;
                int64_t kpos = B.ka + (c0 + j) * B.kps;
                if (ringattn_cuda__hidden(P, &B, qpos, kpos)) continue;   /* a pair mask: skipped */
                for (c = 0; c < d; c++) s += q[c] * S.k[j * d + c];
                s = (T)P->scale * s;                          /* S = scale Q K^T     */
                for (c = 0; c < dv; c++) dp += g[c] * S.v[j * dv + c];   /* dP = dO V^T */
                if (P->modify || P->emask) {                  /* score options       */
                    ringattn_cuda__dscore_options(P, &B, qpos, kpos, s, dp, S.lse[i], S.D[i], &p, &ds, &dx);
                    if (A.dbias)   /* dbias: this pair's dS of the final score, written once */
                        A.dbias[((B.bb * P->h + B.hh) * P->nq + qpos) * P->nk + kpos] += (double)dx;
                } else {
                    ringattn_cuda__dscore(P, s, dp, S.lse[i], S.D[i], &p, &ds);
                }
                w = (T)P->scale * ds;                         /* dQ += scale dS K    */
                for (c = 0; c < d; c++) dq[c] += w * S.k[j * d + c];
            }
        }
        RINGATTN_CUDA__SYNC();
    }
    RINGATTN_CUDA__EACH_THREAD(i, nt) {
        int64_t c;
        if (i >= nr) continue;
        for (c = 0; c < d; c++) dqg[i * ldq + c] = S.dq[i * d + c];
    }
}

/* Block program: dK, dV of key tile bx of block by. Thread j owns key c0 + j and walks the
   query tiles that can see the key tile, in row order (the order of the CPU's sums). */
template <typename T>
static RINGATTN_CUDA__HD void ringattn_cuda__dkv_tile(const ringattn_cuda__tile_args<T> &A, int64_t bx,
                                                      int64_t by, char *smem)
{
    const ringattn__problem *P = &A.P;
    const ringattn_cuda__block B = A.blocks[by];
    const int nt = P->nt;
    const int64_t d = P->d, dv = P->dv, c0 = bx * nt;
    const int64_t ldq = B.rs * d, ldv = B.rs * dv;
    int64_t nc, r0;
    ringattn_cuda__smem<T> S;
    const T *qg, *gg, *kg, *vg; T *dkg, *dvg; const double *lseg, *Dg;
    if (c0 >= B.nc) return;
    nc = (B.nc - c0 < nt) ? B.nc - c0 : nt;
    ringattn_cuda__layout<T>(smem, RINGATTN_CUDA__DKV, nt, d, dv, 0, &S);
    qg = A.q + B.qrow * d;                                 /* row i at qg + i * ldq */
    gg = A.dout + B.qrow * dv;
    lseg = A.lse + B.qrow;
    Dg = A.D + B.qrow;
    kg = A.kv + (B.krow + c0 * B.rs) * d;                   /* key j at kg + j * ldq */
    vg = A.kv + A.kvhalf + (B.krow + c0 * B.rs) * dv;
    dkg = A.dkv + (B.krow + c0 * B.rs) * d;
    dvg = A.dkv + A.kvhalf + (B.krow + c0 * B.rs) * dv;

    RINGATTN_CUDA__EACH_THREAD(j, nt) {
        int64_t c;
        if (j >= nc) continue;
        for (c = 0; c < d; c++) { S.k[j * d + c] = kg[j * ldq + c]; S.dk[j * d + c] = dkg[j * ldq + c]; }
        for (c = 0; c < dv; c++) { S.v[j * dv + c] = vg[j * ldv + c]; S.dv[j * dv + c] = dvg[j * ldv + c]; }
    }
    for (r0 = 0; r0 < B.nr; r0 += nt) {
        int64_t nr = (B.nr - r0 < nt) ? B.nr - r0 : nt;
        /* the rows' visible ranges (and lse: a row that saw nothing has no gradient) */
        RINGATTN_CUDA__EACH_THREAD(i, nt) {
            S.lo[i] = S.hi[i] = 0;
            if (i >= nr) continue;
            S.lse[i] = lseg[(r0 + i) * B.rs];
            ringattn_cuda__row_bounds(P, &B, r0 + i, &S.lo[i], &S.hi[i]);
            if (S.lse[i] == -(double)INFINITY) S.lo[i] = S.hi[i];
        }
        RINGATTN_CUDA__SYNC();
        RINGATTN_CUDA__EACH_THREAD(i, nt) {                /* does any row see a key of ours? */
            int64_t x, any = 0;
            if (i != 0) continue;
            for (x = 0; x < nr; x++) any |= (S.lo[x] < c0 + nc && S.hi[x] > c0 && S.lo[x] < S.hi[x]);
            S.flag[0] = any;
        }
        RINGATTN_CUDA__SYNC();
        if (S.flag[0]) {                                   /* uniform */
            RINGATTN_CUDA__EACH_THREAD(i, nt) {            /* thread i loads row r0 + i */
                int64_t c;
                if (i >= nr) continue;
                S.D[i] = Dg[(r0 + i) * B.rs];
                for (c = 0; c < d; c++) S.q[i * d + c] = qg[(r0 + i) * ldq + c];
                for (c = 0; c < dv; c++) S.dout[i * dv + c] = gg[(r0 + i) * ldv + c];
            }
            RINGATTN_CUDA__SYNC();
            RINGATTN_CUDA__EACH_THREAD(j, nt) {
                int64_t col = c0 + j, x, c, kpos = B.ka + col * B.kps;
                const T *k = S.k + j * d, *v = S.v + j * dv;
                T *dk = S.dk + j * d, *dvr = S.dv + j * dv;
                if (j >= nc) continue;
                for (x = 0; x < nr; x++) {
                    const T *q = S.q + x * d, *g = S.dout + x * dv;
                    T s = 0, dp = 0, p, ds, dx, w;
                    int64_t qpos = B.qa + (r0 + x) * B.qps;
                    if (col < S.lo[x] || col >= S.hi[x]) continue;   /* masked: skipped */
                    if (ringattn_cuda__hidden(P, &B, qpos, kpos)) continue;   /* a pair mask: skipped */
                    for (c = 0; c < d; c++) s += q[c] * k[c];
                    s = (T)P->scale * s;
                    for (c = 0; c < dv; c++) dp += g[c] * v[c];
                    if (P->modify || P->emask)                        /* score options */
                        ringattn_cuda__dscore_options(P, &B, qpos, kpos, s, dp, S.lse[x], S.D[x], &p, &ds, &dx);
                    else
                        ringattn_cuda__dscore(P, s, dp, S.lse[x], S.D[x], &p, &ds);
                    for (c = 0; c < dv; c++) dvr[c] += p * g[c];     /* dV += P^T dO       */
                    w = (T)P->scale * ds;
                    for (c = 0; c < d; c++) dk[c] += w * q[c];       /* dK += scale dS^T Q */
                }
            }
        }
        RINGATTN_CUDA__SYNC();
    }
    RINGATTN_CUDA__EACH_THREAD(j, nt) {
        int64_t c;
        if (j >= nc) continue;
        for (c = 0; c < d; c++) dkg[j * ldq + c] = S.dk[j * d + c];
        for (c = 0; c < dv; c++) dvg[j * ldv + c] = S.dv[j * dv + c];
    }
}

/* the __global__ wrappers: blockIdx.x = tile, blockIdx.y = block of this launch */
extern __shared__ double ringattn_cuda__shared[];   /* double: 8-byte aligned for every carve */

template <typename T>
__global__ void ringattn_cuda__forward_kernel(ringattn_cuda__tile_args<T> A)
{
    ringattn_cuda__forward_tile<T>(A, blockIdx.x, blockIdx.y, (char *)ringattn_cuda__shared);
}
template <typename T>
__global__ void ringattn_cuda__dq_kernel(ringattn_cuda__tile_args<T> A)
{
    ringattn_cuda__dq_tile<T>(A, blockIdx.x, blockIdx.y, (char *)ringattn_cuda__shared);
}
template <typename T>
__global__ void ringattn_cuda__dkv_kernel(ringattn_cuda__tile_args<T> A)
{
    ringattn_cuda__dkv_tile<T>(A, blockIdx.x, blockIdx.y, (char *)ringattn_cuda__shared);
}

/* ---------------------------------------------------------------- host: errors, memory, launches */

/* The executor: the GPU (a stream), or the emulation used by the tests (host memory, the
   kernels' block programs called in loops). Everything below goes through it. */
typedef struct {
    const ringattn_config *cfg;
    int emulate;
    cudaStream_t stream;
    size_t smem_limit;             /* shared memory one CUDA block may have                   */
    char *host_smem;               /* emulation: one block's shared memory                    */
    int pass;                      /* 0 forward, 1 backward                                   */
    int status;                    /* first error (sticky)                                    */
} ringattn_cuda__exec;

static int ringattn_cuda__fail(const ringattn_config *cfg, int status, const char *fmt, ...)
{
    if (cfg && cfg->error_detail && cfg->error_detail_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cfg->error_detail, cfg->error_detail_size, fmt, ap);
        va_end(ap);
    }
    return status;
}

/* a CUDA error -> RINGATTN_ENOMEM (allocation) or RINGATTN_ECUDA, with the text; 0 if none */
static int ringattn_cuda__check(ringattn_cuda__exec *X, cudaError_t e, const char *what)
{
    if (X->status != RINGATTN_OK) return X->status;
    if (e == cudaSuccess) return RINGATTN_OK;
    X->status = ringattn_cuda__fail(X->cfg, e == cudaErrorMemoryAllocation ? RINGATTN_ENOMEM : RINGATTN_ECUDA,
                                    "%s failed: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
    return X->status;
}

static void *ringattn_cuda__alloc(ringattn_cuda__exec *X, size_t bytes, size_t *counter)
{
    void *p = NULL;
    if (X->status != RINGATTN_OK) return NULL;
    if (bytes == 0) bytes = 16;
    if (X->emulate) {
        p = malloc(bytes);
        if (!p) X->status = ringattn_cuda__fail(X->cfg, RINGATTN_ENOMEM, "could not allocate %zu bytes", bytes);
    } else if (ringattn_cuda__check(X, cudaMalloc(&p, bytes), "cudaMalloc") != RINGATTN_OK) {
        p = NULL;
    }
    if (p && counter) *counter += bytes;
    return p;
}

static void ringattn_cuda__free(ringattn_cuda__exec *X, void *p)
{
    if (!p) return;
    if (X->emulate) free(p);
    else (void)cudaFree(p);        /* errors here are not the call's: the status stands */
}

static void ringattn_cuda__zero(ringattn_cuda__exec *X, void *p, size_t bytes)
{
    if (X->status != RINGATTN_OK) return;
    if (X->emulate) memset(p, 0, bytes);
    else ringattn_cuda__check(X, cudaMemsetAsync(p, 0, bytes, X->stream), "cudaMemsetAsync");
}

/* the ring's hand-off: device to device on the stream */
static void ringattn_cuda__copy(ringattn_cuda__exec *X, void *dst, const void *src, size_t bytes)
{
    if (X->status != RINGATTN_OK) return;
    if (X->emulate) memcpy(dst, src, bytes);
    else ringattn_cuda__check(X, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, X->stream),
                              "cudaMemcpyAsync (ring hand-off)");
}

static void ringattn_cuda__download(ringattn_cuda__exec *X, void *dst, const void *src, size_t bytes)
{
    if (X->status != RINGATTN_OK) return;
    if (X->emulate) { memcpy(dst, src, bytes); return; }
    if (ringattn_cuda__check(X, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, X->stream),
                             "cudaMemcpyAsync (device to host)") == RINGATTN_OK)
        ringattn_cuda__check(X, cudaStreamSynchronize(X->stream), "cudaStreamSynchronize");
}

template <typename F>
static void ringattn_cuda__each(ringattn_cuda__exec *X, const F &f, int64_t n)
{
    int64_t i, blocks;
    if (X->status != RINGATTN_OK || n <= 0) return;
    if (X->emulate) { for (i = 0; i < n; i++) f(i); return; }
    blocks = (n + 255) / 256;
    if (blocks > 65536) blocks = 65536;   /* grid-stride loop covers the rest */
    ringattn_cuda__each_kernel<F><<<(unsigned)blocks, 256, 0, X->stream>>>(f, n);
    ringattn_cuda__check(X, cudaGetLastError(), "element-wise kernel launch");
}

/* one tile kernel over `count` blocks (from A.blocks), `tiles` tiles each */
template <typename T>
static void ringattn_cuda__tiles(ringattn_cuda__exec *X, int kind, const ringattn_cuda__tile_args<T> &A,
                                 int64_t count, int64_t tiles)
{
    const int64_t per_launch = 65535;    /* gridDim.y limit */
    size_t smem = ringattn_cuda__layout<T>(NULL, kind, A.P.nt, A.P.d, A.P.dv, A.x != NULL, NULL);
    int64_t off, bx, by;
    for (off = 0; off < count && X->status == RINGATTN_OK; off += per_launch) {
        ringattn_cuda__tile_args<T> a = A;
        int64_t n = (count - off < per_launch) ? count - off : per_launch;
        a.blocks = A.blocks + off;
        if (X->emulate) {
            for (by = 0; by < n; by++)
                for (bx = 0; bx < tiles; bx++) {
                    if (kind == RINGATTN_CUDA__FWD) ringattn_cuda__forward_tile<T>(a, bx, by, X->host_smem);
                    else if (kind == RINGATTN_CUDA__DQ) ringattn_cuda__dq_tile<T>(a, bx, by, X->host_smem);
                    else ringattn_cuda__dkv_tile<T>(a, bx, by, X->host_smem);
                }
            continue;
        }
        {
            dim3 grid((unsigned)tiles, (unsigned)n, 1);
            if (kind == RINGATTN_CUDA__FWD)
                ringattn_cuda__forward_kernel<T><<<grid, A.P.nt, smem, X->stream>>>(a);
            else if (kind == RINGATTN_CUDA__DQ)
                ringattn_cuda__dq_kernel<T><<<grid, A.P.nt, smem, X->stream>>>(a);
            else
                ringattn_cuda__dkv_kernel<T><<<grid, A.P.nt, smem, X->stream>>>(a);
            ringattn_cuda__check(X, cudaGetLastError(), kind == RINGATTN_CUDA__FWD ? "forward kernel launch"
                                 : kind == RINGATTN_CUDA__DQ ? "dQ kernel launch" : "dK/dV kernel launch");
        }
    }
}

/* allow the tile kernels of this compute type the shared memory they need (> 48 KB opt-in) */
template <typename T>
static void ringattn_cuda__allow_smem(ringattn_cuda__exec *X, const ringattn__problem *P)
{
    size_t f = ringattn_cuda__layout<T>(NULL, RINGATTN_CUDA__FWD, P->nt, P->d, P->dv, P->max_logit, NULL);
    size_t q = ringattn_cuda__layout<T>(NULL, RINGATTN_CUDA__DQ, P->nt, P->d, P->dv, 0, NULL);
    size_t k = ringattn_cuda__layout<T>(NULL, RINGATTN_CUDA__DKV, P->nt, P->d, P->dv, 0, NULL);
    if (X->emulate) return;
    if (X->pass == 0)
        ringattn_cuda__check(X, cudaFuncSetAttribute(ringattn_cuda__forward_kernel<T>,
                             cudaFuncAttributeMaxDynamicSharedMemorySize, (int)f), "cudaFuncSetAttribute");
    else {
        ringattn_cuda__check(X, cudaFuncSetAttribute(ringattn_cuda__dq_kernel<T>,
                             cudaFuncAttributeMaxDynamicSharedMemorySize, (int)q), "cudaFuncSetAttribute");
        ringattn_cuda__check(X, cudaFuncSetAttribute(ringattn_cuda__dkv_kernel<T>,
                             cudaFuncAttributeMaxDynamicSharedMemorySize, (int)k), "cudaFuncSetAttribute");
    }
}

/* ---------------------------------------------------------------- host: planning the blocks */

/* The plan of one call: every (member, step, wave)'s blocks, in one table. A wave is
   (q head within its k/v group, pattern, query piece, key piece): within a wave no two
   blocks write the same rows of O / dQ / dK / dV, and waves run in the CPU's order. */
typedef struct {
    ringattn_cuda__block *blocks;  /* host table (uploaded to dev_blocks on the GPU)           */
    int64_t count, cap;
    int64_t *first;                /* [(i * p + t) * waves + w]: first block, and ...          */
    int64_t *maxlen;               /* ... the longest run of that wave (nr fwd/dQ, nc dK/dV)   */
    int64_t *maxcol;
    int waves;
    int64_t *step_tiles;           /* [i * p + t]: tiles computed (stats, trace)               */
    int64_t *step_pairs;           /* [i * p + t]: visible (query, key) pairs                  */
} ringattn_cuda__plan;

static int ringattn_cuda__push(ringattn_cuda__plan *L, const ringattn_cuda__block *B)
{
    if (L->count == L->cap) {
        int64_t cap = L->cap ? 2 * L->cap : 256;
        ringattn_cuda__block *nb = (ringattn_cuda__block *)realloc(L->blocks, (size_t)cap * sizeof *nb);
        if (!nb) return -1;
        L->blocks = nb; L->cap = cap;
    }
    L->blocks[L->count++] = *B;
    return 0;
}

/* the blocks of member i at step t, as ringattn__unit enumerates them (heads of a k/v head,
   patterns, query and key pieces, segments both touch), wave by wave; blocks with no visible
   pair are left out (the CPU skips their tiles) */
static int ringattn_cuda__plan_step(const ringattn__problem *P, ringattn_cuda__plan *L, int i, int t)
{
    int p = P->p, src = ringattn__source(p, i, t), npat = ringattn__patterns(P);
    ringattn__piece qp[2], kp[2];
    int nqp = ringattn__pieces(P->part, P->nq, p, i, qp), nkp = ringattn__pieces(P->part, P->nk, p, src, kp);
    int64_t rows = ringattn__piece_rows(qp, nqp), hin, bb, kh, j, x, nt = P->nt;
    int64_t *tiles = &L->step_tiles[i * p + t], *pairs = &L->step_pairs[i * p + t];
    int ip, a, c, w;
    for (hin = 0; hin < P->heads_per_kv; hin++)
    for (ip = 0; ip < npat; ip++)
    for (a = 0; a < 2; a++)
    for (c = 0; c < 2; c++) {
        int64_t at;
        w = (int)(((hin * npat + ip) * 2 + a) * 2 + c);
        at = ((int64_t)i * p + t) * L->waves + w;
        L->first[at] = L->count; L->maxlen[at] = 0; L->maxcol[at] = 0;
        if (a >= nqp || c >= nkp || qp[a].count == 0 || kp[c].count == 0) continue;
        for (bb = 0; bb < P->b; bb++)
        for (kh = 0; kh < P->hk; kh++) {
            int64_t hh = kh * P->heads_per_kv + hin, seglen, rate, off, j0, j1;
            int64_t home = (bb * P->h + hh) * rows, kvrow = (bb * P->hk + kh) * P->ck;
            ringattn__pattern(P, hh, ip, &seglen, &rate, &off);
            ringattn__segment_range(P, seglen, &qp[a], &kp[c], &j0, &j1);   /* segments both touch */
            for (j = j0; j <= j1; j++) {
                ringattn_cuda__block B;
                ringattn__segment S;
                int64_t bpairs = 0, btiles = 0, qrow, krow, qbs, kbs;
                ringattn__segment_at(P, seglen, j, &S);
                B.nr = ringattn__run(&qp[a], S.qb, S.qe, off, rate, &B.qa, &qrow, &B.qps, &qbs);
                if (B.nr == 0) continue;
                B.nc = ringattn__run(&kp[c], S.kb, S.ke, off, rate, &B.ka, &krow, &B.kps, &kbs);
                if (B.nc == 0) continue;
                B.rs = qbs;                  /* == kbs: pieces of one call share their kind */
                B.off = S.off;
                B.bb = bb; B.hh = hh; B.aoff = ringattn__segment_aoff(P, &S);
                B.qrow = home + qrow;
                B.krow = kvrow + krow;
                /* visible pairs, and the K/V tiles the forward / dQ kernel will load */
                for (x = 0; x < B.nr; x += nt) {
                    int64_t lo = B.nc, hi = 0, y, ya, yz;
                    for (y = x; y < x + nt && y < B.nr; y++) {
                        ringattn_cuda__row_bounds(P, &B, y, &ya, &yz);
                        bpairs += yz - ya;
                        if (ya < yz) { if (ya < lo) lo = ya; if (yz > hi) hi = yz; }
                    }
                    if (lo < hi) btiles += (hi + nt - 1) / nt - lo / nt;
                }
                if (bpairs == 0) continue;   /* nothing visible: never launched */
                if (ringattn_cuda__push(L, &B) != 0) return -1;
                *pairs += bpairs; *tiles += btiles;
                if (B.nr > L->maxlen[at]) L->maxlen[at] = B.nr;
                if (B.nc > L->maxcol[at]) L->maxcol[at] = B.nc;
            }
        }
    }
    return 0;
}

static void ringattn_cuda__plan_free(ringattn_cuda__plan *L)
{
    free(L->blocks); free(L->first); free(L->maxlen); free(L->maxcol); free(L->step_tiles); free(L->step_pairs);
    memset(L, 0, sizeof *L);
}

static int ringattn_cuda__plan_make(const ringattn__problem *P, ringattn_cuda__plan *L)
{
    int64_t n = (int64_t)P->p * P->p, i, t;
    int npat = ringattn__patterns(P);
    memset(L, 0, sizeof *L);
    L->waves = (int)(P->heads_per_kv * npat * 4);   /* x (query piece, key piece) pairs */
    L->first = (int64_t *)calloc((size_t)(n * L->waves + 1), sizeof(int64_t));
    L->maxlen = (int64_t *)calloc((size_t)(n * L->waves + 1), sizeof(int64_t));
    L->maxcol = (int64_t *)calloc((size_t)(n * L->waves + 1), sizeof(int64_t));
    L->step_tiles = (int64_t *)calloc((size_t)n, sizeof(int64_t));
    L->step_pairs = (int64_t *)calloc((size_t)n, sizeof(int64_t));
    if (!L->first || !L->maxlen || !L->maxcol || !L->step_tiles || !L->step_pairs) return -1;
    for (i = 0; i < P->p; i++)
        for (t = 0; t < P->p; t++)
            if (ringattn_cuda__plan_step(P, L, (int)i, (int)t) != 0) return -1;
    L->first[n * L->waves] = L->count;   /* the end of the last wave */
    return 0;
}

/* ---------------------------------------------------------------- host: the ring */

typedef struct {
    const ringattn_tensor *q, *k, *v, *out, *lse, *dout;     /* inputs                          */
    ringattn_tensor *o, *l, *dq, *dk, *dv;                   /* outputs of this pass            */
    ringattn_tensor *ml;                                     /* forward: max_logit, or NULL     */
} ringattn_cuda__io;

/* a member's device buffers (ringattn__member of ringattn.h) */
typedef struct {
    ringattn__piece qp[2];         /* my query positions (ringattn__pieces)                   */
    int nqp;
    int64_t q0, q1, rows;          /* their span, and the number of rows                      */
    void *q;
    void *o; double *m, *l;        /* forward: running O_i, row max and sum (NULL in backward) */
    double *x;                     /* forward with max_logit: the rows' max score             */
    void *dq, *dout; double *lse, *D;   /* backward (NULL in forward)                      */
    void *kv[2], *dkv[2];
    size_t bytes;
} ringattn_cuda__member;

typedef struct {
    ringattn_cuda__exec *X;
    const ringattn__problem *P;           /* the host's (planning)                              */
    const ringattn__problem *PK;          /* the kernels': its option pointers in device memory */
    double *dbias;                        /* backward with dbias: [b][h][nq][nk] f64 workspace  */
    const ringattn_cuda__plan *L;
    const ringattn_cuda__block *blocks;   /* the plan's table where the kernels read it        */
    ringattn_cuda__member *m;
    size_t kv_bytes;
    double *trace_rows;                   /* host copy of m, l for the trace callback          */
} ringattn_cuda__ring;

/* member i before step 0 (ringattn__member_setup) */
template <typename T>
static void ringattn_cuda__member_setup(ringattn_cuda__ring *R, const ringattn_cuda__io *io, int i)
{
    const ringattn__problem *P = R->P;
    ringattn_cuda__member *me = &R->m[i];
    ringattn_cuda__exec *X = R->X;
    ringattn__piece kp[2];
    int nkp = (memset(kp, 0, sizeof kp), ringattn__pieces(P->part, P->nk, P->p, i, kp));
    int64_t krows = ringattn__piece_rows(kp, nkp);
    int64_t n = P->b * P->h * me->rows, kvhalf = P->b * P->hk * P->ck * P->d;
    ringattn_cuda__pack<T> pq = { *io->q, { me->qp[0], me->qp[1] }, me->nqp, me->rows, me->rows, (T *)me->q, 1.0 };
    ringattn_cuda__pack<T> pk = { *io->k, { kp[0], kp[1] }, nkp, krows, P->ck, (T *)me->kv[0], 1.0 };
    ringattn_cuda__pack<T> pv = { *io->v, { kp[0], kp[1] }, nkp, krows, P->ck, (T *)me->kv[0] + kvhalf, 1.0 };
    ringattn_cuda__zero(X, me->kv[0], R->kv_bytes);   /* rows past a shorter chunk: defined bytes */
    ringattn_cuda__zero(X, me->kv[1], R->kv_bytes);
    ringattn_cuda__each(X, pq, n * P->d);
    ringattn_cuda__each(X, pk, P->b * P->hk * krows * P->d);
    ringattn_cuda__each(X, pv, P->b * P->hk * krows * P->dv);
    if (X->pass == 0) {
        ringattn_cuda__init_rows ir = { me->m, me->l, me->x, R->PK->sinks, P->h, me->rows };
        ringattn_cuda__zero(X, me->o, (size_t)(n * P->dv) * sizeof(T));
        ringattn_cuda__each(X, ir, n);
        return;
    }
    {   /* backward: dO / G, lse and D, zero dQ and the travelling dK/dV */
        ringattn_cuda__pack<T> pg = { *io->dout, { me->qp[0], me->qp[1] }, me->nqp, me->rows, me->rows, (T *)me->dout,
                                      ringattn__group_div(P) };
        ringattn_cuda__backward_rows br = { *io->dout, *io->out, *io->lse, { me->qp[0], me->qp[1] }, me->nqp, P->h,
                                            me->rows, P->dv, me->lse, me->D };
        ringattn_cuda__each(X, pg, n * P->dv);
        ringattn_cuda__each(X, br, n);
        ringattn_cuda__zero(X, me->dq, (size_t)(n * P->d) * sizeof(T));
        ringattn_cuda__zero(X, me->dkv[0], R->kv_bytes);
    }
}

/* member i, step t: every wave of its blocks */
template <typename T>
static void ringattn_cuda__member_step(ringattn_cuda__ring *R, int i, int t)
{
    const ringattn__problem *P = R->P;
    const ringattn_cuda__plan *L = R->L;
    ringattn_cuda__member *me = &R->m[i];
    int64_t base = ((int64_t)i * P->p + t) * L->waves;
    int w;
    for (w = 0; w < L->waves; w++) {
        int64_t first = L->first[base + w], count = L->first[base + w + 1] - first;
        ringattn_cuda__tile_args<T> A;
        if (count == 0) continue;
        A.P = *R->PK;
        A.blocks = R->blocks + first;
        A.q = (T *)me->q;
        A.o = (T *)me->o; A.m = me->m; A.l = me->l; A.x = me->x;
        A.dbias = R->dbias;
        A.dq = (T *)me->dq; A.dout = (const T *)me->dout; A.lse = me->lse; A.D = me->D;
        A.kv = (const T *)me->kv[t & 1];
        A.dkv = R->X->pass ? (T *)me->dkv[t & 1] : (T *)0;
        A.kvhalf = P->b * P->hk * P->ck * P->d;
        if (R->X->pass == 0) {
            ringattn_cuda__tiles<T>(R->X, RINGATTN_CUDA__FWD, A, count, (L->maxlen[base + w] + P->nt - 1) / P->nt);
        } else {
            ringattn_cuda__tiles<T>(R->X, RINGATTN_CUDA__DQ, A, count, (L->maxlen[base + w] + P->nt - 1) / P->nt);
            ringattn_cuda__tiles<T>(R->X, RINGATTN_CUDA__DKV, A, count, (L->maxcol[base + w] + P->nt - 1) / P->nt);
        }
    }
}

/* member i after the last step (ringattn__member_finish) */
template <typename T>
static void ringattn_cuda__member_finish(ringattn_cuda__ring *R, const ringattn_cuda__io *io, int i)
{
    const ringattn__problem *P = R->P;
    ringattn_cuda__member *me = &R->m[i];
    int64_t n = P->b * P->h * me->rows;
    if (R->X->pass == 0) {
        ringattn_cuda__forward_finish<T> f;
        f.o = *io->o; f.has_lse = io->l != NULL;
        if (io->l) f.lse = *io->l; else f.lse = *io->o;
        f.pc[0] = me->qp[0]; f.pc[1] = me->qp[1]; f.np = me->nqp;
        f.h = P->h; f.rows = me->rows; f.dv = P->dv;
        f.acc = (const T *)me->o; f.m = me->m; f.l = me->l; f.gdiv = ringattn__group_div(P);
        f.x = io->ml ? me->x : (const double *)0;
        if (io->ml) f.ml = *io->ml; else f.ml = *io->o;
        ringattn_cuda__each(R->X, f, n * P->dv);
    } else {
        ringattn__piece kp[2];
        int nkp = (memset(kp, 0, sizeof kp), ringattn__pieces(P->part, P->nk, P->p, i, kp));
        int64_t krows = ringattn__piece_rows(kp, nkp);
        const T *home = (const T *)me->dkv[P->p & 1];   /* arrived with the final hand-off */
        ringattn_cuda__unpack<T> uq = { *io->dq, { me->qp[0], me->qp[1] }, me->nqp, me->rows, me->rows, (const T *)me->dq };
        ringattn_cuda__unpack<T> uk = { *io->dk, { kp[0], kp[1] }, nkp, krows, P->ck, home };
        ringattn_cuda__unpack<T> uv = { *io->dv, { kp[0], kp[1] }, nkp, krows, P->ck, home + P->b * P->hk * P->ck * P->d };
        ringattn_cuda__each(R->X, uq, n * P->d);
        ringattn_cuda__each(R->X, uk, P->b * P->hk * krows * P->d);
        ringattn_cuda__each(R->X, uv, P->b * P->hk * krows * P->dv);
    }
}

/* THE RING on the GPU: p members, p steps, one stream. Step t: every member sends the K/V
   chunk it holds to the next member (an async device-to-device copy into that member's other
   buffer), then folds in the block it holds; in the backward pass the dK/dV accumulators are
   sent on after the step. Stream order is the ring's clock. */
template <typename T>
static void ringattn_cuda__ring_loop(ringattn_cuda__ring *R, const ringattn_cuda__io *io)
{
    const ringattn__problem *P = R->P;
    ringattn_cuda__exec *X = R->X;
    const ringattn_config *cfg = X->cfg;
    int p = P->p, t, i;
    for (i = 0; i < p; i++) ringattn_cuda__member_setup<T>(R, io, i);
    for (t = 0; t < p; t++) {
        for (i = 0; i < p; i++)
            if (t + 1 < p) ringattn_cuda__copy(X, R->m[(i + 1) % p].kv[(t + 1) & 1], R->m[i].kv[t & 1], R->kv_bytes);
        for (i = 0; i < p; i++) ringattn_cuda__member_step<T>(R, i, t);
        if (X->pass == 0 && P->round_state)   /* precision emulation: the state as a port holds it */
            for (i = 0; i < p; i++) {
                ringattn_cuda__hold_rows<T> f = { (T *)R->m[i].o, R->m[i].m, R->m[i].l, P->dv, P->st };
                ringattn_cuda__each(X, f, P->b * P->h * R->m[i].rows);
            }
        for (i = 0; i < p; i++) {
            if (X->pass == 1) ringattn_cuda__copy(X, R->m[(i + 1) % p].dkv[(t + 1) & 1], R->m[i].dkv[t & 1], R->kv_bytes);
            if (cfg->trace && X->status == RINGATTN_OK) {
                ringattn_trace_event ev;
                const ringattn_cuda__member *me = &R->m[i];
                int src = ringattn__source(p, i, t);
                int64_t rows = P->b * P->h * me->rows;
                memset(&ev, 0, sizeof ev);   /* the per-step state fields stay NULL: not exposed here */
                ev.pass = X->pass; ev.member = i; ev.step = t; ev.ring_size = p; ev.src = src;
                ev.tiles = R->L->step_tiles[(int64_t)i * p + t];
                ev.computed = ev.tiles > 0;
                ev.q_begin = me->q0; ev.q_end = me->q1;
                ringattn__piece kp[2];
                int nkp = ringattn__pieces(P->part, P->nk, p, src, kp);
                ringattn__span(kp, nkp, &ev.k_begin, &ev.k_end);
                ev.batch = P->b; ev.heads = P->h; ev.rows = me->rows;
                ev.row_max = ev.row_sum = NULL;
                if (X->pass == 0) {   /* the running m, l of the member, copied to the host */
                    ringattn_cuda__download(X, R->trace_rows, me->m, (size_t)rows * sizeof(double));
                    ringattn_cuda__download(X, R->trace_rows + rows, me->l, (size_t)rows * sizeof(double));
                    ev.row_max = R->trace_rows; ev.row_sum = R->trace_rows + rows;
                }
                if (X->status == RINGATTN_OK) cfg->trace(&ev, cfg->trace_user);
            }
        }
    }
    for (i = 0; i < p; i++) ringattn_cuda__member_finish<T>(R, io, i);
}

/* ---------------------------------------------------------------- host: validation */

/* the data of every tensor must be reachable by the GPU */
static int ringattn_cuda__check_device_ptrs(const ringattn_config *cfg, const ringattn_tensor *const *t,
                                            const char *const *names, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        cudaPointerAttributes at;
        cudaError_t e;
        if (!t[i]) continue;
        memset(&at, 0, sizeof at);
        e = cudaPointerGetAttributes(&at, t[i]->data);
        if (e != cudaSuccess) (void)cudaGetLastError();   /* not sticky: clear it */
        if (e != cudaSuccess || at.type == cudaMemoryTypeUnregistered)
            return ringattn_cuda__fail(cfg, RINGATTN_EUNSUPPORTED,
                                       "%s->data is not device memory (ringattn_cuda_* takes cudaMalloc'd, managed "
                                       "or mapped pinned memory; use ringattn_forward / ringattn_backward for host "
                                       "memory)", names[i]);
    }
    return RINGATTN_OK;
}

/* Config + shape -> the resolved problem. Config and shape are validated by ringattn_plan()
   of ringattn.h (the CPU's own rules and messages), with ring_size 0 taken as 1. */
static int ringattn_cuda__resolve(const ringattn_config *cfg, const ringattn_shape *s, int pass,
                                  ringattn__problem *P, ringattn_plan_info *plan)
{
    ringattn_config c = *cfg;
    int st;
    if (c.ring_size == 0) c.ring_size = 1;            /* one member: one GPU */
    st = ringattn_plan(&c, s, pass, plan);
    if (st != RINGATTN_OK) return st;
    if (cfg->descale_size > 0)
        return ringattn_cuda__fail(cfg, RINGATTN_EUNSUPPORTED, "fp8 descale factors are computed by the CPU ring "
                                   "only (fp8 inputs without them are read as they are)");
    if (cfg->mask_fn || cfg->mask_block_fn)   /* host callbacks: the kernels cannot call them */
        return ringattn_cuda__fail(cfg, RINGATTN_EUNSUPPORTED, "mask_fn and mask_block_fn (host callbacks) are "
                                   "computed by the CPU ring only; on the GPU give the mask as cfg->mask "
                                   "(RINGATTN_BOOL, device memory) or as document ids");
    if (pass == 0 && cfg->round_block)   /* the one emulation point with no GPU path */
        return ringattn_cuda__fail(cfg, RINGATTN_EUNSUPPORTED, "round_block (a port's per-block merge, precision "
                                   "emulation) is computed by the CPU ring only");
    /* every other config the CPU accepts is computed: the problem is the CPU's own, with this
       call's ring (ring_size 0 read as 1) */
    memset(P, 0, sizeof *P);
    ringattn__problem_set(P, cfg, s);
    P->p = plan->ring_size; P->cq = plan->chunk_q; P->ck = plan->chunk_k;
    return RINGATTN_OK;
}

/* ---------------------------------------------------------------- host: one call */

/* The score options where the kernels read them. The problem is passed to the kernels by
   value; its option pointers (the bias and mask views, the sinks, the ALiBi slopes, the
   document ids: the config's host memory) point, in the kernels' copy, at device copies
   made here (the views' data are already device memory). The emulation reads the host's. */
typedef struct { void *bias, *mask, *sinks, *alibi, *docq, *dock; } ringattn_cuda__optdev;

static const void *ringattn_cuda__upload(ringattn_cuda__exec *X, const void *src, size_t bytes, void **keep)
{
    if (!src) return NULL;
    if (X->emulate) return src;
    *keep = ringattn_cuda__alloc(X, bytes, NULL);
    if (*keep)
        ringattn_cuda__check(X, cudaMemcpy(*keep, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy (score options)");
    return *keep;
}

static void ringattn_cuda__options_upload(ringattn_cuda__exec *X, const ringattn__problem *P, ringattn__problem *PK,
                                          ringattn_cuda__optdev *D)
{
    memset(D, 0, sizeof *D);
    *PK = *P;
    PK->bias = (const ringattn_tensor *)ringattn_cuda__upload(X, P->bias, sizeof(ringattn_tensor), &D->bias);
    PK->mask = (const ringattn_tensor *)ringattn_cuda__upload(X, P->mask, sizeof(ringattn_tensor), &D->mask);
    PK->sinks = (const double *)ringattn_cuda__upload(X, P->sinks, (size_t)P->h * sizeof(double), &D->sinks);
    PK->alibi = (const double *)ringattn_cuda__upload(X, P->alibi, (size_t)P->nalibi * sizeof(double), &D->alibi);
    PK->docq = (const int64_t *)ringattn_cuda__upload(X, P->docq, (size_t)P->nq * sizeof(int64_t), &D->docq);
    PK->dock = (const int64_t *)ringattn_cuda__upload(X, P->dock, (size_t)P->nk * sizeof(int64_t), &D->dock);
}

static void ringattn_cuda__options_free(ringattn_cuda__exec *X, ringattn_cuda__optdev *D)
{
    ringattn_cuda__free(X, D->bias); ringattn_cuda__free(X, D->mask); ringattn_cuda__free(X, D->sinks);
    ringattn_cuda__free(X, D->alibi); ringattn_cuda__free(X, D->docq); ringattn_cuda__free(X, D->dock);
    memset(D, 0, sizeof *D);
}

/* backward, after the ring: dbias reduced from the workspace into the bias's shape, and
   dsinks (h doubles, the config's host memory; computed on the device, then copied back) */
static void ringattn_cuda__options_backward(ringattn_cuda__exec *X, const ringattn__problem *PK, const ringattn_cuda__io *io,
                                            const double *dbias_ws)
{
    const ringattn_config *cfg = X->cfg;
    if (dbias_ws) {
        const ringattn_tensor *db = cfg->dbias;
        ringattn_cuda__dbias_reduce f = { *PK, dbias_ws, *db };
        ringattn_cuda__each(X, f, db->shape[0] * db->shape[1] * PK->nq * PK->nk);
    }
    if (PK->sinks && cfg->dsinks) {
        int64_t chunks = (PK->b * PK->nq + RINGATTN_CUDA__DSINK_ROWS - 1) / RINGATTN_CUDA__DSINK_ROWS;
        size_t bytes = (size_t)PK->h * sizeof(double);
        double *part = (double *)ringattn_cuda__alloc(X, (size_t)(PK->h * chunks) * sizeof(double), NULL);
        double *ds = X->emulate ? cfg->dsinks : (double *)ringattn_cuda__alloc(X, bytes, NULL);
        if (part && ds) {
            ringattn_cuda__dsink_parts fp = { *PK, *io->lse, *io->dout, *io->out, part, chunks };
            ringattn_cuda__dsinks fs = { *PK, part, chunks, ds };
            ringattn_cuda__each(X, fp, PK->h * chunks);
            ringattn_cuda__each(X, fs, PK->h);
            if (!X->emulate) ringattn_cuda__download(X, cfg->dsinks, ds, bytes);
        }
        if (!X->emulate) ringattn_cuda__free(X, ds);
        ringattn_cuda__free(X, part);
    }
}

template <typename T>
static int ringattn_cuda__execute_t(ringattn_cuda__exec *X, ringattn__problem *P, const ringattn_plan_info *plan,
                                    const ringattn_cuda__io *io, int force_tile)
{
    const ringattn_config *cfg = X->cfg;
    ringattn_cuda__plan L;
    ringattn_cuda__ring R;
    ringattn_cuda__block *dev_blocks = NULL;
    ringattn__problem PK;
    ringattn_cuda__optdev OD;
    size_t es = sizeof(T), smem = 0, table_bytes = 0, peak = 0, dbias_bytes = 0;
    int i, nt;
    memset(&L, 0, sizeof L);
    memset(&R, 0, sizeof R);
    memset(&OD, 0, sizeof OD);

    /* the tile: the largest (<= RINGATTN_CUDA_TILE) whose kernels fit in shared memory */
    for (nt = force_tile > 0 ? force_tile : RINGATTN_CUDA_TILE; nt >= 1; nt--) {
        int k0 = X->pass ? RINGATTN_CUDA__DQ : RINGATTN_CUDA__FWD, k1 = X->pass ? RINGATTN_CUDA__DKV : RINGATTN_CUDA__FWD;
        size_t a = ringattn_cuda__layout<T>(NULL, k0, nt, P->d, P->dv, X->pass == 0 && P->max_logit, NULL);
        size_t b = ringattn_cuda__layout<T>(NULL, k1, nt, P->d, P->dv, X->pass == 0 && P->max_logit, NULL);
        smem = a > b ? a : b;
        if (smem <= X->smem_limit) break;
    }
    if (nt < 1)
        return ringattn_cuda__fail(cfg, RINGATTN_EUNSUPPORTED,
                                   "head dims d = %lld, dv = %lld need more shared memory per CUDA block than "
                                   "the device allows (%zu bytes) even for a tile of one row",
                                   (long long)P->d, (long long)P->dv, X->smem_limit);
    P->nt = nt;
    ringattn_cuda__options_upload(X, P, &PK, &OD);   /* the kernels' problem */

    if (ringattn_cuda__plan_make(P, &L) != 0) {
        ringattn_cuda__options_free(X, &OD);
        ringattn_cuda__plan_free(&L);
        return ringattn_cuda__fail(cfg, RINGATTN_ENOMEM, "could not allocate the host-side block table");
    }
    table_bytes = (size_t)(L.count ? L.count : 1) * sizeof(ringattn_cuda__block);
    if (X->emulate) {
        X->host_smem = (char *)malloc(smem);
        if (!X->host_smem) X->status = ringattn_cuda__fail(cfg, RINGATTN_ENOMEM, "could not allocate %zu bytes", smem);
        R.blocks = L.blocks;
    } else {
        dev_blocks = (ringattn_cuda__block *)ringattn_cuda__alloc(X, table_bytes, NULL);
        if (dev_blocks && L.count)
            ringattn_cuda__check(X, cudaMemcpy(dev_blocks, L.blocks, (size_t)L.count * sizeof *dev_blocks,
                                               cudaMemcpyHostToDevice), "cudaMemcpy (block table)");
        R.blocks = dev_blocks;
    }
    ringattn_cuda__allow_smem<T>(X, P);

    /* every member's private device buffers (ringattn__ring_alloc) */
    R.X = X; R.P = P; R.PK = &PK; R.L = &L;
    if (X->pass == 1 && P->dbias) {   /* dbias: every (batch, head) score's gradient, as on the CPU */
        dbias_bytes = (size_t)(P->b * P->h * P->nq * P->nk) * sizeof(double);
        R.dbias = (double *)ringattn_cuda__alloc(X, dbias_bytes, NULL);
        if (R.dbias) ringattn_cuda__zero(X, R.dbias, dbias_bytes);
    }
    R.kv_bytes = (size_t)(P->b * P->hk * P->ck * (P->d + P->dv)) * es;
    R.m = (ringattn_cuda__member *)calloc((size_t)P->p, sizeof *R.m);
    if (!R.m && X->status == RINGATTN_OK)
        X->status = ringattn_cuda__fail(cfg, RINGATTN_ENOMEM, "could not allocate the ring table");
    for (i = 0; R.m && i < P->p && X->status == RINGATTN_OK; i++) {
        ringattn_cuda__member *me = &R.m[i];
        size_t rows;
        me->nqp = ringattn__pieces(P->part, P->nq, P->p, i, me->qp);
        if (me->nqp == 1) me->qp[1] = me->qp[0];   /* defined bytes in the functors' copies */
        me->rows = ringattn__piece_rows(me->qp, me->nqp);
        ringattn__span(me->qp, me->nqp, &me->q0, &me->q1);
        rows = (size_t)(P->b * P->h * me->rows);
        me->q = ringattn_cuda__alloc(X, rows * (size_t)P->d * es, &me->bytes);
        if (X->pass == 0) {
            me->o = ringattn_cuda__alloc(X, rows * (size_t)P->dv * es, &me->bytes);
            me->m = (double *)ringattn_cuda__alloc(X, rows * sizeof(double), &me->bytes);
            me->l = (double *)ringattn_cuda__alloc(X, rows * sizeof(double), &me->bytes);
            if (P->max_logit)   /* the rows' score maxima (ringattn_plan counts them) */
                me->x = (double *)ringattn_cuda__alloc(X, rows * sizeof(double), &me->bytes);
        } else {
            me->dq = ringattn_cuda__alloc(X, rows * (size_t)P->d * es, &me->bytes);
            me->lse = (double *)ringattn_cuda__alloc(X, rows * sizeof(double), &me->bytes);
            me->D = (double *)ringattn_cuda__alloc(X, rows * sizeof(double), &me->bytes);
        }
        me->kv[0] = ringattn_cuda__alloc(X, R.kv_bytes, &me->bytes);
        me->kv[1] = ringattn_cuda__alloc(X, R.kv_bytes, &me->bytes);
        if (X->pass == 1) {
            me->dout = ringattn_cuda__alloc(X, rows * (size_t)P->dv * es, &me->bytes);
            me->dkv[0] = ringattn_cuda__alloc(X, R.kv_bytes, &me->bytes);
            me->dkv[1] = ringattn_cuda__alloc(X, R.kv_bytes, &me->bytes);
        }
        if (me->bytes > peak) peak = me->bytes;
    }
    if (cfg->trace && X->pass == 0 && X->status == RINGATTN_OK) {
        R.trace_rows = (double *)malloc((size_t)(2 * P->b * P->h * P->cq) * sizeof(double));
        if (!R.trace_rows) X->status = ringattn_cuda__fail(cfg, RINGATTN_ENOMEM, "could not allocate the trace rows");
    }

    if (X->status == RINGATTN_OK) ringattn_cuda__ring_loop<T>(&R, io);
    if (X->status == RINGATTN_OK && X->pass == 1) ringattn_cuda__options_backward(X, &PK, io, R.dbias);
    if (X->status == RINGATTN_OK && !X->emulate)   /* kernels are asynchronous: wait for them */
        ringattn_cuda__check(X, cudaStreamSynchronize(X->stream), "cudaStreamSynchronize (after the ring)");

    if (X->status == RINGATTN_OK && cfg->stats) {
        ringattn_stats *st = cfg->stats;
        int64_t x, pp = (int64_t)P->p * P->p;
        memset(st, 0, sizeof *st);
        st->ring_size = P->p; st->num_threads = 1; st->ring_steps = P->p;
        st->handoffs = (int64_t)P->p * (P->p - 1) + (X->pass ? pp : 0);
        for (x = 0; x < pp; x++) {
            if (L.step_tiles[x]) st->blocks_computed++; else st->blocks_skipped++;
            st->tiles_computed += L.step_tiles[x];
            /* per visible pair: forward scores 2d + P V 2dv; backward dQ kernel 4d + 2dv and
               dK/dV kernel 4d + 4dv (both recompute S and dP) */
            st->flops += (double)L.step_pairs[x] *
                         (double)(X->pass ? 8 * P->d + 6 * P->dv : 2 * P->d + 2 * P->dv);
        }
        for (i = 0; i < P->p; i++) {   /* per-member work: the load balance of the ring */
            double f = 0;
            for (x = 0; x < P->p; x++)
                f += (double)L.step_pairs[(int64_t)i * P->p + x] *
                     (double)(X->pass ? 8 * P->d + 6 * P->dv : 2 * P->d + 2 * P->dv);
            if (i == 0 || f < st->member_flops_min) st->member_flops_min = f;
            if (i == 0 || f > st->member_flops_max) st->member_flops_max = f;
        }
        st->planned_bytes_per_member = plan->member_bytes;
        st->peak_bytes_per_member = peak;
        st->scratch_bytes_per_thread = smem;               /* shared memory of one CUDA block */
        st->shared_bytes = table_bytes + dbias_bytes;       /* the block table, dbias's workspace */
    }

    if (R.m)
        for (i = 0; i < P->p; i++) {
            ringattn_cuda__member *me = &R.m[i];
            ringattn_cuda__free(X, me->q); ringattn_cuda__free(X, me->o); ringattn_cuda__free(X, me->dq);
            ringattn_cuda__free(X, me->dout); ringattn_cuda__free(X, me->m); ringattn_cuda__free(X, me->l);
            ringattn_cuda__free(X, me->lse); ringattn_cuda__free(X, me->D); ringattn_cuda__free(X, me->x);
            ringattn_cuda__free(X, me->kv[0]); ringattn_cuda__free(X, me->kv[1]);
            ringattn_cuda__free(X, me->dkv[0]); ringattn_cuda__free(X, me->dkv[1]);
        }
    free(R.m);
    free(R.trace_rows);
    ringattn_cuda__free(X, dev_blocks);
    ringattn_cuda__free(X, R.dbias);
    ringattn_cuda__options_free(X, &OD);
    free(X->host_smem); X->host_smem = NULL;
    ringattn_cuda__plan_free(&L);
    return X->status;
}

/* The executor of one call: the emulation (host memory, the default 48 KB of shared memory
   per block) or the current device (found, with its opt-in shared memory per block). */
static int ringattn_cuda__exec_init(ringattn_cuda__exec *X, const ringattn_config *cfg, int pass, int emulate)
{
    int dev = 0, count = 0, optin = 0;
    cudaError_t e;
    memset(X, 0, sizeof *X);
    X->cfg = cfg; X->emulate = emulate; X->stream = (cudaStream_t)cfg->stream; X->status = RINGATTN_OK; X->pass = pass;
    if (emulate) {
        X->smem_limit = 48 * 1024;                        /* the default per-block limit */
        return RINGATTN_OK;
    }
    e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count < 1) {
        if (e != cudaSuccess) (void)cudaGetLastError();
        return ringattn_cuda__fail(cfg, RINGATTN_ECUDA, "no usable CUDA device: %s",
                                   e != cudaSuccess ? cudaGetErrorString(e) : "cudaGetDeviceCount found 0 devices");
    }
    if (ringattn_cuda__check(X, cudaGetDevice(&dev), "cudaGetDevice") != RINGATTN_OK) return X->status;
    if (ringattn_cuda__check(X, cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev),
                             "cudaDeviceGetAttribute") != RINGATTN_OK) return X->status;
    X->smem_limit = (size_t)optin;
    return RINGATTN_OK;
}

/* Validate (like the CPU), check the device, then run in the compute type. emulate = 1 runs
   the same kernels on the host over host memory (tests only); force_tile > 0 fixes the tile. */
static int ringattn_cuda__execute(const ringattn_config *cfg, const ringattn_shape *s, int pass,
                                  const ringattn_cuda__io *io, const ringattn_tensor *const *all,
                                  const char *const *names, int n, int emulate, int force_tile)
{
    ringattn__problem P;
    ringattn_plan_info plan;
    ringattn_cuda__exec X;
    int st;
    st = ringattn_cuda__resolve(cfg, s, pass, &P, &plan);
    if (st != RINGATTN_OK) return st;
    if ((st = ringattn_cuda__exec_init(&X, cfg, pass, emulate)) != RINGATTN_OK) return st;
    if (!emulate) {
        if ((st = ringattn_cuda__check_device_ptrs(cfg, all, names, n)) != RINGATTN_OK) return st;
        {   /* the score options' views (their small host arrays are copied by the call) */
            const ringattn_tensor *ot[3] = { cfg->bias, cfg->mask, pass ? cfg->dbias : cfg->max_logit };
            const char *on[3] = { "cfg->bias", "cfg->mask", pass ? "cfg->dbias" : "cfg->max_logit" };
            if ((st = ringattn_cuda__check_device_ptrs(cfg, ot, on, 3)) != RINGATTN_OK) return st;
        }
    }
    if (P.ct == RINGATTN_F64) return ringattn_cuda__execute_t<double>(&X, &P, &plan, io, force_tile);
    return ringattn_cuda__execute_t<float>(&X, &P, &plan, io, force_tile);
}

/* the argument checks of ringattn_forward (ringattn_check_call: the CPU's own rules and
   messages, config included, with ring_size 0 read as 1 as in ringattn_cuda__resolve), then
   the run */
static int ringattn_cuda__forward(const ringattn_config *cfg, const ringattn_tensor *q, const ringattn_tensor *k,
                                  const ringattn_tensor *v, ringattn_tensor *out, ringattn_tensor *lse,
                                  int emulate, int force_tile)
{
    ringattn_shape s; ringattn_cuda__io io; ringattn_config c; int st;
    const ringattn_tensor *all[9] = { q, k, v, out, lse, NULL, NULL, NULL, NULL };
    const char *names[5] = { "q", "k", "v", "out", "lse" };
    if (!cfg) return RINGATTN_ENULL;
    c = *cfg;
    if (c.ring_size == 0) c.ring_size = 1;
    if ((st = ringattn_check_call(&c, 0, all, &s)) != RINGATTN_OK) return st;
    memset(&io, 0, sizeof io);
    io.q = q; io.k = k; io.v = v; io.o = out; io.l = lse; io.ml = cfg->max_logit;
    return ringattn_cuda__execute(cfg, &s, 0, &io, all, names, 5, emulate, force_tile);
}

/* the argument checks of ringattn_backward (as above), then the run */
static int ringattn_cuda__backward(const ringattn_config *cfg, const ringattn_tensor *q, const ringattn_tensor *k,
                                   const ringattn_tensor *v, const ringattn_tensor *out, const ringattn_tensor *lse,
                                   const ringattn_tensor *dout, ringattn_tensor *dq, ringattn_tensor *dk,
                                   ringattn_tensor *dv, int emulate, int force_tile)
{
    ringattn_shape s; ringattn_cuda__io io; ringattn_config c; int st;
    const ringattn_tensor *all[9] = { q, k, v, out, lse, dout, dq, dk, dv };
    const char *names[9] = { "q", "k", "v", "out", "lse", "dout", "dq", "dk", "dv" };
    if (!cfg) return RINGATTN_ENULL;
    c = *cfg;
    if (c.ring_size == 0) c.ring_size = 1;
    if ((st = ringattn_check_call(&c, 1, all, &s)) != RINGATTN_OK) return st;
    memset(&io, 0, sizeof io);
    io.q = q; io.k = k; io.v = v; io.out = out; io.lse = lse; io.dout = dout;
    io.dq = dq; io.dk = dk; io.dv = dv;
    return ringattn_cuda__execute(cfg, &s, 1, &io, all, names, 9, emulate, force_tile);
}

/* ---------------------------------------------------------------- decoding: a KV cache */
/* ringattn_forward_kvcache on the GPU. Each sequence's keys are gathered into one buffer in
   the compute type (pages through the block table, then the new keys: "paged gather"), every
   split is one launch of the forward tile kernel over the (sequence, head) blocks that have
   keys in it, with the block's causal and ALiBi offsets set to the split's place in the whole
   sequence, and an element-wise kernel turns each split's rows into its partial (out_s,
   lse_s) and merges it into the result with ringattn.h's ringattn__merge_row, split after
   split, from the sink's state. The order of operations is the CPU's (ringattn.h,
   ringattn_forward_kvcache). */

/* key j of sequence bb: its element offset in the cache (page through the block table, or
   row bb of a contiguous cache) */
static RINGATTN_CUDA__HD inline int64_t ringattn_cuda__kv_index(const ringattn_tensor *t, const int32_t *table,
                                                                int64_t max_blocks, int64_t page, int64_t bb,
                                                                int64_t j, int64_t kh, int64_t c)
{
    if (table) return ringattn__index(t, table[bb * max_blocks + j / page], j % page, kh, c);
    return ringattn__index(t, bb, j, kh, c);
}

/* the gather: element (bb, kh, j, c) of the [b][hk][lmax][dim] buffer = key j of sequence bb
   (cached keys, then the new ones; zero past the sequence's last key, never read) */
template <typename T>
struct ringattn_cuda__kv_gather {
    ringattn_tensor cache, knew; int has_new; const int32_t *table, *seqlens; int64_t max_blocks, page, hk, lmax, dim;
    T *dst;
    RINGATTN_CUDA__HD void operator()(int64_t i) const
    {
        int64_t c = i % dim, x = i / dim, j = x % lmax, kh, bb, n;
        double v = 0;
        x /= lmax; kh = x % hk; bb = x / hk;
        n = seqlens[bb];
        if (j < n)
            v = ringattn__load(cache.data, cache.dtype, ringattn_cuda__kv_index(&cache, table, max_blocks, page, bb, j, kh, c));
        else if (has_new && j - n < knew.shape[1])
            v = ringattn__load(knew.data, knew.dtype, ringattn__index(&knew, bb, j - n, kh, c));
        dst[i] = (T)v;   /* the compute type's one rounding, as the CPU packs a chunk */
    }
};

/* update_cache: element (bb, t, kh, c) of k_new / v_new into the cache at key
   cache_seqlens[bb] + t of sequence bb (the same dtype: an exact copy) */
struct ringattn_cuda__kv_update {
    ringattn_tensor cache, knew; const int32_t *table, *seqlens; int64_t max_blocks, page;
    RINGATTN_CUDA__HD void operator()(int64_t i) const
    {
        int64_t dim = knew.shape[3], hk = knew.shape[2], nn = knew.shape[1];
        int64_t c = i % dim, x = i / dim, kh = x % hk, t, bb;
        x /= hk; t = x % nn; bb = x / nn;
        ringattn__store(cache.data, cache.dtype,
                        ringattn_cuda__kv_index(&cache, table, max_blocks, page, bb, seqlens[bb] + t, kh, c),
                        ringattn__load(knew.data, knew.dtype, ringattn__index(&knew, bb, t, kh, c)));
    }
};

/* after split s, one row at = (bb * h + hh) * nq + i: the split's state (acc, m, l) becomes
   its partial, kept in double as the CPU keeps it: out_s = acc / l and lse_s = m + log l (0
   and -inf for a row that saw no key of the split), written to the split's outputs when
   asked, then merged into the result (F, FM, FL, double) by ringattn__merge_row (an empty
   partial, lse_s = -inf, adds nothing) */
template <typename T>
struct ringattn_cuda__kv_split_finish {
    ringattn_tensor so, sl; int has_so, has_sl; int64_t h, nq, dv;
    const T *acc; const double *m, *l; double *po, *F, *FM, *FL;
    RINGATTN_CUDA__HD void operator()(int64_t at) const
    {
        int64_t i = at % nq, hh = (at / nq) % h, bb = at / nq / h, c;
        double *o = po + at * dv, lse_s = ringattn__finish_lse(m[at], l[at]);
        for (c = 0; c < dv; c++) o[c] = ringattn__finish_out((double)acc[at * dv + c], l[at], 1.0);
        if (has_so)
            for (c = 0; c < dv; c++) ringattn__store(so.data, so.dtype, ringattn__index(&so, bb, i, hh, c), o[c]);
        if (has_sl) ringattn__store(sl.data, sl.dtype, ringattn__index(&sl, bb, hh, i, 0), lse_s);
        ringattn__merge_row(F + at * dv, RINGATTN_F64, dv, &FM[at], &FL[at], o, lse_s,
                            lse_s == -(double)INFINITY ? 0.0 : 1.0);
    }
};

/* cache_seqlens and the block table copied to the host (they are device memory), to be
   validated by ringattn_check_kvcache_call and to plan the blocks; kv is the caller's struct
   with its two pointers replaced by the host copies */
typedef struct {
    ringattn_kvcache kv;
    int32_t *seqlens, *table;
    int64_t batch;
} ringattn_cuda__kvhost;

static void ringattn_cuda__kvhost_free(ringattn_cuda__kvhost *H)
{
    free(H->seqlens); free(H->table);
    H->seqlens = H->table = NULL;
}

/* one host copy (cudaMemcpyDefault: device or host memory alike) */
static int ringattn_cuda__fetch(const ringattn_config *cfg, int emulate, void *dst, const void *src, size_t bytes)
{
    cudaError_t e;
    if (bytes == 0) return RINGATTN_OK;
    if (emulate) { memcpy(dst, src, bytes); return RINGATTN_OK; }
    e = cudaMemcpy(dst, src, bytes, cudaMemcpyDefault);
    if (e == cudaSuccess) return RINGATTN_OK;
    (void)cudaGetLastError();
    return ringattn_cuda__fail(cfg, e == cudaErrorMemoryAllocation ? RINGATTN_ENOMEM : RINGATTN_ECUDA,
                               "cudaMemcpy (cache_seqlens, block_table to the host) failed: %s (%s)",
                               cudaGetErrorString(e), cudaGetErrorName(e));
}

/* The arrays' sizes come from the arguments they are checked against: batch = q's first
   axis; of block-table row bb only the entries the CPU reads, ceil(L / page_size) (at most
   max_blocks) with L = cache_seqlens[bb] (plus n_new with update_cache: the pages written). Arguments too broken to size them (a NULL q, a
   negative count) leave the pointers as they are only when NULL; otherwise the copies stand
   in, and ringattn_check_kvcache_call says what is wrong. */
static int ringattn_cuda__kv_to_host(const ringattn_config *cfg, const ringattn_kvcache *kv, const ringattn_tensor *q,
                                     int emulate, ringattn_cuda__kvhost *H)
{
    int64_t bb, nnew = 0, page = 0;
    int st;
    memset(H, 0, sizeof *H);
    if (!kv) return RINGATTN_OK;
    H->kv = *kv;
    if (!q || q->shape[0] < 1 || q->shape[0] > ((int64_t)1 << 31)) {   /* nothing to size them by */
        if (kv->cache_seqlens) H->kv.cache_seqlens = NULL;
        if (kv->block_table) H->kv.block_table = NULL;
        H->batch = -1;
        return RINGATTN_OK;
    }
    H->batch = q->shape[0];
    if (kv->cache_seqlens) {
        H->seqlens = (int32_t *)malloc((size_t)H->batch * sizeof(int32_t));
        if (!H->seqlens) return ringattn_cuda__fail(cfg, RINGATTN_ENOMEM, "could not allocate %lld cache_seqlens",
                                                    (long long)H->batch);
        if ((st = ringattn_cuda__fetch(cfg, emulate, H->seqlens, kv->cache_seqlens,
                                       (size_t)H->batch * sizeof(int32_t))) != RINGATTN_OK) return st;
        H->kv.cache_seqlens = H->seqlens;
    }
    if (!kv->block_table) return RINGATTN_OK;
    if (!H->seqlens || kv->max_blocks < 1 || !kv->k_cache || kv->k_cache->shape[1] < 1 ||
        kv->max_blocks > (((int64_t)1 << 40) / H->batch)) {   /* nothing read: the check refuses first */
        H->kv.block_table = NULL;
        return RINGATTN_OK;
    }
    page = kv->k_cache->shape[1];
    if (kv->k_new && kv->k_new->shape[1] > 0) nnew = kv->k_new->shape[1];
    H->table = (int32_t *)calloc((size_t)(H->batch * kv->max_blocks), sizeof(int32_t));
    if (!H->table) return ringattn_cuda__fail(cfg, RINGATTN_ENOMEM, "could not allocate a host copy of the block table");
    for (bb = 0; bb < H->batch; bb++) {   /* only the entries sequence bb uses, as the CPU reads them */
        int64_t L = (H->seqlens[bb] > 0 ? (int64_t)H->seqlens[bb] : 0) + (kv->update_cache ? nnew : 0);
        int64_t used = (L + page - 1) / page;
        if (used > kv->max_blocks) used = kv->max_blocks;
        if ((st = ringattn_cuda__fetch(cfg, emulate, H->table + bb * kv->max_blocks, kv->block_table + bb * kv->max_blocks,
                                       (size_t)used * sizeof(int32_t))) != RINGATTN_OK) return st;
    }
    H->kv.block_table = H->table;
    return RINGATTN_OK;
}

/* 1 if the GPU can reach p (device, managed or mapped pinned memory) */
static int ringattn_cuda__is_device(const void *p)
{
    cudaPointerAttributes at;
    cudaError_t e;
    memset(&at, 0, sizeof at);
    e = cudaPointerGetAttributes(&at, p);
    if (e != cudaSuccess) (void)cudaGetLastError();   /* not sticky: clear it */
    return e == cudaSuccess && at.type != cudaMemoryTypeUnregistered;
}

template <typename T>
static int ringattn_cuda__kvcache_t(ringattn_cuda__exec *X, ringattn__problem *P, const ringattn_cuda__kvhost *H,
                                    const ringattn_kvcache *kv, const ringattn_tensor *q, ringattn_tensor *out,
                                    ringattn_tensor *lse, int64_t nsplit, int force_tile)
{
    const ringattn_config *cfg = X->cfg;
    const ringattn_kvcache *hk_ = &H->kv;
    ringattn__problem PK;
    ringattn_cuda__optdev OD;
    ringattn_cuda__block *blocks = NULL, *dev_blocks = NULL;
    int64_t *first = NULL;
    int64_t b = P->b, h = P->h, nq = P->nq, d = P->d, dv = P->dv, lmax = P->nk, rows = b * h * nq;
    int64_t nnew = kv->k_new ? kv->k_new->shape[1] : 0, page = kv->block_table ? kv->k_cache->shape[1] : 0;
    int64_t count = 0, s, bb, hh, tiles_total = 0, pairs_total = 0, blocks_computed = 0;
    size_t es = sizeof(T), smem = 0, kvhalf, bytes = 0;
    int64_t Se = nsplit < lmax ? nsplit : lmax;   /* no split past Se holds a key of any sequence */
    int64_t ns = (kv->split_out || kv->split_lse) ? nsplit : Se;   /* the splits run: later ones only write 0, -inf */
    T *qb = NULL, *kvb = NULL, *acc = NULL;
    double *m = NULL, *l = NULL, *po = NULL, *F = NULL, *FM = NULL, *FL = NULL;
    int nt;

    for (nt = force_tile > 0 ? force_tile : RINGATTN_CUDA_TILE; nt >= 1; nt--) {   /* as ringattn_cuda__execute_t */
        smem = ringattn_cuda__layout<T>(NULL, RINGATTN_CUDA__FWD, nt, d, dv, 0, NULL);
        if (smem <= X->smem_limit) break;
    }
    if (nt < 1)
        return ringattn_cuda__fail(cfg, RINGATTN_EUNSUPPORTED,
                                   "head dims d = %lld, dv = %lld need more shared memory per CUDA block than "
                                   "the device allows (%zu bytes) even for a tile of one row",
                                   (long long)d, (long long)dv, X->smem_limit);
    P->nt = nt;

    /* the blocks, split by split: (sequence, head) with keys in the split, in that order */
    blocks = (ringattn_cuda__block *)malloc((size_t)(Se * b * h > 0 ? Se * b * h : 1) * sizeof *blocks);
    first = (int64_t *)malloc((size_t)(ns + 1) * sizeof *first);
    if (!blocks || !first) {
        free(blocks); free(first);
        return ringattn_cuda__fail(cfg, RINGATTN_ENOMEM, "could not allocate the host-side block table");
    }
    for (s = 0; s < ns; s++) {
        first[s] = count;
        for (bb = 0; bb < b && s < Se; bb++) {
            int64_t L = (int64_t)hk_->cache_seqlens[bb] + nnew, k0, k1, spairs = 0;
            ringattn__split_bounds(L, kv->num_splits, kv->split_size, s, &k0, &k1);
            for (hh = 0; hh < h && k0 < k1; hh++) {
                ringattn_cuda__block B;
                int64_t y, ya, yz, bpairs = 0, x;
                B.qa = 0; B.ka = 0; B.qps = 1; B.kps = 1; B.rs = 1; B.nr = nq; B.nc = k1 - k0;
                B.off = (P->causal_mode == RINGATTN_CAUSAL_TOP_LEFT ? 0 : L - nq) - k0;   /* the split's place */
                B.aoff = L - nq - k0;
                B.bb = bb; B.hh = hh;
                B.qrow = (bb * h + hh) * nq;
                B.krow = (bb * P->hk + hh / P->heads_per_kv) * lmax + k0;
                for (x = 0; x < nq; x += nt) {   /* visible pairs and the K/V tiles the kernel loads */
                    int64_t lo = B.nc, hi = 0;
                    for (y = x; y < x + nt && y < nq; y++) {
                        ringattn_cuda__row_bounds(P, &B, y, &ya, &yz);
                        bpairs += yz - ya;
                        if (ya < yz) { if (ya < lo) lo = ya; if (yz > hi) hi = yz; }
                    }
                    if (lo < hi) tiles_total += (hi + nt - 1) / nt - lo / nt;
                }
                if (bpairs == 0) continue;   /* nothing visible: never launched */
                spairs += bpairs;
                blocks[count++] = B;
            }
            /* the CPU's count: one block per (sequence, split), computed when any of its
               pairs is visible, skipped otherwise (the splits past Se too) */
            if (spairs > 0) blocks_computed++;
            pairs_total += spairs;
        }
    }
    first[ns] = count;

    ringattn_cuda__options_upload(X, P, &PK, &OD);   /* sinks and ALiBi slopes where the kernels read them */
    if (X->emulate) {
        X->host_smem = (char *)malloc(smem);
        if (!X->host_smem) X->status = ringattn_cuda__fail(cfg, RINGATTN_ENOMEM, "could not allocate %zu bytes", smem);
    } else {
        dev_blocks = (ringattn_cuda__block *)ringattn_cuda__alloc(X, (size_t)(count ? count : 1) * sizeof *blocks, NULL);
        if (dev_blocks && count)
            ringattn_cuda__check(X, cudaMemcpy(dev_blocks, blocks, (size_t)count * sizeof *blocks, cudaMemcpyHostToDevice),
                                 "cudaMemcpy (block table)");
    }
    ringattn_cuda__allow_smem<T>(X, P);
    kvhalf = (size_t)(b * P->hk * lmax * d);
    qb = (T *)ringattn_cuda__alloc(X, (size_t)(rows * d) * es, &bytes);
    kvb = (T *)ringattn_cuda__alloc(X, (kvhalf + (size_t)(b * P->hk * lmax * dv)) * es, &bytes);
    acc = (T *)ringattn_cuda__alloc(X, (size_t)(rows * dv) * es, &bytes);
    po = (double *)ringattn_cuda__alloc(X, (size_t)(rows * dv) * sizeof(double), &bytes);
    F = (double *)ringattn_cuda__alloc(X, (size_t)(rows * dv) * sizeof(double), &bytes);
    m = (double *)ringattn_cuda__alloc(X, (size_t)rows * sizeof(double), &bytes);
    l = (double *)ringattn_cuda__alloc(X, (size_t)rows * sizeof(double), &bytes);
    FM = (double *)ringattn_cuda__alloc(X, (size_t)rows * sizeof(double), &bytes);
    FL = (double *)ringattn_cuda__alloc(X, (size_t)rows * sizeof(double), &bytes);

    if (X->status == RINGATTN_OK) {
        ringattn__piece pc[2];
        ringattn_cuda__pack<T> pq;
        ringattn_cuda__kv_gather<T> gk, gv;
        ringattn_cuda__init_rows fi = { FM, FL, NULL, PK.sinks, h, nq };   /* the result starts at the sink */
        memset(pc, 0, sizeof pc);
        pc[0].pos0 = 0; pc[0].count = nq; pc[0].stride = 1; pc[0].row0 = 0; pc[1] = pc[0];
        pq.t = *q; pq.pc[0] = pc[0]; pq.pc[1] = pc[1]; pq.np = 1; pq.rows = nq; pq.pitch = nq; pq.dst = qb; pq.mul = 1.0;
        gk.cache = *kv->k_cache; gk.has_new = kv->k_new != NULL; gk.knew = kv->k_new ? *kv->k_new : *kv->k_cache;
        gk.table = kv->block_table; gk.seqlens = kv->cache_seqlens; gk.max_blocks = kv->max_blocks; gk.page = page;
        gk.hk = P->hk; gk.lmax = lmax; gk.dim = d; gk.dst = kvb;
        gv = gk;
        gv.cache = *kv->v_cache; gv.knew = kv->v_new ? *kv->v_new : *kv->v_cache; gv.dim = dv; gv.dst = kvb + kvhalf;
        ringattn_cuda__each(X, pq, rows * d);
        ringattn_cuda__each(X, gk, b * P->hk * lmax * d);
        ringattn_cuda__each(X, gv, b * P->hk * lmax * dv);
        ringattn_cuda__zero(X, F, (size_t)(rows * dv) * sizeof(double));
        ringattn_cuda__each(X, fi, rows);
    }
    for (s = 0; s < ns && X->status == RINGATTN_OK; s++) {
        ringattn_cuda__init_rows ir = { m, l, NULL, NULL, h, nq };   /* no sink inside a split */
        ringattn_cuda__kv_split_finish<T> sf;
        ringattn_cuda__zero(X, acc, (size_t)(rows * dv) * es);
        ringattn_cuda__each(X, ir, rows);
        if (first[s + 1] > first[s]) {
            ringattn_cuda__tile_args<T> A;
            memset(&A, 0, sizeof A);
            A.P = PK; A.P.nt = nt;
            A.blocks = (X->emulate ? blocks : dev_blocks) + first[s];
            A.q = qb; A.o = acc; A.m = m; A.l = l; A.x = NULL;
            A.kv = kvb; A.kvhalf = (int64_t)kvhalf;
            ringattn_cuda__tiles<T>(X, RINGATTN_CUDA__FWD, A, first[s + 1] - first[s], (nq + nt - 1) / nt);
        }
        /* precision emulation, as the CPU's one-member ring ends its one step: round_block
           holds the split as a port holds a block's (out, lse) and merges it into the empty
           state (which is the held block itself), then round_state holds the state */
        if (P->round_block) {
            ringattn_cuda__hold_rows<T> hb = { acc, m, l, dv, P->bt };
            ringattn_cuda__each(X, hb, rows);
        }
        if (P->round_state) {
            ringattn_cuda__hold_rows<T> hr = { acc, m, l, dv, P->st };
            ringattn_cuda__each(X, hr, rows);
        }
        memset(&sf, 0, sizeof sf);
        sf.has_so = kv->split_out != NULL; sf.has_sl = kv->split_lse != NULL;
        if (sf.has_so) sf.so = kv->split_out[s]; else sf.so = *out;
        if (sf.has_sl) sf.sl = kv->split_lse[s]; else sf.sl = *out;
        sf.h = h; sf.nq = nq; sf.dv = dv;
        sf.acc = acc; sf.m = m; sf.l = l; sf.po = po; sf.F = F; sf.FM = FM; sf.FL = FL;
        ringattn_cuda__each(X, sf, rows);
    }
    if (X->status == RINGATTN_OK) {   /* the result: out = F / FL, lse = FM + log FL */
        ringattn_cuda__forward_finish<double> f;
        memset(&f, 0, sizeof f);
        f.o = *out; f.has_lse = lse != NULL; f.lse = lse ? *lse : *out; f.ml = *out;
        f.pc[0].pos0 = 0; f.pc[0].count = nq; f.pc[0].stride = 1; f.pc[0].row0 = 0; f.pc[1] = f.pc[0]; f.np = 1;
        f.h = h; f.rows = nq; f.dv = dv; f.acc = F; f.m = FM; f.l = FL; f.x = NULL; f.gdiv = 1.0;
        ringattn_cuda__each(X, f, rows * dv);
    }
    if (X->status == RINGATTN_OK && kv->update_cache && kv->k_new) {   /* after the result: the new keys into the cache */
        ringattn_cuda__kv_update uk = { *kv->k_cache, *kv->k_new, kv->block_table, kv->cache_seqlens, kv->max_blocks, page };
        ringattn_cuda__kv_update uv = { *kv->v_cache, *kv->v_new, kv->block_table, kv->cache_seqlens, kv->max_blocks, page };
        ringattn_cuda__each(X, uk, b * nnew * P->hk * d);
        ringattn_cuda__each(X, uv, b * nnew * P->hk * dv);
    }
    if (X->status == RINGATTN_OK && !X->emulate)
        ringattn_cuda__check(X, cudaStreamSynchronize(X->stream), "cudaStreamSynchronize (after the splits)");
    if (X->status == RINGATTN_OK && cfg->stats) {
        ringattn_stats *st = cfg->stats;
        memset(st, 0, sizeof *st);
        st->ring_size = 1; st->num_threads = 1; st->ring_steps = nsplit;
        st->blocks_computed = blocks_computed; st->blocks_skipped = b * nsplit - blocks_computed;
        st->tiles_computed = tiles_total;
        st->flops = (double)pairs_total * (double)(2 * d + 2 * dv);
        st->member_flops_min = st->member_flops_max = st->flops;
        st->peak_bytes_per_member = st->planned_bytes_per_member = bytes;
        st->scratch_bytes_per_thread = smem;
        st->shared_bytes = (size_t)(count ? count : 1) * sizeof *blocks;
    }
    ringattn_cuda__free(X, qb); ringattn_cuda__free(X, kvb); ringattn_cuda__free(X, acc); ringattn_cuda__free(X, F);
    ringattn_cuda__free(X, m); ringattn_cuda__free(X, l); ringattn_cuda__free(X, FM); ringattn_cuda__free(X, FL);
    ringattn_cuda__free(X, po);
    ringattn_cuda__free(X, dev_blocks);
    ringattn_cuda__options_free(X, &OD);
    free(X->host_smem); X->host_smem = NULL;
    free(blocks); free(first);
    return X->status;
}

/* the argument checks of ringattn_forward_kvcache (ringattn_check_kvcache_call, on host
   copies of cache_seqlens and the block table), then every pointer on the device, then the
   run in the compute type */
static int ringattn_cuda__forward_kvcache(const ringattn_config *cfg, const ringattn_kvcache *kv,
                                          const ringattn_tensor *q, ringattn_tensor *out, ringattn_tensor *lse,
                                          int emulate, int force_tile)
{
    ringattn_cuda__kvhost H;
    ringattn_shape s;
    ringattn__problem P;
    ringattn_cuda__exec X;
    ringattn_config c;
    int64_t nsplit, i;
    int st;
    if (!cfg) return RINGATTN_ENULL;
    if ((st = ringattn_cuda__kv_to_host(cfg, kv, q, emulate, &H)) != RINGATTN_OK) { ringattn_cuda__kvhost_free(&H); return st; }
    st = ringattn_check_kvcache_call(cfg, kv ? &H.kv : NULL, q, out, lse, &s);
    if (st == RINGATTN_OK) {
        nsplit = ringattn_kvcache_num_splits(cfg, &H.kv, s.batch);
        if (nsplit < 0) st = (int)nsplit;
    }
    if (st == RINGATTN_OK && cfg->descale_size > 0)
        st = ringattn_cuda__fail(cfg, RINGATTN_EUNSUPPORTED, "fp8 descale factors are computed by the CPU ring "
                                 "only (fp8 inputs without them are read as they are)");
    if (st == RINGATTN_OK) st = ringattn_cuda__exec_init(&X, cfg, 0, emulate);
    if (st == RINGATTN_OK && !emulate) {   /* every tensor and both arrays on the device */
        const ringattn_tensor *t[7] = { q, out, lse, kv->k_cache, kv->v_cache, kv->k_new, kv->v_new };
        const char *names[7] = { "q", "out", "lse", "kv->k_cache", "kv->v_cache", "kv->k_new", "kv->v_new" };
        st = ringattn_cuda__check_device_ptrs(cfg, t, names, 7);
        for (i = 0; st == RINGATTN_OK && i < nsplit; i++) {
            const ringattn_tensor *u[2] = { kv->split_out ? &kv->split_out[i] : NULL, kv->split_lse ? &kv->split_lse[i] : NULL };
            const char *un[2] = { "kv->split_out[s]", "kv->split_lse[s]" };
            st = ringattn_cuda__check_device_ptrs(cfg, u, un, 2);
        }
        if (st == RINGATTN_OK && !ringattn_cuda__is_device(kv->cache_seqlens))
            st = ringattn_cuda__fail(cfg, RINGATTN_EUNSUPPORTED, "kv->cache_seqlens is not device memory (ringattn_cuda_"
                                     "forward_kvcache takes it, and the block table, in device memory, as the tensors)");
        if (st == RINGATTN_OK && kv->block_table && !ringattn_cuda__is_device(kv->block_table))
            st = ringattn_cuda__fail(cfg, RINGATTN_EUNSUPPORTED, "kv->block_table is not device memory (ringattn_cuda_"
                                     "forward_kvcache takes it, and cache_seqlens, in device memory, as the tensors)");
    }
    if (st != RINGATTN_OK) { ringattn_cuda__kvhost_free(&H); return st; }
    /* the problem: the CPU's own, for nq queries against the longest sequence's keys; each
       block sets its split's causal and ALiBi offsets */
    c = *cfg;
    c.ring_size = 1;
    memset(&P, 0, sizeof P);
    ringattn__problem_set(&P, &c, &s);
    P.p = 1; P.cq = s.seq_q; P.ck = s.seq_k;
    {
        ringattn_kvcache kd = *kv;   /* the kernels read the caller's (device) arrays; the plan the host copies */
        if (P.ct == RINGATTN_F64) st = ringattn_cuda__kvcache_t<double>(&X, &P, &H, &kd, q, out, lse, nsplit, force_tile);
        else st = ringattn_cuda__kvcache_t<float>(&X, &P, &H, &kd, q, out, lse, nsplit, force_tile);
    }
    ringattn_cuda__kvhost_free(&H);
    return st;
}

/* ---------------------------------------------------------------- entry points */

extern "C" RINGATTN_CUDA_API int ringattn_cuda_forward(const ringattn_config *cfg,
                                                       const ringattn_tensor *q, const ringattn_tensor *k,
                                                       const ringattn_tensor *v, ringattn_tensor *out,
                                                       ringattn_tensor *lse)
{
    return ringattn_cuda__forward(cfg, q, k, v, out, lse, 0, 0);
}

extern "C" RINGATTN_CUDA_API int ringattn_cuda_backward(const ringattn_config *cfg,
                                                        const ringattn_tensor *q, const ringattn_tensor *k,
                                                        const ringattn_tensor *v, const ringattn_tensor *out,
                                                        const ringattn_tensor *lse, const ringattn_tensor *dout,
                                                        ringattn_tensor *dq, ringattn_tensor *dk,
                                                        ringattn_tensor *dv)
{
    return ringattn_cuda__backward(cfg, q, k, v, out, lse, dout, dq, dk, dv, 0, 0);
}

extern "C" RINGATTN_CUDA_API int ringattn_cuda_forward_kvcache(const ringattn_config *cfg, const ringattn_kvcache *kv,
                                                               const ringattn_tensor *q, ringattn_tensor *out,
                                                               ringattn_tensor *lse)
{
    return ringattn_cuda__forward_kvcache(cfg, kv, q, out, lse, 0, 0);
}

#endif /* RINGATTN_CUDA_IMPLEMENTATION */

/*
   VERSION HISTORY
     0.4  ringattn_cuda_forward_kvcache: decoding against a contiguous or paged KV cache with
          new keys, split-KV partials merged by ringattn__merge_row, update_cache, sinks,
          ALiBi, windows, softcap, GQA, the precision emulation (round_block included).
     0.3  the score options: sinks / dsinks, ALiBi, bias / dbias, dense mask, document ids,
          max_logit, forward and backward, by ringattn.h's rules (ringattn__score_term,
          ringattn__pair_visible, ringattn__dsink, ringattn__dbias_sum); mask_fn /
          mask_block_fn refused.
     0.2  zigzag and striped partitions, varlen (cu_seqlens), softcap forward and backward: every
          config the CPU accepts; conversions, the problem, the partition / pattern / segment
          geometry and the merge's scalar core are ringattn.h's RINGATTN__HD functions.
     0.1  forward and backward kernels, the ring over per-member device buffers, dense,
          causal, window, GQA, dilated (both mixes); f32/f64 compute, f32/f64/f16/bf16 storage.

   LICENSE (MIT)
     Copyright (c) 2026 the ringattn authors. Permission is hereby granted, free of charge, to
     any person obtaining a copy of this software and associated documentation files (the
     "Software"), to deal in the Software without restriction, including without limitation
     the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
     of the Software, and to permit persons to whom the Software is furnished to do so, subject
     to the following conditions: The above copyright notice and this permission notice shall be
     included in all copies or substantial portions of the Software. THE SOFTWARE IS PROVIDED
     "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED.
*/
