/* test_cuda.cu - ringattn_cuda.h against the CPU reference (ringattn.h).

   Build by hand (from the repository root):
     nvcc -O2 -I. -Itests -gencode arch=compute_90,code=sm_90 \
          -gencode arch=compute_80,code=compute_80 tests/test_cuda.cu -o test_cuda

   Three parts, one verdict (exit 0 pass, 1 fail, 77 skipped = no GPU and the host parts passed):
     1. host: the __host__ __device__ conversions of ringattn_cuda.h against ringattn.h's own
        (every f16 and bf16 bit pattern loaded; 300,000 doubles stored, ties and edges included).
     2. emulated: the whole grid below through ringattn_cuda__forward / __backward with
        emulate = 1: the same kernels (block programs) and the same ring, run on the host over
        host memory, also with forced odd tile sizes. No GPU needed: this is what checks the
        kernels' index arithmetic on a machine without one.
     3. GPU: the same grid through ringattn_cuda_forward / ringattn_cuda_backward on device
        memory. Without a device: ringattn_cuda_forward must return RINGATTN_ECUDA with a
        message, and the test exits 77.
   The reference of every case is ringattn_forward / ringattn_backward in f64 (compute and
   storage) on the same (storage-rounded) inputs; the tolerance is the README's policy
   (tests/test_util.h): f64 within 1e-12 of the output scale, f32 within the f32 bound, plus
   one rounding to the storage dtype (2^-24, 2^-11, 2^-8 relative for f32, f16, bf16).

   Grid (forward and backward for every case): ring sizes 1..8 x causal modes x {f64, f32};
   lengths 1..1000; head dims 1..128 and dv != d; nq != nk both ways and both causal
   alignments (empty rows included); batch/heads, GQA, MQA; [b,h,n,d] and negative-stride
   views; f16 / bf16 / mixed storage; windows; dilated attention in both mixes (rates > 1,
   h not divisible by G, GQA). Also: errors are the CPU's, and host pointers are refused. */
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

static int same_double(double a, double b)
{
    if (a != a || b != b) return (a != a) && (b != b);
    return memcmp(&a, &b, sizeof a) == 0;
}

