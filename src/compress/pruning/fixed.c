/* fixed.c - a pruner whose masks are given, not computed: re-applying a masks file to a fresh
 * model (the counterpart of export). compress() does nothing; everything else (get_masks,
 * export, unwrap, downstream zeroing, fusion) behaves as for any pruner. */
#include "pruners.h"

#include <stdlib.h>

static sw_status fixed_metric(sw_pruner *p, sw_prune_target *t, double *metric) {
    (void)p;
    (void)t;
    (void)metric;
    return SW_FAIL(SW_ERR_UNSUPPORTED, "fixed masks have no metric");
}

static sw_status fixed_compress(sw_compressor *c, long max_steps, int max_epochs) {
    (void)c;
    (void)max_steps;
    (void)max_epochs;
    return SW_OK;
}

static void fixed_free(sw_compressor *c) {
    sw_pruner *p = (sw_pruner *)c;
    sw_pruner_deinit(p);
    free(p);
}

static const sw_pruner_ops fixed_pruner_ops = {
    .metric = fixed_metric,
    .default_param_granularity = SW_GRANULARITY_ELEMENT,
};

static const sw_compressor_ops fixed_ops = {
    .name = "MasksPruner",
    .mode = SW_MODE_PRUNING,
    .single_compress = fixed_compress,
    .export_file = sw_pruner_export,
    .free = fixed_free,
};

static sw_status build(sw_wrapper_set *ws, sw_compressor *previous, const sw_masks *masks,
                       sw_compressor **out) {
    sw_pruner *p = calloc(1, sizeof *p);
    if (!p) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate a masks pruner");
    sw_status st = sw_pruner_init_with_masks(p, &fixed_ops, &fixed_pruner_ops, ws, previous, masks);
    if (st != SW_OK) {
        free(p);
        return st;
    }
    *out = &p->base;
    return SW_OK;
}

sw_status sw_pruner_masks_new(sw_wrapper_set *ws, const sw_masks *masks, sw_compressor **out) {
    return build(ws, NULL, masks, out);
}

sw_status sw_pruner_masks_from_compressor(sw_compressor *previous, const sw_masks *masks,
                                          sw_compressor **out) {
    return build(NULL, previous, masks, out);
}
