/* test_cuda.cu - ringattn_cuda.h against the CPU reference (ringattn.h).

   Build by hand (from the repository root):
     nvcc -O2 -I. -Itests -gencode arch=compute_90,code=sm_90 \
          -gencode arch=compute_80,code=compute_80 tests/test_cuda.cu -o test_cuda

   Three parts, one verdict (exit 0 pass, 1 fail, 77 skipped = no GPU and the host parts passed):
     1. emulated: the whole grid below through ringattn_cuda__forward / __backward with
        emulate = 1: the same kernels (block programs) and the same ring, run on the host over
        host memory, also with forced odd tile sizes. No GPU needed: this is what checks the
        kernels' index arithmetic on a machine without one.
     2. GPU: the device build of ringattn.h's conversions against the host build (every f16
        and bf16 pattern loaded; ties, edges and 300,000 doubles stored), then the same grid
        through ringattn_cuda_forward / ringattn_cuda_backward on device memory. Without a
        device: ringattn_cuda_forward must return RINGATTN_ECUDA with a message, and the
        test exits 77.
   The reference of every case is ringattn_forward / ringattn_backward in f64 (compute and
   storage) on the same (storage-rounded) inputs; the tolerance is the policy of docs/golden.md
   (tests/test_util.h): f64 within 1e-12 of the output scale, f32 within the f32 bound, plus
   one rounding to the storage dtype (2^-24, 2^-11, 2^-8 relative for f32, f16, bf16).

   Grid (forward and backward for every case): ring sizes 1..8 x causal modes x {f64, f32};
   lengths 1..1000; head dims 1..128 and dv != d; nq != nk both ways and both causal
   alignments (empty rows included); batch/heads, GQA, MQA; [b,h,n,d] and negative-stride
   views; f16 / bf16 / mixed storage; windows; dilated attention in both mixes (rates > 1,
   h not divisible by G, GQA); zigzag and striped partitions (ring sizes 1..8, both causal
   alignments, GQA, f16 / bf16); softcap; varlen cu_seqlens (per-sequence alignment, empty
   sequences, with partitions, windows, softcap); dilated with zigzag; the score options
   (sinks / dsinks, ALiBi per head and per batch, bias / dbias in every broadcast shape, dense
   mask, sorted and unsorted document ids, max_logit), alone and mixed over ring sizes,
   partitions, GQA, softcap, windows, varlen, storage and odd tiles. Stats: blocks computed
   and skipped, hand-offs and planned bytes equal the CPU's, forward and backward (a dense
   mask or unsorted document ids: at least the CPU's computed blocks, the same total). Also:
   refusals are the CPU's (status and sentence), the option callbacks mask_fn /
   mask_block_fn are refused by CUDA, and host pointers are refused.

   KV cache (both parts, emulated and GPU): ringattn_cuda_forward_kvcache against
   ringattn_forward_kvcache in f64 -- contiguous and paged caches (pages of 1, 3, 16 keys,
   shuffled blocks, unused slots NaN and unused table entries -1), new keys or none, empty
   caches, nq = 1 and nq > L, 1 .. 200 splits and split_size, the partials, update_cache (the
   caches after the call equal the CPU's bit for bit), sinks, ALiBi per head and per batch,
   windows, softcap, GQA / MQA, causal modes, f64 / f32 compute with f32 / f16 / bf16 storage,
   negative strides, odd tiles, the precision emulation; block counts equal the CPU's; bad
   calls refused with the CPU's status and sentence and nothing written; on the GPU a host
   cache_seqlens is refused. */
#define RINGATTN_IMPLEMENTATION
#define RINGATTN_CUDA_IMPLEMENTATION
#include "ringattn_cuda.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MODE_EMULATE = 0, MODE_GPU = 1 };

/* ---------------------------------------------------------------- 1. conversions */
/* The kernels use ringattn.h's own conversions (RINGATTN__HD): one copy, so on the host there
   is nothing to compare. On a GPU the device build of that copy (device ldexp, frexp, rint)
   must agree with the host build bit for bit: every f16 and bf16 pattern loaded, and each
   value, its midpoints with its neighbour (ties to even) and 300,000 random doubles stored. */

static int same_double(double a, double b)
{
    if (a != a || b != b) return (a != a) && (b != b);
    return memcmp(&a, &b, sizeof a) == 0;
}

__global__ void conv_kernel(double *loads, uint16_t *stores, const double *xs, int nx)
{
    int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (i < 2 * 65536) loads[i] = ringattn__small_float_to_double((uint16_t)(i & 0xffff), (i >> 16) ? 7 : 10, (i >> 16) ? 8 : 5);
    if (i < nx) {
        stores[2 * i] = ringattn__double_to_small_float(xs[i], 10, 5);
        stores[2 * i + 1] = ringattn__double_to_small_float(xs[i], 7, 8);
    }
}

static void check_conversions_gpu(int *failures)
{
    int nx = 0, bad = 0, kind, i;
    uint32_t u;
    test_rng r = rng_seed(42);
    int cap = 2 * 65536 * 4 + 300000 + 8;
    double *xs = (double *)malloc(sizeof(double) * (size_t)cap), *loads = (double *)malloc(sizeof(double) * 2 * 65536);
    uint16_t *stores = (uint16_t *)malloc(sizeof(uint16_t) * 2 * (size_t)cap);
    double *dxs = NULL, *dl = NULL; uint16_t *ds = NULL;
    static const double sp[6] = { 0.0, -0.0, INFINITY, -INFINITY, 1e300, -1e300 };
    for (kind = 0; kind < 2; kind++) {
        int mant = kind ? 7 : 10, expb = kind ? 8 : 5;
        for (u = 0; u < 65536; u++) {
            double a = ringattn__small_float_to_double((uint16_t)u, mant, expb);
            double n1 = ringattn__small_float_to_double((uint16_t)(u + 1), mant, expb), m;
            if (a != a || isinf(a) || n1 != n1 || isinf(n1)) continue;
            m = (a + n1) / 2;
            xs[nx++] = a; xs[nx++] = m; xs[nx++] = nextafter(m, INFINITY); xs[nx++] = nextafter(m, -INFINITY);
        }
    }
    for (u = 0; u < 300000; u++) xs[nx++] = (rng_uniform(&r) - 0.5) * ldexp(1.0, (int)(rng_next(&r) % 80) - 40);
    for (i = 0; i < 6; i++) xs[nx++] = sp[i];
    xs[nx++] = NAN;
    if (cudaMalloc(&dxs, sizeof(double) * (size_t)nx) != cudaSuccess || cudaMalloc(&dl, sizeof(double) * 2 * 65536) != cudaSuccess ||
        cudaMalloc(&ds, sizeof(uint16_t) * 2 * (size_t)nx) != cudaSuccess ||
        cudaMemcpy(dxs, xs, sizeof(double) * (size_t)nx, cudaMemcpyHostToDevice) != cudaSuccess) bad = -1;
    if (bad == 0) {
        int n = nx > 2 * 65536 ? nx : 2 * 65536;
        conv_kernel<<<(n + 255) / 256, 256>>>(dl, ds, dxs, nx);
        if (cudaDeviceSynchronize() != cudaSuccess ||
            cudaMemcpy(loads, dl, sizeof(double) * 2 * 65536, cudaMemcpyDeviceToHost) != cudaSuccess ||
            cudaMemcpy(stores, ds, sizeof(uint16_t) * 2 * (size_t)nx, cudaMemcpyDeviceToHost) != cudaSuccess) bad = -1;
    }
    if (bad == 0) {
        for (i = 0; i < 2 * 65536; i++) {
            double h = ringattn__small_float_to_double((uint16_t)(i & 0xffff), (i >> 16) ? 7 : 10, (i >> 16) ? 8 : 5);
            if (!same_double(h, loads[i]) && bad++ < 5) printf("  load 0x%05x: host %.17g device %.17g\n", i, h, loads[i]);
        }
        for (i = 0; i < nx; i++)
            for (kind = 0; kind < 2; kind++) {
                uint16_t h = ringattn__double_to_small_float(xs[i], kind ? 7 : 10, kind ? 8 : 5);
                if (h != stores[2 * i + kind] && bad++ < 5)
                    printf("  store %.17g as %s: host 0x%04x device 0x%04x\n", xs[i], kind ? "bf16" : "f16", h, stores[2 * i + kind]);
            }
    }
    cudaFree(dxs); cudaFree(dl); cudaFree(ds); free(xs); free(loads); free(stores);
    CHECK(bad == 0, "conversions: %d differences between the host and device builds of ringattn.h's (-1: CUDA error)", bad);
    printf("conversions  %s on the device (2 x 65536 loads, %d x 2 stores)\n", bad ? "FAIL" : "ok", nx);
}

/* ---------------------------------------------------------------- buffers */

enum { LAYOUT_BNHD, LAYOUT_BHND, LAYOUT_REVERSED };

typedef struct {
    void *base;              /* host buffer                                    */
    void *dev;               /* GPU mode: its device copy                      */
    int64_t count;
    ringattn_tensor t;       /* the view on the host buffer                    */
} dbuf;                      /* a host tensor and, in GPU mode, its device copy */

static size_t dsize(ringattn_dtype dt) { return ringattn__dtype_size(dt); }

static int tbuf_make(dbuf *b, ringattn_dtype dt, int layout, int64_t s0, int64_t s1, int64_t s2, int64_t s3)
{
    ringattn_tensor *t = &b->t;
    memset(b, 0, sizeof *b);
    b->count = s0 * s1 * s2 * s3;
    b->base = calloc((size_t)b->count, dsize(dt));
    if (!b->base) return -1;
    t->dtype = dt;
    t->shape[0] = s0; t->shape[1] = s1; t->shape[2] = s2; t->shape[3] = s3;
    t->stride[0] = s1 * s2 * s3; t->stride[1] = s2 * s3; t->stride[2] = s3; t->stride[3] = 1;
    t->data = b->base;
    if (layout == LAYOUT_BHND) { t->stride[1] = s3; t->stride[2] = s1 * s3; }
    if (layout == LAYOUT_REVERSED) {
        t->stride[1] = -s2 * s3;
        t->data = (char *)b->base + dsize(dt) * (size_t)((s1 - 1) * s2 * s3);
    }
    return 0;
}

static void tbuf_free(dbuf *b)
{
    free(b->base);
    if (b->dev) cudaFree(b->dev);
    b->base = b->dev = NULL;
}

/* logical contiguous f64 <-> view (ringattn.h's own conversions) */
static void tbuf_write(dbuf *b, const double *x)
{
    const ringattn_tensor *t = &b->t;
    int64_t i0, i1, i2, i3, n = 0;
    for (i0 = 0; i0 < t->shape[0]; i0++) for (i1 = 0; i1 < t->shape[1]; i1++)
    for (i2 = 0; i2 < t->shape[2]; i2++) for (i3 = 0; i3 < t->shape[3]; i3++, n++)
        ringattn__store(t->data, t->dtype, ringattn__index(t, i0, i1, i2, i3), x[n]);
}

static void tbuf_read(const dbuf *b, double *x)
{
    const ringattn_tensor *t = &b->t;
    int64_t i0, i1, i2, i3, n = 0;
    for (i0 = 0; i0 < t->shape[0]; i0++) for (i1 = 0; i1 < t->shape[1]; i1++)
    for (i2 = 0; i2 < t->shape[2]; i2++) for (i3 = 0; i3 < t->shape[3]; i3++, n++)
        x[n] = ringattn__load(t->data, t->dtype, ringattn__index(t, i0, i1, i2, i3));
}

static void tbuf_sentinel(dbuf *b)
{
    int64_t i;
    for (i = 0; i < b->count; i++) ringattn__store(b->base, b->t.dtype, i, TEST_SENTINEL);
}

/* GPU mode: the device copy and a view on it at the same offset */
static int tbuf_upload(dbuf *b, ringattn_tensor *dview)
{
    size_t bytes = (size_t)b->count * dsize(b->t.dtype);
    if (!b->dev && cudaMalloc(&b->dev, bytes) != cudaSuccess) return -1;
    if (cudaMemcpy(b->dev, b->base, bytes, cudaMemcpyHostToDevice) != cudaSuccess) return -1;
    *dview = b->t;
    dview->data = (char *)b->dev + ((char *)b->t.data - (char *)b->base);
    return 0;
}

static int tbuf_download(dbuf *b)
{
    return cudaMemcpy(b->base, b->dev, (size_t)b->count * dsize(b->t.dtype), cudaMemcpyDeviceToHost) == cudaSuccess ? 0 : -1;
}

/* ---------------------------------------------------------------- one case */

#define MAXG 6
#define MAXS 8

typedef struct {
    int64_t b, nq, nk, h, hk, d, dv;
    int causal, p, layout, wl, wr;
    ringattn_dtype storage, compute;
    double scale;
    int G, mix;
    int64_t seg[MAXG], rate[MAXG];
    int tile;                 /* emulation: forced tile (0 = as the GPU would choose) */
    int part;                 /* ringattn_partition                                   */
    double softcap;
    int nseq;                 /* varlen: packed sequences (batch 1), 0 = off           */
    int64_t cuq[MAXS + 1], cuk[MAXS + 1];
    int round_p, round_s, round_state;   /* precision emulation, to bf16 */
    /* score options (0 = off): sinks (1: one per q head, head 1's -inf, with dsinks), ALiBi
       (1: a slope per q head, 2: per batch and head), bias with dbias (1: [b][h], 2: [1][h],
       3: [b][1], 4: [1][1]; 5: [b][h] with -inf entries), dense mask (1: [b][h], 2: [1][1],
       3: [1][h]; a quarter of the pairs hidden and some rows wholly), document ids (n > 0:
       n contiguous documents, n < 0: -n documents at random), max_logit */
    int sinks, alibi, bias, mask, docs, max_logit;
    uint64_t seed;
} ccase;

static ccase base_case(int64_t n, int p, ringattn_dtype dt)
{
    ccase c;
    memset(&c, 0, sizeof c);
    c.b = 1; c.nq = n; c.nk = n; c.h = 2; c.hk = 2; c.d = 16; c.dv = 16;
    c.p = p; c.layout = LAYOUT_BNHD; c.wl = -1; c.wr = -1;
    c.storage = dt; c.compute = dt; c.seed = 1;
    return c;
}

static void describe(const ccase *c)
{
    printf("    case b=%lld nq=%lld nk=%lld h=%lld hk=%lld d=%lld dv=%lld causal=%d p=%d layout=%d window=(%d,%d) "
           "storage=%d compute=%d G=%d mix=%d tile=%d partition=%d softcap=%g nseq=%d sinks=%d alibi=%d bias=%d "
           "mask=%d docs=%d max_logit=%d seed=%llu\n", (long long)c->b,
           (long long)c->nq, (long long)c->nk, (long long)c->h, (long long)c->hk, (long long)c->d, (long long)c->dv,
           c->causal, c->p, c->layout, c->wl, c->wr, (int)c->storage, (int)c->compute, c->G, c->mix, c->tile, c->part,
           c->softcap, c->nseq, c->sinks, c->alibi, c->bias, c->mask, c->docs, c->max_logit, (unsigned long long)c->seed);
}

/* worst errors against the CPU, by kind: [0] f64 compute and f64 storage, [1] f64 compute with
   f32 / f16 / bf16 storage (one storage rounding), [2] f32 compute and storage, [3] f32
   compute with f16 / bf16 storage. abs: max
   |got - ref|; rel: that over max |ref| of the tensor (tensors whose max |ref| is below
   1e-10 left out); frac: the worst fraction of the tolerance used. */