static void check_conversions(int *failures)
{
    int kind, bad = 0;
    uint32_t u;
    test_rng r = rng_seed(42);
    for (kind = 0; kind < 2; kind++) {
        int mant = kind ? 7 : 10, expb = kind ? 8 : 5;
        for (u = 0; u < 65536; u++) {
            double a = ringattn__small_float_to_double((uint16_t)u, mant, expb);
            double b = ringattn_cuda__small_float_to_double((uint16_t)u, mant, expb);
            if (!same_double(a, b) && bad++ < 5) printf("  load %s 0x%04x: cpu %.17g cuda %.17g\n", kind ? "bf16" : "f16", u, a, b);
            /* the value, its neighbours and the midpoints: ties to even */
            if (a == a && !isinf(a)) {
                double n1 = ringattn__small_float_to_double((uint16_t)(u + 1), mant, expb);
                double xs[4];
                int j;
                xs[0] = a; xs[1] = (a + n1) / 2; xs[2] = nextafter(xs[1], INFINITY); xs[3] = nextafter(xs[1], -INFINITY);
                for (j = 0; j < 4; j++) {
                    uint16_t c, g;
                    if (isinf(xs[j])) continue;   /* infinities: checked against constants below */
                    c = ringattn__double_to_small_float(xs[j], mant, expb);
                    g = ringattn_cuda__double_to_small_float(xs[j], mant, expb);
                    if (c != g && bad++ < 5) printf("  store %s %.17g: cpu 0x%04x cuda 0x%04x\n", kind ? "bf16" : "f16", xs[j], c, g);
                }
            }
        }
    }
    for (u = 0; u < 300000; u++) {   /* random doubles over a wide range of exponents */
        double x = (rng_uniform(&r) - 0.5) * ldexp(1.0, (int)(rng_next(&r) % 80) - 40);
        int kind2 = (int)(u & 1), mant = kind2 ? 7 : 10, expb = kind2 ? 8 : 5;
        uint16_t c = ringattn__double_to_small_float(x, mant, expb);
        uint16_t g = ringattn_cuda__double_to_small_float(x, mant, expb);
        if (c != g && bad++ < 5) printf("  store %.17g: cpu 0x%04x cuda 0x%04x\n", x, c, g);
    }
    {   /* specials, against their bit patterns (f16, bf16) */
        static const double sp[6] = { 0.0, -0.0, INFINITY, -INFINITY, 1e300, -1e300 };
        static const uint16_t want[6][2] = { { 0x0000, 0x0000 }, { 0x8000, 0x8000 }, { 0x7c00, 0x7f80 },
                                             { 0xfc00, 0xff80 }, { 0x7c00, 0x7f80 }, { 0xfc00, 0xff80 } };
        int j;
        for (j = 0; j < 6; j++)
            for (kind = 0; kind < 2; kind++) {
                uint16_t g = ringattn_cuda__double_to_small_float(sp[j], kind ? 7 : 10, kind ? 8 : 5);
                if (g != want[j][kind] && bad++ < 5) printf("  store %g as %s: 0x%04x, want 0x%04x\n", sp[j],
                                                            kind ? "bf16" : "f16", g, want[j][kind]);
            }
        for (kind = 0; kind < 2; kind++) {
            uint16_t g = ringattn_cuda__double_to_small_float(NAN, kind ? 7 : 10, kind ? 8 : 5);
            double back = ringattn_cuda__small_float_to_double(g, kind ? 7 : 10, kind ? 8 : 5);
            if (back == back) bad++;
        }
    }
    CHECK(bad == 0, "conversions: %d differences from ringattn.h", bad);
    printf("conversions  %s (f16 and bf16: 2 x 65536 loads, ~%d stores)\n", bad ? "FAIL" : "ok", 2 * 4 * 65536 + 300000);
}

/* ---------------------------------------------------------------- buffers */

enum { LAYOUT_BNHD, LAYOUT_BHND, LAYOUT_REVERSED };

typedef struct {
    void *base;              /* host buffer                                    */
    void *dev;               /* GPU mode: its device copy                      */
    int64_t count;
    ringattn_tensor t;       /* the view on the host buffer                    */
} tbuf;

static size_t dsize(ringattn_dtype dt) { return dt == RINGATTN_F64 ? 8 : dt == RINGATTN_F32 ? 4 : 2; }

static int tbuf_make(tbuf *b, ringattn_dtype dt, int layout, int64_t s0, int64_t s1, int64_t s2, int64_t s3)
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

static void tbuf_free(tbuf *b)
{
    free(b->base);
    if (b->dev) cudaFree(b->dev);
    b->base = b->dev = NULL;
}

/* logical contiguous f64 <-> view (ringattn.h's own conversions) */
static void tbuf_write(tbuf *b, const double *x)
{
    const ringattn_tensor *t = &b->t;
    int64_t i0, i1, i2, i3, n = 0;
    for (i0 = 0; i0 < t->shape[0]; i0++) for (i1 = 0; i1 < t->shape[1]; i1++)
    for (i2 = 0; i2 < t->shape[2]; i2++) for (i3 = 0; i3 < t->shape[3]; i3++, n++)
        ringattn__store(t->data, t->dtype, ringattn__index(t, i0, i1, i2, i3), x[n]);
}

static void tbuf_read(const tbuf *b, double *x)
{
    const ringattn_tensor *t = &b->t;
    int64_t i0, i1, i2, i3, n = 0;
    for (i0 = 0; i0 < t->shape[0]; i0++) for (i1 = 0; i1 < t->shape[1]; i1++)
    for (i2 = 0; i2 < t->shape[2]; i2++) for (i3 = 0; i3 < t->shape[3]; i3++, n++)
        x[n] = ringattn__load(t->data, t->dtype, ringattn__index(t, i0, i1, i2, i3));
}

