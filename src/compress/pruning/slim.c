/* slim.c - SlimPruner: learnable scaling factors with an L1 penalty decide which blocks go
 * (Liu et al., "Learning Efficient Convolutional Networks through Network Slimming", 2017;
 * reference §3.2).
 *
 * During compress every active parameter target W (shape S, block grid G) runs through a
 * factor transform after its mask:
 *
 *   forward   W_eff = (W * m) * expand(gamma)            gamma: one value per block, [G]
 *   backward  dgamma_b += sum over block b of dW_eff * (W * m)
 *             dW      = dW_eff * expand(gamma)            (then * m by the mask transform)
 *
 * and the loss gains regular_scale * mean_t ||gamma_t||_1, whose gradient
 * regular_scale / n_targets * sign(gamma) is added to dgamma when the term is computed. A
 * private Adam steps gamma before the task optimizer's step (before_step hooks run before the
 * step) and zeroes dgamma after it. Once training_steps optimizer steps are done, |gamma| is
 * the metric and the masks are generated.
 *
 * All factors live in one flat array (and their gradients in another), so the private Adam is
 * one group however many targets there are. */
#include "trained_pruners.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One active target's factors: a slice of the flat arrays. */
typedef struct slim_factor {
    int target;       /* index in p.targets */
    size_t off, n;    /* slice [off, off + n) of gamma / grad; n = numel of the block grid */
    sw_transform *tf; /* the factor transform while compress runs, else NULL */
} slim_factor;

typedef struct slim_pruner {
    sw_pruner p; /* first */
    long training_steps;
    double regular_scale;
    /* NNI's trigger: generate when the step count reaches interval_steps (training_steps
     * unless a scheduler set another), total_times times (-1 = unlimited). */
    long interval_steps;
    int total_times;
    bool scheduled; /* a Linear/AGP pruner set the schedule */
    long current_step;
    int remaining;
    int n_factors;
    slim_factor *factors; /* owned, n_factors */
    int *factor_of;       /* owned, per target: index in factors or -1 */
    size_t n_all;
    float *gamma; /* owned [n_all]: every factor */
    float *grad;  /* owned [n_all]: their gradients */
    sw_optim opt; /* the private Adam, valid while compress runs */
    bool opt_ready;
} slim_pruner;

static const sw_compressor_ops slim_ops;

/* ---- the factor transform ------------------------------------------------------------------ */

typedef struct slim_tf {
    const float *gamma; /* borrowed: this target's slice */
    float *grad;        /* borrowed: this target's slice */
    bool has_scaling;
    sw_scaling scaling;
    sw_shape shape; /* the parameter's shape */
    size_t numel;
    size_t n_blocks; /* numel of the block grid: the slice's length */
    float *expanded; /* owned [numel]: gamma over the parameter (block scaling only) */
    float *prod;     /* owned [numel]: dW_eff * input, before block sums */
    double *sums;    /* owned [n blocks] */
} slim_tf;

/* gamma over the parameter: the slice itself when element-wise. */
static const float *slim_tf_factors(const slim_tf *s) {
    return s->has_scaling ? s->expanded : s->gamma;
}

static sw_status slim_tf_forward(sw_transform *t, const sw_transform_call *call, const sw_tensor *x,
                                 sw_tensor *y) {
    slim_tf *s = t->state;
    (void)call;
    SW_ASSERT(x->numel == s->numel);
    if (s->has_scaling) SW_TRY(sw_scaling_expand(&s->scaling, s->gamma, &s->shape, s->expanded));
    const float *f = slim_tf_factors(s);
    for (size_t i = 0; i < s->numel; i++) y->data[i] = x->data[i] * f[i];
    return SW_OK;
}

