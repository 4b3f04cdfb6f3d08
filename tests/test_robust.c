/* test_robust.c - the library's promises at the edges of its input, one group per promise.

   Groups (one line each; exit 1 on any failure):
     1. masked Inf in the backward: with a window (row i sees i-2..i), +Inf in keys 1-3 and
        row 3 seeing only them (its scores are all -inf: lse = -inf), row 6, which sees only
        the finite keys 4-6, gets the bits of the clean run in out, lse AND dq (the backward
        cuts ragged tiles by the mask only, never by lse); row 3 gets dq = 0; f32 and f64,
        d = 8 and d = 128 (the cblas backward path where built with it);
     2. config values the f32 compute type cannot hold (softcap 1e39 or 1e-50, scale 1e39)
        and inputs whose unscaled q.k overflows a float are refused with a status and a
        sentence, never answered with NaN; f64 compute takes them; the refusal names the first
        entry beyond the float range in memory order when 2 threads scan a large q;
     3. large values: four equal keys with V = 1e38 (f32) or 1e308 (f64) give V, a column of
        3e38 over 1024 keys (2 threads) gives 3e38, random V near 1e37 over 256 keys stays
        finite and within the f32 policy of the f64 result;
     4. ringattn_plan on absurd shapes (INT64_MAX in any dimension, every partition) says
        RINGATTN_EOVERFLOW or another error, without undefined behaviour (the `robust-ubsan`
        build runs this group under -fsanitize=undefined);
     5. an output view that overlaps itself (out.stride[1] = out.stride[2] = 1) is refused with
        RINGATTN_ESTRIDE; permuted, padded and reversed views are accepted;
     6. .npy files: a directory given as input is RINGATTN_EIO naming a directory; a failed
        save never removes what it did not create (a character device copy of /dev/full
        survives, where mknod is allowed), a save to a directory is refused and leaves it, a
        save replaces a regular file and leaves no temporary file behind.
   Exit 0 pass, 1 fail. */
#if !defined(_WIN32)
#define _DEFAULT_SOURCE 1   /* mknod, makedev, mkdtemp (group 6) */
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <float.h>
#if defined(__linux__)
#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>
#endif

#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"
#include "test_util.h"

/* one dense call in f64 storage: out [1, n, 1, dv], lse, and (dout given) dq, dk, dv */
typedef struct {
    int64_t nq, nk, d, dv;
    double scale, softcap;
    int wl, wr;
    ringattn_dtype ct;
    int threads;   /* 0: one */
} rcase;

static int run_case(const rcase *c, const double *q, const double *k, const double *v, const double *g,
                    double *o, double *l, double *dq, double *dk, double *dv, char *err, size_t errn)
{
    ringattn_config cfg = ringattn_default_config();
    ringattn_tensor Q = ringattn_tensor_bnhd((void *)q, RINGATTN_F64, 1, c->nq, 1, c->d);
    ringattn_tensor K = ringattn_tensor_bnhd((void *)k, RINGATTN_F64, 1, c->nk, 1, c->d);
    ringattn_tensor V = ringattn_tensor_bnhd((void *)v, RINGATTN_F64, 1, c->nk, 1, c->dv);
    ringattn_tensor O = ringattn_tensor_bnhd(o, RINGATTN_F64, 1, c->nq, 1, c->dv);
    ringattn_tensor L = ringattn_tensor_lse(l, RINGATTN_F64, 1, 1, c->nq);
    int st;
    cfg.compute = c->ct; cfg.scale = c->scale; cfg.softcap = c->softcap;
    cfg.window_left = c->wl; cfg.window_right = c->wr;
    cfg.ring_size = 1; cfg.num_threads = c->threads > 0 ? c->threads : 1;
    cfg.error_detail = err; cfg.error_detail_size = errn; err[0] = 0;
    st = ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
    if (st != RINGATTN_OK || !g) return st;
    {
        ringattn_tensor G = ringattn_tensor_bnhd((void *)g, RINGATTN_F64, 1, c->nq, 1, c->dv);
        ringattn_tensor DQ = ringattn_tensor_bnhd(dq, RINGATTN_F64, 1, c->nq, 1, c->d);
        ringattn_tensor DK = ringattn_tensor_bnhd(dk, RINGATTN_F64, 1, c->nk, 1, c->d);
        ringattn_tensor DV = ringattn_tensor_bnhd(dv, RINGATTN_F64, 1, c->nk, 1, c->dv);
        return ringattn_backward(&cfg, &Q, &K, &V, &O, &L, &G, &DQ, &DK, &DV);
    }
}

