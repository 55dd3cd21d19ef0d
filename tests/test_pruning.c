/* test_pruning.c - mask generation rules, the one-shot pruners (Level, L1Norm, L2Norm, FPGM)
 * on hand-made tensors and on NNI's golden fixtures, fusion chains, and training with masks. */
#include <math.h>

#include "test_compress_models.h"

#include "compress/compressor.h"
#include "compress/dead_channels.h"
#include "compress/dependency.h"
#include "compress/pruner.h"
#include "compress/pruning/pruners.h"
#include "compress/pruning/sparsity.h"
#include "data/dataset.h"
#include "nn/loss.h"
#include "train/evaluator.h"

/* ---- rules on hand-made metrics ------------------------------------------------------------ */

/* Ratio: floor(numel * ratio) smallest blocks masked, ties by position, per row of a view. */
static void test_pruning_ratio_mask_floor_and_rows(void **state) {
    (void)state;
    double m[6] = {4, 1, 3, 1, 2, 9};
    float mask[6];
    sw_sparsity_ratio_mask(m, 5, 1, 0.5, mask); /* floor(2.5) = 2 */
    float want1[5] = {1, 0, 1, 0, 1};
    for (int i = 0; i < 5; i++) assert_float_equal(mask[i], want1[i], 0);
    sw_sparsity_ratio_mask(m, 5, 1, 0.3, mask); /* floor(1.5) = 1: the first of the tied 1s */
    float want2[5] = {1, 0, 1, 1, 1};
    for (int i = 0; i < 5; i++) assert_float_equal(mask[i], want2[i], 0);
    double r[6] = {3, 1, 2, 0, 5, 4};
    sw_sparsity_ratio_mask(r, 6, 2, 0.5, mask); /* rows of 3, one masked per row */
    float want3[6] = {1, 0, 1, 0, 1, 1};
    for (int i = 0; i < 6; i++) assert_float_equal(mask[i], want3[i], 0);
    sw_sparsity_ratio_mask(r, 6, 1, 0.0, mask);
    for (int i = 0; i < 6; i++) assert_float_equal(mask[i], 1, 0);
}

/* A setting with only the given goals. */
static sw_prune_setting setting_ratio(double ratio) {
    sw_prune_setting s = {.has_ratio = true, .sparse_ratio = ratio, .apply_method = SW_APPLY_MUL};
    s.granularity.kind = SW_GRANULARITY_OUT_CHANNEL;
    return s;
}

static sw_sparsity_target vec_target(const char *name, const sw_prune_setting *s,
                                     const double *metric, int n, size_t elems_per_block,
                                     float *out) {
    sw_sparsity_target t = {
        .module = name, .name = "weight", .setting = s, .metric = metric, .block_mask = out};
    t.shape = sw_shape_2d(n, (int)elems_per_block);
    t.grid = sw_shape_2d(n, 1);
    int one = 1;
    t.has_scaling = true;
    t.scaling = sw_scaling_make(1, &one, SW_SCALING_PAD_BACK, SW_SCALING_FULL);
    return t;
}

/* Global: NNI's heap picks the threshold over blocks weighted by their element count; blocks
 * at or above it survive. */
static void test_pruning_global_threshold_weighted(void **state) {
    (void)state;
    double a[2] = {1, 4}, b[3] = {2, 3, 5};
    const double *ms[2] = {a, b};
    size_t numels[2] = {2, 3}, weights[2] = {2, 1};
    /* 7 elements, ratio 0.5 -> k = 3: {1 (2 elems), 2 (1 elem)} masked, threshold 3. */
    assert_float_equal(sw_sparsity_global_threshold(ms, numels, weights, 2, 3), 3.0, 0);
    sw_prune_setting s = setting_ratio(0.5);
    s.has_global = true;
    strcpy(s.global_group, "s:g");
    strcpy(s.global_label, "g");
    float ma[2], mb[3];
    sw_sparsity_target t[2] = {vec_target("a", &s, a, 2, 2, ma), vec_target("b", &s, b, 3, 1, mb)};
    CHECK_OK(sw_sparsity_generate(t, 2));
    assert_true(t[0].generated && t[1].generated);
    assert_float_equal(ma[0], 0, 0);
    assert_float_equal(ma[1], 1, 0);
    assert_float_equal(mb[0], 0, 0);
    assert_float_equal(mb[1], 1, 0);
    assert_float_equal(mb[2], 1, 0);
    /* A member capped by max_sparse_ratio is regenerated at its cap. */
    sw_prune_setting capped = s;
    capped.has_max = true;
    capped.max_sparse_ratio = 0.25;
    double c[4] = {0.1, 0.2, 0.3, 9};
    float mc[4], md[2];
    double d[2] = {5, 6};
    sw_sparsity_target t2[2] = {vec_target("c", &capped, c, 4, 1, mc),
                                vec_target("d", &s, d, 2, 1, md)};
    CHECK_OK(sw_sparsity_generate(t2, 2));
    assert_float_equal(mc[0], 0, 0);
    for (int i = 1; i < 4; i++) assert_float_equal(mc[i], 1, 0);
}

/* Dependency: members share the mask of their mean metric; internal_metric_block splits it
 * into equal rows each pruned at the ratio. */
