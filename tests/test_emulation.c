/* test_emulation.c - the precision emulation (ringattn_config.round_p / round_state) against
   a plain computation written here, row by row in double, with the same rounding points:

   1. round_p: P = exp(s - max) rounded to bf16 / f16 after the row sum, then P V / l
      (compute f64, one tile: the running max is the row max, so the plain formula is exact);
      round_s: the scores rounded too, before the max and the exp;
   2. round_state: a ring of 4 members, compute f64, the state held in bf16 (out) and f32
      (lse) after every step; the plain version merges the members' chunks in ring order
      (member i holds chunk (i - t) mod p at step t) with logaddexp, rounding after each;
      round_block: each block's (out, lse) held in bf16 / f32, the state merged in f64;
   3. round_p backward (compute f64): P and dS rounded, against the same formulas in double;
   4. neutral settings change no bit: round_p to f64 with f64 compute, round_state with f64;
   5. fp8 storage (e4m3fn, e5m2): every code through decode and encode, the formats' edges,
      and fp8 inputs with FlashAttention 3's descale factors against descaled f64 inputs;
   6. bad settings are refused with a status and a sentence, outputs untouched.
   Exit 0 = pass. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"
#include "test_util.h"

enum { B = 1, N = 64, H = 2, D = 16 };

static double round_to(double x, ringattn_dtype t)
{
    float f;
    uint16_t h;
    if (t == RINGATTN_F32) { f = (float)x; return f; }
    if (t == RINGATTN_F64) return x;
    /* through the library's own store/load (storage conversions are tested elsewhere) */
    ringattn__store(&h, t, 0, x);
    return ringattn__load(&h, t, 0);
}

/* the plain result of row (i, head hh) over keys [k0, k1): unnormalised sums and max */
static void plain_block(const double *q, const double *k, const double *v, int i, int hh, int k0, int k1,
                        int round_p, int round_s, ringattn_dtype pt, double *out, double *lse)
{
    double s[N], mx = -INFINITY, l = 0, scale = 1.0 / sqrt((double)D);
    int j, c;
    for (j = k0; j < k1; j++) {
        double dot = 0;
        for (c = 0; c < D; c++) dot += q[(i * H + hh) * D + c] * k[(j * H + hh) * D + c];
        s[j] = dot * scale;
        if (round_s) s[j] = round_to(s[j], pt);
        if (s[j] > mx) mx = s[j];
    }
    for (c = 0; c < D; c++) out[c] = 0;
    for (j = k0; j < k1; j++) {
        double p = exp(s[j] - mx);
        l += p;
        if (round_p) p = round_to(p, pt);
        for (c = 0; c < D; c++) out[c] += p * v[(j * H + hh) * D + c];
    }
    for (c = 0; c < D; c++) out[c] /= l;
    *lse = mx + log(l);
}

static void inputs(double *q, double *k, double *v, double *dout, uint64_t seed)
{
    fill_normal(q, B * N * H * D, seed);
    fill_normal(k, B * N * H * D, seed + 1);
    fill_normal(v, B * N * H * D, seed + 2);
    fill_normal(dout, B * N * H * D, seed + 3);
}

static double max_diff(const double *a, const double *b, int64_t n)
{
    double m = 0; int64_t x;
    for (x = 0; x < n; x++) { double e = fabs(a[x] - b[x]); if (!(e <= m)) m = e; }
    return m;
}

static void test_round_p(int *failures, ringattn_dtype pt, int round_s, const char *name)
{
    static double q[B * N * H * D], k[B * N * H * D], v[B * N * H * D], dout[B * N * H * D];
    static double out[B * N * H * D], lse[B * H * N], want[B * N * H * D], wlse[B * H * N], exact[B * N * H * D];
    ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F64, B, N, H, D), K = Q, V = Q, O = Q, L, E = Q;
    ringattn_config cfg = ringattn_default_config();
    int i, hh, st;
    inputs(q, k, v, dout, 11);
    K.data = k; V.data = v; O.data = out; E.data = exact;
    L = ringattn_tensor_lse(lse, RINGATTN_F64, B, H, N);
    cfg.compute = RINGATTN_F64; cfg.num_threads = 1;
    st = ringattn_forward(&cfg, &Q, &K, &V, &E, NULL);
    CHECK(st == 0, "exact forward: status %d", st);
    cfg.round_p = 1; cfg.p_dtype = pt; cfg.round_s = round_s;
    st = ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
    CHECK(st == 0, "%s forward: status %d", name, st);
    for (i = 0; i < N; i++)
        for (hh = 0; hh < H; hh++)
            plain_block(q, k, v, i, hh, 0, N, 1, round_s, pt, &want[(i * H + hh) * D], &wlse[hh * N + i]);
    {
        double e = max_diff(out, want, B * N * H * D), el = max_diff(lse, wlse, B * H * N);
        double moved = max_diff(out, exact, B * N * H * D);
        printf("  round_p %s: |emulated - plain| out %.2e lse %.2e; |emulated - exact| %.2e\n", name, e, el, moved);
        CHECK(e <= 1e-12 && el <= 1e-12, "round_p %s: emulation differs from the plain formula (%.3e, %.3e)",
              name, e, el);
        /* the rounding must show: P in bf16 moves the output by about 2^-9 of |v| */
        CHECK(moved > (pt == RINGATTN_BF16 ? 1e-4 : 1e-5), "round_p %s: no effect on the output (%.3e)", name, moved);
    }
}