typedef struct { double abs[4], rel[4], frac[4]; int n[4]; int cases, failed; } tally;

static ringattn_config case_config(const ccase *c, ringattn_dtype compute)
{
    ringattn_config cfg = ringattn_default_config();
    cfg.causal = c->causal; cfg.ring_size = c->p; cfg.compute = compute; cfg.scale = c->scale;
    cfg.window_left = c->wl; cfg.window_right = c->wr;
    if (c->G > 0) {
        cfg.num_groups = c->G; cfg.segment_lengths = c->seg; cfg.dilation_rates = c->rate;
        cfg.mix = (ringattn_mix)c->mix;
    }
    cfg.partition = (ringattn_partition)c->part;
    cfg.softcap = c->softcap;
    if (c->nseq > 0) { cfg.num_seqs = c->nseq; cfg.cu_seqlens_q = c->cuq; cfg.cu_seqlens_k = c->cuk; }
    cfg.round_p = c->round_p; cfg.p_dtype = RINGATTN_BF16; cfg.round_s = c->round_s;
    cfg.round_state = c->round_state; cfg.state_dtype = RINGATTN_BF16;
    return cfg;
}

/* absolute rounding of one store into `dt` below its normal range: half the f16 subnormal
   quantum 2^-24 (bf16 and f32 subnormals are far below every tolerance here) */
static double store_abs(ringattn_dtype dt)
{
    return dt == RINGATTN_F16 ? ldexp(1.0, -25) : 0.0;
}

/* relative rounding of one store into `dt` */
static double store_u(ringattn_dtype dt)
{
    return dt == RINGATTN_F64 ? 0.0 : dt == RINGATTN_F32 ? TEST_U32 : dt == RINGATTN_F16 ? 1.0 / 2048 : 1.0 / 256;
}

static void note(tally *g, int kind, test_cmp r, double scale)
{
    g->n[kind]++;
    if (r.max_abs > g->abs[kind]) g->abs[kind] = r.max_abs;
    /* rel: against the tensor's scale; a tensor that is zero up to rounding (dq of a row
       with one key, say) has no scale to be relative to */
    if (scale > 1e-10 && r.max_abs / scale > g->rel[kind]) g->rel[kind] = r.max_abs / scale;
    if (r.max_frac > g->frac[kind]) g->frac[kind] = r.max_frac;
}

static void tally_add(tally *to, const tally *t)
{
    int j;
    for (j = 0; j < 4; j++) {
        to->n[j] += t->n[j];
        if (t->abs[j] > to->abs[j]) to->abs[j] = t->abs[j];
        if (t->rel[j] > to->rel[j]) to->rel[j] = t->rel[j];
        if (t->frac[j] > to->frac[j]) to->frac[j] = t->frac[j];
    }
    to->cases += t->cases; to->failed += t->failed;
}

static void print_tally(const char *what, const tally *g)
{
    static const char *const kind[4] = { "f64", "f64, f32/f16/bf16 io", "f32", "f32, f16/bf16 io" };
    int j;
    printf("%-22s %3d cases, %d failed\n", what, g->cases, g->failed);
    for (j = 0; j < 4; j++)
        if (g->n[j])
            printf("    %-20s max abs %.2e  max rel %.2e  (%.2g of the tolerance)\n", kind[j], g->abs[j], g->rel[j], g->frac[j]);
}

static int64_t dims4(int64_t *d, int64_t a, int64_t b, int64_t c, int64_t e)
{
    d[0] = a; d[1] = b; d[2] = c; d[3] = e;
    return a * b * c * e;
}

/* ---------------------------------------------------------------- score options */

#define MAXH 16

/* A case's score options: the config's host arrays, and its views in the storage dtype (for
   the CUDA path; bias, dbias, max_logit) and in f64 (for the reference), the same values. */
typedef struct {
    double sinks[MAXH], dsinks_ref[MAXH], dsinks_got[MAXH], slopes[4 * MAXH];
    int64_t *docq, *dock;
    dbuf B, rB, DB, rDB, M, ML, rML;
    int64_t bd[4], md[4], ld[4];
    double tmax;                 /* the largest |bias| + |ALiBi term|: scores move by that much */
} opts;

static void opts_make(const ccase *c, opts *o)
{
    test_rng r = rng_seed(c->seed * 7 + 5);
    int64_t i, n;
    memset(o, 0, sizeof *o);
    dims4(o->ld, c->b, c->h, c->nq, 1);
    if (c->sinks)
        for (i = 0; i < c->h; i++) o->sinks[i] = (i == 1) ? -INFINITY : 3.0 * (rng_uniform(&r) - 0.3);
    if (c->alibi) {
        for (i = 0; i < (c->alibi == 2 ? c->b * c->h : c->h); i++)
            o->slopes[i] = pow(2.0, -8.0 * (double)(i % c->h + 1) / (double)c->h) * (1.0 + 0.25 * (double)(i / c->h));
        for (i = 0; i < (c->alibi == 2 ? c->b * c->h : c->h); i++) {
            double t = o->slopes[i] * (double)(c->nq + c->nk);
            if (t > o->tmax) o->tmax = t;
        }
    }
    if (c->bias) {
        static const int bshape[6][2] = { { 0, 0 }, { 1, 1 }, { 0, 1 }, { 1, 0 }, { 0, 0 }, { 1, 1 } };
        double *x, bm = 0;
        n = dims4(o->bd, bshape[c->bias][0] ? c->b : 1, bshape[c->bias][1] ? c->h : 1, c->nq, c->nk);
        x = (double *)malloc(sizeof(double) * (size_t)n);
        fill_normal(x, n, c->seed * 7 + 6);
        for (i = 0; i < n; i++) {
            if (c->bias == 5 && rng_next(&r) % 9 == 0) x[i] = -INFINITY;
            if (isfinite(x[i]) && fabs(x[i]) > bm) bm = fabs(x[i]);
        }
        tbuf_make(&o->B, c->storage, c->layout, o->bd[0], o->bd[1], o->bd[2], o->bd[3]);
        tbuf_make(&o->rB, RINGATTN_F64, LAYOUT_BNHD, o->bd[0], o->bd[1], o->bd[2], o->bd[3]);
        tbuf_make(&o->DB, c->storage, c->layout, o->bd[0], o->bd[1], o->bd[2], o->bd[3]);
        tbuf_make(&o->rDB, RINGATTN_F64, LAYOUT_BNHD, o->bd[0], o->bd[1], o->bd[2], o->bd[3]);
        tbuf_write(&o->B, x); tbuf_read(&o->B, x); tbuf_write(&o->rB, x);   /* the storage grid's values */
        o->tmax += bm;
        free(x);
    }
    if (c->mask) {
        static const int mshape[4][2] = { { 0, 0 }, { 1, 1 }, { 0, 0 }, { 0, 1 } };
        unsigned char *v;
        n = dims4(o->md, mshape[c->mask][0] ? c->b : 1, mshape[c->mask][1] ? c->h : 1, c->nq, c->nk);
        tbuf_make(&o->M, RINGATTN_BOOL, LAYOUT_BNHD, o->md[0], o->md[1], o->md[2], o->md[3]);
        v = (unsigned char *)o->M.base;
        for (i = 0; i < n; i++) {
            int64_t row = i / c->nk;
            v[i] = (unsigned char)(row % 11 == 4 ? 0 : (rng_next(&r) % 4 != 0) * (1 + (int)(rng_next(&r) % 3)));
        }
    }
    if (c->docs) {
        int64_t nd = c->docs > 0 ? c->docs : -c->docs;
        o->docq = (int64_t *)malloc(sizeof(int64_t) * (size_t)c->nq);
        o->dock = (int64_t *)malloc(sizeof(int64_t) * (size_t)c->nk);
        for (i = 0; i < c->nq; i++) o->docq[i] = c->docs > 0 ? i * nd / c->nq : (int64_t)(rng_next(&r) % (uint64_t)nd);
        for (i = 0; i < c->nk; i++) o->dock[i] = c->docs > 0 ? i * nd / c->nk : (int64_t)(rng_next(&r) % (uint64_t)nd);
    }
    if (c->max_logit) {
        tbuf_make(&o->ML, c->storage, c->layout, c->b, c->h, c->nq, 1);
        tbuf_make(&o->rML, RINGATTN_F64, LAYOUT_BNHD, c->b, c->h, c->nq, 1);
    }
}

static void opts_free(opts *o)
{
    tbuf_free(&o->B); tbuf_free(&o->rB); tbuf_free(&o->DB); tbuf_free(&o->rDB); tbuf_free(&o->M);
    tbuf_free(&o->ML); tbuf_free(&o->rML);
    free(o->docq); free(o->dock);
}

/* the options into a config: ref = 1 the f64 views and dsinks_ref, else the storage views
   (dev: their device copies, made here, GPU mode) and dsinks_got; views[] keeps the structs */
static int opts_apply(const ccase *c, opts *o, ringattn_config *cfg, int ref, int dev, ringattn_tensor views[4])
{
    if (c->sinks) { cfg->sinks = o->sinks; cfg->dsinks = ref ? o->dsinks_ref : o->dsinks_got; }
    if (c->alibi) { cfg->alibi_slopes = o->slopes; cfg->alibi_size = (int)(c->alibi == 2 ? c->b * c->h : c->h); }
    if (c->docs) { cfg->document_ids_q = o->docq; cfg->document_ids_k = o->dock; }
    if (c->bias) {
        views[0] = ref ? o->rB.t : o->B.t; views[1] = ref ? o->rDB.t : o->DB.t;
        if (dev && (tbuf_upload(&o->B, &views[0]) || tbuf_upload(&o->DB, &views[1]))) return -1;
        cfg->bias = &views[0]; cfg->dbias = &views[1];
    }
    if (c->mask) {
        views[2] = o->M.t;
        if (dev && tbuf_upload(&o->M, &views[2])) return -1;
        cfg->mask = &views[2];
    }
    if (c->max_logit) {
        views[3] = ref ? o->rML.t : o->ML.t;
        if (dev && tbuf_upload(&o->ML, &views[3])) return -1;
        cfg->max_logit = &views[3];
    }
    return 0;
}