static void test_pruning_dependency_mean_and_blocks(void **state) {
    (void)state;
    double a[4] = {1, 2, 7, 8}, b[4] = {1, 2, 7, 10};
    sw_prune_setting s = setting_ratio(0.5);
    s.has_dependency = true;
    strcpy(s.dependency_group, "s:dep0");
    strcpy(s.dependency_label, "dep0");
    float ma[4], mb[4];
    sw_sparsity_target t[2] = {vec_target("a", &s, a, 4, 1, ma), vec_target("b", &s, b, 4, 1, mb)};
    CHECK_OK(sw_sparsity_generate(t, 2));
    float flat[4] = {0, 0, 1, 1};
    for (int i = 0; i < 4; i++) {
        assert_float_equal(ma[i], flat[i], 0);
        assert_float_equal(mb[i], flat[i], 0);
    }
    sw_prune_setting s2 = s;
    s2.internal_metric_block = 2;
    t[1].setting = &s2;
    CHECK_OK(sw_sparsity_generate(t, 2));
    float rows[4] = {0, 1, 0, 1};
    for (int i = 0; i < 4; i++) {
        assert_float_equal(ma[i], rows[i], 0);
        assert_float_equal(mb[i], rows[i], 0);
    }
    /* Different ratios in one group are an error naming the group. */
    sw_prune_setting s3 = s;
    s3.sparse_ratio = 0.25;
    t[1].setting = &s3;
    assert_int_equal(sw_sparsity_generate(t, 2), SW_ERR_CONFIG);
    assert_non_null(strstr(sw_error_message(), "dependency_group_id \"dep0\""));
}

/* Threshold: metric >= threshold survives; outside [min, max] the ratio rule takes over at the
 * bound. */
static void test_pruning_threshold_with_bounds(void **state) {
    (void)state;
    double m[4] = {0.1, 0.2, 0.3, 0.4};
    sw_prune_setting s = {.has_threshold = true, .sparse_threshold = 0.25};
    float mask[4];
    sw_sparsity_target t = vec_target("a", &s, m, 4, 1, mask);
    CHECK_OK(sw_sparsity_generate(&t, 1));
    float w1[4] = {0, 0, 1, 1};
    for (int i = 0; i < 4; i++) assert_float_equal(mask[i], w1[i], 0);
    s.has_max = true;
    s.max_sparse_ratio = 0.25;
    CHECK_OK(sw_sparsity_generate(&t, 1));
    float w2[4] = {0, 1, 1, 1};
    for (int i = 0; i < 4; i++) assert_float_equal(mask[i], w2[i], 0);
    s.has_max = false;
    s.has_min = true;
    s.min_sparse_ratio = 0.75;
    CHECK_OK(sw_sparsity_generate(&t, 1));
    float w3[4] = {0, 0, 0, 1};
    for (int i = 0; i < 4; i++) assert_float_equal(mask[i], w3[i], 0);
}

/* ---- pruners on a hand-made layer --------------------------------------------------------- */

/* fc: Linear(3 -> 4) with rows whose L1, L2 and FPGM orders all differ:
 *   row 0 [1, -1, 1]      L1 3.0  L2 1.732  FPGM 5.703
 *   row 1 [2.9, 0, 0]     L1 2.9  L2 2.9    FPGM 7.066
 *   row 2 [.5, .5, .5]    L1 1.5  L2 0.866  FPGM 7.103
 *   row 3 [2, -2, .1]     L1 4.1  L2 2.830  FPGM 6.815 */
static sw_model *hand_model(void) {
    sw_model *m = NULL;
    sw_shape in = sw_shape_1d(3);
    CHECK_OK(sw_model_new("hand", &in, &m));
    sw_layer_hparams hp = tm_linear(3, 4);
    tm_add(m, "fc", SW_LAYER_LINEAR, &hp, "input", NULL);
    CHECK_OK(sw_model_finalize(m));
    float w[12] = {1, -1, 1, 2.9f, 0, 0, .5f, .5f, .5f, 2, -2, .1f};
    memcpy(tm_param(m, "fc", "weight")->data, w, sizeof w);
    for (int i = 0; i < 4; i++) tm_param(m, "fc", "bias")->data[i] = 1.0f + (float)i;
    return m;
}

typedef sw_status (*pruner_ctor)(sw_wrapper_set *, const cJSON *, sw_evaluator *, sw_compressor **);

/* Prunes the hand model at `ratio` and returns the weight and bias masks. */
static void prune_hand(pruner_ctor ctor, const char *cfg, float *wmask, float *bmask,
                       double *metric) {
    sw_model *m = hand_model();
    sw_wrapper_set *ws = NULL;
    CHECK_OK(sw_wrapper_set_new(m, &ws));
    cJSON *c = tm_json(cfg);
    sw_compressor *p = NULL;
    CHECK_OK(ctor(ws, c, NULL, &p));
    sw_wrapper_set_release(ws);
    CHECK_OK(sw_compressor_compress(p, -1, -1));
    sw_masks masks;
    CHECK_OK(sw_pruner_get_masks(p, &masks));
    assert_int_equal(masks.n, 2);
    memcpy(wmask, sw_masks_find(&masks, "fc", "weight")->data, 12 * sizeof(float));
    memcpy(bmask, sw_masks_find(&masks, "fc", "bias")->data, 4 * sizeof(float));
    sw_prune_target *t = sw_pruner_find(sw_pruner_of(p), "fc", "weight");
    if (metric) memcpy(metric, t->metric, 4 * sizeof(double));
    sw_masks_deinit(&masks);
    cJSON_Delete(c);
    sw_compressor_free(p);
    sw_model_free(m);
}