static void test_round_state(int *failures, int block)
{
    enum { P = 4 };
    static double q[B * N * H * D], k[B * N * H * D], v[B * N * H * D], dout[B * N * H * D];
    static double out[B * N * H * D], lse[B * H * N], want[B * N * H * D], wlse[B * H * N];
    ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F64, B, N, H, D), K = Q, V = Q, O = Q, L;
    ringattn_config cfg = ringattn_default_config();
    int i, hh, st, c, t;
    inputs(q, k, v, dout, 23);
    K.data = k; V.data = v; O.data = out;
    L = ringattn_tensor_lse(lse, RINGATTN_F64, B, H, N);
    cfg.compute = RINGATTN_F64; cfg.ring_size = P; cfg.num_threads = 2;
    if (block) { cfg.round_block = 1; cfg.block_dtype = RINGATTN_BF16; }
    else { cfg.round_state = 1; cfg.state_dtype = RINGATTN_BF16; }
    st = ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
    CHECK(st == 0, "round_state forward: status %d", st);
    for (i = 0; i < N; i++) {
        int member = i / (N / P);
        for (hh = 0; hh < H; hh++) {
            double o[D], ls = -INFINITY, bo[D], bl;
            for (c = 0; c < D; c++) o[c] = 0;
            for (t = 0; t < P; t++) {   /* the chunks in the order member `member` holds them */
                int src = ((member - t) % P + P) % P, k0 = src * (N / P);
                double nl;
                plain_block(q, k, v, i, hh, k0, k0 + N / P, 0, 0, RINGATTN_F64, bo, &bl);
                if (block) {   /* the block held in bf16 (lse f32), the state in f64 */
                    for (c = 0; c < D; c++) bo[c] = round_to(bo[c], RINGATTN_BF16);
                    bl = round_to(bl, RINGATTN_F32);
                }
                nl = (ls > bl ? ls : bl) + log(exp(ls - (ls > bl ? ls : bl)) + exp(bl - (ls > bl ? ls : bl)));
                for (c = 0; c < D; c++) {
                    o[c] = o[c] * exp(ls - nl) + bo[c] * exp(bl - nl);
                    if (!block) o[c] = round_to(o[c], RINGATTN_BF16);
                }
                ls = block ? nl : round_to(nl, RINGATTN_F32);
            }
            for (c = 0; c < D; c++) want[(i * H + hh) * D + c] = o[c];
            wlse[hh * N + i] = ls;
        }
    }
    {
        double e = max_diff(out, want, B * N * H * D), el = max_diff(lse, wlse, B * H * N);
        int64_t x, off = 0;
        for (x = 0; x < B * N * H * D; x++) if (round_to(out[x], RINGATTN_BF16) != out[x]) off++;
        printf("  %s bf16, ring 4: |emulated - plain| out %.2e lse %.2e; %lld outputs not bf16\n",
               block ? "round_block" : "round_state", e, el, (long long)off);
        CHECK(e <= 1e-12 && el <= 1e-12, "%s: emulation differs from the plain ring (%.3e, %.3e)",
              block ? "round_block" : "round_state", e, el);
        CHECK(block || off == 0, "round_state: %lld outputs are not bf16 values", (long long)off);
        CHECK(!block || off > 0, "round_block: every output is a bf16 value (the state should be f64)");
    }
}

