/* snlvk: plain-C double-precision reference implementation of every op.
 *
 * The Vulkan kernels are tested against these functions, so they are written to be
 * obviously correct rather than fast: simple loops, PyTorch semantics exactly.
 *
 * Conventions shared by every function here:
 *   - Tensors are contiguous, row-major NCHW (or [N,features] for linear / losses).
 *   - Every output (including every gradient) is OVERWRITTEN, never accumulated into;
 *     the caller does not need to zero it first.
 *   - Output sizes of conv / pooling follow PyTorch (floor mode):
 *       P = (H + 2*pad - k) / stride + 1,  Q = (W + 2*pad - k) / stride + 1
 *     (ref_out_size below).
 */
#ifndef SNLVK_TESTS_REF_OPS_H
#define SNLVK_TESTS_REF_OPS_H

#ifdef __cplusplus
extern "C" {
#endif

/* Spatial output size of a conv / pool along one dimension (PyTorch, floor mode). */
static inline int ref_out_size(int in, int k, int stride, int pad)
{
    return (in + 2 * pad - k) / stride + 1;
}

/* ---- conv2d --------------------------------------------------------------------
 * groups 1, square kernel KxK (R=S=k), same stride and padding in both dims, zero
 * padding, cross-correlation (PyTorch semantics).
 * x[N,C,H,W], w[K,C,k,k], b[K] or NULL, y[N,K,P,Q]. */
void ref_conv2d_forward(const double *x, const double *w, const double *b, double *y,
                        int N, int C, int H, int W, int K, int k, int stride, int pad);
/* dy[N,K,P,Q] -> dx[N,C,H,W] (input pixels no window touches get 0). */
void ref_conv2d_backward_data(const double *dy, const double *w, double *dx,
                              int N, int C, int H, int W, int K, int k, int stride, int pad);
/* dy[N,K,P,Q], x -> dw[K,C,k,k], db[K] (db may be NULL). */
void ref_conv2d_backward_filter(const double *dy, const double *x, double *dw, double *db,
                                int N, int C, int H, int W, int K, int k, int stride, int pad);

/* ---- batchnorm2d ---------------------------------------------------------------
 * Training mode: per-channel batch mean and biased variance over N*H*W values;
 * y = (x - mean) * invstd * gamma + beta, invstd = 1/sqrt(var_biased + eps).
 * Running stats: run = (1-m)*run + m*stat, with the UNBIASED variance
 * (var_biased * n/(n-1), n = N*H*W) for running_var. PyTorch refuses n == 1 in
 * training; here n == 1 uses the biased variance (0) for running_var instead.
 * save_mean[C], save_invstd[C] are written for ref_bn_backward.
 * Extensions: gamma == NULL means 1, beta == NULL means 0 (affine=False);
 * running_mean/running_var == NULL skip the update; save_* may be NULL. */
void ref_bn_forward_train(const double *x, const double *gamma, const double *beta,
                          double *running_mean, double *running_var,
                          double *y, double *save_mean, double *save_invstd,
                          int N, int C, int H, int W, double momentum, double eps);
/* Eval mode: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta. */
void ref_bn_forward_eval(const double *x, const double *gamma, const double *beta,
                         const double *running_mean, const double *running_var,
                         double *y, int N, int C, int H, int W, double eps);
/* Training-mode backward (the gradient flows through the batch statistics):
 *   xhat = (x-mean)*invstd;  dbeta = sum dy;  dgamma = sum dy*xhat;
 *   dx = gamma*invstd/n * (n*dy - dbeta - xhat*dgamma).
 * gamma NULL means 1; dgamma / dbeta may be NULL. */
void ref_bn_backward(const double *dy, const double *x, const double *gamma,
                     const double *save_mean, const double *save_invstd,
                     double *dx, double *dgamma, double *dbeta, int N, int C, int H, int W);

/* ---- masked ReLU ---------------------------------------------------------------
 * y = c*relu(x) + (1-c)*x. The mask c has C*H*W entries (channel_mask == 0, "pixel"
 * masks) or C entries (channel_mask == 1), shared over the batch.
 * backward: dx = dy * (x > 0 ? 1 : 1-c)    (relu'(0) = 0 as in PyTorch);
 *           dc = sum over the batch (and H,W for channel masks) of dy*(relu(x)-x)
 *                + lambda*sign(c)           (sign(0) = 0, as torch.sign).
 * dc == NULL (frozen masks): only dx. */
void ref_masked_relu_forward(const double *x, const double *c, double *y,
                             int N, int C, int H, int W, int channel_mask);
void ref_masked_relu_backward(const double *dy, const double *x, const double *c,
                              double *dx, double *dc, double lambda,
                              int N, int C, int H, int W, int channel_mask);

/* y = a + b, n elements (y may alias a or b). */
void ref_add(const double *a, const double *b, double *y, long n);

/* ---- pooling -------------------------------------------------------------------
 * avg pool kxk stride s, no padding, divisor k*k; k = H = W gives global average pool.
 * y[N,C,P,Q], P = (H-k)/s+1. */
void ref_avgpool_forward(const double *x, double *y, int N, int C, int H, int W, int k, int s);
void ref_avgpool_backward(const double *dy, double *dx, int N, int C, int H, int W, int k, int s);
/* max pool kxk stride s pad p (padding is -inf, as PyTorch; PyTorch requires p <= k/2).
 * argmax[N,C,P,Q] = flat index h*W+w of the max within its (n,c) plane; the first max in
 * row-major window order wins; a NaN wins over any number (the last NaN, as
 * PyTorch's CPU kernel). argmax may be NULL. */
void ref_maxpool_forward(const double *x, double *y, int *argmax,
                         int N, int C, int H, int W, int k, int s, int p);
/* dx[argmax] += dy for every output (dx zeroed first). */
void ref_maxpool_backward(const double *dy, const int *argmax, double *dx,
                          int N, int C, int H, int W, int k, int s, int p);

/* ---- linear --------------------------------------------------------------------
 * y[N,O] = x[N,I] * W[O,I]^T + b[O] (b may be NULL). */
void ref_linear_forward(const double *x, const double *w, const double *b, double *y,
                        int N, int I, int O);
/* dx[N,I], dw[O,I], db[O] (db may be NULL; dx may be NULL too). */
void ref_linear_backward(const double *dy, const double *x, const double *w,
                         double *dx, double *dw, double *db, int N, int I, int O);

/* ---- losses / metrics ----------------------------------------------------------
 * softmax cross-entropy, integer labels, mean over the batch. Returns the loss;
 * dz = d loss / d z = (softmax(z) - onehot) / N (dz may be NULL). */
double ref_cross_entropy(const double *z, const int *labels, double *dz, int N, int classes);
/* distillation: T^2 * KL(softmax(t/T) || softmax(s/T)), mean over the batch
 * (PyTorch: KLDivLoss(reduction='batchmean')(log_softmax(s/T), softmax(t/T)) * T*T).
 * Returns the loss; ds = gradient wrt the student logits s = T/N*(softmax(s/T)-softmax(t/T))
 * (may be NULL); the teacher t gets no gradient. */
double ref_kd_loss(const double *s, const double *t, double *ds, int N, int classes, double T);
/* number of rows whose label is among the top-k logits (a tie counts as correct only if
 * strictly fewer than k logits are strictly greater than the label's logit). */
int ref_topk_correct(const double *z, const int *labels, int N, int classes, int k);

/* ---- optimisers ----------------------------------------------------------------
 * torch.optim.Adam step (amsgrad off, maximize off), t 1-based (already incremented):
 *   g' = g + wd*p; m = b1*m + (1-b1)*g'; v = b2*v + (1-b2)*g'^2;
 *   denom = sqrt(v)/sqrt(1-b2^t) + eps; p -= (lr/(1-b1^t)) * m/denom.  g is not modified. */
void ref_adam_step(double *p, const double *g, double *m, double *v, long n,
                   double lr, double b1, double b2, double eps, double wd, int t);
/* torch.optim.SGD (dampening 0, nesterov off): g' = g + wd*p;
 *   if momentum != 0: buf = first_step ? g' : momentum*buf + g'; step = buf; else step = g';
 *   p -= lr*step.  buf may be NULL when momentum == 0. */
void ref_sgd_step(double *p, const double *g, double *buf, long n,
                  double lr, double momentum, double wd, int first_step);

/* ---- masks ---------------------------------------------------------------------- */
long ref_mask_count(const double *c, long n, double eps);  /* entries with c > eps */
void ref_mask_binarize(double *c, long n, double eps);      /* c = c > eps ? 1 : 0 */
/* exactly the B largest become 1, the rest 0; ties broken by lower index first.
 * B is clamped to [0, n]; NaN counts as smallest. */
void ref_mask_keep_top(double *c, long n, long B);

#ifdef __cplusplus
}
#endif
#endif
