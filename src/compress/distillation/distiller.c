/* distiller.c - the distiller base: config, links, captures, adapters, and the training hooks. */
#include "distiller.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../tensor/rng.h"

/* ---- the distillation mode of config lists ------------------------------------------------- */

static bool check_lambda(const cJSON *v, char *why, size_t size) {
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0) {
        snprintf(why, size, "expected a number >= 0 (the weight of this distillation loss)");
        return false;
    }
    return true;
}

static bool check_link(const cJSON *v, char *why, size_t size) {
    if (cJSON_IsString(v)) return true;
    bool ok = cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        if (!cJSON_IsString(it)) ok = false;
    }
    if (!ok)
        snprintf(why, size,
                 "expected a teacher module name, a non-empty list of them, or \"auto\" "
                 "(the module of the same name)");
    return ok;
}

static bool check_apply_method(const cJSON *v, char *why, size_t size) {
    sw_distill_method m;
    if (cJSON_IsString(v) && sw_distill_method_from_name(v->valuestring, &m) == SW_OK) return true;
    snprintf(why, size, "expected \"mse\" (features) or \"kl\" (logits, temperature 2)");
    return false;
}

static const sw_config_key distill_keys[] = {
    {"lambda", check_lambda},
    {"link", check_link},
    {"apply_method", check_apply_method},
};

/* Every module type can be distilled; NNI registers this `_output_` template on the fly. */
static const char *distill_template(sw_layer_kind kind) {
    (void)kind;
    return "{\"_output_\": {\"lambda\": null, \"link\": null, \"apply_method\": null}}";
}

const sw_config_mode sw_distill_config_mode = {
    .mode = SW_MODE_DISTILLATION,
    .keys = distill_keys,
    .n_keys = (int)(sizeof distill_keys / sizeof distill_keys[0]),
    .template_for = distill_template,
};

/* ---- helpers ----------------------------------------------------------------------------- */

sw_status sw_teacher_predict_forward(void *ctx, const sw_batch *batch, sw_model *teacher) {
    (void)ctx;
    const sw_tensor *out = NULL;
    return sw_model_forward(teacher, &batch->x, &out);
}

sw_distiller *sw_distiller_of(sw_compressor *c) {
    return c && c->ops->mode == SW_MODE_DISTILLATION ? (sw_distiller *)c : NULL;
}

sw_distill_target *sw_distiller_find(sw_distiller *d, const char *module, const char *target) {
    for (int i = 0; i < d->n_targets; i++)
        if (strcmp(d->targets[i].module, module) == 0 && strcmp(d->targets[i].name, target) == 0)
            return &d->targets[i];
    return NULL;
}

/* The teacher node whose output is the linked value: the link itself for outputs, its
 * producer for inputs. */
static int teacher_source(const sw_distiller *d, const sw_distill_target *t, int link) {
    int node = t->links[link];
    if (t->kind == SW_TARGET_OUTPUT) return node;
    return d->teacher->nodes[node].inputs[t->input_index];
}

bool sw_distiller_teacher_value(const sw_distiller *d, const sw_distill_target *t, int link,
                                sw_tensor *out) {
    /* teacher->batch is cleared before teacher_predict: still 0 means it did not run. */
    if (d->teacher->batch <= 0) return false;
    const sw_tensor *v = &d->teacher->outs[teacher_source(d, t, link)];
    *out = sw_tensor_view(v->data, &v->shape);
    return true;
}

sw_shape sw_distiller_teacher_shape(const sw_distiller *d, const sw_distill_target *t, int link,
                                    const char **teacher_module) {
    if (teacher_module) *teacher_module = d->teacher->nodes[t->links[link]].name;
    return d->teacher->nodes[teacher_source(d, t, link)].out_shape;
}

/* Product of the origin_loss_lambda of every older distiller of the chain: their loss
 * patches wrap this one's, so they scale its terms (see distiller.h). */
static double outer_factor(const sw_distiller *d) {
    double f = 1.0;
    for (const sw_compressor *m = d->base.previous; m; m = m->previous)
        if (m->ops->mode == SW_MODE_DISTILLATION)
            f *= ((const sw_distiller *)m)->origin_loss_lambda;
    return f;
}

