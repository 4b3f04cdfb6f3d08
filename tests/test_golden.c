/* test_golden.c - ringattn against the PyTorch golden files in reference/golden/.

   reference/generate_golden.py (PyTorch, float64) wrote, per case, the inputs q, k, v, dout
   and the reference out, lse, dq, dk, dv as .npy files, and manifest.txt (case -> options ->
   tolerance). This test needs no Python: it reads the files with ringattn_npy_load and
   checks, for every case,
     - f64 compute, ring sizes 1..4 with every partition the manifest lists (contiguous,
       zigzag, striped; ring sizes 2.. for the latter two, zigzag up to min(nq, nk) / 2): every
       output within the manifest's atol/rtol of the reference (policy (a) of ringattn_compare);
     - f32 compute, the largest such ring size, f32 storage, every listed partition: every
       output within policy (b), k times the error of a plain f32 computation (ring size 1)
       plus eps;
   with the case's options from the manifest: causal, scale, segments/dilations, window=L,R,
   softcap, cu_seqlens_q / cu_seqlens_k (varlen, batch 1);
     - the reader and writer agree with NumPy byte for byte: every reference file (written by
       np.save) re-encodes to exactly the same bytes.
   The score-option cases (reference/golden/options/, their own manifest.txt: sinks, ALiBi,
   bias, bool mask, document ids, and all at once) the same way, with max_logit, dsinks and
   dbias among the outputs, and the naive oracle (ref_forward_ex / ref_backward_ex) against
   them too, so the oracle's options are checked against PyTorch's autograd.
   argv[1]: the source root (Meson passes it); without it, the current directory. */
#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"
#include "ringattn_ref.h"
#include "test_util.h"

typedef struct {
    char name[64];
    int causal;
    double scale, atol, rtol, k, eps;
    int64_t seg[8], rate[8];
    int groups;
    int window_left, window_right;
    double softcap;
    int64_t cu_q[8], cu_k[8];
    int ncu_q, ncu_k;
    int partitions[3], npart;      /* RINGATTN_CONTIGUOUS / ZIGZAG / STRIPED, in manifest order */
    int sinks, docs, alibi, bias, mask;   /* options/manifest.txt: which option files the case has */
} golden_case;

static const char *part_names[3] = { "contiguous", "zigzag", "striped" };

/* "contiguous,zigzag,striped" -> partitions; returns the count (-1 on an unknown name) */
static int parse_partitions(const char *s, int *out)
{
    int n = 0;
    while (*s && n < 3) {
        int p, found = -1;
        for (p = 0; p < 3; p++) {
            size_t l = strlen(part_names[p]);
            if (!strncmp(s, part_names[p], l) && (s[l] == ',' || s[l] == 0)) { found = p; s += l; break; }
        }
        if (found < 0) return -1;
        out[n++] = found == 0 ? RINGATTN_CONTIGUOUS : found == 1 ? RINGATTN_ZIGZAG : RINGATTN_STRIPED;
        if (*s == ',') s++;
    }
    return n;
}

static int parse_list(const char *s, int64_t *out)
{
    int n = 0;
    if (!strcmp(s, "-")) return 0;
    while (*s && n < 8) {
        char *end;
        out[n++] = strtoll(s, &end, 10);
        s = (*end == ',') ? end + 1 : end;
        if (end == s && *s) break;
    }
    return n;
}