static sw_status slim_tf_backward(sw_transform *t, const sw_transform_call *call,
                                  const sw_tensor *x, sw_tensor *g) {
    slim_tf *s = t->state;
    (void)call;
    /* x is the saved input (the masked weight); gamma has not moved since the forward: the
     * private Adam steps after backward. */
    for (size_t i = 0; i < s->numel; i++) s->prod[i] = g->data[i] * x->data[i];
    if (s->has_scaling) {
        sw_tensor view = sw_tensor_view(s->prod, &s->shape);
        SW_TRY(sw_scaling_shrink(&s->scaling, &view, SW_REDUCE_SUM, s->sums));
        for (size_t b = 0; b < s->n_blocks; b++) s->grad[b] += (float)s->sums[b];
    } else {
        for (size_t i = 0; i < s->numel; i++) s->grad[i] += s->prod[i];
    }
    const float *f = slim_tf_factors(s);
    for (size_t i = 0; i < s->numel; i++) g->data[i] *= f[i];
    return SW_OK;
}

static void slim_tf_free(sw_transform *t) {
    slim_tf *s = t->state;
    if (!s) return;
    free(s->expanded);
    free(s->prod);
    free(s->sums);
    free(s);
}

static const sw_transform_ops slim_tf_ops = {
    .name = "slim_factor",
    .forward = slim_tf_forward,
    .backward = slim_tf_backward,
    .free = slim_tf_free,
    .needs_input = true,
};

/* ---- factors: attach, fold, detach ------------------------------------------------------- */

static sw_tensor *target_param(slim_pruner *s, const sw_prune_target *t) {
    return &s->p.base.model->nodes[t->node].layer->params[t->param_index].value;
}

static sw_status attach_factor(slim_pruner *s, slim_factor *f) {
    const sw_prune_target *t = &s->p.targets[f->target];
    slim_tf *state = calloc(1, sizeof *state);
    if (!state)
        return SW_FAIL(SW_ERR_NOMEM, "SlimPruner: out of memory for %s.%s", t->module, t->name);
    *state = (slim_tf){.gamma = s->gamma + f->off,
                       .grad = s->grad + f->off,
                       .has_scaling = t->has_scaling,
                       .scaling = t->scaling,
                       .shape = t->shape,
                       .numel = sw_shape_numel(&t->shape),
                       .n_blocks = f->n};
    state->prod = malloc(state->numel * sizeof(float));
    state->sums = malloc(f->n * sizeof(double));
    if (t->has_scaling) state->expanded = malloc(state->numel * sizeof(float));
    if (!state->prod || !state->sums || (t->has_scaling && !state->expanded)) {
        slim_tf_free(&(sw_transform){.state = state});
        return SW_FAIL(SW_ERR_NOMEM, "SlimPruner: out of memory for %s.%s", t->module, t->name);
    }
    /* Same stage as the mask and attached after it: the factor sees the masked weight. */
    return sw_wrapper_set_attach(s->p.base.ws, t->node, t->name, &slim_tf_ops, SW_STAGE_PRUNE, s,
                                 state, &f->tf);
}

/* Folds the factors into the weights (W <- W * gamma) and removes the transforms, so the
 * model computes what it computed with them. A no-op for targets without a transform. */
static sw_status fold_and_detach(slim_pruner *s) {
    float *scratch = NULL;
    size_t cap = 0;
    sw_status st = SW_OK;
    for (int i = 0; i < s->n_factors && st == SW_OK; i++) {
        slim_factor *f = &s->factors[i];
        if (!f->tf) continue;
        const sw_prune_target *t = &s->p.targets[f->target];
        sw_tensor *w = target_param(s, t);
        const float *g = s->gamma + f->off;
        if (t->has_scaling) {
            if (w->numel > cap) {
                float *grown = realloc(scratch, w->numel * sizeof *grown);
                if (!grown) {
                    st = SW_FAIL(SW_ERR_NOMEM, "SlimPruner: out of memory folding %s.%s", t->module,
                                 t->name);
                    break;
                }
                scratch = grown;
                cap = w->numel;
            }
            st = sw_scaling_expand(&t->scaling, g, &w->shape, scratch);
            g = scratch;
        }
        if (st != SW_OK) break;
        for (size_t e = 0; e < w->numel; e++) w->data[e] *= g[e];
        sw_wrapper_set_detach(s->p.base.ws, f->tf);
        f->tf = NULL;
    }
    free(scratch);
    return st;
}