static void expect_rows(const float *wmask, const float *bmask, const int *keep) {
    for (int r = 0; r < 4; r++) {
        for (int k = 0; k < 3; k++) assert_float_equal(wmask[r * 3 + k], keep[r], 0);
        assert_float_equal(bmask[r], keep[r], 0);
    }
}

static const char hand_cfg[] = "[{\"op_names\": [\"fc\"], \"sparse_ratio\": 0.5}]";

/* L1Norm prunes the two rows of smallest L1 (rows 2, 1) and their biases. */
static void test_pruning_l1norm_hand(void **state) {
    (void)state;
    float w[12], b[4];
    double metric[4];
    prune_hand(sw_pruner_l1norm_new, hand_cfg, w, b, metric);
    const double want[4] = {3.0, 2.9, 1.5, 4.1};
    for (int i = 0; i < 4; i++) assert_float_equal(metric[i], want[i], 1e-6);
    expect_rows(w, b, (const int[]){1, 0, 0, 1});
}

/* L2Norm ranks by the L2 norm: rows 2 and 0 go. */
static void test_pruning_l2norm_hand(void **state) {
    (void)state;
    float w[12], b[4];
    double metric[4];
    prune_hand(sw_pruner_l2norm_new, hand_cfg, w, b, metric);
    assert_float_equal(metric[0], sqrt(3.0), 1e-6);
    assert_float_equal(metric[3], sqrt(8.01), 1e-6);
    expect_rows(w, b, (const int[]){0, 1, 0, 1});
}

/* FPGM removes the rows nearest the others (summed distances): rows 0 and 3. */
static void test_pruning_fpgm_hand(void **state) {
    (void)state;
    float w[12], b[4];
    double metric[4];
    prune_hand(sw_pruner_fpgm_new, hand_cfg, w, b, metric);
    const double want[4] = {5.703161713067122, 7.0659928971147785, 7.103099389729493,
                            6.814543095346468};
    for (int i = 0; i < 4; i++) assert_float_equal(metric[i], want[i], 1e-5);
    expect_rows(w, b, (const int[]){0, 1, 1, 0});
}

/* Level masks the 6 smallest |w|; a bias survives iff a weight of its row does. */
static void test_pruning_level_hand(void **state) {
    (void)state;
    float w[12], b[4];
    prune_hand(sw_pruner_level_new, hand_cfg, w, b, NULL);
    const float want[12] = {1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0};
    for (int i = 0; i < 12; i++) assert_float_equal(w[i], want[i], 0);
    const float wb[4] = {1, 1, 0, 1};
    for (int i = 0; i < 4; i++) assert_float_equal(b[i], wb[i], 0);
}

/* Requested sparsity is reached exactly: floor(rows * ratio) rows for every ratio. */
static void test_pruning_requested_sparsity_reached(void **state) {
    (void)state;
    for (int k = 1; k < 10; k++) {
        double ratio = k / 10.0;
        sw_model *m = NULL;
        sw_shape in = sw_shape_1d(5);
        CHECK_OK(sw_model_new("lin", &in, &m));
        sw_layer_hparams hp = tm_linear(5, 37);
        tm_add(m, "fc", SW_LAYER_LINEAR, &hp, "input", NULL);
        CHECK_OK(sw_model_finalize(m));
        sw_model_init_params(m, (uint64_t)k);
        sw_wrapper_set *ws = NULL;
        CHECK_OK(sw_wrapper_set_new(m, &ws));
        char cfg[128];
        snprintf(cfg, sizeof cfg, "[{\"op_types\": [\"Linear\"], \"sparse_ratio\": %g}]", ratio);
        cJSON *c = tm_json(cfg);
        sw_compressor *p = NULL;
        CHECK_OK(sw_pruner_l2norm_new(ws, c, NULL, &p));
        CHECK_OK(sw_compressor_compress(p, -1, -1));
        sw_prune_target *t = sw_pruner_find(sw_pruner_of(p), "fc", "weight");
        int masked = 0;
        for (int r = 0; r < 37; r++) masked += t->mask.data[r * 5] == 0.0f;
        assert_int_equal(masked, (int)(37 * ratio));
        assert_float_equal(sw_mask_sparsity(&t->mask), (int)(37 * ratio) / 37.0, 1e-9);
        cJSON_Delete(c);
        sw_compressor_free(p);
        sw_wrapper_set_release(ws);
        sw_model_free(m);
    }
}

/* ---- NNI golden fixtures ------------------------------------------------------------------- */

static pruner_ctor ctor_for(const char *nni_name) {
    if (strcmp(nni_name, "LevelPruner") == 0) return sw_pruner_level_new;
    if (strcmp(nni_name, "L1NormPruner") == 0) return sw_pruner_l1norm_new;
    if (strcmp(nni_name, "L2NormPruner") == 0) return sw_pruner_l2norm_new;
    if (strcmp(nni_name, "FPGMPruner") == 0) return sw_pruner_fpgm_new;
    fail_msg("no pruner for %s", nni_name);
    return NULL;
}

/* Runs the fixture's pruner and config on its weights; compares masks exactly, metrics to
 * rtol 1e-5, and the masked output (NNI's semantics: downstream zeroing off). */