/* forward and backward of one case: reference on the CPU in f64, then the CUDA path */
static void check_case(const ccase *c, int mode, tally *g, int *failures)
{
    int64_t od[4], ld[4], qd[4], kd[4], vd[4];
    int64_t nq_ = dims4(qd, c->b, c->nq, c->h, c->d), nk_ = dims4(kd, c->b, c->nk, c->hk, c->d);
    int64_t nv_ = dims4(vd, c->b, c->nk, c->hk, c->dv), no_ = dims4(od, c->b, c->nq, c->h, c->dv);
    int64_t nl_ = dims4(ld, c->b, c->h, c->nq, 1);
    int before = *failures, f64 = (c->compute == RINGATTN_F64), st, i;
    int kind = (f64 ? 0 : 2) + (c->storage != c->compute);
    double *x[12];
    double *q, *k, *v, *go, *ro, *gl, *rl, *dO, *gdq, *rdq, *gdk, *rdk;
    double *gdv, *rdv;
    dbuf Q, K, V, O, L, G, DQ, DK, DV, rQ, rK, rV, rO, rL, rG, rDQ, rDK, rDV;
    ringattn_config cfg;
    ringattn_stats cst, gst, cbst, gbst;
    double vmax, smax, scale = c->scale != 0 ? c->scale : 1.0 / sqrt((double)c->d), su = store_u(c->storage);
    test_tol to, tl, tg;
    test_cmp r;
    opts OP;
    ringattn_tensor rviews[4];
    int pairmask = c->mask || c->docs < 0;   /* asked pair by pair: the CPU also skips blocks they empty */
    if (c->p > c->nq || c->p > c->nk) return;
    if (c->part == RINGATTN_ZIGZAG && (2 * c->p > c->nq || 2 * c->p > c->nk)) return;
    memset(x, 0, sizeof x);
    x[0] = q = (double *)malloc(sizeof(double) * (size_t)nq_);
    x[1] = k = (double *)malloc(sizeof(double) * (size_t)nk_);
    x[2] = v = (double *)malloc(sizeof(double) * (size_t)nv_);
    x[3] = go = (double *)malloc(sizeof(double) * (size_t)no_);
    x[4] = ro = (double *)malloc(sizeof(double) * (size_t)no_);
    x[5] = gl = (double *)malloc(sizeof(double) * (size_t)nl_);
    x[6] = rl = (double *)malloc(sizeof(double) * (size_t)nl_);
    x[7] = dO = (double *)malloc(sizeof(double) * (size_t)no_);
    x[8] = gdq = (double *)malloc(sizeof(double) * (size_t)nq_ * 2);
    rdq = gdq + nq_;
    x[9] = gdk = (double *)malloc(sizeof(double) * (size_t)nk_ * 2);
    rdk = gdk + nk_;
    x[10] = gdv = (double *)malloc(sizeof(double) * (size_t)nv_ * 2);
    rdv = gdv + nv_;
    tbuf_make(&Q, c->storage, c->layout, c->b, c->nq, c->h, c->d);
    tbuf_make(&K, c->storage, c->layout, c->b, c->nk, c->hk, c->d);
    tbuf_make(&V, c->storage, c->layout, c->b, c->nk, c->hk, c->dv);
    tbuf_make(&O, c->storage, c->layout, c->b, c->nq, c->h, c->dv);
    tbuf_make(&L, c->storage, c->layout, c->b, c->h, c->nq, 1);
    tbuf_make(&G, c->storage, c->layout, c->b, c->nq, c->h, c->dv);
    tbuf_make(&DQ, c->storage, c->layout, c->b, c->nq, c->h, c->d);
    tbuf_make(&DK, c->storage, c->layout, c->b, c->nk, c->hk, c->d);
    tbuf_make(&DV, c->storage, c->layout, c->b, c->nk, c->hk, c->dv);
    tbuf_make(&rQ, RINGATTN_F64, LAYOUT_BNHD, c->b, c->nq, c->h, c->d);
    tbuf_make(&rK, RINGATTN_F64, LAYOUT_BNHD, c->b, c->nk, c->hk, c->d);
    tbuf_make(&rV, RINGATTN_F64, LAYOUT_BNHD, c->b, c->nk, c->hk, c->dv);
    tbuf_make(&rO, RINGATTN_F64, LAYOUT_BNHD, c->b, c->nq, c->h, c->dv);
    tbuf_make(&rL, RINGATTN_F64, LAYOUT_BNHD, c->b, c->h, c->nq, 1);
    tbuf_make(&rG, RINGATTN_F64, LAYOUT_BNHD, c->b, c->nq, c->h, c->dv);
    tbuf_make(&rDQ, RINGATTN_F64, LAYOUT_BNHD, c->b, c->nq, c->h, c->d);
    tbuf_make(&rDK, RINGATTN_F64, LAYOUT_BNHD, c->b, c->nk, c->hk, c->d);
    tbuf_make(&rDV, RINGATTN_F64, LAYOUT_BNHD, c->b, c->nk, c->hk, c->dv);

    /* inputs on the storage grid, so the reference sees what the kernels see */
    fill_normal(q, nq_, c->seed * 5 + 0); fill_normal(k, nk_, c->seed * 5 + 1);
    fill_normal(v, nv_, c->seed * 5 + 2); fill_normal(dO, no_, c->seed * 5 + 3);
    tbuf_write(&Q, q); tbuf_read(&Q, q); tbuf_write(&K, k); tbuf_read(&K, k);
    tbuf_write(&V, v); tbuf_read(&V, v); tbuf_write(&G, dO); tbuf_read(&G, dO);
    tbuf_write(&rQ, q); tbuf_write(&rK, k); tbuf_write(&rV, v); tbuf_write(&rG, dO);

    opts_make(c, &OP);

    /* reference: the CPU in f64; out and lse then become the backward's inputs */
    cfg = case_config(c, RINGATTN_F64);
    opts_apply(c, &OP, &cfg, 1, 0, rviews);
    cfg.stats = &cst;
    st = ringattn_forward(&cfg, &rQ.t, &rK.t, &rV.t, &rO.t, &rL.t);
    CHECK(st == RINGATTN_OK, "reference forward returned %d", st);
    tbuf_read(&rO, ro); tbuf_read(&rL, rl);
    tbuf_write(&O, ro); tbuf_write(&L, rl);          /* backward inputs, in storage */
    tbuf_read(&O, go); tbuf_write(&rO, go);          /* the reference backward sees the same */
    tbuf_read(&L, gl); tbuf_write(&rL, gl);
    cfg.stats = &cbst;                               /* the backward's, apart */
    st = ringattn_backward(&cfg, &rQ.t, &rK.t, &rV.t, &rO.t, &rL.t, &rG.t, &rDQ.t, &rDK.t, &rDV.t);
    CHECK(st == RINGATTN_OK, "reference backward returned %d", st);
    tbuf_read(&rDQ, rdq); tbuf_read(&rDK, rdk); tbuf_read(&rDV, rdv);

    /* the CUDA path: forward into fresh outputs */
    {
        dbuf O2, L2;
        ringattn_config gc = case_config(c, c->compute);
        char detail[256] = "";
        gc.stats = &gst; gc.error_detail = detail; gc.error_detail_size = sizeof detail;
        tbuf_make(&O2, c->storage, c->layout, c->b, c->nq, c->h, c->dv);
        tbuf_make(&L2, c->storage, c->layout, c->b, c->h, c->nq, 1);
        ringattn_tensor gviews[4];
        tbuf_sentinel(&O2); tbuf_sentinel(&L2);
        if (c->max_logit) tbuf_sentinel(&OP.ML);
        if (mode == MODE_EMULATE) {
            opts_apply(c, &OP, &gc, 0, 0, gviews);
            st = ringattn_cuda__forward(&gc, &Q.t, &K.t, &V.t, &O2.t, &L2.t, 1, c->tile);
        } else {
            ringattn_tensor dq_, dk_, dv_, do_, dl_;
            st = -100;
            if (!tbuf_upload(&Q, &dq_) && !tbuf_upload(&K, &dk_) && !tbuf_upload(&V, &dv_) &&
                !tbuf_upload(&O2, &do_) && !tbuf_upload(&L2, &dl_) && !opts_apply(c, &OP, &gc, 0, 1, gviews)) {
                st = ringattn_cuda_forward(&gc, &dq_, &dk_, &dv_, &do_, &dl_);
                if (st == RINGATTN_OK && (tbuf_download(&O2) || tbuf_download(&L2) ||
                                          (c->max_logit && tbuf_download(&OP.ML)))) st = -101;
            }
        }
        CHECK(st == RINGATTN_OK, "cuda forward returned %d (%s) %s", st, ringattn_strerror(st), detail);
        if (st == RINGATTN_OK) {
            tbuf_read(&O2, go); tbuf_read(&L2, gl);
            vmax = max_abs_f64(v, nv_);
            if (f64) { to = tol_f64_out(max_abs_f64(ro, no_), vmax); tl = tol_f64_lse(max_abs_finite_f64(rl, nl_)); }
            else {
                smax = tol_smax(q, k, c->b, c->nq, c->nk, c->h, c->hk, c->d, scale) + OP.tmax;
                to = tol_f32_out(smax, vmax, c->d, c->nk); tl = tol_f32_lse(smax, c->d, c->nk);
            }
            to.rel += su; tl.rel += su; to.abs += store_abs(c->storage);
            r = compare_report("out", go, ro, od, "bnhd", to); note(g, kind, r, max_abs_f64(ro, no_));
            CHECK(r.bad == 0, "forward out: %lld elements out of tolerance (worst %.3g x tol)", (long long)r.bad, r.max_frac);
            r = compare_report("lse", gl, rl, ld, "bhn.", tl); note(g, kind, r, max_abs_finite_f64(rl, nl_));
            CHECK(r.bad == 0, "forward lse: %lld elements out of tolerance (worst %.3g x tol)", (long long)r.bad, r.max_frac);
            if (c->max_logit) {   /* the row max of the final scores: an lse-like quantity */
                double *gm = (double *)malloc(sizeof(double) * (size_t)nl_), *rm = (double *)malloc(sizeof(double) * (size_t)nl_);
                test_tol tm = f64 ? tol_f64_lse(0) : tl;
                tbuf_read(&OP.ML, gm); tbuf_read(&OP.rML, rm);
                if (f64) tm = tol_f64_lse(max_abs_finite_f64(rm, nl_));
                tm.rel += su; tm.abs += store_abs(c->storage);
                r = compare_report("max_logit", gm, rm, ld, "bhn.", tm); note(g, kind, r, max_abs_finite_f64(rm, nl_));
                CHECK(r.bad == 0, "forward max_logit: %lld elements out of tolerance (worst %.3g x tol)", (long long)r.bad,
                      r.max_frac);
                free(gm); free(rm);
            }
            CHECK(gst.ring_size == c->p && gst.ring_steps == c->p, "stats: ring_size %d", gst.ring_size);
            CHECK(pairmask ? (gst.blocks_computed >= cst.blocks_computed &&
                              gst.blocks_computed + gst.blocks_skipped == cst.blocks_computed + cst.blocks_skipped)
                           : (gst.blocks_computed == cst.blocks_computed && gst.blocks_skipped == cst.blocks_skipped),
                  "stats: blocks computed/skipped %lld/%lld, the CPU %lld/%lld", (long long)gst.blocks_computed,
                  (long long)gst.blocks_skipped, (long long)cst.blocks_computed, (long long)cst.blocks_skipped);
            CHECK(gst.handoffs == cst.handoffs, "stats: handoffs %lld, CPU %lld", (long long)gst.handoffs, (long long)cst.handoffs);
            {   /* planned bytes: the CPU's plan of this very config (compute type included) */
                ringattn_plan_info pl;
                ringattn_shape sh;
                int pst;
                sh.batch = c->b; sh.seq_q = c->nq; sh.seq_k = c->nk; sh.heads_q = c->h; sh.heads_kv = c->hk;
                sh.dim_qk = c->d; sh.dim_v = c->dv;
                memset(&pl, 0, sizeof pl);
                pst = ringattn_plan(&gc, &sh, 0, &pl);
                CHECK(pst == RINGATTN_OK && gst.peak_bytes_per_member == gst.planned_bytes_per_member &&
                      gst.planned_bytes_per_member == pl.member_bytes &&
                      (!f64 || gst.planned_bytes_per_member == cst.planned_bytes_per_member),
                      "stats: peak %zu planned %zu CPU plan %zu (CPU f64 run %zu)", gst.peak_bytes_per_member,
                      gst.planned_bytes_per_member, pl.member_bytes, cst.planned_bytes_per_member);
            }
        }
        tbuf_free(&O2); tbuf_free(&L2);
    }

    /* the CUDA path: backward */
    {
        ringattn_config gc = case_config(c, c->compute);
        char detail[256] = "";
        gc.error_detail = detail; gc.error_detail_size = sizeof detail; gc.stats = &gbst;
        ringattn_tensor gviews[4];
        tbuf_sentinel(&DQ); tbuf_sentinel(&DK); tbuf_sentinel(&DV);
        if (c->bias) tbuf_sentinel(&OP.DB);
        for (i = 0; i < MAXH; i++) OP.dsinks_got[i] = TEST_SENTINEL;
        if (mode == MODE_EMULATE) {
            opts_apply(c, &OP, &gc, 0, 0, gviews);
            st = ringattn_cuda__backward(&gc, &Q.t, &K.t, &V.t, &O.t, &L.t, &G.t, &DQ.t, &DK.t, &DV.t, 1, c->tile);
        } else {
            ringattn_tensor a[9];
            st = -100;
            if (!tbuf_upload(&Q, &a[0]) && !tbuf_upload(&K, &a[1]) && !tbuf_upload(&V, &a[2]) && !tbuf_upload(&O, &a[3]) &&
                !tbuf_upload(&L, &a[4]) && !tbuf_upload(&G, &a[5]) && !tbuf_upload(&DQ, &a[6]) &&
                !tbuf_upload(&DK, &a[7]) && !tbuf_upload(&DV, &a[8]) && !opts_apply(c, &OP, &gc, 0, 1, gviews)) {
                st = ringattn_cuda_backward(&gc, &a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &a[6], &a[7], &a[8]);
                if (st == RINGATTN_OK && (tbuf_download(&DQ) || tbuf_download(&DK) || tbuf_download(&DV) ||
                                          (c->bias && tbuf_download(&OP.DB)))) st = -101;
            }
        }
        CHECK(st == RINGATTN_OK, "cuda backward returned %d (%s) %s", st, ringattn_strerror(st), detail);
        if (st == RINGATTN_OK) {
            ringattn_plan_info pl;
            ringattn_shape sh;
            sh.batch = c->b; sh.seq_q = c->nq; sh.seq_k = c->nk; sh.heads_q = c->h; sh.heads_kv = c->hk;
            sh.dim_qk = c->d; sh.dim_v = c->dv;
            memset(&pl, 0, sizeof pl);
            CHECK((pairmask ? (gbst.blocks_computed >= cbst.blocks_computed &&
                               gbst.blocks_computed + gbst.blocks_skipped == cbst.blocks_computed + cbst.blocks_skipped)
                            : (gbst.blocks_computed == cbst.blocks_computed && gbst.blocks_skipped == cbst.blocks_skipped)) &&
                  gbst.handoffs == cbst.handoffs,
                  "backward stats: blocks %lld/%lld handoffs %lld, the CPU %lld/%lld %lld", (long long)gbst.blocks_computed,
                  (long long)gbst.blocks_skipped, (long long)gbst.handoffs, (long long)cbst.blocks_computed,
                  (long long)cbst.blocks_skipped, (long long)cbst.handoffs);
            CHECK(ringattn_plan(&gc, &sh, 1, &pl) == RINGATTN_OK && gbst.planned_bytes_per_member == pl.member_bytes &&
                  gbst.peak_bytes_per_member == pl.member_bytes,
                  "backward stats: planned %zu peak %zu, the CPU's plan %zu", gbst.planned_bytes_per_member,
                  gbst.peak_bytes_per_member, pl.member_bytes);
        }
        if (st == RINGATTN_OK) {
            double *got[3], *ref[3]; int64_t n[3], *dd[3]; const char *nm[3] = { "dq", "dk", "dv" };
            got[0] = gdq; got[1] = gdk; got[2] = gdv; ref[0] = rdq; ref[1] = rdk; ref[2] = rdv;
            n[0] = nq_; n[1] = nk_; n[2] = nv_; dd[0] = qd; dd[1] = kd; dd[2] = vd;
            tbuf_read(&DQ, gdq); tbuf_read(&DK, gdk); tbuf_read(&DV, gdv);
            smax = tol_smax(q, k, c->b, c->nq, c->nk, c->h, c->hk, c->d, scale) + OP.tmax;
            for (i = 0; i < 3; i++) {
                double gref = max_abs_f64(ref[i], n[i]), gs = gref < 1 ? 1 : gref;
                tg.abs = f64 ? 1e-12 * gs : gs * TEST_U32 * (2.0 * (double)c->d * smax + (double)(c->nq + c->nk) + 16.0);
                tg.rel = su; tg.abs += store_abs(c->storage);
                r = compare_report(nm[i], got[i], ref[i], dd[i], "bnhd", tg); note(g, kind, r, gref);
                CHECK(r.bad == 0, "backward %s: %lld elements out of tolerance (worst %.3g x tol)", nm[i],
                      (long long)r.bad, r.max_frac);
            }
            if (c->bias) {   /* dbias: sums of P (dP - D) over the bias's broadcast axes */
                int64_t nb = OP.bd[0] * OP.bd[1] * OP.bd[2] * OP.bd[3], terms = (c->b / OP.bd[0]) * (c->h / OP.bd[1]);
                double *gb = (double *)malloc(sizeof(double) * (size_t)nb), *rb = (double *)malloc(sizeof(double) * (size_t)nb);
                double gref, gs;
                tbuf_read(&OP.DB, gb); tbuf_read(&OP.rDB, rb);
                gref = max_abs_f64(rb, nb); gs = gref < 1 ? 1 : gref;
                tg.abs = f64 ? 1e-12 * gs : gs * TEST_U32 * (double)terms * (2.0 * (double)c->d * smax + (double)(c->nq + c->nk) + 16.0);
                tg.rel = su; tg.abs += store_abs(c->storage);
                r = compare_report("dbias", gb, rb, OP.bd, "bhqk", tg); note(g, kind, r, gref);
                CHECK(r.bad == 0, "backward dbias: %lld elements out of tolerance (worst %.3g x tol)", (long long)r.bad, r.max_frac);
                free(gb); free(rb);
            }
            if (c->sinks) {  /* dsinks: ringattn__dsink on both sides, from the same stored lse, out, dout */
                int64_t sd[4];
                test_tol ts;
                dims4(sd, 1, 1, c->h, 1);
                ts.abs = 1e-12 * (max_abs_f64(OP.dsinks_ref, c->h) > 1 ? max_abs_f64(OP.dsinks_ref, c->h) : 1); ts.rel = 0;
                r = compare_report("dsinks", OP.dsinks_got, OP.dsinks_ref, sd, "..h.", ts);
                note(g, f64 ? 0 : 2, r, max_abs_f64(OP.dsinks_ref, c->h));
                CHECK(r.bad == 0, "backward dsinks: %lld heads out of tolerance (worst %.3g x tol)", (long long)r.bad, r.max_frac);
            }
        }
    }
    opts_free(&OP);

    g->cases++;
    if (*failures != before) { g->failed++; describe(c); }
    for (i = 0; i < 12; i++) free(x[i]);
    tbuf_free(&Q); tbuf_free(&K); tbuf_free(&V); tbuf_free(&O); tbuf_free(&L); tbuf_free(&G);
    tbuf_free(&DQ); tbuf_free(&DK); tbuf_free(&DV); tbuf_free(&rQ); tbuf_free(&rK); tbuf_free(&rV);
    tbuf_free(&rO); tbuf_free(&rL); tbuf_free(&rG); tbuf_free(&rDQ); tbuf_free(&rDK); tbuf_free(&rDV);
}

/* ---------------------------------------------------------------- the grid */

static const ringattn_dtype both[2] = { RINGATTN_F64, RINGATTN_F32 };

/* one tally per section of the grid, printed at the end: the error of every option */
#define NSECT 16
static const char *const section_names[NSECT] = {
    "dense, ring sizes 1-8", "lengths 1-1000", "head dims, dv != d", "nq != nk, alignments", "batch, GQA, MQA",
    "layouts", "f16/bf16/mixed storage", "windows", "dilated, both mixes", "zigzag, striped", "softcap",
    "precision emulation",
    "varlen (cu_seqlens)", "dilated + zigzag", "forced tiles", "score options" };

