/* test_header_layer_static.c - RINGATTN_STATIC with ringattn_layer.h: a private copy of the
   library and of the layer in this file, with ringattn_layer.h included first (it brings
   ringattn.h and both implementations). Most functions are never called here, and a strict
   build (-Wall -Wextra -Werror) must still be silent about it. */
#define RINGATTN_STATIC
#define RINGATTN_IMPLEMENTATION
#include "ringattn_layer.h"
#include "ringattn.h"

#include <stdio.h>

int main(void)
{
    /* E = 2, one head, one token, identity projections, no LayerNorm: y = x exactly */
    float x[2] = { 3.0f, -4.0f }, y[2] = { 0.0f, 0.0f }, eye[4] = { 1, 0, 0, 1 };
    ringattn_layer_params P = ringattn_layer_default_params(2, 1);
    ringattn_tensor X = ringattn_layer_bne(x, RINGATTN_F32, 1, 1, 2), Y = ringattn_layer_bne(y, RINGATTN_F32, 1, 1, 2);
    ringattn_config cfg = ringattn_default_config();
    int st;
    P.layer_norm = 0;
    P.w.wqkv = ringattn_layer_matrix(eye, RINGATTN_F32, 2, 2);   /* wrong shape first: ESHAPE */
    P.w.wo = ringattn_layer_matrix(eye, RINGATTN_F32, 2, 2);
    st = ringattn_layer_forward(&cfg, &P, &X, NULL, NULL, &Y);
    if (st != RINGATTN_ESHAPE) { printf("test_header_layer_static: %d, expected ESHAPE\n", st); return 1; }
    P.w.wqkv.data = NULL;
    P.w.wq = P.w.wk = P.w.wv = P.w.wo;
    st = ringattn_layer_forward(&cfg, &P, &X, NULL, NULL, &Y);
    if (st != RINGATTN_OK || y[0] != 3.0f || y[1] != -4.0f) {
        printf("test_header_layer_static: %s, y = %g %g\n", ringattn_strerror(st), y[0], y[1]);
        return 1;
    }
    printf("test_header_layer_static: ok\n");
    return 0;
}
