/* ringattn-golden - reference outputs and verdicts for attention kernels, from .npy files.

   The workflow of checking a GPU port: dump q, k, v (and dout) from the kernel under test,
   let ringattn compute the reference (`compute`), and compare the kernel's outputs with it
   (`compare`): how wrong, where, and a verdict with an exit status a script can use.

   Build: Meson builds it as build/tools/ringattn-golden; by hand:
       cc -std=c99 -O2 -I. tools/ringattn_golden.c -lm -o ringattn-golden
   Run `ringattn-golden --help` for everything it does. */
#define _POSIX_C_SOURCE 200809L   /* mkdir, for `steps` (golden_steps.c) */
#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"

#include <errno.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(_WIN32)
#include <direct.h>
#define MAKE_DIR(p) _mkdir(p)
#else
#include <sys/stat.h>
#define MAKE_DIR(p) mkdir((p), 0777)
#endif

#define EXIT_PASS 0
#define EXIT_OUTSIDE 1
#define EXIT_BAD 2
#define MAX_GROUPS 64
/* compute writes the options it used next to its outputs; compare --baseline-from reads them */
#define OPTIONS_FILE "ringattn_options.txt"

/* in parts: ISO C99 only promises string literals of 4095 characters */
static const char *const usage[5] = {
"usage: ringattn-golden compute [options] Q.npy K.npy V.npy [DOUT.npy]\n"
"       ringattn-golden compute-kvcache [options] Q.npy K_CACHE.npy V_CACHE.npy [K_NEW.npy V_NEW.npy]\n"
"       ringattn-golden compare [options] GOT.npy REF.npy\n"
"       ringattn-golden steps | compare-steps | trace ...   (the ring step by step; below)\n"
"       ringattn-golden --help\n"
"\n"
"compute: the exact attention of Q, K, V with ringattn (ring attention, online softmax;\n"
"  dilated LongNet attention with --segments/--dilations) and, when DOUT.npy is given, its\n"
"  gradients. Writes into --out-dir:\n"
"    out.npy  [b, nq, h, dv]     lse.npy  (b, h, nq): natural-log sum exp of the scaled\n"
"                                scores over the visible keys, -inf for a row that sees none\n"
"    dq.npy [b, nq, h, d]   dk.npy [b, nk, hk, d]   dv.npy [b, nk, hk, dv]   (with DOUT.npy)\n"
"  Inputs are 4-D arrays [batch, seq, heads, dim] (PyTorch SDPA's [b, h, n, d] transposed:\n"
"  x.transpose(1, 2)); hk (k/v heads) must divide h (GQA/MQA).\n"
"  options:\n"
"    -o, --out-dir DIR        where to write (default: .; created when missing), with\n"
"                             " OPTIONS_FILE ", the options below that shape the result\n"
"                             and a manifest: every file written, with its size and FNV-1a\n"
"                             64 hash. Files are staged as NAME.partial and renamed in\n"
"                             together; the earlier run's files this run does not write are\n"
"                             removed. A file no earlier run listed is not replaced (exit 2)\n"
"    --force                  ... unless --force\n"
"    --causal MODE            none (default), bottom-right (FlashAttention-2: key j visible to\n"
"                             query i iff j <= i + nk - nq), top-left (PyTorch SDPA is_causal:\n"
"                             j <= i); the two agree when nq == nk\n"
"    --scale S                score scale (default 0 = 1/sqrt(d))\n"
"    --ring P                 ring members (default 1; the result is the same for every P,\n"
"                             up to rounding)\n"
"    --threads T              OpenMP threads (default 0 = OpenMP's default)\n"
"    --compute f32|f64        arithmetic precision (default f64)\n"
"    --dtype f64|f32|f16|bf16 storage of the outputs (default f64; --out-dtype is the same)\n"
"    --segments S0,S1,...     dilated attention: segment length of each group ...\n"
"    --dilations R0,R1,...    ... and its dilation rate (same count; n a multiple of each S)\n"
"    --mix head-groups|lse    how dilated groups combine (default head-groups, LongNet as in\n"
"                             fkodom/DarcStar: heads split into groups, output / G; lse: the\n"
"                             paper's Eq. 10 softmax-denominator mix)\n"
"    --window L,R             sliding window (-1 = unbounded), dense attention only:\n"
"                             query i sees key j iff i+off-L <= j <= i+off+R, off = nk - nq\n"
"                             (0 with --causal top-left)\n"
"    --partition MODE         how the ring deals positions to members: contiguous (default),\n"
"                             zigzag (chunks i and 2P-1-i of 2P, ring-flash-attn; P <= n/2)\n"
"                             or striped (positions i, i+P, ...; not with --segments); the\n"
"                             same result up to rounding\n"
"    --softcap C              logits become C*tanh(logit/C) (Gemma 2 / FlashAttention;\n"
"                             default 0 = off)\n"
"    --cu-seqlens-q A,B,...   varlen (batch 1): sequences packed along the token axis, with\n"
"    --cu-seqlens-k A,B,...   cumulative lengths as in FlashAttention's varlen API (0 first,\n"
"                             nq / nk last, same count); no attention across sequences, causal\n"
"                             and window aligned per sequence (off = nk_s - nq_s)\n"
"\n",
"compare: GOT against REF, element by element (any of the .npy dtypes below, same shape).\n"
"  Prints the max absolute and relative errors with their positions, the NaN/Inf mismatches\n"
"  (a NaN or Inf on one side only always fails; NaN = NaN and equal infinities agree, e.g.\n"
"  lse = -inf of empty rows), the count outside tolerance, the first mismatches, a verdict.\n"
"  Policies:\n"
"    (a) default:  |got - ref| <= atol + rtol * |ref| for every element\n"
"    (b) with --baseline or --baseline-from: GOT judged against the error of a baseline, the\n"
"        same case computed in the port's precision, by --policy (docs/golden.md):\n"
"        fa2 (default) |got - ref| <= k E + eps, E = max(max|baseline - ref|, other orders'\n"
"        error, one ulp of GOT's dtype at max|ref|); fa3 adds 2 max|(ref+0.3-0.3) - ref|;\n"
"        magi also bounds the fraction outside atol + rtol |ref|; flex bounds the mean error;\n"
"        te is policy (a) with TransformerEngine's fixed tolerances\n"
"  options:\n"
"    --atol A, --rtol R       policy (a) (defaults by GOT's dtype, as torch.testing:\n"
"                             f64 1e-7/1e-7, f32 1e-5/1.3e-6, f16 1e-5/1e-3, bf16 1e-5/1.6e-2)\n"
"    --baseline BASE.npy      policy (b) with this baseline\n"
"    --baseline-from DIR      policy (b), the baseline computed here in the port's precision\n"
"                             (--precision; f32 products, P rounded to it, stored as GOT;\n"
"                             also as a ring of 2 and eagerly) from DIR/q.npy, k.npy, v.npy\n"
"                             (and dout.npy for gradients), with the options `compute` used\n"
"                             for REF (read from " OPTIONS_FILE " next to REF; an\n"
"                             explicit --causal, --scale, ... that disagrees is an error), or,\n"
"                             for a REF not written by compute, the compute options given\n"
"                             here (--causal, --scale, --segments, --window, --softcap, ...)\n"
"                             A REF with an " OPTIONS_FILE " beside it is trusted only as its\n"
"                             manifest lists it, bytes unchanged (exit 2 otherwise)\n"
"    --what out|lse|dq|dk|dv  which output REF is (default: REF's file name, e.g. dq.npy)\n"
"    --precision auto|f32|bf16|f16|e4m3|e5m2  the port's (auto: DIR/q.npy's if low, else\n"
"                             GOT's if so, else f32)\n"
"    --policy fa2|fa3|magi|flex|te  as above; its k, eps (and magi's rtol) by tensor and dtype\n"
"    --k K, --eps E           override the policy's k and eps\n"
"    --empty-lse CONV         what GOT's lse holds for a row that sees no key (REF: -inf):\n"
"                             -inf (default, ringattn), +inf (FlashAttention-2/3), 0 (PyTorch's\n"
"                             CPU flash kernel) or any (not judged)\n"
"    --axes XXXX              names of the 4 indices in the report (default bnhd; bhn. for\n"
"                             3-D arrays such as lse, hn.. for FlashAttention's varlen lse)\n"
"  FlashAttention's varlen lse (h, total_q) is compared with compute's (1, h, total_q).\n"
"    -q, --quiet              print the verdict line only\n"
"    --heatmap FILE.svg       draw the error over (position, head) (see heatmap below)\n"
"  exit status: 0 within tolerance, 1 outside, 2 bad input (unreadable or malformed file,\n"
"  shapes that differ, bad options)\n"
"\n"
".npy conventions: versions 1.0-3.0 read (1.0 written); little or big endian; C or Fortran\n"
"order; dtypes <f2 <f4 <f8, and bf16 as its raw bits in <u2 (PyTorch:\n"
"t.view(torch.int16).numpy().view(np.uint16)); arrays of rank <= 4, a rank-3 array (lse) read\n"
"as [b, h, n, 1]. Outputs are written little-endian in C order.\n"
"\n",
"Precision emulation (compute, steps; a low-precision kernel's rounding points, docs/golden.md;\n"
"  T one of f64 f32 f16 bf16 e4m3 e5m2):\n"
"    --fp8 e4m3|e5m2          how fp8 inputs (raw bytes in |u1 .npy files) are read (e4m3)\n"
"    --p-dtype T              P rounded to T before P V (and P, dS in the backward)\n"
"    --round-scores           with --p-dtype: the scores and dP rounded to it too (eager)\n"
"    --block-dtype T          each ring step's block alone, its out held in T, then merged\n"
"    --state-dtype T          the running out held in T between ring steps (lse in f32)\n"
"\n"
"Refused (exit 2, with a sentence): combinations not implemented or not defined\n"
"  --segments with --partition striped, with --window, or with --cu-seqlens-q/-k;\n"
"  --segments when nq != nk, or when n is not a multiple of every segment length;\n"
"  --ring P above min(nq, nk), or above min(nq, nk) / 2 with --partition zigzag;\n"
"  k/v heads that do not divide the q heads; --cu-seqlens with batch > 1, lists not\n"
"  starting at 0, decreasing, or not ending at nq / nk;\n"
"  compare: --baseline with --baseline-from; a compute option that disagrees with\n"
"  REF's " OPTIONS_FILE "; shapes that differ.\n"
"Accepted and defined: dilation with fewer heads than groups (h < G, head-groups mix):\n"
"  groups g >= h get no head and the output is still divided by G (DarcStar refuses it).\n"
"\n",
"Score options (compute, steps, compare --baseline-from; dense attention only, docs/semantics.md).\n"
"  The final score is softcap(scale q.k) + bias[b][h][i][j] - slope |i + nk - nq - j|, over the\n"
"  keys every mask allows. Each FILE is a .npy; paths are recorded as given:\n"
"    --sinks FILE             h logits (any float dtype), one per q head: exp(sink) joins each\n"
"                             row's softmax denominator (gpt-oss); lse includes it\n"
"    --alibi FILE             ALiBi slopes: h of them, or (b, h)\n"
"    --bias FILE              an additive bias (b|1, h|1, nq, nk), any float dtype; fewer\n"
"                             dimensions broadcast from the left as in NumPy: (nq, nk) is\n"
"                             (1, 1, nq, nk)\n"
"    --mask FILE              a bool mask ('|b1', True = may attend), shaped as --bias\n"
"    --document-ids FILE      nq document ids (a float .npy of integers: NumPy has no int64\n"
"                             reader here; ids.astype(np.float64)): a query sees only keys of\n"
"                             its own document; the keys' ids are the same file (nq == nk) ...\n"
"    --document-ids-k FILE    ... or these nk ids\n"
"    --max-logit              compute also writes max_logit.npy (b, h, nq): each row's largest\n"
"                             final score over the keys it sees (-inf for none; not the sink)\n"
"  With DOUT.npy, compute also writes dsinks.npy (h) with --sinks and dbias.npy (the bias\n"
"  file's shape, summed over its broadcast axes) with --bias, stored as --dtype.\n"
"  compare --what takes max_logit, dsinks and dbias too. Refused (exit 2): a file whose\n"
"  count or shape does not fit q, k (sinks not h, ids not nq / nk, a mask not bool, shapes\n"
"  that do not broadcast), --document-ids-k without --document-ids, any of them with\n"
"  --segments.\n"
"\n",
"compute-kvcache: queries against a KV cache as decoding kernels read it (ringattn_forward_kvcache;\n"
"  docs/golden.md). K_CACHE, V_CACHE are [b_cache, n_cache, hk, d|dv] (sequence bb is row bb), or\n"
"  with --block-table paged [num_blocks, page_size, hk, d|dv]; K_NEW, V_NEW [b, n_new, hk, d|dv]\n"
"  are keys appended after each sequence's cached ones (the cache's dtype). Sequence bb has\n"
"  L = cache_seqlens[bb] + n_new keys; query i of nq sits at position i + L - nq. Writes into\n"
"  --out-dir out.npy [b, nq, h, dv] and lse.npy (b, h, nq), as compute does (options file,\n"
"  manifest, staged files renamed together).\n"
"    --cache-seqlens FILE     b keys cached per sequence: an int32 .npy ('<i4', np.int32;\n"
"                             '<i8' read too), required\n"
"    --block-table FILE       int32 (b, max_blocks): key j of sequence bb is slot j % page_size\n"
"                             of block table[bb][j / page_size]; only the entries used are read\n"
"    --num-splits S           split-KV: each sequence's keys in S splits of ceil(L / S) keys\n"
"    --split-size C           ... or in splits of C keys (FlashInfer's chunks)\n"
"    --splits                 also write every split's partial: split_000_out.npy,\n"
"                             split_000_lse.npy, ... (out normalised within the split, lse its\n"
"                             log-sum-exp; no sink; an empty split is 0 and -inf)\n"
"  and --causal (bottom-right aligns at L - nq), --window, --softcap, --scale, --sinks, --alibi,\n"
"  --compute, --dtype / --out-dtype, --threads, --fp8, the precision emulation. Refused (exit 2,\n"
"  with the library's sentence): --ring above 1, --segments, --cu-seqlens, --bias, --mask,\n"
"  --document-ids, --max-logit, DOUT.npy; a block outside the cache, a cache_seqlens beyond\n"
"  the table row or the cache, shapes or dtypes that disagree. compare --baseline-from does not\n"
"  take a folder compute-kvcache wrote (compare it with --atol / --rtol).\n"
};