/* "distill" for the oldest distiller of a chain, "distill2", ... for newer ones: names must
 * be static strings, and distinct so that a JSON log keeps every term. */
static const char *term_name(const sw_distiller *d) {
    static const char *const names[] = {"distill",  "distill2", "distill3", "distill4",
                                        "distill5", "distill6", "distill7", "distill8"};
    int older = 0;
    for (const sw_compressor *m = d->base.previous; m; m = m->previous)
        if (m->ops->mode == SW_MODE_DISTILLATION) older++;
    int n = (int)(sizeof names / sizeof names[0]);
    return names[older < n ? older : n - 1];
}

/* ---- construction ------------------------------------------------------------------------ */

/* Reads lambda, apply_method and link from a resolved setting (nulls take NNI's defaults:
 * 1.0, "mse", "auto") and resolves the links to teacher nodes. */
static sw_status parse_target(sw_distiller *d, const sw_config_target *ct, sw_distill_target *t) {
    const sw_model *student = d->base.model;
    const cJSON *s = ct->setting;
    const cJSON *lambda = cJSON_GetObjectItemCaseSensitive(s, "lambda");
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(s, "apply_method");
    const cJSON *link = cJSON_GetObjectItemCaseSensitive(s, "link");
    /* Values were checked when the config list was resolved; null means NNI's default. */
    t->lambda = lambda && !cJSON_IsNull(lambda) ? lambda->valuedouble : 1.0;
    t->method = SW_DISTILL_MSE;
    if (method && !cJSON_IsNull(method))
        SW_TRY(sw_distill_method_from_name(method->valuestring, &t->method));
    int n = !link || cJSON_IsNull(link) || cJSON_IsString(link) ? 1 : cJSON_GetArraySize(link);
    t->links = malloc((size_t)n * sizeof *t->links);
    if (!t->links) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    for (int k = 0; k < n; k++) {
        const char *name = "auto";
        if (link && cJSON_IsString(link)) name = link->valuestring;
        if (link && cJSON_IsArray(link)) name = cJSON_GetArrayItem(link, k)->valuestring;
        /* "auto": the teacher module of the same name (NNI's default). */
        if (strcmp(name, "auto") == 0) name = student->nodes[t->node].name;
        int tn = sw_model_find(d->teacher, name);
        if (tn < 0)
            return SW_FAIL(SW_ERR_CONFIG,
                           "config_list[%d]: %s.%s links to \"%s\", which is not a module of the "
                           "teacher (%s); give \"link\" with a teacher module name",
                           ct->entry, t->module, t->name, name, d->teacher->arch);
        if (t->kind == SW_TARGET_INPUT &&
            (t->input_index >= d->teacher->nodes[tn].n_inputs ||
             d->teacher->nodes[tn].inputs[t->input_index] == SW_NODE_INPUT))
            return SW_FAIL(SW_ERR_CONFIG,
                           "config_list[%d]: %s.%s links to teacher module \"%s\", whose input "
                           "%d is %s; distill an output instead",
                           ct->entry, t->module, t->name, name, t->input_index,
                           t->input_index >= d->teacher->nodes[tn].n_inputs
                               ? "missing"
                               : "the model input (the same data for both)");
        t->links[t->n_links++] = tn;
    }
    return SW_OK;
}

/* Kaiming-uniform with a = sqrt(5), as torch.nn.Linear initialises: weight and bias uniform
 * in +-1/sqrt(d_in). */
static void init_adapter(sw_distill_target *t, sw_rng *rng) {
    float bound = 1.0f / sqrtf((float)t->d_in);
    size_t nw = (size_t)t->d_out * (size_t)t->d_in;
    for (size_t i = 0; i < nw; i++) t->adapter_w[i] = (2.0f * sw_rng_uniform(rng) - 1.0f) * bound;
    for (int i = 0; i < t->d_out; i++)
        t->adapter_b[i] = (2.0f * sw_rng_uniform(rng) - 1.0f) * bound;
}

/* One block for every adapter (weight then bias per target), seeded from the evaluator's seed
 * so that a run is reproducible. */
