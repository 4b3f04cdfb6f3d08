/* test_errors.c - bad input is refused with its own status, and nothing is written.

   Build: cc -std=c99 -I. -Itests tests/test_errors.c -lm

   Every case starts from a valid fixture (b=2, nq=nk=8, h=4, hk=2, d=4, dv=3, f32, outputs
   filled with a sentinel), breaks one thing, and checks:
     - the status is the specific negative code ringattn.h documents for it;
     - ringattn_strerror(status) is a non-empty sentence, not the one for success;
     - cfg.error_detail holds a sentence (and, for a bad segment, names the index);
     - every output buffer still holds the sentinel: validation happens before any write.
   Covered: NULL config / tensors / data; zero and negative dims; b, h, d, dv, nq, nk that
   disagree between q, k, v, out, lse; hk not dividing h; unknown dtypes and a compute dtype
   that is storage-only; ring_size, num_threads, causal, scale, window out of range; a zero
   output stride; an output aliasing an input; element counts past int64; dilated configs
   (NULL arrays, zero segment / rate, n not a multiple of a segment, nq != nk, a window);
   ringattn_plan with the same bad shapes; ringattn_backward (NULL lse, dout shape, dq
   aliasing dk, ...); strerror of an unknown code. */
#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"
#include "test_util.h"

#include <stdio.h>
#include <string.h>

enum { B = 2, NQ = 8, NK = 8, H = 4, HK = 2, D = 4, DV = 3 };

/* a valid call; each case breaks one thing in a fresh copy */
typedef struct {
    float q[B * NQ * H * D], k[B * NK * HK * D], v[B * NK * HK * DV];
    float out[B * NQ * H * DV], lse[B * H * NQ], dout[B * NQ * H * DV];
    float dq[B * NQ * H * D], dk[B * NK * HK * D], dv[B * NK * HK * DV];
    ringattn_tensor Q, K, V, O, L, dO, dQ, dK, dV;
    /* what is passed: point elsewhere or NULL to test NULL arguments */
    ringattn_tensor *pq, *pk, *pv, *po, *pl, *pdo, *pdq, *pdk, *pdv;
    ringattn_config cfg, *pcfg;
    char detail[256];
} fixture;

static void reset(fixture *f)
{
    fill_sentinel_f32(f->out, B * NQ * H * DV); fill_sentinel_f32(f->lse, B * H * NQ);
    fill_sentinel_f32(f->dq, B * NQ * H * D); fill_sentinel_f32(f->dk, B * NK * HK * D);
    fill_sentinel_f32(f->dv, B * NK * HK * DV);
    f->Q = ringattn_tensor_bnhd(f->q, RINGATTN_F32, B, NQ, H, D);
    f->K = ringattn_tensor_bnhd(f->k, RINGATTN_F32, B, NK, HK, D);
    f->V = ringattn_tensor_bnhd(f->v, RINGATTN_F32, B, NK, HK, DV);
    f->O = ringattn_tensor_bnhd(f->out, RINGATTN_F32, B, NQ, H, DV);
    f->L = ringattn_tensor_lse(f->lse, RINGATTN_F32, B, H, NQ);
    f->dO = ringattn_tensor_bnhd(f->dout, RINGATTN_F32, B, NQ, H, DV);
    f->dQ = ringattn_tensor_bnhd(f->dq, RINGATTN_F32, B, NQ, H, D);
    f->dK = ringattn_tensor_bnhd(f->dk, RINGATTN_F32, B, NK, HK, D);
    f->dV = ringattn_tensor_bnhd(f->dv, RINGATTN_F32, B, NK, HK, DV);
    f->pq = &f->Q; f->pk = &f->K; f->pv = &f->V; f->po = &f->O; f->pl = &f->L;
    f->pdo = &f->dO; f->pdq = &f->dQ; f->pdk = &f->dK; f->pdv = &f->dV;
    f->cfg = ringattn_default_config();
    f->cfg.ring_size = 2; f->cfg.num_threads = 1;
    f->cfg.error_detail = f->detail; f->cfg.error_detail_size = sizeof f->detail;
    f->detail[0] = '\0';
    f->pcfg = &f->cfg;
}