static void print_usage(FILE *f)
{
    fputs(usage[0], f);
    fputs(usage[1], f);
    fputs(usage[2], f);
    fputs(usage[3], f);
    fputs(usage[4], f);
}

typedef struct {
    const char *out_dir;
    ringattn_config cfg;
    ringattn_dtype dtype;
    int64_t seg[MAX_GROUPS], rate[MAX_GROUPS];
    int nseg, nrate;
    int64_t cu_q[MAX_GROUPS], cu_k[MAX_GROUPS];
    int ncu_q, ncu_k;
    /* compare */
    double atol, rtol, k, eps;
    int have_atol, have_rtol, have_k, have_eps;
    const char *baseline, *baseline_from, *what, *axes;
    int quiet, empty_lse, force;
    int rule;                /* --policy: RINGATTN_RULE_* */
    ringattn_dtype fp8;      /* --fp8: how |u1 inputs are read (RINGATTN_FP8_E4M3 / _E5M2) */
    int precision;           /* --precision: -1 auto, else the ringattn_dtype of the port */
    unsigned given;          /* GIVEN_* bits: result-shaping options set on the command line */
    /* the score options' files (paths copied: a recorded options file is freed after parsing),
       "" = not given, and what load_score_options made of them */
    char sinks_path[1024], alibi_path[1024], bias_path[1024], mask_path[1024], docs_path[1024], docs_k_path[1024];
    int max_logit;           /* --max-logit: compute writes max_logit.npy */
    /* compute-kvcache: its int32 files, the splits, and --splits (write the partials) */
    char seqlens_path[1024], table_path[1024];
    int64_t num_splits, split_size;
    int write_splits;
    ringattn_npy_array bias_arr, mask_arr;
    ringattn_tensor bias_t, mask_t;
    int bias_rank;
    double *sinks_buf, *alibi_buf;
    int64_t *docq_buf, *dock_buf;
} options;

/* The options that shape the result, as compute records them and compare checks them. */
enum { GIVEN_CAUSAL = 1, GIVEN_SCALE = 2, GIVEN_SOFTCAP = 4, GIVEN_WINDOW = 8, GIVEN_MIX = 16,
       GIVEN_SEGMENTS = 32, GIVEN_DILATIONS = 64, GIVEN_CU_Q = 128, GIVEN_CU_K = 256, GIVEN_FP8 = 512,
       GIVEN_SINKS = 1024, GIVEN_ALIBI = 2048, GIVEN_BIAS = 4096, GIVEN_MASK = 8192, GIVEN_DOCS = 16384,
       GIVEN_DOCS_K = 32768, GIVEN_SEQLENS = 65536, GIVEN_TABLE = 131072, GIVEN_NSPLITS = 262144,
       GIVEN_SPLIT_SIZE = 524288 };
/* the options only compute-kvcache takes */
#define GIVEN_KVCACHE (GIVEN_SEQLENS | GIVEN_TABLE | GIVEN_NSPLITS | GIVEN_SPLIT_SIZE)
static const struct { unsigned bit; const char *name; } recorded[] = {
    { GIVEN_CAUSAL, "--causal" }, { GIVEN_SCALE, "--scale" }, { GIVEN_SOFTCAP, "--softcap" },
    { GIVEN_WINDOW, "--window" }, { GIVEN_MIX, "--mix" }, { GIVEN_SEGMENTS, "--segments" },
    { GIVEN_DILATIONS, "--dilations" }, { GIVEN_CU_Q, "--cu-seqlens-q" }, { GIVEN_CU_K, "--cu-seqlens-k" },
    { GIVEN_FP8, "--fp8" }, { GIVEN_SINKS, "--sinks" }, { GIVEN_ALIBI, "--alibi" }, { GIVEN_BIAS, "--bias" },
    { GIVEN_MASK, "--mask" }, { GIVEN_DOCS, "--document-ids" }, { GIVEN_DOCS_K, "--document-ids-k" },
    { GIVEN_SEQLENS, "--cache-seqlens" }, { GIVEN_TABLE, "--block-table" }, { GIVEN_NSPLITS, "--num-splits" },
    { GIVEN_SPLIT_SIZE, "--split-size" }
};
#define NRECORDED ((int)(sizeof recorded / sizeof recorded[0]))

static unsigned given_bit(const char *name)
{
    int i;
    for (i = 0; i < NRECORDED; i++)
        if (!strcmp(name, recorded[i].name)) return recorded[i].bit;
    return 0;
}

static int bad(const char *fmt, const char *a)
{
    fprintf(stderr, "ringattn-golden: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n(ringattn-golden --help for usage)\n");
    return EXIT_BAD;
}

static int parse_list(const char *s, int64_t *out, int *n)
{
    char *end;
    *n = 0;
    for (;;) {
        long long v = strtoll(s, &end, 10);
        if (end == s || *n == MAX_GROUPS) return -1;
        out[(*n)++] = v;
        if (*end == 0) return 0;
        if (*end != ',') return -1;
        s = end + 1;
    }
}

static int parse_num(const char *s, double *v)
{
    char *end;
    *v = strtod(s, &end);
    return (end == s || *end) ? -1 : 0;
}

static int parse_dtype(const char *s, ringattn_dtype *t)
{
    if (!strcmp(s, "f32")) *t = RINGATTN_F32;
    else if (!strcmp(s, "f64")) *t = RINGATTN_F64;
    else if (!strcmp(s, "f16")) *t = RINGATTN_F16;
    else if (!strcmp(s, "bf16")) *t = RINGATTN_BF16;
    else if (!strcmp(s, "e4m3")) *t = RINGATTN_FP8_E4M3;
    else if (!strcmp(s, "e5m2")) *t = RINGATTN_FP8_E5M2;
    else return -1;
    return 0;
}

