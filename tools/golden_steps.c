/* golden_steps.c - the ring seen from inside, for ringattn-golden (included by ringattn_golden.c,
   after its option parser and helpers; not a translation unit of its own).

     steps          per-step goldens: for member i at step t, the block (Q_i over the chunk held
                    alone) and the running result (over every chunk received so far), normalised,
                    with the global positions of rows and keys; dQ_i and the travelling dK/dV
                    after each step when DOUT.npy is given
     compare-steps  a port's dump of the same layout against them: the first (member, step)
                    outside the policy is where the port went wrong
     trace          the ring without data: which member holds whose chunk at every step, which
                    blocks are computed, skipped or partly masked; --svg draws it
     heatmap        (compare --heatmap) the error of a comparison over (position, head)

   Everything is read from the library's trace events (ringattn_trace_positions / _result /
   _grads): the pictures and goldens are what the ring itself did, not a second model of it.
   The SVGs are written here, self-contained, no dependency. */

#if defined(_WIN32)
#include <direct.h>
#define golden_mkdir(path) _mkdir(path)
#else
#include <sys/stat.h>
#define golden_mkdir(path) mkdir(path, 0777)
#endif
#include <errno.h>
#include <math.h>

#include "golden_heatmap.c"   /* write_heatmap, partition_name: shared with the Python package */

static const char *const steps_usage =
"usage: ringattn-golden steps [compute options] --ring P Q.npy K.npy V.npy [DOUT.npy] -o DIR\n"
"       ringattn-golden compare-steps [--atol A --rtol R | --baseline BASEDIR [--policy P]] PORTDIR DIR\n"
"       ringattn-golden trace --nq N [--nk N] [--heads H] --ring P [compute options] [--svg FILE]\n"
"       ringattn-golden compare ... --heatmap FILE.svg\n"
"\n"
"steps: per-step goldens of the ring of P members (the compute options of `compute`). Writes\n"
"  DIR/member<i>/step<t>/block_out.npy  [b, rows, h, dv]  Q_i over the chunk held at step t alone\n"
"                        block_lse.npy  (b, h, rows)      -inf where the row sees none of it\n"
"                        out.npy, lse.npy                 over every chunk received up to t\n"
"                        dq.npy [b, rows, h, d]           (with DOUT.npy) the running dQ_i\n"
"                        dk.npy, dv.npy [b, keys, hk, .]  the travelling partial sums of chunk src\n"
"  DIR/member<i>/positions_q.npy, positions_k_step<t>.npy  global positions of rows / keys (int64)\n"
"  DIR/steps.txt        one line per (member, step): member step src computed|skipped rows keys tiles\n"
"  Rows are the member's, in its order (positions_q.npy); after the last step out/lse equal the\n"
"  final outputs bit for bit. DIR is created if missing; like compute, steps stages every file\n"
"  and renames them in together, with DIR/" OPTIONS_FILE " (options and manifest), removes the\n"
"  earlier run's files it does not write, and replaces a file no run listed only with --force.\n"
"compare-steps: every golden DIR's manifest lists (unchanged: exit 2 otherwise) that PORTDIR\n"
"  also has, (member, step) by (member, step), step\n"
"  by step; names the first (member, step) outside the policy (compare's policy (a), defaults by\n"
"  the port's dtype; with --baseline BASEDIR, the same ring's goldens computed in the port's\n"
"  precision, e.g. `steps --compute f32 --p-dtype bf16 --block-dtype bf16 --dtype f32 ...\n"
"  -o BASEDIR`, each record rounded to the port's dtype for it and judged by --policy as\n"
"  compare does). Exit 0 all within, 1 outside, 2 bad input.\n"
"trace: the ring of P members over nq queries and nk keys without data: every step as a grid of\n"
"  members x key chunks (positions when nq, nk <= 64): computed blocks, partly masked ones (the\n"
"  diagonal), skipped ones, whose chunk each member holds, and the work per member.\n"
"heatmap: compare's error over (position, head), max over batch and dim, in units of the\n"
"  allowed error, with tile and chunk boundaries (--ring P, --partition) marked.\n";

/* ---------------------------------------------------------------- small helpers */

/* removes `--name VALUE` (or --name=VALUE) from argv; returns VALUE or NULL */
static const char *take_option(int *argc, char **argv, const char *name)
{
    int i, j, n = (int)strlen(name);
    for (i = 2; i < *argc; i++) {
        const char *v = NULL; int drop = 1;
        if (!strcmp(argv[i], name)) { if (i + 1 < *argc) { v = argv[i + 1]; drop = 2; } else v = ""; }
        else if (!strncmp(argv[i], name, (size_t)n) && argv[i][n] == '=') v = argv[i] + n + 1;
        if (!v) continue;
        for (j = i; j + drop < *argc; j++) argv[j] = argv[j + drop];
        *argc -= drop;
        return v;
    }
    return NULL;
}

static int make_dir(const char *path)
{
    if (golden_mkdir(path) == 0 || errno == EEXIST) return 0;
    fprintf(stderr, "ringattn-golden: cannot create directory %s: %s\n", path, strerror(errno));
    return -1;
}

static int save_quiet(const char *path, const ringattn_tensor *t, int ndim)
{
    char err[512]; ringattn_config c = ringattn_default_config(); int st;
    c.error_detail = err; c.error_detail_size = sizeof err;
    st = ringattn_npy_save(path, t, ndim, &c);
    if (st != RINGATTN_OK) { fprintf(stderr, "ringattn-golden: %s\n", err); return -1; }
    return 0;
}

/* .npy of int64 positions (the library's reader and writer are for floating point data) */
static int save_i64(const char *path, const int64_t *x, int64_t n)
{
    char hdr[128]; int len, pad; int64_t i; FILE *f = fopen(path, "wb");
    if (!f) { fprintf(stderr, "ringattn-golden: cannot write %s\n", path); return -1; }
    len = snprintf(hdr, sizeof hdr, "{'descr': '<i8', 'fortran_order': False, 'shape': (%lld,), }", (long long)n);
    pad = (64 - (10 + len + 1) % 64) % 64;   /* magic, version, length, header, '\n': 64-aligned */
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc((len + pad + 1) & 0xff, f); fputc(((len + pad + 1) >> 8) & 0xff, f);
    fwrite(hdr, 1, (size_t)len, f);
    while (pad--) fputc(' ', f);
    fputc('\n', f);
    for (i = 0; i < n; i++) {   /* little endian, whatever the host */
        uint64_t u = (uint64_t)x[i]; int b;
        for (b = 0; b < 8; b++) fputc((int)((u >> (8 * b)) & 0xff), f);
    }
    if (fclose(f)) { fprintf(stderr, "ringattn-golden: cannot write %s\n", path); return -1; }
    return 0;
}

