/* snlvk: plain-C double-precision reference implementation of every op (see ref_ops.h). */
#include "ref/ref_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------ */
/* conv2d                                                                           */
/* ------------------------------------------------------------------------------ */

void ref_conv2d_forward(const double *x, const double *w, const double *b, double *y,
                        int N, int C, int H, int W, int K, int k, int stride, int pad)
{
    const int P = ref_out_size(H, k, stride, pad), Q = ref_out_size(W, k, stride, pad);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < K; o++)
            for (int p = 0; p < P; p++)
                for (int q = 0; q < Q; q++) {
                    double acc = b ? b[o] : 0.0;
                    for (int c = 0; c < C; c++)
                        for (int r = 0; r < k; r++) {
                            const int h = p * stride - pad + r;
                            if (h < 0 || h >= H) continue;
                            for (int s = 0; s < k; s++) {
                                const int ww = q * stride - pad + s;
                                if (ww < 0 || ww >= W) continue;
                                acc += x[(((long)n * C + c) * H + h) * W + ww] *
                                       w[(((long)o * C + c) * k + r) * k + s];
                            }
                        }
                    y[(((long)n * K + o) * P + p) * Q + q] = acc;
                }
}

void ref_conv2d_backward_data(const double *dy, const double *w, double *dx,
                              int N, int C, int H, int W, int K, int k, int stride, int pad)
{
    const int P = ref_out_size(H, k, stride, pad), Q = ref_out_size(W, k, stride, pad);
    memset(dx, 0, sizeof(double) * (size_t)N * C * H * W);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < K; o++)
            for (int p = 0; p < P; p++)
                for (int q = 0; q < Q; q++) {
                    const double g = dy[(((long)n * K + o) * P + p) * Q + q];
                    for (int c = 0; c < C; c++)
                        for (int r = 0; r < k; r++) {
                            const int h = p * stride - pad + r;
                            if (h < 0 || h >= H) continue;
                            for (int s = 0; s < k; s++) {
                                const int ww = q * stride - pad + s;
                                if (ww < 0 || ww >= W) continue;
                                dx[(((long)n * C + c) * H + h) * W + ww] +=
                                    g * w[(((long)o * C + c) * k + r) * k + s];
                            }
                        }
                }
}

void ref_conv2d_backward_filter(const double *dy, const double *x, double *dw, double *db,
                                int N, int C, int H, int W, int K, int k, int stride, int pad)
{
    const int P = ref_out_size(H, k, stride, pad), Q = ref_out_size(W, k, stride, pad);
    memset(dw, 0, sizeof(double) * (size_t)K * C * k * k);
    if (db) memset(db, 0, sizeof(double) * (size_t)K);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < K; o++)
            for (int p = 0; p < P; p++)
                for (int q = 0; q < Q; q++) {
                    const double g = dy[(((long)n * K + o) * P + p) * Q + q];
                    if (db) db[o] += g;
                    for (int c = 0; c < C; c++)
                        for (int r = 0; r < k; r++) {
                            const int h = p * stride - pad + r;
                            if (h < 0 || h >= H) continue;
                            for (int s = 0; s < k; s++) {
                                const int ww = q * stride - pad + s;
                                if (ww < 0 || ww >= W) continue;
                                dw[(((long)o * C + c) * k + r) * k + s] +=
                                    g * x[(((long)n * C + c) * H + h) * W + ww];
                            }
                        }
                }
}

/* ------------------------------------------------------------------------------ */
/* batchnorm2d                                                                      */
/* ------------------------------------------------------------------------------ */