/* options common to both commands; positional arguments collected in pos[] */
static int parse_args(int argc, char **argv, options *o, const char **pos, int *npos)
{
    int i;
    memset(o, 0, sizeof *o);
    o->out_dir = ".";
    o->cfg = ringattn_default_config();
    o->cfg.ring_size = 1;
    o->cfg.compute = RINGATTN_F64;
    o->dtype = RINGATTN_F64;
    o->precision = -1;
    o->fp8 = RINGATTN_FP8_E4M3;
    *npos = 0;
    for (i = 2; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        char name[64];
        double x;
        if (a[0] != '-' || a[1] == 0) { if (*npos < 8) pos[(*npos)++] = a; else return bad("too many files", ""); continue; }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) { o->quiet = 1; continue; }
        if (!strcmp(a, "--round-scores")) { o->cfg.round_s = 1; continue; }
        if (!strcmp(a, "--force")) { o->force = 1; continue; }
        if (!strcmp(a, "--max-logit")) { o->max_logit = 1; continue; }
        if (!strcmp(a, "--splits")) { o->write_splits = 1; continue; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { print_usage(stdout); exit(EXIT_PASS); }
        if (strncmp(a, "--", 2) == 0 && strchr(a, '=')) {   /* --opt=value */
            size_t n = (size_t)(strchr(a, '=') - a);
            if (n >= sizeof name) return bad("unknown option %s", a);
            memcpy(name, a, n); name[n] = 0; v = strchr(a, '=') + 1; a = name;
        } else {
            if (i + 1 >= argc) return bad("option %s needs a value", a);
            v = argv[++i];
        }
        if (!strcmp(a, "-o") || !strcmp(a, "--out-dir")) o->out_dir = v;
        else if (!strcmp(a, "--causal")) {
            if (!strcmp(v, "none")) o->cfg.causal = RINGATTN_CAUSAL_NONE;
            else if (!strcmp(v, "bottom-right")) o->cfg.causal = RINGATTN_CAUSAL_BOTTOM_RIGHT;
            else if (!strcmp(v, "top-left")) o->cfg.causal = RINGATTN_CAUSAL_TOP_LEFT;
            else return bad("--causal takes none, bottom-right or top-left, not '%s'", v);
        }
        else if (!strcmp(a, "--scale")) { if (parse_num(v, &o->cfg.scale)) return bad("bad --scale '%s'", v); }
        else if (!strcmp(a, "--ring")) { if (parse_num(v, &x) || x < 1 || x > 1e6) return bad("bad --ring '%s'", v); o->cfg.ring_size = (int)x; }
        else if (!strcmp(a, "--threads")) { if (parse_num(v, &x) || x < 0 || x > 1e4) return bad("bad --threads '%s'", v); o->cfg.num_threads = (int)x; }
        else if (!strcmp(a, "--compute")) {
            if (parse_dtype(v, &o->cfg.compute) || (o->cfg.compute != RINGATTN_F32 && o->cfg.compute != RINGATTN_F64))
                return bad("--compute takes f32 or f64, not '%s'", v);
        }
        else if (!strcmp(a, "--dtype") || !strcmp(a, "--out-dtype")) { if (parse_dtype(v, &o->dtype)) return bad("--dtype takes f64, f32, f16, bf16, e4m3 or e5m2, not '%s'", v); }
        else if (!strcmp(a, "--segments")) { if (parse_list(v, o->seg, &o->nseg)) return bad("bad --segments '%s'", v); }
        else if (!strcmp(a, "--dilations")) { if (parse_list(v, o->rate, &o->nrate)) return bad("bad --dilations '%s'", v); }
        else if (!strcmp(a, "--mix")) {
            if (!strcmp(v, "head-groups")) o->cfg.mix = RINGATTN_MIX_HEAD_GROUPS;
            else if (!strcmp(v, "lse")) o->cfg.mix = RINGATTN_MIX_LSE;
            else return bad("--mix takes head-groups or lse, not '%s'", v);
        }
        else if (!strcmp(a, "--window")) {
            int64_t w[MAX_GROUPS]; int n;
            if (parse_list(v, w, &n) || n != 2 || w[0] < -1 || w[1] < -1 || w[0] > 2147483647 || w[1] > 2147483647)
                return bad("--window takes L,R (each -1 or more), not '%s'", v);
            o->cfg.window_left = (int)w[0]; o->cfg.window_right = (int)w[1];
        }
        else if (!strcmp(a, "--partition")) {
            if (!strcmp(v, "contiguous")) o->cfg.partition = RINGATTN_CONTIGUOUS;
            else if (!strcmp(v, "zigzag")) o->cfg.partition = RINGATTN_ZIGZAG;
            else if (!strcmp(v, "striped")) o->cfg.partition = RINGATTN_STRIPED;
            else return bad("--partition takes contiguous, zigzag or striped, not '%s'", v);
        }
        else if (!strcmp(a, "--softcap")) {
            if (parse_num(v, &o->cfg.softcap) || !(o->cfg.softcap >= 0) || o->cfg.softcap > 1e300)
                return bad("--softcap takes a finite C >= 0, not '%s'", v);
        }
        else if (!strcmp(a, "--cu-seqlens-q")) {
            if (parse_list(v, o->cu_q, &o->ncu_q) || o->ncu_q < 2) return bad("bad --cu-seqlens-q '%s' (0,a,b,...,nq)", v);
        }
        else if (!strcmp(a, "--cu-seqlens-k")) {
            if (parse_list(v, o->cu_k, &o->ncu_k) || o->ncu_k < 2) return bad("bad --cu-seqlens-k '%s' (0,a,b,...,nk)", v);
        }
        else if (!strcmp(a, "--sinks") || !strcmp(a, "--alibi") || !strcmp(a, "--bias") || !strcmp(a, "--mask") ||
                 !strcmp(a, "--document-ids") || !strcmp(a, "--document-ids-k")) {
            char *dst = !strcmp(a, "--sinks") ? o->sinks_path : !strcmp(a, "--alibi") ? o->alibi_path
                      : !strcmp(a, "--bias") ? o->bias_path : !strcmp(a, "--mask") ? o->mask_path
                      : !strcmp(a, "--document-ids") ? o->docs_path : o->docs_k_path;
            if (!v[0] || strlen(v) >= sizeof o->sinks_path) return bad("%s needs a .npy path (under 1024 bytes)", a);
            strcpy(dst, v);
        }
        else if (!strcmp(a, "--cache-seqlens") || !strcmp(a, "--block-table")) {
            char *dst = !strcmp(a, "--cache-seqlens") ? o->seqlens_path : o->table_path;
            if (!v[0] || strlen(v) >= sizeof o->seqlens_path) return bad("%s needs a .npy path (under 1024 bytes)", a);
            strcpy(dst, v);
        }
        else if (!strcmp(a, "--num-splits") || !strcmp(a, "--split-size")) {
            if (parse_num(v, &x) || x < 0 || x > 1e15 || x != floor(x)) return bad("bad --num-splits / --split-size '%s' (an integer >= 0)", v);
            if (!strcmp(a, "--num-splits")) o->num_splits = (int64_t)x; else o->split_size = (int64_t)x;
        }
        else if (!strcmp(a, "--atol")) { if (parse_num(v, &o->atol) || o->atol < 0) return bad("bad --atol '%s'", v); o->have_atol = 1; }
        else if (!strcmp(a, "--rtol")) { if (parse_num(v, &o->rtol) || o->rtol < 0) return bad("bad --rtol '%s'", v); o->have_rtol = 1; }
        else if (!strcmp(a, "--k")) { if (parse_num(v, &o->k) || o->k < 0) return bad("bad --k '%s'", v); o->have_k = 1; }
        else if (!strcmp(a, "--eps")) { if (parse_num(v, &o->eps) || o->eps < 0) return bad("bad --eps '%s'", v); o->have_eps = 1; }
        else if (!strcmp(a, "--p-dtype")) {
            if (parse_dtype(v, &o->cfg.p_dtype)) return bad("--p-dtype takes f64, f32, f16, bf16, e4m3 or e5m2, not '%s'", v);
            o->cfg.round_p = 1;
        }
        else if (!strcmp(a, "--block-dtype")) {
            if (parse_dtype(v, &o->cfg.block_dtype)) return bad("--block-dtype takes f64, f32, f16, bf16, e4m3 or e5m2, not '%s'", v);
            o->cfg.round_block = 1;
        }
        else if (!strcmp(a, "--state-dtype")) {
            if (parse_dtype(v, &o->cfg.state_dtype)) return bad("--state-dtype takes f64, f32, f16, bf16, e4m3 or e5m2, not '%s'", v);
            o->cfg.round_state = 1;
        }
        else if (!strcmp(a, "--fp8")) {
            if (!strcmp(v, "e4m3")) o->fp8 = RINGATTN_FP8_E4M3;
            else if (!strcmp(v, "e5m2")) o->fp8 = RINGATTN_FP8_E5M2;
            else return bad("--fp8 takes e4m3 or e5m2, not '%s'", v);
        }
        else if (!strcmp(a, "--precision")) {
            ringattn_dtype t;
            if (!strcmp(v, "auto")) o->precision = -1;
            else if (parse_dtype(v, &t) || t == RINGATTN_F64) return bad("--precision takes auto, f32, f16, bf16, e4m3 or e5m2, not '%s'", v);
            else o->precision = (int)t;
        }
        else if (!strcmp(a, "--policy")) {
            if (!strcmp(v, "fa2")) o->rule = RINGATTN_RULE_FA2;
            else if (!strcmp(v, "fa3")) o->rule = RINGATTN_RULE_FA3;
            else if (!strcmp(v, "magi")) o->rule = RINGATTN_RULE_MAGI;
            else if (!strcmp(v, "flex")) o->rule = RINGATTN_RULE_FLEX;
            else if (!strcmp(v, "te")) o->rule = RINGATTN_RULE_TE;
            else return bad("--policy takes fa2, fa3, magi, flex or te, not '%s'", v);
        }
        else if (!strcmp(a, "--baseline")) o->baseline = v;
        else if (!strcmp(a, "--baseline-from")) o->baseline_from = v;
        else if (!strcmp(a, "--what")) o->what = v;
        else if (!strcmp(a, "--axes")) { if (strlen(v) != 4) return bad("--axes takes 4 characters, not '%s'", v); o->axes = v; }
        else if (!strcmp(a, "--empty-lse")) {
            if (!strcmp(v, "-inf")) o->empty_lse = RINGATTN_EMPTY_LSE_NEG_INF;
            else if (!strcmp(v, "+inf") || !strcmp(v, "inf")) o->empty_lse = RINGATTN_EMPTY_LSE_POS_INF;
            else if (!strcmp(v, "0")) o->empty_lse = RINGATTN_EMPTY_LSE_ZERO;
            else if (!strcmp(v, "any")) o->empty_lse = RINGATTN_EMPTY_LSE_ANY;
            else return bad("--empty-lse takes -inf, +inf, 0 or any, not '%s'", v);
        }
        else return bad("unknown option %s", a);
        o->given |= given_bit(a);
    }
    if (o->nseg != o->nrate) return bad("--segments and --dilations need the same number of entries%s", "");
    if (o->ncu_q != o->ncu_k) return bad("--cu-seqlens-q and --cu-seqlens-k need the same number of entries%s", "");
    if (o->docs_k_path[0] && !o->docs_path[0]) return bad("--document-ids-k needs --document-ids (the queries' ids)%s", "");
    if (o->nseg && (o->sinks_path[0] || o->alibi_path[0] || o->bias_path[0] || o->mask_path[0] || o->docs_path[0] ||
                    o->max_logit))
        return bad("--sinks, --alibi, --bias, --mask, --document-ids and --max-logit are for dense attention, "
                   "not with --segments%s", "");
    if (o->ncu_q) { o->cfg.num_seqs = o->ncu_q - 1; o->cfg.cu_seqlens_q = o->cu_q; o->cfg.cu_seqlens_k = o->cu_k; }
    o->cfg.num_groups = o->nseg;
    if (o->nseg) { o->cfg.segment_lengths = o->seg; o->cfg.dilation_rates = o->rate; }
    return 0;
}

/* "a,b,c" into buf */
static void format_list(char *buf, size_t n, const int64_t *v, int cnt)
{
    size_t len = 0; int i;
    buf[0] = 0;
    for (i = 0; i < cnt && len < n; i++) {
        int w = snprintf(buf + len, n - len, i ? ",%lld" : "%lld", (long long)v[i]);
        if (w < 0) break;
        len += (size_t)w;
    }
}

/* the value of one recorded option as the command line spells it; "" when it is unset */
static void option_value(const options *o, unsigned bit, char *buf, size_t n)
{
    static const char *const causal[3] = { "none", "bottom-right", "top-left" };
    const ringattn_config *c = &o->cfg;
    buf[0] = 0;
    switch (bit) {
    case GIVEN_CAUSAL: snprintf(buf, n, "%s", c->causal >= 0 && c->causal <= 2 ? causal[c->causal] : "?"); break;
    case GIVEN_SCALE: snprintf(buf, n, "%.17g", c->scale); break;
    case GIVEN_SOFTCAP: snprintf(buf, n, "%.17g", c->softcap); break;
    case GIVEN_WINDOW: snprintf(buf, n, "%d,%d", c->window_left, c->window_right); break;
    case GIVEN_MIX: snprintf(buf, n, "%s", c->mix == RINGATTN_MIX_LSE ? "lse" : "head-groups"); break;
    case GIVEN_SEGMENTS: format_list(buf, n, o->seg, o->nseg); break;
    case GIVEN_DILATIONS: format_list(buf, n, o->rate, o->nrate); break;
    case GIVEN_CU_Q: format_list(buf, n, o->cu_q, o->ncu_q); break;
    case GIVEN_CU_K: format_list(buf, n, o->cu_k, o->ncu_k); break;
    case GIVEN_FP8: snprintf(buf, n, "%s", o->fp8 == RINGATTN_FP8_E5M2 ? "e5m2" : "e4m3"); break;
    case GIVEN_SINKS: snprintf(buf, n, "%s", o->sinks_path); break;
    case GIVEN_ALIBI: snprintf(buf, n, "%s", o->alibi_path); break;
    case GIVEN_BIAS: snprintf(buf, n, "%s", o->bias_path); break;
    case GIVEN_MASK: snprintf(buf, n, "%s", o->mask_path); break;
    case GIVEN_DOCS: snprintf(buf, n, "%s", o->docs_path); break;
    case GIVEN_DOCS_K: snprintf(buf, n, "%s", o->docs_k_path); break;
    case GIVEN_SEQLENS: snprintf(buf, n, "%s", o->seqlens_path); break;
    case GIVEN_TABLE: snprintf(buf, n, "%s", o->table_path); break;
    case GIVEN_NSPLITS: if (o->num_splits) snprintf(buf, n, "%lld", (long long)o->num_splits); break;
    case GIVEN_SPLIT_SIZE: if (o->split_size) snprintf(buf, n, "%lld", (long long)o->split_size); break;
    default: break;
    }
}

/* mkdir -p: every missing folder of path */
static int make_dirs(const char *path)
{
    char p[4096]; size_t i, n = strlen(path);
    if (n == 0 || n >= sizeof p) return 0;
    memcpy(p, path, n + 1);
    for (i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != 0) continue;
        p[i] = 0;
        if (MAKE_DIR(p) != 0 && errno != EEXIST) {
            fprintf(stderr, "ringattn-golden: cannot create the output folder '%s': %s\n", p, strerror(errno));
            return -1;
        }
        if (i < n) p[i] = '/';
    }
    return 0;
}