static double *zalloc(int64_t n)
{
    double *p = (double *)calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    if (!p) { printf("out of memory\n"); exit(1); }
    return p;
}

static int all_finite(const double *x, int64_t n)
{
    int64_t i;
    for (i = 0; i < n; i++) if (!(x[i] - x[i] == 0)) return 0;
    return 1;
}

/* ---------------------------------------------------------------- 1. masked Inf, backward */
static void group_masked_inf(int *failures)
{
    const int64_t n = 8;
    int64_t dims[2] = { 8, 128 }; ringattn_dtype cts[2] = { RINGATTN_F32, RINGATTN_F64 };
    int di, ci;
    for (di = 0; di < 2; di++)
    for (ci = 0; ci < 2; ci++) {
        int64_t d = dims[di], i, c2, j;
        rcase c; char err[256]; int run, st[2];
        double *q = zalloc(n * d), *k[2], *v = zalloc(n * d), *g = zalloc(n * d);
        double *o[2], *l[2], *dq[2], *dk[2], *dv[2];
        memset(&c, 0, sizeof c);
        c.nq = c.nk = n; c.d = c.dv = d; c.wl = 2; c.wr = 0; c.ct = cts[ci];
        fill_normal(q, n * d, 11); fill_normal(v, n * d, 12); fill_normal(g, n * d, 13);
        for (run = 0; run < 2; run++) {
            k[run] = zalloc(n * d); o[run] = zalloc(n * d); l[run] = zalloc(n);
            dq[run] = zalloc(n * d); dk[run] = zalloc(n * d); dv[run] = zalloc(n * d);
            fill_normal(k[run], n * d, 14);
        }
        if (ci == 0) { round_to_f32(q, n * d); round_to_f32(v, n * d); round_to_f32(g, n * d);
                       round_to_f32(k[0], n * d); round_to_f32(k[1], n * d); }
        /* run 1: keys 1-3 get +Inf in component 0, and row 3 a negative component 0, so every
           score row 3 can see is -inf (the row sees nothing: lse = -inf) */
        q[3 * d + 0] = -1.0;
        for (j = 1; j <= 3; j++) k[1][j * d + 0] = INFINITY;
        for (run = 0; run < 2; run++) {
            st[run] = run_case(&c, q, k[run], v, g, o[run], l[run], dq[run], dk[run], dv[run], err, sizeof err);
            CHECK(st[run] == RINGATTN_OK, "masked inf d=%lld ct=%d run %d: status %d (%s)", (long long)d, ci, run, st[run], err);
        }
        if (st[0] != RINGATTN_OK || st[1] != RINGATTN_OK) goto next;
        CHECK(l[1][3] == -INFINITY, "masked inf d=%lld ct=%d: row 3 lse = %g, expected -inf", (long long)d, ci, l[1][3]);
        for (c2 = 0; c2 < d; c2++) {
            CHECK(dq[1][3 * d + c2] == 0.0, "masked inf d=%lld ct=%d: dq[3][%lld] = %g, expected 0 (lse = -inf)",
                  (long long)d, ci, (long long)c2, dq[1][3 * d + c2]);
            if (dq[1][3 * d + c2] != 0.0) break;
        }
        for (i = 6; i < 8; i++) {   /* rows 6 and 7 see only finite keys (4-6, 5-7) */
            CHECK(memcmp(&o[0][i * d], &o[1][i * d], (size_t)d * sizeof(double)) == 0,
                  "masked inf d=%lld ct=%d: out row %lld differs from the clean run", (long long)d, ci, (long long)i);
            CHECK(memcmp(&l[0][i], &l[1][i], sizeof(double)) == 0,
                  "masked inf d=%lld ct=%d: lse row %lld differs from the clean run", (long long)d, ci, (long long)i);
            CHECK(memcmp(&dq[0][i * d], &dq[1][i * d], (size_t)d * sizeof(double)) == 0,
                  "masked inf d=%lld ct=%d: dq row %lld differs from the clean run (a row group cut by data)",
                  (long long)d, ci, (long long)i);
        }
        /* keys 6 and 7 are seen only by rows 6 and 7 (and key 6 by row 8's absence): clean */
        for (j = 6; j < 8; j++) {
            CHECK(memcmp(&dk[0][j * d], &dk[1][j * d], (size_t)d * sizeof(double)) == 0,
                  "masked inf d=%lld ct=%d: dk row %lld differs from the clean run", (long long)d, ci, (long long)j);
            CHECK(memcmp(&dv[0][j * d], &dv[1][j * d], (size_t)d * sizeof(double)) == 0,
                  "masked inf d=%lld ct=%d: dv row %lld differs from the clean run", (long long)d, ci, (long long)j);
        }
    next:
        for (run = 0; run < 2; run++) { free(k[run]); free(o[run]); free(l[run]); free(dq[run]); free(dk[run]); free(dv[run]); }
        free(q); free(v); free(g);
    }
}

