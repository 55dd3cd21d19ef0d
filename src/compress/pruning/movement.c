/* movement.c - MovementPruner: learned scores decide the masks while fine-tuning (Sanh et al.,
 * "Movement Pruning: Adaptive Sparsity by Fine-Tuning", 2020; reference §3.2).
 *
 * Every active parameter target W (block grid G) gets a score S [G]. The mask transform of the
 * target is replaced by a straight-through one (NNI's apply method movement_mul):
 *
 *   forward   W_eff = W * m                              m: the 0/1 mask in effect
 *   backward  dS_b += sum over block b of dW_eff * W     (the mask's gradient, passed to S)
 *             dW    = dW_eff * m
 *
 * Descent moves a weight by -lr * dL/dW, away from 0 when -dL/dW * W > 0: exactly the weights
 * whose dS is negative, so the private Adam raises their scores. With apply_method "add" the
 * forward is W + (m ? 0 : -1000) and dS_b is the block sum of dW_eff itself.
 *
 * Schedule (NNI's, interval 1): the goals are 0 until warmup_step; after optimizer step s with
 * warmup < s <= cooldown_begin_step, k = s - warmup updates are done and the goals are the
 * configured ones times 1 - (1 - k/T)^3, T = cooldown_begin_step - warmup_step. Masks are
 * regenerated after every step past warmup_step, from S (sparse_ratio: the lowest scores go)
 * or sigmoid(S) (sparse_threshold: blocks under the scaled threshold go). Threshold targets
 * also feel the regulariser documented in trained_pruners.h, which pulls their scores down as
 * the schedule advances.
 *
 * Scores live in one flat array (gradients in another): the private Adam is one group. */
#include "scheduled.h"
#include "trained_pruners.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct mvp_score {
    int target;       /* index in p.targets */
    size_t off, n;    /* slice of S / grad; n = numel of the block grid */
    sw_transform *tf; /* the straight-through mask transform */
} mvp_score;

typedef struct movement_pruner {
    sw_pruner p; /* first */
    long warmup_step, cooldown_begin_step;
    double regular_scale;
    long interval_steps; /* 1, as NNI */
    int total_times;     /* (cooldown - warmup) / interval */
    /* Trigger state during a compress. */
    long current_step, iter_step;
    int remaining;
    int n_scores;
    mvp_score *scores; /* owned */
    int *score_of;     /* owned, per target: index in scores or -1 */
    size_t n_all;
    float *S;    /* owned [n_all] */
    float *grad; /* owned [n_all] */
    sw_optim opt;
    bool opt_ready;
    sw_plan_guard guard;
} movement_pruner;

static const sw_compressor_ops movement_ops;

/* ---- the straight-through mask transform ---------------------------------------------------- */

typedef struct mvp_tf {
    const sw_tensor *mask; /* borrowed: the pruner target's mask, parameter shape */
    float *grad;           /* borrowed: the score slice's gradient */
    bool has_scaling;
    sw_scaling scaling;
    sw_shape shape;
    size_t numel, n_blocks;
    float *prod;  /* owned [numel] */
    double *sums; /* owned [n_blocks] */
} mvp_tf;

/* dS += block sums of v (numel values). */
static sw_status accumulate_blocks(mvp_tf *s, const float *v) {
    if (!s->has_scaling) {
        for (size_t i = 0; i < s->numel; i++) s->grad[i] += v[i];
        return SW_OK;
    }
    sw_tensor view = sw_tensor_view((float *)v, &s->shape);
    SW_TRY(sw_scaling_shrink(&s->scaling, &view, SW_REDUCE_SUM, s->sums));
    for (size_t b = 0; b < s->n_blocks; b++) s->grad[b] += (float)s->sums[b];
    return SW_OK;
}

static sw_status mvp_mul_forward(sw_transform *t, const sw_transform_call *call, const sw_tensor *x,
                                 sw_tensor *y) {
    mvp_tf *s = t->state;
    (void)call;
    const float *m = s->mask->data;
    for (size_t i = 0; i < s->numel; i++) y->data[i] = x->data[i] * m[i];
    return SW_OK;
}