static void check_golden(const char *file) {
    char path[512];
    sw_safetensors *st = NULL;
    CHECK_OK(sw_safetensors_read_file(sw_test_data_path(file, path, sizeof path), &st));
    sw_model *m = tm_simple_model(6, 6);
    tm_load_params(m, st, "param/");
    sw_wrapper_set *ws = NULL;
    CHECK_OK(sw_wrapper_set_new(m, &ws));
    cJSON *c = tm_json(sw_safetensors_meta(st, "config_list"));
    sw_compressor *p = NULL;
    CHECK_OK(ctor_for(sw_safetensors_meta(st, "pruner"))(ws, c, NULL, &p));
    CHECK_OK(sw_wrapper_set_zero_downstream(ws, false));
    CHECK_OK(sw_compressor_compress(p, -1, -1));
    assert_int_equal(sw_warnings_count(sw_compressor_warnings(p)), 0);
    sw_masks masks;
    CHECK_OK(sw_pruner_get_masks(p, &masks));
    int n_masks = 0, n_metrics = 0, n_metric_entries = 0;
    for (int i = 0; i < st->n_entries; i++) {
        if (strncmp(st->entries[i].name, "metric/", 7) == 0) n_metric_entries++;
        const char *name = st->entries[i].name;
        if (strchr(name, '/') || !strchr(name, '.')) continue;
        n_masks++;
        char module[64];
        const char *dot = strrchr(name, '.');
        snprintf(module, sizeof module, "%.*s", (int)(dot - name), name);
        const sw_tensor *got = sw_masks_find(&masks, module, dot + 1);
        if (!got) fail_msg("%s: no mask for %s", file, name);
        sw_tensor want = {0};
        CHECK_OK(sw_safetensors_get_f32(st, name, &want));
        assert_int_equal(got->numel, want.numel);
        for (size_t k = 0; k < want.numel; k++)
            if (got->data[k] != want.data[k])
                fail_msg("%s: mask %s[%zu] = %g, NNI has %g", file, name, k, got->data[k],
                         want.data[k]);
        sw_tensor_deinit(&want);
        char mname[96];
        snprintf(mname, sizeof mname, "metric/%s", name);
        if (sw_safetensors_find(st, mname)) {
            sw_tensor mw = {0};
            CHECK_OK(sw_safetensors_get_f32(st, mname, &mw));
            sw_prune_target *t = sw_pruner_find(sw_pruner_of(p), module, dot + 1);
            assert_non_null(t->metric);
            for (size_t k = 0; k < mw.numel; k++) {
                double w = mw.data[k];
                if (fabs(t->metric[k] - w) > 1e-5 * fabs(w) + 1e-12)
                    fail_msg("%s: %s[%zu] = %.9g, NNI has %.9g", file, mname, k, t->metric[k], w);
            }
            sw_tensor_deinit(&mw);
            n_metrics++;
        }
    }
    /* Every NNI mask and metric was compared, and we made no mask NNI lacks. */
    assert_int_equal(n_masks, 8);
    assert_int_equal(n_masks, masks.n);
    assert_int_equal(n_metrics, n_metric_entries);
    sw_tensor x = {0}, want_y = {0};
    CHECK_OK(sw_safetensors_get_f32(st, "input", &x));
    CHECK_OK(sw_safetensors_get_f32(st, "output_masked", &want_y));
    sw_tensor *y = tm_forward(m, &x);
    sw_test_assert_close(y->data, want_y.data, y->numel, 1e-5f, 1e-4f, file);
    sw_tensor_free(y);
    sw_tensor_deinit(&x);
    sw_tensor_deinit(&want_y);
    sw_masks_deinit(&masks);
    cJSON_Delete(c);
    sw_compressor_free(p);
    sw_wrapper_set_release(ws);
    sw_model_free(m);
    sw_safetensors_free(st);
}

/* Default configs (Conv2d + Linear except fc2) at 50% and 75%. */
static void test_pruning_golden_default(void **state) {
    (void)state;
    const char *files[] = {"level_s50", "level_s75", "l1_s50",   "l1_s75",
                           "l2_s50",    "l2_s75",    "fpgm_s50", "fpgm_s75"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char f[128];
        snprintf(f, sizeof f, "golden/prune_%s.safetensors", files[i]);
        check_golden(f);
    }
}

/* Dependency groups from NNI's helper (conv2/conv3 share a mask, internal_metric_block 4). */
static void test_pruning_golden_dependency(void **state) {
    (void)state;
    const char *files[] = {"l1_dep_s50", "l1_dep_s75",   "l2_dep_s50",
                           "l2_dep_s75", "fpgm_dep_s50", "fpgm_dep_s75"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char f[128];
        snprintf(f, sizeof f, "golden/prune_%s.safetensors", files[i]);
        check_golden(f);
    }
}

/* Global groups (NNI's heap over blocks weighted by size) and block granularities. */
static void test_pruning_golden_global_and_blocks(void **state) {
    (void)state;
    check_golden("golden/prune_l1_global_s50.safetensors");
    check_golden("golden/prune_level_global_s50.safetensors");
    check_golden("golden/prune_level_block_s50.safetensors");
    check_golden("golden/prune_level_block_s75.safetensors");
}

/* NNI's acceptance case: every norm pruner at 0.75, out_channel, with auto dependency groups,
 * masks exactly 75% of each layer's weights, conv2 and conv3 the same channels, and a bias
 * survives iff its row does. */
