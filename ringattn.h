/* ringattn.h - exact ring attention and dilated (LongNet) attention on the CPU.
   One C99 header, stb style.                                  Version 0.1 (see end of file)

   USAGE
     In exactly ONE C or C++ file of your project:
         #define RINGATTN_IMPLEMENTATION
         #include "ringattn.h"
     Everywhere else just #include "ringattn.h".

     Plain copy-in build, no BLAS, no OpenMP (members run one after another):
         cc -std=c99 -I. myfile.c -lm
     With OpenBLAS and OpenMP (members run as threads; large-d backward blocks through cblas):
         cc -std=c99 -fopenmp -DRINGATTN_USE_CBLAS -I. myfile.c -lopenblas -lm

     Minimal call (q, k, v: [batch, seq, heads, dim] row-major float arrays):
         ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F32, b, n, h, d);
         ... K, V, O likewise ...
         ringattn_config cfg = ringattn_default_config();
         cfg.ring_size = 4;                    4 ring members
         int st = ringattn_forward(&cfg, &Q, &K, &V, &O, NULL);
         if (st < 0) fprintf(stderr, "%s\n", ringattn_strerror(st));

   WHAT IT COMPUTES
     O = softmax(scale * Q K^T + mask) V per (batch, head), lse = log sum exp(scale * q.k) over
     the keys a row may see (natural log, scale included; -inf and O = 0 for a row that sees no
     key). The sequence is split into ring_size contiguous chunks; member i owns Q_i, K_i, V_i,
     and at step t holds the K/V chunk of member (i - t) mod p, merges that block into its
     running (O_i, m_i, l_i) with the online softmax, and hands the K/V buffer to member i + 1.
     See "THE RING" in the implementation (READING ORDER below); docs/semantics.md has the full
     semantics.
     The whole multihead (dilated) attention layer around it (q/k/v projections, attention,
     LayerNorm, output projection) is the companion header ringattn_layer.h.

   COMPILE-TIME OPTIONS (define before including)
     RINGATTN_IMPLEMENTATION   in one file: emit the implementation.
     RINGATTN_STATIC           everywhere: make every function static (private copy per file).
     RINGATTN_API              everywhere: decoration of public functions (default extern).
     RINGATTN_MALLOC(sz,user) / RINGATTN_FREE(p,user)
                               implementation file only; both or neither. `user` is
                               cfg->alloc_user. Every byte the library allocates goes through
                               these (per call: one block that holds every member's and
                               thread's buffers, and a small ring table).
     RINGATTN_USE_CBLAS        implementation file only: the backward's blocks at d >= 128 (and
                               ringattn_layer.h's projections) through cblas_sgemm / cblas_dgemm
                               (include path of cblas.h needed, link a BLAS). Every other
                               block product goes through the fused kernels (see "fused block
                               kernels"), which OpenBLAS beats only
                               there (docs/performance.md). Same results within the documented
                               f32 tolerance; f64 agrees to ~1e-15 relative.
     RINGATTN_CBLAS_HEADER     header to include for cblas (default <cblas.h>).
     RINGATTN_TILE_Q, RINGATTN_TILE_K
                               implementation file only: score-tile rows/columns (256, 256):
                               the keys one merge step folds in, and the rows that share one
                               gathered set of K panels.
     RINGATTN_NO_HUGEPAGES     implementation file only: never ask for huge pages. By default,
                               on Linux with malloc (no RINGATTN_MALLOC) and where
                               <sys/mman.h> declares madvise (not a strict -std=c99 build
                               without -D_DEFAULT_SOURCE), a call's block of 4 MiB or more is
                               advised MADV_HUGEPAGE: fewer page faults, the same bits.
     RINGATTN_NO_NPY           implementation file only: leave out the .npy reader/writer and
                               ringattn_compare (the section at the end of the file).
     RINGATTN_NO_SIMD, RINGATTN_NO_DISPATCH
                               implementation file only: no AVX2 / AVX-512 versions of the
                               fused kernels and exps (chosen at run time on x86-64 with GCC or
                               clang otherwise): the portable C runs, with the same bits.
     RINGATTN_NO_AVX512        implementation file only: the AVX2 versions even where the CPU
                               has AVX-512 (the same bits; to measure both on one machine).
     _OPENMP                   set by your compiler's -fopenmp: ring members become threads.

   READING ORDER
     One forward call, top-down through the implementation: ringattn_forward (entry points)
     -> ringattn__execute -> ringattn__ring_loop (THE RING: setup, then p steps of compute,
     report, pass on, then finish) -> ringattn__compute (a member's step: one unit of its
     block) -> ringattn__pass_on (the hand-off to member i + 1) -> ringattn__merge (THE
     online-softmax merge, right after the ring) -> ringattn__unit -> ringattn__forward_block /
     ringattn__backward_block (blocks and tiles). Setup and finish: ringattn__member_setup /
     ringattn__member_finish ("moving data in and out"); validation: ringattn__check_call,
     ringattn__resolve; allocation: ringattn__ring_alloc. Decoding against a KV cache:
     ringattn_forward_kvcache -> ringattn__kv_item (one split of one sequence:
     a one-member ring streamed from the pages through ringattn__forward_block) ->
     ringattn__kv_finish (the partials merged by ringattn__merge_row). The kernels (GEMM, fused block
     kernels, softmax rows, exps) are PLATFORM CODE, the last section: each a plain C function
     with its AVX2 / AVX-512 versions beside it, reached through the table that
     ringattn__kernels_for picks once per call. A debugger steps into the plain C ones in a
     build with RINGATTN_NO_SIMD, with num_threads = 1. docs/reading.md walks a forward call
     with line numbers.

   THREADS AND DETERMINISM
     Every member's arithmetic is the same whichever thread runs it, so for a fixed ring_size
     the output is bit-identical for any num_threads (1 = members one after another, the
     debugger-friendly step-through mode). Different ring sizes agree to rounding.
     With RINGATTN_USE_CBLAS, link the OpenMP build of OpenBLAS so that BLAS calls made inside
     ring members stay single-threaded (the pthread build oversubscribes the cores).

   LICENSE: MIT (end of file).
*/
#ifndef RINGATTN_H
#define RINGATTN_H

#include <stddef.h>
#include <stdint.h>
#include <math.h>     /* the shared conversions below (ldexp, frexp, rint), the exps (fma) */
#include <string.h>   /* memcpy: the exps build 2^n from its bits */

#ifndef RINGATTN_API
#ifdef RINGATTN_STATIC
#if defined(__GNUC__) || defined(__clang__)
#define RINGATTN_API static __attribute__((unused))
#else
#define RINGATTN_API static
#endif
#else
#define RINGATTN_API extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- status codes */
enum {
    RINGATTN_OK           =  0,
    RINGATTN_ENULL        = -1,  /* a required pointer (config, tensor, data) is NULL      */
    RINGATTN_ESHAPE       = -2,  /* shapes are zero/negative or disagree between tensors   */
    RINGATTN_EDTYPE       = -3,  /* unknown dtype, or dtypes that may not be mixed         */
    RINGATTN_ECONFIG      = -4,  /* a config field is out of range                         */
    RINGATTN_EOVERFLOW    = -5,  /* a size or byte count does not fit in 64 bits           */
    RINGATTN_ENOMEM       = -6,  /* an allocation failed; nothing was written              */
    RINGATTN_ESTRIDE      = -7,  /* an output view overlaps itself (e.g. a zero stride)    */
    RINGATTN_ESEGMENT     = -8,  /* dilated: bad segment length / rate, or n not a multiple */
    RINGATTN_EUNSUPPORTED = -9,  /* a valid option this build or entry point does not do   */
    RINGATTN_EALIAS       = -10, /* an output shares its data pointer with another tensor  */
    RINGATTN_ECUDA        = -11, /* reserved for ringattn_cuda.h: a CUDA call failed       */
    RINGATTN_EIO          = -12, /* .npy: a file could not be opened, read or written      */
    RINGATTN_EFORMAT      = -13, /* .npy: not a valid .npy file, or one the reader refuses */
    RINGATTN_EMPI         = -14, /* ringattn_mpi.h: an MPI call failed, or another rank did  */
    RINGATTN_ETIMEDOUT    = -15, /* ringattn_mpi.h: a rank did not answer within the timeout */
    RINGATTN_ERANGE       = -16, /* f32 compute: an input or score a float cannot hold      */
    RINGATTN_ECALLBACK    = -17  /* a mask callback asked to stop; outputs untouched        */
};

/* ---------------------------------------------------------------- tensors */
/* Each enum carries int-sized sentinels (internal names) so that any int value is a valid value of the type
   (in C++ a cast of an out-of-range int is otherwise undefined); the entry points reject
   values outside the named ones with a status, so bad input stays defined behaviour. */
/* RINGATTN_FP8_E4M3 is OCP / PyTorch float8_e4m3fn (bias 7, no infinity, max 448, NaN =
   S.1111.111), RINGATTN_FP8_E5M2 float8_e5m2 (IEEE-like, bias 15): storage formats of one byte,
   read exactly; a store rounds to nearest even (e4m3: beyond 448 is NaN, as PyTorch's cast). */
typedef enum { RINGATTN_F32, RINGATTN_F64, RINGATTN_F16, RINGATTN_BF16, RINGATTN_FP8_E4M3, RINGATTN_FP8_E5M2,
               RINGATTN_BOOL,   /* one byte, nonzero = true: masks only (ringattn_config.mask) */
               RINGATTN__DTYPE_MIN = -0x7fffffff - 1, RINGATTN__DTYPE_MAX = 0x7fffffff } ringattn_dtype;

/* A strided view; nothing owned. q/k/v/out and their gradients are [batch, seq, heads, dim];
   lse is [batch, heads, seq, 1]. Strides are in elements and may be negative or (for inputs)
   zero; an output may not have a zero stride on an axis longer than 1. */
typedef struct {
    void *data;
    ringattn_dtype dtype;
    int64_t shape[4];
    int64_t stride[4];
} ringattn_tensor;

/* contiguous [b, n, h, d] */
RINGATTN_API ringattn_tensor ringattn_tensor_bnhd(void *data, ringattn_dtype dtype,
                                                  int64_t b, int64_t n, int64_t h, int64_t d);
/* contiguous lse [b, h, n, 1] */
RINGATTN_API ringattn_tensor ringattn_tensor_lse(void *data, ringattn_dtype dtype,
                                                 int64_t b, int64_t h, int64_t n);

/* ---------------------------------------------------------------- config */
enum { RINGATTN_CAUSAL_NONE = 0, RINGATTN_CAUSAL_BOTTOM_RIGHT = 1, RINGATTN_CAUSAL_TOP_LEFT = 2 };
typedef enum { RINGATTN_CONTIGUOUS = 0, RINGATTN_ZIGZAG = 1, RINGATTN_STRIPED = 2,
               RINGATTN__PARTITION_MIN = -0x7fffffff - 1, RINGATTN__PARTITION_MAX = 0x7fffffff } ringattn_partition;
typedef enum { RINGATTN_MIX_HEAD_GROUPS = 0, RINGATTN_MIX_LSE = 1,
               RINGATTN__MIX_MIN = -0x7fffffff - 1, RINGATTN__MIX_MAX = 0x7fffffff } ringattn_mix;

/* What a trace callback sees at each (member, ring step). Pointers are valid only during the
   call and point into the member's private state: row_max / row_sum hold the running m and l
   of the member's rows, laid out [batch][heads][rows] (rows = q_end - q_begin). */
typedef struct {
    int pass;                 /* 0 forward, 1 backward                                     */
    int member, step, ring_size;
    int src;                  /* whose K/V chunk the member holds: (member - step) mod p   */
    int computed;             /* 1 if any pair was visible, 0 if the block was skipped     */
    int64_t q_begin, q_end;   /* the member's query rows                                   */
    int64_t k_begin, k_end;   /* the key rows of the chunk it holds                        */
    int64_t tiles;            /* score tiles computed in this step                         */
    int64_t batch, heads, rows;
    const double *row_max;    /* forward only (NULL in backward)                           */
    const double *row_sum;
    /* The member's state after this step, for per-step goldens: read it through
       ringattn_trace_positions / ringattn_trace_result / ringattn_trace_grads below. An
       engine that does not expose it (ringattn_cuda.h) leaves these 0 / NULL. */
    ringattn_dtype dtype;     /* element type of acc, block_acc, dkv (the compute dtype)   */
    int64_t dim, dim_v, kv_heads;
    int64_t keys;             /* key rows of the chunk held                                */
    int q_pieces, k_pieces;   /* rows / keys are pieces: pos0[j] + r * stride[j], r < count[j] */
    int64_t q_pos0[2], q_count[2], q_stride[2];
    int64_t k_pos0[2], k_count[2], k_stride[2];
    double out_scale;         /* out = acc / l * out_scale (1/G for the head-group mix)    */
    const void *acc;          /* fwd: running O_i, unnormalised, [b][h][rows][dim_v];
                                 bwd: the running dQ_i, [b][h][rows][dim]                  */
    const void *block_acc;    /* fwd with cfg->trace_blocks: this step's block alone, same */
    const double *block_max;  /* layout as acc, row_max, row_sum (else NULL)               */
    const double *block_sum;
    const void *dkv;          /* bwd: the travelling dK of chunk src after this step,
                                 [b][kv_heads][kv_pitch][dim], then dV [..][dim_v]         */
    int64_t kv_pitch;
} ringattn_trace_event;

typedef void (*ringattn_trace_fn)(const ringattn_trace_event *ev, void *user);

/* Filled on success when cfg->stats is set (untouched on error). */
typedef struct {
    int ring_size, num_threads;      /* as actually used; threads share out (member, batch,
                                        k/v head) units, so p < num_threads still uses them all */
    int64_t ring_steps;              /* p                                                       */
    int64_t handoffs;                /* buffers passed member -> member (K/V, and dK/dV)        */
    int64_t blocks_computed;         /* (member, step) blocks with at least one visible pair    */
    int64_t blocks_skipped;          /* (member, step) blocks with none: never multiplied       */
    int64_t tiles_computed;          /* score tiles multiplied                                  */
    double  flops;                   /* multiply-adds x2 actually performed (an exact count)    */
    double  member_flops_min,        /* the least and the most work of one member: their ratio  */
            member_flops_max;        /* is the load balance of the partition                    */
    size_t  planned_bytes_per_member;/* ringattn_plan() for this call                           */
    size_t  peak_bytes_per_member;   /* measured: max over members of private bytes held        */
    size_t  scratch_bytes_per_thread;/* measured: score tile(s) of one thread                   */
    size_t  shared_bytes;            /* the ring table (not per member)                         */
} ringattn_stats;

typedef struct ringattn_config ringattn_config;
struct ringattn_config {
    double scale;                 /* 0 -> 1/sqrt(dim)                                          */
    int causal;                   /* RINGATTN_CAUSAL_*: bottom-right = FlashAttention-2,
                                     key j visible to query i iff j <= i + nk - nq;
                                     top-left = PyTorch SDPA is_causal, j <= i                 */
    int ring_size;                /* members p, 1 <= p <= min(nq, nk); 0 -> num_threads used  */
    int num_threads;              /* 0 -> OpenMP default; 1 -> step-through; capped at p      */
    ringattn_dtype compute;       /* RINGATTN_F32 (default) or RINGATTN_F64                    */
    /* dilated attention (num_groups > 0); see the README */
    const int64_t *segment_lengths;
    const int64_t *dilation_rates;
    int num_groups;
    ringattn_mix mix;             /* how dilated groups combine                                */
    /* variants; ringattn_default_config() sets window_left = window_right = -1 (unbounded) */
    int window_left, window_right;
    ringattn_partition partition;
    double softcap;
    const int64_t *cu_seqlens_q, *cu_seqlens_k;
    int num_seqs;
    /* observation */
    ringattn_trace_fn trace;      /* called at every (member, step); must be thread-safe when
                                     members run as threads                                    */
    void *trace_user;
    ringattn_stats *stats;        /* optional out                                              */
    char *error_detail;           /* optional: a sentence naming the bad argument on error     */
    size_t error_detail_size;
    void *alloc_user;             /* passed to RINGATTN_MALLOC / RINGATTN_FREE                 */
    void *stream;                 /* ringattn_cuda.h: a cudaStream_t; ignored on the CPU       */
    int trace_blocks;             /* 1: trace events also carry each step's block alone (Q_i
                                     over the chunk held); costs one more accumulator per
                                     member and each block computed twice. Forward only.      */
    /* Precision emulation: the rounding points of a low-precision kernel, so that its own
       precision can be reproduced as a baseline (docs/golden.md). With compute = RINGATTN_F32
       and bf16 / f16 inputs this is FlashAttention's arithmetic: inputs as stored, products
       summed in f32, P rounded to the input type before P V, the result rounded to the
       output's type. 0 = off (the exact reference). */
    int round_p;                  /* 1: P = exp(s - m) is rounded to p_dtype after the row sum
                                     l has been taken and before P V; in the backward P and
                                     dS are rounded before dV += P^T dO, dQ += dS K and
                                     dK += dS^T Q                                             */
    ringattn_dtype p_dtype;
    int round_s;                  /* 1 (with round_p): the scores S = scale q.k (before any
                                     softcap) rounded to p_dtype before the softmax, and in
                                     the backward dP too: eager attention in the input type
                                     (FlashAttention's attention_ref with upcast=False), a
                                     second, coarser low-precision order                      */
    int round_block;              /* 1: each step's block is computed alone, its out rounded
                                     to block_dtype and its lse to f32, and merged into the
                                     running state by its (out, lse), as a port that calls a
                                     kernel per block and merges the results does. Forward.  */
    ringattn_dtype block_dtype;
    /* fp8 inputs: FlashAttention 3's descale factors, the forward reads q_descale * q,
       k_descale * k, v_descale * v. descale_size 0 = none (the pointers NULL), 1 = one factor
       each, b * hk = one per (batch, k/v head), [b][hk] row-major (a q head takes its k/v
       head's); a NULL pointer is 1. Finite. Forward only (the backward refuses them).       */
    const double *q_descale, *k_descale, *v_descale;
    int descale_size;
    int round_state;              /* 1: after every ring step each row's running result is
                                     held as a port holding (out, lse) between steps holds
                                     it: out = acc / l rounded to state_dtype, lse rounded to
                                     f32; the next step merges into those. Forward only.     */
    ringattn_dtype state_dtype;
    /* Score options (docs/semantics.md gives each formula). The final score of query i and
       key j of (batch b, q head h) is
           s = softcap(scale q.k) + bias[b][h][i][j] - slope_h |i + nk - nq - j|
       over the keys causal, the window, the varlen sequence, the mask, mask_fn, mask_block_fn
       and the document ids all allow (their AND); positions are global (whatever the ring
       partition), and under varlen ALiBi's nk - nq is the sequence's. All off by default.
       Not with dilated attention (num_groups > 0), which refuses them.                     */
    const double *sinks;          /* h logits, one per q head, not scaled: row i of head h
                                     has exp(sinks[h]) in its softmax denominator; lse
                                     includes it; a row that sees no key: out 0, lse sinks[h]*/
    double *dsinks;               /* backward, out (with sinks): h entries, dL/dsinks         */
    const double *alibi_slopes;   /* ALiBi slopes, alibi_size = h (per head) or batch * h
                                     ([b][h] row-major); NULL = none; no slope gradient       */
    int alibi_size;
    const ringattn_tensor *bias;  /* additive bias [b or 1][h or 1][nq][nk], any float dtype
                                     (a broadcast axis has shape 1)                           */
    ringattn_tensor *dbias;       /* backward, out (with bias): dL/dbias in the bias's shape,
                                     summed over its broadcast axes; NULL = not wanted        */
    const ringattn_tensor *mask;  /* [b or 1][h or 1][nq][nk], dtype RINGATTN_BOOL: nonzero =
                                     may attend                                               */
    int (*mask_fn)(void *user, int64_t b, int64_t h, int64_t q_pos, int64_t k_pos);
    /* mask_block_fn: the same question for a block of pairs at once, for callers that
       vectorise: visible[r * nc + c] = 1 if query q_pos[r] may attend key k_pos[c]. Returns
       0, or nonzero to abort the call (RINGATTN_ECALLBACK, outputs untouched). Both are called
       from several threads at once; ringattn_mpi.h and ringattn_cuda.h refuse both.     */
    int (*mask_block_fn)(void *user, int64_t b, int64_t h, const int64_t *q_pos, int64_t nr,
                         const int64_t *k_pos, int64_t nc, unsigned char *visible);
    void *mask_user;
    const int64_t *document_ids_q;/* nq and nk ids (shared by every batch): a query attends  */
    const int64_t *document_ids_k;/* only keys of its own document; NULL = none (both or none)*/
    ringattn_tensor *max_logit;   /* forward, out: lse-shaped [b][h][nq][1], the row max of the
                                     final score over the visible keys (not the sink), -inf
                                     for a row that sees none; NULL = not wanted             */
};

RINGATTN_API ringattn_config ringattn_default_config(void);

/* ---------------------------------------------------------------- entry points */
RINGATTN_API int ringattn_forward(const ringattn_config *cfg,
                                  const ringattn_tensor *q, const ringattn_tensor *k,
                                  const ringattn_tensor *v, ringattn_tensor *out,
                                  ringattn_tensor *lse /* may be NULL */);

RINGATTN_API int ringattn_backward(const ringattn_config *cfg,
                                   const ringattn_tensor *q, const ringattn_tensor *k,
                                   const ringattn_tensor *v, const ringattn_tensor *out,
                                   const ringattn_tensor *lse, const ringattn_tensor *dout,
                                   ringattn_tensor *dq, ringattn_tensor *dk, ringattn_tensor *dv);

RINGATTN_API const char *ringattn_strerror(int status);

/* ---------------------------------------------------------------- decoding: a KV cache
   Queries against a KV cache, as decoding kernels read it (FlashAttention's
   flash_attn_with_kvcache, vLLM / FlashInfer paged attention, flash-decoding's splits).
   Sequence bb of the batch has L = cache_seqlens[bb] + n_new keys: its cached keys
   0 .. cache_seqlens[bb]-1, then the n_new keys of k_new / v_new. Query i of nq sits at
   position i + L - nq: causal (bottom-right, the only sensible alignment here) lets it see
   keys j <= i + L - nq, so nq > L leaves the first rows seeing nothing (out 0, lse -inf;
   with a sink: out 0, lse = sink). Windows align the same way (top-left causal aligns at 0).
   ALiBi's distance is |i + L - nq - j|.
   Splits (split-KV): the keys of sequence bb are cut into splits of c keys, split s holding
   keys [s c, min((s + 1) c, L)): c = ceil(L / num_splits), or c = split_size when that is
   set (FlashInfer's chunks; then sequence bb has ceil(L / split_size) splits). Each split is
   computed alone as a one-member ring over its keys, giving a partial (out_s, lse_s): out
   normalised within the split, lse_s its log-sum-exp; an empty split (or one whose keys the
   row may not see) is out_s = 0, lse_s = -inf. The result is the partials merged, in split
   order, by the ring's one merge (ringattn__merge_row), starting from the sink's state
   (sink, 1) when there is one: sinks are in the result, never in a partial.
   The cache is read, never written, unless update_cache = 1: then, after the result is
   computed, k_new / v_new are written into the cache at positions cache_seqlens[bb] ...
   (FlashAttention's in-place update; through the block table when paged).            */
typedef struct {
    ringattn_tensor *k_cache;     /* [b_cache, n_cache, hk, d] (b_cache >= batch; sequence bb
                                     is row bb), or paged (block_table set):
                                     [num_blocks, page_size, hk, d]                          */
    ringattn_tensor *v_cache;     /* the same with dim_v (any dtype); same first three axes  */
    const int32_t *block_table;   /* NULL: contiguous cache; else [batch][max_blocks]
                                     row-major: key j of sequence bb is slot j % page_size of
                                     block block_table[bb * max_blocks + j / page_size]. Only
                                     the entries a sequence's keys use are read (and checked
                                     to be blocks of the cache)                              */
    int64_t max_blocks;           /* entries per block-table row                             */
    const int32_t *cache_seqlens; /* batch entries: keys cached per sequence, >= 0           */
    const ringattn_tensor *k_new; /* optional [batch, n_new, hk, d], the cache's dtype: keys
                                     appended after each sequence's cached ones (NULL: none;
                                     k_new and v_new both or neither)                        */
    const ringattn_tensor *v_new; /* [batch, n_new, hk, dim_v]                               */
    int64_t num_splits;           /* 0 or 1: one split; S: ceil(L / S) keys per split         */
    int64_t split_size;           /* > 0: splits of this many keys instead (num_splits 0 or 1) */
    int update_cache;             /* 1: write k_new / v_new into the cache after the call     */
    /* optional, the partials: num_split_outputs tensors each (equal to
       ringattn_kvcache_num_splits), split_out[s] [batch, nq, h, dim_v] and split_lse[s]
       [batch, h, nq, 1], any float dtype; either array may be NULL                          */
    ringattn_tensor *split_out, *split_lse;
    int64_t num_split_outputs;
} ringattn_kvcache;

/* out [batch, nq, h, dim_v], lse [batch, h, nq, 1] (may be NULL). Takes from cfg: scale,
   causal, the window, softcap, compute, num_threads, sinks, alibi_slopes, the precision
   emulation (applied within each split; round_block rounds each partial as a split-KV kernel
   stores it), the fp8 descale factors, stats, error_detail, alloc_user. Refuses (status
   RINGATTN_EUNSUPPORTED) what has no meaning here: ring_size > 1 (the splits take the ring's
   place), dilation, varlen, bias, masks and document ids, max_logit, trace. */
RINGATTN_API int ringattn_forward_kvcache(const ringattn_config *cfg, const ringattn_kvcache *kv,
                                          const ringattn_tensor *q, ringattn_tensor *out,
                                          ringattn_tensor *lse);

/* The number of splits the partials have for a batch of `batch` sequences: num_splits (at
   least 1), or with split_size the largest ceil(L / split_size) over the batch (a sequence
   with fewer has empty ones after its last). Negative status on bad input. */
RINGATTN_API int64_t ringattn_kvcache_num_splits(const ringattn_config *cfg, const ringattn_kvcache *kv,
                                                 int64_t batch);


/* ---------------------------------------------------------------- per-step goldens
   Inside a trace callback: what the member's state means after step t, whatever an
   implementation stores. Rows are in the member's order (ringattn_trace_positions(ev, 0)),
   keys in the chunk's order (ringattn_trace_positions(ev, 1)); any dtypes and strides.
   ringattn_trace_positions: the global positions of the rows (keys = 0) or of the chunk's
     keys (keys = 1) into pos[0 .. cap); returns their count, or a negative status (cap too
     small, ev NULL or without positions).
   ringattn_trace_result (forward): block = 0, the running result over every chunk received
     so far; block = 1, the block alone (needs cfg->trace_blocks), -inf / 0 when skipped.
     out [batch, rows, heads, dim_v] and lse [batch, heads, rows, 1], normalised exactly as
     the final outputs (after the last step they are equal bit for bit); either may be NULL.
   ringattn_trace_grads (backward): dq [batch, rows, heads, dim] the running dQ_i; dk
     [batch, keys, kv_heads, dim], dv [.., dim_v] the travelling partial sums of chunk src
     (complete when they arrive home: step p-1 of member src-1). Any may be NULL.
   cfg (may be NULL) only takes the error sentence. Nothing is written on error. */
RINGATTN_API int64_t ringattn_trace_positions(const ringattn_trace_event *ev, int keys, int64_t *pos, int64_t cap);
RINGATTN_API int ringattn_trace_result(const ringattn_trace_event *ev, int block, ringattn_tensor *out,
                                       ringattn_tensor *lse, const ringattn_config *cfg);
RINGATTN_API int ringattn_trace_grads(const ringattn_trace_event *ev, ringattn_tensor *dq, ringattn_tensor *dk,
                                      ringattn_tensor *dv, const ringattn_config *cfg);

/* ---------------------------------------------------------------- memory planning */
typedef struct {
    int64_t batch, seq_q, seq_k, heads_q, heads_kv, dim_qk, dim_v;
} ringattn_shape;

/* Per-member private bytes, by buffer, for one call; no allocation. */
typedef struct {
    int ring_size;
    int64_t chunk_q, chunk_k;        /* largest query / key chunk of a member                   */
    size_t q_bytes;                  /* Q_i (and dO_i in backward)                              */
    size_t acc_bytes;                /* forward: running O_i; backward: dQ_i                    */
    size_t row_bytes;                /* forward: m_i, l_i; backward: lse_i, D_i                 */
    size_t kv_bytes;                 /* two K/V buffers (current + the one being received)      */
    size_t dkv_bytes;                /* backward: two travelling dK/dV buffers                  */
    size_t member_bytes;             /* the sum of the above: what each member owns at its peak */
    int num_threads;                 /* threads the call will use (<= p members x heads)        */
    size_t tile_bytes;               /* scratch of each thread: score tile(s), per-row bounds   */
    size_t shared_bytes;             /* the ring table (one per call, not per member)           */
    size_t total_bytes;              /* p * member_bytes + num_threads * tile_bytes + shared    */
} ringattn_plan_info;

/* pass: 0 forward, 1 backward. Validates like the entry points (without data pointers). */
RINGATTN_API int ringattn_plan(const ringattn_config *cfg, const ringattn_shape *shape,
                               int pass, ringattn_plan_info *plan);

/* Every check of a call, without the call: the views, shapes and aliasing of t (pass 0,
   forward: q, k, v, out, lse -- lse may be NULL, t[5..8] unused; pass 1, backward: q, k, v,
   out, lse, dout, dq, dk, dv) and of the config's max_logit (forward) / dbias (backward)
   against them, then the config through ringattn_plan. Returns what
   ringattn_forward / ringattn_backward would return for these arguments before computing
   anything (same status, same error_detail) and, on success, the call's shape in *shape
   (may be NULL). Writes nothing else. The companion headers validate with it, so a GPU or
   MPI call refuses exactly what the CPU refuses, in the same words. */
RINGATTN_API int ringattn_check_call(const ringattn_config *cfg, int pass, const ringattn_tensor *const t[9],
                                     ringattn_shape *shape);

/* Every check of ringattn_forward_kvcache, without the call: the views, shapes, dtypes and
   aliasing of q, out, lse, the cache, the new keys and the partials, cache_seqlens and the
   block table against the cache (read on the host), the splits, and the config. Returns
   what ringattn_forward_kvcache would return before computing anything (same status, same
   error_detail) and, on success, the call's shape in *shape (seq_k = the longest sequence,
   L = cache_seqlens + n_new; may be NULL). Writes nothing else. ringattn_cuda.h validates
   with it. */
RINGATTN_API int ringattn_check_kvcache_call(const ringattn_config *cfg, const ringattn_kvcache *kv,
                                             const ringattn_tensor *q, const ringattn_tensor *out,
                                             const ringattn_tensor *lse, ringattn_shape *shape);

/* ---------------------------------------------------------------- .npy files and comparison */
/* Leave this whole section out with RINGATTN_NO_NPY (define it everywhere). It needs no
   <stdio.h> in your code: files are named by path.

   .npy conventions (NumPy format versions 1.0, 2.0 and 3.0 are read; 1.0 is written, or 2.0
   when a header would not fit 1.0):
     dtypes read   '<f2' '<f4' '<f8' (and '>' big-endian, '=' native) -> F16, F32, F64;
                   '<u2' / '>u2' (also '<i2' / '>i2') -> BF16: the raw bf16 bit pattern stored
                   as a 16-bit integer (NumPy has no bfloat16; in PyTorch write it with
                   t.view(torch.int16).numpy().view(np.uint16), or t.view(torch.uint16));
                   '|u1' (also '|i1') -> FP8_E4M3: the raw fp8 byte (t.view(torch.uint8)); an
                   e5m2 file is read the same way and retyped (arr.t.dtype = RINGATTN_FP8_E5M2:
                   the bytes are the same); '|b1' (NumPy bool) -> BOOL, a mask.
     dtypes written '<f2' '<f4' '<f8', '<u2' for BF16, '|u1' for either fp8 and '|b1' for
                   BOOL: always little-endian.
     order         C and Fortran order are both read: the array's view gets matching strides
                   (nothing is transposed). Arrays are written in C order.
     rank          0 to 4 dimensions; a rank-r array becomes a 4-D view with trailing 1s
                   appended: (b, h, n) -> [b, h, n, 1], which is the lse layout. Saving takes
                   the rank to write and drops the trailing dimensions (which must be 1).
                   A dimension of 0 (an empty array) or a rank above 4 is refused (ESHAPE).
     data          big-endian data is byte-swapped on load: the view is native.
   Every problem with a file (bad magic, unknown version, truncated header or data, a header
   that is not the dict NumPy writes, an unsupported dtype, trailing bytes) returns
   RINGATTN_EFORMAT; a shape whose byte count overflows, RINGATTN_EOVERFLOW; an unreadable or
   unwritable file, RINGATTN_EIO. `cfg` may be NULL; when given, its error_detail receives a
   sentence and its alloc_user is passed to RINGATTN_MALLOC / RINGATTN_FREE. */
#ifndef RINGATTN_NO_NPY

#define RINGATTN_NPY_MAX_HEADER (1 << 20)   /* longer headers are refused (NumPy: 10000) */

typedef struct {
    int version_major, version_minor;   /* 1.0, 2.0 or 3.0                                  */
    ringattn_dtype dtype;
    int big_endian;                     /* byte order of the data in the file               */
    int fortran_order;
    int ndim;                           /* 0..4                                             */
    int64_t dims[4];                    /* the file's shape; unused entries are 1           */
    int64_t count;                      /* elements                                         */
    uint64_t data_offset;               /* bytes before the data (magic + length + header)  */
    uint64_t data_bytes;                /* count * element size                             */
} ringattn_npy_info;

typedef struct {
    ringattn_tensor t;                  /* native-endian data, 4-D view (see above)         */
    ringattn_npy_info info;
    void *alloc_user;                   /* remembered for ringattn_npy_free                 */
} ringattn_npy_array;

/* Parse the header at the start of buf[0..len). Reads nothing past len. */
RINGATTN_API int ringattn_npy_parse_header(const void *buf, size_t len, ringattn_npy_info *info,
                                           const ringattn_config *cfg);
/* A whole .npy image in memory -> a newly allocated array (free with ringattn_npy_free). */
RINGATTN_API int ringattn_npy_decode(const void *buf, size_t len, ringattn_npy_array *arr,
                                     const ringattn_config *cfg);
RINGATTN_API int ringattn_npy_load(const char *path, ringattn_npy_array *arr,
                                   const ringattn_config *cfg);
RINGATTN_API void ringattn_npy_free(ringattn_npy_array *arr);   /* NULL-safe, idempotent */
/* Write t (any strides) as a rank-`ndim` array (1..4; dims ndim..3 of t must be 1).
   encode: into buf[0..cap); *len receives the size needed (call with buf = NULL to ask);
   RINGATTN_EOVERFLOW when cap is too small. No allocation in either. */
RINGATTN_API int ringattn_npy_encode(const ringattn_tensor *t, int ndim, void *buf, size_t cap,
                                     size_t *len, const ringattn_config *cfg);
RINGATTN_API int ringattn_npy_save(const char *path, const ringattn_tensor *t, int ndim,
                                   const ringattn_config *cfg);

/* ---- comparison: is `got` right, how wrong, and where?

   Elements are compared in double. A NaN or an infinity on one side only, or infinities of
   opposite sign, is a "non-finite mismatch" and always fails; NaN against NaN and equal
   infinities (e.g. lse = -inf of a row that sees no key) agree. For finite pairs,
   err = |got - ref| and rel = err / |ref| (inf when ref = 0 and err > 0).
   Verdict:
     policy (a), no baseline given:  every element  err <= atol + rtol * |ref|
     policy (b), a baseline given:   every element  err <= k * max|baseline - ref| + eps
       (FlashAttention's test policy: "no worse than k times the error of a plain f32
       computation of the same case"; the baseline is that computation, e.g. ringattn_forward
       with compute = F32 and ring_size = 1, and ref a high-precision reference).
   pass = no non-finite mismatch and no element outside the active policy.
   Rows that see no key: ringattn's lse is -inf there; other kernels write +inf
   (FlashAttention-2/3) or 0 (PyTorch's CPU flash kernel). policy.empty_lse says what `got`
   may hold where `ref` is -inf: exactly -inf (RINGATTN_EMPTY_LSE_NEG_INF, 0, the default),
   +inf, 0, or anything (the element is not judged). Start a policy from
   ringattn_compare_default_policy() so that fields added later get their defaults. */
enum { RINGATTN_EMPTY_LSE_NEG_INF = 0, RINGATTN_EMPTY_LSE_POS_INF = 1, RINGATTN_EMPTY_LSE_ZERO = 2,
       RINGATTN_EMPTY_LSE_ANY = 3 };
/* How policy (b) uses the baseline (docs/golden.md: sources, formulas, when to use which);
   E = max(max|baseline - ref|, baseline_err, storage floor), the storage floor one ulp of
   got's dtype at max|ref|: the resolution of a result stored in that dtype (FlashAttention's
   tests measure against the reference stored in it, where any inexact element errs by a
   whole ulp), so no baseline of that dtype sets a bound below it:
     FA2  (FlashAttention 2's tests)  every |got - ref| <= k E + eps
     FA3  (FlashAttention 3 / 4)      every |got - ref| <= k E + floor + eps, floor =
          2 max|(ref + 0.3 - 0.3) - ref| with ref and each step rounded to got's dtype: the
          reference's own rounding floor
     MAGI (MagiAttention)             max|got - ref| <= k E + eps, and the fraction of
          elements outside atol + rtol |ref| at most min(max(k x the baseline's, 0.005), 0.75)
     FLEX (PyTorch FlexAttention)     mean|got - ref| <= k max(mean|baseline - ref|,
          baseline_err) + eps (the mean over finite pairs)
     TE   (TransformerEngine's context-parallel tests) no baseline: policy (a) with its fixed
          atol = rtol by dtype (ringattn_compare_rule_policy)                                */
enum { RINGATTN_RULE_FA2 = 0, RINGATTN_RULE_FA3 = 1, RINGATTN_RULE_MAGI = 2, RINGATTN_RULE_FLEX = 3,
       RINGATTN_RULE_TE = 4 };
typedef struct {
    double atol, rtol;                  /* policy (a); MAGI's mismatch test                 */
    double k, eps;                      /* policy (b)                                       */
    int empty_lse;                      /* RINGATTN_EMPTY_LSE_*: got where ref is -inf      */
    int rule;                           /* RINGATTN_RULE_* (default FA2; TE: policy (a))    */
    double baseline_err;                /* >= 0: the error of a second baseline (another
                                           order of the same computation), in the rule's
                                           measure (FLEX: mean, else max); the rule takes
                                           the larger, so one lucky sample cannot set it     */
    double baseline_mismatch;           /* MAGI, >= 0: that second baseline's mismatch
                                           fraction; the larger of the two counts            */
} ringattn_compare_policy;

/* atol/rtol by got's storage dtype (torch.testing.assert_close's defaults: f64 1e-7/1e-7,
   f32 1e-5/1.3e-6, f16 1e-5/1e-3, bf16 1e-5/1.6e-2), k = 2, eps = 1e-6, empty_lse -inf */
RINGATTN_API ringattn_compare_policy ringattn_compare_default_policy(ringattn_dtype got);

/* A rule's own constants for one tensor (what = "out", "lse", "dq", "dk", "dv"; NULL = out)
   stored as got, from the suite it comes from (docs/golden.md):
     FA2   k 2 on out and lse, 3 on dq, dk, dv (FlashAttention 2's test_flash_attn_output), eps 1e-6
     FA3   k 2, 3 with a softcap; eps 0, 3e-4 on gradients with a softcap
     MAGI  k 2 (both the L-inf ratio and the mismatch ratio), eps 0, atol 1e-8, rtol by tensor:
           out 0.05, lse 0.001, dq 0.3 (f16 0.2), dk 0.15 (f16 0.08), dv 0.05
     FLEX  k 1.1 (10 when got is f32), eps 0
     TE    atol = rtol 2.5e-2 for bf16 (3.5e-2 with gqa), 5e-3 for f16, else the dtype's default
   Other fields as ringattn_compare_default_policy(got). An unknown rule gives the default. */
RINGATTN_API ringattn_compare_policy ringattn_compare_rule_policy(int rule, ringattn_dtype got, const char *what,
                                                                 int softcap, int gqa);

#define RINGATTN_COMPARE_KEEP 8         /* mismatches remembered, in index order            */

typedef struct {
    int64_t count;                      /* elements compared                                */
    double max_abs;                     /* max |got - ref| over finite pairs                */
    int64_t max_abs_at[4];              /* its position (b, n, h, d); -1s when none         */
    double max_abs_got, max_abs_ref;
    double max_rel;                     /* max err / |ref|                                  */
    int64_t max_rel_at[4];
    double max_rel_got, max_rel_ref;
    int64_t nonfinite_mismatch;         /* NaN / Inf on one side only                       */
    int64_t outside;                    /* elements failing the active policy (incl. above) */
    int policy;                         /* 'a' (atol/rtol) or 'b' (baseline)                */
    double baseline_max_abs;            /* (b): max |baseline - ref|, else 0                */
    double bound;                       /* (b): what the rule allows (FLEX: of the mean)    */
    double mean_abs;                    /* mean |got - ref| over finite pairs               */
    double baseline_mean_abs;           /* (b): mean |baseline - ref|                       */
    double floor;                       /* FA3: 2 max|(ref + 0.3 - 0.3) - ref| in got's type */
    double storage_floor;               /* (b): one ulp of got's dtype at max|ref|           */
    double mismatch, baseline_mismatch; /* MAGI: fractions outside atol + rtol |ref|        */
    double mismatch_limit;              /* MAGI: min(max(k baseline_mismatch, 0.005), 0.75) */
    ringattn_compare_policy used;       /* the policy applied                               */
    int kept;                           /* entries of bad[] filled                          */
    struct { int64_t at[4]; double got, ref, err, allowed; } bad[RINGATTN_COMPARE_KEEP];
    int pass;                           /* the verdict: 1 within tolerance, 0 not           */
} ringattn_compare_result;

/* got, ref (and baseline) must have the same shape; any dtypes and strides. policy NULL =
   ringattn_compare_default_policy(got->dtype). Returns RINGATTN_OK (then see res->pass), or
   an error (ENULL, ESHAPE, EDTYPE; ECONFIG for an unknown policy->empty_lse) with res
   untouched. */
RINGATTN_API int ringattn_compare(const ringattn_tensor *got, const ringattn_tensor *ref,
                                  const ringattn_tensor *baseline,
                                  const ringattn_compare_policy *policy,
                                  ringattn_compare_result *res, const ringattn_config *cfg);

/* A readable multi-line report into buf (always NUL-terminated; truncated to size). `axes`
   names the 4 indices, e.g. "bnhd" (default when NULL) or "bhn." for lse. Returns the length
   the full report needs, like snprintf. */
RINGATTN_API size_t ringattn_compare_format(const ringattn_compare_result *res, const char *axes,
                                            char *buf, size_t size);

#endif /* RINGATTN_NO_NPY */

/* ======================================================================================== */
/*           SHARED INTERNALS - not API: the rules ringattn_cuda.h compiles too                */
/* ======================================================================================== */
/* The API ends above. From here to the end of the declarations: internals (ringattn__*
   names, no stability promised) that sit outside the implementation block because
   ringattn_cuda.h's kernels (host and device code, compiled by nvcc) and ringattn_mpi.h use
   the very rules of the CPU ring, whether or not their translation unit holds the
   implementation: which keys a query sees, the element conversions and the precision
   emulation's rounding, the problem resolved from a config, the partition and dilated-pattern
   geometry, the scalar core of the merge, the exp. Each is written once, here. */

/* ---------------------------------------------------------------- the visibility rule
   The one place that says which keys a query may see. */
#ifdef __CUDACC__   /* what follows is compiled for the host and the GPU alike */
#define RINGATTN__HD __host__ __device__
#else
#define RINGATTN__HD
#endif
static RINGATTN__HD inline int64_t ringattn__floordiv(int64_t a, int64_t b)     /* b > 0 */
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}
/* Narrows the key columns [*a, *z) of a run of keys at positions ka, ka + kps, ... to those a
   query at position qpos sees: key j is visible iff j <= qpos + off (causal), and within
   [qpos + off - wl, qpos + off + wr] (a window; -1 = unbounded on that side; causal implies
   wr = 0). off aligns the mask (bottom-right: nk - nq; top-left: 0; per sequence in varlen). */
static RINGATTN__HD inline void ringattn__visible(int causal, int64_t wl, int64_t wr, int64_t off,
                                                  int64_t qpos, int64_t ka, int64_t kps,
                                                  int64_t *a, int64_t *z)
{
    if (causal || wr >= 0) {                  /* newest key allowed */
        int64_t u = ringattn__floordiv(qpos + off + (wr >= 0 && !causal ? wr : 0) - ka, kps) + 1;
        if (u < *z) *z = u;
    }
    if (wl >= 0) {                            /* oldest key allowed */
        int64_t u = -ringattn__floordiv(-(qpos + off - wl - ka), kps);   /* ceil */
        if (u > *a) *a = u;
    }
    if (*z < *a) *z = *a;
}

/* ---------------------------------------------------------------- element conversion */
/* f16 and bf16 are storage formats only: loaded to double exactly, stored with one
   round-to-nearest-even from double (never double rounding through float). Both work on the
   bits (a 16-bit float's fields moved into a double's; the double's 53-bit significand cut
   to the target's with the dropped bits deciding the rounding): the packing of bf16 / f16
   inputs and the precision emulation convert every element, and frexp / ldexp / rint cost
   three to four times as much. tests/test_convert.c holds them to the plain ldexp / rint formulas,
   every 16-bit pattern and the rounding boundaries between them. */

/* a double's bits and back (memcpy: the type pun C, C++ and CUDA device code all define) */
static RINGATTN__HD inline uint64_t ringattn__bits(double x) { uint64_t u; memcpy(&u, &x, sizeof u); return u; }
static RINGATTN__HD inline double ringattn__from_bits(uint64_t u) { double x; memcpy(&x, &u, sizeof x); return x; }

static RINGATTN__HD inline double ringattn__small_float_to_double(uint16_t bits, int mant_bits, int exp_bits)
{
    int bias = (1 << (exp_bits - 1)) - 1, emax = (1 << exp_bits) - 1;
    int e = (bits >> mant_bits) & emax;
    uint64_t m = (uint64_t)(bits & ((1 << mant_bits) - 1)), sign = (uint64_t)(bits >> 15) << 63;
    if (e == emax) return m ? (double)NAN : ringattn__from_bits(sign | 0x7FF0000000000000ull);
    if (e == 0) {                               /* subnormal (or zero): m * 2^(1 - bias - mant_bits) */
        double x = (double)m * ringattn__from_bits((uint64_t)(1023 + 1 - bias - mant_bits) << 52);
        return sign ? -x : x;
    }
    return ringattn__from_bits(sign | ((uint64_t)(e - bias + 1023) << 52) | (m << (52 - mant_bits)));
}

/* the same values as floats, for the packing's loops (every bf16 and f16 is a float: exact).
   bf16 is a float's upper half; f16 moves its fields into a float's, a subnormal f16 is
   m 2^-24. A NaN gives the one quiet NaN ringattn__small_float_to_double gives. */
static RINGATTN__HD inline float ringattn__bits_to_float(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }

static RINGATTN__HD inline float ringattn__bf16_to_float(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    return ringattn__bits_to_float((u & 0x7FFFFFFFu) > 0x7F800000u ? 0x7FC00000u : u);
}

static RINGATTN__HD inline float ringattn__f16_to_float(uint16_t b)
{
    uint32_t sign = (uint32_t)(b >> 15) << 31, e = (b >> 10) & 31u, m = b & 1023u;
    if (e == 0) {                               /* zero or subnormal: m 2^-24, exact */
        float x = (float)m * 5.9604644775390625e-8f;
        return sign ? -x : x;
    }
    if (e == 31) return ringattn__bits_to_float(m ? 0x7FC00000u : sign | 0x7F800000u);
    return ringattn__bits_to_float(sign | ((e + 112u) << 23) | (m << 13));   /* rebias 15 -> 127 */
}

static RINGATTN__HD inline uint16_t ringattn__double_to_small_float(double x, int mant_bits, int exp_bits)
{
    int bias = (1 << (exp_bits - 1)) - 1, emax = (1 << exp_bits) - 1, e, shift;
    uint64_t u = ringattn__bits(x), a = u & 0x7FFFFFFFFFFFFFFFull, q;
    uint16_t sign = (uint16_t)((u >> 63) << 15);
    if (a > 0x7FF0000000000000ull) return (uint16_t)(sign | (emax << mant_bits) | (1 << (mant_bits - 1)));  /* NaN */
    if (a == 0x7FF0000000000000ull) return (uint16_t)(sign | (emax << mant_bits));   /* infinity */
    if ((a >> 52) == 0) return sign;            /* zero, or a double subnormal: below any quantum here */
    e = (int)(a >> 52) - 1023;                  /* |x| = sig * 2^(e - 52), sig in [2^52, 2^53) */
    shift = 52 - mant_bits;                     /* significand bits below the target's last */
    if (e >= 1 - bias && e <= bias) {           /* a normal target (the common case), on the bits:  */
        q = (a + (1ull << (shift - 1)) - 1 + ((a >> shift) & 1)) >> shift;   /* to nearest even; a */
        q -= (uint64_t)(1023 - bias) << mant_bits;   /* carry runs into the exponent; rebias        */
        if (q >= (uint64_t)emax << mant_bits) return (uint16_t)(sign | (emax << mant_bits));   /* inf */
        return (uint16_t)(sign | q);
    }
    if (e < 1 - bias) { shift += 1 - bias - e; e = 1 - bias; }   /* subnormal: fixed quantum */
    if (shift > 54) q = 0;                      /* under half the quantum */
    else {
        uint64_t sig = (a & 0xFFFFFFFFFFFFFull) | (1ull << 52), half = 1ull << (shift - 1);
        uint64_t rem = sig & ((1ull << shift) - 1);
        q = sig >> shift;
        if (rem > half || (rem == half && (q & 1))) q++;   /* one rounding, to nearest even */
    }
    if (q >= (2ull << mant_bits)) { q >>= 1; e += 1; }     /* carried into the exponent */
    if (e + bias >= emax) return (uint16_t)(sign | (emax << mant_bits));   /* overflow: inf */
    if (q < (1ull << mant_bits))                /* subnormal (or rounded up to the smallest normal) */
        return (uint16_t)(sign | (uint16_t)q);
    return (uint16_t)(sign | ((e + bias) << mant_bits) | ((uint16_t)q & ((1 << mant_bits) - 1)));
}

/* fp8 e4m3fn: S EEEE MMM, bias 7, no infinity; e5m2 goes through the IEEE-like 16-bit path */
static RINGATTN__HD inline double ringattn__e4m3_to_double(uint8_t b)
{
    int e = (b >> 3) & 15, m = b & 7;
    double s = (b & 0x80) ? -1.0 : 1.0;
    if (e == 15 && m == 7) return (double)NAN;
    if (e == 0) return s * ldexp((double)m, -9);
    return s * ldexp((double)(8 + m), e - 10);
}

static RINGATTN__HD inline uint8_t ringattn__double_to_e4m3(double x)
{
    uint8_t sign = (uint8_t)(signbit(x) ? 0x80u : 0u);
    double a = fabs(x), q;
    int e;
    if (x != x || a == (double)INFINITY) return (uint8_t)(sign | 0x7F);   /* no infinity: NaN */
    if (a == 0) return sign;
    (void)frexp(a, &e);
    e -= 1;                                     /* a in [2^e, 2^(e+1)) */
    if (e < -6) e = -6;                         /* subnormal: quantum 2^-9 */
    q = rint(ldexp(a, 3 - e));                  /* one rounding, to nearest even */
    if (q >= 16) { q = ldexp(q, -1); e += 1; }
    if (e > 8 || (e == 8 && q > 14)) return (uint8_t)(sign | 0x7F);   /* beyond 448: NaN */
    if (q < 8) return (uint8_t)(sign | (uint8_t)q);
    return (uint8_t)(sign | (uint8_t)((e + 7) << 3) | ((uint8_t)q & 7));
}

static RINGATTN__HD inline double ringattn__e5m2_to_double(uint8_t b)
{
    return ringattn__small_float_to_double((uint16_t)(((b & 0x80) << 8) | (b & 0x7F)), 2, 5);
}

static RINGATTN__HD inline uint8_t ringattn__double_to_e5m2(double x)
{
    uint16_t h = ringattn__double_to_small_float(x, 2, 5);
    return (uint8_t)(((h >> 8) & 0x80) | (h & 0x7F));
}

static RINGATTN__HD inline size_t ringattn__dtype_size(ringattn_dtype t)
{
    return (t == RINGATTN_F64) ? 8 : (t == RINGATTN_F32) ? 4 :
           (t == RINGATTN_FP8_E4M3 || t == RINGATTN_FP8_E5M2 || t == RINGATTN_BOOL) ? 1 : 2;
}

static RINGATTN__HD inline double ringattn__load(const void *base, ringattn_dtype t, int64_t i)
{
    switch (t) {
    case RINGATTN_F32: return ((const float *)base)[i];
    case RINGATTN_F64: return ((const double *)base)[i];
    case RINGATTN_F16: return ringattn__small_float_to_double(((const uint16_t *)base)[i], 10, 5);
    case RINGATTN_FP8_E4M3: return ringattn__e4m3_to_double(((const uint8_t *)base)[i]);
    case RINGATTN_FP8_E5M2: return ringattn__e5m2_to_double(((const uint8_t *)base)[i]);
    default:           return ringattn__small_float_to_double(((const uint16_t *)base)[i], 7, 8);
    }
}

static RINGATTN__HD inline void ringattn__store(void *base, ringattn_dtype t, int64_t i, double x)
{
    switch (t) {
    case RINGATTN_F32: ((float *)base)[i] = (float)x; break;
    case RINGATTN_F64: ((double *)base)[i] = x; break;
    case RINGATTN_F16: ((uint16_t *)base)[i] = ringattn__double_to_small_float(x, 10, 5); break;
    case RINGATTN_FP8_E4M3: ((uint8_t *)base)[i] = ringattn__double_to_e4m3(x); break;
    case RINGATTN_FP8_E5M2: ((uint8_t *)base)[i] = ringattn__double_to_e5m2(x); break;
    default:           ((uint16_t *)base)[i] = ringattn__double_to_small_float(x, 7, 8); break;
    }
}

/* the descale factor of batch bb, k/v head kh (FlashAttention 3's q/k/v_descale) */
static RINGATTN__HD inline double ringattn__descale(const double *d, int n, int64_t hk, int64_t bb, int64_t kh)
{
    return d ? d[n == 1 ? 0 : bb * hk + kh] : 1.0;
}

/* x rounded to storage type t and read back (one round-to-nearest-even: the precision
   emulation's only rounding rule, ringattn_config.round_p / round_state) */
static RINGATTN__HD inline double ringattn__round(double x, ringattn_dtype t)
{
    switch (t) {
    case RINGATTN_F32: return (double)(float)x;
    case RINGATTN_F16: return ringattn__small_float_to_double(ringattn__double_to_small_float(x, 10, 5), 10, 5);
    case RINGATTN_BF16: return ringattn__small_float_to_double(ringattn__double_to_small_float(x, 7, 8), 7, 8);
    case RINGATTN_FP8_E4M3: return ringattn__e4m3_to_double(ringattn__double_to_e4m3(x));
    case RINGATTN_FP8_E5M2: return ringattn__e5m2_to_double(ringattn__double_to_e5m2(x));
    default: return x;
    }
}

/* ringattn__round(x, t) for a float x and t = bf16 / f16, on the float's bits: the precision
   emulation rounds every P (and S, dS) of an f32-compute call through it. Round to nearest
   even at the target's quantum: bf16 keeps the float's exponent range, so 16 bits are cut
   with the carry running into the exponent (and to infinity past the largest bf16); f16
   cuts 13 bits of a normal result, counts quanta of 2^-24 below 2^-14 (its subnormals), and
   overflows to infinity from 65520. tests/test_convert.c checks it against ringattn__round. */
static RINGATTN__HD inline float ringattn__round_float(float x, ringattn_dtype t)
{
    uint32_t u, a;
    float y;
    memcpy(&u, &x, sizeof u);
    a = u & 0x7FFFFFFFu;
    if (t != RINGATTN_BF16 && t != RINGATTN_F16) return (float)ringattn__round(x, t);
    if (t == RINGATTN_BF16) {                   /* no branch: a loop of these vectorises */
        u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
        u = a > 0x7F800000u ? 0x7FC00000u : u;  /* NaN: the quiet NaN, as ringattn__round */
        memcpy(&y, &u, sizeof y);
        return y;
    }
    if (a > 0x7F800000u) return (float)NAN;
    if (a >= 0x477FF000u) u = (u & 0x80000000u) | 0x7F800000u;   /* |x| >= 65520: infinity */
    else if (a >= 0x38800000u) u = (u + 0xFFFu + ((u >> 13) & 1u)) & 0xFFFFE000u;   /* a normal f16 */
    else {                                      /* an f16 subnormal, or 0: q 2^-24, q <= 1024 */
        int e = (int)(a >> 23), sh = 126 - e;   /* |x| = sig 2^(e - 150), sig in [2^23, 2^24) */
        uint32_t q = 0;
        if (sh <= 24) {                         /* else under half the quantum */
            uint32_t sig = (a & 0x7FFFFFu) | 0x800000u, rem = sig & ((1u << sh) - 1), half = 1u << (sh - 1);
            q = sig >> sh;
            if (rem > half || (rem == half && (q & 1u))) q++;
        }
        y = (float)q * (1.0f / 16777216.0f);
        memcpy(&a, &y, sizeof a);
        u = (u & 0x80000000u) | a;
    }
    memcpy(&y, &u, sizeof y);
    return y;
}

/* element (i0, i1, i2, i3) of a strided view, as an offset in elements from data */
static RINGATTN__HD inline int64_t ringattn__index(const ringattn_tensor *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3)
{
    return i0 * t->stride[0] + i1 * t->stride[1] + i2 * t->stride[2] + i3 * t->stride[3];
}

/* ---------------------------------------------------------------- the problem, resolved */

typedef struct {
    int64_t b, nq, nk, h, hk, d, dv;
    int64_t heads_per_kv;          /* h / hk: q heads sharing one k/v head (GQA)              */
    double scale;
    double softcap;                /* > 0: logits become softcap * tanh(s / softcap)          */
    int64_t causal_off;            /* key j visible to query i iff j <= i + causal_off ...    */
    int64_t aoff;                  /* ALiBi: distance |i + aoff - j| (nk - nq; a KV-cache
                                      split sets both to its place in the whole sequence)    */
    int causal;                    /* ... when causal != 0                                    */
    int64_t wl, wr;                /* window, -1 = unbounded, aligned like causal_off         */
    ringattn_dtype ct;             /* compute dtype                                           */
    size_t es;                     /* its element size                                        */
    int p, nt;                     /* ring members, threads                                   */
    int64_t units;                 /* work units of one member: (batch, k/v head) pairs       */
    int64_t cq, ck;                /* largest query / key chunk                               */
    int64_t tq, tk;                /* score tile                                              */
    int groups;                    /* dilated groups, 0 = dense                               */
    const int64_t *seg, *rate;
    ringattn_mix mix;
    ringattn_partition part;       /* how positions are dealt to members                      */
    int causal_mode;               /* RINGATTN_CAUSAL_* as given (varlen aligns per sequence)  */
    int nseq;                      /* varlen: packed sequences, 0 = off                       */
    const int64_t *cuq, *cuk;      /* their cumulative lengths (num_seqs + 1 entries)         */
    int round_p, round_s, round_block, round_state;   /* precision emulation (config round_*)   */
    ringattn_dtype pt, bt, st;     /* ... to these storage types: P (and S), block, state      */
    const double *qds, *kds, *vds; /* fp8 descale factors (NULL = 1), nds of each: 1 or b * hk */
    int nds;
    /* score options (ringattn_config's; all NULL / 0 when off) */
    const double *sinks;           /* h sink logits                                           */
    const double *alibi;           /* ALiBi slopes, nalibi of them: h or b * h                */
    int nalibi;
    const ringattn_tensor *bias, *mask;
    int (*mask_fn)(void *, int64_t, int64_t, int64_t, int64_t);
    int (*mask_block_fn)(void *, int64_t, int64_t, const int64_t *, int64_t, const int64_t *, int64_t,
                         unsigned char *);
    void *mask_user;
    const int64_t *docq, *dock;    /* document ids                                            */
    int modify;                    /* 1: a bias or ALiBi term is added to the scores          */
    int emask;                     /* 1: a mask beyond the interval rules (mask, callbacks,
                                      documents): tiles are cut by ringattn__tile_mask        */
    int docs_sorted;               /* the keys' document ids non-decreasing: each row's
                                      document is one key interval, found by bisection        */
    int pairs;                     /* 1: some pair mask is asked pair by pair (mask,
                                      callbacks, unsorted document ids)                       */
    int max_logit, dbias;          /* 1: the optional outputs are wanted                      */
} ringattn__problem;

/* chunk i of n tokens cut into p chunks; sizes differ by at most one */
static RINGATTN__HD inline int64_t ringattn__chunk_begin(int64_t n, int p, int i)
{
    int64_t base = n / p, rem = n % p;
    return (int64_t)i * base + (i < rem ? i : rem);
}

/* A piece of a member's share of the sequence: positions pos0 + t*stride, t < count, held in
   buffer rows row0 + t. Contiguous: one piece, chunk i of p. Zigzag (ring-flash-attn): chunks
   i and 2p-1-i of 2p, so every member has early and late positions and causal work is
   balanced. Striped (Striped Attention): positions i, i+p, i+2p, ... */
typedef struct { int64_t pos0, count, stride, row0; } ringattn__piece;

static RINGATTN__HD inline int ringattn__pieces(ringattn_partition part, int64_t n, int p, int i, ringattn__piece pc[2])
{
    if (part == RINGATTN_STRIPED) {
        pc[0].pos0 = i; pc[0].stride = p; pc[0].row0 = 0;
        pc[0].count = (n > i) ? (n - i + p - 1) / p : 0;
        return 1;
    }
    if (part == RINGATTN_ZIGZAG) {
        int j = 2 * p - 1 - i;
        pc[0].pos0 = ringattn__chunk_begin(n, 2 * p, i); pc[0].stride = 1; pc[0].row0 = 0;
        pc[0].count = ringattn__chunk_begin(n, 2 * p, i + 1) - pc[0].pos0;
        pc[1].pos0 = ringattn__chunk_begin(n, 2 * p, j); pc[1].stride = 1; pc[1].row0 = pc[0].count;
        pc[1].count = ringattn__chunk_begin(n, 2 * p, j + 1) - pc[1].pos0;
        return 2;
    }
    pc[0].pos0 = ringattn__chunk_begin(n, p, i); pc[0].stride = 1; pc[0].row0 = 0;
    pc[0].count = ringattn__chunk_begin(n, p, i + 1) - pc[0].pos0;
    return 1;
}

static RINGATTN__HD inline int64_t ringattn__piece_rows(const ringattn__piece *pc, int np)
{
    return np == 2 ? pc[0].count + pc[1].count : pc[0].count;
}

/* the ring's source: member i holds the K/V chunk of member (i - t) mod p at step t */
static RINGATTN__HD inline int ringattn__source(int p, int i, int t)
{
    return ((i - t) % p + p) % p;
}

/* LongNet head groups: h heads into G contiguous groups, the first h mod G one head larger */
static RINGATTN__HD inline int ringattn__head_group(int64_t h, int G, int64_t head)
{
    int64_t base = h / G, rem = h % G;
    if (head < rem * (base + 1)) return (int)(head / (base + 1));
    return (int)(rem + (head - rem * (base + 1)) / base);
}

/* The rows of a piece inside a segment: positions in [sb, se) congruent to sb + o modulo r
   (r > 1 only for dilated patterns, which need stride-1 pieces). Returns the count, and the
   first position, its buffer row, and the position / buffer strides of the run. */
static RINGATTN__HD inline int64_t ringattn__run(const ringattn__piece *pc, int64_t sb, int64_t se, int64_t o,
                             int64_t r, int64_t *first, int64_t *row, int64_t *ps, int64_t *bs)
{
    int64_t lo = pc->pos0, hi = pc->pos0 + (pc->count - 1) * pc->stride + 1, a, from, to, t0, t1;
    if (pc->count <= 0) return 0;
    if (pc->stride == 1) {   /* a contiguous piece: the pattern's positions in it */
        a = sb + o; from = (lo > a) ? lo : a; to = (hi < se) ? hi : se;
        a += ((from - a + r - 1) / r) * r;
        *first = a; *row = pc->row0 + (a - pc->pos0); *ps = r; *bs = r;
        return (a < to) ? (to - 1 - a) / r + 1 : 0;
    }
    /* a strided piece (striped partition; dense only): its positions inside [sb, se) */
    from = (sb > lo) ? sb : lo;
    t0 = (from - pc->pos0 + pc->stride - 1) / pc->stride;
    t1 = (se <= pc->pos0) ? 0 : (se - pc->pos0 + pc->stride - 1) / pc->stride;
    if (t1 > pc->count) t1 = pc->count;
    *first = pc->pos0 + t0 * pc->stride; *row = pc->row0 + t0; *ps = pc->stride; *bs = 1;
    return (t1 > t0) ? t1 - t0 : 0;
}

/* Segment j of a pattern: the query and key positions that may attend to each other, and the
   causal offset inside it. Dense: one segment, everything. Dilated: [j*s, (j+1)*s) for both.
   Varlen: sequence j, [cu_q[j], cu_q[j+1]) against [cu_k[j], cu_k[j+1]), causal alignment
   per sequence. */
typedef struct { int64_t qb, qe, kb, ke, off; } ringattn__segment;

static RINGATTN__HD inline void ringattn__segment_at(const ringattn__problem *P, int64_t seglen, int64_t j,
                                 ringattn__segment *S)
{
    if (P->nseq > 0) {
        S->qb = P->cuq[j]; S->qe = P->cuq[j + 1]; S->kb = P->cuk[j]; S->ke = P->cuk[j + 1];
        S->off = (P->causal_mode == RINGATTN_CAUSAL_TOP_LEFT) ? S->kb - S->qb : S->ke - S->qe;
    } else if (seglen > 0) {
        S->qb = S->kb = j * seglen; S->qe = S->ke = (j + 1) * seglen; S->off = 0;
    } else {
        S->qb = 0; S->qe = P->nq; S->kb = 0; S->ke = P->nk; S->off = P->causal_off;
    }
}

/* ALiBi's offset of segment S: the distance of query qpos and key kpos is |qpos + aoff - kpos|
   with aoff = nk - nq, or per sequence (ke - qe) in varlen */
static RINGATTN__HD inline int64_t ringattn__segment_aoff(const ringattn__problem *P, const ringattn__segment *S)
{
    return P->nseq > 0 ? S->ke - S->qe : P->aoff;
}

/* Split s of a sequence of L keys (ringattn_forward_kvcache): keys [*k0, *k1), c =
   ceil(L / num_splits) keys each (num_splits 0 or 1: one split), or c = split_size when
   split_size > 0; empty (*k0 == *k1) past the last key. */
static RINGATTN__HD inline void ringattn__split_bounds(int64_t L, int64_t num_splits, int64_t split_size, int64_t s,
                                                       int64_t *k0, int64_t *k1)
{
    int64_t S = num_splits > 1 ? num_splits : 1;
    int64_t c = split_size > 0 ? split_size : (L + S - 1) / S;
    *k0 = s * c < L ? s * c : L;
    *k1 = *k0 + c < L ? *k0 + c : L;
}

/* The patterns a head takes (dense and head groups: one; the LSE mix: all G), and pattern ip
   of head hh: its segment length (0 = dense: one segment), dilation rate and offset. */
static RINGATTN__HD inline int ringattn__patterns(const ringattn__problem *P)
{
    return (P->groups == 0 || P->mix == RINGATTN_MIX_HEAD_GROUPS) ? 1 : P->groups;
}

static RINGATTN__HD inline void ringattn__pattern(const ringattn__problem *P, int64_t hh, int ip,
                                                  int64_t *seglen, int64_t *rate, int64_t *off)
{
    *seglen = 0; *rate = 1; *off = 0;
    if (P->groups > 0) {
        int g = (P->mix == RINGATTN_MIX_LSE) ? ip : ringattn__head_group(P->h, P->groups, hh);
        *seglen = P->seg[g]; *rate = P->rate[g];
        *off = (P->mix == RINGATTN_MIX_LSE) ? hh % *rate : g % *rate;
    }
}

/* The segments j0 .. j1 that a query piece and a key piece (both non-empty) may share:
   varlen, every sequence; dilated, those both touch; dense, the one. */
static RINGATTN__HD inline void ringattn__segment_range(const ringattn__problem *P, int64_t seglen,
                                                        const ringattn__piece *qp, const ringattn__piece *kq,
                                                        int64_t *j0, int64_t *j1)
{
    *j0 = 0; *j1 = 0;
    if (P->nseq > 0) *j1 = P->nseq - 1;
    else if (seglen > 0) {
        int64_t qlast = qp->pos0 + (qp->count - 1) * qp->stride;
        int64_t klast = kq->pos0 + (kq->count - 1) * kq->stride;
        *j0 = qp->pos0 / seglen; if (kq->pos0 / seglen > *j0) *j0 = kq->pos0 / seglen;
        *j1 = qlast / seglen; if (klast / seglen < *j1) *j1 = klast / seglen;
    }
}

/* the span of a member's pieces: its first position and its last position + 1 */
static RINGATTN__HD inline void ringattn__span(const ringattn__piece *pc, int np, int64_t *first, int64_t *end)
{
    *first = pc[0].pos0;
    *end = pc[np - 1].pos0 + (pc[np - 1].count - 1) * pc[np - 1].stride + 1;
}

/* 1/G for the seed's head-group mix, else 1 */
static RINGATTN__HD inline double ringattn__group_div(const ringattn__problem *P)
{
    return (P->groups > 0 && P->mix == RINGATTN_MIX_HEAD_GROUPS) ? 1.0 / P->groups : 1.0;
}

/* The fields of the problem read straight off a config and shape that ringattn_plan accepts
   (P zeroed by the caller); the ring geometry (p, cq, ck), threads and tiles come after
   (ringattn__size_ring). */
static inline void ringattn__problem_set(ringattn__problem *P, const ringattn_config *cfg, const ringattn_shape *s)
{
    P->b = s->batch; P->nq = s->seq_q; P->nk = s->seq_k; P->h = s->heads_q; P->hk = s->heads_kv;
    P->d = s->dim_qk; P->dv = s->dim_v; P->heads_per_kv = s->heads_q / s->heads_kv;
    P->scale = (cfg->scale != 0) ? cfg->scale : 1.0 / sqrt((double)s->dim_qk);
    P->softcap = cfg->softcap;
    P->causal = cfg->causal != 0;
    P->causal_off = (cfg->causal == RINGATTN_CAUSAL_TOP_LEFT) ? 0 : s->seq_k - s->seq_q;
    P->aoff = s->seq_k - s->seq_q;
    P->wl = cfg->window_left; P->wr = cfg->window_right;
    P->ct = cfg->compute; P->es = ringattn__dtype_size(cfg->compute);
    P->groups = cfg->num_groups; P->seg = cfg->segment_lengths; P->rate = cfg->dilation_rates;
    P->mix = cfg->mix;
    P->part = cfg->partition; P->causal_mode = cfg->causal;
    if (cfg->num_seqs > 0) { P->nseq = cfg->num_seqs; P->cuq = cfg->cu_seqlens_q; P->cuk = cfg->cu_seqlens_k; }
    P->round_p = cfg->round_p; P->pt = cfg->round_p ? cfg->p_dtype : RINGATTN_F64;
    P->round_s = cfg->round_p && cfg->round_s;
    P->round_block = cfg->round_block; P->bt = cfg->round_block ? cfg->block_dtype : RINGATTN_F64;
    if (cfg->descale_size > 0) {
        P->qds = cfg->q_descale; P->kds = cfg->k_descale; P->vds = cfg->v_descale; P->nds = cfg->descale_size;
    }
    P->round_state = cfg->round_state; P->st = cfg->round_state ? cfg->state_dtype : RINGATTN_F64;
    P->sinks = cfg->sinks;
    P->alibi = cfg->alibi_slopes; P->nalibi = cfg->alibi_slopes ? cfg->alibi_size : 0;
    P->bias = cfg->bias; P->mask = cfg->mask;
    P->mask_fn = cfg->mask_fn; P->mask_block_fn = cfg->mask_block_fn; P->mask_user = cfg->mask_user;
    P->docq = cfg->document_ids_q; P->dock = cfg->document_ids_k;
    P->modify = P->bias != NULL || P->alibi != NULL;
    P->emask = P->mask != NULL || P->mask_fn != NULL || P->mask_block_fn != NULL || P->docq != NULL;
    if (P->docq) {
        int64_t j;
        P->docs_sorted = 1;   /* the keys' ids sorted is what bisection needs */
        for (j = 1; j < P->nk && P->docs_sorted; j++) if (P->dock[j] < P->dock[j - 1]) P->docs_sorted = 0;
    }
    P->pairs = P->mask != NULL || P->mask_fn != NULL || P->mask_block_fn != NULL || (P->docq && !P->docs_sorted);
    P->max_logit = cfg->max_logit != NULL;
    P->dbias = cfg->dbias != NULL && cfg->bias != NULL;
}

/* 1 if the config asks for any score option (the entry points that do not take them refuse
   them by this one test) */
static RINGATTN__HD inline int ringattn__has_options(const ringattn_config *cfg)
{
    return cfg->sinks || cfg->dsinks || cfg->alibi_slopes || cfg->bias || cfg->dbias || cfg->mask || cfg->mask_fn ||
           cfg->mask_block_fn || cfg->document_ids_q || cfg->document_ids_k || cfg->max_logit;
}

/* The score options' additive terms of query position qpos and key position kpos of (batch
   bb, q head hh): s + (bias - slope |qpos + aoff - kpos|) (aoff = nk - nq, or the varlen
   sequence's), in double. */
static RINGATTN__HD inline double ringattn__score_add(double s, double bias, double slope, double dist)
{
    return s + (bias - slope * fabs(dist));   /* the one formula; dist an integer, exact in double */
}

/* ALiBi's slope of (bb, hh), 0 without ALiBi */
static RINGATTN__HD inline double ringattn__slope(const ringattn__problem *P, int64_t bb, int64_t hh)
{
    return P->alibi ? P->alibi[P->nalibi == P->h ? hh : bb * P->h + hh] : 0.0;
}

/* the bias's element offset of (bb, hh, qpos, kpos), broadcast axes at 0 */
static RINGATTN__HD inline int64_t ringattn__bias_index(const ringattn_tensor *t, int64_t bb, int64_t hh,
                                                        int64_t qpos, int64_t kpos)
{
    return ringattn__index(t, t->shape[0] == 1 ? 0 : bb, t->shape[1] == 1 ? 0 : hh, qpos, kpos);
}

/* the final score of (bb, hh, qpos, kpos) from s = softcap(scale q.k) */
static RINGATTN__HD inline double ringattn__score_term(const ringattn__problem *P, int64_t bb, int64_t hh,
                                                       int64_t qpos, int64_t kpos, int64_t aoff, double s)
{
    double bias = P->bias ? ringattn__load(P->bias->data, P->bias->dtype,
                                           ringattn__bias_index(P->bias, bb, hh, qpos, kpos)) : 0.0;
    return ringattn__score_add(s, bias, ringattn__slope(P, bb, hh), (double)(qpos + aoff - kpos));
}

/* sorted document ids (P->docs_sorted): the keys of query qpos's document are one interval
   of positions, [*kb, *ke), found by bisection */
static RINGATTN__HD inline void ringattn__doc_keys(const ringattn__problem *P, int64_t qpos, int64_t *kb, int64_t *ke)
{
    int64_t id = P->docq[qpos], lo = 0, hi = P->nk, mid;
    while (lo < hi) { mid = lo + (hi - lo) / 2; if (P->dock[mid] < id) lo = mid + 1; else hi = mid; }
    *kb = lo; hi = P->nk;
    while (lo < hi) { mid = lo + (hi - lo) / 2; if (P->dock[mid] <= id) lo = mid + 1; else hi = mid; }
    *ke = lo;
}

/* sorted document ids: narrows the columns [*a, *z) of a run of keys at positions ka, ka + kps,
   ... to those of query qpos's document (ringattn__doc_keys) */
static RINGATTN__HD inline void ringattn__doc_visible(const ringattn__problem *P, int64_t qpos, int64_t ka, int64_t kps,
                                                      int64_t *a, int64_t *z)
{
    int64_t kb, ke, u, w;
    ringattn__doc_keys(P, qpos, &kb, &ke);
    u = -ringattn__floordiv(-(kb - ka), kps);     /* first column at or after kb */
    w = ringattn__floordiv(ke - 1 - ka, kps) + 1;  /* past the last before ke   */
    if (u > *a) *a = u;
    if (w < *z) *z = w;
}

/* 1 if the dense mask and the document ids let (bb, hh, qpos) see kpos (the callbacks are
   asked apart: they run only on the host) */
static RINGATTN__HD inline int ringattn__pair_visible(const ringattn__problem *P, int64_t bb, int64_t hh,
                                                      int64_t qpos, int64_t kpos)
{
    if (P->docq && P->docq[qpos] != P->dock[kpos]) return 0;
    if (P->mask) {
        const ringattn_tensor *t = P->mask;
        if (!((const unsigned char *)t->data)[ringattn__bias_index(t, bb, hh, qpos, kpos)])
            return 0;
    }
    return 1;
}

/* A finished row (ringattn__member_finish): O = acc / l (times 1/G for head groups) and
   lse = m + log l; a row that saw no key (l == 0) gets O = 0 and lse = -inf. */
static RINGATTN__HD inline double ringattn__finish_out(double acc, double l, double gdiv)
{
    return (l == 0) ? 0.0 : acc / l * gdiv;
}

static RINGATTN__HD inline double ringattn__finish_lse(double m, double l)
{
    return (l == 0) ? -(double)INFINITY : m + log(l);
}

/* D = rowsum(dO o O) of row (bb, pos, hh), in double from the stored tensors: the softmax
   Jacobian's diagonal correction of the backward pass */
static RINGATTN__HD inline double ringattn__row_D(const ringattn_tensor *dout, const ringattn_tensor *out,
                                                  int64_t bb, int64_t pos, int64_t hh, int64_t dv)
{
    double D = 0;
    int64_t c;
    for (c = 0; c < dv; c++)
        D += ringattn__load(dout->data, dout->dtype, ringattn__index(dout, bb, pos, hh, c))
           * ringattn__load(out->data, out->dtype, ringattn__index(out, bb, pos, hh, c));
    return D;
}

/* backward with sinks, head hh: dL/dsinks[hh] = -sum over batches and positions (in this
   order) of exp(sinks[hh] - lse) D, D = rowsum(dO o O): the sink's probability times the
   row's D; 0 for a head without a sink (-inf). ringattn__dsink_part sums the rows x0 <= x <
   x1 of that order (x = batch * nq + position), ringattn__dsink_finish turns a head's sum
   into its gradient (a parallel caller sums parts in order), ringattn__dsink does both. */
static RINGATTN__HD inline double ringattn__dsink_part(const ringattn__problem *P, const ringattn_tensor *lse,
                                                       const ringattn_tensor *dout, const ringattn_tensor *out,
                                                       int64_t hh, int64_t x0, int64_t x1)
{
    double sum = 0;
    int64_t x;
    if (P->sinks[hh] == -(double)INFINITY) return 0.0;   /* no sink: nothing to sum */
    for (x = x0; x < x1; x++) {
        int64_t bb = x / P->nq, pos = x % P->nq;
        sum += exp(P->sinks[hh] - ringattn__load(lse->data, lse->dtype, ringattn__index(lse, bb, hh, pos, 0)))
             * ringattn__row_D(dout, out, bb, pos, hh, P->dv);
    }
    return sum;
}

static RINGATTN__HD inline double ringattn__dsink_finish(const ringattn__problem *P, int64_t hh, double sum)
{
    return P->sinks[hh] == -(double)INFINITY ? 0.0 : -sum;
}

static RINGATTN__HD inline double ringattn__dsink(const ringattn__problem *P, const ringattn_tensor *lse,
                                                  const ringattn_tensor *dout, const ringattn_tensor *out, int64_t hh)
{
    return ringattn__dsink_finish(P, hh, ringattn__dsink_part(P, lse, dout, out, hh, 0, P->b * P->nq));
}

/* backward with dbias, element (tb, th, i, j) of dbias (shape db): the [b][h][nq][nk] score
   gradients g summed over the bias's broadcast axes (batch, then head, ascending) */
static RINGATTN__HD inline double ringattn__dbias_sum(const ringattn__problem *P, const double *g,
                                                      const ringattn_tensor *db, int64_t tb, int64_t th,
                                                      int64_t i, int64_t j)
{
    int64_t bb, hh, nb = db->shape[0] == 1 ? P->b : 1, nh = db->shape[1] == 1 ? P->h : 1;
    double sum = 0;
    for (bb = 0; bb < nb; bb++)
        for (hh = 0; hh < nh; hh++)
            sum += g[(((tb + bb) * P->h + th + hh) * P->nq + i) * P->nk + j];
    return sum;
}

/* Precision emulation (round_state): one row's running state (acc [dv] in compute type ct,
   m, l) held as a port holds (out, lse) between ring steps: out = acc / l rounded to st, lse =
   m + log l rounded to f32 (f64 when st is), then re-expressed as acc = out, m = lse, l = 1,
   which merges on exactly as before (acc / l = out, m + log l = lse). An empty row (l = 0)
   stays empty. */
static RINGATTN__HD inline void ringattn__hold_row(void *acc, ringattn_dtype ct, int64_t dv, double *m, double *l,
                                                   ringattn_dtype st)
{
    int64_t c;
    if (*l == 0) return;
    for (c = 0; c < dv; c++) ringattn__store(acc, ct, c, ringattn__round(ringattn__load(acc, ct, c) / *l, st));
    *m = ringattn__round(*m + log(*l), st == RINGATTN_F64 ? RINGATTN_F64 : RINGATTN_F32);
    *l = 1.0;
}

/* Two partial results of one row merged by their states: (acc, m, l) += (bacc, bm, bl), the
   online softmax on whole partials (a port's per-block merge; the precision emulation's
   round_block), through the same rescale and fold as the tile merge below. */
static RINGATTN__HD inline void ringattn__merge_row(void *acc, ringattn_dtype ct, int64_t dv, double *m, double *l,
                                                    const void *bacc, double bm, double bl);

/* The scalar core of THE merge (ringattn__merge), one row at a time. The running state of a
   row is (m, l, acc); mx is the max of the row's visible scores in the new tile (NaN if it
   saw only NaNs). ringattn__merge_rescale returns 0 when the tile adds nothing to the row
   (every visible score -inf: the state stays as it is); otherwise it sets
     *mnew  = max(m, mx)            (a NaN wins)
     *alpha = exp(m - mnew)         (0 while m = -inf: nothing to rescale yet)
   The caller then forms the weights exp(s_j - mnew), their sum, scales acc by alpha, adds
   the weighted values and folds the sum in with ringattn__merge_fold: l = l alpha + sum,
   m = mnew. */
static RINGATTN__HD inline int ringattn__merge_rescale(double m, double mx, double *mnew, double *alpha)
{
    double mn = (mx > m || mx != mx) ? mx : m;
    if (mn == -(double)INFINITY) return 0;
    *mnew = mn;
    *alpha = (m == -(double)INFINITY) ? 0.0 : exp(m - mn);
    return 1;
}

static RINGATTN__HD inline void ringattn__merge_fold(double *m, double *l, double mnew, double alpha, double sum)
{
    *l = *l * alpha + sum;
    *m = mnew;
}

static RINGATTN__HD inline void ringattn__merge_row(void *acc, ringattn_dtype ct, int64_t dv, double *m, double *l,
                                                    const void *bacc, double bm, double bl)
{
    double mnew, alpha, beta;
    int64_t c;
    if (bl == 0 || !ringattn__merge_rescale(*m, bm, &mnew, &alpha)) return;   /* an empty partial adds nothing */
    beta = exp(bm - mnew);
    for (c = 0; c < dv; c++)
        ringattn__store(acc, ct, c, ringattn__load(acc, ct, c) * alpha + ringattn__load(bacc, ct, c) * beta);
    ringattn__merge_fold(m, l, mnew, alpha, bl * beta);
}

/* The softmax weights' exp, scalar, f32 and f64 (the method and its accuracy: "the exps" in
   the implementation, whose vector versions do the same operations); here, compiled for host
   and device, so that ringattn_cuda.h's kernels give the CPU's bits too. */
#define RINGATTN__EXPF_LOW -87.33654f            /* ln(FLT_MIN): below, exp flushes to 0     */
#define RINGATTN__EXPF_HIGH 88.0f                /* above, x is clamped (exp(88) < FLT_MAX)  */
#define RINGATTN__EXPF_LOG2E 1.44269504f         /* 1 / ln 2                                  */
#define RINGATTN__EXPF_LN2_HI 0.693359375f       /* ln 2 in two parts (Cody-Waite): HI has    */
#define RINGATTN__EXPF_LN2_D 2.12194440e-4f      /* few bits, so n HI is exact; D = HI - ln 2 */
#define RINGATTN__EXPF_MAGIC 12582912.0f         /* 1.5 * 2^23: adding it rounds to an integer */
#define RINGATTN__EXPF_BIAS 127                  /* exponent bias and mantissa bits: 2^n      */
#define RINGATTN__EXPF_MANT 23
#define RINGATTN__EXPF_POLY(p, r, FMA, C)                                                       \
    p = C(1.9875691500e-4f);                                                                  \
    p = FMA(p, r, C(1.3981999507e-3f)); p = FMA(p, r, C(8.3334519073e-3f));                   \
    p = FMA(p, r, C(4.1665795894e-2f)); p = FMA(p, r, C(1.6666665459e-1f));                   \
    p = FMA(p, r, C(5.0000001201e-1f))
#define RINGATTN__EXP_LOW -708.3964185322641     /* the same for f64: ln(DBL_MIN)             */
#define RINGATTN__EXP_HIGH 709.0
#define RINGATTN__EXP_LOG2E 1.4426950408889634
#define RINGATTN__EXP_LN2_HI 6.93145751953125e-1
#define RINGATTN__EXP_LN2_D (-1.42860682030941723212e-6)
#define RINGATTN__EXP_MAGIC 6755399441055744.0   /* 1.5 * 2^52 */
#define RINGATTN__EXP_BIAS 1023
#define RINGATTN__EXP_MANT 52
#define RINGATTN__EXP_POLY(p, r, FMA, C)                                                        \
    p = C(2.08767569878681e-09);                                                              \
    p = FMA(p, r, C(2.505210838544172e-08));  p = FMA(p, r, C(2.755731922398589e-07));         \
    p = FMA(p, r, C(2.7557319223985893e-06)); p = FMA(p, r, C(2.48015873015873e-05));          \
    p = FMA(p, r, C(0.0001984126984126984));  p = FMA(p, r, C(0.001388888888888889));          \
    p = FMA(p, r, C(0.008333333333333333));   p = FMA(p, r, C(0.041666666666666664));         \
    p = FMA(p, r, C(0.16666666666666666));    p = FMA(p, r, C(0.5));                          \
    p = FMA(p, r, C(1.0));                    p = FMA(p, r, C(1.0))
#define RINGATTN__SC(x) (x)

/* exp((a - hi) - lo), f32 */
static RINGATTN__HD inline float ringattn__expf(float a, float hi, float lo)
{
    float x = (a - hi) - lo;
    int low = x < RINGATTN__EXPF_LOW, nan = x != x;
    float xc = low ? RINGATTN__EXPF_LOW : (x > RINGATTN__EXPF_HIGH ? RINGATTN__EXPF_HIGH : (nan ? 0.0f : x));
    float n = fmaf(xc, RINGATTN__EXPF_LOG2E, RINGATTN__EXPF_MAGIC) - RINGATTN__EXPF_MAGIC;
    float r = fmaf(n, RINGATTN__EXPF_LN2_D, fmaf(n, -RINGATTN__EXPF_LN2_HI, xc)), p, e;   /* x - n ln 2 */
    int32_t bits = ((int32_t)n + RINGATTN__EXPF_BIAS) * (1 << RINGATTN__EXPF_MANT);   /* 2^n, n in [-126, 127] */
    memcpy(&e, &bits, sizeof e);
    RINGATTN__EXPF_POLY(p, r, fmaf, RINGATTN__SC);
    p = (fmaf(p, r * r, r) + 1.0f) * e;
    return nan ? x : (low ? 0.0f : p);
}

/* exp(x), f64 */
static RINGATTN__HD inline double ringattn__exp(double x)
{
    int low = x < RINGATTN__EXP_LOW, nan = x != x;
    double xc = low ? RINGATTN__EXP_LOW : (x > RINGATTN__EXP_HIGH ? RINGATTN__EXP_HIGH : (nan ? 0.0 : x));
    double n = fma(xc, RINGATTN__EXP_LOG2E, RINGATTN__EXP_MAGIC) - RINGATTN__EXP_MAGIC;
    double r = fma(n, RINGATTN__EXP_LN2_D, fma(n, -RINGATTN__EXP_LN2_HI, xc)), p, e;
    int64_t bits = ((int64_t)n + RINGATTN__EXP_BIAS) * ((int64_t)1 << RINGATTN__EXP_MANT);   /* 2^n, n in [-1022, 1023] */
    memcpy(&e, &bits, sizeof e);
    RINGATTN__EXP_POLY(p, r, fma, RINGATTN__SC);
    return nan ? x : (low ? 0.0 : p * e);
}



#ifdef __cplusplus
}
#endif
#endif /* RINGATTN_H */

/* ======================================================================================== */
/*                                    IMPLEMENTATION                                        */
/* ======================================================================================== */
#if defined(RINGATTN_IMPLEMENTATION) && !defined(RINGATTN_IMPLEMENTATION_DONE)
#define RINGATTN_IMPLEMENTATION_DONE

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if !defined(RINGATTN_NO_NPY) && (defined(__unix__) || defined(__APPLE__) || defined(_WIN32))
#include <sys/types.h>
#include <sys/stat.h>   /* what a .npy path names: ringattn__npy_path_kind */
#define RINGATTN__HAVE_STAT 1
#endif
#ifdef RINGATTN_USE_CBLAS
#ifndef RINGATTN_CBLAS_HEADER
#define RINGATTN_CBLAS_HEADER <cblas.h>
#endif
#include RINGATTN_CBLAS_HEADER
#endif

#if defined(RINGATTN_MALLOC) && defined(RINGATTN_FREE)
/* user allocator */
#elif !defined(RINGATTN_MALLOC) && !defined(RINGATTN_FREE)
#define RINGATTN_MALLOC(sz, user) ((void)(user), malloc(sz))
#define RINGATTN_FREE(p, user) ((void)(user), free(p))
/* huge pages for a call's block (ringattn__arena_advise): Linux, malloc's memory, and only
   where <sys/mman.h> declares madvise (glibc's default feature set; a strict -std=c99 build
   needs -D_DEFAULT_SOURCE for it) */
#if defined(__linux__) && !defined(RINGATTN_NO_HUGEPAGES)
#include <sys/mman.h>
#ifdef MADV_HUGEPAGE   /* declared with madvise, in the same feature set */
#define RINGATTN__HUGEPAGES 1
#endif
#endif
#else
#error "ringattn.h: define both RINGATTN_MALLOC and RINGATTN_FREE, or neither"
#endif

#ifndef RINGATTN_TILE_Q
#define RINGATTN_TILE_Q 256
#endif
#ifndef RINGATTN_TILE_K
#define RINGATTN_TILE_K 256
#endif
/* compile-time checks that work before C11: a negative array size fails the build */
typedef char ringattn__check_tile_q[(RINGATTN_TILE_Q >= 1) ? 1 : -1];
typedef char ringattn__check_tile_k[(RINGATTN_TILE_K >= 1) ? 1 : -1];
typedef char ringattn__check_int64[(sizeof(int64_t) == 8) ? 1 : -1];

/* OpenMP pragmas through _Pragma so that a build without -fopenmp sees nothing at all
   (a bare #pragma omp would trip -Wunknown-pragmas under -Werror). */
#ifdef _OPENMP
#define RINGATTN__OMP(x) _Pragma(#x)
#else
#define RINGATTN__OMP(x)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Element i of an array of es-byte elements at base: every offset into a buffer of the compute
   type (i < 0 only for a caller's view with negative strides) */
static char *ringattn__at(const void *base, int64_t i, size_t es)
{
    return (char *)base + i * (int64_t)es;
}

/* ---------------------------------------------------------------- the map of this implementation
   The algorithm first, in the order a forward call runs it: THE RING (the loop, one step of a
   member, the hand-off), the unit, blocks and tiles, THE online-softmax merge, moving data
   in and out; then validation, allocation, the entry points, per-step goldens and .npy.
   The PLATFORM CODE (GEMM, exps, fused block kernels, row helpers) is the last section;
   the prototypes below are what the algorithm calls of it. */
#define RINGATTN__PANEL 16        /* keys per K panel                                       */
#define RINGATTN__FUSED_ROWS 12   /* forward rows per group: a fixed size fixes the ragged split */
#define RINGATTN__BWD_ROWS 24     /* backward rows per group: dV and dK sum over them        */

/* Platform code the algorithm calls, defined in PLATFORM CODE at the end of the implementation.
   The kernels the inner loops call go through a table chosen once per call (by the CPU's
   instruction set and the compute type), so the algorithm never asks which one it runs on;
   each entry's formula is written above its plain C version. */
typedef struct {
    const char *name;                                       /* "avx2 f32", ... (for a debugger) */
    /* s[i][j] = scale * sum_c q[i][c] K[j][c], K in panels                                   */
    void (*qk)(int64_t nr, const void *const *q, int64_t d, const void *const *kp, int64_t np,
               double scale, void *const *s);
    /* o[i][c] += sum_j p[i][j] v[j ldv + c]                                                   */
    void (*pv)(int64_t nr, const void *const *p, int64_t n, const void *v, int64_t ldv, int64_t dv,
               void *const *o);
    /* o[j ldo + c] += sum_i p[i ldp + j] x[i ldx + c]                                          */
    void (*pt)(int64_t nr, const void *p, int64_t ldp, int64_t n, const void *x, int64_t ldx,
               int64_t dx, void *o, int64_t ldo);
    double (*row_max)(const void *x, int64_t n);            /* max_j x[j] (NaN if only NaNs)  */
    double (*row_exp)(void *x, int64_t n, double m);        /* x = exp(x - m), returns sum    */
    void (*row_prob)(void *x, int64_t n, double lse);       /* x = exp(x - lse)               */
    void (*row_round)(void *x, int64_t n, ringattn_dtype pt); /* x = x rounded to pt (emulation) */
    /* s4[c mod 4] += x[c]^2 and *big = max(*big, |x[c]|) over the finite x[c] of a float row
       (the range rule's scan, whatever the compute type)                                     */
    void (*norm2)(const float *x, int64_t n, double s4[4], double *big);
    /* y[c] = (float)(x[c] / l * gdiv), l != 0: a row of f32 output (ringattn__finish_out)   */
    void (*row_out)(float *y, const void *x, int64_t n, double l, double gdiv);
} ringattn__kernels;
static const ringattn__kernels *ringattn__kernels_for(ringattn_dtype t);
#ifdef RINGATTN_USE_CBLAS
static void ringattn__gemm(ringattn_dtype t, int ta, int tb, int64_t M, int64_t N, int64_t K,
                           double alpha, const void *A, int64_t lda, const void *B, int64_t ldb,
                           double beta, void *C, int64_t ldc);
#endif
static int64_t ringattn__panel_at(int64_t r, int64_t c, int64_t count, int64_t d);
static void ringattn__row_dsoftmax(ringattn_dtype t, const void *p, void *ds, int64_t n, double D, double scale);
static void ringattn__row_softcap(ringattn_dtype t, void *x, int64_t n, double cap);
static void ringattn__row_dsoftcap(ringattn_dtype t, void *s, void *ds, int64_t n, double lse,
                                   double D, double cap, double scale);
static void ringattn__row_scale(ringattn_dtype t, void *x, int64_t n, double s);
static void ringattn__norm2_d(const double *x, int64_t n, double s4[4], double *big);

/* ---------------------------------------------------------------- the ring's state */

typedef struct {
    ringattn__piece qp[2];         /* my query positions (one or two pieces)                  */
    int nqp;
    int64_t q0, q1;                /* their span: first position, last position + 1           */
    int64_t rows;                  /* number of query rows                                    */
    void *q;                       /* Q_i   [b][h][rows][d]   compute dtype                   */
    union {                        /* the rows' state, as the pass names it:                  */
        struct {                   /* forward (R->pass == 0)                                  */
            void *o;               /*   running O_i, unnormalised [b][h][rows][dv]            */
            double *m, *l;         /*   running row max and sum   [b][h][rows]                */
            double *x;             /*   max_logit wanted: the row max of the scores alone
                                        (m also holds the sink), else NULL                     */
        } fwd;
        struct {                   /* backward (R->pass == 1)                                 */
            void *dq;              /*   dQ_i [b][h][rows][d]                                  */
            double *lse, *D;       /*   the forward's lse, D = rowsum(dO o O)   [b][h][rows]  */
        } bwd;
    } st;
    void *dout;                    /* bwd: dO_i [b][h][rows][dv]                              */
    void *kv[2];                   /* the K|V chunk held, by step parity: K in one slot of ck
                                      rows per (batch, k/v head), then V [b][hk][ck][dv]
                                      row-major. K by pass: forward, each piece of a slot in
                                      16-key panels [d][16] (ringattn__panel_at, what the S
                                      kernel reads); backward, row-major [b][hk][ck][d] (dQ
                                      reads K by rows; a tile's K and V are gathered into
                                      panels as it is computed)                               */
    void *dkv[2];                  /* bwd: travelling dK|dV, row-major [b][hk][ck][d], then
                                      [b][hk][ck][dv]                                         */
    size_t bytes;                  /* private bytes held (measured, through the allocator)    */
    int64_t blocks_computed, blocks_skipped, tiles, handoffs, flops;
    int64_t step_tiles;            /* tiles of the current step (units add to it atomically)  */
    void *block_o;                 /* cfg->trace_blocks: the step's block alone (its O, m, l; */
    double *block_m, *block_l;     /* NULL otherwise)                                         */
} ringattn__member;

/* A thread's scratch: score rows (and dP rows in backward) of one group of rows (whole tiles
   on the backward's cblas path), panels, the visible column bounds [lo, hi) of each tile row,
   and the counters of the unit it is computing. Tiles belong to threads, not members, so
   several threads can work inside one member. */
typedef struct {
    void *s, *dp;                  /* score and (backward) dP rows of one group of rows       */
    int64_t *lo, *hi;
    const void **pan;              /* the K (backward: and V) panels of the tile in hand      */
    void *kg;                      /* panels copied or gathered for it                        */
    int64_t lds;                   /* score row pitch                                         */
    const ringattn__kernels *kern; /* this call's kernels (ringattn__kernels_for)             */
    unsigned char *vis;            /* pair masks (P->pairs): [tq][tk], 1 = visible; row pitch
                                      vnc, block row vr0 and column vc0 at vis[0]             */
    int64_t vr0, vc0, vnc;
    int64_t *qpos, *kpos;          /*   the tile's positions, for mask_block_fn               */
    void *sc;                      /* backward, softcap with a bias or ALiBi: one row's
                                      softcapped scores (the softcap's derivative needs them) */
    double *dbias;                 /* backward with dbias: [b][h][nq][nk], this call's        */
    int failed;                    /* a mask callback's nonzero answer (then nothing is written) */
    size_t bytes;
    int64_t tiles, flops;
} ringattn__scratch;

/* The backward's path: the fused kernels, or, built with RINGATTN_USE_CBLAS and at d >=
   RINGATTN__BWD_BLAS_D, whole tiles through cblas (OpenBLAS's large GEMMs win there; see
   docs/performance.md). One rule for the planner, the allocator and the unit. */
#define RINGATTN__BWD_BLAS_D 128
static int ringattn__bwd_blas(const ringattn__problem *P)
{
#ifdef RINGATTN_USE_CBLAS
    return P->d >= RINGATTN__BWD_BLAS_D;
#else
    (void)P;
    return 0;
#endif
}

/* A thread's scratch, one rule for the planner and the allocator. Score rows (and in the
   backward dP rows) for one group of rows (RINGATTN__FUSED_ROWS forward, RINGATTN__BWD_ROWS
   backward; the cblas backward: whole tiles, no panels), as wide as the panels under
   one key tile (one more when the tile starts mid-panel); room for panels: the forward copies
   a piece's narrow last K panel or gathers a dilated run's (a whole tile's worth), the
   backward gathers a tile's K and V into panels; and the panel pointers. In elements:
   n[0] score, n[1] dP, n[2] panels; n[3] pointers. */
static void ringattn__tile_scratch(const ringattn__problem *P, int pass, int64_t *lds, int64_t n[4])
{
    int g, dilated = 0;
    int64_t npan = (P->tk + RINGATTN__PANEL - 1) / RINGATTN__PANEL + 1;
    if (pass && ringattn__bwd_blas(P)) {   /* whole score and dP tiles, no panels */
        *lds = P->tk;
        n[0] = n[1] = P->tq * P->tk; n[2] = n[3] = 0;
        return;
    }
    for (g = 0; g < P->groups; g++) if (P->rate[g] > 1) dilated = 1;
    *lds = npan * RINGATTN__PANEL;
    n[0] = (pass ? RINGATTN__BWD_ROWS : RINGATTN__FUSED_ROWS) * *lds;
    n[1] = pass ? n[0] : 0;
    n[2] = pass ? npan * RINGATTN__PANEL * (P->d + P->dv) : (dilated ? npan - 1 : 1) * RINGATTN__PANEL * P->d;
    n[3] = pass ? 2 * npan : npan;
}

/* A call's buffers (every member's and thread's) are cut from one block: one RINGATTN_MALLOC
   and one RINGATTN_FREE per call, so an allocator that keeps a block it has seen freed (glibc
   does, below 32 MiB) serves the next call without fresh pages to fault in and unmap. A first
   pass with base NULL adds up the sizes; the same calls then carve the block: arrays of 8-byte
   elements first, then of 4, then bytes, each aligned without padding (exactly the planned
   bytes). A sanitizer sees one block: an overrun from one array into the next shows in the
   results, which the tests hold to the oracle, rather than as a sanitizer's report. */
typedef struct {
    char *base;
    size_t size[3], at[3];        /* bytes of each class (8-, 4-, 1-byte elements); cursors */
} ringattn__arena;

typedef struct {
    const ringattn__problem *P;
    const ringattn_config *cfg;
    ringattn__member *m;
    ringattn__scratch *w;          /* one per thread                                          */
    int pass;                      /* 0 forward, 1 backward                                   */
    size_t kv_bytes;               /* one K|V buffer (and one dK|dV buffer)                   */
    int m0, nm;                    /* members held here, m[0] is member m0: all p of them, or
                                      one MPI rank's                                          */
    int vshift;                    /* forward: V held as 2^-vshift V, the output times 2^vshift
                                      (ringattn__v_shift; 0 for ordinary values)              */
    ringattn__arena blk;           /* the one block every buffer above is cut from            */
} ringattn__ring;

/* member i of the ring; only members m0 .. m0 + nm - 1 live in this process */
static ringattn__member *ringattn__mem(const ringattn__ring *R, int i)
{
    return &R->m[i - R->m0];
}

/* Ragged tiles (the diagonal of a causal mask, a window's edge, a varlen border) are cut into
   groups of up to RINGATTN__GROUP consecutive rows. The columns every row of a group sees go
   through one GEMM; each row's few remaining visible columns go through its own product.
   Masked entries are never multiplied, so a NaN a row cannot see never reaches it, and the
   cut depends only on the mask, never on the data: results stay bit-for-bit reproducible. */
#define RINGATTN__GROUP 32

/* from row *r on: the next group of rows that each see something (lo < hi); returns its first
   row and size (0: none left) and the columns [*ca, *cz) all of them see */
static int64_t ringattn__row_group(const int64_t *lo, const int64_t *hi, int64_t rows, int64_t limit,
                                   int64_t *r, int64_t *g0, int64_t *ca, int64_t *cz)
{
    int64_t n = 0;
    while (*r < rows && lo[*r] >= hi[*r]) (*r)++;
    if (*r >= rows) return 0;
    *g0 = *r; *ca = lo[*r]; *cz = hi[*r];
    while (*r < rows && n < limit && lo[*r] < hi[*r]) {
        int64_t a = lo[*r] > *ca ? lo[*r] : *ca, z = hi[*r] < *cz ? hi[*r] : *cz;
        if (a >= z) break;                 /* the group would share no column */
        *ca = a; *cz = z; n++; (*r)++;
    }
    return n;
}

/* a row's own columns outside its group's common [ca, cz): left of them (side 0) or right
   (side 1); sets the first, returns how many (<= 0: none) */
static int64_t ringattn__leftover(int64_t lo, int64_t hi, int64_t ca, int64_t cz, int side, int64_t *first)
{
    *first = side ? cz : lo;
    return side ? hi - cz : ca - lo;
}

/* largest share of any member (what a travelling buffer must hold) */
static int64_t ringattn__max_rows(ringattn_partition part, int64_t n, int p)
{
    ringattn__piece pc[2]; int i, np; int64_t mx = 0, r;
    if (part != RINGATTN_ZIGZAG) return n / p + (n % p != 0);   /* ceil(n / p), n + p - 1 may overflow */
    for (i = 0; i < p; i++) {   /* zigzag: chunk i with chunk 2p-1-i, sizes differ by one */
        np = ringattn__pieces(part, n, p, i, pc);
        r = ringattn__piece_rows(pc, np);
        if (r > mx) mx = r;
    }
    return mx;
}

/* the caller's tensors of one call */
typedef struct {
    const ringattn_tensor *q, *k, *v, *out, *lse, *dout;     /* inputs                          */
    ringattn_tensor *o, *l, *dq, *dk, *dv;                   /* outputs of this pass            */
    ringattn_tensor *ml;                                     /* forward: max_logit, or NULL     */
    int local;      /* 0: tensors hold the whole sequence (indexed by position); 1: only this
                       member's rows, its pieces one after another (an MPI rank's chunk)     */
} ringattn__io;

/* A block is one (batch, head) pair of runs: query positions qa, qa+r, ... (nr of them) and
   key positions ka, ka+r, ... (nc of them), r = 1 for dense attention, the dilation rate for
   a dilated pattern. Q, O, dQ, dO and V are row-major in the member's buffers, and so are K,
   dK and dV in the backward: a run of them is a matrix with leading dimension r*d (r*dv),
   used in place. The forward's K is in panels (ringattn__member's kv): a dense run's
   whole panels are read where they lie, the piece's narrow last panel and a dilated run's
   keys are copied into panels per tile (ringattn__tile_panels); the backward gathers each
   tile's K and V into panels (ringattn__gather_panels). */
typedef struct {
    int64_t qa, ka;            /* positions of the first row and column                       */
    int64_t qps, kps;          /* position strides of rows and columns                        */
    int64_t rs;                /* buffer row stride (leading dimension = rs * dim)            */
    int64_t nr, nc;            /* rows, columns                                               */
    int64_t off;               /* key j visible to query i (causally) iff j <= i + off        */
    int64_t bb, hh, aoff;      /* batch, q head, ALiBi's offset (nk - nq, or the sequence's)  */
    void *q;                                             /* at the first row:                  */
    double *x;                 /* forward with max_logit: the rows' score maxima              */
    void *o;   double *m, *l;                            /*   forward (NULL in backward)       */
    void *dq, *dout;   double *lse, *D;                  /*   backward (NULL in forward)       */
    void *k, *v, *dk, *dv;                               /* at the first column (k: backward)  */
    const void *kpan;          /* forward's K: the key piece, in panels (ringattn__panel_at)  */
    int64_t kloc, kcnt;        /* its row of the first column, its rows                       */
} ringattn__block;

/* the algorithm's steps, defined below in this order */
static void ringattn__compute(const ringattn__ring *R, int64_t x, int t, ringattn__scratch *W);
static int64_t ringattn__count_step(const ringattn__ring *R, int i);
static void ringattn__report_step(const ringattn__ring *R, int i, int t, int64_t tiles);
static void ringattn__pass_on(const ringattn__ring *R, int i, int t);
static void ringattn__unit(const ringattn__ring *R, ringattn__member *me, ringattn__scratch *W,
                           const ringattn__piece *kp, int nkp, void *kv, void *dkv,
                           int64_t bb, int64_t kh);
static void ringattn__forward_block(const ringattn__problem *P, ringattn__scratch *me,
                                    const ringattn__block *B);
static int ringattn__tile_mask(const ringattn__problem *P, ringattn__scratch *me, const ringattn__block *B,
                               int64_t r0, int64_t nr, int64_t c0, int64_t c1, int *full);
static void ringattn__row_options(const ringattn__problem *P, const ringattn__scratch *me, const ringattn__block *B,
                                  int64_t r, int64_t col, int64_t n, void *s);
static void ringattn__bwd_row_options(const ringattn__problem *P, ringattn__scratch *me, const ringattn__block *B,
                                      int64_t r, int64_t col, int64_t w, void *s, void *g, double lse, double D,
                                      double dscale);
static void ringattn__backward_block(const ringattn__problem *P, ringattn__scratch *me,
                                     const ringattn__block *B);
#ifdef RINGATTN_USE_CBLAS
static void ringattn__backward_block_blas(const ringattn__problem *P, ringattn__scratch *me,
                                          const ringattn__block *B);
#endif
static void ringattn__state_reset(const ringattn__problem *P, void *o, double *m, double *l,
                                  int64_t row0, int64_t rows);
static void ringattn__member_setup(const ringattn__ring *R, const ringattn__io *io, int i,
                                   int64_t bb, int64_t hh);
static void ringattn__hold_state(const ringattn__ring *R, int i);
static void ringattn__member_finish(const ringattn__ring *R, const ringattn__io *io, int i,
                                    int64_t bb, int64_t hh);

/* ---------------------------------------------------------------- THE RING */

static int ringattn__thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* THE RING: p members, p steps. Threads share out the members' units (with as many threads
   as members, each thread is one member); without OpenMP, or with num_threads = 1, the
   same units run one after another. Every unit's arithmetic is fixed by the problem, not by
   the thread that runs it, so the result is bit-identical for any thread count. */
/* 1 if a thread's mask callback asked the call to stop (read after a barrier) */
static int ringattn__ring_failed(const ringattn__ring *R)
{
    int i;
    for (i = 0; i < R->P->nt; i++) if (R->w[i].failed) return 1;
    return 0;
}

static void ringattn__ring_loop(const ringattn__ring *R, const ringattn__io *io)
{
    const int p = R->P->p;
    const int nt = R->P->nt;
    const int64_t work = (int64_t)p * R->P->units;
    const int64_t bh = R->P->b * R->P->h, slices = (int64_t)p * bh;
    (void)nt;
    RINGATTN__OMP(omp parallel num_threads(nt))
    {
        ringattn__scratch *W = &R->w[ringattn__thread_id()];
        int t, i; int64_t x;
#ifdef _OPENMP
        /* the threads of this call are all the ring gets: a BLAS built on OpenMP must not
           fan each small tile out again (a team of one does not count as "in parallel").
           This ICV belongs to this region's tasks only; the caller's setting is untouched. */
        omp_set_num_threads(1);
#endif
        /* setup and finish in (member, batch, head) slices: a ring smaller than the thread
           team still keeps every thread busy */
        RINGATTN__OMP(omp for schedule(dynamic, 1))
        for (x = 0; x < slices; x++) ringattn__member_setup(R, io, (int)(x / bh), (x % bh) / R->P->h, x % R->P->h);
        for (t = 0; t < p; t++) {
            /* dynamic: with a causal mask some members have nothing to do at step t and
               the diagonal blocks cost more, so a fixed split leaves a thread idle; which
               thread runs a unit never changes its arithmetic */
            RINGATTN__OMP(omp for schedule(dynamic, 1))
            for (x = 0; x < work; x++) ringattn__compute(R, x, t, W);   /* fold in the block held */
            /* then each member counts and reports its step, and hands its chunk to i + 1 */
            RINGATTN__OMP(omp for schedule(static))
            for (i = 0; i < p; i++) {
                int64_t tiles = ringattn__count_step(R, i);
                ringattn__hold_state(R, i);   /* precision emulation only */
                ringattn__report_step(R, i, t, tiles);
                ringattn__pass_on(R, i, t);
            }
            /* the barrier closing this loop is the ring's clock tick: every hand-off of
               step t has landed before any member starts step t + 1 */
        }
        /* a mask callback that asked to stop leaves every output as it was */
        if (!ringattn__ring_failed(R)) {
            RINGATTN__OMP(omp for schedule(dynamic, 1))
            for (x = 0; x < slices; x++) ringattn__member_finish(R, io, (int)(x / bh), (x % bh) / R->P->h, x % R->P->h);
        }
    }
}

/* Step t, phase 1 (one unit x of all p * units): member i folds its block in. */
static void ringattn__compute(const ringattn__ring *R, int64_t x, int t, ringattn__scratch *W)
{
    const ringattn__problem *P = R->P;
    int p = P->p, i = (int)(x / P->units), src, nkp;
    int64_t u = x % P->units;
    ringattn__member *me = ringattn__mem(R, i);
    ringattn__piece kp[2];
    src = ringattn__source(p, i, t);                         /* whose K/V we hold now */
    nkp = ringattn__pieces(P->part, P->nk, p, src, kp);
    if (me->block_o) {
        /* the block alone, from an empty state, by the same unit: for per-step goldens
           (cfg->trace_blocks; the running state below is then folded exactly as without the
           option, so its bits do not change, and the work is counted once, by that pass) or
           for the precision emulation's round_block (which merges this block instead) */
        ringattn__member blk = *me;
        int64_t bb = u / P->hk, hh;
        for (hh = (u % P->hk) * P->heads_per_kv; hh < (u % P->hk + 1) * P->heads_per_kv; hh++)
            ringattn__state_reset(P, me->block_o, me->block_m, me->block_l, (bb * P->h + hh) * me->rows, me->rows);
        blk.st.fwd.o = me->block_o; blk.st.fwd.m = me->block_m; blk.st.fwd.l = me->block_l;
        W->tiles = 0; W->flops = 0;
        ringattn__unit(R, &blk, W, kp, nkp, me->kv[t & 1], NULL, bb, u % P->hk);
    }
    if (R->pass == 0 && P->round_block) {
        /* precision emulation: the block (above) held as the port holds a block's (out, lse),
           then merged into the running state by its partial result; its work is counted */
        int64_t bb = u / P->hk, hh, r, at;
        for (hh = (u % P->hk) * P->heads_per_kv; hh < (u % P->hk + 1) * P->heads_per_kv; hh++)
            for (r = 0; r < me->rows; r++) {
                at = (bb * P->h + hh) * me->rows + r;
                ringattn__hold_row(ringattn__at(me->block_o, at * P->dv, P->es), P->ct, P->dv,
                                   &me->block_m[at], &me->block_l[at], P->bt);
                ringattn__merge_row(ringattn__at(me->st.fwd.o, at * P->dv, P->es), P->ct, P->dv,
                                    &me->st.fwd.m[at], &me->st.fwd.l[at],
                                    ringattn__at(me->block_o, at * P->dv, P->es), me->block_m[at], me->block_l[at]);
            }
    } else {
        W->tiles = 0; W->flops = 0;
        ringattn__unit(R, me, W, kp, nkp, me->kv[t & 1], R->pass ? me->dkv[t & 1] : NULL,
                       u / P->hk, u % P->hk);
    }
    /* integer counters: the totals do not depend on which thread adds first */
    RINGATTN__OMP(omp atomic)
    me->step_tiles += W->tiles;
    RINGATTN__OMP(omp atomic)
    me->flops += W->flops;
}

/* Step t, phase 2 (member i), after every unit of the step: the step's counters. Returns the
   tiles of the step and clears them for the next one. */
static int64_t ringattn__count_step(const ringattn__ring *R, int i)
{
    ringattn__member *me = ringattn__mem(R, i);
    int64_t tiles = me->step_tiles;
    if (tiles) me->blocks_computed++; else me->blocks_skipped++;
    me->tiles += tiles;
    me->step_tiles = 0;
    return tiles;
}

/* Step t, phase 2: the trace event of member i, before the hand-off (the dK/dV it shows are
   those of chunk src, which the hand-off passes on) */
static void ringattn__report_step(const ringattn__ring *R, int i, int t, int64_t tiles)
{
    const ringattn__problem *P = R->P;
    int p = P->p, src = ringattn__source(p, i, t);
    ringattn__member *me = ringattn__mem(R, i);
    ringattn__piece kp[2];
    ringattn_trace_event ev;
    int nkp, j;
    if (!R->cfg->trace) return;
    nkp = ringattn__pieces(P->part, P->nk, p, src, kp);
    memset(&ev, 0, sizeof ev);
    ev.pass = R->pass; ev.member = i; ev.step = t; ev.ring_size = p; ev.src = src;
    ev.computed = tiles > 0;
    ev.q_begin = me->q0; ev.q_end = me->q1;
    ringattn__span(kp, nkp, &ev.k_begin, &ev.k_end);
    ev.tiles = tiles; ev.batch = P->b; ev.heads = P->h; ev.rows = me->rows;
    ev.row_max = R->pass ? NULL : me->st.fwd.m;
    ev.row_sum = R->pass ? NULL : me->st.fwd.l;
    /* the state itself: nothing moves until the next step, after this phase's barrier */
    ev.dtype = P->ct; ev.dim = P->d; ev.dim_v = P->dv; ev.kv_heads = P->hk;
    ev.q_pieces = me->nqp; ev.k_pieces = nkp; ev.keys = ringattn__piece_rows(kp, nkp);
    for (j = 0; j < 2; j++) {
        ev.q_pos0[j] = j < me->nqp ? me->qp[j].pos0 : 0; ev.q_count[j] = j < me->nqp ? me->qp[j].count : 0;
        ev.q_stride[j] = j < me->nqp ? me->qp[j].stride : 1;
        ev.k_pos0[j] = j < nkp ? kp[j].pos0 : 0; ev.k_count[j] = j < nkp ? kp[j].count : 0;
        ev.k_stride[j] = j < nkp ? kp[j].stride : 1;
    }
    ev.out_scale = ringattn__group_div(P) * ldexp(1.0, R->vshift);
    ev.acc = R->pass ? me->st.bwd.dq : me->st.fwd.o;
    ev.block_acc = me->block_o; ev.block_max = me->block_m; ev.block_sum = me->block_l;
    ev.dkv = R->pass ? me->dkv[t & 1] : NULL; ev.kv_pitch = P->ck;
    R->cfg->trace(&ev, R->cfg->trace_user);
}

/* A hand-off in one address space: the next member takes the buffer this member has just
   used, and gives back the one it has finished with. No byte moves (a copy would only cost
   time), and each member still owns exactly two buffers of each kind, so its
   memory stays O(n/p). Member i writes only its own kv[cur] slot and its successor's
   kv[nxt] slot, so all members can hand over at once. */
static void ringattn__hand_over(void **mine, void **next_slot)
{
    void *spent = *next_slot;
    *next_slot = *mine;
    *mine = spent;
}

/* Step t, phase 3: member i hands its K/V chunk on to member i+1 (it is member i+1's for step
   t+1); in the backward pass the chunk's dK/dV travel with it, and after p hand-offs they are
   home. (With one member per process, ringattn_mpi.h sends the buffers itself.) */
static void ringattn__pass_on(const ringattn__ring *R, int i, int t)
{
    ringattn__member *me = ringattn__mem(R, i), *next = ringattn__mem(R, (i + 1) % R->P->p);
    if (t + 1 < R->P->p) { ringattn__hand_over(&me->kv[t & 1], &next->kv[(t + 1) & 1]); me->handoffs++; }
    if (R->pass == 1) { ringattn__hand_over(&me->dkv[t & 1], &next->dkv[(t + 1) & 1]); me->handoffs++; }
}

/* ---------------------------------------------------------------- THE online-softmax merge */
/* Folds a group of score rows (one tile's columns) into the running state of its rows: the
   only place that knows the rescaling, fed by every ring step, dilated pattern and tile.
   For each row, with the visible scores s_j of the tile:
     m_new = max(m, max_j s_j)
     p_j   = exp(s_j - m_new)
     l     = l * exp(m - m_new) + sum_j p_j
     acc   = acc * exp(m - m_new) + sum_j p_j v_j
     m     = m_new
   and at the end of the ring out = acc / l, lse = m + log l (ringattn__member_finish). The
   scalar steps are ringattn__merge_rescale (m_new, alpha = exp(m - m_new)) and
   ringattn__merge_fold (l, m), in the shared section because the CUDA kernels merge with
   them too; the row kernels (max, exp-and-sum, P V) come from the call's kernel table.
   Row r sees tile columns [lo[r], hi[r]) and nothing else: invisible entries are never read,
   so a NaN or Inf in a key or value the row cannot see stays out. */

/* a group's scores against a tile: row r's scores start at S->s + r * lds, entry 0 being tile
   column soff; row r sees tile columns [lo[r], hi[r]), every row of the group [ca, cz) */
typedef struct {
    void *s;
    int64_t lds, soff;
    const int64_t *lo, *hi;
    int64_t ca, cz;
} ringattn__scores;

/* the running state of the group's rows: row r's accumulator (dv values of the compute type)
   at acc + r * ldacc, its running max and sum at m[r * stride] and l[r * stride] */
typedef struct {
    void *acc;
    int64_t ldacc;
    double *m, *l;
    int64_t stride;
    double *x;         /* max_logit wanted: the rows' maxima of the scores alone, else NULL */
} ringattn__rows;

static void ringattn__merge(const ringattn__problem *P, const ringattn__kernels *K, int64_t rows,
                            const ringattn__scores *S, const void *v, int64_t ldv,
                            const ringattn__rows *st, int64_t *flops)
{
    ringattn_dtype t = P->ct; size_t es = P->es;
    const void *pr[RINGATTN__FUSED_ROWS]; void *orow[RINGATTN__FUSED_ROWS]; int64_t at[RINGATTN__FUSED_ROWS];
    int64_t r, k, live = 0;
    /* 1. row by row: the new max, the weights and their sum, the old state rescaled */
    for (r = 0; r < rows; r++) {
        int64_t n = S->hi[r] - S->lo[r];
        char *s = ringattn__at(S->s, r * S->lds + S->lo[r] - S->soff, es);   /* the visible scores */
        void *acc = ringattn__at(st->acc, r * st->ldacc, es);
        double *m = st->m + r * st->stride, *l = st->l + r * st->stride;
        double mnew, alpha, sum, mx = K->row_max(s, n);
        if (st->x && (mx > st->x[r * st->stride] || mx != mx)) st->x[r * st->stride] = mx;   /* max_logit */
        if (!ringattn__merge_rescale(*m, mx, &mnew, &alpha))
            continue;                                          /* every visible score -inf: nothing to add */
        sum = K->row_exp(s, n, mnew);                          /* s_j <- p_j = exp(s_j - m_new) */
        if (P->round_p) K->row_round(s, n, P->pt);             /* emulation: P rounded after l, before P V */
        if (alpha != 1.0) ringattn__row_scale(t, acc, P->dv, alpha);   /* acc <- acc alpha */
        ringattn__merge_fold(m, l, mnew, alpha, sum);          /* l <- l alpha + sum, m <- m_new */
        at[live] = r;
        pr[live] = ringattn__at(S->s, r * S->lds + S->ca - S->soff, es);
        orow[live++] = acc;
        *flops += 2 * n * P->dv;
    }
    if (live == 0) return;
    /* 2. acc += P V: the columns every row of the group sees in one product, then each row's
       own columns left and right of them (the cut follows the mask only, so the order of
       every sum is fixed) */
    K->pv(live, pr, S->cz - S->ca, ringattn__at(v, S->ca * ldv, es), ldv, P->dv, orow);
    for (k = 0; k < live; k++) {
        int64_t i = at[k], side;
        for (side = 0; side < 2; side++) {
            int64_t a, w = ringattn__leftover(S->lo[i], S->hi[i], S->ca, S->cz, (int)side, &a);
            const void *p1 = ringattn__at(S->s, i * S->lds + a - S->soff, es);
            if (w > 0) K->pv(1, &p1, w, ringattn__at(v, a * ldv, es), ldv, P->dv, &orow[k]);
        }
    }
}

/* ---------------------------------------------------------------- the unit, blocks and tiles */
/* One unit of a ring step: batch bb, k/v head kh, and the q heads that share it (GQA), so
   that no two units ever write the same dK/dV rows. For each of those heads, each pattern
   the head takes (dense: one pattern), each pair of query / key pieces, and each segment
   that both touch. Blocks sharing no segment are never visited: that is the dilated (and
   varlen) skip. */
static void ringattn__unit(const ringattn__ring *R, ringattn__member *me, ringattn__scratch *W,
                           const ringattn__piece *kp, int nkp, void *kv, void *dkv,
                           int64_t bb, int64_t kh)
{
    const ringattn__problem *P = R->P;
    size_t es = P->es;
    int64_t hh, kvhalf = P->b * P->hk * P->ck * P->d;   /* V follows K in a buffer */
    int64_t kvrow = (bb * P->hk + kh) * P->ck;
    for (hh = kh * P->heads_per_kv; hh < (kh + 1) * P->heads_per_kv; hh++) {
        int64_t home = (bb * P->h + hh) * me->rows;
        int npat = ringattn__patterns(P), ip, a, c;
        for (ip = 0; ip < npat; ip++) {
            int64_t seglen, rate, o;
            ringattn__pattern(P, hh, ip, &seglen, &rate, &o);
            for (a = 0; a < me->nqp; a++)
            for (c = 0; c < nkp; c++) {
                const ringattn__piece *qp = &me->qp[a], *kq = &kp[c];
                int64_t j, j0, j1;
                if (qp->count == 0 || kq->count == 0) continue;
                ringattn__segment_range(P, seglen, qp, kq, &j0, &j1);   /* segments both pieces touch */
                for (j = j0; j <= j1; j++) {
                    ringattn__segment S; ringattn__block B; int64_t qrow, krow, qbs, kbs;
                    ringattn__segment_at(P, seglen, j, &S);
                    B.nr = ringattn__run(qp, S.qb, S.qe, o, rate, &B.qa, &qrow, &B.qps, &qbs);
                    if (B.nr == 0) continue;
                    B.nc = ringattn__run(kq, S.kb, S.ke, o, rate, &B.ka, &krow, &B.kps, &kbs);
                    if (B.nc == 0) continue;
                    B.rs = qbs;          /* == kbs: pieces of one call share their kind */
                    B.off = S.off;
                    B.bb = bb; B.hh = hh; B.aoff = ringattn__segment_aoff(P, &S);
                    B.x = NULL;
                    B.q = ringattn__at(me->q, (home + qrow) * P->d, es);
                    B.o = NULL; B.m = B.l = NULL; B.dq = B.dout = NULL; B.lse = B.D = NULL;
                    if (R->pass == 0) {
                        B.o = ringattn__at(me->st.fwd.o, (home + qrow) * P->dv, es);
                        B.m = me->st.fwd.m + home + qrow;
                        B.l = me->st.fwd.l + home + qrow;
                        if (me->st.fwd.x) B.x = me->st.fwd.x + home + qrow;
                    } else {
                        B.dq = ringattn__at(me->st.bwd.dq, (home + qrow) * P->d, es);
                        B.dout = ringattn__at(me->dout, (home + qrow) * P->dv, es);
                        B.lse = me->st.bwd.lse + home + qrow;
                        B.D = me->st.bwd.D + home + qrow;
                    }
                    B.k = ringattn__at(kv, (kvrow + krow) * P->d, es);
                    B.kpan = ringattn__at(kv, (kvrow + kq->row0) * P->d, es);
                    B.kloc = krow - kq->row0; B.kcnt = kq->count;
                    B.v = ringattn__at(kv, kvhalf + (kvrow + krow) * P->dv, es);
                    B.dk = dkv ? ringattn__at(dkv, (kvrow + krow) * P->d, es) : NULL;
                    B.dv = dkv ? ringattn__at(dkv, kvhalf + (kvrow + krow) * P->dv, es) : NULL;
                    (void)kbs;
                    if (R->pass == 0) ringattn__forward_block(P, W, &B);
#ifdef RINGATTN_USE_CBLAS
                    else if (ringattn__bwd_blas(P)) ringattn__backward_block_blas(P, W, &B);
#endif
                    else ringattn__backward_block(P, W, &B);
                }
            }
        }
    }
}

/* visible key columns [lo, hi) of tile rows [r0, r0+nr) against columns [c0, c1);
   returns 0 if nothing is visible, and sets *full when every row sees every column */
static int ringattn__tile_bounds(const ringattn__problem *P, const ringattn__block *B,
                                 int64_t r0, int64_t nr, int64_t c0, int64_t c1,
                                 int64_t *lo, int64_t *hi, int *full)
{
    int64_t i, any = 0;
    *full = 1;
    for (i = 0; i < nr; i++) {
        int64_t a = c0, z = c1;
        ringattn__visible(P->causal, P->wl, P->wr, B->off, B->qa + (r0 + i) * B->qps, B->ka, B->kps, &a, &z);
        lo[i] = a - c0; hi[i] = z - c0;
        if (a != c0 || z != c1) *full = 0;
        any |= (z > a);
    }
    return any != 0;
}

/* The pair masks (mask, mask_fn, mask_block_fn, document ids) on the tile rows [r0, r0 + nr)
   x columns [c0, c1) of block B, whose rows see [lo, hi) by the interval rules (causal,
   windows, sequences): me->vis[i][c] = 1 where every mask lets row i see tile column c, and
   each row's [lo, hi) narrowed to its first and last such column, so that a tile, block or
   ring step the masks leave empty is skipped as a causal one is (and counted so). Holes left
   inside [lo, hi) become -inf scores (ringattn__row_options). Returns 0 if nothing is
   visible, or when a callback has asked to stop. */
static int ringattn__tile_mask(const ringattn__problem *P, ringattn__scratch *me, const ringattn__block *B,
                               int64_t r0, int64_t nr, int64_t c0, int64_t c1, int *full)
{
    int64_t i, c, nc = c1 - c0, any = 0;
    me->vr0 = r0; me->vc0 = c0; me->vnc = nc;
    if (P->mask_block_fn && !me->failed) {   /* one question for the whole tile */
        for (i = 0; i < nr; i++) me->qpos[i] = B->qa + (r0 + i) * B->qps;
        for (c = 0; c < nc; c++) me->kpos[c] = B->ka + (c0 + c) * B->kps;
        if (P->mask_block_fn(P->mask_user, B->bb, B->hh, me->qpos, nr, me->kpos, nc, me->vis)) me->failed = 1;
    }
    if (me->failed) return 0;
    for (i = 0; i < nr; i++) {
        int64_t qpos = B->qa + (r0 + i) * B->qps, first = -1, last = -1, lo = me->lo[i], hi = me->hi[i];
        unsigned char *v = me->vis + i * nc;
        if (P->docs_sorted && lo < hi) {   /* the row's document: one interval of keys */
            int64_t a = lo + c0, z = hi + c0;
            ringattn__doc_visible(P, qpos, B->ka, B->kps, &a, &z);
            lo = a - c0; hi = z - c0;
        }
        if (!P->pairs) { first = lo; last = hi - 1; }
        else for (c = lo; c < hi; c++) {
            int64_t kpos = B->ka + (c0 + c) * B->kps;
            int ok = (!P->mask_block_fn || v[c]) && ringattn__pair_visible(P, B->bb, B->hh, qpos, kpos) &&
                     (!P->mask_fn || P->mask_fn(P->mask_user, B->bb, B->hh, qpos, kpos));
            v[c] = (unsigned char)ok;
            if (ok) { if (first < 0) first = c; last = c; }
        }
        if (first < 0 || last < first) { if (me->lo[i] < me->hi[i]) *full = 0; me->hi[i] = me->lo[i]; continue; }
        if (first != me->lo[i] || last + 1 != me->hi[i]) *full = 0;
        me->lo[i] = first; me->hi[i] = last + 1;
        any = 1;
    }
    return any != 0;
}

/* The score options on n visible scores s of block row r from block column col on (after
   the scale and the softcap): s = s + (bias - slope |i + aoff - j|) (ringattn__score_add, in
   double, one rounding to the compute type), and -inf where a pair mask hides the pair. The
   bias row and the ALiBi distance are stepped along the row, by compute type. */
static void ringattn__row_options(const ringattn__problem *P, const ringattn__scratch *me, const ringattn__block *B,
                                  int64_t r, int64_t col, int64_t n, void *s)
{
    int64_t j, qpos = B->qa + r * B->qps, k0 = B->ka + col * B->kps, ks = B->kps;
    const unsigned char *v = P->pairs ? me->vis + (r - me->vr0) * me->vnc + (col - me->vc0) : NULL;
    if (P->modify) {
        const ringattn_tensor *bt = P->bias;
        double slope = ringattn__slope(P, B->bb, B->hh), bias = 0.0;
        int64_t b0 = bt ? ringattn__bias_index(bt, B->bb, B->hh, qpos, k0) : 0;
        int64_t bs = bt ? bt->stride[3] * ks : 0;   /* the distance falls by ks per key, the bias moves by bs */
        double dist = (double)(qpos + B->aoff - k0), dks = (double)ks;   /* integers: exact, and j dks too */
        if (P->ct == RINGATTN_F32) {
            float *f = (float *)s;
            if (bt && bt->dtype == RINGATTN_F32) {
                const float *bp = (const float *)bt->data + b0;
                for (j = 0; j < n; j++) f[j] = (float)ringattn__score_add(f[j], bp[j * bs], slope, dist - (double)j * dks);
            } else
                for (j = 0; j < n; j++) {
                    if (bt) bias = ringattn__load(bt->data, bt->dtype, b0 + j * bs);
                    f[j] = (float)ringattn__score_add(f[j], bias, slope, dist - (double)j * dks);
                }
        } else {
            double *f = (double *)s;
            if (bt && bt->dtype == RINGATTN_F64) {
                const double *bp = (const double *)bt->data + b0;
                for (j = 0; j < n; j++) f[j] = ringattn__score_add(f[j], bp[j * bs], slope, dist - (double)j * dks);
            } else
                for (j = 0; j < n; j++) {
                    if (bt) bias = ringattn__load(bt->data, bt->dtype, b0 + j * bs);
                    f[j] = ringattn__score_add(f[j], bias, slope, dist - (double)j * dks);
                }
        }
    }
    if (v) {
        if (P->ct == RINGATTN_F32) { float *f = (float *)s; for (j = 0; j < n; j++) if (!v[j]) f[j] = -INFINITY; }
        else { double *f = (double *)s; for (j = 0; j < n; j++) if (!v[j]) f[j] = -INFINITY; }
    }
}

/* backward, one row with score options: its scaled scores s (and dP in g) of n columns from
   block column col become P = exp(softcap(s) + options - lse) and dS; dbias, the gradient of
   the final score P (dP - D), is taken before the softcap's derivative and the scale. */
static void ringattn__bwd_row_options(const ringattn__problem *P, ringattn__scratch *me, const ringattn__block *B,
                                      int64_t r, int64_t col, int64_t w, void *s, void *g, double lse, double D,
                                      double dscale)
{
    ringattn_dtype t = P->ct;
    int64_t j;
    if (P->softcap > 0) {
        ringattn__row_softcap(t, s, w, P->softcap);
        memcpy(me->sc, s, (size_t)w * P->es);   /* the softcapped scores, for its derivative */
    }
    ringattn__row_options(P, me, B, r, col, w, s);
    me->kern->row_prob(s, w, lse);                     /* P */
    ringattn__row_dsoftmax(t, s, g, w, D, 1.0);        /* dS of the final score: P (dP - D) */
    if (me->dbias) {
        double *db = me->dbias + ((B->bb * P->h + B->hh) * P->nq + B->qa + r * B->qps) * P->nk;
        for (j = 0; j < w; j++) db[B->ka + (col + j) * B->kps] += ringattn__load(g, t, j);
    }
    if (P->softcap > 0)
        for (j = 0; j < w; j++) {
            double c = ringattn__load(me->sc, t, j) / P->softcap;
            ringattn__store(g, t, j, ringattn__load(g, t, j) * (1.0 - c * c));
        }
    if (dscale != 1.0) ringattn__row_scale(t, g, w, dscale);
}

/* The K panels under tile columns [cmin, cmax) of block B (tile at block column c0): pan[k]
   holds the 16 keys at tile columns *pbase + 16k ... Whole panels of a dense run are read
   where they lie in the member's buffer; the piece's last, narrower panel is copied out
   padded, and a dilated run (every rs-th key) is gathered once per tile into panels. */
static int64_t ringattn__tile_panels(const ringattn__problem *P, ringattn__scratch *me,
                                     const ringattn__block *B, int64_t c0, int64_t cmin, int64_t cmax,
                                     int64_t *pbase)
{
    const int64_t W = RINGATTN__PANEL, d = P->d;
    size_t es = P->es; char *gat = (char *)me->kg;
    int64_t k, np, c, l;
    if (B->rs == 1) {
        int64_t first = (B->kloc + c0 + cmin) / W, last = (B->kloc + c0 + cmax + W - 1) / W;
        *pbase = first * W - (B->kloc + c0);
        np = last - first;
        for (k = 0; k < np; k++) {
            int64_t pk = first + k, w = B->kcnt - pk * W;
            const char *src = ringattn__at(B->kpan, pk * W * d, es);
            if (w >= W) { me->pan[k] = src; continue; }
            for (c = 0; c < d; c++) for (l = 0; l < W; l++)
                ringattn__store(gat, P->ct, c * W + l, l < w ? ringattn__load(src, P->ct, c * w + l) : 0.0);
            me->pan[k] = gat;
            gat += (size_t)(W * d) * es;
        }
        return np;
    }
    *pbase = cmin;
    np = (cmax - cmin + W - 1) / W;
    for (k = 0; k < np; k++, gat += (size_t)(W * d) * es) {
        me->pan[k] = gat;
        for (l = 0; l < W; l++) {
            int64_t col = c0 + cmin + k * W + l, row = B->kloc + col * B->rs;
            int64_t o = ringattn__panel_at(row, 0, B->kcnt, d), w = ringattn__panel_at(row, 1, B->kcnt, d) - o;
            if (col >= B->nc) {   /* past the run: zeros, never read */
                for (c = 0; c < d; c++) ringattn__store(gat, P->ct, c * W + l, 0.0);
            } else if (P->ct == RINGATTN_F32) {
                const float *src = (const float *)B->kpan + o;
                for (c = 0; c < d; c++) ((float *)gat)[c * W + l] = src[c * w];
            } else {
                const double *src = (const double *)B->kpan + o;
                for (c = 0; c < d; c++) ((double *)gat)[c * W + l] = src[c * w];
            }
        }
    }
    return np;
}

/* forward: fold one block into the member's running state, tile by tile, and inside a tile
   group by group: S for the group's rows (the fused S kernel over the K panels they see),
   softcap, then the merge with its P V product */
static void ringattn__forward_block(const ringattn__problem *P, ringattn__scratch *me,
                                    const ringattn__block *B)
{
    size_t es = P->es; int64_t r0, c0;
    int64_t ldq = B->rs * P->d, ldv = B->rs * P->dv, lds = me->lds;
    for (r0 = 0; r0 < B->nr; r0 += P->tq) {
        int64_t nr = (B->nr - r0 < P->tq) ? B->nr - r0 : P->tq;
        for (c0 = 0; c0 < B->nc; c0 += P->tk) {
            int64_t c1 = (B->nc - c0 < P->tk) ? B->nc : c0 + P->tk, cmin = c1 - c0, cmax = 0, i;
            int64_t r = 0, g, g0, ca, cz, pbase;
            int full;
            if (!ringattn__tile_bounds(P, B, r0, nr, c0, c1, me->lo, me->hi, &full)) continue;
            if (P->emask && !ringattn__tile_mask(P, me, B, r0, nr, c0, c1, &full)) continue;
            for (i = 0; i < nr; i++) if (me->lo[i] < me->hi[i]) {   /* tile columns */
                if (me->lo[i] < cmin) cmin = me->lo[i];
                if (me->hi[i] > cmax) cmax = me->hi[i];
            }
            ringattn__tile_panels(P, me, B, c0, cmin, cmax, &pbase);
            while ((g = ringattn__row_group(me->lo, me->hi, nr, RINGATTN__FUSED_ROWS, &r, &g0, &ca, &cz)) > 0) {
                const void *qr[RINGATTN__FUSED_ROWS]; void *sr[RINGATTN__FUSED_ROWS];
                int64_t ua = me->lo[g0], uz = me->hi[g0], ka, kz, soff;
                for (i = 0; i < g; i++) {
                    if (me->lo[g0 + i] < ua) ua = me->lo[g0 + i];
                    if (me->hi[g0 + i] > uz) uz = me->hi[g0 + i];
                    qr[i] = ringattn__at(B->q, (r0 + g0 + i) * ldq, es);
                    sr[i] = ringattn__at(me->s, i * lds, es);
                }
                ka = (ua - pbase) / RINGATTN__PANEL;                            /* the panels the */
                kz = (uz - pbase + RINGATTN__PANEL - 1) / RINGATTN__PANEL;      /* group sees     */
                soff = pbase + ka * RINGATTN__PANEL;
                /* S = scale * Q K^T */
                me->kern->qk(g, qr, P->d, (const void *const *)(me->pan + ka), kz - ka, P->scale, sr);
                me->flops += 2 * g * (uz - ua) * P->d;
                if (P->round_s)       /* emulation: the scores as eager low-precision attention stores them */
                    for (i = 0; i < g; i++)
                        me->kern->row_round(ringattn__at(sr[i], me->lo[g0 + i] - soff, es),
                                            me->hi[g0 + i] - me->lo[g0 + i], P->pt);
                if (P->softcap > 0)   /* a transform of each visible logit, before the merge */
                    for (i = 0; i < g; i++)
                        ringattn__row_softcap(P->ct, ringattn__at(sr[i], me->lo[g0 + i] - soff, es),
                                              me->hi[g0 + i] - me->lo[g0 + i], P->softcap);
                if (P->modify || P->emask)   /* the score options: + bias - ALiBi, pair masks */
                    for (i = 0; i < g; i++)
                        ringattn__row_options(P, me, B, r0 + g0 + i, c0 + me->lo[g0 + i],
                                              me->hi[g0 + i] - me->lo[g0 + i],
                                              ringattn__at(sr[i], me->lo[g0 + i] - soff, es));
                {   /* the merge, with its P V product */
                    ringattn__scores S; ringattn__rows st;
                    S.s = me->s; S.lds = lds; S.soff = soff;
                    S.lo = me->lo + g0; S.hi = me->hi + g0; S.ca = ca; S.cz = cz;
                    st.acc = ringattn__at(B->o, (r0 + g0) * ldv, es); st.ldacc = ldv;
                    st.m = B->m + (r0 + g0) * B->rs; st.l = B->l + (r0 + g0) * B->rs; st.stride = B->rs;
                    st.x = B->x ? B->x + (r0 + g0) * B->rs : NULL;
                    ringattn__merge(P, me->kern, g, &S, ringattn__at(B->v, c0 * ldv, es), ldv, &st, &me->flops);
                }
            }
            me->tiles++;
        }
    }
}

#ifdef RINGATTN_USE_CBLAS
/* backward through cblas, whole tiles at a time: S = scale Q K^T and dP = dO V^T for the tile,
   P and dS = P (dP - D) row by row, then dV += P^T dO, dQ += scale dS K, dK += scale dS^T Q as
   GEMMs (row groups and their leftovers where the tile is ragged). OpenBLAS's large GEMMs beat
   the fused kernels at d >= 128 (docs/performance.md), so those shapes come here. */
static void ringattn__backward_block_blas(const ringattn__problem *P, ringattn__scratch *me,
                                     const ringattn__block *B)
{
    ringattn_dtype t = P->ct; size_t es = P->es; int64_t r0, c0;
    int64_t ldq = B->rs * P->d, ldv = B->rs * P->dv;
    for (r0 = 0; r0 < B->nr; r0 += P->tq) {
        int64_t nr = (B->nr - r0 < P->tq) ? B->nr - r0 : P->tq;
        const double *lse = B->lse + r0 * B->rs, *D = B->D + r0 * B->rs;
        const char *q = ringattn__at(B->q, r0 * ldq, es);
        const char *dout = ringattn__at(B->dout, r0 * ldv, es);
        char *dq = ringattn__at(B->dq, r0 * ldq, es);
        for (c0 = 0; c0 < B->nc; c0 += P->tk) {
            int64_t c1 = (B->nc - c0 < P->tk) ? B->nc : c0 + P->tk, cmin = c1, cmax = c0, n, i;
            const char *k, *v; char *dk, *dv;
            int full;
            if (!ringattn__tile_bounds(P, B, r0, nr, c0, c1, me->lo, me->hi, &full)) continue;
            if (P->emask && !ringattn__tile_mask(P, me, B, r0, nr, c0, c1, &full)) continue;
            for (i = 0; i < nr; i++) {
                if (me->lo[i] < me->hi[i]) {
                    if (c0 + me->lo[i] < cmin) cmin = c0 + me->lo[i];
                    if (c0 + me->hi[i] > cmax) cmax = c0 + me->hi[i];
                }
            }
            if (cmax <= cmin) continue;
            for (i = 0; i < nr; i++) { me->lo[i] -= cmin - c0; me->hi[i] -= cmin - c0; }
            n = cmax - cmin;
            k = ringattn__at(B->k, cmin * ldq, es);
            v = ringattn__at(B->v, cmin * ldv, es);
            dk = ringattn__at(B->dk, cmin * ldq, es);
            dv = ringattn__at(B->dv, cmin * ldv, es);
            /* S = scale Q K^T -> P,   dP = dO V^T -> dS */
            ringattn__gemm(t, 0, 1, nr, n, P->d, P->scale, q, ldq, k, ldq, 0.0, me->s, n);
            ringattn__gemm(t, 0, 1, nr, n, P->dv, 1.0, dout, ldv, v, ldv, 0.0, me->dp, n);
            me->flops += 2 * nr * n * (P->d + P->dv);
            for (i = 0; i < nr; i++) {
                char *sr = ringattn__at(me->s, i * n + me->lo[i], es);
                char *gr = ringattn__at(me->dp, i * n + me->lo[i], es);
                if (me->lo[i] >= me->hi[i]) continue;
                if (lse[i * B->rs] == -INFINITY) {   /* saw nothing in the forward pass: P = dS = 0 */
                    memset(sr, 0, (size_t)(me->hi[i] - me->lo[i]) * es);
                    memset(gr, 0, (size_t)(me->hi[i] - me->lo[i]) * es);
                    continue;
                }
                if (P->round_s) {   /* emulation: S and dP as eager low-precision attention stores them */
                    me->kern->row_round(sr, me->hi[i] - me->lo[i], P->pt);
                    me->kern->row_round(gr, me->hi[i] - me->lo[i], P->pt);
                }
                if (P->modify || P->emask) {
                    ringattn__bwd_row_options(P, me, B, r0 + i, cmin + me->lo[i], me->hi[i] - me->lo[i], sr, gr,
                                              lse[i * B->rs], D[i * B->rs], 1.0);
                } else if (P->softcap > 0) {
                    ringattn__row_softcap(t, sr, me->hi[i] - me->lo[i], P->softcap);
                    ringattn__row_dsoftcap(t, sr, gr, me->hi[i] - me->lo[i], lse[i * B->rs], D[i * B->rs], P->softcap, 1.0);
                } else {
                    me->kern->row_prob(sr, me->hi[i] - me->lo[i], lse[i * B->rs]);
                    ringattn__row_dsoftmax(t, sr, gr, me->hi[i] - me->lo[i], D[i * B->rs], 1.0);
                }
                if (P->round_p) {   /* emulation: P and dS as the products read them */
                    me->kern->row_round(sr, me->hi[i] - me->lo[i], P->pt);
                    me->kern->row_round(gr, me->hi[i] - me->lo[i], P->pt);
                }
            }
            if (full) {
                ringattn__gemm(t, 1, 0, n, P->dv, nr, 1.0, me->s, n, dout, ldv, 1.0, dv, ldv);
                ringattn__gemm(t, 0, 0, nr, P->d, n, P->scale, me->dp, n, k, ldq, 1.0, dq, ldq);
                ringattn__gemm(t, 1, 0, n, P->d, nr, P->scale, me->dp, n, q, ldq, 1.0, dk, ldq);
                me->flops += 2 * nr * n * (2 * P->d + P->dv);
            } else {   /* ragged: row groups and their leftovers, as in ringattn__merge */
                int64_t r = 0, g, g0, ca, cz;
                while ((g = ringattn__row_group(me->lo, me->hi, nr, RINGATTN__GROUP, &r, &g0, &ca, &cz)) > 0) {
                    int64_t w = cz - ca, kk;
                    const char *pg = ringattn__at(me->s, g0 * n + ca, es);
                    const char *gg = ringattn__at(me->dp, g0 * n + ca, es);
                    ringattn__gemm(t, 1, 0, w, P->dv, g, 1.0, pg, n, ringattn__at(dout, g0 * ldv, es), ldv,
                                   1.0, ringattn__at(dv, ca * ldv, es), ldv);
                    ringattn__gemm(t, 0, 0, g, P->d, w, P->scale, gg, n, ringattn__at(k, ca * ldq, es), ldq,
                                   1.0, ringattn__at(dq, g0 * ldq, es), ldq);
                    ringattn__gemm(t, 1, 0, w, P->d, g, P->scale, gg, n, ringattn__at(q, g0 * ldq, es), ldq,
                                   1.0, ringattn__at(dk, ca * ldq, es), ldq);
                    for (i = g0; i < g0 + g; i++) {
                        me->flops += 2 * (me->hi[i] - me->lo[i]) * (2 * P->d + P->dv);
                        for (kk = 0; kk < 2; kk++) {   /* the row's columns outside the group's */
                            int64_t a;
                            const char *pr, *gr;
                            w = ringattn__leftover(me->lo[i], me->hi[i], ca, cz, (int)kk, &a);
                            if (w <= 0) continue;
                            pr = ringattn__at(me->s, i * n + a, es);
                            gr = ringattn__at(me->dp, i * n + a, es);
                            ringattn__gemm(t, 0, 0, w, P->dv, 1, 1.0, pr, 1, ringattn__at(dout, i * ldv, es), ldv,
                                           1.0, ringattn__at(dv, a * ldv, es), ldv);
                            ringattn__gemm(t, 0, 0, 1, P->d, w, P->scale, gr, n, ringattn__at(k, a * ldq, es), ldq,
                                           1.0, ringattn__at(dq, i * ldq, es), ldq);
                            ringattn__gemm(t, 0, 0, w, P->d, 1, P->scale, gr, 1, ringattn__at(q, i * ldq, es), ldq,
                                           1.0, ringattn__at(dk, a * ldq, es), ldq);
                        }
                    }
                }
            }
            for (i = 0; i < nr; i++)   /* a row that saw nothing keeps dQ = 0 (0 x an Inf key is NaN) */
                if (lse[i * B->rs] == -INFINITY) memset(ringattn__at(dq, i * ldq, es), 0, (size_t)P->d * es);
            me->tiles++;
        }
    }
}
#endif

/* The keys [0, n) of a backward tile, rows of stride ld, as panels of 16 at dst (the last one
   padded with zeros, never read): the layout the S kernel reads, one copy per tile. */
static void ringattn__gather_panels(ringattn_dtype t, const void *src, int64_t ld, int64_t n, int64_t d,
                                    void *dst)
{
    const int64_t W = RINGATTN__PANEL;
    int64_t j, c, np = (n + W - 1) / W;
    for (j = 0; j < np * W; j++) {
        int64_t at = (j / W) * W * d + j % W;
        if (t == RINGATTN_F32) {
            const float *a = (const float *)src + j * ld; float *o = (float *)dst + at;
            if (j < n) for (c = 0; c < d; c++) o[c * W] = a[c];
            else for (c = 0; c < d; c++) o[c * W] = 0.0f;
        } else {
            const double *a = (const double *)src + j * ld; double *o = (double *)dst + at;
            if (j < n) for (c = 0; c < d; c++) o[c * W] = a[c];
            else for (c = 0; c < d; c++) o[c * W] = 0.0;
        }
    }
}

/* backward: for each group of rows of a tile, S = scale Q K^T and dP = dO V^T by the fused S
   kernel (over the tile's K and V gathered into panels), P = exp(S - lse) from the saved lse,
   dS = scale P (dP - D), then
     dQ[i] += sum_j dS[i][j] K[j]      ringattn__pv  (the forward's P V kernel)
     dV[j] += sum_i  P[i][j] dO[i]     ringattn__pt  (the transposed products)
     dK[j] += sum_i dS[i][j] Q[i]
   first over the columns every row of the group sees, then each row's own columns left and
   right of them, as in the merge: the cut follows the mask only, masked pairs are never
   multiplied, and every sum runs in one fixed order. */
static void ringattn__backward_block(const ringattn__problem *P, ringattn__scratch *me,
                                     const ringattn__block *B)
{
    ringattn_dtype t = P->ct; size_t es = P->es; int64_t r0, c0;
    int64_t ldq = B->rs * P->d, ldv = B->rs * P->dv, lds = me->lds, npan = lds / RINGATTN__PANEL;
    char *kpan = (char *)me->kg, *vpan = ringattn__at(kpan, npan * RINGATTN__PANEL * P->d, es);
    int k;
    for (k = 0; k < npan; k++) {   /* the gathered panels, where the S kernel finds them */
        me->pan[k] = ringattn__at(kpan, k * RINGATTN__PANEL * P->d, es);
        me->pan[npan + k] = ringattn__at(vpan, k * RINGATTN__PANEL * P->dv, es);
    }
    for (r0 = 0; r0 < B->nr; r0 += P->tq) {
        int64_t nr = (B->nr - r0 < P->tq) ? B->nr - r0 : P->tq;
        const double *lse = B->lse + r0 * B->rs, *D = B->D + r0 * B->rs;
        const char *q = ringattn__at(B->q, r0 * ldq, es);
        const char *dout = ringattn__at(B->dout, r0 * ldv, es);
        char *dq = ringattn__at(B->dq, r0 * ldq, es);
        for (c0 = 0; c0 < B->nc; c0 += P->tk) {
            int64_t c1 = (B->nc - c0 < P->tk) ? B->nc : c0 + P->tk, cmin = c1, cmax = c0, i;
            int64_t r = 0, g, g0, ca, cz;
            const char *kt, *vt; char *dk, *dv;
            int full;
            if (!ringattn__tile_bounds(P, B, r0, nr, c0, c1, me->lo, me->hi, &full)) continue;
            if (P->emask && !ringattn__tile_mask(P, me, B, r0, nr, c0, c1, &full)) continue;
            for (i = 0; i < nr; i++) {
                if (me->lo[i] < me->hi[i]) {
                    if (c0 + me->lo[i] < cmin) cmin = c0 + me->lo[i];
                    if (c0 + me->hi[i] > cmax) cmax = c0 + me->hi[i];
                }
            }
            if (cmax <= cmin) continue;
            for (i = 0; i < nr; i++) { me->lo[i] -= cmin - c0; me->hi[i] -= cmin - c0; }
            kt = ringattn__at(B->k, cmin * ldq, es);
            vt = ringattn__at(B->v, cmin * ldv, es);
            dk = ringattn__at(B->dk, cmin * ldq, es);
            dv = ringattn__at(B->dv, cmin * ldv, es);
            ringattn__gather_panels(t, kt, ldq, cmax - cmin, P->d, kpan);
            ringattn__gather_panels(t, vt, ldv, cmax - cmin, P->dv, vpan);
            while ((g = ringattn__row_group(me->lo, me->hi, nr, RINGATTN__BWD_ROWS, &r, &g0, &ca, &cz)) > 0) {
                const void *qr[RINGATTN__BWD_ROWS], *dor[RINGATTN__BWD_ROWS], *gc[RINGATTN__BWD_ROWS];
                void *sr[RINGATTN__BWD_ROWS], *gr[RINGATTN__BWD_ROWS], *dqr[RINGATTN__BWD_ROWS];
                int64_t ua = me->lo[g0], uz = me->hi[g0], ka, kz, soff, side;
                for (i = 0; i < g; i++) {
                    if (me->lo[g0 + i] < ua) ua = me->lo[g0 + i];
                    if (me->hi[g0 + i] > uz) uz = me->hi[g0 + i];
                    qr[i] = ringattn__at(q, (g0 + i) * ldq, es);
                    dor[i] = ringattn__at(dout, (g0 + i) * ldv, es);
                    dqr[i] = ringattn__at(dq, (g0 + i) * ldq, es);
                    sr[i] = ringattn__at(me->s, i * lds, es);
                    gr[i] = ringattn__at(me->dp, i * lds, es);
                }
                ka = ua / RINGATTN__PANEL; kz = (uz + RINGATTN__PANEL - 1) / RINGATTN__PANEL;
                soff = ka * RINGATTN__PANEL;   /* tile column of score entry 0 */
                /* S = scale Q K^T,  dP = dO V^T */
                me->kern->qk(g, qr, P->d, (const void *const *)(me->pan + ka), kz - ka, P->scale, sr);
                me->kern->qk(g, dor, P->dv, (const void *const *)(me->pan + npan + ka), kz - ka, 1.0, gr);
                me->flops += 2 * g * (uz - ua) * (P->d + P->dv);
                for (i = 0; i < g; i++) {   /* S -> P, dP -> dS, on the visible columns */
                    int64_t w = me->hi[g0 + i] - me->lo[g0 + i];
                    char *s1 = ringattn__at(sr[i], me->lo[g0 + i] - soff, es);
                    char *g1 = ringattn__at(gr[i], me->lo[g0 + i] - soff, es);
                    double l1 = lse[(g0 + i) * B->rs], D1 = D[(g0 + i) * B->rs];
                    if (P->round_s && l1 != -INFINITY) {   /* emulation: S and dP as eager attention stores them */
                        me->kern->row_round(s1, w, P->pt);
                        me->kern->row_round(g1, w, P->pt);
                    }
                    if (l1 == -INFINITY) {   /* saw nothing in the forward pass: P = dS = 0 */
                        memset(s1, 0, (size_t)w * es);
                        memset(g1, 0, (size_t)w * es);
                    } else if (P->modify || P->emask) {
                        ringattn__bwd_row_options(P, me, B, r0 + g0 + i, cmin + me->lo[g0 + i], w, s1, g1, l1, D1,
                                                  P->round_p ? 1.0 : P->scale);
                    } else if (P->softcap > 0) {
                        ringattn__row_softcap(t, s1, w, P->softcap);
                        ringattn__row_dsoftcap(t, s1, g1, w, l1, D1, P->softcap, P->round_p ? 1.0 : P->scale);
                    } else {
                        me->kern->row_prob(s1, w, l1);
                        ringattn__row_dsoftmax(t, s1, g1, w, D1, P->round_p ? 1.0 : P->scale);
                    }
                    if (P->round_p) {   /* emulation: P and dS (unscaled) as the products read them */
                        me->kern->row_round(s1, w, P->pt);
                        me->kern->row_round(g1, w, P->pt);
                        ringattn__row_scale(t, g1, w, P->scale);
                    }
                    me->flops += 2 * w * (2 * P->d + P->dv);
                    gc[i] = ringattn__at(gr[i], ca - soff, es);
                }
                /* the columns all rows of the group see */
                me->kern->pv(g, gc, cz - ca, ringattn__at(kt, ca * ldq, es), ldq, P->d, dqr);
                me->kern->pt(g, ringattn__at(me->s, ca - soff, es), lds, cz - ca,
                             dor[0], ldv, P->dv, ringattn__at(dv, ca * ldv, es), ldv);
                me->kern->pt(g, ringattn__at(me->dp, ca - soff, es), lds, cz - ca,
                             qr[0], ldq, P->d, ringattn__at(dk, ca * ldq, es), ldq);
                for (i = 0; i < g; i++)   /* each row's own columns left and right of them */
                    for (side = 0; side < 2; side++) {
                        int64_t a, w = ringattn__leftover(me->lo[g0 + i], me->hi[g0 + i], ca, cz, (int)side, &a);
                        const void *p1 = ringattn__at(sr[i], a - soff, es);
                        const void *g1 = ringattn__at(gr[i], a - soff, es);
                        if (w <= 0) continue;
                        me->kern->pv(1, &g1, w, ringattn__at(kt, a * ldq, es), ldq, P->d, &dqr[i]);
                        me->kern->pt(1, p1, lds, w, dor[i], ldv, P->dv, ringattn__at(dv, a * ldv, es), ldv);
                        me->kern->pt(1, g1, lds, w, qr[i], ldq, P->d, ringattn__at(dk, a * ldq, es), ldq);
                    }
                for (i = 0; i < g; i++)   /* a row that saw nothing keeps dQ = 0 (0 x an Inf key is NaN) */
                    if (lse[(g0 + i) * B->rs] == -INFINITY) memset(dqr[i], 0, (size_t)P->d * es);
            }
            me->tiles++;
        }
    }
}
/* ---------------------------------------------------------------- moving data in and out */

/* dst[c * ds] = mul * x[c * xs] for c < n, from storage type t into compute type ct: the
   conversion every packing does. Typed loops for the pairs inputs come in (the same
   arithmetic as ringattn__load / ringattn__store, without their switch per element), the
   general pair through those two. */
static void ringattn__convert(void *dst, ringattn_dtype ct, int64_t ds, const void *x, ringattn_dtype t,
                              int64_t xs, int64_t n, double mul)
{
    int64_t c;
    const uint16_t *h = (const uint16_t *)x;
    if (t == ct && xs == 1 && ds == 1 && mul == 1.0) {   /* nothing to convert: the bytes */
        memcpy(dst, x, (size_t)n * ringattn__dtype_size(t));
    } else if (mul != 1.0 || (ct != RINGATTN_F32 && ct != RINGATTN_F64)) {
        for (c = 0; c < n; c++) ringattn__store(dst, ct, c * ds, ringattn__load(x, t, c * xs) * mul);
    } else if (ct == RINGATTN_F32) {
        float *f = (float *)dst;
        if (t == RINGATTN_F32) for (c = 0; c < n; c++) f[c * ds] = ((const float *)x)[c * xs];
        else if (t == RINGATTN_BF16) for (c = 0; c < n; c++) f[c * ds] = ringattn__bf16_to_float(h[c * xs]);
        else if (t == RINGATTN_F16) for (c = 0; c < n; c++) f[c * ds] = ringattn__f16_to_float(h[c * xs]);
        else for (c = 0; c < n; c++) f[c * ds] = (float)ringattn__load(x, t, c * xs);
    } else {
        double *f = (double *)dst;
        if (t == RINGATTN_F64) for (c = 0; c < n; c++) f[c * ds] = ((const double *)x)[c * xs];
        else if (t == RINGATTN_F32) for (c = 0; c < n; c++) f[c * ds] = ((const float *)x)[c * xs];
        else if (t == RINGATTN_BF16) for (c = 0; c < n; c++) f[c * ds] = ringattn__bf16_to_float(h[c * xs]);
        else if (t == RINGATTN_F16) for (c = 0; c < n; c++) f[c * ds] = ringattn__f16_to_float(h[c * xs]);
        else for (c = 0; c < n; c++) f[c * ds] = ringattn__load(x, t, c * xs);
    }
}

/* Pack / unpack the (batch bb, head hh) slice of a member's pieces between a caller's tensor
   and a member buffer laid out [b][heads][pitch][dim]. One slice at a time, so that the
   threads can share out a member's setup and finish (a ring of one member is one call). */
static void ringattn__pack(const ringattn_tensor *t, const ringattn__piece *pc, int np, void *dst,
                           ringattn_dtype ct, int64_t pitch, double mul, int64_t bb, int64_t hh)
{
    int64_t r, heads = t->shape[2], dim = t->shape[3];
    size_t es = ringattn__dtype_size(ct);
    int k;
    for (k = 0; k < np; k++)
    for (r = 0; r < pc[k].count; r++) {
        int64_t at = ((bb * heads + hh) * pitch + pc[k].row0 + r) * dim, pos = pc[k].pos0 + r * pc[k].stride;
        ringattn__convert(ringattn__at(dst, at, es), ct, 1,
                          ringattn__at(t->data, ringattn__index(t, bb, pos, hh, 0), ringattn__dtype_size(t->dtype)),
                          t->dtype, t->stride[3], dim, mul);
    }
}

/* the same for the forward's K: each piece in panels (ringattn__panel_at), what the fused
   S kernel reads; the buffer then travels the ring as it is */
static void ringattn__pack_panels(const ringattn_tensor *t, const ringattn__piece *pc, int np, void *dst,
                                  ringattn_dtype ct, int64_t pitch, double mul, int64_t bb, int64_t hh)
{
    int64_t r, heads = t->shape[2], dim = t->shape[3];
    size_t es = ringattn__dtype_size(ct), ts = ringattn__dtype_size(t->dtype);
    int k;
    for (k = 0; k < np; k++) {
        int64_t at = ((bb * heads + hh) * pitch + pc[k].row0) * dim;
        for (r = 0; r < pc[k].count; r++) {
            int64_t pos = pc[k].pos0 + r * pc[k].stride, src = ringattn__index(t, bb, pos, hh, 0);
            int64_t o = at + ringattn__panel_at(r, 0, pc[k].count, dim);
            int64_t w = ringattn__panel_at(r, 1, pc[k].count, dim) - (o - at);   /* dimension stride */
            ringattn__convert(ringattn__at(dst, o, es), ct, w, ringattn__at(t->data, src, ts), t->dtype, t->stride[3], dim, mul);
        }
    }
}

static void ringattn__unpack(const void *src, ringattn_dtype ct, int64_t pitch,
                             const ringattn__piece *pc, int np, ringattn_tensor *t, int64_t bb, int64_t hh)
{
    int64_t r, c, heads = t->shape[2], dim = t->shape[3];
    size_t es = ringattn__dtype_size(ct);
    int same = (t->dtype == ct && t->stride[3] == 1), k;
    for (k = 0; k < np; k++)
    for (r = 0; r < pc[k].count; r++) {
        int64_t at = ((bb * heads + hh) * pitch + pc[k].row0 + r) * dim, pos = pc[k].pos0 + r * pc[k].stride;
        if (same) {
            memcpy(ringattn__at(t->data, ringattn__index(t, bb, pos, hh, 0), es),
                   ringattn__at(src, at, es), (size_t)dim * es);
            continue;
        }
        for (c = 0; c < dim; c++)
            ringattn__store(t->data, t->dtype, ringattn__index(t, bb, pos, hh, c), ringattn__load(src, ct, at + c));
    }
}

/* where the pieces' rows are in the caller's tensors: at their positions, or (a local chunk)
   at their buffer rows */
static void ringattn__io_pieces(const ringattn__io *io, const ringattn__piece *pc, int np,
                                ringattn__piece out[2])
{
    int k;
    for (k = 0; k < np; k++) {
        out[k] = pc[k];
        if (io->local) { out[k].pos0 = pc[k].row0; out[k].stride = 1; }
    }
}

/* an empty online-softmax state: O = 0, m = -inf, l = 0 over rows [row0, row0 + rows) */
static void ringattn__state_reset(const ringattn__problem *P, void *o, double *m, double *l,
                                  int64_t row0, int64_t rows)
{
    int64_t x;
    memset(ringattn__at(o, row0 * P->dv, P->es), 0, (size_t)(rows * P->dv) * P->es);
    for (x = row0; x < row0 + rows; x++) { m[x] = -INFINITY; l[x] = 0.0; }
}

/* Precision emulation (round_state), after member i's step: each row is held as a port
   that keeps (out, lse) between ring steps holds it, out = acc / l in state_dtype and lse in
   f32 (f64 when state_dtype is), then re-expressed as the running state m = lse, l = 1,
   acc = out, which the next step merges into exactly as before (acc / l = out and
   m + log l = lse). Rows that have seen nothing stay empty. */
static void ringattn__hold_state(const ringattn__ring *R, int i)
{
    const ringattn__problem *P = R->P;
    ringattn__member *me = ringattn__mem(R, i);
    int64_t x, n = P->b * P->h * me->rows;
    if (R->pass != 0 || !P->round_state) return;
    for (x = 0; x < n; x++)
        ringattn__hold_row(ringattn__at(me->st.fwd.o, x * P->dv, P->es), P->ct, P->dv,
                           &me->st.fwd.m[x], &me->st.fwd.l[x], P->st);
}

/* Member i before step 0, for batch bb and head hh (one of the b * h slices of a member,
   so that threads share the work even in a ring of one): its own Q_i (and dO_i, lse_i, D_i)
   and, for the first hk heads, k/v head hh of its own K/V chunk (K in panels in the forward,
   row-major in the backward, whose dK|dV rows start at zero). */
static void ringattn__member_setup(const ringattn__ring *R, const ringattn__io *io, int i,
                                   int64_t bb, int64_t hh)
{
    const ringattn__problem *P = R->P;
    ringattn__member *me = ringattn__mem(R, i);
    ringattn__piece kp[2], qio[2], kio[2];
    int nkp = ringattn__pieces(P->part, P->nk, P->p, i, kp), a;
    int64_t row0 = (bb * P->h + hh) * me->rows, r;   /* the slice's first row */
    size_t vhalf = (size_t)(P->b * P->hk * P->ck * P->d) * P->es;   /* V follows K */
    ringattn__io_pieces(io, me->qp, me->nqp, qio);
    ringattn__io_pieces(io, kp, nkp, kio);
    /* fp8 descale factors (forward only): a q head takes its k/v head's */
    ringattn__pack(io->q, qio, me->nqp, me->q, P->ct, me->rows,
                   ringattn__descale(P->qds, P->nds, P->hk, bb, hh / P->heads_per_kv), bb, hh);
    if (hh < P->hk) {
        if (R->pass == 0)
            ringattn__pack_panels(io->k, kio, nkp, me->kv[0], P->ct, P->ck,
                                  ringattn__descale(P->kds, P->nds, P->hk, bb, hh), bb, hh);
        else ringattn__pack(io->k, kio, nkp, me->kv[0], P->ct, P->ck, 1.0, bb, hh);
        ringattn__pack(io->v, kio, nkp, (char *)me->kv[0] + vhalf, P->ct, P->ck,
                       ldexp(1.0, -R->vshift) * ringattn__descale(P->vds, P->nds, P->hk, bb, hh), bb, hh);
    }
    if (R->pass == 0) {
        ringattn__state_reset(P, me->st.fwd.o, me->st.fwd.m, me->st.fwd.l, row0, me->rows);
        if (P->sinks)   /* the sink, counted once per row, before step 0: (m, l) = (sink, 1) */
            for (r = row0; r < row0 + me->rows; r++) { me->st.fwd.m[r] = P->sinks[hh]; me->st.fwd.l[r] = 1.0; }
        if (me->st.fwd.x)
            for (r = row0; r < row0 + me->rows; r++) me->st.fwd.x[r] = -INFINITY;
        return;
    }
    /* backward: the gradient of one head group's output is dO / G (forward divided by G) */
    ringattn__pack(io->dout, qio, me->nqp, me->dout, P->ct, me->rows, ringattn__group_div(P), bb, hh);
    memset(ringattn__at(me->st.bwd.dq, row0 * P->d, P->es), 0, (size_t)(me->rows * P->d) * P->es);
    if (hh < P->hk) {   /* this k/v head's dK and dV rows of the travelling accumulator */
        int64_t kv0 = (bb * P->hk + hh) * P->ck;
        memset(ringattn__at(me->dkv[0], kv0 * P->d, P->es), 0, (size_t)(P->ck * P->d) * P->es);
        memset(ringattn__at(me->dkv[0], kv0 * P->dv, P->es) + vhalf, 0, (size_t)(P->ck * P->dv) * P->es);
    }
    for (a = 0; a < me->nqp; a++)
    for (r = 0; r < me->qp[a].count; r++) {
        int64_t at = row0 + me->qp[a].row0 + r;
        int64_t pos = qio[a].pos0 + r * qio[a].stride;
        me->st.bwd.D[at] = ringattn__row_D(io->dout, io->out, bb, pos, hh, P->dv);
        me->st.bwd.lse[at] = ringattn__load(io->lse->data, io->lse->dtype, ringattn__index(io->lse, bb, hh, pos, 0));
        if (me->st.bwd.lse[at] == -INFINITY) {
            /* the row saw nothing in the forward pass: no gradient flows through it. Its P and
               dS are zeroed where its tiles are cut (by the mask, like every other row's);
               zero Q and dO rows keep an Inf of its own out of the dK and dV sums */
            memset(ringattn__at(me->q, at * P->d, P->es), 0, (size_t)P->d * P->es);
            memset(ringattn__at(me->dout, at * P->dv, P->es), 0, (size_t)P->dv * P->es);
        }
    }
}

/* Member i after the last step, for batch bb and head hh: write O_i = acc / l (and lse), or
   dQ_i and (first hk heads) the dK/dV of chunk i, which arrived home with the final hand-off. */
static void ringattn__member_finish(const ringattn__ring *R, const ringattn__io *io, int i,
                                    int64_t bb, int64_t hh)
{
    const ringattn__problem *P = R->P;
    ringattn__member *me = ringattn__mem(R, i);
    ringattn__piece qio[2];
    int64_t r, c, row0 = (bb * P->h + hh) * me->rows; int a;
    const ringattn__kernels *K = ringattn__kernels_for(P->ct);
    ringattn__io_pieces(io, me->qp, me->nqp, qio);
    if (R->pass == 0) {
        double gdiv = ringattn__group_div(P) * ldexp(1.0, R->vshift);   /* exact: a power of two */
        for (a = 0; a < me->nqp; a++)
        for (r = 0; r < me->qp[a].count; r++) {
            int64_t at = row0 + me->qp[a].row0 + r;
            int64_t pos = qio[a].pos0 + r * qio[a].stride;
            double l = me->st.fwd.l[at];
            int64_t o = ringattn__index(io->o, bb, pos, hh, 0), s3 = io->o->stride[3];
            if (io->o->dtype == RINGATTN_F32 && s3 == 1 && l != 0)   /* contiguous floats: the table's */
                K->row_out((float *)io->o->data + o, ringattn__at(me->st.fwd.o, at * P->dv, P->es), P->dv, l, gdiv);
            else if ((io->o->dtype == RINGATTN_BF16 || io->o->dtype == RINGATTN_F16) && P->ct == RINGATTN_F32) {
                int bf = io->o->dtype == RINGATTN_BF16;   /* a port's output: typed too */
                for (c = 0; c < P->dv; c++)
                    ((uint16_t *)io->o->data)[o + c * s3] = ringattn__double_to_small_float(
                        ringattn__finish_out(((const float *)me->st.fwd.o)[at * P->dv + c], l, gdiv), bf ? 7 : 10, bf ? 8 : 5);
            } else
                for (c = 0; c < P->dv; c++)
                    ringattn__store(io->o->data, io->o->dtype, o + c * s3,
                                    ringattn__finish_out(ringattn__load(me->st.fwd.o, P->ct, at * P->dv + c), l, gdiv));
            if (io->l)
                ringattn__store(io->l->data, io->l->dtype, ringattn__index(io->l, bb, hh, pos, 0),
                                ringattn__finish_lse(me->st.fwd.m[at], l));
            if (io->ml)
                ringattn__store(io->ml->data, io->ml->dtype, ringattn__index(io->ml, bb, hh, pos, 0),
                                me->st.fwd.x[at]);
        }
    } else {
        ringattn__piece kp[2], kio[2];
        int nkp = ringattn__pieces(P->part, P->nk, P->p, i, kp);
        const void *home = me->dkv[P->p & 1];
        ringattn__io_pieces(io, kp, nkp, kio);
        ringattn__unpack(me->st.bwd.dq, P->ct, me->rows, qio, me->nqp, io->dq, bb, hh);
        if (hh < P->hk) {
            ringattn__unpack(home, P->ct, P->ck, kio, nkp, io->dk, bb, hh);
            ringattn__unpack(ringattn__at(home, P->b * P->hk * P->ck * P->d, P->es),
                             P->ct, P->ck, kio, nkp, io->dv, bb, hh);
        }
    }
}

/* ---------------------------------------------------------------- validation */


static int ringattn__fail(const ringattn_config *cfg, int status, const char *fmt, ...)
{
    if (cfg && cfg->error_detail && cfg->error_detail_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cfg->error_detail, cfg->error_detail_size, fmt, ap);
        va_end(ap);
    }
    return status;
}

/* |a| of a stride that ringattn__check_view has seen is not INT64_MIN */
static int64_t ringattn__abs64(int64_t a)
{
    return a < 0 ? -a : a;
}

/* a * b for a, b >= 0, flagging overflow of int64 */
static int64_t ringattn__mul(int64_t a, int64_t b, int *ovf)
{
    if (a != 0 && b > INT64_MAX / a) { *ovf = 1; return 0; }
    return a * b;
}
static int64_t ringattn__add(int64_t a, int64_t b, int *ovf)
{
    if (b > INT64_MAX - a) { *ovf = 1; return 0; }
    return a + b;
}

#define RINGATTN__BLAS_INT_MAX 2147483647

/* one view: not NULL, known dtype, the expected shape, addressable extent, outputs without
   self-overlap through zero strides */
static int ringattn__check_view(const ringattn_config *cfg, const ringattn_tensor *t,
                                const char *name, const int64_t want[4], int output)
{
    int a, ovf = 0; int64_t extent = 0, count = 1;
    if (!t) return ringattn__fail(cfg, RINGATTN_ENULL, "%s is NULL", name);
    if (!t->data) return ringattn__fail(cfg, RINGATTN_ENULL, "%s->data is NULL", name);
    if ((int)t->dtype < (int)RINGATTN_F32 || (int)t->dtype > (int)RINGATTN_FP8_E5M2)
        return ringattn__fail(cfg, RINGATTN_EDTYPE, "%s has unknown dtype %d", name, (int)t->dtype);
    for (a = 0; a < 4; a++) {
        if (t->shape[a] < 1)
            return ringattn__fail(cfg, RINGATTN_ESHAPE, "%s.shape[%d] = %lld, must be >= 1",
                                  name, a, (long long)t->shape[a]);
        if (want && t->shape[a] != want[a])
            return ringattn__fail(cfg, RINGATTN_ESHAPE, "%s.shape[%d] = %lld, expected %lld",
                                  name, a, (long long)t->shape[a], (long long)want[a]);
    }
    for (a = 0; a < 4; a++) {
        int64_t s = t->stride[a];
        if (s == INT64_MIN) ovf = 1; else if (s < 0) s = -s;
        count = ringattn__mul(count, t->shape[a], &ovf);
        extent = ringattn__add(extent, ringattn__mul(s, t->shape[a] - 1, &ovf), &ovf);
        if (output && s == 0 && t->shape[a] > 1)
            return ringattn__fail(cfg, RINGATTN_ESTRIDE, "%s.stride[%d] is 0 on an axis of length %lld",
                                  name, a, (long long)t->shape[a]);
    }
    (void)ringattn__mul(count, 8, &ovf);
    (void)ringattn__mul(ringattn__add(extent, 1, &ovf), 8, &ovf);
    if (ovf) return ringattn__fail(cfg, RINGATTN_EOVERFLOW, "%s: element count or extent overflows 64 bits", name);
    if (output) {
        /* No two elements of an output may share an address. A sufficient test (exact for
           every layout a tensor library makes: contiguous, permuted, padded, sliced,
           reversed): with the axes longer than 1 sorted by |stride|, each |stride| is larger
           than the span of the axes before it. Interleaved layouts that happen not to overlap
           (shape (3, 2), strides (2, 3)) are refused too. */
        int ax[4], na = 0, i, j; int64_t span = 0;
        for (a = 0; a < 4; a++) if (t->shape[a] > 1) ax[na++] = a;
        for (i = 1; i < na; i++)   /* insertion sort by |stride| */
            for (j = i; j > 0 && ringattn__abs64(t->stride[ax[j]]) < ringattn__abs64(t->stride[ax[j - 1]]); j--) {
                int x = ax[j]; ax[j] = ax[j - 1]; ax[j - 1] = x;
            }
        for (i = 0; i < na; i++) {
            int64_t s = ringattn__abs64(t->stride[ax[i]]);
            if (s <= span)
                return ringattn__fail(cfg, RINGATTN_ESTRIDE, "%s overlaps itself: |stride[%d]| = %lld must exceed %lld, "
                                      "the span of its smaller strides", name, ax[i], (long long)s, (long long)span);
            span += s * (t->shape[ax[i]] - 1);   /* <= extent: no overflow */
        }
    }
    return RINGATTN_OK;
}

/* an output must not share its data pointer with any other tensor of the call */
static int ringattn__check_alias(const ringattn_config *cfg, const ringattn_tensor *const *t,
                                 const char *const *names, int n, int first_output)
{
    int i, j;
    for (i = first_output; i < n; i++) {
        if (!t[i]) continue;
        for (j = 0; j < n; j++)
            if (j != i && t[j] && t[j]->data == t[i]->data)
                return ringattn__fail(cfg, RINGATTN_EALIAS, "output %s shares its data pointer with %s",
                                      names[i], names[j]);
    }
    return RINGATTN_OK;
}

/* The range rule's scans (ringattn__float_rows, ringattn__v_shift) read whole tensors before
   the ring starts: shared out over the call's threads by rows (each row summed in the one
   order, and a max is exact: the same result for any thread count), not for small tensors. */
#define RINGATTN__SCAN_MIN 65536   /* entries */

/* row x of t (x the flat index over its first three axes) at indices *i0, *i1, *i2 */
static void ringattn__row_at(const ringattn_tensor *t, int64_t x, int64_t *i0, int64_t *i1, int64_t *i2)
{
    *i2 = x % t->shape[2]; x /= t->shape[2];
    *i1 = x % t->shape[1]; *i0 = x / t->shape[1];
}

/* row x's squared norm over its finite entries, and its largest finite |entry| in *big: by the
   kernel table's norm2 (K) for every storage type a float holds exactly (f32 in place; bf16,
   f16 and fp8 through floats, 64 at a time), f64 through doubles, in the same four sums */
static double ringattn__row_norm2(const ringattn_tensor *t, int64_t x, const ringattn__kernels *K, double *big)
{
    int64_t i0, i1, i2, c0; double s4[4] = { 0, 0, 0, 0 }, v[64]; float f[64];
    size_t ts = ringattn__dtype_size(t->dtype);
    *big = 0;
    ringattn__row_at(t, x, &i0, &i1, &i2);
    if (t->dtype == RINGATTN_F32 && t->stride[3] == 1)
        K->norm2((const float *)t->data + ringattn__index(t, i0, i1, i2, 0), t->shape[3], s4, big);
    else for (c0 = 0; c0 < t->shape[3]; c0 += 64) {   /* 64 entries at a time, through the typed loops */
        int64_t n = t->shape[3] - c0 < 64 ? t->shape[3] - c0 : 64;
        const void *src = ringattn__at(t->data, ringattn__index(t, i0, i1, i2, c0), ts);
        if (t->dtype == RINGATTN_F64) {
            ringattn__convert(v, RINGATTN_F64, 1, src, t->dtype, t->stride[3], n, 1.0);
            ringattn__norm2_d(v, n, s4, big);   /* 64 = 0 mod 4: entry c0 + c goes to the sum of c */
        } else {
            ringattn__convert(f, RINGATTN_F32, 1, src, t->dtype, t->stride[3], n, 1.0);   /* exact */
            K->norm2(f, n, s4, big);
        }
    }
    return (s4[0] + s4[1]) + (s4[2] + s4[3]);
}

/* The largest Euclidean norm of a row (the last axis) of t, over its finite entries (a NaN or
   Inf makes its own scores non-finite whatever the range); -1 with the entry in *bad when a
   finite entry is beyond the float range (the first such, in memory order of the axes). */
static int ringattn__float_rows(const ringattn_tensor *t, int nt, double *norm, double *bad)
{
    int64_t rows = t->shape[0] * t->shape[1] * t->shape[2], first = rows, x, c;
    double mx = 0;
    const ringattn__kernels *K = ringattn__kernels_for(RINGATTN_F32);
    (void)nt;
    RINGATTN__OMP(omp parallel for num_threads(nt) if(rows * t->shape[3] >= RINGATTN__SCAN_MIN) schedule(static) reduction(max: mx) reduction(min: first))
    for (x = 0; x < rows; x++) {
        double big, sum = ringattn__row_norm2(t, x, K, &big);
        if (sum > mx) mx = sum;
        if (big > FLT_MAX && x < first) first = x;
    }
    if (first < rows) {                  /* find that row's first such entry for the message */
        int64_t i0, i1, i2;
        ringattn__row_at(t, first, &i0, &i1, &i2);
        for (c = 0; c < t->shape[3]; c++) {
            double y = ringattn__load(t->data, t->dtype, ringattn__index(t, i0, i1, i2, c));
            if (y - y == 0 && fabs(y) > FLT_MAX) { *bad = y; return -1; }
        }
    }
    *norm = sqrt(mx);
    return 0;
}

/* f32 compute converts the inputs to floats and forms q.k in float before the scale: every
   finite entry of q and k (backward: of v and dout too) must be a float, and max ||q_i|| x
   max ||k_j||, which bounds every partial sum of a q.k (Cauchy-Schwarz), must stay below
   FLT_MAX / 2 before and after the scale. Otherwise RINGATTN_ERANGE: f64 compute holds what
   f32 cannot. One read of each tensor; f64 compute checks nothing. (The forward's V needs
   no check: ringattn__v_shift scales it.) In two parts, so that ringattn_mpi.h applies the
   one rule to a sequence held in chunks: ringattn__range_entries reads the tensors at hand
   (every entry, and the largest q and k row norms into norm[0], norm[1]), and
   ringattn__range_bound decides from the largest norms of the whole sequence. */
static int ringattn__range_entries(const ringattn_config *cfg, const ringattn__problem *P, int pass,
                                   const ringattn__io *io, double norm[2])
{
    static const char *const names[4] = { "q", "k", "v", "dout" };
    const ringattn_tensor *t[4];
    double nm[4] = { 0, 0, 0, 0 }, bad = 0;
    int i;
    norm[0] = norm[1] = 0;
    if (P->ct != RINGATTN_F32) return RINGATTN_OK;
    t[0] = io->q; t[1] = io->k; t[2] = io->v; t[3] = io->dout;
    for (i = 0; i < (pass ? 4 : 2); i++)
        if (ringattn__float_rows(t[i], P->nt, &nm[i], &bad))
            return ringattn__fail(cfg, RINGATTN_ERANGE, "%s holds %g, beyond the float range of f32 compute "
                                  "(compute in F64)", names[i], bad);
    norm[0] = nm[0]; norm[1] = nm[1];
    return RINGATTN_OK;
}

static int ringattn__range_bound(const ringattn_config *cfg, const ringattn__problem *P, double qnorm,
                                 double knorm)
{
    double scale = fabs(P->scale), dot = qnorm * knorm, lim = FLT_MAX / 2;
    if (P->ct != RINGATTN_F32) return RINGATTN_OK;
    if (dot > lim || scale * dot > lim)
        return ringattn__fail(cfg, RINGATTN_ERANGE, "f32 compute: a score q.k may reach max ||q|| ||k|| = %g, %g "
                              "after the scale, beyond what a float holds (%g); compute in F64", dot, scale * dot, lim);
    return RINGATTN_OK;
}

static int ringattn__check_range(const ringattn_config *cfg, const ringattn__problem *P, int pass,
                                 const ringattn__io *io)
{
    double norm[2];
    int st = ringattn__range_entries(cfg, P, pass, io, norm);
    return st != RINGATTN_OK ? st : ringattn__range_bound(cfg, P, norm[0], norm[1]);
}

/* The forward holds V as 2^-vshift V and multiplies the output by 2^vshift (both exact):
   the accumulator sum_j p_j v_j (every p_j <= 1) never exceeds nk max|V|, which must stay
   below a quarter of the compute type's largest value. Ordinary values get vshift = 0 and
   the very same arithmetic; a huge V loses only bits below the smallest subnormal, far
   inside the tolerance of docs/golden.md (which is in units of max|V|). One read of V.
   The shift never falls as max|V| grows, so the largest shift of any part of V is the shift
   of the whole (ringattn_mpi.h agrees on it that way; lim counts the whole nk). */
static int ringattn__v_shift(const ringattn__problem *P, const ringattn_tensor *v)
{
    double vmax = 0, lim = (P->ct == RINGATTN_F32 ? (double)FLT_MAX : DBL_MAX) / 4 / (double)P->nk;
    int64_t rows = v->shape[0] * v->shape[1] * v->shape[2], x;
    int shift = 0;
    const ringattn__kernels *K = ringattn__kernels_for(RINGATTN_F32);
    if (v->dtype == RINGATTN_F16 || v->dtype == RINGATTN_FP8_E4M3 || v->dtype == RINGATTN_FP8_E5M2)
        return 0;   /* |V| <= 65504 */
    RINGATTN__OMP(omp parallel for num_threads(P->nt) if(rows * v->shape[3] >= RINGATTN__SCAN_MIN) schedule(static) reduction(max: vmax))
    for (x = 0; x < rows; x++) {
        double big;
        (void)ringattn__row_norm2(v, x, K, &big);   /* its largest finite |entry| */
        if (big > vmax) vmax = big;
    }
    while (vmax > lim) { vmax *= 0.5; shift++; }
    return shift;
}

/* The config and shape on their own: every field in range, before anything is derived. */
/* a bias, mask, dbias or max_logit view: a valid view of its dtype kind whose shape is
   [b or 1][h or 1][nq][nk] (want == NULL) or exactly want */
static int ringattn__check_option_view(const ringattn_config *cfg, const ringattn_tensor *t, const char *name,
                                       const ringattn_shape *s, const int64_t *want, int is_mask, int output)
{
    ringattn_tensor u;
    int a, st;
    if (!t) return ringattn__fail(cfg, RINGATTN_ENULL, "%s is NULL", name);
    if (is_mask ? t->dtype != RINGATTN_BOOL : ((int)t->dtype < (int)RINGATTN_F32 || (int)t->dtype > (int)RINGATTN_FP8_E5M2))
        return ringattn__fail(cfg, RINGATTN_EDTYPE, "%s has dtype %d: %s", name, (int)t->dtype,
                              is_mask ? "a mask is RINGATTN_BOOL (nonzero = may attend)" : "it must be a float dtype");
    u = *t;
    if (is_mask) u.dtype = RINGATTN_FP8_E4M3;   /* one byte, for the view checks */
    if ((st = ringattn__check_view(cfg, &u, name, want, output)) != RINGATTN_OK) return st;
    if (!want) {
        int64_t full[4];
        full[0] = s->batch; full[1] = s->heads_q; full[2] = s->seq_q; full[3] = s->seq_k;
        for (a = 0; a < 4; a++)
            if (t->shape[a] != full[a] && !(a < 2 && t->shape[a] == 1))
                return ringattn__fail(cfg, RINGATTN_ESHAPE, "%s has shape [%lld, %lld, %lld, %lld], which does not "
                                      "broadcast to [batch %lld, heads %lld, nq %lld, nk %lld] (batch and heads may be 1)",
                                      name, (long long)t->shape[0], (long long)t->shape[1], (long long)t->shape[2],
                                      (long long)t->shape[3], (long long)full[0], (long long)full[1],
                                      (long long)full[2], (long long)full[3]);
    }
    return RINGATTN_OK;
}

/* the score options against the shape (ringattn_config's sinks ... max_logit) */
static int ringattn__check_options(const ringattn_config *cfg, const ringattn_shape *s, int pass)
{
    int64_t j;
    int st;
    if (!ringattn__has_options(cfg) && !cfg->alibi_size) return RINGATTN_OK;   /* alibi_size alone: checked below */
    if (cfg->num_groups > 0)
        return ringattn__fail(cfg, RINGATTN_EUNSUPPORTED, "the score options (sinks, ALiBi, bias, masks, document "
                              "ids, max_logit) do not combine with dilated attention (num_groups > 0)");
    if (cfg->sinks)
        for (j = 0; j < s->heads_q; j++)
            if (cfg->sinks[j] != cfg->sinks[j] || cfg->sinks[j] == INFINITY)
                return ringattn__fail(cfg, RINGATTN_ECONFIG, "sinks[%lld] = %g: a sink is finite or -inf (no sink)",
                                      (long long)j, cfg->sinks[j]);
    if (pass == 1 && cfg->dsinks && !cfg->sinks)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "dsinks given without sinks");
    if (cfg->alibi_slopes || cfg->alibi_size) {
        if (!cfg->alibi_slopes)
            return ringattn__fail(cfg, RINGATTN_ENULL, "alibi_size = %d but alibi_slopes is NULL", cfg->alibi_size);
        if ((int64_t)cfg->alibi_size != s->heads_q && (int64_t)cfg->alibi_size != s->batch * s->heads_q)
            return ringattn__fail(cfg, RINGATTN_ESHAPE, "alibi_size = %d: one slope per q head (%lld) or per batch "
                                  "and q head (%lld)", cfg->alibi_size, (long long)s->heads_q,
                                  (long long)(s->batch * s->heads_q));
        for (j = 0; j < cfg->alibi_size; j++)
            if (!(cfg->alibi_slopes[j] - cfg->alibi_slopes[j] == 0))
                return ringattn__fail(cfg, RINGATTN_ECONFIG, "alibi_slopes[%lld] = %g is not finite",
                                      (long long)j, cfg->alibi_slopes[j]);
    }
    if (cfg->bias && (st = ringattn__check_option_view(cfg, cfg->bias, "bias", s, NULL, 0, 0)) != RINGATTN_OK)
        return st;
    if (pass == 1 && cfg->dbias) {
        if (!cfg->bias) return ringattn__fail(cfg, RINGATTN_ECONFIG, "dbias given without bias");
        if ((st = ringattn__check_option_view(cfg, cfg->dbias, "dbias", s, cfg->bias->shape, 0, 1)) != RINGATTN_OK)
            return st;
        if (cfg->dbias->data == cfg->bias->data)
            return ringattn__fail(cfg, RINGATTN_EALIAS, "dbias shares its data with bias");
    }
    if (cfg->mask && (st = ringattn__check_option_view(cfg, cfg->mask, "mask", s, NULL, 1, 0)) != RINGATTN_OK)
        return st;
    if (!cfg->document_ids_q != !cfg->document_ids_k)
        return ringattn__fail(cfg, RINGATTN_ENULL, "document ids: give both document_ids_q and document_ids_k, or neither");
    if (pass == 0 && cfg->max_logit) {
        int64_t want[4];
        want[0] = s->batch; want[1] = s->heads_q; want[2] = s->seq_q; want[3] = 1;
        if ((st = ringattn__check_option_view(cfg, cfg->max_logit, "max_logit", s, want, 0, 1)) != RINGATTN_OK)
            return st;
    }
    return RINGATTN_OK;
}

static int ringattn__validate(const ringattn_config *cfg, const ringattn_shape *s, int pass)
{
    if (!cfg) return RINGATTN_ENULL;
    if (!s) return ringattn__fail(cfg, RINGATTN_ENULL, "shape is NULL");
    if (s->batch < 1 || s->seq_q < 1 || s->seq_k < 1 || s->heads_q < 1 || s->heads_kv < 1 ||
        s->dim_qk < 1 || s->dim_v < 1)
        return ringattn__fail(cfg, RINGATTN_ESHAPE, "every dimension must be >= 1");
    if (s->heads_q % s->heads_kv != 0)
        return ringattn__fail(cfg, RINGATTN_ESHAPE, "q heads (%lld) must be a multiple of k/v heads (%lld)",
                              (long long)s->heads_q, (long long)s->heads_kv);
    if (pass != 0 && pass != 1) return ringattn__fail(cfg, RINGATTN_ECONFIG, "pass must be 0 or 1");
    if (cfg->compute != RINGATTN_F32 && cfg->compute != RINGATTN_F64)
        return ringattn__fail(cfg, RINGATTN_EDTYPE, "compute dtype must be RINGATTN_F32 or RINGATTN_F64");
    if (cfg->causal < 0 || cfg->causal > 2)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "causal = %d, must be 0, 1 or 2", cfg->causal);
    if (!(cfg->scale == cfg->scale) || cfg->scale == INFINITY || cfg->scale == -INFINITY)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "scale must be finite (0 = 1/sqrt(dim))");
    if (cfg->ring_size < 0) return ringattn__fail(cfg, RINGATTN_ECONFIG, "ring_size = %d < 0", cfg->ring_size);
    if (cfg->num_threads < 0) return ringattn__fail(cfg, RINGATTN_ECONFIG, "num_threads = %d < 0", cfg->num_threads);
    if (cfg->window_left < -1 || cfg->window_right < -1)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "window_left/right must be >= -1 (-1 = unbounded)");
    if ((int)cfg->mix != RINGATTN_MIX_HEAD_GROUPS && (int)cfg->mix != RINGATTN_MIX_LSE)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "mix = %d is not a ringattn_mix", (int)cfg->mix);
    if ((int)cfg->partition < 0 || (int)cfg->partition > 2)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "partition = %d is not a ringattn_partition", (int)cfg->partition);
    if (!(cfg->softcap >= 0) || cfg->softcap == INFINITY)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "softcap must be finite and >= 0");
    /* f32 compute carries scale and softcap as floats: they must be floats (a softcap that
       rounds to 0 would divide 0 by 0) */
    if (cfg->compute == RINGATTN_F32 && fabs(cfg->scale) > FLT_MAX)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "scale = %g is beyond the float range of f32 compute "
                              "(|scale| <= %g; compute in F64)", cfg->scale, (double)FLT_MAX);
    if (cfg->compute == RINGATTN_F32 && cfg->softcap != 0 && (cfg->softcap < FLT_MIN || cfg->softcap > FLT_MAX))
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "softcap = %g is not a normal float, as f32 compute needs "
                              "(%g <= softcap <= %g, or 0; compute in F64)", cfg->softcap, (double)FLT_MIN, (double)FLT_MAX);
    if (cfg->num_seqs < 0) return ringattn__fail(cfg, RINGATTN_ECONFIG, "num_seqs < 0");
    if (cfg->trace_blocks != 0 && cfg->trace_blocks != 1)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "trace_blocks = %d, must be 0 or 1", cfg->trace_blocks);
    if (cfg->num_seqs == 0 && (cfg->cu_seqlens_q || cfg->cu_seqlens_k))
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "cu_seqlens given but num_seqs = 0");
    if (cfg->num_groups < 0) return ringattn__fail(cfg, RINGATTN_ECONFIG, "num_groups = %d < 0", cfg->num_groups);
    if (cfg->round_p != 0 && cfg->round_p != 1)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "round_p = %d, must be 0 or 1", cfg->round_p);
    if (cfg->round_p && ((int)cfg->p_dtype < (int)RINGATTN_F32 || (int)cfg->p_dtype > (int)RINGATTN_FP8_E5M2))
        return ringattn__fail(cfg, RINGATTN_EDTYPE, "p_dtype = %d is not a ringattn_dtype", (int)cfg->p_dtype);
    if (cfg->round_s != 0 && cfg->round_s != 1)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "round_s = %d, must be 0 or 1", cfg->round_s);
    if (cfg->round_s && !cfg->round_p)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "round_s rounds the scores to p_dtype: it needs round_p = 1");
    if (cfg->round_block != 0 && cfg->round_block != 1)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "round_block = %d, must be 0 or 1", cfg->round_block);
    if (cfg->round_block && ((int)cfg->block_dtype < (int)RINGATTN_F32 || (int)cfg->block_dtype > (int)RINGATTN_FP8_E5M2))
        return ringattn__fail(cfg, RINGATTN_EDTYPE, "block_dtype = %d is not a ringattn_dtype", (int)cfg->block_dtype);
    if (cfg->descale_size < 0 || (cfg->descale_size > 1 && cfg->descale_size != s->batch * s->heads_kv))
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "descale_size = %d: 0 (none), 1 or batch * k/v heads = %lld",
                              cfg->descale_size, (long long)(s->batch * s->heads_kv));
    if (cfg->descale_size == 0 && (cfg->q_descale || cfg->k_descale || cfg->v_descale))
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "q/k/v_descale given but descale_size = 0");
    if (cfg->descale_size > 0) {
        const double *d[3]; const char *nm[3] = { "q_descale", "k_descale", "v_descale" }; int a, j;
        d[0] = cfg->q_descale; d[1] = cfg->k_descale; d[2] = cfg->v_descale;
        if (pass == 1)
            return ringattn__fail(cfg, RINGATTN_EUNSUPPORTED, "descale factors are for the forward (FlashAttention 3's "
                                  "fp8 forward); the backward refuses them");
        for (a = 0; a < 3; a++)
            for (j = 0; d[a] && j < cfg->descale_size; j++)
                if (!(d[a][j] - d[a][j] == 0))
                    return ringattn__fail(cfg, RINGATTN_ECONFIG, "%s[%d] is not finite", nm[a], j);
    }
    if (cfg->round_state != 0 && cfg->round_state != 1)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "round_state = %d, must be 0 or 1", cfg->round_state);
    if (cfg->round_state && ((int)cfg->state_dtype < (int)RINGATTN_F32 || (int)cfg->state_dtype > (int)RINGATTN_FP8_E5M2))
        return ringattn__fail(cfg, RINGATTN_EDTYPE, "state_dtype = %d is not a ringattn_dtype", (int)cfg->state_dtype);
    if (s->dim_qk > RINGATTN__BLAS_INT_MAX || s->dim_v > RINGATTN__BLAS_INT_MAX)
        return ringattn__fail(cfg, RINGATTN_EOVERFLOW, "head dimension exceeds a BLAS int");
    return ringattn__check_options(cfg, s, pass);
}

/* The problem read off a valid config and shape (ringattn__problem_set), checked where the
   fields alone do not settle it: the varlen offsets against the token counts, the dilated
   pattern against the sequence, and the ring size against the rows every member needs. */
static int ringattn__check_problem(const ringattn_config *cfg, const ringattn_shape *s,
                                   const ringattn__problem *P)
{
    int g;
    int64_t minn;
    if (cfg->num_seqs > 0) {    /* varlen: packed sequences along the token axis, batch 1 */
        const int64_t *cu[2]; const char *nm[2] = { "cu_seqlens_q", "cu_seqlens_k" };
        int64_t tot[2]; int w, j;
        cu[0] = cfg->cu_seqlens_q; cu[1] = cfg->cu_seqlens_k; tot[0] = s->seq_q; tot[1] = s->seq_k;
        if (!cu[0] || !cu[1])
            return ringattn__fail(cfg, RINGATTN_ENULL, "num_seqs = %d but cu_seqlens_q or cu_seqlens_k is NULL",
                                  cfg->num_seqs);
        if (s->batch != 1)
            return ringattn__fail(cfg, RINGATTN_ESHAPE, "varlen packs sequences along the token axis: batch must be 1");
        if (cfg->num_groups > 0)
            return ringattn__fail(cfg, RINGATTN_EUNSUPPORTED, "varlen together with dilation is not implemented");
        for (w = 0; w < 2; w++) {
            if (cu[w][0] != 0)
                return ringattn__fail(cfg, RINGATTN_ECONFIG, "%s[0] = %lld, must be 0", nm[w], (long long)cu[w][0]);
            for (j = 1; j <= cfg->num_seqs; j++)
                if (cu[w][j] < cu[w][j - 1])
                    return ringattn__fail(cfg, RINGATTN_ECONFIG, "%s[%d] = %lld < %s[%d] = %lld: not increasing",
                                          nm[w], j, (long long)cu[w][j], nm[w], j - 1, (long long)cu[w][j - 1]);
            if (cu[w][cfg->num_seqs] != tot[w])
                return ringattn__fail(cfg, RINGATTN_ECONFIG, "%s[%d] = %lld, must end at the token count %lld",
                                      nm[w], cfg->num_seqs, (long long)cu[w][cfg->num_seqs], (long long)tot[w]);
        }
    }
    if (P->part == RINGATTN_STRIPED && cfg->num_groups > 0)
        return ringattn__fail(cfg, RINGATTN_EUNSUPPORTED, "the striped partition together with dilation is not implemented");

    if (P->groups > 0) {
        if (!P->seg || !P->rate)
            return ringattn__fail(cfg, RINGATTN_ENULL, "num_groups = %d but segment_lengths or dilation_rates is NULL",
                                  P->groups);
        if (P->nq != P->nk)
            return ringattn__fail(cfg, RINGATTN_ESEGMENT, "dilated attention needs nq == nk (got %lld and %lld)",
                                  (long long)P->nq, (long long)P->nk);
        if (P->wl >= 0 || P->wr >= 0)
            return ringattn__fail(cfg, RINGATTN_EUNSUPPORTED, "a window together with dilation is not implemented");
        for (g = 0; g < P->groups; g++) {
            if (P->seg[g] < 1)
                return ringattn__fail(cfg, RINGATTN_ESEGMENT, "segment_lengths[%d] = %lld, must be >= 1",
                                      g, (long long)P->seg[g]);
            if (P->rate[g] < 1)
                return ringattn__fail(cfg, RINGATTN_ESEGMENT, "dilation_rates[%d] = %lld, must be >= 1",
                                      g, (long long)P->rate[g]);
            if (P->nq % P->seg[g] != 0)
                return ringattn__fail(cfg, RINGATTN_ESEGMENT,
                                      "sequence length %lld is not a multiple of segment_lengths[%d] = %lld",
                                      (long long)P->nq, g, (long long)P->seg[g]);
            if (P->rate[g] > RINGATTN__BLAS_INT_MAX / (P->d > P->dv ? P->d : P->dv))
                return ringattn__fail(cfg, RINGATTN_EOVERFLOW, "dilation_rates[%d] * dim exceeds a BLAS int", g);
        }
    }

    minn = (P->nq < P->nk) ? P->nq : P->nk;
    if (cfg->ring_size > minn)
        return ringattn__fail(cfg, RINGATTN_ECONFIG,
                              "ring_size = %d exceeds min(nq, nk) = %lld: every member needs a query and a key",
                              cfg->ring_size, (long long)minn);
    if (P->part == RINGATTN_ZIGZAG && cfg->ring_size > minn / 2)
        return ringattn__fail(cfg, RINGATTN_ECONFIG,
                              "zigzag: ring_size = %d exceeds min(nq, nk) / 2 = %lld (each member takes two chunks of 2p)",
                              cfg->ring_size, (long long)(minn / 2));
    if (P->part == RINGATTN_ZIGZAG && cfg->ring_size > 0x3fffffff)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "zigzag: ring_size = %d, at most 2^30 - 1 (its 2p chunks are "
                              "numbered by an int)", cfg->ring_size);
    if (P->part == RINGATTN_ZIGZAG) minn /= 2;
    if (minn < 1)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "zigzag needs at least 2 queries and 2 keys");
    return RINGATTN_OK;
}

/* The ring of a checked problem: its size p (cfg->ring_size, else one member per thread, as
   many as the rows allow), the units, the threads (no more than (member, unit) pairs), the
   chunk rows and the tiles. *ovf is set when a product overflowed. */
static void ringattn__size_ring(const ringattn_config *cfg, ringattn__problem *P, int *ovf)
{
    int nt;
    int64_t minn = (P->nq < P->nk) ? P->nq : P->nk;
    if (P->part == RINGATTN_ZIGZAG) minn /= 2;   /* each member takes two chunks of 2p */
#ifdef _OPENMP
    nt = cfg->num_threads ? cfg->num_threads : omp_get_max_threads();
#else
    nt = 1;   /* no OpenMP: members run one after another whatever num_threads says */
#endif
    P->p = cfg->ring_size ? cfg->ring_size : (int)(nt < minn ? nt : minn);
    P->units = ringattn__mul(P->b, P->hk, ovf);
    {   /* no idle threads: at most one per (member, unit) */
        int big = 0; int64_t work = ringattn__mul(P->units, P->p, &big);
        if (big) *ovf = 1; else if (work < nt) nt = (int)work;
    }
    P->nt = nt;
    P->cq = ringattn__max_rows(P->part, P->nq, P->p);
    P->ck = ringattn__max_rows(P->part, P->nk, P->p);
    P->tq = P->cq < RINGATTN_TILE_Q ? P->cq : RINGATTN_TILE_Q;
    P->tk = P->ck < RINGATTN_TILE_K ? P->ck : RINGATTN_TILE_K;
}

/* The memory plan of a sized problem (what ringattn__ring_alloc allocates), in bytes per
   member, each term overflow-checked (ovf: an overflow already met sizing the ring). */
static int ringattn__plan_bytes(const ringattn_config *cfg, const ringattn__problem *P, int pass, int ovf,
                                ringattn_plan_info *plan)
{
    int64_t es, x;
    /* the memory plan, in bytes per member, each term overflow-checked */
    es = (int64_t)P->es;
    memset(plan, 0, sizeof *plan);
    plan->ring_size = P->p; plan->chunk_q = P->cq; plan->chunk_k = P->ck;
    x = ringattn__mul(ringattn__mul(P->b, P->h, &ovf), P->cq, &ovf);          /* rows of all heads */
    plan->q_bytes   = (size_t)ringattn__mul(ringattn__mul(x, pass ? P->d + P->dv : P->d, &ovf), es, &ovf);
    plan->acc_bytes = (size_t)ringattn__mul(ringattn__mul(x, pass ? P->d : P->dv, &ovf), es, &ovf);
    plan->row_bytes = (size_t)ringattn__mul(x, 2 * (int64_t)sizeof(double), &ovf);
    if (pass == 0 && (cfg->trace_blocks || cfg->round_block)) {   /* a second (acc, m, l): the block state */
        plan->acc_bytes = (size_t)ringattn__mul((int64_t)plan->acc_bytes, 2, &ovf);
        plan->row_bytes = (size_t)ringattn__mul((int64_t)plan->row_bytes, 2, &ovf);
    }
    if (pass == 0 && P->max_logit)   /* the rows' score maxima */
        plan->row_bytes = (size_t)ringattn__add((int64_t)plan->row_bytes, ringattn__mul(x, (int64_t)sizeof(double), &ovf), &ovf);
    x = ringattn__mul(ringattn__mul(ringattn__mul(P->b, P->hk, &ovf), P->ck, &ovf),
                      ringattn__add(P->d, P->dv, &ovf), &ovf);                  /* one K|V chunk     */
    plan->kv_bytes  = (size_t)ringattn__mul(ringattn__mul(x, 2, &ovf), es, &ovf);
    plan->dkv_bytes = pass ? plan->kv_bytes : 0;
    {   /* score (and dP) rows of one group, copied or gathered panels, panel pointers */
        int64_t lds, n[4];
        ringattn__tile_scratch(P, pass, &lds, n);
        x = ringattn__mul(ringattn__add(ringattn__add(n[0], n[1], &ovf), n[2], &ovf), es, &ovf);
        x = ringattn__add(x, ringattn__mul(n[3], (int64_t)sizeof(void *), &ovf), &ovf);
    }
    plan->tile_bytes = (size_t)ringattn__add(x, 2 * P->tq * (int64_t)sizeof(int64_t), &ovf);
    if (P->pairs)   /* a tile's pair masks and positions (pair by pair only) */
        plan->tile_bytes = (size_t)ringattn__add((int64_t)plan->tile_bytes,
                                                 ringattn__add(ringattn__mul(P->tq, P->tk, &ovf),
                                                               (P->tq + P->tk) * (int64_t)sizeof(int64_t), &ovf), &ovf);
    if (pass == 1 && P->softcap > 0 && (P->modify || P->emask)) {
        int64_t lds, n[4];
        ringattn__tile_scratch(P, pass, &lds, n);
        plan->tile_bytes = (size_t)ringattn__add((int64_t)plan->tile_bytes, (lds > P->tk ? lds : P->tk) * es, &ovf);
    }
    x = ringattn__add((int64_t)plan->q_bytes, (int64_t)plan->acc_bytes, &ovf);
    x = ringattn__add(x, (int64_t)plan->row_bytes, &ovf);
    x = ringattn__add(x, (int64_t)plan->kv_bytes, &ovf);
    x = ringattn__add(x, (int64_t)plan->dkv_bytes, &ovf);
    plan->member_bytes = (size_t)x;
    plan->num_threads = P->nt;
    plan->shared_bytes = (size_t)ringattn__add(ringattn__mul(P->p, (int64_t)sizeof(ringattn__member), &ovf),
                                               ringattn__mul(P->nt, (int64_t)sizeof(ringattn__scratch), &ovf), &ovf);
    if (pass == 1 && P->dbias)   /* dbias: the gradient of every (batch, head) score, [b][h][nq][nk] f64 */
        plan->shared_bytes = (size_t)ringattn__add((int64_t)plan->shared_bytes,
            ringattn__mul(ringattn__mul(ringattn__mul(P->b, P->h, &ovf), ringattn__mul(P->nq, P->nk, &ovf), &ovf),
                          (int64_t)sizeof(double), &ovf), &ovf);
    x = ringattn__add(ringattn__mul(x, P->p, &ovf), ringattn__mul((int64_t)plan->tile_bytes, P->nt, &ovf), &ovf);
    x = ringattn__add(x, (int64_t)plan->shared_bytes, &ovf);
    plan->total_bytes = (size_t)x;
    if (ovf || (uint64_t)x > (uint64_t)SIZE_MAX)
        return ringattn__fail(cfg, RINGATTN_EOVERFLOW, "the per-member workspace overflows 64 bits");
    return RINGATTN_OK;
}

/* Config + shape -> resolved problem and the per-member memory plan: validate, read the
   problem off them, check it, size the ring, plan the bytes. The entry points and
   ringattn_plan() share this one path, so the plan is exactly what a call will allocate. */
static int ringattn__resolve(const ringattn_config *cfg, const ringattn_shape *s, int pass,
                             ringattn__problem *P, ringattn_plan_info *plan)
{
    int st, ovf = 0;
    if ((st = ringattn__validate(cfg, s, pass)) != RINGATTN_OK) return st;
    memset(P, 0, sizeof *P);
    ringattn__problem_set(P, cfg, s);
    if ((st = ringattn__check_problem(cfg, s, P)) != RINGATTN_OK) return st;
    ringattn__size_ring(cfg, P, &ovf);
    return ringattn__plan_bytes(cfg, P, pass, ovf, plan);
}

RINGATTN_API int ringattn_plan(const ringattn_config *cfg, const ringattn_shape *shape, int pass,
                               ringattn_plan_info *plan)
{
    ringattn__problem P; ringattn_plan_info tmp; int st;
    if (!cfg) return RINGATTN_ENULL;
    if (!plan) return ringattn__fail(cfg, RINGATTN_ENULL, "plan is NULL");
    st = ringattn__resolve(cfg, shape, pass, &P, &tmp);
    if (st == RINGATTN_OK) *plan = tmp;
    return st;
}

/* ---------------------------------------------------------------- allocation */

/* bytes of elements of elem bytes from B, added to a byte counter (a member's or a
   thread's: the measured side of the plan); NULL in the sizing pass */
static void *ringattn__carve(ringattn__arena *B, size_t *counter, size_t bytes, size_t elem)
{
    int c = elem >= 8 ? 0 : elem >= 4 ? 1 : 2;
    void *p;
    if (!B->base) { B->size[c] += bytes; return NULL; }
    p = B->base + B->at[c];
    B->at[c] += bytes;
    *counter += bytes;
    return p;
}

/* Huge pages for a large block. A call writes every byte of its block, and each 4 KiB page
   it touches first costs a page fault and a cleared page: a tenth of a dilated forward at
   n = 65536 (a 512 MiB block), 3-5 % of a dense one at n = 4096. 2 MiB pages fault 512 times
   less. Only the 2 MiB-aligned interior is advised (the ends may share pages with other
   allocations), only for malloc's memory (a user allocator's is its own business), and only
   as advice: where the kernel declines, the pages stay small. The bits of every result are
   the same either way. Off with -DRINGATTN_NO_HUGEPAGES. */
static void ringattn__arena_advise(char *base, size_t bytes)
{
#ifdef RINGATTN__HUGEPAGES
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t a = ((uintptr_t)base + huge - 1) & ~(huge - 1), z = ((uintptr_t)base + bytes) & ~(huge - 1);
    if (bytes >= 2 * huge && z > a) (void)madvise((void *)a, (size_t)(z - a), MADV_HUGEPAGE);
#else
    (void)base; (void)bytes;
#endif
}

/* after the sizing pass: the block, and each class's cursor at its start; 0 if the
   allocation failed */
static int ringattn__arena_alloc(ringattn__arena *B, void *user)
{
    size_t total = B->size[0] + B->size[1] + B->size[2];
    B->base = (char *)RINGATTN_MALLOC(total ? total : 1, user);
    if (B->base) ringattn__arena_advise(B->base, total);
    B->at[0] = 0; B->at[1] = B->size[0]; B->at[2] = B->size[0] + B->size[1];
    return B->base != NULL;
}

/* a thread's scratch tile (ringattn__scratch), sized by ringattn__tile_scratch; the ring's
   threads and the KV-cache path's take it from here */
static void ringattn__scratch_alloc(const ringattn__problem *P, int pass, ringattn__scratch *w, ringattn__arena *B)
{
    size_t es = P->es;
    int64_t n[4];
    ringattn__tile_scratch(P, pass, &w->lds, n);
    w->kern = ringattn__kernels_for(P->ct);   /* the kernels, chosen once per call */
    w->s   = ringattn__carve(B, &w->bytes, (size_t)n[0] * es, es);
    if (n[1]) w->dp = ringattn__carve(B, &w->bytes, (size_t)n[1] * es, es);
    if (n[2]) w->kg = ringattn__carve(B, &w->bytes, (size_t)n[2] * es, es);
    if (n[3]) w->pan = (const void **)ringattn__carve(B, &w->bytes, (size_t)n[3] * sizeof(void *), sizeof(void *));
    w->lo = (int64_t *)ringattn__carve(B, &w->bytes, (size_t)P->tq * sizeof(int64_t), sizeof(int64_t));
    w->hi = (int64_t *)ringattn__carve(B, &w->bytes, (size_t)P->tq * sizeof(int64_t), sizeof(int64_t));
    if (P->pairs) {   /* the pair masks of a tile (pair by pair only) */
        w->vis = (unsigned char *)ringattn__carve(B, &w->bytes, (size_t)(P->tq * P->tk), 1);
        w->qpos = (int64_t *)ringattn__carve(B, &w->bytes, (size_t)P->tq * sizeof(int64_t), sizeof(int64_t));
        w->kpos = (int64_t *)ringattn__carve(B, &w->bytes, (size_t)P->tk * sizeof(int64_t), sizeof(int64_t));
    }
    if (pass == 1 && P->softcap > 0 && (P->modify || P->emask))   /* one row of softcapped scores */
        w->sc = ringattn__carve(B, &w->bytes, (size_t)(w->lds > P->tk ? w->lds : P->tk) * es, es);
}

static void ringattn__ring_free(ringattn__ring *R, void *user)
{
    if (R->blk.base) RINGATTN_FREE(R->blk.base, user);
    R->blk.base = NULL;
    if (R->m) RINGATTN_FREE(R->m, user);
    R->m = NULL;
    if (R->w) RINGATTN_FREE(R->w, user);
    R->w = NULL;
}

/* member i's private buffers, sized by its own rows (K/V buffers by the largest chunk, since
   every chunk passes through them), from B */
static void ringattn__member_alloc(ringattn__ring *R, int i, ringattn__arena *B)
{
    const ringattn__problem *P = R->P;
    size_t es = P->es;
    ringattn__member *me = ringattn__mem(R, i);
    size_t rows;
    me->nqp = ringattn__pieces(P->part, P->nq, P->p, i, me->qp);
    me->rows = ringattn__piece_rows(me->qp, me->nqp);
    ringattn__span(me->qp, me->nqp, &me->q0, &me->q1);
    rows = (size_t)(P->b * P->h * me->rows);
    me->q    = ringattn__carve(B, &me->bytes, rows * (size_t)P->d * es, es);
    if (R->pass == 0) {
        me->st.fwd.o   = ringattn__carve(B, &me->bytes, rows * (size_t)P->dv * es, es);
        me->st.fwd.m   = (double *)ringattn__carve(B, &me->bytes, rows * sizeof(double), sizeof(double));
        me->st.fwd.l   = (double *)ringattn__carve(B, &me->bytes, rows * sizeof(double), sizeof(double));
        if (P->max_logit)
            me->st.fwd.x = (double *)ringattn__carve(B, &me->bytes, rows * sizeof(double), sizeof(double));
    } else {
        me->st.bwd.dq  = ringattn__carve(B, &me->bytes, rows * (size_t)P->d * es, es);
        me->st.bwd.lse = (double *)ringattn__carve(B, &me->bytes, rows * sizeof(double), sizeof(double));
        me->st.bwd.D   = (double *)ringattn__carve(B, &me->bytes, rows * sizeof(double), sizeof(double));
    }
    me->kv[0] = ringattn__carve(B, &me->bytes, R->kv_bytes, es);
    me->kv[1] = ringattn__carve(B, &me->bytes, R->kv_bytes, es);
    if (R->pass == 1) {
        me->dout   = ringattn__carve(B, &me->bytes, rows * (size_t)P->dv * es, es);
        me->dkv[0] = ringattn__carve(B, &me->bytes, R->kv_bytes, es);
        me->dkv[1] = ringattn__carve(B, &me->bytes, R->kv_bytes, es);
    }
    if (R->pass == 0 && (R->cfg->trace_blocks || R->cfg->round_block)) {   /* the block state */
        me->block_o = ringattn__carve(B, &me->bytes, rows * (size_t)P->dv * es, es);
        me->block_m = (double *)ringattn__carve(B, &me->bytes, rows * sizeof(double), sizeof(double));
        me->block_l = (double *)ringattn__carve(B, &me->bytes, rows * sizeof(double), sizeof(double));
    }
    /* rows of a K/V buffer past a shorter chunk are never read. In one process buffers
       change hands without a copy, so they stay as they are (zeroing them would write two
       whole K/V buffers per member per call); ringattn_mpi.h, which sends whole buffers,
       zeroes its own */
}

/* the private buffers of members m0 .. m0 + nm - 1 (all of them, or one MPI rank's) and every
   thread's scratch tile: sized, then carved from one block (ringattn__arena) */
static int ringattn__ring_alloc(ringattn__ring *R, void *user)
{
    const ringattn__problem *P = R->P;
    ringattn__arena *B = &R->blk;
    int i, carve;
    R->kv_bytes = (size_t)(P->b * P->hk * P->ck * (P->d + P->dv)) * P->es;
    R->m = (ringattn__member *)RINGATTN_MALLOC(sizeof(ringattn__member) * (size_t)R->nm, user);
    if (!R->m) return RINGATTN_ENOMEM;
    memset(R->m, 0, sizeof(ringattn__member) * (size_t)R->nm);
    R->w = (ringattn__scratch *)RINGATTN_MALLOC(sizeof(ringattn__scratch) * (size_t)P->nt, user);
    if (!R->w) { ringattn__ring_free(R, user); return RINGATTN_ENOMEM; }
    memset(R->w, 0, sizeof(ringattn__scratch) * (size_t)P->nt);
    memset(B, 0, sizeof *B);
    for (carve = 0; carve < 2; carve++) {   /* the sizes, then the block and its pieces */
        if (carve && !ringattn__arena_alloc(B, user)) { ringattn__ring_free(R, user); return RINGATTN_ENOMEM; }
        for (i = 0; i < P->nt; i++) ringattn__scratch_alloc(P, R->pass, &R->w[i], B);
        for (i = R->m0; i < R->m0 + R->nm; i++) ringattn__member_alloc(R, i, B);
    }
    return RINGATTN_OK;
}

static void ringattn__fill_stats(const ringattn__ring *R, const ringattn_plan_info *plan,
                                 ringattn_stats *st)
{
    int i;
    memset(st, 0, sizeof *st);
    st->ring_size = R->P->p; st->num_threads = R->P->nt; st->ring_steps = R->P->p;
    st->planned_bytes_per_member = plan->member_bytes;
    st->shared_bytes = plan->shared_bytes;
    for (i = 0; i < R->nm; i++) {     /* summed in member order: deterministic */
        const ringattn__member *me = &R->m[i];
        st->handoffs += me->handoffs;
        st->blocks_computed += me->blocks_computed;
        st->blocks_skipped += me->blocks_skipped;
        st->tiles_computed += me->tiles;
        st->flops += (double)me->flops;
        if (i == 0 || (double)me->flops < st->member_flops_min) st->member_flops_min = (double)me->flops;
        if (i == 0 || (double)me->flops > st->member_flops_max) st->member_flops_max = (double)me->flops;
        if (me->bytes > st->peak_bytes_per_member) st->peak_bytes_per_member = me->bytes;
    }
    for (i = 0; i < R->P->nt; i++)
        if (R->w[i].bytes > st->scratch_bytes_per_thread) st->scratch_bytes_per_thread = R->w[i].bytes;
}

/* backward with sinks: dsinks[hh] for every head (ringattn__dsink, one fixed order) */
static void ringattn__dsinks(const ringattn__problem *P, const ringattn__io *io, double *dsinks)
{
    int64_t hh;
    for (hh = 0; hh < P->h; hh++) dsinks[hh] = ringattn__dsink(P, io->lse, io->dout, io->out, hh);
}

/* backward with dbias: the [b][h][nq][nk] score gradients summed over the bias's broadcast
   axes into its shape (ringattn__dbias_sum) */
static void ringattn__dbias_reduce(const ringattn__problem *P, const double *g, ringattn_tensor *db)
{
    int64_t tb, th, i, j;
    for (tb = 0; tb < db->shape[0]; tb++)
    for (th = 0; th < db->shape[1]; th++)
    for (i = 0; i < P->nq; i++)
    for (j = 0; j < P->nk; j++)
        ringattn__store(db->data, db->dtype, ringattn__index(db, tb, th, i, j), ringattn__dbias_sum(P, g, db, tb, th, i, j));
}

static int ringattn__execute(const ringattn_config *cfg, const ringattn_shape *s, int pass,
                             const ringattn__io *io)
{
    ringattn__problem P; ringattn_plan_info plan; ringattn__ring R; int st, i, failed;
    double *dbias = NULL;
    st = ringattn__resolve(cfg, s, pass, &P, &plan);
    if (st != RINGATTN_OK) return st;
    if ((st = ringattn__check_range(cfg, &P, pass, io)) != RINGATTN_OK) return st;
    memset(&R, 0, sizeof R);
    R.P = &P; R.cfg = cfg; R.pass = pass; R.m0 = 0; R.nm = P.p;
    if (pass == 0) R.vshift = ringattn__v_shift(&P, io->v);
    if (pass == 1 && P.dbias) {
        size_t n = (size_t)(P.b * P.h * P.nq * P.nk);
        dbias = (double *)RINGATTN_MALLOC(n * sizeof(double), cfg->alloc_user);
        if (!dbias)
            return ringattn__fail(cfg, RINGATTN_ENOMEM, "could not allocate dbias's workspace (%zu bytes)",
                                  n * sizeof(double));
        memset(dbias, 0, n * sizeof(double));
    }
    if (ringattn__ring_alloc(&R, cfg->alloc_user) != RINGATTN_OK) {
        if (dbias) RINGATTN_FREE(dbias, cfg->alloc_user);
        return ringattn__fail(cfg, RINGATTN_ENOMEM, "could not allocate the ring's buffers (%zu bytes per member)",
                              plan.member_bytes);
    }
    for (i = 0; i < P.nt; i++) R.w[i].dbias = dbias;
    ringattn__ring_loop(&R, io);
    failed = ringattn__ring_failed(&R);
    if (!failed && pass == 1) {
        if (dbias) ringattn__dbias_reduce(&P, dbias, cfg->dbias);
        if (P.sinks && cfg->dsinks) ringattn__dsinks(&P, io, cfg->dsinks);
    }
    if (!failed && cfg->stats) ringattn__fill_stats(&R, &plan, cfg->stats);
    ringattn__ring_free(&R, cfg->alloc_user);
    if (dbias) RINGATTN_FREE(dbias, cfg->alloc_user);
    if (failed)
        return ringattn__fail(cfg, RINGATTN_ECALLBACK, "mask_block_fn returned nonzero: the call stopped and "
                              "nothing was written");
    return RINGATTN_OK;
}

/* ---------------------------------------------------------------- small public helpers */

RINGATTN_API const char *ringattn_strerror(int status)
{
    switch (status) {
    case RINGATTN_OK:           return "success";
    case RINGATTN_ENULL:        return "a required pointer (config, tensor or tensor data) is NULL";
    case RINGATTN_ESHAPE:       return "tensor shapes are invalid or inconsistent (every dim >= 1; "
                                       "q [b,nq,h,d], k [b,nk,hk,d], v [b,nk,hk,dv], out [b,nq,h,dv], "
                                       "lse [b,h,nq,1], h a multiple of hk)";
    case RINGATTN_EDTYPE:       return "unknown tensor dtype, or compute dtype not F32/F64";
    case RINGATTN_ECONFIG:      return "a config field is out of range (causal, scale, ring_size, "
                                       "num_threads, window, mix, partition, softcap, num_groups)";
    case RINGATTN_EOVERFLOW:    return "a size, stride or byte count overflows 64 bits (or a BLAS int)";
    case RINGATTN_ENOMEM:       return "out of memory; nothing was written";
    case RINGATTN_ESTRIDE:      return "an output view overlaps itself (a zero stride on an axis longer than 1, "
                                       "or strides that do not step past each other's span)";
    case RINGATTN_ESEGMENT:     return "dilated attention: a segment length or dilation rate is < 1, "
                                       "nq != nk, or the sequence length is not a multiple of a segment";
    case RINGATTN_EUNSUPPORTED: return "a valid option that this build or entry point does not implement";
    case RINGATTN_EALIAS:       return "an output shares its data pointer with another tensor of the call";
    case RINGATTN_ECUDA:        return "a CUDA call failed";
    case RINGATTN_EIO:          return "a file could not be opened, read or written";
    case RINGATTN_EFORMAT:      return "not a valid .npy file (bad magic, version or header, truncated, "
                                       "unsupported dtype, or bytes after the data)";
    case RINGATTN_EMPI:         return "an MPI call failed, or another rank of the ring failed";
    case RINGATTN_ETIMEDOUT:    return "a rank of the ring did not answer within the timeout";
    case RINGATTN_ERANGE:       return "f32 compute: an input, or a score before or after the scale, is beyond "
                                       "what a float holds (compute in F64)";
    case RINGATTN_ECALLBACK:    return "a mask callback asked the call to stop; nothing was written";
    default:                    return "unknown ringattn status code";
    }
}

RINGATTN_API ringattn_tensor ringattn_tensor_bnhd(void *data, ringattn_dtype dtype,
                                                  int64_t b, int64_t n, int64_t h, int64_t d)
{
    ringattn_tensor t;
    t.data = data; t.dtype = dtype;
    t.shape[0] = b; t.shape[1] = n; t.shape[2] = h; t.shape[3] = d;
    t.stride[3] = 1; t.stride[2] = d; t.stride[1] = h * d; t.stride[0] = n * h * d;
    return t;
}

RINGATTN_API ringattn_tensor ringattn_tensor_lse(void *data, ringattn_dtype dtype,
                                                 int64_t b, int64_t h, int64_t n)
{
    ringattn_tensor t;
    t.data = data; t.dtype = dtype;
    t.shape[0] = b; t.shape[1] = h; t.shape[2] = n; t.shape[3] = 1;
    t.stride[3] = 1; t.stride[2] = 1; t.stride[1] = n; t.stride[0] = h * n;
    return t;
}

RINGATTN_API ringattn_config ringattn_default_config(void)
{
    ringattn_config c;
    memset(&c, 0, sizeof c);
    c.compute = RINGATTN_F32;
    c.window_left = -1;        /* unbounded: a zero here would mean "see only yourself" */
    c.window_right = -1;
    c.partition = RINGATTN_CONTIGUOUS;
    c.mix = RINGATTN_MIX_HEAD_GROUPS;
    return c;
}

/* ---------------------------------------------------------------- entry points */

/* Every tensor of a call, checked before anything is written: views (dtype, shape, extent,
   no zero stride on outputs), shapes against q's, and outputs not sharing data with any
   other tensor. One routine for both passes (t: q k v out lse dout dq dk dv; the backward
   ones NULL in the forward pass), so the two entry points cannot drift apart. */
static int ringattn__check_call(const ringattn_config *cfg, int pass, const ringattn_tensor *const t[9],
                                ringattn_shape *s)
{
    static const char *const names[9] = { "q", "k", "v", "out", "lse", "dout", "dq", "dk", "dv" };
    /* each tensor's expected shape in the call's dimensions, and the pass in which it is an
       output (-1: an input in both) */
    enum { ringattn__b, ringattn__nq, ringattn__nk, ringattn__h, ringattn__hk, ringattn__d, ringattn__dv,
           ringattn__one };
    static const signed char layout[9][5] = {
        { ringattn__b, ringattn__nq, ringattn__h,  ringattn__d,   -1 },   /* q    */
        { ringattn__b, ringattn__nk, ringattn__hk, ringattn__d,   -1 },   /* k    */
        { ringattn__b, ringattn__nk, ringattn__hk, ringattn__dv,  -1 },   /* v    */
        { ringattn__b, ringattn__nq, ringattn__h,  ringattn__dv,   0 },   /* out  */
        { ringattn__b, ringattn__h,  ringattn__nq, ringattn__one,  0 },   /* lse  */
        { ringattn__b, ringattn__nq, ringattn__h,  ringattn__dv,  -1 },   /* dout */
        { ringattn__b, ringattn__nq, ringattn__h,  ringattn__d,    1 },   /* dq   */
        { ringattn__b, ringattn__nk, ringattn__hk, ringattn__d,    1 },   /* dk   */
        { ringattn__b, ringattn__nk, ringattn__hk, ringattn__dv,   1 } }; /* dv   */
    int64_t dim[8], want[4]; int st, i, a;
    if ((st = ringattn__check_view(cfg, t[0], "q", NULL, 0)) != RINGATTN_OK) return st;
    s->batch = t[0]->shape[0]; s->seq_q = t[0]->shape[1]; s->heads_q = t[0]->shape[2]; s->dim_qk = t[0]->shape[3];
    if ((st = ringattn__check_view(cfg, t[1], "k", NULL, 0)) != RINGATTN_OK) return st;
    s->seq_k = t[1]->shape[1]; s->heads_kv = t[1]->shape[2];
    if ((st = ringattn__check_view(cfg, t[2], "v", NULL, 0)) != RINGATTN_OK) return st;
    s->dim_v = t[2]->shape[3];
    dim[ringattn__b] = s->batch; dim[ringattn__nq] = s->seq_q; dim[ringattn__nk] = s->seq_k;
    dim[ringattn__h] = s->heads_q; dim[ringattn__hk] = s->heads_kv; dim[ringattn__d] = s->dim_qk;
    dim[ringattn__dv] = s->dim_v; dim[ringattn__one] = 1;
    for (i = 1; i < (pass ? 9 : 5); i++) {
        if (i == 4 && pass == 0 && !t[4]) continue;          /* lse is optional in forward */
        for (a = 0; a < 4; a++) want[a] = dim[(int)layout[i][a]];
        if ((st = ringattn__check_view(cfg, t[i], names[i], want, layout[i][4] == pass)) != RINGATTN_OK) return st;
    }
    return ringattn__check_alias(cfg, t, names, pass ? 9 : 5, pass ? 6 : 3);
}

/* an option's output (max_logit, dbias) may share its data with no tensor of the call */
static int ringattn__check_option_alias(const ringattn_config *cfg, const ringattn_tensor *o, const char *name,
                                        const ringattn_tensor *const t[9])
{
    int i;
    if (!o) return RINGATTN_OK;
    for (i = 0; i < 9; i++)
        if (t[i] && t[i]->data == o->data)
            return ringattn__fail(cfg, RINGATTN_EALIAS, "%s shares its data with tensor %d of the call", name, i);
    if ((cfg->bias && cfg->bias->data == o->data) || (cfg->mask && cfg->mask->data == o->data))
        return ringattn__fail(cfg, RINGATTN_EALIAS, "%s shares its data with the bias or the mask", name);
    return RINGATTN_OK;
}

RINGATTN_API int ringattn_check_call(const ringattn_config *cfg, int pass, const ringattn_tensor *const t[9],
                                     ringattn_shape *shape)
{
    ringattn_shape s; ringattn_plan_info plan; int st;
    if (!cfg) return RINGATTN_ENULL;
    if (pass != 0 && pass != 1) return ringattn__fail(cfg, RINGATTN_ECONFIG, "pass = %d, must be 0 or 1", pass);
    if (!t) return ringattn__fail(cfg, RINGATTN_ENULL, "the tensor list is NULL");
    if ((st = ringattn__check_call(cfg, pass, t, &s)) != RINGATTN_OK) return st;
    if ((st = ringattn__check_option_alias(cfg, pass ? cfg->dbias : cfg->max_logit, pass ? "dbias" : "max_logit", t))
        != RINGATTN_OK) return st;   /* as the entry points, before the config */
    if ((st = ringattn_plan(cfg, &s, pass, &plan)) != RINGATTN_OK) return st;
    if (shape) *shape = s;
    return RINGATTN_OK;
}

RINGATTN_API int ringattn_forward(const ringattn_config *cfg,
                                  const ringattn_tensor *q, const ringattn_tensor *k,
                                  const ringattn_tensor *v, ringattn_tensor *out,
                                  ringattn_tensor *lse)
{
    const ringattn_tensor *t[9];
    ringattn_shape s; ringattn__io io; int st;
    if (!cfg) return RINGATTN_ENULL;
    t[0] = q; t[1] = k; t[2] = v; t[3] = out; t[4] = lse; t[5] = t[6] = t[7] = t[8] = NULL;
    if ((st = ringattn__check_call(cfg, 0, t, &s)) != RINGATTN_OK) return st;
    if ((st = ringattn__check_option_alias(cfg, cfg->max_logit, "max_logit", t)) != RINGATTN_OK) return st;
    memset(&io, 0, sizeof io);
    io.q = q; io.k = k; io.v = v; io.o = out; io.l = lse; io.ml = cfg->max_logit;
    return ringattn__execute(cfg, &s, 0, &io);
}

RINGATTN_API int ringattn_backward(const ringattn_config *cfg,
                                   const ringattn_tensor *q, const ringattn_tensor *k,
                                   const ringattn_tensor *v, const ringattn_tensor *out,
                                   const ringattn_tensor *lse, const ringattn_tensor *dout,
                                   ringattn_tensor *dq, ringattn_tensor *dk, ringattn_tensor *dv)
{
    const ringattn_tensor *t[9];
    ringattn_shape s; ringattn__io io; int st;
    if (!cfg) return RINGATTN_ENULL;
    t[0] = q; t[1] = k; t[2] = v; t[3] = out; t[4] = lse; t[5] = dout; t[6] = dq; t[7] = dk; t[8] = dv;
    if ((st = ringattn__check_call(cfg, 1, t, &s)) != RINGATTN_OK) return st;
    if ((st = ringattn__check_option_alias(cfg, cfg->dbias, "dbias", t)) != RINGATTN_OK) return st;
    memset(&io, 0, sizeof io);
    io.q = q; io.k = k; io.v = v; io.out = out; io.lse = lse; io.dout = dout;
    io.dq = dq; io.dk = dk; io.dv = dv;
    return ringattn__execute(cfg, &s, 1, &io);
}

/* ---------------------------------------------------------------- decoding: a KV cache
   ringattn_forward_kvcache, read top to bottom: check everything (ringattn__kv_check), then
   compute every (sequence, split) alone (ringattn__kv_item): a one-member ring over
   the split's keys, read chunk by chunk straight from the pages (or the new keys) into the
   ring's packed layout and folded in by ringattn__forward_block, the ring's own block code,
   with the keys at their positions in the whole sequence. That gives each split's partial.
   Then merge the partials row by row with THE merge (ringattn__merge_row), starting from the
   sink's state. Only then is anything written: out, lse, the partials the caller asked for,
   and with update_cache the new keys. */

/* L of sequence bb: its cached keys and the new ones */
static int64_t ringattn__kv_len(const ringattn_kvcache *kv, int64_t bb)
{
    return (int64_t)kv->cache_seqlens[bb] + (kv->k_new ? kv->k_new->shape[1] : 0);
}

/* the positions sequence bb writes (update_cache) land in block *blk, slot *slot */
static void ringattn__kv_slot(const ringattn_kvcache *kv, int64_t bb, int64_t pos, int64_t *blk, int64_t *slot)
{
    if (kv->block_table) {
        int64_t page = kv->k_cache->shape[1];
        *blk = kv->block_table[bb * kv->max_blocks + pos / page]; *slot = pos % page;
    } else {
        *blk = bb; *slot = pos;
    }
}

/* the splits of the partials: num_splits, or the most any sequence has with split_size */
static int64_t ringattn__kv_splits(const ringattn_kvcache *kv, int64_t batch)
{
    int64_t bb, S = 1;
    if (kv->split_size <= 0) return kv->num_splits > 1 ? kv->num_splits : 1;
    for (bb = 0; bb < batch; bb++) {
        int64_t L = ringattn__kv_len(kv, bb), n = (L + kv->split_size - 1) / kv->split_size;
        if (n > S) S = n;
    }
    return S;
}

/* the config's fields the cache path has no use for are refused, not ignored */
static int ringattn__kv_check_config(const ringattn_config *cfg)
{
    const char *what = NULL;
    if (cfg->ring_size > 1) what = "ring_size > 1 (each split is a one-member ring: num_splits takes the ring's place)";
    else if (cfg->num_groups > 0) what = "dilation (num_groups > 0)";
    else if (cfg->num_seqs > 0 || cfg->cu_seqlens_q || cfg->cu_seqlens_k) what = "varlen (cache_seqlens gives the lengths)";
    else if (cfg->bias || cfg->dbias) what = "a bias";
    else if (cfg->mask || cfg->mask_fn || cfg->mask_block_fn) what = "masks";
    else if (cfg->document_ids_q || cfg->document_ids_k) what = "document ids";
    else if (cfg->max_logit) what = "max_logit";
    else if (cfg->dsinks) what = "dsinks (a forward-only call)";
    else if (cfg->trace || cfg->trace_blocks) what = "a trace (the partials are the per-split results: split_out / split_lse)";
    if (what) return ringattn__fail(cfg, RINGATTN_EUNSUPPORTED, "ringattn_forward_kvcache does not take %s", what);
    return RINGATTN_OK;
}

/* the lengths and the block table against the cache: every key a sequence reads (and, with
   update_cache, writes) is a slot of the cache */
static int ringattn__kv_check_lengths(const ringattn_config *cfg, const ringattn_kvcache *kv, int64_t batch)
{
    int64_t bb, n_new = kv->k_new ? kv->k_new->shape[1] : 0;
    const ringattn_tensor *kc = kv->k_cache;
    if (!kv->cache_seqlens) return ringattn__fail(cfg, RINGATTN_ENULL, "cache_seqlens is NULL");
    if (kv->block_table && kv->max_blocks < 1)
        return ringattn__fail(cfg, RINGATTN_ESHAPE, "max_blocks = %lld, a block-table row needs >= 1 entry",
                              (long long)kv->max_blocks);
    if (!kv->block_table && kv->max_blocks != 0)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "max_blocks = %lld but block_table is NULL", (long long)kv->max_blocks);
    if (!kv->block_table && kc->shape[0] < batch)
        return ringattn__fail(cfg, RINGATTN_ESHAPE, "k_cache has %lld sequences, fewer than the batch of q (%lld)",
                              (long long)kc->shape[0], (long long)batch);
    for (bb = 0; bb < batch; bb++) {
        int64_t sl = kv->cache_seqlens[bb], used = sl + (kv->update_cache ? n_new : 0), j;
        if (sl < 0)
            return ringattn__fail(cfg, RINGATTN_ESHAPE, "cache_seqlens[%lld] = %lld < 0", (long long)bb, (long long)sl);
        if (!kv->block_table) {
            if (used > kc->shape[1])
                return ringattn__fail(cfg, RINGATTN_ESHAPE, "cache_seqlens[%lld] = %lld%s exceeds the cache's %lld positions",
                                      (long long)bb, (long long)sl, kv->update_cache ? " plus the new keys" : "",
                                      (long long)kc->shape[1]);
            continue;
        }
        if ((used + kc->shape[1] - 1) / kc->shape[1] > kv->max_blocks)
            return ringattn__fail(cfg, RINGATTN_ESHAPE, "cache_seqlens[%lld] = %lld%s needs %lld pages of %lld, but a "
                                  "block-table row has %lld", (long long)bb, (long long)sl,
                                  kv->update_cache ? " plus the new keys" : "",
                                  (long long)((used + kc->shape[1] - 1) / kc->shape[1]), (long long)kc->shape[1],
                                  (long long)kv->max_blocks);
        for (j = 0; j * kc->shape[1] < used; j++) {
            int32_t blk = kv->block_table[bb * kv->max_blocks + j];
            if (blk < 0 || blk >= kc->shape[0])
                return ringattn__fail(cfg, RINGATTN_ESHAPE, "block_table[%lld][%lld] = %d is not a block of the cache "
                                      "(0 .. %lld)", (long long)bb, (long long)j, (int)blk, (long long)(kc->shape[0] - 1));
        }
    }
    if (kv->update_cache && kv->block_table) {   /* two writes to one slot: refused, not ordered */
        int64_t b2, t, t2;
        for (bb = 0; bb < batch; bb++)
            for (t = 0; t < n_new; t++) {
                int64_t blk, slot, blk2, slot2;
                ringattn__kv_slot(kv, bb, kv->cache_seqlens[bb] + t, &blk, &slot);
                for (b2 = 0; b2 <= bb; b2++)
                    for (t2 = 0; t2 < (b2 == bb ? t : n_new); t2++) {
                        ringattn__kv_slot(kv, b2, kv->cache_seqlens[b2] + t2, &blk2, &slot2);
                        if (blk == blk2 && slot == slot2)
                            return ringattn__fail(cfg, RINGATTN_ECONFIG, "update_cache: new key %lld of sequence %lld and "
                                                  "new key %lld of sequence %lld go to the same slot (block %lld, slot %lld)",
                                                  (long long)t, (long long)bb, (long long)t2, (long long)b2,
                                                  (long long)blk, (long long)slot);
                    }
            }
    }
    return RINGATTN_OK;
}

/* every check of the call (ringattn_check_kvcache_call); *S the splits of the partials */
static int ringattn__kv_check(const ringattn_config *cfg, const ringattn_kvcache *kv, const ringattn_tensor *q,
                              const ringattn_tensor *out, const ringattn_tensor *lse, ringattn_shape *s, int64_t *S)
{
    const ringattn_tensor *t[7]; const char *names[7] = { "q", "k_cache", "v_cache", "k_new", "v_new", "out", "lse" };
    ringattn_config sub; ringattn_plan_info plan;
    int64_t want[4], b, bb, i, j, Lmax = 0;
    int st, upd;
    if (!cfg) return RINGATTN_ENULL;
    if (!kv) return ringattn__fail(cfg, RINGATTN_ENULL, "kv is NULL");
    if ((st = ringattn__kv_check_config(cfg)) != RINGATTN_OK) return st;
    if (kv->update_cache != 0 && kv->update_cache != 1)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "update_cache = %d, must be 0 or 1", kv->update_cache);
    upd = kv->update_cache;
    if ((st = ringattn__check_view(cfg, q, "q", NULL, 0)) != RINGATTN_OK) return st;
    b = q->shape[0];
    if ((st = ringattn__check_view(cfg, kv->k_cache, "k_cache", NULL, upd)) != RINGATTN_OK) return st;
    want[0] = kv->k_cache->shape[0]; want[1] = kv->k_cache->shape[1]; want[2] = kv->k_cache->shape[2];
    if ((st = ringattn__check_view(cfg, kv->v_cache, "v_cache", NULL, upd)) != RINGATTN_OK) return st;
    for (i = 0; i < 3; i++)
        if (kv->v_cache->shape[i] != want[i])
            return ringattn__fail(cfg, RINGATTN_ESHAPE, "v_cache.shape[%lld] = %lld, expected k_cache's %lld",
                                  (long long)i, (long long)kv->v_cache->shape[i], (long long)want[i]);
    if (q->shape[3] != kv->k_cache->shape[3])
        return ringattn__fail(cfg, RINGATTN_ESHAPE, "q's head dim %lld differs from k_cache's %lld",
                              (long long)q->shape[3], (long long)kv->k_cache->shape[3]);
    if (!kv->k_new != !kv->v_new) return ringattn__fail(cfg, RINGATTN_ENULL, "k_new and v_new: both or neither");
    if (upd && !kv->k_new)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "update_cache = 1 without k_new / v_new: nothing to write");
    if (kv->k_new) {
        want[0] = b; want[2] = kv->k_cache->shape[2];
        if ((st = ringattn__check_view(cfg, kv->k_new, "k_new", NULL, 0)) != RINGATTN_OK) return st;
        want[1] = kv->k_new->shape[1]; want[3] = kv->k_cache->shape[3];
        if ((st = ringattn__check_view(cfg, kv->k_new, "k_new", want, 0)) != RINGATTN_OK) return st;
        want[3] = kv->v_cache->shape[3];
        if ((st = ringattn__check_view(cfg, kv->v_new, "v_new", want, 0)) != RINGATTN_OK) return st;
        if (kv->k_new->dtype != kv->k_cache->dtype)
            return ringattn__fail(cfg, RINGATTN_EDTYPE, "k_new's dtype differs from k_cache's: the new keys take the "
                                  "cache's dtype (they are appended to it)");
        if (kv->v_new->dtype != kv->v_cache->dtype)
            return ringattn__fail(cfg, RINGATTN_EDTYPE, "v_new's dtype differs from v_cache's: the new values take the "
                                  "cache's dtype (they are appended to it)");
    }
    if (kv->num_splits < 0 || kv->split_size < 0)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "num_splits = %lld, split_size = %lld: neither may be negative",
                              (long long)kv->num_splits, (long long)kv->split_size);
    if (kv->split_size > 0 && kv->num_splits > 1)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "num_splits = %lld and split_size = %lld: give one of them",
                              (long long)kv->num_splits, (long long)kv->split_size);
    if ((st = ringattn__kv_check_lengths(cfg, kv, b)) != RINGATTN_OK) return st;
    for (bb = 0; bb < b; bb++) if (ringattn__kv_len(kv, bb) > Lmax) Lmax = ringattn__kv_len(kv, bb);
    *S = ringattn__kv_splits(kv, b);
    want[0] = b; want[1] = q->shape[1]; want[2] = q->shape[2]; want[3] = kv->v_cache->shape[3];
    if ((st = ringattn__check_view(cfg, out, "out", want, 1)) != RINGATTN_OK) return st;
    want[1] = q->shape[2]; want[2] = q->shape[1]; want[3] = 1;
    if (lse && (st = ringattn__check_view(cfg, lse, "lse", want, 1)) != RINGATTN_OK) return st;
    if (!kv->split_out && !kv->split_lse && kv->num_split_outputs != 0)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "num_split_outputs = %lld but split_out and split_lse are NULL",
                              (long long)kv->num_split_outputs);
    if ((kv->split_out || kv->split_lse) && kv->num_split_outputs != *S)
        return ringattn__fail(cfg, RINGATTN_ESHAPE, "num_split_outputs = %lld, the call has %lld splits",
                              (long long)kv->num_split_outputs, (long long)*S);
    for (j = 0; (kv->split_out || kv->split_lse) && j < *S; j++) {
        char nm[48];
        want[1] = q->shape[1]; want[2] = q->shape[2]; want[3] = kv->v_cache->shape[3];
        snprintf(nm, sizeof nm, "split_out[%lld]", (long long)j);
        if (kv->split_out && (st = ringattn__check_view(cfg, &kv->split_out[j], nm, want, 1)) != RINGATTN_OK) return st;
        want[1] = q->shape[2]; want[2] = q->shape[1]; want[3] = 1;
        snprintf(nm, sizeof nm, "split_lse[%lld]", (long long)j);
        if (kv->split_lse && (st = ringattn__check_view(cfg, &kv->split_lse[j], nm, want, 1)) != RINGATTN_OK) return st;
    }
    /* outputs share their data with nothing else (the cache is an output with update_cache) */
    t[0] = q; t[1] = kv->k_cache; t[2] = kv->v_cache; t[3] = kv->k_new; t[4] = kv->v_new; t[5] = out; t[6] = lse;
    for (i = 0; i < 7; i++) {
        int output = i >= 5 || (upd && (i == 1 || i == 2));
        for (j = 0; j < 7 && output && t[i]; j++)
            if (j != i && t[j] && t[j]->data == t[i]->data)
                return ringattn__fail(cfg, RINGATTN_EALIAS, "output %s shares its data pointer with %s", names[i], names[j]);
        for (j = 0; j < 2 * *S && t[i] && (kv->split_out || kv->split_lse); j++) {
            const ringattn_tensor *o = (j % 2 == 0) ? (kv->split_out ? &kv->split_out[j / 2] : NULL)
                                                    : (kv->split_lse ? &kv->split_lse[j / 2] : NULL);
            if (o && o->data == t[i]->data)
                return ringattn__fail(cfg, RINGATTN_EALIAS, "split_%s[%lld] shares its data pointer with %s",
                                      j % 2 ? "lse" : "out", (long long)(j / 2), names[i]);
        }
    }
    for (i = 0; i < 2 * *S && (kv->split_out || kv->split_lse); i++)
        for (j = 0; j < i; j++) {
            const ringattn_tensor *a = (i % 2 == 0) ? (kv->split_out ? &kv->split_out[i / 2] : NULL)
                                                    : (kv->split_lse ? &kv->split_lse[i / 2] : NULL);
            const ringattn_tensor *c = (j % 2 == 0) ? (kv->split_out ? &kv->split_out[j / 2] : NULL)
                                                    : (kv->split_lse ? &kv->split_lse[j / 2] : NULL);
            if (a && c && a->data == c->data)
                return ringattn__fail(cfg, RINGATTN_EALIAS, "two split outputs share a data pointer (%lld and %lld)",
                                      (long long)(i / 2), (long long)(j / 2));
        }
    /* the config, through the planner, as one split's call will see it */
    s->batch = b; s->seq_q = q->shape[1]; s->seq_k = Lmax > 0 ? Lmax : 1; s->heads_q = q->shape[2];
    s->heads_kv = kv->k_cache->shape[2]; s->dim_qk = q->shape[3]; s->dim_v = kv->v_cache->shape[3];
    sub = *cfg; sub.ring_size = 1; sub.partition = RINGATTN_CONTIGUOUS;
    if ((st = ringattn_plan(&sub, s, 0, &plan)) != RINGATTN_OK) return st;
    s->seq_k = Lmax;
    return RINGATTN_OK;
}

RINGATTN_API int ringattn_check_kvcache_call(const ringattn_config *cfg, const ringattn_kvcache *kv,
                                             const ringattn_tensor *q, const ringattn_tensor *out,
                                             const ringattn_tensor *lse, ringattn_shape *shape)
{
    ringattn_shape s; int64_t S; int st;
    if (!cfg) return RINGATTN_ENULL;
    if ((st = ringattn__kv_check(cfg, kv, q, out, lse, &s, &S)) != RINGATTN_OK) return st;
    if (shape) *shape = s;
    return RINGATTN_OK;
}

RINGATTN_API int64_t ringattn_kvcache_num_splits(const ringattn_config *cfg, const ringattn_kvcache *kv, int64_t batch)
{
    int64_t bb;
    if (!kv) return ringattn__fail(cfg, RINGATTN_ENULL, "kv is NULL");
    if (batch < 1) return ringattn__fail(cfg, RINGATTN_ESHAPE, "batch = %lld, must be >= 1", (long long)batch);
    if (kv->num_splits < 0 || kv->split_size < 0)
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "num_splits and split_size may not be negative");
    if (kv->split_size > 0) {
        if (!kv->cache_seqlens) return ringattn__fail(cfg, RINGATTN_ENULL, "cache_seqlens is NULL");
        if (kv->k_new && (!kv->k_new->data || kv->k_new->shape[1] < 1))
            return ringattn__fail(cfg, RINGATTN_ESHAPE, "k_new has no keys");
        for (bb = 0; bb < batch; bb++)
            if (kv->cache_seqlens[bb] < 0)
                return ringattn__fail(cfg, RINGATTN_ESHAPE, "cache_seqlens[%lld] < 0", (long long)bb);
    }
    return ringattn__kv_splits(kv, batch);
}

/* with update_cache: the new keys of every sequence written into its slots */
static void ringattn__kv_update(const ringattn_kvcache *kv, int64_t batch)
{
    int64_t bb, t, hh, x, w;
    for (w = 0; w < 2; w++) {
        ringattn_tensor *c = w ? kv->v_cache : kv->k_cache;
        const ringattn_tensor *n = w ? kv->v_new : kv->k_new;
        for (bb = 0; bb < batch; bb++)
            for (t = 0; t < n->shape[1]; t++) {
                int64_t blk, slot;
                ringattn__kv_slot(kv, bb, kv->cache_seqlens[bb] + t, &blk, &slot);
                for (hh = 0; hh < n->shape[2]; hh++)
                    for (x = 0; x < n->shape[3]; x++)
                        ringattn__store(c->data, c->dtype, ringattn__index(c, blk, slot, hh, x),
                                        ringattn__load(n->data, n->dtype, ringattn__index(n, bb, t, hh, x)));
            }
    }
}

/* where key j of sequence bb lies for k/v head kh: which tensor (the cache, or the new keys
   past cache_seqlens) and the offset of its first element (w = 0 keys, 1 values) */
static const ringattn_tensor *ringattn__kv_key(const ringattn_kvcache *kv, int w, int64_t bb, int64_t j, int64_t kh,
                                               int64_t *at)
{
    int64_t sl = kv->cache_seqlens[bb], blk, slot;
    const ringattn_tensor *t;
    if (j >= sl) {
        t = w ? kv->v_new : kv->k_new;
        *at = ringattn__index(t, bb, j - sl, kh, 0);
        return t;
    }
    t = w ? kv->v_cache : kv->k_cache;
    ringattn__kv_slot(kv, bb, j, &blk, &slot);
    *at = ringattn__index(t, blk, slot, kh, 0);
    return t;
}

/* One work item (sequence bb, split sp) in hand: every q head's rows in the compute dtype
   and their running state, one k/v head's chunk of keys in panels and its values, and the
   measures the f32 range rules need. */
typedef struct {
    ringattn__scratch w;           /* the ring's tile scratch: forward_block runs in it       */
    void *q, *o, *kpan, *vbuf;     /* [h][nq][d], [h][nq][dv]; a chunk of keys: K in panels
                                      [hk][tk * d], V [hk][tk][dv]                            */
    double *m, *l;                 /* [h][nq]                                                 */
    double kmax;                   /* the largest finite |k| read (as stored)                 */
    int status;                    /* RINGATTN_ERANGE: a key beyond the float range           */
    int64_t computed;              /* items of this thread that computed a tile               */
} ringattn__kv_thread;

/* one key row x[0 .. n) (stride xs, dtype t) to dst (stride ds, compute dtype ct) times mul;
   returns the largest finite |x| (as stored), and sets *beyond when a finite entry is one a
   float cannot hold. For f32 storage eight running maxima, so that the compiler need not
   keep one long chain; an Inf among them, or another dtype, takes the careful loop. */
static double ringattn__kv_row(const void *x, ringattn_dtype t, int64_t xs, int64_t n, void *dst, ringattn_dtype ct,
                               int64_t ds, double mul, int *beyond)
{
    int64_t c;
    double mx = 0;
    ringattn__convert(dst, ct, ds, x, t, xs, n, mul);
    if (t == RINGATTN_F32) {   /* the common case: f32 storage */
        const float *f = (const float *)x;
        float m8[8] = { 0, 0, 0, 0, 0, 0, 0, 0 }, a;
        int l;
        for (c = 0; c + 8 <= n; c += 8)
            for (l = 0; l < 8; l++) { a = fabsf(f[(c + l) * xs]); m8[l] = a > m8[l] ? a : m8[l]; }   /* NaN never wins */
        for (; c < n; c++) { a = fabsf(f[c * xs]); m8[0] = a > m8[0] ? a : m8[0]; }
        for (l = 1; l < 8; l++) m8[0] = m8[l] > m8[0] ? m8[l] : m8[0];
        if (m8[0] <= FLT_MAX) return m8[0];
    }
    for (c = 0; c < n; c++) {
        double v = fabs(ringattn__load(x, t, c * xs));
        if (!(v - v == 0)) continue;
        if (v > FLT_MAX) *beyond = 1;
        if (v > mx) mx = v;
    }
    return mx;
}

/* the chunk of keys [c0, c0 + n) of sequence bb, every k/v head, into panels (the layout the
   forward's S kernel reads, ringattn__panel_at) and V rows, in the compute dtype, V times
   vmul: key by key, so that the cache is read in the order it lies; returns the chunk's
   largest finite |v| (as stored) */
static double ringattn__kv_chunk(const ringattn__problem *P, const ringattn_kvcache *kv, ringattn__kv_thread *T,
                                 int64_t bb, int64_t c0, int64_t n, double vmul)
{
    int64_t r, kh, d = P->d, dv = P->dv;
    double vmax = 0;
    size_t es = P->es;
    for (r = 0; r < n; r++)
        for (kh = 0; kh < P->hk; kh++) {
            int64_t ka, va, o = ringattn__panel_at(r, 0, n, d), w = ringattn__panel_at(r, 1, n, d) - o;
            const ringattn_tensor *kt = ringattn__kv_key(kv, 0, bb, c0 + r, kh, &ka);
            const ringattn_tensor *vt = ringattn__kv_key(kv, 1, bb, c0 + r, kh, &va);
            int beyond = 0;
            double x = ringattn__kv_row(ringattn__at(kt->data, ka, ringattn__dtype_size(kt->dtype)), kt->dtype,
                                        kt->stride[3], d, ringattn__at(T->kpan, kh * P->tk * d + o, es), P->ct, w,
                                        ringattn__descale(P->kds, P->nds, P->hk, bb, kh), &beyond);
            if (x > T->kmax) T->kmax = x;    /* f32 compute: the range rules (ringattn__kv_range) */
            if (beyond) T->status = RINGATTN_ERANGE;
            x = ringattn__kv_row(ringattn__at(vt->data, va, ringattn__dtype_size(vt->dtype)), vt->dtype, vt->stride[3], dv,
                                 ringattn__at(T->vbuf, (kh * P->tk + r) * dv, es), P->ct, 1,
                                 vmul * ringattn__descale(P->vds, P->nds, P->hk, bb, kh), &beyond);
            if (x > vmax) vmax = x;
        }
    return vmax;
}

/* Split sp of sequence bb: a one-member ring over the split's keys, streamed chunk by chunk
   (TILE_K keys, the ring's key tile) straight from the cache -- each k/v head's chunk packed
   as a ring member packs its K/V chunk, then ringattn__forward_block (scores, options, THE
   merge) for each q head of its group -- and finished as ringattn__member_finish finishes a
   row, into the partials po / pl (f64). V is scaled by 2^-shift when its values near the
   float maximum (ringattn__v_shift's rule, applied as the keys arrive: a larger shift
   rescales the state by a power of two). */
static void ringattn__kv_item(const ringattn__problem *P, const ringattn_config *cfg, const ringattn_kvcache *kv,
                              const ringattn_tensor *q, ringattn__kv_thread *T, int64_t bb, int64_t sp,
                              double *po, double *pl)
{
    int64_t G = P->heads_per_kv, nq = P->nq, rows = P->h * nq, L = ringattn__kv_len(kv, bb), k0, k1, c0, hh, kh, r, c;
    int shift = 0, vcheck;
    double lim, gdiv;
    size_t es = P->es;
    ringattn__piece pc;
    ringattn__split_bounds(L, kv->num_splits, kv->split_size, sp, &k0, &k1);
    lim = (P->ct == RINGATTN_F32 ? (double)FLT_MAX : DBL_MAX) / 4 / (double)(k1 > k0 ? k1 - k0 : 1);
    vcheck = kv->v_cache->dtype != RINGATTN_F16 && kv->v_cache->dtype != RINGATTN_FP8_E4M3 &&
             kv->v_cache->dtype != RINGATTN_FP8_E5M2;   /* |V| <= 65504 needs no shift */
    ringattn__state_reset(P, T->o, T->m, T->l, 0, rows);
    pc.pos0 = 0; pc.count = nq; pc.stride = 1; pc.row0 = 0;
    for (hh = 0; hh < P->h && k1 > k0; hh++) {   /* the q rows, as a member packs its Q */
        ringattn_tensor qv = *q;
        qv.data = ringattn__at(q->data, bb * q->stride[0] + hh * q->stride[2], ringattn__dtype_size(q->dtype));
        qv.shape[0] = 1; qv.shape[2] = 1;
        ringattn__pack(&qv, &pc, 1, ringattn__at(T->q, hh * nq * P->d, es), P->ct, nq,
                       ringattn__descale(P->qds, P->nds, P->hk, bb, hh / G), 0, 0);
    }
    for (c0 = k0; c0 < k1; c0 += P->tk) {
        int64_t n = k1 - c0 < P->tk ? k1 - c0 : P->tk;
        double vmax = ringattn__kv_chunk(P, kv, T, bb, c0, n, ldexp(1.0, -shift));
        if (vcheck && vmax > lim) {
            int need = 0;
            while (vmax > lim) { vmax *= 0.5; need++; }
            if (need > shift) {   /* rescale the state and repack the chunk's V at the new shift */
                for (r = 0; r < rows; r++)
                    ringattn__row_scale(P->ct, ringattn__at(T->o, r * P->dv, es), P->dv, ldexp(1.0, shift - need));
                shift = need;
                (void)ringattn__kv_chunk(P, kv, T, bb, c0, n, ldexp(1.0, -shift));
            }
        }
        for (kh = 0; kh < P->hk; kh++)
            for (hh = kh * G; hh < (kh + 1) * G; hh++) {
                ringattn__block B;
                memset(&B, 0, sizeof B);
                B.qa = 0; B.qps = 1; B.ka = c0; B.kps = 1; B.rs = 1; B.nr = nq; B.nc = n;
                B.off = (cfg->causal == RINGATTN_CAUSAL_TOP_LEFT ? 0 : L - nq);   /* query i sits at i + L - nq */
                B.bb = bb; B.hh = hh; B.aoff = L - nq;
                B.q = ringattn__at(T->q, hh * nq * P->d, es);
                B.o = ringattn__at(T->o, hh * nq * P->dv, es); B.m = T->m + hh * nq; B.l = T->l + hh * nq;
                B.kpan = ringattn__at(T->kpan, kh * P->tk * P->d, es); B.kloc = 0; B.kcnt = n;
                B.v = ringattn__at(T->vbuf, kh * P->tk * P->dv, es);
                ringattn__forward_block(P, &T->w, &B);
            }
    }
    gdiv = ldexp(1.0, shift);
    for (r = 0; r < rows; r++) {
        void *o = ringattn__at(T->o, r * P->dv, es);
        int64_t i = r % nq;
        hh = r / nq;
        if (P->round_block) ringattn__hold_row(o, P->ct, P->dv, &T->m[r], &T->l[r], P->bt);   /* emulation, as the ring's */
        if (P->round_state) ringattn__hold_row(o, P->ct, P->dv, &T->m[r], &T->l[r], P->st);
        for (c = 0; c < P->dv; c++)
            po[(i * P->h + hh) * P->dv + c] = ringattn__finish_out(ringattn__load(o, P->ct, c), T->l[r], gdiv);
        pl[hh * nq + i] = ringattn__finish_lse(T->m[r], T->l[r]);
    }
}

/* The result: row (bb, i, hh) is its partials merged in split order by THE merge, from the
   sink's state (m, l) = (sink, 1) -- or (-inf, 0) without one -- and finished as the ring
   finishes a row. Then the partials the caller asked for (splits past Se are empty). */
static void ringattn__kv_finish(const ringattn_config *cfg, const ringattn_kvcache *kv, const ringattn_shape *s,
                                int64_t S, int64_t Se, const double *po, const double *pl,
                                ringattn_tensor *out, ringattn_tensor *lse, double *acc)
{
    int64_t b = s->batch, nq = s->seq_q, h = s->heads_q, dv = s->dim_v, bb, i, hh, c, sp;
    for (bb = 0; bb < b; bb++)
        for (i = 0; i < nq; i++)
            for (hh = 0; hh < h; hh++) {
                double sink = cfg->sinks ? cfg->sinks[hh] : -(double)INFINITY;
                double m = sink, l = (sink == -(double)INFINITY) ? 0.0 : 1.0;
                for (c = 0; c < dv; c++) acc[c] = 0.0;
                for (sp = 0; sp < Se; sp++) {
                    double bl = pl[((sp * b + bb) * h + hh) * nq + i];
                    ringattn__merge_row(acc, RINGATTN_F64, dv, &m, &l, po + (((sp * b + bb) * nq + i) * h + hh) * dv,
                                        bl, bl == -(double)INFINITY ? 0.0 : 1.0);
                }
                for (c = 0; c < dv; c++)
                    ringattn__store(out->data, out->dtype, ringattn__index(out, bb, i, hh, c),
                                    ringattn__finish_out(acc[c], l, 1.0));
                if (lse) ringattn__store(lse->data, lse->dtype, ringattn__index(lse, bb, hh, i, 0), ringattn__finish_lse(m, l));
            }
    for (sp = 0; sp < S && (kv->split_out || kv->split_lse); sp++)
        for (bb = 0; bb < b; bb++)
            for (hh = 0; hh < h; hh++)
                for (i = 0; i < nq; i++) {
                    double x = sp < Se ? pl[((sp * b + bb) * h + hh) * nq + i] : -(double)INFINITY;
                    if (kv->split_lse)
                        ringattn__store(kv->split_lse[sp].data, kv->split_lse[sp].dtype,
                                        ringattn__index(&kv->split_lse[sp], bb, hh, i, 0), x);
                    for (c = 0; kv->split_out && c < dv; c++)
                        ringattn__store(kv->split_out[sp].data, kv->split_out[sp].dtype,
                                        ringattn__index(&kv->split_out[sp], bb, i, hh, c),
                                        sp < Se ? po[(((sp * b + bb) * nq + i) * h + hh) * dv + c] : 0.0);
                }
}

/* f32 compute: ringattn_forward's range rule (ringattn__range_bound) over the call's keys.
   Every key's norm is at most sqrt(d) kmax, so when that bound passes the rule passes;
   otherwise the exact norms are read (one more pass over the keys, only then). */
static int ringattn__kv_range(const ringattn_config *cfg, const ringattn__problem *P, const ringattn_kvcache *kv,
                              double qnorm, double kmax)
{
    double bound = sqrt((double)P->d) * kmax, lim = FLT_MAX / 2, knorm = 0;
    int64_t bb, j, kh, c;
    if (P->ct != RINGATTN_F32 || (qnorm * bound <= lim && fabs(P->scale) * qnorm * bound <= lim)) return RINGATTN_OK;
    for (bb = 0; bb < P->b; bb++)
        for (j = 0; j < ringattn__kv_len(kv, bb); j++)
            for (kh = 0; kh < P->hk; kh++) {
                int64_t at;
                const ringattn_tensor *t = ringattn__kv_key(kv, 0, bb, j, kh, &at);
                double sum = 0, x;
                for (c = 0; c < P->d; c++) {
                    x = ringattn__load(t->data, t->dtype, at + c * t->stride[3]);
                    if (x - x == 0) sum += x * x;   /* as ringattn__float_rows */
                }
                if (sqrt(sum) > knorm) knorm = sqrt(sum);
            }
    return ringattn__range_bound(cfg, P, qnorm, knorm);
}

/* the threads' buffers (nt of them), through the library's allocator: the table, and one
   block (ringattn__arena, B) all their buffers are cut from */
static void ringattn__kv_threads_free(ringattn__kv_thread *T, ringattn__arena *B, void *user)
{
    if (B->base) RINGATTN_FREE(B->base, user);
    B->base = NULL;
    if (T) RINGATTN_FREE(T, user);
}

static ringattn__kv_thread *ringattn__kv_threads(const ringattn__problem *P, int nt, ringattn__arena *B, void *user)
{
    ringattn__kv_thread *T = (ringattn__kv_thread *)RINGATTN_MALLOC(sizeof(ringattn__kv_thread) * (size_t)nt, user);
    int i, carve;
    size_t rows = (size_t)(P->h * P->nq), es = P->es;
    memset(B, 0, sizeof *B);
    if (!T) return NULL;
    memset(T, 0, sizeof(ringattn__kv_thread) * (size_t)nt);
    for (carve = 0; carve < 2; carve++) {   /* the sizes, then the block and its pieces */
        if (carve && !ringattn__arena_alloc(B, user)) { ringattn__kv_threads_free(T, B, user); return NULL; }
        for (i = 0; i < nt; i++) {
            ringattn__kv_thread *t = &T[i];
            ringattn__scratch_alloc(P, 0, &t->w, B);
            t->q = ringattn__carve(B, &t->w.bytes, rows * (size_t)P->d * es, es);
            t->o = ringattn__carve(B, &t->w.bytes, rows * (size_t)P->dv * es, es);
            t->m = (double *)ringattn__carve(B, &t->w.bytes, rows * sizeof(double), sizeof(double));
            t->l = (double *)ringattn__carve(B, &t->w.bytes, rows * sizeof(double), sizeof(double));
            t->kpan = ringattn__carve(B, &t->w.bytes, (size_t)(P->hk * P->tk * P->d) * es, es);
            t->vbuf = ringattn__carve(B, &t->w.bytes, (size_t)(P->hk * P->tk * P->dv) * es, es);
        }
    }
    return T;
}

RINGATTN_API int ringattn_forward_kvcache(const ringattn_config *cfg, const ringattn_kvcache *kv,
                                          const ringattn_tensor *q, ringattn_tensor *out, ringattn_tensor *lse)
{
    ringattn_shape s, ps; ringattn_config sub; ringattn__problem P; ringattn_plan_info plan;
    ringattn__kv_thread *T = NULL;
    ringattn__arena blk = { NULL, { 0, 0, 0 }, { 0, 0, 0 } };
    int64_t S, Se, Lmax, cmax, items, x, computed = 0, skipped = 0;
    double *po = NULL, *pl = NULL, *acc = NULL, qnorm = 0, kmax = 0, bad = 0;
    size_t np, nl;
    int st, nt, i, ovf = 0, erange = 0;
    if (!cfg) return RINGATTN_ENULL;
    if ((st = ringattn__kv_check(cfg, kv, q, out, lse, &s, &S)) != RINGATTN_OK) return st;
    Lmax = s.seq_k; Se = S < Lmax ? S : Lmax;
    /* the problem every split shares: one member, key tiles of at most TILE_K (the longest split) */
    cmax = kv->split_size > 0 ? kv->split_size : (Lmax + (S - 1)) / (S > 0 ? S : 1);
    if (cmax > Lmax) cmax = Lmax;
    ps = s; ps.seq_k = cmax < 1 ? 1 : (cmax < RINGATTN_TILE_K ? cmax : RINGATTN_TILE_K);
    sub = *cfg; sub.ring_size = 1; sub.partition = RINGATTN_CONTIGUOUS; sub.sinks = NULL;
    if ((st = ringattn__resolve(&sub, &ps, 0, &P, &plan)) != RINGATTN_OK) return st;
    if (P.ct == RINGATTN_F32 && ringattn__float_rows(q, P.nt, &qnorm, &bad))
        return ringattn__fail(cfg, RINGATTN_ERANGE, "q holds %g, beyond the float range of f32 compute (compute in F64)", bad);
    items = s.batch * Se;
#ifdef _OPENMP
    nt = cfg->num_threads ? cfg->num_threads : omp_get_max_threads();
#else
    nt = 1;
#endif
    if (items < nt) nt = items > 0 ? (int)items : 1;
    x = ringattn__mul(ringattn__mul(Se, s.batch, &ovf), ringattn__mul(s.seq_q, s.heads_q, &ovf), &ovf);
    np = (size_t)ringattn__mul(ringattn__mul(x, s.dim_v, &ovf), 8, &ovf);
    nl = (size_t)ringattn__mul(x, 8, &ovf);
    if (ovf) return ringattn__fail(cfg, RINGATTN_EOVERFLOW, "the partials of %lld splits overflow 64 bits", (long long)S);
    po = (double *)RINGATTN_MALLOC(np ? np : 1, cfg->alloc_user);
    pl = (double *)RINGATTN_MALLOC(nl ? nl : 1, cfg->alloc_user);
    acc = (double *)RINGATTN_MALLOC((size_t)s.dim_v * sizeof(double), cfg->alloc_user);
    if (po && pl && acc) T = ringattn__kv_threads(&P, nt, &blk, cfg->alloc_user);
    if (!T) {
        if (po) RINGATTN_FREE(po, cfg->alloc_user);
        if (pl) RINGATTN_FREE(pl, cfg->alloc_user);
        if (acc) RINGATTN_FREE(acc, cfg->alloc_user);
        return ringattn__fail(cfg, RINGATTN_ENOMEM, "could not allocate the partials (%zu bytes) and the threads' buffers",
                              np + nl);
    }
    /* every (sequence, split) alone: any thread, any order, the same bits */
    RINGATTN__OMP(omp parallel for num_threads(nt) schedule(dynamic, 1))
    for (x = 0; x < items; x++) {
        ringattn__kv_thread *t = &T[nt > 1 ? ringattn__thread_id() : 0];
        int64_t bb = x / Se, sp = x % Se, before = t->w.tiles;
        ringattn__kv_item(&P, cfg, kv, q, t, bb, sp, po + (sp * s.batch + bb) * s.seq_q * s.heads_q * s.dim_v,
                          pl + (sp * s.batch + bb) * s.heads_q * s.seq_q);
        if (t->w.tiles > before) t->computed++;
    }
    for (i = 0; i < nt; i++) {
        if (T[i].status != RINGATTN_OK) erange = 1;
        if (T[i].kmax > kmax) kmax = T[i].kmax;
        computed += T[i].computed;
    }
    skipped = s.batch * S - computed;
    if (erange && P.ct == RINGATTN_F32)
        st = ringattn__fail(cfg, RINGATTN_ERANGE, "a key holds a finite value beyond the float range of f32 compute "
                            "(compute in F64)");
    else
        st = ringattn__kv_range(cfg, &P, kv, qnorm, kmax);
    if (st == RINGATTN_OK) {
        ringattn__kv_finish(cfg, kv, &s, S, Se, po, pl, out, lse, acc);
        if (kv->update_cache) ringattn__kv_update(kv, s.batch);
        if (cfg->stats) {
            ringattn_stats *o = cfg->stats;
            memset(o, 0, sizeof *o);
            o->ring_size = 1; o->num_threads = nt; o->ring_steps = S;
            o->blocks_computed = computed; o->blocks_skipped = skipped;
            for (i = 0; i < nt; i++) {
                o->tiles_computed += T[i].w.tiles; o->flops += (double)T[i].w.flops;
                if (T[i].w.bytes > o->scratch_bytes_per_thread) o->scratch_bytes_per_thread = T[i].w.bytes;
            }
            o->member_flops_min = o->member_flops_max = o->flops;
            o->planned_bytes_per_member = o->peak_bytes_per_member = o->scratch_bytes_per_thread;
            o->shared_bytes = np + nl;
        }
    }
    ringattn__kv_threads_free(T, &blk, cfg->alloc_user);
    RINGATTN_FREE(po, cfg->alloc_user); RINGATTN_FREE(pl, cfg->alloc_user); RINGATTN_FREE(acc, cfg->alloc_user);
    return st;
}

/* ---------------------------------------------------------------- per-step goldens */

RINGATTN_API int64_t ringattn_trace_positions(const ringattn_trace_event *ev, int keys, int64_t *pos, int64_t cap)
{
    const int64_t *p0, *cnt, *str; int np, j; int64_t n = 0, r;
    if (!ev || !pos) return RINGATTN_ENULL;
    if (keys != 0 && keys != 1) return RINGATTN_ECONFIG;
    np = keys ? ev->k_pieces : ev->q_pieces;
    if (np < 1 || np > 2) return RINGATTN_EUNSUPPORTED;   /* an event without positions */
    p0 = keys ? ev->k_pos0 : ev->q_pos0; cnt = keys ? ev->k_count : ev->q_count;
    str = keys ? ev->k_stride : ev->q_stride;
    for (j = 0; j < np; j++) n += cnt[j];
    if (n > cap) return RINGATTN_ESHAPE;
    n = 0;
    for (j = 0; j < np; j++)
        for (r = 0; r < cnt[j]; r++) pos[n++] = p0[j] + r * str[j];
    return n;
}

RINGATTN_API int ringattn_trace_result(const ringattn_trace_event *ev, int block, ringattn_tensor *out,
                                       ringattn_tensor *lse, const ringattn_config *cfg)
{
    const void *acc; const double *m, *l; int64_t want[4], bb, hh, r, c; int st;
    if (!ev) return ringattn__fail(cfg, RINGATTN_ENULL, "trace event is NULL");
    if (ev->pass != 0) return ringattn__fail(cfg, RINGATTN_ECONFIG, "ringattn_trace_result reads a forward event (pass 0)");
    if (block != 0 && block != 1) return ringattn__fail(cfg, RINGATTN_ECONFIG, "block = %d, must be 0 or 1", block);
    if (!out && !lse) return ringattn__fail(cfg, RINGATTN_ENULL, "out and lse are both NULL");
    acc = block ? ev->block_acc : ev->acc;
    m = block ? ev->block_max : ev->row_max;
    l = block ? ev->block_sum : ev->row_sum;
    if (!acc || !m || !l)
        return ringattn__fail(cfg, RINGATTN_EUNSUPPORTED, "the event carries no %s state%s", block ? "block" : "running",
                              block ? " (set cfg->trace_blocks)" : "");
    want[0] = ev->batch; want[1] = ev->rows; want[2] = ev->heads; want[3] = ev->dim_v;
    if (out && (st = ringattn__check_view(cfg, out, "out", want, 1)) != RINGATTN_OK) return st;
    want[1] = ev->heads; want[2] = ev->rows; want[3] = 1;
    if (lse && (st = ringattn__check_view(cfg, lse, "lse", want, 1)) != RINGATTN_OK) return st;
    for (bb = 0; bb < ev->batch; bb++)
    for (hh = 0; hh < ev->heads; hh++)
    for (r = 0; r < ev->rows; r++) {
        int64_t at = (bb * ev->heads + hh) * ev->rows + r;
        if (out)
            for (c = 0; c < ev->dim_v; c++)
                ringattn__store(out->data, out->dtype, ringattn__index(out, bb, r, hh, c),
                                ringattn__finish_out(ringattn__load(acc, ev->dtype, at * ev->dim_v + c), l[at], ev->out_scale));
        if (lse)
            ringattn__store(lse->data, lse->dtype, ringattn__index(lse, bb, hh, r, 0), ringattn__finish_lse(m[at], l[at]));
    }
    return RINGATTN_OK;
}

RINGATTN_API int ringattn_trace_grads(const ringattn_trace_event *ev, ringattn_tensor *dq, ringattn_tensor *dk,
                                      ringattn_tensor *dv, const ringattn_config *cfg)
{
    int64_t want[4], bb, hh, r, c; int st, x;
    ringattn_tensor *t[3]; const char *names[3] = { "dq", "dk", "dv" };
    if (!ev) return ringattn__fail(cfg, RINGATTN_ENULL, "trace event is NULL");
    if (ev->pass != 1) return ringattn__fail(cfg, RINGATTN_ECONFIG, "ringattn_trace_grads reads a backward event (pass 1)");
    if (!dq && !dk && !dv) return ringattn__fail(cfg, RINGATTN_ENULL, "dq, dk and dv are all NULL");
    if (!ev->acc || !ev->dkv) return ringattn__fail(cfg, RINGATTN_EUNSUPPORTED, "the event carries no gradient state");
    t[0] = dq; t[1] = dk; t[2] = dv;
    for (x = 0; x < 3; x++) {
        if (!t[x]) continue;
        want[0] = ev->batch; want[1] = x ? ev->keys : ev->rows; want[2] = x ? ev->kv_heads : ev->heads;
        want[3] = x == 2 ? ev->dim_v : ev->dim;
        if ((st = ringattn__check_view(cfg, t[x], names[x], want, 1)) != RINGATTN_OK) return st;
    }
    for (bb = 0; bb < ev->batch; bb++) {
        if (dq)
            for (hh = 0; hh < ev->heads; hh++)
            for (r = 0; r < ev->rows; r++)
            for (c = 0; c < ev->dim; c++)
                ringattn__store(dq->data, dq->dtype, ringattn__index(dq, bb, r, hh, c),
                                ringattn__load(ev->acc, ev->dtype, ((bb * ev->heads + hh) * ev->rows + r) * ev->dim + c));
        for (x = 1; x < 3; x++) {   /* dK, then dV after all of dK (as in the travelling buffer) */
            int64_t dim = x == 1 ? ev->dim : ev->dim_v;
            int64_t base = x == 1 ? 0 : ev->batch * ev->kv_heads * ev->kv_pitch * ev->dim;
            if (!t[x]) continue;
            for (hh = 0; hh < ev->kv_heads; hh++)
            for (r = 0; r < ev->keys; r++)
            for (c = 0; c < dim; c++)
                ringattn__store(t[x]->data, t[x]->dtype, ringattn__index(t[x], bb, r, hh, c),
                                ringattn__load(ev->dkv, ev->dtype, base + ((bb * ev->kv_heads + hh) * ev->kv_pitch + r) * dim + c));
        }
    }
    return RINGATTN_OK;
}

/* ---------------------------------------------------------------- .npy files and comparison */
/* The .npy format (numpy.lib.format): 6 bytes magic "\x93NUMPY", 2 bytes version (major,
   minor), the header length (2 bytes little-endian in 1.0, 4 bytes in 2.0 and 3.0), then
   the header: an ASCII (3.0: UTF-8) Python dict literal
       {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
   padded with spaces and a final newline, then the raw data. The parser below reads that
   dict with a tiny tokenizer; it never looks past the bytes it was given and refuses
   anything else with a sentence saying what and where. */
#ifndef RINGATTN_NO_NPY

/* What path names: 0 nothing, 1 a regular file, 2 a directory, 3 anything else (a device, a
   FIFO, a socket); -1 when this platform has no stat() (then a save writes in place). */
static int ringattn__npy_path_kind(const char *path)
{
#if defined(RINGATTN__HAVE_STAT) && defined(_WIN32)
    struct _stat sb;
    if (_stat(path, &sb) != 0) return 0;
    return (sb.st_mode & _S_IFMT) == _S_IFREG ? 1 : (sb.st_mode & _S_IFMT) == _S_IFDIR ? 2 : 3;
#elif defined(RINGATTN__HAVE_STAT)
    struct stat sb;
    if (stat(path, &sb) != 0) return 0;
    return S_ISREG(sb.st_mode) ? 1 : S_ISDIR(sb.st_mode) ? 2 : 3;
#else
    (void)path;
    return -1;
#endif
}

static int ringattn__npy_host_big_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 0;
}

static void ringattn__npy_swap(unsigned char *p, size_t es, size_t count)
{
    size_t i, j;
    for (i = 0; i < count; i++, p += es)
        for (j = 0; j < es / 2; j++) { unsigned char c = p[j]; p[j] = p[es - 1 - j]; p[es - 1 - j] = c; }
}

/* one element of a view as a double (f16 / bf16 decoded exactly): the core's load */
static double ringattn__npy_get(const ringattn_tensor *t, const int64_t i[4])
{
    return ringattn__load(t->data, t->dtype, ringattn__index(t, i[0], i[1], i[2], i[3]));
}

/* ---- the header tokenizer */
typedef struct {
    const char *begin, *p, *end;
    const ringattn_config *cfg;
} ringattn__npy_lex;

static void ringattn__npy_ws(ringattn__npy_lex *L)
{
    while (L->p < L->end && (*L->p == ' ' || *L->p == '\t' || *L->p == '\n' || *L->p == '\r')) L->p++;
}

static int ringattn__npy_bad(ringattn__npy_lex *L, const char *what)
{
    if (L->p >= L->end)
        return ringattn__fail(L->cfg, RINGATTN_EFORMAT,
                                  "malformed .npy header: it ends where %s was expected", what);
    return ringattn__fail(L->cfg, RINGATTN_EFORMAT,
                              "malformed .npy header: %s expected at header byte %ld, found '%c' (0x%02x)",
                              what, (long)(L->p - L->begin),
                              (*L->p >= 32 && *L->p < 127) ? *L->p : '?', (unsigned)(unsigned char)*L->p);
}

static int ringattn__npy_expect(ringattn__npy_lex *L, char c, const char *what)
{
    ringattn__npy_ws(L);
    if (L->p >= L->end || *L->p != c) return ringattn__npy_bad(L, what);
    L->p++;
    return RINGATTN_OK;
}

/* a Python string literal in single or double quotes, no escapes; copied to out[cap] */
static int ringattn__npy_string(ringattn__npy_lex *L, char *out, size_t cap, const char *what)
{
    char q; size_t n = 0;
    ringattn__npy_ws(L);
    if (L->p >= L->end || (*L->p != '\'' && *L->p != '"')) return ringattn__npy_bad(L, what);
    q = *L->p++;
    while (L->p < L->end && *L->p != q) {
        if (*L->p == '\\' || *L->p == '\n')
            return ringattn__npy_bad(L, "a plain string (no escapes, no newline)");
        if (n + 1 < cap) out[n] = *L->p;
        n++; L->p++;
    }
    if (L->p >= L->end) return ringattn__npy_bad(L, "the closing quote of a string");
    L->p++;
    if (n + 1 > cap) {
        out[cap - 1] = 0;
        return ringattn__fail(L->cfg, RINGATTN_EFORMAT, "malformed .npy header: %s is too long (%lu bytes)",
                                  what, (unsigned long)n);
    }
    out[n] = 0;
    return RINGATTN_OK;
}

static int ringattn__npy_descr(ringattn__npy_lex *L, ringattn_npy_info *info)
{
    char s[32]; int st; const char *c;
    ringattn__npy_ws(L);
    if (L->p < L->end && (*L->p == '[' || *L->p == '{'))
        return ringattn__fail(L->cfg, RINGATTN_EFORMAT,
                                  "unsupported .npy dtype: a structured dtype (supported: <f2 <f4 <f8, and bf16 as <u2)");
    if ((st = ringattn__npy_string(L, s, sizeof s, "the dtype string after 'descr':")) != RINGATTN_OK) return st;
    c = s + 1;
    if (s[0] == '<') info->big_endian = 0;
    else if (s[0] == '>') info->big_endian = 1;
    else if (s[0] == '=') info->big_endian = ringattn__npy_host_big_endian();
    else c = NULL;
    if (c && strcmp(c, "f2") == 0) info->dtype = RINGATTN_F16;
    else if (c && strcmp(c, "f4") == 0) info->dtype = RINGATTN_F32;
    else if (c && strcmp(c, "f8") == 0) info->dtype = RINGATTN_F64;
    else if (c && (strcmp(c, "u2") == 0 || strcmp(c, "i2") == 0)) info->dtype = RINGATTN_BF16;
    else if (strcmp(s, "|u1") == 0 || strcmp(s, "|i1") == 0) {   /* one byte: no byte order */
        info->dtype = RINGATTN_FP8_E4M3; info->big_endian = ringattn__npy_host_big_endian();
    }
    else if (strcmp(s, "|b1") == 0) {   /* NumPy bool: a mask */
        info->dtype = RINGATTN_BOOL; info->big_endian = ringattn__npy_host_big_endian();
    }
    else
        return ringattn__fail(L->cfg, RINGATTN_EFORMAT,
                                  "unsupported .npy dtype '%s' (supported: <f2 <f4 <f8 and >f2 >f4 >f8; "
                                  "bf16 stored as <u2, fp8 as |u1, bool as |b1)", s);
    return RINGATTN_OK;
}

static int ringattn__npy_bool(ringattn__npy_lex *L, int *v)
{
    ringattn__npy_ws(L);
    if (L->end - L->p >= 4 && memcmp(L->p, "True", 4) == 0) { *v = 1; L->p += 4; return RINGATTN_OK; }
    if (L->end - L->p >= 5 && memcmp(L->p, "False", 5) == 0) { *v = 0; L->p += 5; return RINGATTN_OK; }
    return ringattn__npy_bad(L, "True or False after 'fortran_order':");
}

/* (d0, d1, ...): non-negative integers, optional trailing comma, at most 4 of them */
static int ringattn__npy_shape(ringattn__npy_lex *L, ringattn_npy_info *info)
{
    int st;
    if ((st = ringattn__npy_expect(L, '(', "'(' opening the shape tuple")) != RINGATTN_OK) return st;
    info->ndim = 0;
    for (;;) {
        int64_t v = 0; int digits = 0;
        ringattn__npy_ws(L);
        if (L->p < L->end && *L->p == ')') { L->p++; return RINGATTN_OK; }
        if (L->p < L->end && *L->p == '-')
            return ringattn__fail(L->cfg, RINGATTN_EFORMAT, "malformed .npy header: a negative dimension in the shape");
        while (L->p < L->end && *L->p >= '0' && *L->p <= '9') {
            int dgt = *L->p - '0';
            if (v > (INT64_MAX - dgt) / 10)
                return ringattn__fail(L->cfg, RINGATTN_EOVERFLOW,
                                          "absurd .npy shape: dimension %d does not fit in 64 bits", info->ndim);
            v = v * 10 + dgt; digits++; L->p++;
        }
        if (!digits) return ringattn__npy_bad(L, "a dimension (a non-negative integer) or ')'");
        if (L->p < L->end && *L->p == 'L') L->p++;   /* Python 2 long */
        if (info->ndim == 4)
            return ringattn__fail(L->cfg, RINGATTN_ESHAPE,
                                      ".npy array of rank > 4: a ringattn tensor has at most 4 dimensions");
        info->dims[info->ndim++] = v;
        ringattn__npy_ws(L);
        if (L->p < L->end && *L->p == ',') { L->p++; continue; }
        if (L->p < L->end && *L->p == ')') { L->p++; return RINGATTN_OK; }
        return ringattn__npy_bad(L, "',' or ')' in the shape tuple");
    }
}

/* the magic and the version (8 bytes); *prefix = bytes before the header (10 or 12) */
static int ringattn__npy_magic(const unsigned char *b, size_t len, ringattn_npy_info *info, size_t *prefix,
                               const ringattn_config *cfg)
{
    if (memcmp(b, "\x93NUMPY", len < 6 ? len : 6) != 0)
        return ringattn__fail(cfg, RINGATTN_EFORMAT, "not a .npy file: bad magic (want \\x93NUMPY)");
    if (len < 8)
        return ringattn__fail(cfg, RINGATTN_EFORMAT, "truncated .npy file: %lu bytes, not even the magic "
                                  "and version", (unsigned long)len);
    info->version_major = b[6]; info->version_minor = b[7];
    if (b[6] < 1 || b[6] > 3 || b[7] != 0)
        return ringattn__fail(cfg, RINGATTN_EFORMAT, "unsupported .npy format version %d.%d (1.0, 2.0 and "
                                  "3.0 are read)", b[6], b[7]);
    *prefix = (b[6] == 1) ? 10 : 12;
    return RINGATTN_OK;
}

/* the header length field that follows (2 bytes in 1.0, 4 in 2.0 / 3.0, little-endian) */
static int ringattn__npy_hlen(const unsigned char *b, size_t len, size_t prefix, uint32_t *hlen,
                              const ringattn_config *cfg)
{
    if (len < prefix)
        return ringattn__fail(cfg, RINGATTN_EFORMAT, "truncated .npy file: %lu bytes, the header length "
                                  "field ends at byte %lu", (unsigned long)len, (unsigned long)prefix);
    *hlen = (prefix == 10) ? (uint32_t)b[8] | ((uint32_t)b[9] << 8)
                           : (uint32_t)b[8] | ((uint32_t)b[9] << 8) | ((uint32_t)b[10] << 16) | ((uint32_t)b[11] << 24);
    if (*hlen > RINGATTN_NPY_MAX_HEADER)
        return ringattn__fail(cfg, RINGATTN_EFORMAT, ".npy header length %lu exceeds the limit of %d bytes",
                                  (unsigned long)*hlen, RINGATTN_NPY_MAX_HEADER);
    return RINGATTN_OK;
}

RINGATTN_API int ringattn_npy_parse_header(const void *buf, size_t len, ringattn_npy_info *out,
                                           const ringattn_config *cfg)
{
    const unsigned char *b = (const unsigned char *)buf;
    ringattn_npy_info info; ringattn__npy_lex L;
    uint32_t hlen = 0; size_t prefix = 0;   /* set by the helpers; gcc -O3 cannot see it */
    int st, a, seen_d = 0, seen_f = 0, seen_s = 0;
    uint64_t count = 1, es;
    if (!buf || !out) return ringattn__fail(cfg, RINGATTN_ENULL, "buffer or info is NULL");
    memset(&info, 0, sizeof info);
    for (a = 0; a < 4; a++) info.dims[a] = 1;
    if ((st = ringattn__npy_magic(b, len, &info, &prefix, cfg)) != RINGATTN_OK) return st;
    if ((st = ringattn__npy_hlen(b, len, prefix, &hlen, cfg)) != RINGATTN_OK) return st;
    if (len - prefix < hlen)
        return ringattn__fail(cfg, RINGATTN_EFORMAT, "truncated .npy header: %lu bytes announced, %lu present",
                                  (unsigned long)hlen, (unsigned long)(len - prefix));
    L.begin = L.p = (const char *)b + prefix; L.end = L.p + hlen; L.cfg = cfg;

    if ((st = ringattn__npy_expect(&L, '{', "'{' opening the header dict")) != RINGATTN_OK) return st;
    for (;;) {
        char key[16];
        ringattn__npy_ws(&L);
        if (L.p < L.end && *L.p == '}') { L.p++; break; }
        if ((st = ringattn__npy_string(&L, key, sizeof key, "a key ('descr', 'fortran_order', 'shape')")) != RINGATTN_OK)
            return st;
        if ((st = ringattn__npy_expect(&L, ':', "':' after a key")) != RINGATTN_OK) return st;
        if (strcmp(key, "descr") == 0 && !seen_d) { seen_d = 1; st = ringattn__npy_descr(&L, &info); }
        else if (strcmp(key, "fortran_order") == 0 && !seen_f) { seen_f = 1; st = ringattn__npy_bool(&L, &info.fortran_order); }
        else if (strcmp(key, "shape") == 0 && !seen_s) { seen_s = 1; st = ringattn__npy_shape(&L, &info); }
        else return ringattn__fail(cfg, RINGATTN_EFORMAT, "malformed .npy header: unknown or repeated key '%s'", key);
        if (st != RINGATTN_OK) return st;
        ringattn__npy_ws(&L);
        if (L.p < L.end && *L.p == ',') { L.p++; continue; }
        if (L.p < L.end && *L.p == '}') { L.p++; break; }
        return ringattn__npy_bad(&L, "',' or '}' after a value");
    }
    ringattn__npy_ws(&L);
    if (L.p != L.end) return ringattn__npy_bad(&L, "only padding after the header dict");
    if (!seen_d || !seen_f || !seen_s)
        return ringattn__fail(cfg, RINGATTN_EFORMAT, "malformed .npy header: key '%s' is missing",
                                  !seen_d ? "descr" : !seen_f ? "fortran_order" : "shape");

    es = ringattn__dtype_size(info.dtype);
    for (a = 0; a < info.ndim; a++) {
        if (info.dims[a] == 0)
            return ringattn__fail(cfg, RINGATTN_ESHAPE, "empty .npy array (dimension %d is 0): a ringattn "
                                      "tensor needs every dimension >= 1", a);
        if ((uint64_t)info.dims[a] > ((uint64_t)INT64_MAX / 16) / count)
            return ringattn__fail(cfg, RINGATTN_EOVERFLOW, "absurd .npy shape: the element count overflows 64 bits");
        count *= (uint64_t)info.dims[a];
    }
    info.count = (int64_t)count;
    info.data_bytes = count * es;                       /* < 2^63: count < 2^59, es <= 8 */
    info.data_offset = (uint64_t)prefix + hlen;
    if (info.data_bytes > (uint64_t)SIZE_MAX - info.data_offset)
        return ringattn__fail(cfg, RINGATTN_EOVERFLOW, "absurd .npy shape: %llu bytes of data do not fit in "
                                  "this machine's size_t", (unsigned long long)info.data_bytes);
    *out = info;
    return RINGATTN_OK;
}

/* the 4-D view of a loaded array: trailing 1s, strides of C or Fortran order */
static void ringattn__npy_view(ringattn_npy_array *arr, void *data)
{
    const ringattn_npy_info *in = &arr->info;
    int a; int64_t s = 1;
    arr->t.data = data; arr->t.dtype = in->dtype;
    for (a = 0; a < 4; a++) arr->t.shape[a] = in->dims[a];
    if (in->fortran_order) for (a = 0; a < 4; a++) { arr->t.stride[a] = s; s *= in->dims[a]; }
    else for (a = 3; a >= 0; a--) { arr->t.stride[a] = s; s *= in->dims[a]; }
}

RINGATTN_API int ringattn_npy_decode(const void *buf, size_t len, ringattn_npy_array *arr,
                                     const ringattn_config *cfg)
{
    ringattn_npy_info info; void *data, *user = cfg ? cfg->alloc_user : NULL; int st;
    if (!arr) return ringattn__fail(cfg, RINGATTN_ENULL, "arr is NULL");
    if ((st = ringattn_npy_parse_header(buf, len, &info, cfg)) != RINGATTN_OK) return st;
    if (len - info.data_offset < info.data_bytes)
        return ringattn__fail(cfg, RINGATTN_EFORMAT, "truncated .npy data: the header promises %llu bytes, "
                                  "%llu present", (unsigned long long)info.data_bytes,
                                  (unsigned long long)(len - info.data_offset));
    if (len - info.data_offset > info.data_bytes)
        return ringattn__fail(cfg, RINGATTN_EFORMAT, ".npy file has %llu bytes after the data the header "
                                  "describes", (unsigned long long)(len - info.data_offset - info.data_bytes));
    data = RINGATTN_MALLOC((size_t)info.data_bytes, user);
    if (!data) return ringattn__fail(cfg, RINGATTN_ENOMEM, "cannot allocate %llu bytes for the .npy data",
                                         (unsigned long long)info.data_bytes);
    memcpy(data, (const unsigned char *)buf + info.data_offset, (size_t)info.data_bytes);
    if (info.big_endian != ringattn__npy_host_big_endian())
        ringattn__npy_swap((unsigned char *)data, ringattn__dtype_size(info.dtype), (size_t)info.count);
    arr->info = info; arr->alloc_user = user;
    ringattn__npy_view(arr, data);
    return RINGATTN_OK;
}

RINGATTN_API int ringattn_npy_load(const char *path, ringattn_npy_array *arr, const ringattn_config *cfg)
{
    unsigned char pre[12], *hdr = NULL; void *data = NULL, *user = cfg ? cfg->alloc_user : NULL;
    ringattn_npy_info info; uint32_t hlen = 0; size_t prefix = 0, got; int st; FILE *f; long pos, end;
    if (!path || !arr) return ringattn__fail(cfg, RINGATTN_ENULL, "path or arr is NULL");
    if (ringattn__npy_path_kind(path) == 2)
        return ringattn__fail(cfg, RINGATTN_EIO, "'%s' is a directory, not a .npy file", path);
    f = fopen(path, "rb");
    if (!f) return ringattn__fail(cfg, RINGATTN_EIO, "cannot open '%s' for reading", path);
    got = fread(pre, 1, 8, f);
    if (ferror(f)) { fclose(f); return ringattn__fail(cfg, RINGATTN_EIO, "error reading '%s'", path); }
    st = ringattn__npy_magic(pre, got, &info, &prefix, cfg);
    if (st == RINGATTN_OK) {
        got += fread(pre + 8, 1, prefix - 8, f);
        st = ringattn__npy_hlen(pre, got, prefix, &hlen, cfg);
    }
    if (st == RINGATTN_OK) {
        hdr = (unsigned char *)RINGATTN_MALLOC(prefix + hlen, user);
        if (!hdr) st = ringattn__fail(cfg, RINGATTN_ENOMEM, "cannot allocate the .npy header");
    }
    if (st == RINGATTN_OK) {
        memcpy(hdr, pre, prefix);
        got = prefix + fread(hdr + prefix, 1, hlen, f);
        st = ringattn_npy_parse_header(hdr, got, &info, cfg);
    }
    /* the data must be exactly what the header says: check the file's size before allocating
       (ftell may fail on a pipe; then a short read below says so) */
    if (st == RINGATTN_OK && (pos = ftell(f)) >= 0 && fseek(f, 0, SEEK_END) == 0 && (end = ftell(f)) >= 0) {
        if ((uint64_t)(end - pos) < info.data_bytes)
            st = ringattn__fail(cfg, RINGATTN_EFORMAT, "truncated .npy data in '%s': the header promises %llu "
                                    "bytes, %llu present", path, (unsigned long long)info.data_bytes,
                                    (unsigned long long)(end - pos));
        else if ((uint64_t)(end - pos) > info.data_bytes)
            st = ringattn__fail(cfg, RINGATTN_EFORMAT, "'%s' has %llu bytes after the data its header "
                                    "describes", path, (unsigned long long)((uint64_t)(end - pos) - info.data_bytes));
        else if (fseek(f, pos, SEEK_SET) != 0)
            st = ringattn__fail(cfg, RINGATTN_EIO, "cannot seek in '%s'", path);
    }
    if (st == RINGATTN_OK) {
        data = RINGATTN_MALLOC((size_t)info.data_bytes, user);
        if (!data) st = ringattn__fail(cfg, RINGATTN_ENOMEM, "cannot allocate %llu bytes for the .npy data",
                                           (unsigned long long)info.data_bytes);
    }
    if (st == RINGATTN_OK) {
        got = fread(data, 1, (size_t)info.data_bytes, f);
        if (ferror(f)) st = ringattn__fail(cfg, RINGATTN_EIO, "error reading '%s'", path);
        else if (got < info.data_bytes)
            st = ringattn__fail(cfg, RINGATTN_EFORMAT, "truncated .npy data in '%s': the header promises %llu "
                                    "bytes, %llu present", path, (unsigned long long)info.data_bytes,
                                    (unsigned long long)got);
        else if (fgetc(f) != EOF)
            st = ringattn__fail(cfg, RINGATTN_EFORMAT, "'%s' has bytes after the data its header describes", path);
    }
    fclose(f);
    if (hdr) RINGATTN_FREE(hdr, user);
    if (st != RINGATTN_OK) {
        if (data) RINGATTN_FREE(data, user);
        return st;
    }
    if (info.big_endian != ringattn__npy_host_big_endian())
        ringattn__npy_swap((unsigned char *)data, ringattn__dtype_size(info.dtype), (size_t)info.count);
    arr->info = info; arr->alloc_user = user;
    ringattn__npy_view(arr, data);
    return RINGATTN_OK;
}

RINGATTN_API void ringattn_npy_free(ringattn_npy_array *arr)
{
    if (!arr || !arr->t.data) return;
    RINGATTN_FREE(arr->t.data, arr->alloc_user);
    arr->t.data = NULL;
}

/* the header of t as a rank-ndim array: 10 bytes of preamble + the dict padded to a
   multiple of 64 bytes with a final newline; returns its length (<= 256) or an error */
static int ringattn__npy_header(const ringattn_tensor *t, int ndim, char hdr[256], size_t *hlen,
                                uint64_t *data_bytes, const ringattn_config *cfg)
{
    static const char *const descr[7] = { "<f4", "<f8", "<f2", "<u2", "|u1", "|u1", "|b1" };
    int st, a, n; uint64_t count = 1; size_t len, total;
    ringattn_tensor view;
    if (t && t->dtype == RINGATTN_BOOL) {   /* a mask: checked as any one-byte view */
        view = *t; view.dtype = RINGATTN_FP8_E4M3;
    }
    if ((st = ringattn__check_view(cfg, t && t->dtype == RINGATTN_BOOL ? &view : t, "tensor", NULL, 0)) != RINGATTN_OK)
        return st;
    if (ndim < 0 || ndim > 4)
        return ringattn__fail(cfg, RINGATTN_ESHAPE, "ndim = %d, must be 0..4", ndim);
    for (a = ndim; a < 4; a++)
        if (t->shape[a] != 1)
            return ringattn__fail(cfg, RINGATTN_ESHAPE, "writing rank %d drops dimension %d, which is %lld, "
                                      "not 1", ndim, a, (long long)t->shape[a]);
    for (a = 0; a < 4; a++) {
        if ((uint64_t)t->shape[a] > ((uint64_t)INT64_MAX / 16) / count)
            return ringattn__fail(cfg, RINGATTN_EOVERFLOW, "element count overflows 64 bits");
        count *= (uint64_t)t->shape[a];
    }
    *data_bytes = count * ringattn__dtype_size(t->dtype);
    n = snprintf(hdr + 10, 246, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr[t->dtype]);
    len = 10 + (size_t)n;
    for (a = 0; a < ndim; a++) {
        n = snprintf(hdr + len, 256 - len, (a + 1 < ndim) ? "%lld, " : (ndim == 1 ? "%lld,), }" : "%lld), }"),
                     (long long)t->shape[a]);
        len += (size_t)n;
    }
    if (ndim == 0) { memcpy(hdr + len, "), }", 4); len += 4; }
    total = (len + 1 + 63) / 64 * 64;                       /* room for the newline */
    memset(hdr + len, ' ', total - len);
    hdr[total - 1] = '\n';
    memcpy(hdr, "\x93NUMPY\x01\x00", 8);
    hdr[8] = (char)((total - 10) & 0xff); hdr[9] = (char)((total - 10) >> 8);
    *hlen = total;
    return RINGATTN_OK;
}

/* elements [from, from + n) of t in C order, as little-endian bytes, into out */
static void ringattn__npy_gather(const ringattn_tensor *t, uint64_t from, size_t n, unsigned char *out)
{
    size_t es = ringattn__dtype_size(t->dtype), k;
    int swap = ringattn__npy_host_big_endian();
    for (k = 0; k < n; k++) {
        uint64_t i = from + k;
        int64_t i3 = (int64_t)(i % (uint64_t)t->shape[3]), r = (int64_t)(i / (uint64_t)t->shape[3]);
        int64_t i2 = r % t->shape[2], i1 = (r / t->shape[2]) % t->shape[1], i0 = r / t->shape[2] / t->shape[1];
        int64_t o = i0 * t->stride[0] + i1 * t->stride[1] + i2 * t->stride[2] + i3 * t->stride[3];
        memcpy(out + k * es, (const unsigned char *)t->data + o * (int64_t)es, es);
    }
    if (swap) ringattn__npy_swap(out, es, n);
}

RINGATTN_API int ringattn_npy_encode(const ringattn_tensor *t, int ndim, void *buf, size_t cap,
                                     size_t *len, const ringattn_config *cfg)
{
    char hdr[256]; size_t hl; uint64_t bytes; int st;
    if (!len) return ringattn__fail(cfg, RINGATTN_ENULL, "len is NULL");
    if ((st = ringattn__npy_header(t, ndim, hdr, &hl, &bytes, cfg)) != RINGATTN_OK) return st;
    if (bytes > (uint64_t)SIZE_MAX - hl)
        return ringattn__fail(cfg, RINGATTN_EOVERFLOW, "the .npy image does not fit in size_t");
    *len = hl + (size_t)bytes;
    if (!buf) return RINGATTN_OK;
    if (cap < *len)
        return ringattn__fail(cfg, RINGATTN_EOVERFLOW, "buffer of %lu bytes, %lu needed",
                                  (unsigned long)cap, (unsigned long)*len);
    memcpy(buf, hdr, hl);
    ringattn__npy_gather(t, 0, (size_t)(bytes / ringattn__dtype_size(t->dtype)), (unsigned char *)buf + hl);
    return RINGATTN_OK;
}

/* header and data of t into f; 0 or RINGATTN_EIO (f is closed either way) */
static int ringattn__npy_write(FILE *f, const ringattn_tensor *t, const char *hdr, size_t hl, uint64_t bytes)
{
    unsigned char chunk[4096]; size_t es = ringattn__dtype_size(t->dtype); uint64_t count = bytes / es, i;
    int st = (fwrite(hdr, 1, hl, f) == hl) ? RINGATTN_OK : RINGATTN_EIO;
    for (i = 0; i < count && st == RINGATTN_OK; ) {
        size_t n = (count - i < sizeof chunk / es) ? (size_t)(count - i) : sizeof chunk / es;
        ringattn__npy_gather(t, i, n, chunk);
        if (fwrite(chunk, es, n, f) != n) st = RINGATTN_EIO;
        i += n;
    }
    if (fclose(f) != 0) st = RINGATTN_EIO;
    return st;
}

/* A regular file (or a new one) is written whole to a temporary file beside it,
   "PATH.tmp<N>" (created exclusively: never one that exists), then renamed over PATH, so
   PATH holds the old bytes or the new ones, never part of either; on failure only the
   temporary file is removed. A directory is refused. Anything else (a device, a FIFO) is
   written in place and never removed, whatever happens. */
RINGATTN_API int ringattn_npy_save(const char *path, const ringattn_tensor *t, int ndim,
                                   const ringattn_config *cfg)
{
    char hdr[256], *tmp; size_t hl, n; uint64_t bytes; int st, kind, k; FILE *f = NULL;
    if (!path) return ringattn__fail(cfg, RINGATTN_ENULL, "path is NULL");
    if ((st = ringattn__npy_header(t, ndim, hdr, &hl, &bytes, cfg)) != RINGATTN_OK) return st;
    kind = ringattn__npy_path_kind(path);
    if (kind == 2) return ringattn__fail(cfg, RINGATTN_EIO, "cannot write '%s': it is a directory", path);
    if (kind != 0 && kind != 1) {   /* not ours to replace or remove: written in place */
        if (!(f = fopen(path, "wb"))) return ringattn__fail(cfg, RINGATTN_EIO, "cannot open '%s' for writing", path);
        if (ringattn__npy_write(f, t, hdr, hl, bytes) != RINGATTN_OK)
            return ringattn__fail(cfg, RINGATTN_EIO, "error writing '%s' (not a regular file: left in place)", path);
        return RINGATTN_OK;
    }
    n = strlen(path) + 32;
    if (!(tmp = (char *)RINGATTN_MALLOC(n, cfg ? cfg->alloc_user : NULL)))
        return ringattn__fail(cfg, RINGATTN_ENOMEM, "cannot allocate a temporary file name");
    for (k = 0; k < 64 && !f; k++) {   /* a name no one uses: the address of a local and a counter */
        unsigned long tag = (unsigned long)(((size_t)&f >> 4) ^ (size_t)clock() ^ ((size_t)k * 2654435761u));
        snprintf(tmp, n, "%s.tmp%08lx", path, tag & 0xffffffffUL);
        f = fopen(tmp, "wbx");
        if (!f && ringattn__npy_path_kind(tmp) == 0) break;   /* not a name clash: a real failure */
    }
    if (!f) {
        RINGATTN_FREE(tmp, cfg ? cfg->alloc_user : NULL);
        return ringattn__fail(cfg, RINGATTN_EIO, "cannot create a temporary file beside '%s'", path);
    }
    st = ringattn__npy_write(f, t, hdr, hl, bytes);
#if defined(_WIN32)
    if (st == RINGATTN_OK && rename(tmp, path) != 0 && (remove(path) != 0 || rename(tmp, path) != 0)) st = RINGATTN_EIO;
#else
    if (st == RINGATTN_OK && rename(tmp, path) != 0) st = RINGATTN_EIO;
#endif
    if (st != RINGATTN_OK) {
        remove(tmp);   /* ours: PATH itself is untouched */
        RINGATTN_FREE(tmp, cfg ? cfg->alloc_user : NULL);
        return ringattn__fail(cfg, RINGATTN_EIO, "error writing '%s' (left as it was)", path);
    }
    RINGATTN_FREE(tmp, cfg ? cfg->alloc_user : NULL);
    return RINGATTN_OK;
}

/* ---- comparison */

RINGATTN_API ringattn_compare_policy ringattn_compare_default_policy(ringattn_dtype got)
{
    ringattn_compare_policy p;
    switch (got) {
    case RINGATTN_F64:  p.atol = 1e-7; p.rtol = 1e-7; break;
    case RINGATTN_F16:  p.atol = 1e-5; p.rtol = 1e-3; break;
    case RINGATTN_BF16: p.atol = 1e-5; p.rtol = 1.6e-2; break;
    case RINGATTN_FP8_E4M3: p.atol = 1e-5; p.rtol = 0.125; break;   /* one ulp: 2^-3, 2^-2 */
    case RINGATTN_FP8_E5M2: p.atol = 1e-5; p.rtol = 0.25; break;
    default:            p.atol = 1e-5; p.rtol = 1.3e-6; break;
    }
    p.k = 2.0; p.eps = 1e-6;
    p.empty_lse = RINGATTN_EMPTY_LSE_NEG_INF;
    p.rule = RINGATTN_RULE_FA2;
    p.baseline_err = 0.0;
    p.baseline_mismatch = 0.0;
    return p;
}

RINGATTN_API ringattn_compare_policy ringattn_compare_rule_policy(int rule, ringattn_dtype got, const char *what,
                                                                 int softcap, int gqa)
{
    ringattn_compare_policy p = ringattn_compare_default_policy(got);
    int grad = what && (!strcmp(what, "dq") || !strcmp(what, "dk") || !strcmp(what, "dv"));
    int f16 = got == RINGATTN_F16;
    p.rule = rule;
    switch (rule) {
    case RINGATTN_RULE_FA2: p.k = grad ? 3.0 : 2.0; p.eps = 1e-6; break;
    case RINGATTN_RULE_FA3: p.k = softcap ? 3.0 : 2.0; p.eps = (softcap && grad) ? 3e-4 : 0.0; break;
    case RINGATTN_RULE_MAGI:
        p.k = 2.0; p.eps = 0.0; p.atol = 1e-8;
        p.rtol = !what ? 0.05 : strstr(what, "lse") ? 0.001 : !strcmp(what, "dq") ? (f16 ? 0.2 : 0.3)
               : !strcmp(what, "dk") ? (f16 ? 0.08 : 0.15) : 0.05;
        break;
    case RINGATTN_RULE_FLEX: p.k = got == RINGATTN_F32 ? 10.0 : 1.1; p.eps = 0.0; break;
    case RINGATTN_RULE_TE:
        if (got == RINGATTN_BF16) p.atol = p.rtol = gqa ? 3.5e-2 : 2.5e-2;
        else if (f16) p.atol = p.rtol = 5e-3;
        break;
    default: p.rule = RINGATTN_RULE_FA2; break;
    }
    return p;
}

/* the spacing of dtype t's values at x (one ulp) */
static double ringattn__ulp(double x, ringattn_dtype t)
{
    int e, mant = t == RINGATTN_F64 ? 52 : t == RINGATTN_F32 ? 23 : t == RINGATTN_F16 ? 10 :
                  t == RINGATTN_FP8_E4M3 ? 3 : t == RINGATTN_FP8_E5M2 ? 2 : 7;
    int emin = t == RINGATTN_F64 ? -1022 : (t == RINGATTN_F16 || t == RINGATTN_FP8_E5M2) ? -14 :
               t == RINGATTN_FP8_E4M3 ? -6 : -126;   /* smallest normal's exponent */
    if (x == 0) return ldexp(1.0, emin - mant);
    (void)frexp(fabs(x), &e);           /* |x| in [2^(e-1), 2^e) */
    if (e - 1 < emin) e = emin + 1;     /* subnormal: the fixed quantum */
    return ldexp(1.0, e - 1 - mant);
}

/* FA3's floor of one reference element: |(ref + 0.3 - 0.3) - ref| with ref and each step
   stored in dtype t, as FlashAttention 3's tests compute it on their reference tensor */
static double ringattn__ref_floor(double f, ringattn_dtype t)
{
    double r = ringattn__round(f, t);
    return fabs(ringattn__round(ringattn__round(r + 0.3, t) - 0.3, t) - r);
}

/* i -> (i0, i1, i2, i3), row-major over shape */
static void ringattn__npy_unflatten(const int64_t shape[4], int64_t i, int64_t at[4])
{
    at[3] = i % shape[3]; i /= shape[3];
    at[2] = i % shape[2]; i /= shape[2];
    at[1] = i % shape[1]; at[0] = i / shape[1];
}

RINGATTN_API int ringattn_compare(const ringattn_tensor *got, const ringattn_tensor *ref,
                                  const ringattn_tensor *baseline,
                                  const ringattn_compare_policy *policy,
                                  ringattn_compare_result *res, const ringattn_config *cfg)
{
    ringattn_compare_result r; int64_t n, i, at[4], nfin = 0, mism = 0; int a, st;
    if (!res) return ringattn__fail(cfg, RINGATTN_ENULL, "res is NULL");
    if ((st = ringattn__check_view(cfg, got, "got", NULL, 0)) != RINGATTN_OK) return st;
    if ((st = ringattn__check_view(cfg, ref, "ref", NULL, 0)) != RINGATTN_OK) return st;
    if (baseline && (st = ringattn__check_view(cfg, baseline, "baseline", NULL, 0)) != RINGATTN_OK) return st;
    if (policy && (policy->empty_lse < RINGATTN_EMPTY_LSE_NEG_INF || policy->empty_lse > RINGATTN_EMPTY_LSE_ANY))
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "policy->empty_lse = %d, not a RINGATTN_EMPTY_LSE_* value",
                              policy->empty_lse);
    if (policy && (policy->rule < RINGATTN_RULE_FA2 || policy->rule > RINGATTN_RULE_TE))
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "policy->rule = %d, not a RINGATTN_RULE_* value", policy->rule);
    if (policy && !(policy->atol >= 0 && policy->rtol >= 0 && policy->k >= 0 && policy->eps >= 0 &&
                    policy->baseline_err >= 0 && policy->k < INFINITY && policy->eps < INFINITY &&
                    policy->baseline_mismatch >= 0 && policy->baseline_mismatch <= 1 &&
                    policy->baseline_err < INFINITY && policy->atol < INFINITY && policy->rtol < INFINITY))
        return ringattn__fail(cfg, RINGATTN_ECONFIG, "policy: atol, rtol, k, eps and baseline_err must be finite "
                              "and >= 0, baseline_mismatch in [0, 1]");
    for (a = 0; a < 4; a++) {
        if (ref->shape[a] != got->shape[a])
            return ringattn__fail(cfg, RINGATTN_ESHAPE, "shapes differ: got [%lld %lld %lld %lld], ref [%lld %lld "
                                      "%lld %lld]", (long long)got->shape[0], (long long)got->shape[1],
                                      (long long)got->shape[2], (long long)got->shape[3], (long long)ref->shape[0],
                                      (long long)ref->shape[1], (long long)ref->shape[2], (long long)ref->shape[3]);
        if (baseline && baseline->shape[a] != got->shape[a])
            return ringattn__fail(cfg, RINGATTN_ESHAPE, "baseline.shape[%d] = %lld, got.shape[%d] = %lld",
                                      a, (long long)baseline->shape[a], a, (long long)got->shape[a]);
    }
    memset(&r, 0, sizeof r);
    r.used = policy ? *policy : ringattn_compare_default_policy(got->dtype);
    if (r.used.rule == RINGATTN_RULE_TE) baseline = NULL;   /* fixed tolerances: policy (a) */
    r.policy = baseline ? 'b' : 'a';
    for (a = 0; a < 4; a++) r.max_abs_at[a] = r.max_rel_at[a] = -1;
    n = got->shape[0] * got->shape[1] * got->shape[2] * got->shape[3];
    r.count = n;
    if (baseline) {   /* pass 1: the error of the plain computation sets the bound */
        int64_t nb = 0, outb = 0;
        double E;
        for (i = 0; i < n; i++) {
            double b, f;
            ringattn__npy_unflatten(got->shape, i, at);
            b = ringattn__npy_get(baseline, at); f = ringattn__npy_get(ref, at);
            if (isfinite(b) && isfinite(f)) {
                if (fabs(b - f) > r.baseline_max_abs) r.baseline_max_abs = fabs(b - f);
                r.baseline_mean_abs += fabs(b - f); nb++;
                if (fabs(b - f) > r.used.atol + r.used.rtol * fabs(f)) outb++;
            }
            if (r.used.rule == RINGATTN_RULE_FA3 && isfinite(f) && ringattn__ref_floor(f, got->dtype) > r.floor)
                r.floor = ringattn__ref_floor(f, got->dtype);
            if (isfinite(f) && ringattn__ulp(f, got->dtype) > r.storage_floor)
                r.storage_floor = ringattn__ulp(f, got->dtype);
        }
        if (nb) r.baseline_mean_abs /= (double)nb;
        r.baseline_mismatch = (double)outb / (double)n;
        if (r.used.baseline_mismatch > r.baseline_mismatch) r.baseline_mismatch = r.used.baseline_mismatch;
        r.floor *= 2;
        if (r.used.rule == RINGATTN_RULE_FLEX) {
            E = r.baseline_mean_abs > r.used.baseline_err ? r.baseline_mean_abs : r.used.baseline_err;
        } else {
            E = r.baseline_max_abs > r.used.baseline_err ? r.baseline_max_abs : r.used.baseline_err;
            if (r.storage_floor > E) E = r.storage_floor;
        }
        r.bound = r.used.k * E + r.floor + r.used.eps;
        /* MAGI: min(max(k x the baseline's fraction, 0.005), 0.75); MagiAttention's tests raise
           the floor to 0.005 where near-zero elements decide (dq_min_mismatch_thres) */
        r.mismatch_limit = r.used.k * r.baseline_mismatch > 0.005 ? r.used.k * r.baseline_mismatch : 0.005;
        if (r.mismatch_limit > 0.75) r.mismatch_limit = 0.75;
    }
    for (i = 0; i < n; i++) {
        double g, f, err, rel, allowed = 0; int ok;
        ringattn__npy_unflatten(got->shape, i, at);
        g = ringattn__npy_get(got, at); f = ringattn__npy_get(ref, at);
        if (f == -INFINITY && r.used.empty_lse != RINGATTN_EMPTY_LSE_NEG_INF) {
            /* a row that sees no key, in the port's own convention */
            ok = r.used.empty_lse == RINGATTN_EMPTY_LSE_ANY ||
                 (r.used.empty_lse == RINGATTN_EMPTY_LSE_POS_INF && g == INFINITY) ||
                 (r.used.empty_lse == RINGATTN_EMPTY_LSE_ZERO && g == 0);
            if (!ok) r.nonfinite_mismatch++;
            err = ok ? 0.0 : INFINITY;
        } else if (isnan(g) || isnan(f) || isinf(g) || isinf(f)) {
            /* NaN = NaN and equal infinities agree; anything else is a mismatch */
            ok = (isnan(g) && isnan(f)) || (!isnan(g) && !isnan(f) && g == f);
            if (!ok) r.nonfinite_mismatch++;
            err = ok ? 0.0 : INFINITY;
        } else {
            err = fabs(g - f);
            rel = (f != 0) ? err / fabs(f) : (err > 0 ? INFINITY : 0.0);
            allowed = baseline ? r.bound : r.used.atol + r.used.rtol * fabs(f);
            ok = err <= allowed;
            r.mean_abs += err; nfin++;
            if (err > r.used.atol + r.used.rtol * fabs(f)) mism++;
            if (err > r.max_abs || (r.max_abs_at[0] < 0 && err >= r.max_abs)) {
                r.max_abs = err; memcpy(r.max_abs_at, at, sizeof at); r.max_abs_got = g; r.max_abs_ref = f;
            }
            if (rel > r.max_rel || (r.max_rel_at[0] < 0 && rel >= r.max_rel)) {
                r.max_rel = rel; memcpy(r.max_rel_at, at, sizeof at); r.max_rel_got = g; r.max_rel_ref = f;
            }
        }
        if (!ok) {
            if (r.kept < RINGATTN_COMPARE_KEEP) {
                memcpy(r.bad[r.kept].at, at, sizeof at);
                r.bad[r.kept].got = g; r.bad[r.kept].ref = f; r.bad[r.kept].err = err;
                r.bad[r.kept].allowed = allowed;
                r.kept++;
            }
            r.outside++;
        }
    }
    if (nfin) r.mean_abs /= (double)nfin;
    r.mismatch = (double)mism / (double)n;
    r.pass = (r.outside == 0 && r.nonfinite_mismatch == 0);
    if (baseline && r.used.rule == RINGATTN_RULE_FLEX) {
        /* a verdict on the mean: the elements above the allowed mean are only what lifted it */
        r.pass = r.nonfinite_mismatch == 0 && r.mean_abs <= r.bound;
        if (r.pass) { r.outside = 0; r.kept = 0; }
    }
    if (baseline && r.used.rule == RINGATTN_RULE_MAGI && r.mismatch > r.mismatch_limit) r.pass = 0;
    *res = r;
    return RINGATTN_OK;
}

/* snprintf that appends at *len, never past size, and counts what the full text needs */
static void ringattn__npy_put(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
    va_list ap; int n;
    va_start(ap, fmt);
    n = vsnprintf(*len < size ? buf + *len : NULL, *len < size ? size - *len : 0, fmt, ap);
    va_end(ap);
    if (n > 0) *len += (size_t)n;
}

static void ringattn__npy_put_at(char *buf, size_t size, size_t *len, const char *axes, const int64_t at[4])
{
    int a; const char *sep = "(";
    for (a = 0; a < 4; a++) {
        if (axes[a] == '.' && at[a] == 0) continue;   /* a padding axis */
        ringattn__npy_put(buf, size, len, "%s%c=%lld", sep, axes[a], (long long)at[a]);
        sep = ", ";
    }
    ringattn__npy_put(buf, size, len, ")");
}

RINGATTN_API size_t ringattn_compare_format(const ringattn_compare_result *r, const char *axes,
                                            char *buf, size_t size)
{
    size_t len = 0; int k;
    if (buf && size) buf[0] = 0; else size = 0;
    if (!r) return 0;
    if (!axes || strlen(axes) < 4) axes = "bnhd";
    if (r->policy == 'b' && r->used.rule == RINGATTN_RULE_FLEX)
        ringattn__npy_put(buf, size, &len, "policy (b), FlexAttention's rule: mean|got - ref| <= k * mean|baseline - "
                          "ref| + eps = %g * %.3e + %g = %.3e; mean|got - ref| = %.3e\n", r->used.k,
                          r->baseline_mean_abs > r->used.baseline_err ? r->baseline_mean_abs : r->used.baseline_err,
                          r->used.eps, r->bound, r->mean_abs);
    else if (r->policy == 'b') {
        int fa3 = r->used.rule == RINGATTN_RULE_FA3;
        double E = r->baseline_max_abs > r->used.baseline_err ? r->baseline_max_abs : r->used.baseline_err;
        if (r->storage_floor > E) E = r->storage_floor;
        ringattn__npy_put(buf, size, &len, "policy (b), %s rule: |got - ref| <= k * E%s + eps = %g * %.3e",
                          fa3 ? "FlashAttention 3's" : r->used.rule == RINGATTN_RULE_MAGI ?
                          "MagiAttention's" : "FlashAttention 2's", fa3 ? " + floor" : "", r->used.k, E);
        if (fa3) ringattn__npy_put(buf, size, &len, " + %.3e", r->floor);
        ringattn__npy_put(buf, size, &len, " + %g = %.3e\n", r->used.eps, r->bound);
        ringattn__npy_put(buf, size, &len, "  E = max(baseline %.3e, other orders %.3e, storage floor %.3e)\n",
                          r->baseline_max_abs, r->used.baseline_err, r->storage_floor);
    }
    else
        ringattn__npy_put(buf, size, &len, "policy (a)%s: |got - ref| <= atol + rtol * |ref|, atol = %g, rtol = %g\n",
                          r->used.rule == RINGATTN_RULE_TE ? ", TransformerEngine's tolerances" : "",
                          r->used.atol, r->used.rtol);
    if (r->used.empty_lse != RINGATTN_EMPTY_LSE_NEG_INF)
        ringattn__npy_put(buf, size, &len, "rows that see no key:  got may be %s where ref is -inf\n",
                          r->used.empty_lse == RINGATTN_EMPTY_LSE_POS_INF ? "+inf" :
                          r->used.empty_lse == RINGATTN_EMPTY_LSE_ZERO ? "0" : "anything");
    ringattn__npy_put(buf, size, &len, "elements compared:     %lld\n", (long long)r->count);
    ringattn__npy_put(buf, size, &len, "max abs error:         %.6e", r->max_abs);
    if (r->max_abs_at[0] >= 0) {
        ringattn__npy_put(buf, size, &len, " at ");
        ringattn__npy_put_at(buf, size, &len, axes, r->max_abs_at);
        ringattn__npy_put(buf, size, &len, ": got %.9g, ref %.9g", r->max_abs_got, r->max_abs_ref);
    }
    ringattn__npy_put(buf, size, &len, "\nmax rel error:         %.6e", r->max_rel);
    if (r->max_rel_at[0] >= 0) {
        ringattn__npy_put(buf, size, &len, " at ");
        ringattn__npy_put_at(buf, size, &len, axes, r->max_rel_at);
        ringattn__npy_put(buf, size, &len, ": got %.9g, ref %.9g", r->max_rel_got, r->max_rel_ref);
    }
    ringattn__npy_put(buf, size, &len, "\nNaN/Inf mismatches:    %lld\n", (long long)r->nonfinite_mismatch);
    ringattn__npy_put(buf, size, &len, "outside tolerance:     %lld of %lld\n", (long long)r->outside,
                      (long long)r->count);
    if (r->policy == 'b' && r->used.rule == RINGATTN_RULE_MAGI)
        ringattn__npy_put(buf, size, &len, "mismatch fraction:     %.4g (outside atol %g + rtol %g |ref|), allowed "
                          "%.4g (baseline's %.4g)\n", r->mismatch, r->used.atol, r->used.rtol, r->mismatch_limit,
                          r->baseline_mismatch);
    for (k = 0; k < r->kept; k++) {
        ringattn__npy_put(buf, size, &len, "  mismatch ");
        ringattn__npy_put_at(buf, size, &len, axes, r->bad[k].at);
        ringattn__npy_put(buf, size, &len, ": got %.9g, ref %.9g, err %.3e, allowed %.3e\n",
                          r->bad[k].got, r->bad[k].ref, r->bad[k].err, r->bad[k].allowed);
    }
    if (r->outside > r->kept)
        ringattn__npy_put(buf, size, &len, "  ... %lld more\n", (long long)(r->outside - r->kept));
    ringattn__npy_put(buf, size, &len, "verdict:               %s\n", r->pass ? "PASS (within tolerance)"
                                                                                : "FAIL (outside tolerance)");
    return len;
}

#endif /* RINGATTN_NO_NPY */

/* ======================================================================================== */
/*                                     PLATFORM CODE                                        */
/* ======================================================================================== */
/* What the algorithm above multiplies and exponentiates with. Each kernel is written first as
   a plain C function, the reference a debugger steps into (and what a build without x86-64
   vectors runs); on x86-64 an AVX2 (+FMA) and an AVX-512F version of it sit beside it, built
   from a small vocabulary of vector macros, and doing the same operations in the same order:
   every version gives the same bits (tests/test_simd.c compares them). One table per
   (instruction set, compute type) holds a version of every kernel; a call picks its table once
   (ringattn__kernels_for, when its scratch is allocated) and the algorithm calls through it,
   never asking which instruction set it runs on. In reading order: cblas (when built with
   it), the fused block kernels, the softmax rows, the exps, the vector versions, the tables;
   last the row helpers that have no vector version. */

/* ---------------------------------------------------------------- dense kernels */
/* Row-major C[M x N] = alpha * op(A)[M x K] * op(B)[K x N] + beta * C; beta == 0 ignores C.
   cblas, for the backward's blocks at large d (RINGATTN_USE_CBLAS only; ringattn_layer.h's
   projections use it too, else their own plain loops). */
#ifdef RINGATTN_USE_CBLAS
static void ringattn__gemm(ringattn_dtype t, int ta, int tb, int64_t M, int64_t N, int64_t K,
                           double alpha, const void *A, int64_t lda, const void *B, int64_t ldb,
                           double beta, void *C, int64_t ldc)
{
    /* sizes were checked against INT_MAX when the call was validated */
    if (t == RINGATTN_F32)
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    (int)M, (int)N, (int)K, (float)alpha, (const float *)A, (int)lda,
                    (const float *)B, (int)ldb, (float)beta, (float *)C, (int)ldc);
    else
        cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    (int)M, (int)N, (int)K, alpha, (const double *)A, (int)lda,
                    (const double *)B, (int)ldb, beta, (double *)C, (int)ldc);
}
#endif

/* ---------------------------------------------------------------- fused block kernels */
/* The block products, blocked so that a group of query rows never leaves L1 (or L2) between
   them. The forward (ringattn__forward_block drives them, ringattn__merge sits between):

     S[i][j]  = scale * sum_c Q[i][c] K[j][c]          qk, j over whole K panels
     O[i][c] += sum_j P[i][j] V[j][c]                  pv, j over one column range

   and the backward (ringattn__backward_block), with the same two kernels and a third:

     S = scale Q K^T, dP = dO V^T                      qk (V in panels too)
     dQ[i][c] += sum_j dS[i][j] K[j][c]                pv
     dV[j][c] += sum_i P[i][j] dO[i][c],  dK[j][c] += sum_i dS[i][j] Q[i][c]   pt

   K is stored in panels (below) packed once, when a member builds its chunk: the panels
   travel the ring as they are (the backward keeps K row-major and gathers each tile's K and V
   into panels: its dQ product reads K by rows). Every sum runs in one fixed order (c = 0,
   1, ... for S; j = lo, lo+1, ... for O and dQ; i = first row, ... for dV and dK) with one
   rounding per term (fused multiply-add), and every vector lane is one output element: the
   lane count never changes a result, so the portable C kernels (fma) and the AVX2 and
   AVX-512 ones give the same bits. */

/* K panels: a piece of `count` key rows of dimension d is stored as panels of 16 rows, panel
   k holding rows 16k .. 16k+15 transposed ([d][16]: the 16 keys of one dimension side by
   side, what the S kernel loads); the last panel is as narrow as the rows left, so a piece
   takes exactly count * d elements, as in row-major order. Offset of (row r, dimension c): */
static int64_t ringattn__panel_at(int64_t r, int64_t c, int64_t count, int64_t d)
{
    int64_t k = r / RINGATTN__PANEL, w = count - k * RINGATTN__PANEL;
    if (w > RINGATTN__PANEL) w = RINGATTN__PANEL;
    return k * RINGATTN__PANEL * d + c * w + (r - k * RINGATTN__PANEL);
}

/* qk:  s[i][16k + l] = scale * sum_{c < d} q[i][c] K[16k + l][c]   for i < nr, k < np, l < 16,
   q[i] a row of d values, kp[k] panel k ([d][16]: K[16k + l][c] at kp[k][16 c + l]) */
static void ringattn__qk_c32(int64_t nr, const void *const *q, int64_t d, const void *const *kp, int64_t np,
                             double scale, void *const *s)
{
    const float sc = (float)scale;
    int64_t i, k, l, c;
    for (i = 0; i < nr; i++)
        for (k = 0; k < np; k++)
            for (l = 0; l < RINGATTN__PANEL; l++) {
                const float *qi = (const float *)q[i], *kk = (const float *)kp[k] + l;
                float a = 0;
                for (c = 0; c < d; c++) a = fmaf(qi[c], kk[c * RINGATTN__PANEL], a);
                ((float *)s[i])[k * RINGATTN__PANEL + l] = a * sc;
            }
}

static void ringattn__qk_c64(int64_t nr, const void *const *q, int64_t d, const void *const *kp, int64_t np,
                             double scale, void *const *s)
{
    int64_t i, k, l, c;
    for (i = 0; i < nr; i++)
        for (k = 0; k < np; k++)
            for (l = 0; l < RINGATTN__PANEL; l++) {
                const double *qi = (const double *)q[i], *kk = (const double *)kp[k] + l;
                double a = 0;
                for (c = 0; c < d; c++) a = fma(qi[c], kk[c * RINGATTN__PANEL], a);
                ((double *)s[i])[k * RINGATTN__PANEL + l] = a * scale;
            }
}

/* pv:  o[i][c] += sum_{j < n} p[i][j] v[j ldv + c]   for i < nr, c < dv (j in order) */
static void ringattn__pv_c32(int64_t nr, const void *const *p, int64_t n, const void *v, int64_t ldv,
                             int64_t dv, void *const *o)
{
    int64_t i, j, c;
    for (i = 0; i < nr; i++)
        for (j = 0; j < n; j++) {
            float pj = ((const float *)p[i])[j], *oi = (float *)o[i];
            const float *vj = (const float *)v + j * ldv;
            for (c = 0; c < dv; c++) oi[c] = fmaf(pj, vj[c], oi[c]);
        }
}

static void ringattn__pv_c64(int64_t nr, const void *const *p, int64_t n, const void *v, int64_t ldv,
                             int64_t dv, void *const *o)
{
    int64_t i, j, c;
    for (i = 0; i < nr; i++)
        for (j = 0; j < n; j++) {
            double pj = ((const double *)p[i])[j], *oi = (double *)o[i];
            const double *vj = (const double *)v + j * ldv;
            for (c = 0; c < dv; c++) oi[c] = fma(pj, vj[c], oi[c]);
        }
}

/* pt, the backward's transposed products:
       o[j ldo + c] += sum_{i < nr} p[i ldp + j] x[i ldx + c]   for j < n, c < dx (i in order)
   p a group's rows of P or dS, x its rows of dO or Q, o rows of dV or dK */
static void ringattn__pt_c32(int64_t nr, const void *p, int64_t ldp, int64_t n, const void *x, int64_t ldx,
                             int64_t dx, void *o, int64_t ldo)
{
    int64_t i, j, c;
    for (j = 0; j < n; j++)
        for (i = 0; i < nr; i++) {
            float pij = ((const float *)p)[i * ldp + j], *oj = (float *)o + j * ldo;
            const float *xi = (const float *)x + i * ldx;
            for (c = 0; c < dx; c++) oj[c] = fmaf(pij, xi[c], oj[c]);
        }
}

static void ringattn__pt_c64(int64_t nr, const void *p, int64_t ldp, int64_t n, const void *x, int64_t ldx,
                             int64_t dx, void *o, int64_t ldo)
{
    int64_t i, j, c;
    for (j = 0; j < n; j++)
        for (i = 0; i < nr; i++) {
            double pij = ((const double *)p)[i * ldp + j], *oj = (double *)o + j * ldo;
            const double *xi = (const double *)x + i * ldx;
            for (c = 0; c < dx; c++) oj[c] = fma(pij, xi[c], oj[c]);
        }
}

/* ---------------------------------------------------------------- the softmax rows */
/* The merge's three row kernels: the row's max, its weights exp(s - m) and their sum, and
   (backward) the probabilities exp(s - lse). Sums are kept in double so the running
   denominator l never loses digits to the block structure of the ring; every loop keeps
   lanes that vectorize without reassociating anything (the order of operations is fixed by
   the code, so results stay deterministic). */

/* max_j x[j]: NaNs lose every comparison (x > m ? x : m); they still reach the row through
   exp(NaN) = NaN, except when nothing else is visible: then the row's max is NaN itself */
static double ringattn__row_nan_max(ringattn_dtype t, const void *x, int64_t n, double mx)
{
    int64_t j;
    if (mx == -INFINITY)
        for (j = 0; j < n; j++) {
            double y = (t == RINGATTN_F32) ? (double)((const float *)x)[j] : ((const double *)x)[j];
            if (y != y) return y;
        }
    return mx;
}

static double ringattn__row_max_c32(const void *x, int64_t n)
{
    const float *a = (const float *)x;
    float m[8] = { -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY };
    double mx = -INFINITY;
    int64_t j, k;
    for (j = 0; j + 8 <= n; j += 8)
        for (k = 0; k < 8; k++) m[k] = (a[j + k] > m[k]) ? a[j + k] : m[k];
    for (; j < n; j++) m[0] = (a[j] > m[0]) ? a[j] : m[0];
    for (k = 0; k < 8; k++) mx = (m[k] > mx) ? m[k] : mx;
    return ringattn__row_nan_max(RINGATTN_F32, x, n, mx);
}

static double ringattn__row_max_c64(const void *x, int64_t n)
{
    const double *a = (const double *)x;
    double m[4] = { -INFINITY, -INFINITY, -INFINITY, -INFINITY }, mx = -INFINITY;
    int64_t j, k;
    for (j = 0; j + 4 <= n; j += 4)
        for (k = 0; k < 4; k++) m[k] = (a[j + k] > m[k]) ? a[j + k] : m[k];
    for (; j < n; j++) m[0] = (a[j] > m[0]) ? a[j] : m[0];
    for (k = 0; k < 4; k++) mx = (m[k] > mx) ? m[k] : mx;
    return ringattn__row_nan_max(RINGATTN_F64, x, n, mx);
}

/* the fixed order of every row sum: eight lanes over blocks of eight, the tail into lane 0,
   then the lanes pairwise (the vector exp-and-sum functions add in exactly this order) */
static double ringattn__sum8(const double s[8])
{
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

static double ringattn__row_sum(ringattn_dtype t, const void *x, int64_t n)
{
    int64_t j, k;
    double s[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };
    if (t == RINGATTN_F32) {
        const float *a = (const float *)x;
        for (j = 0; j + 8 <= n; j += 8) for (k = 0; k < 8; k++) s[k] += (double)a[j + k];
        for (; j < n; j++) s[0] += (double)a[j];
    } else {
        const double *a = (const double *)x;
        for (j = 0; j + 8 <= n; j += 8) for (k = 0; k < 8; k++) s[k] += a[j + k];
        for (; j < n; j++) s[0] += a[j];
    }
    return ringattn__sum8(s);
}

/* ---------------------------------------------------------------- the exps */
/* The softmax weights' exp, in f32 and f64: the scalar functions ringattn__expf / ringattn__exp
   (in the shared section, so that the CUDA kernels use them too) and their vector bodies
   below. Method (Cephes): exp(x) = 2^n exp(r), n = round(x / ln2), r = x - n ln2 with ln2 in
   two parts (Cody-Waite: RINGATTN__EXPF_LN2_HI and _LN2_D), exp(r) by a polynomial: f32 degree
   6 (Cephes expf's, within 2 ulp), f64 the Taylor series to degree 12 (truncation below
   2e-16). Below the normal range (x < ln FLT_MIN = -87.33654, x < ln DBL_MIN = -708.39) the
   result is flushed to 0: the largest weight of a row is exp(0) = 1, so a flushed weight
   changes a row by < 1e-38 (1e-308). Above 88 (709) x is clamped: softmax arguments are <= 0.
   NaN stays NaN. The f32 argument is (a - hi) - lo: a score minus a max or lse carried as a
   float pair, so the backward's double lse costs no precision. */

/* v[0..n) = exp((v - hi) - lo), f32 */
static void ringattn__expf_row_c(float *v, int64_t n, float hi, float lo)
{
    int64_t j;
    for (j = 0; j < n; j++) v[j] = ringattn__expf(v[j], hi, lo);
}

/* v[0..n) = exp(v - sub), f64 */
static void ringattn__exp_row_c(double *v, int64_t n, double sub)
{
    int64_t j;
    for (j = 0; j < n; j++) v[j] = ringattn__exp((v[j] - sub) - 0.0);
}

/* row_exp:  x[j] = exp(x[j] - m), returns sum_j x[j]   (m a float score in f32: exact) */
static double ringattn__row_exp_c32(void *x, int64_t n, double m)
{
    ringattn__expf_row_c((float *)x, n, (float)m, 0.0f);
    return ringattn__row_sum(RINGATTN_F32, x, n);
}

static double ringattn__row_exp_c64(void *x, int64_t n, double m)
{
    ringattn__exp_row_c((double *)x, n, m);
    return ringattn__row_sum(RINGATTN_F64, x, n);
}

/* row_prob:  x[j] = exp(x[j] - lse)   (backward: the probabilities from the saved lse, which
   need not be a float: f32 carries it as hi + lo) */
static void ringattn__row_prob_c32(void *x, int64_t n, double lse)
{
    float hi = (float)lse;
    ringattn__expf_row_c((float *)x, n, hi, (float)(lse - (double)hi));
}

static void ringattn__row_prob_c64(void *x, int64_t n, double lse)
{
    ringattn__exp_row_c((double *)x, n, lse);
}

/* row_round:  x[j] = x[j] rounded to storage type pt and read back (the precision
   emulation: ringattn__round_float / ringattn__round, element by element) */
static void ringattn__row_round_c32(void *x, int64_t n, ringattn_dtype pt)
{
    float *a = (float *)x;
    int64_t j;
    for (j = 0; j < n; j++) a[j] = ringattn__round_float(a[j], pt);
}

static void ringattn__row_round_c64(void *x, int64_t n, ringattn_dtype pt)
{
    double *a = (double *)x;
    int64_t j;
    for (j = 0; j < n; j++) a[j] = ringattn__round(a[j], pt);
}

/* norm2 (the range rule's row scan): s4[c mod 4] += x[c]^2 and *big = max(*big, |x[c]|) over
   the finite x[c] (a NaN or Inf makes only its own scores non-finite). Four sums so that the
   vector version keeps them in one register; in double, where d FLT_MAX^2 cannot overflow. */
static void ringattn__norm2_d(const double *x, int64_t n, double s4[4], double *big)
{
    int64_t c;
    for (c = 0; c < n; c++) {
        double y = (x[c] - x[c] == 0) ? x[c] : 0.0;   /* NaN and Inf count as 0 */
        *big = fabs(y) > *big ? fabs(y) : *big;
        s4[c & 3] += y * y;
    }
}

static void ringattn__norm2_c(const float *x, int64_t n, double s4[4], double *big)
{
    double v[64];
    int64_t c0, c;
    for (c0 = 0; c0 < n; c0 += 64) {   /* 64 = 0 mod 4: x[c0 + c] goes to the sum of c */
        int64_t m = n - c0 < 64 ? n - c0 : 64;
        for (c = 0; c < m; c++) v[c] = x[c0 + c];
        ringattn__norm2_d(v, m, s4, big);
    }
}

/* row_out:  y[c] = (float)(x[c] / l * gdiv)   (a finished row of f32 output, l != 0: the
   quotient and the product in double, each correctly rounded, then one rounding to float) */
static void ringattn__row_out_c32(float *y, const void *x, int64_t n, double l, double gdiv)
{
    int64_t c;
    for (c = 0; c < n; c++) y[c] = (float)ringattn__finish_out(((const float *)x)[c], l, gdiv);
}

static void ringattn__row_out_c64(float *y, const void *x, int64_t n, double l, double gdiv)
{
    int64_t c;
    for (c = 0; c < n; c++) y[c] = (float)ringattn__finish_out(((const double *)x)[c], l, gdiv);
}

/* ---------------------------------------------------------------- x86-64 vector versions */
/* With GCC or clang on x86-64, whatever the compiler's target flags: each function carries
   its own target attribute and runs only where the CPU has it (RINGATTN_NO_SIMD or
   RINGATTN_NO_DISPATCH leave only the plain C). */
#if (defined(__GNUC__) || defined(__clang__)) && !defined(RINGATTN_NO_SIMD) && !defined(RINGATTN_NO_DISPATCH) && \
    (defined(__x86_64__) || defined(__i386__)) && !defined(__CUDACC__)
#define RINGATTN__X86 1
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
/* GCC contracts a*b+c into one rounding wherever the language mode allows it (C++ and GNU C);
   in a function built for FMA that would change bits the scalar code does not change */
#define RINGATTN__NOCONTRACT __attribute__((optimize("fp-contract=off")))
#else
#define RINGATTN__NOCONTRACT
#endif
#define RINGATTN__A2 __attribute__((target("avx2,fma"))) RINGATTN__NOCONTRACT
#define RINGATTN__A512 __attribute__((target("avx512f"))) RINGATTN__NOCONTRACT
#endif

#ifdef RINGATTN__X86
/* The vocabulary: one vector type per prefix, V8F (AVX2, 8 floats), V4D (AVX2, 4 doubles),
   V16F and V8D (AVX-512); _S its element, _T the vector, _I the integer vector, _L the lanes. */
#define RINGATTN__V8F_S float
#define RINGATTN__V8F_T __m256
#define RINGATTN__V8F_I __m256i
#define RINGATTN__V8F_L 8
#define RINGATTN__V8F_LOAD _mm256_loadu_ps
#define RINGATTN__V8F_STORE _mm256_storeu_ps
#define RINGATTN__V8F_SET1 _mm256_set1_ps
#define RINGATTN__V8F_ZERO _mm256_setzero_ps
#define RINGATTN__V8F_BCAST(p) _mm256_broadcast_ss(p)
#define RINGATTN__V8F_ADD _mm256_add_ps
#define RINGATTN__V8F_SUB _mm256_sub_ps
#define RINGATTN__V8F_MUL _mm256_mul_ps
#define RINGATTN__V8F_FMA _mm256_fmadd_ps
#define RINGATTN__V8F_MIN _mm256_min_ps
#define RINGATTN__V8F_MAX _mm256_max_ps
#define RINGATTN__V8F_LT(a, b) _mm256_cmp_ps(a, b, _CMP_LT_OQ)
#define RINGATTN__V8F_ISNAN(a) _mm256_cmp_ps(a, a, _CMP_UNORD_Q)
#define RINGATTN__V8F_SEL(m, yes, no) _mm256_blendv_ps(no, yes, m)
#define RINGATTN__V8F_CASTI _mm256_castps_si256
#define RINGATTN__V8F_CASTV _mm256_castsi256_ps
#define RINGATTN__V8F_SUBI _mm256_sub_epi32
#define RINGATTN__V8F_SLLI _mm256_slli_epi32
#define RINGATTN__V8F_ADDI _mm256_add_epi32
#define RINGATTN__V8F_ANDI _mm256_and_si256
#define RINGATTN__V8F_ORI _mm256_or_si256
#define RINGATTN__V8F_SRLI _mm256_srli_epi32
#define RINGATTN__V8F_SET1I _mm256_set1_epi32
#define RINGATTN__V8F_SFMA fmaf
#define RINGATTN__V8F_POW2(p, q, K) RINGATTN__POW2_BITS(RINGATTN__V8F, p, q, K)   /* p 2^q */
#define RINGATTN__V8F_SUM_DECL(a) __m256d a##0 = _mm256_setzero_pd(), a##1 = _mm256_setzero_pd()   /* lanes 0-3, 4-7 */
#define RINGATTN__V8F_SUM_ADD(a, p, j) (a##0 = _mm256_add_pd(a##0, _mm256_cvtps_pd(_mm256_castps256_ps128(p))), \
                                        a##1 = _mm256_add_pd(a##1, _mm256_cvtps_pd(_mm256_extractf128_ps(p, 1))))
#define RINGATTN__V8F_SUM_STORE(a, s) (_mm256_storeu_pd(s, a##0), _mm256_storeu_pd((s) + 4, a##1))

#define RINGATTN__V4D_S double
#define RINGATTN__V4D_T __m256d
#define RINGATTN__V4D_I __m256i
#define RINGATTN__V4D_L 4
#define RINGATTN__V4D_LOAD _mm256_loadu_pd
#define RINGATTN__V4D_STORE _mm256_storeu_pd
#define RINGATTN__V4D_SET1 _mm256_set1_pd
#define RINGATTN__V4D_ZERO _mm256_setzero_pd
#define RINGATTN__V4D_BCAST(p) _mm256_broadcast_sd(p)
#define RINGATTN__V4D_ADD _mm256_add_pd
#define RINGATTN__V4D_SUB _mm256_sub_pd
#define RINGATTN__V4D_MUL _mm256_mul_pd
#define RINGATTN__V4D_FMA _mm256_fmadd_pd
#define RINGATTN__V4D_MIN _mm256_min_pd
#define RINGATTN__V4D_MAX _mm256_max_pd
#define RINGATTN__V4D_LT(a, b) _mm256_cmp_pd(a, b, _CMP_LT_OQ)
#define RINGATTN__V4D_ISNAN(a) _mm256_cmp_pd(a, a, _CMP_UNORD_Q)
#define RINGATTN__V4D_SEL(m, yes, no) _mm256_blendv_pd(no, yes, m)
#define RINGATTN__V4D_CASTI _mm256_castpd_si256
#define RINGATTN__V4D_CASTV _mm256_castsi256_pd
#define RINGATTN__V4D_SUBI _mm256_sub_epi64
#define RINGATTN__V4D_SLLI _mm256_slli_epi64
#define RINGATTN__V4D_SFMA fma
#define RINGATTN__V4D_POW2(p, q, K) RINGATTN__POW2_BITS(RINGATTN__V4D, p, q, K)
#define RINGATTN__V4D_SUM_DECL(a) __m256d a##0 = _mm256_setzero_pd(), a##1 = _mm256_setzero_pd()
#define RINGATTN__V4D_SUM_ADD(a, p, j) (((j) & 4) ? (void)(a##1 = _mm256_add_pd(a##1, p)) : (void)(a##0 = _mm256_add_pd(a##0, p)))
#define RINGATTN__V4D_SUM_STORE(a, s) (_mm256_storeu_pd(s, a##0), _mm256_storeu_pd((s) + 4, a##1))

#define RINGATTN__V16F_S float
#define RINGATTN__V16F_T __m512
#define RINGATTN__V16F_I __m512i
#define RINGATTN__V16F_L 16
#define RINGATTN__V16F_LOAD _mm512_loadu_ps
#define RINGATTN__V16F_STORE _mm512_storeu_ps
#define RINGATTN__V16F_SET1 _mm512_set1_ps
#define RINGATTN__V16F_ZERO _mm512_setzero_ps
#define RINGATTN__V16F_BCAST(p) _mm512_set1_ps(*(p))
#define RINGATTN__V16F_ADD _mm512_add_ps
#define RINGATTN__V16F_SUB _mm512_sub_ps
#define RINGATTN__V16F_MUL _mm512_mul_ps
#define RINGATTN__V16F_FMA _mm512_fmadd_ps
#define RINGATTN__V16F_MIN _mm512_min_ps
#define RINGATTN__V16F_MAX _mm512_max_ps
#define RINGATTN__V16F_LT(a, b) _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ)
#define RINGATTN__V16F_ISNAN(a) _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q)
#define RINGATTN__V16F_SEL(m, yes, no) _mm512_mask_mov_ps(no, m, yes)
#define RINGATTN__V16F_CASTI _mm512_castps_si512
#define RINGATTN__V16F_CASTV _mm512_castsi512_ps
#define RINGATTN__V16F_ADDI _mm512_add_epi32
#define RINGATTN__V16F_ANDI _mm512_and_si512
#define RINGATTN__V16F_ORI _mm512_or_si512
#define RINGATTN__V16F_SRLI _mm512_srli_epi32
#define RINGATTN__V16F_SET1I _mm512_set1_epi32
#define RINGATTN__V16F_SFMA fmaf
#define RINGATTN__V16F_POW2(p, q, K) _mm512_scalef_ps(p, q)
#define RINGATTN__V16F_SUM_DECL(a) __m512d a = _mm512_setzero_pd()   /* two blocks of eight per vector */
#define RINGATTN__V16F_SUM_ADD(a, p, j) (a = _mm512_add_pd(a, _mm512_cvtps_pd(_mm512_castps512_ps256(p))), \
    a = _mm512_add_pd(a, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(p), 1)))))
#define RINGATTN__V16F_SUM_STORE(a, s) _mm512_storeu_pd(s, a)

#define RINGATTN__V8D_S double
#define RINGATTN__V8D_T __m512d
#define RINGATTN__V8D_I __m512i
#define RINGATTN__V8D_L 8
#define RINGATTN__V8D_LOAD _mm512_loadu_pd
#define RINGATTN__V8D_STORE _mm512_storeu_pd
#define RINGATTN__V8D_SET1 _mm512_set1_pd
#define RINGATTN__V8D_ZERO _mm512_setzero_pd
#define RINGATTN__V8D_BCAST(p) _mm512_set1_pd(*(p))
#define RINGATTN__V8D_ADD _mm512_add_pd
#define RINGATTN__V8D_SUB _mm512_sub_pd
#define RINGATTN__V8D_MUL _mm512_mul_pd
#define RINGATTN__V8D_FMA _mm512_fmadd_pd
#define RINGATTN__V8D_MIN _mm512_min_pd
#define RINGATTN__V8D_MAX _mm512_max_pd
#define RINGATTN__V8D_LT(a, b) _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ)
#define RINGATTN__V8D_ISNAN(a) _mm512_cmp_pd_mask(a, a, _CMP_UNORD_Q)
#define RINGATTN__V8D_SEL(m, yes, no) _mm512_mask_mov_pd(no, m, yes)
#define RINGATTN__V8D_CASTI _mm512_castpd_si512
#define RINGATTN__V8D_CASTV _mm512_castsi512_pd
#define RINGATTN__V8D_SFMA fma
#define RINGATTN__V8D_POW2(p, q, K) _mm512_scalef_pd(p, q)
#define RINGATTN__V8D_SUM_DECL(a) __m512d a = _mm512_setzero_pd()
#define RINGATTN__V8D_SUM_ADD(a, p, j) (a = _mm512_add_pd(a, p))
#define RINGATTN__V8D_SUM_STORE(a, s) _mm512_storeu_pd(s, a)

/* The exp's vector body: ringattn__expf / ringattn__exp (K = EXPF or EXP: their constants)
   on V##_L lanes at a time, v[j] = exp((v[j] - hi) - lo) for j < n; lanes below the range or
   NaN are overwritten at the end (so the clamp may use min / max, whatever they leave there
   is discarded); the n mod L tail by the scalar function. p 2^n (n in [-126, 127], [-1022,
   1023]: 2^n a normal number, so the product is rounded once, as the scalar function's) by
   V##_POW2: AVX2 builds 2^n from the integer in the low bits of n + MAGIC and multiplies
   (RINGATTN__POW2_BITS, with the body's magic and bias), AVX-512 has it in one instruction
   (scalef). With SUM = 1 it also returns sum_j v[j] in ringattn__row_sum's order (the blocks
   of eight into eight double lanes as the exps come out, what is left after the last whole
   block into lane 0), so the row is not read again for its sum; SUM = 0 returns 0. */
#define RINGATTN__POW2_BITS(V, p, q, K)                                                         \
    V##_MUL(p, V##_CASTV(V##_SLLI(V##_SUBI(V##_CASTI(V##_ADD(q, magic)), bias), RINGATTN__##K##_MANT)))
#define RINGATTN__EXPF_TAIL(V, p, r) V##_ADD(V##_FMA(p, V##_MUL(r, r), r), V##_SET1(1.0f))   /* p r^2 + r + 1 */
#define RINGATTN__EXP_TAIL(V, p, r) (p)
#define RINGATTN__EXPF_SCALAR(a, hi, lo) ringattn__expf(a, hi, lo)
#define RINGATTN__EXP_SCALAR(a, hi, lo) ringattn__exp(((a) - (hi)) - (lo))
#define RINGATTN__EXP_BODY(NAME, ATTR, K, V, SUM)                                               \
ATTR static double NAME(V##_S *v, int64_t n, V##_S hi, V##_S lo)                                \
{                                                                                               \
    const V##_T h = V##_SET1(hi), l = V##_SET1(lo);                                             \
    const V##_T low = V##_SET1(RINGATTN__##K##_LOW), magic = V##_SET1(RINGATTN__##K##_MAGIC);   \
    const V##_I bias = V##_CASTI(V##_SET1(RINGATTN__##K##_MAGIC - RINGATTN__##K##_BIAS));       \
    int64_t j, n8 = n & ~(int64_t)7, k;                                                         \
    double s[8];                                                                                \
    V##_SUM_DECL(acc);                                                                          \
    (void)bias;   /* scalef's V##_POW2 does not need it */                                      \
    for (j = 0; j + V##_L <= n; j += V##_L) {                                                   \
        V##_T x = V##_SUB(V##_SUB(V##_LOAD(v + j), h), l), xc, q, r, p;                         \
        xc = V##_MIN(V##_MAX(x, low), V##_SET1(RINGATTN__##K##_HIGH));                          \
        q = V##_SUB(V##_FMA(xc, V##_SET1(RINGATTN__##K##_LOG2E), magic), magic);                \
        r = V##_FMA(q, V##_SET1(RINGATTN__##K##_LN2_D), V##_FMA(q, V##_SET1(-RINGATTN__##K##_LN2_HI), xc)); \
        RINGATTN__##K##_POLY(p, r, V##_FMA, V##_SET1);                                          \
        p = V##_SEL(V##_LT(x, low), V##_SET1(0), V##_POW2(RINGATTN__##K##_TAIL(V, p, r), q, K)); \
        p = V##_SEL(V##_ISNAN(x), x, p);                                                        \
        V##_STORE(v + j, p);                                                                    \
        if (SUM && j + V##_L <= n8) V##_SUM_ADD(acc, p, j);                                     \
    }                                                                                           \
    k = j < n8 ? j : n8;   /* the lanes hold [0, k) */                                          \
    for (; j < n; j++) v[j] = RINGATTN__##K##_SCALAR(v[j], hi, lo);                             \
    if (!SUM) return 0.0;                                                                       \
    V##_SUM_STORE(acc, s);                                                                      \
    for (; k < n8; k += 8) for (j = 0; j < 8; j++) s[j] += (double)v[k + j];                    \
    for (; k < n; k++) s[0] += (double)v[k];                                                    \
    return ringattn__sum8(s);                                                                   \
}

/* The fused block kernels' vector bodies (the plain C above says what each computes):
   RB rows x NV vectors of L lanes held in registers (AVX2: 6 x 2 = 12 accumulators of 16
   registers; AVX-512: 12 x 2 = 24 of 32, so that one sweep over the K panels or the V rows
   serves a whole forward group of RINGATTN__FUSED_ROWS rows). The block's shape changes no
   sum: each entry still adds its products in index order. A row block past the last row
   repeats the last row, a vector past the last panel repeats the last panel: computed, never
   stored. */
#define RINGATTN__UNROLL _Pragma("GCC unroll 16")   /* whole: the accumulators become registers */
#define RINGATTN__UNROLL4 _Pragma("GCC unroll 4")   /* fewer pointer increments per FMA */
#define RINGATTN__QK_V(NAME, ATTR, V, RB, NV)                                                   \
ATTR static void NAME(int64_t nr, const void *const *q, int64_t d, const void *const *kp, int64_t np, \
                      double scale, void *const *s)                                             \
{                                                                                               \
    const V##_T sc = V##_SET1((V##_S)scale);                                                    \
    int64_t i0, k0, c; int i, v;                                                                \
    for (i0 = 0; i0 < nr; i0 += RB) {                                                           \
        const V##_S *qr[RB]; int rows = (int)(nr - i0 < RB ? nr - i0 : RB);                     \
        RINGATTN__UNROLL for (i = 0; i < RB; i++) qr[i] = (const V##_S *)q[i0 + (i < rows ? i : rows - 1)]; \
        /* keys k0 .. k0 + NV L - 1 at a time: part of a panel, one, or several */              \
        for (k0 = 0; k0 < np * RINGATTN__PANEL; k0 += NV * V##_L) {                             \
            V##_T acc[RB][NV]; const V##_S *kb[NV];                                             \
            RINGATTN__UNROLL for (v = 0; v < NV; v++) {                                         \
                int64_t k = (k0 + v * V##_L) / RINGATTN__PANEL;                                 \
                kb[v] = (const V##_S *)kp[k < np ? k : np - 1] + (k0 + v * V##_L) % RINGATTN__PANEL; \
            }                                                                                   \
            RINGATTN__UNROLL for (i = 0; i < RB; i++) RINGATTN__UNROLL for (v = 0; v < NV; v++) acc[i][v] = V##_ZERO(); \
            RINGATTN__UNROLL4 for (c = 0; c < d; c++) {                                         \
                V##_T kv[NV];                                                                   \
                RINGATTN__UNROLL for (v = 0; v < NV; v++) kv[v] = V##_LOAD(kb[v] + c * RINGATTN__PANEL); \
                RINGATTN__UNROLL for (i = 0; i < RB; i++) {                                     \
                    V##_T b = V##_BCAST(qr[i] + c);                                             \
                    RINGATTN__UNROLL for (v = 0; v < NV; v++) acc[i][v] = V##_FMA(b, kv[v], acc[i][v]); \
                }                                                                               \
            }                                                                                   \
            RINGATTN__UNROLL for (i = 0; i < RB; i++) RINGATTN__UNROLL for (v = 0; v < NV; v++) \
                if (i < rows && k0 + v * V##_L < np * RINGATTN__PANEL)                          \
                    V##_STORE((V##_S *)s[i0 + i] + k0 + v * V##_L, V##_MUL(acc[i][v], sc));     \
        }                                                                                       \
    }                                                                                           \
}
/* columns in vectors of L, NV at a time (a missing second vector repeats the first: both are
   loaded before either is stored, so the repeat writes the same value); the dv mod L columns
   left over one by one, in the same order */
#define RINGATTN__PV_V(NAME, ATTR, V, RB, NV)                                                   \
ATTR static void NAME(int64_t nr, const void *const *p, int64_t n, const void *vp, int64_t ldv, \
                      int64_t dv, void *const *o)                                               \
{                                                                                               \
    const V##_S *v = (const V##_S *)vp;                                                         \
    int64_t i0, c0, j, cv = dv / V##_L * V##_L; int i, u;                                       \
    for (i0 = 0; i0 < nr; i0 += RB) {                                                           \
        const V##_S *pr[RB]; V##_S *orow[RB]; int rows = (int)(nr - i0 < RB ? nr - i0 : RB);   \
        RINGATTN__UNROLL for (i = 0; i < RB; i++) {                                             \
            int64_t ii = i0 + (i < rows ? i : rows - 1);                                        \
            pr[i] = (const V##_S *)p[ii]; orow[i] = (V##_S *)o[ii];                             \
        }                                                                                       \
        for (c0 = 0; c0 < cv; c0 += NV * V##_L) {                                               \
            V##_T acc[RB][NV]; int64_t cu[NV];                                                  \
            RINGATTN__UNROLL for (u = 0; u < NV; u++) cu[u] = (c0 + (u + 1) * V##_L <= cv) ? c0 + u * V##_L : c0; \
            RINGATTN__UNROLL for (i = 0; i < RB; i++) RINGATTN__UNROLL for (u = 0; u < NV; u++) acc[i][u] = V##_LOAD(orow[i] + cu[u]); \
            RINGATTN__UNROLL4 for (j = 0; j < n; j++) {                                         \
                V##_T vv[NV];                                                                   \
                RINGATTN__UNROLL for (u = 0; u < NV; u++) vv[u] = V##_LOAD(v + j * ldv + cu[u]); \
                RINGATTN__UNROLL for (i = 0; i < RB; i++) {                                     \
                    V##_T b = V##_BCAST(pr[i] + j);                                             \
                    RINGATTN__UNROLL for (u = 0; u < NV; u++) acc[i][u] = V##_FMA(b, vv[u], acc[i][u]); \
                }                                                                               \
            }                                                                                   \
            RINGATTN__UNROLL for (i = 0; i < RB; i++) RINGATTN__UNROLL for (u = 0; u < NV; u++) \
                if (i < rows) V##_STORE(orow[i] + cu[u], acc[i][u]);                            \
        }                                                                                       \
        if (cv < dv) for (i = 0; i < rows; i++) for (j = 0; j < n; j++)                        \
            for (c0 = cv; c0 < dv; c0++) orow[i][c0] = V##_SFMA(pr[i][j], v[j * ldv + c0], orow[i][c0]); \
    }                                                                                           \
}
/* KB keys (output rows) x NV column vectors in registers, the sum over the group's rows i in
   order; a key past the last repeats the last, a missing second vector repeats the first
   (computed, stored once or with the same value), the dx mod L columns left one by one */
#define RINGATTN__PT_V(NAME, ATTR, V, KB, NV)                                                   \
ATTR static void NAME(int64_t nr, const void *pp, int64_t ldp, int64_t n, const void *xp, int64_t ldx, \
                      int64_t dx, void *op, int64_t ldo)                                        \
{                                                                                               \
    const V##_S *p = (const V##_S *)pp, *x = (const V##_S *)xp; V##_S *o = (V##_S *)op;         \
    int64_t j0, c0, i, c, cv = dx / V##_L * V##_L; int k, u;                                    \
    for (j0 = 0; j0 < n; j0 += KB) {                                                            \
        int64_t jj[KB]; int keys = (int)(n - j0 < KB ? n - j0 : KB);                            \
        RINGATTN__UNROLL for (k = 0; k < KB; k++) jj[k] = j0 + (k < keys ? k : keys - 1);       \
        for (c0 = 0; c0 < cv; c0 += NV * V##_L) {                                               \
            V##_T acc[KB][NV]; int64_t cu[NV];                                                  \
            RINGATTN__UNROLL for (u = 0; u < NV; u++) cu[u] = (c0 + (u + 1) * V##_L <= cv) ? c0 + u * V##_L : c0; \
            RINGATTN__UNROLL for (k = 0; k < KB; k++) RINGATTN__UNROLL for (u = 0; u < NV; u++) \
                acc[k][u] = V##_LOAD(o + jj[k] * ldo + cu[u]);                                  \
            RINGATTN__UNROLL4 for (i = 0; i < nr; i++) {                                        \
                V##_T xv[NV]; const V##_S *pi = p + i * ldp;                                    \
                RINGATTN__UNROLL for (u = 0; u < NV; u++) xv[u] = V##_LOAD(x + i * ldx + cu[u]); \
                RINGATTN__UNROLL for (k = 0; k < KB; k++) {                                     \
                    V##_T b = V##_BCAST(pi + jj[k]);                                            \
                    RINGATTN__UNROLL for (u = 0; u < NV; u++) acc[k][u] = V##_FMA(b, xv[u], acc[k][u]); \
                }                                                                               \
            }                                                                                   \
            RINGATTN__UNROLL for (k = 0; k < KB; k++) RINGATTN__UNROLL for (u = 0; u < NV; u++) \
                if (k < keys) V##_STORE(o + jj[k] * ldo + cu[u], acc[k][u]);                    \
        }                                                                                       \
        if (cv < dx) for (k = 0; k < keys; k++) for (i = 0; i < nr; i++)                       \
            for (c = cv; c < dx; c++) o[jj[k] * ldo + c] = V##_SFMA(p[i * ldp + jj[k]], x[i * ldx + c], o[jj[k] * ldo + c]); \
    }                                                                                           \
}

/* the row max by ringattn__row_max_c32's / _c64's comparisons (a > m ? a : m), in V's lanes
   and four chains (a max waits for the one before it); max is exact, so the lane order cannot
   change it */
#define RINGATTN__ROW_MAX_V(NAME, ATTR, V, DT)                                                  \
ATTR static double NAME(const void *x, int64_t n)                                               \
{                                                                                               \
    const V##_S *a = (const V##_S *)x;                                                          \
    V##_T m = V##_SET1((V##_S)-INFINITY);                                                       \
    V##_S l[V##_L];                                                                             \
    double mx = -INFINITY;                                                                      \
    int64_t j = 0; int k;                                                                       \
    if (n >= 4 * V##_L) {                                                                       \
        V##_T m1 = m, m2 = m, m3 = m;                                                           \
        for (; j + 4 * V##_L <= n; j += 4 * V##_L) {                                            \
            m = V##_MAX(V##_LOAD(a + j), m);                                                    \
            m1 = V##_MAX(V##_LOAD(a + j + V##_L), m1);                                          \
            m2 = V##_MAX(V##_LOAD(a + j + 2 * V##_L), m2);                                      \
            m3 = V##_MAX(V##_LOAD(a + j + 3 * V##_L), m3);                                      \
        }                                                                                       \
        m = V##_MAX(V##_MAX(m, m1), V##_MAX(m2, m3));                                           \
    }                                                                                           \
    for (; j + V##_L <= n; j += V##_L) m = V##_MAX(V##_LOAD(a + j), m);                         \
    V##_STORE(l, m);                                                                            \
    for (; j < n; j++) l[0] = (a[j] > l[0]) ? a[j] : l[0];                                      \
    for (k = 0; k < V##_L; k++) mx = (l[k] > mx) ? l[k] : mx;                                   \
    return ringattn__row_nan_max(DT, x, n, mx);                                                 \
}

/* row_round (f32) in V's lanes: ringattn__round_float's rules for bf16 and f16 (round to
   nearest even on the float's bits, the NaN to the one quiet NaN), other types by it lane by
   lane. The f16 subnormals (|x| < 2^-14, quantum 2^-24) by one float addition instead of the
   scalar's shifts: |x| + 0.5 lies in [0.5, 1), where the float quantum is 2^-24, so that sum
   is |x| rounded to nearest even in quanta of 2^-24 (plus 0.5, which the subtraction then
   removes exactly); the sign is put back, as the scalar keeps it for a zero. */
#define RINGATTN__ROW_ROUND_V(NAME, ATTR, V)                                                    \
static ATTR void NAME(void *x, int64_t n, ringattn_dtype pt)                                    \
{                                                                                               \
    float *a = (float *)x;                                                                      \
    int64_t j = 0;                                                                              \
    const V##_I one = V##_SET1I(1), sgn = V##_SET1I(INT32_MIN), mag = V##_SET1I(INT32_MAX);     \
    const V##_T qnan = V##_CASTV(V##_SET1I(0x7FC00000));                                        \
    if (pt == RINGATTN_BF16) {                                                                  \
        const V##_I half = V##_SET1I(0x7FFF), keep = V##_SET1I(-65536);  /* 0xFFFF0000 */       \
        for (; j + V##_L <= n; j += V##_L) {                                                    \
            V##_T v = V##_LOAD(a + j);                                                          \
            V##_I u = V##_CASTI(v);                                                             \
            u = V##_ANDI(V##_ADDI(V##_ADDI(u, half), V##_ANDI(V##_SRLI(u, 16), one)), keep);    \
            V##_STORE(a + j, V##_SEL(V##_ISNAN(v), qnan, V##_CASTV(u)));                        \
        }                                                                                       \
    } else if (pt == RINGATTN_F16) {                                                            \
        const V##_I half = V##_SET1I(0xFFF), keep = V##_SET1I(-8192);    /* 0xFFFFE000 */       \
        const V##_I inf = V##_SET1I(0x7F800000);                                                \
        const V##_T tiny = V##_SET1(6.103515625e-05f), big = V##_SET1(65520.0f), c = V##_SET1(0.5f); \
        for (; j + V##_L <= n; j += V##_L) {                                                    \
            V##_T v = V##_LOAD(a + j), ab, sub, r;                                              \
            V##_I u = V##_CASTI(v), s = V##_ANDI(u, sgn);                                       \
            ab = V##_CASTV(V##_ANDI(u, mag));                                                   \
            r = V##_CASTV(V##_ANDI(V##_ADDI(V##_ADDI(u, half), V##_ANDI(V##_SRLI(u, 13), one)), keep)); \
            sub = V##_CASTV(V##_ORI(V##_CASTI(V##_SUB(V##_ADD(ab, c), c)), s));                 \
            r = V##_SEL(V##_LT(ab, tiny), sub, r);                  /* 2^-14: a normal f16 */   \
            r = V##_SEL(V##_LT(ab, big), r, V##_CASTV(V##_ORI(s, inf)));   /* else infinity */  \
            V##_STORE(a + j, V##_SEL(V##_ISNAN(v), qnan, r));                                   \
        }                                                                                       \
    }                                                                                           \
    for (; j < n; j++) a[j] = ringattn__round_float(a[j], pt);                                  \
}

/* One instruction set's kernels, ISA its name, VF / VD its f32 / f64 vectors, RB the rows of
   a register block: the exps, the row max, the fused kernels (pv with a one-row version: the
   merge's and the backward's leftover columns come one row at a time), and the table's
   row_exp / row_prob over them. */
#define RINGATTN__KERNELS(ISA, ATTR, VF, VD, RB)                                                \
RINGATTN__EXP_BODY(ringattn__expf_row_##ISA, ATTR, EXPF, VF, 0)                                 \
RINGATTN__EXP_BODY(ringattn__exp_row_##ISA, ATTR, EXP, VD, 0)                                   \
RINGATTN__EXP_BODY(ringattn__expf_sum_##ISA, ATTR, EXPF, VF, 1)                                 \
RINGATTN__EXP_BODY(ringattn__exp_sum_##ISA, ATTR, EXP, VD, 1)                                   \
RINGATTN__ROW_MAX_V(ringattn__row_max_##ISA##_32, ATTR, VF, RINGATTN_F32)                        \
RINGATTN__ROW_MAX_V(ringattn__row_max_##ISA##_64, ATTR, VD, RINGATTN_F64)                        \
RINGATTN__ROW_ROUND_V(ringattn__row_round_##ISA##_32, ATTR, VF)                                \
RINGATTN__QK_V(ringattn__qk_##ISA##_32, ATTR, VF, RB, 2)                                        \
RINGATTN__QK_V(ringattn__qk_##ISA##_64, ATTR, VD, RB, 2)                                        \
RINGATTN__PV_V(ringattn__pvb_##ISA##_32, ATTR, VF, RB, 2)                                       \
RINGATTN__PV_V(ringattn__pvb_##ISA##_64, ATTR, VD, RB, 2)                                       \
RINGATTN__PV_V(ringattn__pv1_##ISA##_32, ATTR, VF, 1, 4)                                        \
RINGATTN__PV_V(ringattn__pv1_##ISA##_64, ATTR, VD, 1, 4)                                        \
RINGATTN__PT_V(ringattn__pt_##ISA##_32, ATTR, VF, RB, 2)                                        \
RINGATTN__PT_V(ringattn__pt_##ISA##_64, ATTR, VD, RB, 2)                                        \
static void ringattn__pv_##ISA##_32(int64_t nr, const void *const *p, int64_t n, const void *v,  \
                                    int64_t ldv, int64_t dv, void *const *o)                    \
{ (nr == 1 ? ringattn__pv1_##ISA##_32 : ringattn__pvb_##ISA##_32)(nr, p, n, v, ldv, dv, o); }    \
static void ringattn__pv_##ISA##_64(int64_t nr, const void *const *p, int64_t n, const void *v,  \
                                    int64_t ldv, int64_t dv, void *const *o)                    \
{ (nr == 1 ? ringattn__pv1_##ISA##_64 : ringattn__pvb_##ISA##_64)(nr, p, n, v, ldv, dv, o); }    \
static double ringattn__row_exp_##ISA##_32(void *x, int64_t n, double m)                        \
{ return ringattn__expf_sum_##ISA((float *)x, n, (float)m, 0.0f); }                              \
static double ringattn__row_exp_##ISA##_64(void *x, int64_t n, double m)                        \
{ return ringattn__exp_sum_##ISA((double *)x, n, m, 0.0); }                                      \
static void ringattn__row_prob_##ISA##_32(void *x, int64_t n, double lse)                       \
{ float hi = (float)lse; ringattn__expf_row_##ISA((float *)x, n, hi, (float)(lse - (double)hi)); } \
static void ringattn__row_prob_##ISA##_64(void *x, int64_t n, double lse)                       \
{ ringattn__exp_row_##ISA((double *)x, n, lse, 0.0); }

RINGATTN__KERNELS(avx2, RINGATTN__A2, RINGATTN__V8F, RINGATTN__V4D, 6)

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push   /* g++ 12 flags the headers' own _mm512_undefined_* as uninitialised */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
RINGATTN__KERNELS(avx512, RINGATTN__A512, RINGATTN__V16F, RINGATTN__V8D, 12)

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif /* RINGATTN__X86 */

#ifdef RINGATTN__X86
/* norm2 on AVX2 (for the AVX-512 tables too): the four sums are the four lanes of one vector
   of doubles, so x[c] meets the sum of c mod 4 in the same order as ringattn__norm2_d; a
   product and a sum, each rounded once (no FMA), as there; the n mod 4 tail by that loop. */
static RINGATTN__A2 void ringattn__norm2_avx2(const float *x, int64_t n, double s4[4], double *big)
{
    __m256d s = _mm256_loadu_pd(s4), b = _mm256_set1_pd(*big), zero = _mm256_setzero_pd();
    __m256d sign = _mm256_set1_pd(-0.0);
    double b4[4], v[4];
    int64_t c, m = n - n % 4, k;
    for (c = 0; c < m; c += 4) {
        __m256d y = _mm256_cvtps_pd(_mm_loadu_ps(x + c));
        y = _mm256_and_pd(y, _mm256_cmp_pd(_mm256_sub_pd(y, y), zero, _CMP_EQ_OQ));   /* NaN, Inf: 0 */
        b = _mm256_max_pd(_mm256_andnot_pd(sign, y), b);
        s = _mm256_add_pd(s, _mm256_mul_pd(y, y));
    }
    _mm256_storeu_pd(s4, s);
    _mm256_storeu_pd(b4, b);
    for (k = 0; k < 4; k++) *big = b4[k] > *big ? b4[k] : *big;
    for (k = 0; k < n - m; k++) v[k] = x[m + k];
    ringattn__norm2_d(v, n - m, s4, big);   /* m = 0 mod 4: the tail's sums are s4[0..) */
}
#endif

#ifdef RINGATTN__X86
/* row_out for f32 compute (the AVX-512 tables' too): the floats widened to double, divided
   and scaled in double lanes (the same correctly rounded operations as the C), narrowed
   once; the tail by the C */
static RINGATTN__A2 void ringattn__row_out_avx2_32(float *y, const void *x, int64_t n, double l, double gdiv)
{
    const float *f = (const float *)x;
    const __m256d vl = _mm256_set1_pd(l), vg = _mm256_set1_pd(gdiv);
    int64_t c;
    for (c = 0; c + 4 <= n; c += 4)
        _mm_storeu_ps(y + c, _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_div_pd(_mm256_cvtps_pd(_mm_loadu_ps(f + c)), vl), vg)));
    ringattn__row_out_c32(y + c, f + c, n - c, l, gdiv);
}
#endif

/* ---------------------------------------------------------------- the kernel tables */
/* One table per (instruction set, compute type); ringattn__kernels_for picks the best the CPU
   runs: AVX-512F, else AVX2 with FMA, else the plain C. The vector versions give the plain C's
   bits, so the choice changes the speed only. */
static const ringattn__kernels ringattn__kernels_c32 = {
    "c f32", ringattn__qk_c32, ringattn__pv_c32, ringattn__pt_c32,
    ringattn__row_max_c32, ringattn__row_exp_c32, ringattn__row_prob_c32,
    ringattn__row_round_c32, ringattn__norm2_c, ringattn__row_out_c32
};
static const ringattn__kernels ringattn__kernels_c64 = {
    "c f64", ringattn__qk_c64, ringattn__pv_c64, ringattn__pt_c64,
    ringattn__row_max_c64, ringattn__row_exp_c64, ringattn__row_prob_c64,
    ringattn__row_round_c64, ringattn__norm2_c, ringattn__row_out_c64
};
#ifdef RINGATTN__X86
static const ringattn__kernels ringattn__kernels_avx2_32 = {
    "avx2 f32", ringattn__qk_avx2_32, ringattn__pv_avx2_32, ringattn__pt_avx2_32,
    ringattn__row_max_avx2_32, ringattn__row_exp_avx2_32, ringattn__row_prob_avx2_32,
    ringattn__row_round_avx2_32, ringattn__norm2_avx2, ringattn__row_out_avx2_32
};
static const ringattn__kernels ringattn__kernels_avx2_64 = {
    "avx2 f64", ringattn__qk_avx2_64, ringattn__pv_avx2_64, ringattn__pt_avx2_64,
    ringattn__row_max_avx2_64, ringattn__row_exp_avx2_64, ringattn__row_prob_avx2_64,
    ringattn__row_round_c64, ringattn__norm2_avx2, ringattn__row_out_c64
};
static const ringattn__kernels ringattn__kernels_avx512_32 = {
    "avx512 f32", ringattn__qk_avx512_32, ringattn__pv_avx512_32, ringattn__pt_avx512_32,
    ringattn__row_max_avx512_32, ringattn__row_exp_avx512_32, ringattn__row_prob_avx512_32,
    ringattn__row_round_avx512_32, ringattn__norm2_avx2, ringattn__row_out_avx2_32
};
static const ringattn__kernels ringattn__kernels_avx512_64 = {
    "avx512 f64", ringattn__qk_avx512_64, ringattn__pv_avx512_64, ringattn__pt_avx512_64,
    ringattn__row_max_avx512_64, ringattn__row_exp_avx512_64, ringattn__row_prob_avx512_64,
    ringattn__row_round_c64, ringattn__norm2_avx2, ringattn__row_out_c64
};
#endif

static const ringattn__kernels *ringattn__kernels_for(ringattn_dtype t)
{
#ifdef RINGATTN__X86
#ifndef RINGATTN_NO_AVX512   /* the AVX2 kernels on an AVX-512 machine too (to measure them) */
    if (__builtin_cpu_supports("avx512f"))
        return t == RINGATTN_F32 ? &ringattn__kernels_avx512_32 : &ringattn__kernels_avx512_64;
#endif
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return t == RINGATTN_F32 ? &ringattn__kernels_avx2_32 : &ringattn__kernels_avx2_64;
#endif
    return t == RINGATTN_F32 ? &ringattn__kernels_c32 : &ringattn__kernels_c64;
}

/* ---------------------------------------------------------------- row helpers */
/* The element-wise steps around the softmax, plain C in the compute type (no vector
   version: the compiler's own vectorisation of these loops keeps their bits). */

/* ds[j] = scale * p[j] * (ds[j] - D)   (ds holds dP on entry; the scale of S = scale Q K^T
   applied here, once, so that dQ and dK are plain sums of dS times K and Q) */
static void ringattn__row_dsoftmax(ringattn_dtype t, const void *p, void *ds, int64_t n, double D, double scale)
{
    int64_t j;
    if (t == RINGATTN_F32) {
        const float *a = (const float *)p; float *g = (float *)ds; float Df = (float)D, sf = (float)scale;
        for (j = 0; j < n; j++) g[j] = a[j] * (g[j] - Df) * sf;
    } else {
        const double *a = (const double *)p; double *g = (double *)ds;
        for (j = 0; j < n; j++) g[j] = a[j] * (g[j] - D) * scale;
    }
}

/* softcap (Gemma 2 / FlashAttention): x[j] = cap * tanh(x[j] / cap) */
static void ringattn__row_softcap(ringattn_dtype t, void *x, int64_t n, double cap)
{
    int64_t j;
    if (t == RINGATTN_F32) { float *a = (float *)x; float c = (float)cap; for (j = 0; j < n; j++) a[j] = c * tanhf(a[j] / c); }
    else { double *a = (double *)x; for (j = 0; j < n; j++) a[j] = cap * tanh(a[j] / cap); }
}

/* backward through a softcap: s holds capped logits on entry and P on exit; ds holds dP on
   entry and scale times dS of the raw logit on exit: scale P (dP - D) (1 - (s / cap)^2) */
static void ringattn__row_dsoftcap(ringattn_dtype t, void *s, void *ds, int64_t n, double lse,
                                   double D, double cap, double scale)
{
    int64_t j;
    if (t == RINGATTN_F32) {
        float *a = (float *)s, *g = (float *)ds;
        for (j = 0; j < n; j++) {
            float c = a[j] / (float)cap, pr = (float)exp((double)a[j] - lse);
            g[j] = pr * (g[j] - (float)D) * (1.0f - c * c) * (float)scale;
            a[j] = pr;
        }
    } else {
        double *a = (double *)s, *g = (double *)ds;
        for (j = 0; j < n; j++) {
            double c = a[j] / cap, pr = exp(a[j] - lse);
            g[j] = pr * (g[j] - D) * (1.0 - c * c) * scale;
            a[j] = pr;
        }
    }
}

static void ringattn__row_scale(ringattn_dtype t, void *x, int64_t n, double s)
{
    int64_t j;
    if (t == RINGATTN_F32) { float *a = (float *)x; float sf = (float)s; for (j = 0; j < n; j++) a[j] *= sf; }
    else { double *a = (double *)x; for (j = 0; j < n; j++) a[j] *= s; }
}

#ifdef __cplusplus
}
#endif

#endif /* RINGATTN_IMPLEMENTATION */

/*
   VERSION HISTORY
     0.1  ring forward and backward, dense and dilated (LongNet), memory plan and stats.

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
