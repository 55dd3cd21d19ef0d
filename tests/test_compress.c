/* test_compress.c - the compression core: Scaling, config lists, wrappers and transform
 * chains, dead-channel zeroing, unwrap, masks files, dependency groups. */
#include <math.h>

#include "test_compress_models.h"

#include "compress/compressor.h"
#include "compress/dead_channels.h"
#include "compress/dependency.h"
#include "compress/mask_transform.h"
#include "compress/masks_io.h"
#include "compress/pruning/prune_setting.h"
#include "compress/pruning/pruners.h"
#include "compress/scaling.h"
#include "compress/wrapper.h"
#include "nn/zoo.h"

/* ---- Scaling ----------------------------------------------------------------------------- */

/* out_channel on a conv weight reduces each output filter to one value (L1 here). */
static void test_compress_scaling_out_channel_l1(void **state) {
    (void)state;
    sw_shape s = sw_shape_4d(3, 2, 2, 2);
    sw_tensor *w = NULL;
    CHECK_OK(sw_tensor_new(&s, &w));
    for (size_t i = 0; i < w->numel; i++) w->data[i] = (i % 2 ? -1.0f : 1.0f) * (float)i;
    sw_granularity g = {.kind = SW_GRANULARITY_OUT_CHANNEL};
    bool has;
    sw_scaling sc;
    CHECK_OK(sw_granularity_scaling(&g, true, &has, &sc));
    assert_true(has);
    sw_shape grid;
    size_t per = 0;
    CHECK_OK(sw_scaling_grid(&sc, &w->shape, &grid, &per));
    assert_int_equal(grid.ndim, 4);
    assert_int_equal(grid.dims[0], 3);
    assert_int_equal(grid.dims[1] * grid.dims[2] * grid.dims[3], 1);
    assert_int_equal(per, 8);
    double m[3];
    CHECK_OK(sw_scaling_shrink(&sc, w, SW_REDUCE_L1, m));
    /* |0..7| = 28, |8..15| = 92, |16..23| = 156 */
    assert_float_equal(m[0], 28.0, 1e-12);
    assert_float_equal(m[1], 92.0, 1e-12);
    assert_float_equal(m[2], 156.0, 1e-12);
    CHECK_OK(sw_scaling_shrink(&sc, w, SW_REDUCE_L2, m));
    double ss = 0;
    for (int i = 0; i < 8; i++) ss += (double)i * i;
    assert_float_equal(m[0], sqrt(ss), 1e-12);
    sw_tensor_free(w);
}

/* A [2, 2] kernel on a 4x4 tensor makes four tiles; expand repeats tile values back. */
static void test_compress_scaling_block_tiles_roundtrip(void **state) {
    (void)state;
    sw_shape s = sw_shape_2d(4, 4);
    sw_tensor *t = NULL;
    CHECK_OK(sw_tensor_new(&s, &t));
    for (int i = 0; i < 16; i++) t->data[i] = (float)i;
    int k[2] = {2, 2};
    sw_scaling sc = sw_scaling_make(2, k, SW_SCALING_PAD_FRONT, 1);
    double mean[4];
    CHECK_OK(sw_scaling_shrink(&sc, t, SW_REDUCE_MEAN, mean));
    assert_float_equal(mean[0], 2.5, 1e-12);
    assert_float_equal(mean[1], 4.5, 1e-12);
    assert_float_equal(mean[2], 10.5, 1e-12);
    assert_float_equal(mean[3], 12.5, 1e-12);
    float grid[4] = {1, 2, 3, 4}, out[16];
    CHECK_OK(sw_scaling_expand(&sc, grid, &s, out));
    float want[16] = {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4};
    for (int i = 0; i < 16; i++) assert_float_equal(out[i], want[i], 0);
    /* gather: block 1 is rows 0-1, cols 2-3 = 2, 3, 6, 7 */
    double rows[16];
    CHECK_OK(sw_scaling_gather(&sc, t, rows));
    assert_float_equal(rows[4], 2, 0);
    assert_float_equal(rows[5], 3, 0);
    assert_float_equal(rows[6], 6, 0);
    assert_float_equal(rows[7], 7, 0);
    sw_tensor_free(t);
}

/* in_channel groups dim 1; padding front/back follows the kernel rules; bad sizes fail. */
static void test_compress_scaling_padding_and_errors(void **state) {
    (void)state;
    sw_granularity g = {.kind = SW_GRANULARITY_IN_CHANNEL};
    bool has;
    sw_scaling sc;
    CHECK_OK(sw_granularity_scaling(&g, true, &has, &sc));
    int kernel[SW_MAX_DIMS];
    CHECK_OK(sw_scaling_kernel_for(&sc, 4, kernel));
    assert_int_equal(kernel[0], -1);
    assert_int_equal(kernel[1], 1);
    assert_int_equal(kernel[2], -1);
    assert_int_equal(kernel[3], -1);
    sw_shape w = sw_shape_4d(6, 3, 3, 3), grid;
    CHECK_OK(sw_scaling_grid(&sc, &w, &grid, NULL));
    assert_int_equal(grid.dims[0], 1);
    assert_int_equal(grid.dims[1], 3);
    int k3[1] = {4};
    sw_scaling bad = sw_scaling_make(1, k3, SW_SCALING_PAD_FRONT, 1);
    assert_int_equal(sw_scaling_grid(&bad, &w, &grid, NULL), SW_ERR_SHAPE);
    assert_non_null(strstr(sw_error_message(), "does not divide dim 3"));
    g.kind = SW_GRANULARITY_PER_CHANNEL;
    assert_int_equal(sw_granularity_scaling(&g, true, &has, &sc), SW_ERR_CONFIG);
    g.kind = SW_GRANULARITY_OUT_CHANNEL;
    assert_int_equal(sw_granularity_scaling(&g, false, &has, &sc), SW_ERR_CONFIG);
}

/* Granularity JSON: strings, int lists (front-padded with 1), [kernel, mode(, pad)], errors. */
static void test_compress_granularity_json(void **state) {
    (void)state;
    char why[160];
    sw_granularity g;
    cJSON *v = cJSON_Parse("[4, 4]");
    assert_true(sw_granularity_from_json(v, &g, why, sizeof why));
    assert_int_equal(g.kind, SW_GRANULARITY_KERNEL);
    assert_int_equal(g.kernel.pad_mode, SW_SCALING_PAD_FRONT);
    assert_int_equal(g.kernel.pad_value, 1);
    cJSON_Delete(v);
    /* NNI pads with 1 even in "back" mode unless a value is given. */
    v = cJSON_Parse("[[2], \"back\"]");
    assert_true(sw_granularity_from_json(v, &g, why, sizeof why));
    assert_int_equal(g.kernel.pad_mode, SW_SCALING_PAD_BACK);
    assert_int_equal(g.kernel.pad_value, 1);
    cJSON_Delete(v);
    v = cJSON_Parse("[[2], \"back\", -1]");
    assert_true(sw_granularity_from_json(v, &g, why, sizeof why));
    assert_int_equal(g.kernel.pad_value, -1);
    cJSON_Delete(v);
    v = cJSON_Parse("null");
    assert_true(sw_granularity_from_json(v, &g, why, sizeof why));
    assert_int_equal(g.kind, SW_GRANULARITY_ELEMENT);
    cJSON_Delete(v);
    v = cJSON_Parse("\"per_filter\"");
    assert_false(sw_granularity_from_json(v, &g, why, sizeof why));
    assert_non_null(strstr(why, "per_filter"));
    cJSON_Delete(v);
    v = cJSON_Parse("[0, 2]");
    assert_false(sw_granularity_from_json(v, &g, why, sizeof why));
    cJSON_Delete(v);
}

