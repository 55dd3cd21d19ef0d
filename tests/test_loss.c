/* test_loss.c - cross-entropy, MSE and distillation KL: PyTorch golden values, finite-difference
 * gradients, numerical stability, scaling, argument errors, and sw_count_correct. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

#include "io/safetensors.h"
#include "nn/loss.h"

static sw_tensor *rand_tensor(sw_shape shape, uint64_t seed, float lo, float hi) {
    sw_tensor *t = NULL;
    assert_int_equal(sw_tensor_new(&shape, &t), SW_OK);
    sw_test_fill_uniform(t, seed, lo, hi);
    return t;
}

static sw_safetensors *open_golden(const char *name) {
    char rel[128], path[512];
    snprintf(rel, sizeof rel, "golden/%s.safetensors", name);
    sw_safetensors *st = NULL;
    if (sw_safetensors_read_file(sw_test_data_path(rel, path, sizeof path), &st) != SW_OK)
        fail_msg("cannot read %s: %s", path, sw_error_message());
    return st;
}

static void get(const sw_safetensors *st, const char *name, sw_tensor *t) {
    if (sw_safetensors_get_f32(st, name, t) != SW_OK)
        fail_msg("fixture tensor %s: %s", name, sw_error_message());
}

/* Which loss a finite-difference check evaluates. */
typedef enum which { CE, MSE_PRED, MSE_TARGET, KL } which;

typedef struct problem {
    which kind;
    sw_tensor *a;      /* logits / pred / student */
    sw_tensor *b;      /* target / teacher (NULL for CE) */
    const int *labels; /* CE */
    float temperature;
} problem;

static double eval_loss(const problem *p) {
    double loss = 0;
    sw_status st = SW_OK;
    switch (p->kind) {
    case CE:
        st = sw_loss_cross_entropy(p->a, p->labels, 1.0f, &loss, NULL);
        break;
    case MSE_PRED:
    case MSE_TARGET:
        st = sw_loss_mse(p->a, p->b, 1.0f, &loss, NULL, NULL);
        break;
    case KL:
        st = sw_loss_kl_div(p->a, p->b, p->temperature, 1.0f, &loss, NULL);
        break;
    }
    assert_int_equal(st, SW_OK);
    return loss;
}

/* Central differences of the loss in every element of the differentiated tensor, against
 * `grad` (computed with scale 1). */
static void check_fd(const problem *p, const sw_tensor *grad) {
    sw_tensor *x = p->kind == MSE_TARGET ? p->b : p->a;
    const double eps = 1e-3;
    for (size_t i = 0; i < x->numel; i++) {
        float keep = x->data[i];
        x->data[i] = (float)(keep + eps);
        double up = (double)x->data[i] - keep, fp = eval_loss(p);
        x->data[i] = (float)(keep - eps);
        double down = (double)keep - x->data[i], fm = eval_loss(p);
        x->data[i] = keep;
        double numeric = (fp - fm) / (up + down);
        double err = fabs(numeric - grad->data[i]);
        if (err > 1e-5 + 1e-3 * fabs(numeric))
            fail_msg("loss %d element %zu: analytic %.8g numeric %.8g", (int)p->kind, i,
                     (double)grad->data[i], numeric);
    }
}

/* Cross-entropy equals PyTorch's mean loss and gradient on the golden fixture. */
static void test_loss_golden_cross_entropy(void **state) {
    (void)state;
    sw_safetensors *st = open_golden("loss_cross_entropy");
    sw_tensor logits, target, loss, grad, dl;
    get(st, "logits", &logits);
    get(st, "target", &target);
    get(st, "loss", &loss);
    get(st, "grad_logits", &grad);
    int *labels = malloc(target.numel * sizeof *labels);
    assert_non_null(labels);
    for (size_t i = 0; i < target.numel; i++) labels[i] = (int)target.data[i];
    assert_int_equal(sw_tensor_init(&dl, &logits.shape), SW_OK);
    double l;
    assert_int_equal(sw_loss_cross_entropy(&logits, labels, 1.0f, &l, &dl), SW_OK);
    assert_float_equal(l, loss.data[0], 1e-5 + 1e-5 * fabs(loss.data[0]));
    sw_test_assert_close(dl.data, grad.data, grad.numel, 1e-5f, 1e-4f, "grad_logits");
    free(labels);
    sw_tensor_deinit(&logits), sw_tensor_deinit(&target), sw_tensor_deinit(&loss);
    sw_tensor_deinit(&grad), sw_tensor_deinit(&dl);
    sw_safetensors_free(st);
}

