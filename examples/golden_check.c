/* golden_check.c - checking an attention kernel through .npy files, as a GPU port would.

   Build: cc -std=c99 -O2 -I. examples/golden_check.c -lm -o golden_check
   Run:   ./golden_check [DIR]        (files go to DIR, default: the current directory)

   The story, in four steps:
     1. the "kernel under test" runs (here a stand-in: ringattn itself in f32 on a ring of 4,
        plus a second, deliberately broken copy with one wrong element) and its inputs and
        outputs are DUMPED as .npy, exactly what you would do from a CUDA test harness or
        from PyTorch (np.save(x.transpose(1, 2).contiguous().numpy()));
     2. a separate step LOADS the dump, as if in another process;
     3. the REFERENCE is computed from the dumped inputs: ringattn in f64, ring size 1, and the
        plain f32 computation that policy (b) measures the kernel against;
     4. COMPARE and report: both the good and the broken kernel, both policies.
   The same check from the shell is `ringattn-golden compute` + `ringattn-golden compare`
   (see the README). Exit status 0 when the good kernel passes and the broken one fails. */
#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 1, N = 64, H = 4, D = 16 };

static int check(int st, const char *what, const char *detail)
{
    if (st != RINGATTN_OK) fprintf(stderr, "golden_check: %s: %s (%s)\n", what, ringattn_strerror(st), detail);
    return st != RINGATTN_OK;
}

/* step 1: the kernel under test, and the dump */
static int kernel_and_dump(const char *dir)
{
    static float q[B * N * H * D], k[B * N * H * D], v[B * N * H * D], o[B * N * H * D], lse[B * H * N];
    ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F32, B, N, H, D), K = Q, V = Q;
    ringattn_tensor O = ringattn_tensor_bnhd(o, RINGATTN_F32, B, N, H, D);
    ringattn_tensor L = ringattn_tensor_lse(lse, RINGATTN_F32, B, H, N);
    ringattn_config cfg = ringattn_default_config();
    char path[1024], err[256];
    unsigned s = 12345u;
    int i;
    K.data = k; V.data = v;
    for (i = 0; i < B * N * H * D; i++) {   /* any data will do: a small LCG */
        s = s * 1664525u + 1013904223u; q[i] = (float)((s >> 8) % 2001) / 1000.0f - 1.0f;
        s = s * 1664525u + 1013904223u; k[i] = (float)((s >> 8) % 2001) / 1000.0f - 1.0f;
        s = s * 1664525u + 1013904223u; v[i] = (float)((s >> 8) % 2001) / 1000.0f - 1.0f;
    }
    cfg.causal = RINGATTN_CAUSAL_BOTTOM_RIGHT;
    cfg.ring_size = 4;                    /* the "kernel": f32 ring attention on 4 members */
    cfg.error_detail = err; cfg.error_detail_size = sizeof err;
    if (check(ringattn_forward(&cfg, &Q, &K, &V, &O, &L), "kernel", err)) return 1;

#define DUMP(name, t, rank)                                                                      \
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);                                         \
    if (check(ringattn_npy_save(path, &(t), rank, &cfg), path, err)) return 1;
    DUMP("q", Q, 4) DUMP("k", K, 4) DUMP("v", V, 4)
    DUMP("out", O, 4) DUMP("lse", L, 3)              /* lse as (b, h, n), like FlashAttention */
    o[(5 * H + 2) * D + 7] += 1e-3f;                  /* a broken kernel: (b=0, n=5, h=2, d=7) off */
    DUMP("out_broken", O, 4)
#undef DUMP
    printf("step 1: kernel ran, dumped q, k, v, out, lse, out_broken to %s/\n", dir);
    return 0;
}