/* ---------------------------------------------------------------- 2. f32 range */
/* a call either refused (a negative status and a sentence) or answered without NaN */
static void expect_refused_or_finite(int *failures, const char *what, const rcase *c, const double *q, const double *k,
                                     const double *v, int want_refusal)
{
    char err[256];
    double *o = zalloc(c->nq * c->dv), *l = zalloc(c->nq);
    int st = run_case(c, q, k, v, NULL, o, l, NULL, NULL, NULL, err, sizeof err);
    if (st == RINGATTN_OK) {
        CHECK(all_finite(o, c->nq * c->dv), "%s: status 0 but the output holds NaN or Inf (%g)", what, o[0]);
        CHECK(!want_refusal, "%s: accepted, expected a refusal", what);
    } else {
        CHECK(err[0] != 0, "%s: status %d without a sentence", what, st);
        CHECK(st == RINGATTN_ECONFIG || st == RINGATTN_ERANGE, "%s: status %d (%s), expected ECONFIG or ERANGE",
              what, st, err);
        CHECK(want_refusal >= 0, "%s: refused (%s), expected an answer", what, err);
    }
    free(o); free(l);
}

static void group_f32_range(int *failures)
{
    const int64_t n = 4, d = 4;
    double *q = zalloc(n * d), *k = zalloc(n * d), *v = zalloc(n * d), *z = zalloc(n * d);
    rcase c; int64_t i;
    memset(&c, 0, sizeof c);
    c.nq = c.nk = n; c.d = c.dv = d; c.wl = c.wr = -1; c.ct = RINGATTN_F32;
    fill_normal(q, n * d, 21); fill_normal(k, n * d, 22); fill_normal(v, n * d, 23);
    round_to_f32(q, n * d); round_to_f32(k, n * d); round_to_f32(v, n * d);
    c.softcap = 1e39;
    expect_refused_or_finite(failures, "f32 softcap 1e39", &c, q, k, v, 1);
    c.softcap = 1e-50;
    expect_refused_or_finite(failures, "f32 softcap 1e-50, zero scores", &c, z, k, v, 1);
    c.softcap = 0; c.scale = 1e39;
    {
        double *tq = zalloc(n * d), *tk = zalloc(n * d);
        for (i = 0; i < n * d; i++) { tq[i] = q[i] * 1e-25; tk[i] = k[i] * 1e-25; }
        expect_refused_or_finite(failures, "f32 scale 1e39, tiny q and k", &c, tq, tk, v, 1);
        c.ct = RINGATTN_F64;
        expect_refused_or_finite(failures, "f64 scale 1e39, tiny q and k", &c, tq, tk, v, 0);
        free(tq); free(tk);
    }
    /* f64 storage, f32 compute: q.k near 1e50 overflows a float before the scale 1e-50 */
    {
        double *bq = zalloc(n * d), *bk = zalloc(n * d);
        for (i = 0; i < n * d; i++) { bq[i] = q[i] * 1e25; bk[i] = k[i] * 1e25; }
        c.scale = 1e-50; c.ct = RINGATTN_F32;
        expect_refused_or_finite(failures, "f32 compute, q and k near 1e25, scale 1e-50", &c, bq, bk, v, 1);
        c.ct = RINGATTN_F64;
        expect_refused_or_finite(failures, "f64 compute, q and k near 1e25, scale 1e-50", &c, bq, bk, v, 0);
        free(bq); free(bk);
    }
    /* the range scans share a large tensor's rows out over the threads: the entry the refusal
       names is still the first beyond the float range in memory order (row 300, not 900) */
    {
        const int64_t bn = 1024, bd = 64;   /* 65536 entries: the scans run in parallel */
        double *bq = zalloc(bn * bd), *bk = zalloc(bn * bd), *bv = zalloc(bn * bd), *bo = zalloc(bn * bd), *bl = zalloc(bn);
        rcase b; char err[256]; int st;
        fill_normal(bq, bn * bd, 24); fill_normal(bk, bn * bd, 25); fill_normal(bv, bn * bd, 26);
        bq[900 * bd + 3] = 7e38; bq[300 * bd + 7] = -5e38;
        memset(&b, 0, sizeof b);
        b.nq = b.nk = bn; b.d = b.dv = bd; b.wl = b.wr = -1; b.ct = RINGATTN_F32; b.threads = 2;
        st = run_case(&b, bq, bk, bv, NULL, bo, bl, NULL, NULL, NULL, err, sizeof err);
        CHECK(st == RINGATTN_ERANGE && strstr(err, "q holds -5e+38") != NULL,
              "q with -5e38 (row 300) and 7e38 (row 900), 2 threads: status %d (%s), expected ERANGE naming -5e+38",
              st, err);
        free(bq); free(bk); free(bv); free(bo); free(bl);
    }
    /* ordinary values stay accepted: softcap 30, scale 1e30 (huge but a float) */
    c.ct = RINGATTN_F32; c.scale = 0; c.softcap = 30;
    expect_refused_or_finite(failures, "f32 softcap 30", &c, q, k, v, 0);
    c.softcap = 0; c.scale = 1e30;
    expect_refused_or_finite(failures, "f32 scale 1e30", &c, q, k, v, 0);
    free(q); free(k); free(v); free(z);
}