static void setup(fixture *f)
{
    double x[B * NQ * H * D];
    fill_normal(x, B * NQ * H * D, 1); f64_to_f32(x, f->q, B * NQ * H * D);
    fill_normal(x, B * NK * HK * D, 2); f64_to_f32(x, f->k, B * NK * HK * D);
    fill_normal(x, B * NK * HK * DV, 3); f64_to_f32(x, f->v, B * NK * HK * DV);
    fill_normal(x, B * NQ * H * DV, 4); f64_to_f32(x, f->dout, B * NQ * H * DV);
    reset(f);
}

static int outputs_untouched(const fixture *f)
{
    return all_sentinel_f32(f->out, B * NQ * H * DV) && all_sentinel_f32(f->lse, B * H * NQ) &&
           all_sentinel_f32(f->dq, B * NQ * H * D) && all_sentinel_f32(f->dk, B * NK * HK * D) &&
           all_sentinel_f32(f->dv, B * NK * HK * DV);
}

/* the common verdict: the status (want, or the documented alternative alt), its message,
   the error detail, and untouched outputs */
static void expect(fixture *f, const char *what, int st, int want, int alt, int *failures)
{
    const char *msg = ringattn_strerror(st);
    CHECK(st == want || st == alt, "%s: status %d (%s), want %d", what, st, msg ? msg : "(null)", want);
    CHECK(st < 0, "%s: status %d is not negative", what, st);
    CHECK(msg && msg[0] && strcmp(msg, ringattn_strerror(RINGATTN_OK)) != 0,
          "%s: strerror(%d) is empty or reads as success", what, st);
    if (f->pcfg)
        CHECK(f->detail[0] != '\0', "%s: cfg.error_detail left empty", what);
    CHECK(outputs_untouched(f), "%s: an output was written before the error", what);
}

static int fwd(fixture *f)
{
    return ringattn_forward(f->pcfg, f->pq, f->pk, f->pv, f->po, f->pl);
}

static int bwd(fixture *f)
{
    return ringattn_backward(f->pcfg, f->pq, f->pk, f->pv, f->po, f->pl, f->pdo, f->pdq, f->pdk, f->pdv);
}

/* ringattn_plan on the fixture's shape; the plan must stay untouched on error */
static int plan(fixture *f, const ringattn_shape *s, int pass, int *failures, const char *what)
{
    ringattn_plan_info pi, before;
    int st;
    memset(&pi, 0xAB, sizeof pi);
    before = pi;
    st = ringattn_plan(f->pcfg, s, pass, &pi);
    if (st != RINGATTN_OK) CHECK(memcmp(&pi, &before, sizeof pi) == 0, "%s: plan written on error", what);
    return st;
}

static ringattn_shape fixture_shape(void)
{
    ringattn_shape s;
    s.batch = B; s.seq_q = NQ; s.seq_k = NK; s.heads_q = H; s.heads_kv = HK; s.dim_qk = D; s.dim_v = DV;
    return s;
}

/* ---------------------------------------------------------------- forward */

static void test_null(fixture *f, int *failures)
{
    reset(f); f->pcfg = NULL; expect(f, "cfg NULL", fwd(f), RINGATTN_ENULL, RINGATTN_ENULL, failures);
    reset(f); f->pq = NULL;   expect(f, "q NULL", fwd(f), RINGATTN_ENULL, RINGATTN_ENULL, failures);
    reset(f); f->pk = NULL;   expect(f, "k NULL", fwd(f), RINGATTN_ENULL, RINGATTN_ENULL, failures);
    reset(f); f->pv = NULL;   expect(f, "v NULL", fwd(f), RINGATTN_ENULL, RINGATTN_ENULL, failures);
    reset(f); f->po = NULL;   expect(f, "out NULL", fwd(f), RINGATTN_ENULL, RINGATTN_ENULL, failures);
    reset(f); f->Q.data = NULL; expect(f, "q.data NULL", fwd(f), RINGATTN_ENULL, RINGATTN_ENULL, failures);
    reset(f); f->K.data = NULL; expect(f, "k.data NULL", fwd(f), RINGATTN_ENULL, RINGATTN_ENULL, failures);
    reset(f); f->V.data = NULL; expect(f, "v.data NULL", fwd(f), RINGATTN_ENULL, RINGATTN_ENULL, failures);
    reset(f); f->O.data = NULL; expect(f, "out.data NULL", fwd(f), RINGATTN_ENULL, RINGATTN_ENULL, failures);
    reset(f); f->L.data = NULL; expect(f, "lse.data NULL", fwd(f), RINGATTN_ENULL, RINGATTN_ENULL, failures);
}