static void tbuf_sentinel(tbuf *b)
{
    int64_t i;
    for (i = 0; i < b->count; i++) ringattn__store(b->base, b->t.dtype, i, TEST_SENTINEL);
}

/* GPU mode: the device copy and a view on it at the same offset */
static int tbuf_upload(tbuf *b, ringattn_tensor *dview)
{
    size_t bytes = (size_t)b->count * dsize(b->t.dtype);
    if (!b->dev && cudaMalloc(&b->dev, bytes) != cudaSuccess) return -1;
    if (cudaMemcpy(b->dev, b->base, bytes, cudaMemcpyHostToDevice) != cudaSuccess) return -1;
    *dview = b->t;
    dview->data = (char *)b->dev + ((char *)b->t.data - (char *)b->base);
    return 0;
}

static int tbuf_download(tbuf *b)
{
    return cudaMemcpy(b->base, b->dev, (size_t)b->count * dsize(b->t.dtype), cudaMemcpyDeviceToHost) == cudaSuccess ? 0 : -1;
}

/* ---------------------------------------------------------------- one case */

#define MAXG 6

typedef struct {
    int64_t b, nq, nk, h, hk, d, dv;
    int causal, p, layout, wl, wr;
    ringattn_dtype storage, compute;
    double scale;
    int G, mix;
    int64_t seg[MAXG], rate[MAXG];
    int tile;                 /* emulation: forced tile (0 = as the GPU would choose) */
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
           "storage=%d compute=%d G=%d mix=%d tile=%d seed=%llu\n", (long long)c->b, (long long)c->nq,
           (long long)c->nk, (long long)c->h, (long long)c->hk, (long long)c->d, (long long)c->dv, c->causal, c->p,
           c->layout, c->wl, c->wr, (int)c->storage, (int)c->compute, c->G, c->mix, c->tile, (unsigned long long)c->seed);
}

/* worst errors: f64 compute (any storage), f32 compute, and f64 compute with f64 storage */
typedef struct { double f64, f32, f64_frac, f32_frac, f64s; int cases, failed; } tally;

static ringattn_config case_config(const ccase *c, ringattn_dtype compute)
{
    ringattn_config cfg = ringattn_default_config();
    cfg.causal = c->causal; cfg.ring_size = c->p; cfg.compute = compute; cfg.scale = c->scale;
    cfg.window_left = c->wl; cfg.window_right = c->wr;
    if (c->G > 0) {
        cfg.num_groups = c->G; cfg.segment_lengths = c->seg; cfg.dilation_rates = c->rate;
        cfg.mix = (ringattn_mix)c->mix;
    }
    return cfg;
}

/* relative rounding of one store into `dt` */
static double store_u(ringattn_dtype dt)
{
    return dt == RINGATTN_F64 ? 0.0 : dt == RINGATTN_F32 ? TEST_U32 : dt == RINGATTN_F16 ? 1.0 / 2048 : 1.0 / 256;
}

static void note(tally *g, int f64, test_cmp r)
{
    if (f64 == 2) { if (r.max_abs > g->f64s) g->f64s = r.max_abs; f64 = 1; }
    if (f64) { if (r.max_abs > g->f64) g->f64 = r.max_abs; if (r.max_frac > g->f64_frac) g->f64_frac = r.max_frac; }
    else { if (r.max_abs > g->f32) g->f32 = r.max_abs; if (r.max_frac > g->f32_frac) g->f32_frac = r.max_frac; }
}

static int64_t dims4(int64_t *d, int64_t a, int64_t b, int64_t c, int64_t e)
{
    d[0] = a; d[1] = b; d[2] = c; d[3] = e;
    return a * b * c * e;
}

