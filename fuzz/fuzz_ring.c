/* fuzz_ring.c - differential libFuzzer harness: ringattn_forward / ringattn_backward against
   the naive f64 oracle of reference/, on configurations decoded from the fuzzer's bytes.

   Build and run (clang with libFuzzer, AddressSanitizer and UBSan):
       clang -std=c99 -g -O1 -fsanitize=fuzzer,address,undefined -I. -Ireference -Itests \
             fuzz/fuzz_ring.c reference/ringattn_ref.c -lm -o fuzz_ring
       ./fuzz_ring -jobs=1 -max_total_time=60 fuzz/corpus/ring
   Meson builds it as `fuzz_ring` next to `fuzz_npy`; .ci/run runs it for about a minute.

   One input = one call. The first bytes pick the configuration: forward or backward, b, nq,
   nk, h, hk, d, dv (all tiny, n <= 64), the compute dtype, a storage dtype per tensor (f32,
   f64, f16, bf16), a layout per tensor (any of the 24 axis orders, negative strides, padding
   between rows, zero strides on inputs), ring size (valid or not), threads, causal 0..3,
   window, dilation (groups, segments, rates, mix), scale, and at most one "bad value" (NULL
   data, aliasing, a zero output stride, a wrong shape, an unknown dtype, an overflowing shape
   or stride, an unsupported option, ...). The rest of the bytes seed the values.

   The harness decides on its own, from the rules of docs/api.md and docs/semantics.md, whether the call is valid:
     valid   -> RINGATTN_OK, every element within tolerance of the oracle fed the same
                (already rounded) inputs, and not one byte of an output buffer outside the
                view touched;
     invalid -> a negative status, a message in error_detail, and every output byte untouched.
   Tolerances (tests/test_util.h): f64 compute 1e-12 of the output scale; f32 compute the
   the policy of docs/golden.md; gradients the same with the gradient scale bounded from the inputs (see
   grad_scale). An output stored in f32 (from f64 compute), f16 or bf16 widens the bound by one
   rounding to that format (half an ulp, relative, plus half the smallest subnormal).
   Any disagreement prints the case and calls abort(). */
#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"
#include "ringattn_ref.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NT 9                    /* tensors of a call (backward: all nine; forward: five)      */
enum { TQ, TK, TV, TO, TL, TDO, TDQ, TDK, TDV };
static const char *const tname[NT] = { "q", "k", "v", "out", "lse", "dout", "dq", "dk", "dv" };
#define SENT 0x7B               /* every output byte starts as this                           */
#define MAX_ELEMS (1 << 16)     /* larger buffers are never needed by a valid case            */

/* ---------------------------------------------------------------- the byte reader */
typedef struct { const uint8_t *p; size_t n, i; } reader;
static unsigned rd(reader *r) { return r->i < r->n ? r->p[r->i++] : 0u; }
static int pick(reader *r, int k) { return (int)(rd(r) % (unsigned)k); }

/* ---------------------------------------------------------------- f16 / bf16, written anew */
static double half_decode(uint16_t h, int mb, int eb)
{
    int bias = (1 << (eb - 1)) - 1, e = (h >> mb) & ((1 << eb) - 1), m = h & ((1 << mb) - 1);
    double s = (h & 0x8000) ? -1.0 : 1.0;
    if (e == (1 << eb) - 1) return m ? (double)NAN : s * (double)INFINITY;
    if (e == 0) return s * ldexp((double)m, 1 - bias - mb);
    return s * ldexp(1.0 + ldexp((double)m, -mb), e - bias);
}
static uint16_t half_encode(double x, int mb, int eb)    /* round to nearest even, |x| small */
{
    int bias = (1 << (eb - 1)) - 1, e;
    uint16_t sg = (uint16_t)(x < 0 ? 0x8000 : 0);
    double a = fabs(x), m;
    if (a == 0) return sg;
    if (a < ldexp(1.0, 1 - bias)) return (uint16_t)(sg | (uint16_t)rint(ldexp(a, bias - 1 + mb)));
    e = ilogb(a);
    m = rint(ldexp(a, mb - e));
    if (m >= ldexp(1.0, mb + 1)) { m /= 2; e++; }
    if (e + bias >= (1 << eb) - 1) return (uint16_t)(sg | (((1 << eb) - 1) << mb));
    return (uint16_t)(sg | ((e + bias) << mb) | ((uint16_t)m & ((1 << mb) - 1)));
}
static size_t esize(int dt) { return dt == RINGATTN_F64 ? 8 : dt == RINGATTN_F32 ? 4 : 2; }
static double get(const void *base, int dt, int64_t i)
{
    switch (dt) {
    case RINGATTN_F32: return ((const float *)base)[i];
    case RINGATTN_F64: return ((const double *)base)[i];
    case RINGATTN_F16: return half_decode(((const uint16_t *)base)[i], 10, 5);
    default:           return half_decode(((const uint16_t *)base)[i], 7, 8);
    }
}
static void put(void *base, int dt, int64_t i, double x)
{
    switch (dt) {
    case RINGATTN_F32: ((float *)base)[i] = (float)x; break;
    case RINGATTN_F64: ((double *)base)[i] = x; break;
    case RINGATTN_F16: ((uint16_t *)base)[i] = half_encode(x, 10, 5); break;
    default:           ((uint16_t *)base)[i] = half_encode(x, 7, 8); break;
    }
}
/* one rounding to storage dtype dt: relative half-ulp and half the smallest subnormal */
static void store_err(int dt, int ct, double *rel, double *abs_)
{
    *rel = 0; *abs_ = 0;
    if (dt == RINGATTN_F32 && ct == RINGATTN_F64) { *rel = ldexp(1.0, -24); *abs_ = ldexp(1.0, -150); }
    if (dt == RINGATTN_F16) { *rel = ldexp(1.0, -11); *abs_ = ldexp(1.0, -25); }
    if (dt == RINGATTN_BF16) { *rel = ldexp(1.0, -8); *abs_ = ldexp(1.0, -134); }
}

/* ---------------------------------------------------------------- a case */
typedef struct {
    int used;                   /* part of this call                                          */
    int dt;                     /* storage dtype (may be invalid on purpose)                  */
    int64_t shape[4], stride[4];
    int64_t base, elems;        /* offset of element (0,0,0,0) and buffer length, elements   */
    int huge;                   /* a deliberately overflowing shape/stride: no real buffer    */
    int is_out;
    unsigned char *buf;         /* the allocation                                             */
    ringattn_tensor t;
} tspec;

typedef struct {
    int backward;
    int64_t b, nq, nk, h, hk, d, dv;
    ringattn_config cfg;
    int64_t seg[4], rate[4], cuq[8], cuk[8];
    int bad;                    /* which bad value was planted (0 none)                       */
    int lse_null;               /* forward without lse                                        */
    tspec T[NT];
} fcase;