static void test_shapes(fixture *f, int *failures)
{
    char what[64];
    int a;
    ringattn_tensor *t[5];
    const char *names[5] = { "q", "k", "v", "out", "lse" };
    int i;
    /* zero and negative extents, every axis of every tensor */
    for (i = 0; i < 5; i++)
        for (a = 0; a < 4; a++) {
            reset(f);
            t[0] = &f->Q; t[1] = &f->K; t[2] = &f->V; t[3] = &f->O; t[4] = &f->L;
            t[i]->shape[a] = (a % 2) ? 0 : -1;
            snprintf(what, sizeof what, "%s.shape[%d] = %lld", names[i], a, (long long)t[i]->shape[a]);
            expect(f, what, fwd(f), RINGATTN_ESHAPE, RINGATTN_ESHAPE, failures);
        }
    /* extents that disagree between tensors (all smaller than the buffers) */
    reset(f); f->K.shape[0] = 1;  expect(f, "b: k 1 vs q 2", fwd(f), RINGATTN_ESHAPE, RINGATTN_ESHAPE, failures);
    reset(f); f->V.shape[0] = 1;  expect(f, "b: v 1 vs q 2", fwd(f), RINGATTN_ESHAPE, RINGATTN_ESHAPE, failures);
    reset(f); f->O.shape[0] = 1;  expect(f, "b: out 1 vs q 2", fwd(f), RINGATTN_ESHAPE, RINGATTN_ESHAPE, failures);
    reset(f); f->L.shape[0] = 1;  expect(f, "b: lse 1 vs q 2", fwd(f), RINGATTN_ESHAPE, RINGATTN_ESHAPE, failures);
    reset(f); f->O.shape[2] = 3;  expect(f, "h: out 3 vs q 4", fwd(f), RINGATTN_ESHAPE, RINGATTN_ESHAPE, failures);
    reset(f); f->L.shape[1] = 3;  expect(f, "h: lse 3 vs q 4", fwd(f), RINGATTN_ESHAPE, RINGATTN_ESHAPE, failures);
    reset(f); f->V.shape[2] = 1;  expect(f, "hk: v 1 vs k 2", fwd(f), RINGATTN_ESHAPE, RINGATTN_ESHAPE, failures);
    reset(f); f->K.shape[3] = 3;  expect(f, "d: k 3 vs q 4", fwd(f), RINGATTN_ESHAPE, RINGATTN_ESHAPE, failures);
    reset(f); f->O.shape[3] = 2;  expect(f, "dv: out 2 vs v 3", fwd(f), RINGATTN_ESHAPE, RINGATTN_ESHAPE, failures);
    reset(f); f->V.shape[1] = 7;  expect(f, "nk: v 7 vs k 8", fwd(f), RINGATTN_ESHAPE, RINGATTN_ESHAPE, failures);
    reset(f); f->O.shape[1] = 7;  expect(f, "nq: out 7 vs q 8", fwd(f), RINGATTN_ESHAPE, RINGATTN_ESHAPE, failures);
    reset(f); f->L.shape[2] = 7;  expect(f, "nq: lse 7 vs q 8", fwd(f), RINGATTN_ESHAPE, RINGATTN_ESHAPE, failures);
    reset(f); f->L.shape[3] = 2;  expect(f, "lse.shape[3] = 2", fwd(f), RINGATTN_ESHAPE, RINGATTN_ESHAPE, failures);
    /* hk = 3 does not divide h = 4 (k and v agree with each other) */
    reset(f); f->K.shape[2] = 3; f->V.shape[2] = 3;
    expect(f, "hk 3 does not divide h 4", fwd(f), RINGATTN_ESHAPE, RINGATTN_ESHAPE, failures);
}

