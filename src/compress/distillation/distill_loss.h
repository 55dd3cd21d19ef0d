/* distill_loss.h - the per-pair losses of NNI's distillers and the Adaptive1d adapter.
 *
 * One pair is a student value s and a teacher value t of the same shape [N, ..., D]
 * (reference §5, golden README "NNI: distillation"):
 *
 *   mse: mean((s - t)^2) over every element
 *   kl : T^2 * kl_div(log_softmax(s / T), softmax(t / T), batchmean), T = 2, the class dim
 *        being the last one and "batchmean" dividing by N (the size of dim 0)
 *
 * The adapter of Adaptive1dLayerwiseDistiller is a Linear over the last dim,
 * a = s W^T + b with W [D_t, D_s] and b [D_t], applied to each of the numel / D_s rows of s.
 */
#ifndef SW_DISTILL_LOSS_H
#define SW_DISTILL_LOSS_H

#include <stdbool.h>

#include "../../tensor/tensor.h"

/* NNI fixes the distillers' KL temperature at 2. */
#define SW_DISTILL_KL_TEMPERATURE 2.0f

typedef enum sw_distill_method {
    SW_DISTILL_MSE, /* feature matching: mean squared error */
    SW_DISTILL_KL,  /* logits matching: KL divergence with temperature 2 */
} sw_distill_method;

/* "mse" | "kl" -> method; SW_ERR_NOT_FOUND otherwise. */
sw_status sw_distill_method_from_name(const char *name, sw_distill_method *out);
const char *sw_distill_method_name(sw_distill_method m);

/* The loss of one pair (without lambda). When ds is not NULL it receives (is overwritten
 * with) grad_scale * d loss / d s, same shape as s. Shapes of s, t (and ds) must be equal;
 * the error names both. */
sw_status sw_distill_pair_loss(sw_distill_method method, const sw_tensor *s, const sw_tensor *t,
                               float grad_scale, double *loss, sw_tensor *ds);

/* a[rows, d_out] = s[rows, d_in] W^T + b, W [d_out, d_in] row-major, b [d_out]. */
void sw_distill_adapter_forward(const float *s, int rows, int d_in, const float *w, const float *b,
                                int d_out, float *a);

/* Backward of the adapter given da [rows, d_out]:
 *   ds [rows, d_in]  = da W          (overwritten)
 *   dw [d_out, d_in] += da^T s       (accumulated, like every parameter gradient)
 *   db [d_out]       += sum_rows da  (accumulated) */
void sw_distill_adapter_backward(const float *s, int rows, int d_in, const float *w, int d_out,
                                 const float *da, float *ds, float *dw, float *db);

#endif
