/* test_quant.c - quantizers: arithmetic by hand, straight-through estimators against finite
 * differences, config errors, BatchNorm folding, calibration round trip, fusion with a pruner
 * and a distiller. NNI's own numbers are checked in test_quant_golden.c. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

#include "compress/distillation/distillers.h"
#include "compress/pruning/pruners.h"
#include "compress/quantization/bn_fold.h"
#include "compress/quantization/quantizers.h"

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

static void add(sw_model *m, const char *name, sw_layer_kind kind, const sw_layer_hparams *hp,
                const char *input) {
    sw_layer *l = NULL;
    CHECK(sw_layer_new(kind, hp, &l));
    const char *inputs[1] = {input};
    CHECK(sw_model_add(m, name, l, input ? inputs : NULL, input ? 1 : 0, NULL));
}

/* [1, 1, in] -> flat -> fc Linear(in, out). */
static sw_model *linear_model(int in, int out) {
    sw_model *m = NULL;
    sw_shape s = sw_shape_3d(1, 1, in);
    CHECK(sw_model_new("tiny", &s, &m));
    sw_layer_hparams fl = {0};
    add(m, "flat", SW_LAYER_FLATTEN, &fl, NULL);
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_LINEAR);
    hp.in_features = in;
    hp.out_features = out;
    add(m, "fc", SW_LAYER_LINEAR, &hp, NULL);
    CHECK(sw_model_finalize(m));
    sw_model_init_params(m, 3);
    return m;
}

/* [1, 6, 6] -> conv Conv2d(1, 4, 3, p1) [-> bn] -> relu -> flat -> fc Linear(144, 3). */
static sw_model *conv_model(bool with_bn, bool conv_bias, uint64_t seed) {
    sw_model *m = NULL;
    sw_shape s = sw_shape_3d(1, 6, 6);
    CHECK(sw_model_new("convnet", &s, &m));
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_CONV2D);
    hp.in_channels = 1;
    hp.out_channels = 4;
    hp.kernel[0] = hp.kernel[1] = 3;
    hp.padding[0] = hp.padding[1] = 1;
    hp.bias = conv_bias;
    add(m, "conv", SW_LAYER_CONV2D, &hp, NULL);
    if (with_bn) {
        sw_layer_hparams bn = sw_layer_hparams_default(SW_LAYER_BATCHNORM2D);
        bn.num_features = 4;
        add(m, "bn", SW_LAYER_BATCHNORM2D, &bn, NULL);
    }
    sw_layer_hparams r = sw_layer_hparams_default(SW_LAYER_RELU);
    add(m, "relu", SW_LAYER_RELU, &r, NULL);
    sw_layer_hparams fl = {0};
    add(m, "flat", SW_LAYER_FLATTEN, &fl, NULL);
    sw_layer_hparams fc = sw_layer_hparams_default(SW_LAYER_LINEAR);
    fc.in_features = 144;
    fc.out_features = 3;
    add(m, "fc", SW_LAYER_LINEAR, &fc, NULL);
    CHECK(sw_model_finalize(m));
    sw_model_init_params(m, seed);
    if (with_bn) {
        /* Non-trivial statistics and affine parameters, so that folding has work to do. */
        sw_layer *bn = m->nodes[sw_model_find(m, "bn")].layer;
        for (int c = 0; c < 4; c++) {
            bn->params[0].value.data[c] = 0.5f + 0.3f * (float)c;  /* weight */
            bn->params[1].value.data[c] = -0.2f + 0.1f * (float)c; /* bias */
            bn->params[2].value.data[c] = 0.05f * (float)(c - 1);  /* running_mean */
            bn->params[3].value.data[c] = 0.3f + 0.4f * (float)c;  /* running_var */
        }
    }
    return m;
}

static sw_param *param(sw_model *m, const char *node, const char *name) {
    sw_layer *l = m->nodes[sw_model_find(m, node)].layer;
    return &l->params[sw_layer_param_index(l, name)];
}

static sw_dataset *images(int n, int c, int h, int w, uint64_t seed) {
    sw_dataset *ds = calloc(1, sizeof *ds);
    assert_non_null(ds);
    *ds = (sw_dataset){.n = n, .channels = c, .height = h, .width = w, .n_classes = 3};
    ds->images = malloc((size_t)n * (size_t)(c * h * w) * sizeof(float));
    ds->labels = malloc((size_t)n);
    assert_non_null(ds->images);
    assert_non_null(ds->labels);
    sw_rng rng;
    sw_rng_init(&rng, seed, 1);
    for (int i = 0; i < n * c * h * w; i++) ds->images[i] = 2.0f * sw_rng_uniform(&rng) - 1.0f;
    for (int i = 0; i < n; i++) ds->labels[i] = (uint8_t)(i % 3);
    snprintf(ds->name, sizeof ds->name, "random");
    return ds;
}

static sw_train_config sgd(int batch, float lr) {
    sw_train_config c = sw_train_config_default();
    c.batch_size = batch;
    c.optim = sw_optim_config_default(SW_OPTIM_SGD);
    c.optim.lr = lr;
    c.optim.momentum = 0.0f;
    c.optim.nesterov = false;
    c.optim.weight_decay = 0.0f;
    c.lr = (sw_lr_schedule){.kind = SW_LR_CONSTANT};
    c.eval_every_epoch = 0;
    return c;
}

/* ---- arithmetic by hand ------------------------------------------------------------------ */

/* Scales and zero points from ranges: NNI's reference vector (ReLU6, int8 affine: 6/254, -127),
 * symmetric int and uint zero points, the range widened to contain 0, the epsilon floor. */
static void test_quant_scale_from_range(void **state) {
    (void)state;
    float s, z;
    sw_fq_scale_from_range(0.0f, 6.0f, -127, 127, SW_QUANT_SCHEME_AFFINE, &s, &z);
    assert_true(s == 6.0f / 254.0f);
    assert_true(z == -127.0f);
    sw_fq_scale_from_range(-2.0f, 1.0f, -127, 127, SW_QUANT_SCHEME_SYMMETRIC, &s, &z);
    assert_true(s == 2.0f / 127.0f);
    assert_true(z == 0.0f);
    /* No scheme means symmetric; uint8 puts the zero point at 128. */
    sw_fq_scale_from_range(-1.0f, 3.0f, 0, 255, SW_QUANT_SCHEME_NONE, &s, &z);
    assert_true(s == 3.0f / 127.5f);
    assert_true(z == 128.0f);
    /* [1, 3] is widened to [0, 3]: zp = qmin - round(0 / s) = -7 for int4. */
    sw_fq_scale_from_range(1.0f, 3.0f, -7, 7, SW_QUANT_SCHEME_AFFINE, &s, &z);
    assert_true(s == 3.0f / 14.0f);
    assert_true(z == -7.0f);
    /* [-3, -1] -> [-3, 0]: zp = -7 - round(-3 / (3/14)) = -7 + 14 = 7 (clamped at qmax). */
    sw_fq_scale_from_range(-3.0f, -1.0f, -7, 7, SW_QUANT_SCHEME_AFFINE, &s, &z);
    assert_true(z == 7.0f);
    /* An all-zero range keeps a positive scale. */
    sw_fq_scale_from_range(0.0f, 0.0f, -127, 127, SW_QUANT_SCHEME_AFFINE, &s, &z);
    assert_true(s == FLT_EPSILON);
    /* int4 restricted range and the EMA's float32 arithmetic. */
    sw_quant_dtype d;
    char why[160];
    assert_true(sw_quant_dtype_parse("int4", &d, why, sizeof why));
    assert_int_equal(d.qmin, -7);
    assert_int_equal(d.qmax, 7);
    assert_true(sw_quant_dtype_parse("uint2", &d, why, sizeof why));
    assert_int_equal(d.qmax, 3);
    assert_false(sw_quant_dtype_parse("int1", &d, why, sizeof why));
    assert_false(sw_quant_dtype_parse("float8", &d, why, sizeof why));
    assert_true(sw_fq_ema(1.0f, 2.0f) == 1.0f * 0.99f + 0.01f * 2.0f);
}