static void run_grid(int mode, tally *g, int *failures)
{
    int i, it, causal, k = 0, ns = 0;
    tally S[NSECT], *T;
    memset(S, 0, sizeof S);
    T = &S[ns++];
    /* ring sizes x causal x dtype */
    {
        static const int ps[6] = { 1, 2, 3, 4, 7, 8 };
        for (i = 0; i < 6; i++) for (causal = 0; causal <= 2; causal++) for (it = 0; it < 2; it++, k++) {
            ccase c = base_case(129, ps[i], both[it]);
            c.causal = causal; c.seed = 100 + (uint64_t)k;
            check_case(&c, mode, T, failures);
        }
    }
    T = &S[ns++];
    /* lengths */
    {
        static const int cfgs[][3] = { { 1, 1, 0 }, { 1, 1, 1 }, { 7, 7, 1 }, { 7, 3, 0 }, { 64, 8, 2 },
                                       { 1000, 8, 1 }, { 1000, 3, 0 } };
        for (i = 0; i < 7; i++) for (it = 0; it < 2; it++) {
            ccase c = base_case(cfgs[i][0], cfgs[i][1], both[it]);
            c.causal = cfgs[i][2]; c.d = c.dv = 64; c.seed = 200 + (uint64_t)(2 * i + it);
            check_case(&c, mode, T, failures);
        }
    }
    T = &S[ns++];
    /* head dims, dv != d */
    {
        static const int64_t dims[][2] = { { 1, 1 }, { 64, 64 }, { 128, 128 }, { 64, 32 }, { 16, 48 } };
        for (i = 0; i < 5; i++) for (it = 0; it < 2; it++) {
            ccase c = base_case(64, 4, both[it]);
            c.d = dims[i][0]; c.dv = dims[i][1]; c.causal = i % 3; c.seed = 300 + (uint64_t)(2 * i + it);
            check_case(&c, mode, T, failures);
        }
    }
    T = &S[ns++];
    /* nq != nk, both causal alignments (nq > nk bottom-right: empty rows) */
    {
        static const int64_t shapes[2][2] = { { 64, 129 }, { 129, 64 } };
        for (i = 0; i < 2; i++) for (causal = 0; causal <= 2; causal++) for (it = 0; it < 2; it++, k++) {
            ccase c = base_case(shapes[i][0], 3 + 5 * (k % 2), both[it]);
            c.nk = shapes[i][1]; c.causal = causal; c.seed = 400 + (uint64_t)k;
            check_case(&c, mode, T, failures);
        }
    }
    T = &S[ns++];
    /* batch and heads, GQA, MQA */
    {
        static const int64_t bh[3][3] = { { 2, 3, 3 }, { 2, 4, 2 }, { 1, 4, 1 } };
        for (i = 0; i < 3; i++) for (it = 0; it < 2; it++) {
            ccase c = base_case(100, 4, both[it]);
            c.b = bh[i][0]; c.h = bh[i][1]; c.hk = bh[i][2]; c.causal = 1 + (i % 2); c.seed = 500 + (uint64_t)(2 * i + it);
            check_case(&c, mode, T, failures);
        }
    }
    T = &S[ns++];
    /* layouts */
    for (i = LAYOUT_BHND; i <= LAYOUT_REVERSED; i++) for (it = 0; it < 2; it++) {
        ccase c = base_case(77, 3, both[it]);
        c.b = 2; c.h = 3; c.hk = 3; c.layout = i; c.causal = it; c.seed = 600 + (uint64_t)(i * 2 + it);
        check_case(&c, mode, T, failures);
    }
    T = &S[ns++];
    /* storage dtypes: f16, bf16 with f32 compute; mixed */
    {
        static const ringattn_dtype st[4][2] = { { RINGATTN_F16, RINGATTN_F32 }, { RINGATTN_BF16, RINGATTN_F32 },
                                                 { RINGATTN_F32, RINGATTN_F64 }, { RINGATTN_BF16, RINGATTN_F64 } };
        for (i = 0; i < 4; i++) {
            ccase c = base_case(96, 3, st[i][1]);
            c.storage = st[i][0]; c.causal = i % 3; c.scale = (i == 2) ? 0.3 : 0.0; c.seed = 700 + (uint64_t)i;
            check_case(&c, mode, T, failures);
        }
    }
    T = &S[ns++];
    /* windows */
    {
        static const int w[5][3] = { { 8, 0, 0 }, { 3, 5, 0 }, { 0, 0, 0 }, { 16, -1, 1 }, { 5, 2, 2 } };
        for (i = 0; i < 5; i++) for (it = 0; it < 2; it++) {
            ccase c = base_case(90, 4, both[it]);
            c.wl = w[i][0]; c.wr = w[i][1]; c.causal = w[i][2]; c.seed = 800 + (uint64_t)(2 * i + it);
            if (i == 4) c.nk = 70;
            check_case(&c, mode, T, failures);
        }
    }
    T = &S[ns++];
    /* dilated, both mixes */
    {
        static const struct { int64_t b, n, h, hk, d, dv; int G; int64_t seg[3], rate[3]; } D[4] = {
            { 1, 64, 3, 3, 16, 16, 3, { 8, 16, 32 }, { 1, 2, 4 } },
            { 1, 64, 4, 4, 8, 8, 2, { 4, 8, 0 }, { 2, 3, 0 } },
            { 1, 60, 7, 7, 8, 8, 3, { 12, 20, 60 }, { 1, 2, 3 } },
            { 2, 48, 4, 2, 8, 12, 2, { 16, 48, 0 }, { 2, 3, 0 } },
        };
        static const int ps[3] = { 1, 3, 4 };
        for (i = 0; i < 4; i++) for (it = 0; it < 2; it++) for (causal = 0; causal <= 1; causal++) {
            int mix, j;
            for (mix = 0; mix <= 1; mix++, k++) {
                ccase c = base_case(D[i].n, ps[k % 3], both[it]);
                c.b = D[i].b; c.h = D[i].h; c.hk = D[i].hk; c.d = D[i].d; c.dv = D[i].dv;
                c.G = D[i].G; c.mix = mix; c.causal = causal;
                for (j = 0; j < c.G; j++) { c.seg[j] = D[i].seg[j]; c.rate[j] = D[i].rate[j]; }
                c.seed = 900 + (uint64_t)k;
                check_case(&c, mode, T, failures);
            }
        }
    }
    T = &S[ns++];
    /* partitions: zigzag and striped, ring sizes 1..8 x causal modes x {f64, f32}; nq != nk
       (both alignments), GQA, f16 / bf16 storage on the way */
    {
        int part;
        for (part = RINGATTN_ZIGZAG; part <= RINGATTN_STRIPED; part++)
        for (i = 1; i <= 8; i++) for (causal = 0; causal <= 2; causal++) for (it = 0; it < 2; it++, k++) {
            ccase c = base_case(67, i, both[it]);   /* 67: chunks of unequal size */
            c.part = part; c.causal = causal; c.seed = 1100 + (uint64_t)k;
            if (i % 3 == 1) c.nk = 45;
            if (i % 3 == 2) c.nq = 41;
            if (i % 4 == 2) { c.h = 4; c.hk = 2; }
            if (i == 5) { c.h = 3; c.hk = 1; c.b = 2; }
            if (it == 1 && i % 4 == 3) c.storage = (causal == 1) ? RINGATTN_BF16 : RINGATTN_F16;
            if (i == 6) c.layout = LAYOUT_REVERSED;
            check_case(&c, mode, T, failures);
        }
    }
    T = &S[ns++];
    /* softcap, forward and backward: with causal masks, windows, partitions, GQA, storage */
    for (i = 0; i < 8; i++) for (it = 0; it < 2; it++, k++) {
        ccase c = base_case(80, 1 + i, both[it]);
        c.softcap = (i % 2) ? 0.5 : 5.0; c.causal = i % 3; c.part = (i / 2) % 3; c.seed = 1300 + (uint64_t)k;
        if (i == 3) { c.h = 4; c.hk = 1; }
        if (i == 4) { c.wl = 6; c.wr = 2; }
        if (i == 5) c.nk = 61;
        if (i == 6) c.storage = it ? RINGATTN_BF16 : RINGATTN_F16;
        if (i == 7) { c.d = 40; c.dv = 24; c.scale = 0.9; }
        check_case(&c, mode, T, failures);
    }
    T = &S[ns++];
    /* precision emulation (round_p, round_s, round_state to bf16; f64 compute, where the
       rounding points see the same values on both sides), forward and backward. P is rounded
       against the running max of the tiles seen so far, so the bits follow the key tile (256
       keys on the CPU, 64 here): with n <= 64 every block is one tile on both sides. */
    for (i = 0; i < 6; i++, k++) {
        ccase c = base_case(60, 1 + i % 3, RINGATTN_F64);
        c.round_p = 1; c.round_s = i >= 3; c.round_state = i % 2; c.causal = i % 3; c.softcap = (i == 4) ? 3.0 : 0.0;
        c.seed = 1400 + (uint64_t)k;
        if (i == 5) { c.h = 4; c.hk = 2; c.part = RINGATTN_ZIGZAG; }
        check_case(&c, mode, T, failures);
    }
    T = &S[ns++];
    /* varlen (cu_seqlens): per-sequence causal alignment, empty query / key sequences,
       ring sizes 1..8 x partitions x causal modes, with windows, softcap, GQA, storage */
    {
        static const struct { int nseq; int64_t q[5], k[5]; } V[3] = {
            { 3, { 0, 20, 21, 60, 0 }, { 0, 20, 21, 60, 0 } },
            { 4, { 0, 10, 10, 40, 50 }, { 0, 15, 20, 50, 52 } },     /* an empty query sequence */
            { 3, { 0, 30, 34, 64, 0 }, { 0, 10, 10, 40, 0 } },       /* one with no keys: empty rows */
        };
        static const int ps[6] = { 1, 2, 3, 5, 7, 8 };
        int part, j;
        for (i = 0; i < 3; i++) for (part = 0; part <= 2; part++) for (causal = 0; causal <= 2; causal++)
        for (it = 0; it < 2; it++, k++) {
            ccase c = base_case(V[i].q[V[i].nseq], ps[k % 6], both[it]);
            c.nk = V[i].k[V[i].nseq]; c.nseq = V[i].nseq; c.part = part; c.causal = causal;
            for (j = 0; j <= c.nseq; j++) { c.cuq[j] = V[i].q[j]; c.cuk[j] = V[i].k[j]; }
            if (k % 4 == 1) { c.wl = 7; c.wr = causal ? -1 : 3; }
            if (k % 5 == 2) c.softcap = 2.0;
            if (k % 3 == 0) { c.h = 4; c.hk = 2; }
            if (it == 1 && k % 7 == 3) c.storage = RINGATTN_BF16;
            if (it == 1 && k % 7 == 5) c.storage = RINGATTN_F16;
            c.seed = 1400 + (uint64_t)k;
            check_case(&c, mode, T, failures);
        }
    }
    T = &S[ns++];
    /* dilated with the zigzag partition (both mixes, GQA, rates > 1) */
    {
        static const int64_t seg[2][3] = { { 8, 16, 32 }, { 12, 24, 0 } }, rate[2][3] = { { 1, 2, 4 }, { 2, 3, 0 } };
        static const int G[2] = { 3, 2 };
        int mix, j;
        for (i = 0; i < 2; i++) for (mix = 0; mix <= 1; mix++) for (causal = 0; causal <= 1; causal++)
        for (it = 0; it < 2; it++, k++) {
            ccase c = base_case(i ? 48 : 64, 2 + 2 * (k % 2) + (k % 3 == 0), both[it]);
            c.part = RINGATTN_ZIGZAG; c.G = G[i]; c.mix = mix; c.causal = causal;
            if (i == 1) { c.h = 4; c.hk = 2; c.dv = 12; }
            for (j = 0; j < c.G; j++) { c.seg[j] = seg[i][j]; c.rate[j] = rate[i][j]; }
            c.seed = 1500 + (uint64_t)k;
            check_case(&c, mode, T, failures);
        }
    }
    T = &S[ns++];
    /* forced tile sizes (emulation only: on the GPU the tile follows the device) */
    if (mode == MODE_EMULATE) {
        static const int tiles[5] = { 1, 5, 13, 32, 64 };
        for (i = 0; i < 5; i++) for (it = 0; it < 2; it++) {
            ccase c = base_case(70, 3, both[it]);
            c.tile = tiles[i]; c.causal = i % 3; c.nk = (i == 3) ? 50 : 70; c.h = 4; c.hk = 2;
            if (i == 4) { c.G = 2; c.seg[0] = 10; c.seg[1] = 35; c.rate[0] = 2; c.rate[1] = 1; c.nk = 70; c.mix = it; }
            if (i == 2) { c.wl = 9; c.wr = 4; }
            if (i == 0) { c.part = RINGATTN_STRIPED; c.softcap = 1.5; }
            if (i == 1) c.part = RINGATTN_ZIGZAG;
            if (i == 3) { c.nq = c.nk = 50; c.nseq = 3; c.cuq[1] = c.cuk[1] = 7; c.cuq[2] = 30; c.cuk[2] = 22;
                          c.cuq[3] = c.cuk[3] = 50; c.part = RINGATTN_ZIGZAG; }
            c.seed = 1000 + (uint64_t)(2 * i + it);
            check_case(&c, mode, T, failures);
        }
    }
    T = &S[ns++];
    /* score options: each alone (every bias / mask broadcast shape), then mixed over ring
       sizes 1-8 x partitions x causal modes, with GQA / MQA, nq != nk, softcap, windows,
       layouts, f16 / bf16 storage; varlen (ALiBi per sequence); forced odd tiles */
    {
        static const int alone[14][6] = {   /* sinks alibi bias mask docs max_logit */
            { 1, 0, 0, 0, 0, 0 }, { 0, 1, 0, 0, 0, 0 }, { 0, 2, 0, 0, 0, 0 }, { 0, 0, 1, 0, 0, 0 },
            { 0, 0, 2, 0, 0, 0 }, { 0, 0, 3, 0, 0, 0 }, { 0, 0, 4, 0, 0, 0 }, { 0, 0, 5, 0, 0, 0 },
            { 0, 0, 0, 1, 0, 0 }, { 0, 0, 0, 2, 0, 0 }, { 0, 0, 0, 3, 0, 0 }, { 0, 0, 0, 0, 3, 0 },
            { 0, 0, 0, 0, -4, 0 }, { 0, 0, 0, 0, 0, 1 } };
        static const struct { int nseq; int64_t q[5], k[5]; } V[2] = {
            { 3, { 0, 20, 21, 60, 0 }, { 0, 25, 27, 50, 0 } },
            { 4, { 0, 10, 10, 40, 50 }, { 0, 15, 20, 50, 52 } } };
        int j;
        for (i = 0; i < 14; i++) for (it = 0; it < 2; it++, k++) {
            ccase c = base_case(50, 3, both[it]);
            c.b = 2; c.h = 3; c.hk = 3; c.causal = i % 3; c.nk = (i % 4 == 1) ? 61 : 50;
            c.sinks = alone[i][0]; c.alibi = alone[i][1]; c.bias = alone[i][2]; c.mask = alone[i][3];
            c.docs = alone[i][4]; c.max_logit = alone[i][5]; c.seed = 1600 + (uint64_t)k;
            check_case(&c, mode, T, failures);
        }
        for (i = 0; i < 16; i++) for (it = 0; it < 2; it++, k++) {
            ccase c = base_case(60 + 3 * i, 1 + i % 8, both[it]);
            c.causal = i % 3; c.part = (i / 3) % 3; c.seed = 1700 + (uint64_t)k;
            c.sinks = (i % 4 != 3); c.alibi = i % 3; c.bias = i % 6; c.mask = (i % 4 == 1) ? 1 : (i % 4 == 2) ? 3 : 0;
            c.docs = (i % 6 == 0) ? 3 : (i % 6 == 4) ? -2 : 0; c.max_logit = (i % 5 != 2);
            if (i % 5 == 2) { c.h = 4; c.hk = 2; }
            if (i % 7 == 3) { c.b = 2; c.h = 3; c.hk = 1; }
            if (i % 4 == 0) c.softcap = (i % 8) ? 0.7 : 3.0;
            if (i % 6 == 5) c.nk = c.nq - 17;
            if (i % 6 == 1) c.nk = c.nq + 13;
            if (i == 7 || i == 10) { c.wl = 9; c.wr = c.causal ? -1 : 3; }
            if (i == 6) c.layout = LAYOUT_REVERSED;
            if (i == 9) { c.d = 40; c.dv = 24; c.scale = 0.4; }
            if (it == 1 && i % 5 == 4) c.storage = RINGATTN_BF16;
            if (it == 1 && i % 5 == 1) c.storage = RINGATTN_F16;
            if (it == 0 && i % 7 == 5) c.storage = RINGATTN_F32;
            check_case(&c, mode, T, failures);
        }
        for (i = 0; i < 2; i++) for (causal = 0; causal <= 2; causal++) for (it = 0; it < 2; it++, k++) {
            ccase c = base_case(V[i].q[V[i].nseq], 1 + (int)(k % 5), both[it]);
            c.nk = V[i].k[V[i].nseq]; c.nseq = V[i].nseq; c.part = (int)(k % 3); c.causal = causal;
            for (j = 0; j <= c.nseq; j++) { c.cuq[j] = V[i].q[j]; c.cuk[j] = V[i].k[j]; }
            c.sinks = 1; c.alibi = 1 + (int)(k % 2); c.bias = 1 + (int)(k % 5); c.mask = (k % 3 == 0) ? 1 : 0;
            c.docs = (k % 3 == 1) ? -3 : 0; c.max_logit = 1;
            if (k % 4 == 1) { c.wl = 6; c.wr = causal ? -1 : 2; }
            if (k % 5 == 2) c.softcap = 2.0;
            if (k % 3 == 0) { c.h = 4; c.hk = 2; }
            c.seed = 1800 + (uint64_t)k;
            check_case(&c, mode, T, failures);
        }
        for (it = 0; it < 2; it++, k++) {   /* b * nq > 2048: dsinks summed in parts on the device */
            ccase c = base_case(1500, 4, both[it]);
            c.b = 2; c.d = c.dv = 8; c.causal = 1; c.sinks = 1; c.docs = 5; c.max_logit = 1; c.seed = 1850 + (uint64_t)k;
            check_case(&c, mode, T, failures);
        }
        if (mode == MODE_EMULATE) {   /* odd tiles: masks and terms inside partial tiles */
            static const int tiles[3] = { 1, 5, 13 };
            for (i = 0; i < 3; i++) for (it = 0; it < 2; it++, k++) {
                ccase c = base_case(45, 2 + i, both[it]);
                c.tile = tiles[i]; c.causal = i % 3; c.part = i; c.h = 4; c.hk = 2; c.nk = 52;
                c.sinks = 1; c.alibi = 1; c.bias = 1 + i; c.mask = 1 + i; c.docs = (i == 1) ? -2 : 0; c.max_logit = 1;
                c.softcap = (i == 2) ? 1.5 : 0.0;
                c.seed = 1900 + (uint64_t)k;
                check_case(&c, mode, T, failures);
            }
        }
    }
    for (i = 0; i < ns; i++) {
        print_tally(section_names[i], &S[i]);
        tally_add(g, &S[i]);
    }
}

