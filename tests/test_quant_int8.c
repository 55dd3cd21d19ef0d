/* test_quant_int8.c - real int8 inference: the integer kernels agree with each other, the int8
 * model computes what the fake-quantized model computes, and int8 files round-trip. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

#include "compress/pruning/pruners.h"
#include "compress/quantization/quantizers.h"
#include "io/int8_model_file.h"
#include "io/model_file.h"
#include "quantized/int8_gemm.h"
#include "quantized/int8_model.h"

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        sw_status st_ = (expr);                                                                    \
        if (st_ != SW_OK) fail_msg("%s: %s (%s)", #expr, sw_status_str(st_), sw_error_message());  \
    } while (0)

static cJSON *parse(const char *text) {
    cJSON *cl = NULL;
    CHECK(sw_config_list_parse(text, &cl));
    return cl;
}

static void add(sw_model *m, const char *name, sw_layer_kind kind, const sw_layer_hparams *hp) {
    sw_layer *l = NULL;
    CHECK(sw_layer_new(kind, hp, &l));
    CHECK(sw_model_add(m, name, l, NULL, 0, NULL));
}

/* [2, 8, 8] -> conv Conv2d(2, 6, 3, stride, p1, groups) -> bn -> relu -> pool -> flat -> fc1
 * Linear(., 16) -> relu2 -> fc2 Linear(16, 5). */
static sw_model *net(int groups, int stride, uint64_t seed) {
    sw_model *m = NULL;
    sw_shape s = sw_shape_3d(2, 8, 8);
    CHECK(sw_model_new("int8net", &s, &m));
    sw_layer_hparams c = sw_layer_hparams_default(SW_LAYER_CONV2D);
    c.in_channels = 2;
    c.out_channels = 6;
    c.kernel[0] = c.kernel[1] = 3;
    c.padding[0] = c.padding[1] = 1;
    c.stride[0] = c.stride[1] = stride;
    c.groups = groups;
    add(m, "conv", SW_LAYER_CONV2D, &c);
    sw_layer_hparams bn = sw_layer_hparams_default(SW_LAYER_BATCHNORM2D);
    bn.num_features = 6;
    add(m, "bn", SW_LAYER_BATCHNORM2D, &bn);
    sw_layer_hparams r = sw_layer_hparams_default(SW_LAYER_RELU);
    add(m, "relu", SW_LAYER_RELU, &r);
    sw_layer_hparams p = sw_layer_hparams_default(SW_LAYER_MAXPOOL2D);
    p.kernel[0] = p.kernel[1] = 2;
    p.stride[0] = p.stride[1] = 2;
    add(m, "pool", SW_LAYER_MAXPOOL2D, &p);
    sw_layer_hparams fl = {0};
    add(m, "flat", SW_LAYER_FLATTEN, &fl);
    int side = (8 / stride) / 2;
    sw_layer_hparams f1 = sw_layer_hparams_default(SW_LAYER_LINEAR);
    f1.in_features = 6 * side * side;
    f1.out_features = 16;
    add(m, "fc1", SW_LAYER_LINEAR, &f1);
    add(m, "relu2", SW_LAYER_RELU, &r);
    sw_layer_hparams f2 = sw_layer_hparams_default(SW_LAYER_LINEAR);
    f2.in_features = 16;
    f2.out_features = 5;
    add(m, "fc2", SW_LAYER_LINEAR, &f2);
    CHECK(sw_model_finalize(m));
    sw_model_init_params(m, seed);
    sw_layer *b = m->nodes[sw_model_find(m, "bn")].layer;
    for (int ch = 0; ch < 6; ch++) {
        b->params[0].value.data[ch] = 0.8f + 0.1f * (float)ch;
        b->params[1].value.data[ch] = 0.05f * (float)(ch - 2);
        b->params[2].value.data[ch] = 0.02f * (float)ch;
        b->params[3].value.data[ch] = 0.5f + 0.2f * (float)ch;
    }
    return m;
}

static sw_dataset *images(int n, uint64_t seed) {
    sw_dataset *ds = calloc(1, sizeof *ds);
    assert_non_null(ds);
    *ds = (sw_dataset){.n = n, .channels = 2, .height = 8, .width = 8, .n_classes = 5};
    ds->images = malloc((size_t)n * 128 * sizeof(float));
    ds->labels = malloc((size_t)n);
    assert_true(ds->images && ds->labels);
    sw_rng rng;
    sw_rng_init(&rng, seed, 1);
    for (int i = 0; i < n * 128; i++) ds->images[i] = 2.0f * sw_rng_uniform(&rng) - 0.7f;
    for (int i = 0; i < n; i++) ds->labels[i] = (uint8_t)(i % 5);
    snprintf(ds->name, sizeof ds->name, "random");
    return ds;
}

