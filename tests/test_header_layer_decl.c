/* test_header_layer_decl.c - ringattn_layer.h used as a plain declaration header.

   No RINGATTN_IMPLEMENTATION here: the header (which includes ringattn.h) included twice, the
   layer used the way a second file of a user's program would; test_header_layer_impl.c holds
   the implementations and main(). tests/header_check.sh compiles and links the two.

   header_layer_decl_check(): one token (so attention returns V itself), E = 2, one head, no
   LayerNorm, f64: y = (x Wv^T + bv) Wo^T + bo, checked by hand; then the initialisation. */
#include "ringattn_layer.h"
#include "ringattn_layer.h"

#include <math.h>

int header_layer_decl_check(void);

int header_layer_decl_check(void)
{
    double x[2] = { 0.5, -1.0 }, y[2], dy[2] = { 1.0, 0.0 }, dx[2];
    double wq[4] = { 1, 0, 0, 1 }, wk[4] = { 0, 1, 1, 0 }, wv[4] = { 2, 0, 1, -1 };
    double bv[2] = { 0.25, 0.5 }, wo[4] = { 1, 2, -1, 0.5 }, bo[2] = { 0.0, 1.0 };
    double v[2], want[2];
    float w32[4];
    ringattn_config cfg = ringattn_default_config();
    ringattn_layer_params P = ringattn_layer_default_params(2, 1);
    ringattn_layer_rng rng = ringattn_layer_rng_seed(7), rng2 = ringattn_layer_rng_seed(7);
    ringattn_tensor X = ringattn_layer_bne(x, RINGATTN_F64, 1, 1, 2), Y = ringattn_layer_bne(y, RINGATTN_F64, 1, 1, 2);
    ringattn_tensor dY = ringattn_layer_bne(dy, RINGATTN_F64, 1, 1, 2), dX = ringattn_layer_bne(dx, RINGATTN_F64, 1, 1, 2);
    int i;

    cfg.compute = RINGATTN_F64;
    P.layer_norm = 0;
    P.w.wq = ringattn_layer_matrix(wq, RINGATTN_F64, 2, 2);
    P.w.wk = ringattn_layer_matrix(wk, RINGATTN_F64, 2, 2);
    P.w.wv = ringattn_layer_matrix(wv, RINGATTN_F64, 2, 2);
    P.w.bv = ringattn_layer_vector(bv, RINGATTN_F64, 2);
    P.w.wo = ringattn_layer_matrix(wo, RINGATTN_F64, 2, 2);
    P.w.bo = ringattn_layer_vector(bo, RINGATTN_F64, 2);
    if (ringattn_layer_forward(&cfg, &P, &X, NULL, NULL, &Y) != RINGATTN_OK) return 1;
    for (i = 0; i < 2; i++) v[i] = wv[2 * i] * x[0] + wv[2 * i + 1] * x[1] + bv[i];
    for (i = 0; i < 2; i++) want[i] = wo[2 * i] * v[0] + wo[2 * i + 1] * v[1] + bo[i];
    for (i = 0; i < 2; i++)
        if (fabs(y[i] - want[i]) > 1e-14) return 2;
    /* one key: the output does not depend on q, k; dx = Wv^T Wo^T dy */
    if (ringattn_layer_backward(&cfg, &P, &X, NULL, NULL, &dY, NULL, &dX, NULL, NULL, NULL) != RINGATTN_OK) return 3;
    for (i = 0; i < 2; i++)
        if (fabs(dx[i] - (wo[0] * wv[i] + wo[1] * wv[2 + i])) > 1e-14) return 4;

    /* the generator is the caller's state: the same seed, the same draws */
    for (i = 0; i < 8; i++)
        if (ringattn_layer_rng_next(&rng) != ringattn_layer_rng_next(&rng2)) return 5;
    if (!(fabs(ringattn_layer_rng_normal(&rng)) < 10)) return 6;
    P = ringattn_layer_default_params(2, 2);
    P.w.wqkv = ringattn_layer_matrix(wq, RINGATTN_F64, 2, 2);   /* [2, 2] is not [3E, E] */
    P.w.wo = ringattn_layer_matrix(w32, RINGATTN_F32, 2, 2);
    if (ringattn_layer_init(&cfg, &P, 1.0, &rng) != RINGATTN_ESHAPE) return 7;
    return 0;
}
