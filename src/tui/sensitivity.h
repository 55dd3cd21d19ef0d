/* sensitivity.h - one cell of the workbench's sensitivity scan (key S).
 *
 * How much accuracy a module costs when it alone is pruned: an L1NormPruner with
 * [{"op_names": [module], "sparse_ratio": ratio}] on a scratch copy of the model, one-shot (no
 * training), then an evaluation on the evaluator's test set. The pruner is freed afterwards, so
 * the copy is back to its dense weights for the next cell: a whole scan needs one copy.
 */
#ifndef SW_TUI_SENSITIVITY_H
#define SW_TUI_SENSITIVITY_H

#include "../nn/model.h"
#include "../train/evaluator.h"

/* The ratios the scan tries for every module. */
extern const double sw_tui_sens_ratios[4];

/* Accuracy of `scratch` (a model nobody else wraps; left unchanged) with `module` pruned alone
 * by L1Norm at `ratio`, on ev's test set. */
sw_status sw_tui_sens_cell(sw_model *scratch, const char *module, double ratio, sw_evaluator *ev,
                           double *accuracy);

#endif
