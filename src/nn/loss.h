/* loss.h - loss functions with their gradients. Each returns the mean loss (double) and, when
 * the gradient pointer is not NULL, WRITES (not accumulates) d loss / d input scaled by `scale`
 * (pass 1 for the plain gradient; a loss weight lambda otherwise). */
#ifndef SW_LOSS_H
#define SW_LOSS_H

#include "../tensor/tensor.h"

/* Mean cross-entropy of logits [N, C] against class indices labels[N] (log-softmax computed
 * stably). Labels out of [0, C) are an error. */
sw_status sw_loss_cross_entropy(const sw_tensor *logits, const int *labels, float scale,
                                double *loss, sw_tensor *dlogits);

/* Mean squared error over all elements: mean((pred - target)^2). dtarget may be NULL. */
sw_status sw_loss_mse(const sw_tensor *pred, const sw_tensor *target, float scale, double *loss,
                      sw_tensor *dpred, sw_tensor *dtarget);

/* Distillation KL with temperature T, as NNI's distillers compute it (last dim = classes):
 * T^2 * sum(softmax(t/T) * (log softmax(t/T) - log_softmax(s/T))) / N, N = size of dim 0. */
sw_status sw_loss_kl_div(const sw_tensor *student, const sw_tensor *teacher, float temperature,
                         float scale, double *loss, sw_tensor *dstudent);

/* Number of rows whose argmax equals the label (ties: first index). */
int sw_count_correct(const sw_tensor *logits, const int *labels);

#endif
