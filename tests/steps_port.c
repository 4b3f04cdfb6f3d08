/* steps_port.c - a stand-in for a ring-attention port under test, for `compare-steps`.

   It shares nothing with ringattn's ring: its own deal of positions (contiguous, zigzag,
   striped), a naive f64 block (two-pass softmax over the chunk held, the causal rule written
   out), and the running state kept as (out, lse) and merged in log space, as ring-flash-attn
   keeps it. It writes the per-step layout of `ringattn-golden steps` (forward only):
       DIR/member<i>/step<t>/{block_out,block_lse,out,lse}.npy, positions_q.npy, positions_k_step<t>.npy,
       and its final output DIR/out.npy [b, nq, h, dv]
   --break M,S shifts the causal mask of member M's block at step S by one (key j visible iff
   j <= i + off + 1): the deliberate bug compare-steps must locate.

   usage: steps_port --ring P [--causal bottom-right|top-left|none] [--partition contiguous|zigzag|striped]
                     [--break M,S] Q.npy K.npy V.npy -o DIR */
#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t cut(int64_t n, int parts, int i)   /* first position of part i of n */
{
    return (int64_t)i * (n / parts) + (i < n % parts ? i : n % parts);
}

/* positions member i owns, written to pos; returns the count */
static int64_t deal(const char *part, int64_t n, int p, int i, int64_t *pos)
{
    int64_t c = 0, x;
    if (!strcmp(part, "striped")) { for (x = i; x < n; x += p) pos[c++] = x; return c; }
    if (!strcmp(part, "zigzag")) {
        for (x = cut(n, 2 * p, i); x < cut(n, 2 * p, i + 1); x++) pos[c++] = x;
        for (x = cut(n, 2 * p, 2 * p - 1 - i); x < cut(n, 2 * p, 2 * p - i); x++) pos[c++] = x;
        return c;
    }
    for (x = cut(n, p, i); x < cut(n, p, i + 1); x++) pos[c++] = x;
    return c;
}

static int save_i64(const char *path, const int64_t *x, int64_t n)
{
    char hdr[128]; int len, pad; int64_t i; FILE *f = fopen(path, "wb");
    if (!f) return -1;
    len = snprintf(hdr, sizeof hdr, "{'descr': '<i8', 'fortran_order': False, 'shape': (%lld,), }", (long long)n);
    pad = (64 - (10 + len + 1) % 64) % 64;
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc((len + pad + 1) & 0xff, f); fputc(((len + pad + 1) >> 8) & 0xff, f);
    fwrite(hdr, 1, (size_t)len, f);
    while (pad--) fputc(' ', f);
    fputc('\n', f);
    for (i = 0; i < n; i++) { uint64_t u = (uint64_t)x[i]; int b; for (b = 0; b < 8; b++) fputc((int)((u >> (8 * b)) & 0xff), f); }
    return fclose(f) ? -1 : 0;
}