static sw_status mvp_mul_backward(sw_transform *t, const sw_transform_call *call,
                                  const sw_tensor *x, sw_tensor *g) {
    mvp_tf *s = t->state;
    (void)call;
    /* The mask's gradient is dW_eff * W; straight through to S, unmasked: a pruned weight
     * keeps scoring and can come back. */
    for (size_t i = 0; i < s->numel; i++) s->prod[i] = g->data[i] * x->data[i];
    SW_TRY(accumulate_blocks(s, s->prod));
    const float *m = s->mask->data;
    for (size_t i = 0; i < s->numel; i++) g->data[i] *= m[i];
    return SW_OK;
}

static sw_status mvp_add_forward(sw_transform *t, const sw_transform_call *call, const sw_tensor *x,
                                 sw_tensor *y) {
    mvp_tf *s = t->state;
    (void)call;
    const float *m = s->mask->data;
    for (size_t i = 0; i < s->numel; i++)
        y->data[i] = x->data[i] + (m[i] == 1.0f ? 0.0f : -1000.0f);
    return SW_OK;
}

static sw_status mvp_add_backward(sw_transform *t, const sw_transform_call *call,
                                  const sw_tensor *x, sw_tensor *g) {
    mvp_tf *s = t->state;
    (void)call;
    (void)x;
    /* d(x + a)/da = 1: the score receives the gradient itself; x passes it unchanged. */
    return accumulate_blocks(s, g->data);
}

static const float *mvp_mask(const sw_transform *t) {
    const mvp_tf *s = t->state;
    return s->mask->data;
}

static void mvp_free(sw_transform *t) {
    mvp_tf *s = t->state;
    if (!s) return;
    free(s->prod);
    free(s->sums);
    free(s);
}

static const sw_transform_ops mvp_mul_ops = {
    .name = "movement_mul",
    .forward = mvp_mul_forward,
    .backward = mvp_mul_backward,
    .mask = mvp_mask,
    .free = mvp_free,
    .needs_input = true,
};

static const sw_transform_ops mvp_add_ops = {
    .name = "movement_add",
    .forward = mvp_add_forward,
    .backward = mvp_add_backward,
    .mask = mvp_mask,
    .free = mvp_free,
};

/* Replaces the plain mask transform the pruner base attached on a scored target. */
static sw_status attach_score(movement_pruner *m, mvp_score *sc) {
    sw_prune_target *t = &m->p.targets[sc->target];
    mvp_tf *state = calloc(1, sizeof *state);
    if (!state)
        return SW_FAIL(SW_ERR_NOMEM, "MovementPruner: out of memory for %s.%s", t->module, t->name);
    *state = (mvp_tf){.mask = &t->mask,
                      .grad = m->grad + sc->off,
                      .has_scaling = t->has_scaling,
                      .scaling = t->scaling,
                      .shape = t->shape,
                      .numel = sw_shape_numel(&t->shape),
                      .n_blocks = sc->n};
    state->prod = malloc(state->numel * sizeof(float));
    state->sums = malloc(sc->n * sizeof(double));
    if (!state->prod || !state->sums) {
        mvp_free(&(sw_transform){.state = state});
        return SW_FAIL(SW_ERR_NOMEM, "MovementPruner: out of memory for %s.%s", t->module, t->name);
    }
    const sw_transform_ops *ops =
        t->setting.apply_method == SW_APPLY_ADD ? &mvp_add_ops : &mvp_mul_ops;
    /* The base's transform goes; ours reads t->mask directly, so the base must not refresh a
     * transform it no longer knows (t->tf = NULL). */
    sw_wrapper_set_detach(m->p.base.ws, t->tf);
    t->tf = NULL;
    return sw_wrapper_set_attach(m->p.base.ws, t->node, t->name, ops, SW_STAGE_PRUNE, m, state,
                                 &sc->tf);
}

/* ---- schedule and training hooks ---------------------------------------------------------- */