static void die(const fcase *c, const char *fmt, double a, double b)
{
    int i;
    fprintf(stderr, "fuzz_ring: MISMATCH: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n  %s b=%lld nq=%lld nk=%lld h=%lld hk=%lld d=%lld dv=%lld compute=%d ring=%d threads=%d "
            "causal=%d window=(%d,%d) groups=%d mix=%d scale=%.17g softcap=%g partition=%d num_seqs=%d bad=%d lse_null=%d\n",
            c->backward ? "backward" : "forward", (long long)c->b, (long long)c->nq, (long long)c->nk,
            (long long)c->h, (long long)c->hk, (long long)c->d, (long long)c->dv, (int)c->cfg.compute,
            c->cfg.ring_size, c->cfg.num_threads, c->cfg.causal, c->cfg.window_left, c->cfg.window_right,
            c->cfg.num_groups, (int)c->cfg.mix, c->cfg.scale, c->cfg.softcap, (int)c->cfg.partition, c->cfg.num_seqs,
            c->bad, c->lse_null);
    for (i = 0; i < c->cfg.num_seqs && i < 7; i++)
        fprintf(stderr, "  sequence %d: q [%lld, %lld) k [%lld, %lld)\n", i, (long long)c->cuq[i], (long long)c->cuq[i + 1],
                (long long)c->cuk[i], (long long)c->cuk[i + 1]);
    for (i = 0; i < c->cfg.num_groups && i < 4; i++)
        fprintf(stderr, "  group %d: segment %lld rate %lld\n", i, (long long)c->seg[i], (long long)c->rate[i]);
    for (i = 0; i < NT; i++)
        if (c->T[i].used)
            fprintf(stderr, "  %-4s dt=%d shape=[%lld %lld %lld %lld] stride=[%lld %lld %lld %lld]\n", tname[i],
                    c->T[i].dt, (long long)c->T[i].shape[0], (long long)c->T[i].shape[1],
                    (long long)c->T[i].shape[2], (long long)c->T[i].shape[3], (long long)c->T[i].stride[0],
                    (long long)c->T[i].stride[1], (long long)c->T[i].stride[2], (long long)c->T[i].stride[3]);
    abort();
}

/* a layout for shape: axis order perm (0..23), negative axes (bits), padding per axis */
static void make_layout(tspec *s, reader *r, int allow_zero)
{
    int order[4] = { 0, 1, 2, 3 }, perm = pick(r, 24), flips = pick(r, 16), pad = pick(r, 4), a, k;
    int64_t run = 1, extra = (pad == 3) ? 1 : 0;
    for (a = 0; a < 4; a++) {            /* perm -> a permutation of 0..3 (Lehmer code) */
        int f = (a == 0) ? 6 : (a == 1) ? 2 : (a == 2) ? 1 : 1, j = (perm / f) % (4 - a), t = order[a + j];
        for (k = a + j; k > a; k--) order[k] = order[k - 1];
        order[a] = t;
    }
    s->base = 0;
    for (k = 3; k >= 0; k--) {           /* order[3] is the innermost axis */
        a = order[k];
        s->stride[a] = run;
        run *= s->shape[a] + ((pad & 1) && k == 3 ? 1 : 0) + ((pad & 2) && k == 2 ? 2 : 0) + extra;
    }
    for (a = 0; a < 4; a++)
        if (flips & (1 << a)) { s->base += (s->shape[a] - 1) * s->stride[a]; s->stride[a] = -s->stride[a]; }
    if (allow_zero && pick(r, 8) == 0) {  /* inputs may broadcast along an axis */
        a = pick(r, 4);
        if (s->stride[a] < 0) s->base -= (s->shape[a] - 1) * -s->stride[a];
        s->stride[a] = 0;
    }
    s->elems = run + 1;
}

static void set_shape(tspec *s, int64_t a, int64_t b, int64_t c, int64_t d)
{
    s->shape[0] = a; s->shape[1] = b; s->shape[2] = c; s->shape[3] = d;
}

static int64_t mul_ovf(int64_t a, int64_t b, int *ovf)
{
    if (a != 0 && b > INT64_MAX / a) { *ovf = 1; return 0; }
    return a * b;
}

/* ---------------------------------------------------------------- validity, from docs/semantics.md */
static int view_ok(const tspec *s, const int64_t want[4])
{
    int a, ovf = 0; int64_t count = 1, extent = 0;
    if (!s->t.data) return 0;
    if (s->dt < 0 || s->dt > 3) return 0;
    for (a = 0; a < 4; a++) if (s->shape[a] < 1 || s->shape[a] != want[a]) return 0;
    for (a = 0; a < 4; a++) {
        int64_t st = s->stride[a], span;
        if (st == INT64_MIN) return 0;
        if (st < 0) st = -st;
        count = mul_ovf(count, s->shape[a], &ovf);
        span = mul_ovf(st, s->shape[a] - 1, &ovf);
        if (!ovf && span > INT64_MAX - extent) ovf = 1; else if (!ovf) extent += span;
        if (s->is_out && s->stride[a] == 0 && s->shape[a] > 1) return 0;
    }
    (void)mul_ovf(count, 8, &ovf);
    if (!ovf && extent == INT64_MAX) ovf = 1;
    if (!ovf) (void)mul_ovf(extent + 1, 8, &ovf);
    if (!ovf && s->is_out) {   /* docs/api.md: no self-overlap; axes by |stride|, each past the smaller ones' span */
        int64_t span = 0, abs_[4]; int ax[4], na = 0, x, y;
        for (a = 0; a < 4; a++) abs_[a] = s->stride[a] < 0 ? -s->stride[a] : s->stride[a];
        for (a = 0; a < 4; a++) if (s->shape[a] > 1) ax[na++] = a;
        for (x = 1; x < na; x++)
            for (y = x; y > 0 && abs_[ax[y]] < abs_[ax[y - 1]]; y--) { int t = ax[y]; ax[y] = ax[y - 1]; ax[y - 1] = t; }
        for (x = 0; x < na; x++) {
            if (abs_[ax[x]] <= span) return 0;
            span += abs_[ax[x]] * (s->shape[ax[x]] - 1);
        }
    }
    return !ovf;
}

/* case_valid: 0 invalid, 1 valid; MAYBE: a valid call the library may still refuse (the
   zigzag partition has ring-size rules of its own, varlen and the partitions are recent):
   an error leaves the outputs untouched, OK must match the oracle (a partition changes who
   computes what, never the result). */
