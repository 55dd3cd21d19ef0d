/* test_quant_golden.c - the quantizers against NNI 3.0's own numbers (golden quant_* files).
 *
 * Each fixture trains (or calibrates) a Linear(8, 6) or a Conv2d(3, 4, 3, padding 1) with one
 * NNI quantizer and records the target states after every optimizer step, the calibration
 * config, the final weights and an eval-mode probe (golden/README.md, "NNI: quantization").
 * The same run is replayed here through the evaluator and compared with the README's
 * tolerances: scales, zero points and tracked ranges rtol 1e-5, weights 1e-5 x max|ref|,
 * every fake-quant op of the probe exactly (computed from its recorded input, scale and zero
 * point), straight-through gradients atol 1e-5 + rtol 1e-4.
 *
 * Models: the Linear cases read a [1, 1, 8] image through Flatten (datasets hold images), which
 * leaves fc's input unchanged. NNI's BNN case ends in Hardtanh, which shrinkwrap does not have:
 * its act._output_ target is replayed on fc._output_ (sign(hardtanh(v)) = sign(v); the
 * straight-through mask |v| > 1 then plays hardtanh's gradient), so that case compares the
 * model output, losses and weights, and act's probe ops at kernel level. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

#include "compress/quantization/quantizers.h"
#include "io/safetensors.h"

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        sw_status st_ = (expr);                                                                    \
        if (st_ != SW_OK) fail_msg("%s: %s (%s)", #expr, sw_status_str(st_), sw_error_message());  \
    } while (0)

#define MAX_STEPS 8
#define MAX_SNAP 16

/* ---- fixture plumbing ---------------------------------------------------------------------- */

static sw_safetensors *open_fixture(const char *name) {
    char path[512], file[160];
    snprintf(file, sizeof file, "golden/%s.safetensors", name);
    sw_safetensors *st = NULL;
    CHECK(sw_safetensors_read_file(sw_test_data_path(file, path, sizeof path), &st));
    return st;
}

static void get(const sw_safetensors *st, const char *name, sw_tensor *out) {
    sw_status s = sw_safetensors_get_f32(st, name, out);
    if (s != SW_OK) fail_msg("fixture tensor %s: %s", name, sw_error_message());
}

/* train/input and train/target of the conv cases are 5-D ([K, B, C, H, W]): read them flat,
 * as [K, B*C*H*W] (K batches), keeping the full shape in dims. */
static void get_batches(const sw_safetensors *st, const char *name, sw_tensor *out, int dims[5]) {
    const sw_st_entry *e = sw_safetensors_find(st, name);
    if (!e || e->dtype != SW_DTYPE_F32 || e->ndim < 3 || e->ndim > 5)
        fail_msg("fixture tensor %s: missing or not F32 [K, B, ...]", name);
    size_t numel = 1;
    for (int d = 0; d < 5; d++) dims[d] = d < e->ndim ? (int)e->shape[d] : 1;
    for (int d = 0; d < e->ndim; d++) numel *= (size_t)e->shape[d];
    sw_shape s = sw_shape_2d(dims[0], (int)(numel / (size_t)dims[0]));
    CHECK(sw_tensor_init(out, &s));
    memcpy(out->data, sw_safetensors_data(st, e), numel * sizeof(float));
}

static const char *meta(const sw_safetensors *st, const char *key) {
    const char *v = sw_safetensors_meta(st, key);
    if (!v) fail_msg("fixture metadata %s missing", key);
    return v;
}

/* Everything one replay needs. */
typedef struct replay {
    sw_safetensors *gold;
    bool linear;   /* Linear (else Conv2d) */
    bool bnn;      /* the Hardtanh substitution above */
    int n_batches; /* train/input [K, B, ...] */
    int batch;
    sw_tensor input, target;
    sw_model *model;
    sw_dataset *train, *test;
    sw_evaluator ev;
    sw_wrapper_set *ws;
    sw_compressor *q;
    long mse_calls;
    /* per-step snapshots of every target: [step][target][field][block] */
    int n_snap;
    float *snap[MAX_STEPS + 1][MAX_SNAP];
    double losses[MAX_STEPS];
    int n_losses;
} replay;