/* clamp_round: rounding half to even on x/s + zp, clamping to [qmin, qmax], y = (q - zp) * s. */
static void test_quant_clamp_round_hand(void **state) {
    (void)state;
    float s = 0.5f, z = 0.0f;
    sw_fq_scale p = {.scale = &s, .zero_point = &z, .stride = 0, .qmin = -7, .qmax = 7};
    /* x/s:       0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> -0, -1.5 -> -2, 9 -> 7, -20 -> -7 */
    const float x[] = {0.25f, 0.75f, 1.25f, -0.25f, -0.75f, 4.5f, -10.0f, 1.1f};
    const float want[] = {0.0f, 1.0f, 1.0f, -0.0f, -1.0f, 3.5f, -3.5f, 1.0f};
    float y[8];
    sw_fq_clamp_round(x, y, 8, &p);
    for (int i = 0; i < 8; i++) assert_true(y[i] == want[i]);
    /* An affine zero point shifts the grid: zp = -3, range [-7, 7] covers x/s in [-4, 10]. */
    z = -3.0f;
    const float x2[] = {-2.0f, -2.5f, 5.0f, 6.0f};
    const float want2[] = {-2.0f, -2.0f, 5.0f, 5.0f};
    sw_fq_clamp_round(x2, y, 4, &p);
    for (int i = 0; i < 4; i++) assert_true(y[i] == want2[i]);
    /* QAT's STE zeroes the gradient where x/s + zp left [qmin, qmax]. */
    float g[4] = {1, 1, 1, 1};
    sw_fq_qat_backward(x2, g, 4, &p);
    assert_true(g[0] == 1.0f && g[1] == 0.0f && g[2] == 1.0f && g[3] == 0.0f);
}

/* LSQ forward and its scale gradient by hand: s = 0.5, int4 (qmax 7), x = [0.6, -0.2, 5.0],
 * g = 1/sqrt(7 * 3); v = [1.2, -0.4, 10 -> 7]; y = [0.5, -0, 3.5];
 * dL/ds = g * sum(up * (round(v) - v) inside, up * qmax clipped) with up = [1, 2, 3]:
 *       = g * ((1 - 1.2) + 2 * (0 + 0.4) + 3 * 7) = g * 21.6;  dL/dx = [1, 2, 0]. */
static void test_quant_lsq_hand(void **state) {
    (void)state;
    double gf = sw_fq_lsq_grad_factor(7, 3);
    assert_true(fabs(gf - 1.0 / sqrt(21.0)) < 1e-15);
    float s = sw_fq_lsq_effective_scale(0.5f, gf);
    assert_true(fabsf(s - 0.5f) <= 1e-7f);
    float z = 0.0f;
    sw_fq_scale p = {.scale = &s, .zero_point = &z, .stride = 0, .qmin = -7, .qmax = 7};
    const float x[] = {0.6f, -0.2f, 5.0f};
    float y[3], g[3] = {1.0f, 2.0f, 3.0f};
    double ds[3];
    sw_fq_lsq_forward(x, y, 3, &p);
    assert_float_equal(y[0], 0.5f, 1e-7);
    assert_float_equal(y[1], 0.0f, 1e-7);
    assert_float_equal(y[2], 3.5f, 1e-6);
    sw_fq_lsq_backward(x, g, 3, &p, ds);
    double sum = (ds[0] + ds[1] + ds[2]) * gf;
    assert_float_equal(sum, 21.6 * gf, 1e-5);
    assert_float_equal(g[0], 1.0f, 1e-6);
    assert_float_equal(g[1], 2.0f, 1e-6);
    assert_true(g[2] == 0.0f);
}

/* LSQ+ by hand: s = 0.5, zp = 1.5, int4: x = [0.25, 5]: u = [2, 11.5 -> 7];
 * y = [(2 - 1.5) * 0.5, (7 - 1.5) * 0.5] = [0.25, 2.75]; dL/dzp = -s where clipped. */
static void test_quant_lsqplus_hand(void **state) {
    (void)state;
    float s = 0.5f, z = 1.5f;
    sw_fq_scale p = {.scale = &s, .zero_point = &z, .stride = 0, .qmin = -7, .qmax = 7};
    const float x[] = {0.25f, 5.0f};
    float y[2], g[2] = {1.0f, 1.0f};
    double ds[2], dz[2];
    sw_fq_lsq_plus_forward(x, y, 2, &p);
    assert_true(y[0] == 0.25f && y[1] == 2.75f);
    sw_fq_lsq_plus_backward(x, g, 2, &p, ds, dz);
    assert_true(g[0] == 1.0f && g[1] == 0.0f);
    assert_float_equal(ds[0], 0.0, 1e-12); /* round(2) - 2 */
    assert_float_equal(ds[1], 7.0 - 1.5, 1e-12);
    assert_float_equal(dz[0], 0.0, 1e-12);
    assert_float_equal(dz[1], -0.5, 1e-12);
}

/* DoReFa by hand (int4 affine on [0, 1]: s = 1/14, zp = -7): weights x = [0, big, -big]:
 * tanh -> [0, ~1, ~-1], u = [0.5, 1, 0] -> levels 7/14, 14/14, 0 -> y = [0, 1, -1];
 * outputs clamp to [0, 1] first; BNN takes signs with sign(0) = +1. */
static void test_quant_dorefa_bnn_hand(void **state) {
    (void)state;
    float s, z;
    sw_fq_scale_from_range(0.0f, 1.0f, -7, 7, SW_QUANT_SCHEME_AFFINE, &s, &z);
    assert_true(s == 1.0f / 14.0f && z == -7.0f);
    sw_fq_scale p = {.scale = &s, .zero_point = &z, .stride = 0, .qmin = -7, .qmax = 7};
    const float w[] = {0.0f, 20.0f, -20.0f};
    float y[3];
    sw_fq_dorefa_weight_forward(w, y, 3, &p);
    assert_true(y[0] == 0.0f && y[1] == 1.0f && y[2] == -1.0f);
    const float o[] = {-0.5f, 0.5f, 3.0f};
    sw_fq_dorefa_output_forward(o, y, 3, &p);
    assert_true(y[0] == 0.0f && y[2] == 1.0f);
    assert_float_equal(y[1], 7.0f / 14.0f, 1e-7); /* 0.5 = 7/14 exactly on the grid */
    float g[3] = {1, 1, 1};
    sw_fq_dorefa_output_backward(o, g, 3);
    assert_true(g[0] == 0.0f && g[1] == 1.0f && g[2] == 0.0f);
    const float b[] = {-0.3f, 0.0f, 2.0f};
    sw_fq_bnn_forward(b, y, 3);
    assert_true(y[0] == -1.0f && y[1] == 1.0f && y[2] == 1.0f);
    float gb[3] = {1, 1, 1};
    sw_fq_bnn_output_backward(b, gb, 3);
    assert_true(gb[0] == 1.0f && gb[1] == 1.0f && gb[2] == 0.0f);
}

