/* ringattn_mpi.h - the ring of ringattn.h across processes: one MPI rank is one ring member.
   Companion header, stb style.                                  Version 0.1 (see end of file)

   USAGE
     In exactly ONE C or C++ file of your project:
         #define RINGATTN_IMPLEMENTATION
         #define RINGATTN_MPI_IMPLEMENTATION
         #include "ringattn_mpi.h"          (includes <mpi.h> and ringattn.h)
     Everywhere else just #include "ringattn_mpi.h".
     Build and run (OpenMP threads share each rank's work, OpenBLAS multiplies the tiles):
         mpicc -std=c99 -O2 -fopenmp -DRINGATTN_USE_CBLAS -I. prog.c -lopenblas -lm
         mpiexec -n 4 --hostfile hosts ./prog
     Initialise MPI with MPI_Init_thread(..., MPI_THREAD_FUNNELED, ...) so that the calling
     thread may drive the transfers while its OpenMP team computes (with MPI_THREAD_SINGLE
     the transfers still overlap wherever the MPI library moves data on its own).

   WHAT IT COMPUTES
     Exactly ringattn_forward / ringattn_backward with ring_size = the communicator's size:
     rank i runs ring member i, step by step, with the same block data in the same order, so
     every rank's output is bit-identical to the rows member i writes in a single-process
     ringattn_forward / ringattn_backward with the same config (same p, same partition).
     Each rank holds only its own chunk of Q, K, V (and dO, O, lse, and gets its own chunk of
     out, lse, dQ, dK, dV): memory per rank is O(n / p), exactly ringattn_plan's member_bytes
     plus one score tile per thread. What the core derives from the whole sequence the ranks
     derive together, with the same result: the forward's scaling of a huge V (the largest
     shift any rank's chunk needs) and f32 compute's range check (RINGATTN_ERANGE, in the
     core's words: an entry beyond the float range is its rank's refusal, and the bound on
     max ||q|| max ||k|| takes the largest row norms of any rank).

   THE LOCAL CHUNK
     Every tensor argument is the rank's LOCAL chunk: q, out, dout, dq are [b, rows_q, h, d],
     k, v, dk, dv [b, rows_k, hk, d], lse [b, h, rows_q, 1] (any strides, any storage dtype),
     where the rows are the positions member `rank` owns, in increasing order:
       RINGATTN_CONTIGUOUS  chunk rank of p (chunk_begin(n, p, i) = i*(n/p) + min(i, n%p));
       RINGATTN_ZIGZAG      chunk rank of 2p, then chunk 2p-1-rank of 2p;
       RINGATTN_STRIPED     positions rank, rank + p, rank + 2p, ...
     ringattn_mpi_positions() lists them. The global lengths are the sums of the ranks' rows
     (nq for q, nk for k) and each rank must hold exactly its share. Config arrays
     (segment_lengths, dilation_rates, cu_seqlens_q/k) are global and given on every rank.

   FAULTS
     Before anything is written, all ranks agree (two small MPI_Iallreduce): a rank whose
     arguments fail the core's checks makes every rank return that rank's status (the lowest
     such rank's), and values that differ across ranks (a shape, a config field, the pass)
     make every rank return ESHAPE / ECONFIG naming the field. In the ring, a rank that fails
     sends an empty message in place of every buffer it owes; the others stop computing when
     that reaches them, finish the ring's message schedule, and a final agreement makes every
     rank return the same status (the most negative). Every wait is bounded by timeout_s
     (default 60 s; time the rank itself was not running does not count): a rank that stops
     answering makes the others return RINGATTN_ETIMEDOUT.
     Outputs are written only after the final agreement succeeded. After ETIMEDOUT the
     operation that timed out may stay pending inside MPI (an MPI collective cannot be
     cancelled): treat the job as broken, e.g. MPI_Abort. Internal traffic runs on a private
     duplicate of `comm` with MPI_ERRORS_RETURN, so MPI errors are returned (RINGATTN_EMPI),
     not fatal, and never mix with the caller's messages.

   COMPILE-TIME OPTIONS: those of ringattn.h (RINGATTN_MALLOC / RINGATTN_FREE count every
   byte a rank allocates here too).
   LICENSE: MIT (as ringattn.h).
*/
#ifndef RINGATTN_MPI_H
#define RINGATTN_MPI_H

#include <mpi.h>
#include "ringattn.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RINGATTN_MPI_DEFAULT_TIMEOUT 60.0   /* seconds, each wait */

/* Filled on success when options->stats is set: this rank's side of the call. */
typedef struct {
    int rank, ring_size, num_threads;
    int64_t seq_q, seq_k;            /* global lengths (sums of the ranks' rows)              */
    int64_t rows_q, rows_k;          /* this rank's rows                                      */
    double wall_s;                   /* the whole call                                        */
    double agree_s;                  /* duplicating comm + the two agreements up front        */
    double setup_s;                  /* packing this rank's chunks into its member buffers    */
    double ring_s;                   /* the p steps (setup and the final write not included)  */
    double compute_s;                /* sum over steps: this rank's units (the OpenMP region,
                                        less the master thread's MPI tests in it)             */
    double poll_s;                   /* the master thread's MPI tests while the team computes
                                        and between dK|dV slices (on shared memory that is
                                        where the receiver copies the data)                   */
    double wait_s;                   /* sum over steps: waiting for transfers after compute,
                                        K/V and (backward) the dK/dV hand-off                 */
    double dkv_s;                    /* backward: the part of wait_s spent on dK/dV           */
    int64_t messages_sent, bytes_sent;
    size_t member_bytes;             /* measured: this rank's member buffers                  */
    size_t scratch_bytes;            /* measured: its threads' tiles, all of them             */
    size_t planned_member_bytes;     /* ringattn_plan's member_bytes for this call            */
    size_t planned_tile_bytes;       /* ringattn_plan's tile_bytes (per thread)               */
} ringattn_mpi_stats;

typedef struct {
    double timeout_s;                /* bound of every wait; 0 -> RINGATTN_MPI_DEFAULT_TIMEOUT,
                                        < 0 -> unbounded                                      */
    ringattn_mpi_stats *stats;       /* optional out                                          */
} ringattn_mpi_options;

/* timeout 0 (default), no stats */
RINGATTN_API ringattn_mpi_options ringattn_mpi_default_options(void);

/* The global positions member `rank` of p owns under `part` for a sequence of n tokens, in
   the order of its local rows: returns their count and, when pos is not NULL, writes them to
   pos[0..count). A negative status (ECONFIG) for part unknown, n < 1, p < 1 or rank outside
   [0, p). */
RINGATTN_API int64_t ringattn_mpi_positions(ringattn_partition part, int64_t n, int p, int rank,
                                            int64_t *pos);

/* Collective over comm: every rank calls with its local chunks (see THE LOCAL CHUNK).
   cfg->ring_size must be 0 or the size of comm. cfg->stats and cfg->trace see this rank's
   member only. Returns the same status on every rank. */
RINGATTN_API int ringattn_mpi_forward(const ringattn_config *cfg, MPI_Comm comm,
                                      const ringattn_tensor *q, const ringattn_tensor *k,
                                      const ringattn_tensor *v, ringattn_tensor *out,
                                      ringattn_tensor *lse /* may be NULL */);
RINGATTN_API int ringattn_mpi_backward(const ringattn_config *cfg, MPI_Comm comm,
                                       const ringattn_tensor *q, const ringattn_tensor *k,
                                       const ringattn_tensor *v, const ringattn_tensor *out,
                                       const ringattn_tensor *lse, const ringattn_tensor *dout,
                                       ringattn_tensor *dq, ringattn_tensor *dk, ringattn_tensor *dv);
/* the same with options (NULL = ringattn_mpi_default_options()) */
RINGATTN_API int ringattn_mpi_forward_ex(const ringattn_config *cfg, const ringattn_mpi_options *opt,
                                         MPI_Comm comm, const ringattn_tensor *q, const ringattn_tensor *k,
                                         const ringattn_tensor *v, ringattn_tensor *out, ringattn_tensor *lse);
RINGATTN_API int ringattn_mpi_backward_ex(const ringattn_config *cfg, const ringattn_mpi_options *opt,
                                          MPI_Comm comm, const ringattn_tensor *q, const ringattn_tensor *k,
                                          const ringattn_tensor *v, const ringattn_tensor *out,
                                          const ringattn_tensor *lse, const ringattn_tensor *dout,
                                          ringattn_tensor *dq, ringattn_tensor *dk, ringattn_tensor *dv);