static sw_dataset *dataset_of(const float *x, int n, int c, int h, int w) {
    sw_dataset *ds = calloc(1, sizeof *ds);
    assert_non_null(ds);
    *ds = (sw_dataset){.n = n, .channels = c, .height = h, .width = w, .n_classes = 10};
    size_t per = (size_t)c * (size_t)h * (size_t)w;
    ds->images = malloc((size_t)n * per * sizeof(float));
    ds->labels = calloc((size_t)n, 1);
    assert_non_null(ds->images);
    assert_non_null(ds->labels);
    memcpy(ds->images, x, (size_t)n * per * sizeof(float));
    snprintf(ds->name, sizeof ds->name, "golden");
    return ds;
}

/* MSE (mean) of the model output against train/target[k], k = call % K, as NNI's loop. */
static sw_status mse_step(void *ctx, const sw_batch *batch, const sw_tensor *logits, double *loss,
                          sw_tensor *dlogits) {
    (void)batch;
    replay *r = ctx;
    int k = (int)(r->mse_calls++ % r->n_batches);
    const float *t = r->target.data + (size_t)k * logits->numel;
    double s = 0;
    for (size_t i = 0; i < logits->numel; i++) {
        double d = (double)logits->data[i] - (double)t[i];
        s += d * d;
        dlogits->data[i] = (float)(2.0 * d / (double)logits->numel);
    }
    *loss = s / (double)logits->numel;
    return SW_OK;
}

static void loss_listener(void *ctx, const sw_metric_event *e) {
    replay *r = ctx;
    if (e->kind == SW_METRIC_STEP && r->n_losses < MAX_STEPS) r->losses[r->n_losses++] = e->loss;
}

/* The four per-target fields of a snapshot, in this order. */
static const char *const FIELDS[4] = {"scale", "zero_point", "tracked_min", "tracked_max"};

static sw_status snapshot_after_step(void *ctx, sw_train_state *st) {
    replay *r = ctx;
    sw_quantizer *q = sw_quantizer_of(r->q);
    long k = st->step + 1;
    if (k > MAX_STEPS) return SW_OK;
    for (int i = 0; i < q->n_targets && i < MAX_SNAP; i++) {
        const sw_quant_target *t = &q->targets[i];
        float *s = malloc(4 * t->n_blocks * sizeof *s);
        if (!s) return SW_ERR_NOMEM;
        memcpy(s, t->scale, t->n_blocks * sizeof *s);
        memcpy(s + t->n_blocks, t->zero_point, t->n_blocks * sizeof *s);
        memcpy(s + 2 * t->n_blocks, t->tracked_min, t->n_blocks * sizeof *s);
        memcpy(s + 3 * t->n_blocks, t->tracked_max, t->n_blocks * sizeof *s);
        r->snap[k][i] = s;
    }
    return SW_OK;
}

/* Loads init/<node>.<param> into the model. */
static void load_params(replay *r, const char *prefix) {
    const char *node = r->linear ? "fc" : "conv";
    int idx = sw_model_find(r->model, node);
    sw_layer *l = r->model->nodes[idx].layer;
    for (int p = 0; p < l->n_params; p++) {
        char name[96];
        snprintf(name, sizeof name, "%s%s.%s", prefix, node, l->params[p].name);
        sw_tensor t;
        get(r->gold, name, &t);
        assert_int_equal(t.numel, l->params[p].value.numel);
        memcpy(l->params[p].value.data, t.data, t.numel * sizeof(float));
        sw_tensor_deinit(&t);
    }
}