/* reads a 1-D little-endian int64 .npy (as numpy writes np.int64 arrays); NULL on failure */
static int64_t *load_i64(const char *path, int64_t *n)
{
    unsigned char pre[12]; char hdr[4096]; const char *s; size_t hl, vs; int64_t i, *x; FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6)) { fclose(f); return NULL; }
    vs = pre[6] == 1 ? 2 : 4;
    hl = pre[8] | ((size_t)pre[9] << 8);
    if (vs == 4) {
        if (fread(pre + 10, 1, 2, f) != 2) { fclose(f); return NULL; }
        hl |= ((size_t)pre[10] << 16) | ((size_t)pre[11] << 24);
    }
    if (hl >= sizeof hdr || fread(hdr, 1, hl, f) != hl) { fclose(f); return NULL; }
    hdr[hl] = 0;
    s = strstr(hdr, "'shape'");
    if (!strstr(hdr, "<i8") || strstr(hdr, "True") || !s || !(s = strchr(s, '('))) { fclose(f); return NULL; }
    *n = strtoll(s + 1, NULL, 10);
    if (*n < 0 || *n > ((int64_t)1 << 40)) { fclose(f); return NULL; }
    x = (int64_t *)malloc((size_t)(*n ? *n : 1) * sizeof(int64_t));
    for (i = 0; x && i < *n; i++) {
        unsigned char b[8]; uint64_t u = 0; int k;
        if (fread(b, 1, 8, f) != 8) { free(x); x = NULL; break; }
        for (k = 0; k < 8; k++) u |= (uint64_t)b[k] << (8 * k);
        x[i] = (int64_t)u;
    }
    fclose(f);
    return x;
}

/* "0-3,28-31" (runs of consecutive positions; "0,3,6,..." for strided ones) */
static void format_positions(const int64_t *x, int64_t n, char *buf, size_t cap)
{
    size_t len = 0; int64_t i = 0; int runs = 0;
    buf[0] = 0;
    while (i < n && len + 32 < cap) {
        int64_t j = i;
        while (j + 1 < n && x[j + 1] == x[j] + 1) j++;
        if (runs == 6) { len += (size_t)snprintf(buf + len, cap - len, ",..."); break; }
        len += (size_t)snprintf(buf + len, cap - len, j > i ? "%s%lld-%lld" : "%s%lld", runs ? "," : "",
                                (long long)x[i], (long long)x[j]);
        runs++;
        i = j + 1;
    }
}

static const char *causal_name(int c)
{
    return c == RINGATTN_CAUSAL_BOTTOM_RIGHT ? "bottom-right" : c == RINGATTN_CAUSAL_TOP_LEFT ? "top-left" : "none";
}

static const char *dtype_name(ringattn_dtype t)
{
    return t == RINGATTN_F64 ? "f64" : t == RINGATTN_F32 ? "f32" : t == RINGATTN_F16 ? "f16" : "bf16";
}

/* ---------------------------------------------------------------- steps */

typedef struct {
    int src, computed;
    int64_t rows, keys, tiles, bwd_tiles;
    int bad;
} step_line;

typedef struct {
    const char *dir;
    ringattn_dtype dt;
    int p;
    step_line *line;   /* [member * p + step]: each event writes only its own */
} steps_ctx;

static void steps_on_event(const ringattn_trace_event *ev, void *user)
{
    steps_ctx *S = (steps_ctx *)user;
    step_line *L = &S->line[ev->member * S->p + ev->step];
    char path[4096], err[512]; ringattn_config c = ringattn_default_config();
    int64_t *pos = (int64_t *)malloc((size_t)(ev->rows + ev->keys + 1) * sizeof(int64_t));
    ringattn_tensor a, b2, d3; void *pa = NULL, *pb = NULL, *pc = NULL;
    int bad = 0;
    c.error_detail = err; c.error_detail_size = sizeof err; err[0] = 0;
    if (!pos) { L->bad = 1; return; }
    if (ev->pass == 0) {
        L->src = ev->src; L->computed = ev->computed; L->rows = ev->rows; L->keys = ev->keys; L->tiles = ev->tiles;
        if (ev->step == 0) {
            snprintf(path, sizeof path, "%s/member%d/positions_q.npy" PARTIAL, S->dir, ev->member);
            bad |= ringattn_trace_positions(ev, 0, pos, ev->rows) != ev->rows || save_i64(path, pos, ev->rows);
        }
        snprintf(path, sizeof path, "%s/member%d/positions_k_step%d.npy" PARTIAL, S->dir, ev->member, ev->step);
        bad |= ringattn_trace_positions(ev, 1, pos, ev->keys) != ev->keys || save_i64(path, pos, ev->keys);
        pa = alloc_like(&a, S->dt, ev->batch, ev->rows, ev->heads, ev->dim_v, 0);
        pb = alloc_like(&b2, S->dt, ev->batch, ev->heads, ev->rows, 1, 1);
        if (!pa || !pb) bad = 1;
        else {
            int blk;
            for (blk = 1; blk >= 0 && !bad; blk--) {
                if (ringattn_trace_result(ev, blk, &a, &b2, &c) != RINGATTN_OK) { bad = 1; break; }
                snprintf(path, sizeof path, "%s/member%d/step%d/%s.npy" PARTIAL, S->dir, ev->member, ev->step, blk ? "block_out" : "out");
                bad |= save_quiet(path, &a, 4);
                snprintf(path, sizeof path, "%s/member%d/step%d/%s.npy" PARTIAL, S->dir, ev->member, ev->step, blk ? "block_lse" : "lse");
                bad |= save_quiet(path, &b2, 3);
            }
        }
    } else {
        L->bwd_tiles = ev->tiles;
        pa = alloc_like(&a, S->dt, ev->batch, ev->rows, ev->heads, ev->dim, 0);
        pb = alloc_like(&b2, S->dt, ev->batch, ev->keys, ev->kv_heads, ev->dim, 0);
        pc = alloc_like(&d3, S->dt, ev->batch, ev->keys, ev->kv_heads, ev->dim_v, 0);
        if (!pa || !pb || !pc || ringattn_trace_grads(ev, &a, &b2, &d3, &c) != RINGATTN_OK) bad = 1;
        else {
            const char *names[3] = { "dq", "dk", "dv" }; ringattn_tensor *t[3]; int x;
            t[0] = &a; t[1] = &b2; t[2] = &d3;
            for (x = 0; x < 3; x++) {
                snprintf(path, sizeof path, "%s/member%d/step%d/%s.npy" PARTIAL, S->dir, ev->member, ev->step, names[x]);
                bad |= save_quiet(path, t[x], 4);
            }
        }
    }
    if (bad) {
        fprintf(stderr, "ringattn-golden: member %d step %d: could not write its goldens%s%s\n",
                ev->member, ev->step, err[0] ? ": " : "", err);
        L->bad = 1;
    }
    free(pos); free(pa); free(pb); free(pc);
}