/* ---------------------------------------------------------------- golden folders
   A folder written by `compute` or `steps` describes itself: OPTIONS_FILE holds the options
   that shaped the result and a manifest, one line per file the run wrote,
       file NAME BYTES fnv1a64:HASH        (FNV-1a, 64 bits, over the file's bytes)
   and ends with `end fnv1a64:HASH` over every byte before that line, so a cut or edited
   options file is refused too. A run writes every file as NAME.partial first, removes the
   files of the earlier manifest it does not write, replaces OPTIONS_FILE (one rename), then
   renames each NAME.partial to NAME. A reader trusts a file only when the manifest
   lists it with its bytes' hash: killed at any point, a folder holds the old complete set
   (short of files the new run does not write, which go first), the new complete set, or
   files that disagree with the manifest and are refused. */
#define PARTIAL ".partial"
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

typedef struct { char *name; unsigned long long size, hash; } mfile;
typedef struct { mfile *f; int n, cap; } manifest;

static unsigned long long fnv1a(unsigned long long h, const void *data, size_t n)
{
    const unsigned char *p = (const unsigned char *)data; size_t i;
    for (i = 0; i < n; i++) { h ^= p[i]; h *= FNV_PRIME; }
    return h;
}

/* size and FNV-1a 64 of a file's bytes: 0, or -1 when it cannot be read */
static int hash_file(const char *path, unsigned long long *size, unsigned long long *hash)
{
    unsigned char buf[65536]; size_t n; FILE *f = fopen(path, "rb");
    *size = 0; *hash = FNV_OFFSET;
    if (!f) return -1;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) { *hash = fnv1a(*hash, buf, n); *size += n; }
    n = (size_t)ferror(f);
    fclose(f);
    return n ? -1 : 0;
}

static void manifest_free(manifest *m)
{
    int i;
    for (i = 0; i < m->n; i++) free(m->f[i].name);
    free(m->f);
    memset(m, 0, sizeof *m);
}

static int manifest_add(manifest *m, const char *name, unsigned long long size, unsigned long long hash)
{
    if (m->n == m->cap) {
        mfile *nf = (mfile *)realloc(m->f, sizeof(mfile) * (size_t)(m->cap = m->cap ? 2 * m->cap : 64));
        if (!nf) return -1;
        m->f = nf;
    }
    if (!(m->f[m->n].name = (char *)malloc(strlen(name) + 1))) return -1;
    strcpy(m->f[m->n].name, name);
    m->f[m->n].size = size; m->f[m->n].hash = hash;
    m->n++;
    return 0;
}

static const mfile *manifest_find(const manifest *m, const char *name)
{
    int i;
    for (i = 0; i < m->n; i++) if (!strcmp(m->f[i].name, name)) return &m->f[i];
    return NULL;
}

static int file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* The options (into *rec) and the manifest (into *m, may be NULL) of the options file at
   path: 0, 1 when there is no such file, -1 (said on stderr) when it is not one this tool
   wrote whole: no `end` line, a hash that disagrees, a line it does not know. */
static int read_options(const char *path, options *rec, manifest *m)
{
    char *text = NULL, *line, *next, *endl, *argv[2 + 2 * NRECORDED]; const char *pos[8];
    int argc = 2, npos, rc = 0; size_t len = 0, cap = 0, n; unsigned long long want, got;
    FILE *f = fopen(path, "rb");
    if (!f) return 1;
    for (;;) {   /* the whole file, NUL-terminated */
        if (len + 4097 > cap) {
            char *nt = (char *)realloc(text, cap = cap ? 2 * cap : 8192);
            if (!nt) { free(text); fclose(f); fprintf(stderr, "ringattn-golden: out of memory\n"); return -1; }
            text = nt;
        }
        if ((n = fread(text + len, 1, 4096, f)) == 0) break;
        len += n;
    }
    fclose(f);
    text[len] = 0;
    if (m) memset(m, 0, sizeof *m);
    endl = len ? text + len - 1 : text;   /* the last line: end fnv1a64:HASH */
    if (endl > text && *endl == '\n') endl--;
    while (endl > text && endl[-1] != '\n') endl--;
    if (sscanf(endl, "end fnv1a64:%16llx", &want) != 1) {
        fprintf(stderr, "ringattn-golden: %s has no manifest (`end fnv1a64:...` line): written by an older "
                "ringattn-golden, or not whole; compute the folder again\n", path);
        free(text); return -1;
    }
    got = fnv1a(FNV_OFFSET, text, (size_t)(endl - text));
    if (got != want) {
        fprintf(stderr, "ringattn-golden: %s does not match its own hash (edited or damaged): compute the folder again\n", path);
        free(text); return -1;
    }
    *endl = 0;
    argv[0] = (char *)"ringattn-golden"; argv[1] = (char *)"compute";
    for (line = text; rc == 0 && *line; line = next) {
        char *sp, fname[4096]; unsigned long long sz, h;
        next = line + strcspn(line, "\n");
        if (*next) *next++ = 0;
        line[strcspn(line, "\r")] = 0;
        if (line[0] == 0 || line[0] == '#') continue;
        if (!strncmp(line, "file ", 5)) {
            if (strlen(line) >= sizeof fname || sscanf(line, "file %4095s %llu fnv1a64:%16llx", fname, &sz, &h) != 3) {
                fprintf(stderr, "ringattn-golden: %s: malformed line '%s'\n", path, line);
                rc = -1; break;
            }
            if (m && manifest_add(m, fname, sz, h)) { fprintf(stderr, "ringattn-golden: out of memory\n"); rc = -1; }
            continue;
        }
        if ((sp = strchr(line, ' ')) != NULL) *sp = 0;
        if (!sp || argc + 2 > (int)(sizeof argv / sizeof argv[0]) || !given_bit(line)) {
            fprintf(stderr, "ringattn-golden: %s: unexpected line '%s'\n", path, line);
            rc = -1; break;
        }
        argv[argc++] = line; argv[argc++] = sp + 1;
    }
    if (rc == 0 && parse_args(argc, argv, rec, pos, &npos) != 0) {
        fprintf(stderr, "ringattn-golden: %s: the recorded options do not parse\n", path);
        rc = -1;
    }
    free(text);   /* parse_args keeps no pointer into it: lists and values are copied */
    if (rc && m) manifest_free(m);
    return rc;
}

/* A file `name` of folder dir, as its manifest lists it: 0 listed and its bytes hash as
   recorded, 1 not listed, -1 (said on stderr) listed but different or unreadable. */
static int verify_listed(const manifest *m, const char *dir, const char *name)
{
    char path[4096]; unsigned long long size, hash; const mfile *e = manifest_find(m, name);
    if (!e) return 1;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (hash_file(path, &size, &hash)) {
        fprintf(stderr, "ringattn-golden: %s is listed in %s/%s but cannot be read\n", path, dir, OPTIONS_FILE);
        return -1;
    }
    if (size != e->size || hash != e->hash) {
        fprintf(stderr, "ringattn-golden: %s is not the file %s/%s lists (%llu bytes, fnv1a64 %016llx; recorded: "
                "%llu bytes, %016llx): the folder mixes two runs or was changed; compute it again\n",
                path, dir, OPTIONS_FILE, size, hash, e->size, e->hash);
        return -1;
    }
    return 0;
}

/* One run writing a golden folder: its earlier manifest, this run's, and the test hook
   RINGATTN_GOLDEN_KILL_AT=N (SIGKILL at the N-th step of the commit; tests only). */
typedef struct {
    const char *dir;
    manifest old, now;
    long kill_at, point;
} folder;

static void folder_point(folder *F)
{
    if (F->kill_at > 0 && ++F->point == F->kill_at) {
        fflush(stdout);
#ifdef SIGKILL
        raise(SIGKILL);
#endif
        abort();
    }
}

/* Before writing: the folder (created), its earlier manifest, and a check that every file
   the run will write is absent or one an earlier run listed; another file there is only
   replaced with --force. */
static int folder_open(folder *F, const char *dir, int force, const char *const *names, int n)
{
    char path[4096]; options rec; int i, st; const char *hook = getenv("RINGATTN_GOLDEN_KILL_AT");
    memset(F, 0, sizeof *F);
    F->dir = dir; F->kill_at = hook ? strtol(hook, NULL, 10) : 0;
    if (make_dirs(dir)) return -1;
    snprintf(path, sizeof path, "%s/%s", dir, OPTIONS_FILE);
    st = read_options(path, &rec, &F->old);
    if (st < 0 && !force) {
        fprintf(stderr, "ringattn-golden: %s is not a folder this tool wrote whole: give --force to replace its files, "
                "or another -o\n", dir);
        return -1;
    }
    if (st != 0) memset(&F->old, 0, sizeof F->old);
    for (i = 0; i < n && !force; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (file_exists(path) && !manifest_find(&F->old, names[i])) {
            fprintf(stderr, "ringattn-golden: %s exists and no earlier run of this tool listed it in %s/%s: give --force "
                    "to replace it, or another -o\n", path, dir, OPTIONS_FILE);
            manifest_free(&F->old);
            return -1;
        }
    }
    return 0;
}

/* where a run stages `name` */
static void folder_stage(const folder *F, const char *name, char *path, size_t n)
{
    snprintf(path, n, "%s/%s" PARTIAL, F->dir, name);
}

/* the options file's text (options, manifest), without the end line */
static char *options_text(const options *o, const char *command, const char *const *pos, int npos, const manifest *m)
{
    char val[2048], *t; size_t cap = 4096 + (size_t)m->n * 300, len = 0; int i;
    if (!(t = (char *)malloc(cap))) return NULL;
#define PUT(...) do { int w_ = snprintf(t + len, cap - len, __VA_ARGS__); if (w_ > 0) len += (size_t)w_; if (len >= cap) len = cap - 1; } while (0)
    PUT("# written by `ringattn-golden %s` with the files of this folder: the options that shape the\n"
        "# result, and every file the run wrote with its size and FNV-1a 64 hash. %s\n"
        "# inputs:", command, !strcmp(command, "compute-kvcache")
        ? "`ringattn-golden compare\n# GOT <this folder>/<name>.npy` trusts only the files listed here, unchanged (a KV-cache\n"
          "# run has no --baseline-from)."
        : "`ringattn-golden compare\n# GOT <this folder>/<name>.npy --baseline-from DIR` computes its baseline with these options (an\n"
          "# explicit option that disagrees is an error) and trusts only the files listed here, unchanged.");
    for (i = 0; i < npos; i++) PUT(" %s", pos[i]);
    PUT("\n");
    for (i = 0; i < NRECORDED; i++) {
        option_value(o, recorded[i].bit, val, sizeof val);
        if (val[0]) PUT("%s %s\n", recorded[i].name, val);
    }
    for (i = 0; i < m->n; i++) PUT("file %s %llu fnv1a64:%016llx\n", m->f[i].name, m->f[i].size, m->f[i].hash);
#undef PUT
    return t;
}

/* After every file is staged: hash them, remove what the earlier run listed and this one does
   not write, replace the options file, move the files in. 0, or -1 (said). */
