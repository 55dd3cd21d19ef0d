/* compressor.h - the compressor base: what every pruner, quantizer and distiller shares.
 *
 * A compressor is a small vtable over a wrapper set (wrapper.h). It attaches transforms to
 * targets and takes part in training only through an sw_train_hooks record (loss terms,
 * before/after the optimizer step, epoch end, train begin/end; evaluator.h), registered with
 * the evaluator while compress() trains. New algorithms are new files implementing the ops.
 *
 * Fusion (reference §1.6): X_from_compressor(previous, config_list, ...) builds X on previous's
 * model, wrapper set and evaluator (an evaluator given again is ignored with a warning) and
 * links it after `previous`, so the chain grows: A <- B <- C. compress() on the newest drives
 * the whole chain once, as NNI's _fusion_compress does:
 *
 *   for c in chain, newest first: c.fuse_preprocess()     (register hooks, one-shot masks)
 *   evaluator.train(max_steps, max_epochs)               (hooks registered newest first)
 *   for c in chain, newest first: c.fuse_postprocess()
 *
 * Registration newest-first gives NNI's nesting: before_step hooks run oldest first, after_step
 * hooks newest first, loss terms newest first. A chain of one runs the compressor's own
 * single_compress when it has one (one-shot pruners), else the same fused procedure.
 * When no compressor of the chain needs training and neither limit is set, compress runs the
 * pre- and post-processing without training (a chain of one-shot pruners needs no evaluator).
 *
 * Limits: max_steps / max_epochs < 0 mean "unset" (NNI's None).
 *
 * Ownership: the caller owns every compressor it creates and frees each with
 * sw_compressor_free, in any order. A compressor holds a reference to its wrapper set and
 * borrows the evaluator (which must outlive compress calls). Freeing a compressor removes its
 * transforms (its masks stop applying) and unlinks it from its chain; call
 * sw_compressor_unwrap_model first to keep the result in the weights.
 */
#ifndef SW_COMPRESS_COMPRESSOR_H
#define SW_COMPRESS_COMPRESSOR_H

#include "../train/evaluator.h"
#include "config_list.h"
#include "warnings.h"
#include "wrapper.h"

typedef struct sw_compressor sw_compressor;

typedef struct sw_compressor_ops {
    const char *name; /* NNI's class name: "L1NormPruner" */
    sw_compress_mode mode;
    /* compress() of a chain of one; NULL = the fused procedure. */
    sw_status (*single_compress)(sw_compressor *c, long max_steps, int max_epochs);
    /* Fused procedure, before training: set c->hooks callbacks, reset counters, generate
     * one-shot masks. May be NULL. */
    sw_status (*fuse_preprocess)(sw_compressor *c);
    /* Fused procedure, after training. May be NULL. */
    sw_status (*fuse_postprocess)(sw_compressor *c);
    /* True when the fused procedure of this compressor needs training steps. NULL = false. */
    bool (*needs_training)(const sw_compressor *c);
    /* Writes the compressor's result to `path` (pruners: a masks file). May be NULL. */
    sw_status (*export_file)(sw_compressor *c, const char *path);
    /* Frees the subclass's state and the struct itself (the base is already torn down). */
    void (*free)(sw_compressor *c);
} sw_compressor_ops;

struct sw_compressor {
    const sw_compressor_ops *ops;
    sw_wrapper_set *ws;      /* one reference held */
    sw_model *model;         /* ws->model, borrowed */
    sw_evaluator *ev;        /* borrowed; NULL when none was given anywhere in the chain */
    sw_train_hooks hooks;    /* ctx = this compressor; registered during training */
    sw_compressor *previous; /* older neighbour in the fused chain, or NULL */
    sw_compressor *next;     /* newer neighbour, or NULL */
    int generation;          /* ws->generation at construction: detached after an unwrap */
    sw_warnings warnings;    /* config and fusion warnings, in order */
};

/* For constructors: initialises the base over `ws` (retained) with `ev` (may be NULL). */
sw_status sw_compressor_init(sw_compressor *c, const sw_compressor_ops *ops, sw_wrapper_set *ws,
                             sw_evaluator *ev);
/* For _from_compressor constructors: the base over previous's set and evaluator (`ev` only
 * when previous has none; ignored with a warning otherwise), linked after `previous`, which
 * must be the newest of its chain. */
sw_status sw_compressor_init_from(sw_compressor *c, const sw_compressor_ops *ops,
                                  sw_compressor *previous, sw_evaluator *ev);
/* Undoes init (for constructors failing after it): detaches, unlinks, releases the set. */
void sw_compressor_deinit(sw_compressor *c);

/* Compresses the chain ending at `c` (see above). Errors: detached by an unwrap, training
 * needed but no limits or no evaluator, a compressor's own failure. SW_ERR_INTERRUPTED when
 * training was stopped early (post-processing still ran: masks are consistent). */
sw_status sw_compressor_compress(sw_compressor *c, long max_steps, int max_epochs);

/* The fused procedure itself (pre-process, train, post-process over the chain ending at c),
 * for single_compress implementations that train. */
sw_status sw_compressor_compress_fused(sw_compressor *c, long max_steps, int max_epochs);

/* Bakes every mask of the model into its weights and removes all transforms and hooks (the
 * whole set: every compressor of the chain is detached). Warnings about masks that could not
 * be baked are appended to c's warnings. */
sw_status sw_compressor_unwrap_model(sw_compressor *c);

/* Writes the compressor's result; SW_ERR_UNSUPPORTED when it has none. */
sw_status sw_compressor_export(sw_compressor *c, const char *path);

/* True once an unwrap removed the compressor's transforms. */
bool sw_compressor_is_detached(const sw_compressor *c);
/* Length of the chain ending at c (1 for a compressor built directly). */
int sw_compressor_chain_length(const sw_compressor *c);
/* The compressor's warnings (valid until it is freed). */
const sw_warnings *sw_compressor_warnings(const sw_compressor *c);

/* Frees a compressor (NULL is a no-op): removes its transforms, unlinks it, releases the set. */
void sw_compressor_free(sw_compressor *c);

#endif
