/* test_pruning_trained.c - the training-aware pruners: Slim, Taylor, Linear/AGP, Movement.
 *
 * Hand-computed cases use a tiny model (flatten -> fc Linear(3, 2)) trained on the loss
 * "sum of the logits", whose gradient is known in closed form: dL/dW_ij = G_j = sum_n x_nj.
 * Behaviour cases use NNI's acceptance model (SimpleTorchModel: a grouped conv and a residual
 * add) on synthetic images; the Taylor case is checked against NNI's own numbers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

#include "compress/compressor.h"
#include "compress/pruner.h"
#include "compress/pruning/pruners.h"
#include "compress/pruning/trained_pruners.h"
#include "data/dataset.h"
#include "io/safetensors.h"
#include "nn/model.h"
#include "train/evaluator.h"

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        sw_status check_st_ = (expr);                                                              \
        if (check_st_ != SW_OK)                                                                    \
            fail_msg("%s: %s (%s)", #expr, sw_error_message(), sw_status_str(check_st_));          \
    } while (0)

/* ---- models and data ---------------------------------------------------------------------- */

static void add_node(sw_model *m, const char *name, sw_layer_kind kind, sw_layer_hparams hp,
                     const char *const *inputs, int n_inputs) {
    sw_layer *layer = NULL;
    CHECK(sw_layer_new(kind, &hp, &layer));
    CHECK(sw_model_add(m, name, layer, inputs, n_inputs, NULL));
}

static void add_conv(sw_model *m, const char *name, int in, int out, int groups,
                     const char *input) {
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_CONV2D);
    hp.in_channels = in;
    hp.out_channels = out;
    hp.kernel[0] = hp.kernel[1] = 3;
    hp.groups = groups;
    add_node(m, name, SW_LAYER_CONV2D, hp, input ? &input : NULL, input ? 1 : 0);
}

static void add_bn(sw_model *m, const char *name, int c) {
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_BATCHNORM2D);
    hp.num_features = c;
    add_node(m, name, SW_LAYER_BATCHNORM2D, hp, NULL, 0);
}

static void add_linear(sw_model *m, const char *name, int in, int out) {
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_LINEAR);
    hp.in_features = in;
    hp.out_features = out;
    add_node(m, name, SW_LAYER_LINEAR, hp, NULL, 0);
}

/* NNI's SimpleTorchModel on [1, hw, hw] images:
 *   x = bn1(conv1(x)); x = bn2(conv2(x)) + bn3(conv3(x)); x = relu(x); fc2(fc1(flatten(x)))
 * conv1 Conv2d(1,16,3), conv2 Conv2d(16,32,3,groups=4), conv3 Conv2d(16,32,3), no padding. */
static sw_model *make_simple(int hw, uint64_t seed) {
    sw_shape in = sw_shape_3d(1, hw, hw);
    sw_model *m = NULL;
    CHECK(sw_model_new("simple_torch_model", &in, &m));
    add_conv(m, "conv1", 1, 16, 1, NULL);
    add_bn(m, "bn1", 16);
    add_conv(m, "conv2", 16, 32, 4, "bn1");
    add_bn(m, "bn2", 32);
    add_conv(m, "conv3", 16, 32, 1, "bn1");
    add_bn(m, "bn3", 32);
    const char *sum[] = {"bn2", "bn3"};
    add_node(m, "add", SW_LAYER_ADD, sw_layer_hparams_default(SW_LAYER_ADD), sum, 2);
    add_node(m, "relu", SW_LAYER_RELU, sw_layer_hparams_default(SW_LAYER_RELU), NULL, 0);
    add_node(m, "flatten", SW_LAYER_FLATTEN, sw_layer_hparams_default(SW_LAYER_FLATTEN), NULL, 0);
    add_linear(m, "fc1", 32 * (hw - 4) * (hw - 4), 100);
    add_linear(m, "fc2", 100, 10);
    CHECK(sw_model_finalize(m));
    sw_model_init_params(m, seed);
    return m;
}

static sw_param *param_of(sw_model *m, const char *node, const char *name) {
    int i = sw_model_find(m, node);
    assert_true(i >= 0);
    sw_layer *l = m->nodes[i].layer;
    int p = sw_layer_param_index(l, name);
    assert_true(p >= 0);
    return &l->params[p];
}

/* The tiny model: W = [[1, -2, -0.5], [-1, 0.5, 2]], b = [0.1, -0.1]; two samples
 * x = [1, 2, 3], [0.5, -1, 1], so G = [1.5, 1, 4] and, for the sum loss,
 *   sum_j G_j W_0j = 1.5 - 2 - 2 = -2.5,    sum_j G_j W_1j = -1.5 + 0.5 + 8 = 7. */
static const float TINY_W[6] = {1.0f, -2.0f, -0.5f, -1.0f, 0.5f, 2.0f};
static const float TINY_B[2] = {0.1f, -0.1f};
static const float TINY_X[6] = {1.0f, 2.0f, 3.0f, 0.5f, -1.0f, 1.0f};
static const float TINY_G[3] = {1.5f, 1.0f, 4.0f};

static sw_model *make_tiny(void) {
    sw_shape in = sw_shape_3d(1, 1, 3);
    sw_model *m = NULL;
    CHECK(sw_model_new("tiny", &in, &m));
    add_node(m, "flatten", SW_LAYER_FLATTEN, sw_layer_hparams_default(SW_LAYER_FLATTEN), NULL, 0);
    add_linear(m, "fc", 3, 2);
    CHECK(sw_model_finalize(m));
    memcpy(param_of(m, "fc", "weight")->value.data, TINY_W, sizeof TINY_W);
    memcpy(param_of(m, "fc", "bias")->value.data, TINY_B, sizeof TINY_B);
    return m;
}

static sw_dataset *new_dataset(int n, int c, int h, int w) {
    sw_dataset *ds = calloc(1, sizeof *ds);
    assert_non_null(ds);
    *ds = (sw_dataset){.n = n, .channels = c, .height = h, .width = w, .n_classes = 10};
    ds->images = calloc((size_t)n * (size_t)(c * h * w), sizeof(float));
    ds->labels = calloc((size_t)n, 1);
    assert_non_null(ds->images);
    assert_non_null(ds->labels);
    ds->std[0] = 1.0f;
    snprintf(ds->name, sizeof ds->name, "synthetic");
    return ds;
}

static sw_dataset *make_tiny_dataset(void) {
    sw_dataset *ds = new_dataset(2, 1, 1, 3);
    memcpy(ds->images, TINY_X, sizeof TINY_X);
    return ds;
}

/* n random images [1, hw, hw] in [-1, 1) with random labels of 10 classes. */
static sw_dataset *make_images(int n, int hw, uint64_t seed) {
    sw_dataset *ds = new_dataset(n, 1, hw, hw);
    sw_rng rng;
    sw_rng_init(&rng, seed, 3);
    for (int i = 0; i < n * hw * hw; i++) ds->images[i] = 2.0f * sw_rng_uniform(&rng) - 1.0f;
    for (int i = 0; i < n; i++) ds->labels[i] = (uint8_t)(sw_rng_uniform(&rng) * 10.0f) % 10;
    return ds;
}

/* Plain SGD at a constant learning rate, no evaluation. */
static sw_train_config sgd_config(int batch, float lr, float momentum) {
    sw_train_config c = sw_train_config_default();
    c.batch_size = batch;
    c.optim = sw_optim_config_default(SW_OPTIM_SGD);
    c.optim.lr = lr;
    c.optim.momentum = momentum;
    c.optim.nesterov = false;
    c.optim.weight_decay = 0.0f;
    c.lr = (sw_lr_schedule){.kind = SW_LR_CONSTANT};
    c.eval_every_epoch = 0;
    return c;
}

/* loss = sum of the logits: dL/dlogits = 1 everywhere. */
static sw_status sum_loss(void *ctx, const sw_batch *batch, const sw_tensor *logits, double *loss,
                          sw_tensor *dlogits) {
    (void)ctx;
    (void)batch;
    double s = 0;
    for (size_t i = 0; i < logits->numel; i++) s += logits->data[i];
    *loss = s;
    sw_tensor_fill(dlogits, 1.0f);
    return SW_OK;
}