static sw_model *build_model(replay *r, bool relu_act) {
    sw_model *m = NULL;
    if (r->linear) {
        sw_tensor w;
        get(r->gold, "init/fc.weight", &w);
        int out = w.shape.dims[0], in = w.shape.dims[1];
        sw_tensor_deinit(&w);
        sw_shape s = sw_shape_3d(1, 1, in);
        CHECK(sw_model_new("golden", &s, &m));
        sw_layer *l = NULL;
        CHECK(sw_layer_new(SW_LAYER_FLATTEN, &(sw_layer_hparams){0}, &l));
        CHECK(sw_model_add(m, "flat", l, NULL, 0, NULL));
        sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_LINEAR);
        hp.in_features = in;
        hp.out_features = out;
        CHECK(sw_layer_new(SW_LAYER_LINEAR, &hp, &l));
        CHECK(sw_model_add(m, "fc", l, NULL, 0, NULL));
        if (relu_act) {
            sw_layer_hparams rh = sw_layer_hparams_default(SW_LAYER_RELU);
            CHECK(sw_layer_new(SW_LAYER_RELU, &rh, &l));
            CHECK(sw_model_add(m, "act", l, NULL, 0, NULL));
        }
    } else {
        sw_tensor w;
        get(r->gold, "init/conv.weight", &w);
        sw_tensor in;
        get(r->gold, "probe/input", &in);
        sw_shape s = sw_shape_3d(in.shape.dims[1], in.shape.dims[2], in.shape.dims[3]);
        CHECK(sw_model_new("golden", &s, &m));
        sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_CONV2D);
        hp.in_channels = w.shape.dims[1];
        hp.out_channels = w.shape.dims[0];
        hp.kernel[0] = w.shape.dims[2];
        hp.kernel[1] = w.shape.dims[3];
        hp.padding[0] = hp.padding[1] = hp.kernel[0] / 2;
        sw_layer *l = NULL;
        CHECK(sw_layer_new(SW_LAYER_CONV2D, &hp, &l));
        CHECK(sw_model_add(m, "conv", l, NULL, 0, NULL));
        /* Logits for the evaluator's evaluation (PTQ observes it); values are unchanged. */
        CHECK(sw_layer_new(SW_LAYER_FLATTEN, &(sw_layer_hparams){0}, &l));
        CHECK(sw_model_add(m, "flat", l, NULL, 0, NULL));
        sw_tensor_deinit(&w);
        sw_tensor_deinit(&in);
    }
    CHECK(sw_model_finalize(m));
    return m;
}

/* The fixture's config list; BNN's act target moves to fc (header comment). */
static cJSON *config_of(replay *r) {
    const char *text = meta(r->gold, "config_list");
    if (r->bnn)
        text = "[{\"op_names\": [\"fc\"], \"target_names\": [\"weight\", \"_output_\"], "
               "\"quant_dtype\": null, \"granularity\": \"default\"}]";
    cJSON *cl = NULL;
    CHECK(sw_config_list_parse(text, &cl));
    return cl;
}