#define MAYBE 2
static int case_valid(const fcase *c)
{
    const ringattn_config *g = &c->cfg;
    int64_t want[NT][4], minn = c->nq < c->nk ? c->nq : c->nk;
    int i, j, maxd;
    want[TQ][0] = c->b; want[TQ][1] = c->nq; want[TQ][2] = c->h; want[TQ][3] = c->d;
    want[TK][0] = c->b; want[TK][1] = c->nk; want[TK][2] = c->hk; want[TK][3] = c->d;
    want[TV][0] = c->b; want[TV][1] = c->nk; want[TV][2] = c->hk; want[TV][3] = c->dv;
    want[TO][0] = c->b; want[TO][1] = c->nq; want[TO][2] = c->h; want[TO][3] = c->dv;
    want[TL][0] = c->b; want[TL][1] = c->h; want[TL][2] = c->nq; want[TL][3] = 1;
    memcpy(want[TDO], want[TO], sizeof want[TO]);
    memcpy(want[TDQ], want[TQ], sizeof want[TQ]);
    memcpy(want[TDK], want[TK], sizeof want[TK]);
    memcpy(want[TDV], want[TV], sizeof want[TV]);
    if (c->b < 1 || c->nq < 1 || c->nk < 1 || c->h < 1 || c->hk < 1 || c->d < 1 || c->dv < 1) return 0;
    if (c->h % c->hk != 0) return 0;
    for (i = 0; i < NT; i++) {
        if (!c->T[i].used) continue;
        if (!view_ok(&c->T[i], want[i])) return 0;
    }
    for (i = 0; i < NT; i++) {          /* an output may share its pointer with nothing */
        if (!c->T[i].used || !c->T[i].is_out) continue;
        for (j = 0; j < NT; j++)
            if (j != i && c->T[j].used && c->T[j].t.data == c->T[i].t.data) return 0;
    }
    if (g->compute != RINGATTN_F32 && g->compute != RINGATTN_F64) return 0;
    if (g->causal < 0 || g->causal > 2) return 0;
    if (!isfinite(g->scale)) return 0;
    if (g->ring_size < 0 || g->ring_size > minn || g->num_threads < 0) return 0;
    if (g->window_left < -1 || g->window_right < -1) return 0;
    if ((int)g->mix != 0 && (int)g->mix != 1) return 0;
    if ((int)g->partition < 0 || (int)g->partition > 2) return 0;
    if (!(g->softcap >= 0) || !isfinite(g->softcap)) return 0;
    if (g->num_seqs < 0 || (g->num_seqs == 0 && (g->cu_seqlens_q || g->cu_seqlens_k))) return 0;
    if (g->num_seqs > 0) {              /* varlen: batch 1, cumulative lengths 0 .. nq / nk */
        const int64_t *cu[2];
        int64_t tot[2];
        int w;
        cu[0] = g->cu_seqlens_q; cu[1] = g->cu_seqlens_k; tot[0] = c->nq; tot[1] = c->nk;
        if (!cu[0] || !cu[1] || c->b != 1 || g->num_groups > 0) return 0;
        for (w = 0; w < 2; w++) {
            if (cu[w][0] != 0 || cu[w][g->num_seqs] != tot[w]) return 0;
            for (i = 1; i <= g->num_seqs; i++) if (cu[w][i] < cu[w][i - 1]) return 0;
        }
    }
    if (g->num_groups < 0) return 0;
    maxd = (int)(c->d > c->dv ? c->d : c->dv);
    if (g->num_groups > 0) {
        /* docs/api.md: dilation not with the striped partition (nor a window, varlen) */
        if (g->partition == RINGATTN_STRIPED) return 0;
        if (!g->segment_lengths || !g->dilation_rates) return 0;
        if (c->nq != c->nk) return 0;
        if (g->window_left >= 0 || g->window_right >= 0) return 0;
        for (i = 0; i < g->num_groups; i++) {
            if (g->segment_lengths[i] < 1 || g->dilation_rates[i] < 1) return 0;
            if (c->nq % g->segment_lengths[i] != 0) return 0;
            if (g->dilation_rates[i] > 2147483647 / maxd) return 0;
        }
    }
    if (g->num_seqs > 0 || g->partition != RINGATTN_CONTIGUOUS) return MAYBE;
    return 1;
}

/* ---------------------------------------------------------------- views <-> dense f64 */
static int64_t at(const tspec *s, int64_t i0, int64_t i1, int64_t i2, int64_t i3)
{
    return s->base + i0 * s->stride[0] + i1 * s->stride[1] + i2 * s->stride[2] + i3 * s->stride[3];
}
static void gather(const tspec *s, double *dst)     /* view -> contiguous f64, shape order */
{
    int64_t i0, i1, i2, i3, n = 0;
    for (i0 = 0; i0 < s->shape[0]; i0++) for (i1 = 0; i1 < s->shape[1]; i1++)
    for (i2 = 0; i2 < s->shape[2]; i2++) for (i3 = 0; i3 < s->shape[3]; i3++)
        dst[n++] = get(s->buf, s->dt, at(s, i0, i1, i2, i3));
}
static void scatter(tspec *s, const double *src)    /* contiguous f64 -> view (rounded) */
{
    int64_t i0, i1, i2, i3, n = 0;
    for (i0 = 0; i0 < s->shape[0]; i0++) for (i1 = 0; i1 < s->shape[1]; i1++)
    for (i2 = 0; i2 < s->shape[2]; i2++) for (i3 = 0; i3 < s->shape[3]; i3++)
        put(s->buf, s->dt, at(s, i0, i1, i2, i3), src[n++]);
}
static int64_t numel(const tspec *s) { return s->shape[0] * s->shape[1] * s->shape[2] * s->shape[3]; }

/* every byte of an output buffer outside its view must still be the sentinel */
static void check_outside(const fcase *c, int ti)
{
    const tspec *s = &c->T[ti];
    size_t es = esize(s->dt), nb = (size_t)s->elems * es, i;
    unsigned char *mark = (unsigned char *)calloc(nb ? nb : 1, 1);
    int64_t i0, i1, i2, i3;
    if (!mark) abort();
    for (i0 = 0; i0 < s->shape[0]; i0++) for (i1 = 0; i1 < s->shape[1]; i1++)
    for (i2 = 0; i2 < s->shape[2]; i2++) for (i3 = 0; i3 < s->shape[3]; i3++)
        memset(mark + (size_t)at(s, i0, i1, i2, i3) * es, 1, es);
    for (i = 0; i < nb; i++)
        if (!mark[i] && s->buf[i] != SENT) { free(mark); die(c, "byte %g of an output buffer outside its view was written (tensor %g)", (double)i, (double)ti); }
    free(mark);
}

/* got (a view) vs ref (dense f64): |got - ref| <= (abs + rel |ref|)(1 + su) + su |ref| + sa */
static void compare(const fcase *c, int ti, const double *ref, double tabs, double trel)
{
    const tspec *s = &c->T[ti];
    int64_t n = numel(s), i;
    double *got = (double *)malloc(sizeof(double) * (size_t)n), su, sa;
    if (!got) abort();
    gather(s, got);
    store_err(s->dt, (int)c->cfg.compute, &su, &sa);
    for (i = 0; i < n; i++) {
        double g = got[i], f = ref[i], allowed = (tabs + trel * fabs(f)) * (1 + su) + su * fabs(f) + sa;
        int ok = (g != g || f != f) ? 0 : (isinf(g) || isinf(f)) ? (g == f) : (fabs(g - f) <= allowed);
        if (!ok) {
            fprintf(stderr, "  %s element %lld: got %.17g ref %.17g allowed %.3g\n", tname[ti], (long long)i, g, f, allowed);
            free(got);
            die(c, "an element is out of tolerance (%g vs %g)", g, f);
        }
    }
    free(got);
}

static double max_abs(const double *x, int64_t n)
{
    double m = 0; int64_t i;
    for (i = 0; i < n; i++) if (isfinite(x[i]) && fabs(x[i]) > m) m = fabs(x[i]);
    return m;
}
/* largest 2-norm over the rows of length d of x [rows][d] */
static double max_row_norm(const double *x, int64_t rows, int64_t d)
{
    double m = 0; int64_t i, k;
    for (i = 0; i < rows; i++) {
        double s = 0;
        for (k = 0; k < d; k++) s += x[i * d + k] * x[i * d + k];
        if (sqrt(s) > m) m = sqrt(s);
    }
    return m;
}

/* ---------------------------------------------------------------- decoding the bytes */
static int64_t pick_dim(reader *r, int64_t lo, int64_t hi) { return lo + pick(r, (int)(hi - lo + 1)); }