/* loss = 0: only the compressors' own terms move anything. */
static sw_status zero_loss(void *ctx, const sw_batch *batch, const sw_tensor *logits, double *loss,
                           sw_tensor *dlogits) {
    (void)ctx;
    (void)batch;
    (void)logits;
    *loss = 0.0;
    sw_tensor_zero(dlogits);
    return SW_OK;
}

static cJSON *parse(const char *json) {
    cJSON *c = NULL;
    CHECK(sw_config_list_parse(json, &c));
    return c;
}

static sw_prune_target *target_of(sw_compressor *c, const char *module, const char *target) {
    sw_pruner *p = sw_pruner_of(c);
    assert_non_null(p);
    sw_prune_target *t = sw_pruner_find(p, module, target);
    if (!t) fail_msg("%s has no target %s.%s", c->ops->name, module, target);
    return t;
}

static int masked_blocks(const sw_prune_target *t) {
    int n = 0;
    for (size_t i = 0; i < sw_shape_numel(&t->grid); i++) n += t->block_mask[i] == 0.0f;
    return n;
}

static size_t zeros(const sw_tensor *m) {
    size_t n = 0;
    for (size_t i = 0; i < m->numel; i++) n += m->data[i] == 0.0f;
    return n;
}

/* The masked-block count the ratio rule gives: `rows` rows of `len` blocks, each losing
 * floor(len * goal * factor), with the doubles formed as the pruner forms them. */
static int expected_masked(int len, int rows, double goal, double factor) {
    double r = goal * factor;
    if (r <= 0.0) return 0;
    if (r >= 1.0) return len * rows;
    return rows * (int)(size_t)((double)len * r);
}

static double linear_factor(long k, long total) {
    return (double)k / (double)total;
}

static double agp_factor(long k, long total) {
    double rest = 1.0 - (double)k / (double)total;
    return 1.0 - rest * rest * rest;
}

/* ---- a step recorder: a metric listener that looks at the masks after every step ----------- */

#define REC_MAX_STEPS 128
#define REC_MAX_TARGETS 4

typedef struct recorder {
    sw_compressor *pruner; /* whose weight targets are watched */
    sw_model *model;
    int n;
    const char *modules[REC_MAX_TARGETS];
    long steps;
    int masked[REC_MAX_STEPS + 1][REC_MAX_TARGETS]; /* masked blocks after step s */
    float *prev[REC_MAX_TARGETS];                   /* the masks of the step's forward */
    long grad_leaks; /* gradient entries != 0 where the forward's mask was 0 */
    long masked_checked;
    const char *term; /* a loss term to record, or NULL */
    double term_values[REC_MAX_STEPS + 1];
} recorder;

static void recorder_listener(void *ctx, const sw_metric_event *e) {
    recorder *r = ctx;
    if (e->kind != SW_METRIC_STEP || e->step > REC_MAX_STEPS) return;
    r->steps = e->step;
    for (int i = 0; i < r->n; i++) {
        sw_prune_target *t = sw_pruner_find(sw_pruner_of(r->pruner), r->modules[i], "weight");
        if (!t) continue;
        r->masked[e->step][i] = masked_blocks(t);
        const sw_param *par = param_of(r->model, r->modules[i], "weight");
        for (size_t k = 0; k < par->grad.numel; k++) {
            if (r->prev[i][k] != 0.0f) continue;
            r->masked_checked++;
            if (par->grad.data[k] != 0.0f) r->grad_leaks++;
        }
        memcpy(r->prev[i], t->mask.data, t->mask.numel * sizeof(float));
    }
    for (int k = 0; r->term && k < e->n_terms; k++)
        if (strcmp(e->term_names[k], r->term) == 0) r->term_values[e->step] = e->term_values[k];
}

static void recorder_start(recorder *r, sw_evaluator *ev, sw_compressor *pruner, sw_model *model,
                           const char *const *modules, int n) {
    memset(r, 0, sizeof *r);
    r->pruner = pruner;
    r->model = model;
    r->n = n;
    for (int i = 0; i < n; i++) {
        r->modules[i] = modules[i];
        size_t numel = param_of(model, modules[i], "weight")->value.numel;
        r->prev[i] = malloc(numel * sizeof(float));
        assert_non_null(r->prev[i]);
        for (size_t k = 0; k < numel; k++) r->prev[i][k] = 1.0f;
    }
    CHECK(sw_metric_bus_add(&ev->bus, recorder_listener, r));
}

static void recorder_stop(recorder *r, sw_evaluator *ev) {
    sw_metric_bus_remove(&ev->bus, recorder_listener, r);
    for (int i = 0; i < r->n; i++) free(r->prev[i]);
}

/* ---- the acceptance checks (reference §7) -------------------------------------------------- */

static const char *const SIMPLE_PRUNED[] = {"conv1", "conv2", "conv3", "fc1"};

/* NNI's auto dependency groups for SimpleTorchModel at ratio 0.75 (as in the golden files). */
static const char *DEP_CONFIG =
    "[{\"op_names\": [\"conv1\"], \"sparse_ratio\": 0.75, \"internal_metric_block\": 4},"
    " {\"op_names\": [\"conv2\"], \"sparse_ratio\": 0.75, \"dependency_group_id\": \"dep0\","
    "  \"internal_metric_block\": 4},"
    " {\"op_names\": [\"conv3\"], \"sparse_ratio\": 0.75, \"dependency_group_id\": \"dep0\"},"
    " {\"op_names\": [\"fc1\"], \"sparse_ratio\": 0.75}]";

static const char *PLAIN_CONFIG = "[{\"op_types\": [\"Conv2d\", \"Linear\"],"
                                  " \"exclude_op_names\": [\"fc2\"], \"sparse_ratio\": 0.75}]";

/* Exactly 75% of every pruned weight masked, each bias kept iff some weight of its row is,
 * and (dependent) conv2 and conv3 masking the same output channels. */
static void check_acceptance(sw_compressor *c, bool dependent, const char *label) {
    sw_masks masks;
    CHECK(sw_pruner_get_masks(c, &masks));
    for (int i = 0; i < 4; i++) {
        const sw_tensor *w = sw_masks_find(&masks, SIMPLE_PRUNED[i], "weight");
        const sw_tensor *b = sw_masks_find(&masks, SIMPLE_PRUNED[i], "bias");
        if (!w || !b) fail_msg("%s: no masks for %s", label, SIMPLE_PRUNED[i]);
        if (zeros(w) * 4 != w->numel * 3)
            fail_msg("%s: %s.weight has %zu of %zu masked, not 75%%", label, SIMPLE_PRUNED[i],
                     zeros(w), w->numel);
        size_t per = w->numel / b->numel;
        for (size_t r = 0; r < b->numel; r++) {
            float any = 0.0f;
            for (size_t k = 0; k < per; k++) any = fmaxf(any, w->data[r * per + k]);
            if (b->data[r] != any)
                fail_msg("%s: %s.bias[%zu] disagrees with its row", label, SIMPLE_PRUNED[i], r);
        }
    }
    if (dependent) {
        const sw_tensor *c2 = sw_masks_find(&masks, "conv2", "bias");
        const sw_tensor *c3 = sw_masks_find(&masks, "conv3", "bias");
        for (size_t r = 0; r < c2->numel; r++)
            if (c2->data[r] != c3->data[r])
                fail_msg("%s: conv2 and conv3 differ at channel %zu", label, r);
    }
    sw_masks_deinit(&masks);
}

/* ---- Slim ----------------------------------------------------------------------------------- */

/* One Slim step: each factor moves by Adam's first step, lr * sign(dgamma) with
 * dgamma_i = sum_j G_j W_ij, the smaller |gamma| is pruned, and gamma is folded into W. */