static void test_pruning_acceptance_075(void **state) {
    (void)state;
    pruner_ctor ctors[4] = {sw_pruner_level_new, sw_pruner_l1norm_new, sw_pruner_l2norm_new,
                            sw_pruner_fpgm_new};
    for (int k = 0; k < 4; k++) {
        sw_model *m = tm_simple_model(28, 28);
        tm_fill_params(m, 100 + (uint64_t)k);
        cJSON *base = tm_json("[{\"op_types\": [\"Conv2d\", \"Linear\"], \"exclude_op_names\": "
                              "[\"fc2\"], \"sparse_ratio\": 0.75, \"granularity\": "
                              "\"out_channel\"}]");
        cJSON *c = NULL;
        CHECK_OK(sw_config_list_with_dependency_groups(m, base, &c));
        sw_wrapper_set *ws = NULL;
        CHECK_OK(sw_wrapper_set_new(m, &ws));
        sw_compressor *p = NULL;
        CHECK_OK(ctors[k](ws, c, NULL, &p));
        CHECK_OK(sw_compressor_compress(p, -1, -1));
        sw_masks masks;
        CHECK_OK(sw_pruner_get_masks(p, &masks));
        for (const char *const *n = (const char *const[]){"conv1", "conv2", "conv3", "fc1", NULL};
             *n; n++) {
            const sw_tensor *w = sw_masks_find(&masks, *n, "weight");
            const sw_tensor *b = sw_masks_find(&masks, *n, "bias");
            assert_float_equal(sw_mask_sparsity(w), 0.75, 1e-12);
            size_t per = w->numel / (size_t)w->shape.dims[0];
            for (int r = 0; r < w->shape.dims[0]; r++)
                assert_float_equal(b->data[r], w->data[(size_t)r * per], 0);
        }
        const sw_tensor *w2 = sw_masks_find(&masks, "conv2", "weight");
        const sw_tensor *w3 = sw_masks_find(&masks, "conv3", "weight");
        for (int r = 0; r < 32; r++) assert_float_equal(w2->data[r * 36], w3->data[r * 144], 0);
        /* internal_metric_block 4: each quarter of conv1's and conv2's filters loses 75%. */
        for (int g = 0; g < 4; g++) {
            int kept = 0;
            for (int r = g * 8; r < (g + 1) * 8; r++) kept += w2->data[r * 36] != 0.0f;
            assert_int_equal(kept, 2);
        }
        sw_masks_deinit(&masks);
        cJSON_Delete(base);
        cJSON_Delete(c);
        sw_compressor_free(p);
        sw_wrapper_set_release(ws);
        sw_model_free(m);
    }
}

/* ---- masks in training ----------------------------------------------------------------------- */

/* Masked weights get no gradient and stay zero in effect through SGD steps; unwrapping then
 * leaves them zero in the weights. */
static void test_pruning_masked_weights_stay_zero_in_training(void **state) {
    (void)state;
    sw_model *m = tm_simple_model(6, 6);
    tm_fill_params(m, 71);
    sw_wrapper_set *ws = NULL;
    CHECK_OK(sw_wrapper_set_new(m, &ws));
    cJSON *c = tm_json("[{\"op_types\": [\"Conv2d\", \"Linear\"], \"exclude_op_names\": [\"fc2\"],"
                       " \"sparse_ratio\": 0.5}, {\"op_names\": [\"fc2\"], \"sparse_ratio\": 0.3,"
                       " \"granularity\": null}]");
    sw_compressor *p = NULL;
    CHECK_OK(sw_pruner_level_new(ws, c, NULL, &p));
    CHECK_OK(sw_compressor_compress(p, -1, -1));
    sw_pruner *pr = sw_pruner_of(p);
    sw_shape xs = sw_shape_4d(4, 1, 6, 6);
    sw_tensor *x = NULL, *dl = NULL;
    CHECK_OK(sw_tensor_new(&xs, &x));
    sw_test_fill_uniform(x, 3, -1, 1);
    int labels[4] = {1, 3, 5, 7};
    sw_model_set_training(m, true);
    for (int step = 0; step < 3; step++) {
        const sw_tensor *y = NULL;
        CHECK_OK(sw_model_forward(m, x, &y));
        if (!dl) CHECK_OK(sw_tensor_new(&y->shape, &dl));
        double loss;
        CHECK_OK(sw_loss_cross_entropy(y, labels, 1.0f, &loss, dl));
        sw_model_zero_grad(m);
        CHECK_OK(sw_model_backward(m, dl));
        for (int i = 0; i < pr->n_targets; i++) {
            sw_prune_target *t = &pr->targets[i];
            const sw_param *par = &m->nodes[t->node].layer->params[t->param_index];
            for (size_t k = 0; k < t->mask.numel; k++)
                if (t->mask.data[k] == 0.0f) assert_float_equal(par->grad.data[k], 0.0f, 0);
        }
        for (size_t k = 0; k < m->n_param_floats; k++) m->param_data[k] -= 0.1f * m->grad_data[k];
    }
    CHECK_OK(sw_compressor_unwrap_model(p));
    for (int i = 0; i < pr->n_targets; i++) {
        sw_prune_target *t = &pr->targets[i];
        const sw_param *par = &m->nodes[t->node].layer->params[t->param_index];
        for (size_t k = 0; k < t->mask.numel; k++)
            if (t->mask.data[k] == 0.0f) assert_float_equal(par->value.data[k], 0.0f, 0);
    }
    sw_tensor_free(x);
    sw_tensor_free(dl);
    cJSON_Delete(c);
    sw_compressor_free(p);
    sw_wrapper_set_release(ws);
    sw_model_free(m);
}

/* ---- fusion ------------------------------------------------------------------------------------
 */

