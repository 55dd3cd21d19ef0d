/* norm.h - what the one-shot norm pruners (Level, L1Norm, L2Norm, FPGM) share: their compress
 * behaviour and the mask-regeneration trigger schedulers switch on (NNI's _NormPruner). */
#ifndef SW_NORM_PRUNER_H
#define SW_NORM_PRUNER_H

#include "../pruner.h"

typedef struct sw_norm_pruner {
    sw_pruner p;         /* first */
    long interval_steps; /* -1: not scheduled */
    int total_times;     /* generations left to do when scheduled; -1 = unlimited */
    bool first_step_gen; /* NNI's reserved "generate at the first step" switch (off) */
    /* Trigger state during a fused compress. */
    long current_step;
    int remaining;
    bool is_first_step;
} sw_norm_pruner;

/* Builds a norm pruner (ops name the algorithm, pops give its metric). `previous` NULL means
 * a direct construction over ws. Caller owns *out. */
sw_status sw_norm_pruner_new(const sw_compressor_ops *ops, const sw_pruner_ops *pops,
                             sw_wrapper_set *ws, sw_compressor *previous, const cJSON *config_list,
                             sw_evaluator *ev, sw_compressor **out);

/* The compressor-op functions every norm pruner's ops table points at. */
sw_status sw_norm_pruner_single_compress(sw_compressor *c, long max_steps, int max_epochs);
sw_status sw_norm_pruner_fuse_preprocess(sw_compressor *c);
bool sw_norm_pruner_needs_training(const sw_compressor *c);
void sw_norm_pruner_free(sw_compressor *c);
void sw_norm_pruner_set_schedule(sw_pruner *p, long interval_steps, int total_times);

/* The raw (trainable) value of a parameter target: what norm metrics rank. */
const sw_tensor *sw_prune_target_value(const sw_pruner *p, const sw_prune_target *t);

#endif
