/* test_alloc_fail.c - every allocation of ringattn.h can fail, and a failed call cleans up.

   RINGATTN_MALLOC / RINGATTN_FREE go to a counting allocator whose user pointer
   (cfg.alloc_user) says "fail the k-th allocation". For each call below, a first run with no
   failure counts its allocations N (and must free every byte); then, for every k = 1..N, the
   same call with allocation k failing must
     - return RINGATTN_ENOMEM (with a sentence in error_detail),
     - free everything it allocated: live bytes and live blocks back to 0,
     - write nothing: every output buffer (or the npy array struct) still holds its sentinel.
   Calls: dense forward and backward (ring sizes 1, 3, 4; causal; GQA; f32 / f64 compute; 1 and
   2 threads), dilated forward and backward (both mixes), ringattn_forward_kvcache (paged, new
   keys, splits, update_cache: the cache is an output too), and the .npy loaders
   ringattn_npy_load (from a file) and ringattn_npy_decode (from memory). Prints the number of
   allocation points exercised. Exit 0 pass, 1 fail. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    long count;          /* allocations so far                       */
    long fail_at;        /* 1-based allocation to fail; 0 = never    */
    long live_blocks;
    size_t live;         /* bytes allocated and not yet freed        */
} fa_state;

static void *fa_malloc(size_t n, void *user)
{
    fa_state *s = (fa_state *)user;
    size_t *p;
    if (!s) return malloc(n);
    s->count++;
    if (s->fail_at != 0 && s->count == s->fail_at) return NULL;
    p = (size_t *)malloc(n + 16);            /* the size in front; 16 keeps the alignment */
    if (!p) return NULL;
    p[0] = n; s->live += n; s->live_blocks++;
    return (char *)p + 16;
}
static void fa_free(void *ptr, void *user)
{
    fa_state *s = (fa_state *)user;
    size_t *p;
    if (!s) { free(ptr); return; }
    if (!ptr) return;
    p = (size_t *)((char *)ptr - 16);
    s->live -= p[0]; s->live_blocks--;
    free(p);
}

#define RINGATTN_MALLOC(sz, user) fa_malloc(sz, user)
#define RINGATTN_FREE(p, user) fa_free(p, user)
#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"
#include "test_util.h"

/* ---------------------------------------------------------------- attention calls */

typedef struct {
    const char *name;
    int backward;
    int64_t b, nq, nk, h, hk, d, dv;
    int p, threads, causal;
    ringattn_dtype ct;
    int groups; int64_t seg[3], rate[3]; ringattn_mix mix;
} fa_case;

typedef struct {
    double *q, *k, *v, *o, *l, *g, *dq, *dk, *dv;   /* f64 storage throughout */
    int64_t nq_, nk_, nv_, no_, nl_, ndq, ndk;
} fa_bufs;

static void bufs_new(const fa_case *c, fa_bufs *B)
{
    B->nq_ = c->b * c->nq * c->h * c->d; B->nk_ = c->b * c->nk * c->hk * c->d;
    B->nv_ = c->b * c->nk * c->hk * c->dv; B->no_ = c->b * c->nq * c->h * c->dv;
    B->nl_ = c->b * c->h * c->nq; B->ndq = B->nq_; B->ndk = B->nk_;
    B->q = (double *)malloc(sizeof(double) * (size_t)B->nq_);
    B->k = (double *)malloc(sizeof(double) * (size_t)B->nk_);
    B->v = (double *)malloc(sizeof(double) * (size_t)B->nv_);
    B->o = (double *)malloc(sizeof(double) * (size_t)B->no_);
    B->l = (double *)malloc(sizeof(double) * (size_t)B->nl_);
    B->g = (double *)malloc(sizeof(double) * (size_t)B->no_);
    B->dq = (double *)malloc(sizeof(double) * (size_t)B->nq_);
    B->dk = (double *)malloc(sizeof(double) * (size_t)B->nk_);
    B->dv = (double *)malloc(sizeof(double) * (size_t)B->nv_);
    if (!B->q || !B->k || !B->v || !B->o || !B->l || !B->g || !B->dq || !B->dk || !B->dv) {
        printf("out of memory\n"); exit(1);
    }
    fill_normal(B->q, B->nq_, 1); fill_normal(B->k, B->nk_, 2); fill_normal(B->v, B->nv_, 3);
    fill_normal(B->g, B->no_, 4);
}
static void bufs_free(fa_bufs *B)
{
    free(B->q); free(B->k); free(B->v); free(B->o); free(B->l); free(B->g);
    free(B->dq); free(B->dk); free(B->dv);
}