/* ---------------------------------------------------------------- errors */

/* host callbacks (the CPU computes them, CUDA refuses them): every pair visible */
static int test_mask_fn(void *user, int64_t b, int64_t h, int64_t q, int64_t k)
{
    (void)user; (void)b; (void)h; (void)q; (void)k;
    return 1;
}
static int test_mask_block_fn(void *user, int64_t b, int64_t h, const int64_t *q, int64_t nr, const int64_t *k,
                              int64_t nc, unsigned char *vis)
{
    (void)user; (void)b; (void)h; (void)q; (void)k;
    memset(vis, 1, (size_t)(nr * nc));
    return 0;
}

/* the CUDA entry points refuse what the CPU refuses, with the CPU's status and sentence, and
   compute what it computes (emulated; on the GPU the valid cases here use host memory) */
static void check_errors(int mode, int *failures)
{
    double buf[4 * 8 * 2 * 4];
    ringattn_tensor Q = ringattn_tensor_bnhd(buf, RINGATTN_F64, 1, 8, 2, 4);
    ringattn_tensor K = ringattn_tensor_bnhd(buf + 64, RINGATTN_F64, 1, 8, 2, 4);
    ringattn_tensor V = ringattn_tensor_bnhd(buf + 128, RINGATTN_F64, 1, 8, 2, 4);
    ringattn_tensor O = ringattn_tensor_bnhd(buf + 192, RINGATTN_F64, 1, 8, 2, 4);
    ringattn_tensor Bad = ringattn_tensor_bnhd(buf + 192, RINGATTN_F64, 1, 8, 2, 5);
    int64_t seg = 3, rate = 1, cu[3] = { 0, 3, 8 }, cubad[3] = { 0, 5, 3 };
    int i, refused = 0, computed = 0, callbacks = 0;
    for (i = 0; i < 17; i++) {
        ringattn_config cfg = ringattn_default_config();
        char dcpu[256] = "", dgpu[256] = "";
        const ringattn_tensor *o = &O;
        int cpu, gpu;
        seg = 3;
        switch (i) {
        case 0: cfg.softcap = 1.0; break;                                   /* computed */
        case 1: cfg.partition = RINGATTN_ZIGZAG; cfg.ring_size = 2; break;  /* computed */
        case 2: cfg.ring_size = 9; break;
        case 3: cfg.num_groups = 1; cfg.segment_lengths = &seg; cfg.dilation_rates = &rate; break;
        case 4: o = &Bad; break;
        case 5: cfg.compute = RINGATTN_F16; break;
        case 6: cfg.causal = 3; break;
        case 7: cfg.num_groups = 1; cfg.segment_lengths = &seg; cfg.dilation_rates = &rate; seg = 4; cfg.window_left = 2; break;
        case 8: cfg.partition = RINGATTN_ZIGZAG; cfg.ring_size = 5; break;  /* p > n / 2 */
        case 9: cfg.partition = RINGATTN_STRIPED; cfg.num_groups = 1; cfg.segment_lengths = &seg;
                cfg.dilation_rates = &rate; seg = 4; break;
        case 10: cfg.num_seqs = 2; cfg.cu_seqlens_q = cu; cfg.cu_seqlens_k = cubad; break;
        case 11: cfg.num_seqs = 2; cfg.cu_seqlens_q = cu; cfg.cu_seqlens_k = NULL; break;
        case 12: cfg.num_seqs = 2; cfg.cu_seqlens_q = cu; cfg.cu_seqlens_k = cu; cfg.num_groups = 1;
                 cfg.segment_lengths = &seg; cfg.dilation_rates = &rate; seg = 4; break;
        case 13: cfg.softcap = -1.0; break;
        case 14: cfg.partition = (ringattn_partition)3; break;
        case 15: cfg.num_seqs = 2; cfg.cu_seqlens_q = cu; cfg.cu_seqlens_k = cu; cfg.partition = RINGATTN_STRIPED;
                 cfg.ring_size = 3; cfg.causal = RINGATTN_CAUSAL_TOP_LEFT; cfg.softcap = 2.0; break;   /* computed */
        default: cfg.cu_seqlens_q = cu; break;                             /* cu_seqlens without num_seqs */
        }
        memset(buf, 0, sizeof buf);
        cfg.error_detail = dcpu; cfg.error_detail_size = sizeof dcpu;
        cpu = ringattn_forward(&cfg, &Q, &K, &V, (ringattn_tensor *)o, NULL);
        if (mode == MODE_GPU && cpu == RINGATTN_OK) continue;   /* host memory: refused for that */
        cfg.error_detail = dgpu; cfg.error_detail_size = sizeof dgpu;
        gpu = (mode == MODE_EMULATE) ? ringattn_cuda__forward(&cfg, &Q, &K, &V, (ringattn_tensor *)o, NULL, 1, 0)
                                     : ringattn_cuda_forward(&cfg, &Q, &K, &V, (ringattn_tensor *)o, NULL);
        CHECK(gpu == cpu && strcmp(dcpu, dgpu) == 0 && (cpu == RINGATTN_OK || dcpu[0] != 0),
              "error case %d: CPU %d (%s), CUDA %d (%s)", i, cpu, dcpu, gpu, dgpu);
        if (cpu == RINGATTN_OK) computed++; else refused++;
    }
    /* the score options: what the CPU refuses, refused alike (forward and backward); the host
       callbacks mask_fn / mask_block_fn are computed by the CPU and refused by CUDA */
    {
        static double sinks[2] = { 0.5, 0.0 }, slopes[3] = { 0.1, 0.2, 0.3 }, bb[2 * 8 * 8], db[2 * 8 * 8];
        static double mlb[2 * 8], lseb[2 * 8], g[64], dq[64], dk[64], dv[64], dsk[2];
        static unsigned char mb[8 * 8];
        static int64_t docs[8];
        ringattn_tensor ML = ringattn_tensor_lse(mlb, RINGATTN_F64, 1, 2, 8);
        ringattn_tensor MLbad = ringattn_tensor_lse(mlb, RINGATTN_F64, 1, 2, 7);
        ringattn_tensor MLo = ringattn_tensor_lse(buf + 192, RINGATTN_F64, 1, 2, 8);   /* out's data */
        ringattn_tensor L = ringattn_tensor_lse(lseb, RINGATTN_F64, 1, 2, 8);
        ringattn_tensor G = ringattn_tensor_bnhd(g, RINGATTN_F64, 1, 8, 2, 4);
        ringattn_tensor DQ = ringattn_tensor_bnhd(dq, RINGATTN_F64, 1, 8, 2, 4);
        ringattn_tensor DK = ringattn_tensor_bnhd(dk, RINGATTN_F64, 1, 8, 2, 4);
        ringattn_tensor DV = ringattn_tensor_bnhd(dv, RINGATTN_F64, 1, 8, 2, 4);
        ringattn_tensor Bt, DBt, Mt, Bbool, DBq;
        int cbs = 0;
        Bt = ringattn_tensor_bnhd(bb, RINGATTN_F64, 1, 2, 8, 8);        /* [1][2][8][8] */
        DBt = ringattn_tensor_bnhd(db, RINGATTN_F64, 1, 2, 8, 8);
        Mt = ringattn_tensor_bnhd(mb, RINGATTN_BOOL, 1, 1, 8, 8);
        Bbool = Mt;
        DBq = Bt; DBq.data = dq;                                        /* shares dq's data */
        memset(mb, 1, sizeof mb);
        for (i = 0; i < 22; i++) {
            ringattn_config cfg = ringattn_default_config();
            char dcpu[256] = "", dgpu[256] = "";
            int cpu, gpu, pass = i >= 14, expect_refusal = 0, want_ok = (i == 0 || i == 1 || i == 11 || i == 14);
            sinks[1] = 0.0;
            seg = 4;
            switch (i) {
            case 0: cfg.sinks = sinks; cfg.alibi_slopes = slopes; cfg.alibi_size = 2; cfg.bias = &Bt; cfg.mask = &Mt;
                    cfg.max_logit = &ML; break;                                       /* computed */
            case 1: cfg.document_ids_q = docs; cfg.document_ids_k = docs; cfg.ring_size = 2;
                    cfg.partition = RINGATTN_ZIGZAG; break;                           /* computed */
            case 2: cfg.sinks = sinks; sinks[1] = NAN; break;
            case 3: cfg.alibi_slopes = slopes; cfg.alibi_size = 3; break;
            case 4: cfg.alibi_size = 2; break;
            case 5: cfg.document_ids_q = docs; break;
            case 6: cfg.max_logit = &MLbad; break;
            case 7: cfg.max_logit = &MLo; break;                                   /* aliases out */
            case 8: cfg.sinks = sinks; cfg.num_groups = 1; cfg.segment_lengths = &seg; cfg.dilation_rates = &rate; break;
            case 9: cfg.bias = &Bbool; break;
            case 10: cfg.mask = &Bt; break;
            case 11: cfg.mask_fn = NULL; cfg.mask_block_fn = NULL; cfg.max_logit = &ML; cfg.causal = 1; break;   /* computed */
            case 12: cfg.mask_fn = test_mask_fn; expect_refusal = 1; break;
            case 13: cfg.mask_block_fn = test_mask_block_fn; expect_refusal = 1; break;
            case 14: cfg.sinks = sinks; cfg.dsinks = dsk; cfg.bias = &Bt; cfg.dbias = &DBt; cfg.alibi_slopes = slopes;
                     cfg.alibi_size = 2; cfg.mask = &Mt; break;                       /* computed */
            case 15: cfg.dsinks = dsk; break;
            case 16: cfg.dbias = &DBt; break;
            case 17: cfg.bias = &Bt; cfg.dbias = &Bt; break;                       /* dbias is bias */
            case 18: cfg.bias = &Bt; cfg.dbias = &DBq; break;                      /* dbias shares dq's data */
            case 19: cfg.bias = &Bt; cfg.dbias = &MLbad; break;
            case 20: cfg.mask_fn = test_mask_fn; cfg.bias = &Bt; cfg.dbias = &DBt; expect_refusal = 1; break;
            default: cfg.document_ids_k = docs; break;
            }
            memset(buf, 0, sizeof buf);
            if (pass) {   /* a finished forward's out and lse as the backward's inputs */
                ringattn_config f = cfg;
                f.dsinks = NULL; f.dbias = NULL; f.mask_fn = NULL; f.mask_block_fn = NULL; f.error_detail = NULL;
                for (int64_t x = 0; x < 192; x++) buf[x] = 0.01 * (double)(x % 17) - 0.05;
                for (int64_t x = 0; x < 64; x++) g[x] = 0.02 * (double)(x % 5);
                (void)ringattn_forward(&f, &Q, &K, &V, &O, &L);
            } else {
                for (int64_t x = 0; x < 192; x++) buf[x] = 0.01 * (double)(x % 13);
            }
            for (int64_t x = 0; x < 128; x++) bb[x] = 0.1 * (double)(x % 7);
            cfg.mask_user = &cbs;
            cfg.error_detail = dcpu; cfg.error_detail_size = sizeof dcpu;
            cpu = pass ? ringattn_backward(&cfg, &Q, &K, &V, &O, &L, &G, &DQ, &DK, &DV)
                       : ringattn_forward(&cfg, &Q, &K, &V, &O, NULL);
            CHECK((cpu == RINGATTN_OK) == (want_ok || expect_refusal), "option case %d: the CPU returned %d (%s)", i, cpu, dcpu);
            cfg.error_detail = dgpu; cfg.error_detail_size = sizeof dgpu;
            if (expect_refusal) {
                gpu = (mode == MODE_EMULATE)
                    ? (pass ? ringattn_cuda__backward(&cfg, &Q, &K, &V, &O, &L, &G, &DQ, &DK, &DV, 1, 0)
                            : ringattn_cuda__forward(&cfg, &Q, &K, &V, &O, NULL, 1, 0))
                    : (pass ? ringattn_cuda_backward(&cfg, &Q, &K, &V, &O, &L, &G, &DQ, &DK, &DV)
                            : ringattn_cuda_forward(&cfg, &Q, &K, &V, &O, NULL));
                CHECK(cpu == RINGATTN_OK && gpu == RINGATTN_EUNSUPPORTED && strstr(dgpu, "mask_fn and mask_block_fn"),
                      "option case %d: CPU %d (%s), CUDA %d (%s): the callbacks are refused on CUDA", i, cpu, dcpu, gpu, dgpu);
                callbacks++;
                continue;
            }
            if (mode == MODE_GPU && cpu == RINGATTN_OK) continue;   /* host memory: refused for that */
            gpu = (mode == MODE_EMULATE)
                ? (pass ? ringattn_cuda__backward(&cfg, &Q, &K, &V, &O, &L, &G, &DQ, &DK, &DV, 1, 0)
                        : ringattn_cuda__forward(&cfg, &Q, &K, &V, &O, NULL, 1, 0))
                : (pass ? ringattn_cuda_backward(&cfg, &Q, &K, &V, &O, &L, &G, &DQ, &DK, &DV)
                        : ringattn_cuda_forward(&cfg, &Q, &K, &V, &O, NULL));
            CHECK(gpu == cpu && strcmp(dcpu, dgpu) == 0 && (cpu == RINGATTN_OK || dcpu[0] != 0),
                  "option case %d: CPU %d (%s), CUDA %d (%s)", i, cpu, dcpu, gpu, dgpu);
            if (cpu == RINGATTN_OK) computed++; else refused++;
        }
    }
    if (mode == MODE_GPU) {   /* valid arguments, but host memory */
        ringattn_config cfg = ringattn_default_config();
        char detail[256] = "";
        int st;
        cfg.error_detail = detail; cfg.error_detail_size = sizeof detail;
        st = ringattn_cuda_forward(&cfg, &Q, &K, &V, &O, NULL);
        CHECK(st == RINGATTN_EUNSUPPORTED && strstr(detail, "device memory"), "host pointers: %d (%s)", st, detail);
        {   /* device q, k, v, out but a host bias: the option's view is checked like the others */
            double *dev = NULL, hb[8 * 8];
            ringattn_tensor dQ = Q, dK = K, dV = V, dO = O, hB = ringattn_tensor_bnhd(hb, RINGATTN_F64, 1, 1, 8, 8);
            detail[0] = 0;
            if (cudaMalloc(&dev, sizeof buf) == cudaSuccess) {
                dQ.data = dev; dK.data = dev + 64; dV.data = dev + 128; dO.data = dev + 192;
                cfg.bias = &hB;
                st = ringattn_cuda_forward(&cfg, &dQ, &dK, &dV, &dO, NULL);
                CHECK(st == RINGATTN_EUNSUPPORTED && strstr(detail, "cfg->bias->data is not device memory"),
                      "a host bias: %d (%s)", st, detail);
                cfg.bias = NULL;
                cudaFree(dev);
            }
        }
    }
    printf("errors       %d refusals with the CPU's status and sentence, %d accepted alike, %d callback configs "
           "refused by CUDA only (%s)\n", refused, computed, callbacks, mode == MODE_GPU ? "GPU entry points" : "emulated");
}