/* one manifest line -> case; returns 0 on success */
static int parse_case(char *line, golden_case *c)
{
    char *tok = strtok(line, " \t\r\n");
    if (!tok || tok[0] == '#') return -1;
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", tok);
    c->k = 2; c->eps = 1e-6; c->atol = 1e-10; c->rtol = 1e-9;
    c->window_left = c->window_right = -1;
    c->partitions[0] = RINGATTN_CONTIGUOUS; c->npart = 1;
    while ((tok = strtok(NULL, " \t\r\n")) != NULL) {
        char *v = strchr(tok, '=');
        if (!v) continue;
        *v++ = 0;
        if (!strcmp(tok, "causal"))
            c->causal = !strcmp(v, "bottom-right") ? RINGATTN_CAUSAL_BOTTOM_RIGHT
                      : !strcmp(v, "top-left") ? RINGATTN_CAUSAL_TOP_LEFT : RINGATTN_CAUSAL_NONE;
        else if (!strcmp(tok, "scale")) c->scale = atof(v);
        else if (!strcmp(tok, "atol")) c->atol = atof(v);
        else if (!strcmp(tok, "rtol")) c->rtol = atof(v);
        else if (!strcmp(tok, "k")) c->k = atof(v);
        else if (!strcmp(tok, "eps")) c->eps = atof(v);
        else if (!strcmp(tok, "segments")) c->groups = parse_list(v, c->seg);
        else if (!strcmp(tok, "dilations")) (void)parse_list(v, c->rate);
        else if (!strcmp(tok, "window") && strcmp(v, "-")) {
            int64_t w[8];
            if (parse_list(v, w) != 2) return -2;
            c->window_left = (int)w[0]; c->window_right = (int)w[1];
        }
        else if (!strcmp(tok, "softcap")) c->softcap = atof(v);
        else if (!strcmp(tok, "cu_seqlens_q")) c->ncu_q = parse_list(v, c->cu_q);
        else if (!strcmp(tok, "cu_seqlens_k")) c->ncu_k = parse_list(v, c->cu_k);
        else if (!strcmp(tok, "partitions")) { if ((c->npart = parse_partitions(v, c->partitions)) < 1) return -2; }
        else if (!strcmp(tok, "sinks")) c->sinks = atoi(v);
        else if (!strcmp(tok, "docs")) c->docs = atoi(v);
        else if (!strcmp(tok, "alibi")) c->alibi = strcmp(v, "-") != 0;
        else if (!strcmp(tok, "bias")) c->bias = strcmp(v, "-") != 0;
        else if (!strcmp(tok, "mask")) c->mask = strcmp(v, "-") != 0;
    }
    if (c->ncu_q != c->ncu_k || c->ncu_q == 1) return -2;
    return 0;
}

static const char *names[9] = { "q", "k", "v", "dout", "out", "lse", "dq", "dk", "dv" };

/* outputs of one run, stored as dt */
typedef struct { ringattn_tensor t[5]; } outs;   /* out, lse, dq, dk, dv */

static int run(const ringattn_config *cfg, ringattn_dtype dt, const ringattn_npy_array *in, outs *o)
{
    const ringattn_tensor *q = &in[0].t, *k = &in[1].t, *v = &in[2].t, *dout = &in[3].t;
    int64_t b = q->shape[0], nq = q->shape[1], h = q->shape[2], d = q->shape[3];
    int64_t nk = k->shape[1], hk = k->shape[2], dv = v->shape[3];
    size_t es = dt == RINGATTN_F64 ? 8 : 4;
    int st;
    o->t[0] = ringattn_tensor_bnhd(calloc((size_t)(b * nq * h * dv), es), dt, b, nq, h, dv);
    o->t[1] = ringattn_tensor_lse(calloc((size_t)(b * h * nq), es), dt, b, h, nq);
    o->t[2] = ringattn_tensor_bnhd(calloc((size_t)(b * nq * h * d), es), dt, b, nq, h, d);
    o->t[3] = ringattn_tensor_bnhd(calloc((size_t)(b * nk * hk * d), es), dt, b, nk, hk, d);
    o->t[4] = ringattn_tensor_bnhd(calloc((size_t)(b * nk * hk * dv), es), dt, b, nk, hk, dv);
    st = ringattn_forward(cfg, q, k, v, &o->t[0], &o->t[1]);
    if (st == RINGATTN_OK)
        st = ringattn_backward(cfg, q, k, v, &o->t[0], &o->t[1], dout, &o->t[2], &o->t[3], &o->t[4]);
    return st;
}

static void outs_free(outs *o)
{
    int i;
    for (i = 0; i < 5; i++) free(o->t[i].data);
}

/* the file's bytes == what ringattn_npy_encode makes of the decoded array */
static int same_bytes_as_numpy(const char *path)
{
    FILE *f = fopen(path, "rb");
    unsigned char *file, *mine;
    size_t n, len = 0;
    long sz;
    ringattn_npy_array a;
    int same = 0;
    if (!f) return 0;
    fseek(f, 0, SEEK_END); sz = ftell(f); fseek(f, 0, SEEK_SET);
    file = (unsigned char *)malloc((size_t)sz); mine = (unsigned char *)malloc((size_t)sz);
    n = fread(file, 1, (size_t)sz, f);
    fclose(f);
    if (n == (size_t)sz && ringattn_npy_decode(file, n, &a, NULL) == RINGATTN_OK) {
        same = ringattn_npy_encode(&a.t, a.info.ndim, mine, (size_t)sz, &len, NULL) == RINGATTN_OK &&
               len == n && memcmp(file, mine, n) == 0;
        ringattn_npy_free(&a);
    }
    free(file); free(mine);
    return same;
}

