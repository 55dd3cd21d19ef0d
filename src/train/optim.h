/* optim.h - optimizers over flat parameter groups: SGD (momentum, Nesterov, weight decay),
 * Adam (L2 weight decay added to the gradient) and AdamW (decoupled weight decay), with the
 * exact update rules of PyTorch 1.13.
 *
 * Group 0 is normally the model's flat parameter array; compressors add groups for their own
 * trainable tensors (LSQ scales, distiller adapters), as NNI's patch_optim_param_group does.
 */
#ifndef SW_OPTIM_H
#define SW_OPTIM_H

#include <stdbool.h>
#include <stddef.h>

#include "../tensor/status.h"

#define SW_OPTIM_MAX_GROUPS 32

typedef enum sw_optim_kind {
    SW_OPTIM_SGD,
    SW_OPTIM_ADAM,
    SW_OPTIM_ADAMW,
} sw_optim_kind;

typedef struct sw_optim_config {
    sw_optim_kind kind;
    float lr;
    float momentum;     /* SGD */
    float dampening;    /* SGD */
    bool nesterov;      /* SGD */
    float weight_decay;
    float beta1, beta2, eps; /* Adam, AdamW */
} sw_optim_config;

/* PyTorch's defaults for a kind (lr 0.01 for SGD, 1e-3 for Adam/AdamW; AdamW wd 0.01). */
sw_optim_config sw_optim_config_default(sw_optim_kind kind);
/* "sgd" | "adam" | "adamw" -> kind. */
sw_status sw_optim_kind_from_name(const char *name, sw_optim_kind *out);

typedef struct sw_optim_group {
    float *values;       /* borrowed */
    const float *grads;  /* borrowed */
    size_t n;
    float *m;            /* owned: momentum buffer / first moment */
    float *v;            /* owned: second moment (Adam) */
    float lr_scale;      /* multiplies the learning rate (1 by default) */
    bool has_momentum;   /* SGD: the buffer exists after the first step, as in PyTorch */
    long step;           /* Adam/AdamW: updates of this group (bias correction), as torch's
                          * per-parameter state["step"]: a group added late starts at 0 */
} sw_optim_group;

typedef struct sw_optim {
    sw_optim_config cfg;
    int n_groups;
    sw_optim_group groups[SW_OPTIM_MAX_GROUPS];
    long step; /* steps taken */
} sw_optim;

sw_status sw_optim_init(sw_optim *opt, const sw_optim_config *cfg);
void sw_optim_deinit(sw_optim *opt);
/* Adds a group of n values with their gradients (both borrowed, must outlive the optimizer). */
sw_status sw_optim_add_group(sw_optim *opt, float *values, const float *grads, size_t n);
/* Zeroes the gradients of every group (torch's optimizer.zero_grad()). The gradient arrays are
 * the groups' owners'; this is the only write the optimizer makes to them. */
void sw_optim_zero_grad(sw_optim *opt);
/* One update of every group at learning rate lr (the schedule's value for this step), each
 * group at lr * lr_scale. */
void sw_optim_step(sw_optim *opt, float lr);

#endif