/* MSE equals PyTorch's mean loss and both gradients on the golden fixture. */
static void test_loss_golden_mse(void **state) {
    (void)state;
    sw_safetensors *st = open_golden("loss_mse");
    sw_tensor pred, target, loss, gp, gt, dp, dt;
    get(st, "pred", &pred);
    get(st, "target", &target);
    get(st, "loss", &loss);
    get(st, "grad_pred", &gp);
    get(st, "grad_target", &gt);
    assert_int_equal(sw_tensor_init(&dp, &pred.shape), SW_OK);
    assert_int_equal(sw_tensor_init(&dt, &pred.shape), SW_OK);
    double l;
    assert_int_equal(sw_loss_mse(&pred, &target, 1.0f, &l, &dp, &dt), SW_OK);
    assert_float_equal(l, loss.data[0], 1e-5 + 1e-5 * fabs(loss.data[0]));
    sw_test_assert_close(dp.data, gp.data, gp.numel, 1e-5f, 1e-4f, "grad_pred");
    sw_test_assert_close(dt.data, gt.data, gt.numel, 1e-5f, 1e-4f, "grad_target");
    sw_tensor_deinit(&pred), sw_tensor_deinit(&target), sw_tensor_deinit(&loss);
    sw_tensor_deinit(&gp), sw_tensor_deinit(&gt), sw_tensor_deinit(&dp), sw_tensor_deinit(&dt);
    sw_safetensors_free(st);
}

/* The distillation KL (temperature from the fixture's metadata) equals NNI's formula as
 * computed by PyTorch, loss and student gradient. */
static void test_loss_golden_kl_distill(void **state) {
    (void)state;
    sw_safetensors *st = open_golden("loss_kl_distill");
    const char *t_str = sw_safetensors_meta(st, "T");
    assert_non_null(t_str);
    float temperature = (float)atof(t_str);
    sw_tensor s, t, loss, grad, ds;
    get(st, "student_logits", &s);
    get(st, "teacher_logits", &t);
    get(st, "loss", &loss);
    get(st, "grad_student_logits", &grad);
    assert_int_equal(sw_tensor_init(&ds, &s.shape), SW_OK);
    double l;
    assert_int_equal(sw_loss_kl_div(&s, &t, temperature, 1.0f, &l, &ds), SW_OK);
    assert_float_equal(l, loss.data[0], 1e-5 + 1e-5 * fabs(loss.data[0]));
    sw_test_assert_close(ds.data, grad.data, grad.numel, 1e-5f, 1e-4f, "grad_student_logits");
    sw_tensor_deinit(&s), sw_tensor_deinit(&t), sw_tensor_deinit(&loss);
    sw_tensor_deinit(&grad), sw_tensor_deinit(&ds);
    sw_safetensors_free(st);
}