/* ---------------------------------------------------------------- 3. large V */
static void group_large_v(int *failures)
{
    char err[256];
    {   /* four equal keys: every weight 1/4, the output is V itself */
        const int64_t n = 4, d = 2;
        double q[8] = { 0 }, k[8] = { 0 }, v[8], o[8], l[4];
        double big[2] = { 1e38, 1e308 }; ringattn_dtype cts[2] = { RINGATTN_F32, RINGATTN_F64 };
        rcase c; int w, st; int64_t i;
        for (w = 0; w < 2; w++) {
            memset(&c, 0, sizeof c);
            c.nq = c.nk = n; c.d = c.dv = d; c.wl = c.wr = -1; c.ct = cts[w];
            for (i = 0; i < 8; i++) v[i] = (i % 2) ? -big[w] : big[w];
            if (w == 0) round_to_f32(v, 8);
            st = run_case(&c, q, k, v, NULL, o, l, NULL, NULL, NULL, err, sizeof err);
            CHECK(st == RINGATTN_OK, "V = %g: status %d (%s)", big[w], st, err);
            for (i = 0; st == RINGATTN_OK && i < 8; i++) {
                double want = v[i];
                CHECK(fabs(o[i] - want) <= fabs(want) * (w ? 1e-15 : 1e-6),
                      "V = %g, compute %s: out[%lld] = %g, expected %g", big[w], w ? "f64" : "f32", (long long)i, o[i], want);
                if (!(fabs(o[i] - want) <= fabs(want) * (w ? 1e-15 : 1e-6))) break;
            }
        }
    }
    {   /* V's first column 3e38 over 1024 keys, 2 threads (the V scan in parallel): the sum of
           1024 weighted 3e38 would overflow a float; the shift keeps it, out = 3e38 */
        const int64_t n = 1024, d = 64;
        double *q = zalloc(n * d), *k = zalloc(n * d), *v = zalloc(n * d), *o = zalloc(n * d), *l = zalloc(n);
        rcase c; int st; int64_t i; double worst = 0, want = (double)3e38f;
        fill_normal(q, n * d, 34); fill_normal(k, n * d, 35); fill_normal(v, n * d, 36);
        for (i = 0; i < n; i++) v[i * d] = want;
        round_to_f32(q, n * d); round_to_f32(k, n * d); round_to_f32(v, n * d);
        memset(&c, 0, sizeof c);
        c.nq = c.nk = n; c.d = c.dv = d; c.wl = c.wr = -1; c.ct = RINGATTN_F32; c.threads = 2; c.scale = 0.01;
        st = run_case(&c, q, k, v, NULL, o, l, NULL, NULL, NULL, err, sizeof err);
        CHECK(st == RINGATTN_OK, "V column 3e38, 1024 keys, 2 threads: status %d (%s)", st, err);
        for (i = 0; st == RINGATTN_OK && i < n; i++) {
            double e = fabs(o[i * d] - want) / want;
            if (!(e <= worst)) worst = e;
        }
        CHECK(st != RINGATTN_OK || worst <= 1e-5, "V column 3e38, 1024 keys, 2 threads: out column 0 off by %g (relative)", worst);
        free(q); free(k); free(v); free(o); free(l);
    }
    {   /* random V near 1e37 over 256 keys, f32 compute against f64 compute */
        const int64_t nq = 16, nk = 256, d = 8;
        double *q = zalloc(nq * d), *k = zalloc(nk * d), *v = zalloc(nk * d);
        double *o32 = zalloc(nq * d), *o64 = zalloc(nq * d), *l = zalloc(nq);
        rcase c; int st; int64_t i; double vmax, smax, bound, worst = 0;
        fill_normal(q, nq * d, 31); fill_normal(k, nk * d, 32); fill_normal(v, nk * d, 33);
        for (i = 0; i < nk * d; i++) v[i] = 1e37 * (v[i] > 0 ? 1 + v[i] * 0.01 : -1 + v[i] * 0.01);
        round_to_f32(q, nq * d); round_to_f32(k, nk * d); round_to_f32(v, nk * d);
        memset(&c, 0, sizeof c);
        c.nq = nq; c.nk = nk; c.d = c.dv = d; c.wl = c.wr = -1; c.ct = RINGATTN_F32;
        c.scale = 0.01;   /* nearly uniform weights: the sum really runs over 256 values */
        st = run_case(&c, q, k, v, NULL, o32, l, NULL, NULL, NULL, err, sizeof err);
        CHECK(st == RINGATTN_OK, "V near 1e37, f32: status %d (%s)", st, err);
        c.ct = RINGATTN_F64;
        st |= run_case(&c, q, k, v, NULL, o64, l, NULL, NULL, NULL, err, sizeof err);
        CHECK(st == RINGATTN_OK, "V near 1e37, f64: status %d (%s)", st, err);
        vmax = max_abs_f64(v, nk * d);
        smax = tol_smax(q, k, 1, nq, nk, 1, 1, d, c.scale);
        bound = vmax * ldexp(1.0, -24) * (2.0 * (double)d * smax + (double)nk + 16.0);
        for (i = 0; st == RINGATTN_OK && i < nq * d; i++) {
            double e = fabs(o32[i] - o64[i]);
            if (!(e <= worst)) worst = e;
        }
        CHECK(st != RINGATTN_OK || (all_finite(o32, nq * d) && worst <= bound),
              "V near 1e37, 256 keys, f32: error %g, allowed %g (finite: %d)", worst, bound, all_finite(o32, nq * d));
        free(q); free(k); free(v); free(o32); free(o64); free(l);
    }
}