static sw_status alloc_adapters(sw_distiller *d) {
    size_t n = 0;
    for (int i = 0; i < d->n_targets; i++) {
        const sw_distill_target *t = &d->targets[i];
        if (t->d_in > 0) n += (size_t)t->d_out * (size_t)t->d_in + (size_t)t->d_out;
    }
    if (n == 0) return SW_OK;
    d->adapter = malloc(n * sizeof *d->adapter);
    d->adapter_grad = calloc(n, sizeof *d->adapter_grad);
    if (!d->adapter || !d->adapter_grad)
        return SW_FAIL(SW_ERR_NOMEM, "cannot allocate adapters of %zu floats", n);
    d->n_adapter = n;
    sw_rng rng;
    sw_rng_init(&rng, d->base.ev ? d->base.ev->cfg.seed : 0, 0xad);
    size_t at = 0;
    for (int i = 0; i < d->n_targets; i++) {
        sw_distill_target *t = &d->targets[i];
        if (t->d_in <= 0) continue;
        size_t nw = (size_t)t->d_out * (size_t)t->d_in;
        t->adapter_w = d->adapter + at;
        t->adapter_gw = d->adapter_grad + at;
        t->adapter_b = d->adapter + at + nw;
        t->adapter_gb = d->adapter_grad + at + nw;
        at += nw + (size_t)t->d_out;
        init_adapter(t, &rng);
    }
    return SW_OK;
}

static void free_targets(sw_distiller *d) {
    for (int i = 0; i < d->n_targets; i++) {
        sw_distill_target *t = &d->targets[i];
        free(t->links);
        free(t->scratch);
        sw_distill_capture_deinit(&t->capture);
    }
    free(d->targets);
    d->targets = NULL;
    d->n_targets = 0;
    free(d->adapter);
    free(d->adapter_grad);
    d->adapter = d->adapter_grad = NULL;
    d->n_adapter = 0;
}

/* Claims, parses and sets up every resolved target, then attaches the captures. */
static sw_status setup_targets(sw_distiller *d, const sw_config_resolved *r) {
    sw_compressor *c = &d->base;
    d->targets = calloc((size_t)r->n + 1, sizeof *d->targets);
    if (!d->targets) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    for (int i = 0; i < r->n; i++) {
        const sw_config_target *ct = &r->items[i];
        const sw_node *node = &c->model->nodes[ct->node];
        sw_target *wt = sw_wrapper_target(&c->ws->wrappers[ct->node], ct->target);
        SW_ASSERT(wt != NULL);
        if (wt->kind == SW_TARGET_PARAM)
            return SW_FAIL(SW_ERR_CONFIG,
                           "config_list[%d]: %s.%s is a parameter; distillation captures inputs "
                           "and outputs (\"_output_0\", \"_input_<i>\")",
                           ct->entry, node->name, ct->target);
        if (wt->kind == SW_TARGET_INPUT && node->inputs[wt->index] == SW_NODE_INPUT)
            return SW_FAIL(SW_ERR_CONFIG,
                           "config_list[%d]: %s.%s is the model input (the same data for student "
                           "and teacher); distill an output instead",
                           ct->entry, node->name, ct->target);
        const void *holder = NULL;
        if (!sw_wrapper_set_claim(c->ws, ct->node, ct->target, SW_MODE_DISTILLATION, c, &holder)) {
            const sw_compressor *h = holder;
            sw_warnings_add(&c->warnings,
                            "config_list[%d]: %s.%s is already distilled by %s; this distiller "
                            "leaves it alone (first config wins)",
                            ct->entry, node->name, ct->target, h ? h->ops->name : "another");
            continue;
        }
        sw_distill_target *t = &d->targets[d->n_targets++];
        *t = (sw_distill_target){.node = ct->node,
                                 .module = node->name,
                                 .kind = wt->kind,
                                 .input_index = wt->kind == SW_TARGET_INPUT ? wt->index : -1,
                                 .entry = ct->entry,
                                 .shape = wt->shape,
                                 .last_link = -1};
        snprintf(t->name, sizeof t->name, "%s", ct->target);
        SW_TRY(parse_target(d, ct, t));
        SW_TRY(d->dops->setup_target(d, t));
    }
    SW_TRY(alloc_adapters(d));
    for (int i = 0; i < d->n_targets; i++) {
        sw_distill_target *t = &d->targets[i];
        SW_TRY(sw_distill_capture_attach(c->ws, t->node, t->name, &t->capture, c));
    }
    return SW_OK;
}