/* Every loss's gradient matches central differences of its value, on odd shapes. */
static void test_loss_gradients_match_finite_differences(void **state) {
    (void)state;
    sw_tensor *a = rand_tensor(sw_shape_2d(5, 7), 1, -3, 3);
    sw_tensor *b = rand_tensor(sw_shape_2d(5, 7), 2, -3, 3);
    sw_tensor g, g2;
    assert_int_equal(sw_tensor_init(&g, &a->shape), SW_OK);
    assert_int_equal(sw_tensor_init(&g2, &a->shape), SW_OK);
    const int labels[5] = {0, 6, 3, 3, 1};
    double l;

    problem ce = {.kind = CE, .a = a, .labels = labels};
    assert_int_equal(sw_loss_cross_entropy(a, labels, 1.0f, &l, &g), SW_OK);
    check_fd(&ce, &g);

    problem mse = {.kind = MSE_PRED, .a = a, .b = b};
    assert_int_equal(sw_loss_mse(a, b, 1.0f, &l, &g, &g2), SW_OK);
    check_fd(&mse, &g);
    mse.kind = MSE_TARGET;
    check_fd(&mse, &g2);

    const float temps[] = {1.0f, 2.0f, 4.5f};
    for (int k = 0; k < 3; k++) {
        problem kl = {.kind = KL, .a = a, .b = b, .temperature = temps[k]};
        assert_int_equal(sw_loss_kl_div(a, b, temps[k], 1.0f, &l, &g), SW_OK);
        check_fd(&kl, &g);
    }
    sw_tensor_deinit(&g), sw_tensor_deinit(&g2);
    sw_tensor_free(a), sw_tensor_free(b);
}

/* Gradients are written (not accumulated) and multiplied by `scale`; the loss value is not. */
static void test_loss_scale_writes_gradient(void **state) {
    (void)state;
    sw_tensor *a = rand_tensor(sw_shape_2d(3, 4), 3, -1, 1);
    sw_tensor *b = rand_tensor(sw_shape_2d(3, 4), 4, -1, 1);
    sw_tensor g1, g2;
    assert_int_equal(sw_tensor_init(&g1, &a->shape), SW_OK);
    assert_int_equal(sw_tensor_init(&g2, &a->shape), SW_OK);
    const int labels[3] = {1, 0, 3};
    double l1, l2;
    for (int kind = 0; kind < 3; kind++) {
        sw_tensor_fill(&g2, 123.0f); /* must be overwritten */
        if (kind == 0) {
            assert_int_equal(sw_loss_cross_entropy(a, labels, 1.0f, &l1, &g1), SW_OK);
            assert_int_equal(sw_loss_cross_entropy(a, labels, 0.25f, &l2, &g2), SW_OK);
        } else if (kind == 1) {
            assert_int_equal(sw_loss_mse(a, b, 1.0f, &l1, &g1, NULL), SW_OK);
            assert_int_equal(sw_loss_mse(a, b, 0.25f, &l2, &g2, NULL), SW_OK);
        } else {
            assert_int_equal(sw_loss_kl_div(a, b, 3.0f, 1.0f, &l1, &g1), SW_OK);
            assert_int_equal(sw_loss_kl_div(a, b, 3.0f, 0.25f, &l2, &g2), SW_OK);
        }
        assert_float_equal(l1, l2, 0);
        for (size_t i = 0; i < g1.numel; i++)
            assert_float_equal(g2.data[i], 0.25f * g1.data[i], 1e-7);
    }
    sw_tensor_deinit(&g1), sw_tensor_deinit(&g2);
    sw_tensor_free(a), sw_tensor_free(b);
}

/* Huge logits give finite losses and gradients (the maximum is subtracted before exp), and a
 * teacher identical to the student gives KL 0. */