static void test_dtypes(fixture *f, int *failures)
{
    reset(f); f->Q.dtype = (ringattn_dtype)7; expect(f, "q dtype 7", fwd(f), RINGATTN_EDTYPE, RINGATTN_EDTYPE, failures);
    reset(f); f->V.dtype = (ringattn_dtype)-1; expect(f, "v dtype -1", fwd(f), RINGATTN_EDTYPE, RINGATTN_EDTYPE, failures);
    reset(f); f->O.dtype = (ringattn_dtype)7; expect(f, "out dtype 7", fwd(f), RINGATTN_EDTYPE, RINGATTN_EDTYPE, failures);
    reset(f); f->L.dtype = (ringattn_dtype)6; expect(f, "lse dtype 6", fwd(f), RINGATTN_EDTYPE, RINGATTN_EDTYPE, failures);
    /* f16 / bf16 are storage formats only ("compute dtype not F32/F64" is EDTYPE) */
    reset(f); f->cfg.compute = RINGATTN_F16;
    expect(f, "compute F16", fwd(f), RINGATTN_EDTYPE, RINGATTN_ECONFIG, failures);
    reset(f); f->cfg.compute = RINGATTN_BF16;
    expect(f, "compute BF16", fwd(f), RINGATTN_EDTYPE, RINGATTN_ECONFIG, failures);
    reset(f); f->cfg.compute = (ringattn_dtype)7;
    expect(f, "compute 7", fwd(f), RINGATTN_EDTYPE, RINGATTN_ECONFIG, failures);
}

static void test_config(fixture *f, int *failures)
{
    reset(f); f->cfg.ring_size = -1; expect(f, "ring_size -1", fwd(f), RINGATTN_ECONFIG, RINGATTN_ECONFIG, failures);
    reset(f); f->cfg.ring_size = NQ + 1; expect(f, "ring_size > min(nq, nk)", fwd(f), RINGATTN_ECONFIG, RINGATTN_ECONFIG, failures);
    reset(f); f->cfg.num_threads = -1; expect(f, "num_threads -1", fwd(f), RINGATTN_ECONFIG, RINGATTN_ECONFIG, failures);
    reset(f); f->cfg.causal = 3; expect(f, "causal 3", fwd(f), RINGATTN_ECONFIG, RINGATTN_ECONFIG, failures);
    reset(f); f->cfg.causal = -1; expect(f, "causal -1", fwd(f), RINGATTN_ECONFIG, RINGATTN_ECONFIG, failures);
    reset(f); f->cfg.scale = NAN; expect(f, "scale NaN", fwd(f), RINGATTN_ECONFIG, RINGATTN_ECONFIG, failures);
    reset(f); f->cfg.scale = INFINITY; expect(f, "scale +inf", fwd(f), RINGATTN_ECONFIG, RINGATTN_ECONFIG, failures);
    reset(f); f->cfg.scale = -INFINITY; expect(f, "scale -inf", fwd(f), RINGATTN_ECONFIG, RINGATTN_ECONFIG, failures);
    reset(f); f->cfg.window_left = -2; expect(f, "window_left -2", fwd(f), RINGATTN_ECONFIG, RINGATTN_ECONFIG, failures);
    reset(f); f->cfg.window_right = -5; expect(f, "window_right -5", fwd(f), RINGATTN_ECONFIG, RINGATTN_ECONFIG, failures);
}

static void test_strides_alias(fixture *f, int *failures)
{
    reset(f); f->O.stride[1] = 0; expect(f, "out.stride[1] = 0", fwd(f), RINGATTN_ESTRIDE, RINGATTN_ESTRIDE, failures);
    reset(f); f->O.stride[3] = 0; expect(f, "out.stride[3] = 0", fwd(f), RINGATTN_ESTRIDE, RINGATTN_ESTRIDE, failures);
    reset(f); f->L.stride[2] = 0; expect(f, "lse.stride[2] = 0", fwd(f), RINGATTN_ESTRIDE, RINGATTN_ESTRIDE, failures);
    /* out over q: same dtype and big enough, so only the alias rule can object */
    reset(f); f->O.data = f->q; expect(f, "out.data == q.data", fwd(f), RINGATTN_EALIAS, RINGATTN_EALIAS, failures);
    reset(f); f->O.data = f->v; expect(f, "out.data == v.data", fwd(f), RINGATTN_EALIAS, RINGATTN_EALIAS, failures);
    reset(f); f->L.data = f->out; expect(f, "lse.data == out.data", fwd(f), RINGATTN_EALIAS, RINGATTN_EALIAS, failures);
}