sw_status sw_distiller_init(sw_distiller *d, const sw_compressor_ops *ops,
                            const sw_distiller_ops *dops, sw_wrapper_set *ws,
                            sw_compressor *previous, const cJSON *config_list, sw_evaluator *ev,
                            sw_model *teacher, sw_teacher_predict_fn predict, void *predict_ctx,
                            double origin_loss_lambda) {
    if (!config_list) return SW_FAIL(SW_ERR_ARG, "%s: no config list", ops->name);
    if (!teacher)
        return SW_FAIL(SW_ERR_ARG, "%s: no teacher model (load one, e.g. the dense model)",
                       ops->name);
    if (!isfinite(origin_loss_lambda) || origin_loss_lambda < 0)
        return SW_FAIL(SW_ERR_ARG, "%s: origin_loss_lambda %g must be a number >= 0", ops->name,
                       origin_loss_lambda);
    sw_status st = previous ? sw_compressor_init_from(&d->base, ops, previous, ev)
                            : sw_compressor_init(&d->base, ops, ws, ev);
    if (st != SW_OK) return st;
    if (teacher == d->base.model) {
        sw_compressor_deinit(&d->base);
        return SW_FAIL(SW_ERR_ARG,
                       "%s: the teacher is the student itself; give a separate model (e.g. a "
                       "copy of the dense model, sw_model_clone)",
                       ops->name);
    }
    d->dops = dops;
    d->teacher = teacher;
    d->predict = predict ? predict : sw_teacher_predict_forward;
    d->predict_ctx = predict_ctx;
    d->origin_loss_lambda = origin_loss_lambda;
    st = sw_model_finalize(teacher);
    sw_config_resolved r;
    sw_config_resolved_init(&r);
    if (st == SW_OK)
        st = sw_config_resolve(d->base.model, config_list, &sw_distill_config_mode,
                               &d->base.warnings, &r);
    if (st == SW_OK) st = setup_targets(d, &r);
    sw_config_resolved_deinit(&r);
    if (st != SW_OK) {
        sw_compressor_deinit(&d->base);
        free_targets(d);
    }
    return st;
}

void sw_distiller_deinit(sw_distiller *d) {
    free_targets(d);
}

/* ---- training ---------------------------------------------------------------------------- */

/* NNI's loss patch, task part: the wrapped training step's loss and gradient times
 * origin_loss_lambda. */
static sw_status scaled_training_step(void *ctx, const sw_batch *batch, const sw_tensor *logits,
                                      double *loss, sw_tensor *dlogits) {
    sw_distiller *d = ctx;
    SW_TRY(d->inner_step(d->inner_ctx, batch, logits, loss, dlogits));
    d->last.task = *loss;
    if (d->origin_loss_lambda != 1.0) {
        *loss *= d->origin_loss_lambda;
        float f = (float)d->origin_loss_lambda;
        for (size_t i = 0; i < dlogits->numel; i++) dlogits->data[i] *= f;
    }
    return SW_OK;
}

static void reset_captures(sw_distiller *d) {
    for (int i = 0; i < d->n_targets; i++) sw_distill_capture_reset(&d->targets[i].capture);
}

static sw_status distiller_train_begin(void *ctx, sw_train_state *st) {
    sw_distiller *d = ctx;
    sw_evaluator *ev = st->ev;
    reset_captures(d);
    sw_model_set_training(d->teacher, false);
    /* Adapters train with the student, in the student's optimizer (a group of their own). */
    if (d->n_adapter > 0) {
        memset(d->adapter_grad, 0, d->n_adapter * sizeof *d->adapter_grad);
        SW_TRY(sw_optim_add_group(&ev->optim, d->adapter, d->adapter_grad, d->n_adapter));
    }
    d->inner_step = ev->training_step;
    d->inner_ctx = ev->training_step_ctx;
    ev->training_step = scaled_training_step;
    ev->training_step_ctx = d;
    d->step_wrapped = true;
    return SW_OK;
}

