/* optim.c - SGD, Adam and AdamW with PyTorch 1.13's update rules.
 *
 * Each optimizer is one loop over a flat group (values, grads, moments share a layout), so the
 * whole model is a handful of passes over contiguous memory. The formulas follow
 * torch/optim/{sgd,adam,adamw}.py of 1.13 (single-tensor path) term by term, including where the
 * scalars are computed in double precision (Python floats) and where in float32 (tensor ops),
 * so that three steps agree with the golden fixtures to rounding.
 */
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

sw_optim_config sw_optim_config_default(sw_optim_kind kind) {
    sw_optim_config c = {.kind = kind, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    switch (kind) {
    case SW_OPTIM_SGD:
        c.lr = 0.01f;
        break;
    case SW_OPTIM_ADAM:
        c.lr = 1e-3f;
        break;
    case SW_OPTIM_ADAMW:
        c.lr = 1e-3f;
        c.weight_decay = 0.01f;
        break;
    }
    return c;
}

sw_status sw_optim_kind_from_name(const char *name, sw_optim_kind *out) {
    static const struct {
        const char *name;
        sw_optim_kind kind;
    } names[] = {{"sgd", SW_OPTIM_SGD}, {"adam", SW_OPTIM_ADAM}, {"adamw", SW_OPTIM_ADAMW}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (name && strcmp(name, names[i].name) == 0) {
            *out = names[i].kind;
            return SW_OK;
        }
    }
    return SW_FAIL(SW_ERR_NOT_FOUND, "unknown optimizer \"%s\": use sgd, adam or adamw",
                   name ? name : "(null)");
}

/* Rejects hyper-parameters PyTorch's constructors reject, with the same reasons. */
static sw_status check_config(const sw_optim_config *c) {
    if (!(c->lr >= 0.0f)) return SW_FAIL(SW_ERR_CONFIG, "optimizer: lr %g must be >= 0", c->lr);
    if (!(c->weight_decay >= 0.0f))
        return SW_FAIL(SW_ERR_CONFIG, "optimizer: weight_decay %g must be >= 0", c->weight_decay);
    if (c->kind == SW_OPTIM_SGD) {
        if (!(c->momentum >= 0.0f))
            return SW_FAIL(SW_ERR_CONFIG, "SGD: momentum %g must be >= 0", c->momentum);
        if (c->nesterov && (c->momentum <= 0.0f || c->dampening != 0.0f))
            return SW_FAIL(SW_ERR_CONFIG,
                           "SGD: Nesterov momentum needs momentum > 0 and dampening 0 "
                           "(got momentum %g, dampening %g)",
                           c->momentum, c->dampening);
        return SW_OK;
    }
    if (!(c->beta1 >= 0.0f && c->beta1 < 1.0f) || !(c->beta2 >= 0.0f && c->beta2 < 1.0f))
        return SW_FAIL(SW_ERR_CONFIG, "Adam: betas (%g, %g) must be in [0, 1)", c->beta1, c->beta2);
    if (!(c->eps >= 0.0f)) return SW_FAIL(SW_ERR_CONFIG, "Adam: eps %g must be >= 0", c->eps);
    return SW_OK;
}

sw_status sw_optim_init(sw_optim *opt, const sw_optim_config *cfg) {
    memset(opt, 0, sizeof *opt);
    SW_TRY(check_config(cfg));
    opt->cfg = *cfg;
    return SW_OK;
}

void sw_optim_deinit(sw_optim *opt) {
    for (int g = 0; g < opt->n_groups; g++) {
        free(opt->groups[g].m);
        free(opt->groups[g].v);
    }
    opt->n_groups = 0;
}

sw_status sw_optim_add_group(sw_optim *opt, float *values, const float *grads, size_t n) {
    if (opt->n_groups == SW_OPTIM_MAX_GROUPS)
        return SW_FAIL(SW_ERR_ARG, "optimizer: at most %d parameter groups", SW_OPTIM_MAX_GROUPS);
    if (n > 0 && (!values || !grads))
        return SW_FAIL(SW_ERR_ARG, "optimizer: a group of %zu values needs values and grads", n);
    sw_optim_group g = {.values = values, .grads = grads, .n = n, .lr_scale = 1.0f};
    /* Moments are only needed by the kinds that use them; SGD without momentum keeps none. */
    bool need_m = opt->cfg.kind != SW_OPTIM_SGD || opt->cfg.momentum != 0.0f;
    bool need_v = opt->cfg.kind != SW_OPTIM_SGD;
    size_t count = n ? n : 1;
    if (need_m) g.m = calloc(count, sizeof(float));
    if (need_v) g.v = calloc(count, sizeof(float));
    if ((need_m && !g.m) || (need_v && !g.v)) {
        free(g.m);
        free(g.v);
        return SW_FAIL(SW_ERR_NOMEM, "optimizer: cannot allocate moments for %zu values", n);
    }
    opt->groups[opt->n_groups++] = g;
    return SW_OK;
}

void sw_optim_zero_grad(sw_optim *opt) {
    /* The gradient arrays belong to their owners (the model, a compressor), which hand them to
     * the optimizer as read-only for updates; zeroing them between steps is the one write,
     * exactly torch's optimizer.zero_grad() over every group. */
    for (int g = 0; g < opt->n_groups; g++)
        if (opt->groups[g].n)
            memset((float *)opt->groups[g].grads, 0, opt->groups[g].n * sizeof(float));
}

/* SGD (torch 1.13 _single_tensor_sgd):
 *   d = g + wd * p
 *   buf = d                                   first step
 *   buf = momentum * buf + (1 - dampening) * d  later steps
 *   d = nesterov ? d + momentum * buf : buf
 *   p -= lr * d                                                                           */
static void sgd_group(const sw_optim_config *c, sw_optim_group *g, float lr) {
    const float wd = c->weight_decay, mom = c->momentum, keep = 1.0f - c->dampening;
    float *p = g->values, *buf = g->m;
    const float *grad = g->grads;
    for (size_t i = 0; i < g->n; i++) {
        float d = grad[i];
        if (wd != 0.0f) d = d + wd * p[i];
        if (mom != 0.0f) {
            if (!g->has_momentum)
                buf[i] = d;
            else
                buf[i] = buf[i] * mom + keep * d;
            d = c->nesterov ? d + mom * buf[i] : buf[i];
        }
        p[i] = p[i] + (-lr) * d;
    }
    if (mom != 0.0f) g->has_momentum = true;
}

/* Adam and AdamW (torch 1.13 _single_tensor_adam / _single_tensor_adamw, amsgrad off):
 *   AdamW: p *= 1 - lr * wd            (decoupled decay, before the moments)
 *   Adam:  g = g + wd * p              (L2 decay folded into the gradient)
 *   m = beta1 * m + (1 - beta1) * g
 *   v = beta2 * v + (1 - beta2) * g * g
 *   p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps),  bc_k = 1 - beta_k^t
 * bc1, bc2, the step size and the decay factor are Python floats (double) in torch and
 * become float32 when they meet a tensor; we round them at the same places. */
static void adam_group(const sw_optim_config *c, sw_optim_group *g, float lr) {
    g->step++;
    const double t = (double)g->step;
    const double bc1 = 1.0 - pow((double)c->beta1, t);
    const double bc2 = 1.0 - pow((double)c->beta2, t);
    const float step_size = (float)((double)lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    const float b1 = c->beta1, b2 = c->beta2, one_b1 = 1.0f - c->beta1, one_b2 = 1.0f - c->beta2;
    const float eps = c->eps;
    const bool decoupled = c->kind == SW_OPTIM_ADAMW;
    const float wd = c->weight_decay;
    const float decay = (float)(1.0 - (double)lr * (double)wd);
    float *p = g->values, *m = g->m, *v = g->v;
    const float *grad = g->grads;
    for (size_t i = 0; i < g->n; i++) {
        float gi = grad[i];
        if (decoupled) {
            if (wd != 0.0f) p[i] = p[i] * decay;
        } else if (wd != 0.0f) {
            gi = gi + wd * p[i];
        }
        m[i] = m[i] * b1 + one_b1 * gi;
        v[i] = v[i] * b2 + one_b2 * (gi * gi);
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] = p[i] + (-step_size) * (m[i] / denom);
    }
}

void sw_optim_step(sw_optim *opt, float lr) {
    for (int k = 0; k < opt->n_groups; k++) {
        sw_optim_group *g = &opt->groups[k];
        float group_lr = lr * g->lr_scale;
        if (opt->cfg.kind == SW_OPTIM_SGD)
            sgd_group(&opt->cfg, g, group_lr);
        else
            adam_group(&opt->cfg, g, group_lr);
    }
    opt->step++;
}