static void replay_run(replay *r, const char *name) {
    memset(r, 0, sizeof *r);
    r->gold = open_fixture(name);
    const char *quantizer = meta(r->gold, "quantizer");
    r->linear = strcmp(meta(r->gold, "layer"), "linear") == 0;
    r->bnn = strcmp(quantizer, "BNNQuantizer") == 0;
    bool dorefa = strcmp(quantizer, "DoReFaQuantizer") == 0;
    int in_dims[5], target_dims[5];
    get_batches(r->gold, "train/input", &r->input, in_dims);
    get_batches(r->gold, "train/target", &r->target, target_dims);
    r->n_batches = in_dims[0];
    r->batch = in_dims[1];
    r->model = build_model(r, dorefa);
    load_params(r, "init/");

    int n = r->n_batches * r->batch;
    if (r->linear)
        r->train = dataset_of(r->input.data, n, 1, 1, in_dims[2]);
    else
        r->train = dataset_of(r->input.data, n, in_dims[2], in_dims[3], in_dims[4]);
    if (sw_safetensors_find(r->gold, "eval/input")) {
        sw_tensor e;
        get(r->gold, "eval/input", &e);
        if (r->linear)
            r->test = dataset_of(e.data, e.shape.dims[0], 1, 1, e.shape.dims[1]);
        else
            r->test = dataset_of(e.data, e.shape.dims[0], e.shape.dims[1], e.shape.dims[2],
                                 e.shape.dims[3]);
        sw_tensor_deinit(&e);
    }
    /* "SGD(lr=0.05, momentum=0)" */
    const char *opt = strstr(meta(r->gold, "optimizer"), "lr=");
    assert_non_null(opt);
    sw_train_config cfg = sw_train_config_default();
    cfg.batch_size = r->batch;
    cfg.eval_batch_size = 64;
    cfg.optim = sw_optim_config_default(SW_OPTIM_SGD);
    cfg.optim.lr = strtof(opt + 3, NULL);
    cfg.optim.momentum = 0.0f;
    cfg.optim.nesterov = false;
    cfg.optim.weight_decay = 0.0f;
    cfg.lr = (sw_lr_schedule){.kind = SW_LR_CONSTANT};
    cfg.eval_every_epoch = 0;
    CHECK(sw_evaluator_init(&r->ev, r->train, r->test, &cfg));
    r->ev.training_step = mse_step;
    r->ev.training_step_ctx = r;
    /* NNI cycles through the batches in order. */
    CHECK(sw_loader_init(&r->ev.loader, r->train, r->batch, false, false, &cfg.augment, 0));
    r->ev.loader_ready = true;
    CHECK(sw_metric_bus_add(&r->ev.bus, loss_listener, r));
    sw_train_hooks snap = {.ctx = r, .name = "snapshot", .after_step = snapshot_after_step};
    CHECK(sw_evaluator_add_hooks(&r->ev, &snap));

    CHECK(sw_wrapper_set_new(r->model, &r->ws));
    cJSON *cl = config_of(r);
    long steps = atol(meta(r->gold, "steps"));
    assert_true(steps > 0 && steps <= MAX_STEPS);
    if (strcmp(quantizer, "QATQuantizer") == 0)
        CHECK(sw_quantizer_qat_new(r->ws, cl, &r->ev, atol(meta(r->gold, "quant_start_step")),
                                   &r->q));
    else if (strcmp(quantizer, "LsqQuantizer") == 0)
        CHECK(sw_quantizer_lsq_new(r->ws, cl, &r->ev, &r->q));
    else if (strcmp(quantizer, "PtqQuantizer") == 0)
        CHECK(sw_quantizer_ptq_new(r->ws, cl, &r->ev, &r->q));
    else if (dorefa) /* gradient quantization is off in the fixtures (torch 1.13) */
        CHECK(sw_quantizer_dorefa_new(r->ws, cl, &r->ev, false, 0, &r->q));
    else if (r->bnn)
        CHECK(sw_quantizer_bnn_new(r->ws, cl, &r->ev, &r->q));
    else
        fail_msg("unknown quantizer %s", quantizer);
    cJSON_Delete(cl);
    r->n_snap = sw_quantizer_of(r->q)->n_targets;
    CHECK(sw_compressor_compress(r->q, steps, -1));
    sw_evaluator_remove_hooks(&r->ev, &snap);
}

static void replay_free(replay *r) {
    for (int k = 0; k <= MAX_STEPS; k++)
        for (int i = 0; i < MAX_SNAP; i++) free(r->snap[k][i]);
    sw_compressor_free(r->q);
    sw_wrapper_set_release(r->ws);
    sw_evaluator_deinit(&r->ev);
    sw_dataset_free(r->train);
    sw_dataset_free(r->test);
    sw_model_free(r->model);
    sw_tensor_deinit(&r->input);
    sw_tensor_deinit(&r->target);
    sw_safetensors_free(r->gold);
}

/* ---- comparisons --------------------------------------------------------------------------- */

