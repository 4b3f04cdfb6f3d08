/* golden_heatmap.c - the error of a comparison drawn as a self-contained SVG over (position,
   head), with the ring's tile and chunk boundaries: `ringattn-golden compare --heatmap` and the
   Python package's Report.heatmap() both include this one writer (after ringattn.h with its
   implementation: it reads tensors through ringattn__npy_get and the ring's deal through
   ringattn__pieces). Not a translation unit of its own. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *partition_name(ringattn_partition p)
{
    return p == RINGATTN_ZIGZAG ? "zigzag" : p == RINGATTN_STRIPED ? "striped" : "contiguous";
}

/* the error of got against ref over (position, head): max over batch and dim of err / allowed
   (policy (a): atol + rtol |ref|; (b): the bound), > 1 outside; tile and chunk boundaries
   of the ring (--ring, --partition) drawn over it */
static int write_heatmap(const char *path, const ringattn_tensor *got, const ringattn_tensor *ref,
                         const ringattn_compare_result *res, int ring_size, ringattn_partition partition,
                         const char *what, const char *gotname)
{
    int is_lse = got->shape[3] == 1 && !strcmp(what, "lse");
    int keys = !strcmp(what, "dk") || !strcmp(what, "dv");
    int64_t n = is_lse ? got->shape[2] : got->shape[1], H = is_lse ? got->shape[1] : got->shape[2];
    int64_t nb = n > 512 ? 512 : n, b, x, hh, c, dim = got->shape[3];
    double *m = (double *)calloc((size_t)(nb * H), sizeof(double)), cw, ch, left = 60, top = 50, W, Hh, worst = 0;
    unsigned char *nf = (unsigned char *)calloc((size_t)(nb * H), 1);
    int p = ring_size, i, tile = keys ? RINGATTN_TILE_K : RINGATTN_TILE_Q; FILE *f;
    if (!m || !nf) { free(m); free(nf); return -1; }
    for (b = 0; b < got->shape[0]; b++)
    for (x = 0; x < n; x++)
    for (hh = 0; hh < H; hh++)
    for (c = 0; c < (is_lse ? 1 : dim); c++) {
        int64_t at[4]; double g, rf, e, allowed; int64_t cell = (hh * nb) + x * nb / n;
        at[0] = b; at[1] = is_lse ? hh : x; at[2] = is_lse ? x : hh; at[3] = c;
        g = ringattn__npy_get(got, at); rf = ringattn__npy_get(ref, at);
        if (g != g || rf != rf || isinf(g) || isinf(rf)) {
            if (!((g != g && rf != rf) || g == rf)) nf[cell] = 1;
            continue;
        }
        e = fabs(g - rf);
        allowed = res->policy == 'b' ? res->bound : res->used.atol + res->used.rtol * fabs(rf);
        e = allowed > 0 ? e / allowed : (e > 0 ? INFINITY : 0);
        if (e > m[cell]) m[cell] = e;
        if (e > worst) worst = e;
    }
    cw = nb >= 256 ? 2.0 : nb >= 64 ? 6.0 : 14.0; ch = H > 32 ? 6.0 : 16.0;
    W = left + nb * cw + 40; Hh = top + H * ch + 64;
    if (W < 900) W = 900;   /* room for the captions */
    f = fopen(path, "w");
    if (!f) { free(m); free(nf); return -1; }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"11\">\n", W, Hh, W, Hh);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"10\" y=\"18\" font-size=\"13\" font-weight=\"bold\">%s: error / allowed over (%s position, head)%s</text>\n",
            gotname, keys ? "key" : "query", n > nb ? " (positions binned)" : "");
    fprintf(f, "<text x=\"10\" y=\"34\" fill=\"#444\">%s, worst %.3g, %lld element(s) outside; policy %s; max over batch and dim</text>\n",
            res->pass ? "PASS" : "FAIL", worst, (long long)res->outside, res->policy == 'b' ? "(b) baseline" : "(a) atol + rtol |ref|");
    for (hh = 0; hh < H; hh++)
        for (x = 0; x < nb; x++) {
            double e = m[hh * nb + x], t; char col[16];
            if (nf[hh * nb + x]) snprintf(col, sizeof col, "#000000");
            else if (e <= 1) {   /* inside: white to grey by log10(e) from 1e-4 to 1 */
                t = e <= 1e-4 ? 0 : (log10(e) + 4) / 4; snprintf(col, sizeof col, "#%02x%02x%02x",
                    (int)(250 - 110 * t), (int)(250 - 110 * t), (int)(250 - 90 * t));
            } else {            /* outside: yellow to dark red by log10(e) from 1 to 1e4 */
                t = e >= 1e4 ? 1 : log10(e) / 4; snprintf(col, sizeof col, "#%02x%02x%02x",
                    (int)(254 - 100 * t), (int)(217 - 200 * t), (int)(118 - 100 * t));
            }
            fprintf(f, "<rect class=\"cell\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n",
                    left + x * cw, top + hh * ch, cw, ch, col);
        }
    for (x = tile; x < n; x += tile)   /* score tiles */
        fprintf(f, "<line class=\"tile\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#636363\" stroke-dasharray=\"2,2\"/>\n",
                left + (double)x * nb / n * cw, top - 4, left + (double)x * nb / n * cw, top + H * ch + 4);
    if (p > 1 && partition != RINGATTN_STRIPED && (int64_t)2 * p <= n)   /* ring chunks */
        for (i = 0; i < p; i++) {
            ringattn__piece pc[2]; int np = ringattn__pieces(partition, n, p, i, pc), k;
            for (k = 0; k < np; k++) {
                double xx = left + (double)pc[k].pos0 * nb / n * cw;
                fprintf(f, "<line class=\"chunk\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#3182bd\" stroke-width=\"1.5\"/>\n",
                        xx, top - 8, xx, top + H * ch + 8);
                if ((double)pc[k].count * nb / n * cw >= 16)   /* a label where it fits */
                    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"9\" fill=\"#3182bd\">m%d</text>\n", xx + 2, top - 10, i);
            }
        }
    for (hh = 0; hh < H; hh += (H > 32 ? 8 : 1))
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"9\">h%lld</text>\n", left - 4, top + hh * ch + ch / 2 + 3, (long long)hh);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"9\">0</text><text x=\"%.1f\" y=\"%.1f\" font-size=\"9\" text-anchor=\"end\">%lld</text>\n",
            left, top + H * ch + 16, left + nb * cw, top + H * ch + 16, (long long)(n - 1));
    fprintf(f, "<text x=\"10\" y=\"%.1f\" fill=\"#444\">white to grey: inside (1e-4 .. 1 of the allowed error); yellow to red: outside (1 .. 1e4); "
               "black: NaN/Inf on one side</text>\n", top + H * ch + 36);
    fprintf(f, "<text x=\"10\" y=\"%.1f\" fill=\"#444\">dashed: score tiles of %d; blue: the ring's chunks, by member (--ring %d, %s partition)</text>\n",
            top + H * ch + 52, tile, p, partition_name(partition));
    fprintf(f, "</svg>\n");
    free(m); free(nf);
    return fclose(f) ? -1 : 0;
}