/* ---- training hooks -------------------------------------------------------------------------- */

static sw_status slim_train_begin(void *ctx, sw_train_state *st) {
    slim_pruner *s = ctx;
    (void)st;
    /* Forwards and backwards outside compress may have left gradients behind. */
    memset(s->grad, 0, s->n_all * sizeof *s->grad);
    return SW_OK;
}

/* regular_scale * mean_t ||gamma_t||_1, and its gradient into dgamma. */
static sw_status slim_loss_terms(void *ctx, sw_train_state *st, const char **names, double *values,
                                 int *n_terms) {
    slim_pruner *s = ctx;
    (void)st;
    if (s->n_factors == 0) {
        *n_terms = 0;
        return SW_OK;
    }
    if (*n_terms < 1)
        return SW_FAIL(SW_ERR_ARG, "SlimPruner: no room left to report its loss term");
    double coef = s->regular_scale / (double)s->n_factors, l1 = 0.0;
    float gcoef = (float)coef;
    for (size_t i = 0; i < s->n_all; i++) {
        float v = s->gamma[i];
        l1 += fabs((double)v);
        /* d|x|/dx as torch defines it: sign(x), 0 at 0. */
        if (v > 0.0f)
            s->grad[i] += gcoef;
        else if (v < 0.0f)
            s->grad[i] -= gcoef;
    }
    names[0] = "slim_l1";
    values[0] = coef * l1;
    *n_terms = 1;
    return SW_OK;
}

static sw_status slim_before_step(void *ctx, sw_train_state *st) {
    slim_pruner *s = ctx;
    (void)st;
    if (s->opt_ready) sw_optim_step(&s->opt, SW_TRAINED_PRUNER_LR);
    return SW_OK;
}

static sw_status slim_after_step(void *ctx, sw_train_state *st) {
    slim_pruner *s = ctx;
    (void)st;
    if (s->opt_ready) sw_optim_zero_grad(&s->opt);
    s->current_step++;
    if (s->current_step != s->interval_steps) return SW_OK;
    SW_TRY(sw_pruner_generate_masks(&s->p));
    if (s->remaining > 0) s->remaining--;
    if (s->remaining != 0) s->current_step = 0;
    return SW_OK;
}

/* ---- compressor ops ------------------------------------------------------------------------ */

static sw_status slim_fuse_preprocess(sw_compressor *c) {
    slim_pruner *s = (slim_pruner *)c;
    if (s->interval_steps < s->training_steps)
        return SW_FAIL(SW_ERR_ARG,
                       "scheduled every %ld steps, fewer than its training_steps (%ld): give the "
                       "scheduler interval_steps >= %ld",
                       s->interval_steps, s->training_steps, s->training_steps);
    /* Left attached only by a compress that failed mid-training: keep what it trained. */
    SW_TRY(fold_and_detach(s));
    for (size_t i = 0; i < s->n_all; i++) s->gamma[i] = 1.0f;
    memset(s->grad, 0, s->n_all * sizeof *s->grad);
    for (int i = 0; i < s->n_factors; i++) SW_TRY(attach_factor(s, &s->factors[i]));
    if (s->opt_ready) sw_optim_deinit(&s->opt);
    s->opt_ready = false;
    if (s->n_all > 0) {
        sw_optim_config oc = sw_optim_config_default(SW_OPTIM_ADAM);
        oc.lr = SW_TRAINED_PRUNER_LR;
        SW_TRY(sw_optim_init(&s->opt, &oc));
        s->opt_ready = true;
        SW_TRY(sw_optim_add_group(&s->opt, s->gamma, s->grad, s->n_all));
    }
    s->current_step = 0;
    s->remaining = s->total_times;
    c->hooks.on_train_begin = slim_train_begin;
    c->hooks.loss_terms = slim_loss_terms;
    c->hooks.before_step = slim_before_step;
    c->hooks.after_step = slim_after_step;
    return SW_OK;
}