/* forward and backward of one case: reference on the CPU in f64, then the CUDA path */
static void check_case(const ccase *c, int mode, tally *g, int *failures)
{
    int64_t od[4], ld[4], qd[4], kd[4], vd[4];
    int64_t nq_ = dims4(qd, c->b, c->nq, c->h, c->d), nk_ = dims4(kd, c->b, c->nk, c->hk, c->d);
    int64_t nv_ = dims4(vd, c->b, c->nk, c->hk, c->dv), no_ = dims4(od, c->b, c->nq, c->h, c->dv);
    int64_t nl_ = dims4(ld, c->b, c->h, c->nq, 1);
    int before = *failures, f64 = (c->compute == RINGATTN_F64), st, i;
    double *x[12];
    double *q, *k, *v, *go, *ro, *gl, *rl, *dO, *gdq, *rdq, *gdk, *rdk;
    double *gdv, *rdv;
    tbuf Q, K, V, O, L, G, DQ, DK, DV, rQ, rK, rV, rO, rL, rG, rDQ, rDK, rDV;
    ringattn_config cfg;
    ringattn_stats cst, gst;
    double vmax, smax, scale = c->scale != 0 ? c->scale : 1.0 / sqrt((double)c->d), su = store_u(c->storage);
    test_tol to, tl, tg;
    test_cmp r;
    if (c->p > c->nq || c->p > c->nk) return;
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

    /* reference: the CPU in f64; out and lse then become the backward's inputs */
    cfg = case_config(c, RINGATTN_F64);
    cfg.stats = &cst;
    st = ringattn_forward(&cfg, &rQ.t, &rK.t, &rV.t, &rO.t, &rL.t);
    CHECK(st == RINGATTN_OK, "reference forward returned %d", st);
    tbuf_read(&rO, ro); tbuf_read(&rL, rl);
    tbuf_write(&O, ro); tbuf_write(&L, rl);          /* backward inputs, in storage */
    tbuf_read(&O, go); tbuf_write(&rO, go);          /* the reference backward sees the same */
    tbuf_read(&L, gl); tbuf_write(&rL, gl);
    cfg.stats = NULL;                                /* keep the forward's stats in cst */
    st = ringattn_backward(&cfg, &rQ.t, &rK.t, &rV.t, &rO.t, &rL.t, &rG.t, &rDQ.t, &rDK.t, &rDV.t);
    CHECK(st == RINGATTN_OK, "reference backward returned %d", st);
    tbuf_read(&rDQ, rdq); tbuf_read(&rDK, rdk); tbuf_read(&rDV, rdv);

    /* the CUDA path: forward into fresh outputs */
    {
        tbuf O2, L2;
        ringattn_config gc = case_config(c, c->compute);
        char detail[256] = "";
        gc.stats = &gst; gc.error_detail = detail; gc.error_detail_size = sizeof detail;
        tbuf_make(&O2, c->storage, c->layout, c->b, c->nq, c->h, c->dv);
        tbuf_make(&L2, c->storage, c->layout, c->b, c->h, c->nq, 1);
        tbuf_sentinel(&O2); tbuf_sentinel(&L2);
        if (mode == MODE_EMULATE) {
            st = ringattn_cuda__forward(&gc, &Q.t, &K.t, &V.t, &O2.t, &L2.t, 1, c->tile);
        } else {
            ringattn_tensor dq_, dk_, dv_, do_, dl_;
            st = -100;
            if (!tbuf_upload(&Q, &dq_) && !tbuf_upload(&K, &dk_) && !tbuf_upload(&V, &dv_) &&
                !tbuf_upload(&O2, &do_) && !tbuf_upload(&L2, &dl_)) {
                st = ringattn_cuda_forward(&gc, &dq_, &dk_, &dv_, &do_, &dl_);
                if (st == RINGATTN_OK && (tbuf_download(&O2) || tbuf_download(&L2))) st = -101;
            }
        }
        CHECK(st == RINGATTN_OK, "cuda forward returned %d (%s) %s", st, ringattn_strerror(st), detail);
        if (st == RINGATTN_OK) {
            tbuf_read(&O2, go); tbuf_read(&L2, gl);
            vmax = max_abs_f64(v, nv_);
            if (f64) { to = tol_f64_out(max_abs_f64(ro, no_), vmax); tl = tol_f64_lse(max_abs_finite_f64(rl, nl_)); }
            else {
                smax = tol_smax(q, k, c->b, c->nq, c->nk, c->h, c->hk, c->d, scale);
                to = tol_f32_out(smax, vmax, c->d, c->nk); tl = tol_f32_lse(smax, c->d, c->nk);
            }
            to.rel += su; tl.rel += su;
            r = compare_report("out", go, ro, od, "bnhd", to); note(g, f64 && c->storage == RINGATTN_F64 ? 2 : f64, r);
            CHECK(r.bad == 0, "forward out: %lld elements out of tolerance (worst %.3g x tol)", (long long)r.bad, r.max_frac);
            r = compare_report("lse", gl, rl, ld, "bhn.", tl); note(g, f64 && c->storage == RINGATTN_F64 ? 2 : f64, r);
            CHECK(r.bad == 0, "forward lse: %lld elements out of tolerance (worst %.3g x tol)", (long long)r.bad, r.max_frac);
            CHECK(gst.ring_size == c->p && gst.ring_steps == c->p, "stats: ring_size %d", gst.ring_size);
            CHECK(gst.blocks_computed == cst.blocks_computed && gst.blocks_skipped == cst.blocks_skipped,
                  "stats: blocks computed/skipped %lld/%lld, the CPU %lld/%lld", (long long)gst.blocks_computed,
                  (long long)gst.blocks_skipped, (long long)cst.blocks_computed, (long long)cst.blocks_skipped);
            CHECK(gst.handoffs == cst.handoffs, "stats: handoffs %lld, CPU %lld", (long long)gst.handoffs, (long long)cst.handoffs);
            CHECK(gst.peak_bytes_per_member == gst.planned_bytes_per_member &&
                  (!f64 || gst.planned_bytes_per_member == cst.planned_bytes_per_member),
                  "stats: peak %zu planned %zu CPU %zu", gst.peak_bytes_per_member, gst.planned_bytes_per_member,
                  cst.planned_bytes_per_member);
        }
        tbuf_free(&O2); tbuf_free(&L2);
    }

    /* the CUDA path: backward */
    {
        ringattn_config gc = case_config(c, c->compute);
        char detail[256] = "";
        gc.error_detail = detail; gc.error_detail_size = sizeof detail;
        tbuf_sentinel(&DQ); tbuf_sentinel(&DK); tbuf_sentinel(&DV);
        if (mode == MODE_EMULATE) {
            st = ringattn_cuda__backward(&gc, &Q.t, &K.t, &V.t, &O.t, &L.t, &G.t, &DQ.t, &DK.t, &DV.t, 1, c->tile);
        } else {
            ringattn_tensor a[9];
            st = -100;
            if (!tbuf_upload(&Q, &a[0]) && !tbuf_upload(&K, &a[1]) && !tbuf_upload(&V, &a[2]) && !tbuf_upload(&O, &a[3]) &&
                !tbuf_upload(&L, &a[4]) && !tbuf_upload(&G, &a[5]) && !tbuf_upload(&DQ, &a[6]) &&
                !tbuf_upload(&DK, &a[7]) && !tbuf_upload(&DV, &a[8])) {
                st = ringattn_cuda_backward(&gc, &a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &a[6], &a[7], &a[8]);
                if (st == RINGATTN_OK && (tbuf_download(&DQ) || tbuf_download(&DK) || tbuf_download(&DV))) st = -101;
            }
        }
        CHECK(st == RINGATTN_OK, "cuda backward returned %d (%s) %s", st, ringattn_strerror(st), detail);
        if (st == RINGATTN_OK) {
            double *got[3], *ref[3]; int64_t n[3], *dd[3]; const char *nm[3] = { "dq", "dk", "dv" };
            got[0] = gdq; got[1] = gdk; got[2] = gdv; ref[0] = rdq; ref[1] = rdk; ref[2] = rdv;
            n[0] = nq_; n[1] = nk_; n[2] = nv_; dd[0] = qd; dd[1] = kd; dd[2] = vd;
            tbuf_read(&DQ, gdq); tbuf_read(&DK, gdk); tbuf_read(&DV, gdv);
            smax = tol_smax(q, k, c->b, c->nq, c->nk, c->h, c->hk, c->d, scale);
            for (i = 0; i < 3; i++) {
                double gs = max_abs_f64(ref[i], n[i]);
                if (gs < 1) gs = 1;
                tg.abs = f64 ? 1e-12 * gs : gs * TEST_U32 * (2.0 * (double)c->d * smax + (double)(c->nq + c->nk) + 16.0);
                tg.rel = su;
                r = compare_report(nm[i], got[i], ref[i], dd[i], "bnhd", tg); note(g, f64 && c->storage == RINGATTN_F64 ? 2 : f64, r);
                CHECK(r.bad == 0, "backward %s: %lld elements out of tolerance (worst %.3g x tol)", nm[i],
                      (long long)r.bad, r.max_frac);
            }
        }
    }

    g->cases++;
    if (*failures != before) { g->failed++; describe(c); }
    for (i = 0; i < 12; i++) free(x[i]);
    tbuf_free(&Q); tbuf_free(&K); tbuf_free(&V); tbuf_free(&O); tbuf_free(&L); tbuf_free(&G);
    tbuf_free(&DQ); tbuf_free(&DK); tbuf_free(&DV); tbuf_free(&rQ); tbuf_free(&rK); tbuf_free(&rV);
    tbuf_free(&rO); tbuf_free(&rL); tbuf_free(&rG); tbuf_free(&rDQ); tbuf_free(&rDK); tbuf_free(&rDV);
}