/* `steps --help` and friends: this file's usage */
static int wants_help(int argc, char **argv)
{
    int i;
    for (i = 2; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { fputs(steps_usage, stdout); return 1; }
    return 0;
}

static char *dup_str(const char *a)
{
    char *b = (char *)malloc(strlen(a) + 1);
    if (b) strcpy(b, a);
    return b;
}

/* every file `steps` writes for a ring of p (with DOUT: the gradients too), relative to DIR */
static char **steps_names(int p, int grad, int *n)
{
    static const char *const fwd[4] = { "block_out", "block_lse", "out", "lse" }, *const bwd[3] = { "dq", "dk", "dv" };
    int i, t, x, k = 0, cap = p * (1 + p * (1 + 4 + (grad ? 3 : 0))) + 1;
    char **names = (char **)calloc((size_t)cap, sizeof(char *)), buf[128];
    for (i = 0; names && i < p; i++) {
        snprintf(buf, sizeof buf, "member%d/positions_q.npy", i);
        if (!(names[k++] = dup_str(buf))) break;
        for (t = 0; t < p; t++) {
            snprintf(buf, sizeof buf, "member%d/positions_k_step%d.npy", i, t);
            if (!(names[k++] = dup_str(buf))) break;
            for (x = 0; x < 4 + (grad ? 3 : 0); x++) {
                snprintf(buf, sizeof buf, "member%d/step%d/%s.npy", i, t, x < 4 ? fwd[x] : bwd[x - 4]);
                if (!(names[k++] = dup_str(buf))) break;
            }
        }
    }
    if (names && k == cap - 1 && (names[k++] = dup_str("steps.txt")) != NULL) { *n = k; return names; }
    for (i = 0; names && i < cap; i++) free(names[i]);
    free(names);
    return NULL;
}

static int cmd_steps(int argc, char **argv)
{
    options o; const char *pos[8]; int npos, rc, i, t, p, nnames = 0;
    ringattn_npy_array in[4]; results r; steps_ctx S; char path[4096], **names; FILE *f; folder F;
    if (wants_help(argc, argv)) return EXIT_PASS;
    if ((rc = parse_args(argc, argv, &o, pos, &npos))) return rc;
    if (npos != 3 && npos != 4) return bad("steps needs Q.npy K.npy V.npy [DOUT.npy] -o DIR%s", "");
    p = o.cfg.ring_size;
    if (p > 4096) return bad("steps writes at most a ring of 4096 members%s", "");
    if (!(names = steps_names(p, npos == 4, &nnames))) return bad("out of memory%s", "");
    if (folder_open(&F, o.out_dir, o.force, (const char *const *)names, nnames)) {
        for (i = 0; i < nnames; i++) free(names[i]);
        free(names);
        return EXIT_BAD;
    }
    for (i = 0; i < p; i++) {
        snprintf(path, sizeof path, "%s/member%d", o.out_dir, i);
        if (make_dir(path)) return EXIT_BAD;
        for (t = 0; t < p; t++) {
            snprintf(path, sizeof path, "%s/member%d/step%d", o.out_dir, i, t);
            if (make_dir(path)) return EXIT_BAD;
        }
    }
    if (load_inputs(pos, npos, in, o.fp8)) return EXIT_BAD;
    if (load_score_options(&o, &in[0].t, &in[1].t)) { for (i = 0; i < npos; i++) ringattn_npy_free(&in[i]); return EXIT_BAD; }
    S.dir = o.out_dir; S.dt = o.dtype; S.p = p;
    S.line = (step_line *)calloc((size_t)p * (size_t)p, sizeof(step_line));
    if (!S.line) {
        for (i = 0; i < npos; i++) ringattn_npy_free(&in[i]);
        free_score_options(&o);
        return bad("out of memory%s", "");
    }
    o.cfg.trace = steps_on_event; o.cfg.trace_user = &S; o.cfg.trace_blocks = 1;
    rc = run(&o.cfg, o.dtype, &in[0].t, &in[1].t, &in[2].t, npos == 4 ? &in[3].t : NULL, &r) ? EXIT_BAD : EXIT_PASS;
    if (rc == EXIT_PASS) results_free(&r);
    for (i = 0; rc == EXIT_PASS && i < p * p; i++) if (S.line[i].bad) rc = EXIT_BAD;
    if (rc == EXIT_PASS) {
        snprintf(path, sizeof path, "%s/steps.txt" PARTIAL, o.out_dir);
        f = fopen(path, "w");
        if (!f) rc = bad("cannot write %s", path);
        else {
            const ringattn_tensor *q = &in[0].t, *k = &in[1].t, *v = &in[2].t;
            fprintf(f, "# ringattn-golden steps: ring %d, partition %s, causal %s, compute %s, stored %s%s\n",
                    p, partition_name(o.cfg.partition), causal_name(o.cfg.causal), dtype_name(o.cfg.compute),
                    dtype_name(o.dtype), o.nseg ? ", dilated" : "");
            fprintf(f, "# q [b, nq, h, d] = [%lld, %lld, %lld, %lld]; k, v [b, nk, hk, d | dv] = [%lld, %lld, %lld, %lld | %lld]; backward %s\n",
                    (long long)q->shape[0], (long long)q->shape[1], (long long)q->shape[2], (long long)q->shape[3],
                    (long long)k->shape[0], (long long)k->shape[1], (long long)k->shape[2], (long long)k->shape[3],
                    (long long)v->shape[3], npos == 4 ? "yes" : "no");
            fprintf(f, "# member step src block rows keys tiles%s\n", npos == 4 ? " backward_tiles" : "");
            for (i = 0; i < p; i++)
                for (t = 0; t < p; t++) {
                    const step_line *L = &S.line[i * p + t];
                    fprintf(f, "%d %d %d %s %lld %lld %lld", i, t, L->src, L->computed ? "computed" : "skipped",
                            (long long)L->rows, (long long)L->keys, (long long)L->tiles);
                    if (npos == 4) fprintf(f, " %lld", (long long)L->bwd_tiles);
                    fputc('\n', f);
                }
            if (fclose(f)) rc = bad("cannot write %s", path);
            else if (folder_commit(&F, &o, "steps", pos, npos, (const char *const *)names, nnames)) rc = EXIT_BAD;
            else printf("wrote %s/member<0..%d>/step<0..%d>/{block_out,block_lse,out,lse%s}.npy, positions, steps.txt, "
                        OPTIONS_FILE "\n", o.out_dir, p - 1, p - 1, npos == 4 ? ",dq,dk,dv" : "");
        }
    }
    folder_close(&F);
    for (i = 0; i < nnames; i++) free(names[i]);
    free(names);
    free(S.line);
    for (i = 0; i < npos; i++) ringattn_npy_free(&in[i]);
    free_score_options(&o);
    return rc;
}

/* ---------------------------------------------------------------- compare-steps */

typedef struct { int member, step, src, computed; long long rows, keys, tiles; } steps_row;

/* DIR/steps.txt, in step order (step-major: what happened first comes first) */
static steps_row *read_steps(const char *dir, int *n, int *p)
{
    char path[4096], line[1024], blk[32]; FILE *f; steps_row *rows = NULL, x; int cap = 0, i, j;
    snprintf(path, sizeof path, "%s/steps.txt", dir);
    f = fopen(path, "r");
    if (!f) { fprintf(stderr, "ringattn-golden: cannot read %s\n", path); return NULL; }
    *n = 0; *p = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        if (sscanf(line, "%d %d %d %31s %lld %lld %lld", &x.member, &x.step, &x.src, blk, &x.rows, &x.keys, &x.tiles) != 7 ||
            x.member < 0 || x.step < 0) {
            fprintf(stderr, "ringattn-golden: %s: malformed line '%s'\n", path, line);
            free(rows); fclose(f); return NULL;
        }
        x.computed = !strcmp(blk, "computed");
        if (*n == cap) {
            steps_row *nr = (steps_row *)realloc(rows, sizeof(steps_row) * (size_t)(cap = cap ? 2 * cap : 64));
            if (!nr) { free(rows); fclose(f); return NULL; }
            rows = nr;
        }
        rows[(*n)++] = x;
        if (x.member + 1 > *p) *p = x.member + 1;
    }
    fclose(f);
    for (i = 1; i < *n; i++)   /* insertion sort by (step, member): small n */
        for (j = i; j > 0 && (rows[j].step < rows[j - 1].step ||
                              (rows[j].step == rows[j - 1].step && rows[j].member < rows[j - 1].member)); j--) {
            x = rows[j]; rows[j] = rows[j - 1]; rows[j - 1] = x;
        }
    if (*n == 0) { fprintf(stderr, "ringattn-golden: %s lists no (member, step)\n", path); free(rows); return NULL; }
    return rows;
}

