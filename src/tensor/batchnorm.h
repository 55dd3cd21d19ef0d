/* batchnorm.h - batch normalisation kernels over x [N, C, S] (S = H*W for images, 1 or L for
 * BatchNorm1d), one statistic per channel c over its M = N*S values.
 *
 * Forward computes y = (x - mean) * invstd * gamma + beta, where (mean, invstd) are the batch
 * statistics in training (biased variance, as PyTorch normalises) or the running ones in
 * evaluation; the caller keeps (mean, invstd) for backward. The fast kernels give each thread
 * whole channels and finish one channel before the next: a channel's N planes are read once
 * for the statistics and again, while still in cache, to write the result. The naive kernels
 * accumulate in double and are the tests' oracle.
 */
#ifndef SW_BATCHNORM_H
#define SW_BATCHNORM_H

#include <stdbool.h>

/* y = (x - mean[c]) * invstd[c] * gamma[c] + beta[c] (gamma/beta NULL mean 1/0).
 * With `batch_stats`, first computes mean[C], invstd[C] = 1/sqrt(var + eps) and, when not
 * NULL, var_biased[C] from x; otherwise reads mean and invstd as given. */
void sw_batchnorm_forward(float *y, float *mean, float *invstd, float *var_biased, const float *x,
                          const float *gamma, const float *beta, int batch_stats, int n, int c,
                          int s, float eps);

/* Writes the per-channel sums sum_dy[c] = sum dy and sum_dy_xhat[c] = sum dy * xhat, with
 * xhat = (x - mean) * invstd: they are d beta and d gamma, and the two terms the training-mode
 * input gradient subtracts. When dx is not NULL, also ACCUMULATES
 *   dx += gamma*invstd * (dy - sum_dy/M - xhat * sum_dy_xhat/M)   (batch_stats: the statistics
 *                                                                  depended on x), or
 *   dx += gamma*invstd * dy                                       (fixed statistics).
 * gamma NULL means 1. With accumulate false, dx = instead of dx += (its contents ignored). */
void sw_batchnorm_backward(float *dx, float *sum_dy, float *sum_dy_xhat, const float *dy,
                           const float *x, const float *mean, const float *invstd,
                           const float *gamma, int batch_stats, int n, int c, int s,
                           bool accumulate);

/* Oracles, same contracts. */
void sw_batchnorm_stats_naive(float *mean, float *invstd, float *var_biased, const float *x, int n,
                              int c, int s, float eps);
void sw_batchnorm_backward_naive(float *dx, float *sum_dy, float *sum_dy_xhat, const float *dy,
                                 const float *x, const float *mean, const float *invstd,
                                 const float *gamma, int batch_stats, int n, int c, int s);

#endif