void ref_bn_forward_train(const double *x, const double *gamma, const double *beta,
                          double *running_mean, double *running_var,
                          double *y, double *save_mean, double *save_invstd,
                          int N, int C, int H, int W, double momentum, double eps)
{
    const long HW = (long)H * W, cnt = (long)N * HW;
    for (int c = 0; c < C; c++) {
        double sum = 0.0;
        for (int n = 0; n < N; n++)
            for (long i = 0; i < HW; i++) sum += x[((long)n * C + c) * HW + i];
        const double mean = sum / (double)cnt;
        double sq = 0.0;
        for (int n = 0; n < N; n++)
            for (long i = 0; i < HW; i++) {
                const double d = x[((long)n * C + c) * HW + i] - mean;
                sq += d * d;
            }
        const double var = sq / (double)cnt;
        const double invstd = 1.0 / sqrt(var + eps);
        const double g = gamma ? gamma[c] : 1.0, bb = beta ? beta[c] : 0.0;
        for (int n = 0; n < N; n++)
            for (long i = 0; i < HW; i++) {
                const long j = ((long)n * C + c) * HW + i;
                y[j] = (x[j] - mean) * invstd * g + bb;
            }
        if (save_mean) save_mean[c] = mean;
        if (save_invstd) save_invstd[c] = invstd;
        if (running_mean) running_mean[c] = (1.0 - momentum) * running_mean[c] + momentum * mean;
        if (running_var) {
            const double unbiased = cnt > 1 ? sq / (double)(cnt - 1) : var;
            running_var[c] = (1.0 - momentum) * running_var[c] + momentum * unbiased;
        }
    }
}

void ref_bn_forward_eval(const double *x, const double *gamma, const double *beta,
                         const double *running_mean, const double *running_var,
                         double *y, int N, int C, int H, int W, double eps)
{
    const long HW = (long)H * W;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            const double invstd = 1.0 / sqrt(running_var[c] + eps);
            const double g = gamma ? gamma[c] : 1.0, bb = beta ? beta[c] : 0.0;
            for (long i = 0; i < HW; i++) {
                const long j = ((long)n * C + c) * HW + i;
                y[j] = (x[j] - running_mean[c]) * invstd * g + bb;
            }
        }
}

void ref_bn_backward(const double *dy, const double *x, const double *gamma,
                     const double *save_mean, const double *save_invstd,
                     double *dx, double *dgamma, double *dbeta, int N, int C, int H, int W)
{
    const long HW = (long)H * W, cnt = (long)N * HW;
    for (int c = 0; c < C; c++) {
        const double mean = save_mean[c], invstd = save_invstd[c];
        double sdy = 0.0, sdyx = 0.0;
        for (int n = 0; n < N; n++)
            for (long i = 0; i < HW; i++) {
                const long j = ((long)n * C + c) * HW + i;
                sdy += dy[j];
                sdyx += dy[j] * (x[j] - mean) * invstd;
            }
        if (dbeta) dbeta[c] = sdy;
        if (dgamma) dgamma[c] = sdyx;
        const double g = gamma ? gamma[c] : 1.0;
        const double scale = g * invstd / (double)cnt;
        for (int n = 0; n < N; n++)
            for (long i = 0; i < HW; i++) {
                const long j = ((long)n * C + c) * HW + i;
                const double xhat = (x[j] - mean) * invstd;
                dx[j] = scale * ((double)cnt * dy[j] - sdy - xhat * sdyx);
            }
    }
}

/* ------------------------------------------------------------------------------ */
/* masked ReLU                                                                      */
/* ------------------------------------------------------------------------------ */

static double relu(double v) { return v > 0.0 ? v : 0.0; }
static double sign0(double v) { return v > 0.0 ? 1.0 : (v < 0.0 ? -1.0 : 0.0); }

void ref_masked_relu_forward(const double *x, const double *c, double *y,
                             int N, int C, int H, int W, int channel_mask)
{
    const long HW = (long)H * W;
    for (int n = 0; n < N; n++)
        for (int ch = 0; ch < C; ch++)
            for (long i = 0; i < HW; i++) {
                const long j = ((long)n * C + ch) * HW + i;
                const double m = channel_mask ? c[ch] : c[(long)ch * HW + i];
                y[j] = m * relu(x[j]) + (1.0 - m) * x[j];
            }
}