static void decode(fcase *c, reader *r)
{
    ringattn_config *g = &c->cfg;
    int i, flags, sdt_in, sdt_out, shape_mode;
    int64_t minn;
    memset(c, 0, sizeof *c);
    *g = ringattn_default_config();
    c->backward = pick(r, 3) == 0;
    shape_mode = pick(r, 8);
    c->b = pick_dim(r, 1, 2);
    c->nq = pick_dim(r, 1, shape_mode == 0 ? 64 : 12);
    c->nk = (pick(r, 2) == 0) ? c->nq : pick_dim(r, 1, shape_mode == 0 ? 64 : 12);
    c->hk = pick_dim(r, 1, 2);
    c->h = c->hk * pick_dim(r, 1, 3);
    c->d = (shape_mode == 1) ? 1 : pick_dim(r, 1, 8);
    c->dv = (pick(r, 2) == 0) ? c->d : pick_dim(r, 1, 8);
    g->compute = pick(r, 2) ? RINGATTN_F64 : RINGATTN_F32;
    minn = c->nq < c->nk ? c->nq : c->nk;
    g->ring_size = (int)(pick(r, 8) == 0 ? 0 : 1 + pick(r, (int)(minn < 16 ? minn : 16)));
    g->num_threads = pick(r, 5);
    g->causal = pick(r, 3);
    g->partition = (ringattn_partition)(pick(r, 4) == 0 ? 1 + pick(r, 2) : 0);
    if (pick(r, 5) == 0) {               /* softcap */
        static const double caps[4] = { 0.5, 2.0, 10.0, 30.0 };
        g->softcap = caps[pick(r, 4)];
    }
    flags = (int)rd(r);
    if (flags & 1) g->window_left = pick(r, (int)c->nk + 1);
    if (flags & 2) g->window_right = pick(r, (int)c->nk + 1);
    switch (pick(r, 6)) {            /* scale */
    case 0: g->scale = 0; break;
    case 1: g->scale = 1.0 / 64; break;
    case 2: g->scale = -0.5; break;
    case 3: g->scale = (double)pick(r, 16) / 4.0; break;
    default: g->scale = 0; break;
    }
    if ((flags & 4) && pick(r, 2) == 0) {   /* dilated */
        int G = 1 + pick(r, 3);
        c->nk = c->nq;
        g->window_left = g->window_right = -1;
        for (i = 0; i < G; i++) {
            /* a divisor of n, mostly */
            int64_t s = 1 + pick(r, (int)c->nq), tries = 0;
            while (c->nq % s != 0 && tries++ < 64) s = 1 + (s % c->nq);
            c->seg[i] = s;
            c->rate[i] = 1 + pick(r, 4);
        }
        g->num_groups = G;
        g->segment_lengths = c->seg;
        g->dilation_rates = c->rate;
        g->mix = pick(r, 2) ? RINGATTN_MIX_LSE : RINGATTN_MIX_HEAD_GROUPS;
        minn = c->nq;
        if (g->ring_size > minn) g->ring_size = (int)minn;
    }
    if (c->b == 1 && g->num_groups == 0 && pick(r, 4) == 0) {   /* varlen: packed sequences */
        int j;
        g->num_seqs = 1 + pick(r, 4);
        c->cuq[0] = c->cuk[0] = 0;
        for (j = 1; j < g->num_seqs; j++) {
            c->cuq[j] = c->cuq[j - 1] + pick(r, (int)(c->nq - c->cuq[j - 1]) + 1);
            c->cuk[j] = c->cuk[j - 1] + pick(r, (int)(c->nk - c->cuk[j - 1]) + 1);
        }
        c->cuq[g->num_seqs] = c->nq; c->cuk[g->num_seqs] = c->nk;
        g->cu_seqlens_q = c->cuq; g->cu_seqlens_k = c->cuk;
    }
    /* storage dtypes: inputs share one, outputs another, each may differ per tensor */
    sdt_in = pick(r, 4); sdt_out = pick(r, 4);
    for (i = 0; i < NT; i++) {
        tspec *s = &c->T[i];
        s->dt = (pick(r, 4) == 0) ? pick(r, 4) : (i == TO || i == TL || i >= TDQ) ? sdt_out : sdt_in;
    }
    if (c->backward) {
        /* out and lse are inputs of the backward: exact enough for the compute dtype */
        if (g->compute == RINGATTN_F64) { c->T[TO].dt = RINGATTN_F64; c->T[TL].dt = RINGATTN_F64; }
        else {
            if (c->T[TO].dt >= 2) c->T[TO].dt = RINGATTN_F32;
            if (c->T[TL].dt >= 2) c->T[TL].dt = RINGATTN_F64;
        }
    }
#ifndef FUZZ_RING_STRICT
    /* KNOWN BUG (tests/test_bug_half_inf.c): -inf (the lse of a row that sees no key) stored
       into f16 / bf16 comes out finite, through an undefined float -> uint16 cast that UBSan
       reports. Until it is fixed the forward lse is kept in f32 / f64; -DFUZZ_RING_STRICT
       brings the f16 / bf16 lse back. */
    if (c->T[TL].dt == RINGATTN_F16 || c->T[TL].dt == RINGATTN_BF16) c->T[TL].dt = RINGATTN_F32 + pick(r, 2);
#endif
    for (i = 0; i < NT; i++) c->T[i].used = c->backward ? 1 : (i <= TL);
    c->lse_null = !c->backward && pick(r, 6) == 0;
    if (c->lse_null) c->T[TL].used = 0;
    for (i = 0; i < NT; i++) {
        tspec *s = &c->T[i];
        s->is_out = c->backward ? (i >= TDQ) : (i == TO || i == TL);
    }
    set_shape(&c->T[TQ], c->b, c->nq, c->h, c->d);
    set_shape(&c->T[TK], c->b, c->nk, c->hk, c->d);
    set_shape(&c->T[TV], c->b, c->nk, c->hk, c->dv);
    set_shape(&c->T[TO], c->b, c->nq, c->h, c->dv);
    set_shape(&c->T[TL], c->b, c->h, c->nq, 1);
    set_shape(&c->T[TDO], c->b, c->nq, c->h, c->dv);
    set_shape(&c->T[TDQ], c->b, c->nq, c->h, c->d);
    set_shape(&c->T[TDK], c->b, c->nk, c->hk, c->d);
    set_shape(&c->T[TDV], c->b, c->nk, c->hk, c->dv);
    /* zero strides (broadcast) on inputs; not on the out / lse a backward reads, which must
       hold the oracle's forward result element for element */
    for (i = 0; i < NT; i++) make_layout(&c->T[i], r, !c->T[i].is_out && i != TO && i != TL);
}