static sw_status slim_fuse_postprocess(sw_compressor *c) {
    slim_pruner *s = (slim_pruner *)c;
    if (s->opt_ready) sw_optim_deinit(&s->opt);
    s->opt_ready = false;
    return fold_and_detach(s);
}

static sw_status slim_single_compress(sw_compressor *c, long max_steps, int max_epochs) {
    slim_pruner *s = (slim_pruner *)c;
    if (s->scheduled) return sw_compressor_compress_fused(c, max_steps, max_epochs);
    if (max_steps >= 0 || max_epochs >= 0)
        return SW_FAIL(SW_ERR_ARG,
                       "SlimPruner trains its own training_steps (%ld): compress takes no "
                       "max_steps or max_epochs (pass -1)",
                       s->training_steps);
    return sw_compressor_compress_fused(c, s->training_steps, -1);
}

static bool slim_needs_training(const sw_compressor *c) {
    (void)c;
    return true;
}

static void slim_free(sw_compressor *c) {
    slim_pruner *s = (slim_pruner *)c;
    /* The transforms went with the base (detached by owner); only our memory is left. */
    if (s->opt_ready) sw_optim_deinit(&s->opt);
    free(s->factors);
    free(s->factor_of);
    free(s->gamma);
    free(s->grad);
    sw_pruner_deinit(&s->p);
    free(s);
}

static const sw_compressor_ops slim_ops = {
    .name = "SlimPruner",
    .mode = SW_MODE_PRUNING,
    .single_compress = slim_single_compress,
    .fuse_preprocess = slim_fuse_preprocess,
    .fuse_postprocess = slim_fuse_postprocess,
    .needs_training = slim_needs_training,
    .export_file = sw_pruner_export,
    .free = slim_free,
};

/* ---- pruner ops ---------------------------------------------------------------------------- */

static sw_status slim_metric(sw_pruner *p, sw_prune_target *t, double *metric) {
    slim_pruner *s = (slim_pruner *)p;
    int fi = s->factor_of[t - p->targets];
    if (fi < 0) return SW_FAIL(SW_ERR_ARG, "%s.%s has no Slim factor", t->module, t->name);
    const slim_factor *f = &s->factors[fi];
    for (size_t b = 0; b < f->n; b++) metric[b] = fabs((double)s->gamma[f->off + b]);
    return SW_OK;
}

static void slim_set_schedule(sw_pruner *p, long interval_steps, int total_times) {
    slim_pruner *s = (slim_pruner *)p;
    s->interval_steps = interval_steps;
    s->total_times = total_times;
    s->scheduled = true;
}

static const sw_pruner_ops slim_pruner_ops = {
    .metric = slim_metric,
    .default_param_granularity = SW_GRANULARITY_OUT_CHANNEL,
    .set_schedule = slim_set_schedule,
};

/* ---- construction -------------------------------------------------------------------------- */

/* One factor slice per active parameter target. */
static sw_status setup_factors(slim_pruner *s) {
    sw_pruner *p = &s->p;
    s->factor_of = malloc((size_t)(p->n_targets ? p->n_targets : 1) * sizeof *s->factor_of);
    s->factors = calloc((size_t)(p->n_targets ? p->n_targets : 1), sizeof *s->factors);
    if (!s->factor_of || !s->factors) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    for (int i = 0; i < p->n_targets; i++) {
        const sw_prune_target *t = &p->targets[i];
        s->factor_of[i] = -1;
        if (!sw_prune_setting_active(&t->setting) || t->kind != SW_TARGET_PARAM) continue;
        if (t->setting.apply_method != SW_APPLY_MUL)
            return SW_FAIL(SW_ERR_CONFIG,
                           "config_list[%d]: %s.%s: SlimPruner multiplies its factors into the "
                           "weight, so apply_method must be \"mul\" (got \"%s\")",
                           t->entry, t->module, t->name,
                           sw_apply_method_name(t->setting.apply_method));
        size_t n = sw_shape_numel(&t->grid);
        s->factor_of[i] = s->n_factors;
        s->factors[s->n_factors++] = (slim_factor){.target = i, .off = s->n_all, .n = n};
        s->n_all += n;
    }
    s->gamma = malloc((s->n_all ? s->n_all : 1) * sizeof *s->gamma);
    s->grad = calloc(s->n_all ? s->n_all : 1, sizeof *s->grad);
    if (!s->gamma || !s->grad) return SW_FAIL(SW_ERR_NOMEM, "out of memory for Slim factors");
    for (size_t i = 0; i < s->n_all; i++) s->gamma[i] = 1.0f;
    return SW_OK;
}