/* src's values rounded to dtype `to` (one round-to-nearest-even, ringattn__round), held as a
   contiguous f64 copy of the same shape: a baseline stored as the port stored that record */
static int round_copy(const ringattn_tensor *src, ringattn_dtype to, double **buf, ringattn_tensor *out)
{
    int64_t n = src->shape[0] * src->shape[1] * src->shape[2] * src->shape[3], x;
    double *b = (double *)malloc((size_t)n * sizeof *b);
    if (!b) return -1;
    for (x = 0; x < n; x++) {
        int64_t y = x, i3 = y % src->shape[3], i2, i1;
        y /= src->shape[3]; i2 = y % src->shape[2]; y /= src->shape[2]; i1 = y % src->shape[1]; y /= src->shape[1];
        b[x] = ringattn__round(ringattn__load(src->data, src->dtype, ringattn__index(src, y, i1, i2, i3)), to);
    }
    *out = ringattn_tensor_bnhd(b, RINGATTN_F64, src->shape[0], src->shape[1], src->shape[2], src->shape[3]);
    *buf = b;
    return 0;
}

static int cmd_compare_steps(int argc, char **argv)
{
    static const char *const names[7] = { "block_out", "block_lse", "out", "lse", "dq", "dk", "dv" };
    options o; const char *pos[8]; int npos, rc, n, p, x, f, first = -1, compared = 0, nfail = 0, missing_pos = 0;
    steps_row *rows; char gp[4096], pp[4096], report[8192], err[512], where[512], rel[256];
    ringattn_config c = ringattn_default_config();
    ringattn_compare_result first_res; char first_name[32] = "", first_where[600] = "";
    options rec, brec; manifest man, bman; int st;
    if (wants_help(argc, argv)) return EXIT_PASS;
    if ((rc = parse_args(argc, argv, &o, pos, &npos))) return rc;
    if (npos != 2) return bad("compare-steps needs PORTDIR DIR%s", "");
    /* the goldens are trusted only as DIR's manifest lists them: a file it does not list
       (an earlier run's) is not a golden, a listed one that changed is refused */
    snprintf(gp, sizeof gp, "%s/%s", pos[1], OPTIONS_FILE);
    st = read_options(gp, &rec, &man);
    if (st == 1) return bad("%s has no manifest (" OPTIONS_FILE "): not written whole by `ringattn-golden steps`; "
                            "run steps again", pos[1]);
    if (st < 0) return EXIT_BAD;
    memset(&bman, 0, sizeof bman);
    if (o.baseline) {   /* a baseline folder is trusted the same way */
        snprintf(gp, sizeof gp, "%s/%s", o.baseline, OPTIONS_FILE);
        st = read_options(gp, &brec, &bman);
        if (st != 0) {
            manifest_free(&man); manifest_free(&bman);
            if (st == 1) return bad("%s has no manifest (" OPTIONS_FILE "): compute the baseline with `ringattn-golden "
                                    "steps`", o.baseline);
            return EXIT_BAD;
        }
    }
    st = verify_listed(&man, pos[1], "steps.txt");
    if (st == 1) fprintf(stderr, "ringattn-golden: %s/steps.txt is not listed in %s\n", pos[1], gp);
    if (st != 0 || !(rows = read_steps(pos[1], &n, &p))) { manifest_free(&man); manifest_free(&bman); return EXIT_BAD; }
    c.error_detail = err; c.error_detail_size = sizeof err;
    memset(&first_res, 0, sizeof first_res);
    printf("compare-steps: port %s against the goldens in %s (ring %d, %d (member, step) pairs, step by step)\n",
           pos[0], pos[1], p, n);
    /* the port's positions, where it wrote them, must be the goldens' */
    for (x = 0; x < n; x++) {
        int64_t ng, np2, *g, *q, k; int m = rows[x].member, s = rows[x].step, w;
        for (w = 0; w < 2; w++) {
            if (w == 0 && s != 0) continue;
            if (w == 0) { snprintf(gp, sizeof gp, "%s/member%d/positions_q.npy", pos[1], m); snprintf(pp, sizeof pp, "%s/member%d/positions_q.npy", pos[0], m); }
            else { snprintf(gp, sizeof gp, "%s/member%d/positions_k_step%d.npy", pos[1], m, s); snprintf(pp, sizeof pp, "%s/member%d/positions_k_step%d.npy", pos[0], m, s); }
            if (!file_exists(pp)) { missing_pos++; continue; }
            snprintf(rel, sizeof rel, w == 0 ? "member%d/positions_q.npy" : "member%d/positions_k_step%d.npy", m, s);
            if (verify_listed(&man, pos[1], rel) != 0) {
                fprintf(stderr, "ringattn-golden: %s/%s: not a golden of the run %s describes\n", pos[1], rel, OPTIONS_FILE);
                free(rows); manifest_free(&man); manifest_free(&bman); return EXIT_BAD;
            }
            g = load_i64(gp, &ng); q = load_i64(pp, &np2);
            if (!g || !q) { free(g); free(q); free(rows); manifest_free(&man); manifest_free(&bman); return bad("cannot read int64 positions %s", !g ? gp : pp); }
            for (k = 0; ng == np2 && k < ng && g[k] == q[k]; k++) {}
            if (ng != np2 || k < ng) {
                printf("member %d step %d: the port's %s differ from the goldens' (at entry %lld)\n", m, s,
                       w ? "key positions" : "query positions", (long long)k);
                if (first < 0) { first = x; snprintf(first_name, sizeof first_name, "%s", w ? "positions_k" : "positions_q"); }
                nfail++;
            }
            free(g); free(q);
        }
    }
    for (x = 0; x < n; x++) {
        const steps_row *R = &rows[x];
        char okl[256] = "", badl[512] = "", missl[256] = ""; int fails = 0;
        for (f = 0; f < 7; f++) {
            ringattn_npy_array ga, pa, ba; ringattn_compare_policy pol; ringattn_compare_result res; int st;
            double *bbuf = NULL; ringattn_tensor bt; char bpath[4096];
            snprintf(gp, sizeof gp, "%s/member%d/step%d/%s.npy", pos[1], R->member, R->step, names[f]);
            snprintf(pp, sizeof pp, "%s/member%d/step%d/%s.npy", pos[0], R->member, R->step, names[f]);
            snprintf(rel, sizeof rel, "member%d/step%d/%s.npy", R->member, R->step, names[f]);
            st = verify_listed(&man, pos[1], rel);
            if (st < 0) { free(rows); manifest_free(&man); manifest_free(&bman); return EXIT_BAD; }
            if (st == 1) continue;   /* not a golden of this run (no DOUT: no dq, dk, dv) */
            if (!file_exists(pp)) { strcat(missl, " "); strcat(missl, names[f]); continue; }
            if (load(gp, &ga, 0)) { free(rows); manifest_free(&man); manifest_free(&bman); return EXIT_BAD; }
            if (load(pp, &pa, 0)) { ringattn_npy_free(&ga); free(rows); manifest_free(&man); manifest_free(&bman); return EXIT_BAD; }
            if (o.baseline) {   /* the same record computed in the port's precision, stored as the port's */
                snprintf(bpath, sizeof bpath, "%s/member%d/step%d/%s.npy", o.baseline, R->member, R->step, names[f]);
                if (verify_listed(&bman, o.baseline, rel) != 0 || load(bpath, &ba, 0)) {
                    fprintf(stderr, "ringattn-golden: %s: not a baseline of the run %s/%s describes\n", bpath,
                            o.baseline, OPTIONS_FILE);
                    ringattn_npy_free(&ga); ringattn_npy_free(&pa); free(rows); manifest_free(&man); manifest_free(&bman);
                    return EXIT_BAD;
                }
                if (round_copy(&ba.t, pa.t.dtype, &bbuf, &bt)) {
                    ringattn_npy_free(&ba); ringattn_npy_free(&ga); ringattn_npy_free(&pa); free(rows);
                    manifest_free(&man); manifest_free(&bman);
                    return bad("out of memory%s", "");
                }
                ringattn_npy_free(&ba);
            }
            pol = o.baseline ? ringattn_compare_rule_policy(o.rule, pa.t.dtype, names[f], o.cfg.softcap > 0, 0)
                             : ringattn_compare_default_policy(pa.t.dtype);
            if (o.have_atol) pol.atol = o.atol;
            if (o.have_rtol) pol.rtol = o.rtol;
            if (o.have_k) pol.k = o.k;
            if (o.have_eps) pol.eps = o.eps;
            st = ringattn_compare(&pa.t, &ga.t, o.baseline ? &bt : NULL, &pol, &res, &c);
            free(bbuf); bbuf = NULL;
            compared++;
            if (st != RINGATTN_OK) {
                printf("member %d step %d: cannot compare %s: %s\n", R->member, R->step, pp, err);
                res.pass = 0; res.outside = -1; res.max_abs = NAN;
            }
            if (res.pass) { strcat(okl, " "); strcat(okl, names[f]); }
            else {
                size_t bl = strlen(badl);
                snprintf(badl + bl, sizeof badl - bl, " %s (max abs %.2e, %lld outside)", names[f], res.max_abs, (long long)res.outside);
                fails++;
                if (first < 0 || (first == x && !first_name[0])) {
                    first = x; first_res = res;
                    snprintf(first_name, sizeof first_name, "%s", names[f]);
                }
            }
            ringattn_npy_free(&ga); ringattn_npy_free(&pa);
        }
        nfail += fails > 0;
        printf("step %d  member %d  (chunk of member %d, %s)  %s%s%s%s%s%s\n", R->step, R->member, R->src,
               R->computed ? "computed" : "skipped", fails ? "FAIL:" : "ok:", fails ? badl : okl,
               fails && okl[0] ? "  ok:" : "", fails ? okl : "", missl[0] ? "  not in the port:" : "", missl);
    }
    manifest_free(&man); manifest_free(&bman);
    if (missing_pos) printf("(the port wrote no positions for %d of them: not checked)\n", missing_pos);
    if (compared == 0) { free(rows); return bad("the port directory has none of the goldens' files%s", ""); }
    if (first < 0) {
        printf("compare-steps: PASS, every (member, step) within the policy (%d arrays compared)\n", compared);
        free(rows);
        return EXIT_PASS;
    }
    {
        const steps_row *R = &rows[first]; int64_t nq = 0, nk = 0, *qp, *kp;
        char qs[256] = "?", ks[256] = "?";
        snprintf(gp, sizeof gp, "%s/member%d/positions_q.npy", pos[1], R->member);
        if ((qp = load_i64(gp, &nq))) format_positions(qp, nq, qs, sizeof qs);
        snprintf(gp, sizeof gp, "%s/member%d/positions_k_step%d.npy", pos[1], R->member, R->step);
        if ((kp = load_i64(gp, &nk))) format_positions(kp, nk, ks, sizeof ks);
        snprintf(first_where, sizeof first_where, "member %d, step %d (holding the K/V chunk of member %d; query positions %s; key positions %s)",
                 R->member, R->step, R->src, qs, ks);
        printf("\nfirst failure: %s\n", first_where);
        if (first_res.count > 0) {
            int dk = !strcmp(first_name, "dk") || !strcmp(first_name, "dv"), is_lse = strstr(first_name, "lse") != NULL;
            int64_t row = is_lse ? first_res.max_abs_at[2] : first_res.max_abs_at[1];
            printf("  %s (%s):\n", first_name, dk ? "rows: the chunk's keys, see positions_k_step<t>.npy"
                                                 : "rows in the member's order, see positions_q.npy");
            ringattn_compare_format(&first_res, is_lse ? "bhr." : dk ? "bkhd" : "brhd", report, sizeof report);
            fputs(report, stdout);
            where[0] = 0;
            if (!dk && qp && row >= 0 && row < nq) snprintf(where, sizeof where, "  the worst row, %lld, is query position %lld\n", (long long)row, (long long)qp[row]);
            if (dk && kp && row >= 0 && row < nk) snprintf(where, sizeof where, "  the worst key row, %lld, is key position %lld\n", (long long)row, (long long)kp[row]);
            fputs(where, stdout);
        }
        free(qp); free(kp);
        printf("compare-steps: FAIL, %d of %d (member, step) pairs outside; the first is (member %d, step %d)\n",
               nfail, n, R->member, R->step);
    }
    free(rows);
    return EXIT_OUTSIDE;
}