static void test_pruning_trained_slim_factor_step(void **state) {
    (void)state;
    sw_model *m = make_tiny();
    sw_dataset *ds = make_tiny_dataset();
    sw_train_config cfg = sgd_config(2, 0.1f, 0.0f);
    sw_evaluator ev;
    CHECK(sw_evaluator_init(&ev, ds, NULL, &cfg));
    ev.training_step = sum_loss;
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    cJSON *cl = parse("[{\"op_names\": [\"fc\"], \"sparse_ratio\": 0.5}]");
    sw_compressor *slim = NULL;
    CHECK(sw_pruner_slim_new(ws, cl, &ev, 1, 0.0, &slim));
    CHECK(sw_compressor_compress(slim, -1, -1));

    const float *g = NULL;
    size_t n = 0;
    CHECK(sw_pruner_slim_factors(slim, "fc", "weight", &g, &n));
    assert_int_equal(n, 2);
    /* dgamma_0 = -2.5 < 0: gamma_0 grows; dgamma_1 = 7 > 0: gamma_1 shrinks. */
    assert_float_equal(g[0], 1.01f, 1e-6);
    assert_float_equal(g[1], 0.99f, 1e-6);
    /* Row 1 has the smaller factor: pruned, with its bias. */
    sw_masks masks;
    CHECK(sw_pruner_get_masks(slim, &masks));
    const sw_tensor *mw = sw_masks_find(&masks, "fc", "weight");
    const sw_tensor *mb = sw_masks_find(&masks, "fc", "bias");
    for (int j = 0; j < 3; j++) {
        assert_true(mw->data[j] == 1.0f);
        assert_true(mw->data[3 + j] == 0.0f);
    }
    assert_true(mb->data[0] == 1.0f && mb->data[1] == 0.0f);
    sw_masks_deinit(&masks);
    /* SGD saw dW = G (gamma was 1 in that forward); then gamma was folded in. */
    const float *w = param_of(m, "fc", "weight")->value.data;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) {
            float stepped = TINY_W[i * 3 + j] - 0.1f * TINY_G[j];
            assert_float_equal(w[i * 3 + j], stepped * g[i], 1e-6);
        }
    sw_compressor_free(slim);
    sw_wrapper_set_release(ws);
    cJSON_Delete(cl);
    sw_evaluator_deinit(&ev);
    sw_dataset_free(ds);
    sw_model_free(m);
}

/* The weight's gradient passes through gamma: in the second step dW_ij = G_j * gamma_i, and
 * Adam's second step on gamma follows torch's formula. */
static void test_pruning_trained_slim_gradient_through_factor(void **state) {
    (void)state;
    sw_model *m = make_tiny();
    sw_dataset *ds = make_tiny_dataset();
    sw_train_config cfg = sgd_config(2, 0.1f, 0.0f);
    sw_evaluator ev;
    CHECK(sw_evaluator_init(&ev, ds, NULL, &cfg));
    ev.training_step = sum_loss;
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    cJSON *cl = parse("[{\"op_names\": [\"fc\"], \"sparse_ratio\": 0.5}]");
    sw_compressor *slim = NULL;
    CHECK(sw_pruner_slim_new(ws, cl, &ev, 2, 0.0, &slim));
    CHECK(sw_compressor_compress(slim, -1, -1));

    /* By hand, row by row: step 1 at W0 (gamma 1), step 2 at W1 with gamma1. */
    double gamma2[2];
    float w2[6];
    for (int i = 0; i < 2; i++) {
        double d1 = 0, d2 = 0;
        float w1[3];
        for (int j = 0; j < 3; j++) {
            d1 += (double)TINY_G[j] * TINY_W[i * 3 + j];
            w1[j] = TINY_W[i * 3 + j] - 0.1f * TINY_G[j];
            d2 += (double)TINY_G[j] * w1[j];
        }
        double b1 = 0.9, b2 = 0.999, lr = 0.01, eps = 1e-8;
        double m1 = (1 - b1) * d1, v1 = (1 - b2) * d1 * d1;
        double gamma1 = 1.0 - lr / (1 - b1) * m1 / (sqrt(v1) / sqrt(1 - b2) + eps);
        double mm = b1 * m1 + (1 - b1) * d2, vv = b2 * v1 + (1 - b2) * d2 * d2;
        gamma2[i] = gamma1 - lr / (1 - b1 * b1) * mm / (sqrt(vv) / sqrt(1 - b2 * b2) + eps);
        for (int j = 0; j < 3; j++) w2[i * 3 + j] = w1[j] - 0.1f * TINY_G[j] * (float)gamma1;
    }
    const float *g = NULL;
    size_t n = 0;
    CHECK(sw_pruner_slim_factors(slim, "fc", "weight", &g, &n));
    for (int i = 0; i < 2; i++) assert_float_equal(g[i], gamma2[i], 1e-6);
    const float *w = param_of(m, "fc", "weight")->value.data;
    for (int i = 0; i < 6; i++) assert_float_equal(w[i], w2[i] * g[i / 3], 1e-5);
    sw_compressor_free(slim);
    sw_wrapper_set_release(ws);
    cJSON_Delete(cl);
    sw_evaluator_deinit(&ev);
    sw_dataset_free(ds);
    sw_model_free(m);
}

/* The L1 term is regular_scale * mean_t ||gamma_t||_1 (2 * 1000 at the first step) and, when
 * it dominates, pulls every factor down by Adam's lr per step; without it factors stay near 1. */
static void test_pruning_trained_slim_l1_shrinks_factors(void **state) {
    (void)state;
    double mean_abs[2];
    for (int run = 0; run < 2; run++) {
        double scale = run == 0 ? 1000.0 : 0.0;
        sw_model *m = make_tiny();
        sw_dataset *ds = make_tiny_dataset();
        sw_train_config cfg = sgd_config(2, 0.0f, 0.0f);
        sw_evaluator ev;
        CHECK(sw_evaluator_init(&ev, ds, NULL, &cfg));
        ev.training_step = sum_loss;
        sw_wrapper_set *ws = NULL;
        CHECK(sw_wrapper_set_new(m, &ws));
        cJSON *cl = parse("[{\"op_names\": [\"fc\"], \"sparse_ratio\": 0.5}]");
        sw_compressor *slim = NULL;
        CHECK(sw_pruner_slim_new(ws, cl, &ev, 5, scale, &slim));
        recorder r;
        const char *mods[] = {"fc"};
        recorder_start(&r, &ev, slim, m, mods, 1);
        r.term = "slim_l1";
        CHECK(sw_compressor_compress(slim, -1, -1));
        recorder_stop(&r, &ev);
        assert_int_equal(r.steps, 5);
        const float *g = NULL;
        size_t n = 0;
        CHECK(sw_pruner_slim_factors(slim, "fc", "weight", &g, &n));
        mean_abs[run] = (fabs(g[0]) + fabs(g[1])) / 2;
        if (run == 0) {
            /* gamma = 1 at the first step: 1000 * (1 + 1) / 1 target. */
            assert_float_equal(r.term_values[1], 2000.0, 1e-9);
            for (int s = 2; s <= 5; s++) assert_true(r.term_values[s] < r.term_values[s - 1]);
            for (size_t i = 0; i < n; i++) assert_float_equal(g[i], 0.95, 1e-3);
        } else {
            for (int s = 1; s <= 5; s++) assert_float_equal(r.term_values[s], 0.0, 0.0);
            assert_true(g[0] > 1.0f); /* pushed up by the task gradient alone */
        }
        sw_compressor_free(slim);
        sw_wrapper_set_release(ws);
        cJSON_Delete(cl);
        sw_evaluator_deinit(&ev);
        sw_dataset_free(ds);
        sw_model_free(m);
    }
    assert_true(mean_abs[0] < mean_abs[1] - 0.04);
}

/* After a Slim compress the factors live in the weights: unwrapping keeps the masked model's
 * output (eval mode) and leaves the pruned filters exactly zero. */