static int check_case(const char *root, const golden_case *c, int *failures)
{
    ringattn_npy_array arr[9];
    char path[1024], err[512];
    ringattn_config cfg = ringattn_default_config();
    int i, p, st, loaded = 0, pmax, nmin, pi;
    cfg.error_detail = err; cfg.error_detail_size = sizeof err;
    for (i = 0; i < 9; i++, loaded++) {
        snprintf(path, sizeof path, "%s/reference/golden/%s/%s.npy", root, c->name, names[i]);
        st = ringattn_npy_load(path, &arr[i], &cfg);
        CHECK(st == RINGATTN_OK, "%s: %s", path, err);
        if (st != RINGATTN_OK) break;
        if (i >= 4) CHECK(same_bytes_as_numpy(path), "%s: re-encoding differs from the file NumPy wrote", path);
    }
    if (loaded < 9) { while (loaded--) ringattn_npy_free(&arr[loaded]); return 0; }
    cfg.causal = c->causal; cfg.scale = c->scale;
    if (c->groups) { cfg.num_groups = c->groups; cfg.segment_lengths = c->seg; cfg.dilation_rates = c->rate; }
    cfg.window_left = c->window_left; cfg.window_right = c->window_right;
    cfg.softcap = c->softcap;
    if (c->ncu_q) { cfg.num_seqs = c->ncu_q - 1; cfg.cu_seqlens_q = c->cu_q; cfg.cu_seqlens_k = c->cu_k; }
    nmin = (int)(arr[0].t.shape[1] < arr[1].t.shape[1] ? arr[0].t.shape[1] : arr[1].t.shape[1]);

    for (pi = 0; pi < c->npart; pi++) {
        double worst64[5] = { 0, 0, 0, 0, 0 }, ratio32 = 0, err32[5] = { 0, 0, 0, 0, 0 };
        int part = c->partitions[pi], pmin = part == RINGATTN_CONTIGUOUS ? 1 : 2;
        const char *pname = part_names[part == RINGATTN_CONTIGUOUS ? 0 : part == RINGATTN_ZIGZAG ? 1 : 2];
        pmax = part == RINGATTN_ZIGZAG ? nmin / 2 : nmin;   /* zigzag: 2p chunks */
        if (pmax > 4) pmax = 4;
        if (pmax < pmin) continue;
        cfg.partition = (ringattn_partition)part;

        /* f64 compute, every ring size: policy (a) with the manifest's tolerance */
        for (p = pmin; p <= pmax; p++) {
            outs o;
            cfg.compute = RINGATTN_F64; cfg.ring_size = p;
            st = run(&cfg, RINGATTN_F64, arr, &o);
            CHECK(st == RINGATTN_OK, "%s %s p=%d: %s %s", c->name, pname, p, ringattn_strerror(st), err);
            if (st == RINGATTN_OK)
                for (i = 0; i < 5; i++) {
                    ringattn_compare_policy pol = ringattn_compare_default_policy(RINGATTN_F64);
                    ringattn_compare_result r;
                    char rep[2048];
                    pol.atol = c->atol; pol.rtol = c->rtol; pol.k = c->k; pol.eps = c->eps;
                    st = ringattn_compare(&o.t[i], &arr[4 + i].t, NULL, &pol, &r, &cfg);
                    CHECK(st == RINGATTN_OK && r.pass, "%s f64 %s p=%d %s outside tolerance", c->name, pname, p, names[4 + i]);
                    if (st == RINGATTN_OK && !r.pass) {
                        ringattn_compare_format(&r, i == 1 ? "bhn." : "bnhd", rep, sizeof rep);
                        printf("%s", rep);
                    }
                    if (st == RINGATTN_OK && r.max_abs > worst64[i]) worst64[i] = r.max_abs;
                }
            outs_free(&o);
        }

        /* f32 compute on the ring against a plain f32 computation (contiguous, p = 1): policy (b) */
        {
            outs o, base;
            int sb, sg;
            cfg.compute = RINGATTN_F32; cfg.ring_size = 1; cfg.partition = RINGATTN_CONTIGUOUS;
            sb = run(&cfg, RINGATTN_F32, arr, &base);
            cfg.ring_size = pmax; cfg.partition = (ringattn_partition)part;
            sg = run(&cfg, RINGATTN_F32, arr, &o);
            CHECK(sb == RINGATTN_OK && sg == RINGATTN_OK, "%s f32 %s: %s", c->name, pname, err);
            if (sb == RINGATTN_OK && sg == RINGATTN_OK)
                for (i = 0; i < 5; i++) {
                    ringattn_compare_policy pol = ringattn_compare_default_policy(RINGATTN_F32);
                    ringattn_compare_result r;
                    char rep[2048];
                    pol.k = c->k; pol.eps = c->eps;
                    st = ringattn_compare(&o.t[i], &arr[4 + i].t, &base.t[i], &pol, &r, &cfg);
                    CHECK(st == RINGATTN_OK && r.pass, "%s f32 %s p=%d %s outside policy (b)", c->name, pname, pmax, names[4 + i]);
                    if (st == RINGATTN_OK && !r.pass) {
                        ringattn_compare_format(&r, i == 1 ? "bhn." : "bnhd", rep, sizeof rep);
                        printf("%s", rep);
                    }
                    if (st == RINGATTN_OK) {
                        if (r.max_abs > err32[i]) err32[i] = r.max_abs;
                        if (r.bound > 0 && r.max_abs / r.bound > ratio32) ratio32 = r.max_abs / r.bound;
                    }
                }
            outs_free(&o); outs_free(&base);
        }
        printf("  %-20s %-10s f64 p=%d..%d max abs err: out %.1e lse %.1e dq %.1e dk %.1e dv %.1e | "
               "f32 p=%d: out %.1e lse %.1e dq %.1e dk %.1e dv %.1e (<= %.2f of bound)\n",
               c->name, pname, pmin, pmax, worst64[0], worst64[1], worst64[2], worst64[3], worst64[4], pmax,
               err32[0], err32[1], err32[2], err32[3], err32[4], ratio32);
    }
    for (i = 0; i < 9; i++) ringattn_npy_free(&arr[i]);
    return 1;
}