/* "fc.weight.scale" -> module "fc", target "weight", field "scale"; the target's name in
 * shrinkwrap for BNN's act._output_0 is fc._output_0. */
static bool split_key(const char *key, char *module, char *target, char *field) {
    const char *a = strchr(key, '.');
    const char *b = strrchr(key, '.');
    if (!a || a == b) return false;
    snprintf(module, 64, "%.*s", (int)(a - key), key);
    snprintf(target, 64, "%.*s", (int)(b - a - 1), a + 1);
    snprintf(field, 64, "%s", b + 1);
    return true;
}

static int field_index(const char *field) {
    for (int f = 0; f < 4; f++)
        if (strcmp(FIELDS[f], field) == 0) return f;
    return -1;
}

static int target_index(replay *r, const char *module, const char *target) {
    sw_quantizer *q = sw_quantizer_of(r->q);
    if (r->bnn && strcmp(module, "act") == 0) module = "fc";
    for (int i = 0; i < q->n_targets; i++)
        if (strcmp(q->targets[i].module, module) == 0 && strcmp(q->targets[i].name, target) == 0)
            return i;
    return -1;
}

static void close_rel(const float *got, const float *want, size_t n, const char *what) {
    /* rtol 1e-5, with an absolute floor for values that are exactly 0 in the reference. */
    sw_test_assert_close(got, want, n, 1e-7f, 1e-5f, what);
}

/* Every train/step<k>/... tensor against the snapshot after step k. */
static int compare_steps(replay *r) {
    int compared = 0;
    sw_quantizer *q = sw_quantizer_of(r->q);
    for (int e = 0; e < r->gold->n_entries; e++) {
        const char *name = r->gold->entries[e].name;
        int k;
        char rest[160], module[64], target[64], field[64];
        if (sscanf(name, "train/step%d/%159s", &k, rest) != 2) continue;
        if (!split_key(rest, module, target, field)) continue;
        int i = target_index(r, module, target), f = field_index(field);
        if (i < 0 || f < 0) fail_msg("%s: no such target/field", name);
        assert_true(k >= 1 && k <= MAX_STEPS);
        assert_non_null(r->snap[k][i]);
        sw_tensor want;
        get(r->gold, name, &want);
        assert_int_equal(want.numel, q->targets[i].n_blocks);
        close_rel(r->snap[k][i] + (size_t)f * want.numel, want.data, want.numel, name);
        sw_tensor_deinit(&want);
        compared++;
    }
    return compared;
}

/* calib/<m>.<t>.<field> against our calibration config. */
static int compare_calibration(replay *r) {
    cJSON *cal = NULL;
    CHECK(sw_quant_calibration_get(r->q, &cal));
    int compared = 0;
    for (int e = 0; e < r->gold->n_entries; e++) {
        const char *name = r->gold->entries[e].name;
        char module[64], target[64], field[64];
        if (strncmp(name, "calib/", 6) != 0 || !split_key(name + 6, module, target, field))
            continue;
        const char *mod = r->bnn && strcmp(module, "act") == 0 ? "fc" : module;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cal, mod), target),
            field);
        if (!cJSON_IsArray(v)) fail_msg("%s: missing from our calibration", name);
        sw_tensor want;
        get(r->gold, name, &want);
        assert_int_equal((size_t)cJSON_GetArraySize(v), want.numel);
        float got[64];
        assert_true(want.numel <= 64);
        for (size_t i = 0; i < want.numel; i++)
            got[i] = (float)cJSON_GetArrayItem(v, (int)i)->valuedouble;
        close_rel(got, want.data, want.numel, name);
        sw_tensor_deinit(&want);
        compared++;
    }
    cJSON_Delete(cal);
    return compared;
}