/* ---- straight-through estimators against finite differences ------------------------------ */

/* Over whole quantization steps (h = k * s), the fake-quant's finite difference is exactly the
 * straight-through gradient: 1 well inside the clipping range, 0 well outside (away from
 * rounding steps, a rounded function moves by exactly h or not at all). Checked for
 * clamp_round/QAT, LSQ, LSQ+ and DoReFa outputs; DoReFa's weight gradient against central
 * differences of its smooth part (tanh normalised, without the rounding). */
static void test_quant_ste_finite_differences(void **state) {
    (void)state;
    sw_rng rng;
    sw_rng_init(&rng, 11, 2);
    const float s = 0.125f;
    float z = 0.0f, sc = s;
    sw_fq_scale p = {.scale = &sc, .zero_point = &z, .stride = 0, .qmin = -127, .qmax = 127};
    for (int trial = 0; trial < 200; trial++) {
        /* Inside: |x| < 10; outside: |x| > 20 (the range ends at 127 * 0.125 = 15.9). */
        bool inside = trial % 2 == 0;
        float x = inside ? 20.0f * sw_rng_uniform(&rng) - 10.0f
                         : (trial % 4 == 1 ? 1.0f : -1.0f) * (20.0f + 10.0f * sw_rng_uniform(&rng));
        float h = 4.0f * s;
        float xs[2] = {x + h, x - h}, ys[2];
        double want = inside ? 1.0 : 0.0;
        /* clamp_round / QAT */
        sw_fq_clamp_round(xs, ys, 2, &p);
        double fd = ((double)ys[0] - (double)ys[1]) / (2.0 * h);
        float g = 1.0f;
        sw_fq_qat_backward(&x, &g, 1, &p);
        assert_float_equal(fd, want, 1e-6);
        assert_float_equal(g, want, 0);
        /* LSQ */
        sw_fq_lsq_forward(xs, ys, 2, &p);
        fd = ((double)ys[0] - (double)ys[1]) / (2.0 * h);
        g = 1.0f;
        double ds;
        sw_fq_lsq_backward(&x, &g, 1, &p, &ds);
        assert_float_equal(fd, want, 1e-6);
        assert_float_equal(g, want, 1e-6);
        /* LSQ+ with an integer zero point */
        float z3 = 3.0f;
        sw_fq_scale p3 = p;
        p3.zero_point = &z3;
        sw_fq_lsq_plus_forward(xs, ys, 2, &p3);
        fd = ((double)ys[0] - (double)ys[1]) / (2.0 * h);
        double dz;
        g = 1.0f;
        sw_fq_lsq_plus_backward(&x, &g, 1, &p3, &ds, &dz);
        assert_float_equal(fd, want, 1e-6);
        assert_float_equal(g, want, 1e-6);
    }
    /* DoReFa outputs: [0, 1] on a 1/14 grid; inside (0.2, 0.8) with h = 2/14, outside beyond. */
    float so, zo;
    sw_fq_scale_from_range(0.0f, 1.0f, -7, 7, SW_QUANT_SCHEME_AFFINE, &so, &zo);
    sw_fq_scale po = {.scale = &so, .zero_point = &zo, .stride = 0, .qmin = -7, .qmax = 7};
    const float xo[] = {0.3f, 0.5f, 0.7f, -0.6f, 1.7f};
    const double wo[] = {1, 1, 1, 0, 0};
    for (int i = 0; i < 5; i++) {
        float h = 2.0f / 14.0f;
        float xs[2] = {xo[i] + h, xo[i] - h}, ys[2];
        sw_fq_dorefa_output_forward(xs, ys, 2, &po);
        double fd = ((double)ys[0] - (double)ys[1]) / (2.0 * h);
        float g = 1.0f;
        sw_fq_dorefa_output_backward(&xo[i], &g, 1);
        assert_float_equal(fd, wo[i], 1e-5);
        assert_float_equal(g, wo[i], 0);
    }
    /* DoReFa weights: L = sum(r * y_smooth), y_smooth = 2 (tanh(x)/(2 max|tanh|) + 0.5) - 1. */
    enum { N = 6 };
    float w[N] = {0.3f, -1.2f, 0.7f, 2.0f, -0.1f, 0.9f}, r[N] = {0.5f, -1, 2, 0.3f, 1, -0.7f};
    float gw[N];
    memcpy(gw, r, sizeof gw);
    sw_fq_dorefa_weight_backward(w, gw, N);
    for (int i = 0; i < N; i++) {
        double lp = 0, lm = 0, h = 1e-4;
        for (int sign = -1; sign <= 1; sign += 2) {
            double wv[N], m = 0, l = 0;
            for (int k = 0; k < N; k++) wv[k] = w[k] + (k == i ? sign * h : 0);
            for (int k = 0; k < N; k++) m = fmax(m, fabs(tanh(wv[k])));
            for (int k = 0; k < N; k++) l += r[k] * (2 * (tanh(wv[k]) / (2 * m) + 0.5) - 1);
            if (sign < 0)
                lm = l;
            else
                lp = l;
        }
        assert_float_equal(gw[i], (lp - lm) / (2 * h), 1e-4);
    }
}

/* Through a wrapped layer: the weight gradient of a QAT-quantized Linear equals the finite
 * difference of the loss over whole quantization steps of each weight (inside the range), and
 * the quantized weight the layer used is on the scale's grid. */
static void test_quant_ste_through_layer(void **state) {
    (void)state;
    sw_model *m = linear_model(3, 2);
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    cJSON *cl = parse("[{\"op_names\": [\"fc\"], \"target_names\": [\"weight\"], "
                      "\"quant_dtype\": \"int8\", \"quant_scheme\": \"symmetric\"}]");
    sw_compressor *q = NULL;
    CHECK(sw_quantizer_qat_new(ws, cl, NULL, 0, &q));
    float xin[6] = {0.5f, -1.0f, 2.0f, 1.5f, 0.25f, -0.75f};
    sw_shape xs = sw_shape_4d(2, 1, 1, 3);
    sw_tensor x = sw_tensor_view(xin, &xs);
    /* One training forward sets the scale; then eval forwards use it frozen. */
    sw_model_set_training(m, true);
    const sw_tensor *y = NULL;
    CHECK(sw_model_forward(m, &x, &y));
    sw_model_set_training(m, false);
    sw_quant_target *t = sw_quantizer_find(sw_quantizer_of(q), "fc", "weight");
    assert_non_null(t);
    assert_true(t->has_scale);
    float s = t->scale[0];
    float r[4] = {0.3f, -0.8f, 1.1f, 0.4f};
    sw_tensor dy = sw_tensor_view(r, &y->shape);
    sw_model_zero_grad(m);
    CHECK(sw_model_forward(m, &x, &y));
    const sw_tensor *weff = m->ios[sw_model_find(m, "fc")].params[0];
    for (size_t i = 0; i < weff->numel; i++) {
        float k = weff->data[i] / s;
        assert_float_equal(k, rintf(k), 1e-4);
    }
    CHECK(sw_model_backward(m, &dy));
    sw_param *w = param(m, "fc", "weight");
    int checked = 0;
    for (size_t i = 0; i < w->value.numel; i++) {
        float keep = w->value.data[i], h = 3.0f * s, l[2];
        /* Within h of the clipping range, one side of the difference is clipped. */
        if (fabsf(keep) / s + 3.5f > 127.0f) continue;
        checked++;
        for (int side = 0; side < 2; side++) {
            w->value.data[i] = keep + (side ? -h : h);
            CHECK(sw_model_forward(m, &x, &y));
            double acc = 0;
            for (size_t k = 0; k < y->numel; k++) acc += (double)y->data[k] * r[k];
            l[side] = (float)acc;
        }
        w->value.data[i] = keep;
        assert_float_equal(w->grad.data[i], ((double)l[0] - l[1]) / (2.0 * h), 2e-4);
    }
    assert_true(checked >= 4);
    sw_compressor_free(q);
    sw_wrapper_set_release(ws);
    cJSON_Delete(cl);
    sw_model_free(m);
}

