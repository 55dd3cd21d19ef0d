/* capture.h - the distillation capture transform: NNI's hidden-state capture, with a way back.
 *
 * A capture sits last in a target's chain (SW_STAGE_CAPTURE), so it sees the value every
 * other compressor produced: fake-quantized, then masked (reference §1.2, patch_helper step 4).
 *
 *   forward : y = x; remembers a view of y (step memory of the model, valid until the next
 *             forward), which the distiller reads when it computes its loss;
 *   backward: g += grad, where grad = d(distillation terms)/d(captured value) was written by
 *             the distiller's loss hook between forward and backward. A gradient is used by
 *             exactly one backward; a new forward discards one that was never used.
 *
 * NNI keeps the captured tensor with its autograd graph; here the loss hook computes the
 * gradient of its terms w.r.t. the captured value at once, and the model's own backward
 * carries it from there, through the earlier transforms of the chain and the layer.
 *
 * Ownership: the capture record is the distiller's (the transform borrows it), so an unwrap
 * that frees the transform leaves the distiller's state intact.
 */
#ifndef SW_DISTILL_CAPTURE_H
#define SW_DISTILL_CAPTURE_H

#include <stdbool.h>

#include "../wrapper.h"

typedef struct sw_distill_capture {
    sw_tensor value; /* view of the captured value [N, sample...] (model step memory) */
    bool has_value;  /* captured since the last loss computation */
    float *grad;     /* owned: grad_cap floats */
    size_t grad_cap;
    sw_tensor grad_view; /* [N, sample...] view of grad for the step in progress */
    bool grad_ready;     /* grad_view holds a gradient for the next backward */
    sw_transform *tf;    /* the attached transform; NULL once detached */
} sw_distill_capture;

extern const sw_transform_ops sw_distill_capture_ops;

/* Attaches a capture transform for `capture` (borrowed, must stay at the same address while
 * attached) on (node, target), at SW_STAGE_CAPTURE, on behalf of `owner`. */
sw_status sw_distill_capture_attach(sw_wrapper_set *ws, int node, const char *target,
                                    sw_distill_capture *capture, const void *owner);

/* Prepares capture->grad_view with the shape of the captured value (growing grad when a
 * larger batch needs it; steady state allocates nothing) and returns it, not yet ready. */
sw_status sw_distill_capture_grad(sw_distill_capture *capture, sw_tensor **grad);

/* Forgets the captured value (NNI's clean() after the loss); a gradient computed from it stays
 * pending for the coming backward. */
void sw_distill_capture_clear(sw_distill_capture *capture);
/* Forgets the value and any pending gradient (between runs). */
void sw_distill_capture_reset(sw_distill_capture *capture);

/* Frees the gradient buffer (the transform must be detached already, or never attached). */
void sw_distill_capture_deinit(sw_distill_capture *capture);

#endif