/* ---------------------------------------------------------------- the grid */

static const ringattn_dtype both[2] = { RINGATTN_F64, RINGATTN_F32 };

static void run_grid(int mode, tally *g, int *failures)
{
    int i, it, causal, k = 0;
    /* ring sizes x causal x dtype */
    {
        static const int ps[6] = { 1, 2, 3, 4, 7, 8 };
        for (i = 0; i < 6; i++) for (causal = 0; causal <= 2; causal++) for (it = 0; it < 2; it++, k++) {
            ccase c = base_case(129, ps[i], both[it]);
            c.causal = causal; c.seed = 100 + (uint64_t)k;
            check_case(&c, mode, g, failures);
        }
    }
    /* lengths */
    {
        static const int cfgs[][3] = { { 1, 1, 0 }, { 1, 1, 1 }, { 7, 7, 1 }, { 7, 3, 0 }, { 64, 8, 2 },
                                       { 1000, 8, 1 }, { 1000, 3, 0 } };
        for (i = 0; i < 7; i++) for (it = 0; it < 2; it++) {
            ccase c = base_case(cfgs[i][0], cfgs[i][1], both[it]);
            c.causal = cfgs[i][2]; c.d = c.dv = 64; c.seed = 200 + (uint64_t)(2 * i + it);
            check_case(&c, mode, g, failures);
        }
    }
    /* head dims, dv != d */
    {
        static const int64_t dims[][2] = { { 1, 1 }, { 64, 64 }, { 128, 128 }, { 64, 32 }, { 16, 48 } };
        for (i = 0; i < 5; i++) for (it = 0; it < 2; it++) {
            ccase c = base_case(64, 4, both[it]);
            c.d = dims[i][0]; c.dv = dims[i][1]; c.causal = i % 3; c.seed = 300 + (uint64_t)(2 * i + it);
            check_case(&c, mode, g, failures);
        }
    }
    /* nq != nk, both causal alignments (nq > nk bottom-right: empty rows) */
    {
        static const int64_t shapes[2][2] = { { 64, 129 }, { 129, 64 } };
        for (i = 0; i < 2; i++) for (causal = 0; causal <= 2; causal++) for (it = 0; it < 2; it++, k++) {
            ccase c = base_case(shapes[i][0], 3 + 5 * (k % 2), both[it]);
            c.nk = shapes[i][1]; c.causal = causal; c.seed = 400 + (uint64_t)k;
            check_case(&c, mode, g, failures);
        }
    }
    /* batch and heads, GQA, MQA */
    {
        static const int64_t bh[3][3] = { { 2, 3, 3 }, { 2, 4, 2 }, { 1, 4, 1 } };
        for (i = 0; i < 3; i++) for (it = 0; it < 2; it++) {
            ccase c = base_case(100, 4, both[it]);
            c.b = bh[i][0]; c.h = bh[i][1]; c.hk = bh[i][2]; c.causal = 1 + (i % 2); c.seed = 500 + (uint64_t)(2 * i + it);
            check_case(&c, mode, g, failures);
        }
    }
    /* layouts */
    for (i = LAYOUT_BHND; i <= LAYOUT_REVERSED; i++) for (it = 0; it < 2; it++) {
        ccase c = base_case(77, 3, both[it]);
        c.b = 2; c.h = 3; c.hk = 3; c.layout = i; c.causal = it; c.seed = 600 + (uint64_t)(i * 2 + it);
        check_case(&c, mode, g, failures);
    }
    /* storage dtypes: f16, bf16 with f32 compute; mixed */
    {
        static const ringattn_dtype st[4][2] = { { RINGATTN_F16, RINGATTN_F32 }, { RINGATTN_BF16, RINGATTN_F32 },
                                                 { RINGATTN_F32, RINGATTN_F64 }, { RINGATTN_BF16, RINGATTN_F64 } };
        for (i = 0; i < 4; i++) {
            ccase c = base_case(96, 3, st[i][1]);
            c.storage = st[i][0]; c.causal = i % 3; c.scale = (i == 2) ? 0.3 : 0.0; c.seed = 700 + (uint64_t)i;
            check_case(&c, mode, g, failures);
        }
    }
    /* windows */
    {
        static const int w[5][3] = { { 8, 0, 0 }, { 3, 5, 0 }, { 0, 0, 0 }, { 16, -1, 1 }, { 5, 2, 2 } };
        for (i = 0; i < 5; i++) for (it = 0; it < 2; it++) {
            ccase c = base_case(90, 4, both[it]);
            c.wl = w[i][0]; c.wr = w[i][1]; c.causal = w[i][2]; c.seed = 800 + (uint64_t)(2 * i + it);
            if (i == 4) c.nk = 70;
            check_case(&c, mode, g, failures);
        }
    }
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
                check_case(&c, mode, g, failures);
            }
        }
    }
    /* forced tile sizes (emulation only: on the GPU the tile follows the device) */
    if (mode == MODE_EMULATE) {
        static const int tiles[5] = { 1, 5, 13, 32, 64 };
        for (i = 0; i < 5; i++) for (it = 0; it < 2; it++) {
            ccase c = base_case(70, 3, both[it]);
            c.tile = tiles[i]; c.causal = i % 3; c.nk = (i == 3) ? 50 : 70; c.h = 4; c.hk = 2;
            if (i == 4) { c.G = 2; c.seg[0] = 10; c.seg[1] = 35; c.rate[0] = 2; c.rate[1] = 1; c.nk = 70; c.mix = it; }
            if (i == 2) { c.wl = 9; c.wr = 4; }
            c.seed = 1000 + (uint64_t)(2 * i + it);
            check_case(&c, mode, g, failures);
        }
    }
}

