/* distiller.h - the distiller base: targets, links to the teacher, the loss hook (reference §5).
 *
 * A distiller resolves its config list (distillation mode: keys `lambda`, `link`,
 * `apply_method`; default target `_output_0` of any module type), claims its (module, target)
 * pairs on the wrapper set (a pair already claimed by an earlier distiller keeps that one's
 * configuration; this one's is dropped with a warning: "first config wins per mode") and
 * attaches one capture transform per target, last in the chain (capture.h).
 *
 * During a fused compress it takes part in each training step as NNI's loss patch does:
 *
 *   task loss          the evaluator's training step, wrapped: loss and dlogits are multiplied
 *                      by origin_loss_lambda (the "task" term reports the scaled value);
 *   loss_terms         teacher_predict(batch, teacher) in eval mode (no gradients are ever
 *                      computed for the teacher), then per target the algorithm's term
 *                      (Dynamic: min over links of lambda * loss; Adaptive1d: lambda * loss
 *                      after the adapter), their sum reported as "distill"; the gradient of
 *                      each term w.r.t. the captured student value goes to its capture, whose
 *                      backward adds it into the model's gradient.
 *
 * Fused distillers nest like NNI's patches: the newest is innermost, so an older distiller's
 * origin_loss_lambda also scales the task loss and the terms of every newer distiller:
 *   final = l_old * (l_new * task + d_new) + d_old.
 * The terms of the newer ones are reported already multiplied by that outer factor, so the
 * reported total is the loss NNI would return. (Terms of other compressors, e.g. Slim's
 * regulariser, are not rescaled by an older distiller; NNI would rescale them.)
 * The oldest distiller of a chain names its term "distill", newer ones "distill2", ...
 *
 * Teacher outputs are read from the teacher's executor (sw_model.outs) right after
 * teacher_predict returns, by node: a link names a teacher node, and the linked target is the
 * same target name there ("_output_0", or "_input_<i>" = the output of the teacher node's
 * i-th producer). A teacher_predict that did not run the teacher's forward makes every pair of
 * that step count as missing (skipped, as NNI skips a None state).
 *
 * Ownership: the distiller borrows the teacher model, which must outlive it and must not be
 * the student. Its own state (targets, captures, adapters) is freed with the compressor.
 */
#ifndef SW_COMPRESS_DISTILLER_H
#define SW_COMPRESS_DISTILLER_H

#include "../compressor.h"
#include "capture.h"
#include "distill_loss.h"

/* NNI's teacher_predict(batch, teacher_model): runs the teacher on a training batch. It is
 * called in eval mode; its outputs are read from the teacher's nodes afterwards. */
typedef sw_status (*sw_teacher_predict_fn)(void *ctx, const sw_batch *batch, sw_model *teacher);

/* The default teacher_predict: a forward of batch->x. */
sw_status sw_teacher_predict_forward(void *ctx, const sw_batch *batch, sw_model *teacher);

/* The distillation mode of config_list.h: keys, the `_output_` template of every type. */
extern const sw_config_mode sw_distill_config_mode;

typedef struct sw_distill_target {
    int node;                      /* student node */
    const char *module;            /* its name (borrowed from the student model) */
    char name[SW_TARGET_NAME_MAX]; /* "_output_0" or "_input_<i>" */
    sw_target_kind kind;
    int input_index; /* inputs: i of "_input_<i>"; -1 for the output */
    int entry;       /* config entry it comes from */
    double lambda;
    sw_distill_method method;
    int n_links;
    int *links;     /* owned: teacher node indices, in the order configured */
    sw_shape shape; /* student value per sample */
    sw_distill_capture capture;
    /* Adaptive1d's adapter Linear(d_in -> d_out) on the last dim; adapter_w == NULL: none. */
    int d_in, d_out;
    float *adapter_w, *adapter_b;   /* [d_out, d_in], [d_out]: views into the distiller's block */
    float *adapter_gw, *adapter_gb; /* their gradients, same layout */
    float *scratch;                 /* owned: adapter output and its gradient, 2 * scratch_cap */
    size_t scratch_cap;
    /* The last loss computation. */
    double last_loss; /* lambda * loss of the chosen link (before outer factors); 0 if skipped */
    int last_link;    /* index into links of the chosen pair; -1 when skipped */
} sw_distill_target;