void ref_masked_relu_backward(const double *dy, const double *x, const double *c,
                              double *dx, double *dc, double lambda,
                              int N, int C, int H, int W, int channel_mask)
{
    const long HW = (long)H * W;
    const long nc = channel_mask ? (long)C : (long)C * HW;
    if (dc) memset(dc, 0, sizeof(double) * (size_t)nc);
    for (int n = 0; n < N; n++)
        for (int ch = 0; ch < C; ch++)
            for (long i = 0; i < HW; i++) {
                const long j = ((long)n * C + ch) * HW + i;
                const long mi = channel_mask ? (long)ch : (long)ch * HW + i;
                const double m = c[mi];
                dx[j] = dy[j] * (x[j] > 0.0 ? 1.0 : 1.0 - m);
                if (dc) dc[mi] += dy[j] * (relu(x[j]) - x[j]);
            }
    if (dc)
        for (long i = 0; i < nc; i++) dc[i] += lambda * sign0(c[i]);
}

void ref_add(const double *a, const double *b, double *y, long n)
{
    for (long i = 0; i < n; i++) y[i] = a[i] + b[i];
}

/* ------------------------------------------------------------------------------ */
/* pooling                                                                          */
/* ------------------------------------------------------------------------------ */

void ref_avgpool_forward(const double *x, double *y, int N, int C, int H, int W, int k, int s)
{
    const int P = ref_out_size(H, k, s, 0), Q = ref_out_size(W, k, s, 0);
    for (long nc = 0; nc < (long)N * C; nc++)
        for (int p = 0; p < P; p++)
            for (int q = 0; q < Q; q++) {
                double acc = 0.0;
                for (int r = 0; r < k; r++)
                    for (int t = 0; t < k; t++)
                        acc += x[(nc * H + p * s + r) * W + q * s + t];
                y[(nc * P + p) * Q + q] = acc / (double)(k * k);
            }
}

void ref_avgpool_backward(const double *dy, double *dx, int N, int C, int H, int W, int k, int s)
{
    const int P = ref_out_size(H, k, s, 0), Q = ref_out_size(W, k, s, 0);
    memset(dx, 0, sizeof(double) * (size_t)N * C * H * W);
    for (long nc = 0; nc < (long)N * C; nc++)
        for (int p = 0; p < P; p++)
            for (int q = 0; q < Q; q++) {
                const double g = dy[(nc * P + p) * Q + q] / (double)(k * k);
                for (int r = 0; r < k; r++)
                    for (int t = 0; t < k; t++) dx[(nc * H + p * s + r) * W + q * s + t] += g;
            }
}

void ref_maxpool_forward(const double *x, double *y, int *argmax,
                         int N, int C, int H, int W, int k, int s, int p)
{
    const int P = ref_out_size(H, k, s, p), Q = ref_out_size(W, k, s, p);
    for (long nc = 0; nc < (long)N * C; nc++)
        for (int op = 0; op < P; op++)
            for (int oq = 0; oq < Q; oq++) {
                const int h0 = op * s - p, w0 = oq * s - p;
                /* like PyTorch: the index starts at the first in-bounds element of the
                 * window and the value at -inf; only a strictly greater value (or NaN) wins */
                const int hs = h0 < 0 ? 0 : h0, ws = w0 < 0 ? 0 : w0;
                int best = hs * W + ws;
                double bv = -INFINITY;
                for (int r = 0; r < k; r++) {
                    const int h = h0 + r;
                    if (h < 0 || h >= H) continue;
                    for (int t = 0; t < k; t++) {
                        const int w = w0 + t;
                        if (w < 0 || w >= W) continue;
                        const double v = x[nc * H * W + (long)h * W + w];
                        if (v > bv || isnan(v)) {
                            bv = v;
                            best = h * W + w;
                        }
                    }
                }
                y[(nc * P + op) * Q + oq] = bv;
                if (argmax) argmax[(nc * P + op) * Q + oq] = best;
            }
}

