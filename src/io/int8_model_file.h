/* int8_model_file.h - int8 model files: a model file's layout plus int8 tensors and scales.
 *
 * A new format beside model_file.h's (which is unchanged: float model files load as before; this
 * reader refuses them and their reader refuses these, each with a message naming the other).
 * Safetensors, __metadata__:
 *   "format": "shrinkwrap-int8-model", "format_version": "1", "arch", "architecture" (as in a
 *   model file: the graph and hyper-parameters),
 *   "quantization": JSON {"nodes": {"<node>": {"mode": "int8" | "identity" | "float",
 *       "fused_relu": bool,
 *       "input": {"qmin", "qmax", "offset", "lsq"}                      (int8 nodes),
 *       "ops": [{"target": "_output_0", "kind": "quant", "method", "dtype", "scheme",
 *                "grid": [...], "scaling": null | {"kernel": [...], "pad": "front"|"back",
 *                "pad_value"}, "dynamic": bool} | {"target", "kind": "mask"}, ...]}}}
 *   (nodes absent from "nodes" are float nodes without ops).
 * Tensors:
 *   float and identity nodes  "<node>.<param>" F32, as in a model file (effective values:
 *                             quantized and masked weights baked in);
 *   int8 nodes                "<node>.weight" I8 (the weight's shape; stored integers),
 *                             "<node>.weight_scale", "<node>.weight_zero_point" F32 [O],
 *                             "<node>.bias" F32 [O] (effective bias),
 *                             "<node>.input_scale", "<node>.input_zero_point" F32 [1];
 *   ops                       "<node>.<target>.scale" / ".zero_point" F32 (the grid),
 *                             "<node>.<target>.mask" F32 (per-sample shape).
 * Any safetensors reader can load the integers and scales. Files are untrusted: every shape and
 * range is checked against the architecture before use.
 */
#ifndef SW_INT8_MODEL_FILE_H
#define SW_INT8_MODEL_FILE_H

#include <stdbool.h>

#include "../quantized/int8_model.h"

/* Writes `m` to `path` atomically. `extra_meta` (may be NULL): NULL-terminated key, value pairs
 * added to __metadata__. */
sw_status sw_int8_model_save(const sw_int8_model *m, const char *path,
                             const char *const *extra_meta);
/* Loads an int8 model file. Caller owns *out. */
sw_status sw_int8_model_load(const char *path, sw_int8_model **out);
/* True when `path` is a readable safetensors file whose metadata says it is an int8 model
 * (reads only the header). */
bool sw_int8_model_file_is(const char *path);

#endif