/* ---------------------------------------------------------------- trace and its picture */

typedef struct {
    int src, computed;
    int64_t rows, keys, tiles, visible;   /* visible: (row, key) pairs some head sees */
    int64_t *qpos, *kpos;
    int q_pieces, k_pieces; int64_t q_count[2], k_count[2];   /* how rows / keys are cut */
    unsigned short *seen;                 /* [rows][keys]: heads that see the pair     */
    int bad;
} trace_cell;

typedef struct { int p; int64_t heads; trace_cell *cell; } trace_ctx;

/* q = k = 0 and V one-hot over the keys: every visible key gets weight 1/count in the block's
   output, so block_out > 0 is exactly the engine's own visibility of that pair */
static void trace_on_event(const ringattn_trace_event *ev, void *user)
{
    trace_ctx *T = (trace_ctx *)user;
    trace_cell *C = &T->cell[ev->member * T->p + ev->step];
    double *o = (double *)malloc((size_t)(ev->batch * ev->rows * ev->heads * ev->dim_v + 1) * sizeof(double));
    ringattn_tensor O; int64_t r, j, hh;
    C->src = ev->src; C->computed = ev->computed; C->rows = ev->rows; C->keys = ev->keys; C->tiles = ev->tiles;
    C->q_pieces = ev->q_pieces; C->k_pieces = ev->k_pieces;
    C->q_count[0] = ev->q_count[0]; C->q_count[1] = ev->q_count[1];
    C->k_count[0] = ev->k_count[0]; C->k_count[1] = ev->k_count[1];
    C->qpos = (int64_t *)malloc((size_t)(ev->rows + 1) * sizeof(int64_t));
    C->kpos = (int64_t *)malloc((size_t)(ev->keys + 1) * sizeof(int64_t));
    C->seen = (unsigned short *)calloc((size_t)(ev->rows * ev->keys + 1), sizeof(unsigned short));
    if (!o || !C->qpos || !C->kpos || !C->seen) { C->bad = 1; free(o); return; }
    O = ringattn_tensor_bnhd(o, RINGATTN_F64, ev->batch, ev->rows, ev->heads, ev->dim_v);
    if (ringattn_trace_positions(ev, 0, C->qpos, ev->rows) != ev->rows ||
        ringattn_trace_positions(ev, 1, C->kpos, ev->keys) != ev->keys ||
        ringattn_trace_result(ev, 1, &O, NULL, NULL) != RINGATTN_OK) { C->bad = 1; free(o); return; }
    for (r = 0; r < ev->rows; r++)
        for (j = 0; j < ev->keys; j++) {
            int n = 0;
            for (hh = 0; hh < ev->heads; hh++) n += o[(r * ev->heads + hh) * ev->dim_v + C->kpos[j]] > 0;
            C->seen[r * ev->keys + j] = (unsigned short)n;
            C->visible += n > 0;
        }
    free(o);
}

