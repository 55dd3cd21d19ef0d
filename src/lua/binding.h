/* binding.h - what the files of the Lua binding share (internal to src/lua).
 *
 * Conventions, as in Lua's own libraries (liolib.c):
 *  - each userdata type has a metatable registered under its type name, with methods in a
 *    meth[] table and metamethods in a metameth[] table;
 *  - a userdata is put in a consistent state (pointer NULL) before anything that can fail, and
 *    its __gc frees the C object once and sets the pointer back to NULL, so a finalised object
 *    seen again (resurrection, a second __gc call) raises "... has been freed" instead of
 *    crashing;
 *  - misuse (wrong types, bad shapes, bad configuration) raises a Lua error carrying the C
 *    side's message; recoverable failures (a file that cannot be read or written) return
 *    nil, message;
 *  - an object that borrows another (an evaluator its datasets, a loader its dataset, a
 *    compressor its model, evaluator and previous compressor) keeps the borrowed userdata in a
 *    user value, so the borrowed C object lives as long as any holder does; models and
 *    compressors also count their holders, so that closing a handle explicitly while a holder
 *    still uses the object only closes the handle (the last holder frees the C object).
 * C callbacks that run Lua (metric listeners, training_step) do so inside lua_pcall, because a
 * Lua error must never longjmp through the C training loop.
 */
#ifndef SW_LUA_BINDING_H
#define SW_LUA_BINDING_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "../data/dataset.h"
#include "../nn/model.h"
#include "../tensor/rng.h"
#include "../train/evaluator.h"
#include "sw_lua.h"

#define SW_LUA_TENSOR "shrinkwrap.tensor"
#define SW_LUA_MODEL "shrinkwrap.model"
#define SW_LUA_DATASET "shrinkwrap.dataset"
#define SW_LUA_LOADER "shrinkwrap.loader"
#define SW_LUA_EVALUATOR "shrinkwrap.evaluator"
/* Registry key of the array of sw.on_metric callbacks. */
#define SW_LUA_LISTENERS "shrinkwrap.listeners"

/* The per-state context; its address sits in the state's extra space (lua_getextraspace), so
 * every thread of the state finds it. */
struct sw_lua {
    lua_State *L;
    sw_lua_options opts;
    int live_objects;
    bool interrupted;
    char *last_error; /* owned; NULL = none */
    sw_rng rng;       /* sw.randn, sw.rand; reseeded by sw.manual_seed */
};

/* The context of the state L belongs to (never NULL inside the module: luaopen_shrinkwrap
 * refuses a state not made by sw_lua_new). */
sw_lua *sw_lua_ctx(lua_State *L);

/* Raises a Lua error "<what>: <sw_error_message()>" (what may be NULL). Never returns. */
int sw_lua_raise(lua_State *L, const char *what);
/* Pushes nil, "<what>: <sw_error_message()>" and returns 2, for recoverable failures. */
int sw_lua_fail(lua_State *L, const char *what);
/* The poll of the options, recording an interrupt in the context; usable as an sw_poll_fn
 * with ctx = the sw_lua. */
bool sw_lua_poll(void *ctx);
/* In safe mode, raises unless `path` is inside the working directory (relative, without
 * "..", or absolute below the current directory). No-op otherwise. */
void sw_lua_check_write_path(lua_State *L, const char *path, const char *what);

/* Applies safe mode (sandbox.c) to a state whose standard libraries are open. */
void sw_lua_sandbox(lua_State *L);

/* Registers a userdata type: metatable named `name` with metameth (incl. __index set to a
 * table of meth unless metameth defines __index). */
void sw_lua_new_type(lua_State *L, const char *name, const luaL_Reg *meth,
                     const luaL_Reg *metameth);
/* Reads an integer field of a table; absent or nil -> dflt; not an integer -> error. */
lua_Integer sw_lua_opt_int_field(lua_State *L, int t, const char *key, lua_Integer dflt);
lua_Number sw_lua_opt_num_field(lua_State *L, int t, const char *key, lua_Number dflt);
int sw_lua_opt_bool_field(lua_State *L, int t, const char *key, int dflt);
/* Returns the string field or dflt; the string stays valid while the table is on the stack. */
const char *sw_lua_opt_str_field(lua_State *L, int t, const char *key, const char *dflt);
/* Raises "<what>: unknown key \"k\" (known: a, b, ...)" for a string key of table t that is
 * not in the NULL-terminated list. */