static void test_pruning_trained_slim_unwrap_keeps_output(void **state) {
    (void)state;
    sw_model *m = make_simple(6, 11);
    sw_dataset *ds = make_images(16, 6, 5);
    sw_train_config cfg = sgd_config(8, 0.05f, 0.9f);
    sw_evaluator ev;
    CHECK(sw_evaluator_init(&ev, ds, NULL, &cfg));
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    cJSON *cl = parse("[{\"op_types\": [\"Conv2d\", \"Linear\"], \"exclude_op_names\": [\"fc2\"],"
                      " \"sparse_ratio\": 0.5}]");
    sw_compressor *slim = NULL;
    CHECK(sw_pruner_slim_new(ws, cl, &ev, 6, 0.5, &slim));
    CHECK(sw_compressor_compress(slim, -1, -1));
    const float *g = NULL;
    size_t n = 0;
    CHECK(sw_pruner_slim_factors(slim, "conv3", "weight", &g, &n));
    assert_int_equal(n, 32);
    bool moved = false;
    for (size_t i = 0; i < n; i++) moved = moved || g[i] != 1.0f;
    assert_true(moved);

    sw_shape xs = sw_shape_4d(8, 1, 6, 6);
    sw_tensor x = sw_tensor_view(ds->images, &xs);
    sw_model_set_training(m, false);
    const sw_tensor *y = NULL;
    CHECK(sw_model_forward(m, &x, &y));
    float wrapped[80];
    memcpy(wrapped, y->data, sizeof wrapped);
    sw_masks masks;
    CHECK(sw_pruner_get_masks(slim, &masks));
    CHECK(sw_compressor_unwrap_model(slim));
    CHECK(sw_model_forward(m, &x, &y));
    sw_test_assert_close(y->data, wrapped, 80, 1e-5f, 1e-4f, "unwrapped output");
    const sw_tensor *mk = sw_masks_find(&masks, "conv1", "weight");
    const float *w = param_of(m, "conv1", "weight")->value.data;
    for (size_t i = 0; i < mk->numel; i++)
        if (mk->data[i] == 0.0f) assert_true(w[i] == 0.0f);
    sw_masks_deinit(&masks);
    sw_compressor_free(slim);
    sw_wrapper_set_release(ws);
    cJSON_Delete(cl);
    sw_evaluator_deinit(&ev);
    sw_dataset_free(ds);
    sw_model_free(m);
}

/* ---- Taylor --------------------------------------------------------------------------------- */

typedef struct loss_log {
    int n;
    double loss[8];
} loss_log;

static void loss_listener(void *ctx, const sw_metric_event *e) {
    loss_log *l = ctx;
    if (e->kind == SW_METRIC_STEP && l->n < 8) l->loss[l->n++] = e->loss;
}

typedef struct load_ctx {
    const sw_safetensors *st;
    const char *prefix;
    int loaded;
} load_ctx;

static void load_param(void *ctx, const sw_node *node, sw_param *param, const char *full_name) {
    load_ctx *l = ctx;
    (void)node;
    char name[128];
    snprintf(name, sizeof name, "%s%s", l->prefix, full_name);
    sw_tensor t;
    CHECK(sw_safetensors_get_f32(l->st, name, &t));
    assert_int_equal(t.numel, param->value.numel);
    memcpy(param->value.data, t.data, t.numel * sizeof(float));
    sw_tensor_deinit(&t);
    l->loaded++;
}

typedef struct compare_ctx {
    const sw_safetensors *st;
    int compared;
} compare_ctx;

static void compare_param(void *ctx, const sw_node *node, sw_param *param, const char *full_name) {
    compare_ctx *c = ctx;
    (void)node;
    char name[128];
    snprintf(name, sizeof name, "final/%s", full_name);
    sw_tensor t;
    CHECK(sw_safetensors_get_f32(c->st, name, &t));
    float maxabs = 0.0f;
    for (size_t i = 0; i < t.numel; i++) maxabs = fmaxf(maxabs, fabsf(t.data[i]));
    sw_test_assert_close(param->value.data, t.data, t.numel, 1e-5f * maxabs + 1e-7f, 0.0f, name);
    sw_tensor_deinit(&t);
    c->compared++;
}

/* NNI's TaylorPruner on SimpleTorchModel (golden prune_taylor_s50): the same losses, trained
 * weights, metrics (rtol 1e-5) and exactly the same masks. */
static void test_pruning_trained_taylor_golden(void **state) {
    (void)state;
    char path[512];
    sw_safetensors *gold = NULL, *fin = NULL;
    CHECK(sw_safetensors_read_file(
        sw_test_data_path("golden/prune_taylor_s50.safetensors", path, sizeof path), &gold));
    CHECK(sw_safetensors_read_file(
        sw_test_data_path("golden/prune_taylor_s50_final.safetensors", path, sizeof path), &fin));
    long steps = atol(sw_safetensors_meta(gold, "training_steps"));
    assert_true(steps > 0);

    sw_tensor input, target;
    CHECK(sw_safetensors_get_f32(gold, "train/input", &input));
    CHECK(sw_safetensors_get_f32(gold, "train/target", &target));
    int n = input.shape.dims[0], hw = input.shape.dims[2];
    sw_dataset *ds = new_dataset(n, 1, hw, hw);
    memcpy(ds->images, input.data, input.numel * sizeof(float));
    for (int i = 0; i < n; i++) ds->labels[i] = (uint8_t)target.data[i];

    sw_model *m = make_simple(hw, 1);
    load_ctx lc = {.st = gold, .prefix = "init/"};
    sw_model_visit_params(m, load_param, &lc);
    assert_int_equal(lc.loaded, 22);

    sw_train_config cfg = sgd_config(n, 0.01f, 0.0f);
    sw_evaluator ev;
    CHECK(sw_evaluator_init(&ev, ds, NULL, &cfg));
    /* NNI reuses one fixed batch in order: a loader without shuffling, set up before the
     * evaluator would build its own (it keeps a loader whose settings match). */
    CHECK(sw_loader_init(&ev.loader, ds, n, false, false, &cfg.augment, 0));
    ev.loader_ready = true;
    loss_log ll = {0};
    CHECK(sw_metric_bus_add(&ev.bus, loss_listener, &ll));

    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    cJSON *cl = parse(sw_safetensors_meta(gold, "config_list"));
    sw_compressor *taylor = NULL;
    CHECK(sw_pruner_taylor_new(ws, cl, &ev, steps, &taylor));
    CHECK(sw_compressor_compress(taylor, -1, -1));

    sw_tensor losses;
    CHECK(sw_safetensors_get_f32(gold, "train/loss", &losses));
    assert_int_equal(ll.n, steps);
    for (int s = 0; s < ll.n; s++)
        assert_float_equal(ll.loss[s], losses.data[s], 1e-5 * fabs(losses.data[s]));
    sw_tensor_deinit(&losses);

    compare_ctx cc = {.st = fin};
    sw_model_visit_params(m, compare_param, &cc);
    assert_int_equal(cc.compared, 22);

    sw_masks masks;
    CHECK(sw_pruner_get_masks(taylor, &masks));
    for (int i = 0; i < 4; i++) {
        const char *mod = SIMPLE_PRUNED[i];
        char name[64];
        snprintf(name, sizeof name, "metric/%s.weight", mod);
        sw_tensor want;
        CHECK(sw_safetensors_get_f32(gold, name, &want));
        const sw_prune_target *t = target_of(taylor, mod, "weight");
        for (size_t k = 0; k < want.numel; k++)
            if (!(fabs(t->metric[k] - want.data[k]) <= 1e-5 * fabs(want.data[k])))
                fail_msg("%s[%zu]: got %.9g, want %.9g", name, k, t->metric[k],
                         (double)want.data[k]);
        sw_tensor_deinit(&want);
        const char *targets[] = {"weight", "bias"};
        for (int k = 0; k < 2; k++) {
            snprintf(name, sizeof name, "%s.%s", mod, targets[k]);
            CHECK(sw_safetensors_get_f32(gold, name, &want));
            const sw_tensor *got = sw_masks_find(&masks, mod, targets[k]);
            assert_non_null(got);
            assert_int_equal(got->numel, want.numel);
            for (size_t e = 0; e < want.numel; e++)
                if (got->data[e] != want.data[e]) fail_msg("mask %s differs at %zu", name, e);
            sw_tensor_deinit(&want);
        }
    }
    sw_masks_deinit(&masks);
    sw_metric_bus_remove(&ev.bus, loss_listener, &ll);
    sw_compressor_free(taylor);
    sw_wrapper_set_release(ws);
    cJSON_Delete(cl);
    sw_evaluator_deinit(&ev);
    sw_dataset_free(ds);
    sw_model_free(m);
    sw_tensor_deinit(&input);
    sw_tensor_deinit(&target);
    sw_safetensors_free(gold);
    sw_safetensors_free(fin);
}

/* By hand: with W_s = W - s * lr * G, the metric of row i is
 * sum_j sum_{s < T} (W_s,ij * G_j)^2 / T; the smaller row is pruned, and in a second compress
 * the pruned row, whose gradient is masked, scores exactly 0. */
