/* gradcheck.h - running one bare layer outside a model, and checking its gradients against
 * central finite differences.
 *
 * A layer normally gets parameter storage from its model; sw_harness_init allocates it here
 * instead (values and gradients, owned by the harness) so a single layer can be driven with
 * chosen inputs and parameters. The finite-difference check perturbs every (or a sample of
 * every) input and trainable parameter element by +-eps, evaluates f = sum(out * dout) in double
 * for a fixed random dout, and compares (f+ - f-) / 2eps with what backward_input and
 * backward_params ACCUMULATED onto non-zero starting gradients.
 */
#ifndef SW_GRADCHECK_H
#define SW_GRADCHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "nn/layer.h"

typedef struct sw_harness {
    sw_layer *layer; /* borrowed; its params point at storage owned here */
    int n_in;
    sw_tensor *in[SW_MAX_INPUTS]; /* borrowed batched inputs */
    sw_tensor out;                /* owned, batched output */
    sw_arena arena;
    sw_rng rng;
    uint64_t rng_seed; /* the generator restarts here before every forward */
    void *saved;
    sw_layer_io io;
    bool training;
} sw_harness;

/* Prepares `layer` to run on the batched `inputs` (shapes checked with infer_shape): allocates
 * its parameter storage and fills it from `seed` (weights and biases in [-1, 1), BatchNorm gamma
 * in [0.5, 1.5), running_mean in [-0.5, 0.5), running_var in [0.5, 1.5)). */
sw_status sw_harness_init(sw_harness *h, sw_layer *layer, sw_tensor *const *inputs, int n_in,
                          bool training, uint64_t seed);
/* Frees the output, the arena and the parameter storage (the layer's params are cleared). */
void sw_harness_deinit(sw_harness *h);
/* Resets the arena and the generator, then runs forward into h->out. */
sw_status sw_harness_forward(sw_harness *h);
/* Runs backward_input then backward_params of the last forward. din[i] / dparams[p] may be
 * NULL; both accumulate. */
sw_status sw_harness_backward(sw_harness *h, const sw_tensor *dout, sw_tensor *const *din,
                              sw_tensor *const *dparams);

typedef struct sw_gradcheck_opts {
    double eps;  /* central-difference step */
    double atol; /* pass when |analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|) */
    double rtol;
    int max_checks; /* elements checked per tensor, spread evenly; 0 = all */
    uint64_t seed;  /* for dout and the starting gradients */
} sw_gradcheck_opts;

/* Defaults for float32 layers: eps 1e-2, atol 1e-4, rtol 1e-3, every element. On the shapes of
 * test_layers.c the worst error seen is about 2.5e-5, so these leave a margin of about 4x while
 * still catching any wrong term (a missing factor or index is off by far more). */
sw_gradcheck_opts sw_gradcheck_defaults(void);

/* Checks every input and trainable parameter gradient of the harness's layer; fails the
 * current cmocka test with the tensor, index and both values on the first mismatch. Returns
 * the largest |analytic - numeric| seen (for reporting). */
double sw_gradcheck_run(sw_harness *h, const sw_gradcheck_opts *opts);

/* Convenience: harness + check + teardown for a layer on fresh inputs. */
double sw_gradcheck_layer(sw_layer *layer, sw_tensor *const *inputs, int n_in, bool training,
                          const sw_gradcheck_opts *opts);

#endif
