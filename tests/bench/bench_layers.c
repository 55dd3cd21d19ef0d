/* bench_layers.c - per-layer timing of a zoo model's training step (not a ctest test).
 *
 * Runs a few warm-up steps (forward, cross-entropy, backward) on a random batch, then times the
 * whole step and every node's forward, backward_input and backward_params separately, re-using
 * the io records of the last forward. Build against a Release tree:
 *
 *   cc -O2 -fopenmp -Isrc tests/bench/bench_layers.c BUILD/libshrinkwrap_core.a \
 *      -L/usr/lib/x86_64-linux-gnu/openblas-openmp
 * -Wl,-rpath,/usr/lib/x86_64-linux-gnu/openblas-openmp \ -lopenblas -lcjson -lz -llua5.4 -lncursesw
 * -lm -o bench_layers
 *   ./bench_layers fmnist_cnn 128 20 2          (model, batch, repetitions, threads)
 *   SW_BENCH_CPU=1 ./bench_layers fmnist_cnn 128 20 1   (CPU time, one thread)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/loss.h"
#include "nn/model.h"
#include "nn/zoo.h"
#include "tensor/blas.h"

/* Wall time, or process CPU time (immune to preemption on a busy machine; meaningful with one
 * thread, since OpenMP's waiting threads spin) when SW_BENCH_CPU is set. */
static double now_ms(void) {
    struct timespec ts;
    clock_gettime(getenv("SW_BENCH_CPU") ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void check(sw_status st, const char *what) {
    if (st != SW_OK) {
        fprintf(stderr, "%s: %s\n", what, sw_error_message());
        exit(1);
    }
}

static double median(double *v, int n) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return v[n / 2];
}

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "fmnist_cnn";
    int batch = argc > 2 ? atoi(argv[2]) : 128;
    int reps = argc > 3 ? atoi(argv[3]) : 20;
    int threads = sw_threads_set(argc > 4 ? atoi(argv[4]) : 0);
    sw_model *m = NULL;
    check(sw_zoo_build(name, 1, &m), "build");
    sw_shape xs;
    check(sw_shape_batched(&m->input_shape, batch, &xs), "shape");
    sw_tensor x, dl;
    check(sw_tensor_init(&x, &xs), "input");
    sw_rng rng;
    sw_rng_init(&rng, 1, 1);
    for (size_t i = 0; i < x.numel; i++) x.data[i] = sw_rng_uniform(&rng);
    int *labels = malloc(sizeof(int) * (size_t)batch);
    for (int i = 0; i < batch; i++) labels[i] = (int)sw_rng_below(&rng, 10);
    const sw_tensor *out;
    double loss, *t = malloc(sizeof(double) * (size_t)reps);
    check(sw_model_forward(m, &x, &out), "forward");
    check(sw_tensor_init(&dl, &out->shape), "dlogits");
    for (int r = 0; r < reps + 3; r++) {
        double t0 = now_ms();
        check(sw_model_forward(m, &x, &out), "forward");
        check(sw_loss_cross_entropy(out, labels, 1.0f, &loss, &dl), "loss");
        sw_model_zero_grad(m);
        check(sw_model_backward(m, &dl), "backward");
        if (r >= 3) t[r - 3] = now_ms() - t0;
    }
    double step = median(t, reps), best = t[0]; /* median() sorted t */
    printf(
        "%s batch %d threads %d: step %.2f ms median = %.0f images/s (best step %.2f ms = %.0f)\n",
        name, batch, threads, step, batch / step * 1e3, best, batch / best * 1e3);
    if (getenv("SW_BENCH_STEP_ONLY")) return 0; /* for profilers: steps only */
    /* Per-node timings re-run layers on the io of the last step. Layers that take arena memory
     * in forward get fresh (not yet faulted-in) pages on every repetition, which the real
     * step does not pay, so their numbers here are upper bounds. */
    printf("%-28s %-18s %9s %9s %9s\n", "node", "type", "fwd ms", "bwd_in ms", "bwd_p ms");
    double sum[3] = {0, 0, 0};
    for (int i = 0; i < m->n_nodes; i++) {
        sw_node *node = &m->nodes[i];
        sw_layer *l = node->layer;
        sw_layer_io *io = &m->ios[i];
        double ms[3] = {0, 0, 0};
        sw_tensor *din[SW_MAX_INPUTS] = {0}, *dp[SW_MAX_PARAMS] = {0};
        for (int j = 0; j < node->n_inputs; j++)
            if (node->inputs[j] != SW_NODE_INPUT) din[j] = &m->douts[node->inputs[j]];
        for (int p = 0; p < l->n_params; p++)
            if (l->params[p].trainable) dp[p] = &l->params[p].grad;
        for (int pass = 0; pass < 3; pass++) {
            if (pass == 1 && !din[0] && node->n_inputs == 1) continue;
            if (pass == 2 && !l->ops->backward_params) continue;
            for (int r = 0; r < reps; r++) {
                double t0 = now_ms();
                if (pass == 0) check(l->ops->forward(l, io), "node forward");
                if (pass == 1) check(l->ops->backward_input(l, io, &m->douts[i], din), "bwd in");
                if (pass == 2) check(l->ops->backward_params(l, io, &m->douts[i], dp), "bwd p");
                t[r] = now_ms() - t0;
            }
            ms[pass] = median(t, reps);
            sum[pass] += ms[pass];
        }
        printf("%-28s %-18s %9.3f %9.3f %9.3f\n", node->name, l->ops->type_name, ms[0], ms[1],
               ms[2]);
    }
    printf("%-28s %-18s %9.3f %9.3f %9.3f  (layers alone: %.2f ms)\n", "total", "", sum[0], sum[1],
           sum[2], sum[0] + sum[1] + sum[2]);
    free(t);
    free(labels);
    sw_tensor_deinit(&x);
    sw_tensor_deinit(&dl);
    sw_model_free(m);
    return 0;
}