/* ---- config lists --------------------------------------------------------------------- */

static bool resolved_has(const sw_config_resolved *r, const sw_model *m, const char *node,
                         const char *target) {
    int i = sw_model_find(m, node);
    for (int k = 0; k < r->n; k++)
        if (r->items[k].node == i && strcmp(r->items[k].target, target) == 0) return true;
    return false;
}

/* Selection: names ∪ regex (anchored at the start) ∩ types, minus the excludes. */
static void test_compress_config_selection_algebra(void **state) {
    (void)state;
    sw_model *m = tm_simple_model(6, 6);
    bool sel[32];
    cJSON *c = tm_json("[{\"op_types\": [\"Conv2d\"], \"op_names\": [\"conv1\", \"bn1\", \"fc1\"]},"
                       " {\"op_names_re\": [\"conv\"], \"exclude_op_names_re\": [\"conv[23]\"]},"
                       " {\"op_names_re\": [\"onv\"]},"
                       " {\"op_types\": [\"Conv2d\", \"Linear\"], \"exclude_op_names\": [\"fc2\"],"
                       "  \"exclude_op_types\": [\"Linear\"]}]");
    CHECK_OK(sw_config_select(m, cJSON_GetArrayItem(c, 0), 0, sel));
    for (int i = 0; i < m->n_nodes; i++)
        assert_int_equal(sel[i], strcmp(m->nodes[i].name, "conv1") == 0);
    CHECK_OK(sw_config_select(m, cJSON_GetArrayItem(c, 1), 1, sel));
    for (int i = 0; i < m->n_nodes; i++)
        assert_int_equal(sel[i], strcmp(m->nodes[i].name, "conv1") == 0);
    CHECK_OK(sw_config_select(m, cJSON_GetArrayItem(c, 2), 2, sel));
    for (int i = 0; i < m->n_nodes; i++) assert_false(sel[i]);
    CHECK_OK(sw_config_select(m, cJSON_GetArrayItem(c, 3), 3, sel));
    for (int i = 0; i < m->n_nodes; i++)
        assert_int_equal(sel[i], strncmp(m->nodes[i].name, "conv", 4) == 0);
    cJSON_Delete(c);
    sw_model_free(m);
}

/* Templates: a top-level sparse_ratio reaches the weight, not the bias, which aligns to the
 * weight's rows; target_settings add targets; "_output_" means "_output_0". */
static void test_compress_config_templates_and_shortcuts(void **state) {
    (void)state;
    sw_model *m = tm_simple_model(6, 6);
    cJSON *c = tm_json(
        "[{\"op_types\": [\"Conv2d\"], \"sparse_ratio\": 0.5, \"granularity\": \"out_channel\"},"
        " {\"op_names\": [\"bn1\"], \"target_names\": [\"_output_\"], \"target_settings\": "
        "  {\"_output_\": {\"align\": {\"module_name\": \"conv1\", \"target_name\": \"weight\","
        "   \"dims\": [0]}, \"granularity\": \"per_channel\"}}}]");
    sw_config_resolved r;
    sw_warnings w;
    sw_warnings_init(&w);
    CHECK_OK(sw_config_resolve(m, c, &sw_prune_config_mode, &w, &r));
    assert_int_equal(r.n, 7); /* 3 convs x (weight, bias) + bn1._output_0 */
    assert_true(resolved_has(&r, m, "conv2", "weight"));
    assert_true(resolved_has(&r, m, "conv2", "bias"));
    assert_true(resolved_has(&r, m, "bn1", "_output_0"));
    for (int k = 0; k < r.n; k++) {
        sw_prune_setting s;
        CHECK_OK(sw_prune_setting_from_json(r.items[k].setting, &s));
        if (strcmp(r.items[k].target, "weight") == 0) {
            assert_true(s.has_ratio);
            assert_float_equal(s.sparse_ratio, 0.5, 0);
            assert_int_equal(s.granularity.kind, SW_GRANULARITY_OUT_CHANNEL);
            assert_false(s.align.set);
        } else if (strcmp(r.items[k].target, "bias") == 0) {
            assert_false(s.has_ratio);
            assert_true(s.align.set);
            assert_string_equal(s.align.target, "weight");
            assert_int_equal(s.align.n_dims, 1);
            assert_int_equal(s.align.dims[0], 0);
        } else {
            assert_true(s.align.set);
            assert_string_equal(s.align.module, "conv1");
            assert_int_equal(s.granularity.kind, SW_GRANULARITY_PER_CHANNEL);
        }
    }
    assert_int_equal(sw_warnings_count(&w), 0);
    sw_config_resolved_deinit(&r);
    sw_warnings_deinit(&w);
    cJSON_Delete(c);
    sw_model_free(m);
}

/* The first entry configuring a (module, target) wins; later ones are dropped with a warning;
 * an entry that selects nothing is reported too. */
static void test_compress_config_first_wins_with_warning(void **state) {
    (void)state;
    sw_model *m = tm_simple_model(6, 6);
    cJSON *c = tm_json("[{\"op_names\": [\"conv1\"], \"sparse_ratio\": 0.25},"
                       " {\"op_types\": [\"Conv2d\"], \"sparse_ratio\": 0.75},"
                       " {\"op_types\": [\"BatchNorm1d\"], \"sparse_ratio\": 0.5}]");
    sw_config_resolved r;
    sw_warnings w;
    sw_warnings_init(&w);
    CHECK_OK(sw_config_resolve(m, c, &sw_prune_config_mode, &w, &r));
    for (int k = 0; k < r.n; k++) {
        sw_prune_setting s;
        CHECK_OK(sw_prune_setting_from_json(r.items[k].setting, &s));
        if (strcmp(r.items[k].target, "weight") != 0) continue;
        bool conv1 = r.items[k].node == sw_model_find(m, "conv1");
        assert_float_equal(s.sparse_ratio, (conv1 ? 0.25 : 0.75), 0);
        assert_int_equal(r.items[k].entry, conv1 ? 0 : 1);
    }
    assert_int_equal(sw_warnings_count(&w), 3); /* conv1.weight, conv1.bias, entry 2 */
    assert_non_null(strstr(sw_warnings_get(&w, 0), "config_list[1]: conv1.weight is already "
                                                   "configured by config_list[0]"));
    assert_non_null(strstr(sw_warnings_get(&w, 2), "config_list[2] selects no module"));
    sw_config_resolved_deinit(&r);
    sw_warnings_deinit(&w);
    cJSON_Delete(c);
    sw_model_free(m);
}

/* Resolves `json` and expects failure with `want` inside the message. */
static void expect_config_error(sw_model *m, const char *json, const char *want) {
    cJSON *c = tm_json(json);
    sw_config_resolved r;
    sw_status st = sw_config_resolve(m, c, &sw_prune_config_mode, NULL, &r);
    if (st != SW_ERR_CONFIG)
        fail_msg("%s: status %s, message \"%s\"", json, sw_status_str(st), sw_error_message());
    if (!strstr(sw_error_message(), want))
        fail_msg("%s:\n  message \"%s\"\n  lacks \"%s\"", json, sw_error_message(), want);
    assert_int_equal(r.n, 0);
    cJSON_Delete(c);
}

