/* model_file.h - model files: safetensors with the architecture in __metadata__.
 *
 * Tensors are named "<node>.<param>" (PyTorch's state_dict names: "conv1.weight",
 * "bn1.running_mean"), dtype F32. __metadata__ holds:
 *   "format": "shrinkwrap-model", "format_version": "1",
 *   "arch": the zoo name or "custom",
 *   "architecture": JSON {"input_shape": [1,28,28], "nodes": [{"name", "type", "inputs": [...],
 *                   <hyper-parameters of the type>}...]}.
 * Save then load is bit-exact. Loading checks that the architecture and the tensors agree
 * (every parameter present, shapes equal, nothing extra) and names what does not.
 *
 * Hyper-parameter keys by type (pairs are [height, width]; a single integer also reads as a
 * square pair; keys marked * may be omitted and take PyTorch's default):
 *   Linear               in_features, out_features, bias*
 *   Conv2d               in_channels, out_channels, kernel_size, stride*, padding*, dilation*,
 *                        groups*, bias*
 *   BatchNorm2d/1d       num_features, eps*, momentum*
 *   MaxPool2d            kernel_size, stride* (default: kernel_size), padding*, dilation*
 *   AvgPool2d            kernel_size, stride* (default: kernel_size), padding*
 *   Dropout              p*
 *   others               none
 * Unknown keys are errors. Files are treated as untrusted: sizes are capped (activations at
 * 2^26 elements per sample, parameters at 2^26 in all, node names at 256 bytes) and each
 * layer's tensors are checked before anything is allocated for it.
 */
#ifndef SW_MODEL_FILE_H
#define SW_MODEL_FILE_H

#include "../nn/model.h"

/* Writes `model` to `path` atomically. `extra_meta` (may be NULL) is a NULL-terminated list of
 * key, value pairs added to __metadata__ (e.g. training provenance). */
sw_status sw_model_save(const sw_model *model, const char *path, const char *const *extra_meta);
/* Loads a model file. Caller owns *out. */
sw_status sw_model_load(const char *path, sw_model **out);
/* Same from bytes in memory (for fuzzing). */
sw_status sw_model_load_bytes(const unsigned char *bytes, size_t size, sw_model **out);

/* The architecture as JSON text (caller frees) and back (a finalised model with zeroed params). */
sw_status sw_model_arch_to_json(const sw_model *model, char **json);
sw_status sw_model_from_arch_json(const char *json, const char *arch, sw_model **out);

#endif