static int folder_commit(folder *F, const options *o, const char *command, const char *const *pos, int npos,
                         const char *const *names, int n)
{
    char path[4096], dest[4096], *text; unsigned long long size, hash; int i, rc = 0; FILE *f;
    for (i = 0; i < n; i++) {
        folder_stage(F, names[i], path, sizeof path);
        if (hash_file(path, &size, &hash) || manifest_add(&F->now, names[i], size, hash)) {
            fprintf(stderr, "ringattn-golden: cannot read back %s\n", path);
            return -1;
        }
        folder_point(F);
    }
    /* the earlier run's files this one does not write go first, while its manifest still
       lists them (a kill here leaves the earlier set short of a file, never a stale file
       that a later manifest forgets), with the folders they leave empty */
    for (i = 0; i < F->old.n; i++) {
        char *slash;
        if (manifest_find(&F->now, F->old.f[i].name)) continue;
        snprintf(dest, sizeof dest, "%s/%s", F->dir, F->old.f[i].name);
        if (remove(dest) == 0) printf("removed %s (an earlier run's)\n", dest);
        else if (file_exists(dest)) { fprintf(stderr, "ringattn-golden: cannot remove %s\n", dest); return -1; }
        while ((slash = strrchr(dest, '/')) != NULL && slash - dest > (ptrdiff_t)strlen(F->dir)) {
            *slash = 0;
            if (remove(dest) != 0) break;   /* not empty: someone else's files are there */
        }
        folder_point(F);
    }
    if (!(text = options_text(o, command, pos, npos, &F->now))) { fprintf(stderr, "ringattn-golden: out of memory\n"); return -1; }
    folder_stage(F, OPTIONS_FILE, path, sizeof path);
    snprintf(dest, sizeof dest, "%s/%s", F->dir, OPTIONS_FILE);
    if (!(f = fopen(path, "wb"))) rc = -1;
    else {
        size_t len = strlen(text);
        if (fwrite(text, 1, len, f) != len) rc = -1;
        if (fprintf(f, "end fnv1a64:%016llx\n", fnv1a(FNV_OFFSET, text, len)) < 0) rc = -1;
        if (fclose(f)) rc = -1;
    }
    free(text);
    if (rc) { fprintf(stderr, "ringattn-golden: cannot write %s\n", path); remove(path); return -1; }
    folder_point(F);
    if (rename(path, dest)) { fprintf(stderr, "ringattn-golden: cannot rename %s to %s\n", path, dest); return -1; }
    folder_point(F);
    for (i = 0; i < n; i++) {
        folder_stage(F, names[i], path, sizeof path);
        snprintf(dest, sizeof dest, "%s/%s", F->dir, names[i]);
        if (rename(path, dest)) { fprintf(stderr, "ringattn-golden: cannot rename %s to %s\n", path, dest); return -1; }
        folder_point(F);
    }
    if (F->kill_at > 0) fprintf(stderr, "ringattn-golden: commit steps: %ld\n", F->point);
    return 0;
}

static void folder_close(folder *F)
{
    manifest_free(&F->old);
    manifest_free(&F->now);
}

/* An explicit result-shaping option of `cmd` that differs from `rec`: its index, else -1 */
static int disagreement(const options *cmd, const options *rec, char *mine, char *theirs, size_t n)
{
    int i;
    for (i = 0; i < NRECORDED; i++) {
        if (!(cmd->given & recorded[i].bit)) continue;
        option_value(cmd, recorded[i].bit, mine, n);
        option_value(rec, recorded[i].bit, theirs, n);
        if (strcmp(mine, theirs)) return i;
    }
    return -1;
}

/* View t, of shape [1, a, b, c], as [a, b, c, 1] when `like` has that shape: FlashAttention's
   varlen lse (h, total_q) against compute's (1, h, total_q) */
static void align_lead(ringattn_tensor *t, const ringattn_tensor *like)
{
    int a, same = 1;
    for (a = 0; a < 4; a++) same &= t->shape[a] == like->shape[a];
    if (same || t->shape[0] != 1 || like->shape[3] != 1) return;
    for (a = 0; a < 3; a++) if (t->shape[a + 1] != like->shape[a]) return;
    for (a = 0; a < 3; a++) { t->shape[a] = t->shape[a + 1]; t->stride[a] = t->stride[a + 1]; }
    t->shape[3] = 1;
}

static int load(const char *path, ringattn_npy_array *a, int want_rank4)
{
    char err[512];
    ringattn_config c = ringattn_default_config();
    int st;
    c.error_detail = err; c.error_detail_size = sizeof err;
    st = ringattn_npy_load(path, a, &c);
    if (st != RINGATTN_OK) {
        fprintf(stderr, "ringattn-golden: %s: %s (%s)\n", path, err, ringattn_strerror(st));
        return -1;
    }
    if (want_rank4 && a->info.ndim != 4) {
        fprintf(stderr, "ringattn-golden: %s: rank %d, expected a 4-D [batch, seq, heads, dim] array\n",
                path, a->info.ndim);
        ringattn_npy_free(a);
        return -1;
    }
    return 0;
}

static void *alloc_like(ringattn_tensor *t, ringattn_dtype dt, int64_t a, int64_t b, int64_t c, int64_t d, int lse)
{
    size_t es = dt == RINGATTN_F64 ? 8 : dt == RINGATTN_F32 ? 4 : 2;
    void *p = calloc((size_t)(a * b * c * d), es);
    *t = lse ? ringattn_tensor_lse(p, dt, a, b, c) : ringattn_tensor_bnhd(p, dt, a, b, c, d);
    return p;
}

/* the computed outputs of one case; data owned here */
typedef struct {
    ringattn_tensor out, lse, dq, dk, dv;
    ringattn_tensor max_logit, dsinks, dbias;   /* data NULL when not asked for */
    int have_grad;
} results;

static void results_free(results *r)
{
    free(r->out.data); free(r->lse.data); free(r->dq.data); free(r->dk.data); free(r->dv.data);
    free(r->max_logit.data); free(r->dsinks.data); free(r->dbias.data);
    memset(r, 0, sizeof *r);
}

/* forward (and backward when dout is given) of q, k, v with cfg; outputs stored as dt; with
   want_max_logit also max_logit, and in the backward dsinks (with cfg->sinks) and dbias (with
   cfg->bias, in its shape) */
static int run_ex(const ringattn_config *cfg0, ringattn_dtype dt, const ringattn_tensor *q,
                  const ringattn_tensor *k, const ringattn_tensor *v, const ringattn_tensor *dout,
                  int want_max_logit, results *r)
{
    char err[512];
    ringattn_config cfg = *cfg0;
    int64_t b = q->shape[0], nq = q->shape[1], h = q->shape[2], d = q->shape[3];
    int64_t nk = k->shape[1], hk = k->shape[2], dv = v->shape[3], i;
    double *ds = NULL;
    int st;
    cfg.error_detail = err; cfg.error_detail_size = sizeof err; err[0] = 0;
    cfg.max_logit = NULL; cfg.dsinks = NULL; cfg.dbias = NULL;
    memset(r, 0, sizeof *r);
    if (!alloc_like(&r->out, dt, b, nq, h, dv, 0) || !alloc_like(&r->lse, dt, b, h, nq, 1, 1)) goto nomem;
    if (want_max_logit) {
        if (!alloc_like(&r->max_logit, dt, b, h, nq, 1, 1)) goto nomem;
        cfg.max_logit = &r->max_logit;
    }
    st = ringattn_forward(&cfg, q, k, v, &r->out, &r->lse);
    if (st != RINGATTN_OK) goto fail;
    cfg.max_logit = NULL;
    if (dout) {
        if (!alloc_like(&r->dq, dt, b, nq, h, d, 0) || !alloc_like(&r->dk, dt, b, nk, hk, d, 0) ||
            !alloc_like(&r->dv, dt, b, nk, hk, dv, 0)) goto nomem;
        if (cfg.sinks) {   /* dL/dsinks in doubles, stored as dt below */
            if (!(ds = (double *)calloc((size_t)h, sizeof(double))) || !alloc_like(&r->dsinks, dt, h, 1, 1, 1, 0)) goto nomem;
            cfg.dsinks = ds;
        }
        if (cfg.bias) {
            const int64_t *s = cfg.bias->shape;
            if (!alloc_like(&r->dbias, dt, s[0], s[1], s[2], s[3], 0)) goto nomem;
            cfg.dbias = &r->dbias;
        }
        st = ringattn_backward(&cfg, q, k, v, &r->out, &r->lse, dout, &r->dq, &r->dk, &r->dv);
        if (st != RINGATTN_OK) goto fail;
        for (i = 0; ds && i < h; i++) ringattn__store(r->dsinks.data, dt, i, ds[i]);
        r->have_grad = 1;
    }
    free(ds);
    return 0;
nomem:
    fprintf(stderr, "ringattn-golden: out of memory\n");
    free(ds);
    results_free(r);
    return -1;
fail:
    fprintf(stderr, "ringattn-golden: %s: %s\n", ringattn_strerror(st), err);
    free(ds);
    results_free(r);
    return -1;
}

static int run(const ringattn_config *cfg, ringattn_dtype dt, const ringattn_tensor *q,
               const ringattn_tensor *k, const ringattn_tensor *v, const ringattn_tensor *dout, results *r)
{
    return run_ex(cfg, dt, q, k, v, dout, 0, r);
}

static int save_path(const char *path, const ringattn_tensor *t, int ndim)
{
    char err[512];
    ringattn_config c = ringattn_default_config();
    int st;
    c.error_detail = err; c.error_detail_size = sizeof err;
    st = ringattn_npy_save(path, t, ndim, &c);
    if (st != RINGATTN_OK) { fprintf(stderr, "ringattn-golden: %s\n", err); return -1; }
    return 0;
}

/* q, k, v (and dout) from files; n = 3 or 4 */
/* the inputs; fp8 files (raw bytes, |u1) are read as `fp8` (--fp8: e4m3 or e5m2) */
static int load_inputs(const char *const *paths, int n, ringattn_npy_array *in, ringattn_dtype fp8)
{
    int i;
    for (i = 0; i < n; i++) {
        if (load(paths[i], &in[i], 1)) { while (i--) ringattn_npy_free(&in[i]); return -1; }
        if (in[i].t.dtype == RINGATTN_FP8_E4M3) in[i].t.dtype = fp8;   /* the same bytes */
    }
    return 0;
}

/* ---------------------------------------------------------------- score options
   --sinks, --alibi, --bias, --mask, --document-ids(-k): their files, read once the inputs'
   shapes are known, into o->cfg. Freed by free_score_options. */

static void free_score_options(options *o)
{
    ringattn_npy_free(&o->bias_arr); ringattn_npy_free(&o->mask_arr);
    free(o->sinks_buf); free(o->alibi_buf); free(o->docq_buf); free(o->dock_buf);
    o->sinks_buf = o->alibi_buf = NULL; o->docq_buf = o->dock_buf = NULL;
}

/* every element of a loaded array, in C order, as doubles (a new array of a->info.count) */
static double *npy_doubles(const ringattn_npy_array *a)
{
    const ringattn_tensor *t = &a->t;
    int64_t x, cnt = a->info.count;
    double *d = (double *)malloc(sizeof(double) * (size_t)cnt);
    if (!d) return NULL;
    for (x = 0; x < cnt; x++) {
        int64_t at[4], y = x;
        at[3] = y % t->shape[3]; y /= t->shape[3]; at[2] = y % t->shape[2]; y /= t->shape[2];
        at[1] = y % t->shape[1]; at[0] = y / t->shape[1];
        d[x] = ringattn__load(t->data, t->dtype, ringattn__index(t, at[0], at[1], at[2], at[3]));
    }
    return d;
}

/* a float .npy of exactly `want` values (want 0: any count, returned in *n) */
static double *load_values(const char *opt, const char *path, int64_t want, int64_t *n)
{
    ringattn_npy_array a; double *d;
    if (load(path, &a, 0)) return NULL;
    if (a.t.dtype == RINGATTN_BOOL) {
        fprintf(stderr, "ringattn-golden: %s %s: a bool array, numbers expected\n", opt, path);
        ringattn_npy_free(&a);
        return NULL;
    }
    if (want && a.info.count != want) {
        fprintf(stderr, "ringattn-golden: %s %s: %lld values, %lld expected\n", opt, path,
                (long long)a.info.count, (long long)want);
        ringattn_npy_free(&a);
        return NULL;
    }
    *n = a.info.count;
    d = npy_doubles(&a);
    ringattn_npy_free(&a);
    if (!d) fprintf(stderr, "ringattn-golden: out of memory\n");
    return d;
}

/* n document ids from a float .npy of integers */
static int64_t *load_ids(const char *opt, const char *path, int64_t want)
{
    int64_t n, i, *ids; double *d = load_values(opt, path, want, &n);
    if (!d) return NULL;
    ids = (int64_t *)malloc(sizeof(int64_t) * (size_t)n);
    for (i = 0; ids && i < n; i++) {
        if (!(d[i] == floor(d[i]) && fabs(d[i]) <= 9007199254740992.0)) {
            fprintf(stderr, "ringattn-golden: %s %s: value %lld is %g, not an integer\n", opt, path, (long long)i, d[i]);
            free(ids); ids = NULL; break;
        }
        ids[i] = (int64_t)d[i];
    }
    free(d);
    return ids;
}