static void test_pruning_trained_taylor_hand_metric(void **state) {
    (void)state;
    const long T = 3;
    sw_model *m = make_tiny();
    sw_dataset *ds = make_tiny_dataset();
    sw_train_config cfg = sgd_config(2, 0.1f, 0.0f);
    sw_evaluator ev;
    CHECK(sw_evaluator_init(&ev, ds, NULL, &cfg));
    ev.training_step = sum_loss;
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    cJSON *cl = parse("[{\"op_names\": [\"fc\"], \"sparse_ratio\": 0.5}]");
    sw_compressor *taylor = NULL;
    CHECK(sw_pruner_taylor_new(ws, cl, &ev, T, &taylor));
    CHECK(sw_compressor_compress(taylor, -1, -1));

    double want[2] = {0, 0};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) {
            float w = TINY_W[i * 3 + j];
            for (long s = 0; s < T; s++) {
                float wg = w * TINY_G[j];
                want[i] += (double)wg * wg / (double)T;
                w = w - 0.1f * TINY_G[j];
            }
        }
    const sw_prune_target *t = target_of(taylor, "fc", "weight");
    for (int i = 0; i < 2; i++) assert_float_equal(t->metric[i], want[i], 1e-5 * want[i]);
    int pruned = want[0] < want[1] ? 0 : 1;
    assert_true(t->block_mask[pruned] == 0.0f && t->block_mask[1 - pruned] == 1.0f);

    CHECK(sw_compressor_compress(taylor, -1, -1));
    assert_true(t->metric[pruned] == 0.0);
    assert_true(t->metric[1 - pruned] > 0.0);
    assert_true(t->block_mask[pruned] == 0.0f);
    sw_compressor_free(taylor);
    sw_wrapper_set_release(ws);
    cJSON_Delete(cl);
    sw_evaluator_deinit(&ev);
    sw_dataset_free(ds);
    sw_model_free(m);
}

/* ---- Linear / AGP ------------------------------------------------------------------------- */

typedef enum sub_kind { SUB_LEVEL, SUB_L1, SUB_L2, SUB_FPGM, SUB_SLIM, SUB_TAYLOR } sub_kind;
static const char *const SUB_NAMES[] = {"Level", "L1", "L2", "FPGM", "Slim", "Taylor"};

static sw_compressor *make_sub(sub_kind k, sw_wrapper_set *ws, const cJSON *cl, sw_evaluator *ev,
                               long training_steps) {
    sw_compressor *c = NULL;
    switch (k) {
    case SUB_LEVEL:
        CHECK(sw_pruner_level_new(ws, cl, ev, &c));
        break;
    case SUB_L1:
        CHECK(sw_pruner_l1norm_new(ws, cl, ev, &c));
        break;
    case SUB_L2:
        CHECK(sw_pruner_l2norm_new(ws, cl, ev, &c));
        break;
    case SUB_FPGM:
        CHECK(sw_pruner_fpgm_new(ws, cl, ev, &c));
        break;
    case SUB_SLIM:
        CHECK(sw_pruner_slim_new(ws, cl, ev, training_steps, 1.0, &c));
        break;
    case SUB_TAYLOR:
        CHECK(sw_pruner_taylor_new(ws, cl, ev, training_steps, &c));
        break;
    }
    return c;
}

/* Linear and AGP over L1: after every step s the masked filters of each layer are
 * floor(rows * 0.75 * f(k)), k = min(s / interval, T), f = k/T or 1 - (1 - k/T)^3; the masks
 * then stay, and masked weights get no gradient. */
static void test_pruning_trained_scheduled_follow_schedule(void **state) {
    (void)state;
    const long interval = 2;
    const int T = 4;
    for (int agp = 0; agp < 2; agp++) {
        sw_model *m = make_simple(6, 21);
        sw_dataset *ds = make_images(16, 6, 7);
        sw_train_config cfg = sgd_config(8, 0.05f, 0.9f);
        sw_evaluator ev;
        CHECK(sw_evaluator_init(&ev, ds, NULL, &cfg));
        sw_wrapper_set *ws = NULL;
        CHECK(sw_wrapper_set_new(m, &ws));
        cJSON *cl = parse(PLAIN_CONFIG);
        sw_compressor *l1 = make_sub(SUB_L1, ws, cl, &ev, 0), *sched = NULL;
        CHECK(agp ? sw_pruner_agp_new(l1, interval, T, NULL, &sched)
                  : sw_pruner_linear_new(l1, interval, T, NULL, &sched));
        assert_ptr_equal(sw_pruner_scheduled_bound(sched), l1);
        recorder r;
        recorder_start(&r, &ev, l1, m, SIMPLE_PRUNED, 4);
        long total = interval * T + 3;
        CHECK(sw_compressor_compress(sched, total, -1));
        recorder_stop(&r, &ev);
        assert_int_equal(r.steps, total);
        const int rows[] = {16, 32, 32, 100};
        for (long s = 1; s <= total; s++) {
            long k = s / interval < T ? s / interval : T;
            double f = agp ? agp_factor(k, T) : linear_factor(k, T);
            for (int i = 0; i < 4; i++)
                if (r.masked[s][i] != expected_masked(rows[i], 1, 0.75, f))
                    fail_msg("%s step %ld %s: %d masked, want %d", agp ? "AGP" : "Linear", s,
                             SIMPLE_PRUNED[i], r.masked[s][i],
                             expected_masked(rows[i], 1, 0.75, f));
        }
        assert_true(r.masked_checked > 0);
        assert_int_equal(r.grad_leaks, 0);
        sw_compressor_free(sched);
        sw_compressor_free(l1);
        sw_wrapper_set_release(ws);
        cJSON_Delete(cl);
        sw_evaluator_deinit(&ev);
        sw_dataset_free(ds);
        sw_model_free(m);
    }
}

/* NNI's acceptance case: Linear and AGP over every schedulable pruner end with exactly 75% of
 * each layer masked, biases following their rows, and one channel mask for the conv2/conv3
 * dependency set. (NNI runs interval 10 x 10 times; 2 x 5 keeps the case fast under ASan.) */
static void test_pruning_trained_scheduled_acceptance(void **state) {
    (void)state;
    sw_dataset *ds = make_images(16, 6, 9);
    sw_train_config cfg = sgd_config(8, 0.02f, 0.9f);
    sw_evaluator ev;
    CHECK(sw_evaluator_init(&ev, ds, NULL, &cfg));
    for (int agp = 0; agp < 2; agp++)
        for (int k = SUB_LEVEL; k <= SUB_TAYLOR; k++) {
            sw_model *m = make_simple(6, 31);
            sw_wrapper_set *ws = NULL;
            CHECK(sw_wrapper_set_new(m, &ws));
            bool dependent = k != SUB_LEVEL;
            cJSON *cl = parse(dependent ? DEP_CONFIG : PLAIN_CONFIG);
            sw_compressor *sub = make_sub((sub_kind)k, ws, cl, &ev, 2), *sched = NULL;
            CHECK(agp ? sw_pruner_agp_new(sub, 2, 5, NULL, &sched)
                      : sw_pruner_linear_new(sub, 2, 5, NULL, &sched));
            CHECK(sw_compressor_compress(sched, 10, -1));
            char label[64];
            snprintf(label, sizeof label, "%s(%s)", agp ? "AGP" : "Linear", SUB_NAMES[k]);
            check_acceptance(sched, dependent, label);
            sw_compressor_free(sched);
            sw_compressor_free(sub);
            sw_wrapper_set_release(ws);
            cJSON_Delete(cl);
            sw_model_free(m);
        }
    sw_evaluator_deinit(&ev);
    sw_dataset_free(ds);
}

/* Taylor under Linear with interval_steps > training_steps still reaches each scheduled goal
 * at the end of its interval (the promise NNI's docs make). */