/* Config errors name the entry and the key, and say what is wrong. */
static void test_compress_config_errors_name_entry_and_key(void **state) {
    (void)state;
    sw_model *m = tm_simple_model(6, 6);
    expect_config_error(m,
                        "[{\"op_types\": [\"Conv2d\"]}, {\"op_types\": [\"Linear\"]},"
                        " {\"op_names\": [\"fc1\"], \"sparse_ratio\": 1.5}]",
                        "config_list[2].sparse_ratio: 1.5 is not in [0, 1)");
    expect_config_error(m, "[{\"op_types\": [\"Conv2d\"], \"sparsity_ratio\": 0.5}]",
                        "config_list[0]: unknown key \"sparsity_ratio\" (pruning keys: "
                        "sparse_ratio,");
    expect_config_error(m, "[{\"op_types\": [\"Conv2d\"], \"sparsity\": 0.5}]",
                        "config_list[0].sparsity: an NNI 2.x key; NNI 3.0 spells it "
                        "\"sparse_ratio\"");
    expect_config_error(m, "[{\"op_names\": [\"conv9\"], \"sparse_ratio\": 0.5}]",
                        "config_list[0].op_names: \"conv9\" is not a module of the model "
                        "(modules: conv1, bn1,");
    expect_config_error(m,
                        "[{\"op_types\": [\"Conv2d\"], \"sparse_ratio\": 0.5, "
                        "\"sparse_threshold\": 0.1}]",
                        "config_list[0].sparse_threshold: contradicts sparse_ratio");
    expect_config_error(m,
                        "[{\"op_types\": [\"Conv2d\"], \"target_settings\": {\"weight\": "
                        "{\"sparse_ratio\": 0.5, \"sparse_threshold\": 0.1}}}]",
                        "config_list[0]: conv1.weight: sparse_threshold: contradicts");
    expect_config_error(m, "[{\"op_types\": [\"Conv2d\"], \"max_sparse_ratio\": 0}]",
                        "config_list[0].max_sparse_ratio: 0 is not in (0, 1]");
    expect_config_error(m,
                        "[{\"op_types\": [\"Conv2d\"], \"min_sparse_ratio\": 0.6, "
                        "\"max_sparse_ratio\": 0.5}]",
                        "config_list[0].min_sparse_ratio: 0.6 is above max_sparse_ratio 0.5");
    expect_config_error(
        m, "[{\"sparse_ratio\": 0.5}]",
        "config_list[0]: selects no module: give op_types, op_names or op_names_re");
    expect_config_error(m, "[{\"op_types\": [\"Conv1d\"], \"sparse_ratio\": 0.5}]",
                        "config_list[0].op_types: \"Conv1d\" is not a layer type");
    expect_config_error(m, "[{\"op_types\": [\"ReLU\"], \"sparse_ratio\": 0.5}]",
                        "config_list[0]: \"relu\" is a ReLU, which has no pruning targets");
    expect_config_error(m,
                        "[{\"op_names\": [\"conv1\"], \"target_names\": [\"wieght\"], "
                        "\"sparse_ratio\": 0.5}]",
                        "config_list[0].target_names: \"conv1\" (Conv2d) has no target "
                        "\"wieght\" (targets: weight, bias, _input_0, _output_0)");
    expect_config_error(m, "[{\"op_types\": [\"Conv2d\"], \"granularity\": \"per_filter\"}]",
                        "config_list[0].granularity: \"per_filter\" is not one of");
    expect_config_error(m, "[{\"op_names_re\": [\"conv(\"]}]",
                        "config_list[0].op_names_re: \"conv(\" is not a POSIX extended");
    expect_config_error(m, "[{\"op_types\": \"Conv2d\"}]",
                        "config_list[0].op_types: expected a list of strings");
    cJSON *bad = NULL;
    assert_int_equal(sw_config_list_parse("[{\"op_types\": [\"Conv2d\"],}]", &bad), SW_ERR_CONFIG);
    assert_non_null(strstr(sw_error_message(), "not valid JSON"));
    assert_int_equal(sw_config_list_parse("{\"op_types\": []}", &bad), SW_ERR_CONFIG);
    sw_model_free(m);
}

/* ---- wrappers and transforms -------------------------------------------------------------- */

/* A model without transforms has no hooks: it runs the bare layers. */
static void test_compress_wrapper_no_transforms_no_hooks(void **state) {
    (void)state;
    sw_model *m = tm_simple_model(6, 6);
    sw_wrapper_set *ws = NULL;
    CHECK_OK(sw_wrapper_set_new(m, &ws));
    for (int i = 0; i < m->n_nodes; i++) assert_null(m->nodes[i].hooks);
    sw_wrapper *w = sw_wrapper_set_get(ws, sw_model_find(m, "conv1"));
    assert_non_null(sw_wrapper_target(w, "weight"));
    assert_non_null(sw_wrapper_target(w, "bias"));
    assert_non_null(sw_wrapper_target(w, "_input_0"));
    assert_non_null(sw_wrapper_target(w, "_output_0"));
    assert_null(sw_wrapper_target(w, "running_mean")); /* buffers are not targets */
    sw_tensor mask;
    CHECK_OK(sw_tensor_init(&mask, &sw_wrapper_target(w, "weight")->shape));
    sw_tensor_fill(&mask, 1.0f);
    sw_transform *tf = NULL;
    CHECK_OK(sw_mask_attach(ws, sw_model_find(m, "conv1"), "weight", &mask, SW_APPLY_MUL, m, &tf));
    for (int i = 0; i < m->n_nodes; i++)
        assert_true((m->nodes[i].hooks != NULL) == (strcmp(m->nodes[i].name, "conv1") == 0));
    /* A second set on a wrapped model is refused. */
    sw_wrapper_set *other = NULL;
    assert_int_equal(sw_wrapper_set_new(m, &other), SW_ERR_ARG);
    sw_wrapper_set_detach(ws, tf);
    for (int i = 0; i < m->n_nodes; i++) assert_null(m->nodes[i].hooks);
    sw_tensor_deinit(&mask);
    sw_wrapper_set_release(ws);
    sw_model_free(m);
}

/* A weight mask gives the output of the model with masked weights, and the raw weight's
 * gradient is the masked gradient of the effective weight. */
