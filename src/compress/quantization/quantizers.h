/* quantizers.h - the quantization algorithms (reference §4), one file each in this folder.
 *
 * Every constructor has two forms, as NNI's classes do:
 *   sw_quantizer_<algo>_new(ws, config_list, evaluator, ..., &out)   Quantizer(model, cfg, ev)
 *   sw_quantizer_<algo>_from_compressor(previous, config_list, ..., ev, &out)
 *                                                                    Quantizer.from_compressor()
 * `ws` is the model's wrapper set (sw_wrapper_set_new; the quantizer takes its own reference),
 * `config_list` a JSON array in NNI's keys (quant_setting.h; borrowed, read during the call),
 * `evaluator` the training loop (needed by compress; may be NULL at construction when a later
 * from_compressor brings one). from_compressor uses previous's evaluator when it has one.
 * The result is an sw_compressor (compressor.h: compress, unwrap, export = the calibration JSON,
 * free) and a quantizer (quantizer.h: sw_quantizer_of, targets; calibration.h: get / update /
 * save / load the calibration config).
 *
 * compress(max_steps, max_epochs) trains through the evaluator, with every compressor of the
 * fused chain taking part (compressor.h), except PtqQuantizer alone (see there).
 */
#ifndef SW_QUANTIZERS_H
#define SW_QUANTIZERS_H

#include "calibration.h"
#include "quantizer.h"

/* QATQuantizer: observers keep an EMA (0.99) of each target's per-block min/max on training
 * forwards; from optimizer step `quant_start_step` on, scale and zero point are recomputed from
 * it at every training forward (§4.1) and targets are fake-quantized (qat_clamp_round: the
 * gradient is zeroed where the value is clipped); before that they pass through. Eval forwards
 * use the last scale and zero point. quant_start_step < 0 counts as 0. */
sw_status sw_quantizer_qat_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                               long quant_start_step, sw_compressor **out);
sw_status sw_quantizer_qat_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                           long quant_start_step, sw_evaluator *ev,
                                           sw_compressor **out);

/* LsqQuantizer: each target's scale is a trainable parameter (one optimizer group for the
 * quantizer), 0.01 per block, re-initialised at every forward until the first optimizer step;
 * zero point 0. Forward lsq_clamp_round; LSQ's gradient scale g = 1/sqrt(qmax * numel(x)).
 * Warns (as NNI) when quant_scheme is not "symmetric" or a parameter uses a uint dtype. */
sw_status sw_quantizer_lsq_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                               sw_compressor **out);
sw_status sw_quantizer_lsq_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                           sw_evaluator *ev, sw_compressor **out);
/* Beyond NNI: scales start as in the LSQ paper, 2 mean|x| / sqrt(qmax) per block of the value
 * seen (re-initialised at every forward until the first optimizer step, like NNI's 0.01), which
 * low-bit quantization of a trained model needs. Call before compressing; `lsq` must be an
 * LsqQuantizer. */
sw_status sw_quantizer_lsq_set_data_init(sw_compressor *lsq, bool on);

/* LsqPlusQuantizer: LSQ with a trainable zero point too; init scale 0.01 and zero point
 * (qmax - qmin) / 2 per block. Warns when quant_scheme is not "affine". */
sw_status sw_quantizer_lsqplus_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                                   sw_compressor **out);
sw_status sw_quantizer_lsqplus_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                               sw_evaluator *ev, sw_compressor **out);

/* PtqQuantizer: targets pass through while observers keep the running (absolute) per-block
 * min/max of every forward, training or eval; afterwards scales and zero points are computed
 * (§4.1) and targets switch to clamp_round.
 *   alone: compress(max_steps, max_epochs) runs calibration passes (calibration.h:
 *          forward-only, eval mode, no optimizer step: the weights do not change) over
 *          max_steps batches / max_epochs epochs of the evaluator's training data;
 *   fused: the chain trains as NNI's PTQ does (the evaluator's training runs);
 * in both cases the evaluator's evaluation on its test set (when it has one) runs last and is
 * observed too, as NNI's post-processing does, before the scales are computed. */
sw_status sw_quantizer_ptq_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                               sw_compressor **out);
sw_status sw_quantizer_ptq_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                           sw_evaluator *ev, sw_compressor **out);

/* DoReFaQuantizer: quant_scheme must be set and granularity per tensor. Weights: tanh,
 * normalised to [0, 1], fake-quantized on [0, 1] (affine), mapped back to [-1, 1]. Outputs
 * (only of ReLU/ReLU6 modules or modules with a fused ReLU): clamp to [0, 1] and quantize on
 * [0, 1]. Inputs: clamp_round with scale and zero point from the current batch's range.
 * With `quantize_gradients`, modules with a quantized parameter and no quantized output also
 * get DoReFa's gradient quantization on their output gradient (per sample: scaled to [0, 1],
 * uniform noise of half a level, quantized, scaled back; seeded from `seed`). NNI does this on
 * torch >= 2.0 only. */
sw_status sw_quantizer_dorefa_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                                  bool quantize_gradients, uint64_t seed, sw_compressor **out);
sw_status sw_quantizer_dorefa_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                              bool quantize_gradients, uint64_t seed,
                                              sw_evaluator *ev, sw_compressor **out);

/* BNNQuantizer: every target becomes sign(x) (sign(0) = +1), scale 1 and zero point 0; the
 * gradient passes unchanged for parameters and inputs and as hard-tanh (zero where |x| > 1) for
 * outputs; after each optimizer step, quantized parameters are clamped to [-1, 1]. quant_dtype
 * should be null (a warning otherwise); granularity must be per tensor. */
sw_status sw_quantizer_bnn_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                               sw_compressor **out);
sw_status sw_quantizer_bnn_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                           sw_evaluator *ev, sw_compressor **out);

/* The base Quantizer (NNI's Quantizer(model, config_list)): clamp_round on every target with no
 * observers and no training; scales come from sw_quant_calibration_update/load. Re-creates a
 * quantized simulation from a calibration file. compress() does nothing. */
sw_status sw_quantizer_fixed_new(sw_wrapper_set *ws, const cJSON *config_list, sw_compressor **out);

#endif