/* ---------------------------------------------------------------- decoding: a KV cache */
/* ringattn_cuda_forward_kvcache against ringattn_forward_kvcache (the CPU, f64 compute and
   outputs, the same storage-dtype cache and the same precision emulation): out, lse, every
   split's partial, the caches after the call (bit for bit the CPU's, and the new keys where
   update_cache puts them), the block counts. The cache's slots that no sequence uses hold NaN
   and the block table's unused entries -1, so a read of either shows. */

#define KV_MAXB 4

typedef struct {
    int64_t b, nq, h, hk, d, dv, nnew;
    int64_t page;                 /* > 0: a paged cache, pages of this many keys; 0: contiguous */
    int32_t sl[KV_MAXB];          /* cache_seqlens                                             */
    int64_t num_splits, split_size;
    int causal, wl, wr, sinks, alibi, partials, update, tile, layout;
    double softcap, scale;
    ringattn_dtype storage, compute;
    int round_p, round_state, round_block;
    uint64_t seed;
} kvcase;

static kvcase kv_base(int64_t b, int64_t nq, ringattn_dtype dt)
{
    kvcase c;
    int i;
    memset(&c, 0, sizeof c);
    c.b = b; c.nq = nq; c.h = 2; c.hk = 2; c.d = 16; c.dv = 16; c.wl = -1; c.wr = -1;
    c.storage = dt; c.compute = dt; c.layout = LAYOUT_BNHD; c.seed = 1;
    for (i = 0; i < KV_MAXB; i++) c.sl[i] = 7 + 5 * i;
    return c;
}

static void kv_describe(const kvcase *c)
{
    printf("    kv case b=%lld nq=%lld h=%lld hk=%lld d=%lld dv=%lld n_new=%lld page=%lld seqlens=%d,%d,%d,%d "
           "num_splits=%lld split_size=%lld causal=%d window=(%d,%d) sinks=%d alibi=%d partials=%d update=%d "
           "tile=%d layout=%d softcap=%g storage=%d compute=%d round=%d%d%d seed=%llu\n",
           (long long)c->b, (long long)c->nq, (long long)c->h, (long long)c->hk, (long long)c->d, (long long)c->dv,
           (long long)c->nnew, (long long)c->page, c->sl[0], c->sl[1], c->sl[2], c->sl[3], (long long)c->num_splits,
           (long long)c->split_size, c->causal, c->wl, c->wr, c->sinks, c->alibi, c->partials, c->update, c->tile,
           c->layout, c->softcap, (int)c->storage, (int)c->compute, c->round_p, c->round_state, c->round_block,
           (unsigned long long)c->seed);
}

static ringattn_config kv_config(const kvcase *c, ringattn_dtype compute)
{
    ringattn_config cfg = ringattn_default_config();
    cfg.causal = c->causal; cfg.compute = compute; cfg.scale = c->scale; cfg.softcap = c->softcap;
    cfg.window_left = c->wl; cfg.window_right = c->wr;
    cfg.round_p = c->round_p; cfg.p_dtype = RINGATTN_BF16;
    cfg.round_state = c->round_state; cfg.state_dtype = RINGATTN_BF16;
    cfg.round_block = c->round_block; cfg.block_dtype = RINGATTN_BF16;
    return cfg;
}

static int tbuf_clone(dbuf *to, const dbuf *from)
{
    size_t bytes = (size_t)from->count * dsize(from->t.dtype);
    *to = *from;
    to->dev = NULL;
    to->base = malloc(bytes ? bytes : 1);
    if (!to->base) return -1;
    memcpy(to->base, from->base, bytes);
    to->t.data = (char *)to->base + ((char *)from->t.data - (char *)from->base);
    return 0;
}

static int tbuf_same(const dbuf *a, const dbuf *b)
{
    return a->count == b->count && memcmp(a->base, b->base, (size_t)a->count * dsize(a->t.dtype)) == 0;
}

/* GPU mode: a host int32 array on the device */
static int32_t *dev_ints(const int32_t *x, int64_t n)
{
    int32_t *p = NULL;
    if (cudaMalloc(&p, sizeof(int32_t) * (size_t)(n > 0 ? n : 1)) != cudaSuccess) return NULL;
    if (n > 0 && cudaMemcpy(p, x, sizeof(int32_t) * (size_t)n, cudaMemcpyHostToDevice) != cudaSuccess) { cudaFree(p); return NULL; }
    return p;
}

