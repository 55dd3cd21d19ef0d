/* batchnorm.h - batch normalisation kernels over x [N, C, S] (S = H*W for images, 1 or L for
 * BatchNorm1d), one statistic per channel c over its M = N*S values.
 *
 * Forward computes y = (x - mean) * invstd * gamma + beta, where (mean, invstd) are the batch
 * statistics in training (biased variance, as PyTorch normalises) or the running ones in
 * evaluation. The caller keeps (mean, invstd) for backward. Fast kernels run channels in
 * parallel; the naive ones accumulate in double and are the tests' oracle.
 */
#ifndef SW_BATCHNORM_H
#define SW_BATCHNORM_H

/* Training statistics: mean[C] and invstd[C] = 1/sqrt(var_biased + eps); var_biased[C] too
 * when not NULL (the running-variance update needs it). */
void sw_batchnorm_stats(float *mean, float *invstd, float *var_biased, const float *x, int n,
                        int c, int s, float eps);
void sw_batchnorm_stats_naive(float *mean, float *invstd, float *var_biased, const float *x,
                              int n, int c, int s, float eps);

/* y = (x - mean[c]) * invstd[c] * gamma[c] + beta[c]. gamma/beta NULL mean 1/0. */
void sw_batchnorm_apply(float *y, const float *x, const float *mean, const float *invstd,
                        const float *gamma, const float *beta, int n, int c, int s);

/* Per-channel sums of the output gradient: sum_dy[c] = sum dy, sum_dy_xhat[c] =
 * sum dy * (x - mean) * invstd. These are d beta and d gamma, and the two terms that the
 * training-mode input gradient subtracts. */
void sw_batchnorm_grad_sums(float *sum_dy, float *sum_dy_xhat, const float *dy, const float *x,
                            const float *mean, const float *invstd, int n, int c, int s);
void sw_batchnorm_grad_sums_naive(float *sum_dy, float *sum_dy_xhat, const float *dy,
                                  const float *x, const float *mean, const float *invstd, int n,
                                  int c, int s);

/* dx += gamma*invstd * (dy - sum_dy/M - xhat * sum_dy_xhat/M) when `batch_stats` (the
 * statistics depended on x), else dx += gamma*invstd*dy. gamma NULL means 1. */
void sw_batchnorm_backward_input(float *dx, const float *dy, const float *x, const float *mean,
                                 const float *invstd, const float *gamma, const float *sum_dy,
                                 const float *sum_dy_xhat, int batch_stats, int n, int c, int s);
void sw_batchnorm_backward_input_naive(float *dx, const float *dy, const float *x,
                                       const float *mean, const float *invstd,
                                       const float *gamma, int batch_stats, int n, int c, int s);

#endif