static void compare_final_weights(replay *r) {
    const char *node = r->linear ? "fc" : "conv";
    sw_layer *l = r->model->nodes[sw_model_find(r->model, node)].layer;
    for (int p = 0; p < l->n_params; p++) {
        char name[96];
        snprintf(name, sizeof name, "final/%s.%s", node, l->params[p].name);
        sw_tensor want;
        get(r->gold, name, &want);
        float maxabs = 0;
        for (size_t i = 0; i < want.numel; i++) maxabs = fmaxf(maxabs, fabsf(want.data[i]));
        sw_test_assert_close(l->params[p].value.data, want.data, want.numel, 1e-5f * maxabs + 1e-7f,
                             0.0f, name);
        sw_tensor_deinit(&want);
    }
}

/* The target's method applied to probe/<op>.in with the recorded scale and zero point: .out
 * must match exactly; the straight-through backward of .grad_out must give .grad_in; LSQ's
 * per-element scale contributions must sum to .grad_scale. */
static void compare_probe_op(replay *r, const sw_quant_target *t, const char *op) {
    char name[160];
    sw_tensor in, out, gout, gin, scale, zp;
    snprintf(name, sizeof name, "probe/%s.in", op);
    get(r->gold, name, &in);
    snprintf(name, sizeof name, "probe/%s.out", op);
    get(r->gold, name, &out);
    snprintf(name, sizeof name, "probe/%s.grad_out", op);
    get(r->gold, name, &gout);
    snprintf(name, sizeof name, "probe/%s.grad_in", op);
    get(r->gold, name, &gin);
    snprintf(name, sizeof name, "probe/%s.scale", op);
    get(r->gold, name, &scale);
    snprintf(name, sizeof name, "probe/%s.zero_point", op);
    get(r->gold, name, &zp);
    size_t n = in.numel;
    /* Expand per-block values over the probe value (block = channel of dim 0 or dim 1). */
    float *es = malloc(n * sizeof *es), *ez = malloc(n * sizeof *ez), *y = malloc(n * sizeof *y);
    float *g = malloc(n * sizeof *g);
    double *ds = calloc(n, sizeof *ds), *dz = calloc(n, sizeof *dz);
    assert_true(es && ez && y && g && ds && dz);
    int cdim = t->kind == SW_TARGET_PARAM ? 0 : 1;
    size_t inner = 1;
    for (int d = cdim + 1; d < in.shape.ndim; d++) inner *= (size_t)in.shape.dims[d];
    int channels = in.shape.dims[cdim];
    double gf = sw_fq_lsq_grad_factor(t->qmax, n);
    for (size_t i = 0; i < n; i++) {
        size_t b = scale.numel == 1 ? 0 : (i / inner) % (size_t)channels;
        float s = scale.data[b];
        if (t->method == SW_QUANT_LSQ_CLAMP_ROUND) s = sw_fq_lsq_effective_scale(s, gf);
        es[i] = s;
        ez[i] = zp.data[b];
    }
    sw_fq_scale p = {.scale = es, .zero_point = ez, .stride = 1, .qmin = t->qmin, .qmax = t->qmax};
    memcpy(g, gout.data, n * sizeof *g);
    switch (t->method) {
    case SW_QUANT_QAT_CLAMP_ROUND:
        sw_fq_clamp_round(in.data, y, n, &p);
        sw_fq_qat_backward(in.data, g, n, &p);
        break;
    case SW_QUANT_CLAMP_ROUND:
        sw_fq_clamp_round(in.data, y, n, &p);
        break;
    case SW_QUANT_LSQ_CLAMP_ROUND:
        sw_fq_lsq_forward(in.data, y, n, &p);
        sw_fq_lsq_backward(in.data, g, n, &p, ds);
        break;
    case SW_QUANT_DOREFA_WEIGHT:
        sw_fq_dorefa_weight_forward(in.data, y, n, &p);
        sw_fq_dorefa_weight_backward(in.data, g, n);
        break;
    case SW_QUANT_DOREFA_OUTPUT:
        sw_fq_dorefa_output_forward(in.data, y, n, &p);
        sw_fq_dorefa_output_backward(in.data, g, n);
        break;
    case SW_QUANT_BNN:
        sw_fq_bnn_forward(in.data, y, n);
        if (t->kind == SW_TARGET_OUTPUT) sw_fq_bnn_output_backward(in.data, g, n);
        break;
    default:
        fail_msg("%s: unexpected method %s", op, sw_quant_method_name(t->method));
    }
    for (size_t i = 0; i < n; i++)
        if (y[i] != out.data[i])
            fail_msg("probe/%s.out[%zu]: got %.9g, want %.9g (input %.9g, scale %.9g, zp %g)", op,
                     i, (double)y[i], (double)out.data[i], (double)in.data[i], (double)es[i],
                     (double)ez[i]);
    snprintf(name, sizeof name, "probe/%s.grad_in", op);
    sw_test_assert_close(g, gin.data, n, 1e-5f, 1e-4f, name);
    snprintf(name, sizeof name, "probe/%s.grad_scale", op);
    if (sw_safetensors_find(r->gold, name)) {
        sw_tensor want;
        get(r->gold, name, &want);
        float got[64] = {0};
        assert_true(want.numel <= 64);
        for (size_t i = 0; i < n; i++) {
            size_t b = want.numel == 1 ? 0 : (i / inner) % (size_t)channels;
            got[b] += (float)(ds[i] * gf);
        }
        sw_test_assert_close(got, want.data, want.numel, 1e-6f, 1e-4f, name);
        sw_tensor_deinit(&want);
    }
    free(es);
    free(ez);
    free(y);
    free(g);
    free(ds);
    free(dz);
    sw_tensor_deinit(&in);
    sw_tensor_deinit(&out);
    sw_tensor_deinit(&gout);
    sw_tensor_deinit(&gin);
    sw_tensor_deinit(&scale);
    sw_tensor_deinit(&zp);
}

