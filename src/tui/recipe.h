/* recipe.h - the workbench's set-up as a Lua recipe (key w) that `shrinkwrap run` reproduces.
 *
 * The recipe loads the weights the chain started from (a model file written beside it), builds
 * the same chain with the same constructors and config lists (the first alone, every later one
 * with from_compressor, AGP/Linear around their pruner, distillers with a clone of the model as
 * teacher), compresses once with the limits of the workbench's last compress, and writes the
 * masks (and the calibration, with a quantizer) where --masks / --calibration say. When the
 * chain trains, it also loads the same data and builds an evaluator with the workbench's
 * optimizer, batch size, augmentation and seed.
 */
#ifndef SW_TUI_RECIPE_H
#define SW_TUI_RECIPE_H

#include "../train/evaluator.h"
#include "attach.h"

typedef struct sw_tui_recipe_info {
    const char *model_file;       /* the weights file, named relative to the recipe's folder */
    const char *dataset;          /* "fashion-mnist", "mnist", "cifar10" */
    const char *data_dir;         /* NULL: the dataset's default folder */
    int subset, test_subset;      /* 0: all */
    const sw_train_config *train; /* optimizer, batch, augmentation, seed */
    long steps;                   /* compress limits (-1: unset) */
    int epochs;
    const char *masks_out; /* default output paths, relative to the working folder */
    const char *calibration_out;
} sw_tui_recipe_info;

/* The recipe's text for `ch` (caller frees). */
sw_status sw_tui_recipe_text(const sw_tui_chain *ch, const sw_tui_recipe_info *info, char **out);
/* Writes it to `path` atomically. */
sw_status sw_tui_recipe_write(const sw_tui_chain *ch, const sw_tui_recipe_info *info,
                              const char *path);

#endif