/* plant at most one bad value (applied after decode, before buffers exist) */
static void plant_bad(fcase *c, reader *r)
{
    ringattn_config *g = &c->cfg;
    int which = pick(r, 40), ti = pick(r, NT), a = pick(r, 4);
    tspec *s;
    while (!c->T[ti].used) ti = (ti + 1) % NT;
    s = &c->T[ti];
    c->bad = which < 24 ? which : 0;     /* 24..39: a clean call */
    switch (c->bad) {
    case 1: s->dt = 6 + pick(r, 3); break;                           /* unknown dtype (4, 5: fp8) */
    case 2: g->compute = (ringattn_dtype)(2 + pick(r, 3)); break;    /* f16/bf16/unknown    */
    case 3: s->shape[a] += 1 + pick(r, 2); s->elems = 0; break;      /* wrong shape         */
    case 4: s->shape[a] = -pick(r, 2); s->elems = 0; break;          /* zero/negative dim   */
    case 5: g->scale = pick(r, 2) ? (double)NAN : (pick(r, 2) ? (double)INFINITY : -(double)INFINITY); break;
    case 6: g->ring_size = pick(r, 2) ? -1 - pick(r, 3) : (int)(c->nq < c->nk ? c->nq : c->nk) + 1 + pick(r, 3); break;
    case 7: g->num_threads = -1 - pick(r, 3); break;
    case 8: g->causal = pick(r, 2) ? 3 + pick(r, 5) : -1; break;
    case 9: if (pick(r, 2)) g->window_left = -2 - pick(r, 3); else g->window_right = -2 - pick(r, 3); break;
    case 10: g->mix = (ringattn_mix)(2 + pick(r, 3)); break;
    case 11: g->partition = (ringattn_partition)(1 + pick(r, 4)); break;
    case 12: g->softcap = pick(r, 2) ? (double)INFINITY : (pick(r, 2) ? (double)NAN : -1.0); break;
    case 13:                          /* varlen: broken cu_seqlens, or batch 2 */
        switch (pick(r, 5)) {
        case 0: g->num_seqs = -1; break;
        case 1: if (g->num_seqs > 0) c->cuq[g->num_seqs] = c->nq + 1; else g->num_seqs = -1; break;
        case 2: if (g->num_seqs > 0) c->cuk[0] = 1; else g->num_seqs = -1; break;
        case 3: g->num_seqs = 2; c->cuq[0] = c->cuk[0] = 0; c->cuq[1] = c->cuk[1] = 1; c->cuq[2] = c->nq;
                c->cuk[2] = c->nk; g->cu_seqlens_q = c->cuq; g->cu_seqlens_k = NULL; break;
        default:
            if (g->num_seqs > 0 && c->nq >= 2) { c->cuq[1] = c->nq; c->cuq[g->num_seqs] = c->nq - 1; }
            else g->num_seqs = -1;
            break;
        }
        break;
    case 14: g->cu_seqlens_q = c->seg; break;
    case 15: g->num_groups = -1 - pick(r, 3); break;
    case 16:                                                         /* dilation problems   */
        if (g->num_groups == 0) { g->num_groups = 1; g->segment_lengths = c->seg; g->dilation_rates = c->rate;
                                  c->seg[0] = c->nq; c->rate[0] = 1; }
        switch (pick(r, 6)) {
        case 0: c->seg[0] = c->nq + 1 + pick(r, 3); break;           /* not a divisor       */
        case 1: c->seg[0] = -pick(r, 2); break;
        case 2: c->rate[0] = -pick(r, 2); break;
        case 3: g->window_left = pick(r, 3); break;                  /* window + dilation   */
        case 4: g->segment_lengths = NULL; break;
        default: g->dilation_rates = NULL; break;
        }
        break;
    case 17: s->huge = 1; break;                                     /* NULL data           */
    case 18: s->huge = 2; break;                                     /* alias               */
    case 19:                                     /* zero stride, or two axes on one stride  */
        if (!c->backward || (ti != TO && ti != TL)) s->stride[a] = pick(r, 2) ? 0 : s->stride[(a + 1) % 4];   /* (see decode) */
        break;
    case 20: s->stride[a] = INT64_MIN; s->huge = 3; break;
    case 21: s->stride[a] = INT64_MAX / (2 + pick(r, 4)); s->huge = 3; break;
    case 22: s->shape[a] = (int64_t)1 << (40 + pick(r, 23)); s->huge = 3; break;
    case 23:                                                         /* nq != nk, dilated   */
        if (g->num_groups > 0) { c->nk = c->nq + 1; set_shape(&c->T[TK], c->b, c->nk, c->hk, c->d);
                                 set_shape(&c->T[TV], c->b, c->nk, c->hk, c->dv);
                                 set_shape(&c->T[TDK], c->b, c->nk, c->hk, c->d);
                                 set_shape(&c->T[TDV], c->b, c->nk, c->hk, c->dv);
                                 c->T[TK].elems = c->T[TV].elems = c->T[TDK].elems = c->T[TDV].elems = 0; }
        else g->num_groups = 0;
        break;
    default: break;
    }
}

/* buffers for every used tensor; fills inputs from the value stream, outputs with SENT */
static int alloc_buffers(fcase *c, test_rng *rng, int mode, double mag)
{
    int i;
    for (i = 0; i < NT; i++) {
        tspec *s = &c->T[i];
        int64_t need = 1, e, a;
        int ovf = 0, dt = (s->dt >= 0 && s->dt <= 3) ? s->dt : RINGATTN_F32;
        if (!s->used) continue;
        /* recompute the extent for the (maybe changed) shape and strides */
        for (a = 0; a < 4; a++) {
            int64_t st = s->stride[a];
            if (s->shape[a] < 1 || st == INT64_MIN) { ovf = 1; break; }
            e = mul_ovf(st < 0 ? -st : st, s->shape[a] - 1, &ovf);
            if (ovf || e > MAX_ELEMS) { ovf = 1; break; }
            need += e;
        }
        if (ovf || need > MAX_ELEMS) {    /* invalid by construction: a token buffer */
            s->elems = 64; s->base = 0;
        } else {
            int64_t lo = 0, hi = 0;
            for (a = 0; a < 4; a++) {
                int64_t sp = s->stride[a] * (s->shape[a] - 1);
                if (sp < 0) lo += sp; else hi += sp;
            }
            s->base = -lo;
            s->elems = hi - lo + 1 + (s->elems > 0 ? 1 : 0);
        }
        s->buf = (unsigned char *)malloc((size_t)s->elems * esize(dt));
        if (!s->buf) return -1;
        memset(s->buf, SENT, (size_t)s->elems * esize(dt));
        if (!s->is_out && !ovf && need <= MAX_ELEMS && s->shape[0] >= 1 && s->shape[1] >= 1 &&
            s->shape[2] >= 1 && s->shape[3] >= 1 && s->shape[0] <= MAX_ELEMS && s->shape[1] <= MAX_ELEMS &&
            s->shape[2] <= MAX_ELEMS && s->shape[3] <= MAX_ELEMS &&
            s->shape[0] * s->shape[1] <= MAX_ELEMS && s->shape[2] * s->shape[3] <= MAX_ELEMS &&
            s->shape[0] * s->shape[1] * s->shape[2] * s->shape[3] <= MAX_ELEMS) {
            int64_t i0, i1, i2, i3;
            for (i0 = 0; i0 < s->shape[0]; i0++) for (i1 = 0; i1 < s->shape[1]; i1++)
            for (i2 = 0; i2 < s->shape[2]; i2++) for (i3 = 0; i3 < s->shape[3]; i3++) {
                double x;
                switch (mode) {
                case 0: x = rng_normal(rng) * mag; break;
                case 1: x = (double)((int)(rng_next(rng) % 5) - 2); break;
                case 2: x = 0.5; break;                                  /* ties everywhere */
                default: x = (rng_uniform(rng) - 0.5) * mag; break;
                }
                put(s->buf, dt, at(s, i0, i1, i2, i3), x);
            }
        }
        s->t.data = s->buf + (size_t)s->base * esize(dt);
        s->t.dtype = (ringattn_dtype)s->dt;
        for (a = 0; a < 4; a++) { s->t.shape[a] = s->shape[a]; s->t.stride[a] = s->stride[a]; }
    }
    for (i = 0; i < NT; i++) {           /* NULL data, aliasing */
        tspec *s = &c->T[i];
        if (!s->used) continue;
        if (s->huge == 1) s->t.data = NULL;
        if (s->huge == 2) {
            int j = s->is_out ? TQ : (c->backward ? TDQ : TO);
            s->t.data = c->T[j].t.data;
            if (!s->is_out && !c->T[j].used) s->huge = 0;
        }
    }
    return 0;
}

typedef struct { int calls, members, p; } trace_count;
static void on_trace(const ringattn_trace_event *ev, void *user)
{
    trace_count *t = (trace_count *)user;
    int bad = ev->member < 0 || ev->member >= ev->ring_size || ev->step < 0 || ev->step >= ev->ring_size ||
              ev->src != ((ev->member - ev->step) % ev->ring_size + ev->ring_size) % ev->ring_size;
    /* members may be OpenMP threads: the callback must be thread-safe */
#ifdef _OPENMP
#pragma omp critical(fuzz_ring_trace)
#endif
    {
        t->calls++;
        if (bad) t->members = -1;
        t->p = ev->ring_size;
    }
}