static void test_pruning_trained_scheduled_taylor_long_interval(void **state) {
    (void)state;
    sw_model *m = make_simple(6, 41);
    sw_dataset *ds = make_images(16, 6, 3);
    sw_train_config cfg = sgd_config(8, 0.05f, 0.0f);
    sw_evaluator ev;
    CHECK(sw_evaluator_init(&ev, ds, NULL, &cfg));
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    cJSON *cl = parse(PLAIN_CONFIG);
    sw_compressor *taylor = make_sub(SUB_TAYLOR, ws, cl, &ev, 2), *lin = NULL;
    CHECK(sw_pruner_linear_new(taylor, 4, 2, NULL, &lin));
    recorder r;
    recorder_start(&r, &ev, taylor, m, SIMPLE_PRUNED, 4);
    CHECK(sw_compressor_compress(lin, 8, -1));
    recorder_stop(&r, &ev);
    const int rows[] = {16, 32, 32, 100};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(r.masked[3][i], 0);
        assert_int_equal(r.masked[4][i], expected_masked(rows[i], 1, 0.75, 0.5));
        assert_int_equal(r.masked[7][i], expected_masked(rows[i], 1, 0.75, 0.5));
        assert_int_equal(r.masked[8][i], expected_masked(rows[i], 1, 0.75, 1.0));
    }
    sw_compressor_free(lin);
    sw_compressor_free(taylor);
    sw_wrapper_set_release(ws);
    cJSON_Delete(cl);
    sw_evaluator_deinit(&ev);
    sw_dataset_free(ds);
    sw_model_free(m);
}

/* A schedule planned too short fails before the first step (no weight changes) and names the
 * steps it needs; a bad bound, a missing evaluator, from_compressor and an interval shorter
 * than Taylor's training_steps are refused with what to do. */
static void test_pruning_trained_scheduled_errors(void **state) {
    (void)state;
    sw_model *m = make_simple(6, 51);
    sw_dataset *ds = make_images(16, 6, 4);
    sw_train_config cfg = sgd_config(8, 0.05f, 0.0f);
    sw_evaluator ev;
    CHECK(sw_evaluator_init(&ev, ds, NULL, &cfg));
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    cJSON *cl = parse(PLAIN_CONFIG);

    sw_compressor *l1 = make_sub(SUB_L1, ws, cl, NULL, 0), *sched = NULL;
    assert_int_equal(sw_pruner_agp_new(l1, 5, 4, NULL, &sched), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "evaluator"));
    CHECK(sw_pruner_agp_new(l1, 5, 4, &ev, &sched));
    float before = param_of(m, "fc1", "weight")->value.data[7];
    assert_int_equal(sw_compressor_compress(sched, 19, -1), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "needs 20 optimizer steps"));
    assert_true(param_of(m, "fc1", "weight")->value.data[7] == before);
    assert_int_equal(sw_compressor_compress(sched, -1, 1), SW_ERR_ARG); /* 2 steps per epoch */
    assert_int_equal(ev.bus.n, 0); /* the guard's listener is gone */
    CHECK(sw_compressor_compress(sched, 20, -1));
    assert_int_equal(sw_pruner_agp_from_compressor(sched, 5, 4, NULL, &sched), SW_ERR_UNSUPPORTED);
    assert_non_null(strstr(sw_error_message(), "from_compressor"));
    assert_int_equal(sw_pruner_linear_from_compressor(sched, 5, 4, NULL, &sched),
                     SW_ERR_UNSUPPORTED);
    sw_compressor *again = NULL;
    assert_int_equal(sw_pruner_linear_new(l1, 5, 4, &ev, &again), SW_ERR_ARG); /* has a next */
    assert_non_null(strstr(sw_error_message(), "successor"));
    assert_null(sw_pruner_scheduled_bound(l1));
    sw_compressor_free(sched);
    sw_compressor_free(l1);
    sw_wrapper_set_release(ws);

    /* Movement keeps its own schedule. */
    CHECK(sw_wrapper_set_new(m, &ws));
    sw_compressor *mv = NULL;
    CHECK(sw_pruner_movement_new(ws, cl, &ev, 1, 4, 1.0, &mv));
    assert_int_equal(sw_pruner_linear_new(mv, 5, 4, NULL, &sched), SW_ERR_UNSUPPORTED);
    sw_compressor_free(mv);
    sw_wrapper_set_release(ws);

    /* Taylor collecting 5 steps cannot be rescheduled every 2. */
    CHECK(sw_wrapper_set_new(m, &ws));
    sw_compressor *taylor = make_sub(SUB_TAYLOR, ws, cl, &ev, 5);
    CHECK(sw_pruner_agp_new(taylor, 2, 3, NULL, &sched));
    assert_int_equal(sw_compressor_compress(sched, 6, -1), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "training_steps"));
    sw_compressor_free(sched);
    sw_compressor_free(taylor);
    sw_wrapper_set_release(ws);

    cJSON_Delete(cl);
    sw_evaluator_deinit(&ev);
    sw_dataset_free(ds);
    sw_model_free(m);
}

/* ---- Movement ------------------------------------------------------------------------------- */

/* Scores learn against their gradient dS_i = sum_j G_j W_ij (W fixed at lr 0): Adam moves each
 * by lr per step, row 0 up (+0.05 after 5 steps), row 1 down (-0.05); at cooldown (step 3) the
 * lowest-scored row is pruned, and being pruned it keeps receiving its score gradient. */
static void test_pruning_trained_movement_scores_learn(void **state) {
    (void)state;
    sw_model *m = make_tiny();
    sw_dataset *ds = make_tiny_dataset();
    sw_train_config cfg = sgd_config(2, 0.0f, 0.0f);
    sw_evaluator ev;
    CHECK(sw_evaluator_init(&ev, ds, NULL, &cfg));
    ev.training_step = sum_loss;
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    cJSON *cl = parse("[{\"op_names\": [\"fc\"], \"sparse_ratio\": 0.5}]");
    sw_compressor *mv = NULL;
    CHECK(sw_pruner_movement_new(ws, cl, &ev, 1, 3, 1.0, &mv));
    const float *s = NULL;
    size_t n = 0;
    CHECK(sw_pruner_movement_scores(mv, "fc", "weight", &s, &n));
    assert_int_equal(n, 2);
    assert_true(s[0] == 0.0f && s[1] == 0.0f);
    recorder r;
    const char *mods[] = {"fc"};
    recorder_start(&r, &ev, mv, m, mods, 1);
    CHECK(sw_compressor_compress(mv, 5, -1));
    recorder_stop(&r, &ev);
    assert_float_equal(s[0], 0.05f, 1e-6);
    assert_float_equal(s[1], -0.05f, 1e-6);
    /* Goals 0 until warmup; 0.5 * 0.875 of 2 rows rounds to none at step 2; 1 row at 3. */
    assert_int_equal(r.masked[1][0], 0);
    assert_int_equal(r.masked[2][0], 0);
    for (int k = 3; k <= 5; k++) assert_int_equal(r.masked[k][0], 1);
    assert_int_equal(r.grad_leaks, 0);
    const sw_prune_target *t = target_of(mv, "fc", "weight");
    assert_true(t->block_mask[0] == 1.0f && t->block_mask[1] == 0.0f);
    sw_compressor_free(mv);
    sw_wrapper_set_release(ws);
    cJSON_Delete(cl);
    sw_evaluator_deinit(&ev);
    sw_dataset_free(ds);
    sw_model_free(m);
}

/* On the acceptance model (NNI: warmup 10, cooldown 90, 100 steps; here 3, 19, 22 to stay fast)
 * Movement follows its cubic ramp after every step, masks nothing during warmup, ends at
 * exactly 75% per layer with one channel mask for conv2/conv3, and masked weights never get a
 * gradient. */