static void trace_free(trace_ctx *T)
{
    int x;
    for (x = 0; x < T->p * T->p; x++) { free(T->cell[x].qpos); free(T->cell[x].kpos); free(T->cell[x].seen); }
    free(T->cell);
}

/* kind of a (member, step) block: 0 skipped, 1 every pair visible, 2 partly masked */
static int block_kind(const trace_cell *C, int64_t heads)
{
    int64_t x;
    if (!C->computed) return 0;
    for (x = 0; x < C->rows * C->keys; x++) if (C->seen[x] != heads) return 2;
    return 1;
}

/* The score tiles of a computed block, as the engine cuts them in dense attention: each pair
   of query / key pieces is its own run, cut into RINGATTN_TILE_Q x RINGATTN_TILE_K tiles.
   Coloured by what the engine does with each: dense, partly masked (the diagonal), or
   skipped without a multiply. */
static void draw_tiles(FILE *f, const trace_cell *C, int64_t H, double bx, double by, double uq, double uk)
{
    int a, c; int64_t qa = 0, r0, c0, r, j;
    for (a = 0; a < C->q_pieces; qa += C->q_count[a], a++) {
        int64_t ka = 0;
        for (c = 0; c < C->k_pieces; ka += C->k_count[c], c++)
            for (r0 = 0; r0 < C->q_count[a]; r0 += RINGATTN_TILE_Q)
                for (c0 = 0; c0 < C->k_count[c]; c0 += RINGATTN_TILE_K) {
                    int64_t r1 = r0 + RINGATTN_TILE_Q < C->q_count[a] ? r0 + RINGATTN_TILE_Q : C->q_count[a];
                    int64_t c1 = c0 + RINGATTN_TILE_K < C->k_count[c] ? c0 + RINGATTN_TILE_K : C->k_count[c];
                    int64_t n = 0, all = 0;
                    for (r = qa + r0; r < qa + r1; r++)
                        for (j = ka + c0; j < ka + c1; j++) { int s = C->seen[r * C->keys + j]; n += s > 0; all += s == H; }
                    fprintf(f, "<rect class=\"tile %s\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>\n",
                            n == 0 ? "tskip" : all == (r1 - r0) * (c1 - c0) ? "tfull" : "tpart",
                            bx + (ka + c0) * uk + 0.6, by + (qa + r0) * uq + 0.6, (c1 - c0) * uk - 1.2, (r1 - r0) * uq - 1.2);
                }
    }
}