static void test_compress_wrapper_weight_mask_forward_backward(void **state) {
    (void)state;
    sw_model *m = tm_simple_model(6, 6);
    tm_fill_params(m, 11);
    sw_model *ref = NULL;
    CHECK_OK(sw_model_clone(m, &ref));
    sw_wrapper_set *ws = NULL;
    CHECK_OK(sw_wrapper_set_new(m, &ws));
    ws->zero_downstream = false;
    sw_tensor *w = tm_param(m, "fc1", "weight");
    sw_tensor mask;
    CHECK_OK(sw_tensor_init(&mask, &w->shape));
    sw_test_fill_uniform(&mask, 3, 0.0f, 1.0f);
    for (size_t i = 0; i < mask.numel; i++) mask.data[i] = mask.data[i] < 0.4f ? 0.0f : 1.0f;
    CHECK_OK(sw_mask_attach(ws, sw_model_find(m, "fc1"), "weight", &mask, SW_APPLY_MUL, m, NULL));
    sw_tensor *wr = tm_param(ref, "fc1", "weight");
    for (size_t i = 0; i < wr->numel; i++) wr->data[i] *= mask.data[i];
    sw_shape xs = sw_shape_4d(3, 1, 6, 6);
    sw_tensor *x = NULL;
    CHECK_OK(sw_tensor_new(&xs, &x));
    sw_test_fill_uniform(x, 5, -1.0f, 1.0f);
    sw_model_set_training(m, true);
    sw_model_set_training(ref, true);
    const sw_tensor *y = NULL, *yr = NULL;
    CHECK_OK(sw_model_forward(m, x, &y));
    CHECK_OK(sw_model_forward(ref, x, &yr));
    sw_test_assert_close(y->data, yr->data, y->numel, 1e-6f, 1e-5f, "masked output");
    sw_tensor *dy = NULL;
    CHECK_OK(sw_tensor_new(&y->shape, &dy));
    sw_test_fill_uniform(dy, 9, -1.0f, 1.0f);
    sw_model_zero_grad(m);
    sw_model_zero_grad(ref);
    CHECK_OK(sw_model_backward(m, dy));
    CHECK_OK(sw_model_backward(ref, dy));
    int fc1 = sw_model_find(m, "fc1");
    const sw_tensor *g = &m->nodes[fc1].layer->params[0].grad;
    const sw_tensor *gr = &ref->nodes[fc1].layer->params[0].grad;
    for (size_t i = 0; i < g->numel; i++) {
        if (mask.data[i] == 0.0f)
            assert_float_equal(g->data[i], 0.0f, 0);
        else
            assert_float_equal(g->data[i], gr->data[i], 1e-5 + 1e-4 * fabs(gr->data[i]));
    }
    /* Every other gradient agrees too (conv1 sees fc1's masked weights downstream). */
    sw_test_assert_close(m->grad_data, ref->grad_data, 0, 1e-5f, 1e-4f, "grads");
    for (size_t i = 0; i < m->n_param_floats; i++)
        if (!(i >= (size_t)(g->data - m->grad_data) &&
              i < (size_t)(g->data - m->grad_data) + g->numel))
            assert_float_equal(m->grad_data[i], ref->grad_data[i],
                               1e-5 + 1e-4 * fabs(ref->grad_data[i]));
    sw_tensor_free(dy);
    sw_tensor_free(x);
    sw_tensor_deinit(&mask);
    sw_wrapper_set_release(ws);
    sw_model_free(ref);
    sw_model_free(m);
}

/* Test transforms: "add1" adds 1 (quantize stage), records its order of calls. */
static int call_log[8], n_calls;
static sw_status add1_forward(sw_transform *t, const sw_transform_call *c, const sw_tensor *x,
                              sw_tensor *y) {
    (void)c;
    call_log[n_calls++] = t->stage;
    for (size_t i = 0; i < x->numel; i++) y->data[i] = x->data[i] + 1.0f;
    return SW_OK;
}
static const sw_transform_ops add1_ops = {.name = "add1", .forward = add1_forward};

static sw_model *tiny_linear(float w0, float w1) {
    sw_model *m = NULL;
    sw_shape in = sw_shape_1d(2);
    CHECK_OK(sw_model_new("tiny", &in, &m));
    sw_layer_hparams hp = tm_linear(2, 1);
    hp.bias = false;
    tm_add(m, "fc", SW_LAYER_LINEAR, &hp, "input", NULL);
    CHECK_OK(sw_model_finalize(m));
    tm_param(m, "fc", "weight")->data[0] = w0;
    tm_param(m, "fc", "weight")->data[1] = w1;
    return m;
}

/* Transforms run by stage, not by attach order: fake-quant before the mask (NNI). */
static void test_compress_wrapper_stage_order(void **state) {
    (void)state;
    sw_model *m = tiny_linear(1.0f, 2.0f);
    sw_wrapper_set *ws = NULL;
    CHECK_OK(sw_wrapper_set_new(m, &ws));
    ws->zero_downstream = false;
    float md[2] = {0.0f, 1.0f};
    sw_shape ms = sw_shape_2d(1, 2);
    sw_tensor mask = sw_tensor_view(md, &ms);
    CHECK_OK(sw_mask_attach(ws, 0, "weight", &mask, SW_APPLY_MUL, m, NULL));
    CHECK_OK(sw_wrapper_set_attach(ws, 0, "weight", &add1_ops, SW_STAGE_QUANTIZE, m, NULL, NULL));
    sw_target *t = sw_wrapper_target(sw_wrapper_set_get(ws, 0), "weight");
    assert_int_equal(t->n_tf, 2);
    assert_int_equal(t->tf[0]->stage, SW_STAGE_QUANTIZE);
    assert_int_equal(t->tf[1]->stage, SW_STAGE_PRUNE);
    float xd[2] = {1.0f, 1.0f};
    sw_shape xs = sw_shape_2d(1, 2);
    sw_tensor x = sw_tensor_view(xd, &xs);
    n_calls = 0;
    sw_tensor *y = tm_forward(m, &x);
    /* mask * (W + 1) = [0, 3] -> 3 (the other order would give 4) */
    assert_float_equal(y->data[0], 3.0f, 0);
    assert_int_equal(n_calls, 1);
    /* The raw weight is untouched. */
    assert_float_equal(tm_param(m, "fc", "weight")->data[0], 1.0f, 0);
    sw_tensor_free(y);
    sw_wrapper_set_release(ws);
    assert_null(m->nodes[0].hooks);
    sw_model_free(m);
}

/* Input transforms work on a copy (other consumers see the producer's output); output
 * transforms change the node's output in place. */
static void test_compress_wrapper_input_copy_output_in_place(void **state) {
    (void)state;
    sw_model *m = tm_simple_model(6, 6);
    tm_fill_params(m, 21);
    sw_shape xs = sw_shape_4d(2, 1, 6, 6);
    sw_tensor *x = NULL;
    CHECK_OK(sw_tensor_new(&xs, &x));
    sw_test_fill_uniform(x, 2, -1, 1);
    sw_tensor *y0 = tm_forward(m, x);
    int bn1 = sw_model_find(m, "bn1"), conv3 = sw_model_find(m, "conv3");
    sw_tensor *bn1_out = NULL, *conv3_out = NULL;
    CHECK_OK(sw_tensor_clone(&m->outs[bn1], &bn1_out));
    CHECK_OK(sw_tensor_clone(&m->outs[conv3], &conv3_out));
    sw_wrapper_set *ws = NULL;
    CHECK_OK(sw_wrapper_set_new(m, &ws));
    ws->zero_downstream = false;
    /* Zero input channel 0 of conv2 only. */
    float cm[16];
    for (int c = 0; c < 16; c++) cm[c] = c == 0 ? 0.0f : 1.0f;
    sw_shape cms = sw_shape_4d(1, 16, 1, 1);
    sw_tensor in_mask = sw_tensor_view(cm, &cms);
    CHECK_OK(
        sw_mask_attach(ws, sw_model_find(m, "conv2"), "_input_0", &in_mask, SW_APPLY_MUL, m, NULL));
    float rm[32];
    for (int c = 0; c < 32; c++) rm[c] = c % 2 ? 1.0f : 0.0f;
    sw_shape rms = sw_shape_4d(1, 32, 1, 1);
    sw_tensor out_mask = sw_tensor_view(rm, &rms);
    CHECK_OK(sw_mask_attach(ws, sw_model_find(m, "relu"), "_output_0", &out_mask, SW_APPLY_MUL, m,
                            NULL));
    sw_tensor *y1 = tm_forward(m, x);
    assert_true(sw_tensor_max_abs_diff(y0, y1) > 1e-4f);
    assert_float_equal(sw_tensor_max_abs_diff(&m->outs[bn1], bn1_out), 0.0f, 0);
    assert_float_equal(sw_tensor_max_abs_diff(&m->outs[conv3], conv3_out), 0.0f, 0);
    const sw_tensor *r = &m->outs[sw_model_find(m, "relu")];
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 32; c += 2)
            for (int k = 0; k < 4; k++) assert_float_equal(r->data[(n * 32 + c) * 4 + k], 0.0f, 0);
    sw_tensor_free(y0);
    sw_tensor_free(y1);
    sw_tensor_free(bn1_out);
    sw_tensor_free(conv3_out);
    sw_tensor_free(x);
    sw_wrapper_set_release(ws);
    sw_model_free(m);
}