/* 2^20 in every dimension: 2^80 elements. Must be refused from the shapes alone, before any
   byte behind the (tiny, dummy) pointers is read or written. */
static void test_overflow(fixture *f, int *failures)
{
    float dq_[1], dk_[1], dv_[1], do_[1];
    const int64_t M = (int64_t)1 << 20;
    ringattn_tensor q = ringattn_tensor_bnhd(dq_, RINGATTN_F32, M, M, M, M);
    ringattn_tensor k = ringattn_tensor_bnhd(dk_, RINGATTN_F32, M, M, M, M);
    ringattn_tensor v = ringattn_tensor_bnhd(dv_, RINGATTN_F32, M, M, M, M);
    ringattn_tensor o = ringattn_tensor_bnhd(do_, RINGATTN_F32, M, M, M, M);
    ringattn_shape s;
    int st;
    reset(f);
    f->pq = &q; f->pk = &k; f->pv = &v; f->po = &o; f->pl = NULL;
    st = fwd(f);
    expect(f, "2^80 elements", st, RINGATTN_EOVERFLOW, RINGATTN_EOVERFLOW, failures);
    s.batch = s.seq_q = s.seq_k = s.heads_q = s.heads_kv = s.dim_qk = s.dim_v = M;
    reset(f);
    st = plan(f, &s, 0, failures, "plan 2^80");
    expect(f, "plan: 2^80 elements", st, RINGATTN_EOVERFLOW, RINGATTN_EOVERFLOW, failures);
}

static void test_dilated(fixture *f, int *failures)
{
    int64_t seg[2] = { 4, 8 }, rate[2] = { 1, 2 };
    int st;
    reset(f); f->cfg.num_groups = 2;   /* both arrays NULL */
    expect(f, "dilated, NULL arrays", fwd(f), RINGATTN_ENULL, RINGATTN_ESEGMENT, failures);
    reset(f); f->cfg.num_groups = 2; f->cfg.segment_lengths = seg;
    expect(f, "dilated, NULL rates", fwd(f), RINGATTN_ENULL, RINGATTN_ESEGMENT, failures);
    reset(f); f->cfg.num_groups = -1; expect(f, "num_groups -1", fwd(f), RINGATTN_ECONFIG, RINGATTN_ECONFIG, failures);

    seg[1] = 0;
    reset(f); f->cfg.num_groups = 2; f->cfg.segment_lengths = seg; f->cfg.dilation_rates = rate;
    expect(f, "segment_lengths[1] = 0", fwd(f), RINGATTN_ESEGMENT, RINGATTN_ESEGMENT, failures);
    CHECK(strstr(f->detail, "[1]") != NULL, "error_detail does not name index 1: \"%s\"", f->detail);
    seg[1] = 8; rate[0] = 0;
    reset(f); f->cfg.num_groups = 2; f->cfg.segment_lengths = seg; f->cfg.dilation_rates = rate;
    expect(f, "dilation_rates[0] = 0", fwd(f), RINGATTN_ESEGMENT, RINGATTN_ESEGMENT, failures);
    CHECK(strstr(f->detail, "[0]") != NULL, "error_detail does not name index 0: \"%s\"", f->detail);
    rate[0] = 1; seg[1] = 3;            /* n = 8 is not a multiple of 3 */
    reset(f); f->cfg.num_groups = 2; f->cfg.segment_lengths = seg; f->cfg.dilation_rates = rate;
    st = fwd(f);
    expect(f, "n = 8, segment_lengths[1] = 3", st, RINGATTN_ESEGMENT, RINGATTN_ESEGMENT, failures);
    CHECK(strstr(f->detail, "[1]") != NULL, "error_detail does not name index 1: \"%s\"", f->detail);
    printf("  error_detail for a bad segment: \"%s\"\n", f->detail);
    {   /* the same bad segment through ringattn_plan, both passes */
        ringattn_shape s = fixture_shape();
        reset(f); f->cfg.num_groups = 2; f->cfg.segment_lengths = seg; f->cfg.dilation_rates = rate;
        expect(f, "plan fwd: segment 3", plan(f, &s, 0, failures, "plan seg"), RINGATTN_ESEGMENT, RINGATTN_ESEGMENT, failures);
        reset(f); f->cfg.num_groups = 2; f->cfg.segment_lengths = seg; f->cfg.dilation_rates = rate;
        expect(f, "plan bwd: segment 3", plan(f, &s, 1, failures, "plan seg"), RINGATTN_ESEGMENT, RINGATTN_ESEGMENT, failures);
    }
    seg[1] = 8;
    /* dilation needs nq == nk */
    reset(f); f->cfg.num_groups = 2; f->cfg.segment_lengths = seg; f->cfg.dilation_rates = rate;
    f->K.shape[1] = 4; f->V.shape[1] = 4; f->cfg.ring_size = 1;
    expect(f, "dilated, nq 8 != nk 4", fwd(f), RINGATTN_ESEGMENT, RINGATTN_ESEGMENT, failures);
    /* a window with dilation: a valid option not implemented */
    reset(f); f->cfg.num_groups = 2; f->cfg.segment_lengths = seg; f->cfg.dilation_rates = rate;
    f->cfg.window_left = 2;
    expect(f, "dilated with a window", fwd(f), RINGATTN_EUNSUPPORTED, RINGATTN_EUNSUPPORTED, failures);
}

