/* calibration.h - NNI's calibration config: export, import, and calibration passes.
 *
 * get_calibration_config() (reference §1.8) as JSON, one object per module and target:
 *
 *   {"conv1": {"weight": {"quant_dtype": "int8", "quant_scheme": "affine", "quant_bits": 8,
 *                          "shape": [32, 1, 1, 1],
 *                          "scale": [...], "zero_point": [...],
 *                          "tracked_min": [...], "tracked_max": [...]}, ...}, ...}
 *
 * Values are row-major lists over "shape" (NNI's keepdim block shape; [1] per tensor).
 * quant_dtype is "int8" when the config said null (NNI's default); quant_scheme may be null.
 * A target whose scale is not set yet has "scale": null and "zero_point": null. When a
 * quantizer tracks no range (LSQ, DoReFa, BNN), tracked_min/max are derived from the scale as
 * NNI does: scale * (qmin - zero_point) and scale * (qmax - zero_point). Numbers are written
 * with enough digits to read back bit-exactly.
 *
 * update (NNI's update_calibration_config) reads such an object back into a quantizer whose
 * targets match: dtype, bits and scheme must agree, the shape must be the target's block shape;
 * modules or targets the quantizer does not have are skipped with a warning. Loaded scales
 * stand: quantizers that initialise their scales until the first optimizer step (LSQ,
 * DoReFa, BNN) stop doing so.
 */
#ifndef SW_QUANT_CALIBRATION_H
#define SW_QUANT_CALIBRATION_H

#include <cjson/cJSON.h>

#include "../compressor.h"

/* The calibration of quantizer c (its own targets). Caller owns *out (cJSON_Delete). Fails with
 * SW_ERR_ARG when c is not a quantizer. */
sw_status sw_quant_calibration_get(const sw_compressor *c, cJSON **out);

/* Loads scales, zero points and tracked ranges from `cfg` into c's targets (see above). */
sw_status sw_quant_calibration_update(sw_compressor *c, const cJSON *cfg);

/* The same through a file: written atomically (atomic_file.h); read and parsed with errors
 * naming the path. */
sw_status sw_quant_calibration_save(const sw_compressor *c, const char *path);
sw_status sw_quant_calibration_load(sw_compressor *c, const char *path);

/* Calibration passes: forward-only passes of `model` over the evaluator's training batches,
 * in eval mode (BatchNorm statistics and weights stay as they are), for max_steps batches or
 * max_epochs epochs (whichever ends first; negative = unset, not both). The quantizers' observers
 * see every batch. Stops early (SW_ERR_INTERRUPTED) when the evaluator's poll asks to. */
sw_status sw_quant_calibrate(sw_evaluator *ev, sw_model *model, long max_steps, int max_epochs);

#endif