/* Three pruners chained with from_compressor: one compress on the newest generates every
 * mask; get_masks from any member returns all; members can be freed in any order. */
static void test_pruning_chain_of_three(void **state) {
    (void)state;
    sw_model *m = tm_simple_model(6, 6);
    tm_fill_params(m, 81);
    sw_wrapper_set *ws = NULL;
    CHECK_OK(sw_wrapper_set_new(m, &ws));
    cJSON *c1 = tm_json("[{\"op_names\": [\"conv1\"], \"sparse_ratio\": 0.5}]");
    cJSON *c2 = tm_json("[{\"op_names\": [\"conv2\", \"conv3\"], \"sparse_ratio\": 0.25}]");
    cJSON *c3 = tm_json("[{\"op_names\": [\"fc1\"], \"sparse_ratio\": 0.75}]");
    sw_compressor *a = NULL, *b = NULL, *d = NULL;
    CHECK_OK(sw_pruner_l1norm_new(ws, c1, NULL, &a));
    sw_wrapper_set_release(ws);
    CHECK_OK(sw_pruner_l2norm_from_compressor(a, c2, NULL, &b));
    CHECK_OK(sw_pruner_fpgm_from_compressor(b, c3, NULL, &d));
    assert_int_equal(sw_compressor_chain_length(d), 3);
    assert_ptr_equal(d->ws, a->ws);
    /* Building twice on the same compressor is refused: chains do not branch. */
    sw_compressor *e = NULL;
    assert_int_equal(sw_pruner_l1norm_from_compressor(b, c3, NULL, &e), SW_ERR_ARG);
    CHECK_OK(sw_compressor_compress(d, -1, -1));
    sw_masks from_new, from_old;
    CHECK_OK(sw_pruner_get_masks(d, &from_new));
    CHECK_OK(sw_pruner_get_masks(a, &from_old));
    assert_int_equal(from_new.n, 8);
    assert_int_equal(from_old.n, 8);
    assert_float_equal(sw_mask_sparsity(sw_masks_find(&from_new, "conv1", "weight")), 0.5, 0);
    assert_float_equal(sw_mask_sparsity(sw_masks_find(&from_new, "conv2", "weight")), 0.25, 0);
    assert_float_equal(sw_mask_sparsity(sw_masks_find(&from_new, "fc1", "weight")), 0.75, 0);
    assert_string_equal(from_old.items[0].module, "conv1");
    sw_masks_deinit(&from_new);
    sw_masks_deinit(&from_old);
    /* Free the middle one: its masks stop applying, the chain closes up. */
    sw_compressor_free(b);
    assert_ptr_equal(d->previous, a);
    assert_ptr_equal(a->next, d);
    CHECK_OK(sw_pruner_get_masks(d, &from_new));
    assert_int_equal(from_new.n, 4);
    sw_masks_deinit(&from_new);
    CHECK_OK(sw_compressor_compress(d, -1, -1));
    sw_compressor_free(a);
    assert_null(d->previous);
    assert_int_equal(sw_compressor_chain_length(d), 1);
    sw_compressor_free(d);
    for (int i = 0; i < m->n_nodes; i++) assert_null(m->nodes[i].hooks);
    cJSON_Delete(c1);
    cJSON_Delete(c2);
    cJSON_Delete(c3);
    sw_model_free(m);
}

/* Two pruners on one target: the first keeps it (NNI: first config wins per mode); the
 * second's config for it is dropped with a readable warning. */
static void test_pruning_same_target_first_wins(void **state) {
    (void)state;
    sw_model *m = tm_simple_model(6, 6);
    tm_fill_params(m, 91);
    sw_wrapper_set *ws = NULL;
    CHECK_OK(sw_wrapper_set_new(m, &ws));
    cJSON *c1 = tm_json("[{\"op_names\": [\"conv1\"], \"sparse_ratio\": 0.5}]");
    cJSON *c2 = tm_json("[{\"op_names\": [\"conv1\", \"fc1\"], \"sparse_ratio\": 0.75}]");
    sw_compressor *a = NULL, *b = NULL;
    CHECK_OK(sw_pruner_l1norm_new(ws, c1, NULL, &a));
    CHECK_OK(sw_pruner_l2norm_from_compressor(a, c2, NULL, &b));
    const sw_warnings *w = sw_compressor_warnings(b);
    assert_int_equal(sw_warnings_count(w), 2);
    assert_non_null(strstr(sw_warnings_get(w, 0), "conv1.weight is already pruned by "
                                                  "L1NormPruner"));
    CHECK_OK(sw_compressor_compress(b, -1, -1));
    sw_masks masks;
    CHECK_OK(sw_pruner_get_masks(b, &masks));
    assert_int_equal(masks.n, 4);
    assert_float_equal(sw_mask_sparsity(sw_masks_find(&masks, "conv1", "weight")), 0.5, 0);
    assert_float_equal(sw_mask_sparsity(sw_masks_find(&masks, "fc1", "weight")), 0.75, 0);
    assert_null(sw_pruner_find(sw_pruner_of(b), "conv1", "weight"));
    sw_masks_deinit(&masks);
    cJSON_Delete(c1);
    cJSON_Delete(c2);
    sw_compressor_free(a);
    sw_compressor_free(b);
    sw_wrapper_set_release(ws);
    sw_model_free(m);
}