static int save(const char *path, double *data, int64_t a, int64_t b, int64_t c, int64_t d, int lse)
{
    ringattn_tensor t = lse ? ringattn_tensor_lse(data, RINGATTN_F64, a, b, c) : ringattn_tensor_bnhd(data, RINGATTN_F64, a, b, c, d);
    return ringattn_npy_save(path, &t, lse ? 3 : 4, NULL) == RINGATTN_OK ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *part = "contiguous", *dir = NULL, *files[3]; int nf = 0, p = 1, causal = 0, bm = -1, bs = -1, i, t, a;
    ringattn_npy_array in[3]; char path[4096];
    int64_t b, nq, nk, h, hk, d, dv, off, *qpos, *kpos, nqi, nki, bb, hh, r, j, c;
    double *q, *k, *v, *final;
    for (a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--ring") && a + 1 < argc) p = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--causal") && a + 1 < argc) {
            a++; causal = !strcmp(argv[a], "bottom-right") ? 1 : !strcmp(argv[a], "top-left") ? 2 : 0;
        }
        else if (!strcmp(argv[a], "--partition") && a + 1 < argc) part = argv[++a];
        else if (!strcmp(argv[a], "--break") && a + 1 < argc) { if (sscanf(argv[++a], "%d,%d", &bm, &bs) != 2) return 2; }
        else if (!strcmp(argv[a], "-o") && a + 1 < argc) dir = argv[++a];
        else if (nf < 3 && argv[a][0] != '-') files[nf++] = argv[a];
        else { fprintf(stderr, "steps_port: bad argument %s\n", argv[a]); return 2; }
    }
    if (nf != 3 || !dir || p < 1) { fprintf(stderr, "usage: steps_port --ring P ... Q K V -o DIR\n"); return 2; }
    for (a = 0; a < 3; a++)
        if (ringattn_npy_load(files[a], &in[a], NULL) != RINGATTN_OK) {
            fprintf(stderr, "steps_port: cannot read %s\n", files[a]); return 2;
        }
    /* contiguous f64 [b, n, h, d] copies, whatever the files' dtype and order */
    b = in[0].t.shape[0]; nq = in[0].t.shape[1]; h = in[0].t.shape[2]; d = in[0].t.shape[3];
    nk = in[1].t.shape[1]; hk = in[1].t.shape[2]; dv = in[2].t.shape[3];
    q = (double *)malloc((size_t)(b * nq * h * d) * sizeof(double));
    k = (double *)malloc((size_t)(b * nk * hk * d) * sizeof(double));
    v = (double *)malloc((size_t)(b * nk * hk * dv) * sizeof(double));
    qpos = (int64_t *)malloc((size_t)nq * sizeof(int64_t)); kpos = (int64_t *)malloc((size_t)nk * sizeof(int64_t));
    if (!q || !k || !v || !qpos || !kpos) return 2;
    for (a = 0; a < 3; a++) {
        double *dst = a == 0 ? q : a == 1 ? k : v; const ringattn_tensor *T = &in[a].t; int64_t x[4], e = 0;
        for (x[0] = 0; x[0] < T->shape[0]; x[0]++) for (x[1] = 0; x[1] < T->shape[1]; x[1]++)
        for (x[2] = 0; x[2] < T->shape[2]; x[2]++) for (x[3] = 0; x[3] < T->shape[3]; x[3]++)
            dst[e++] = ringattn__load(T->data, T->dtype, x[0] * T->stride[0] + x[1] * T->stride[1] + x[2] * T->stride[2] + x[3] * T->stride[3]);
    }
    off = causal == 1 ? nk - nq : 0;
    final = (double *)calloc((size_t)(b * nq * h * dv), sizeof(double));
    if (!final) return 2;
    for (i = 0; i < p; i++) {
        double *out, *lse, *bo, *bl;
        nqi = deal(part, nq, p, i, qpos);
        out = (double *)calloc((size_t)(b * nqi * h * dv), sizeof(double)); lse = (double *)malloc((size_t)(b * h * nqi) * sizeof(double));
        bo = (double *)calloc((size_t)(b * nqi * h * dv), sizeof(double)); bl = (double *)malloc((size_t)(b * h * nqi) * sizeof(double));
        if (!out || !lse || !bo || !bl) return 2;
        for (r = 0; r < b * h * nqi; r++) lse[r] = -INFINITY;
        snprintf(path, sizeof path, "%s/member%d/positions_q.npy", dir, i);
        if (save_i64(path, qpos, nqi)) { fprintf(stderr, "steps_port: cannot write %s\n", path); return 2; }
        for (t = 0; t < p; t++) {
            int src = ((i - t) % p + p) % p; int64_t shift = (i == bm && t == bs) ? 1 : 0;   /* the bug */
            nki = deal(part, nk, p, src, kpos);
            snprintf(path, sizeof path, "%s/member%d/positions_k_step%d.npy", dir, i, t);
            if (save_i64(path, kpos, nki)) { fprintf(stderr, "steps_port: cannot write %s\n", path); return 2; }
            for (bb = 0; bb < b; bb++) for (hh = 0; hh < h; hh++) for (r = 0; r < nqi; r++) {
                const double *qi = q + ((bb * nq + qpos[r]) * h + hh) * d;
                double m = -INFINITY, l = 0, *o = bo + ((bb * nqi + r) * h + hh) * dv, *so = out + ((bb * nqi + r) * h + hh) * dv;
                double *L = &lse[(bb * h + hh) * nqi + r], *BL = &bl[(bb * h + hh) * nqi + r], L2, wa, wb;
                int64_t kh = hh / (h / hk);
                double *s = (double *)malloc((size_t)(nki + 1) * sizeof(double));
                if (!s) return 2;
                for (j = 0; j < nki; j++) {   /* pass 1: the visible scores and their max */
                    const double *kj = k + ((bb * nk + kpos[j]) * hk + kh) * d; double x = 0;
                    if (causal && kpos[j] > qpos[r] + off + shift) { s[j] = -INFINITY; continue; }
                    for (c = 0; c < d; c++) x += qi[c] * kj[c];
                    s[j] = x / sqrt((double)d);
                    if (s[j] > m) m = s[j];
                }
                for (c = 0; c < dv; c++) o[c] = 0;
                if (m == -INFINITY) { *BL = -INFINITY; free(s); continue; }
                for (j = 0; j < nki; j++) {   /* pass 2: softmax-weighted values */
                    const double *vj = v + ((bb * nk + kpos[j]) * hk + kh) * dv; double e;
                    if (s[j] == -INFINITY) continue;
                    e = exp(s[j] - m); l += e;
                    for (c = 0; c < dv; c++) o[c] += e * vj[c];
                }
                for (c = 0; c < dv; c++) o[c] /= l;
                *BL = m + log(l);
                free(s);
                /* the running (out, lse), merged in log space */
                L2 = *L > *BL ? *L + log1p(exp(*BL - *L)) : *BL + log1p(exp(*L - *BL));
                wa = *L == -INFINITY ? 0 : exp(*L - L2); wb = exp(*BL - L2);
                for (c = 0; c < dv; c++) so[c] = so[c] * wa + o[c] * wb;
                *L = L2;
            }
            snprintf(path, sizeof path, "%s/member%d/step%d/block_out.npy", dir, i, t);
            if (save(path, bo, b, nqi, h, dv, 0)) return 2;
            snprintf(path, sizeof path, "%s/member%d/step%d/block_lse.npy", dir, i, t);
            if (save(path, bl, b, h, nqi, 1, 1)) return 2;
            snprintf(path, sizeof path, "%s/member%d/step%d/out.npy", dir, i, t);
            if (save(path, out, b, nqi, h, dv, 0)) return 2;
            snprintf(path, sizeof path, "%s/member%d/step%d/lse.npy", dir, i, t);
            if (save(path, lse, b, h, nqi, 1, 1)) return 2;
        }
        for (bb = 0; bb < b; bb++) for (r = 0; r < nqi; r++)   /* the final output, by position */
            memcpy(final + (bb * nq + qpos[r]) * h * dv, out + (bb * nqi + r) * h * dv, (size_t)(h * dv) * sizeof(double));
        free(out); free(lse); free(bo); free(bl);
    }
    snprintf(path, sizeof path, "%s/out.npy", dir);
    if (save(path, final, b, nq, h, dv, 0)) return 2;
    free(final);
    for (a = 0; a < 3; a++) ringattn_npy_free(&in[a]);
    free(q); free(k); free(v); free(qpos); free(kpos);
    return 0;
}