/* Gradients through weight, input and output masks agree with finite differences of the
 * wrapped model's loss. */
static void test_compress_wrapper_chain_gradcheck(void **state) {
    (void)state;
    sw_model *m = NULL;
    sw_shape in = sw_shape_1d(4);
    CHECK_OK(sw_model_new("mlp", &in, &m));
    sw_layer_hparams hp = tm_linear(4, 3);
    tm_add(m, "fc1", SW_LAYER_LINEAR, &hp, "input", NULL);
    hp = sw_layer_hparams_default(SW_LAYER_RELU);
    tm_add(m, "act", SW_LAYER_RELU, &hp, "fc1", NULL);
    hp = tm_linear(3, 2);
    tm_add(m, "fc2", SW_LAYER_LINEAR, &hp, "act", NULL);
    CHECK_OK(sw_model_finalize(m));
    tm_fill_params(m, 31);
    sw_wrapper_set *ws = NULL;
    CHECK_OK(sw_wrapper_set_new(m, &ws));
    ws->zero_downstream = false;
    float wm[12] = {1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0};
    sw_shape wms = sw_shape_2d(3, 4);
    sw_tensor w_mask = sw_tensor_view(wm, &wms);
    float om[3] = {1, 1, 0}, im[3] = {0, 1, 1};
    sw_shape vs = sw_shape_2d(1, 3);
    sw_tensor o_mask = sw_tensor_view(om, &vs), i_mask = sw_tensor_view(im, &vs);
    CHECK_OK(sw_mask_attach(ws, 0, "weight", &w_mask, SW_APPLY_MUL, m, NULL));
    CHECK_OK(sw_mask_attach(ws, 0, "_output_0", &o_mask, SW_APPLY_MUL, m, NULL));
    CHECK_OK(sw_mask_attach(ws, 2, "_input_0", &i_mask, SW_APPLY_MUL, m, NULL));
    sw_shape xs = sw_shape_2d(5, 4);
    sw_tensor *x = NULL, *dy = NULL;
    CHECK_OK(sw_tensor_new(&xs, &x));
    sw_test_fill_uniform(x, 8, -1, 1);
    sw_model_set_training(m, true);
    const sw_tensor *y = NULL;
    CHECK_OK(sw_model_forward(m, x, &y));
    CHECK_OK(sw_tensor_new(&y->shape, &dy));
    sw_test_fill_uniform(dy, 4, -1, 1);
    sw_model_zero_grad(m);
    CHECK_OK(sw_model_backward(m, dy));
    float *grads = malloc(m->n_param_floats * sizeof *grads);
    memcpy(grads, m->grad_data, m->n_param_floats * sizeof *grads);
    /* loss = sum(y * dy); central differences in double over every raw parameter. */
    for (size_t i = 0; i < m->n_param_floats; i++) {
        float keep = m->param_data[i];
        double l[2];
        for (int s = 0; s < 2; s++) {
            m->param_data[i] = keep + (s ? -1e-2f : 1e-2f);
            CHECK_OK(sw_model_forward(m, x, &y));
            l[s] = 0;
            for (size_t k = 0; k < y->numel; k++) l[s] += (double)y->data[k] * dy->data[k];
        }
        m->param_data[i] = keep;
        double fd = (l[0] - l[1]) / 2e-2;
        assert_float_equal(grads[i], fd, 2e-3 + 1e-2 * fabs(fd));
    }
    /* Masked weights and the weights feeding the masked output/input get nothing. */
    assert_float_equal(grads[1], 0, 0);
    assert_float_equal(grads[6], 0, 0);
    for (int k = 8; k < 12; k++) assert_float_equal(grads[k], 0, 0); /* row 2: output masked */
    free(grads);
    sw_tensor_free(x);
    sw_tensor_free(dy);
    sw_wrapper_set_release(ws);
    sw_model_free(m);
}

/* ---- dead channels, unwrap ------------------------------------------------------------- */

/* A conv filter whose weights are all masked (bias kept) is zero everywhere downstream: the
 * masked model equals the model with the filter, its bias and the BatchNorm's scale and shift
 * zeroed. */
static void test_compress_dead_channel_zero_downstream(void **state) {
    (void)state;
    sw_model *m = tm_simple_model(6, 6);
    tm_fill_params(m, 41);
    sw_model *ref = NULL;
    CHECK_OK(sw_model_clone(m, &ref));
    sw_wrapper_set *ws = NULL;
    CHECK_OK(sw_wrapper_set_new(m, &ws));
    int conv1 = sw_model_find(m, "conv1"), bn1 = sw_model_find(m, "bn1");
    sw_tensor mask;
    CHECK_OK(sw_tensor_init(&mask, &tm_param(m, "conv1", "weight")->shape));
    sw_tensor_fill(&mask, 1.0f);
    for (int k = 0; k < 9; k++) mask.data[3 * 9 + k] = 0.0f; /* filter 3 */
    CHECK_OK(sw_mask_attach(ws, conv1, "weight", &mask, SW_APPLY_MUL, m, NULL));
    CHECK_OK(sw_dead_channels_refresh(ws));
    int n = 0;
    const float *alive = sw_dead_channels_alive(ws, bn1, &n);
    assert_int_equal(n, 16);
    for (int c = 0; c < 16; c++) assert_float_equal(alive[c], (c == 3 ? 0.0f : 1.0f), 0);
    /* Derived masks: conv1's bias (it survives) and bn1's scale and shift; none elsewhere. */
    assert_int_equal(sw_wrapper_target(sw_wrapper_set_get(ws, conv1), "bias")->n_tf, 1);
    assert_int_equal(sw_wrapper_target(sw_wrapper_set_get(ws, bn1), "weight")->n_tf, 1);
    assert_int_equal(sw_wrapper_target(sw_wrapper_set_get(ws, bn1), "bias")->n_tf, 1);
    assert_int_equal(sw_wrapper_set_transform_count(ws), 4);
    tm_param(ref, "conv1", "bias")->data[3] = 0.0f;
    for (int k = 0; k < 9; k++) tm_param(ref, "conv1", "weight")->data[3 * 9 + k] = 0.0f;
    tm_param(ref, "bn1", "weight")->data[3] = 0.0f;
    tm_param(ref, "bn1", "bias")->data[3] = 0.0f;
    sw_shape xs = sw_shape_4d(2, 1, 6, 6);
    sw_tensor *x = NULL;
    CHECK_OK(sw_tensor_new(&xs, &x));
    sw_test_fill_uniform(x, 6, -1, 1);
    sw_tensor *y = tm_forward(m, x), *yr = tm_forward(ref, x);
    sw_test_assert_close(y->data, yr->data, y->numel, 1e-6f, 1e-5f, "masked vs zeroed");
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 16; k++)
            assert_float_equal(m->outs[bn1].data[(i * 16 + 3) * 16 + k], 0.0f, 0);
    /* Off: the derived masks go away and the shift leaks again. */
    CHECK_OK(sw_wrapper_set_zero_downstream(ws, false));
    assert_int_equal(sw_wrapper_set_transform_count(ws), 1);
    sw_tensor *y2 = tm_forward(m, x);
    assert_true(sw_tensor_max_abs_diff(y2, yr) > 1e-4f);
    sw_tensor_free(y);
    sw_tensor_free(yr);
    sw_tensor_free(y2);
    sw_tensor_free(x);
    sw_tensor_deinit(&mask);
    sw_wrapper_set_release(ws);
    sw_model_free(ref);
    sw_model_free(m);
}