/* ---------------------------------------------------------------- 4. absurd shapes */
static void group_absurd_shapes(int *failures)
{
    const int64_t big[3] = { INT64_MAX, INT64_MAX / 2 + 1, INT64_MAX / 3 };
    const ringattn_partition parts[3] = { RINGATTN_CONTIGUOUS, RINGATTN_ZIGZAG, RINGATTN_STRIPED };
    int field, bi, pi, ring, pass, tried = 0;
    for (field = 0; field < 7; field++)
    for (bi = 0; bi < 3; bi++)
    for (pi = 0; pi < 3; pi++)
    for (ring = 0; ring < 4; ring++)
    for (pass = 0; pass < 2; pass++) {
        ringattn_config cfg = ringattn_default_config();
        ringattn_shape s; ringattn_plan_info plan; char err[256]; int st;
        int64_t *f[7];
        s.batch = 1; s.seq_q = 64; s.seq_k = 64; s.heads_q = 4; s.heads_kv = 4; s.dim_qk = 8; s.dim_v = 8;
        f[0] = &s.batch; f[1] = &s.seq_q; f[2] = &s.seq_k; f[3] = &s.heads_q; f[4] = &s.heads_kv;
        f[5] = &s.dim_qk; f[6] = &s.dim_v;
        *f[field] = big[bi];
        if (field == 4) s.heads_q = big[bi];    /* k/v heads must divide q heads */
        if (field == 1 || field == 2) { s.seq_q = big[bi]; s.seq_k = big[bi]; }
        cfg.partition = parts[pi];
        cfg.ring_size = ring == 0 ? 0 : ring == 1 ? 3 : ring == 2 ? 7 : 0x7fffffff;
        cfg.num_threads = 2;
        cfg.error_detail = err; cfg.error_detail_size = sizeof err; err[0] = 0;
        st = ringattn_plan(&cfg, &s, pass, &plan);
        tried++;
        CHECK(st != RINGATTN_OK, "plan: field %d = %lld, partition %d, ring %d, pass %d: accepted (total %llu bytes)",
              field, (long long)big[bi], pi, cfg.ring_size, pass, (unsigned long long)plan.total_bytes);
        CHECK(st == RINGATTN_OK || err[0] != 0, "plan: field %d: status %d without a sentence", field, st);
    }
    printf("  absurd shapes: %d plans refused without undefined behaviour\n", tried);
}