void sw_lua_check_keys(lua_State *L, int t, const char *const *known, const char *what);
/* Pushes a shape as a Lua array {d0, d1, ...}. */
void sw_lua_push_shape(lua_State *L, const sw_shape *shape);

/* ---- the module (l_module.c) ---- */

/* Opens the module (what `require "shrinkwrap"` calls): pushes the module table. */
int luaopen_shrinkwrap(lua_State *L);
/* Pops the table on top and makes it sw.args (now, or when the module is loaded). */
void sw_lua_store_args(lua_State *L);

/* ---- tensors (l_tensor.c) ---- */

/* The tensor userdata: the header and the floats in one Lua allocation, so the collector
 * knows the real size and no __gc is needed. t.data points at data[]. */
typedef struct sw_lua_tensor {
    sw_tensor t;
    float data[];
} sw_lua_tensor;

/* Pushes a new zero-filled tensor of `shape` (dims >= 1, at most 4). */
sw_tensor *sw_lua_push_tensor(lua_State *L, const sw_shape *shape);
/* Pushes a copy of t. */
sw_tensor *sw_lua_push_tensor_copy(lua_State *L, const sw_tensor *t);
sw_tensor *sw_lua_check_tensor(lua_State *L, int idx);
sw_tensor *sw_lua_test_tensor(lua_State *L, int idx);
/* Reads a shape from a table {d0, ...} or from the numbers at idx..top. */
sw_shape sw_lua_check_shape(lua_State *L, int idx);
int sw_lua_open_tensor(lua_State *L); /* registers the type; pushes nothing */

/* ---- models (l_model.c) ---- */

typedef struct sw_lua_model {
    sw_model *m; /* owned; NULL once freed */
    int busy;    /* > 0 while an evaluator trains or evaluates it, or a compressor compresses */
    /* Compressors and speedups that borrow m. While any does, closing or collecting the
     * handle only marks it closed; the last of them frees m (sw_lua_model_release). */
    int holders;
    bool closed;
    /* One reference owned: the model's wrappers, shared by every compressor built on it
     * (one wrapper per module, as NNI has). NULL until the first compressor. */
    struct sw_wrapper_set *ws;
} sw_lua_model;

/* The model at idx; raises if it is not a model or has been freed (or closed). */
sw_lua_model *sw_lua_check_model(lua_State *L, int idx);
/* Pushes an empty model userdata (m = NULL) to be filled with sw_lua_model_adopt: the userdata
 * exists before the C object, so a failed allocation of either leaks nothing. */
sw_lua_model *sw_lua_push_model_slot(lua_State *L);
/* Gives the userdata ownership of m (counted as a live object). */
void sw_lua_model_adopt(lua_State *L, sw_lua_model *u, sw_model *m);
/* Raises unless the model is idle (not being trained or evaluated). */
void sw_lua_model_check_idle(lua_State *L, const sw_lua_model *u, const char *what);
/* A borrower (compressor, speedup) starts / stops using u->m. The userdata must stay
 * reachable from the borrower (a user value) until the matching release; the release after
 * the handle was closed frees the model. */
void sw_lua_model_hold(sw_lua_model *u);
void sw_lua_model_release(lua_State *L, sw_lua_model *u);
int sw_lua_open_model(lua_State *L); /* registers the type; sets sw.load, sw.models, ... in
                                      * the module table on top of the stack */

/* ---- data (l_data.c) ---- */

typedef struct sw_lua_dataset {
    sw_dataset *ds;     /* owned; NULL once freed */
    sw_augment augment; /* applied when an evaluator trains on it (augment= option) */
    int busy;           /* > 0 while an evaluator's run reads it: closing it is refused */
} sw_lua_dataset;

sw_lua_dataset *sw_lua_check_dataset(lua_State *L, int idx);
int sw_lua_open_data(lua_State *L); /* sets sw.data in the module table on top */
/* Reads an augment option (true, false, or {crop_padding=, flip=}) at idx. */
sw_augment sw_lua_check_augment(lua_State *L, int idx);

/* ---- training (l_train.c) ---- */