static void test_pruning_trained_movement_acceptance(void **state) {
    (void)state;
    sw_model *m = make_simple(6, 61);
    sw_dataset *ds = make_images(16, 6, 8);
    sw_train_config cfg = sgd_config(8, 0.02f, 0.9f);
    sw_evaluator ev;
    CHECK(sw_evaluator_init(&ev, ds, NULL, &cfg));
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    cJSON *cl = parse(DEP_CONFIG);
    sw_compressor *mv = NULL;
    const long warmup = 3, cooldown = 19, total = 22, T = cooldown - warmup;
    CHECK(sw_pruner_movement_new(ws, cl, &ev, warmup, cooldown, 1.0, &mv));
    recorder r;
    recorder_start(&r, &ev, mv, m, SIMPLE_PRUNED, 4);
    CHECK(sw_compressor_compress(mv, total, -1));
    recorder_stop(&r, &ev);
    assert_int_equal(r.steps, total);
    for (long s = 1; s <= total; s++) {
        long k = s <= warmup ? 0 : s - warmup < T ? s - warmup : T;
        double f = agp_factor(k, T);
        int want[4] = {expected_masked(16, 1, 0.75, f), expected_masked(8, 4, 0.75, f),
                       expected_masked(8, 4, 0.75, f), expected_masked(100, 1, 0.75, f)};
        for (int i = 0; i < 4; i++)
            if (r.masked[s][i] != want[i])
                fail_msg("step %ld %s: %d masked, want %d", s, SIMPLE_PRUNED[i], r.masked[s][i],
                         want[i]);
    }
    assert_true(r.masked_checked > 0);
    assert_int_equal(r.grad_leaks, 0);
    check_acceptance(mv, true, "Movement");
    /* Baked into the weights, the masks leave exact zeros. */
    sw_masks masks;
    CHECK(sw_pruner_get_masks(mv, &masks));
    CHECK(sw_compressor_unwrap_model(mv));
    for (int i = 0; i < 4; i++) {
        const sw_tensor *mk = sw_masks_find(&masks, SIMPLE_PRUNED[i], "weight");
        const float *w = param_of(m, SIMPLE_PRUNED[i], "weight")->value.data;
        for (size_t e = 0; e < mk->numel; e++)
            if (mk->data[e] == 0.0f) assert_true(w[e] == 0.0f);
    }
    sw_masks_deinit(&masks);
    sw_compressor_free(mv);
    sw_wrapper_set_release(ws);
    cJSON_Delete(cl);
    sw_evaluator_deinit(&ev);
    sw_dataset_free(ds);
    sw_model_free(m);
}

/* Threshold mode: the regulariser is regular_scale * r * mean(sigmoid(S)), r = 1 - (left/T)^3:
 * 0 until the first update, then 10 * (1 - (3/4)^3) * 0.5 = 2.890625 at step 3 (S still 0); it
 * pulls the scores below 0, so at the end sigmoid(S) < 0.5 = threshold and all is pruned,
 * while without it S stays 0 and all is kept. */
static void test_pruning_trained_movement_threshold_regulariser(void **state) {
    (void)state;
    for (int run = 0; run < 2; run++) {
        double scale = run == 0 ? 10.0 : 0.0;
        sw_model *m = make_tiny();
        sw_dataset *ds = make_tiny_dataset();
        sw_train_config cfg = sgd_config(2, 0.0f, 0.0f);
        sw_evaluator ev;
        CHECK(sw_evaluator_init(&ev, ds, NULL, &cfg));
        ev.training_step = zero_loss;
        sw_wrapper_set *ws = NULL;
        CHECK(sw_wrapper_set_new(m, &ws));
        cJSON *cl = parse("[{\"op_names\": [\"fc\"], \"sparse_threshold\": 0.5}]");
        sw_compressor *mv = NULL;
        CHECK(sw_pruner_movement_new(ws, cl, &ev, 1, 5, scale, &mv));
        recorder r;
        const char *mods[] = {"fc"};
        recorder_start(&r, &ev, mv, m, mods, 1);
        r.term = "movement_reg";
        CHECK(sw_compressor_compress(mv, 6, -1));
        recorder_stop(&r, &ev);
        const float *s = NULL;
        size_t n = 0;
        CHECK(sw_pruner_movement_scores(mv, "fc", "weight", &s, &n));
        const sw_prune_target *t = target_of(mv, "fc", "weight");
        if (run == 0) {
            assert_float_equal(r.term_values[1], 0.0, 0.0);
            assert_float_equal(r.term_values[2], 0.0, 0.0);
            assert_float_equal(r.term_values[3], 2.890625, 1e-12);
            assert_true(r.term_values[4] > 0.0 && r.term_values[4] < 10.0 * 0.875 * 0.5);
            for (size_t i = 0; i < n; i++) assert_true(s[i] < 0.0f);
            assert_int_equal(masked_blocks(t), 2);
        } else {
            for (int k = 1; k <= 6; k++) assert_float_equal(r.term_values[k], 0.0, 0.0);
            for (size_t i = 0; i < n; i++) assert_true(s[i] == 0.0f);
            assert_int_equal(masked_blocks(t), 0);
        }
        sw_compressor_free(mv);
        sw_wrapper_set_release(ws);
        cJSON_Delete(cl);
        sw_evaluator_deinit(&ev);
        sw_dataset_free(ds);
        sw_model_free(m);
    }
}

/* Movement refuses warmup >= cooldown, a bypassed target, and a compress planned shorter than
 * cooldown_begin_step (before any step: the weights do not move). */
static void test_pruning_trained_movement_errors(void **state) {
    (void)state;
    sw_model *m = make_tiny();
    sw_dataset *ds = make_tiny_dataset();
    sw_train_config cfg = sgd_config(2, 0.1f, 0.0f);
    sw_evaluator ev;
    CHECK(sw_evaluator_init(&ev, ds, NULL, &cfg));
    ev.training_step = sum_loss;
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    cJSON *cl = parse("[{\"op_names\": [\"fc\"], \"sparse_ratio\": 0.5}]");
    cJSON *bypass = parse("[{\"op_names\": [\"fc\"], \"sparse_ratio\": 0.5,"
                          " \"apply_method\": \"bypass\"}]");
    sw_compressor *mv = NULL;
    assert_int_equal(sw_pruner_movement_new(ws, cl, &ev, 3, 3, 1.0, &mv), SW_ERR_ARG);
    assert_int_equal(sw_pruner_movement_new(ws, bypass, &ev, 1, 3, 1.0, &mv), SW_ERR_CONFIG);
    assert_int_equal(sw_pruner_movement_new(ws, cl, NULL, 1, 3, 1.0, &mv), SW_ERR_ARG);
    CHECK(sw_pruner_movement_new(ws, cl, &ev, 1, 3, 1.0, &mv));
    assert_int_equal(sw_compressor_compress(mv, 2, -1), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "cooldown_begin_step"));
    assert_true(param_of(m, "fc", "weight")->value.data[0] == TINY_W[0]);
    assert_int_equal(sw_compressor_compress(mv, -1, -1), SW_ERR_ARG);
    const float *v = NULL;
    size_t n = 0;
    assert_int_equal(sw_pruner_movement_scores(mv, "fc", "bias", &v, &n), SW_ERR_NOT_FOUND);
    assert_int_equal(sw_pruner_slim_factors(mv, "fc", "weight", &v, &n), SW_ERR_ARG);
    sw_compressor_free(mv);
    sw_wrapper_set_release(ws);
    cJSON_Delete(cl);
    cJSON_Delete(bypass);
    sw_evaluator_deinit(&ev);
    sw_dataset_free(ds);
    sw_model_free(m);
}

/* ---- Slim / Taylor arguments ---------------------------------------------------------------- */

/* Slim and Taylor refuse training_steps <= 0, a missing evaluator and compress limits when
 * alone (they train their own training_steps). */
static void test_pruning_trained_slim_taylor_errors(void **state) {
    (void)state;
    sw_model *m = make_tiny();
    sw_dataset *ds = make_tiny_dataset();
    sw_train_config cfg = sgd_config(2, 0.1f, 0.0f);
    sw_evaluator ev;
    CHECK(sw_evaluator_init(&ev, ds, NULL, &cfg));
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    cJSON *cl = parse("[{\"op_names\": [\"fc\"], \"sparse_ratio\": 0.5}]");
    sw_compressor *c = NULL;
    assert_int_equal(sw_pruner_slim_new(ws, cl, &ev, 0, 1.0, &c), SW_ERR_ARG);
    assert_int_equal(sw_pruner_slim_new(ws, cl, &ev, 3, -1.0, &c), SW_ERR_ARG);
    assert_int_equal(sw_pruner_slim_new(ws, cl, NULL, 3, 1.0, &c), SW_ERR_ARG);
    assert_int_equal(sw_pruner_taylor_new(ws, cl, &ev, 0, &c), SW_ERR_ARG);
    assert_int_equal(sw_pruner_taylor_new(ws, cl, NULL, 2, &c), SW_ERR_ARG);
    assert_int_equal(sw_wrapper_set_transform_count(ws), 0); /* failures left nothing behind */
    CHECK(sw_pruner_slim_new(ws, cl, &ev, 3, 1.0, &c));
    assert_int_equal(sw_compressor_compress(c, 3, -1), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "training_steps"));
    sw_compressor_free(c);
    CHECK(sw_pruner_taylor_new(ws, cl, &ev, 3, &c));
    assert_int_equal(sw_compressor_compress(c, -1, 2), SW_ERR_ARG);
    sw_compressor_free(c);
    assert_int_equal(sw_wrapper_set_transform_count(ws), 0);
    sw_wrapper_set_release(ws);
    cJSON_Delete(cl);
    sw_evaluator_deinit(&ev);
    sw_dataset_free(ds);
    sw_model_free(m);
}