/* a bias or mask file as a 4-D view, its dimensions right-aligned as NumPy broadcasts them:
   (nq, nk) is [1, 1, nq, nk], (h, nq, nk) is [1, h, nq, nk] */
static int load_broadcast(const char *opt, const char *path, ringattn_npy_array *a, ringattn_tensor *t, int *rank)
{
    int r, x;
    if (load(path, a, 0)) return -1;
    r = a->info.ndim;
    if (r < 2) {
        fprintf(stderr, "ringattn-golden: %s %s: rank %d, expected (b|1, h|1, nq, nk) or fewer leading dimensions\n",
                opt, path, r);
        ringattn_npy_free(a);
        return -1;
    }
    *t = a->t;
    for (x = 3; x >= 0; x--) {
        int from = x - (4 - r);
        t->shape[x] = from >= 0 ? a->t.shape[from] : 1;
        t->stride[x] = from >= 0 ? a->t.stride[from] : 0;
    }
    *rank = r;
    return 0;
}

/* the score options' files of o, for q [b, nq, h, d] and k [b, nk, hk, d], into o->cfg */
static int load_score_options(options *o, const ringattn_tensor *q, const ringattn_tensor *k)
{
    int64_t b = q->shape[0], nq = q->shape[1], h = q->shape[2], nk = k->shape[1], n;
    int rank;
    if (o->sinks_path[0]) {
        if (!(o->sinks_buf = load_values("--sinks", o->sinks_path, h, &n))) goto fail;
        o->cfg.sinks = o->sinks_buf;
    }
    if (o->alibi_path[0]) {
        if (!(o->alibi_buf = load_values("--alibi", o->alibi_path, 0, &n))) goto fail;
        if (n != h && n != b * h) {
            fprintf(stderr, "ringattn-golden: --alibi %s: %lld slopes, h = %lld or b * h = %lld expected\n",
                    o->alibi_path, (long long)n, (long long)h, (long long)(b * h));
            goto fail;
        }
        o->cfg.alibi_slopes = o->alibi_buf; o->cfg.alibi_size = (int)n;
    }
    if (o->bias_path[0]) {
        if (load_broadcast("--bias", o->bias_path, &o->bias_arr, &o->bias_t, &o->bias_rank)) goto fail;
        o->cfg.bias = &o->bias_t;
    }
    if (o->mask_path[0]) {
        if (load_broadcast("--mask", o->mask_path, &o->mask_arr, &o->mask_t, &rank)) goto fail;
        if (o->mask_t.dtype != RINGATTN_BOOL) {
            fprintf(stderr, "ringattn-golden: --mask %s: not a bool array ('|b1'): mask.astype(bool)\n", o->mask_path);
            goto fail;
        }
        o->cfg.mask = &o->mask_t;
    }
    if (o->docs_path[0]) {
        if (!o->docs_k_path[0] && nq != nk) {
            fprintf(stderr, "ringattn-golden: --document-ids %s: nq = %lld and nk = %lld differ: give the keys' ids "
                    "with --document-ids-k\n", o->docs_path, (long long)nq, (long long)nk);
            goto fail;
        }
        if (!(o->docq_buf = load_ids("--document-ids", o->docs_path, nq))) goto fail;
        if (!(o->dock_buf = load_ids(o->docs_k_path[0] ? "--document-ids-k" : "--document-ids",
                                     o->docs_k_path[0] ? o->docs_k_path : o->docs_path, nk))) goto fail;
        o->cfg.document_ids_q = o->docq_buf; o->cfg.document_ids_k = o->dock_buf;
    }
    return 0;
fail:
    free_score_options(o);
    return -1;
}

#include "golden_steps.c"   /* steps, compare-steps, trace, compare --heatmap */

static int cmd_compute(int argc, char **argv)
{
    const char *names[8]; const ringattn_tensor *t[8]; int rank[8];
    options o; const char *pos[8]; int npos, rc, i, nout = 0;
    ringattn_npy_array in[4]; results r; folder F; char path[4096];
    ringattn_tensor dbias_file;
    if ((rc = parse_args(argc, argv, &o, pos, &npos))) return rc;
    if (npos != 3 && npos != 4) return bad("compute needs Q.npy K.npy V.npy [DOUT.npy]%s", "");
    if ((o.given & GIVEN_KVCACHE) || o.write_splits)
        return bad("--cache-seqlens, --block-table, --num-splits, --split-size and --splits are for compute-kvcache%s", "");
    if (load_inputs(pos, npos, in, o.fp8)) return EXIT_BAD;
    if (load_score_options(&o, &in[0].t, &in[1].t)) {
        for (i = 0; i < npos; i++) ringattn_npy_free(&in[i]);
        return EXIT_BAD;
    }
    /* the files this run writes: out, lse, [max_logit], and with DOUT dq, dk, dv, [dsinks], [dbias] */
    names[nout++] = "out.npy"; names[nout++] = "lse.npy";
    if (o.max_logit) names[nout++] = "max_logit.npy";
    if (npos == 4) {
        names[nout++] = "dq.npy"; names[nout++] = "dk.npy"; names[nout++] = "dv.npy";
        if (o.cfg.sinks) names[nout++] = "dsinks.npy";
        if (o.cfg.bias) names[nout++] = "dbias.npy";
    }
    if (folder_open(&F, o.out_dir, o.force, names, nout)) {
        for (i = 0; i < npos; i++) ringattn_npy_free(&in[i]);
        free_score_options(&o);
        return EXIT_BAD;
    }
    rc = run_ex(&o.cfg, o.dtype, &in[0].t, &in[1].t, &in[2].t, npos == 4 ? &in[3].t : NULL, o.max_logit, &r)
         ? EXIT_BAD : EXIT_PASS;
    if (rc == EXIT_PASS) {   /* staged as NAME.partial, then committed together */
        for (i = 0; i < nout; i++) {
            const char *n = names[i];
            rank[i] = (!strcmp(n, "lse.npy") || !strcmp(n, "max_logit.npy")) ? 3 : !strcmp(n, "dsinks.npy") ? 1 : 4;
            t[i] = !strcmp(n, "out.npy") ? &r.out : !strcmp(n, "lse.npy") ? &r.lse : !strcmp(n, "max_logit.npy") ? &r.max_logit
                 : !strcmp(n, "dq.npy") ? &r.dq : !strcmp(n, "dk.npy") ? &r.dk : !strcmp(n, "dv.npy") ? &r.dv
                 : !strcmp(n, "dsinks.npy") ? &r.dsinks : &dbias_file;
        }
        if (o.cfg.bias && r.have_grad) {   /* dbias in the bias file's own shape (its leading 1s dropped) */
            int x, lead = 4 - o.bias_rank;
            dbias_file = r.dbias;
            for (x = 0; x < 4; x++) {
                dbias_file.shape[x] = x + lead < 4 ? r.dbias.shape[x + lead] : 1;
                dbias_file.stride[x] = x + lead < 4 ? r.dbias.stride[x + lead] : 1;
            }
            for (i = 0; i < nout; i++) if (t[i] == &dbias_file) rank[i] = o.bias_rank;
        }
        for (i = 0; i < nout && rc == EXIT_PASS; i++) {
            folder_stage(&F, names[i], path, sizeof path);
            if (save_path(path, t[i], rank[i])) rc = EXIT_BAD;
            else folder_point(&F);
        }
        if (rc == EXIT_PASS && folder_commit(&F, &o, "compute", pos, npos, names, nout)) rc = EXIT_BAD;
        for (i = 0; rc == EXIT_PASS && i <= nout; i++)
            printf("wrote %s/%s\n", o.out_dir, i < nout ? names[i] : OPTIONS_FILE);
        results_free(&r);
    }
    folder_close(&F);
    for (i = 0; i < npos; i++) ringattn_npy_free(&in[i]);
    free_score_options(&o);
    return rc;
}

/* ---------------------------------------------------------------- compute-kvcache
   cache_seqlens and the block table are int32 .npy files; ringattn.h's reader takes float,
   bf16, fp8 and bool arrays only, so they are read here: NumPy format 1.0 - 3.0, dtype '<i4',
   '>i4' or '<i8' / '>i8' (values within int32), C order (or rank <= 1), rank 1 or 2. */

/* the value of key `key` in a .npy header dict: a pointer just past "'key':" and blanks */
static const char *npy_field(const char *hdr, const char *key)
{
    char pat[32];
    const char *p;
    snprintf(pat, sizeof pat, "'%s':", key);
    if (!(p = strstr(hdr, pat))) return NULL;
    p += strlen(pat);
    while (*p == ' ') p++;
    return p;
}

/* an int32 .npy of rank 1 or 2 into *data (malloc'd), its dims (dims[1] = 1 for rank 1) */
static int load_int32(const char *opt, const char *path, int32_t **data, int64_t dims[2], int *ndim)
{
    unsigned char pre[12], *raw = NULL;
    char *hdr = NULL;
    const char *p;
    size_t hlen, plen, es, x;
    int64_t count = 1, v;
    int big, rank = 0, ok = 0;
    FILE *f = fopen(path, "rb");
    *data = NULL; dims[0] = dims[1] = 1; *ndim = 0;
    if (!f) { fprintf(stderr, "ringattn-golden: %s %s: cannot open: %s\n", opt, path, strerror(errno)); return -1; }
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) || pre[6] < 1 || pre[6] > 3) goto bad_file;
    if (pre[6] == 1) { hlen = (size_t)pre[8] | (size_t)pre[9] << 8; plen = 10; }
    else {
        if (fread(pre + 10, 1, 2, f) != 2) goto bad_file;
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
        plen = 12;
    }
    if (hlen > (1u << 20) || !(hdr = (char *)malloc(hlen + 1)) || fread(hdr, 1, hlen, f) != hlen) goto bad_file;
    hdr[hlen] = 0;
    (void)plen;
    if (!(p = npy_field(hdr, "descr"))) goto bad_file;
    if (!strncmp(p, "'<i4'", 5) || !strncmp(p, "'|i4'", 5) || !strncmp(p, "'=i4'", 5)) { es = 4; big = 0; }
    else if (!strncmp(p, "'>i4'", 5)) { es = 4; big = 1; }
    else if (!strncmp(p, "'<i8'", 5) || !strncmp(p, "'=i8'", 5)) { es = 8; big = 0; }
    else if (!strncmp(p, "'>i8'", 5)) { es = 8; big = 1; }
    else {
        fprintf(stderr, "ringattn-golden: %s %s: dtype %.8s, expected int32 ('<i4': x.astype(np.int32))\n", opt, path, p);
        goto done;
    }
    if (!(p = npy_field(hdr, "shape")) || *p != '(') goto bad_file;
    for (p++;;) {
        char *end;
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        v = (int64_t)strtoll(p, &end, 10);
        if (end == p || v < 1 || v > 2147483647 || rank == 2) {
            fprintf(stderr, "ringattn-golden: %s %s: shape %s: rank 1 or 2 with no empty dimension expected\n", opt, path,
                    npy_field(hdr, "shape"));
            goto done;
        }
        dims[rank++] = v; count *= v;
        p = end;
    }
    if (rank == 0) { fprintf(stderr, "ringattn-golden: %s %s: a scalar, an array expected\n", opt, path); goto done; }
    if (rank == 2 && (p = npy_field(hdr, "fortran_order")) && !strncmp(p, "True", 4)) {
        fprintf(stderr, "ringattn-golden: %s %s: Fortran order: np.ascontiguousarray(x) first\n", opt, path);
        goto done;
    }
    if (!(raw = (unsigned char *)malloc((size_t)count * es)) || !(*data = (int32_t *)malloc(sizeof(int32_t) * (size_t)count)))
        { fprintf(stderr, "ringattn-golden: out of memory\n"); goto done; }
    if (fread(raw, es, (size_t)count, f) != (size_t)count || fgetc(f) != EOF) goto bad_file;
    for (x = 0; x < (size_t)count; x++) {
        unsigned char *b = raw + x * es;
        uint64_t u = 0;
        size_t k;
        for (k = 0; k < es; k++) u |= (uint64_t)b[big ? es - 1 - k : k] << (8 * k);
        if (es == 4) v = (int64_t)(int32_t)(uint32_t)u;
        else v = (int64_t)u;
        if (v < -2147483647 - 1 || v > 2147483647) {
            fprintf(stderr, "ringattn-golden: %s %s: value %lld does not fit int32\n", opt, path, (long long)v);
            goto done;
        }
        (*data)[x] = (int32_t)v;
    }
    *ndim = rank;
    ok = 1;
    goto done;
