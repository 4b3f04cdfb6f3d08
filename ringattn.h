/* ringattn.h - exact ring attention and dilated (LongNet) attention on the CPU.
   One C99 header, stb style.                                  Version 0.1 (see end of file)

   USAGE
     In exactly ONE C or C++ file of your project:
         #define RINGATTN_IMPLEMENTATION
         #include "ringattn.h"
     Everywhere else just #include "ringattn.h".

     Plain copy-in build, no BLAS, no OpenMP (members run one after another):
         cc -std=c99 -I. myfile.c -lm
     With OpenBLAS and OpenMP (members run as threads, blocks go through cblas):
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
     See "THE RING" in the implementation; the README has the full semantics.

   COMPILE-TIME OPTIONS (define before including)
     RINGATTN_IMPLEMENTATION   in one file: emit the implementation.
     RINGATTN_STATIC           everywhere: make every function static (private copy per file).
     RINGATTN_API              everywhere: decoration of public functions (default extern).
     RINGATTN_MALLOC(sz,user) / RINGATTN_FREE(p,user)
                               implementation file only; both or neither. `user` is
                               cfg->alloc_user. Every byte the library allocates goes through
                               these (per-member buffers and one small ring table per call).
     RINGATTN_USE_CBLAS        implementation file only: multiply blocks with cblas_sgemm /
                               cblas_dgemm (include path of cblas.h needed, link a BLAS).
                               Without it a built-in blocked GEMM is used. Same results within
                               the documented f32 tolerance; f64 agrees to ~1e-15 relative.
     RINGATTN_CBLAS_HEADER     header to include for cblas (default <cblas.h>).
     RINGATTN_TILE_Q, RINGATTN_TILE_K
                               implementation file only: score-tile rows/columns (64, 256).
     _OPENMP                   set by your compiler's -fopenmp: ring members become threads.

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

#ifndef RINGATTN_API
#ifdef RINGATTN_STATIC
#define RINGATTN_API static
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
    RINGATTN_ESTRIDE      = -7,  /* an output view overlaps itself (zero stride)           */
    RINGATTN_ESEGMENT     = -8,  /* dilated: bad segment length / rate, or n not a multiple */
    RINGATTN_EUNSUPPORTED = -9,  /* a valid option this build or entry point does not do   */
    RINGATTN_EALIAS       = -10, /* an output shares its data pointer with another tensor  */
    RINGATTN_ECUDA        = -11  /* reserved for ringattn_cuda.h: a CUDA call failed       */
};

/* ---------------------------------------------------------------- tensors */
typedef enum { RINGATTN_F32, RINGATTN_F64, RINGATTN_F16, RINGATTN_BF16 } ringattn_dtype;

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
typedef enum { RINGATTN_CONTIGUOUS = 0, RINGATTN_ZIGZAG = 1, RINGATTN_STRIPED = 2 } ringattn_partition;
typedef enum { RINGATTN_MIX_HEAD_GROUPS = 0, RINGATTN_MIX_LSE = 1 } ringattn_mix;

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
} ringattn_trace_event;

typedef void (*ringattn_trace_fn)(const ringattn_trace_event *ev, void *user);

/* Filled on success when cfg->stats is set (untouched on error). */
typedef struct {
    int ring_size, num_threads;      /* as actually used                                        */
    int64_t ring_steps;              /* p                                                       */
    int64_t handoffs;                /* buffers passed member -> member (K/V, and dK/dV)        */
    int64_t blocks_computed;         /* (member, step) blocks with at least one visible pair    */
    int64_t blocks_skipped;          /* (member, step) blocks with none: never multiplied       */
    int64_t tiles_computed;          /* score tiles multiplied                                  */
    double  flops;                   /* multiply-adds x2 actually performed                     */
    size_t  planned_bytes_per_member;/* ringattn_plan() for this call                           */
    size_t  peak_bytes_per_member;   /* measured: max over members of private bytes held        */
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
    size_t tile_bytes;               /* score tile(s) and per-row mask bounds                   */
    size_t member_bytes;             /* the sum: what each member holds at its peak             */
    size_t shared_bytes;             /* the ring table (one per call, not per member)           */
} ringattn_plan_info;

/* pass: 0 forward, 1 backward. Validates like the entry points (without data pointers). */
RINGATTN_API int ringattn_plan(const ringattn_config *cfg, const ringattn_shape *shape,
                               int pass, ringattn_plan_info *plan);

#ifdef __cplusplus
}
#endif
#endif /* RINGATTN_H */