/* The last training step as this distiller saw it (NNI's loss patch: final = lambda * task +
 * distill). `task` is the loss it received: the task loss, scaled by newer distillers. */
typedef struct sw_distill_losses {
    double task;
    double distill;
    double final;
    long steps; /* loss computations so far (all compress calls) */
} sw_distill_losses;

typedef struct sw_distiller sw_distiller;

typedef struct sw_distiller_ops {
    /* Checks the target's links against the teacher (count, shapes) and sets d_in/d_out when
     * an adapter is needed. Errors name the config entry, the module and the teacher node. */
    sw_status (*setup_target)(sw_distiller *d, sw_distill_target *t);
    /* The target's term (lambda * loss, before outer factors) from the captured student
     * value and the teacher's values; writes `outer` * d term / d value into the capture
     * (sw_distill_capture_grad, then grad_ready) and sets last_loss / last_link. */
    sw_status (*target_loss)(sw_distiller *d, sw_distill_target *t, float outer, double *term);
} sw_distiller_ops;

struct sw_distiller {
    sw_compressor base; /* first: a distiller is a compressor */
    const sw_distiller_ops *dops;
    sw_model *teacher; /* borrowed */
    sw_teacher_predict_fn predict;
    void *predict_ctx; /* borrowed */
    double origin_loss_lambda;
    int n_targets;
    sw_distill_target *targets; /* owned */
    /* Every adapter's weight and bias in one block, so the optimizer takes them as one group
     * (NNI's patch_optim_param_group). */
    size_t n_adapter;
    float *adapter;      /* owned: n_adapter floats */
    float *adapter_grad; /* owned: same layout */
    /* The training step wrapped during a run (NNI's patch_loss). */
    sw_training_step_fn inner_step;
    void *inner_ctx;
    bool step_wrapped;
    sw_distill_losses last;
};

/* For constructors: base init over `ws` (or after `previous` when not NULL), config
 * resolution, links, the algorithm's setup_target, adapters, capture transforms. `predict`
 * NULL means sw_teacher_predict_forward. On failure everything done is undone (the struct
 * itself is the caller's). */
sw_status sw_distiller_init(sw_distiller *d, const sw_compressor_ops *ops,
                            const sw_distiller_ops *dops, sw_wrapper_set *ws,
                            sw_compressor *previous, const cJSON *config_list, sw_evaluator *ev,
                            sw_model *teacher, sw_teacher_predict_fn predict, void *predict_ctx,
                            double origin_loss_lambda);
/* Frees the targets and adapters (call from ops->free; the base is torn down before). */
void sw_distiller_deinit(sw_distiller *d);

/* The compressor ops every distiller shares (fuse pre/post-processing, needs training). */
sw_status sw_distiller_fuse_preprocess(sw_compressor *c);
sw_status sw_distiller_fuse_postprocess(sw_compressor *c);
bool sw_distiller_needs_training(const sw_compressor *c);

/* The distiller behind a compressor, or NULL when c is not a distiller. */
sw_distiller *sw_distiller_of(sw_compressor *c);

/* The teacher's value for link `link` of target t after the last teacher_predict: a view of
 * the teacher's step memory. False when the teacher did not run. */
bool sw_distiller_teacher_value(const sw_distiller *d, const sw_distill_target *t, int link,
                                sw_tensor *out);

/* The per-sample shape of the teacher's value for link `link` of target t, and the teacher
 * node's name (for messages). */
sw_shape sw_distiller_teacher_shape(const sw_distiller *d, const sw_distill_target *t, int link,
                                    const char **teacher_module);

/* This distiller's record for module.target, or NULL. */
sw_distill_target *sw_distiller_find(sw_distiller *d, const char *module, const char *target);

/* The losses of the last training step (zeros before any). */
sw_status sw_distiller_losses(sw_compressor *c, sw_distill_losses *out);

/* Views of the adapter of module.target (Adaptive1d): weight [d_out, d_in] and bias [d_out],
 * writable (e.g. to load trained adapters). SW_ERR_NOT_FOUND when that target has none. */
sw_status sw_distiller_adapter(sw_compressor *c, const char *module, const char *target,
                               sw_tensor *weight, sw_tensor *bias);

#endif
