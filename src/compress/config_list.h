/* config_list.h - NNI's config_list: which modules and targets to compress, and how.
 *
 * A config list is a JSON array of objects (reference §2). Each entry selects modules:
 *
 *   ((op_names ∪ match(op_names_re)) ∩ types(op_types)) − exclude_op_names
 *       − match(exclude_op_names_re) − types(exclude_op_types)
 *
 * (with neither op_names nor op_names_re, the selection starts from types(op_types)). Module
 * names are node names; types are PyTorch class names ("Conv2d", "Linear", "BatchNorm2d", ...,
 * sw_layer_kind_name); regular expressions are POSIX extended ones anchored at the start of the
 * name, like Python's re.match (no \d or lookaheads: write [0-9]).
 *
 * Per selected module, the settings of its targets are built as NNI builds them (§1.5):
 *   1. the mode's template for the module's type ({"weight": {...}, "bias": {...}});
 *   2. every other top-level key of the entry is a *shortcut*: it overwrites that key in each
 *      template target that already has it (a top-level sparse_ratio reaches "weight", not the
 *      bias, whose template only aligns it to the weight);
 *   3. "target_settings": {target: {...}} merges over the template and may add targets;
 *   4. targets = "target_names" or all targets of the template; "_input_"/"_output_" mean
 *      "_input_0"/"_output_0"; an "_input_<i>" missing from the template takes "_input_".
 * A (module, target) configured by an earlier entry keeps that configuration: later entries
 * are ignored for it, with a warning (NNI: first config wins).
 *
 * Errors name the entry and key and say what to do: `config_list[2].sparse_ratio: 1.5 is not in
 * [0, 1)`, an unknown key, an op name absent from the model, contradicting keys, a module type
 * without targets in this mode.
 *
 * Each compression mode brings its own key table, templates and whole-setting checks
 * (sw_config_mode), so quantization and distillation add theirs without touching this file.
 */
#ifndef SW_COMPRESS_CONFIG_LIST_H
#define SW_COMPRESS_CONFIG_LIST_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "../nn/model.h"
#include "scaling.h"
#include "warnings.h"
#include "wrapper.h"

typedef enum sw_compress_mode {
    SW_MODE_PRUNING,
    SW_MODE_QUANTIZATION,
    SW_MODE_DISTILLATION,
} sw_compress_mode;

/* "pruning" | "quantization" | "distillation". */
const char *sw_compress_mode_name(sw_compress_mode mode);

/* One setting key of a mode. */
typedef struct sw_config_key {
    const char *name;
    /* Validates a value given by the user (null means "unset" and is always accepted before
     * this is called). On failure writes a phrase such as "1.5 is not in [0, 1)" into `why`
     * and returns false. */
    bool (*check)(const cJSON *value, char *why, size_t size);
} sw_config_key;

typedef struct sw_config_mode {
    sw_compress_mode mode;
    const sw_config_key *keys;
    int n_keys;
    /* The template of a layer kind as JSON object text {"<target>": {<key>: <default>}};
     * NULL when the kind has no targets in this mode (it may still be configured through
     * target_settings). */
    const char *(*template_for)(sw_layer_kind kind);
    /* Checks a merged target setting for contradicting keys; on failure names the key and
     * writes the reason. May be NULL. */
    bool (*check_setting)(const cJSON *setting, const char **key, char *why, size_t size);
} sw_config_mode;

/* One configured (module, target). */
typedef struct sw_config_target {
    int node;
    char target[SW_TARGET_NAME_MAX];
    int entry;      /* index of the config entry it comes from */
    cJSON *setting; /* owned: the merged setting object */
} sw_config_target;

typedef struct sw_config_resolved {
    int n, cap;
    sw_config_target *items; /* in entry order, then node order, then target order */
} sw_config_resolved;

void sw_config_resolved_init(sw_config_resolved *r);
void sw_config_resolved_deinit(sw_config_resolved *r);

/* Parses config list JSON text. Caller owns *out (cJSON_Delete). Errors say where the text
 * stops being JSON. */
sw_status sw_config_list_parse(const char *json, cJSON **out);

/* Resolves `config_list` (a JSON array) against `model` for `mode`. Warnings (an entry that
 * selects nothing, a target configured twice) go to `warnings` (may be NULL). On failure
 * *out is left empty. */
sw_status sw_config_resolve(const sw_model *model, const cJSON *config_list,
                            const sw_config_mode *mode, sw_warnings *warnings,
                            sw_config_resolved *out);

/* Evaluates the selection keys of one entry: selected[node] for every node of the model.
 * `entry_index` is for messages. */
sw_status sw_config_select(const sw_model *model, const cJSON *entry, int entry_index,
                           bool *selected);

/* True when node `node` of `model` has a target named `name` (canonical form). */
bool sw_config_node_has_target(const sw_model *model, int node, const char *name);

/* ---- value helpers shared by the modes' key tables ---------------------------------------- */

/* Parses a granularity value: "default", "out_channel", "in_channel", "per_channel", null
 * (element-wise / per-tensor), a list of ints [4, 4] (front-padded with 1), or
 * [[kernel...], "front"|"back"] / [[kernel...], "front"|"back", pad_value] (pad_value 1 unless
 * given, as NNI does). Returns false with a reason in `why`. */
bool sw_granularity_from_json(const cJSON *v, sw_granularity *out, char *why, size_t size);

/* A group id is an int or a string; writes a canonical key ("i:3" or "s:dep0") so that 3 and
 * "3" stay different groups, as they are in NNI. False when v is neither. */
bool sw_config_group_key(const cJSON *v, char *buf, size_t size);

#endif
