/* latency.c - median inference time of a model (see latency.h). */
#include "latency.h"

#include <stdlib.h>

#include "../tensor/clock.h"
#include "../tensor/rng.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

sw_status sw_model_latency(sw_model *model, int batch, int repeats, uint64_t seed, double *median) {
    return sw_model_latency_profiled(model, batch, repeats, seed, median, NULL);
}

sw_status sw_model_latency_profiled(sw_model *model, int batch, int repeats, uint64_t seed,
                                    double *median, sw_node_time *node_times) {
    if (batch < 1 || repeats < 1)
        return SW_FAIL(SW_ERR_ARG, "latency: batch %d and repeats %d must be at least 1", batch,
                       repeats);
    sw_shape xs;
    SW_TRY(sw_shape_batched(&model->input_shape, batch, &xs));
    sw_tensor x;
    SW_TRY(sw_tensor_init(&x, &xs));
    double *times = malloc((size_t)repeats * sizeof *times);
    if (!times) {
        sw_tensor_deinit(&x);
        return SW_FAIL(SW_ERR_NOMEM, "latency: no memory for %d timings", repeats);
    }
    /* Stream 4 of the seed: the same probe `shrinkwrap bench` has always timed. */
    sw_rng rng;
    sw_rng_init(&rng, seed, 4);
    for (size_t i = 0; i < x.numel; i++) x.data[i] = sw_rng_normal(&rng);
    sw_model_set_training(model, false);
    /* timed as evaluation runs: chains without hooks fused (inference_fusion.h) */
    bool was_fusing = model->inference_fusion;
    sw_model_set_inference_fusion(model, true);
    sw_status st = SW_OK;
    const sw_tensor *out = NULL;
    for (int w = 0; w < SW_LATENCY_WARMUP && st == SW_OK; w++)
        st = sw_model_forward(model, &x, &out);
    sw_model_set_profile(model, node_times);
    for (int r = 0; r < repeats && st == SW_OK; r++) {
        double t0 = sw_clock_seconds();
        st = sw_model_forward(model, &x, &out);
        times[r] = sw_clock_seconds() - t0;
    }
    sw_model_set_profile(model, NULL);
    if (st == SW_OK) {
        qsort(times, (size_t)repeats, sizeof *times, cmp_double);
        *median = times[repeats / 2];
    }
    sw_model_set_inference_fusion(model, was_fusing);
    free(times);
    sw_tensor_deinit(&x);
    return st;
}