/* what the inputs exercised (printed by the standalone driver at the end) */
static long n_valid[2], n_invalid[2], n_maybe[2], n_masked_inf, n_huge_v;

/* +Inf in any storage dtype (half_encode is for finite values) */
static void put_inf(void *base, int dt, int64_t i)
{
    if (dt == RINGATTN_F16) ((uint16_t *)base)[i] = 0x7C00;
    else if (dt == RINGATTN_BF16) ((uint16_t *)base)[i] = 0x7F80;
    else put(base, dt, i, (double)INFINITY);
}

static double dtype_max(int dt)
{
    return dt == RINGATTN_F64 ? 1.7976931348623157e308 : dt == RINGATTN_F32 ? 3.4028234663852886e38
         : dt == RINGATTN_F16 ? 65504.0 : 3.3895313892515355e38;
}

/* Masked Inf in the backward (docs/semantics.md: how a ragged tile is cut depends only on the
   mask). Component 0 of every query is made negative and +Inf is planted in component 0 of
   keys [j0, j1) (every batch and k/v head), so a row that sees only those keys sees only -inf
   (lse = -inf). Against the same call without the Inf: every row that sees none of them gets
   the same bits in out, lse and dq, and every key outside them that only such rows see the
   same bits in dk and dv. Dense masks (the oracle's ref_visible), no broadcast q or k. */
static void masked_inf_check(fcase *c, const ref_problem *rp, reader *r)
{
    tspec *Q = &c->T[TQ], *K = &c->T[TK];
    int64_t b = c->b, nq = c->nq, nk = c->nk, h = c->h, hk = c->hk, d = c->d, dv = c->dv;
    int64_t j0 = pick(r, (int)nk), j1 = j0 + 1 + pick(r, (int)(nk - j0)), i, j, bb, hh, x;
    size_t qb = (size_t)Q->elems * esize(Q->dt), kb = (size_t)K->elems * esize(K->dt);
    unsigned char *qbuf = (unsigned char *)malloc(qb), *kbuf[2];
    double *o[2], *l[2], *dq[2], *dk[2], *dvv[2];
    char *rowclean = (char *)calloc((size_t)nq, 1), *keyclean = (char *)calloc((size_t)nk, 1);
    ringattn_config g = c->cfg;
    int run, st[2] = { -1, -1 }, a;
    if (c->cfg.num_groups > 0) { free(qbuf); free(rowclean); free(keyclean); return; }
    if (pick(r, 2)) {   /* mostly: exactly the keys one row sees, so that row sees nothing else */
        int64_t row = pick(r, (int)nq), lo = nk, hi = -1;
        for (j = 0; j < nk; j++) if (ref_visible(rp, row, j)) { if (j < lo) lo = j; hi = j; }
        if (hi >= lo) { j0 = lo; j1 = hi + 1; }
    }
    for (a = 0; a < 4; a++)
        if ((Q->stride[a] == 0 && Q->shape[a] > 1) || (K->stride[a] == 0 && K->shape[a] > 1)) {
            free(qbuf); free(rowclean); free(keyclean); return;
        }
    kbuf[0] = (unsigned char *)malloc(kb); kbuf[1] = (unsigned char *)malloc(kb);
    if (!qbuf || !rowclean || !keyclean || !kbuf[0] || !kbuf[1]) abort();
    memcpy(qbuf, Q->buf, qb); memcpy(kbuf[0], K->buf, kb); memcpy(kbuf[1], K->buf, kb);
    for (bb = 0; bb < b; bb++) for (i = 0; i < nq; i++) for (hh = 0; hh < h; hh++) {
        int64_t e = Q->base + bb * Q->stride[0] + i * Q->stride[1] + hh * Q->stride[2];
        put(qbuf, Q->dt, e, -fabs(get(Q->buf, Q->dt, e)) - 0.5);
    }
    for (bb = 0; bb < b; bb++) for (j = j0; j < j1; j++) for (hh = 0; hh < hk; hh++)
        put_inf(kbuf[1], K->dt, K->base + bb * K->stride[0] + j * K->stride[1] + hh * K->stride[2]);
    g.stats = NULL; g.trace = NULL; g.trace_user = NULL;
    for (run = 0; run < 2; run++) {
        ringattn_tensor tq = Q->t, tk = K->t, O, L, DQ, DK, DV;
        o[run] = (double *)calloc((size_t)(b * nq * h * dv), sizeof(double));
        l[run] = (double *)calloc((size_t)(b * h * nq), sizeof(double));
        dq[run] = (double *)calloc((size_t)(b * nq * h * d), sizeof(double));
        dk[run] = (double *)calloc((size_t)(b * nk * hk * d), sizeof(double));
        dvv[run] = (double *)calloc((size_t)(b * nk * hk * dv), sizeof(double));
        if (!o[run] || !l[run] || !dq[run] || !dk[run] || !dvv[run]) abort();
        tq.data = qbuf + (size_t)Q->base * esize(Q->dt);
        tk.data = kbuf[run] + (size_t)K->base * esize(K->dt);
        O = ringattn_tensor_bnhd(o[run], RINGATTN_F64, b, nq, h, dv);
        L = ringattn_tensor_lse(l[run], RINGATTN_F64, b, h, nq);
        DQ = ringattn_tensor_bnhd(dq[run], RINGATTN_F64, b, nq, h, d);
        DK = ringattn_tensor_bnhd(dk[run], RINGATTN_F64, b, nk, hk, d);
        DV = ringattn_tensor_bnhd(dvv[run], RINGATTN_F64, b, nk, hk, dv);
        st[run] = ringattn_forward(&g, &tq, &tk, &c->T[TV].t, &O, &L);
        if (st[run] == RINGATTN_OK)
            st[run] = ringattn_backward(&g, &tq, &tk, &c->T[TV].t, &O, &L, &c->T[TDO].t, &DQ, &DK, &DV);
    }
    if (st[0] != st[1]) die(c, "masked inf: status %g with the Inf, %g without", st[1], st[0]);
    if (st[0] == RINGATTN_OK) {
        n_masked_inf++;
        for (i = 0; i < nq; i++) {
            rowclean[i] = 1;
            for (j = j0; j < j1; j++) if (ref_visible(rp, i, j)) rowclean[i] = 0;
        }
        for (j = 0; j < nk; j++) {
            keyclean[j] = j < j0 || j >= j1;
            for (i = 0; i < nq && keyclean[j]; i++) if (ref_visible(rp, i, j) && !rowclean[i]) keyclean[j] = 0;
        }
        for (bb = 0; bb < b; bb++) for (i = 0; i < nq; i++) for (hh = 0; hh < h; hh++) {
            int64_t ro = ((bb * nq + i) * h + hh);
            if (!rowclean[i]) continue;
            for (x = 0; x < dv; x++)
                if (memcmp(&o[0][ro * dv + x], &o[1][ro * dv + x], sizeof(double)))
                    die(c, "masked inf: out of row %g (sees no Inf key) differs from the clean run, keys from %g", (double)i, (double)j0);
            if (memcmp(&l[0][(bb * h + hh) * nq + i], &l[1][(bb * h + hh) * nq + i], sizeof(double)))
                die(c, "masked inf: lse of row %g (sees no Inf key) differs from the clean run, keys from %g", (double)i, (double)j0);
            for (x = 0; x < d; x++)
                if (memcmp(&dq[0][ro * d + x], &dq[1][ro * d + x], sizeof(double)))
                    die(c, "masked inf: dq of row %g (sees no Inf key) differs from the clean run, keys from %g", (double)i, (double)j0);
        }
        for (bb = 0; bb < b; bb++) for (j = 0; j < nk; j++) for (hh = 0; hh < hk; hh++) {
            int64_t ro = ((bb * nk + j) * hk + hh);
            if (!keyclean[j]) continue;
            if (memcmp(&dk[0][ro * d], &dk[1][ro * d], (size_t)d * sizeof(double)))
                die(c, "masked inf: dk of key %g (seen by clean rows only) differs from the clean run, Inf from %g", (double)j, (double)j0);
            if (memcmp(&dvv[0][ro * dv], &dvv[1][ro * dv], (size_t)dv * sizeof(double)))
                die(c, "masked inf: dv of key %g (seen by clean rows only) differs from the clean run, Inf from %g", (double)j, (double)j0);
        }
    }
    for (run = 0; run < 2; run++) { free(o[run]); free(l[run]); free(dq[run]); free(dk[run]); free(dvv[run]); free(kbuf[run]); }
    free(qbuf); free(rowclean); free(keyclean);
}