/* ---- kernels ----------------------------------------------------------------------------- */

/* Every kernel the CPU has computes exactly the portable loop's integers (which are checked
 * against int64 arithmetic), for sizes that are not multiples of the register blocks, row
 * strides with padding, and the extreme byte values. */
static void test_quant_int8_gemm_kernels_agree(void **state) {
    (void)state;
    const int sizes[][3] = {{1, 1, 1},     {3, 5, 9},   {7, 4, 64},
                            {17, 13, 300}, {5, 70, 33}, {32, 33, 3136}};
    sw_rng rng;
    sw_rng_init(&rng, 42, 0);
    int checked = 0;
    for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++) {
        int m = sizes[c][0], n = sizes[c][1];
        size_t k = (size_t)sizes[c][2], lda = sw_i8_padded_k(k), ldb = k + 3;
        bool extreme = c == sizeof sizes / sizeof sizes[0] - 1;
        assert_int_equal(lda % SW_I8_K_ALIGN, 0);
        uint8_t *a = calloc((size_t)m * lda, 1);
        int8_t *b = calloc((size_t)n * ldb, 1);
        int32_t *want = malloc((size_t)m * n * sizeof *want);
        int32_t *got = malloc((size_t)m * n * sizeof *got);
        assert_true(a && b && want && got);
        for (int i = 0; i < m; i++)
            for (size_t e = 0; e < k; e++)
                a[(size_t)i * lda + e] = extreme ? 255 : (uint8_t)sw_rng_below(&rng, 256);
        for (int j = 0; j < n; j++)
            for (size_t e = 0; e < k; e++)
                b[(size_t)j * ldb + e] =
                    extreme ? -128 : (int8_t)((int)sw_rng_below(&rng, 256) - 128);
        sw_i8_packed *p = NULL;
        CHECK(sw_i8_pack(b, n, k, ldb, &p));
        sw_i8_gemm_with(SW_I8_KERNEL_PORTABLE, m, a, lda, p, want, (size_t)n);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                int64_t s = 0;
                for (size_t e = 0; e < k; e++)
                    s += (int64_t)a[(size_t)i * lda + e] * b[(size_t)j * ldb + e];
                assert_int_equal(want[(size_t)i * n + j], s);
            }
        for (int kern = 0; kern < SW_I8_KERNEL_COUNT; kern++) {
            if (!sw_i8_kernel_available((sw_i8_kernel)kern)) continue;
            memset(got, 0x55, (size_t)m * n * sizeof *got);
            sw_i8_gemm_with((sw_i8_kernel)kern, m, a, lda, p, got, (size_t)n);
            if (memcmp(got, want, (size_t)m * n * sizeof *got) != 0)
                fail_msg("kernel %s differs from the portable loop at %dx%dx%zu",
                         sw_i8_kernel_name((sw_i8_kernel)kern), m, n, k);
            checked++;
        }
        sw_i8_packed_free(p);
        free(a);
        free(b);
        free(want);
        free(got);
    }
    assert_true(checked >= 6);
    /* The selection is the best available kernel. */
    sw_i8_kernel sel = sw_i8_kernel_selected();
    assert_true(sw_i8_kernel_available(sel));
    for (int k = sel + 1; k < SW_I8_KERNEL_COUNT; k++)
        assert_false(sw_i8_kernel_available((sw_i8_kernel)k));
}

/* ---- conversion -------------------------------------------------------------------------- */

/* Eval-mode outputs of the wrapped (simulated) model and of the int8 model on the same batch:
 * they must agree to float rounding, except where that rounding moves an output across a
 * quantization step of the last output target, which moves it by that step at most. */
static void compare_models(sw_model *sim, sw_int8_model *i8, const sw_dataset *ds, float step,
                           int *n_int8) {
    sw_shape xs = sw_shape_4d(ds->n, 2, 8, 8);
    sw_tensor x = sw_tensor_view(ds->images, &xs);
    sw_model_set_training(sim, false);
    const sw_tensor *ys = NULL, *yi = NULL;
    CHECK(sw_model_forward(sim, &x, &ys));
    float *want = malloc(ys->numel * sizeof *want);
    assert_non_null(want);
    memcpy(want, ys->data, ys->numel * sizeof *want);
    CHECK(sw_int8_model_forward(i8, &x, &yi));
    assert_int_equal(yi->numel, ys->numel);
    size_t off_grid = 0;
    for (size_t e = 0; e < yi->numel; e++) {
        float d = fabsf(yi->data[e] - want[e]);
        if (d <= 1e-4f + 1e-4f * fabsf(want[e])) continue;
        if (step > 0 && d <= step * 1.001f) {
            off_grid++;
            continue;
        }
        fail_msg("output %zu: int8 %.9g, simulated %.9g", e, (double)yi->data[e], (double)want[e]);
    }
    assert_true(off_grid * 50 <= yi->numel); /* rare: at most 2% of the outputs */
    int counts[3];
    sw_int8_model_counts(i8, counts);
    *n_int8 = counts[SW_I8_INT8];
    free(want);
}

