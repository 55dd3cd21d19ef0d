/* speedup.c - ModelSpeedup: analysis, rebuild, self-check, report. */
#include "speedup.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "masked_model.h"
#include "shrink.h"

struct sw_speedup {
    const sw_model *model; /* borrowed */
    sw_speedup_options opt;
    sw_tensor probe; /* owned */
    sw_channel_analysis *analysis;
    sw_masked_model *masked;
    sw_speedup_report report;
};

sw_speedup_options sw_speedup_options_default(void) {
    return (sw_speedup_options){.probe_batch = 8, .seed = 0, .tolerance = 1e-4f};
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void report_deinit(sw_speedup_report *r) {
    for (int i = 0; i < r->n_layers; i++) free(r->layers[i].name);
    free(r->layers);
    memset(r, 0, sizeof *r);
}

void sw_speedup_free(sw_speedup *s) {
    if (!s) return;
    report_deinit(&s->report);
    sw_masked_model_free(s->masked);
    sw_channel_analysis_free(s->analysis);
    sw_tensor_deinit(&s->probe);
    free(s);
}

const sw_speedup_report *sw_speedup_get_report(const sw_speedup *s) {
    return &s->report;
}
const sw_channel_analysis *sw_speedup_get_analysis(const sw_speedup *s) {
    return s->analysis;
}

static sw_shape weight_shape(const sw_layer *l) {
    int w = sw_layer_param_index(l, "weight");
    return w >= 0 ? l->param_shapes[w] : (sw_shape){0};
}

/* The "before" half of the report: the original model and what the analysis found. */
static sw_status report_begin(sw_speedup *s) {
    const sw_model *m = s->model;
    const sw_channel_analysis *a = s->analysis;
    sw_speedup_report *r = &s->report;
    r->layers = calloc((size_t)m->n_nodes, sizeof *r->layers);
    if (!r->layers) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate the speedup report");
    r->n_layers = m->n_nodes;
    for (int i = 0; i < m->n_nodes; i++) {
        const sw_node *node = &m->nodes[i];
        sw_speedup_layer *l = &r->layers[i];
        l->name = strdup(node->name);
        if (!l->name) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate the speedup report");
        l->type_before = sw_layer_kind_name(node->layer->kind);
        l->out_before = node->out_shape;
        l->weight_before = weight_shape(node->layer);
        l->params_before = node->param_count;
        l->flops_before = node->flops;
        l->channels_before = a->n_ch[i];
        l->channels_dead = sw_channel_analysis_dead_count(a, i);
        l->channels_unpruned = a->reach[i] ? sw_channel_analysis_unpruned_count(a, i) : 0;
        l->dep_group = a->dep_group[i];
        l->removed = !a->reach[i];
        l->max_abs_diff = -1.0f;
        if (l->removed) r->n_removed++;
    }
    r->params_before = sw_model_param_count(m);
    r->flops_before = sw_model_flops(m);
    r->n_dep_groups = a->n_dep_groups;
    r->n_unpruned = a->n_unpruned;
    return SW_OK;
}

/* The "after" half, from the built model. */
static void report_after(sw_speedup *s, const sw_model *fast) {
    sw_speedup_report *r = &s->report;
    for (int i = 0; i < r->n_layers; i++) {
        sw_speedup_layer *l = &r->layers[i];
        int f = l->removed ? -1 : sw_model_find(fast, l->name);
        if (f < 0) {
            l->type_after = NULL;
            continue;
        }
        const sw_node *node = &fast->nodes[f];
        l->type_after = sw_layer_kind_name(node->layer->kind);
        l->out_after = node->out_shape;
        l->weight_after = weight_shape(node->layer);
        l->params_after = node->param_count;
        l->flops_after = node->flops;
        l->channels_after = node->out_shape.ndim ? node->out_shape.dims[0] : 1;
    }
    r->params_after = sw_model_param_count(fast);
    r->flops_after = sw_model_flops(fast);
}

/* A random probe [probe_batch, input_shape...] of standard normal values: signed, so ReLUs
 * see both sides, and independent of any dataset. */
static sw_status make_probe(sw_speedup *s) {
    sw_shape shape;
    if (s->opt.probe_batch < 1)
        return SW_FAIL(SW_ERR_ARG, "speedup: the probe batch must hold at least 1 sample, got %d",
                       s->opt.probe_batch);
    SW_TRY(sw_shape_batched(&s->model->input_shape, s->opt.probe_batch, &shape));
    SW_TRY(sw_tensor_init(&s->probe, &shape));
    sw_rng rng;
    sw_rng_init(&rng, s->opt.seed, 0x5eedu);
    for (size_t k = 0; k < s->probe.numel; k++) s->probe.data[k] = sw_rng_normal(&rng);
    return SW_OK;
}

/* x must be a batch of the model's input: [N >= 1, input_shape...]. */
static sw_status check_input_shape(const sw_model *m, const sw_tensor *x) {
    sw_shape want;
    int batch = x->shape.ndim ? x->shape.dims[0] : 0;
    if (batch < 1 || sw_shape_batched(&m->input_shape, batch, &want) != SW_OK ||
        !sw_shape_equal(&want, &x->shape)) {
        char a[64], b[64];
        return SW_FAIL(SW_ERR_SHAPE, "speedup: the probe must be [N, %s...], got %s",
                       sw_shape_format(&m->input_shape, a, sizeof a),
                       sw_shape_format(&x->shape, b, sizeof b));
    }
    return SW_OK;
}

sw_status sw_speedup_new(const sw_model *model, const sw_tensor *probe, const sw_mask_set *masks,
                         const sw_speedup_options *opt, sw_speedup **out) {
    sw_speedup *s = calloc(1, sizeof *s);
    if (!s) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate a speedup");
    s->model = model;
    s->opt = opt ? *opt : sw_speedup_options_default();
    sw_status st = SW_OK;
    if (!(s->opt.tolerance >= 0.0f))
        st = SW_FAIL(SW_ERR_ARG, "speedup: the tolerance must be 0 or more, got %g",
                     (double)s->opt.tolerance);
    if (st == SW_OK && probe) {
        st = check_input_shape(model, probe);
        if (st == SW_OK) st = sw_tensor_init(&s->probe, &probe->shape);
        if (st == SW_OK) memcpy(s->probe.data, probe->data, probe->numel * sizeof(float));
    } else if (st == SW_OK) {
        st = make_probe(s);
    }
    double t0 = now_seconds();
    sw_channel_options copt = {.forbid_union = s->opt.forbid_union};
    if (st == SW_OK) st = sw_channel_analysis_run(model, masks, &copt, &s->analysis);
    s->report.analysis_seconds = now_seconds() - t0;
    if (st == SW_OK) st = sw_masked_model_new(model, masks, s->analysis, &s->masked);
    if (st == SW_OK) st = report_begin(s);
    if (st != SW_OK) {
        sw_speedup_free(s);
        return st;
    }
    *out = s;
    return SW_OK;
}

sw_status sw_speedup_masked_forward(sw_speedup *s, const sw_tensor *x, const sw_tensor **out) {
    SW_TRY(check_input_shape(s->model, x));
    return sw_masked_model_forward(s->masked, x, out);
}

/* Largest |fast - masked| and |masked| of original node i over its kept channels (folded
 * channels excluded: there the consumers, not the node, hold the zero). */
static void layer_diff(const sw_channel_analysis *a, int i, const sw_tensor *ref,
                       const sw_tensor *got, float *diff, float *mag) {
    int batch = ref->shape.dims[0], c_n = a->n_ch[i];
    size_t per = ref->numel / ((size_t)batch * (size_t)c_n);
    int k_n = (int)(got->numel / ((size_t)batch * per));
    float d = 0.0f, r = 0.0f;
    for (int n = 0; n < batch; n++) {
        int k = 0;
        for (int c = 0; c < c_n && k < k_n; c++) {
            int p = a->base[i] + c;
            if (!a->kept[p]) continue;
            const float *x = ref->data + ((size_t)n * c_n + c) * per;
            const float *y = got->data + ((size_t)n * k_n + k) * per;
            k++;
            if (a->folded[p]) continue;
            for (size_t t = 0; t < per; t++) {
                float e = fabsf(x[t] - y[t]);
                if (!(e <= d)) d = e; /* NaN counts as the worst */
                if (fabsf(x[t]) > r) r = fabsf(x[t]);
            }
        }
    }
    *diff = d;
    *mag = r;
}

sw_status sw_speedup_check_model(sw_speedup *s, sw_model *fast, const sw_tensor *x,
                                 sw_speedup_check *out) {
    const sw_tensor *probe = x ? x : &s->probe;
    SW_TRY(check_input_shape(s->model, probe));
    const sw_tensor *ref = NULL, *got = NULL;
    SW_TRY(sw_masked_model_forward(s->masked, probe, &ref));
    bool training = fast->training;
    sw_model_set_training(fast, false);
    sw_status st = sw_model_forward(fast, probe, &got);
    sw_model_set_training(fast, training);
    if (st != SW_OK) {
        sw_error_prefix("speedup self-check: the sped-up model");
        return st;
    }
    if (ref->numel != got->numel) {
        char a[64], b[64];
        return SW_FAIL(
            SW_ERR_SHAPE, "speedup self-check: the sped-up output is %s, the masked output %s",
            sw_shape_format(&got->shape, a, sizeof a), sw_shape_format(&ref->shape, b, sizeof b));
    }
    /* Both models run in evaluation mode: BatchNorm on running statistics, Dropout off, so
     * the comparison is deterministic. */
    sw_speedup_check c = {
        .batch = probe->shape.dims[0], .tolerance = s->opt.tolerance, .worst_layer = -1};
    for (size_t k = 0; k < ref->numel; k++) {
        float e = fabsf(ref->data[k] - got->data[k]);
        if (!(e <= c.max_abs_diff)) c.max_abs_diff = e;
        if (fabsf(ref->data[k]) > c.max_abs_ref) c.max_abs_ref = fabsf(ref->data[k]);
    }
    /* Relative to the output's scale, not element-wise: logits near zero would make an
     * element-wise ratio meaningless, while float rounding of the shorter sums in the
     * sped-up layers is of the order of 1e-7 of the output's magnitude. */
    c.rel_diff = c.max_abs_ref > 0.0f ? c.max_abs_diff / c.max_abs_ref
                                      : (c.max_abs_diff == 0.0f ? 0.0f : INFINITY);
    c.within_tolerance = c.max_abs_diff <= c.tolerance * c.max_abs_ref;
    /* Per layer, to point at where a disagreement starts. */
    const sw_channel_analysis *a = s->analysis;
    float worst = -1.0f;
    for (int i = 0; i < a->n_nodes && i < s->report.n_layers; i++) {
        sw_speedup_layer *l = &s->report.layers[i];
        int f = a->reach[i] ? sw_model_find(fast, l->name) : -1;
        if (f < 0) continue;
        const sw_tensor *mo = sw_masked_model_node_output(s->masked, i);
        const sw_tensor *fo = &fast->outs[f];
        if (fo->numel % (size_t)c.batch || mo->numel % (size_t)c.batch) continue;
        layer_diff(a, i, mo, fo, &l->max_abs_diff, &l->max_abs_ref);
        float rel = l->max_abs_diff / (l->max_abs_ref > 0.0f ? l->max_abs_ref : 1.0f);
        if (!(rel <= worst)) {
            worst = rel;
            c.worst_layer = i;
        }
    }
    s->report.checked = true;
    s->report.check = c;
    *out = c;
    return SW_OK;
}

/* Rebuild, report, then the self-check; a failed check discards the model unless forced,
 * because a sped-up model that does not compute the masked model would silently change the
 * accuracy the user measured while compressing. */
sw_status sw_speedup_model(sw_speedup *s, sw_model **out) {
    sw_model *fast = NULL;
    double t0 = now_seconds();
    SW_TRY(sw_shrink_build(s->analysis, &fast));
    s->report.rebuild_seconds = now_seconds() - t0;
    report_after(s, fast);
    s->report.built = true;
    t0 = now_seconds();
    sw_speedup_check c;
    sw_status st = sw_speedup_check_model(s, fast, NULL, &c);
    s->report.check_seconds = now_seconds() - t0;
    if (st != SW_OK) {
        sw_model_free(fast);
        return st;
    }
    if (!c.within_tolerance && !s->opt.force) {
        const char *worst = c.worst_layer >= 0 ? s->report.layers[c.worst_layer].name : "-";
        sw_model_free(fast);
        return SW_FAIL(SW_ERR_NUMERIC,
                       "speedup self-check failed: on a probe of %d samples the sped-up output "
                       "differs from the masked model's by %g (relative %g, tolerance %g); the "
                       "layer that disagrees most is %s. The sped-up model was discarded; "
                       "force it to keep it anyway",
                       c.batch, (double)c.max_abs_diff, (double)c.rel_diff, (double)c.tolerance,
                       worst);
    }
    *out = fast;
    return SW_OK;
}