void ref_maxpool_backward(const double *dy, const int *argmax, double *dx,
                          int N, int C, int H, int W, int k, int s, int p)
{
    const int P = ref_out_size(H, k, s, p), Q = ref_out_size(W, k, s, p);
    memset(dx, 0, sizeof(double) * (size_t)N * C * H * W);
    for (long nc = 0; nc < (long)N * C; nc++)
        for (long o = 0; o < (long)P * Q; o++) {
            const int a = argmax[nc * P * Q + o];
            if (a >= 0 && a < H * W) dx[nc * H * W + a] += dy[nc * P * Q + o];
        }
}

/* ------------------------------------------------------------------------------ */
/* linear                                                                           */
/* ------------------------------------------------------------------------------ */

void ref_linear_forward(const double *x, const double *w, const double *b, double *y,
                        int N, int I, int O)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++) {
            double acc = b ? b[o] : 0.0;
            for (int i = 0; i < I; i++) acc += x[(long)n * I + i] * w[(long)o * I + i];
            y[(long)n * O + o] = acc;
        }
}

void ref_linear_backward(const double *dy, const double *x, const double *w,
                         double *dx, double *dw, double *db, int N, int I, int O)
{
    if (dx)
        for (int n = 0; n < N; n++)
            for (int i = 0; i < I; i++) {
                double acc = 0.0;
                for (int o = 0; o < O; o++) acc += dy[(long)n * O + o] * w[(long)o * I + i];
                dx[(long)n * I + i] = acc;
            }
    if (dw)
        for (int o = 0; o < O; o++)
            for (int i = 0; i < I; i++) {
                double acc = 0.0;
                for (int n = 0; n < N; n++) acc += dy[(long)n * O + o] * x[(long)n * I + i];
                dw[(long)o * I + i] = acc;
            }
    if (db)
        for (int o = 0; o < O; o++) {
            double acc = 0.0;
            for (int n = 0; n < N; n++) acc += dy[(long)n * O + o];
            db[o] = acc;
        }
}

/* ------------------------------------------------------------------------------ */
/* losses / metrics                                                                 */
/* ------------------------------------------------------------------------------ */

/* logp[i] = log_softmax(z*scale)[i] for one row; returns nothing, logp has `classes` entries */
static void log_softmax_row(const double *z, double scale, double *logp, int classes)
{
    double mx = -INFINITY;
    for (int i = 0; i < classes; i++)
        if (z[i] * scale > mx) mx = z[i] * scale;
    double se = 0.0;
    for (int i = 0; i < classes; i++) se += exp(z[i] * scale - mx);
    const double lse = mx + log(se);
    for (int i = 0; i < classes; i++) logp[i] = z[i] * scale - lse;
}

double ref_cross_entropy(const double *z, const int *labels, double *dz, int N, int classes)
{
    double *logp = malloc(sizeof(double) * (size_t)classes);
    if (!logp) abort();
    double loss = 0.0;
    for (int n = 0; n < N; n++) {
        log_softmax_row(z + (long)n * classes, 1.0, logp, classes);
        loss -= logp[labels[n]];
        if (dz)
            for (int i = 0; i < classes; i++)
                dz[(long)n * classes + i] =
                    (exp(logp[i]) - (i == labels[n] ? 1.0 : 0.0)) / (double)N;
    }
    free(logp);
    return loss / (double)N;
}