static int write_ring_svg(const char *path, const trace_ctx *T, const options *o, int64_t nq, int64_t nk)
{
    const int p = T->p; const int64_t H = T->heads;
    const int fine = nq <= 64 && nk <= 64;          /* positions, or members x chunks */
    const int tiled = o->nseg == 0 && o->ncu_q == 0;   /* dense: the engine's tiles are known here */
    const double side = 220.0, gap = 34.0, left = 150.0, top = 74.0;
    double uq = side / (double)nq, uk = side / (double)nk, panel_w = side + gap, bars_x, W, Hh;
    int64_t *row0 = (int64_t *)calloc((size_t)p + 1, sizeof(int64_t)), *col0 = (int64_t *)calloc((size_t)p + 1, sizeof(int64_t));
    int64_t *work = (int64_t *)calloc((size_t)p, sizeof(int64_t)), wmax = 1;
    int i, t, kind; int64_t r, j; FILE *f;
    char qs[256];
    if (!row0 || !col0 || !work) { free(row0); free(col0); free(work); return -1; }
    /* rows of member i and keys of chunk c, from step 0 (member c holds its own chunk) */
    for (i = 0; i < p; i++) { row0[i + 1] = row0[i] + T->cell[i * p].rows; col0[i + 1] = col0[i] + T->cell[i * p].keys; }
    for (i = 0; i < p; i++) for (t = 0; t < p; t++) work[i] += T->cell[i * p + t].visible;
    for (i = 0; i < p; i++) if (work[i] > wmax) wmax = work[i];
    bars_x = left + p * panel_w + 10;
    W = bars_x + 190; Hh = top + side + 92;
    if (W < 1000) W = 1000;   /* room for the captions */
    f = fopen(path, "w");
    if (!f) { free(row0); free(col0); free(work); return -1; }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
               "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"11\">\n", W, Hh, W, Hh);
    fprintf(f, "<style>.computed{fill:#9ecae1;stroke:#3182bd}.partial{fill:#fdd0a2;stroke:#e6550d}"
               ".skipped{fill:#ffffff;stroke:#bdbdbd;stroke-dasharray:3,2}.pair{fill:#08519c}"
               ".grid{fill:none;stroke:#e0e0e0}.work{fill:#74c476}.lbl{fill:#444}"
               ".tfull{fill:#6baed6}.tpart{fill:#fd8d3c}.tskip{fill:#ffffff;opacity:0.8}</style>\n");
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">ring of %d, %s partition, causal %s", p,
            partition_name(o->cfg.partition), causal_name(o->cfg.causal));
    if (o->cfg.window_left >= 0 || o->cfg.window_right >= 0) fprintf(f, ", window %d,%d", o->cfg.window_left, o->cfg.window_right);
    if (o->nseg) {
        int g;
        fprintf(f, ", dilated (segments");
        for (g = 0; g < o->nseg; g++) fprintf(f, "%s%lld", g ? "," : " ", (long long)o->seg[g]);
        fprintf(f, "; rates");
        for (g = 0; g < o->nseg; g++) fprintf(f, "%s%lld", g ? "," : " ", (long long)o->rate[g]);
        fprintf(f, "; %lld heads)", (long long)H);
    }
    fprintf(f, ", nq = %lld, nk = %lld</text>\n", (long long)nq, (long long)nk);
    fprintf(f, "<text x=\"10\" y=\"38\" class=\"lbl\">each step: member i (rows, its queries) computes against the K/V chunk it holds "
               "(columns, by owner); %s</text>\n", fine ? "dark squares: the (query, key) pairs that are attended"
               : tiled ? "inside a block, its score tiles (dark blue: dense, dark orange: partly masked, white: skipped)"
               : "members x key chunks");
    for (t = 0; t < p; t++) {
        double x0 = left + t * panel_w;
        fprintf(f, "<g id=\"step%d\">\n<text x=\"%.1f\" y=\"%.1f\" font-weight=\"bold\">step %d</text>\n", t, x0, top - 8, t);
        for (i = 0; i < p; i++)   /* the grid: every member x every chunk */
            for (j = 0; j < p; j++)
                fprintf(f, "<rect class=\"grid\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>\n",
                        x0 + col0[j] * uk, top + row0[i] * uq, (col0[j + 1] - col0[j]) * uk, (row0[i + 1] - row0[i]) * uq);
        for (i = 0; i < p; i++) {
            const trace_cell *C = &T->cell[i * p + t];
            double bx = x0 + col0[C->src] * uk, by = top + row0[i] * uq, bw = C->keys * uk, bh = C->rows * uq;
            kind = block_kind(C, H);
            fprintf(f, "<rect class=\"block %s\" data-member=\"%d\" data-step=\"%d\" data-src=\"%d\" data-tiles=\"%lld\" "
                       "x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"><title>member %d, step %d: K/V of member %d, %s, %lld tile(s), %lld pair(s)</title></rect>\n",
                    kind == 0 ? "skipped" : kind == 1 ? "computed" : "partial", i, t, C->src, (long long)C->tiles,
                    bx, by, bw, bh, i, t, C->src, kind == 0 ? "skipped" : kind == 1 ? "every pair visible" : "partly masked",
                    (long long)C->tiles, (long long)C->visible);
            if (!fine && kind != 0 && tiled)
                draw_tiles(f, C, H, bx, by, uq, uk);
            if (fine && kind != 0)
                for (r = 0; r < C->rows; r++)
                    for (j = 0; j < C->keys; j++) {
                        int s = C->seen[r * C->keys + j];
                        if (!s) continue;
                        fprintf(f, "<rect class=\"pair\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"%s/>\n",
                                bx + j * uk + 0.5, by + r * uq + 0.5, uk - 1 > 0.5 ? uk - 1 : 0.5, uq - 1 > 0.5 ? uq - 1 : 0.5,
                                s == H ? "" : (s * 2 > H ? " opacity=\"0.65\"" : " opacity=\"0.35\""));
                    }
            if (bw >= 22 && bh >= 12)
                fprintf(f, "<rect class=\"tag\" x=\"%.1f\" y=\"%.1f\" width=\"11\" height=\"11\" fill=\"#ffffff\" opacity=\"0.9\"/>"
                           "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"9\" fill=\"#333\">%d</text>\n",
                        bx + bw - 12, by + 1, bx + bw - 6.5, by + 9.5, C->src);
        }
        fprintf(f, "</g>\n");
    }
    for (i = 0; i < p; i++) {   /* member labels: the positions each one holds */
        format_positions(T->cell[i * p].qpos, T->cell[i * p].rows, qs, sizeof qs);
        fprintf(f, "<text x=\"10\" y=\"%.1f\">member %d</text><text x=\"10\" y=\"%.1f\" class=\"lbl\" font-size=\"9\">q %s</text>\n",
                top + (row0[i] + row0[i + 1]) * uq / 2 - 1, i, top + (row0[i] + row0[i + 1]) * uq / 2 + 10, qs);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-weight=\"bold\">work per member</text>\n", bars_x, top - 8);
    for (i = 0; i < p; i++) {
        double y = top + row0[i] * uq + 2, h2 = (row0[i + 1] - row0[i]) * uq - 4;
        fprintf(f, "<rect class=\"work\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" font-size=\"9\">%lld</text>\n",
                bars_x, y, 130.0 * (double)work[i] / (double)wmax, h2 > 1 ? h2 : 1,
                bars_x + 130.0 * (double)work[i] / (double)wmax + 4, y + h2 / 2 + 3, (long long)work[i]);
    }
    {
        double ly = top + side + 26;
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"9\" class=\"lbl\">(attended pairs)</text>\n", bars_x, top + side + 12);
        fprintf(f, "<rect x=\"10\" y=\"%.1f\" width=\"14\" height=\"10\" style=\"fill:#9ecae1;stroke:#3182bd\"/><text x=\"30\" y=\"%.1f\">computed, every pair visible</text>\n", ly, ly + 9);
        fprintf(f, "<rect x=\"210\" y=\"%.1f\" width=\"14\" height=\"10\" style=\"fill:#fdd0a2;stroke:#e6550d\"/><text x=\"230\" y=\"%.1f\">computed, partly masked (the diagonal)</text>\n", ly, ly + 9);
        fprintf(f, "<rect x=\"480\" y=\"%.1f\" width=\"14\" height=\"10\" style=\"fill:#fff;stroke:#bdbdbd;stroke-dasharray:3,2\"/><text x=\"500\" y=\"%.1f\">skipped: never multiplied</text>\n", ly, ly + 9);
        fprintf(f, "<text x=\"10\" y=\"%.1f\" class=\"lbl\">the number at a block's corner: whose K/V chunk the member holds at that step; it passes to member i+1 after the step</text>\n", ly + 28);
    }
    fprintf(f, "</svg>\n");
    free(row0); free(col0); free(work);
    return fclose(f) ? -1 : 0;
}