/* ---------------------------------------------------------------- the score-option cases */

enum { NOPT_OUT = 8 };   /* out, lse, max_logit, dq, dk, dv, dsinks, dbias */
static const char *opt_names[NOPT_OUT] = { "out", "lse", "max_logit", "dq", "dk", "dv", "dsinks", "dbias" };

typedef struct {
    ringattn_npy_array in[4], ref[NOPT_OUT], bias, mask;
    ringattn_tensor bias_t, mask_t;      /* 4-D views, dimensions right-aligned (NumPy broadcasting) */
    double *sinks, *alibi;
    int64_t *docs_q, *docs_k;
    int alibi_size, have[NOPT_OUT];
} opt_data;

/* every element of a loaded array, C order, as doubles */
static double *npy_doubles(const ringattn_npy_array *a)
{
    int64_t x, n = a->info.count;
    double *d = (double *)malloc(sizeof(double) * (size_t)n);
    for (x = 0; d && x < n; x++) {
        int64_t y = x, i3 = y % a->t.shape[3], i2, i1;
        y /= a->t.shape[3]; i2 = y % a->t.shape[2]; y /= a->t.shape[2]; i1 = y % a->t.shape[1]; y /= a->t.shape[1];
        d[x] = ringattn__load(a->t.data, a->t.dtype, ringattn__index(&a->t, y, i1, i2, i3));
    }
    return d;
}

static void right_align(const ringattn_npy_array *a, ringattn_tensor *t)
{
    int x, r = a->info.ndim;
    *t = a->t;
    for (x = 3; x >= 0; x--) {
        int from = x - (4 - r);
        t->shape[x] = from >= 0 ? a->t.shape[from] : 1;
        t->stride[x] = from >= 0 ? a->t.stride[from] : 0;
    }
}

static void opt_free(opt_data *D)
{
    int i;
    for (i = 0; i < 4; i++) ringattn_npy_free(&D->in[i]);
    for (i = 0; i < NOPT_OUT; i++) ringattn_npy_free(&D->ref[i]);
    ringattn_npy_free(&D->bias); ringattn_npy_free(&D->mask);
    free(D->sinks); free(D->alibi); free(D->docs_q); free(D->docs_k);
}