/* ---- chains --------------------------------------------------------------------------------- */

/* TaylorPruner.from_compressor(L1NormPruner(conv1), fc1): one compress prunes conv1 once from
 * the untrained weights (as L1 alone would) and fc1 from Taylor data; Slim and Movement fuse
 * the same way. */
static void test_pruning_trained_chain_from_compressor(void **state) {
    (void)state;
    sw_dataset *ds = make_images(16, 6, 6);
    sw_train_config cfg = sgd_config(8, 0.05f, 0.9f);
    sw_evaluator ev;
    CHECK(sw_evaluator_init(&ev, ds, NULL, &cfg));
    cJSON *c_conv1 = parse("[{\"op_names\": [\"conv1\"], \"sparse_ratio\": 0.5}]");
    cJSON *c_fc1 = parse("[{\"op_names\": [\"fc1\"], \"sparse_ratio\": 0.5}]");
    cJSON *c_conv3 = parse("[{\"op_names\": [\"conv3\"], \"sparse_ratio\": 0.25}]");

    /* Reference: L1 alone on the same initial weights. */
    sw_model *ref = make_simple(6, 71);
    sw_wrapper_set *rws = NULL;
    CHECK(sw_wrapper_set_new(ref, &rws));
    sw_compressor *ref_l1 = NULL;
    CHECK(sw_pruner_l1norm_new(rws, c_conv1, NULL, &ref_l1));
    CHECK(sw_compressor_compress(ref_l1, -1, -1));

    sw_model *m = make_simple(6, 71);
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    sw_compressor *l1 = NULL, *taylor = NULL, *slim = NULL;
    CHECK(sw_pruner_l1norm_new(ws, c_conv1, NULL, &l1));
    CHECK(sw_pruner_taylor_from_compressor(l1, c_fc1, 3, &ev, &taylor));
    assert_ptr_equal(taylor->ev, &ev);
    CHECK(sw_pruner_slim_from_compressor(taylor, c_conv3, 4, 1.0, NULL, &slim));
    assert_ptr_equal(slim->ev, &ev);
    assert_int_equal(sw_compressor_chain_length(slim), 3);
    CHECK(sw_compressor_compress(slim, 6, -1));

    const sw_prune_target *a = target_of(l1, "conv1", "weight");
    const sw_prune_target *b = target_of(ref_l1, "conv1", "weight");
    assert_memory_equal(a->block_mask, b->block_mask, 16 * sizeof(float));
    assert_int_equal(masked_blocks(a), 8);
    assert_int_equal(masked_blocks(target_of(taylor, "fc1", "weight")), 50);
    assert_int_equal(masked_blocks(target_of(slim, "conv3", "weight")), 8);
    sw_masks masks;
    CHECK(sw_pruner_get_masks(slim, &masks));
    assert_non_null(sw_masks_find(&masks, "conv1", "weight"));
    assert_non_null(sw_masks_find(&masks, "fc1", "weight"));
    assert_non_null(sw_masks_find(&masks, "conv3", "weight"));
    sw_masks_deinit(&masks);

    /* Movement on fc2 after all of them. */
    cJSON *c_fc2 = parse("[{\"op_names\": [\"fc2\"], \"sparse_ratio\": 0.2}]");
    sw_compressor *mv = NULL;
    CHECK(sw_pruner_movement_from_compressor(slim, c_fc2, 1, 3, 1.0, NULL, &mv));
    CHECK(sw_compressor_compress(mv, 4, -1));
    assert_int_equal(masked_blocks(target_of(mv, "fc2", "weight")), 2);
    assert_int_equal(masked_blocks(target_of(l1, "conv1", "weight")), 8);

    sw_compressor_free(mv);
    sw_compressor_free(slim);
    sw_compressor_free(taylor);
    sw_compressor_free(l1);
    sw_wrapper_set_release(ws);
    sw_model_free(m);
    sw_compressor_free(ref_l1);
    sw_wrapper_set_release(rws);
    sw_model_free(ref);
    cJSON_Delete(c_fc2);
    cJSON_Delete(c_conv1);
    cJSON_Delete(c_fc1);
    cJSON_Delete(c_conv3);
    sw_evaluator_deinit(&ev);
    sw_dataset_free(ds);
}

/* AGP(TaylorPruner.from_compressor(L1NormPruner(conv1), fc1, 5), 5, 3): conv1 is pruned once,
 * fc1 follows the AGP ramp at steps 5, 10, 15 and reaches its goal. */
static void test_pruning_trained_chain_agp_over_fused_taylor(void **state) {
    (void)state;
    sw_dataset *ds = make_images(16, 6, 12);
    sw_train_config cfg = sgd_config(8, 0.05f, 0.9f);
    sw_evaluator ev;
    CHECK(sw_evaluator_init(&ev, ds, NULL, &cfg));
    cJSON *c_conv1 = parse("[{\"op_names\": [\"conv1\"], \"sparse_ratio\": 0.5}]");
    cJSON *c_fc1 = parse("[{\"op_names\": [\"fc1\"], \"sparse_ratio\": 0.5}]");
    sw_model *m = make_simple(6, 81);
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    sw_compressor *l1 = NULL, *taylor = NULL, *agp = NULL;
    CHECK(sw_pruner_l1norm_new(ws, c_conv1, &ev, &l1));
    CHECK(sw_pruner_taylor_from_compressor(l1, c_fc1, 5, NULL, &taylor));
    CHECK(sw_pruner_agp_new(taylor, 5, 3, NULL, &agp));
    assert_int_equal(sw_compressor_chain_length(agp), 3);
    recorder r;
    const char *mods[] = {"fc1"};
    recorder_start(&r, &ev, taylor, m, mods, 1);
    CHECK(sw_compressor_compress(agp, 15, -1));
    recorder_stop(&r, &ev);
    for (int k = 1; k <= 3; k++) {
        assert_int_equal(r.masked[5 * k - 1][0],
                         expected_masked(100, 1, 0.5, agp_factor(k - 1, 3)));
        assert_int_equal(r.masked[5 * k][0], expected_masked(100, 1, 0.5, agp_factor(k, 3)));
    }
    assert_int_equal(r.masked[15][0], 50);
    assert_int_equal(masked_blocks(target_of(l1, "conv1", "weight")), 8);
    assert_int_equal(r.grad_leaks, 0);
    sw_compressor_free(agp);
    sw_compressor_free(taylor);
    sw_compressor_free(l1);
    sw_wrapper_set_release(ws);
    sw_model_free(m);
    cJSON_Delete(c_conv1);
    cJSON_Delete(c_fc1);
    sw_evaluator_deinit(&ev);
    sw_dataset_free(ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pruning_trained_slim_factor_step),
        cmocka_unit_test(test_pruning_trained_slim_gradient_through_factor),
        cmocka_unit_test(test_pruning_trained_slim_l1_shrinks_factors),
        cmocka_unit_test(test_pruning_trained_slim_unwrap_keeps_output),
        cmocka_unit_test(test_pruning_trained_taylor_golden),
        cmocka_unit_test(test_pruning_trained_taylor_hand_metric),
        cmocka_unit_test(test_pruning_trained_scheduled_follow_schedule),
        cmocka_unit_test(test_pruning_trained_scheduled_acceptance),
        cmocka_unit_test(test_pruning_trained_scheduled_taylor_long_interval),
        cmocka_unit_test(test_pruning_trained_scheduled_errors),
        cmocka_unit_test(test_pruning_trained_movement_scores_learn),
        cmocka_unit_test(test_pruning_trained_movement_acceptance),
        cmocka_unit_test(test_pruning_trained_movement_threshold_regulariser),
        cmocka_unit_test(test_pruning_trained_movement_errors),
        cmocka_unit_test(test_pruning_trained_slim_taylor_errors),
        cmocka_unit_test(test_pruning_trained_chain_from_compressor),
        cmocka_unit_test(test_pruning_trained_chain_agp_over_fused_taylor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
