/* distillers.h - the distillation algorithms (reference §5), one file each in this folder.
 *
 * Both constructors mirror NNI's classes:
 *   sw_distiller_<algo>_new(ws, config_list, ev, teacher, predict, predict_ctx,
 *                           origin_loss_lambda, &out)
 *       Distiller(model, config_list, evaluator, teacher_model, teacher_predict,
 *                 origin_loss_lambda=1.0)
 *   sw_distiller_<algo>_from_compressor(previous, config_list, teacher, predict, predict_ctx,
 *                                       origin_loss_lambda, ev, &out)
 *       Distiller.from_compressor(compressor, config_list, teacher_model, teacher_predict,
 *                                 origin_loss_lambda)
 * `ws` is the student's wrapper set (the distiller takes its own reference), `config_list` a
 * JSON array in NNI's keys (borrowed, read during the call), `teacher` a separate model
 * (borrowed: it must outlive the distiller), `predict` NULL for a plain forward of the batch
 * (sw_teacher_predict_forward). from_compressor uses previous's evaluator when it has one.
 * NNI's default origin_loss_lambda is SW_DISTILL_ORIGIN_LOSS_LAMBDA_DEFAULT.
 *
 * Config keys per target (default target `_output_0` of every selected module):
 *   lambda        weight of this target's loss (default 1.0)
 *   link          teacher module name(s); "auto" (default) = the module of the same name
 *   apply_method  "mse" (default) or "kl" (temperature 2, last dim = classes)
 *
 * compress(max_steps, max_epochs) trains (distillers always do): the loss of each step is
 *   origin_loss_lambda * task + sum over targets of the algorithm's term.
 * The result is an sw_compressor (compressor.h) and a distiller (distiller.h:
 * sw_distiller_of, losses, adapters). Errors name the config entry, the module and the
 * teacher module: an unknown link, shapes that cannot be matched, a parameter target.
 */
#ifndef SW_DISTILLERS_H
#define SW_DISTILLERS_H

#include "distiller.h"

#define SW_DISTILL_ORIGIN_LOSS_LAMBDA_DEFAULT 1.0

/* DynamicLayerwiseDistiller: per target, the smallest lambda * loss over its links (several
 * teacher layers may be linked; the student layer learns from the nearest one). Every linked
 * teacher value must have the student value's shape. */
sw_status sw_distiller_dynamic_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                                   sw_model *teacher, sw_teacher_predict_fn predict,
                                   void *predict_ctx, double origin_loss_lambda,
                                   sw_compressor **out);
sw_status sw_distiller_dynamic_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                               sw_model *teacher, sw_teacher_predict_fn predict,
                                               void *predict_ctx, double origin_loss_lambda,
                                               sw_evaluator *ev, sw_compressor **out);

/* Adaptive1dLayerwiseDistiller: exactly one link per target; when the last dims differ (a
 * pruned or narrower student), a trainable Linear(d_student -> d_teacher) adapter maps the
 * student value first, trained with the student in its optimizer. The other dims must agree.
 * Adapters are sized from the model graphs at construction (NNI needs a track_forward) and
 * initialised as torch.nn.Linear is, from the evaluator's seed (0 without an evaluator);
 * sw_distiller_adapter reads or replaces them. */
sw_status sw_distiller_adaptive1d_new(sw_wrapper_set *ws, const cJSON *config_list,
                                      sw_evaluator *ev, sw_model *teacher,
                                      sw_teacher_predict_fn predict, void *predict_ctx,
                                      double origin_loss_lambda, sw_compressor **out);
sw_status sw_distiller_adaptive1d_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                                  sw_model *teacher, sw_teacher_predict_fn predict,
                                                  void *predict_ctx, double origin_loss_lambda,
                                                  sw_evaluator *ev, sw_compressor **out);

#endif