/* outputs of the call to the sentinel */
static void sentinel_outputs(const fa_case *c, fa_bufs *B)
{
    if (!c->backward) { fill_sentinel_f64(B->o, B->no_); fill_sentinel_f64(B->l, B->nl_); }
    else { fill_sentinel_f64(B->dq, B->nq_); fill_sentinel_f64(B->dk, B->nk_); fill_sentinel_f64(B->dv, B->nv_); }
}
static int outputs_untouched(const fa_case *c, const fa_bufs *B)
{
    if (!c->backward) return all_sentinel_f64(B->o, B->no_) && all_sentinel_f64(B->l, B->nl_);
    return all_sentinel_f64(B->dq, B->nq_) && all_sentinel_f64(B->dk, B->nk_) && all_sentinel_f64(B->dv, B->nv_);
}

static int call(const fa_case *c, fa_bufs *B, fa_state *s, char *err, size_t errsz)
{
    ringattn_tensor Q = ringattn_tensor_bnhd(B->q, RINGATTN_F64, c->b, c->nq, c->h, c->d);
    ringattn_tensor K = ringattn_tensor_bnhd(B->k, RINGATTN_F64, c->b, c->nk, c->hk, c->d);
    ringattn_tensor V = ringattn_tensor_bnhd(B->v, RINGATTN_F64, c->b, c->nk, c->hk, c->dv);
    ringattn_tensor O = ringattn_tensor_bnhd(B->o, RINGATTN_F64, c->b, c->nq, c->h, c->dv);
    ringattn_tensor L = ringattn_tensor_lse(B->l, RINGATTN_F64, c->b, c->h, c->nq);
    ringattn_tensor G = ringattn_tensor_bnhd(B->g, RINGATTN_F64, c->b, c->nq, c->h, c->dv);
    ringattn_tensor DQ = ringattn_tensor_bnhd(B->dq, RINGATTN_F64, c->b, c->nq, c->h, c->d);
    ringattn_tensor DK = ringattn_tensor_bnhd(B->dk, RINGATTN_F64, c->b, c->nk, c->hk, c->d);
    ringattn_tensor DV = ringattn_tensor_bnhd(B->dv, RINGATTN_F64, c->b, c->nk, c->hk, c->dv);
    ringattn_config cfg = ringattn_default_config();
    cfg.ring_size = c->p; cfg.num_threads = c->threads; cfg.causal = c->causal; cfg.compute = c->ct;
    cfg.alloc_user = s; cfg.error_detail = err; cfg.error_detail_size = errsz;
    if (c->groups > 0) {
        cfg.num_groups = c->groups; cfg.segment_lengths = c->seg; cfg.dilation_rates = c->rate; cfg.mix = c->mix;
    }
    if (!c->backward) return ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
    return ringattn_backward(&cfg, &Q, &K, &V, &O, &L, &G, &DQ, &DK, &DV);
}

/* one call: count its allocations, then fail each one in turn; returns the points exercised */
static long check_case(const fa_case *c, int *failures)
{
    fa_bufs B; fa_state s; char err[256]; long n, k, bad = 0;
    int st;
    bufs_new(c, &B);
    if (c->backward) {                   /* the forward's out and lse, computed without faults */
        fa_case f = *c; f.backward = 0;
        memset(&s, 0, sizeof s);
        st = call(&f, &B, &s, err, sizeof err);
        CHECK(st == RINGATTN_OK, "%s: the forward for the backward failed (%d)", c->name, st);
    }
    memset(&s, 0, sizeof s);
    sentinel_outputs(c, &B);
    st = call(c, &B, &s, err, sizeof err);
    n = s.count;
    CHECK(st == RINGATTN_OK, "%s: the call without faults returned %d", c->name, st);
    CHECK(s.live == 0 && s.live_blocks == 0, "%s: %zu bytes in %ld blocks left after a successful call",
          c->name, s.live, s.live_blocks);
    CHECK(n >= 1, "%s: no allocation seen: the allocator hook is not used", c->name);
    for (k = 1; k <= n; k++) {
        memset(&s, 0, sizeof s);
        s.fail_at = k;
        err[0] = 0;
        sentinel_outputs(c, &B);
        st = call(c, &B, &s, err, sizeof err);
        if (st != RINGATTN_ENOMEM || s.live != 0 || s.live_blocks != 0 || !outputs_untouched(c, &B) || err[0] == 0) {
            if (bad++ < 5)
                printf("  FAIL %s: allocation %ld of %ld failing: status %d (want %d), %zu bytes in %ld blocks "
                       "still live, outputs %s, error_detail \"%s\"\n", c->name, k, n, st, RINGATTN_ENOMEM,
                       s.live, s.live_blocks, outputs_untouched(c, &B) ? "untouched" : "WRITTEN", err);
            ++*failures;
        }
    }
    printf("  %-34s %3ld allocation points%s\n", c->name, n, bad ? "  FAILED" : "");
    bufs_free(&B);
    return n;
}

