/* speedup.h - ModelSpeedup: turn a masked model into a physically smaller one that computes
 * the same thing.
 *
 * NNI's `ModelSpeedup(model, dummy_input, masks).speedup_model()` in C:
 *
 *     sw_speedup *s;
 *     sw_speedup_new(model, NULL, masks, NULL, &s);   // analysis (channel_analysis.h)
 *     sw_model *fast;
 *     sw_speedup_model(s, &fast);                     // rebuild (shrink.h) + self-check
 *     const sw_speedup_report *r = sw_speedup_get_report(s);
 *
 * Unlike NNI, the original model is not edited: `fast` is a new model with the same node
 * names, and it computes what the *masked* model computes (masked_model.h: a pruned channel is
 * zero downstream, bias and BatchNorm shift included), not an approximation of it. Every
 * speedup checks this on a probe batch (the dummy input) and refuses, with the numbers, when
 * the two disagree beyond the tolerance, unless forced. docs/SPEEDUP.md has the rules and the
 * differences from NNI.
 */
#ifndef SW_SPEEDUP_SPEEDUP_H
#define SW_SPEEDUP_SPEEDUP_H

#include <stdint.h>

#include "channel_analysis.h"

typedef struct sw_speedup_options {
    int probe_batch;   /* samples of the random probe when no probe is given (default 8) */
    uint64_t seed;     /* of the random probe, standard normal values (default 0) */
    float tolerance;   /* pass when max|fast - masked| <= tolerance * max|masked| (1e-4) */
    bool force;        /* return a model that fails the self-check instead of refusing */
    bool forbid_union; /* refuse disagreeing dependency groups (sw_channel_options) */
} sw_speedup_options;

sw_speedup_options sw_speedup_options_default(void);

/* One node of the original model, before and after. */
typedef struct sw_speedup_layer {
    char *name;                     /* owned */
    const char *type_before;        /* "Conv2d" */
    const char *type_after;         /* "Conv2d"; "Identity" for an Add left with one input; NULL
                                       when removed */
    bool removed;                   /* the node is gone: nothing it computed reached the output */
    sw_shape out_before, out_after; /* per sample */
    sw_shape weight_before, weight_after; /* ndim 0 when the layer has no weight */
    size_t params_before, params_after;   /* trainable elements */
    double flops_before, flops_after;     /* per sample */
    int channels_before, channels_after;
    int channels_dead;     /* zero in the masked model */
    int channels_unpruned; /* dead, but kept (as zeros) for an Add, a group or a consumer */
    int dep_group;         /* dependency group id, or -1 */
    float max_abs_diff;    /* self-check over this node's kept channels; -1 if not compared */
    float max_abs_ref;     /* largest |masked value| there */
} sw_speedup_layer;

/* The self-check of one candidate model on one batch. */
typedef struct sw_speedup_check {
    int batch;
    float max_abs_diff; /* over the model output */
    float max_abs_ref;  /* largest |masked model output| */
    float rel_diff;     /* max_abs_diff / max_abs_ref (0 when both are 0) */
    float tolerance;
    bool within_tolerance;
    int worst_layer; /* original node index with the largest relative layer diff, or -1 */
} sw_speedup_check;

typedef struct sw_speedup_report {
    int n_layers;
    sw_speedup_layer *layers; /* owned: one per original node, in graph order */
    size_t params_before, params_after;
    double flops_before, flops_after; /* per sample */
    int n_removed;                    /* nodes removed */
    int n_dep_groups; /* dependency groups (sets of Conv2d/Linear sharing channels) */
    int n_unpruned;   /* dead Conv2d/Linear channels kept as zeros */
    bool built;       /* sw_speedup_model ran to the end */
    bool checked;
    sw_speedup_check check;
    double analysis_seconds, rebuild_seconds, check_seconds;
} sw_speedup_report;

typedef struct sw_speedup sw_speedup;

/* Analyses `model` under `masks` and prepares the masked-model reference. `probe` is the dummy
 * input [N, input_shape...] (copied), or NULL for a random one (options). `opt` may be NULL.
 * The model is borrowed until sw_speedup_free and must not change meanwhile; `masks` is only
 * read during the call. Errors name the module: masks that do not fit the model, or that
 * speedup cannot honour (channel_analysis.h). Caller owns *out. */
sw_status sw_speedup_new(const sw_model *model, const sw_tensor *probe, const sw_mask_set *masks,
                         const sw_speedup_options *opt, sw_speedup **out);
void sw_speedup_free(sw_speedup *s);

/* Builds the sped-up model, self-checks it on the probe and fills the report. On a failed
 * self-check returns SW_ERR_NUMERIC with the numbers (and nothing in *out) unless opt.force;
 * the report is filled either way. Caller owns *out. */
sw_status sw_speedup_model(sw_speedup *s, sw_model **out);

/* Compares `fast` (a model built by sw_speedup_model, possibly changed since) with the masked
 * model on x [N, input_shape...] (NULL = the probe); fills *out and the report's per-layer
 * diffs. Returns SW_OK whatever the numbers say; errors are about running the models. */
sw_status sw_speedup_check_model(sw_speedup *s, sw_model *fast, const sw_tensor *x,
                                 sw_speedup_check *out);

/* Runs the masked model (the reference) on x; *out is valid until the next call. */
sw_status sw_speedup_masked_forward(sw_speedup *s, const sw_tensor *x, const sw_tensor **out);

/* The report (filled by sw_speedup_model), and the analysis behind it. Borrowed from s. */
const sw_speedup_report *sw_speedup_get_report(const sw_speedup *s);
const sw_channel_analysis *sw_speedup_get_analysis(const sw_speedup *s);

#endif