static sw_status distiller_train_end(void *ctx, sw_train_state *st) {
    sw_distiller *d = ctx;
    sw_evaluator *ev = st->ev;
    reset_captures(d);
    if (!d->step_wrapped) return SW_OK;
    d->step_wrapped = false;
    /* End hooks run in reverse order of the begin hooks, so wrappers come off in LIFO order:
     * the step in place now must be this distiller's own. */
    if (ev->training_step != scaled_training_step || ev->training_step_ctx != d)
        return SW_FAIL(SW_ERR_ARG,
                       "%s: the evaluator's training step was replaced during training; "
                       "it cannot be restored",
                       d->base.ops->name);
    ev->training_step = d->inner_step;
    ev->training_step_ctx = d->inner_ctx;
    return SW_OK;
}

static sw_status distiller_loss_terms(void *ctx, sw_train_state *st, const char **names,
                                      double *values, int *n_terms) {
    sw_distiller *d = ctx;
    if (*n_terms < 1)
        return SW_FAIL(SW_ERR_ARG, "%s: no room left to report its loss term", d->base.ops->name);
    /* The teacher: eval mode, forward only (the engine computes gradients only in backward,
     * which is never called for it). */
    sw_model_set_training(d->teacher, false);
    d->teacher->batch = 0;
    sw_status s = d->predict(d->predict_ctx, st->batch, d->teacher);
    if (s != SW_OK) {
        sw_error_prefix("teacher_predict");
        return s;
    }
    double outer = outer_factor(d), sum = 0.0;
    for (int i = 0; i < d->n_targets && s == SW_OK; i++) {
        sw_distill_target *t = &d->targets[i];
        t->last_loss = 0.0;
        t->last_link = -1;
        if (!t->capture.has_value) continue; /* NNI skips a pair with a missing state */
        double term = 0.0;
        s = d->dops->target_loss(d, t, (float)outer, &term);
        if (s != SW_OK) sw_error_prefix("%s.%s", t->module, t->name);
        sum += term;
    }
    /* NNI's clean(): states are used once. */
    for (int i = 0; i < d->n_targets; i++) sw_distill_capture_clear(&d->targets[i].capture);
    if (s != SW_OK) return s;
    d->last.distill = sum;
    d->last.final = d->origin_loss_lambda * d->last.task + sum;
    d->last.steps++;
    names[0] = term_name(d);
    values[0] = outer * sum;
    *n_terms = 1;
    return SW_OK;
}

sw_status sw_distiller_fuse_preprocess(sw_compressor *c) {
    sw_distiller *d = (sw_distiller *)c;
    reset_captures(d);
    c->hooks.on_train_begin = distiller_train_begin;
    c->hooks.loss_terms = distiller_loss_terms;
    c->hooks.on_train_end = distiller_train_end;
    return SW_OK;
}

sw_status sw_distiller_fuse_postprocess(sw_compressor *c) {
    reset_captures((sw_distiller *)c);
    return SW_OK;
}

bool sw_distiller_needs_training(const sw_compressor *c) {
    (void)c;
    return true; /* a distiller does nothing but change the training loss */
}

/* ---- queries ----------------------------------------------------------------------------- */

sw_status sw_distiller_losses(sw_compressor *c, sw_distill_losses *out) {
    sw_distiller *d = sw_distiller_of(c);
    if (!d) return SW_FAIL(SW_ERR_ARG, "%s is not a distiller", c ? c->ops->name : "NULL");
    *out = d->last;
    return SW_OK;
}

sw_status sw_distiller_adapter(sw_compressor *c, const char *module, const char *target,
                               sw_tensor *weight, sw_tensor *bias) {
    sw_distiller *d = sw_distiller_of(c);
    if (!d) return SW_FAIL(SW_ERR_ARG, "%s is not a distiller", c ? c->ops->name : "NULL");
    sw_distill_target *t = sw_distiller_find(d, module, target);
    if (!t)
        return SW_FAIL(SW_ERR_NOT_FOUND, "%s does not distill %s.%s", c->ops->name, module, target);
    if (!t->adapter_w)
        return SW_FAIL(SW_ERR_NOT_FOUND,
                       "%s.%s has no adapter (student and teacher widths are equal, or %s uses "
                       "none)",
                       module, target, c->ops->name);
    sw_shape ws = sw_shape_2d(t->d_out, t->d_in), bs = sw_shape_1d(t->d_out);
    *weight = sw_tensor_view(t->adapter_w, &ws);
    *bias = sw_tensor_view(t->adapter_b, &bs);
    return SW_OK;
}
