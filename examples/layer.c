/* layer.c - one multihead dilated attention layer (RingMultiheadDilatedAttention), forward and
   backward, on a random batch, and the same result checked against PyTorch.

   Build: cc -std=c99 -O2 -I. examples/layer.c -lm -o layer
   Run:   ./layer [OUT_DIR [GOLDEN_DIR]]

   The layer: E = 16, H = 2 heads of 16/2 = 8, LongNet dilation (segments 8, 16; rates 1, 2)
   on a ring of 4 members, LayerNorm before the output projection (MAGNETO), fused Q|K|V
   weights. Weights from ringattn_layer_init (seed 42, gamma_init 0.5: xavier_normal as
   fkodom's MultiheadDilatedAttention), then x and dy ~ N(0, 1) from the same generator,
   everything stored as float32, arithmetic in f64 (the reference).
   It prints the output norm and every gradient norm. With OUT_DIR it writes y.npy, dx_q.npy
   and d<weight>.npy there (f64) and prints the `ringattn-golden compare` commands against the
   PyTorch goldens (reference/golden/layer/example, written by reference/generate_golden.py
   from the same seed with a Python port of the generator); with GOLDEN_DIR it also runs that
   comparison itself and exits 1 when a tensor is outside atol 1e-10 + rtol 1e-9. */
#define RINGATTN_IMPLEMENTATION
#include "ringattn_layer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 1, N = 32, E = 16, HEADS = 2 };

static double norm(const ringattn_tensor *t)
{
    int64_t n = t->shape[0] * t->shape[1] * t->shape[2] * t->shape[3], i;
    double s = 0;
    for (i = 0; i < n; i++) { double x = ((const double *)t->data)[i]; s += x * x; }
    return sqrt(s);
}