static sw_status slim_build(sw_wrapper_set *ws, sw_compressor *previous, const cJSON *config_list,
                            sw_evaluator *ev, long training_steps, double regular_scale,
                            sw_compressor **out) {
    if (!config_list) return SW_FAIL(SW_ERR_ARG, "SlimPruner: no config list");
    if (training_steps <= 0)
        return SW_FAIL(SW_ERR_ARG, "SlimPruner: training_steps must be positive (got %ld)",
                       training_steps);
    if (!(regular_scale >= 0.0) || !isfinite(regular_scale))
        return SW_FAIL(SW_ERR_ARG,
                       "SlimPruner: regular_scale must be a finite number >= 0 "
                       "(got %g); NNI's default is 1.0",
                       regular_scale);
    slim_pruner *s = calloc(1, sizeof *s);
    if (!s) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate SlimPruner");
    sw_status st =
        previous
            ? sw_pruner_init_from(&s->p, &slim_ops, &slim_pruner_ops, previous, config_list, ev)
            : sw_pruner_init(&s->p, &slim_ops, &slim_pruner_ops, ws, config_list, ev);
    if (st != SW_OK) {
        free(s);
        sw_error_prefix("SlimPruner");
        return st;
    }
    s->training_steps = training_steps;
    s->regular_scale = regular_scale;
    s->interval_steps = training_steps;
    s->total_times = 1;
    if (!s->p.base.ev)
        st = SW_FAIL(SW_ERR_ARG, "SlimPruner trains while it prunes: give it an evaluator");
    if (st == SW_OK) st = setup_factors(s);
    if (st != SW_OK) {
        sw_compressor_free(&s->p.base);
        sw_error_prefix("SlimPruner");
        return st;
    }
    *out = &s->p.base;
    return SW_OK;
}

sw_status sw_pruner_slim_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                             long training_steps, double regular_scale, sw_compressor **out) {
    return slim_build(ws, NULL, config_list, ev, training_steps, regular_scale, out);
}

sw_status sw_pruner_slim_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                         long training_steps, double regular_scale,
                                         sw_evaluator *ev, sw_compressor **out) {
    if (!previous) return SW_FAIL(SW_ERR_ARG, "SlimPruner.from_compressor: no previous compressor");
    return slim_build(NULL, previous, config_list, ev, training_steps, regular_scale, out);
}

sw_status sw_pruner_slim_factors(const sw_compressor *c, const char *module, const char *target,
                                 const float **values, size_t *n) {
    if (!c || c->ops != &slim_ops)
        return SW_FAIL(SW_ERR_ARG, "%s is not a SlimPruner", c ? c->ops->name : "NULL");
    slim_pruner *s = (slim_pruner *)c;
    sw_prune_target *t = sw_pruner_find(&s->p, module, target);
    int fi = t ? s->factor_of[t - s->p.targets] : -1;
    if (fi < 0)
        return SW_FAIL(SW_ERR_NOT_FOUND,
                       "SlimPruner has no factor for %s.%s (not one of its "
                       "active parameter targets)",
                       module, target);
    *values = s->gamma + s->factors[fi].off;
    *n = s->factors[fi].n;
    return SW_OK;
}