int sw_lua_open_train(lua_State *L); /* sets sw.Evaluator, sw.on_metric, sw.loss, ... */
/* Pushes a metric event as a Lua table. */
void sw_lua_push_metric_event(lua_State *L, const sw_metric_event *ev);
/* Pushes a training batch as {x = tensor (a copy), y = {class ids}, size = n}. */
void sw_lua_push_batch(lua_State *L, const sw_batch *batch);

/* The evaluator at idx; raises if it is not one or has been freed. */
sw_evaluator *sw_lua_check_evaluator(lua_State *L, int idx);
/* Runs driven by C code other than evaluator:train (a compressor's compress) get the same
 * Lua callbacks (sw.on_metric, training_step) as evaluator:train:
 *
 *   sw_evaluator *ev = sw_lua_evaluator_begin_run(L, e, model, "what"); // may raise; pushes 2
 *   st = <C code training through ev>;                                  // must not raise
 *   sw_lua_evaluator_end_run(L, e);
 *   sw_lua_evaluator_raise_outcome(L, e, st, "what");   // a callback's error, then st
 *
 * begin_run checks the evaluator and its datasets are open, that `model` fits them and that
 * no run is in progress; it pushes two values (the callbacks) that must stay on the stack
 * until end_run. */
sw_evaluator *sw_lua_evaluator_begin_run(lua_State *L, int idx, const sw_model *model,
                                         const char *what);
void sw_lua_evaluator_end_run(lua_State *L, int idx);
void sw_lua_evaluator_raise_outcome(lua_State *L, int idx, sw_status st, const char *what);

/* ---- compression (l_compress.c, l_distill.c, l_quant.c, l_speedup.c) ---- */

#define SW_LUA_COMPRESSOR "shrinkwrap.compressor"
#define SW_LUA_SPEEDUP "shrinkwrap.speedup"
/* Registry key of sw.null, the light userdata that stands for JSON null in config lists. */
#define SW_LUA_NULL "shrinkwrap.null"

/* User values of a compressor userdata: what it borrows, kept alive as long as it lives. */
enum {
    SW_LUA_CUV_MODEL = 1, /* the model userdata (held: sw_lua_model_hold) */
    SW_LUA_CUV_EVAL,      /* the evaluator userdata the C compressor uses, or nil */
    SW_LUA_CUV_PREVIOUS,  /* the compressor it was built on (from_compressor, AGP, Linear) */
    SW_LUA_CUV_TEACHER,   /* distillers: the teacher model userdata (held) */
    SW_LUA_CUV_PREDICT,   /* distillers: the Lua teacher_predict function, or nil */
    SW_LUA_CUV_COUNT = SW_LUA_CUV_PREDICT,
};

struct sw_compressor;
struct sw_masks;
typedef struct sw_lua_compressor {
    struct sw_compressor *c; /* owned; NULL once freed */
    /* Newer compressors built on this one. Closing or collecting the handle while any holds
     * it only marks it closed; the last of them frees c. */
    int holders;
    bool closed;
    /* Distillers with a Lua teacher_predict, during compress: the running thread, the stack
     * slots of the function and of the teacher, and the first error the function raised. */
    lua_State *run_L;
    int predict_slot, teacher_slot;
    char *cb_error; /* owned */
} sw_lua_compressor;

/* The compressor at idx; raises if it is not one or has been freed. */
sw_lua_compressor *sw_lua_check_compressor(lua_State *L, int idx);
sw_lua_compressor *sw_lua_test_compressor(lua_State *L, int idx);

/* What the generic constructor hands an algorithm's build function. The direct form is
 * sw.<Name>(model, config_list, evaluator, <algorithm arguments>), from_compressor is
 * sw.<Name>.from_compressor(previous, config_list, <algorithm arguments>, evaluator), as in
 * NNI; classes built on a pruner (LinearPruner, AGPPruner) take (pruner, <arguments>,
 * evaluator). Distillers' arguments start with teacher_model, teacher_predict. */