static int verdict(const char *title, const ringattn_tensor *got, const ringattn_tensor *ref,
                   const ringattn_tensor *base, const char *axes)
{
    ringattn_compare_result r;
    char report[4096];
    if (check(ringattn_compare(got, ref, base, NULL, &r, NULL), title, "")) return -1;
    ringattn_compare_format(&r, axes, report, sizeof report);
    printf("\n--- %s\n%s", title, report);
    return r.pass;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    const char *names[6] = { "q", "k", "v", "out", "lse", "out_broken" };
    ringattn_npy_array a[6];
    ringattn_config cfg = ringattn_default_config();
    ringattn_tensor ref_o, ref_l, base_o, base_l;
    double *ro, *rl; float *bo, *bl;
    char path[1024], err[256];
    int i, ok = 1, p_good, p_bad, b_good, b_bad;
    int64_t b, n, h, d;

    if (kernel_and_dump(dir)) return 1;

    /* step 2: load the dump, as another program would */
    cfg.error_detail = err; cfg.error_detail_size = sizeof err;
    for (i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "%s/%s.npy", dir, names[i]);
        if (check(ringattn_npy_load(path, &a[i], &cfg), path, err)) return 1;
    }
    b = a[0].t.shape[0]; n = a[0].t.shape[1]; h = a[0].t.shape[2]; d = a[0].t.shape[3];
    printf("step 2: loaded q [%lld, %lld, %lld, %lld] (%s) and the kernel's outputs\n",
           (long long)b, (long long)n, (long long)h, (long long)d, a[0].info.dtype == RINGATTN_F32 ? "f32" : "?");

    /* step 3: the reference (f64) and the plain f32 computation, from the dumped inputs */
    ro = (double *)malloc(sizeof(double) * (size_t)(b * n * h * d));
    rl = (double *)malloc(sizeof(double) * (size_t)(b * h * n));
    bo = (float *)malloc(sizeof(float) * (size_t)(b * n * h * d));
    bl = (float *)malloc(sizeof(float) * (size_t)(b * h * n));
    if (!ro || !rl || !bo || !bl) return 1;
    ref_o = ringattn_tensor_bnhd(ro, RINGATTN_F64, b, n, h, d); ref_l = ringattn_tensor_lse(rl, RINGATTN_F64, b, h, n);
    base_o = ringattn_tensor_bnhd(bo, RINGATTN_F32, b, n, h, d); base_l = ringattn_tensor_lse(bl, RINGATTN_F32, b, h, n);
    cfg.causal = RINGATTN_CAUSAL_BOTTOM_RIGHT;       /* the same case as the kernel's */
    cfg.ring_size = 1;
    cfg.compute = RINGATTN_F64;
    if (check(ringattn_forward(&cfg, &a[0].t, &a[1].t, &a[2].t, &ref_o, &ref_l), "reference", err)) return 1;
    cfg.compute = RINGATTN_F32;
    if (check(ringattn_forward(&cfg, &a[0].t, &a[1].t, &a[2].t, &base_o, &base_l), "baseline", err)) return 1;
    printf("step 3: reference computed in f64, baseline in plain f32\n");

    /* step 4: compare */
    p_good = verdict("out vs f64 reference, policy (a) (f32 defaults: atol 1e-5, rtol 1.3e-6)",
                     &a[3].t, &ref_o, NULL, "bnhd");
    b_good = verdict("out vs f64 reference, policy (b): <= 2 x plain-f32 error + 1e-6",
                     &a[3].t, &ref_o, &base_o, "bnhd");
    ok &= verdict("lse vs f64 reference, policy (b)", &a[4].t, &ref_l, &base_l, "bhn.") == 1;
    p_bad = verdict("BROKEN out vs f64 reference, policy (a)", &a[5].t, &ref_o, NULL, "bnhd");
    b_bad = verdict("BROKEN out vs f64 reference, policy (b)", &a[5].t, &ref_o, &base_o, "bnhd");
    ok &= p_good == 1 && b_good == 1 && p_bad == 0 && b_bad == 0;
    printf("\ngolden_check: %s (the good kernel passes both policies, the broken one fails both)\n",
           ok ? "as expected" : "UNEXPECTED");

    for (i = 0; i < 6; i++) ringattn_npy_free(&a[i]);
    free(ro); free(rl); free(bo); free(bl);
    return ok ? 0 : 1;
}
