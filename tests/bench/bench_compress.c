/* bench_compress.c - what wrapping costs: training steps of a bare zoo model against the same
 * model with one pruner attached (not a ctest test).
 *
 * The pruned model is fmnist_cnn with L1NormPruner at sparse_ratio 0.5 on conv1, conv2 and fc1
 * (issue 3's accuracy setting): every step then runs three weight masks, three bias masks, the
 * derived masks that keep pruned channels zero downstream (bn1 and bn2 scale and shift), and
 * the gradient mapping. Bare and wrapped runs alternate, so drift in machine load hits both; the
 * best of `rounds` is reported. Build against a Release tree:
 *
 *   OB=/usr/lib/x86_64-linux-gnu/openblas-openmp
 *   cc -O2 -fopenmp -Isrc tests/bench/bench_compress.c BUILD/libshrinkwrap_core.a -L$OB \
 *      -Wl,-rpath,$OB -lopenblas -lcjson -lz -llua5.4 -lncursesw -lm -o bench_compress
 *   ./bench_compress 128 10 5                          (batch, steps per round, rounds)
 *   SW_BENCH_CPU=1 OMP_NUM_THREADS=1 ./bench_compress 64 5 3     (CPU time, one thread)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compress/compressor.h"
#include "compress/pruning/pruners.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "nn/zoo.h"
#include "tensor/rng.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(getenv("SW_BENCH_CPU") ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what) {
    fprintf(stderr, "bench_compress: %s: %s\n", what, sw_error_message());
    exit(1);
}

/* `steps` SGD steps (forward, cross-entropy, backward, update) on one batch; milliseconds. */
static double run(sw_model *m, const sw_tensor *x, const int *y, sw_tensor *dlogits, int steps) {
    double t0 = now_ms();
    for (int s = 0; s < steps; s++) {
        const sw_tensor *logits = NULL;
        double loss;
        if (sw_model_forward(m, x, &logits) != SW_OK) die("forward");
        if (sw_loss_cross_entropy(logits, y, 1.0f, &loss, dlogits) != SW_OK) die("loss");
        sw_model_zero_grad(m);
        if (sw_model_backward(m, dlogits) != SW_OK) die("backward");
        for (size_t i = 0; i < m->n_param_floats; i++) m->param_data[i] -= 0.01f * m->grad_data[i];
    }
    return now_ms() - t0;
}

int main(int argc, char **argv) {
    int batch = argc > 1 ? atoi(argv[1]) : 128;
    int steps = argc > 2 ? atoi(argv[2]) : 10;
    int rounds = argc > 3 ? atoi(argv[3]) : 5;
    sw_model *bare = NULL, *wrapped = NULL;
    if (sw_zoo_build("fmnist_cnn", 1, &bare) != SW_OK) die("zoo");
    if (sw_model_clone(bare, &wrapped) != SW_OK) die("clone");
    sw_model_set_training(bare, true);
    sw_model_set_training(wrapped, true);
    sw_wrapper_set *ws = NULL;
    if (sw_wrapper_set_new(wrapped, &ws) != SW_OK) die("wrapper set");
    cJSON *cfg = NULL;
    if (sw_config_list_parse("[{\"op_names\": [\"conv1\", \"conv2\", \"fc1\"], "
                             "\"sparse_ratio\": 0.5}]",
                             &cfg) != SW_OK)
        die("config");
    sw_compressor *p = NULL;
    if (sw_pruner_l1norm_new(ws, cfg, NULL, &p) != SW_OK) die("pruner");
    if (sw_compressor_compress(p, -1, -1) != SW_OK) die("compress");
    sw_shape xs = sw_shape_4d(batch, 1, 28, 28), ls = sw_shape_2d(batch, 10);
    sw_tensor *x = NULL, *dl = NULL;
    if (sw_tensor_new(&xs, &x) != SW_OK || sw_tensor_new(&ls, &dl) != SW_OK) die("tensors");
    sw_rng rng;
    sw_rng_init(&rng, 3, 1);
    for (size_t i = 0; i < x->numel; i++) x->data[i] = sw_rng_normal(&rng);
    int *y = malloc((size_t)batch * sizeof *y);
    for (int i = 0; i < batch; i++) y[i] = i % 10;
    run(bare, x, y, dl, 2); /* warm-up: arenas reach their steady size */
    run(wrapped, x, y, dl, 2);
    double best_bare = 1e300, best_wrapped = 1e300;
    for (int r = 0; r < rounds; r++) {
        double a = run(bare, x, y, dl, steps), b = run(wrapped, x, y, dl, steps);
        if (a < best_bare) best_bare = a;
        if (b < best_wrapped) best_wrapped = b;
    }
    printf("fmnist_cnn batch %d, %d steps x %d rounds (best round)\n", batch, steps, rounds);
    printf("  bare     %8.2f ms/step  %8.0f images/s\n", best_bare / steps,
           batch * steps / best_bare * 1e3);
    printf("  wrapped  %8.2f ms/step  %8.0f images/s  (%d transforms)\n", best_wrapped / steps,
           batch * steps / best_wrapped * 1e3, sw_wrapper_set_transform_count(ws));
    printf("  overhead %+.1f%%\n", 100.0 * (best_wrapped - best_bare) / best_bare);
    free(y);
    sw_tensor_free(x);
    sw_tensor_free(dl);
    cJSON_Delete(cfg);
    sw_compressor_free(p);
    sw_wrapper_set_release(ws);
    sw_model_free(wrapped);
    sw_model_free(bare);
    return 0;
}