/* ---- config ------------------------------------------------------------------------------ */

/* Expects construction to fail with SW_ERR_CONFIG and a message containing `needle`. */
static void expect_config_error(sw_model *m, const char *config, const char *needle) {
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    cJSON *cl = parse(config);
    sw_compressor *q = NULL;
    sw_status st = sw_quantizer_qat_new(ws, cl, NULL, 0, &q);
    if (st != SW_ERR_CONFIG)
        fail_msg("expected a config error for %s, got %s", config, sw_status_str(st));
    if (!strstr(sw_error_message(), needle))
        fail_msg("message \"%s\" does not mention \"%s\"", sw_error_message(), needle);
    assert_int_equal(sw_wrapper_set_transform_count(ws), 0);
    cJSON_Delete(cl);
    sw_wrapper_set_release(ws);
}

/* Unknown dtypes and schemes, a missing quant_dtype, fuse tuples that are not a conv followed by
 * its BatchNorm (or activation), fuse_names inside target_settings, an absorbed module that is
 * configured itself: each a config error naming the entry and the key. */
static void test_quant_config_errors(void **state) {
    (void)state;
    sw_model *m = conv_model(true, true, 1);
    expect_config_error(m, "[{\"op_names\": [\"conv\"], \"quant_dtype\": \"int9x\"}]",
                        "config_list[0].quant_dtype");
    expect_config_error(m,
                        "[{\"op_names\": [\"conv\"], \"quant_dtype\": \"int8\"}, "
                        "{\"op_names\": [\"fc\"], \"quant_dtype\": \"int8\", "
                        "\"quant_scheme\": \"asym\"}]",
                        "config_list[1].quant_scheme");
    expect_config_error(m, "[{\"op_names\": [\"conv\"], \"quant_scheme\": \"affine\"}]",
                        "quant_dtype is required");
    expect_config_error(m,
                        "[{\"op_names\": [\"conv\"], \"quant_dtype\": \"int8\", "
                        "\"fuse_names\": [[\"conv\", \"fc\"]]}]",
                        "not a fusable pattern");
    expect_config_error(m,
                        "[{\"op_names\": [\"conv\"], \"quant_dtype\": \"int8\", "
                        "\"fuse_names\": [[\"conv\", \"relu\"]]}]",
                        "only consumer");
    expect_config_error(m,
                        "[{\"op_names\": [\"conv\"], \"quant_dtype\": \"int8\", "
                        "\"fuse_names\": [[\"conv\", \"nope\"]]}]",
                        "config_list[0].fuse_names");
    expect_config_error(m,
                        "[{\"op_names\": [\"conv\"], \"quant_dtype\": \"int8\", "
                        "\"target_settings\": {\"weight\": {\"fuse_names\": [[\"conv\", "
                        "\"bn\"]]}}}]",
                        "top level");
    expect_config_error(m,
                        "[{\"op_names\": [\"conv\", \"bn\"], \"quant_dtype\": \"int8\", "
                        "\"fuse_names\": [[\"conv\", \"bn\"]]}]",
                        "cannot be compressed itself");
    expect_config_error(m,
                        "[{\"op_names\": [\"conv\"], \"target_names\": [\"_input_\"], "
                        "\"quant_dtype\": \"int8\", \"fuse_names\": [[\"conv\", \"bn\"]]}]",
                        "\"weight\" must be a target");
    expect_config_error(m,
                        "[{\"op_names\": [\"relu\"], \"quant_dtype\": \"int8\", "
                        "\"granularity\": \"out_channel\"}]",
                        "parameters only");
    sw_model_free(m);
}

/* Templates: without target_names a Linear quantizes _input_0, weight, bias and _output_0, a
 * ReLU _input_0 and _output_0; a top-level quant_dtype reaches every target. */
static void test_quant_templates(void **state) {
    (void)state;
    sw_model *m = conv_model(false, true, 2);
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    cJSON *cl = parse("[{\"op_types\": [\"Linear\", \"ReLU\"], \"quant_dtype\": \"uint4\"}]");
    sw_compressor *c = NULL;
    CHECK(sw_quantizer_ptq_new(ws, cl, NULL, &c));
    sw_quantizer *q = sw_quantizer_of(c);
    assert_int_equal(q->n_targets, 6);
    const char *want[][2] = {{"relu", "_input_0"}, {"relu", "_output_0"}, {"fc", "_input_0"},
                             {"fc", "weight"},     {"fc", "bias"},        {"fc", "_output_0"}};
    for (int i = 0; i < 6; i++) {
        sw_quant_target *t = sw_quantizer_find(q, want[i][0], want[i][1]);
        if (!t) fail_msg("missing target %s.%s", want[i][0], want[i][1]);
        assert_int_equal(t->qmin, 0);
        assert_int_equal(t->qmax, 15);
        assert_int_equal(t->method, SW_QUANT_BYPASS);
    }
    /* Each target has the observer, then the fake-quant, in that order. */
    sw_target *wt = sw_wrapper_target(&ws->wrappers[sw_model_find(m, "fc")], "weight");
    assert_int_equal(wt->n_tf, 2);
    assert_string_equal(wt->tf[0]->ops->name, "quant_observe");
    assert_string_equal(wt->tf[1]->ops->name, "fake_quant");
    sw_compressor_free(c);
    assert_int_equal(sw_wrapper_set_transform_count(ws), 0);
    sw_wrapper_set_release(ws);
    cJSON_Delete(cl);
    sw_model_free(m);
}

/* ---- QAT observers, PTQ calibration ------------------------------------------------------ */

/* QAT's observer by hand: the first training forward takes the range as is, the second folds it
 * in with the EMA; eval forwards change nothing; scales follow the tracked range. */
static void test_quant_qat_ema_hand(void **state) {
    (void)state;
    sw_model *m = linear_model(2, 1);
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    cJSON *cl = parse("[{\"op_names\": [\"fc\"], \"target_names\": [\"_input_\"], "
                      "\"quant_dtype\": \"int8\", \"quant_scheme\": \"affine\"}]");
    sw_compressor *c = NULL;
    CHECK(sw_quantizer_qat_new(ws, cl, NULL, 0, &c));
    sw_quant_target *t = sw_quantizer_find(sw_quantizer_of(c), "fc", "_input_0");
    float a[2] = {-1.0f, 3.0f}, b[2] = {0.5f, 5.0f};
    sw_shape s = sw_shape_4d(1, 1, 1, 2);
    sw_tensor xa = sw_tensor_view(a, &s), xb = sw_tensor_view(b, &s);
    const sw_tensor *y;
    sw_model_set_training(m, false);
    CHECK(sw_model_forward(m, &xa, &y));
    assert_false(t->has_tracked);
    assert_false(t->has_scale);
    sw_model_set_training(m, true);
    CHECK(sw_model_forward(m, &xa, &y));
    assert_true(t->tracked_min[0] == -1.0f && t->tracked_max[0] == 3.0f);
    assert_true(t->scale[0] == 4.0f / 254.0f);
    CHECK(sw_model_forward(m, &xb, &y));
    assert_true(t->tracked_min[0] == sw_fq_ema(-1.0f, 0.5f));
    assert_true(t->tracked_max[0] == sw_fq_ema(3.0f, 5.0f));
    float sc, zp;
    sw_fq_scale_from_range(t->tracked_min[0], t->tracked_max[0], -127, 127, SW_QUANT_SCHEME_AFFINE,
                           &sc, &zp);
    assert_true(t->scale[0] == sc && t->zero_point[0] == zp);
    sw_model_set_training(m, false);
    CHECK(sw_model_forward(m, &xa, &y));
    assert_true(t->scale[0] == sc);
    sw_compressor_free(c);
    sw_wrapper_set_release(ws);
    cJSON_Delete(cl);
    sw_model_free(m);
}

