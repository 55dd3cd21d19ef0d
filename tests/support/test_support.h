/* test_support.h - helpers shared by the cmocka tests. */
#ifndef SW_TEST_SUPPORT_H
#define SW_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tensor/tensor.h"

/* Path of a file under tests/data (static buffer per call site is not needed: caller's buf). */
const char *sw_test_data_path(const char *name, char *buf, size_t size);

/* Fails the current test (with the index and values) unless |got - want| <= atol + rtol*|want|
 * everywhere. `what` names the quantity in the failure message. */
void sw_test_assert_close(const float *got, const float *want, size_t n, float atol, float rtol,
                          const char *what);

/* Fills t with uniform values in [lo, hi) from a seeded generator. */
void sw_test_fill_uniform(sw_tensor *t, uint64_t seed, float lo, float hi);

/* A fresh temporary directory for this test process (created once, removed at exit). */
const char *sw_test_tmpdir(void);

#endif
