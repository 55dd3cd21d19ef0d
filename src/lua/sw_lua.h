/* sw_lua.h - running Lua 5.4 recipes against the shrinkwrap library.
 *
 * A recipe is a Lua script that does `local sw = require "shrinkwrap"` and drives models, data
 * and training through the module (docs/LUA.md is the reference). This header is the whole
 * boundary between the rest of the program and Lua: nothing outside src/lua includes lua.h, and
 * callers see only the opaque sw_lua.
 *
 *   sw_lua_options opts = sw_lua_options_default();
 *   opts.safe = true;                       // no os.execute, io.popen, native code, ...
 *   opts.poll = sw_cli_poll_interrupt;      // Ctrl-C: stops Lua loops and training
 *   sw_metric_bus_add(&opts.listeners, sw_progress_listener, &progress);
 *   sw_lua *lua;
 *   sw_lua_new(&opts, &lua);
 *   sw_lua_set_args(lua, "recipe.lua", argc, argv);   // -> sw.args
 *   if (sw_lua_run_file(lua, "recipe.lua") != SW_OK) puts(sw_lua_last_error(lua));
 *   sw_lua_free(lua);
 */
#ifndef SW_LUA_H
#define SW_LUA_H

#include <stdbool.h>

#include "../train/evaluator.h"
#include "../train/metrics.h"

typedef struct sw_lua sw_lua;

typedef struct sw_lua_options {
    /* Sandbox for recipes from others: removes os.execute, io.popen, package.loadlib and the
     * C module searchers, restricts load/loadfile/dofile/require to source text, drops the
     * debug library (traceback aside), and confines file writes (io.open for writing,
     * io.output, os.remove, os.rename, model:save) to the working directory and below. */
    bool safe;
    /* Asked between training steps by every evaluator and, through a count hook, every few
     * thousand Lua instructions; returning true stops the recipe with the error "interrupted".
     * NULL = never interrupted. */
    sw_poll_fn poll;
    void *poll_ctx;
    /* Host listeners (progress bar, JSON-lines log) attached to every evaluator a recipe
     * creates, besides the recipe's own sw.on_metric callbacks. Copied by sw_lua_new; the
     * contexts are borrowed and must outlive the sw_lua. */
    sw_metric_bus listeners;
} sw_lua_options;

/* Not safe, no poll, no listeners. */
sw_lua_options sw_lua_options_default(void);

/* Creates a Lua state with the standard libraries and `shrinkwrap` available to require
 * (its pure-Lua part is embedded in the binary). opts may be NULL for the defaults. Caller
 * owns *out and frees it with sw_lua_free. */
sw_status sw_lua_new(const sw_lua_options *opts, sw_lua **out);
/* Closes the state: every userdata still alive is finalised, each C object freed once. */
void sw_lua_free(sw_lua *lua);

/* Sets sw.args from command-line words after the script name:
 *   --key value  -> args.key = value (a number when the value reads as one)
 *   --key=value  -> the same;   --flag (last, or before another --option) -> args.flag = true
 *   --no-flag    -> args.flag = false;  other words -> args[1], args[2], ... in order.
 * Dashes inside keys become underscores (--max-steps -> args.max_steps); args[0] = script. */
sw_status sw_lua_set_args(sw_lua *lua, const char *script, int argc, char *const *argv);

/* Runs a script file, or a string under the chunk name `name` (NULL = "=(string)").
 * On a Lua error returns SW_ERR_ARG (SW_ERR_INTERRUPTED when the poll hook stopped it) and
 * keeps "file:line: message" plus a stack traceback in sw_lua_last_error; the thread's error
 * message (sw_error_message) gets the same text, possibly cut short. */
sw_status sw_lua_run_file(sw_lua *lua, const char *path);
sw_status sw_lua_run_string(sw_lua *lua, const char *code, const char *name);

/* The full text of the last run's error ("" after a successful run). Valid until the next run
 * or sw_lua_free. */
const char *sw_lua_last_error(const sw_lua *lua);

/* True once the poll hook has stopped a Lua loop or a training run of this state. */
bool sw_lua_interrupted(const sw_lua *lua);

/* How many userdata-owned C objects (models, datasets, loaders, evaluators, compressors,
 * speedups) are alive: each creation adds one, each free subtracts one. For tests of the
 * garbage collection. */
int sw_lua_live_objects(const sw_lua *lua);

#endif