/* ---------------------------------------------------------------- the KV cache */

/* ringattn_forward_kvcache on a paged cache with new keys, three splits (one empty for the
   shorter sequence), every partial asked for and update_cache: a failing allocation leaves
   out, lse, the partials and the cache as they were */
static long check_kvcache(int *failures)
{
    enum { b = 2, nq = 2, h = 4, hk = 2, d = 4, page = 3, nb = 6, mb = 3, nn = 1, S = 3 };
    static const int32_t seqlens[b] = { 5, 1 }, table[b * mb] = { 4, 0, 2, 5, 1, 3 };
    double kc[nb * page * hk * d], vc[nb * page * hk * d], kc0[nb * page * hk * d], vc0[nb * page * hk * d];
    double q[b * nq * h * d], kn[b * nn * hk * d], vn[b * nn * hk * d];
    double out[b * nq * h * d], lse[b * h * nq], so[S][b * nq * h * d], sl[S][b * h * nq];
    ringattn_tensor Q, KC, VC, KN, VN, O, L, SO[S], SL[S];
    ringattn_kvcache kv;
    ringattn_config cfg = ringattn_default_config();
    fa_state s; char err[256]; long n, k, bad = 0; int st, j;
    fill_normal(kc0, nb * page * hk * d, 11); fill_normal(vc0, nb * page * hk * d, 12);
    fill_normal(q, b * nq * h * d, 13); fill_normal(kn, b * nn * hk * d, 14); fill_normal(vn, b * nn * hk * d, 15);
    Q = ringattn_tensor_bnhd(q, RINGATTN_F64, b, nq, h, d);
    KC = ringattn_tensor_bnhd(kc, RINGATTN_F64, nb, page, hk, d); VC = ringattn_tensor_bnhd(vc, RINGATTN_F64, nb, page, hk, d);
    KN = ringattn_tensor_bnhd(kn, RINGATTN_F64, b, nn, hk, d); VN = ringattn_tensor_bnhd(vn, RINGATTN_F64, b, nn, hk, d);
    O = ringattn_tensor_bnhd(out, RINGATTN_F64, b, nq, h, d); L = ringattn_tensor_lse(lse, RINGATTN_F64, b, h, nq);
    for (j = 0; j < S; j++) {
        SO[j] = ringattn_tensor_bnhd(so[j], RINGATTN_F64, b, nq, h, d);
        SL[j] = ringattn_tensor_lse(sl[j], RINGATTN_F64, b, h, nq);
    }
    memset(&kv, 0, sizeof kv);
    kv.k_cache = &KC; kv.v_cache = &VC; kv.block_table = table; kv.max_blocks = mb; kv.cache_seqlens = seqlens;
    kv.k_new = &KN; kv.v_new = &VN; kv.num_splits = S; kv.update_cache = 1;
    kv.split_out = SO; kv.split_lse = SL; kv.num_split_outputs = S;
    cfg.compute = RINGATTN_F64; cfg.causal = RINGATTN_CAUSAL_BOTTOM_RIGHT; cfg.num_threads = 2;
    cfg.error_detail = err; cfg.error_detail_size = sizeof err; cfg.alloc_user = &s;
#define KV_SENTINEL() do { memcpy(kc, kc0, sizeof kc); memcpy(vc, vc0, sizeof vc); \
        fill_sentinel_f64(out, (int64_t)(sizeof out / 8)); fill_sentinel_f64(lse, (int64_t)(sizeof lse / 8)); \
        fill_sentinel_f64(&so[0][0], (int64_t)(sizeof so / 8)); fill_sentinel_f64(&sl[0][0], (int64_t)(sizeof sl / 8)); } while (0)