/* QAT with folded BatchNorm + ReLU, affine int8 per-channel weights, per-tensor inputs, an L1
 * pruner on the conv, and int8 (per-tensor, symmetric) on the Linears: the int8 model (three
 * integer layers, BN and ReLU absorbed) computes the simulation's outputs, and the pruned
 * filters are exact zeros in its integers. */
static void check_conversion(int groups, int stride, bool uint_input) {
    sw_model *m = net(groups, stride, 5);
    sw_dataset *ds = images(24, 6);
    sw_train_config cfg = sw_train_config_default();
    cfg.batch_size = 8;
    cfg.optim = sw_optim_config_default(SW_OPTIM_SGD);
    cfg.optim.lr = 0.05f;
    cfg.lr = (sw_lr_schedule){.kind = SW_LR_CONSTANT};
    cfg.eval_every_epoch = 0;
    sw_evaluator ev;
    CHECK(sw_evaluator_init(&ev, ds, NULL, &cfg));
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    cJSON *pc = parse("[{\"op_names\": [\"conv\"], \"sparse_ratio\": 0.34}]");
    char qtext[1200];
    snprintf(qtext, sizeof qtext,
             "[{\"op_names\": [\"conv\"], \"quant_dtype\": \"int8\", \"quant_scheme\": "
             "\"affine\", \"target_names\": [\"_input_\", \"weight\", \"bias\", \"_output_\"], "
             "\"target_settings\": {\"weight\": {\"granularity\": \"out_channel\"}%s}, "
             "\"fuse_names\": [[\"conv\", \"bn\", \"relu\"]]}, "
             "{\"op_names\": [\"fc1\", \"fc2\"], \"quant_dtype\": \"int8\", \"quant_scheme\": "
             "\"symmetric\", \"target_names\": [\"_input_\", \"weight\", \"_output_\"]}]",
             uint_input ? ", \"_input_\": {\"quant_dtype\": \"uint8\"}" : "");
    cJSON *qc = parse(qtext);
    sw_compressor *pruner = NULL, *q = NULL;
    CHECK(sw_pruner_l1norm_new(ws, pc, &ev, &pruner));
    CHECK(sw_quantizer_qat_from_compressor(pruner, qc, 0, NULL, &q));
    CHECK(sw_compressor_compress(q, 6, -1));
    sw_int8_model *i8 = NULL;
    CHECK(sw_int8_model_from_compressor(q, &i8));
    assert_int_equal(i8->nodes[sw_model_find(m, "bn")].mode, SW_I8_IDENTITY);
    assert_int_equal(i8->nodes[sw_model_find(m, "relu")].mode, SW_I8_IDENTITY);
    assert_true(i8->nodes[sw_model_find(m, "conv")].fused_relu);
    /* The step of fc2's output grid bounds a rounding flip. */
    sw_quant_target *out = sw_quantizer_find(sw_quantizer_of(q), "fc2", "_output_0");
    int n_int8 = 0;
    compare_models(m, i8, ds, out->scale[0], &n_int8);
    assert_int_equal(n_int8, 3);
    /* Pruned filters: every stored weight equals its zero point (real value exactly 0). */
    sw_masks masks;
    CHECK(sw_pruner_get_masks(pruner, &masks));
    const sw_tensor *mask = sw_masks_find(&masks, "conv", "weight");
    const sw_i8_layer *l = i8->nodes[sw_model_find(m, "conv")].layer;
    int zero_rows = 0;
    for (int o = 0; o < l->out_channels; o++) {
        if (mask->data[(size_t)o * l->k] != 0.0f) continue;
        zero_rows++;
        for (size_t e = 0; e < l->k; e++)
            assert_int_equal(l->w[(size_t)o * l->ldk + e], (int)l->w_zp[o]);
    }
    assert_int_equal(zero_rows, 2);
    sw_masks_deinit(&masks);

    /* Saved and loaded: bit-identical outputs. */
    char path[512];
    snprintf(path, sizeof path, "%s/net_%d_%d_%d.int8.safetensors", sw_test_tmpdir(), groups,
             stride, uint_input);
    CHECK(sw_int8_model_save(i8, path, NULL));
    assert_true(sw_int8_model_file_is(path));
    sw_int8_model *back = NULL;
    CHECK(sw_int8_model_load(path, &back));
    sw_shape xs = sw_shape_4d(ds->n, 2, 8, 8);
    sw_tensor x = sw_tensor_view(ds->images, &xs);
    const sw_tensor *y = NULL;
    CHECK(sw_int8_model_forward(i8, &x, &y));
    float *first = malloc(y->numel * sizeof *first);
    assert_non_null(first);
    memcpy(first, y->data, y->numel * sizeof *first);
    CHECK(sw_int8_model_forward(back, &x, &y));
    assert_memory_equal(first, y->data, y->numel * sizeof *first);
    /* Accuracy through the evaluation helper equals the simulation's. */
    double acc_i8 = 0, acc_sim = 0, l1 = 0, l2 = 0;
    CHECK(sw_int8_model_evaluate(back, ds, 10, &acc_i8, &l1));
    sw_evaluator ev2;
    CHECK(sw_evaluator_init(&ev2, NULL, ds, &cfg));
    CHECK(sw_evaluator_evaluate(&ev2, m, &acc_sim, &l2));
    assert_float_equal(acc_i8, acc_sim, 1.0 / 24 + 1e-9);
    sw_evaluator_deinit(&ev2);
    free(first);
    sw_int8_model_free(back);

    sw_int8_model_free(i8);
    sw_compressor_free(q);
    sw_compressor_free(pruner);
    sw_wrapper_set_release(ws);
    cJSON_Delete(pc);
    cJSON_Delete(qc);
    sw_evaluator_deinit(&ev);
    sw_dataset_free(ds);
    sw_model_free(m);
}