static double sigmoid(double x) {
    return 1.0 / (1.0 + exp(-x));
}

static sw_status movement_train_begin(void *ctx, sw_train_state *st) {
    movement_pruner *m = ctx;
    (void)st;
    memset(m->grad, 0, m->n_all * sizeof *m->grad);
    return sw_plan_guard_check(&m->guard, m->cooldown_begin_step, "MovementPruner",
                               "its schedule (cooldown_begin_step)");
}

static sw_status movement_train_end(void *ctx, sw_train_state *st) {
    movement_pruner *m = ctx;
    (void)st;
    sw_plan_guard_disarm(&m->guard);
    return SW_OK;
}

/* regular_scale * r * mean over threshold targets of sum(sigmoid(S_t)) / numel(S_t), with its
 * gradient into dS. */
static sw_status movement_loss_terms(void *ctx, sw_train_state *st, const char **names,
                                     double *values, int *n_terms) {
    movement_pruner *m = ctx;
    (void)st;
    int count = 0;
    for (int i = 0; i < m->n_scores; i++)
        if (m->p.targets[m->scores[i].target].setting.has_threshold) count++;
    if (count == 0) {
        *n_terms = 0;
        return SW_OK;
    }
    if (*n_terms < 1)
        return SW_FAIL(SW_ERR_ARG, "MovementPruner: no room left to report its loss term");
    double left = (double)m->remaining / (double)m->total_times;
    double r = 1.0 - left * left * left;
    r = r < 0.0 ? 0.0 : r > 1.0 ? 1.0 : r;
    double coef = m->regular_scale * r / (double)count, total = 0.0;
    for (int i = 0; i < m->n_scores; i++) {
        const mvp_score *sc = &m->scores[i];
        if (!m->p.targets[sc->target].setting.has_threshold) continue;
        double sum = 0.0, per = coef / (double)sc->n;
        for (size_t b = 0; b < sc->n; b++) {
            double sg = sigmoid((double)m->S[sc->off + b]);
            sum += sg;
            m->grad[sc->off + b] += (float)(per * sg * (1.0 - sg));
        }
        total += sum / (double)sc->n;
    }
    names[0] = "movement_reg";
    values[0] = coef * total;
    *n_terms = 1;
    return SW_OK;
}

static sw_status movement_before_step(void *ctx, sw_train_state *st) {
    movement_pruner *m = ctx;
    (void)st;
    if (!m->opt_ready) return SW_OK;
    sw_optim_step(&m->opt, SW_TRAINED_PRUNER_LR);
    sw_optim_zero_grad(&m->opt);
    return SW_OK;
}

static sw_status movement_after_step(void *ctx, sw_train_state *st) {
    movement_pruner *m = ctx;
    (void)st;
    m->current_step++;
    if (m->current_step > m->warmup_step && m->current_step <= m->cooldown_begin_step) {
        m->iter_step++;
        if (m->iter_step == m->interval_steps) {
            m->remaining--;
            long done = (long)(m->total_times - m->remaining);
            sw_pruner_scale_goals(&m->p, sw_schedule_agp(done, m->total_times));
            if (m->remaining > 0) m->iter_step = 0;
        }
    }
    if (m->current_step > m->warmup_step) SW_TRY(sw_pruner_generate_masks(&m->p));
    return SW_OK;
}

/* ---- compressor ops ------------------------------------------------------------------------ */

static sw_status movement_fuse_preprocess(sw_compressor *c) {
    movement_pruner *m = (movement_pruner *)c;
    /* Each compress starts over, as NNI's registers fresh scores: goals 0, scores 0. */
    sw_pruner_scale_goals(&m->p, 0.0);
    memset(m->S, 0, m->n_all * sizeof *m->S);
    memset(m->grad, 0, m->n_all * sizeof *m->grad);
    if (m->opt_ready) sw_optim_deinit(&m->opt);
    m->opt_ready = false;
    if (m->n_all > 0) {
        sw_optim_config oc = sw_optim_config_default(SW_OPTIM_ADAM);
        oc.lr = SW_TRAINED_PRUNER_LR;
        SW_TRY(sw_optim_init(&m->opt, &oc));
        m->opt_ready = true;
        SW_TRY(sw_optim_add_group(&m->opt, m->S, m->grad, m->n_all));
    }
    m->current_step = 0;
    m->iter_step = 0;
    m->remaining = m->total_times;
    c->hooks.on_train_begin = movement_train_begin;
    c->hooks.loss_terms = movement_loss_terms;
    c->hooks.before_step = movement_before_step;
    c->hooks.after_step = movement_after_step;
    c->hooks.on_train_end = movement_train_end;
    return sw_plan_guard_arm(&m->guard, c->ev);
}

