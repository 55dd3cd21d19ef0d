/* test_support.c - helpers shared by the cmocka tests. */
#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tensor/rng.h"

const char *sw_test_data_path(const char *name, char *buf, size_t size) {
    snprintf(buf, size, "%s/%s", SW_TEST_DATA, name);
    return buf;
}

void sw_test_assert_close(const float *got, const float *want, size_t n, float atol, float rtol,
                          const char *what) {
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)got[i] - (double)want[i]);
        double tol = atol + rtol * fabs((double)want[i]);
        if (!(diff <= tol)) {
            fail_msg("%s[%zu]: got %.9g, want %.9g (|diff| %.3g > tol %.3g)", what, i,
                     (double)got[i], (double)want[i], diff, tol);
        }
    }
}

void sw_test_fill_uniform(sw_tensor *t, uint64_t seed, float lo, float hi) {
    sw_rng rng;
    sw_rng_init(&rng, seed, 77);
    for (size_t i = 0; i < t->numel; i++) t->data[i] = lo + (hi - lo) * sw_rng_uniform(&rng);
}

static char tmpdir_path[256];

static void remove_tmpdir(void) {
    if (!tmpdir_path[0]) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir_path);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir_path);
}

const char *sw_test_tmpdir(void) {
    if (!tmpdir_path[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir_path, sizeof tmpdir_path, "%s/swtest.XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(tmpdir_path)) {
            tmpdir_path[0] = '\0';
            fail_msg("cannot create a temporary directory");
        }
        atexit(remove_tmpdir);
    }
    return tmpdir_path;
}