double ref_kd_loss(const double *s, const double *t, double *ds, int N, int classes, double T)
{
    double *lps = malloc(sizeof(double) * (size_t)classes);
    double *lpt = malloc(sizeof(double) * (size_t)classes);
    if (!lps || !lpt) abort();
    double loss = 0.0;
    for (int n = 0; n < N; n++) {
        log_softmax_row(s + (long)n * classes, 1.0 / T, lps, classes);
        log_softmax_row(t + (long)n * classes, 1.0 / T, lpt, classes);
        for (int i = 0; i < classes; i++) {
            const double pt = exp(lpt[i]);
            /* KLDivLoss pointwise: target*(log(target) - input), 0 where target == 0 */
            if (pt > 0.0) loss += pt * (lpt[i] - lps[i]);
            if (ds) ds[(long)n * classes + i] = T / (double)N * (exp(lps[i]) - pt);
        }
    }
    free(lps);
    free(lpt);
    return loss / (double)N * T * T;
}

int ref_topk_correct(const double *z, const int *labels, int N, int classes, int k)
{
    int correct = 0;
    for (int n = 0; n < N; n++) {
        const double v = z[(long)n * classes + labels[n]];
        int greater = 0;
        for (int i = 0; i < classes; i++)
            if (z[(long)n * classes + i] > v || isnan(z[(long)n * classes + i]) || isnan(v)) greater++;
        if (greater < k) correct++;
    }
    return correct;
}

/* ------------------------------------------------------------------------------ */
/* optimisers                                                                       */
/* ------------------------------------------------------------------------------ */

void ref_adam_step(double *p, const double *g, double *m, double *v, long n,
                   double lr, double b1, double b2, double eps, double wd, int t)
{
    const double bc1 = 1.0 - pow(b1, (double)t);
    const double bc2 = 1.0 - pow(b2, (double)t);
    const double step_size = lr / bc1;
    const double bc2_sqrt = sqrt(bc2);
    for (long i = 0; i < n; i++) {
        const double gi = wd != 0.0 ? g[i] + wd * p[i] : g[i];
        m[i] = m[i] * b1 + (1.0 - b1) * gi;
        v[i] = v[i] * b2 + (1.0 - b2) * gi * gi;
        const double denom = sqrt(v[i]) / bc2_sqrt + eps;
        p[i] -= step_size * (m[i] / denom);
    }
}

void ref_sgd_step(double *p, const double *g, double *buf, long n,
                  double lr, double momentum, double wd, int first_step)
{
    for (long i = 0; i < n; i++) {
        double d = wd != 0.0 ? g[i] + wd * p[i] : g[i];
        if (momentum != 0.0) {
            buf[i] = first_step ? d : momentum * buf[i] + d; /* dampening 0 */
            d = buf[i];
        }
        p[i] -= lr * d;
    }
}

/* ------------------------------------------------------------------------------ */
/* masks                                                                            */
/* ------------------------------------------------------------------------------ */

long ref_mask_count(const double *c, long n, double eps)
{
    long cnt = 0;
    for (long i = 0; i < n; i++)
        if (c[i] > eps) cnt++;
    return cnt;
}

void ref_mask_binarize(double *c, long n, double eps)
{
    for (long i = 0; i < n; i++) c[i] = c[i] > eps ? 1.0 : 0.0;
}

typedef struct {
    double v;
    long i;
} ref_vi;

/* larger value first; equal values: lower index first (a total order, so qsort's lack
 * of stability does not matter) */
static int cmp_vi(const void *pa, const void *pb)
{
    const ref_vi *a = pa, *b = pb;
    if (a->v > b->v) return -1;
    if (a->v < b->v) return 1;
    return (a->i > b->i) - (a->i < b->i);
}

void ref_mask_keep_top(double *c, long n, long B)
{
    if (n <= 0) return;
    if (B < 0) B = 0;
    if (B > n) B = n;
    ref_vi *a = malloc(sizeof(ref_vi) * (size_t)n);
    if (!a) abort();
    for (long i = 0; i < n; i++) {
        a[i].v = isnan(c[i]) ? -INFINITY : c[i]; /* keep the order total */
        a[i].i = i;
    }
    qsort(a, (size_t)n, sizeof(ref_vi), cmp_vi);
    for (long r = 0; r < n; r++) c[a[r].i] = r < B ? 1.0 : 0.0;
    free(a);
}