static void test_loss_stable_for_large_logits(void **state) {
    (void)state;
    sw_tensor *a = rand_tensor(sw_shape_2d(2, 3), 5, -1, 1);
    a->data[0] = 1e4f, a->data[1] = -1e4f, a->data[2] = 0.0f;
    a->data[3] = 3e4f, a->data[4] = 3e4f, a->data[5] = -3e4f;
    sw_tensor g;
    assert_int_equal(sw_tensor_init(&g, &a->shape), SW_OK);
    const int labels[2] = {1, 0};
    double l;
    assert_int_equal(sw_loss_cross_entropy(a, labels, 1.0f, &l, &g), SW_OK);
    /* row 0: -log softmax = 2e4; row 1: log 2 */
    assert_float_equal(l, (2e4 + log(2.0)) / 2, 1e-3);
    assert_true(sw_tensor_all_finite(&g));
    assert_float_equal(g.data[0], 0.5f, 1e-6);
    assert_float_equal(g.data[1], -0.5f, 1e-6);
    assert_float_equal(g.data[3], -0.25f, 1e-6);
    assert_int_equal(sw_loss_kl_div(a, a, 2.0f, 1.0f, &l, &g), SW_OK);
    assert_float_equal(l, 0.0, 1e-9);
    for (size_t i = 0; i < g.numel; i++) assert_float_equal(g.data[i], 0.0f, 1e-7);
    sw_tensor_deinit(&g);
    sw_tensor_free(a);
}

/* Bad labels, mismatched shapes and a non-positive temperature are errors, not crashes. */
static void test_loss_bad_arguments_rejected(void **state) {
    (void)state;
    sw_tensor *a = rand_tensor(sw_shape_2d(2, 3), 6, -1, 1);
    sw_tensor *b = rand_tensor(sw_shape_2d(3, 2), 7, -1, 1);
    sw_tensor *c = rand_tensor(sw_shape_1d(6), 8, -1, 1);
    double l;
    const int bad[2] = {0, 3}, neg[2] = {-1, 0}, ok[2] = {0, 1};
    assert_int_equal(sw_loss_cross_entropy(a, bad, 1.0f, &l, NULL), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "label 3"));
    assert_int_equal(sw_loss_cross_entropy(a, neg, 1.0f, &l, NULL), SW_ERR_ARG);
    assert_int_equal(sw_loss_cross_entropy(c, bad, 1.0f, &l, NULL), SW_ERR_SHAPE);
    assert_int_equal(sw_loss_cross_entropy(a, ok, 1.0f, &l, b), SW_ERR_SHAPE);
    assert_int_equal(sw_loss_mse(a, b, 1.0f, &l, NULL, NULL), SW_ERR_SHAPE);
    assert_non_null(strstr(sw_error_message(), "[3, 2]"));
    assert_int_equal(sw_loss_kl_div(a, b, 2.0f, 1.0f, &l, NULL), SW_ERR_SHAPE);
    assert_int_equal(sw_loss_kl_div(a, a, 0.0f, 1.0f, &l, NULL), SW_ERR_ARG);
    assert_int_equal(sw_loss_kl_div(a, a, -1.0f, 1.0f, &l, NULL), SW_ERR_ARG);
    sw_tensor_free(a), sw_tensor_free(b), sw_tensor_free(c);
}

/* sw_count_correct counts rows whose argmax is the label, the first maximum winning ties. */
static void test_loss_count_correct(void **state) {
    (void)state;
    float v[] = {0.1f,  0.9f,  0.0f,  /* argmax 1 */
                 2.0f,  2.0f,  1.0f,  /* tie: 0 */
                 -1.0f, -3.0f, -0.5f, /* argmax 2 */
                 5.0f,  1.0f,  1.0f}; /* argmax 0 */
    sw_shape s = sw_shape_2d(4, 3);
    sw_tensor t = sw_tensor_view(v, &s);
    const int labels[4] = {1, 1, 2, 2};
    assert_int_equal(sw_count_correct(&t, labels), 2);
    const int labels2[4] = {1, 0, 2, 0};
    assert_int_equal(sw_count_correct(&t, labels2), 4);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_golden_cross_entropy),
        cmocka_unit_test(test_loss_golden_mse),
        cmocka_unit_test(test_loss_golden_kl_distill),
        cmocka_unit_test(test_loss_gradients_match_finite_differences),
        cmocka_unit_test(test_loss_scale_writes_gradient),
        cmocka_unit_test(test_loss_stable_for_large_logits),
        cmocka_unit_test(test_loss_bad_arguments_rejected),
        cmocka_unit_test(test_loss_count_correct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