/* PTQ alone calibrates without training: weights are untouched, every target gets a scale from
 * its running range and switches to clamp_round. */
static void test_quant_ptq_calibration_only(void **state) {
    (void)state;
    sw_model *m = conv_model(false, true, 4);
    sw_dataset *ds = images(12, 1, 6, 6, 5);
    sw_train_config cfg = sgd(4, 0.1f);
    sw_evaluator ev;
    CHECK(sw_evaluator_init(&ev, ds, NULL, &cfg));
    float before[36];
    memcpy(before, param(m, "conv", "weight")->value.data, sizeof before);
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    cJSON *cl = parse("[{\"op_types\": [\"Conv2d\", \"Linear\"], \"quant_dtype\": \"int8\", "
                      "\"quant_scheme\": \"affine\", \"target_names\": [\"_input_\", "
                      "\"weight\", \"_output_\"]}]");
    sw_compressor *c = NULL;
    CHECK(sw_quantizer_ptq_new(ws, cl, &ev, &c));
    assert_int_equal(sw_compressor_compress(c, -1, -1), SW_ERR_ARG);
    CHECK(sw_compressor_compress(c, -1, 1));
    assert_memory_equal(before, param(m, "conv", "weight")->value.data, sizeof before);
    sw_quantizer *q = sw_quantizer_of(c);
    for (int i = 0; i < q->n_targets; i++) {
        assert_true(q->targets[i].has_scale);
        assert_int_equal(q->targets[i].method, SW_QUANT_CLAMP_ROUND);
    }
    /* One epoch: the conv input's range is that of all 12 images. */
    sw_quant_target *t = sw_quantizer_find(q, "conv", "_input_0");
    float lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < 12 * 36; i++) {
        lo = fminf(lo, ds->images[i]);
        hi = fmaxf(hi, ds->images[i]);
    }
    assert_true(t->tracked_min[0] == lo && t->tracked_max[0] == hi);
    float s, z;
    sw_fq_scale_from_range(lo, hi, -127, 127, SW_QUANT_SCHEME_AFFINE, &s, &z);
    assert_true(t->scale[0] == s && t->zero_point[0] == z);
    sw_compressor_free(c);
    sw_wrapper_set_release(ws);
    cJSON_Delete(cl);
    sw_evaluator_deinit(&ev);
    sw_dataset_free(ds);
    sw_model_free(m);
}

/* ---- BatchNorm folding ------------------------------------------------------------------- */

/* Runs `m` in eval mode on x and copies the output into out. */
static void eval_output(sw_model *m, const sw_tensor *x, float *out, size_t n) {
    sw_model_set_training(m, false);
    const sw_tensor *y = NULL;
    CHECK(sw_model_forward(m, x, &y));
    assert_int_equal(y->numel, n);
    memcpy(out, y->data, n * sizeof *out);
}

/* One folding case: conv(+bias?) + bn (+relu fused?) with quantization bypassed (a start step
 * that never comes) must give the unfolded model's eval output and its eval-mode gradients. */
static void check_fold(bool conv_bias, bool fuse_relu) {
    sw_model *m = conv_model(true, conv_bias, 7);
    sw_model *ref = NULL;
    CHECK(sw_model_clone(m, &ref));
    sw_dataset *ds = images(3, 1, 6, 6, 8);
    sw_shape xs = sw_shape_4d(3, 1, 6, 6);
    sw_tensor x = sw_tensor_view(ds->images, &xs);
    float want[9], got[9];
    eval_output(ref, &x, want, 9);
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    char config[400];
    snprintf(config, sizeof config,
             "[{\"op_names\": [\"conv\"], \"target_names\": [\"weight\", \"_output_\"], "
             "\"quant_dtype\": \"int8\", \"fuse_names\": [[\"conv\", \"bn\"%s]]}]",
             fuse_relu ? ", \"relu\"" : "");
    cJSON *cl = parse(config);
    sw_compressor *c = NULL;
    CHECK(sw_quantizer_qat_new(ws, cl, NULL, 1000000, &c));
    eval_output(m, &x, got, 9);
    sw_test_assert_close(got, want, 9, 1e-5f, 1e-5f, "folded eval output");
    /* The folding info is there for int8 conversion. */
    sw_quantizer *q = sw_quantizer_of(c);
    assert_int_equal(sw_bn_fold_count(q->fold), 1);
    sw_bn_fold_info info = sw_bn_fold_get(q->fold, 0);
    assert_int_equal(info.bn, sw_model_find(m, "bn"));
    assert_int_equal(info.relu, fuse_relu ? sw_model_find(m, "relu") : -1);

    /* Gradients of L = sum(r * y) in eval mode: through the fold (W' = W f, b' = (b - mean) f
     * + beta, the BN an identity) they equal the unfolded model's, BN parameters included. */
    float r[9];
    for (int i = 0; i < 9; i++) r[i] = 0.1f * (float)(i % 4) - 0.15f;
    sw_model *mods[2] = {m, ref};
    for (int k = 0; k < 2; k++) {
        sw_model_set_training(mods[k], false);
        sw_model_zero_grad(mods[k]);
        const sw_tensor *yk = NULL;
        CHECK(sw_model_forward(mods[k], &x, &yk));
        sw_tensor dyk = sw_tensor_view(r, &yk->shape);
        CHECK(sw_model_backward(mods[k], &dyk));
    }
    const char *checks[][2] = {
        {"conv", "weight"}, {"bn", "weight"}, {"bn", "bias"}, {"fc", "weight"}};
    for (int k = 0; k < 4; k++) {
        sw_param *a = param(m, checks[k][0], checks[k][1]);
        sw_param *b = param(ref, checks[k][0], checks[k][1]);
        char what[64];
        snprintf(what, sizeof what, "grad %s.%s", checks[k][0], checks[k][1]);
        sw_test_assert_close(a->grad.data, b->grad.data, a->grad.numel, 1e-5f, 1e-4f, what);
    }
    if (conv_bias) {
        sw_param *a = param(m, "conv", "bias"), *b = param(ref, "conv", "bias");
        sw_test_assert_close(a->grad.data, b->grad.data, 4, 1e-5f, 1e-4f, "grad conv.bias");
    }
    const sw_tensor *y = NULL;

    /* In training, the fold updates the BN's running statistics as the BN itself would from
     * the conv output, once per forward. */
    sw_model_set_training(ref, true);
    sw_model_set_training(m, true);
    CHECK(sw_model_forward(ref, &x, &y));
    CHECK(sw_model_forward(m, &x, &y));
    sw_test_assert_close(param(m, "bn", "running_mean")->value.data,
                         param(ref, "bn", "running_mean")->value.data, 4, 1e-6f, 1e-5f,
                         "running_mean");
    sw_test_assert_close(param(m, "bn", "running_var")->value.data,
                         param(ref, "bn", "running_var")->value.data, 4, 1e-6f, 1e-5f,
                         "running_var");
    /* After unwrapping, the model is the plain conv + BN again. */
    CHECK(sw_compressor_unwrap_model(c));
    eval_output(m, &x, got, 9);
    eval_output(ref, &x, want, 9);
    sw_test_assert_close(got, want, 9, 1e-6f, 1e-6f, "unwrapped output");
    sw_compressor_free(c);
    sw_wrapper_set_release(ws);
    cJSON_Delete(cl);
    sw_dataset_free(ds);
    sw_model_free(ref);
    sw_model_free(m);
}

