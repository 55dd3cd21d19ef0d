/* quant_setting.h - the quantization mode of config lists: keys, templates, typed settings.
 *
 * Keys (reference §2.3):
 *   quant_dtype   "int<b>" (b in 2..16) or "uint<b>" (b in 1..16); null means int8. NNI's
 *                 schema requires the key in every entry (its value may be null): an entry
 *                 without it is an error here too.
 *   quant_scheme  "affine" | "symmetric" | null (most quantizers treat null as symmetric)
 *   granularity   "default" (per tensor), null (per tensor), "out_channel"/"in_channel"
 *                 (parameters), "per_channel" (inputs, outputs: dim 1), or a block kernel
 *   apply_method  one of the fake-quant methods; each quantizer overrides it
 *   fuse_names    [[conv, bn], [conv, bn, relu], ...] (top level only): BatchNorm folding
 *                 during quantization-aware training (bn_fold.h)
 *
 * Templates (NNI's QuantizationSetting): Linear, Conv2d, BatchNorm1d, BatchNorm2d have
 * "_input_", "weight", "bias" and "_output_"; ReLU, ReLU6 and MaxPool2d have "_input_" and
 * "_output_". Every template target carries quant_dtype, quant_scheme, granularity and
 * apply_method, so top-level values of those keys reach every target (shortcuts, §1.5).
 * Omitting target_names therefore quantizes the input, the weight, the bias and the output.
 *
 * The integer range of a dtype is NNI's restricted one:
 *   int<b>  -> [-(2^(b-1) - 1), 2^(b-1) - 1]   (int8: [-127, 127])
 *   uint<b> -> [0, 2^b - 1]
 */
#ifndef SW_QUANT_SETTING_H
#define SW_QUANT_SETTING_H

#include "../config_list.h"

#define SW_QUANT_DTYPE_MAX 12
#define SW_QUANT_FUSE_MAX 3

typedef enum sw_quant_scheme {
    SW_QUANT_SCHEME_NONE,      /* null: symmetric for the range rules */
    SW_QUANT_SCHEME_AFFINE,    /* zero point follows the range */
    SW_QUANT_SCHEME_SYMMETRIC, /* zero point in the middle of the integer range */
} sw_quant_scheme;

/* "affine" | "symmetric" | "null" (for NONE). */
const char *sw_quant_scheme_name(sw_quant_scheme s);

/* A dtype: its spelling, bits and integer range. */
typedef struct sw_quant_dtype {
    bool given;                    /* false when the config said null (NNI's int8 default) */
    char name[SW_QUANT_DTYPE_MAX]; /* "int8", "uint4"; "int8" when not given */
    int bits;
    bool is_unsigned;
    int qmin, qmax;
} sw_quant_dtype;

/* Parses "int<b>" / "uint<b>"; NULL means null (int8, given = false). False with a reason
 * for anything else. */
bool sw_quant_dtype_parse(const char *text, sw_quant_dtype *out, char *why, size_t size);

/* One target's quantization setting, typed. */
typedef struct sw_quant_setting {
    sw_quant_dtype dtype;
    sw_quant_scheme scheme;
    sw_granularity granularity; /* DEFAULT and ELEMENT both mean per tensor */
} sw_quant_setting;

extern const sw_config_mode sw_quant_config_mode;

/* Reads a merged, validated setting object. */
sw_status sw_quant_setting_from_json(const cJSON *setting, sw_quant_setting *out);

/* One fuse_names tuple, resolved against the model. */
typedef struct sw_quant_fuse {
    int entry;                    /* config entry it comes from */
    int n;                        /* 2 or 3 */
    int nodes[SW_QUANT_FUSE_MAX]; /* node indices: the computing module first */
} sw_quant_fuse;

/* Checks the whole config list for what the key table cannot: quant_dtype present in every
 * entry, fuse_names only at the top level, each fuse tuple naming modules of the model. The
 * tuples are appended to *fuses (caller frees *fuses; *n_fuses counts them). Pattern checks
 * (a conv followed by its BatchNorm, ...) are bn_fold.c's. */
sw_status sw_quant_config_check(const sw_model *model, const cJSON *config_list,
                                sw_quant_fuse **fuses, int *n_fuses);

#endif