/* Every probe op of the fixture; returns how many were compared. */
static int compare_probe_ops(replay *r) {
    int compared = 0;
    for (int e = 0; e < r->gold->n_entries; e++) {
        const char *name = r->gold->entries[e].name;
        size_t len = strlen(name);
        if (strncmp(name, "probe/", 6) != 0 || len < 10 || strcmp(name + len - 3, ".in") != 0)
            continue;
        char op[96], module[64], target[64], field[64];
        snprintf(op, sizeof op, "%.*s", (int)(len - 9), name + 6);
        char key[128];
        snprintf(key, sizeof key, "%s.x", op);
        assert_true(split_key(key, module, target, field));
        int i = target_index(r, module, target);
        if (i < 0) fail_msg("probe op %s: no such target", op);
        compare_probe_op(r, &sw_quantizer_of(r->q)->targets[i], op);
        compared++;
    }
    return compared;
}

/* probe/output: the quantized model in eval mode on probe/input. */
static void compare_probe_output(replay *r) {
    sw_tensor in, want;
    get(r->gold, "probe/input", &in);
    get(r->gold, "probe/output", &want);
    sw_shape s;
    CHECK(sw_shape_batched(&r->model->input_shape, in.shape.dims[0], &s));
    sw_tensor x = sw_tensor_reshaped(&in, &s);
    sw_model_set_training(r->model, false);
    const sw_tensor *y = NULL;
    CHECK(sw_model_forward(r->model, &x, &y));
    assert_int_equal(y->numel, want.numel);
    sw_test_assert_close(y->data, want.data, want.numel, 1e-5f, 1e-4f, "probe/output");
    sw_tensor_deinit(&in);
    sw_tensor_deinit(&want);
}

static void compare_losses(replay *r) {
    sw_tensor want;
    get(r->gold, "train/loss", &want);
    assert_int_equal((size_t)r->n_losses, want.numel);
    for (int k = 0; k < r->n_losses; k++)
        if (!(fabs(r->losses[k] - want.data[k]) <= 1e-5 * fabs(want.data[k]) + 1e-7))
            fail_msg("train/loss[%d]: got %.9g, want %.9g", k, r->losses[k], (double)want.data[k]);
    sw_tensor_deinit(&want);
}

