/* test_lr_schedule.c - learning-rate schedules against hand-computed values. */
#include <math.h>
#include <string.h>

#include "test_support.h"

#include "train/lr_schedule.h"

/* A constant schedule returns the base rate at every step. */
static void test_lr_schedule_constant(void **state) {
    (void)state;
    sw_lr_schedule s = {.kind = SW_LR_CONSTANT};
    assert_float_equal(sw_lr_at(&s, 0.1f, 0), 0.1f, 0.0f);
    assert_float_equal(sw_lr_at(&s, 0.1f, 123456), 0.1f, 0.0f);
}

/* Step decay multiplies by gamma every step_size steps: 0.1, 0.1, 0.1, 0.01, ..., 0.001. */
static void test_lr_schedule_step_decay(void **state) {
    (void)state;
    sw_lr_schedule s = {.kind = SW_LR_STEP, .step_size = 3, .gamma = 0.1f};
    assert_float_equal(sw_lr_at(&s, 0.1f, 0), 0.1f, 1e-9f);
    assert_float_equal(sw_lr_at(&s, 0.1f, 2), 0.1f, 1e-9f);
    assert_float_equal(sw_lr_at(&s, 0.1f, 3), 0.01f, 1e-9f);
    assert_float_equal(sw_lr_at(&s, 0.1f, 5), 0.01f, 1e-9f);
    assert_float_equal(sw_lr_at(&s, 0.1f, 6), 0.001f, 1e-10f);
    /* step_size 0 means no decay rather than a division by zero. */
    s.step_size = 0;
    assert_float_equal(sw_lr_at(&s, 0.1f, 50), 0.1f, 0.0f);
}

/* Cosine over 4 steps from 1 to 0: 1, (1+cos(pi/4))/2, 0.5, (1-cos(pi/4))/2, 0, then stays 0. */
static void test_lr_schedule_cosine(void **state) {
    (void)state;
    sw_lr_schedule s = {.kind = SW_LR_COSINE, .total_steps = 4};
    const float r = 0.70710678f; /* cos(pi/4) */
    assert_float_equal(sw_lr_at(&s, 1.0f, 0), 1.0f, 1e-7f);
    assert_float_equal(sw_lr_at(&s, 1.0f, 1), (1.0f + r) / 2, 1e-6f);
    assert_float_equal(sw_lr_at(&s, 1.0f, 2), 0.5f, 1e-6f);
    assert_float_equal(sw_lr_at(&s, 1.0f, 3), (1.0f - r) / 2, 1e-6f);
    assert_float_equal(sw_lr_at(&s, 1.0f, 4), 0.0f, 1e-7f);
    assert_float_equal(sw_lr_at(&s, 1.0f, 40), 0.0f, 1e-7f);
    /* min_lr is the floor: 0.2 + 0.8 * 0.5 at the midpoint. */
    s.min_lr = 0.2f;
    assert_float_equal(sw_lr_at(&s, 1.0f, 2), 0.6f, 1e-6f);
    assert_float_equal(sw_lr_at(&s, 1.0f, 9), 0.2f, 1e-6f);
    /* Without a length there is nothing to anneal over: the base rate. */
    s.total_steps = 0;
    assert_float_equal(sw_lr_at(&s, 0.3f, 7), 0.3f, 0.0f);
}

/* Warm-up ramps lr/4, 2lr/4, 3lr/4, lr over 4 steps, then the kind's own curve starts at t=0. */
static void test_lr_schedule_warmup(void **state) {
    (void)state;
    sw_lr_schedule s = {.kind = SW_LR_COSINE, .warmup_steps = 4, .total_steps = 2};
    assert_float_equal(sw_lr_at(&s, 0.4f, 0), 0.1f, 1e-7f);
    assert_float_equal(sw_lr_at(&s, 0.4f, 1), 0.2f, 1e-7f);
    assert_float_equal(sw_lr_at(&s, 0.4f, 2), 0.3f, 1e-7f);
    assert_float_equal(sw_lr_at(&s, 0.4f, 3), 0.4f, 1e-7f);
    assert_float_equal(sw_lr_at(&s, 0.4f, 4), 0.4f, 1e-7f); /* cosine t = 0 */
    assert_float_equal(sw_lr_at(&s, 0.4f, 5), 0.2f, 1e-7f); /* cosine t = 1 of 2 */
    assert_float_equal(sw_lr_at(&s, 0.4f, 6), 0.0f, 1e-7f);
    sw_lr_schedule st = {.kind = SW_LR_STEP, .warmup_steps = 2, .step_size = 2, .gamma = 0.5f};
    assert_float_equal(sw_lr_at(&st, 1.0f, 0), 0.5f, 1e-7f);
    assert_float_equal(sw_lr_at(&st, 1.0f, 1), 1.0f, 1e-7f);
    assert_float_equal(sw_lr_at(&st, 1.0f, 3), 1.0f, 1e-7f);
    assert_float_equal(sw_lr_at(&st, 1.0f, 4), 0.5f, 1e-7f);
    sw_lr_schedule c = {.kind = SW_LR_CONSTANT, .warmup_steps = 10};
    assert_float_equal(sw_lr_at(&c, 1.0f, 4), 0.5f, 1e-7f);
    assert_float_equal(sw_lr_at(&c, 1.0f, 100), 1.0f, 0.0f);
}

/* Names map to kinds; an unknown name is an error listing the valid ones. */
static void test_lr_schedule_names(void **state) {
    (void)state;
    sw_lr_kind k;
    assert_int_equal(sw_lr_kind_from_name("cosine", &k), SW_OK);
    assert_int_equal(k, SW_LR_COSINE);
    assert_int_equal(sw_lr_kind_from_name("step", &k), SW_OK);
    assert_int_equal(k, SW_LR_STEP);
    assert_int_equal(sw_lr_kind_from_name("onecycle", &k), SW_ERR_NOT_FOUND);
    assert_non_null(strstr(sw_error_message(), "constant, step or cosine"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lr_schedule_constant), cmocka_unit_test(test_lr_schedule_step_decay),
        cmocka_unit_test(test_lr_schedule_cosine),   cmocka_unit_test(test_lr_schedule_warmup),
        cmocka_unit_test(test_lr_schedule_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