static int opt_load(const char *root, const golden_case *c, opt_data *D, int *failures)
{
    static const char *in_names[4] = { "q", "k", "v", "dout" };
    char path[1024], err[512];
    ringattn_config cfg = ringattn_default_config();
    ringattn_npy_array a;
    int i, st;
    memset(D, 0, sizeof *D);
    cfg.error_detail = err; cfg.error_detail_size = sizeof err;
#define OPT_PATH(n) snprintf(path, sizeof path, "%s/reference/golden/options/%s/%s.npy", root, c->name, n)
    for (i = 0; i < 4; i++) {
        OPT_PATH(in_names[i]);
        st = ringattn_npy_load(path, &D->in[i], &cfg);
        CHECK(st == RINGATTN_OK, "%s: %s", path, err);
        if (st != RINGATTN_OK) return -1;
    }
    for (i = 0; i < NOPT_OUT; i++) {
        if ((i == 6 && !c->sinks) || (i == 7 && !c->bias)) continue;
        OPT_PATH(opt_names[i]);
        st = ringattn_npy_load(path, &D->ref[i], &cfg);
        CHECK(st == RINGATTN_OK, "%s: %s", path, err);
        if (st != RINGATTN_OK) return -1;
        CHECK(same_bytes_as_numpy(path), "%s: re-encoding differs from the file NumPy wrote", path);
        D->have[i] = 1;
    }
    if (c->sinks) {
        OPT_PATH("sinks");
        if ((st = ringattn_npy_load(path, &a, &cfg)) != RINGATTN_OK) { CHECK(0, "%s: %s", path, err); return -1; }
        D->sinks = npy_doubles(&a); ringattn_npy_free(&a);
    }
    if (c->alibi) {
        OPT_PATH("alibi");
        if ((st = ringattn_npy_load(path, &a, &cfg)) != RINGATTN_OK) { CHECK(0, "%s: %s", path, err); return -1; }
        D->alibi = npy_doubles(&a); D->alibi_size = (int)a.info.count; ringattn_npy_free(&a);
    }
    if (c->bias) {
        OPT_PATH("bias");
        if ((st = ringattn_npy_load(path, &D->bias, &cfg)) != RINGATTN_OK) { CHECK(0, "%s: %s", path, err); return -1; }
        right_align(&D->bias, &D->bias_t);
    }
    if (c->mask) {
        OPT_PATH("mask");
        if ((st = ringattn_npy_load(path, &D->mask, &cfg)) != RINGATTN_OK) { CHECK(0, "%s: %s", path, err); return -1; }
        CHECK(same_bytes_as_numpy(path), "%s: re-encoding differs from the file NumPy wrote", path);
        CHECK(D->mask.t.dtype == RINGATTN_BOOL, "%s: not a bool array", path);
        right_align(&D->mask, &D->mask_t);
    }
    if (c->docs) {
        for (i = 0; i < 2; i++) {
            double *d; int64_t x;
            OPT_PATH(i ? "docs_k" : "docs_q");
            if ((st = ringattn_npy_load(path, &a, &cfg)) != RINGATTN_OK) { CHECK(0, "%s: %s", path, err); return -1; }
            d = npy_doubles(&a);
            if (i) D->docs_k = (int64_t *)malloc(sizeof(int64_t) * (size_t)a.info.count);
            else D->docs_q = (int64_t *)malloc(sizeof(int64_t) * (size_t)a.info.count);
            for (x = 0; x < a.info.count; x++) (i ? D->docs_k : D->docs_q)[x] = (int64_t)d[x];
            free(d); ringattn_npy_free(&a);
        }
    }
#undef OPT_PATH
    return 0;
}

/* the case's options into cfg */
static void opt_config(const golden_case *c, opt_data *D, ringattn_config *cfg)
{
    cfg->causal = c->causal; cfg->scale = c->scale; cfg->softcap = c->softcap;
    cfg->window_left = c->window_left; cfg->window_right = c->window_right;
    cfg->sinks = D->sinks;
    cfg->alibi_slopes = D->alibi; cfg->alibi_size = D->alibi_size;
    cfg->bias = c->bias ? &D->bias_t : NULL;
    cfg->mask = c->mask ? &D->mask_t : NULL;
    cfg->document_ids_q = D->docs_q; cfg->document_ids_k = D->docs_k;
}