int main(int argc, char **argv)
{
    /* weights (f32, as a checkpoint would hold them) and the batch */
    static float wqkv[3 * E * E], bqkv[3 * E], wo[E * E], bo[E], gam[E], bet[E], x[B * N * E], dy[B * N * E];
    /* results (f64) */
    static double y[B * N * E], dx[B * N * E], dwqkv[3 * E * E], dbqkv[3 * E], dwo[E * E], dbo[E], dgam[E], dbet[E];
    static const int64_t segments[2] = { 8, 16 }, rates[2] = { 1, 2 };
    const char *out_dir = argc > 1 ? argv[1] : NULL, *golden = argc > 2 ? argv[2] : NULL;
    char detail[256] = "";
    ringattn_config cfg = ringattn_default_config();
    ringattn_layer_params P = ringattn_layer_default_params(E, HEADS);
    ringattn_layer_grads G;
    ringattn_layer_rng rng = ringattn_layer_rng_seed(42);
    ringattn_tensor X = ringattn_layer_bne(x, RINGATTN_F32, B, N, E), dY = ringattn_layer_bne(dy, RINGATTN_F32, B, N, E);
    ringattn_tensor Y = ringattn_layer_bne(y, RINGATTN_F64, B, N, E), dX = ringattn_layer_bne(dx, RINGATTN_F64, B, N, E);
    struct { const char *name; ringattn_tensor *t; } res[8];
    int st, i, bad = 0;

    /* the layer's weights, in nn.Linear layout [out, in]; init = fkodom's _reset_parameters */
    P.w.wqkv = ringattn_layer_matrix(wqkv, RINGATTN_F32, 3 * E, E);
    P.w.bqkv = ringattn_layer_vector(bqkv, RINGATTN_F32, 3 * E);
    P.w.wo = ringattn_layer_matrix(wo, RINGATTN_F32, E, E);
    P.w.bo = ringattn_layer_vector(bo, RINGATTN_F32, E);
    P.w.ln_gamma = ringattn_layer_vector(gam, RINGATTN_F32, E);
    P.w.ln_beta = ringattn_layer_vector(bet, RINGATTN_F32, E);
    cfg.error_detail = detail; cfg.error_detail_size = sizeof detail;
    st = ringattn_layer_init(&cfg, &P, 0.5, &rng);
    for (i = 0; i < B * N * E; i++) x[i] = (float)ringattn_layer_rng_normal(&rng);
    for (i = 0; i < B * N * E; i++) dy[i] = (float)ringattn_layer_rng_normal(&rng);

    /* the attention inside: dilated, on a ring of 4, f64 arithmetic */
    cfg.compute = RINGATTN_F64;
    cfg.ring_size = 4;
    cfg.num_groups = 2; cfg.segment_lengths = segments; cfg.dilation_rates = rates;

    memset(&G, 0, sizeof G);
    G.wqkv = ringattn_layer_matrix(dwqkv, RINGATTN_F64, 3 * E, E);
    G.bqkv = ringattn_layer_vector(dbqkv, RINGATTN_F64, 3 * E);
    G.wo = ringattn_layer_matrix(dwo, RINGATTN_F64, E, E);
    G.bo = ringattn_layer_vector(dbo, RINGATTN_F64, E);
    G.ln_gamma = ringattn_layer_vector(dgam, RINGATTN_F64, E);
    G.ln_beta = ringattn_layer_vector(dbet, RINGATTN_F64, E);

    if (st == RINGATTN_OK) st = ringattn_layer_forward(&cfg, &P, &X, NULL, NULL, &Y);   /* self-attention */
    if (st == RINGATTN_OK) st = ringattn_layer_backward(&cfg, &P, &X, NULL, NULL, &dY, NULL, &dX, NULL, NULL, &G);
    if (st != RINGATTN_OK) {
        fprintf(stderr, "layer: %s (%s)\n", ringattn_strerror(st), detail);
        return 2;
    }
    res[0].name = "y"; res[0].t = &Y;           res[1].name = "dx_q"; res[1].t = &dX;
    res[2].name = "dwqkv"; res[2].t = &G.wqkv;  res[3].name = "dbqkv"; res[3].t = &G.bqkv;
    res[4].name = "dwo"; res[4].t = &G.wo;      res[5].name = "dbo"; res[5].t = &G.bo;
    res[6].name = "dln_gamma"; res[6].t = &G.ln_gamma; res[7].name = "dln_beta"; res[7].t = &G.ln_beta;
    printf("layer: b=%d n=%d E=%d H=%d, dilated (segments 8,16; rates 1,2), ring of 4, LayerNorm, f64\n",
           B, N, E, HEADS);
    printf("  loss = sum(y * dy); norms:\n");
    for (i = 0; i < 8; i++) printf("    ||%s||%*s = %.12g\n", res[i].name, (int)(10 - strlen(res[i].name)), "", norm(res[i].t));

    if (out_dir) {
        char path[1024];
        for (i = 0; i < 8; i++) {
            snprintf(path, sizeof path, "%s/%s.npy", out_dir, res[i].name);
            st = ringattn_npy_save(path, res[i].t, i < 2 ? 3 : (i == 2 || i == 4) ? 2 : 1, &cfg);
            if (st != RINGATTN_OK) { fprintf(stderr, "layer: %s: %s (%s)\n", path, ringattn_strerror(st), detail); return 2; }
        }
        printf("  wrote y.npy dx_q.npy dwqkv.npy dbqkv.npy dwo.npy dbo.npy dln_gamma.npy dln_beta.npy to %s\n", out_dir);
        printf("  against PyTorch (reference/generate_golden.py, same seed), e.g.:\n"
               "    ringattn-golden compare --atol 1e-10 --rtol 1e-9 %s/y.npy reference/golden/layer/example/y.npy\n"
               "    ringattn-golden compare --atol 1e-10 --rtol 1e-9 %s/dwqkv.npy reference/golden/layer/example/dwqkv.npy\n",
               out_dir, out_dir);
    }
    if (golden) {
        ringattn_compare_policy pol = ringattn_compare_default_policy(RINGATTN_F64);
        pol.atol = 1e-10; pol.rtol = 1e-9; pol.k = 2; pol.eps = 1e-6;
        printf("  against the PyTorch goldens in %s (|err| <= 1e-10 + 1e-9 |ref|):\n", golden);
        for (i = 0; i < 8; i++) {
            char path[1024];
            ringattn_npy_array ref;
            ringattn_compare_result r;
            snprintf(path, sizeof path, "%s/%s.npy", golden, res[i].name);
            st = ringattn_npy_load(path, &ref, &cfg);
            if (st == RINGATTN_OK) st = ringattn_compare(res[i].t, &ref.t, NULL, &pol, &r, &cfg);
            if (st != RINGATTN_OK) { fprintf(stderr, "layer: %s: %s (%s)\n", path, ringattn_strerror(st), detail); return 2; }
            printf("    %-10s max abs err %.2e  %s\n", res[i].name, r.max_abs, r.pass ? "PASS" : "FAIL");
            bad += !r.pass;
            ringattn_npy_free(&ref);
        }
        printf("  verdict: %s\n", bad ? "FAIL" : "PASS (every tensor within tolerance)");
    }
    return bad ? 1 : 0;
}