/* The whole comparison of one fixture. */
static void check_fixture(const char *name) {
    replay r;
    replay_run(&r, name);
    bool ptq = strcmp(meta(r.gold, "quantizer"), "PtqQuantizer") == 0;
    int steps = compare_steps(&r);
    if (!ptq) compare_losses(&r);
    int calib = compare_calibration(&r);
    assert_true(calib >= 4);
    if (!ptq) assert_true(steps > 0 || r.bnn);
    compare_final_weights(&r);
    compare_probe_output(&r);
    assert_true(compare_probe_ops(&r) >= 2);
    replay_free(&r);
}

/* ---- the tests ----------------------------------------------------------------------------- */

/* QAT: EMA ranges, scales from quant_start_step on, the probe's last-training-forward scales. */
static void test_quant_golden_qat(void **state) {
    (void)state;
    static const char *const cases[] = {
        "quant_qat_linear_int8_affine_pertensor",  "quant_qat_linear_int8_symmetric_pertensor",
        "quant_qat_linear_int4_affine_pertensor",  "quant_qat_linear_int4_symmetric_pertensor",
        "quant_qat_linear_int8_affine_perchannel", "quant_qat_linear_int8_symmetric_perchannel",
        "quant_qat_linear_int4_affine_perchannel", "quant_qat_linear_int4_symmetric_perchannel",
        "quant_qat_conv_int8_affine_perchannel",   "quant_qat_conv_int8_symmetric_pertensor",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_fixture(cases[i]);
}

/* LSQ: learned scales (init 0.01, LSQ's gradient scale), their probe gradients. */
static void test_quant_golden_lsq(void **state) {
    (void)state;
    static const char *const cases[] = {
        "quant_lsq_linear_int8_symmetric_pertensor", "quant_lsq_linear_int8_symmetric_perchannel",
        "quant_lsq_linear_int4_symmetric_pertensor", "quant_lsq_linear_int4_symmetric_perchannel",
        "quant_lsq_conv_int8_symmetric_perchannel",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_fixture(cases[i]);
}

/* PTQ: running min/max over the calibration batches and the evaluation, then clamp_round. */
static void test_quant_golden_ptq(void **state) {
    (void)state;
    static const char *const cases[] = {
        "quant_ptq_linear_int8_affine_pertensor",   "quant_ptq_linear_int8_symmetric_pertensor",
        "quant_ptq_linear_int4_affine_pertensor",   "quant_ptq_linear_int4_symmetric_pertensor",
        "quant_ptq_linear_int8_affine_perchannel",  "quant_ptq_linear_int8_symmetric_perchannel",
        "quant_ptq_linear_int4_affine_perchannel",  "quant_ptq_linear_int4_symmetric_perchannel",
        "quant_ptq_conv_int8_symmetric_perchannel",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_fixture(cases[i]);
}

/* DoReFa: tanh weights on [0, 1], clamped outputs, per-batch input scales. */
static void test_quant_golden_dorefa(void **state) {
    (void)state;
    static const char *const cases[] = {
        "quant_dorefa_linear_int8_affine_pertensor",
        "quant_dorefa_linear_int8_symmetric_pertensor",
        "quant_dorefa_linear_int4_affine_pertensor",
        "quant_dorefa_linear_int4_symmetric_pertensor",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_fixture(cases[i]);
}

/* BNN: signs, clamped latent weights, the hard-tanh straight-through estimator. */
static void test_quant_golden_bnn(void **state) {
    (void)state;
    check_fixture("quant_bnn_linear_pertensor");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quant_golden_qat), cmocka_unit_test(test_quant_golden_lsq),
        cmocka_unit_test(test_quant_golden_ptq), cmocka_unit_test(test_quant_golden_dorefa),
        cmocka_unit_test(test_quant_golden_bnn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