static void test_plan(fixture *f, int *failures)
{
    ringattn_shape s;
    ringattn_plan_info pi;
    reset(f); s = fixture_shape();
    CHECK(ringattn_plan(&f->cfg, &s, 0, &pi) == RINGATTN_OK, "plan of the valid fixture failed: %s", f->detail);
    reset(f); s = fixture_shape(); s.seq_q = 0;
    expect(f, "plan: seq_q 0", plan(f, &s, 0, failures, "plan"), RINGATTN_ESHAPE, RINGATTN_ESHAPE, failures);
    reset(f); s = fixture_shape(); s.dim_v = -3;
    expect(f, "plan: dim_v -3", plan(f, &s, 1, failures, "plan"), RINGATTN_ESHAPE, RINGATTN_ESHAPE, failures);
    reset(f); s = fixture_shape(); s.heads_kv = 3;
    expect(f, "plan: hk 3, h 4", plan(f, &s, 0, failures, "plan"), RINGATTN_ESHAPE, RINGATTN_ESHAPE, failures);
    reset(f); s = fixture_shape(); f->cfg.ring_size = NK + 1;
    expect(f, "plan: ring_size > n", plan(f, &s, 0, failures, "plan"), RINGATTN_ECONFIG, RINGATTN_ECONFIG, failures);
    reset(f); s = fixture_shape(); f->cfg.causal = 3;
    expect(f, "plan: causal 3", plan(f, &s, 1, failures, "plan"), RINGATTN_ECONFIG, RINGATTN_ECONFIG, failures);
    reset(f); s = fixture_shape(); f->cfg.compute = RINGATTN_F16;
    expect(f, "plan: compute F16", plan(f, &s, 0, failures, "plan"), RINGATTN_EDTYPE, RINGATTN_ECONFIG, failures);
    reset(f); s = fixture_shape();
    expect(f, "plan: NULL shape", plan(f, NULL, 0, failures, "plan"), RINGATTN_ENULL, RINGATTN_ENULL, failures);
    reset(f); s = fixture_shape(); f->pcfg = NULL;
    expect(f, "plan: NULL cfg", plan(f, &s, 0, failures, "plan"), RINGATTN_ENULL, RINGATTN_ENULL, failures);
}

/* ---------------------------------------------------------------- backward */