bad_file:
    fprintf(stderr, "ringattn-golden: %s %s: not a whole .npy file\n", opt, path);
done:
    fclose(f);
    free(hdr); free(raw);
    if (!ok) { free(*data); *data = NULL; }
    return ok ? 0 : -1;
}

static int cmd_compute_kvcache(int argc, char **argv)
{
    options o; const char *pos[8]; int npos, rc = EXIT_BAD, i, nout = 0, st, ndim;
    ringattn_npy_array in[5]; results r; folder F; char path[4096], err[512];
    ringattn_kvcache kv; ringattn_config cfg;
    int32_t *lens = NULL, *table = NULL; int64_t dims[2], S = 0, s, b;
    char (*fname)[48] = NULL; const char **names = NULL; int *rank = NULL;
    ringattn_tensor *so = NULL, *sl = NULL, **t = NULL;
    memset(&r, 0, sizeof r); memset(in, 0, sizeof in);
    if ((rc = parse_args(argc, argv, &o, pos, &npos))) return rc;
    if (npos != 3 && npos != 5) return bad("compute-kvcache needs Q.npy K_CACHE.npy V_CACHE.npy [K_NEW.npy V_NEW.npy]%s", "");
    if (!o.seqlens_path[0]) return bad("compute-kvcache needs --cache-seqlens FILE (int32, one entry per sequence)%s", "");
    if (o.max_logit) return bad("compute-kvcache does not take --max-logit%s", "");
    if (o.write_splits && o.num_splits <= 1 && o.split_size == 0)
        o.num_splits = 1;   /* --splits alone: the one split's partial */
    rc = EXIT_BAD;
    if (load_inputs(pos, npos, in, o.fp8)) return EXIT_BAD;
    b = in[0].t.shape[0];
    if (load_score_options(&o, &in[0].t, &in[1].t)) goto out;
    if (load_int32("--cache-seqlens", o.seqlens_path, &lens, dims, &ndim)) goto out;
    if (dims[0] * dims[1] != b) {
        fprintf(stderr, "ringattn-golden: --cache-seqlens %s: %lld entries, one per sequence (%lld) expected\n",
                o.seqlens_path, (long long)(dims[0] * dims[1]), (long long)b);
        goto out;
    }
    memset(&kv, 0, sizeof kv);
    if (o.table_path[0]) {
        if (load_int32("--block-table", o.table_path, &table, dims, &ndim)) goto out;
        if (ndim == 1 && b == 1) { dims[1] = dims[0]; dims[0] = 1; }
        if (dims[0] != b) {
            fprintf(stderr, "ringattn-golden: --block-table %s: %lld rows, one per sequence (%lld) expected\n",
                    o.table_path, (long long)dims[0], (long long)b);
            goto out;
        }
        kv.block_table = table; kv.max_blocks = dims[1];
    }
    kv.k_cache = &in[1].t; kv.v_cache = &in[2].t; kv.cache_seqlens = lens;
    if (npos == 5) { kv.k_new = &in[3].t; kv.v_new = &in[4].t; }
    kv.num_splits = o.num_splits; kv.split_size = o.split_size;
    cfg = o.cfg;
    cfg.error_detail = err; cfg.error_detail_size = sizeof err; err[0] = 0;
    if (o.write_splits) {
        S = ringattn_kvcache_num_splits(&cfg, &kv, b);
        if (S < 0) { fprintf(stderr, "ringattn-golden: %s: %s\n", ringattn_strerror((int)S), err); goto out; }
    }
    /* the files: out, lse, and with --splits split_SSS_out / split_SSS_lse */
    nout = 2 + 2 * (int)S;
    fname = (char (*)[48])calloc((size_t)nout, sizeof *fname);
    names = (const char **)calloc((size_t)nout, sizeof *names);
    rank = (int *)calloc((size_t)nout, sizeof *rank);
    t = (ringattn_tensor **)calloc((size_t)nout, sizeof *t);
    so = (ringattn_tensor *)calloc((size_t)(S + 1), sizeof *so);
    sl = (ringattn_tensor *)calloc((size_t)(S + 1), sizeof *sl);
    if (!fname || !names || !rank || !t || !so || !sl) { fprintf(stderr, "ringattn-golden: out of memory\n"); goto out; }
    {
        int64_t nq = in[0].t.shape[1], h = in[0].t.shape[2], dv = in[2].t.shape[3];
        if (!alloc_like(&r.out, o.dtype, b, nq, h, dv, 0) || !alloc_like(&r.lse, o.dtype, b, h, nq, 1, 1)) {
            fprintf(stderr, "ringattn-golden: out of memory\n"); goto out;
        }
        for (s = 0; s < S; s++)
            if (!alloc_like(&so[s], o.dtype, b, nq, h, dv, 0) || !alloc_like(&sl[s], o.dtype, b, h, nq, 1, 1)) {
                fprintf(stderr, "ringattn-golden: out of memory\n"); goto out;
            }
    }
    names[0] = "out.npy"; t[0] = &r.out; rank[0] = 4;
    names[1] = "lse.npy"; t[1] = &r.lse; rank[1] = 3;
    for (s = 0; s < S; s++) {
        snprintf(fname[2 + 2 * s], sizeof fname[0], "split_%03lld_out.npy", (long long)s);
        snprintf(fname[3 + 2 * s], sizeof fname[0], "split_%03lld_lse.npy", (long long)s);
        names[2 + 2 * s] = fname[2 + 2 * s]; t[2 + 2 * s] = &so[s]; rank[2 + 2 * s] = 4;
        names[3 + 2 * s] = fname[3 + 2 * s]; t[3 + 2 * s] = &sl[s]; rank[3 + 2 * s] = 3;
    }
    if (S > 0) { kv.split_out = so; kv.split_lse = sl; kv.num_split_outputs = S; }
    st = ringattn_forward_kvcache(&cfg, &kv, &in[0].t, &r.out, &r.lse);
    if (st != RINGATTN_OK) { fprintf(stderr, "ringattn-golden: %s: %s\n", ringattn_strerror(st), err); goto out; }
    if (folder_open(&F, o.out_dir, o.force, names, nout)) goto out;
    rc = EXIT_PASS;
    for (i = 0; i < nout && rc == EXIT_PASS; i++) {   /* staged as NAME.partial, then committed together */
        folder_stage(&F, names[i], path, sizeof path);
        if (save_path(path, t[i], rank[i])) rc = EXIT_BAD;
        else folder_point(&F);
    }
    if (rc == EXIT_PASS && folder_commit(&F, &o, "compute-kvcache", pos, npos, names, nout)) rc = EXIT_BAD;
    for (i = 0; rc == EXIT_PASS && i <= nout; i++)
        printf("wrote %s/%s\n", o.out_dir, i < nout ? names[i] : OPTIONS_FILE);
    folder_close(&F);
out:
    results_free(&r);
    for (s = 0; so && sl && s < S; s++) { free(so[s].data); free(sl[s].data); }
    free(so); free(sl); free(fname); free(names); free(rank); free(t);
    free(lens); free(table);
    for (i = 0; i < npos; i++) ringattn_npy_free(&in[i]);
    free_score_options(&o);
    return rc;
}

/* The output named `what` of the case in dir computed in the port's precision prec (the
   precision emulation: compute f32, P rounded to prec unless it is f32), stored as dt (the
   port's dtype for it), in one of three orders: 0 the kernel, one ring member; 1 the kernel
   as a ring of 2; 2 eager attention (the scores and dP rounded too). */
static int baseline_from(const options *o, const char *dir, const char *what, int want, ringattn_dtype dt,
                         int order, results *r, ringattn_tensor *pick, ringattn_dtype *used)
{
    ringattn_dtype prec;
    char p[4][4096]; const char *paths[4]; const char *names[4] = { "q", "k", "v", "dout" };
    ringattn_npy_array in[4]; ringattn_config cfg; int n, i, rc = 0;
    ringattn_tensor conv[4]; void *owned[4] = { NULL, NULL, NULL, NULL };
    options so = *o;   /* its score options' files read here, for these inputs */
    int grad = !strcmp(what, "dq") || !strcmp(what, "dk") || !strcmp(what, "dv") || !strcmp(what, "dsinks") ||
               !strcmp(what, "dbias");
    if (strcmp(what, "out") && strcmp(what, "lse") && strcmp(what, "max_logit") && !grad) {
        fprintf(stderr, "ringattn-golden: --what must be out, lse, max_logit, dq, dk, dv, dsinks or dbias (got '%s')\n", what);
        return -1;
    }
    n = grad ? 4 : 3;
    for (i = 0; i < n; i++) { snprintf(p[i], sizeof p[i], "%s/%s.npy", dir, names[i]); paths[i] = p[i]; }
    if (load_inputs(paths, n, in, o->fp8)) return -1;
    so.sinks_buf = so.alibi_buf = NULL; so.docq_buf = so.dock_buf = NULL;
    memset(&so.bias_arr, 0, sizeof so.bias_arr); memset(&so.mask_arr, 0, sizeof so.mask_arr);
    if (load_score_options(&so, &in[0].t, &in[1].t)) {
        for (i = 0; i < n; i++) ringattn_npy_free(&in[i]);
        return -1;
    }
    if ((!strcmp(what, "dsinks") && !so.cfg.sinks) || (!strcmp(what, "dbias") && !so.cfg.bias)) {
        fprintf(stderr, "ringattn-golden: --what %s needs the case's %s\n", what, what[1] == 's' ? "--sinks" : "--bias");
        free_score_options(&so);
        for (i = 0; i < n; i++) ringattn_npy_free(&in[i]);
        return -1;
    }
    cfg = so.cfg;
    /* auto: the inputs' low-precision type, else the port's output type when low, else f32 */
    prec = want >= 0 ? (ringattn_dtype)want
         : (in[0].t.dtype == RINGATTN_BF16 || in[0].t.dtype == RINGATTN_F16 || in[0].t.dtype == RINGATTN_FP8_E4M3 ||
            in[0].t.dtype == RINGATTN_FP8_E5M2) ? in[0].t.dtype
         : (dt == RINGATTN_BF16 || dt == RINGATTN_F16) ? dt : RINGATTN_F32;
    *used = prec;
    cfg.compute = RINGATTN_F32;           /* the port's precision: f32 products, P (and S) rounded */
    cfg.ring_size = order == 1 ? 2 : 1;
    cfg.partition = RINGATTN_CONTIGUOUS;
    cfg.round_p = prec != RINGATTN_F32;
    cfg.p_dtype = (prec == RINGATTN_FP8_E5M2) ? RINGATTN_FP8_E4M3 : prec;   /* fp8 kernels round P to e4m3 */
    cfg.round_s = order == 2 && cfg.round_p && prec != RINGATTN_FP8_E4M3 && prec != RINGATTN_FP8_E5M2;
    cfg.round_block = cfg.round_state = 0;
    for (i = 0; i < n; i++) {   /* inputs stored as the port stores them */
        ringattn_tensor *t = &in[i].t;
        if (prec != RINGATTN_F32 && t->dtype != prec) {
            int64_t x, cnt = t->shape[0] * t->shape[1] * t->shape[2] * t->shape[3];
            void *h = malloc((size_t)cnt * ringattn__dtype_size(prec));
            if (!h) { fprintf(stderr, "ringattn-golden: out of memory\n"); rc = -1; goto done; }
            for (x = 0; x < cnt; x++) {   /* contiguous copies: in[i] is C order as loaded */
                int64_t at[4], y = x;
                at[3] = y % t->shape[3]; y /= t->shape[3]; at[2] = y % t->shape[2]; y /= t->shape[2];
                at[1] = y % t->shape[1]; at[0] = y / t->shape[1];
                ringattn__store(h, prec, x, ringattn__load(t->data, t->dtype, ringattn__index(t, at[0], at[1], at[2], at[3])));
            }
            conv[i] = ringattn_tensor_bnhd(h, prec, t->shape[0], t->shape[1], t->shape[2], t->shape[3]);
            owned[i] = h;
        } else {
            conv[i] = *t;
        }
    }
    rc = run_ex(&cfg, dt, &conv[0], &conv[1], &conv[2], grad ? &conv[3] : NULL, !strcmp(what, "max_logit"), r);
done:
    for (i = 0; i < n; i++) free(owned[i]);
    for (i = 0; i < n; i++) ringattn_npy_free(&in[i]);
    free_score_options(&so);
    if (rc) return -1;
    *pick = !strcmp(what, "out") ? r->out : !strcmp(what, "lse") ? r->lse : !strcmp(what, "max_logit") ? r->max_logit
          : !strcmp(what, "dq") ? r->dq : !strcmp(what, "dk") ? r->dk : !strcmp(what, "dv") ? r->dv
          : !strcmp(what, "dsinks") ? r->dsinks : r->dbias;
    if (!strcmp(what, "dbias") && so.bias_rank < 4) {   /* as the bias file is shaped: leading 1s dropped */
        int x, lead = 4 - so.bias_rank;
        ringattn_tensor t = *pick;
        for (x = 0; x < 4; x++) {
            pick->shape[x] = x + lead < 4 ? t.shape[x + lead] : 1;
            pick->stride[x] = x + lead < 4 ? t.stride[x + lead] : 1;
        }
    }
    return 0;
}

