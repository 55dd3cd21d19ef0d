/* masks_io.h - masks files: safetensors, one tensor per "module.target".
 *
 * Each mask is an F32 tensor of 0s and 1s named "<module>.<target>" ("layer1.0.conv1.weight",
 * "bn1._output_0"), in the shapes of masks.h. __metadata__ holds "format":
 * "shrinkwrap-masks", "format_version": "1", plus any extra pairs the caller adds (pruner,
 * config list, model). Files are written atomically (temporary file + rename). Reading accepts
 * any numeric dtype (non-zero = 1), so NNI masks saved as U8/bool load too.
 */
#ifndef SW_COMPRESS_MASKS_IO_H
#define SW_COMPRESS_MASKS_IO_H

#include "masks.h"

/* Writes `masks` to `path`; extra_meta (may be NULL) is a NULL-terminated list of key, value
 * pairs. */
sw_status sw_masks_save(const sw_masks *masks, const char *path, const char *const *extra_meta);

/* Reads every tensor of a masks file as module.target (split at the last dot). Errors name
 * the file and the tensor. *out is initialised here; the caller deinits it. */
sw_status sw_masks_load(const char *path, sw_masks *out);

#endif