typedef struct sw_lua_build_args {
    struct sw_wrapper_set *ws;      /* direct form: the model's wrappers */
    struct sw_compressor *previous; /* from_compressor, Linear/AGP: the compressor built on */
    bool from;                      /* the from_compressor form */
    const struct cJSON *config;     /* the config list; NULL for classes without one */
    const struct sw_masks *masks;   /* MasksPruner: the masks given instead of a config list */
    sw_evaluator *ev;               /* the evaluator given, or NULL */
    int args;                       /* stack index of the first algorithm argument */
    sw_model *teacher;              /* distillers: the teacher model */
    bool lua_predict;               /* distillers: a Lua teacher_predict was given */
    sw_lua_compressor *self;        /* the userdata being built (teacher_predict's context) */
} sw_lua_build_args;

/* Builds the C compressor. May raise while reading its arguments, never after the C object
 * exists. Returns the C side's status (its message is raised by the caller). */
typedef sw_status (*sw_lua_build_fn)(lua_State *L, const sw_lua_build_args *a,
                                     struct sw_compressor **out);

typedef struct sw_lua_class {
    const char *name;      /* NNI's class name: sw.<name> */
    sw_lua_build_fn build; /* both forms (a->from tells which) */
    int n_args;            /* algorithm arguments (distillers: teacher and teacher_predict
                            * included) */
    bool on_pruner;        /* built on a pruner instead of a model with a config list */
    bool teacher;          /* the arguments start with teacher_model, teacher_predict */
    bool no_evaluator;     /* takes no evaluator (the base Quantizer, MasksPruner) */
    bool masks;            /* argument 2 is masks (a table or a compressor), not a config */
} sw_lua_class;

/* Sets sw.<name> (callable, with .from_compressor) in the module table on top of the stack. */
void sw_lua_register_compressor_class(lua_State *L, const sw_lua_class *cls);
/* Adds methods shared by every compressor userdata (each checks the kind it needs). */
void sw_lua_add_compressor_methods(lua_State *L, const luaL_Reg *methods);
/* Reads an optional algorithm argument at idx: nil -> dflt, else it must be a number /
 * an integer; the error names the class and the argument. */
lua_Number sw_lua_arg_number(lua_State *L, int idx, const char *cls, const char *name,
                             lua_Number dflt);
lua_Integer sw_lua_arg_integer(lua_State *L, int idx, const char *cls, const char *name,
                               lua_Integer dflt, bool required);

/* Distillers (l_distill.c): the teacher_predict that calls the Lua function of the distiller
 * userdata ctx (an sw_lua_compressor) during compress. */
sw_status sw_lua_teacher_predict(void *ctx, const sw_batch *batch, sw_model *teacher);

/* A userdata that owns a C object until it is collected or sw_lua_box_free'd: for objects
 * built across calls that may raise. Returns the slot to store the object in. */
void **sw_lua_push_box(lua_State *L, void (*free_fn)(void *));
void sw_lua_box_free(lua_State *L, int idx);

/* Masks as Lua sees them: {module = {target = tensor}}. */
struct sw_mask_set;
void sw_lua_push_masks(lua_State *L, const struct sw_masks *m);
/* The masks at idx (a masks table or a compressor: its chain's masks) as a mask set owned by
 * a box pushed on the stack. Raises naming the bad entry. */
struct sw_mask_set *sw_lua_check_mask_set(lua_State *L, int idx, const char *what);

/* Pushes a cJSON value as Lua (objects as tables, arrays as sequences, null as sw.null,
 * integral numbers as integers). */
void sw_lua_push_json(lua_State *L, const struct cJSON *v);
/* Converts the Lua value at idx into a new cJSON (caller owns it); raises naming `path` on
 * values JSON cannot hold. Empty tables become arrays unless `empty_object`. */
struct cJSON *sw_lua_to_json(lua_State *L, int idx, const char *path, bool empty_object);
/* Raises "<what>: <message>" with the C side's message, config_list entries renumbered from
 * the C side's 0-based indices to Lua's 1-based ones. */
int sw_lua_raise_config(lua_State *L, const char *what);
/* Pushes msg with "config_list[i]" renumbered to i + 1. */
const char *sw_lua_push_renumbered(lua_State *L, const char *msg);

int sw_lua_open_compress(lua_State *L); /* pruners, masks, the shared compressor methods */
int sw_lua_open_distill(lua_State *L);  /* distillers */
int sw_lua_open_quant(lua_State *L);    /* quantizers */
int sw_lua_open_speedup(lua_State *L);  /* sw.ModelSpeedup */

#endif