/* backward: dS = P (dP - D), P and dS rounded, then the sums, all in double here */
static void test_backward(int *failures, int round_s)
{
    static double q[B * N * H * D], k[B * N * H * D], v[B * N * H * D], dout[B * N * H * D];
    static double out[B * N * H * D], lse[B * H * N], dq[B * N * H * D], dk[B * N * H * D], dv[B * N * H * D];
    static double wq[B * N * H * D], wk[B * N * H * D], wv[B * N * H * D];
    ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F64, B, N, H, D), K = Q, V = Q, O = Q, G = Q, L;
    ringattn_tensor dQ = Q, dK = Q, dV = Q;
    ringattn_config cfg = ringattn_default_config();
    double scale = 1.0 / sqrt((double)D);
    int i, j, hh, c, st;
    inputs(q, k, v, dout, 31);
    K.data = k; V.data = v; O.data = out; G.data = dout; dQ.data = dq; dK.data = dk; dV.data = dv;
    L = ringattn_tensor_lse(lse, RINGATTN_F64, B, H, N);
    cfg.compute = RINGATTN_F64; cfg.num_threads = 1; cfg.ring_size = 2;
    cfg.causal = RINGATTN_CAUSAL_BOTTOM_RIGHT;
    st = ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
    cfg.round_p = 1; cfg.p_dtype = RINGATTN_BF16; cfg.round_s = round_s;
    st |= ringattn_backward(&cfg, &Q, &K, &V, &O, &L, &G, &dQ, &dK, &dV);
    CHECK(st == 0, "backward: status %d", st);
    memset(wq, 0, sizeof wq); memset(wk, 0, sizeof wk); memset(wv, 0, sizeof wv);
    for (hh = 0; hh < H; hh++)
        for (i = 0; i < N; i++) {
            double Dr = 0;
            for (c = 0; c < D; c++) Dr += dout[(i * H + hh) * D + c] * out[(i * H + hh) * D + c];
            for (j = 0; j <= i; j++) {
                double s = 0, dp = 0, p, ds;
                for (c = 0; c < D; c++) {
                    s += q[(i * H + hh) * D + c] * k[(j * H + hh) * D + c];
                    dp += dout[(i * H + hh) * D + c] * v[(j * H + hh) * D + c];
                }
                if (round_s) { s = round_to(s * scale, RINGATTN_BF16) / scale; dp = round_to(dp, RINGATTN_BF16); }
                p = exp(s * scale - lse[hh * N + i]);
                ds = round_to(p * (dp - Dr), RINGATTN_BF16) * scale;
                p = round_to(p, RINGATTN_BF16);
                for (c = 0; c < D; c++) {
                    wv[(j * H + hh) * D + c] += p * dout[(i * H + hh) * D + c];
                    wq[(i * H + hh) * D + c] += ds * k[(j * H + hh) * D + c];
                    wk[(j * H + hh) * D + c] += ds * q[(i * H + hh) * D + c];
                }
            }
        }
    {
        double e = max_diff(dq, wq, B * N * H * D), f = max_diff(dk, wk, B * N * H * D), g = max_diff(dv, wv, B * N * H * D);
        printf("  round_p bf16%s backward: |emulated - plain| dq %.2e dk %.2e dv %.2e\n",
               round_s ? " with round_s" : "", e, f, g);
        CHECK(e <= 1e-12 && f <= 1e-12 && g <= 1e-12, "round_p backward differs from the plain formulas");
    }
}

static void test_neutral(int *failures)
{
    static double q[B * N * H * D], k[B * N * H * D], v[B * N * H * D], dout[B * N * H * D];
    static double a[B * N * H * D], b[B * N * H * D];
    ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F64, B, N, H, D), K = Q, V = Q, O = Q;
    ringattn_config cfg = ringattn_default_config();
    int st;
    inputs(q, k, v, dout, 41);
    K.data = k; V.data = v;
    cfg.compute = RINGATTN_F64; cfg.ring_size = 3; cfg.causal = RINGATTN_CAUSAL_TOP_LEFT;
    O.data = a; st = ringattn_forward(&cfg, &Q, &K, &V, &O, NULL);
    cfg.round_p = 1; cfg.p_dtype = RINGATTN_F64;
    O.data = b; st |= ringattn_forward(&cfg, &Q, &K, &V, &O, NULL);
    CHECK(st == 0 && memcmp(a, b, sizeof a) == 0, "round_p to f64 under f64 compute changed bits");
}

/* fp8 storage: every e4m3 / e5m2 code read and written back, the edges of each format, and
   fp8 inputs with descale factors = f64 inputs holding the descaled values, bit for bit */