static sw_status movement_fuse_postprocess(sw_compressor *c) {
    movement_pruner *m = (movement_pruner *)c;
    sw_plan_guard_disarm(&m->guard);
    if (m->opt_ready) sw_optim_deinit(&m->opt);
    m->opt_ready = false;
    return SW_OK;
}

static bool movement_needs_training(const sw_compressor *c) {
    (void)c;
    return true;
}

static void movement_free(sw_compressor *c) {
    movement_pruner *m = (movement_pruner *)c;
    /* Armed only after a compress that failed before training began (see scheduled.h). */
    sw_plan_guard_disarm(&m->guard);
    if (m->opt_ready) sw_optim_deinit(&m->opt);
    free(m->scores);
    free(m->score_of);
    free(m->S);
    free(m->grad);
    sw_pruner_deinit(&m->p);
    free(m);
}

static const sw_compressor_ops movement_ops = {
    .name = "MovementPruner",
    .mode = SW_MODE_PRUNING,
    .fuse_preprocess = movement_fuse_preprocess,
    .fuse_postprocess = movement_fuse_postprocess,
    .needs_training = movement_needs_training,
    .export_file = sw_pruner_export,
    .free = movement_free,
};

/* ---- pruner ops ---------------------------------------------------------------------------- */

static sw_status movement_metric(sw_pruner *p, sw_prune_target *t, double *metric) {
    movement_pruner *m = (movement_pruner *)p;
    int si = m->score_of[t - p->targets];
    if (si < 0) return SW_FAIL(SW_ERR_ARG, "%s.%s has no movement score", t->module, t->name);
    const mvp_score *sc = &m->scores[si];
    bool threshold = t->setting.has_threshold;
    for (size_t b = 0; b < sc->n; b++) {
        double s = (double)m->S[sc->off + b];
        metric[b] = threshold ? sigmoid(s) : s;
    }
    return SW_OK;
}

static const sw_pruner_ops movement_pruner_ops = {
    .metric = movement_metric,
    .default_param_granularity = SW_GRANULARITY_OUT_CHANNEL,
};

/* ---- construction -------------------------------------------------------------------------- */

static sw_status setup_scores(movement_pruner *m) {
    sw_pruner *p = &m->p;
    size_t n_t = (size_t)(p->n_targets ? p->n_targets : 1);
    m->score_of = malloc(n_t * sizeof *m->score_of);
    m->scores = calloc(n_t, sizeof *m->scores);
    if (!m->score_of || !m->scores) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    for (int i = 0; i < p->n_targets; i++) {
        const sw_prune_target *t = &p->targets[i];
        m->score_of[i] = -1;
        if (!sw_prune_setting_active(&t->setting) || t->kind != SW_TARGET_PARAM) continue;
        if (t->setting.apply_method == SW_APPLY_BYPASS)
            return SW_FAIL(SW_ERR_CONFIG,
                           "config_list[%d]: %s.%s: MovementPruner learns its scores through "
                           "the mask; apply_method \"bypass\" leaves nothing to learn from (use "
                           "\"mul\" or \"add\")",
                           t->entry, t->module, t->name);
        size_t n = sw_shape_numel(&t->grid);
        m->score_of[i] = m->n_scores;
        m->scores[m->n_scores++] = (mvp_score){.target = i, .off = m->n_all, .n = n};
        m->n_all += n;
    }
    m->S = calloc(m->n_all ? m->n_all : 1, sizeof *m->S);
    m->grad = calloc(m->n_all ? m->n_all : 1, sizeof *m->grad);
    if (!m->S || !m->grad) return SW_FAIL(SW_ERR_NOMEM, "out of memory for movement scores");
    for (int i = 0; i < m->n_scores; i++) SW_TRY(attach_score(m, &m->scores[i]));
    return SW_OK;
}