/* The int8 model equals the fake-quantized one: plain, grouped and strided convolutions, and
 * an unsigned input dtype (zero point 128), through a save/load round trip. */
static void test_quant_int8_matches_simulation(void **state) {
    (void)state;
    check_conversion(1, 1, false);
    check_conversion(2, 2, false);
    check_conversion(1, 1, true);
}

/* The same with every available kernel forced: the integers do not depend on the kernel. */
static void test_quant_int8_kernels_same_model(void **state) {
    (void)state;
    sw_i8_kernel keep = sw_i8_kernel_selected();
    for (int k = 0; k < SW_I8_KERNEL_COUNT; k++) {
        if (!sw_i8_kernel_available((sw_i8_kernel)k)) continue;
        sw_i8_kernel_select((sw_i8_kernel)k);
        check_conversion(1, 1, false);
    }
    sw_i8_kernel_select(keep);
}

/* Quantizers without an integer form (DoReFa here) and layers whose input is not quantized stay
 * float nodes with their fake-quantized weights baked in: the outputs still match. */
static void test_quant_int8_float_fallback(void **state) {
    (void)state;
    sw_model *m = net(1, 1, 9);
    sw_dataset *ds = images(8, 10);
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    cJSON *qc = parse("[{\"op_names\": [\"fc1\"], \"quant_dtype\": \"int4\", \"quant_scheme\": "
                      "\"affine\", \"target_names\": [\"_input_\", \"weight\"]}, "
                      "{\"op_names\": [\"relu2\"], \"quant_dtype\": \"int4\", \"quant_scheme\": "
                      "\"affine\", \"target_names\": [\"_output_\"]}]");
    sw_compressor *q = NULL;
    CHECK(sw_quantizer_dorefa_new(ws, qc, NULL, false, 0, &q));
    /* DoReFa sets its scales at the first forward (NNI's scales are None before). */
    sw_shape xs = sw_shape_4d(ds->n, 2, 8, 8);
    sw_tensor x = sw_tensor_view(ds->images, &xs);
    const sw_tensor *y = NULL;
    sw_model_set_training(m, false);
    CHECK(sw_model_forward(m, &x, &y));
    sw_int8_model *i8 = NULL;
    CHECK(sw_int8_model_from_compressor(q, &i8));
    int n_int8 = -1;
    compare_models(m, i8, ds, 0.0f, &n_int8);
    assert_int_equal(n_int8, 0);
    char path[512];
    snprintf(path, sizeof path, "%s/dorefa.int8.safetensors", sw_test_tmpdir());
    CHECK(sw_int8_model_save(i8, path, NULL));
    sw_int8_model *back = NULL;
    CHECK(sw_int8_model_load(path, &back));
    compare_models(m, back, ds, 0.0f, &n_int8);
    sw_int8_model_free(back);
    sw_int8_model_free(i8);
    sw_compressor_free(q);
    sw_wrapper_set_release(ws);
    cJSON_Delete(qc);
    sw_dataset_free(ds);
    sw_model_free(m);
}