/* forward (with max_logit) and backward (with dsinks, dbias); outputs stored as dt */
static int opt_run(const ringattn_config *cfg0, ringattn_dtype dt, const opt_data *D, ringattn_tensor o[NOPT_OUT],
                   double dsinks[64])
{
    const ringattn_tensor *q = &D->in[0].t, *k = &D->in[1].t, *v = &D->in[2].t, *dout = &D->in[3].t;
    int64_t b = q->shape[0], nq = q->shape[1], h = q->shape[2], d = q->shape[3];
    int64_t nk = k->shape[1], hk = k->shape[2], dv = v->shape[3], i;
    size_t es = dt == RINGATTN_F64 ? 8 : 4;
    ringattn_config cfg = *cfg0;
    int st;
    memset(o, 0, sizeof(ringattn_tensor) * NOPT_OUT);
    o[0] = ringattn_tensor_bnhd(calloc((size_t)(b * nq * h * dv), es), dt, b, nq, h, dv);
    o[1] = ringattn_tensor_lse(calloc((size_t)(b * h * nq), es), dt, b, h, nq);
    o[2] = ringattn_tensor_lse(calloc((size_t)(b * h * nq), es), dt, b, h, nq);
    o[3] = ringattn_tensor_bnhd(calloc((size_t)(b * nq * h * d), es), dt, b, nq, h, d);
    o[4] = ringattn_tensor_bnhd(calloc((size_t)(b * nk * hk * d), es), dt, b, nk, hk, d);
    o[5] = ringattn_tensor_bnhd(calloc((size_t)(b * nk * hk * dv), es), dt, b, nk, hk, dv);
    o[6] = ringattn_tensor_bnhd(dsinks, RINGATTN_F64, h, 1, 1, 1);
    if (cfg.bias) {
        const int64_t *s = cfg.bias->shape;
        o[7] = ringattn_tensor_bnhd(calloc((size_t)(s[0] * s[1] * s[2] * s[3]), es), dt, s[0], s[1], s[2], s[3]);
    }
    for (i = 0; i < h; i++) dsinks[i] = 0;
    cfg.max_logit = &o[2];
    st = ringattn_forward(&cfg, q, k, v, &o[0], &o[1]);
    cfg.max_logit = NULL;
    cfg.dsinks = cfg.sinks ? dsinks : NULL;
    cfg.dbias = cfg.bias ? &o[7] : NULL;
    if (st == RINGATTN_OK)
        st = ringattn_backward(&cfg, q, k, v, &o[0], &o[1], dout, &o[3], &o[4], &o[5]);
    return st;
}

static void opt_outs_free(ringattn_tensor o[NOPT_OUT])
{
    int i;
    for (i = 0; i < NOPT_OUT; i++) if (i != 6) free(o[i].data);
}

/* the reference file of output i as the library's tensor shape (dsinks (h,) -> [h,1,1,1];
   dbias as the bias view) */
static ringattn_tensor opt_ref_view(const opt_data *D, int i)
{
    ringattn_tensor t = D->ref[i].t;
    if (i == 7) right_align(&D->ref[7], &t);
    return t;
}