#define KV_UNTOUCHED() (!memcmp(kc, kc0, sizeof kc) && !memcmp(vc, vc0, sizeof vc) && \
        all_sentinel_f64(out, (int64_t)(sizeof out / 8)) && all_sentinel_f64(lse, (int64_t)(sizeof lse / 8)) && \
        all_sentinel_f64(&so[0][0], (int64_t)(sizeof so / 8)) && all_sentinel_f64(&sl[0][0], (int64_t)(sizeof sl / 8)))
    memset(&s, 0, sizeof s);
    KV_SENTINEL();
    st = ringattn_forward_kvcache(&cfg, &kv, &Q, &O, &L);
    n = s.count;
    CHECK(st == RINGATTN_OK, "kvcache: the call without faults returned %d (%s)", st, err);
    CHECK(s.live == 0 && s.live_blocks == 0, "kvcache: %zu bytes in %ld blocks left after a successful call", s.live, s.live_blocks);
    CHECK(memcmp(kc, kc0, sizeof kc) != 0, "kvcache: update_cache wrote nothing");
    for (k = 1; k <= n; k++) {
        memset(&s, 0, sizeof s);
        s.fail_at = k; err[0] = 0;
        KV_SENTINEL();
        st = ringattn_forward_kvcache(&cfg, &kv, &Q, &O, &L);
        if (st != RINGATTN_ENOMEM || s.live != 0 || s.live_blocks != 0 || !KV_UNTOUCHED() || err[0] == 0) {
            if (bad++ < 5)
                printf("  FAIL kvcache: allocation %ld of %ld failing: status %d, %zu bytes in %ld blocks live, outputs %s, "
                       "error_detail \"%s\"\n", k, n, st, s.live, s.live_blocks, KV_UNTOUCHED() ? "untouched" : "WRITTEN", err);
            ++*failures;
        }
    }
#undef KV_SENTINEL
#undef KV_UNTOUCHED
    printf("  %-34s %3ld allocation points%s\n", "kvcache paged, new keys, splits", n, bad ? "  FAILED" : "");
    return n;
}

/* ---------------------------------------------------------------- .npy */

static long check_npy(int *failures)
{
#ifdef __cplusplus
    const char *path = "test_alloc_fail_cpp.npy";
#else
    const char *path = "test_alloc_fail_c.npy";
#endif
    float x[2 * 3 * 4];
    ringattn_tensor t = ringattn_tensor_bnhd(x, RINGATTN_F32, 2, 3, 4, 1);
    ringattn_npy_array arr, blank;
    fa_state s; char err[256];
    ringattn_config cfg = ringattn_default_config();
    unsigned char *img; size_t len = 0;
    long total = 0, n, k, which;
    int st, i;
    for (i = 0; i < 24; i++) x[i] = (float)i * 0.25f;
    cfg.error_detail = err; cfg.error_detail_size = sizeof err;
    st = ringattn_npy_save(path, &t, 3, &cfg);
    CHECK(st == RINGATTN_OK, "npy: save failed (%d): %s", st, err);
    st = ringattn_npy_encode(&t, 3, NULL, 0, &len, &cfg);
    img = (unsigned char *)malloc(len);
    if (!img) { printf("out of memory\n"); exit(1); }
    st = ringattn_npy_encode(&t, 3, img, len, &len, &cfg);
    CHECK(st == RINGATTN_OK, "npy: encode failed (%d)", st);
    memset(&blank, 0x5A, sizeof blank);
    for (which = 0; which < 2; which++) {
        const char *name = which ? "ringattn_npy_decode" : "ringattn_npy_load";
        long bad = 0;
        memset(&s, 0, sizeof s);
        cfg.alloc_user = &s;
        memcpy(&arr, &blank, sizeof arr);
        st = which ? ringattn_npy_decode(img, len, &arr, &cfg) : ringattn_npy_load(path, &arr, &cfg);
        CHECK(st == RINGATTN_OK, "%s without faults failed (%d): %s", name, st, err);
        if (st == RINGATTN_OK) {
            CHECK(memcmp(arr.t.data, x, sizeof x) == 0, "%s: wrong data", name);
            ringattn_npy_free(&arr);
        }
        n = s.count;
        CHECK(s.live == 0 && s.live_blocks == 0, "%s: %zu bytes left after load + free", name, s.live);
        CHECK(n >= 1, "%s: no allocation seen", name);
        for (k = 1; k <= n; k++) {
            memset(&s, 0, sizeof s);
            s.fail_at = k;
            err[0] = 0;
            memcpy(&arr, &blank, sizeof arr);
            st = which ? ringattn_npy_decode(img, len, &arr, &cfg) : ringattn_npy_load(path, &arr, &cfg);
            if (st != RINGATTN_ENOMEM || s.live != 0 || s.live_blocks != 0 ||
                memcmp(&arr, &blank, sizeof arr) != 0 || err[0] == 0) {
                if (bad++ < 5)
                    printf("  FAIL %s: allocation %ld of %ld failing: status %d, %zu bytes live, arr %s\n", name,
                           k, n, st, s.live, memcmp(&arr, &blank, sizeof arr) ? "WRITTEN" : "untouched");
                ++*failures;
                if (st == RINGATTN_OK) ringattn_npy_free(&arr);
            }
        }
        printf("  %-34s %3ld allocation points%s\n", name, n, bad ? "  FAILED" : "");
        total += n;
    }
    free(img);
    remove(path);
    return total;
}

