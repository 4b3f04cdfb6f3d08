/* test_header_decl.c - ringattn.h used as a plain declaration header.

   No RINGATTN_IMPLEMENTATION here: this translation unit sees only the public part, included
   twice (the include guard must hold), and uses the public types and functions the way a
   second file of a user's program would. test_header_impl.c holds the implementation and
   main(); tests/header_check.sh compiles both with each compiler and links them together.
   It also proves that ringattn.h alone declares none of the layer's names.

   header_decl_check(): a 3-token, 2-member forward in f64, checked by hand. */
#include "ringattn.h"
#include "ringattn.h"

#include <math.h>

/* ringattn.h declares nothing of the multihead layer (ringattn_layer.h does): every public
   name of the layer is free here, and ringattn.h declaring one would conflict with these */
#ifdef RINGATTN_LAYER_H
#error "ringattn.h includes ringattn_layer.h"
#endif
typedef int ringattn_layer_weights, ringattn_layer_grads, ringattn_layer_params, ringattn_layer_rng;
extern int ringattn_layer_default_params, ringattn_layer_bne, ringattn_layer_matrix, ringattn_layer_vector,
    ringattn_layer_forward, ringattn_layer_backward, ringattn_layer_rng_seed, ringattn_layer_rng_next,
    ringattn_layer_rng_normal, ringattn_layer_init;

int header_decl_check(void);

int header_decl_check(void)
{
    /* (b, n, h, d) = (1, 3, 1, 2) */
    double q[6] = { 0.5, -1.0,   1.5, 0.25,   -0.75, 2.0 };
    double k[6] = { 1.0,  0.5,  -0.5, 1.0,     0.25, -1.5 };
    double v[6] = { 2.0, -1.0,   0.5, 3.0,    -2.5,  1.0 };
    double o[6], lse[3];
    ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F64, 1, 3, 1, 2);
    ringattn_tensor K = ringattn_tensor_bnhd(k, RINGATTN_F64, 1, 3, 1, 2);
    ringattn_tensor V = ringattn_tensor_bnhd(v, RINGATTN_F64, 1, 3, 1, 2);
    ringattn_tensor O = ringattn_tensor_bnhd(o, RINGATTN_F64, 1, 3, 1, 2);
    ringattn_tensor L = ringattn_tensor_lse(lse, RINGATTN_F64, 1, 1, 3);
    ringattn_config cfg = ringattn_default_config();
    ringattn_stats stats;
    ringattn_shape shape;
    ringattn_plan_info plan;
    int i, j, c, code, st;

    cfg.ring_size = 2;
    cfg.num_threads = 1;
    cfg.compute = RINGATTN_F64;
    cfg.causal = RINGATTN_CAUSAL_BOTTOM_RIGHT;
    cfg.stats = &stats;
    st = ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
    if (st != RINGATTN_OK) return 1;

    for (i = 0; i < 3; i++) {                 /* causal, n_q == n_k: query i sees keys 0..i */
        double s[3], m = -INFINITY, l = 0, acc[2] = { 0, 0 };
        for (j = 0; j <= i; j++) {
            s[j] = (q[2 * i] * k[2 * j] + q[2 * i + 1] * k[2 * j + 1]) / sqrt(2.0);
            if (s[j] > m) m = s[j];
        }
        for (j = 0; j <= i; j++) {
            double w = exp(s[j] - m);
            l += w;
            for (c = 0; c < 2; c++) acc[c] += w * v[2 * j + c];
        }
        for (c = 0; c < 2; c++)
            if (fabs(o[2 * i + c] - acc[c] / l) > 1e-12) return 2;
        if (fabs(lse[i] - (m + log(l))) > 1e-12) return 3;
    }

    shape.batch = 1; shape.seq_q = 3; shape.seq_k = 3; shape.heads_q = 1; shape.heads_kv = 1;
    shape.dim_qk = 2; shape.dim_v = 2;
    if (ringattn_plan(&cfg, &shape, 0, &plan) != RINGATTN_OK) return 4;
    if (stats.ring_size != 2 || stats.planned_bytes_per_member != plan.member_bytes) return 5;

    for (code = RINGATTN_ECUDA; code <= RINGATTN_OK; code++)
        if (!ringattn_strerror(code) || !ringattn_strerror(code)[0]) return 6;
    return 0;
}