/* the naive oracle against the goldens */
static void opt_oracle(const golden_case *c, const opt_data *D, int *failures, double *worst)
{
    const ringattn_tensor *q = &D->in[0].t, *k = &D->in[1].t, *v = &D->in[2].t;
    ref_problem p;
    double *x[4], *got[NOPT_OUT], ds[64];
    unsigned char *mask = NULL;
    int64_t n[NOPT_OUT], i;
    int r;
    memset(&p, 0, sizeof p);
    p.b = q->shape[0]; p.nq = q->shape[1]; p.h = q->shape[2]; p.d = q->shape[3];
    p.nk = k->shape[1]; p.hk = k->shape[2]; p.dv = v->shape[3];
    p.scale = c->scale != 0 ? c->scale : 1.0 / sqrt((double)p.d);
    p.causal = c->causal; p.window_left = c->window_left; p.window_right = c->window_right; p.softcap = c->softcap;
    p.sinks = D->sinks; p.alibi_slopes = D->alibi; p.alibi_size = D->alibi_size;
    p.document_ids_q = D->docs_q; p.document_ids_k = D->docs_k;
    for (i = 0; i < 4; i++) x[i] = npy_doubles(&D->in[i]);
    if (c->bias) { p.bias = npy_doubles(&D->bias); p.bias_b = D->bias_t.shape[0]; p.bias_h = D->bias_t.shape[1]; }
    if (c->mask) {
        mask = (unsigned char *)malloc((size_t)D->mask.info.count);
        for (i = 0; i < D->mask.info.count; i++) {
            int64_t y = i, i3 = y % D->mask.t.shape[3], i2, i1;
            y /= D->mask.t.shape[3]; i2 = y % D->mask.t.shape[2]; y /= D->mask.t.shape[2];
            i1 = y % D->mask.t.shape[1]; y /= D->mask.t.shape[1];
            mask[i] = ((const unsigned char *)D->mask.t.data)[ringattn__index(&D->mask.t, y, i1, i2, i3)] != 0;
        }
        p.mask = mask; p.mask_b = D->mask_t.shape[0]; p.mask_h = D->mask_t.shape[1];
    }
    n[0] = p.b * p.nq * p.h * p.dv; n[1] = n[2] = p.b * p.h * p.nq; n[3] = p.b * p.nq * p.h * p.d;
    n[4] = p.b * p.nk * p.hk * p.d; n[5] = p.b * p.nk * p.hk * p.dv; n[6] = p.h;
    n[7] = c->bias ? D->bias.info.count : 1;
    for (i = 0; i < NOPT_OUT; i++) got[i] = i == 6 ? ds : (double *)malloc(sizeof(double) * (size_t)n[i]);
    r = ref_forward_ex(&p, x[0], x[1], x[2], got[0], got[1], got[2]);
    if (r == 0) r = ref_backward_ex(&p, x[0], x[1], x[2], x[3], got[3], got[4], got[5], c->sinks ? ds : NULL,
                                    c->bias ? got[7] : NULL);
    CHECK(r == 0, "%s: the oracle refused the case", c->name);
    for (i = 0; r == 0 && i < NOPT_OUT; i++) {
        double *ref, e = 0;
        int64_t j;
        if (!D->have[i]) continue;
        ref = npy_doubles(&D->ref[i]);
        for (j = 0; j < n[i]; j++) {
            double a = got[i][j], bb = ref[j], err;
            if (isinf(bb) && a == bb) continue;
            err = fabs(a - bb);
            if (!(err <= c->atol + c->rtol * fabs(bb))) {
                CHECK(0, "%s: oracle %s[%lld] = %.17g, golden %.17g", c->name, opt_names[i], (long long)j, a, bb);
                break;
            }
            if (err > e) e = err;
        }
        if (e > *worst) *worst = e;
        free(ref);
    }
    for (i = 0; i < 4; i++) free(x[i]);
    for (i = 0; i < NOPT_OUT; i++) if (i != 6) free(got[i]);
    free((void *)(uintptr_t)p.bias); free(mask);
}