static void test_fp8(int *failures)
{
    enum { NB = 2, NN = 24, NH = 4, NHK = 2, ND = 8 };
    static uint8_t q8[NB * NN * NH * ND], k8[NB * NN * NHK * ND], v8[NB * NN * NHK * ND];
    static double qd[NB * NN * NH * ND], kd[NB * NN * NHK * ND], vd[NB * NN * NHK * ND];
    static double o8[NB * NN * NH * ND], od[NB * NN * NH * ND];
    double dsq[NB * NHK] = { 0.5, 2.0, 1.25, 0.75 }, dsk[NB * NHK] = { 1.5, 0.25, 1.0, 3.0 };
    double dsv[NB * NHK] = { 2.0, 1.0, 0.125, 4.0 };
    ringattn_tensor Q = ringattn_tensor_bnhd(q8, RINGATTN_FP8_E4M3, NB, NN, NH, ND);
    ringattn_tensor K = ringattn_tensor_bnhd(k8, RINGATTN_FP8_E5M2, NB, NN, NHK, ND);
    ringattn_tensor V = ringattn_tensor_bnhd(v8, RINGATTN_FP8_E4M3, NB, NN, NHK, ND);
    ringattn_tensor O = ringattn_tensor_bnhd(o8, RINGATTN_F64, NB, NN, NH, ND);
    ringattn_tensor Qd = ringattn_tensor_bnhd(qd, RINGATTN_F64, NB, NN, NH, ND);
    ringattn_tensor Kd = ringattn_tensor_bnhd(kd, RINGATTN_F64, NB, NN, NHK, ND);
    ringattn_tensor Vd = ringattn_tensor_bnhd(vd, RINGATTN_F64, NB, NN, NHK, ND);
    ringattn_tensor Od = ringattn_tensor_bnhd(od, RINGATTN_F64, NB, NN, NH, ND);
    ringattn_config cfg = ringattn_default_config();
    test_rng r = rng_seed(77);
    int c, bad = 0, st, x;
    for (c = 0; c < 256; c++) {   /* decode then encode: the same code (NaNs: the canonical one) */
        uint8_t b = (uint8_t)c;
        double a = ringattn__e4m3_to_double(b), e = ringattn__e5m2_to_double(b);
        if (a == a ? ringattn__double_to_e4m3(a) != b : (ringattn__double_to_e4m3(a) & 0x7F) != 0x7F) bad++;
        if (e == e ? ringattn__double_to_e5m2(e) != b : (ringattn__double_to_e5m2(e) & 0x7F) <= 0x7C) bad++;
    }
    CHECK(bad == 0, "fp8: %d codes do not survive decode + encode", bad);
    CHECK(ringattn__double_to_e4m3(448.0) == 0x7E && ringattn__double_to_e4m3(464.0) == 0x7E &&
          ringattn__double_to_e4m3(480.0) == 0x7F && ringattn__double_to_e4m3(-INFINITY) == 0xFF &&
          ringattn__double_to_e4m3(1.0) == 0x38 && ringattn__double_to_e4m3(ldexp(1.0, -9)) == 0x01 &&
          ringattn__double_to_e4m3(ldexp(1.0, -10)) == 0x00 && ringattn__double_to_e4m3(ldexp(1.5, -10)) == 0x01,
          "fp8 e4m3: an edge case is encoded wrongly");
    CHECK(ringattn__double_to_e5m2(57344.0) == 0x7B && ringattn__double_to_e5m2(61440.0) == 0x7C &&
          ringattn__double_to_e5m2(1.0) == 0x3C && ringattn__e5m2_to_double(0x7C) == INFINITY,
          "fp8 e5m2: an edge case is encoded wrongly");
    CHECK(ringattn__round(1.0 + 1.0 / 16, RINGATTN_FP8_E4M3) == 1.0 && ringattn__round(1.1, RINGATTN_FP8_E4M3) == 1.125,
          "fp8: ringattn__round");
    for (x = 0; x < NB * NN * NH * ND; x++) q8[x] = ringattn__double_to_e4m3(4 * rng_normal(&r));
    for (x = 0; x < NB * NN * NHK * ND; x++) {
        k8[x] = ringattn__double_to_e5m2(4 * rng_normal(&r));
        v8[x] = ringattn__double_to_e4m3(4 * rng_normal(&r));
    }
    for (x = 0; x < NB * NN * NH * ND; x++) {   /* the descaled values, in double */
        int64_t bb = x / (NN * NH * ND), hh = (x / ND) % NH;
        qd[x] = ringattn__e4m3_to_double(q8[x]) * dsq[bb * NHK + hh / (NH / NHK)];
    }
    for (x = 0; x < NB * NN * NHK * ND; x++) {
        int64_t bb = x / (NN * NHK * ND), kh = (x / ND) % NHK;
        kd[x] = ringattn__e5m2_to_double(k8[x]) * dsk[bb * NHK + kh];
        vd[x] = ringattn__e4m3_to_double(v8[x]) * dsv[bb * NHK + kh];
    }
    {   /* fp8 in .npy: the raw bytes as |u1, read back as e4m3 */
        static unsigned char buf[2048];
        size_t len = 0; ringattn_npy_array arr;
        st = ringattn_npy_encode(&Q, 4, buf, sizeof buf, &len, NULL);
        CHECK(st == 0 && len > 20 && strstr((const char *)buf + 10, "'|u1'") != NULL, "fp8 .npy: encode (status %d)", st);
        st = ringattn_npy_decode(buf, len, &arr, NULL);
        CHECK(st == 0 && arr.t.dtype == RINGATTN_FP8_E4M3 && memcmp(arr.t.data, q8, sizeof q8) == 0,
              "fp8 .npy: decode (status %d)", st);
        if (st == 0) ringattn_npy_free(&arr);
    }
    cfg.compute = RINGATTN_F64; cfg.ring_size = 3; cfg.causal = RINGATTN_CAUSAL_BOTTOM_RIGHT;
    st = ringattn_forward(&cfg, &Qd, &Kd, &Vd, &Od, NULL);
    cfg.q_descale = dsq; cfg.k_descale = dsk; cfg.v_descale = dsv; cfg.descale_size = NB * NHK;
    st |= ringattn_forward(&cfg, &Q, &K, &V, &O, NULL);
    CHECK(st == 0 && memcmp(o8, od, sizeof od) == 0, "fp8 with descales differs from the descaled f64 inputs");
    {
        char why[256] = "";
        cfg.error_detail = why; cfg.error_detail_size = sizeof why;
        cfg.descale_size = 3;
        st = ringattn_forward(&cfg, &Q, &K, &V, &O, NULL);
        CHECK(st == RINGATTN_ECONFIG && strstr(why, "descale_size"), "descale_size 3: status %d '%s'", st, why);
        cfg.descale_size = 1; dsk[0] = NAN;
        st = ringattn_forward(&cfg, &Q, &K, &V, &O, NULL);
        CHECK(st == RINGATTN_ECONFIG && strstr(why, "k_descale[0]"), "NaN descale: status %d '%s'", st, why);
        dsk[0] = 1.5;
        st = ringattn_backward(&cfg, &Q, &K, &V, &O, NULL, &O, &O, &O, &O);
        CHECK(st < 0, "backward with descales accepted");
    }
}