static int cmd_compare(int argc, char **argv)
{
    options o, rec; const char *pos[8]; int npos, rc, st, i, have_rec = 0;
    ringattn_npy_array got, ref, base; results br; ringattn_tensor bt, rt, *bp = NULL;
    ringattn_compare_policy pol; ringattn_compare_result res;
    char err[512], what[64], report[8192], rec_path[4096]; const char *axes;
    ringattn_dtype prec_used = RINGATTN_F32; double other_err = 0, other_mismatch = 0;
    ringattn_config c = ringattn_default_config();
    const char *heatmap = take_option(&argc, argv, "--heatmap");
    if (heatmap && !heatmap[0]) return bad("--heatmap needs a file name%s", "");
    if ((rc = parse_args(argc, argv, &o, pos, &npos))) return rc;
    if (npos != 2) return bad("compare needs GOT.npy REF.npy%s", "");
    if (o.baseline && o.baseline_from) return bad("give --baseline or --baseline-from, not both%s", "");
    memset(&br, 0, sizeof br); memset(&base, 0, sizeof base);
    if (load(pos[0], &got, 0)) return EXIT_BAD;
    if (load(pos[1], &ref, 0)) { ringattn_npy_free(&got); return EXIT_BAD; }
    rc = EXIT_PASS;
    if (o.baseline) {
        if (load(o.baseline, &base, 0)) rc = EXIT_BAD; else { bt = base.t; bp = &bt; }
    }
    if (o.what) snprintf(what, sizeof what, "%s", o.what);
    else {   /* REF's file name without directory and .npy */
        const char *s = strrchr(pos[1], '/'); size_t n;
        s = s ? s + 1 : pos[1];
        n = strlen(s);
        if (n > 4 && !strcmp(s + n - 4, ".npy")) n -= 4;
        if (n >= sizeof what) n = sizeof what - 1;
        memcpy(what, s, n); what[n] = 0;
    }
    if (rc == EXIT_PASS) {
        /* REF next to an options file was written by compute: trusted only as its manifest
           lists it, and (--baseline-from) with the options recorded there, the same mask */
        const char *slash = strrchr(pos[1], '/'); char refdir[3072]; manifest man;
        if (slash) snprintf(refdir, sizeof refdir, "%.*s", (int)(slash - pos[1]), pos[1]);
        else snprintf(refdir, sizeof refdir, ".");
        snprintf(rec_path, sizeof rec_path, "%s/%s", refdir, OPTIONS_FILE);
        st = read_options(rec_path, &rec, &man);
        if (st < 0) rc = EXIT_BAD;
        else if (st == 0) {
            int v = verify_listed(&man, refdir, slash ? slash + 1 : pos[1]);
            if (v == 1)
                fprintf(stderr, "ringattn-golden: %s is not one of the files %s lists: not written by the run those "
                        "options describe (an earlier run's, or another program's); compute the folder again\n",
                        pos[1], rec_path);
            if (v != 0) rc = EXIT_BAD;
            manifest_free(&man);
        }
    }
    if (rc == EXIT_PASS && o.baseline_from) {
        if (st == 0) {
            char mine[2048], theirs[2048];
            int k = disagreement(&o, &rec, mine, theirs, sizeof mine);
            have_rec = 1;
            if (rec.given & GIVEN_KVCACHE) {
                fprintf(stderr, "ringattn-golden: %s records a compute-kvcache run: --baseline-from computes dense "
                        "attention from q.npy, k.npy, v.npy and has no KV-cache baseline; compare with --atol / --rtol\n",
                        rec_path);
                rc = EXIT_BAD;
            }
            else if (k >= 0) {
                fprintf(stderr, "ringattn-golden: %s %s disagrees with %s %s, which %s records as the option REF was "
                        "computed with: drop it, or compute REF again with it\n", recorded[k].name, mine,
                        recorded[k].name, theirs[0] ? theirs : "(unset)", rec_path);
                rc = EXIT_BAD;
            }
        }
        if (rc == EXIT_PASS) {
            /* the kernel in the port's precision sets the bound, with the larger error of two other
               orders (a ring of 2; eager attention when the precision is low) */
            int ord;
            for (ord = 0; ord < 3 && rc == EXIT_PASS; ord++) {
                results other; ringattn_tensor ot; ringattn_compare_result orr; ringattn_dtype u;
                if (ord == 0) {
                    if (baseline_from(have_rec ? &rec : &o, o.baseline_from, what, o.precision, got.t.dtype, 0, &br,
                                      &bt, &prec_used)) rc = EXIT_BAD; else bp = &bt;
                    continue;
                }
                if (ord == 2 && (prec_used == RINGATTN_F32 || prec_used == RINGATTN_FP8_E4M3 ||
                                 prec_used == RINGATTN_FP8_E5M2)) break;   /* no eager order there */
                memset(&other, 0, sizeof other);
                if (baseline_from(have_rec ? &rec : &o, o.baseline_from, what, (int)prec_used, got.t.dtype, ord,
                                  &other, &ot, &u)) {
                    if (ord == 1) continue;   /* too short for a ring of 2: that order is left out */
                    rc = EXIT_BAD; break;
                }
                rt = ref.t;
                align_lead(&rt, &got.t);
                align_lead(&ot, &got.t);
                c.error_detail = err; c.error_detail_size = sizeof err;
                pol = ringattn_compare_rule_policy(o.rule, got.t.dtype, what, 0, 0);   /* MAGI's atol, rtol */
                if (ringattn_compare(&ot, &rt, NULL, &pol, &orr, &c) == RINGATTN_OK) {
                    double e = o.rule == RINGATTN_RULE_FLEX ? orr.mean_abs : orr.max_abs;
                    if (isfinite(e) && e > other_err) other_err = e;
                    if (orr.mismatch > other_mismatch) other_mismatch = orr.mismatch;
                }
                results_free(&other);
            }
        }
    }
    if (rc == EXIT_PASS) {
        pol = ringattn_compare_rule_policy(o.rule, got.t.dtype, what, (have_rec ? rec.cfg.softcap : o.cfg.softcap) > 0,
                                           0);
        pol.baseline_err = other_err;
        pol.baseline_mismatch = other_mismatch;
        if (o.have_atol) pol.atol = o.atol;
        if (o.have_rtol) pol.rtol = o.rtol;
        if (o.have_k) pol.k = o.k;
        if (o.have_eps) pol.eps = o.eps;
        pol.empty_lse = o.empty_lse;
        c.error_detail = err; c.error_detail_size = sizeof err;
        rt = ref.t;
        align_lead(&rt, &got.t);            /* varlen lse: (h, total_q) against (1, h, total_q) */
        if (bp) align_lead(bp, &got.t);
        st = ringattn_compare(&got.t, &rt, bp, &pol, &res, &c);
        if (st != RINGATTN_OK) {
            fprintf(stderr, "ringattn-golden: cannot compare %s with %s: %s\n", pos[0], pos[1], err);
            rc = EXIT_BAD;
        } else {
            axes = o.axes ? o.axes : got.info.ndim == 4 ? "bnhd" : got.info.ndim == 3 ? "bhn." :
                   got.info.ndim == 2 ? (!strcmp(what, "lse") ? "hn.." : "ij..") : "i...";
            if (!o.quiet) {
                printf("got: %s  %s, shape (", pos[0], got.info.fortran_order ? "Fortran order" : "C order");
                for (i = 0; i < got.info.ndim; i++) printf(i ? ", %lld" : "%lld", (long long)got.info.dims[i]);
                printf(")\nref: %s\n", pos[1]);
                if (o.baseline) printf("baseline: %s\n", o.baseline);
                if (o.baseline_from) printf("baseline: '%s' of ringattn computed in the port's precision (%s: f32 "
                                            "products%s, stored as GOT; other orders' error %.3e) from %s/, %s\n",
                                            what, prec_used == RINGATTN_BF16 ? "bf16" : prec_used == RINGATTN_F16 ?
                                            "f16" : prec_used == RINGATTN_FP8_E4M3 ? "fp8 e4m3" :
                                            prec_used == RINGATTN_FP8_E5M2 ? "fp8 e5m2" : "f32",
                                            prec_used == RINGATTN_F32 ? "" : ", P rounded to it",
                                            other_err, o.baseline_from, have_rec ? "with the options recorded in" :
                                            "with the options given here (none recorded next to REF)");
                if (have_rec) printf("          %s\n", rec_path);
                ringattn_compare_format(&res, axes, report, sizeof report);
                fputs(report, stdout);
            } else {
                printf("%s: %s (max abs error %.3e, %lld outside)\n", pos[0], res.pass ? "PASS" : "FAIL",
                       res.max_abs, (long long)res.outside);
            }
            rc = res.pass ? EXIT_PASS : EXIT_OUTSIDE;
            if (heatmap && compare_heatmap(heatmap, &got.t, &ref.t, &res, &o, pos[1], pos[0])) rc = EXIT_BAD;
        }
    }
    results_free(&br);
    ringattn_npy_free(&base);
    ringattn_npy_free(&got);
    ringattn_npy_free(&ref);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) { print_usage(stderr); return EXIT_BAD; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        print_usage(stdout);
        fputs(steps_usage, stdout);
        return EXIT_PASS;
    }
    if (!strcmp(argv[1], "compute")) return cmd_compute(argc, argv);
    if (!strcmp(argv[1], "compute-kvcache")) return cmd_compute_kvcache(argc, argv);
    if (!strcmp(argv[1], "compare")) return cmd_compare(argc, argv);
    if (!strcmp(argv[1], "steps")) return cmd_steps(argc, argv);
    if (!strcmp(argv[1], "compare-steps")) return cmd_compare_steps(argc, argv);
    if (!strcmp(argv[1], "trace")) return cmd_trace(argc, argv);
    return bad("unknown command '%s' (compute, compute-kvcache, compare, steps, compare-steps or trace)", argv[1]);
}
