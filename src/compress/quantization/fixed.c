/* fixed.c - the base Quantizer: clamp_round with scales loaded from a calibration config.
 *
 * NNI re-creates a quantized simulation with Quantizer(model, config_list) followed by
 * update_calibration_config(cfg) (reference §4.9). Nothing is observed or trained: targets pass
 * through until a calibration gives them a scale. */
#include <stdlib.h>

#include "quantizers.h"

static sw_quant_method fixed_initial(const sw_quantizer *q, const sw_quant_target *t) {
    (void)q;
    (void)t;
    return SW_QUANT_CLAMP_ROUND;
}

/* Nothing to do: the scales come from a calibration. */
static sw_status fixed_single(sw_compressor *c, long max_steps, int max_epochs) {
    (void)c;
    (void)max_steps;
    (void)max_epochs;
    return SW_OK;
}

static bool fixed_needs_training(const sw_compressor *c) {
    (void)c;
    return false;
}

static const sw_quantizer_ops fixed_qops = {
    .initial_method = fixed_initial,
};

static const sw_compressor_ops fixed_ops = {
    .name = "Quantizer",
    .mode = SW_MODE_QUANTIZATION,
    .single_compress = fixed_single,
    .needs_training = fixed_needs_training,
    .export_file = sw_quantizer_export_file,
    .free = sw_quantizer_free,
};

sw_status sw_quantizer_fixed_new(sw_wrapper_set *ws, const cJSON *config_list,
                                 sw_compressor **out) {
    return sw_quantizer_build(calloc(1, sizeof(sw_quantizer)), &fixed_ops, &fixed_qops, ws, NULL,
                              config_list, NULL, out);
}