static void check_kv_case(const kvcase *c, int mode, tally *g, int *failures)
{
    int64_t b = c->b, nq = c->nq, h = c->h, hk = c->hk, d = c->d, dv = c->dv, nn = c->nnew;
    int64_t Lmax = 0, slmax = 0, bb, j, kh, x, mb = 0, nblk, npos, nsplit, s, od[4], ld[4];
    int before = *failures, f64 = (c->compute == RINGATTN_F64), kind = (f64 ? 0 : 2) + (c->storage != c->compute), st;
    double *kall, *vall, *q, *ro, *rl, *go, *gl, sinks[MAXH], slopes[KV_MAXB * MAXH], tmax = 0;
    double scale = c->scale != 0 ? c->scale : 1.0 / sqrt((double)d), su = store_u(c->storage), vmax, smax;
    int32_t *table = NULL;
    dbuf Q, Kc, Vc, Kn, Vn, rKc, rVc, gKc, gVc, rO, rL, O2, L2;
    dbuf *rSO = NULL, *rSL = NULL, *gSO = NULL, *gSL = NULL;
    ringattn_tensor *rso = NULL, *rsl = NULL, *gso = NULL, *gsl = NULL, *dso = NULL, *dsl = NULL;
    ringattn_kvcache kv, gkv;
    ringattn_config cfg, gc;
    ringattn_stats cst, gst;
    test_tol to, tl;
    test_cmp r;
    test_rng rg = rng_seed(c->seed * 11 + 3);
    char detail[256] = "";

    for (bb = 0; bb < b; bb++) {
        if (c->sl[bb] > slmax) slmax = c->sl[bb];
        if (c->sl[bb] + nn > Lmax) Lmax = c->sl[bb] + nn;
    }
    /* the keys of every sequence, [b][Lmax][hk][d], on the storage grid */
    kall = (double *)calloc((size_t)(b * (Lmax + 1) * hk * d), sizeof(double));
    vall = (double *)calloc((size_t)(b * (Lmax + 1) * hk * dv), sizeof(double));
    q = (double *)malloc(sizeof(double) * (size_t)(b * nq * h * d));
    ro = (double *)malloc(sizeof(double) * (size_t)(b * nq * h * dv)); go = (double *)malloc(sizeof(double) * (size_t)(b * nq * h * dv));
    rl = (double *)malloc(sizeof(double) * (size_t)(b * h * nq)); gl = (double *)malloc(sizeof(double) * (size_t)(b * h * nq));
    fill_normal(kall, b * Lmax * hk * d, c->seed * 11 + 0);
    fill_normal(vall, b * Lmax * hk * dv, c->seed * 11 + 1);
    fill_normal(q, b * nq * h * d, c->seed * 11 + 2);
    for (x = 0; x < b * Lmax * hk * d; x++) kall[x] = ringattn__round(kall[x], c->storage);
    for (x = 0; x < b * Lmax * hk * dv; x++) vall[x] = ringattn__round(vall[x], c->storage);

    /* the cache: contiguous [b + 1][slmax + nn + 2] or paged [nblk][page] with the blocks shuffled */
    if (c->page > 0) {
        mb = (Lmax + c->page - 1) / c->page + 1;
        nblk = b * mb + 3; npos = c->page;
        table = (int32_t *)malloc(sizeof(int32_t) * (size_t)(b * mb));
        {
            int32_t *perm = (int32_t *)malloc(sizeof(int32_t) * (size_t)nblk);
            for (x = 0; x < nblk; x++) perm[x] = (int32_t)x;
            for (x = nblk - 1; x > 0; x--) {
                int64_t y = (int64_t)(rng_next(&rg) % (uint64_t)(x + 1));
                int32_t t = perm[x]; perm[x] = perm[y]; perm[y] = t;
            }
            for (bb = 0; bb < b; bb++)
                for (j = 0; j < mb; j++)
                    table[bb * mb + j] = (j * c->page < c->sl[bb] + nn) ? perm[bb * mb + j] : -1;
            free(perm);
        }
    } else {
        nblk = b + 1; npos = slmax + nn + 2;
    }
    tbuf_make(&Kc, c->storage, c->layout, nblk, npos, hk, d);
    tbuf_make(&Vc, c->storage, c->layout, nblk, npos, hk, dv);
    for (x = 0; x < Kc.count; x++) ringattn__store(Kc.base, Kc.t.dtype, x, NAN);
    for (x = 0; x < Vc.count; x++) ringattn__store(Vc.base, Vc.t.dtype, x, NAN);
    for (bb = 0; bb < b; bb++)
        for (j = 0; j < c->sl[bb]; j++) {
            int64_t blk = table ? table[bb * mb + j / c->page] : bb, slot = table ? j % c->page : j, e;
            for (kh = 0; kh < hk; kh++) {
                for (e = 0; e < d; e++)
                    ringattn__store(Kc.t.data, Kc.t.dtype, ringattn__index(&Kc.t, blk, slot, kh, e),
                                    kall[((bb * Lmax + j) * hk + kh) * d + e]);
                for (e = 0; e < dv; e++)
                    ringattn__store(Vc.t.data, Vc.t.dtype, ringattn__index(&Vc.t, blk, slot, kh, e),
                                    vall[((bb * Lmax + j) * hk + kh) * dv + e]);
            }
        }
    memset(&Kn, 0, sizeof Kn); memset(&Vn, 0, sizeof Vn);
    if (nn > 0) {
        tbuf_make(&Kn, c->storage, c->layout, b, nn, hk, d);
        tbuf_make(&Vn, c->storage, c->layout, b, nn, hk, dv);
        for (bb = 0; bb < b; bb++)
            for (j = 0; j < nn; j++)
                for (kh = 0; kh < hk; kh++) {
                    int64_t e;
                    for (e = 0; e < d; e++)
                        ringattn__store(Kn.t.data, Kn.t.dtype, ringattn__index(&Kn.t, bb, j, kh, e),
                                        kall[((bb * Lmax + c->sl[bb] + j) * hk + kh) * d + e]);
                    for (e = 0; e < dv; e++)
                        ringattn__store(Vn.t.data, Vn.t.dtype, ringattn__index(&Vn.t, bb, j, kh, e),
                                        vall[((bb * Lmax + c->sl[bb] + j) * hk + kh) * dv + e]);
                }
    }
    tbuf_make(&Q, c->storage, c->layout, b, nq, h, d);
    tbuf_write(&Q, q); tbuf_read(&Q, q);
    tbuf_clone(&rKc, &Kc); tbuf_clone(&rVc, &Vc); tbuf_clone(&gKc, &Kc); tbuf_clone(&gVc, &Vc);
    tbuf_make(&rO, RINGATTN_F64, LAYOUT_BNHD, b, nq, h, dv);
    tbuf_make(&rL, RINGATTN_F64, LAYOUT_BNHD, b, h, nq, 1);
    tbuf_make(&O2, c->storage, c->layout, b, nq, h, dv);
    tbuf_make(&L2, c->storage, c->layout, b, h, nq, 1);
    tbuf_sentinel(&O2); tbuf_sentinel(&L2);

    /* the score options: sinks (head 1's -inf) and ALiBi (per head, or per batch and head) */
    for (x = 0; x < h; x++) sinks[x] = (x == 1) ? -INFINITY : 3.0 * (rng_uniform(&rg) - 0.3);
    for (x = 0; x < (c->alibi == 2 ? b * h : h); x++) {
        slopes[x] = pow(2.0, -8.0 * (double)(x % h + 1) / (double)h) * (1.0 + 0.25 * (double)(x / h));
        if (slopes[x] * (double)(nq + Lmax) > tmax) tmax = slopes[x] * (double)(nq + Lmax);
    }

    memset(&kv, 0, sizeof kv);
    kv.k_cache = &rKc.t; kv.v_cache = &rVc.t; kv.block_table = table; kv.max_blocks = mb; kv.cache_seqlens = c->sl;
    if (nn > 0) { kv.k_new = &Kn.t; kv.v_new = &Vn.t; }
    kv.num_splits = c->num_splits; kv.split_size = c->split_size; kv.update_cache = c->update;
    cfg = kv_config(c, RINGATTN_F64);
    if (c->sinks) cfg.sinks = sinks;
    if (c->alibi) { cfg.alibi_slopes = slopes; cfg.alibi_size = (int)(c->alibi == 2 ? b * h : h); }
    nsplit = ringattn_kvcache_num_splits(&cfg, &kv, b);
    CHECK(nsplit >= 1, "kv: %lld splits", (long long)nsplit);
    if (nsplit < 1) nsplit = 1;
    if (c->partials) {
        rso = (ringattn_tensor *)calloc((size_t)nsplit, sizeof *rso); rsl = (ringattn_tensor *)calloc((size_t)nsplit, sizeof *rsl);
        gso = (ringattn_tensor *)calloc((size_t)nsplit, sizeof *gso); gsl = (ringattn_tensor *)calloc((size_t)nsplit, sizeof *gsl);
        dso = (ringattn_tensor *)calloc((size_t)nsplit, sizeof *dso); dsl = (ringattn_tensor *)calloc((size_t)nsplit, sizeof *dsl);
        rSO = (dbuf *)calloc((size_t)nsplit, sizeof(dbuf)); rSL = (dbuf *)calloc((size_t)nsplit, sizeof(dbuf));
        gSO = (dbuf *)calloc((size_t)nsplit, sizeof(dbuf)); gSL = (dbuf *)calloc((size_t)nsplit, sizeof(dbuf));
        for (s = 0; s < nsplit; s++) {
            tbuf_make(&rSO[s], RINGATTN_F64, LAYOUT_BNHD, b, nq, h, dv); rso[s] = rSO[s].t;
            tbuf_make(&rSL[s], RINGATTN_F64, LAYOUT_BNHD, b, h, nq, 1); rsl[s] = rSL[s].t;
            tbuf_make(&gSO[s], c->storage, c->layout, b, nq, h, dv); gso[s] = gSO[s].t;
            tbuf_make(&gSL[s], c->storage, c->layout, b, h, nq, 1); gsl[s] = gSL[s].t;
            tbuf_sentinel(&gSO[s]); tbuf_sentinel(&gSL[s]);
        }
        kv.split_out = rso; kv.split_lse = rsl; kv.num_split_outputs = nsplit;
    }

    /* the reference: the CPU */
    cfg.stats = &cst;
    st = ringattn_forward_kvcache(&cfg, &kv, &Q.t, &rO.t, &rL.t);
    CHECK(st == RINGATTN_OK, "kv: the CPU returned %d", st);
    tbuf_read(&rO, ro); tbuf_read(&rL, rl);

    /* the CUDA path */
    gkv = kv;
    gkv.k_cache = &gKc.t; gkv.v_cache = &gVc.t;
    if (c->partials) { gkv.split_out = gso; gkv.split_lse = gsl; }
    gc = kv_config(c, c->compute);
    gc.sinks = cfg.sinks; gc.alibi_slopes = cfg.alibi_slopes; gc.alibi_size = cfg.alibi_size;
    gc.stats = &gst; gc.error_detail = detail; gc.error_detail_size = sizeof detail;
    if (mode == MODE_EMULATE) {
        st = ringattn_cuda__forward_kvcache(&gc, &gkv, &Q.t, &O2.t, &L2.t, 1, c->tile);
    } else {
        ringattn_tensor dq_, dkc, dvc, dkn, dvn, do_, dl_;
        int32_t *dsl_ = dev_ints(c->sl, b), *dtab = table ? dev_ints(table, b * mb) : NULL;
        int ok = dsl_ && (!table || dtab) && !tbuf_upload(&Q, &dq_) && !tbuf_upload(&gKc, &dkc) &&
                 !tbuf_upload(&gVc, &dvc) && !tbuf_upload(&O2, &do_) && !tbuf_upload(&L2, &dl_) &&
                 (nn == 0 || (!tbuf_upload(&Kn, &dkn) && !tbuf_upload(&Vn, &dvn)));
        for (s = 0; ok && c->partials && s < nsplit; s++)
            ok = !tbuf_upload(&gSO[s], &dso[s]) && !tbuf_upload(&gSL[s], &dsl[s]);
        st = -100;
        if (ok) {
            gkv.k_cache = &dkc; gkv.v_cache = &dvc; gkv.cache_seqlens = dsl_; gkv.block_table = dtab;
            if (nn > 0) { gkv.k_new = &dkn; gkv.v_new = &dvn; }
            if (c->partials) { gkv.split_out = dso; gkv.split_lse = dsl; }
            st = ringattn_cuda_forward_kvcache(&gc, &gkv, &dq_, &do_, &dl_);
            if (st == RINGATTN_OK && (tbuf_download(&O2) || tbuf_download(&L2) || tbuf_download(&gKc) || tbuf_download(&gVc)))
                st = -101;
            for (s = 0; st == RINGATTN_OK && c->partials && s < nsplit; s++)
                if (tbuf_download(&gSO[s]) || tbuf_download(&gSL[s])) st = -101;
        }
        cudaFree(dsl_); cudaFree(dtab);
    }
    CHECK(st == RINGATTN_OK, "kv: cuda returned %d (%s) %s", st, ringattn_strerror(st), detail);
    if (st == RINGATTN_OK) {
        int64_t on = b * nq * h * dv, ln = b * h * nq;
        dims4(od, b, nq, h, dv); dims4(ld, b, h, nq, 1);
        vmax = max_abs_f64(vall, b * Lmax * hk * dv);
        smax = tol_smax(q, kall, b, nq, Lmax, h, hk, d, scale) + tmax;
        if (c->softcap > 0 && smax > c->softcap + tmax) smax = c->softcap + tmax;
        if (f64) { to = tol_f64_out(max_abs_f64(ro, on), vmax); tl = tol_f64_lse(max_abs_finite_f64(rl, ln)); }
        else { to = tol_f32_out(smax, vmax, d, Lmax); tl = tol_f32_lse(smax, d, Lmax); }
        to.rel += su; tl.rel += su; to.abs += store_abs(c->storage);
        tbuf_read(&O2, go); tbuf_read(&L2, gl);
        r = compare_report("kv out", go, ro, od, "bnhd", to); note(g, kind, r, max_abs_f64(ro, on));
        CHECK(r.bad == 0, "kv out: %lld elements out of tolerance (worst %.3g x tol)", (long long)r.bad, r.max_frac);
        r = compare_report("kv lse", gl, rl, ld, "bhn.", tl); note(g, kind, r, max_abs_finite_f64(rl, ln));
        CHECK(r.bad == 0, "kv lse: %lld elements out of tolerance (worst %.3g x tol)", (long long)r.bad, r.max_frac);
        for (s = 0; c->partials && s < nsplit; s++) {   /* every split's partial, normalised within the split */
            double *rp = (double *)malloc(sizeof(double) * (size_t)on), *gp = (double *)malloc(sizeof(double) * (size_t)on);
            test_tol ts = to;
            tbuf_read(&rSO[s], rp); tbuf_read(&gSO[s], gp);
            if (f64) ts = tol_f64_out(max_abs_f64(rp, on), vmax), ts.rel += su, ts.abs += store_abs(c->storage);
            r = compare_report("kv split_out", gp, rp, od, "bnhd", ts); note(g, kind, r, max_abs_f64(rp, on));
            CHECK(r.bad == 0, "kv split_out[%lld]: %lld elements out of tolerance (worst %.3g x tol)", (long long)s,
                  (long long)r.bad, r.max_frac);
            tbuf_read(&rSL[s], rp); tbuf_read(&gSL[s], gp);
            if (f64) ts = tol_f64_lse(max_abs_finite_f64(rp, ln)), ts.rel += su; else ts = tl;
            r = compare_report("kv split_lse", gp, rp, ld, "bhn.", ts); note(g, kind, r, max_abs_finite_f64(rp, ln));
            CHECK(r.bad == 0, "kv split_lse[%lld]: %lld elements out of tolerance (worst %.3g x tol)", (long long)s,
                  (long long)r.bad, r.max_frac);
            free(rp); free(gp);
        }
        /* the caches: the CPU's bit for bit (written with update_cache, else untouched), and
           the new keys where the block table puts them */
        CHECK(tbuf_same(&gKc, &rKc) && tbuf_same(&gVc, &rVc), "kv: the caches differ from the CPU's after the call");
        CHECK(c->update || (tbuf_same(&gKc, &Kc) && tbuf_same(&gVc, &Vc)), "kv: the cache was written without update_cache");
        if (c->update) {
            int64_t bad = 0, e;
            for (bb = 0; bb < b; bb++)
                for (j = c->sl[bb]; j < c->sl[bb] + nn; j++) {
                    int64_t blk = table ? table[bb * mb + j / c->page] : bb, slot = table ? j % c->page : j;
                    for (kh = 0; kh < hk; kh++) {
                        for (e = 0; e < d; e++)
                            bad += ringattn__load(gKc.t.data, gKc.t.dtype, ringattn__index(&gKc.t, blk, slot, kh, e)) !=
                                   kall[((bb * Lmax + j) * hk + kh) * d + e];
                        for (e = 0; e < dv; e++)
                            bad += ringattn__load(gVc.t.data, gVc.t.dtype, ringattn__index(&gVc.t, blk, slot, kh, e)) !=
                                   vall[((bb * Lmax + j) * hk + kh) * dv + e];
                    }
                }
            CHECK(bad == 0, "kv update_cache: %lld new elements not in their slots", (long long)bad);
        }
        CHECK(gst.ring_size == 1 && gst.ring_steps == cst.ring_steps && gst.blocks_computed == cst.blocks_computed &&
              gst.blocks_skipped == cst.blocks_skipped,
              "kv stats: steps %lld blocks %lld/%lld, the CPU %lld %lld/%lld", (long long)gst.ring_steps, (long long)gst.blocks_computed,
              (long long)gst.blocks_skipped, (long long)cst.ring_steps, (long long)cst.blocks_computed, (long long)cst.blocks_skipped);
    }

    g->cases++;
    if (*failures != before) { g->failed++; kv_describe(c); }
    for (s = 0; c->partials && s < nsplit; s++) { tbuf_free(&rSO[s]); tbuf_free(&rSL[s]); tbuf_free(&gSO[s]); tbuf_free(&gSL[s]); }
    free(rSO); free(rSL); free(gSO); free(gSL); free(rso); free(rsl); free(gso); free(gsl); free(dso); free(dsl);
    tbuf_free(&Q); tbuf_free(&Kc); tbuf_free(&Vc); tbuf_free(&Kn); tbuf_free(&Vn); tbuf_free(&rKc); tbuf_free(&rVc);
    tbuf_free(&gKc); tbuf_free(&gVc); tbuf_free(&rO); tbuf_free(&rL); tbuf_free(&O2); tbuf_free(&L2);
    free(kall); free(vall); free(q); free(ro); free(rl); free(go); free(gl); free(table);
}

/* the grid: contiguous and paged caches (pages of 1, 3, 16 keys, shuffled blocks), with and
   without new keys, decode (nq = 1) and several queries (nq > L too), splits 1 .. more than
   the keys and split_size, partials, update_cache, sinks, ALiBi, windows, softcap, GQA / MQA,
   causal modes, f64 / f32 compute with f32 / f16 / bf16 storage, odd tiles, the precision
   emulation */
static void run_kv_grid(int mode, tally *T, int *failures)
{
    static const ringattn_dtype both2[2] = { RINGATTN_F64, RINGATTN_F32 };
    static const int64_t pages[4] = { 0, 1, 3, 16 };
    static const int64_t splits[5] = { 1, 2, 3, 7, 200 };
    int i, it, k = 0;
    for (i = 0; i < 20; i++) for (it = 0; it < 2; it++, k++) {
        kvcase c = kv_base(1 + i % 3, (i % 4 == 0) ? 1 : 1 + i % 5, both2[it]);
        c.page = pages[i % 4];
        c.nnew = (i % 3 == 1) ? 0 : 1 + i % 4;
        c.num_splits = splits[i % 5];
        if (i % 7 == 3) { c.num_splits = 0; c.split_size = 4 + i % 3; }
        c.causal = (i / 2) % 3;
        c.partials = i % 2;
        c.update = (c.nnew > 0 && i % 3 == 2);
        if (i % 5 == 1) { c.h = 4; c.hk = 2; }
        if (i % 5 == 3) { c.h = 4; c.hk = 1; }
        if (i % 6 == 4) c.sinks = 1;
        if (i % 6 == 5) c.alibi = 1 + i % 2;
        if (i % 8 == 6) { c.wl = 5; c.wr = c.causal ? -1 : 2; }
        if (i % 9 == 7) c.softcap = 2.5;
        if (i % 4 == 2) { c.sl[0] = 0; }                      /* an empty cache: only new keys, or nothing */
        if (i == 9) { c.nq = 9; c.sl[0] = 2; c.nnew = 1; c.causal = 1; }   /* nq > L: rows that see nothing */
        if (i == 13) { c.d = 40; c.dv = 24; c.scale = 0.4; }
        if (i == 17) c.layout = LAYOUT_REVERSED;
        if (it == 1 && i % 5 == 4) c.storage = RINGATTN_BF16;
        if (it == 1 && i % 5 == 1) c.storage = RINGATTN_F16;
        if (it == 0 && i % 7 == 5) c.storage = RINGATTN_F32;
        c.seed = 3000 + (uint64_t)k;
        check_kv_case(&c, mode, T, failures);
    }
    for (i = 0; i < 4; i++, k++) {   /* no key at all (every row: out 0, lse -inf or the sink), or
                                        more splits than a 32-bit count, without partials */
        kvcase c = kv_base(2, 2, both2[i % 2]);
        c.sl[0] = c.sl[1] = 0; c.page = (i < 2) ? 0 : 2; c.sinks = i % 2; c.causal = 1; c.partials = (i == 0);
        if (i == 3) { c.sl[0] = 5; c.sl[1] = 2; c.nnew = 1; c.num_splits = 5000000000LL; }
        c.seed = 3050 + (uint64_t)k;
        check_kv_case(&c, mode, T, failures);
    }
    for (i = 0; i < 6; i++, k++) {   /* every option at once, longer sequences, paged, over the dtypes */
        kvcase c = kv_base(3, 1 + i % 3, both2[i % 2]);
        c.page = (i < 3) ? 16 : 0; c.sl[0] = 150; c.sl[1] = 37; c.sl[2] = 0; c.nnew = 2;
        c.num_splits = (i % 3 == 2) ? 0 : 4 + i; c.split_size = (i % 3 == 2) ? 33 : 0;
        c.causal = 1 + i % 2; c.sinks = 1; c.alibi = 2; c.partials = 1; c.update = 1;
        c.h = 6; c.hk = 2; c.wl = (i == 1) ? 40 : -1; c.softcap = (i == 4) ? 5.0 : 0.0;
        if (i >= 4) c.storage = (i == 4) ? RINGATTN_F16 : RINGATTN_BF16;
        if (i == 5) c.compute = RINGATTN_F32;
        c.seed = 3100 + (uint64_t)k;
        check_kv_case(&c, mode, T, failures);
    }
    if (mode == MODE_EMULATE) {   /* odd tiles: splits start inside a tile's grid, rows end inside a tile */
        static const int tiles[3] = { 1, 5, 13 };
        for (i = 0; i < 3; i++) for (it = 0; it < 2; it++, k++) {
            kvcase c = kv_base(2, 7, both2[it]);
            c.tile = tiles[i]; c.page = 3 * i; c.sl[0] = 20; c.sl[1] = 3; c.nnew = 2; c.num_splits = 3 + i;
            c.causal = i % 3; c.h = 4; c.hk = 2; c.sinks = 1; c.alibi = 1; c.partials = 1;
            c.seed = 3200 + (uint64_t)k;
            check_kv_case(&c, mode, T, failures);
        }
    }
    for (i = 0; i < 4; i++, k++) {   /* precision emulation (f64 compute; splits of <= 64 keys: one tile each side) */
        kvcase c = kv_base(2, 3, RINGATTN_F64);
        c.page = (i % 2) ? 4 : 0; c.sl[0] = 40; c.sl[1] = 9; c.nnew = 1; c.num_splits = 2; c.causal = 1;
        c.round_p = (i != 2); c.round_state = (i % 2); c.round_block = (i >= 2); c.partials = 1; c.sinks = (i == 3);
        c.seed = 3300 + (uint64_t)k;
        check_kv_case(&c, mode, T, failures);
    }
}