/* LSQ's learned scales (effective scale of the batch for inputs) and PTQ's affine uint8 inputs
 * have integer forms too: the int8 model matches the simulation. */
static void test_quant_int8_lsq_and_ptq(void **state) {
    (void)state;
    for (int algo = 0; algo < 2; algo++) {
        sw_model *m = net(1, 1, 11 + algo);
        sw_dataset *ds = images(16, 12);
        sw_train_config cfg = sw_train_config_default();
        cfg.batch_size = 8;
        cfg.optim = sw_optim_config_default(SW_OPTIM_SGD);
        cfg.optim.lr = 0.01f;
        cfg.lr = (sw_lr_schedule){.kind = SW_LR_CONSTANT};
        cfg.eval_every_epoch = 0;
        sw_evaluator ev;
        CHECK(sw_evaluator_init(&ev, ds, NULL, &cfg));
        sw_wrapper_set *ws = NULL;
        CHECK(sw_wrapper_set_new(m, &ws));
        cJSON *qc =
            parse(algo == 0 ? "[{\"op_types\": [\"Conv2d\", \"Linear\"], \"quant_dtype\": "
                              "\"int8\", \"quant_scheme\": \"symmetric\", \"target_names\": "
                              "[\"_input_\", \"weight\"]}]"
                            : "[{\"op_types\": [\"Conv2d\", \"Linear\"], \"quant_dtype\": "
                              "\"uint8\", \"quant_scheme\": \"affine\", \"target_names\": "
                              "[\"_input_\", \"weight\"]}]");
        sw_compressor *q = NULL;
        if (algo == 0)
            CHECK(sw_quantizer_lsq_new(ws, qc, &ev, &q));
        else
            CHECK(sw_quantizer_ptq_new(ws, qc, &ev, &q));
        CHECK(sw_compressor_compress(q, 2, -1));
        sw_int8_model *i8 = NULL;
        CHECK(sw_int8_model_from_compressor(q, &i8));
        int n_int8 = 0;
        compare_models(m, i8, ds, 0.0f, &n_int8);
        assert_int_equal(n_int8, 3);
        sw_int8_model_free(i8);
        sw_compressor_free(q);
        sw_wrapper_set_release(ws);
        cJSON_Delete(qc);
        sw_evaluator_deinit(&ev);
        sw_dataset_free(ds);
        sw_model_free(m);
    }
}

/* Float model files and int8 model files are told apart, each loader refusing the other's with
 * a message that says what the file is. */
static void test_quant_int8_file_formats(void **state) {
    (void)state;
    sw_model *m = net(1, 1, 3);
    char fpath[512], qpath[512];
    snprintf(fpath, sizeof fpath, "%s/float.safetensors", sw_test_tmpdir());
    snprintf(qpath, sizeof qpath, "%s/q.int8.safetensors", sw_test_tmpdir());
    CHECK(sw_model_save(m, fpath, NULL));
    assert_false(sw_int8_model_file_is(fpath));
    assert_false(sw_int8_model_file_is("/nonexistent/file"));
    sw_int8_model *i8 = NULL;
    assert_int_equal(sw_int8_model_load(fpath, &i8), SW_ERR_FORMAT);
    assert_non_null(strstr(sw_error_message(), "not an int8 model file"));
    sw_model *copy = NULL;
    CHECK(sw_model_clone(m, &copy));
    CHECK(sw_int8_model_wrap(copy, &i8));
    CHECK(sw_int8_model_save(i8, qpath, NULL));
    assert_true(sw_int8_model_file_is(qpath));
    sw_model *bad = NULL;
    assert_int_equal(sw_model_load(qpath, &bad), SW_ERR_FORMAT);
    sw_int8_model_free(i8);
    sw_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quant_int8_gemm_kernels_agree),
        cmocka_unit_test(test_quant_int8_matches_simulation),
        cmocka_unit_test(test_quant_int8_kernels_same_model),
        cmocka_unit_test(test_quant_int8_float_fallback),
        cmocka_unit_test(test_quant_int8_lsq_and_ptq),
        cmocka_unit_test(test_quant_int8_file_formats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