#ifdef RINGATTN_MPI_TESTING
/* TEST ONLY (define RINGATTN_MPI_TESTING wherever ringattn_mpi.h is included, the
   implementation file too): simulated failures, to check that the other ranks return
   instead of hanging. Not part of the library's interface. */
typedef enum {
    RINGATTN_MPI_FAULT_NONE = 0,
    RINGATTN_MPI_FAULT_ANNOUNCE = 1,   /* rank fails at step and says so (EMPI)               */
    RINGATTN_MPI_FAULT_SILENT = 2,     /* rank stops communicating at step and returns
                                          ETIMEDOUT at once, telling no one: a hung or
                                          vanished process, seen from the others              */
    RINGATTN__MPI_FAULT_MIN = -0x7fffffff - 1, RINGATTN__MPI_FAULT_MAX = 0x7fffffff
} ringattn_mpi_fault;
typedef struct { ringattn_mpi_fault fault; int rank, step; } ringattn_mpi_fault_plan;
/* ringattn_mpi_forward_ex / _backward_ex with a fault injected (fault NULL = none) */
RINGATTN_API int ringattn_mpi_forward_faulty(const ringattn_config *cfg, const ringattn_mpi_options *opt,
                                             const ringattn_mpi_fault_plan *fault, MPI_Comm comm,
                                             const ringattn_tensor *q, const ringattn_tensor *k,
                                             const ringattn_tensor *v, ringattn_tensor *out, ringattn_tensor *lse);
RINGATTN_API int ringattn_mpi_backward_faulty(const ringattn_config *cfg, const ringattn_mpi_options *opt,
                                              const ringattn_mpi_fault_plan *fault, MPI_Comm comm,
                                              const ringattn_tensor *q, const ringattn_tensor *k,
                                              const ringattn_tensor *v, const ringattn_tensor *out,
                                              const ringattn_tensor *lse, const ringattn_tensor *dout,
                                              ringattn_tensor *dq, ringattn_tensor *dk, ringattn_tensor *dv);
#endif

#ifdef __cplusplus
}
#endif
#endif /* RINGATTN_MPI_H */

/* ======================================================================================== */
/*                                    IMPLEMENTATION                                        */
/* ======================================================================================== */
#if defined(RINGATTN_MPI_IMPLEMENTATION) && !defined(RINGATTN_MPI_IMPLEMENTATION_DONE)
#define RINGATTN_MPI_IMPLEMENTATION_DONE
#ifndef RINGATTN_IMPLEMENTATION_DONE
#error "ringattn_mpi.h: define RINGATTN_IMPLEMENTATION as well where RINGATTN_MPI_IMPLEMENTATION is defined"
#endif

#include <limits.h>
#if defined(__unix__) || defined(__APPLE__)
#include <sched.h>
#define RINGATTN__MPI_YIELD() ((void)sched_yield())   /* do not spin a core away from a rank */
#else
#define RINGATTN__MPI_YIELD() ((void)0)
#endif