/* bad arguments: ringattn_cuda_forward_kvcache refuses what ringattn_forward_kvcache refuses,
   with its status and sentence, and writes nothing (out, lse, the partials, the caches) */
static void check_kv_errors(int mode, int *failures)
{
    static double kc[6 * 2 * 1 * 4], vc[6 * 2 * 1 * 4], kn[2 * 1 * 1 * 4], vn[2 * 1 * 1 * 4], qq[2 * 2 * 2 * 4];
    static double o[2 * 2 * 2 * 4], ls[2 * 2 * 2], so[2][2 * 2 * 2 * 4], sl2[2][2 * 2 * 2], bb_[4], ml[8];
    static float knf[2 * 1 * 1 * 4];
    double pristine[6 * 2 * 1 * 4], pristine_v[6 * 2 * 1 * 4];
    ringattn_tensor Kc = ringattn_tensor_bnhd(kc, RINGATTN_F64, 6, 2, 1, 4), Vc = ringattn_tensor_bnhd(vc, RINGATTN_F64, 6, 2, 1, 4);
    ringattn_tensor Kn = ringattn_tensor_bnhd(kn, RINGATTN_F64, 2, 1, 1, 4), Vn = ringattn_tensor_bnhd(vn, RINGATTN_F64, 2, 1, 1, 4);
    ringattn_tensor Knf = ringattn_tensor_bnhd(knf, RINGATTN_F32, 2, 1, 1, 4);
    ringattn_tensor Q = ringattn_tensor_bnhd(qq, RINGATTN_F64, 2, 2, 2, 4), O = ringattn_tensor_bnhd(o, RINGATTN_F64, 2, 2, 2, 4);
    ringattn_tensor Obad = ringattn_tensor_bnhd(o, RINGATTN_F64, 2, 2, 2, 3), L = ringattn_tensor_lse(ls, RINGATTN_F64, 2, 2, 2);
    ringattn_tensor Lo = ringattn_tensor_lse(o, RINGATTN_F64, 2, 2, 2);   /* out's data */
    ringattn_tensor SO[2], SL[2], SLd[2], Bt = ringattn_tensor_bnhd(bb_, RINGATTN_F64, 1, 1, 2, 2);
    ringattn_tensor ML = ringattn_tensor_lse(ml, RINGATTN_F64, 2, 2, 2);
    int i, refused = 0, computed = 0;
    SO[0] = ringattn_tensor_bnhd(so[0], RINGATTN_F64, 2, 2, 2, 4); SO[1] = ringattn_tensor_bnhd(so[1], RINGATTN_F64, 2, 2, 2, 4);
    SL[0] = ringattn_tensor_lse(sl2[0], RINGATTN_F64, 2, 2, 2); SL[1] = ringattn_tensor_lse(sl2[1], RINGATTN_F64, 2, 2, 2);
    SLd[0] = SL[0]; SLd[1] = SL[0];
    for (i = 0; i < 22; i++) {
        ringattn_config cfg = ringattn_default_config();
        ringattn_kvcache kv;
        int32_t sl[2] = { 3, 1 }, tab[6] = { 4, 1, 2, 0, 5, 3 };
        char dcpu[256] = "", dgpu[256] = "";
        ringattn_tensor *out = &O, *lse = &L;
        int cpu, gpu, x, clean;
        memset(&kv, 0, sizeof kv);
        kv.k_cache = &Kc; kv.v_cache = &Vc; kv.block_table = tab; kv.max_blocks = 3; kv.cache_seqlens = sl;
        kv.k_new = &Kn; kv.v_new = &Vn; kv.num_splits = 2; kv.split_out = SO; kv.split_lse = SL; kv.num_split_outputs = 2;
        kv.update_cache = 1;
        cfg.causal = 1;
        switch (i) {
        case 0: break;                                                     /* computed */
        case 1: kv.cache_seqlens = NULL; break;
        case 2: sl[0] = -1; break;
        case 3: tab[1] = 6; break;                                         /* not a block of the cache */
        case 4: tab[3] = -2; break;
        case 5: kv.max_blocks = 1; break;
        case 6: kv.v_new = NULL; break;
        case 7: kv.num_splits = -1; break;
        case 8: kv.split_size = 2; break;                                  /* with num_splits 2 */
        case 9: cfg.ring_size = 2; break;
        case 10: cfg.bias = &Bt; break;
        case 11: kv.update_cache = 2; break;
        case 12: tab[3] = 1; break;                                        /* two new keys to one slot */
        case 13: out = &Obad; break;
        case 14: kv.num_split_outputs = 3; break;
        case 15: kv.k_new = &Knf; break;                                   /* not the cache's dtype */
        case 16: lse = &Lo; break;                                         /* lse shares out's data */
        case 17: cfg.max_logit = &ML; break;
        case 18: cfg.causal = 3; break;
        case 19: kv.block_table = NULL; kv.max_blocks = 0; sl[0] = 2; break;   /* contiguous: 2 + 1 > 2 positions */
        case 20: kv.split_lse = NULL; kv.split_out = NULL; kv.update_cache = 0; kv.block_table = NULL; kv.max_blocks = 0;
                 sl[0] = 2; sl[1] = 0; kv.num_split_outputs = 0; break;     /* computed: contiguous, no update */
        default: kv.split_lse = SLd; break;                                /* two partials share data */
        }
        for (x = 0; x < 48; x++) { kc[x] = 0.01 * (double)(x % 13); vc[x] = 0.02 * (double)(x % 7) - 0.05; }
        for (x = 0; x < 8; x++) { kn[x] = 0.3 - 0.05 * x; vn[x] = 0.1 * x; knf[x] = (float)kn[x]; }
        for (x = 0; x < 32; x++) qq[x] = 0.1 * (double)(x % 5);
        memcpy(pristine, kc, sizeof kc); memcpy(pristine_v, vc, sizeof vc);
        cfg.error_detail = dcpu; cfg.error_detail_size = sizeof dcpu;
        cpu = ringattn_forward_kvcache(&cfg, &kv, &Q, out, lse);
        CHECK((cpu == RINGATTN_OK) == (i == 0 || i == 20), "kv error case %d: the CPU returned %d (%s)", i, cpu, dcpu);
        if (mode == MODE_GPU && cpu == RINGATTN_OK) continue;   /* host memory: refused for that */
        /* fresh inputs and sentinel outputs for the CUDA call */
        for (x = 0; x < 48; x++) { kc[x] = 0.01 * (double)(x % 13); vc[x] = 0.02 * (double)(x % 7) - 0.05; }
        for (x = 0; x < 32; x++) o[x] = TEST_SENTINEL;
        for (x = 0; x < 8; x++) ls[x] = TEST_SENTINEL;
        for (x = 0; x < 32; x++) so[0][x] = so[1][x] = TEST_SENTINEL;
        for (x = 0; x < 8; x++) sl2[0][x] = sl2[1][x] = TEST_SENTINEL;
        cfg.error_detail = dgpu; cfg.error_detail_size = sizeof dgpu;
        gpu = (mode == MODE_EMULATE) ? ringattn_cuda__forward_kvcache(&cfg, &kv, &Q, out, lse, 1, 0)
                                     : ringattn_cuda_forward_kvcache(&cfg, &kv, &Q, out, lse);
        CHECK(gpu == cpu && strcmp(dcpu, dgpu) == 0 && (cpu == RINGATTN_OK || dcpu[0] != 0),
              "kv error case %d: CPU %d (%s), CUDA %d (%s)", i, cpu, dcpu, gpu, dgpu);
        clean = all_sentinel_f64(o, 32) && all_sentinel_f64(ls, 8) && all_sentinel_f64(so[0], 32) &&
                all_sentinel_f64(so[1], 32) && all_sentinel_f64(sl2[0], 8) && all_sentinel_f64(sl2[1], 8) &&
                memcmp(pristine, kc, sizeof kc) == 0 && memcmp(pristine_v, vc, sizeof vc) == 0;
        if (cpu == RINGATTN_OK) { computed++; CHECK(!clean, "kv error case %d: computed but nothing written", i); }
        else { refused++; CHECK(clean, "kv error case %d: refused (%s) but something was written", i, dgpu); }
    }
    {   /* kv NULL */
        ringattn_config cfg = ringattn_default_config();
        char dcpu[256] = "", dgpu[256] = "";
        int cpu, gpu;
        cfg.error_detail = dcpu; cfg.error_detail_size = sizeof dcpu;
        cpu = ringattn_forward_kvcache(&cfg, NULL, &Q, &O, &L);
        cfg.error_detail = dgpu; cfg.error_detail_size = sizeof dgpu;
        gpu = (mode == MODE_EMULATE) ? ringattn_cuda__forward_kvcache(&cfg, NULL, &Q, &O, &L, 1, 0)
                                     : ringattn_cuda_forward_kvcache(&cfg, NULL, &Q, &O, &L);
        CHECK(cpu != RINGATTN_OK && gpu == cpu && strcmp(dcpu, dgpu) == 0, "kv NULL: CPU %d (%s), CUDA %d (%s)", cpu, dcpu,
              gpu, dgpu);
        refused++;
    }
    if (mode == MODE_GPU) {   /* device tensors, but cache_seqlens in host memory: refused for that */
        ringattn_config cfg = ringattn_default_config();
        ringattn_kvcache kv;
        int32_t sl[2] = { 2, 1 };
        double *dev = NULL;
        char detail[256] = "";
        int st;
        cfg.error_detail = detail; cfg.error_detail_size = sizeof detail;
        if (cudaMalloc(&dev, sizeof(double) * 256) == cudaSuccess) {
            ringattn_tensor dK = ringattn_tensor_bnhd(dev, RINGATTN_F64, 2, 3, 1, 4), dV = ringattn_tensor_bnhd(dev + 32, RINGATTN_F64, 2, 3, 1, 4);
            ringattn_tensor dQ = ringattn_tensor_bnhd(dev + 64, RINGATTN_F64, 2, 2, 2, 4), dO = ringattn_tensor_bnhd(dev + 96, RINGATTN_F64, 2, 2, 2, 4);
            memset(&kv, 0, sizeof kv);
            kv.k_cache = &dK; kv.v_cache = &dV; kv.cache_seqlens = sl;
            st = ringattn_cuda_forward_kvcache(&cfg, &kv, &dQ, &dO, NULL);
            CHECK(st == RINGATTN_EUNSUPPORTED && strstr(detail, "cache_seqlens is not device memory"),
                  "kv: host cache_seqlens: %d (%s)", st, detail);
            cudaFree(dev);
        }
    }
    printf("kv errors    %d refusals with the CPU's status and sentence and nothing written, %d accepted alike (%s)\n",
           refused, computed, mode == MODE_GPU ? "GPU entry point" : "emulated");
}

/* ---------------------------------------------------------------- main */

int main(void)
{
    int fails = 0, *failures = &fails, count = 0;
    cudaError_t e;
    tally emu, gpu;
    memset(&emu, 0, sizeof emu); memset(&gpu, 0, sizeof gpu);

    printf("emulated (the kernels' block programs on the host) against the CPU:\n");
    run_grid(MODE_EMULATE, &emu, failures);
    print_tally("emulated, all", &emu);
    check_errors(MODE_EMULATE, failures);
    {
        tally kt;
        memset(&kt, 0, sizeof kt);
        run_kv_grid(MODE_EMULATE, &kt, failures);
        print_tally("kv cache, emulated", &kt);
        check_kv_errors(MODE_EMULATE, failures);
    }

    e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        /* no device: the entry point must say so, not crash */
        double buf[4] = { 1, 2, 3, 4 }, o[2];
        ringattn_tensor Q = ringattn_tensor_bnhd(buf, RINGATTN_F64, 1, 1, 1, 2);
        ringattn_tensor K = ringattn_tensor_bnhd(buf + 2, RINGATTN_F64, 1, 1, 1, 2);
        ringattn_tensor V = ringattn_tensor_bnhd(buf + 2, RINGATTN_F64, 1, 1, 1, 2);
        ringattn_tensor O = ringattn_tensor_bnhd(o, RINGATTN_F64, 1, 1, 1, 2);
        ringattn_config cfg = ringattn_default_config();
        char detail[256] = "";
        int st;
        cfg.error_detail = detail; cfg.error_detail_size = sizeof detail;
        st = ringattn_cuda_forward(&cfg, &Q, &K, &V, &O, NULL);
        CHECK(st == RINGATTN_ECUDA && detail[0] != 0, "without a device: status %d (%s)", st, detail);
        printf("no GPU       %s (%s)\n", st == RINGATTN_ECUDA ? "RINGATTN_ECUDA" : "unexpected status", detail);
        if (fails) { printf("FAIL: %d checks failed\n", fails); return TEST_FAIL; }
        printf("SKIP: no CUDA device (cudaGetDeviceCount: %s); the emulated kernels passed\n",
               e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        return TEST_SKIP;
    }
    {
        cudaDeviceProp prop;
        if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) printf("device       %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
    }
    check_conversions_gpu(failures);
    printf("GPU against the CPU:\n");
    run_grid(MODE_GPU, &gpu, failures);
    print_tally("GPU, all", &gpu);
    check_errors(MODE_GPU, failures);
    {
        tally kt;
        memset(&kt, 0, sizeof kt);
        run_kv_grid(MODE_GPU, &kt, failures);
        print_tally("kv cache, GPU", &kt);
        check_kv_errors(MODE_GPU, failures);
    }
    if (fails) { printf("FAIL: %d checks failed\n", fails); return TEST_FAIL; }
    printf("PASS\n");
    return TEST_PASS;
}