int main(void)
{
    static const fa_case cases[] = {
        /* name                               bwd  b  nq  nk  h hk  d dv  p th causal compute */
        { "forward p=1",                        0, 1,  8,  8, 2, 2, 4, 4, 1, 1, 0, RINGATTN_F32, 0, {0}, {0}, RINGATTN_MIX_HEAD_GROUPS },
        { "forward p=3 causal GQA f64",         0, 2, 13, 11, 4, 2, 5, 3, 3, 1, 1, RINGATTN_F64, 0, {0}, {0}, RINGATTN_MIX_HEAD_GROUPS },
        { "forward p=4 2 threads",              0, 1, 16, 16, 2, 1, 8, 8, 4, 2, 2, RINGATTN_F32, 0, {0}, {0}, RINGATTN_MIX_HEAD_GROUPS },
        { "backward p=1",                       1, 1,  8,  8, 2, 2, 4, 4, 1, 1, 0, RINGATTN_F32, 0, {0}, {0}, RINGATTN_MIX_HEAD_GROUPS },
        { "backward p=3 causal GQA f64",        1, 2, 13, 11, 4, 2, 5, 3, 3, 1, 1, RINGATTN_F64, 0, {0}, {0}, RINGATTN_MIX_HEAD_GROUPS },
        { "backward p=4 2 threads",             1, 1, 16, 16, 2, 1, 8, 8, 4, 2, 2, RINGATTN_F32, 0, {0}, {0}, RINGATTN_MIX_HEAD_GROUPS },
        { "dilated forward head groups p=2",    0, 1, 16, 16, 3, 3, 4, 4, 2, 1, 0, RINGATTN_F32, 2, {4, 8}, {1, 2}, RINGATTN_MIX_HEAD_GROUPS },
        { "dilated forward lse mix p=4",        0, 1, 16, 16, 2, 1, 4, 4, 4, 2, 1, RINGATTN_F64, 3, {4, 8, 16}, {1, 2, 4}, RINGATTN_MIX_LSE },
        { "dilated backward head groups p=2",   1, 1, 16, 16, 3, 3, 4, 4, 2, 1, 1, RINGATTN_F64, 2, {4, 8}, {1, 2}, RINGATTN_MIX_HEAD_GROUPS },
        { "dilated backward lse mix p=4",       1, 1, 16, 16, 2, 1, 4, 4, 4, 2, 0, RINGATTN_F32, 3, {4, 8, 16}, {1, 2, 4}, RINGATTN_MIX_LSE },
    };
    int fails = 0, *failures = &fails;
    long points = 0;
    size_t i;
    printf("allocation-failure injection: fail allocation k for every k of each call\n");
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) points += check_case(&cases[i], failures);
    points += check_kvcache(failures);
    points += check_npy(failures);
    printf("%ld allocation points exercised: %s\n", points, fails ? "FAIL" : "all returned RINGATTN_ENOMEM, "
           "freed everything, wrote nothing");
    return fails ? TEST_FAIL : TEST_PASS;
}