static sw_status movement_build(sw_wrapper_set *ws, sw_compressor *previous,
                                const cJSON *config_list, sw_evaluator *ev, long warmup_step,
                                long cooldown_begin_step, double regular_scale,
                                sw_compressor **out) {
    if (!config_list) return SW_FAIL(SW_ERR_ARG, "MovementPruner: no config list");
    if (warmup_step < 0 || warmup_step >= cooldown_begin_step)
        return SW_FAIL(SW_ERR_ARG,
                       "MovementPruner: need 0 <= warmup_step < cooldown_begin_step (got %ld and "
                       "%ld)",
                       warmup_step, cooldown_begin_step);
    if (!(regular_scale >= 0.0) || !isfinite(regular_scale))
        return SW_FAIL(SW_ERR_ARG,
                       "MovementPruner: regular_scale must be a finite number >= 0 "
                       "(got %g); NNI's default is 1.0",
                       regular_scale);
    movement_pruner *m = calloc(1, sizeof *m);
    if (!m) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate MovementPruner");
    sw_status st =
        previous ? sw_pruner_init_from(&m->p, &movement_ops, &movement_pruner_ops, previous,
                                       config_list, ev)
                 : sw_pruner_init(&m->p, &movement_ops, &movement_pruner_ops, ws, config_list, ev);
    if (st != SW_OK) {
        free(m);
        sw_error_prefix("MovementPruner");
        return st;
    }
    m->warmup_step = warmup_step;
    m->cooldown_begin_step = cooldown_begin_step;
    m->regular_scale = regular_scale;
    m->interval_steps = 1;
    m->total_times = (int)((cooldown_begin_step - warmup_step) / m->interval_steps);
    if (!m->p.base.ev)
        st = SW_FAIL(SW_ERR_ARG, "MovementPruner trains while it prunes: give it an evaluator");
    if (st == SW_OK) st = setup_scores(m);
    if (st != SW_OK) {
        sw_compressor_free(&m->p.base);
        sw_error_prefix("MovementPruner");
        return st;
    }
    *out = &m->p.base;
    return SW_OK;
}

sw_status sw_pruner_movement_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                                 long warmup_step, long cooldown_begin_step, double regular_scale,
                                 sw_compressor **out) {
    return movement_build(ws, NULL, config_list, ev, warmup_step, cooldown_begin_step,
                          regular_scale, out);
}

sw_status sw_pruner_movement_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                             long warmup_step, long cooldown_begin_step,
                                             double regular_scale, sw_evaluator *ev,
                                             sw_compressor **out) {
    if (!previous)
        return SW_FAIL(SW_ERR_ARG, "MovementPruner.from_compressor: no previous compressor");
    return movement_build(NULL, previous, config_list, ev, warmup_step, cooldown_begin_step,
                          regular_scale, out);
}

sw_status sw_pruner_movement_scores(const sw_compressor *c, const char *module, const char *target,
                                    const float **values, size_t *n) {
    if (!c || c->ops != &movement_ops)
        return SW_FAIL(SW_ERR_ARG, "%s is not a MovementPruner", c ? c->ops->name : "NULL");
    movement_pruner *m = (movement_pruner *)c;
    sw_prune_target *t = sw_pruner_find(&m->p, module, target);
    int si = t ? m->score_of[t - m->p.targets] : -1;
    if (si < 0)
        return SW_FAIL(SW_ERR_NOT_FOUND,
                       "MovementPruner has no score for %s.%s (not one of its "
                       "active parameter targets)",
                       module, target);
    *values = m->S + m->scores[si].off;
    *n = m->scores[si].n;
    return SW_OK;
}