static int cmd_trace(int argc, char **argv)
{
    options o; const char *pos[8]; int npos, rc, i, t, p;
    const char *svg = take_option(&argc, argv, "--svg"), *snq = take_option(&argc, argv, "--nq");
    const char *snk = take_option(&argc, argv, "--nk"), *sh = take_option(&argc, argv, "--heads");
    double x; int64_t nq, nk, H, j; trace_ctx T; results r;
    ringattn_tensor Q, K, V; double *q, *k, *v;
    if (wants_help(argc, argv)) return EXIT_PASS;
    if ((rc = parse_args(argc, argv, &o, pos, &npos))) return rc;
    if (npos) return bad("trace takes no files (it draws the ring without data): '%s'", pos[0]);
    if (!snq || parse_num(snq, &x) || x < 1 || x > 1e7) return bad("trace needs --nq N (N >= 1)%s", "");
    nq = (int64_t)x; nk = nq;
    if (snk && (parse_num(snk, &x) || x < 1 || x > 1e7)) return bad("bad --nk '%s'", snk);
    if (snk) nk = (int64_t)x;
    H = o.nseg > 0 ? o.nseg : 1;
    if (sh && (parse_num(sh, &x) || x < 1 || x > 4096)) return bad("bad --heads '%s'", sh);
    if (sh) H = (int64_t)x;
    if (svg && !svg[0]) return bad("--svg needs a file name%s", "");
    if ((double)nk * (double)nk * (double)H > 16777216.0 || (double)nq * (double)nk * (double)H > 16777216.0)
        return bad("trace draws at most nq * nk * heads = 2^24 pairs%s", "");
    p = o.cfg.ring_size;
    q = (double *)calloc((size_t)(nq * H), sizeof(double));
    k = (double *)calloc((size_t)(nk * H), sizeof(double));
    v = (double *)calloc((size_t)(nk * H * nk), sizeof(double));
    T.p = p; T.heads = H; T.cell = (trace_cell *)calloc((size_t)p * (size_t)p, sizeof(trace_cell));
    if (!q || !k || !v || !T.cell) { free(q); free(k); free(v); free(T.cell); return bad("out of memory%s", ""); }
    for (j = 0; j < nk; j++) { int64_t hh; for (hh = 0; hh < H; hh++) v[(j * H + hh) * nk + j] = 1.0; }
    Q = ringattn_tensor_bnhd(q, RINGATTN_F64, 1, nq, H, 1);
    K = ringattn_tensor_bnhd(k, RINGATTN_F64, 1, nk, H, 1);
    V = ringattn_tensor_bnhd(v, RINGATTN_F64, 1, nk, H, nk);
    o.cfg.trace = trace_on_event; o.cfg.trace_user = &T; o.cfg.trace_blocks = 1; o.cfg.scale = 1.0;
    rc = run(&o.cfg, RINGATTN_F64, &Q, &K, &V, NULL, &r) ? EXIT_BAD : EXIT_PASS;
    if (rc == EXIT_PASS) results_free(&r);
    for (i = 0; rc == EXIT_PASS && i < p * p; i++) if (T.cell[i].bad) rc = bad("out of memory%s", "");
    if (rc == EXIT_PASS) {
        printf("ring of %d, %s partition, causal %s, nq = %lld, nk = %lld, %lld head(s)\n", p,
               partition_name(o.cfg.partition), causal_name(o.cfg.causal), (long long)nq, (long long)nk, (long long)H);
        for (t = 0; t < p; t++) {
            printf("step %d:", t);
            for (i = 0; i < p; i++) {
                const trace_cell *C = &T.cell[i * p + t]; int kind = block_kind(C, H);
                printf("  m%d<-%d %s", i, C->src, kind == 0 ? "skipped" : kind == 1 ? "full" : "partial");
            }
            printf("\n");
        }
        if (svg) {
            if (write_ring_svg(svg, &T, &o, nq, nk)) rc = bad("cannot write %s", svg);
            else printf("wrote %s\n", svg);
        }
    }
    trace_free(&T); free(q); free(k); free(v);
    return rc;
}

/* ---------------------------------------------------------------- compare --heatmap */

/* `compare ... --heatmap FILE`: what the file shows is named by --what or by REF's file name */
static int compare_heatmap(const char *path, const ringattn_tensor *got, const ringattn_tensor *ref,
                           const ringattn_compare_result *res, const options *o, const char *refname, const char *gotname)
{
    char what[64]; const char *s = strrchr(refname, '/'); size_t n;
    if (o->what) snprintf(what, sizeof what, "%s", o->what);
    else {
        s = s ? s + 1 : refname; n = strlen(s);
        if (n > 4 && !strcmp(s + n - 4, ".npy")) n -= 4;
        if (n >= sizeof what) n = sizeof what - 1;
        memcpy(what, s, n); what[n] = 0;
    }
    {   /* the title names GOT by its last two path components: the picture does not depend on
           where the files live */
        const char *g = gotname + strlen(gotname); int slashes = 0;
        while (g > gotname && !(g[-1] == '/' && ++slashes == 2)) g--;
        gotname = g;
    }
    if (write_heatmap(path, got, ref, res, o->cfg.ring_size, o->cfg.partition, what, gotname)) {
        fprintf(stderr, "ringattn-golden: cannot write %s\n", path);
        return -1;
    }
    printf("wrote %s\n", path);
    return 0;
}
