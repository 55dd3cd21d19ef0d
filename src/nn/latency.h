/* latency.h - timing a model's inference, shared by `shrinkwrap bench` and the workbench's
 * before/after view.
 *
 * The model runs in eval mode on a fixed batch of standard normal values (seeded), first a few
 * untimed warm-up forwards (first-touch of the step memory, thread start-up), then `repeats`
 * timed ones; the median is reported, which a single slow repeat (a preemption on a loaded
 * machine) does not move.
 */
#ifndef SW_NN_LATENCY_H
#define SW_NN_LATENCY_H

#include "model.h"

#define SW_LATENCY_WARMUP 3

/* Median wall-clock seconds of one eval-mode forward of `batch` samples over `repeats` timed
 * runs (>= 1). Leaves the model in eval mode. */
sw_status sw_model_latency(sw_model *model, int batch, int repeats, uint64_t seed, double *median);

/* The same, and when `node_times` is not NULL (n_nodes entries, caller's) each node's seconds summed
 * over the timed forwards are added to it (sw_model_set_profile); the warm-up is not counted. */
sw_status sw_model_latency_profiled(sw_model *model, int batch, int repeats, uint64_t seed,
                                    double *median, sw_node_time *node_times);

#endif