/* In fmnist_cnn (pools, Flatten into fc1) filters pruned by L1Norm in both convs give the
 * output of the model whose pruned filters, biases and BatchNorm scales and shifts are zero. */
static void test_compress_dead_channel_zoo_cnn_matches_zeroed(void **state) {
    (void)state;
    sw_model *m = NULL, *ref = NULL;
    CHECK_OK(sw_zoo_build("fmnist_cnn", 5, &m));
    tm_fill_params(m, 44);
    CHECK_OK(sw_model_clone(m, &ref));
    sw_wrapper_set *ws = NULL;
    CHECK_OK(sw_wrapper_set_new(m, &ws));
    cJSON *c = tm_json("[{\"op_names\": [\"conv1\", \"conv2\"], \"sparse_ratio\": 0.25,"
                       " \"target_names\": [\"weight\"]}]");
    sw_compressor *p = NULL;
    CHECK_OK(sw_pruner_l1norm_new(ws, c, NULL, &p));
    CHECK_OK(sw_compressor_compress(p, -1, -1));
    const char *convs[2] = {"conv1", "conv2"}, *bns[2] = {"bn1", "bn2"};
    for (int k = 0; k < 2; k++) {
        const sw_tensor *mask = &sw_pruner_find(sw_pruner_of(p), convs[k], "weight")->mask;
        int o_n = mask->shape.dims[0];
        size_t per = mask->numel / (size_t)o_n;
        int dead = 0;
        for (int o = 0; o < o_n; o++) {
            if (mask->data[(size_t)o * per] != 0.0f) continue;
            dead++;
            memset(tm_param(ref, convs[k], "weight")->data + (size_t)o * per, 0,
                   per * sizeof(float));
            tm_param(ref, convs[k], "bias")->data[o] = 0.0f;
            tm_param(ref, bns[k], "weight")->data[o] = 0.0f;
            tm_param(ref, bns[k], "bias")->data[o] = 0.0f;
        }
        assert_int_equal(dead, o_n / 4);
    }
    /* The dead channels stay dead through ReLU and MaxPool into fc1's input features. */
    int n = 0;
    const float *alive = sw_dead_channels_alive(ws, sw_model_find(m, "flatten"), &n);
    assert_int_equal(n, 3136);
    int dead_features = 0;
    for (int f = 0; f < n; f++) dead_features += alive[f] == 0.0f;
    assert_int_equal(dead_features, 16 * 49);
    sw_shape xs = sw_shape_4d(3, 1, 28, 28);
    sw_tensor *x = NULL;
    CHECK_OK(sw_tensor_new(&xs, &x));
    sw_test_fill_uniform(x, 7, -1, 1);
    sw_tensor *y = tm_forward(m, x), *yr = tm_forward(ref, x);
    sw_test_assert_close(y->data, yr->data, y->numel, 1e-5f, 1e-4f, "cnn masked vs zeroed");
    sw_tensor_free(y);
    sw_tensor_free(yr);
    sw_tensor_free(x);
    cJSON_Delete(c);
    sw_compressor_free(p);
    sw_wrapper_set_release(ws);
    sw_model_free(ref);
    sw_model_free(m);
}

/* At an Add a channel is dead only when dead in every input; then it stays dead through the
 * ReLU and becomes dead features after Flatten. */
static void test_compress_dead_channel_add_needs_all_inputs(void **state) {
    (void)state;
    sw_model *m = tm_simple_model(6, 6);
    sw_wrapper_set *ws = NULL;
    CHECK_OK(sw_wrapper_set_new(m, &ws));
    int conv2 = sw_model_find(m, "conv2"), conv3 = sw_model_find(m, "conv3");
    sw_tensor m2, m3;
    CHECK_OK(sw_tensor_init(&m2, &tm_param(m, "conv2", "weight")->shape));
    CHECK_OK(sw_tensor_init(&m3, &tm_param(m, "conv3", "weight")->shape));
    sw_tensor_fill(&m2, 1.0f);
    sw_tensor_fill(&m3, 1.0f);
    size_t row2 = m2.numel / 32, row3 = m3.numel / 32;
    for (size_t k = 0; k < row2; k++) m2.data[5 * row2 + k] = 0.0f;
    for (size_t k = 0; k < row3; k++) m3.data[7 * row3 + k] = 0.0f;
    CHECK_OK(sw_mask_attach(ws, conv2, "weight", &m2, SW_APPLY_MUL, m, NULL));
    CHECK_OK(sw_dead_channels_refresh(ws));
    int n = 0;
    const float *a = sw_dead_channels_alive(ws, sw_model_find(m, "bn2"), &n);
    assert_float_equal(a[5], 0.0f, 0);
    a = sw_dead_channels_alive(ws, sw_model_find(m, "add"), &n);
    for (int c = 0; c < 32; c++) assert_float_equal(a[c], 1.0f, 0);
    for (size_t k = 0; k < row3; k++) m3.data[5 * row3 + k] = 0.0f;
    CHECK_OK(sw_mask_attach(ws, conv3, "weight", &m3, SW_APPLY_MUL, m, NULL));
    CHECK_OK(sw_dead_channels_refresh(ws));
    a = sw_dead_channels_alive(ws, sw_model_find(m, "relu"), &n);
    for (int c = 0; c < 32; c++) assert_float_equal(a[c], (c == 5 ? 0.0f : 1.0f), 0);
    a = sw_dead_channels_alive(ws, sw_model_find(m, "flatten"), &n);
    assert_int_equal(n, 128);
    for (int f = 0; f < 128; f++) assert_float_equal(a[f], (f / 4 == 5 ? 0.0f : 1.0f), 0);
    /* fc1 consumes the channels: its own output is alive. */
    a = sw_dead_channels_alive(ws, sw_model_find(m, "fc1"), &n);
    for (int f = 0; f < 100; f++) assert_float_equal(a[f], 1.0f, 0);
    sw_wrapper_set_release(ws);
    sw_tensor_deinit(&m2);
    sw_tensor_deinit(&m3);
    sw_model_free(m);
}

/* Unwrap bakes masks (derived ones included) into the weights: the plain model computes what
 * the wrapped one did, with no hooks left. */
