/* ringattn_layer_ref.c - the naive f64 layer oracle (see ringattn_layer_ref.h). */
#include "ringattn_layer_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* out[r][o] = sum_i x[r][i] w[o][i] + bias[o], rows r = 0..m-1, o, i = 0..E-1 */
static void linear(int64_t m, int64_t E, const double *x, const double *w, const double *bias, double *out)
{
    int64_t r, o, i;
    for (r = 0; r < m; r++)
        for (o = 0; o < E; o++) {
            double s = bias ? bias[o] : 0.0;
            for (i = 0; i < E; i++) s += x[r * E + i] * w[o * E + i];
            out[r * E + o] = s;
        }
}

/* dw[o][i] += sum_r g[r][o] x[r][i];  db[o] += sum_r g[r][o];  dx[r][i] = sum_o g[r][o] w[o][i] */
static void linear_back(int64_t m, int64_t E, const double *x, const double *w, const double *g,
                        double *dx, double *dw, double *db)
{
    int64_t r, o, i;
    for (o = 0; o < E; o++) {
        db[o] = 0;
        for (r = 0; r < m; r++) db[o] += g[r * E + o];
        for (i = 0; i < E; i++) {
            double s = 0;
            for (r = 0; r < m; r++) s += g[r * E + o] * x[r * E + i];
            dw[o * E + i] = s;
        }
    }
    for (r = 0; r < m; r++)
        for (i = 0; i < E; i++) {
            double s = 0;
            for (o = 0; o < E; o++) s += g[r * E + o] * w[o * E + i];
            dx[r * E + i] = s;
        }
}

static ref_problem attn_problem(const ref_layer *L)
{
    ref_problem p = L->attn;
    p.b = L->b; p.nq = L->nq; p.nk = L->nk; p.h = p.hk = L->H; p.d = p.dv = L->E / L->H;
    if (p.scale == 0) p.scale = 1.0 / sqrt((double)p.d);
    return p;
}

/* the forward up to the LayerNorm: Q, K, V, A, and xhat (LN) with each row's rstd */
static int forward_parts(const ref_layer *L, const double *xq, const double *xk, const double *xv,
                         double *Q, double *K, double *V, double *A, double *xhat, double *rstd)
{
    ref_problem p;
    int64_t mq = L->b * L->nq, mk = L->b * L->nk, E = L->E, r, j;
    if (L->E < 1 || L->H < 1 || L->E % L->H) return -1;
    p = attn_problem(L);
    linear(mq, E, xq, L->wq, L->bq, Q);
    linear(mk, E, xk, L->wk, L->bk, K);
    linear(mk, E, xv, L->wv, L->bv, V);
    if (ref_forward(&p, Q, K, V, A, NULL) != 0) return -1;   /* [b, n, E] is [b, n, H, d] */
    for (r = 0; r < mq; r++) {
        double mu = 0, var = 0;
        for (j = 0; j < E; j++) mu += A[r * E + j];
        mu /= (double)E;
        for (j = 0; j < E; j++) var += (A[r * E + j] - mu) * (A[r * E + j] - mu);
        var /= (double)E;
        rstd[r] = 1.0 / sqrt(var + L->ln_eps);
        for (j = 0; j < E; j++) xhat[r * E + j] = (A[r * E + j] - mu) * rstd[r];
    }
    return 0;
}

/* Z = xhat * gamma + beta with LayerNorm, else A */
static void normed(const ref_layer *L, const double *A, const double *xhat, double *Z)
{
    int64_t r, j, mq = L->b * L->nq, E = L->E;
    for (r = 0; r < mq; r++)
        for (j = 0; j < E; j++)
            Z[r * E + j] = L->layer_norm ? xhat[r * E + j] * (L->gamma ? L->gamma[j] : 1.0) + (L->beta ? L->beta[j] : 0.0)
                                         : A[r * E + j];
}

int ref_layer_forward(const ref_layer *L, const double *xq, const double *xk, const double *xv, double *y)
{
    int64_t mq = L->b * L->nq, mk = L->b * L->nk, E = L->E;
    double *Q = (double *)malloc(sizeof(double) * (size_t)(mq * E * 4 + mk * E * 2 + mq));
    int rc = -1;
    if (!Q) return -1;
    {
        double *K = Q + mq * E, *V = K + mk * E, *A = V + mk * E, *X = A + mq * E, *Z = X + mq * E,
               *rs = Z + mq * E;
        if (forward_parts(L, xq, xk, xv, Q, K, V, A, X, rs) == 0) {
            normed(L, A, X, Z);
            linear(mq, E, Z, L->wo, L->bo, y);
            rc = 0;
        }
    }
    free(Q);
    return rc;
}

int ref_layer_backward(const ref_layer *L, const double *xq, const double *xk, const double *xv,
                       const double *dy, double *dxq, double *dxk, double *dxv,
                       double *dwq, double *dwk, double *dwv, double *dbq, double *dbk, double *dbv,
                       double *dwo, double *dbo, double *dgamma, double *dbeta)
{
    int64_t mq = L->b * L->nq, mk = L->b * L->nk, E = L->E, r, i, j;
    double *Q = (double *)malloc(sizeof(double) * (size_t)(mq * E * 7 + mk * E * 4 + mq));
    int rc = -1;
    if (!Q) return -1;
    {
        double *K = Q + mq * E, *V = K + mk * E, *A = V + mk * E, *X = A + mq * E, *Z = X + mq * E,
               *dZ = Z + mq * E, *dA = dZ + mq * E, *dQ = dA + mq * E, *dK = dQ + mq * E, *dV = dK + mk * E,
               *rs = dV + mk * E;
        ref_problem p = attn_problem(L);
        if (forward_parts(L, xq, xk, xv, Q, K, V, A, X, rs) != 0) goto out;
        normed(L, A, X, Z);
        /* output projection */
        linear_back(mq, E, Z, L->wo, dy, dZ, dwo, dbo);
        /* LayerNorm: dgamma, dbeta, and dA = J^T (dZ * gamma), J the Jacobian of xhat in A */
        for (j = 0; j < E; j++) { dgamma[j] = 0; dbeta[j] = 0; }
        for (r = 0; r < mq; r++) {
            const double *xh = X + r * E, *dz = dZ + r * E;
            if (!L->layer_norm) { for (i = 0; i < E; i++) dA[r * E + i] = dz[i]; continue; }
            for (j = 0; j < E; j++) { dgamma[j] += dz[j] * xh[j]; dbeta[j] += dz[j]; }
            for (i = 0; i < E; i++) {
                double s = 0;
                for (j = 0; j < E; j++) {
                    double jac = rs[r] * ((i == j ? 1.0 : 0.0) - 1.0 / (double)E - xh[i] * xh[j] / (double)E);
                    s += dz[j] * (L->gamma ? L->gamma[j] : 1.0) * jac;
                }
                dA[r * E + i] = s;
            }
        }
        /* attention */
        if (ref_backward(&p, Q, K, V, dA, dQ, dK, dV) != 0) goto out;
        /* input projections */
        linear_back(mq, E, xq, L->wq, dQ, dxq, dwq, dbq);
        linear_back(mk, E, xk, L->wk, dK, dxk, dwk, dbk);
        linear_back(mk, E, xv, L->wv, dV, dxv, dwv, dbv);
        rc = 0;
    }
out:
    free(Q);
    return rc;
}
