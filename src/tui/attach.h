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
#include "../speedup/speedup.h"
#include "state.h"

/* How an algorithm takes part in compress(max_steps, max_epochs). */
typedef enum sw_tui_training {
    SW_TUI_ONE_SHOT,    /* alone: no limits (masks once from the weights) */
    SW_TUI_OWN_LENGTH,  /* alone: no limits, it trains its own training_steps (Slim, Taylor) */
    SW_TUI_NEEDS_LIMITS /* always trains: epochs or steps are needed */
} sw_tui_training;

typedef enum sw_tui_algo_kind {
    SW_TUI_PRUNER,
    SW_TUI_QUANTIZER,
    SW_TUI_DISTILLER,
} sw_tui_algo_kind;

typedef struct sw_tui_chain sw_tui_chain;
typedef struct sw_tui_chain_item sw_tui_chain_item;
typedef struct sw_tui_algo sw_tui_algo;

/* What a constructor row gets: the chain (its wrapper set and newest compressor), the config
 * list, the submitted form and the evaluator. */
typedef struct sw_tui_build {
    sw_tui_chain *ch;
    sw_compressor *previous; /* newest of the chain, or NULL for the first */
    const cJSON *config;
    const sw_tui_form *form;
    sw_evaluator *ev;
} sw_tui_build;

struct sw_tui_algo {
    sw_tui_algo_entry entry; /* name, kind, summary, form (what the state shows) */
    const char *badge;       /* "P:L1"; quantizers and distillers build theirs from the form */
    sw_tui_algo_kind kind;
    sw_tui_training training;
    /* Which layer kinds it applies to (NULL: every module; others are skipped, with a note),
     * and how the note names them ("a Conv2d or Linear"). */
    bool (*accepts)(const sw_layer *layer);
    const char *accepts_what;
    /* The config list for `modules` from the submitted form. Caller frees (cJSON_Delete). */
    sw_status (*config)(const sw_tui_form *f, const char *const *modules, int n, cJSON **out);
    /* One-shot pruners: the two library constructors (build NULL). */
    sw_status (*create)(sw_wrapper_set *ws, const cJSON *config, sw_evaluator *ev,
                        sw_compressor **out);
    sw_status (*create_from)(sw_compressor *previous, const cJSON *config, sw_evaluator *ev,
                             sw_compressor **out);
    /* Everything else: fills it->c (and it->inner / it->teacher when it makes them). */
    sw_status (*build)(const sw_tui_build *b, sw_tui_chain_item *it);
    /* The Lua constructor call for a recipe (recipe.c): "sw.QATQuantizer.from_compressor(prev,
     * cfg, 5)". `prev` is the Lua name of the previous compressor or NULL, `cfg` of the config
     * list. Returns the length written (snprintf's). */
    int (*lua)(const sw_tui_chain_item *it, const char *prev, const char *cfg, char *buf,
               size_t size);
};

/* The attach list. */
const sw_tui_algo *sw_tui_algos(int *n);
/* Copies the list's entries into the state (what the `a` key shows). */
void sw_tui_algos_publish(sw_tui_state *st);
/* The row named `name` ("L1Norm"), or NULL. */
const sw_tui_algo *sw_tui_algo_find(const char *name);

struct sw_tui_chain_item {
    const sw_tui_algo *algo;
    sw_compressor *c;     /* owned: the newest compressor of this item (AGP's combo) */
    sw_compressor *inner; /* owned: the pruner an AGP/Linear item schedules, else NULL */
    sw_model *teacher;    /* owned: a distiller's teacher, a clone of the model at attach */
    char *config;         /* owned: the config list as JSON text */
    sw_tui_form params;   /* the submitted parameter form (for recipes) */
    char badge[16];       /* "P:L1", "Q:int8", "D:kl" */
    unsigned long seed;   /* DoReFa's gradient-noise seed (the evaluator's) */
};

struct sw_tui_chain {
    sw_model *model;    /* borrowed */
    sw_wrapper_set *ws; /* one reference; created by the first attach */
    int n;
    sw_tui_chain_item items[SW_TUI_MAX_CHAIN];
    sw_dependency_groups deps; /* channel dependency groups, found on first use */
    int deps_state;            /* 0 not yet, 1 found, -1 the analysis failed */
    sw_model *origin; /* owned: the model's weights when the first compressor was attached */
    /* The limits of the last compress (-1 unset), for recipes. */
    long last_steps;
    int last_epochs;
    bool compressed;
};

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
/* True when compressing this chain trains (epochs or steps must be given); false when it
 * runs one-shot (no limits). */
bool sw_tui_chain_needs_limits(const sw_tui_chain *ch);
/* Whether the chain holds a pruner / a quantizer. */
bool sw_tui_chain_has(const sw_tui_chain *ch, sw_tui_algo_kind kind);
/* The newest quantizer of the chain, or NULL. */
sw_compressor *sw_tui_chain_quantizer(const sw_tui_chain *ch);
/* Writes every mask of the chain to a masks file. */
sw_status sw_tui_chain_export_masks(sw_tui_chain *ch, const char *path);
/* Bakes the chain's masks into `copy` (a clone of the chain's model) as an unwrap would, so a
 * saved file computes what the wrapped model computes; the chain itself stays attached.
 * *dropped counts the unwrap's warnings (masks that weights cannot hold). */
sw_status sw_tui_chain_bake(const sw_tui_chain *ch, sw_model *copy, int *dropped);
/* ModelSpeedup of the chain's masks on a clone of the model (the live model keeps its chain):
 * *fast is the smaller model (caller frees). *check is the self-check, filled whenever it ran
 * (*checked), also when the speedup refuses because it failed (SW_ERR_NUMERIC, with the
 * numbers in the message). */
sw_status sw_tui_chain_speedup(const sw_tui_chain *ch, sw_model **fast, sw_speedup_check *check,
                               bool *checked);
/* Fills the state's chain lines and badges. */
void sw_tui_chain_publish(const sw_tui_chain *ch, sw_tui_state *st);
/* Inspector rows for node `node` (ctx = sw_tui_chain*): each wrapper target with transforms,
 * its transform chain in order and its mask sparsity; then the modules that must lose the same
 * channels (its dependency group) and the block size its channels are pruned in. */
void sw_tui_chain_inspect(void *ctx, int node, sw_tui_inspector *out);

#endif
