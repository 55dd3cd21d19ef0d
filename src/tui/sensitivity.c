/* sensitivity.c - one cell of the sensitivity scan: prune one module alone, evaluate. */
#include "sensitivity.h"

#include <cjson/cJSON.h>

#include "../compress/pruning/pruners.h"

const double sw_tui_sens_ratios[4] = {0.25, 0.5, 0.75, 0.9};

sw_status sw_tui_sens_cell(sw_model *scratch, const char *module, double ratio, sw_evaluator *ev,
                           double *accuracy) {
    cJSON *list = cJSON_CreateArray(), *entry = cJSON_CreateObject();
    cJSON *names = cJSON_CreateStringArray(&module, 1);
    if (!list || !entry || !names) {
        cJSON_Delete(list);
        cJSON_Delete(entry);
        cJSON_Delete(names);
        return SW_FAIL(SW_ERR_NOMEM, "sensitivity: no memory for the config list");
    }
    cJSON_AddItemToObject(entry, "op_names", names);
    cJSON_AddNumberToObject(entry, "sparse_ratio", ratio);
    cJSON_AddItemToArray(list, entry);
    sw_wrapper_set *ws = NULL;
    sw_compressor *c = NULL;
    sw_status s = sw_wrapper_set_new(scratch, &ws);
    if (s == SW_OK) s = sw_pruner_l1norm_new(ws, list, NULL, &c);
    /* One-shot: the masks come from the current weights, nothing trains. */
    if (s == SW_OK) s = sw_compressor_compress(c, -1, -1);
    if (s == SW_OK) s = sw_evaluator_evaluate(ev, scratch, accuracy, NULL);
    /* Freeing the pruner removes its transforms: the copy computes its dense function again. */
    sw_compressor_free(c);
    sw_wrapper_set_release(ws);
    cJSON_Delete(list);
    if (s != SW_OK) sw_error_prefix("sensitivity of %s at %.0f%%", module, 100 * ratio);
    return s;
}