/* ---------------------------------------------------------------- errors */

/* the CUDA entry points refuse what the CPU refuses, with the CPU's status */
static void check_errors(int mode, int *failures)
{
    double buf[4 * 8 * 2 * 4];
    ringattn_tensor Q = ringattn_tensor_bnhd(buf, RINGATTN_F64, 1, 8, 2, 4);
    ringattn_tensor K = ringattn_tensor_bnhd(buf + 64, RINGATTN_F64, 1, 8, 2, 4);
    ringattn_tensor V = ringattn_tensor_bnhd(buf + 128, RINGATTN_F64, 1, 8, 2, 4);
    ringattn_tensor O = ringattn_tensor_bnhd(buf + 192, RINGATTN_F64, 1, 8, 2, 4);
    ringattn_tensor Bad = ringattn_tensor_bnhd(buf + 192, RINGATTN_F64, 1, 8, 2, 5);
    int64_t seg = 3, rate = 1;
    int i;
    for (i = 0; i < 8; i++) {
        ringattn_config cfg = ringattn_default_config();
        char detail[256] = "";
        const ringattn_tensor *o = &O;
        int cpu, gpu;
        cfg.error_detail = detail; cfg.error_detail_size = sizeof detail;
        switch (i) {
        case 0: cfg.softcap = 1.0; break;
        case 1: cfg.partition = RINGATTN_ZIGZAG; break;
        case 2: cfg.ring_size = 9; break;
        case 3: cfg.num_groups = 1; cfg.segment_lengths = &seg; cfg.dilation_rates = &rate; break;
        case 4: o = &Bad; break;
        case 5: cfg.compute = RINGATTN_F16; break;
        case 6: cfg.causal = 3; break;
        default: cfg.num_groups = 1; cfg.segment_lengths = &seg; cfg.dilation_rates = &rate; seg = 4; cfg.window_left = 2; break;
        }
        memset(buf, 0, sizeof buf);
        cpu = ringattn_forward(&cfg, &Q, &K, &V, (ringattn_tensor *)o, NULL);
        detail[0] = 0;
        gpu = (mode == MODE_EMULATE) ? ringattn_cuda__forward(&cfg, &Q, &K, &V, (ringattn_tensor *)o, NULL, 1, 0)
                                     : ringattn_cuda_forward(&cfg, &Q, &K, &V, (ringattn_tensor *)o, NULL);
        /* the CPU may implement more than the kernels (partitions, softcap): then the CUDA
           path must still refuse it, with RINGATTN_EUNSUPPORTED */
        if (cpu == RINGATTN_OK) cpu = RINGATTN_EUNSUPPORTED;
        CHECK(gpu == cpu && detail[0] != 0, "error case %d: CPU %d, CUDA %d (%s)", i, cpu, gpu, detail);
    }
    if (mode == MODE_GPU) {   /* valid arguments, but host memory */
        ringattn_config cfg = ringattn_default_config();
        char detail[256] = "";
        int st;
        cfg.error_detail = detail; cfg.error_detail_size = sizeof detail;
        st = ringattn_cuda_forward(&cfg, &Q, &K, &V, &O, NULL);
        CHECK(st == RINGATTN_EUNSUPPORTED && strstr(detail, "device memory"), "host pointers: %d (%s)", st, detail);
    }
    printf("errors       %s\n", mode == MODE_GPU ? "checked on the GPU entry points" : "checked (emulated)");
}