static void test_compress_unwrap_bakes_masks(void **state) {
    (void)state;
    sw_model *m = tm_simple_model(6, 6);
    tm_fill_params(m, 51);
    sw_wrapper_set *ws = NULL;
    CHECK_OK(sw_wrapper_set_new(m, &ws));
    sw_compressor *p = NULL;
    cJSON *c = tm_json("[{\"op_types\": [\"Conv2d\", \"Linear\"], \"exclude_op_names\": [\"fc2\"],"
                       " \"sparse_ratio\": 0.5}]");
    CHECK_OK(sw_pruner_l1norm_new(ws, c, NULL, &p));
    sw_wrapper_set_release(ws); /* the pruner holds its own reference */
    CHECK_OK(sw_compressor_compress(p, -1, -1));
    sw_shape xs = sw_shape_4d(3, 1, 6, 6);
    sw_tensor *x = NULL;
    CHECK_OK(sw_tensor_new(&xs, &x));
    sw_test_fill_uniform(x, 12, -1, 1);
    sw_tensor *y = tm_forward(m, x);
    assert_true(sw_wrapper_set_transform_count(p->ws) > 8); /* 8 configured + derived */
    CHECK_OK(sw_compressor_unwrap_model(p));
    assert_true(sw_compressor_is_detached(p));
    for (int i = 0; i < sw_pruner_of(p)->n_targets; i++)
        assert_null(sw_pruner_of(p)->targets[i].tf);
    for (int i = 0; i < m->n_nodes; i++) assert_null(m->nodes[i].hooks);
    sw_tensor *y2 = tm_forward(m, x);
    sw_test_assert_close(y2->data, y->data, y->numel, 1e-6f, 1e-5f, "unwrapped vs wrapped");
    /* Half of conv1's filters are zero in the weights themselves, with their BN scale/shift. */
    int zero_rows = 0;
    const sw_tensor *w = tm_param(m, "conv1", "weight");
    for (int o = 0; o < 16; o++) {
        bool z = true;
        for (int k = 0; k < 9; k++) z = z && w->data[o * 9 + k] == 0.0f;
        if (z) {
            zero_rows++;
            assert_float_equal(tm_param(m, "conv1", "bias")->data[o], 0.0f, 0);
            assert_float_equal(tm_param(m, "bn1", "weight")->data[o], 0.0f, 0);
            assert_float_equal(tm_param(m, "bn1", "bias")->data[o], 0.0f, 0);
        }
    }
    assert_int_equal(zero_rows, 8);
    assert_int_equal(sw_compressor_compress(p, -1, -1), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "unwrapped"));
    sw_tensor_free(y);
    sw_tensor_free(y2);
    sw_tensor_free(x);
    cJSON_Delete(c);
    sw_compressor_free(p);
    sw_model_free(m);
}

/* A mask that no weight can express (element-wise on a ReLU output) is dropped by unwrap with
 * a warning the caller can read. */
static void test_compress_unwrap_warns_unbakeable(void **state) {
    (void)state;
    sw_model *m = tm_simple_model(6, 6);
    sw_wrapper_set *ws = NULL;
    CHECK_OK(sw_wrapper_set_new(m, &ws));
    int relu = sw_model_find(m, "relu");
    sw_shape ms = sw_shape_4d(1, 32, 2, 2);
    sw_tensor mask;
    CHECK_OK(sw_tensor_init(&mask, &ms));
    sw_tensor_fill(&mask, 1.0f);
    mask.data[1] = 0.0f;
    CHECK_OK(sw_mask_attach(ws, relu, "_output_0", &mask, SW_APPLY_MUL, m, NULL));
    CHECK_OK(sw_wrapper_set_unwrap(ws));
    assert_int_equal(sw_warnings_count(&ws->warnings), 1);
    assert_non_null(strstr(sw_warnings_get(&ws->warnings, 0),
                           "relu._output_0 (ReLU) cannot be expressed in the weights"));
    assert_null(m->nodes[relu].hooks);
    sw_tensor_deinit(&mask);
    sw_wrapper_set_release(ws);
    sw_model_free(m);
}

/* ---- masks files ------------------------------------------------------------------------ */

/* Masks saved to a file load back equal, and re-applied to a fresh model give the same
 * masked model. */
static void test_compress_masks_file_roundtrip(void **state) {
    (void)state;
    sw_model *m = tm_simple_model(6, 6);
    tm_fill_params(m, 61);
    sw_model *fresh = NULL;
    CHECK_OK(sw_model_clone(m, &fresh));
    sw_wrapper_set *ws = NULL;
    CHECK_OK(sw_wrapper_set_new(m, &ws));
    sw_compressor *p = NULL;
    cJSON *c = tm_json("[{\"op_types\": [\"Conv2d\"], \"sparse_ratio\": 0.5},"
                       " {\"op_names\": [\"fc1\"], \"sparse_ratio\": 0.3, \"granularity\": null}]");
    CHECK_OK(sw_pruner_level_new(ws, c, NULL, &p));
    CHECK_OK(sw_compressor_compress(p, -1, -1));
    char path[512];
    snprintf(path, sizeof path, "%s/masks.safetensors", sw_test_tmpdir());
    CHECK_OK(sw_compressor_export(p, path));
    sw_masks a, b;
    CHECK_OK(sw_pruner_get_masks(p, &a));
    CHECK_OK(sw_masks_load(path, &b));
    assert_int_equal(a.n, 8);
    assert_int_equal(b.n, a.n);
    for (int i = 0; i < a.n; i++) {
        const sw_tensor *t = sw_masks_find(&b, a.items[i].module, a.items[i].target);
        assert_non_null(t);
        assert_true(sw_shape_equal(&t->shape, &a.items[i].mask.shape));
        assert_float_equal(sw_tensor_max_abs_diff(t, &a.items[i].mask), 0.0f, 0);
    }
    assert_float_equal(sw_mask_sparsity(sw_masks_find(&b, "fc1", "weight")), 0.3, 1e-3);
    sw_safetensors *st = NULL;
    CHECK_OK(sw_safetensors_read_file(path, &st));
    assert_string_equal(sw_safetensors_meta(st, "format"), "shrinkwrap-masks");
    assert_string_equal(sw_safetensors_meta(st, "pruner"), "LevelPruner");
    assert_non_null(sw_safetensors_find(st, "conv2.weight"));
    sw_safetensors_free(st);
    /* Re-apply to a fresh copy of the weights. */
    sw_wrapper_set *ws2 = NULL;
    CHECK_OK(sw_wrapper_set_new(fresh, &ws2));
    sw_compressor *fixed = NULL;
    CHECK_OK(sw_pruner_masks_new(ws2, &b, &fixed));
    sw_shape xs = sw_shape_4d(2, 1, 6, 6);
    sw_tensor *x = NULL;
    CHECK_OK(sw_tensor_new(&xs, &x));
    sw_test_fill_uniform(x, 13, -1, 1);
    sw_tensor *y = tm_forward(m, x), *y2 = tm_forward(fresh, x);
    assert_float_equal(sw_tensor_max_abs_diff(y, y2), 0.0f, 0);
    /* Bad shapes and unknown modules are refused. */
    sw_masks bad;
    sw_masks_init(&bad);
    sw_shape s3 = sw_shape_1d(3);
    sw_tensor t3;
    CHECK_OK(sw_tensor_init(&t3, &s3));
    CHECK_OK(sw_masks_add(&bad, "conv9", "weight", &t3));
    sw_compressor *no = NULL;
    sw_wrapper_set *ws3 = NULL;
    sw_model *m3 = tm_simple_model(6, 6);
    CHECK_OK(sw_wrapper_set_new(m3, &ws3));
    assert_int_equal(sw_pruner_masks_new(ws3, &bad, &no), SW_ERR_NOT_FOUND);
    assert_non_null(strstr(sw_error_message(), "\"conv9\" is not a module"));
    sw_masks_deinit(&bad);
    sw_masks_init(&bad);
    CHECK_OK(sw_masks_add(&bad, "conv1", "bias", &t3));
    assert_int_equal(sw_pruner_masks_new(ws3, &bad, &no), SW_ERR_SHAPE);
    sw_masks_deinit(&bad);
    sw_tensor_deinit(&t3);
    sw_wrapper_set_release(ws3);
    sw_model_free(m3);
    sw_tensor_free(y);
    sw_tensor_free(y2);
    sw_tensor_free(x);
    sw_masks_deinit(&a);
    sw_masks_deinit(&b);
    cJSON_Delete(c);
    sw_compressor_free(fixed);
    sw_wrapper_set_release(ws2);
    sw_compressor_free(p);
    sw_wrapper_set_release(ws);
    sw_model_free(fresh);
    sw_model_free(m);
}