/* Huge V (forward): V multiplied by 2^e so that max|V| lies near the largest value its storage
   and out's hold (nk max|V| then overflows the compute type's accumulator unless the library
   scales it). Returns e (the oracle runs on V 2^-e, its out is multiplied back), 0 if not. */
static int huge_v(fcase *c, reader *r)
{
    tspec *V = &c->T[TV];
    double vmax = 0, lim = dtype_max(V->dt);
    int64_t i0, i1, i2, i3; int e;
    if (c->T[TO].dt >= 0 && c->T[TO].dt <= 3 && dtype_max(c->T[TO].dt) < lim) lim = dtype_max(c->T[TO].dt);
    for (i0 = 0; i0 < V->shape[0]; i0++) for (i1 = 0; i1 < V->shape[1]; i1++)
    for (i2 = 0; i2 < V->shape[2]; i2++) for (i3 = 0; i3 < V->shape[3]; i3++) {
        double x = fabs(get(V->buf, V->dt, at(V, i0, i1, i2, i3)));
        if (x > vmax) vmax = x;
    }
    if (!(vmax > 0)) return 0;
    e = ilogb(lim) - ilogb(vmax) - 1 - pick(r, 3);
    if (e <= 0) return 0;
    {   /* each element once, however many views of it there are (a broadcast V) */
        unsigned char *done = (unsigned char *)calloc((size_t)V->elems, 1);
        if (!done) abort();
        for (i0 = 0; i0 < V->shape[0]; i0++) for (i1 = 0; i1 < V->shape[1]; i1++)
        for (i2 = 0; i2 < V->shape[2]; i2++) for (i3 = 0; i3 < V->shape[3]; i3++) {
            int64_t k = at(V, i0, i1, i2, i3);
            if (!done[k]) put(V->buf, V->dt, k, ldexp(get(V->buf, V->dt, k), e));
            done[k] = 1;
        }
        free(done);
    }
    return e;
}
static void run_case(fcase *c, reader *r)
{
    ringattn_config *g = &c->cfg;
    ref_problem rp;
    int valid, st, i, mode = pick(r, 4), any_f16 = 0, vexp = 0;
    double mag = (mode == 0) ? (pick(r, 3) == 0 ? 4.0 : (pick(r, 2) ? 1.0 : 0.125)) : 3.0;
    uint64_t seed = 0x1234;
    test_rng rng;
    char err[64];
    ringattn_stats stats;
    trace_count tc;
    size_t k;
    for (k = r->i; k < r->n; k++) seed = (seed ^ r->p[k]) * 0x100000001B3ull;
    rng = rng_seed(seed);
    for (i = 0; i < NT; i++) if (c->T[i].used && c->T[i].is_out && c->T[i].dt == RINGATTN_F16) any_f16 = 1;
    if (any_f16 && mag > 1) mag = 1;
    if (alloc_buffers(c, &rng, mode, mag) != 0) goto done;
    valid = case_valid(c);
    if (valid) n_valid[c->backward]++; else n_invalid[c->backward]++;
    err[0] = 0;
    g->error_detail = err; g->error_detail_size = (pick(r, 4) == 0) ? 8 : sizeof err;
    memset(&stats, 0, sizeof stats); memset(&tc, 0, sizeof tc);
    if (pick(r, 2)) g->stats = &stats;
    if (pick(r, 2)) { g->trace = on_trace; g->trace_user = &tc; }
    vexp = (valid && !c->backward && c->T[TV].dt != RINGATTN_F16 && pick(r, 5) == 1) ? huge_v(c, r) : 0;
    if (vexp) n_huge_v++;

    memset(&rp, 0, sizeof rp);
    rp.b = c->b; rp.nq = c->nq; rp.nk = c->nk; rp.h = c->h; rp.hk = c->hk; rp.d = c->d; rp.dv = c->dv;
    rp.scale = g->scale != 0 ? g->scale : 1.0 / sqrt((double)c->d);
    rp.causal = g->causal; rp.window_left = g->window_left; rp.window_right = g->window_right;
    rp.num_groups = g->num_groups; rp.segment_lengths = c->seg; rp.dilation_rates = c->rate; rp.mix = (int)g->mix;
    rp.num_seqs = g->num_seqs > 0 ? g->num_seqs : 0; rp.cu_seqlens_q = c->cuq; rp.cu_seqlens_k = c->cuk;
    rp.softcap = g->softcap > 0 ? g->softcap : 0;

    if (c->backward && valid) {          /* out and lse the backward reads: the oracle's, stored */
        int64_t no = numel(&c->T[TO]), nl = numel(&c->T[TL]);
        double *q = (double *)malloc(sizeof(double) * (size_t)numel(&c->T[TQ]));
        double *kk = (double *)malloc(sizeof(double) * (size_t)numel(&c->T[TK]));
        double *v = (double *)malloc(sizeof(double) * (size_t)numel(&c->T[TV]));
        double *o = (double *)malloc(sizeof(double) * (size_t)no), *l = (double *)malloc(sizeof(double) * (size_t)nl);
        if (!q || !kk || !v || !o || !l) abort();
        gather(&c->T[TQ], q); gather(&c->T[TK], kk); gather(&c->T[TV], v);
        if (ref_forward(&rp, q, kk, v, o, l) != 0) abort();
        scatter(&c->T[TO], o); scatter(&c->T[TL], l);
        free(q); free(kk); free(v); free(o); free(l);
    }

    if (c->backward)
        st = ringattn_backward(g, &c->T[TQ].t, &c->T[TK].t, &c->T[TV].t, &c->T[TO].t, &c->T[TL].t,
                               &c->T[TDO].t, &c->T[TDQ].t, &c->T[TDK].t, &c->T[TDV].t);
    else
        st = ringattn_forward(g, &c->T[TQ].t, &c->T[TK].t, &c->T[TV].t, &c->T[TO].t,
                              c->lse_null ? NULL : &c->T[TL].t);

    if (valid == MAYBE) n_maybe[st < 0]++;
    if (st < 0 && valid == MAYBE) valid = 0;   /* refused: as invalid */
    if (!valid) {
        if (st >= 0) die(c, "an invalid call returned %g (expected < 0)%g", st, 0);
        if (err[0] == 0 || memchr(err, 0, g->error_detail_size) == NULL)
            die(c, "error %g left no NUL-terminated error_detail%g", st, 0);
        for (i = 0; i < NT; i++) {
            tspec *s = &c->T[i];
            size_t nb, j;
            if (!s->used || !s->is_out || !s->buf) continue;
            nb = (size_t)s->elems * esize((s->dt >= 0 && s->dt <= 3) ? s->dt : RINGATTN_F32);
            for (j = 0; j < nb; j++)
                if (s->buf[j] != SENT) die(c, "an invalid call (status %g) wrote output byte %g", st, (double)j);
        }
        goto done;
    }
    if (st != RINGATTN_OK) {
        fprintf(stderr, "  error_detail: %s\n", err);
        die(c, "a valid call failed with status %g%g", st, 0);
    }
    for (i = 0; i < NT; i++) if (c->T[i].used && c->T[i].is_out) check_outside(c, i);
    if (g->trace && (tc.members < 0 || tc.calls != tc.p * tc.p)) die(c, "trace: %g calls for ring size %g", tc.calls, tc.p);
    if (g->stats && stats.blocks_computed + stats.blocks_skipped != (int64_t)stats.ring_size * stats.ring_size)
        die(c, "stats: blocks computed + skipped = %g, p = %g", (double)(stats.blocks_computed + stats.blocks_skipped),
            stats.ring_size);

    {   /* the oracle, fed exactly what the library read */
        int64_t nq_ = numel(&c->T[TQ]), nk_ = numel(&c->T[TK]), nv = numel(&c->T[TV]), no = numel(&c->T[TO]);
        int64_t nl = c->b * c->h * c->nq, G = g->num_groups > 0 ? g->num_groups : 1;
        int64_t nk_eff = (g->num_groups > 0 && g->mix == RINGATTN_MIX_LSE) ? G * c->nk : c->nk;
        double *q = (double *)malloc(sizeof(double) * (size_t)nq_), *kk = (double *)malloc(sizeof(double) * (size_t)nk_);
        double *v = (double *)malloc(sizeof(double) * (size_t)nv);
        double smax, vmax, u = TEST_U32, f64 = (g->compute == RINGATTN_F64);
        if (!q || !kk || !v) abort();
        gather(&c->T[TQ], q); gather(&c->T[TK], kk); gather(&c->T[TV], v);
        smax = tol_smax(q, kk, c->b, c->nq, c->nk, c->h, c->hk, c->d, rp.scale);
        vmax = max_abs(v, nv);
        if (!c->backward) {
            double *o = (double *)malloc(sizeof(double) * (size_t)no), *l = (double *)malloc(sizeof(double) * (size_t)nl);
            double mo, ml;
            int64_t j;
            if (!o || !l) abort();
            for (j = 0; j < nv; j++) v[j] = ldexp(v[j], -vexp);      /* huge V: the oracle in range */
            if (ref_forward(&rp, q, kk, v, o, l) != 0) abort();
            for (j = 0; j < no; j++) o[j] = ldexp(o[j], vexp);
            mo = max_abs(o, no); ml = max_abs(l, nl);
            if (f64) {
                compare(c, TO, o, 1e-12 * (mo > vmax ? mo : vmax), 0);
                if (!c->lse_null) compare(c, TL, l, 1e-12 * (ml > 1 ? ml : 1), 0);
            } else {
                double f = 2.0 * (double)c->d * smax + (double)nk_eff + 16.0;
                compare(c, TO, o, vmax * u * f, 0);
                if (!c->lse_null) compare(c, TL, l, u * f, u);
            }
            free(o); free(l);
        } else {
            double *dout = (double *)malloc(sizeof(double) * (size_t)no), *ones = (double *)malloc(sizeof(double) * (size_t)no);
            double *dq = (double *)malloc(sizeof(double) * (size_t)nq_), *dk = (double *)malloc(sizeof(double) * (size_t)nk_);
            double *dv = (double *)malloc(sizeof(double) * (size_t)nv), *cs = (double *)malloc(sizeof(double) * (size_t)nv);
            double *t1 = (double *)malloc(sizeof(double) * (size_t)nq_), *t2 = (double *)malloc(sizeof(double) * (size_t)nk_);
            double mdo, mv, colsum, gq, gk, gv, f, base;
            int64_t j;
            if (!dout || !ones || !dq || !dk || !dv || !cs || !t1 || !t2) abort();
            gather(&c->T[TDO], dout);
            if (ref_backward(&rp, q, kk, v, dout, dq, dk, dv) != 0) abort();
            /* column sums of P (times the mix's 1/G): dv of an all-ones upstream gradient */
            for (j = 0; j < no; j++) ones[j] = 1.0;
            if (ref_backward(&rp, q, kk, v, ones, t1, t2, cs) != 0) abort();
            colsum = max_abs(cs, nv);
            if (colsum < 1) colsum = 1;
            mdo = max_row_norm(dout, no / c->dv, c->dv);
            mv = max_row_norm(v, nv / c->dv, c->dv);
            /* gradient scales: what the terms of each sum can reach before they cancel */
            gv = colsum * max_abs(dout, no);
            gq = 2.0 * fabs(rp.scale) * mdo * mv * max_abs(kk, nk_);
            gk = 2.0 * fabs(rp.scale) * mdo * mv * max_abs(q, nq_) * colsum;
            if (gv < max_abs(dv, nv)) gv = max_abs(dv, nv);
            if (gq < max_abs(dq, nq_)) gq = max_abs(dq, nq_);
            if (gk < max_abs(dk, nk_)) gk = max_abs(dk, nk_);
            if (gv < 1) gv = 1;
            if (gq < 1) gq = 1;
            if (gk < 1) gk = 1;
            f = f64 ? 1e-12 : u * (2.0 * (double)c->d * smax + (double)(c->d + c->dv) + (double)(c->nq + nk_eff) + 16.0);
            base = 1.0;
            compare(c, TDQ, dq, base * gq * f, 0);
            compare(c, TDK, dk, base * gk * f, 0);
            compare(c, TDV, dv, base * gv * f, 0);
            free(dout); free(ones); free(dq); free(dk); free(dv); free(cs); free(t1); free(t2);
            if (pick(r, 3) == 1) masked_inf_check(c, &rp, r);
        }
        free(q); free(kk); free(v);
    }
done:
    for (i = 0; i < NT; i++) free(c->T[i].buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fcase c;
    reader r;
    r.p = data; r.n = size; r.i = 0;
    decode(&c, &r);
    plant_bad(&c, &r);
    run_case(&c, &r);
    return 0;
}

#ifdef FUZZ_RING_MAIN
/* Without libFuzzer: cc -DFUZZ_RING_MAIN ... runs the files named on the command line, then
   N random inputs (argv: [-n N] files...), and prints how many calls were valid. */
int main(int argc, char **argv)
{
    long n = 2000, i;
    int a;
    test_rng rng = rng_seed(42);
    for (a = 1; a < argc; a++) {
        FILE *f;
        uint8_t buf[4096];
        size_t len;
        if (strcmp(argv[a], "-n") == 0 && a + 1 < argc) { n = atol(argv[++a]); continue; }
        f = fopen(argv[a], "rb");
        if (!f) { fprintf(stderr, "cannot open %s\n", argv[a]); return 1; }
        len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, len);
    }
    for (i = 0; i < n; i++) {
        uint8_t buf[160];
        size_t k, len = 40 + (size_t)(rng_next(&rng) % 120);
        for (k = 0; k < len; k++) buf[k] = (uint8_t)rng_next(&rng);
        LLVMFuzzerTestOneInput(buf, len);
    }
    printf("fuzz_ring: forward %ld valid + %ld invalid, backward %ld valid + %ld invalid (of the valid, %ld "
           "zigzag/striped/varlen calls done and compared, %ld refused; %ld forwards with a huge V, %ld backwards "
           "bit-identical around masked Inf keys): all agree\n",
           n_valid[0], n_invalid[0], n_valid[1], n_invalid[1], n_maybe[0], n_maybe[1], n_huge_v, n_masked_inf);
    return 0;
}
#endif