/* BatchNorm folding (§4.8): the folded conv equals conv + BN in eval mode, with and without a
 * conv bias and with a fused ReLU, in value and in the gradients of the conv and of the BN's
 * gamma and beta; the running statistics are updated as the BatchNorm would update them. */
static void test_quant_bn_fold_equals_unfolded(void **state) {
    (void)state;
    check_fold(true, false);
    check_fold(false, false);
    check_fold(true, true);
}

/* The weight quantizer sees the folded weight: its tracked range is that of W * g/sqrt(var+eps),
 * and sw_bn_fold_eval gives the same folded values. */
static void test_quant_bn_fold_observed(void **state) {
    (void)state;
    sw_model *m = conv_model(true, true, 9);
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    cJSON *cl = parse("[{\"op_names\": [\"conv\"], \"target_names\": [\"weight\"], "
                      "\"quant_dtype\": \"int8\", \"granularity\": \"out_channel\", "
                      "\"fuse_names\": [[\"conv\", \"bn\"]]}]");
    sw_compressor *c = NULL;
    CHECK(sw_quantizer_qat_new(ws, cl, NULL, 0, &c));
    float w[36], b[4];
    sw_bn_fold_eval(m, sw_model_find(m, "conv"), sw_model_find(m, "bn"), w, b);
    sw_dataset *ds = images(2, 1, 6, 6, 3);
    sw_shape xs = sw_shape_4d(2, 1, 6, 6);
    sw_tensor x = sw_tensor_view(ds->images, &xs);
    /* Eval mode: no statistics update, so the observer... only observes in training; use one
     * training forward and compare against the fold of the statistics it produced. */
    sw_model_set_training(m, true);
    const sw_tensor *y;
    CHECK(sw_model_forward(m, &x, &y));
    sw_bn_fold_eval(m, sw_model_find(m, "conv"), sw_model_find(m, "bn"), w, b);
    sw_quant_target *t = sw_quantizer_find(sw_quantizer_of(c), "conv", "weight");
    for (int o = 0; o < 4; o++) {
        float lo = w[o * 9], hi = w[o * 9];
        for (int k = 1; k < 9; k++) {
            lo = fminf(lo, w[o * 9 + k]);
            hi = fmaxf(hi, w[o * 9 + k]);
        }
        assert_float_equal(t->tracked_min[o], lo, 1e-6);
        assert_float_equal(t->tracked_max[o], hi, 1e-6);
    }
    sw_compressor_free(c);
    sw_wrapper_set_release(ws);
    cJSON_Delete(cl);
    sw_dataset_free(ds);
    sw_model_free(m);
}

/* ---- calibration JSON ------------------------------------------------------------------ */

/* get_calibration_config written to a file and loaded into a fresh base Quantizer gives the same
 * scales, zero points and ranges bit for bit, and the same model output; mismatched dtypes and
 * shapes are refused with the target named. */
static void test_quant_calibration_roundtrip(void **state) {
    (void)state;
    sw_model *m = conv_model(false, true, 12);
    sw_model *copy = NULL;
    CHECK(sw_model_clone(m, &copy));
    sw_dataset *ds = images(16, 1, 6, 6, 13);
    sw_train_config cfg = sgd(4, 0.05f);
    sw_evaluator ev;
    CHECK(sw_evaluator_init(&ev, ds, NULL, &cfg));
    const char *config =
        "[{\"op_types\": [\"Conv2d\"], \"quant_dtype\": \"int8\", \"quant_scheme\": \"affine\", "
        "\"target_names\": [\"_input_\", \"weight\", \"_output_\"], "
        "\"target_settings\": {\"weight\": {\"granularity\": \"out_channel\"}, "
        "\"_output_\": {\"granularity\": \"per_channel\"}}}, "
        "{\"op_types\": [\"Linear\"], \"quant_dtype\": \"uint4\", \"target_names\": "
        "[\"weight\"]}]";
    cJSON *cl = parse(config);
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    sw_compressor *c = NULL;
    CHECK(sw_quantizer_qat_new(ws, cl, &ev, 0, &c));
    CHECK(sw_compressor_compress(c, 3, -1));
    char path[512];
    snprintf(path, sizeof path, "%s/calib.json", sw_test_tmpdir());
    CHECK(sw_compressor_export(c, path));

    /* Same weights in the copy; a base Quantizer with the calibration. */
    memcpy(copy->param_data, m->param_data, m->n_param_floats * sizeof(float));
    memcpy(copy->buffer_data, m->buffer_data, m->n_buffer_floats * sizeof(float));
    sw_wrapper_set *ws2 = NULL;
    CHECK(sw_wrapper_set_new(copy, &ws2));
    sw_compressor *fixed = NULL;
    CHECK(sw_quantizer_fixed_new(ws2, cl, &fixed));
    CHECK(sw_quant_calibration_load(fixed, path));
    sw_quantizer *a = sw_quantizer_of(c), *b = sw_quantizer_of(fixed);
    assert_int_equal(a->n_targets, b->n_targets);
    for (int i = 0; i < a->n_targets; i++) {
        const sw_quant_target *ta = &a->targets[i], *tb = &b->targets[i];
        assert_string_equal(ta->name, tb->name);
        assert_true(tb->has_scale && tb->has_tracked);
        assert_memory_equal(ta->scale, tb->scale, ta->n_blocks * sizeof(float));
        assert_memory_equal(ta->zero_point, tb->zero_point, ta->n_blocks * sizeof(float));
        assert_memory_equal(ta->tracked_min, tb->tracked_min, ta->n_blocks * sizeof(float));
        assert_memory_equal(ta->tracked_max, tb->tracked_max, ta->n_blocks * sizeof(float));
    }
    sw_quant_target *tw = sw_quantizer_find(b, "conv", "weight");
    assert_int_equal(tw->grid.ndim, 4);
    assert_int_equal(tw->grid.dims[0], 4);
    sw_shape xs = sw_shape_4d(4, 1, 6, 6);
    sw_tensor x = sw_tensor_view(ds->images, &xs);
    float ya[12], yb[12];
    eval_output(m, &x, ya, 12);
    eval_output(copy, &x, yb, 12);
    assert_memory_equal(ya, yb, sizeof ya);

    /* A calibration of another dtype is refused, naming the target. */
    cJSON *cal = NULL;
    CHECK(sw_quant_calibration_get(c, &cal));
    cJSON *fcw = cJSON_GetObjectItem(cJSON_GetObjectItem(cal, "fc"), "weight");
    cJSON_ReplaceItemInObject(fcw, "quant_dtype", cJSON_CreateString("int4"));
    assert_int_equal(sw_quant_calibration_update(fixed, cal), SW_ERR_CONFIG);
    assert_non_null(strstr(sw_error_message(), "fc.weight"));
    cJSON_ReplaceItemInObject(fcw, "quant_dtype", cJSON_CreateString("uint4"));
    cJSON *cw = cJSON_GetObjectItem(cJSON_GetObjectItem(cal, "conv"), "weight");
    cJSON_ReplaceItemInObject(cw, "shape", cJSON_Parse("[1]"));
    assert_int_equal(sw_quant_calibration_update(fixed, cal), SW_ERR_CONFIG);
    assert_non_null(strstr(sw_error_message(), "conv.weight"));
    cJSON_Delete(cal);

    sw_compressor_free(fixed);
    sw_wrapper_set_release(ws2);
    sw_compressor_free(c);
    sw_wrapper_set_release(ws);
    cJSON_Delete(cl);
    sw_evaluator_deinit(&ev);
    sw_dataset_free(ds);
    sw_model_free(copy);
    sw_model_free(m);
}