/* ---- dependency groups ----------------------------------------------------------------- */

/* SimpleTorchModel: conv2 and conv3 meet at the Add (one group); conv2's 4 groups ask conv1
 * and conv2 for internal_metric_block 4. */
static void test_compress_dependency_groups_simple_model(void **state) {
    (void)state;
    sw_model *m = tm_simple_model(6, 6);
    sw_dependency_groups g;
    CHECK_OK(sw_compress_auto_dependency_groups(m, &g));
    int c1 = sw_model_find(m, "conv1"), c2 = sw_model_find(m, "conv2"),
        c3 = sw_model_find(m, "conv3"), f1 = sw_model_find(m, "fc1");
    assert_int_equal(g.n_groups, 1);
    assert_int_equal(g.group[c2], 0);
    assert_int_equal(g.group[c3], 0);
    assert_int_equal(g.group[c1], -1);
    assert_int_equal(g.group[f1], -1);
    assert_int_equal(g.metric_block[c1], 4);
    assert_int_equal(g.metric_block[c2], 4);
    assert_int_equal(g.metric_block[c3], 0);
    sw_dependency_groups_deinit(&g);
    sw_model_free(m);
}

/* The config helper rewrites a config list exactly as NNI's helper did for the golden
 * fixture (ids renamed dep0...). */
static void test_compress_dependency_config_matches_nni(void **state) {
    (void)state;
    char path[512];
    sw_safetensors *st = NULL;
    CHECK_OK(sw_safetensors_read_file(
        sw_test_data_path("golden/prune_l1_dep_s50.safetensors", path, sizeof path), &st));
    cJSON *want = tm_json(sw_safetensors_meta(st, "config_list"));
    sw_model *m = tm_simple_model(6, 6);
    cJSON *c = tm_json("[{\"op_types\": [\"Conv2d\", \"Linear\"], \"exclude_op_names\": [\"fc2\"],"
                       " \"sparse_ratio\": 0.5}]");
    cJSON *got = NULL;
    CHECK_OK(sw_config_list_with_dependency_groups(m, c, &got));
    char *text = cJSON_PrintUnformatted(got);
    if (!cJSON_Compare(got, want, 1)) fail_msg("got %s", text);
    free(text);
    cJSON_Delete(got);
    cJSON_Delete(c);
    cJSON_Delete(want);
    sw_safetensors_free(st);
    sw_model_free(m);
}

/* A depthwise conv ties its channels to its producer; residual branches meeting at an Add
 * through BN/ReLU join one group. */
static void test_compress_dependency_depthwise_and_residual(void **state) {
    (void)state;
    sw_model *m = NULL;
    sw_shape in = sw_shape_3d(3, 8, 8);
    CHECK_OK(sw_model_new("res", &in, &m));
    sw_layer_hparams hp = tm_conv(3, 8, 3, 1, 1);
    tm_add(m, "stem", SW_LAYER_CONV2D, &hp, "input", NULL);
    hp = tm_conv(8, 8, 3, 8, 1);
    tm_add(m, "dw", SW_LAYER_CONV2D, &hp, "stem", NULL);
    hp = tm_bn(8);
    tm_add(m, "bn", SW_LAYER_BATCHNORM2D, &hp, "dw", NULL);
    hp = sw_layer_hparams_default(SW_LAYER_RELU);
    tm_add(m, "act", SW_LAYER_RELU, &hp, "bn", NULL);
    hp = tm_conv(8, 8, 1, 1, 0);
    tm_add(m, "pw", SW_LAYER_CONV2D, &hp, "act", NULL);
    hp = sw_layer_hparams_default(SW_LAYER_ADD);
    tm_add(m, "sum", SW_LAYER_ADD, &hp, "pw", "stem");
    hp = tm_conv(8, 4, 1, 1, 0);
    tm_add(m, "head", SW_LAYER_CONV2D, &hp, "sum", NULL);
    CHECK_OK(sw_model_finalize(m));
    sw_dependency_groups g;
    CHECK_OK(sw_compress_auto_dependency_groups(m, &g));
    assert_int_equal(g.n_groups, 1);
    for (const char *const *n = (const char *const[]){"stem", "dw", "pw", NULL}; *n; n++)
        assert_int_equal(g.group[sw_model_find(m, *n)], 0);
    assert_int_equal(g.group[sw_model_find(m, "head")], -1);
    for (int i = 0; i < m->n_nodes; i++) assert_int_equal(g.metric_block[i], 0);
    sw_dependency_groups_deinit(&g);
    sw_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compress_scaling_out_channel_l1),
        cmocka_unit_test(test_compress_scaling_block_tiles_roundtrip),
        cmocka_unit_test(test_compress_scaling_padding_and_errors),
        cmocka_unit_test(test_compress_granularity_json),
        cmocka_unit_test(test_compress_config_selection_algebra),
        cmocka_unit_test(test_compress_config_templates_and_shortcuts),
        cmocka_unit_test(test_compress_config_first_wins_with_warning),
        cmocka_unit_test(test_compress_config_errors_name_entry_and_key),
        cmocka_unit_test(test_compress_wrapper_no_transforms_no_hooks),
        cmocka_unit_test(test_compress_wrapper_weight_mask_forward_backward),
        cmocka_unit_test(test_compress_wrapper_stage_order),
        cmocka_unit_test(test_compress_wrapper_input_copy_output_in_place),
        cmocka_unit_test(test_compress_wrapper_chain_gradcheck),
        cmocka_unit_test(test_compress_dead_channel_zero_downstream),
        cmocka_unit_test(test_compress_dead_channel_zoo_cnn_matches_zeroed),
        cmocka_unit_test(test_compress_dead_channel_add_needs_all_inputs),
        cmocka_unit_test(test_compress_unwrap_bakes_masks),
        cmocka_unit_test(test_compress_unwrap_warns_unbakeable),
        cmocka_unit_test(test_compress_masks_file_roundtrip),
        cmocka_unit_test(test_compress_dependency_groups_simple_model),
        cmocka_unit_test(test_compress_dependency_config_matches_nni),
        cmocka_unit_test(test_compress_dependency_depthwise_and_residual),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