/* One-shot pruners refuse training limits; scheduled ones need them and an evaluator. */
static void test_pruning_compress_argument_errors(void **state) {
    (void)state;
    sw_model *m = tm_simple_model(6, 6);
    sw_wrapper_set *ws = NULL;
    CHECK_OK(sw_wrapper_set_new(m, &ws));
    cJSON *c = tm_json("[{\"op_types\": [\"Conv2d\"], \"sparse_ratio\": 0.5}]");
    sw_compressor *p = NULL;
    CHECK_OK(sw_pruner_l1norm_new(ws, c, NULL, &p));
    assert_int_equal(sw_compressor_compress(p, 10, -1), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "L1NormPruner is one-shot"));
    CHECK_OK(sw_pruner_set_schedule(sw_pruner_of(p), 5, 2));
    assert_int_equal(sw_compressor_compress(p, -1, -1), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "trains while it compresses"));
    assert_int_equal(sw_compressor_compress(p, 10, -1), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "no evaluator"));
    sw_compressor_free(p);
    /* FPGM needs blocks; activations cannot be ranked by norm pruners. */
    cJSON *f =
        tm_json("[{\"op_types\": [\"Conv2d\"], \"sparse_ratio\": 0.5, \"granularity\": null}]");
    assert_int_equal(sw_pruner_fpgm_new(ws, f, NULL, &p), SW_ERR_CONFIG);
    assert_non_null(strstr(sw_error_message(), "conv1.weight: FPGMPruner compares blocks"));
    cJSON *a = tm_json("[{\"op_names\": [\"bn1\"], \"target_names\": [\"_output_0\"],"
                       " \"target_settings\": {\"_output_0\": {\"sparse_ratio\": 0.5}}}]");
    assert_int_equal(sw_pruner_l1norm_new(ws, a, NULL, &p), SW_ERR_CONFIG);
    assert_non_null(strstr(sw_error_message(), "bn1._output_0: L1NormPruner ranks parameters"));
    cJSON *d = tm_json("[{\"op_names\": [\"conv2\"], \"sparse_ratio\": 0.5, "
                       "\"dependency_group_id\": 1}, {\"op_names\": [\"conv3\"], "
                       "\"sparse_ratio\": 0.25, \"dependency_group_id\": 1}]");
    assert_int_equal(sw_pruner_l1norm_new(ws, d, NULL, &p), SW_ERR_CONFIG);
    assert_non_null(strstr(sw_error_message(), "dependency_group_id \"1\""));
    /* Failed constructors leave the model as it was. */
    for (int i = 0; i < m->n_nodes; i++) assert_null(m->nodes[i].hooks);
    cJSON_Delete(c);
    cJSON_Delete(f);
    cJSON_Delete(a);
    cJSON_Delete(d);
    sw_wrapper_set_release(ws);
    sw_model_free(m);
}

/* Activation masks by align (NNI's fusion examples): bn1's output follows conv1's filters. */
static void test_pruning_align_output_to_weight(void **state) {
    (void)state;
    sw_model *m = tm_simple_model(6, 6);
    tm_fill_params(m, 93);
    sw_wrapper_set *ws = NULL;
    CHECK_OK(sw_wrapper_set_new(m, &ws));
    cJSON *c = tm_json("[{\"op_names\": [\"conv1\"], \"sparse_ratio\": 0.5},"
                       " {\"op_names\": [\"bn1\"], \"target_names\": [\"_output_\"],"
                       "  \"target_settings\": {\"_output_\": {\"align\": {\"module_name\": "
                       "\"conv1\", \"target_name\": \"weight\", \"dims\": [0]}, \"granularity\": "
                       "\"per_channel\"}}}]");
    sw_compressor *p = NULL;
    CHECK_OK(sw_pruner_l1norm_new(ws, c, NULL, &p));
    CHECK_OK(sw_compressor_compress(p, -1, -1));
    sw_masks masks;
    CHECK_OK(sw_pruner_get_masks(p, &masks));
    const sw_tensor *out = sw_masks_find(&masks, "bn1", "_output_0");
    const sw_tensor *w = sw_masks_find(&masks, "conv1", "weight");
    assert_int_equal(out->shape.ndim, 4);
    assert_int_equal(out->shape.dims[0], 1);
    assert_int_equal(out->shape.dims[1], 16);
    assert_int_equal(out->shape.dims[2] * out->shape.dims[3], 1);
    for (int ch = 0; ch < 16; ch++) assert_float_equal(out->data[ch], w->data[ch * 9], 0);
    sw_masks_deinit(&masks);
    cJSON_Delete(c);
    sw_compressor_free(p);
    sw_wrapper_set_release(ws);
    sw_model_free(m);
}

/* ---- fused compress with training ------------------------------------------------------------ */

typedef struct grad_probe {
    sw_pruner *p;
    int steps;
    int masked_seen;
} grad_probe;

/* before_step: every masked weight has a zero gradient. */
static sw_status probe_before_step(void *ctx, sw_train_state *st) {
    grad_probe *g = ctx;
    sw_model *m = st->model;
    for (int i = 0; i < g->p->n_targets; i++) {
        sw_prune_target *t = &g->p->targets[i];
        const sw_param *par = &m->nodes[t->node].layer->params[t->param_index];
        for (size_t k = 0; k < t->mask.numel; k++) {
            if (t->mask.data[k] != 0.0f) continue;
            g->masked_seen++;
            if (par->grad.data[k] != 0.0f)
                return SW_FAIL(SW_ERR_NUMERIC, "gradient of masked %s.%s[%zu] is %g", t->module,
                               t->name, k, par->grad.data[k]);
        }
    }
    g->steps++;
    return SW_OK;
}