static void test_refused(int *failures)
{
    static double q[B * N * H * D], out[B * N * H * D];
    ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F64, B, N, H, D), O = Q;
    ringattn_config cfg = ringattn_default_config();
    char why[256] = "";
    int st, x;
    O.data = out;
    for (x = 0; x < B * N * H * D; x++) out[x] = 7.0;
    cfg.error_detail = why; cfg.error_detail_size = sizeof why;
    cfg.round_p = 1; cfg.p_dtype = (ringattn_dtype)9;
    st = ringattn_forward(&cfg, &Q, &Q, &Q, &O, NULL);
    CHECK(st == RINGATTN_EDTYPE && strstr(why, "p_dtype"), "bad p_dtype: status %d, '%s'", st, why);
    cfg.round_p = 2; cfg.p_dtype = RINGATTN_BF16;
    st = ringattn_forward(&cfg, &Q, &Q, &Q, &O, NULL);
    CHECK(st == RINGATTN_ECONFIG && strstr(why, "round_p"), "round_p = 2: status %d, '%s'", st, why);
    cfg.round_p = 0; cfg.round_state = 1; cfg.state_dtype = (ringattn_dtype)-3;
    st = ringattn_forward(&cfg, &Q, &Q, &Q, &O, NULL);
    CHECK(st == RINGATTN_EDTYPE && strstr(why, "state_dtype"), "bad state_dtype: status %d, '%s'", st, why);
    for (x = 0; x < B * N * H * D; x++) if (out[x] != 7.0) break;
    CHECK(x == B * N * H * D, "a refused call wrote its output");
}

int main(void)
{
    int fails = 0, *failures = &fails;
    test_round_p(failures, RINGATTN_BF16, 0, "bf16");
    test_round_p(failures, RINGATTN_F16, 0, "f16");
    test_round_p(failures, RINGATTN_BF16, 1, "bf16 with round_s");
    test_round_state(failures, 0);
    test_round_state(failures, 1);
    test_backward(failures, 0);
    test_backward(failures, 1);
    test_neutral(failures);
    test_fp8(failures);
    test_refused(failures);
    printf("%s: %d failure(s)\n", fails ? "FAIL" : "PASS", fails);
    return fails ? TEST_FAIL : TEST_PASS;
}