/* ---------------------------------------------------------------- 5. self-overlapping outputs */
static void group_overlap(int *failures)
{
    const int64_t n = 4, h = 2, d = 3;
    double q[24], k[24], v[24], o[64], l[8];
    ringattn_config cfg = ringattn_default_config();
    ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F64, 1, n, h, d);
    ringattn_tensor K = ringattn_tensor_bnhd(k, RINGATTN_F64, 1, n, h, d);
    ringattn_tensor V = ringattn_tensor_bnhd(v, RINGATTN_F64, 1, n, h, d);
    ringattn_tensor O, L = ringattn_tensor_lse(l, RINGATTN_F64, 1, h, n);
    char err[256]; int st;
    fill_normal(q, 24, 41); fill_normal(k, 24, 42); fill_normal(v, 24, 43);
    cfg.error_detail = err; cfg.error_detail_size = sizeof err;
    cfg.compute = RINGATTN_F64;
    /* out.stride[1] = out.stride[2] = 1: rows and heads land on each other */
    O = ringattn_tensor_bnhd(o, RINGATTN_F64, 1, n, h, d);
    O.stride[1] = 1; O.stride[2] = 1; O.stride[3] = 4; O.stride[0] = 64;
    memset(o, 0, sizeof o);
    st = ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
    CHECK(st == RINGATTN_ESTRIDE, "out strides (64, 1, 1, 4): status %d (%s), expected RINGATTN_ESTRIDE", st, err);
    /* an lse whose heads and rows share elements */
    O = ringattn_tensor_bnhd(o, RINGATTN_F64, 1, n, h, d);
    L.stride[1] = 1; L.stride[2] = 1;
    st = ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
    CHECK(st == RINGATTN_ESTRIDE, "lse strides (8, 1, 1, 1): status %d (%s), expected RINGATTN_ESTRIDE", st, err);
    L = ringattn_tensor_lse(l, RINGATTN_F64, 1, h, n);
    /* accepted: [b, h, n, d] storage (permuted), padded rows, a reversed sequence axis */
    O.stride[3] = 1; O.stride[1] = d; O.stride[2] = n * d; O.stride[0] = n * h * d;
    st = ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
    CHECK(st == RINGATTN_OK, "permuted out: status %d (%s)", st, err);
    O = ringattn_tensor_bnhd(o, RINGATTN_F64, 1, n, h, d);
    O.stride[2] = 4; O.stride[1] = 8;
    st = ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
    CHECK(st == RINGATTN_OK, "padded out: status %d (%s)", st, err);
    O = ringattn_tensor_bnhd(o + (n - 1) * h * d, RINGATTN_F64, 1, n, h, d);
    O.stride[1] = -h * d;
    st = ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
    CHECK(st == RINGATTN_OK, "reversed out: status %d (%s)", st, err);
}

