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
 *  - an object that borrows another (an evaluator its datasets, a loader its dataset) keeps
 *    the borrowed userdata in a user value, so the borrowed C object lives as long as any
 *    holder does.
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
    int busy;    /* > 0 while an evaluator trains or evaluates it */
} sw_lua_model;

/* The model at idx; raises if it is not a model or has been freed. */
sw_lua_model *sw_lua_check_model(lua_State *L, int idx);
/* Pushes an empty model userdata (m = NULL) to be filled with sw_lua_model_adopt: the userdata
 * exists before the C object, so a failed allocation of either leaks nothing. */
sw_lua_model *sw_lua_push_model_slot(lua_State *L);
/* Gives the userdata ownership of m (counted as a live object). */
void sw_lua_model_adopt(lua_State *L, sw_lua_model *u, sw_model *m);
/* Raises unless the model is idle (not being trained or evaluated). */
void sw_lua_model_check_idle(lua_State *L, const sw_lua_model *u, const char *what);
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

#endif