/* A small in-memory dataset of [1, 6, 6] images in 10 classes. */
static sw_dataset *tiny_dataset(int n) {
    sw_dataset *ds = calloc(1, sizeof *ds);
    ds->n = n;
    ds->channels = 1, ds->height = 6, ds->width = 6;
    ds->n_classes = 10;
    ds->images = malloc((size_t)n * 36 * sizeof(float));
    ds->labels = malloc((size_t)n);
    sw_shape s = sw_shape_1d(n * 36);
    sw_tensor v = sw_tensor_view(ds->images, &s);
    sw_test_fill_uniform(&v, 17, -1, 1);
    for (int i = 0; i < n; i++) ds->labels[i] = (uint8_t)(i % 10);
    snprintf(ds->name, sizeof ds->name, "tiny");
    return ds;
}

static void free_dataset(sw_dataset *ds) {
    free(ds->images);
    free(ds->labels);
    free(ds);
}

/* A fused chain with an evaluator trains once: one-shot masks are generated before the first
 * step and hold (zero gradients) throughout; a scheduled pruner regenerates on its steps. */
static void test_pruning_fused_compress_trains_with_masks(void **state) {
    (void)state;
    sw_dataset *ds = tiny_dataset(64);
    sw_train_config cfg = sw_train_config_default();
    cfg.batch_size = 8;
    cfg.eval_every_epoch = 0;
    sw_evaluator ev;
    CHECK_OK(sw_evaluator_init(&ev, ds, NULL, &cfg));
    sw_model *m = tm_simple_model(6, 6);
    sw_wrapper_set *ws = NULL;
    CHECK_OK(sw_wrapper_set_new(m, &ws));
    cJSON *c1 = tm_json("[{\"op_names\": [\"conv1\", \"conv2\"], \"sparse_ratio\": 0.5}]");
    cJSON *c2 = tm_json("[{\"op_names\": [\"fc1\"], \"sparse_ratio\": 0.5}]");
    sw_compressor *a = NULL, *b = NULL;
    CHECK_OK(sw_pruner_l1norm_new(ws, c1, &ev, &a));
    sw_evaluator other;
    CHECK_OK(sw_evaluator_init(&other, ds, NULL, &cfg));
    CHECK_OK(sw_pruner_level_from_compressor(a, c2, &other, &b));
    assert_ptr_equal(b->ev, &ev);
    assert_int_equal(sw_warnings_count(sw_compressor_warnings(b)), 1);
    assert_non_null(
        strstr(sw_warnings_get(sw_compressor_warnings(b), 0), "already has an evaluator"));
    /* b regenerates every 2 steps, twice. */
    CHECK_OK(sw_pruner_set_schedule(sw_pruner_of(b), 2, 2));
    grad_probe probe = {.p = sw_pruner_of(a)};
    sw_train_hooks hooks = {.ctx = &probe, .name = "probe", .before_step = probe_before_step};
    CHECK_OK(sw_evaluator_add_hooks(&ev, &hooks));
    CHECK_OK(sw_compressor_compress(b, 5, -1));
    assert_int_equal(probe.steps, 5);
    assert_true(probe.masked_seen > 0);
    sw_masks masks;
    CHECK_OK(sw_pruner_get_masks(b, &masks));
    assert_float_equal(sw_mask_sparsity(sw_masks_find(&masks, "conv1", "weight")), 0.5, 0);
    assert_float_equal(sw_mask_sparsity(sw_masks_find(&masks, "fc1", "weight")), 0.5, 0);
    /* The compressors' hooks are gone after compress; the probe stays. */
    assert_int_equal(ev.n_hooks, 1);
    sw_masks_deinit(&masks);
    sw_evaluator_remove_hooks(&ev, &hooks);
    cJSON_Delete(c1);
    cJSON_Delete(c2);
    sw_compressor_free(b);
    sw_compressor_free(a);
    sw_wrapper_set_release(ws);
    sw_model_free(m);
    sw_evaluator_deinit(&other);
    sw_evaluator_deinit(&ev);
    free_dataset(ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pruning_ratio_mask_floor_and_rows),
        cmocka_unit_test(test_pruning_global_threshold_weighted),
        cmocka_unit_test(test_pruning_dependency_mean_and_blocks),
        cmocka_unit_test(test_pruning_threshold_with_bounds),
        cmocka_unit_test(test_pruning_l1norm_hand),
        cmocka_unit_test(test_pruning_l2norm_hand),
        cmocka_unit_test(test_pruning_fpgm_hand),
        cmocka_unit_test(test_pruning_level_hand),
        cmocka_unit_test(test_pruning_requested_sparsity_reached),
        cmocka_unit_test(test_pruning_golden_default),
        cmocka_unit_test(test_pruning_golden_dependency),
        cmocka_unit_test(test_pruning_golden_global_and_blocks),
        cmocka_unit_test(test_pruning_acceptance_075),
        cmocka_unit_test(test_pruning_masked_weights_stay_zero_in_training),
        cmocka_unit_test(test_pruning_chain_of_three),
        cmocka_unit_test(test_pruning_same_target_first_wins),
        cmocka_unit_test(test_pruning_compress_argument_errors),
        cmocka_unit_test(test_pruning_align_output_to_weight),
        cmocka_unit_test(test_pruning_fused_compress_trains_with_masks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