/* ---------------------------------------------------------------- main */

static void print_tally(const char *what, const tally *g)
{
    printf("%-12s %3d cases, %d failed | worst f64 %.2e (%.3f tol; f64 storage %.2e) | worst f32 %.2e (%.3f tol)\n",
           what, g->cases, g->failed, g->f64, g->f64_frac, g->f64s, g->f32, g->f32_frac);
}

int main(void)
{
    int fails = 0, *failures = &fails, count = 0;
    cudaError_t e;
    tally emu, gpu;
    memset(&emu, 0, sizeof emu); memset(&gpu, 0, sizeof gpu);

    check_conversions(failures);
    run_grid(MODE_EMULATE, &emu, failures);
    print_tally("emulated", &emu);
    check_errors(MODE_EMULATE, failures);

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
        printf("SKIP: no CUDA device (cudaGetDeviceCount: %s); host conversions and emulated kernels passed\n",
               e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        return TEST_SKIP;
    }
    {
        cudaDeviceProp prop;
        if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) printf("device       %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
    }
    run_grid(MODE_GPU, &gpu, failures);
    print_tally("GPU", &gpu);
    check_errors(MODE_GPU, failures);
    if (fails) { printf("FAIL: %d checks failed\n", fails); return TEST_FAIL; }
    printf("PASS\n");
    return TEST_PASS;
}