#ifdef __cplusplus
extern "C" {
#endif

enum { RINGATTN__MPI_TAG_KV = 0x7a11, RINGATTN__MPI_TAG_DKV = 0x7a12 };

RINGATTN_API ringattn_mpi_options ringattn_mpi_default_options(void)
{
    ringattn_mpi_options o;
    memset(&o, 0, sizeof o);
    return o;
}

RINGATTN_API int64_t ringattn_mpi_positions(ringattn_partition part, int64_t n, int p, int rank, int64_t *pos)
{
    ringattn__piece pc[2]; int np, k; int64_t r, count = 0;
    if ((int)part < 0 || (int)part > 2 || n < 1 || p < 1 || rank < 0 || rank >= p) return RINGATTN_ECONFIG;
    np = ringattn__pieces(part, n, p, rank, pc);
    for (k = 0; k < np; k++)
        for (r = 0; r < pc[k].count; r++, count++)
            if (pos) pos[count] = pc[k].pos0 + r * pc[k].stride;
    return count;
}

/* ---------------------------------------------------------------- transfers, every wait bounded */

/* One point-to-point operation. Transfers go in units of 4 bytes (every buffer and slice is a
   whole number of them, at least one), and an empty message is an error word: a rank that
   failed sends nothing in place of each buffer, so the message schedule stays whole and its
   neighbours learn of the failure at their next hand-off instead of at the deadline. */
typedef struct {
    MPI_Request rq;                /* MPI_REQUEST_NULL once MPI completed it (st is valid)    */
    MPI_Status st;
    int live;                      /* posted and not yet checked                             */
    int expect;                    /* receive: units of a whole message; send: -1            */
} ringattn__mpi_op;

/* The state of one call on one rank. */
typedef struct {
    MPI_Comm comm;                 /* private duplicate, MPI_ERRORS_RETURN                    */
    MPI_Datatype unit;             /* 4 contiguous bytes                                      */
    int rank, size, prev, next;
    double timeout;                /* < 0: unbounded                                          */
    int poll;                      /* the MPI thread level lets the master thread test        */
    int st;                        /* this rank's status                                      */
    int first_hand;                /* st arose here, not from a neighbour's error word        */
    int prev_dead, next_dead;      /* a transfer with that neighbour timed out: leave it be   */
    int stuck;                     /* a send could neither finish nor be cancelled: its
                                      buffers must never be freed (MPI may still read them)   */
    int64_t messages, bytes;
    double poll_s;                 /* time in ringattn__mpi_poke                              */
} ringattn__mpi;

/* A deadline that counts only time this rank spent polling: a gap of more than 0.1 s between
   two polls means the process was not running (stopped, swapped out, starved), and a peer
   cannot be blamed for that, so the deadline moves by the gap. */
typedef struct { double end, last; } ringattn__mpi_clock;

static ringattn__mpi_clock ringattn__mpi_clock_start(double timeout)
{
    ringattn__mpi_clock c;
    c.last = MPI_Wtime();
    c.end = timeout < 0 ? -1.0 : c.last + timeout;
    return c;
}

static int ringattn__mpi_expired(ringattn__mpi_clock *c)
{
    double now = MPI_Wtime();
    if (c->end < 0) return 0;
    if (now - c->last > 0.1) c->end += now - c->last;
    c->last = now;
    return now > c->end;
}

/* wait for one request alone (a collective, the duplicate), polling until the deadline */
static int ringattn__mpi_wait1(double timeout, MPI_Request *rq)
{
    ringattn__mpi_clock clk = ringattn__mpi_clock_start(timeout);
    int flag = 0;
    for (;;) {
        if (MPI_Test(rq, &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS) return RINGATTN_EMPI;
        if (flag) return RINGATTN_OK;
        if (ringattn__mpi_expired(&clk)) return RINGATTN_ETIMEDOUT;
        RINGATTN__MPI_YIELD();
    }
}

static void ringattn__mpi_fail(ringattn__mpi *M, int st)
{
    if (M->st == RINGATTN_OK) { M->st = st; M->first_hand = 1; }
}

static void ringattn__mpi_recv(ringattn__mpi *M, ringattn__mpi_op *op, void *buf, size_t bytes, int tag)
{
    op->rq = MPI_REQUEST_NULL; op->live = 0; op->expect = (int)(bytes / 4);
    if (M->prev_dead) return;
    if (MPI_Irecv(buf, op->expect, M->unit, M->prev, tag, M->comm, &op->rq) != MPI_SUCCESS) {
        op->rq = MPI_REQUEST_NULL; ringattn__mpi_fail(M, RINGATTN_EMPI); return;
    }
    op->live = 1;
}

static void ringattn__mpi_send(ringattn__mpi *M, ringattn__mpi_op *op, const void *buf, size_t bytes, int tag)
{
    int units = M->st == RINGATTN_OK ? (int)(bytes / 4) : 0;   /* failed: the empty error word */
    op->rq = MPI_REQUEST_NULL; op->live = 0; op->expect = -1;
    if (M->next_dead) return;
    if (MPI_Isend(buf, units, M->unit, M->next, tag, M->comm, &op->rq) != MPI_SUCCESS) {
        op->rq = MPI_REQUEST_NULL; ringattn__mpi_fail(M, RINGATTN_EMPI); return;
    }
    op->live = 1; M->messages++; M->bytes += (int64_t)units * 4;
}

/* one MPI_Test of each pending op: progress while the team computes */
static void ringattn__mpi_test(ringattn__mpi *M, ringattn__mpi_op *op, int n)
{
    int j, flag;
    for (j = 0; j < n; j++)
        if (op[j].live && op[j].rq != MPI_REQUEST_NULL &&
            MPI_Test(&op[j].rq, &flag, &op[j].st) != MPI_SUCCESS) {
            op[j].rq = MPI_REQUEST_NULL; op[j].live = 0; ringattn__mpi_fail(M, RINGATTN_EMPI);
        }
}

/* Finish ops[0..n): every wait bounded. A receive still pending at the deadline is cancelled
   (its neighbour is presumed gone, and later receives from it are not posted); a send that
   can neither finish nor be cancelled (Open MPI does not cancel sends) is freed as a request
   and M->stuck keeps its buffer alive. A receive that got the empty error word takes the
   neighbour's failure on (EMPI; the final agreement restores the first status). */
static void ringattn__mpi_wait(ringattn__mpi *M, ringattn__mpi_op *op, int n)
{
    ringattn__mpi_clock clk = ringattn__mpi_clock_start(M->timeout);
    int j, pending, flag, count;
    for (;;) {
        ringattn__mpi_test(M, op, n);
        for (pending = 0, j = 0; j < n; j++)   /* a neighbour already given up on: not waited for */
            pending += op[j].live && op[j].rq != MPI_REQUEST_NULL && !(op[j].expect < 0 ? M->next_dead : M->prev_dead);
        if (!pending || ringattn__mpi_expired(&clk)) break;
        RINGATTN__MPI_YIELD();
    }
    for (j = 0; j < n; j++) {
        if (!op[j].live) continue;
        op[j].live = 0;
        if (op[j].rq != MPI_REQUEST_NULL) {   /* timed out */
            ringattn__mpi_fail(M, RINGATTN_ETIMEDOUT);
            (void)MPI_Cancel(&op[j].rq);
            flag = 0;
            (void)MPI_Test(&op[j].rq, &flag, MPI_STATUS_IGNORE);
            if (!flag) { (void)MPI_Request_free(&op[j].rq); if (op[j].expect < 0) M->stuck = 1; }
            op[j].rq = MPI_REQUEST_NULL;
            if (op[j].expect < 0) M->next_dead = 1; else M->prev_dead = 1;
            continue;
        }
        if (op[j].expect < 0) continue;
        count = -1;
        if (MPI_Get_count(&op[j].st, M->unit, &count) != MPI_SUCCESS) ringattn__mpi_fail(M, RINGATTN_EMPI);
        else if (count == 0) { if (M->st == RINGATTN_OK) M->st = RINGATTN_EMPI; }   /* the neighbour failed */
        else if (count != op[j].expect) ringattn__mpi_fail(M, RINGATTN_EMPI);
    }
}

/* ---------------------------------------------------------------- the agreement */

/* One agreement: an MPI_Iallreduce over the private communicator, waited for within the
   timeout; `what` names it in the sentence of a rank that did not join (`mine`, when not
   NULL, adds this rank's own status). */
static int ringattn__mpi_agree(const ringattn__mpi *M, const ringattn_config *cfg, const void *in, void *out,
                               int n, MPI_Datatype type, MPI_Op op, const char *what, const char *mine)
{
    MPI_Request rq = MPI_REQUEST_NULL;
    int st;
    if (MPI_Iallreduce(in, out, n, type, op, M->comm, &rq) != MPI_SUCCESS)
        return ringattn__fail(cfg, RINGATTN_EMPI, "MPI_Iallreduce failed");
    if ((st = ringattn__mpi_wait1(M->timeout, &rq)) == RINGATTN_OK) return RINGATTN_OK;
    if (mine) return ringattn__fail(cfg, st, "%s: a rank did not join within %g s (this rank: %s)", what, M->timeout, mine);
    return ringattn__fail(cfg, st, "%s: a rank did not join within %g s", what, M->timeout);
}

static int64_t ringattn__mpi_hash(const int64_t *a, int64_t n)   /* FNV-1a over the values */
{
    uint64_t h = 1469598103934665603ull; int64_t i; int b;
    if (!a) return 0;
    for (i = 0; i < n; i++)
        for (b = 0; b < 64; b += 8) { h ^= ((uint64_t)a[i] >> b) & 0xff; h *= 1099511628211ull; }
    return (int64_t)(h >> 1);
}

static int64_t ringattn__mpi_bits(double x)
{
    int64_t b; memcpy(&b, &x, sizeof b); return b;
}

/* doubles by their bits, hashed (NULL: 0) */
static int64_t ringattn__mpi_hash_doubles(const double *a, int64_t n)
{
    uint64_t h = 1469598103934665603ull;
    int64_t i;
    if (!a) return 0;
    for (i = 0; i < n; i++) { h ^= (uint64_t)ringattn__mpi_bits(a[i]); h *= 1099511628211ull; }
    return (int64_t)(h >> 1) | 1;
}

#define RINGATTN__MPI_NFIELDS 28

/* a simulated failure (the tests' ringattn_mpi_*_faulty): kind 0 none, 1 announce, 2 silent */
typedef struct { int kind, rank, step; } ringattn__mpi_fault;
#define RINGATTN__MPI_CHUNKS 8     /* most chunks of units per step, 2 dK|dV slices each      */

/* ---------------------------------------------------------------- THE RING, one member per rank */

/* The units of a step in `chunks` runs of consecutive units [c*U/C, (c+1)*U/C): the dK|dV
   rows of a run are two contiguous slices of the buffer (K part, V part), because unit u =
   (batch, k/v head) owns rows [u*ck, (u+1)*ck) of each. */
typedef struct {
    int chunks;
    ringattn__mpi_op rr[2][2 * RINGATTN__MPI_CHUNKS];   /* by step parity: receives, 2 a chunk */
    ringattn__mpi_op sr[2][2 * RINGATTN__MPI_CHUNKS];   /* and sends                           */
} ringattn__mpi_dkv;

static void ringattn__mpi_slices(const ringattn__ring *R, const ringattn__mpi_dkv *D, int c, int64_t *u0, int64_t *u1,
                                 size_t off[2], size_t len[2])
{
    const ringattn__problem *P = R->P;
    *u0 = (int64_t)c * P->units / D->chunks; *u1 = (int64_t)(c + 1) * P->units / D->chunks;
    off[0] = (size_t)(*u0 * P->ck * P->d) * P->es;
    len[0] = (size_t)((*u1 - *u0) * P->ck * P->d) * P->es;
    off[1] = (size_t)(P->b * P->hk * P->ck * P->d + *u0 * P->ck * P->dv) * P->es;
    len[1] = (size_t)((*u1 - *u0) * P->ck * P->dv) * P->es;
}

/* the transfers in flight during a step: K/V, and in backward the dK|dV slices both ways */
typedef struct { ringattn__mpi_op *op[5]; int n[5]; } ringattn__mpi_watch;

static void ringattn__mpi_poke(ringattn__mpi *M, const ringattn__mpi_watch *w)
{
    double t0 = MPI_Wtime();
    int g;
    for (g = 0; g < 5; g++) if (w->n[g]) ringattn__mpi_test(M, w->op[g], w->n[g]);
    M->poll_s += MPI_Wtime() - t0;
}

/* member `rank`'s setup (0) or finish (1), its (batch, head) slices shared by the team */
static void ringattn__mpi_setup_finish(const ringattn__ring *R, const ringattn__io *io, int rank, int finish)
{
    const ringattn__problem *P = R->P;
    const int64_t bh = P->b * P->h;
    int nt = P->nt;
    int64_t x;
    (void)nt;
    RINGATTN__OMP(omp parallel for num_threads(nt) schedule(dynamic, 1))
    for (x = 0; x < bh; x++) {
        if (finish) ringattn__member_finish(R, io, rank, x / P->h, x % P->h);
        else ringattn__member_setup(R, io, rank, x / P->h, x % P->h);
    }
}

/* units [u0, u1) of step t with the whole team; the master thread keeps the transfers moving */
static void ringattn__mpi_units(const ringattn__ring *R, ringattn__mpi *M, int t, int64_t u0, int64_t u1,
                                const ringattn__mpi_watch *w)
{
    const ringattn__problem *P = R->P;
    int nt = P->nt;
    (void)nt;
    RINGATTN__OMP(omp parallel num_threads(nt))
    {
        ringattn__scratch *W = &R->w[ringattn__thread_id()];
        int64_t u;
        int master = ringattn__thread_id() == 0;
#ifdef _OPENMP
        omp_set_num_threads(1);   /* BLAS inside a unit stays single-threaded (see THE RING) */
#endif
        RINGATTN__OMP(omp for schedule(dynamic, 1))
        for (u = u0; u < u1; u++) {
            ringattn__compute(R, (int64_t)M->rank * P->units + u, t, W);
            /* without a progress thread, a transfer moves only while MPI is called */
            if (master && M->poll) ringattn__mpi_poke(M, w);
        }
    }
}

/* Member `rank`'s setup (its chunks packed into its buffers), then its p steps. Step t: post
   the K/V hand-off (receive the next block into the other buffer from rank - 1, send the
   block held to rank + 1: the whole buffer, laid out as ringattn__member's kv says, K in
   panels in the forward) and compute while it moves.
   Backward: the dK|dV of the block travels too, and it is complete only unit by unit, so
   it goes in chunks: before a chunk of units is computed its slices must have arrived (sent
   by rank - 1 right after its own chunk of the previous step), and right after, they are
   sent on and the receive of the next step's slices is posted into the other buffer. Only
   the first chunk's wait and the last hand-off home are exposed. Every unit's arithmetic,
   and the order in which the members add into each dK|dV row, is that of ringattn__ring_loop,
   so the result is bit-identical. A failed rank skips the arithmetic but keeps the message
   schedule, so no neighbour waits for a message never sent. */
static void ringattn__mpi_ring(const ringattn__ring *R, const ringattn__io *io, ringattn__mpi *M,
                               ringattn__mpi_dkv *D, ringattn_mpi_stats *ms, const ringattn__mpi_fault *F)
{
    const ringattn__problem *P = R->P;
    const int p = P->p, rank = M->rank;
    ringattn__member *me = ringattn__mem(R, rank);
    ringattn__mpi_op kv[2];
    ringattn__mpi_watch w;
    int t, c, C = D->chunks;
    double s0 = MPI_Wtime(), w0;
    ringattn__mpi_setup_finish(R, io, rank, 0);
    ms->setup_s = MPI_Wtime() - s0;
    memset(kv, 0, sizeof kv);
    for (t = 0; t < p; t++) {
        double c0;
        int cur = t & 1, nxt = (t + 1) & 1;
        memset(&w, 0, sizeof w);   /* everything that may be in flight (only live ops are tested) */
        w.op[0] = kv; w.n[0] = 2;
        if (R->pass == 1) {
            w.op[1] = D->rr[0]; w.op[2] = D->rr[1]; w.op[3] = D->sr[0]; w.op[4] = D->sr[1];
            w.n[1] = w.n[2] = w.n[3] = w.n[4] = 2 * C;
        }
        if (F && F->rank == rank && F->step == t) {
            if (F->kind == 1) ringattn__mpi_fail(M, RINGATTN_EMPI);
            if (F->kind == 2) {
                /* goes quiet at a clean point: nothing of ours left in flight, then silence */
                if (R->pass == 1) { ringattn__mpi_wait(M, D->rr[cur], 2 * C); ringattn__mpi_wait(M, D->sr[nxt], 2 * C); }
                M->st = RINGATTN_ETIMEDOUT; M->first_hand = 1;
                return;
            }
        }
        if (t + 1 < p) {
            ringattn__mpi_recv(M, &kv[0], me->kv[nxt], R->kv_bytes, RINGATTN__MPI_TAG_KV);
            ringattn__mpi_send(M, &kv[1], me->kv[cur], R->kv_bytes, RINGATTN__MPI_TAG_KV);
        }
        if (R->pass == 0) {
            double p0 = M->poll_s;
            c0 = MPI_Wtime();
            if (M->st == RINGATTN_OK) ringattn__mpi_units(R, M, t, 0, P->units, &w);
            ms->compute_s += MPI_Wtime() - c0 - (M->poll_s - p0);
        } else {
            for (c = 0; c < C; c++) {
                int64_t u0, u1; size_t off[2], len[2]; int j;
                ringattn__mpi_slices(R, D, c, &u0, &u1, off, len);
                w0 = MPI_Wtime();
                if (t > 0) ringattn__mpi_wait(M, D->rr[cur] + 2 * c, 2);   /* this step's slices, arrived */
                ms->dkv_s += MPI_Wtime() - w0; ms->wait_s += MPI_Wtime() - w0;
                {
                    double p0 = M->poll_s;
                    c0 = MPI_Wtime();
                    if (M->st == RINGATTN_OK) ringattn__mpi_units(R, M, t, u0, u1, &w);
                    ms->compute_s += MPI_Wtime() - c0 - (M->poll_s - p0);
                }
                w0 = MPI_Wtime();
                /* the other buffer's slices left in step t - 1: done before it is received into */
                ringattn__mpi_wait(M, D->sr[nxt] + 2 * c, 2);
                ms->dkv_s += MPI_Wtime() - w0; ms->wait_s += MPI_Wtime() - w0;
                for (j = 0; j < 2; j++) {
                    ringattn__mpi_recv(M, D->rr[nxt] + 2 * c + j, (char *)me->dkv[nxt] + off[j], len[j],
                                       RINGATTN__MPI_TAG_DKV);
                    ringattn__mpi_send(M, D->sr[cur] + 2 * c + j, (char *)me->dkv[cur] + off[j], len[j],
                                       RINGATTN__MPI_TAG_DKV);
                }
                ringattn__mpi_poke(M, &w);
            }
            if (M->st == RINGATTN_OK) me->handoffs++;
        }
        w0 = MPI_Wtime();
        if (t + 1 < p) {
            ringattn__mpi_wait(M, kv, 2);
            if (M->st == RINGATTN_OK) me->handoffs++;
        }
        if (M->st == RINGATTN_OK) {   /* the step's counters and trace event; no pass_on: sent above */
            int64_t tiles = ringattn__count_step(R, rank);
            ringattn__hold_state(R, rank);   /* precision emulation only */
            ringattn__report_step(R, rank, t, tiles);
        }
        ms->wait_s += MPI_Wtime() - w0;
    }
    if (R->pass == 1) {   /* the last hand-off brings this member's own dK|dV home */
        w0 = MPI_Wtime();
        ringattn__mpi_wait(M, D->rr[p & 1], 2 * C);
        ringattn__mpi_wait(M, D->sr[(p - 1) & 1], 2 * C);
        ringattn__mpi_wait(M, D->sr[p & 1], 2 * C);
        ms->dkv_s += MPI_Wtime() - w0;
        ms->wait_s += MPI_Wtime() - w0;
    }
}

/* ---------------------------------------------------------------- one call, phase by phase */

/* MPI usable for this call: initialised, not finalised, and a communicator given. */
static int ringattn__mpi_usable(const ringattn_config *cfg, MPI_Comm comm)
{
    int init = 0, fin = 0;
    if (MPI_Initialized(&init) != MPI_SUCCESS || !init || MPI_Finalized(&fin) != MPI_SUCCESS || fin)
        return ringattn__fail(cfg, RINGATTN_EMPI, "MPI is not initialised (or already finalised)");
    if (comm == MPI_COMM_NULL) return ringattn__fail(cfg, RINGATTN_ENULL, "comm is MPI_COMM_NULL");
    return RINGATTN_OK;
}

/* what ringattn__mpi_join made: the unit type and the private communicator */
static void ringattn__mpi_leave(ringattn__mpi *M)
{
    if (M->unit != MPI_DATATYPE_NULL) (void)MPI_Type_free(&M->unit);
    if (M->comm != MPI_COMM_NULL) (void)MPI_Comm_free(&M->comm);
}

/* This rank's place in the ring: its rank and neighbours, the bound of every wait, whether
   the MPI thread level lets the master thread poll, and its private channel (a duplicate of
   comm, and the 4-byte unit every transfer counts in). A failure leaves nothing to free. */
static int ringattn__mpi_join(const ringattn_config *cfg, double timeout_s, MPI_Comm comm, ringattn__mpi *M)
{
    MPI_Request rq = MPI_REQUEST_NULL;
    int st, lvl = MPI_THREAD_SINGLE;
    memset(M, 0, sizeof *M);
    M->comm = MPI_COMM_NULL; M->unit = MPI_DATATYPE_NULL;
    if (MPI_Comm_size(comm, &M->size) != MPI_SUCCESS || MPI_Comm_rank(comm, &M->rank) != MPI_SUCCESS)
        return ringattn__fail(cfg, RINGATTN_EMPI, "MPI_Comm_size / MPI_Comm_rank failed on comm");
    M->prev = (M->rank + M->size - 1) % M->size; M->next = (M->rank + 1) % M->size;
    M->timeout = timeout_s == 0 ? RINGATTN_MPI_DEFAULT_TIMEOUT : timeout_s;
    if (!(M->timeout == M->timeout)) M->timeout = RINGATTN_MPI_DEFAULT_TIMEOUT;
    (void)MPI_Query_thread(&lvl);
    M->poll = lvl >= MPI_THREAD_FUNNELED;

    /* a private communicator: our messages never meet the caller's, and errors come back */
    if (MPI_Comm_idup(comm, &M->comm, &rq) != MPI_SUCCESS)
        return ringattn__fail(cfg, RINGATTN_EMPI, "MPI_Comm_idup failed");
    if ((st = ringattn__mpi_wait1(M->timeout, &rq)) != RINGATTN_OK)   /* the duplicate is lost with it */
        return ringattn__fail(cfg, st, "duplicating comm: a rank did not join within %g s", M->timeout);
    (void)MPI_Comm_set_errhandler(M->comm, MPI_ERRORS_RETURN);
    if (MPI_Type_contiguous(4, MPI_BYTE, &M->unit) != MPI_SUCCESS || MPI_Type_commit(&M->unit) != MPI_SUCCESS) {
        st = ringattn__fail(cfg, RINGATTN_EMPI, "MPI_Type_contiguous failed");
        ringattn__mpi_leave(M);
        return st;
    }
    return RINGATTN_OK;
}

/* This rank's own arguments, by the core's rules (same statuses, same words): *c is cfg with
   ring_size = the communicator's size (what the core sees from here on), *s the shape of
   this rank's chunks. Returns this rank's status; the ranks learn each other's next. */
static int ringattn__mpi_check_args(const ringattn_config *cfg, int null_cfg, int size, int pass,
                                    const ringattn_tensor *const t[9], ringattn_config *c, ringattn_shape *s)
{
    int st = RINGATTN_OK;
    *c = *cfg;
    if (null_cfg) st = RINGATTN_ENULL;
    else if (cfg->ring_size != 0 && cfg->ring_size != size)
        st = ringattn__fail(cfg, RINGATTN_ECONFIG, "ring_size = %d but the communicator has %d ranks (0 = its size)",
                            cfg->ring_size, size);
    c->ring_size = size;
    if (st == RINGATTN_OK) st = ringattn__check_call(c, pass, t, s);
    if (st == RINGATTN_OK && pass == 0 && c->max_logit) {   /* lse-shaped over this rank's rows */
        int64_t want[4];
        want[0] = s->batch; want[1] = s->heads_q; want[2] = s->seq_q; want[3] = 1;
        st = ringattn__check_option_view(c, c->max_logit, "max_logit", s, want, 0, 1);
        if (st == RINGATTN_OK) st = ringattn__check_option_alias(c, c->max_logit, "max_logit", t);
    }
    if (st == RINGATTN_OK && pass == 1 && c->dbias) st = ringattn__check_option_alias(c, c->dbias, "dbias", t);
    return st;
}

/* The first agreement: the global lengths are the sums of the ranks' rows. *refused counts
   the ranks whose own arguments failed (st: this rank's); only when it is 0 do the sums mean
   anything, and only then does *s take them. Returns the agreement's own status. */
static int ringattn__mpi_agree_lengths(const ringattn__mpi *M, const ringattn_config *cfg, int st,
                                       ringattn_shape *s, int64_t *refused)
{
    int64_t sum[3];
    int agreed;
    sum[0] = st == RINGATTN_OK ? s->seq_q : 0; sum[1] = st == RINGATTN_OK ? s->seq_k : 0;
    sum[2] = st != RINGATTN_OK;
    agreed = ringattn__mpi_agree(M, cfg, MPI_IN_PLACE, sum, 3, MPI_INT64_T, MPI_SUM, "the first agreement", NULL);
    if (agreed != RINGATTN_OK) return agreed;
    *refused = sum[2];
    if (sum[2] == 0) { s->seq_q = sum[0]; s->seq_k = sum[1]; }
    return RINGATTN_OK;
}

/* The problem over the global lengths *s, by the core's rules; then this rank must hold
   exactly member `rank`'s share (its own chunks had rows_q, rows_k rows), and one K|V chunk
   must fit one MPI message. */
static int ringattn__mpi_resolve(const ringattn_config *c, const ringattn__mpi *M, int pass,
                                 const ringattn_shape *s, int64_t rows_q, int64_t rows_k,
                                 ringattn__problem *P, ringattn_plan_info *plan)
{
    int64_t want_q, want_k;
    ringattn_config g = *c;
    int st;
    if (c->mask_fn || c->mask_block_fn)   /* a function pointer means nothing on another rank */
        return ringattn__fail(c, RINGATTN_EUNSUPPORTED, "mask_fn / mask_block_fn are host callbacks of one process: "
                              "ringattn_mpi.h refuses them (give the mask as a bool tensor or as document ids)");
    g.max_logit = NULL;   /* this rank's rows, not the sequence's: checked by ringattn__mpi_check_args */
    st = ringattn__resolve(&g, s, pass, P, plan);
    if (st != RINGATTN_OK) return st;
    if (pass == 0 && c->max_logit) {   /* the rows' maxima are planned and kept */
        P->max_logit = 1;
        if ((st = ringattn__plan_bytes(c, P, pass, 0, plan)) != RINGATTN_OK) return st;
    }
    want_q = ringattn_mpi_positions(c->partition, s->seq_q, M->size, M->rank, NULL);
    want_k = ringattn_mpi_positions(c->partition, s->seq_k, M->size, M->rank, NULL);
    if (rows_q != want_q || rows_k != want_k)
        return ringattn__fail(c, RINGATTN_ESHAPE,
                              "rank %d holds %lld query and %lld key rows, but member %d of p = %d owns %lld and "
                              "%lld of nq = %lld, nk = %lld under partition %d (see ringattn_mpi_positions)",
                              M->rank, (long long)rows_q, (long long)rows_k, M->rank, M->size,
                              (long long)want_q, (long long)want_k, (long long)s->seq_q, (long long)s->seq_k,
                              (int)c->partition);
    if (plan->kv_bytes / 2 / 4 > (size_t)INT_MAX)
        return ringattn__fail(c, RINGATTN_EUNSUPPORTED, "one K|V chunk of %zu bytes is beyond one MPI message "
                              "(2^31 - 1 units of 4 bytes)", plan->kv_bytes / 2);
    return RINGATTN_OK;
}

/* This rank's buffers only: member `rank`, and one tile per thread of its team (no more
   threads than units). */
static int ringattn__mpi_alloc(const ringattn_config *c, const ringattn__mpi *M, int pass,
                               const ringattn_plan_info *plan, ringattn__problem *P, ringattn__ring *R)
{
    ringattn__member *me;
    if (P->nt > P->units) P->nt = (int)P->units;
    R->P = P; R->cfg = c; R->pass = pass; R->m0 = M->rank; R->nm = 1;
    if (ringattn__ring_alloc(R, c->alloc_user) != RINGATTN_OK)
        return ringattn__fail(c, RINGATTN_ENOMEM, "could not allocate rank %d's buffers (%zu bytes)",
                              M->rank, plan->member_bytes);
    /* whole K/V buffers are sent, rows past a shorter chunk too: no undefined byte on the wire */
    me = ringattn__mem(R, M->rank);
    memset(me->kv[0], 0, R->kv_bytes); memset(me->kv[1], 0, R->kv_bytes);
    return RINGATTN_OK;
}

/* backward: the dbias workspace ([b][h][nq][nk] f64, zeroed; every thread of this rank writes
   its rows there) and dsinks's result, held until every rank has finished */
static int ringattn__mpi_grad_alloc(const ringattn_config *c, const ringattn__problem *P, ringattn__ring *R,
                                    double **dbias, double **dsinks)
{
    int i;
    if (P->dbias) {
        size_t n = (size_t)(P->b * P->h * P->nq * P->nk);
        if (!(*dbias = (double *)RINGATTN_MALLOC(n * sizeof(double), c->alloc_user)))
            return ringattn__fail(c, RINGATTN_ENOMEM, "could not allocate dbias's workspace (%zu bytes)", n * sizeof(double));
        memset(*dbias, 0, n * sizeof(double));
        for (i = 0; i < P->nt; i++) R->w[i].dbias = *dbias;
    }
    if (P->sinks && c->dsinks &&
        !(*dsinks = (double *)RINGATTN_MALLOC(sizeof(double) * (size_t)P->h, c->alloc_user)))
        return ringattn__fail(c, RINGATTN_ENOMEM, "could not allocate dsinks's result");
    return RINGATTN_OK;
}

/* What depends on the whole sequence, which each rank holds only a chunk of: f32 compute's
   largest q and k row norms (ringattn__range_bound decides from them) and the forward's V
   shift (ringattn__v_shift). Each rank finds its own; the agreement takes the largest of
   each, which is the whole sequence's: the same numbers the single-process call finds. */
typedef struct {
    double qnorm, knorm;
    int vshift;
} ringattn__mpi_maxima;

/* This rank's part of ringattn__check_range and ringattn__v_shift (over the global nk): its
   entries (a failure here is this rank's status, which the agreement passes on) and its
   maxima. */
static int ringattn__mpi_local_range(const ringattn_config *c, const ringattn__problem *P, int pass,
                                     const ringattn__io *io, ringattn__mpi_maxima *X)
{
    double norm[2];
    int st = ringattn__range_entries(c, P, pass, io, norm);
    if (st != RINGATTN_OK) return st;
    X->qnorm = norm[0]; X->knorm = norm[1];
    X->vshift = pass == 0 ? ringattn__v_shift(P, io->v) : 0;
    return RINGATTN_OK;
}

/* the fields every rank must agree on, as integers (doubles by their bits, arrays hashed) */
static void ringattn__mpi_fields(const ringattn_config *c, const ringattn__problem *P, int pass,
                                 int64_t f[RINGATTN__MPI_NFIELDS])
{
    f[0] = pass; f[1] = P->b; f[2] = P->h; f[3] = P->hk; f[4] = P->d; f[5] = P->dv;
    f[6] = ringattn__mpi_bits(P->scale); f[7] = c->causal; f[8] = (int64_t)c->compute; f[9] = P->groups;
    f[10] = (int64_t)c->mix; f[11] = P->wl; f[12] = P->wr; f[13] = (int64_t)P->part;
    f[14] = ringattn__mpi_bits(P->softcap); f[15] = P->nseq;
    f[16] = ringattn__mpi_hash(P->seg, P->groups); f[17] = ringattn__mpi_hash(P->rate, P->groups);
    f[18] = ringattn__mpi_hash(P->cuq, P->nseq ? P->nseq + 1 : 0);
    f[19] = ringattn__mpi_hash(P->cuk, P->nseq ? P->nseq + 1 : 0);
    /* the score options: their values where they are small, what is given where they are not
       (a bias's or a mask's contents are the caller's to keep equal on every rank) */
    f[20] = ringattn__mpi_hash_doubles(P->sinks, P->sinks ? P->h : 0);
    f[21] = ringattn__mpi_hash_doubles(P->alibi, P->nalibi);
    f[22] = P->bias ? 1 + P->bias->shape[0] * 2 + P->bias->shape[1] * 2 * P->b : 0;
    f[23] = P->mask ? 1 + P->mask->shape[0] * 2 + P->mask->shape[1] * 2 * P->b : 0;
    f[24] = ringattn__mpi_hash(P->docq, P->docq ? P->nq : 0);
    f[25] = ringattn__mpi_hash(P->dock, P->dock ? P->nk : 0);
    f[26] = pass == 0 ? c->max_logit != NULL : (c->dsinks != NULL) + 2 * (c->dbias != NULL);
    f[27] = (int64_t)(c->bias ? c->bias->dtype : -1);
}

/* The agreement (one MPI_MAX): the lowest failing rank's status, else every field equal on
   every rank (each field goes as f and ~f, so the maximum of ~f is ~ the minimum of f),
   *ntmin, the fewest threads of any rank, and *X, this rank's maxima (ringattn__mpi_maxima)
   on the way in, the largest of every rank's on the way out. st: this rank's status so far.
   Returns RINGATTN_OK, or the status this call returns. */
static int ringattn__mpi_agree_fields(const ringattn_config *c, const ringattn__mpi *M, int st, int pass,
                                      const ringattn__problem *P, int64_t *ntmin, ringattn__mpi_maxima *X)
{
    static const char *const field[RINGATTN__MPI_NFIELDS] = {
        "the pass (forward / backward)", "batch (q.shape[0])", "heads_q (q.shape[2])",
        "heads_kv (k.shape[2])", "dim_qk (q.shape[3])", "dim_v (v.shape[3])", "scale", "causal",
        "compute", "num_groups", "mix", "window_left", "window_right", "partition", "softcap",
        "num_seqs", "segment_lengths", "dilation_rates", "cu_seqlens_q", "cu_seqlens_k", "sinks",
        "alibi_slopes", "bias (given, shape)", "mask (given, shape)", "document_ids_q", "document_ids_k",
        "the optional outputs (max_logit, dsinks, dbias)", "the bias's dtype" };
    enum { NV = 2 + 2 * RINGATTN__MPI_NFIELDS + 3 };   /* + the three maxima */
    int64_t vec[NV], agreed[NV], *mx = vec + 2 + 2 * RINGATTN__MPI_NFIELDS;
    int i;
    memset(vec, 0, sizeof vec);
    if (st != RINGATTN_OK) vec[0] = ((int64_t)(M->size - M->rank) << 8) | (int64_t)(-st & 0xff);
    else {
        int64_t f[RINGATTN__MPI_NFIELDS];
        ringattn__mpi_fields(c, P, pass, f);
        for (i = 0; i < RINGATTN__MPI_NFIELDS; i++) { vec[1 + i] = f[i]; vec[1 + RINGATTN__MPI_NFIELDS + i] = ~f[i]; }
        vec[1 + 2 * RINGATTN__MPI_NFIELDS] = ~(int64_t)P->nt;   /* the fewest threads of any rank */
        /* norms >= 0: their bits order as they do */
        mx[0] = ringattn__mpi_bits(X->qnorm); mx[1] = ringattn__mpi_bits(X->knorm); mx[2] = X->vshift;
    }
    if ((i = ringattn__mpi_agree(M, c, vec, agreed, NV, MPI_INT64_T, MPI_MAX, "the agreement", NULL)) != RINGATTN_OK)
        return i;
    if (agreed[0] != 0) {
        int who = M->size - (int)(agreed[0] >> 8), code = -(int)(agreed[0] & 0xff);
        /* this rank's own sentence stands when it refused for the same reason */
        if (who != M->rank && st == RINGATTN_OK)
            (void)ringattn__fail(c, code, "rank %d refused the call: %s", who, ringattn_strerror(code));
        else if (who != M->rank && st != code)
            (void)ringattn__fail(c, code, "rank %d refused the call: %s (and this rank: %s)", who,
                                 ringattn_strerror(code), ringattn_strerror(st));
        return code;
    }
    for (i = 0; i < RINGATTN__MPI_NFIELDS; i++) {
        int64_t hi = agreed[1 + i], lo = ~agreed[1 + RINGATTN__MPI_NFIELDS + i];
        if (hi != lo)
            return ringattn__fail(c, (i >= 1 && i <= 5) ? RINGATTN_ESHAPE : RINGATTN_ECONFIG,
                                  "the ranks disagree on %s (this rank: %lld, range %lld .. %lld)", field[i],
                                  (long long)vec[1 + i], (long long)lo, (long long)hi);
    }
    *ntmin = ~agreed[1 + 2 * RINGATTN__MPI_NFIELDS];
    mx = agreed + 2 + 2 * RINGATTN__MPI_NFIELDS;
    memcpy(&X->qnorm, &mx[0], sizeof X->qnorm); memcpy(&X->knorm, &mx[1], sizeof X->knorm);
    X->vshift = (int)mx[2];
    return RINGATTN_OK;
}

/* The chunks of units a step's dK|dV goes in (two slices each, see ringattn__mpi_slices):
   each enough for the smallest team (every rank cuts alike, so slices match), at most
   RINGATTN__MPI_CHUNKS */
static int ringattn__mpi_chunks(const ringattn__problem *P, int64_t ntmin)
{
    int64_t ch = P->units / (ntmin > 0 ? ntmin : 1);
    return (int)(ch < 1 ? 1 : ch > RINGATTN__MPI_CHUNKS ? RINGATTN__MPI_CHUNKS : ch);
}

/* After the ring, the final agreement: every rank returns the most negative status of any
   rank, naming the lowest rank whose failure arose there (M->first_hand). A rank that went
   silent (an injected fault) joins nothing: the others must time out. */
static int ringattn__mpi_agree_final(const ringattn_config *c, const ringattn__mpi *M, const ringattn__mpi_fault *F)
{
    int st, fin_in[2], fin_st[2];
    if (F && F->kind == 2 && F->rank == M->rank && M->st != RINGATTN_OK)
        return ringattn__fail(c, M->st, "rank %d: injected fault (test): went silent at step %d", M->rank, F->step);
    fin_in[0] = M->st; fin_in[1] = (M->st != RINGATTN_OK && M->first_hand) ? M->rank : INT_MAX;
    if ((st = ringattn__mpi_agree(M, c, fin_in, fin_st, 2, MPI_INT, MPI_MIN, "the final agreement",
                                  ringattn_strerror(M->st))) != RINGATTN_OK) return st;
    st = fin_st[0];
    if (st == RINGATTN_OK) return RINGATTN_OK;
    if (F && F->kind == 1 && F->rank == M->rank)
        (void)ringattn__fail(c, st, "rank %d: injected fault (test) at step %d", M->rank, F->step);
    else if (fin_st[1] != INT_MAX)
        (void)ringattn__fail(c, st, "the ring failed: rank %d first (%s); this rank: %s", fin_st[1],
                             ringattn_strerror(st), ringattn_strerror(M->st));
    else
        (void)ringattn__fail(c, st, "the ring failed: %s", ringattn_strerror(st));
    return st;
}

/* options->stats: the timings gathered along the way (ms), the traffic, the bytes */
static void ringattn__mpi_report(const ringattn__ring *R, const ringattn__mpi *M, const ringattn_plan_info *plan,
                                 double t0, ringattn_mpi_stats *ms, ringattn_mpi_stats *out)
{
    const ringattn__problem *P = R->P;
    int i;
    ms->rank = M->rank; ms->ring_size = P->p; ms->num_threads = P->nt;
    ms->seq_q = P->nq; ms->seq_k = P->nk;
    ms->messages_sent = M->messages; ms->bytes_sent = M->bytes; ms->poll_s = M->poll_s;
    ms->member_bytes = R->m[0].bytes;
    for (i = 0; i < P->nt; i++) ms->scratch_bytes += R->w[i].bytes;
    ms->planned_member_bytes = plan->member_bytes; ms->planned_tile_bytes = plan->tile_bytes;
    ms->wall_s = MPI_Wtime() - t0;
    *out = *ms;
}

/* this rank's buffers, unless a send that timed out may still read them (M->stuck): those
   are never freed */
static void ringattn__mpi_free(ringattn__ring *R, const ringattn__mpi *M, void *alloc_user)
{
    if (!R->m) return;
    if (M->stuck) R->m[0].kv[0] = R->m[0].kv[1] = R->m[0].dkv[0] = R->m[0].dkv[1] = NULL;
    ringattn__ring_free(R, alloc_user);
}

/* The backward's option gradients, which sum over the whole sequence, before any output is
   written. dbias: each rank's workspace holds the score gradients of its own query rows
   (zeros elsewhere), so their sum over the ranks is exact in any order; dsinks: each rank
   sums its rows (batch, then its positions), and the ranks' sums are added in rank order,
   the same on every rank (the single-process call adds the positions of the whole sequence
   in one run instead: the two agree to rounding). */
static int ringattn__mpi_option_grads(const ringattn_config *c, const ringattn__mpi *M, const ringattn__problem *P,
                                      const ringattn__io *io, double *dbias, double *dsinks)
{
    int st = RINGATTN_OK;
    if (dbias) {   /* in slices of at most 2^26 doubles (an int count) */
        int64_t n = P->b * P->h * P->nq * P->nk, at, w;
        for (at = 0; at < n && st == RINGATTN_OK; at += w) {
            w = n - at < ((int64_t)1 << 26) ? n - at : ((int64_t)1 << 26);
            st = ringattn__mpi_agree(M, c, MPI_IN_PLACE, dbias + at, (int)w, MPI_DOUBLE, MPI_SUM, "dbias's sum", NULL);
        }
    }
    if (dsinks && st == RINGATTN_OK) {
        ringattn__problem L = *P;
        int64_t hh, r;
        double *part = (double *)RINGATTN_MALLOC(sizeof(double) * (size_t)(P->h * M->size), c->alloc_user);
        if (!part) return ringattn__fail(c, RINGATTN_ENOMEM, "could not allocate dsinks's partial sums");
        memset(part, 0, sizeof(double) * (size_t)(P->h * M->size));
        L.nq = io->lse->shape[2];   /* this rank's rows, in its local tensors */
        for (hh = 0; hh < P->h; hh++)
            part[(int64_t)M->rank * P->h + hh] = ringattn__dsink_part(&L, io->lse, io->dout, io->out, hh, 0, L.b * L.nq);
        st = ringattn__mpi_agree(M, c, MPI_IN_PLACE, part, (int)(P->h * M->size), MPI_DOUBLE, MPI_SUM,
                                 "dsinks's sum", NULL);   /* one rank's value per slot: exact */
        if (st == RINGATTN_OK)
            for (hh = 0; hh < P->h; hh++) {
                double sum = 0;
                for (r = 0; r < M->size; r++) sum += part[r * P->h + hh];
                dsinks[hh] = ringattn__dsink_finish(P, hh, sum);
            }
        RINGATTN_FREE(part, c->alloc_user);
    }
    return st;
}

/* One collective call on one rank. Every rank runs the same phases: join, check its own
   arguments, agree on the lengths, resolve and allocate its member, agree on the rest, the
   ring, the final agreement; only then the outputs. A rank whose arguments fail still takes
   part in both agreements up front, so that every rank returns the same status. */
static int ringattn__mpi_call(const ringattn_config *cfg, const ringattn_mpi_options *opt_in,
                              const ringattn__mpi_fault *F, MPI_Comm comm, int pass,
                              const ringattn_tensor *const t[9], const ringattn__io *io_in)
{
    ringattn_mpi_options opt = opt_in ? *opt_in : ringattn_mpi_default_options();
    ringattn_mpi_stats ms;
    ringattn_config c;             /* what the core sees (after ringattn__mpi_check_args);
                                      failures are reported through it as through cfg       */
    ringattn_shape s;
    ringattn__problem P;
    ringattn_plan_info plan;
    ringattn__ring R;
    ringattn__mpi M;
    ringattn__mpi_dkv D;
    ringattn__io io = *io_in;
    ringattn_config nocfg;
    ringattn__mpi_maxima X;
    double *dbias = NULL, *dsinks = NULL;   /* the backward's option gradients, before they are written */
    int64_t refused = 0, ntmin = 0;
    int st, ag, null_cfg = !cfg;   /* ag: an agreement's own status (a rank missing, MPI failing) */
    double t0, r0;

    /* without a config this rank still takes part, so that the others do not wait for it */
    if (null_cfg) { nocfg = ringattn_default_config(); cfg = &nocfg; }
    if ((st = ringattn__mpi_usable(cfg, comm)) != RINGATTN_OK) return st;
    t0 = MPI_Wtime();
    memset(&ms, 0, sizeof ms);
    memset(&R, 0, sizeof R);
    memset(&D, 0, sizeof D);
    memset(&s, 0, sizeof s);
    memset(&P, 0, sizeof P);      /* read by the agreement even when another rank refused */
    memset(&plan, 0, sizeof plan);
    memset(&X, 0, sizeof X);
    io.local = 1;                 /* the tensors are this rank's chunks */
    if ((st = ringattn__mpi_join(cfg, opt.timeout_s, comm, &M)) != RINGATTN_OK) return st;

    /* 1. this rank's own arguments, and the global lengths */
    st = ringattn__mpi_check_args(cfg, null_cfg, M.size, pass, t, &c, &s);
    ms.rows_q = s.seq_q; ms.rows_k = s.seq_k;
    if ((ag = ringattn__mpi_agree_lengths(&M, &c, st, &s, &refused)) != RINGATTN_OK) { st = ag; goto done; }
    if (st == RINGATTN_OK && refused == 0)
        st = ringattn__mpi_resolve(&c, &M, pass, &s, ms.rows_q, ms.rows_k, &P, &plan);
    if (st == RINGATTN_OK && refused == 0) st = ringattn__mpi_local_range(&c, &P, pass, &io, &X);
    if (st == RINGATTN_OK && refused == 0) st = ringattn__mpi_alloc(&c, &M, pass, &plan, &P, &R);
    if (st == RINGATTN_OK && refused == 0 && pass == 1 && (P.dbias || (P.sinks && c.dsinks)))
        st = ringattn__mpi_grad_alloc(&c, &P, &R, &dbias, &dsinks);

    /* 2. the agreement: the lowest failing rank's status, else every field equal everywhere;
       then what the whole sequence decides, as in one process: f32 compute's range, V's shift */
    if ((st = ringattn__mpi_agree_fields(&c, &M, st, pass, &P, &ntmin, &X)) != RINGATTN_OK) goto done;
    if ((st = ringattn__range_bound(&c, &P, X.qnorm, X.knorm)) != RINGATTN_OK) goto done;
    R.vshift = X.vshift;
    ms.agree_s = MPI_Wtime() - t0;
    D.chunks = ringattn__mpi_chunks(&P, ntmin);

    /* 3. the ring, then 4. the final agreement: the most negative status of any rank */
    r0 = MPI_Wtime();
    ringattn__mpi_ring(&R, &io, &M, &D, &ms, F);
    ms.ring_s = MPI_Wtime() - r0 - ms.setup_s;
    if ((st = ringattn__mpi_agree_final(&c, &M, F)) != RINGATTN_OK) goto done;

    if (pass == 1 && (st = ringattn__mpi_option_grads(&c, &M, &P, &io, dbias, dsinks)) != RINGATTN_OK) goto done;

    /* every rank finished every step: now, and only now, the outputs */
    ringattn__mpi_setup_finish(&R, &io, M.rank, 1);
    if (dbias) ringattn__dbias_reduce(&P, dbias, c.dbias);
    if (dsinks) memcpy(c.dsinks, dsinks, sizeof(double) * (size_t)P.h);
    if (c.stats) ringattn__fill_stats(&R, &plan, c.stats);
    if (opt.stats) ringattn__mpi_report(&R, &M, &plan, t0, &ms, opt.stats);
done:
    if (dbias) RINGATTN_FREE(dbias, c.alloc_user);
    if (dsinks) RINGATTN_FREE(dsinks, c.alloc_user);
    ringattn__mpi_free(&R, &M, c.alloc_user);
    ringattn__mpi_leave(&M);
    return st;
}

static int ringattn__mpi_forward(const ringattn_config *cfg, const ringattn_mpi_options *opt,
                                 const ringattn__mpi_fault *F, MPI_Comm comm, const ringattn_tensor *q,
                                 const ringattn_tensor *k, const ringattn_tensor *v, ringattn_tensor *out,
                                 ringattn_tensor *lse)
{
    const ringattn_tensor *t[9];
    ringattn__io io;
    t[0] = q; t[1] = k; t[2] = v; t[3] = out; t[4] = lse; t[5] = t[6] = t[7] = t[8] = NULL;
    memset(&io, 0, sizeof io);
    io.q = q; io.k = k; io.v = v; io.o = out; io.l = lse; io.ml = cfg ? cfg->max_logit : NULL;
    return ringattn__mpi_call(cfg, opt, F, comm, 0, t, &io);
}

RINGATTN_API int ringattn_mpi_forward_ex(const ringattn_config *cfg, const ringattn_mpi_options *opt,
                                         MPI_Comm comm, const ringattn_tensor *q, const ringattn_tensor *k,
                                         const ringattn_tensor *v, ringattn_tensor *out, ringattn_tensor *lse)
{
    return ringattn__mpi_forward(cfg, opt, NULL, comm, q, k, v, out, lse);
}

static int ringattn__mpi_backward(const ringattn_config *cfg, const ringattn_mpi_options *opt,
                                  const ringattn__mpi_fault *F, MPI_Comm comm, const ringattn_tensor *q,
                                  const ringattn_tensor *k, const ringattn_tensor *v, const ringattn_tensor *out,
                                  const ringattn_tensor *lse, const ringattn_tensor *dout,
                                  ringattn_tensor *dq, ringattn_tensor *dk, ringattn_tensor *dv)
{
    const ringattn_tensor *t[9];
    ringattn__io io;
    t[0] = q; t[1] = k; t[2] = v; t[3] = out; t[4] = lse; t[5] = dout; t[6] = dq; t[7] = dk; t[8] = dv;
    memset(&io, 0, sizeof io);
    io.q = q; io.k = k; io.v = v; io.out = out; io.lse = lse; io.dout = dout;
    io.dq = dq; io.dk = dk; io.dv = dv;
    return ringattn__mpi_call(cfg, opt, F, comm, 1, t, &io);
}

RINGATTN_API int ringattn_mpi_backward_ex(const ringattn_config *cfg, const ringattn_mpi_options *opt,
                                          MPI_Comm comm, const ringattn_tensor *q, const ringattn_tensor *k,
                                          const ringattn_tensor *v, const ringattn_tensor *out,
                                          const ringattn_tensor *lse, const ringattn_tensor *dout,
                                          ringattn_tensor *dq, ringattn_tensor *dk, ringattn_tensor *dv)
{
    return ringattn__mpi_backward(cfg, opt, NULL, comm, q, k, v, out, lse, dout, dq, dk, dv);
}

#ifdef RINGATTN_MPI_TESTING
static const ringattn__mpi_fault *ringattn__mpi_fault_of(const ringattn_mpi_fault_plan *f, ringattn__mpi_fault *F)
{
    if (!f || f->fault == RINGATTN_MPI_FAULT_NONE) return NULL;
    F->kind = (int)f->fault; F->rank = f->rank; F->step = f->step;
    return F;
}

RINGATTN_API int ringattn_mpi_forward_faulty(const ringattn_config *cfg, const ringattn_mpi_options *opt,
                                             const ringattn_mpi_fault_plan *fault, MPI_Comm comm,
                                             const ringattn_tensor *q, const ringattn_tensor *k,
                                             const ringattn_tensor *v, ringattn_tensor *out, ringattn_tensor *lse)
{
    ringattn__mpi_fault F;
    return ringattn__mpi_forward(cfg, opt, ringattn__mpi_fault_of(fault, &F), comm, q, k, v, out, lse);
}

RINGATTN_API int ringattn_mpi_backward_faulty(const ringattn_config *cfg, const ringattn_mpi_options *opt,
                                              const ringattn_mpi_fault_plan *fault, MPI_Comm comm,
                                              const ringattn_tensor *q, const ringattn_tensor *k,
                                              const ringattn_tensor *v, const ringattn_tensor *out,
                                              const ringattn_tensor *lse, const ringattn_tensor *dout,
                                              ringattn_tensor *dq, ringattn_tensor *dk, ringattn_tensor *dv)
{
    ringattn__mpi_fault F;
    return ringattn__mpi_backward(cfg, opt, ringattn__mpi_fault_of(fault, &F), comm, q, k, v, out, lse, dout,
                                  dq, dk, dv);
}
#endif

RINGATTN_API int ringattn_mpi_forward(const ringattn_config *cfg, MPI_Comm comm,
                                      const ringattn_tensor *q, const ringattn_tensor *k,
                                      const ringattn_tensor *v, ringattn_tensor *out, ringattn_tensor *lse)
{
    return ringattn_mpi_forward_ex(cfg, NULL, comm, q, k, v, out, lse);
}

RINGATTN_API int ringattn_mpi_backward(const ringattn_config *cfg, MPI_Comm comm,
                                       const ringattn_tensor *q, const ringattn_tensor *k,
                                       const ringattn_tensor *v, const ringattn_tensor *out,
                                       const ringattn_tensor *lse, const ringattn_tensor *dout,
                                       ringattn_tensor *dq, ringattn_tensor *dk, ringattn_tensor *dv)
{
    return ringattn_mpi_backward_ex(cfg, NULL, comm, q, k, v, out, lse, dout, dq, dk, dv);
}

#ifdef __cplusplus
}
#endif
#endif /* RINGATTN_MPI_IMPLEMENTATION */

/* Version history
     0.1  first version: forward and backward, dense and dilated, every partition and option
          of ringattn.h; agreement up front, bounded waits, in-band error messages,
          dK|dV in slices sent on as soon as they are complete.
   LICENSE: MIT, as ringattn.h. */
