/* attach.h - compressors in the workbench: the attach list and the fused chain.
 *
 * The attach list is every algorithm the workbench can put on the selected modules, each with
 * a parameter form, a config-list builder (NNI's keys) and its two constructors (alone, and
 * from_compressor). A new algorithm is one more row in the table in attach.c.
 *
 * The chain owns the compressors attached so far, oldest first: the first is built on the
 * model's wrapper set, each later one from_compressor on the newest, so compress() on the
 * newest drives them all (compressor.h). Detaching frees the newest. The chain also describes
 * itself for the screen: one line per compressor, a badge per module, and inspector rows for a
 * module's wrapper targets and their transform chains.
 */
#ifndef SW_TUI_ATTACH_H
#define SW_TUI_ATTACH_H

#include <cjson/cJSON.h>

#include "../compress/compressor.h"
#include "../compress/dependency.h"
#include "state.h"

typedef struct sw_tui_algo {
    sw_tui_algo_entry entry; /* name, kind, summary, form (what the state shows) */
    const char *badge;       /* "P:L1" */
    /* Which layer kinds it applies to (others among the selection are skipped, with a note). */
    bool (*accepts)(const sw_layer *layer);
    /* The config list for `modules` from the submitted form. Caller frees (cJSON_Delete). */
    sw_status (*config)(const sw_tui_form *f, const char *const *modules, int n, cJSON **out);
    sw_status (*create)(sw_wrapper_set *ws, const cJSON *config, sw_evaluator *ev,
                        sw_compressor **out);
    sw_status (*create_from)(sw_compressor *previous, const cJSON *config, sw_evaluator *ev,
                             sw_compressor **out);
} sw_tui_algo;

/* The attach list. */
const sw_tui_algo *sw_tui_algos(int *n);
/* Copies the list's entries into the state (what the `a` key shows). */
void sw_tui_algos_publish(sw_tui_state *st);

typedef struct sw_tui_chain_item {
    const sw_tui_algo *algo;
    sw_compressor *c; /* owned */
    char config[200]; /* the config list as JSON text, for the chain view */
} sw_tui_chain_item;

typedef struct sw_tui_chain {
    sw_model *model;    /* borrowed */
    sw_wrapper_set *ws; /* one reference; created by the first attach */
    int n;
    sw_tui_chain_item items[SW_TUI_MAX_CHAIN];
    sw_dependency_groups deps; /* channel dependency groups, found on first use */
    int deps_state;            /* 0 not yet, 1 found, -1 the analysis failed */
} sw_tui_chain;

void sw_tui_chain_init(sw_tui_chain *ch, sw_model *model);
/* Frees every compressor (their masks stop applying) and the wrapper set. */
void sw_tui_chain_deinit(sw_tui_chain *ch);

/* Attaches `algo` configured by `params` to graph nodes `nodes` (those the algorithm does not
 * accept are left out; *skipped counts them). `ev` is borrowed by the compressor. */
sw_status sw_tui_chain_attach(sw_tui_chain *ch, const sw_tui_algo *algo, const sw_tui_form *params,
                              const int *nodes, int n_nodes, sw_evaluator *ev, int *skipped);
/* Frees the newest compressor. */
sw_status sw_tui_chain_detach(sw_tui_chain *ch);
/* compress() on the newest compressor (limits < 0: unset). */
sw_status sw_tui_chain_compress(sw_tui_chain *ch, long max_steps, int max_epochs);
/* Writes every mask of the chain to a masks file. */
sw_status sw_tui_chain_export_masks(sw_tui_chain *ch, const char *path);
/* Bakes the chain's masks into `copy` (a clone of the chain's model) as an unwrap would, so a
 * saved file computes what the wrapped model computes; the chain itself stays attached.
 * *dropped counts the unwrap's warnings (masks that weights cannot hold). */
sw_status sw_tui_chain_bake(const sw_tui_chain *ch, sw_model *copy, int *dropped);
/* Fills the state's chain lines and badges. */
void sw_tui_chain_publish(const sw_tui_chain *ch, sw_tui_state *st);
/* Inspector rows for node `node` (ctx = sw_tui_chain*): each wrapper target with transforms,
 * its transform chain in order and its mask sparsity; then the modules that must lose the same
 * channels (its dependency group) and the block size its channels are pruned in. */
void sw_tui_chain_inspect(void *ctx, int node, sw_tui_inspector *out);

#endif