/* ---------------------------------------------------------------- 6. .npy files */
static void group_npy(int *failures)
{
#if defined(__linux__)
    char dir[] = "/tmp/ringattn_robust_XXXXXX", path[512], err[256];
    ringattn_config cfg = ringattn_default_config();
    ringattn_npy_array a; ringattn_tensor t; double x[6] = { 1, 2, 3, 4, 5, 6 }; struct stat sb; int st;
    cfg.error_detail = err; cfg.error_detail_size = sizeof err;
    if (!mkdtemp(dir)) { printf("  npy: cannot make a temporary folder: skipped\n"); return; }
    t = ringattn_tensor_bnhd(x, RINGATTN_F64, 1, 2, 3, 1);
    /* a directory as input */
    memset(&a, 0, sizeof a); err[0] = 0;
    st = ringattn_npy_load(dir, &a, &cfg);
    CHECK(st == RINGATTN_EIO && strstr(err, "directory"), "npy_load of a directory: status %d (%s), expected "
          "RINGATTN_EIO naming a directory", st, err);
    /* a save to a directory: refused, the directory stays */
    snprintf(path, sizeof path, "%s/sub", dir);
    if (mkdir(path, 0700) == 0) {
        st = ringattn_npy_save(path, &t, 3, &cfg);
        CHECK(st == RINGATTN_EIO, "npy_save to a directory: status %d (%s)", st, err);
        CHECK(stat(path, &sb) == 0 && S_ISDIR(sb.st_mode), "npy_save to a directory removed it");
        rmdir(path);
    }
    /* a failing write to a character device: the node is not ours to remove */
    snprintf(path, sizeof path, "%s/full", dir);
    if (mknod(path, S_IFCHR | 0666, makedev(1, 7)) == 0) {
        st = ringattn_npy_save(path, &t, 3, &cfg);
        CHECK(st == RINGATTN_EIO, "npy_save to a copy of /dev/full: status %d, expected RINGATTN_EIO", st);
        CHECK(stat(path, &sb) == 0 && S_ISCHR(sb.st_mode), "npy_save removed the character device it could not write");
        unlink(path);
    } else {
        printf("  npy: mknod not allowed here: the /dev/full case is skipped\n");
    }
    /* a regular file is replaced, and no temporary file is left */
    snprintf(path, sizeof path, "%s/x.npy", dir);
    {
        FILE *f = fopen(path, "wb");
        if (f) { fputs("old", f); fclose(f); }
    }
    st = ringattn_npy_save(path, &t, 3, &cfg);
    CHECK(st == RINGATTN_OK, "npy_save over a regular file: status %d (%s)", st, err);
    memset(&a, 0, sizeof a);
    st = ringattn_npy_load(path, &a, &cfg);
    CHECK(st == RINGATTN_OK && a.info.count == 6 && ((double *)a.t.data)[5] == 6.0, "npy_save then load: status %d (%s)", st, err);
    ringattn_npy_free(&a);
    {
        DIR *dd = opendir(dir); struct dirent *e; int others = 0;
        while (dd && (e = readdir(dd)) != NULL)
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "x.npy")) {
                printf("  left behind: %s\n", e->d_name);
                others++;
            }
        if (dd) closedir(dd);
        CHECK(others == 0, "npy_save left %d other file(s) in the folder", others);
    }
    unlink(path);
    rmdir(dir);
#else
    (void)failures;
    printf("  npy: the file-system cases run on Linux only\n");
#endif
}

int main(int argc, char **argv)
{
    int nfail = 0, *failures = &nfail;
    const char *only = argc > 1 ? argv[1] : NULL;
    (void)failures;
    if (!only || !strcmp(only, "masked-inf")) { printf("1. masked Inf, backward bit-identity\n"); group_masked_inf(&nfail); }
    if (!only || !strcmp(only, "range")) { printf("2. f32 range of config values and scores\n"); group_f32_range(&nfail); }
    if (!only || !strcmp(only, "large-v")) { printf("3. large V\n"); group_large_v(&nfail); }
    if (!only || !strcmp(only, "shapes")) { printf("4. absurd shapes in ringattn_plan\n"); group_absurd_shapes(&nfail); }
    if (!only || !strcmp(only, "overlap")) { printf("5. self-overlapping output views\n"); group_overlap(&nfail); }
    if (!only || !strcmp(only, "npy")) { printf("6. .npy files\n"); group_npy(&nfail); }
    printf("%s (%d failure%s)\n", nfail ? "FAIL" : "PASS", nfail, nfail == 1 ? "" : "s");
    return nfail ? TEST_FAIL : TEST_PASS;
}