/* ---- learnable scales in training ------------------------------------------------------- */

/* LSQ trains its scales through the evaluator: they start at 0.01, move with SGD, and the
 * scale of the data input (whose gradient the executor does not compute) learns too. */
static void test_quant_lsq_scales_train(void **state) {
    (void)state;
    sw_model *m = conv_model(false, true, 14);
    sw_dataset *ds = images(8, 1, 6, 6, 15);
    sw_train_config cfg = sgd(4, 0.05f);
    sw_evaluator ev;
    CHECK(sw_evaluator_init(&ev, ds, NULL, &cfg));
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    cJSON *cl = parse("[{\"op_types\": [\"Conv2d\", \"Linear\"], \"quant_dtype\": \"int8\", "
                      "\"quant_scheme\": \"symmetric\", \"target_names\": [\"_input_\", "
                      "\"weight\"]}]");
    sw_compressor *c = NULL;
    CHECK(sw_quantizer_lsq_new(ws, cl, &ev, &c));
    sw_quantizer *q = sw_quantizer_of(c);
    assert_int_equal(q->n_learnable, 4);
    CHECK(sw_compressor_compress(c, 2, -1));
    for (int i = 0; i < q->n_targets; i++) {
        assert_true(q->targets[i].has_scale);
        if (q->targets[i].scale[0] == 0.01f)
            fail_msg("%s.%s: the scale did not train", q->targets[i].module, q->targets[i].name);
    }
    sw_compressor_free(c);
    sw_wrapper_set_release(ws);
    cJSON_Delete(cl);
    sw_evaluator_deinit(&ev);
    sw_dataset_free(ds);
    sw_model_free(m);
}

/* With the data initialisation, LSQ's scales start at the paper's 2 mean|x| / sqrt(qmax): per
 * output channel for the weight, per tensor for the input; NNI's 0.01 otherwise; and only an
 * LsqQuantizer takes the option. */
static void test_quant_lsq_data_init(void **state) {
    (void)state;
    sw_model *m = linear_model(4, 2);
    float *w = m->nodes[1].layer->params[0].value.data; /* [2, 4] */
    const float wv[8] = {0.5f, -0.5f, 1.0f, -1.0f, 0.1f, 0.2f, -0.3f, 0.0f};
    memcpy(w, wv, sizeof wv);
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    cJSON *cl = parse("[{\"op_names\": [\"fc\"], \"quant_dtype\": \"int4\", "
                      "\"quant_scheme\": \"symmetric\", \"target_names\": [\"_input_\", "
                      "\"weight\"], \"target_settings\": {\"weight\": {\"granularity\": "
                      "\"out_channel\"}}}]");
    sw_compressor *c = NULL;
    CHECK(sw_quantizer_lsq_new(ws, cl, NULL, &c));
    CHECK(sw_quantizer_lsq_set_data_init(c, true));
    float xin[8] = {1.0f, -2.0f, 3.0f, -4.0f, 0.5f, 0.5f, -0.5f, 0.5f};
    sw_shape xs = {.ndim = 4, .dims = {2, 1, 1, 4}};
    sw_tensor x = sw_tensor_view(xin, &xs);
    float y[4];
    eval_output(m, &x, y, 4);
    sw_quantizer *q = sw_quantizer_of(c);
    float f = 2.0f / sqrtf(7.0f); /* int4: qmax 7 */
    sw_quant_target *tw = sw_quantizer_find(q, "fc", "weight");
    assert_int_equal(tw->n_blocks, 2);
    assert_float_equal(tw->scale[0], f * 0.75f, 1e-6);
    assert_float_equal(tw->scale[1], f * 0.15f, 1e-6);
    sw_quant_target *ti = sw_quantizer_find(q, "fc", "_input_0");
    assert_int_equal(ti->n_blocks, 1);
    assert_float_equal(ti->scale[0], f * 12.0f / 8.0f, 1e-6); /* mean |x| = 1.5 */
    sw_compressor_free(c);

    /* Without the option: 0.01 everywhere (NNI). */
    CHECK(sw_quantizer_lsq_new(ws, cl, NULL, &c));
    eval_output(m, &x, y, 4);
    q = sw_quantizer_of(c);
    assert_float_equal(sw_quantizer_find(q, "fc", "weight")->scale[1], 0.01f, 0);
    sw_compressor_free(c);

    CHECK(sw_quantizer_qat_new(ws, cl, NULL, 0, &c));
    assert_int_equal(sw_quantizer_lsq_set_data_init(c, true), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "LsqQuantizer"));
    sw_compressor_free(c);
    sw_wrapper_set_release(ws);
    cJSON_Delete(cl);
    sw_model_free(m);
}

/* DoReFa's gradient quantization keeps each sample's output gradient within one level (plus the
 * noise) of the original, and leaves zero gradients zero. */
static void test_quant_dorefa_gradient_quantization(void **state) {
    (void)state;
    sw_model *m = linear_model(4, 3);
    sw_model *ref = NULL;
    CHECK(sw_model_clone(m, &ref));
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    cJSON *cl = parse("[{\"op_names\": [\"fc\"], \"target_names\": [\"weight\"], "
                      "\"quant_dtype\": \"int8\", \"quant_scheme\": \"affine\"}]");
    sw_compressor *c = NULL;
    CHECK(sw_quantizer_dorefa_new(ws, cl, NULL, true, 5, &c));
    float xin[8] = {0.1f, 0.2f, -0.3f, 0.4f, 1.0f, -1.0f, 0.5f, 0.0f};
    sw_shape xs = sw_shape_4d(2, 1, 1, 4);
    sw_tensor x = sw_tensor_view(xin, &xs);
    float r[6] = {0.3f, -0.6f, 0.9f, 0.0f, 0.0f, 0.0f};
    sw_model_set_training(m, true);
    const sw_tensor *y;
    CHECK(sw_model_forward(m, &x, &y));
    sw_tensor dy = sw_tensor_view(r, &y->shape);
    sw_model_zero_grad(m);
    CHECK(sw_model_backward(m, &dy));
    /* The bias gradient is the (quantized) output gradient summed over the batch; sample 2 has
     * a zero gradient, so the bias gradient is sample 1's quantized gradient. */
    const float *gb = param(m, "fc", "bias")->grad.data;
    /* u = g/(2M) + 0.5 + noise on a grid of s = (1 + 1/255)/254; back in gradient units the
     * error is at most 2M (s/2 + 0.5/255), M = 0.9. */
    double m1 = 0.9, s = (1.0 + 1.0 / 255.0) / 254.0;
    double bound = 2.0 * m1 * (s / 2.0 + 0.5 / 255.0) + 1e-6;
    for (int k = 0; k < 3; k++)
        if (fabs(gb[k] - r[k]) > bound)
            fail_msg("bias grad %d: %g is not within a level of %g", k, (double)gb[k],
                     (double)r[k]);
    sw_compressor_free(c);
    sw_wrapper_set_release(ws);
    cJSON_Delete(cl);
    sw_model_free(ref);
    sw_model_free(m);
}