static int check_option_case(const char *root, const golden_case *c, int *failures)
{
    opt_data D;
    char err[512];
    ringattn_config cfg = ringattn_default_config();
    int i, p, st, pi, nmin;
    double worst_oracle = 0;
    if (opt_load(root, c, &D, failures) != 0) { opt_free(&D); return 0; }
    cfg.error_detail = err; cfg.error_detail_size = sizeof err;
    opt_config(c, &D, &cfg);
    opt_oracle(c, &D, failures, &worst_oracle);
    nmin = (int)(D.in[0].t.shape[1] < D.in[1].t.shape[1] ? D.in[0].t.shape[1] : D.in[1].t.shape[1]);
    for (pi = 0; pi < c->npart; pi++) {
        double worst64[NOPT_OUT], ratio32 = 0;
        int part = c->partitions[pi], pmin = part == RINGATTN_CONTIGUOUS ? 1 : 2, pmax;
        const char *pname = part_names[part == RINGATTN_CONTIGUOUS ? 0 : part == RINGATTN_ZIGZAG ? 1 : 2];
        memset(worst64, 0, sizeof worst64);
        pmax = part == RINGATTN_ZIGZAG ? nmin / 2 : nmin;
        if (pmax > 4) pmax = 4;
        cfg.partition = (ringattn_partition)part;
        for (p = pmin; p <= pmax; p++) {   /* f64: policy (a) with the manifest's tolerance */
            ringattn_tensor o[NOPT_OUT];
            double ds[64];
            cfg.compute = RINGATTN_F64; cfg.ring_size = p;
            st = opt_run(&cfg, RINGATTN_F64, &D, o, ds);
            CHECK(st == RINGATTN_OK, "%s %s p=%d: %s %s", c->name, pname, p, ringattn_strerror(st), err);
            for (i = 0; st == RINGATTN_OK && i < NOPT_OUT; i++) {
                ringattn_compare_policy pol = ringattn_compare_default_policy(RINGATTN_F64);
                ringattn_compare_result r;
                ringattn_tensor rt;
                char rep[2048];
                int s2;
                if (!D.have[i]) continue;
                rt = opt_ref_view(&D, i);
                pol.atol = c->atol; pol.rtol = c->rtol;
                s2 = ringattn_compare(&o[i], &rt, NULL, &pol, &r, &cfg);
                CHECK(s2 == RINGATTN_OK && r.pass, "%s f64 %s p=%d %s outside tolerance (%s)", c->name, pname, p,
                      opt_names[i], s2 == RINGATTN_OK ? "" : err);
                if (s2 == RINGATTN_OK && !r.pass) {
                    ringattn_compare_format(&r, "bnhd", rep, sizeof rep);
                    printf("%s", rep);
                }
                if (s2 == RINGATTN_OK && r.max_abs > worst64[i]) worst64[i] = r.max_abs;
            }
            opt_outs_free(o);
        }
        {   /* f32 on the ring against a plain f32 computation: policy (b) */
            ringattn_tensor o[NOPT_OUT], base[NOPT_OUT];
            double ds[64], dsb[64];
            int sb, sg;
            cfg.compute = RINGATTN_F32; cfg.ring_size = 1; cfg.partition = RINGATTN_CONTIGUOUS;
            sb = opt_run(&cfg, RINGATTN_F32, &D, base, dsb);
            cfg.ring_size = pmax; cfg.partition = (ringattn_partition)part;
            sg = opt_run(&cfg, RINGATTN_F32, &D, o, ds);
            CHECK(sb == RINGATTN_OK && sg == RINGATTN_OK, "%s f32 %s: %s", c->name, pname, err);
            for (i = 0; sb == RINGATTN_OK && sg == RINGATTN_OK && i < NOPT_OUT; i++) {
                ringattn_compare_policy pol = ringattn_compare_default_policy(RINGATTN_F32);
                ringattn_compare_result r;
                ringattn_tensor rt;
                int s2;
                if (!D.have[i]) continue;
                rt = opt_ref_view(&D, i);
                pol.k = c->k; pol.eps = c->eps;
                s2 = ringattn_compare(&o[i], &rt, &base[i], &pol, &r, &cfg);
                CHECK(s2 == RINGATTN_OK && r.pass, "%s f32 %s p=%d %s outside policy (b)", c->name, pname, pmax, opt_names[i]);
                if (s2 == RINGATTN_OK && r.bound > 0 && r.max_abs / r.bound > ratio32) ratio32 = r.max_abs / r.bound;
            }
            opt_outs_free(o); opt_outs_free(base);
        }
        printf("  %-16s %-10s f64 p=%d..%d max abs err: out %.1e lse %.1e max_logit %.1e dq %.1e dk %.1e dv %.1e "
               "dsinks %.1e dbias %.1e | f32 p=%d <= %.2f of bound\n", c->name, pname, pmin, pmax, worst64[0],
               worst64[1], worst64[2], worst64[3], worst64[4], worst64[5], worst64[6], worst64[7], pmax, ratio32);
    }
    printf("  %-16s the oracle against the golden: max abs err %.1e\n", c->name, worst_oracle);
    opt_free(&D);
    return 1;
}

int main(int argc, char **argv)
{
    const char *root = argc > 1 ? argv[1] : ".";
    char path[1024], line[1024];
    FILE *f;
    int fail_count = 0, *failures = &fail_count, cases = 0;
    snprintf(path, sizeof path, "%s/reference/golden/manifest.txt", root);
    f = fopen(path, "r");
    if (!f) {
        printf("test_golden: no %s (pass the source root as argv[1]); skipped\n", path);
        return TEST_SKIP;
    }
    while (fgets(line, sizeof line, f)) {
        golden_case c;
        int pc = parse_case(line, &c);
        CHECK(pc != -2, "manifest: bad line for case %s", c.name);
        if (pc == 0) cases += check_case(root, &c, failures);
    }
    fclose(f);
    CHECK(cases >= 22, "only %d golden cases", cases);
    snprintf(path, sizeof path, "%s/reference/golden/options/manifest.txt", root);
    f = fopen(path, "r");
    CHECK(f != NULL, "no %s", path);
    if (f) {
        int ocases = 0;
        while (fgets(line, sizeof line, f)) {
            golden_case c;
            int pc = parse_case(line, &c);
            CHECK(pc != -2, "options manifest: bad line for case %s", c.name);
            if (pc == 0) ocases += check_option_case(root, &c, failures);
        }
        fclose(f);
        CHECK(ocases >= 6, "only %d score-option golden cases", ocases);
        cases += ocases;
    }
    printf("test_golden: %d cases, %s (%d failures)\n", cases, fail_count ? "FAIL" : "ok", fail_count);
    return fail_count ? TEST_FAIL : TEST_PASS;
}