static void test_backward(fixture *f, int *failures)
{
    int st;
    /* a valid backward first, so that the failures below are the checks' doing */
    reset(f);
    st = fwd(f);
    CHECK(st == RINGATTN_OK, "fixture forward failed: %d %s", st, f->detail);
    st = bwd(f);
    CHECK(st == RINGATTN_OK, "fixture backward failed: %d %s", st, f->detail);
    {
#define BWD_CASE(what, mutate, want, alt)                                        \
        do {                                                                     \
            reset(f);                                                            \
            mutate;                                                              \
            st = bwd(f);                                                         \
            expect(f, what, st, want, alt, failures);                            \
        } while (0)
        /* reset() refills out and lse with the sentinel too: every case is refused before
           their values matter, and the check then also proves backward never writes them */
        BWD_CASE("bwd: cfg NULL", f->pcfg = NULL, RINGATTN_ENULL, RINGATTN_ENULL);
        BWD_CASE("bwd: lse NULL", f->pl = NULL, RINGATTN_ENULL, RINGATTN_ENULL);
        BWD_CASE("bwd: dout NULL", f->pdo = NULL, RINGATTN_ENULL, RINGATTN_ENULL);
        BWD_CASE("bwd: dq NULL", f->pdq = NULL, RINGATTN_ENULL, RINGATTN_ENULL);
        BWD_CASE("bwd: dv.data NULL", f->dV.data = NULL, RINGATTN_ENULL, RINGATTN_ENULL);
        BWD_CASE("bwd: dout.shape[3] 2 vs 3", f->dO.shape[3] = 2, RINGATTN_ESHAPE, RINGATTN_ESHAPE);
        BWD_CASE("bwd: dout.shape[1] 7 vs 8", f->dO.shape[1] = 7, RINGATTN_ESHAPE, RINGATTN_ESHAPE);
        BWD_CASE("bwd: dk.shape[2] 1 vs 2", f->dK.shape[2] = 1, RINGATTN_ESHAPE, RINGATTN_ESHAPE);
        BWD_CASE("bwd: dq.shape[3] 3 vs 4", f->dQ.shape[3] = 3, RINGATTN_ESHAPE, RINGATTN_ESHAPE);
        BWD_CASE("bwd: lse.shape[2] 7 vs 8", f->L.shape[2] = 7, RINGATTN_ESHAPE, RINGATTN_ESHAPE);
        BWD_CASE("bwd: dv.stride[1] = 0", f->dV.stride[1] = 0, RINGATTN_ESTRIDE, RINGATTN_ESTRIDE);
        BWD_CASE("bwd: dq.data == dk.data", f->dQ.data = f->dk, RINGATTN_EALIAS, RINGATTN_EALIAS);
        BWD_CASE("bwd: dq.data == q.data", f->dQ.data = f->q, RINGATTN_EALIAS, RINGATTN_EALIAS);
        BWD_CASE("bwd: dv.data == dout.data", f->dV.data = f->dout, RINGATTN_EALIAS, RINGATTN_EALIAS);
        BWD_CASE("bwd: causal 3", f->cfg.causal = 3, RINGATTN_ECONFIG, RINGATTN_ECONFIG);
        BWD_CASE("bwd: dk dtype 7", f->dK.dtype = (ringattn_dtype)7, RINGATTN_EDTYPE, RINGATTN_EDTYPE);
#undef BWD_CASE
    }
}

int main(void)
{
    static fixture fx;   /* large-ish: keep it off the stack */
    int nfail = 0, *failures = &nfail, st;
    fixture *f = &fx;
    const char *u;
    setup(f);

    /* the fixture itself is valid */
    st = fwd(f);
    CHECK(st == RINGATTN_OK, "fixture forward failed: %d (%s) %s", st, ringattn_strerror(st), f->detail);
    CHECK(!outputs_untouched(f), "fixture forward wrote nothing");

    test_null(f, failures);
    test_shapes(f, failures);
    test_dtypes(f, failures);
    test_config(f, failures);
    test_strides_alias(f, failures);
    test_overflow(f, failures);
    test_dilated(f, failures);
    test_plan(f, failures);
    test_backward(f, failures);

    /* unknown codes still get a sentence */
    u = ringattn_strerror(-12345);
    CHECK(u != NULL && strstr(u, "unknown") != NULL, "strerror(-12345) = \"%s\"", u ? u : "(null)");
    u = ringattn_strerror(7);
    CHECK(u != NULL && strstr(u, "unknown") != NULL, "strerror(7) = \"%s\"", u ? u : "(null)");

    printf("test_errors: %s (%d failures)\n", nfail ? "FAIL" : "ok", nfail);
    return nfail ? TEST_FAIL : TEST_PASS;
}