/* ---- fusion ---------------------------------------------------------------------------- */

/* L1Norm (0.5 of the conv filters) -> QAT (int8 weights and inputs) -> DynamicLayerwise
 * distillation from the dense model, in one compress: on the conv weight the chain is observe,
 * fake-quant, mask (the reference's order) whichever was built first, the capture is last on
 * the distilled output, the masks hold through training, and the quantized weights of pruned
 * filters are exactly zero in every forward. */
static void test_quant_fusion_with_pruner_and_distiller(void **state) {
    (void)state;
    sw_model *m = conv_model(false, true, 16);
    sw_model *teacher = NULL;
    CHECK(sw_model_clone(m, &teacher));
    sw_dataset *ds = images(16, 1, 6, 6, 17);
    sw_train_config cfg = sgd(4, 0.05f);
    sw_evaluator ev;
    CHECK(sw_evaluator_init(&ev, ds, NULL, &cfg));
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    cJSON *pc = parse("[{\"op_types\": [\"Conv2d\"], \"sparse_ratio\": 0.5}]");
    cJSON *qc = parse("[{\"op_types\": [\"Conv2d\", \"Linear\"], \"quant_dtype\": \"int8\", "
                      "\"quant_scheme\": \"affine\", \"target_names\": [\"_input_\", "
                      "\"weight\"]}]");
    cJSON *dc = parse("[{\"op_names\": [\"fc\"], \"lambda\": 1.0, \"apply_method\": \"mse\"}]");
    sw_compressor *pruner = NULL, *quant = NULL, *dist = NULL;
    CHECK(sw_pruner_l1norm_new(ws, pc, &ev, &pruner));
    CHECK(sw_quantizer_qat_from_compressor(pruner, qc, 0, NULL, &quant));
    CHECK(sw_distiller_dynamic_from_compressor(quant, dc, teacher, NULL, NULL, 1.0, NULL, &dist));
    assert_int_equal(sw_compressor_chain_length(dist), 3);
    CHECK(sw_compressor_compress(dist, 4, -1));

    int conv = sw_model_find(m, "conv");
    sw_target *wt = sw_wrapper_target(&ws->wrappers[conv], "weight");
    assert_int_equal(wt->n_tf, 3);
    assert_string_equal(wt->tf[0]->ops->name, "quant_observe");
    assert_string_equal(wt->tf[1]->ops->name, "fake_quant");
    assert_string_equal(wt->tf[2]->ops->name, "mask");
    sw_target *ot = sw_wrapper_target(&ws->wrappers[sw_model_find(m, "fc")], "_output_0");
    assert_true(ot->n_tf >= 1);
    assert_int_equal(ot->tf[ot->n_tf - 1]->stage, SW_STAGE_CAPTURE);

    sw_masks masks;
    CHECK(sw_pruner_get_masks(pruner, &masks));
    const sw_tensor *mask = sw_masks_find(&masks, "conv", "weight");
    assert_non_null(mask);
    int pruned = 0;
    sw_shape xs = sw_shape_4d(4, 1, 6, 6);
    sw_tensor x = sw_tensor_view(ds->images, &xs);
    const sw_tensor *y;
    sw_model_set_training(m, false);
    CHECK(sw_model_forward(m, &x, &y));
    const sw_tensor *weff = m->ios[conv].params[0];
    sw_quant_target *tq = sw_quantizer_find(sw_quantizer_of(quant), "conv", "weight");
    for (size_t i = 0; i < weff->numel; i++) {
        if (mask->data[i] == 0.0f) {
            assert_true(weff->data[i] == 0.0f);
            pruned++;
        } else {
            /* On the quantization grid of the scale in effect. */
            float k = weff->data[i] / tq->scale[0] + tq->zero_point[0];
            assert_float_equal(k, rintf(k), 1e-3);
        }
    }
    assert_int_equal(pruned, 18); /* 2 of 4 filters of 9 weights */
    sw_masks_deinit(&masks);
    sw_compressor_free(dist);
    sw_compressor_free(quant);
    sw_compressor_free(pruner);
    sw_wrapper_set_release(ws);
    cJSON_Delete(pc);
    cJSON_Delete(qc);
    cJSON_Delete(dc);
    sw_evaluator_deinit(&ev);
    sw_dataset_free(ds);
    sw_model_free(teacher);
    sw_model_free(m);
}

/* A quantizer built first and a pruner after it still give fake-quant before the mask. */
static void test_quant_fusion_order_independent(void **state) {
    (void)state;
    sw_model *m = conv_model(false, true, 18);
    sw_wrapper_set *ws = NULL;
    CHECK(sw_wrapper_set_new(m, &ws));
    cJSON *qc = parse("[{\"op_types\": [\"Conv2d\"], \"quant_dtype\": \"int8\", "
                      "\"target_names\": [\"weight\"]}]");
    cJSON *pc = parse("[{\"op_types\": [\"Conv2d\"], \"sparse_ratio\": 0.5}]");
    sw_compressor *quant = NULL, *pruner = NULL;
    CHECK(sw_quantizer_qat_new(ws, qc, NULL, 0, &quant));
    CHECK(sw_pruner_l1norm_from_compressor(quant, pc, NULL, &pruner));
    sw_target *wt = sw_wrapper_target(&ws->wrappers[sw_model_find(m, "conv")], "weight");
    assert_int_equal(wt->n_tf, 3);
    assert_string_equal(wt->tf[1]->ops->name, "fake_quant");
    assert_string_equal(wt->tf[2]->ops->name, "mask");
    sw_compressor_free(pruner);
    sw_compressor_free(quant);
    sw_wrapper_set_release(ws);
    cJSON_Delete(qc);
    cJSON_Delete(pc);
    sw_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quant_scale_from_range),
        cmocka_unit_test(test_quant_clamp_round_hand),
        cmocka_unit_test(test_quant_lsq_hand),
        cmocka_unit_test(test_quant_lsqplus_hand),
        cmocka_unit_test(test_quant_dorefa_bnn_hand),
        cmocka_unit_test(test_quant_ste_finite_differences),
        cmocka_unit_test(test_quant_ste_through_layer),
        cmocka_unit_test(test_quant_config_errors),
        cmocka_unit_test(test_quant_templates),
        cmocka_unit_test(test_quant_qat_ema_hand),
        cmocka_unit_test(test_quant_ptq_calibration_only),
        cmocka_unit_test(test_quant_bn_fold_equals_unfolded),
        cmocka_unit_test(test_quant_bn_fold_observed),
        cmocka_unit_test(test_quant_calibration_roundtrip),
        cmocka_unit_test(test_quant_lsq_scales_train),
        cmocka_unit_test(test_quant_lsq_data_init),
        cmocka_unit_test(test_quant_dorefa_gradient_quantization),
        cmocka_unit_test(test_quant_fusion_with_pruner_and_distiller),
        cmocka_unit_test(test_quant_fusion_order_independent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
