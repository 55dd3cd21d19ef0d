/* state.c - the host side of the binding: creating a state, running scripts with tracebacks,
 * command-line arguments, and the interrupt hook.
 *
 * Running a chunk follows the stand-alone interpreter's recipe: a message handler under
 * lua_pcall turns every error into "file:line: message" plus a stack traceback, taken while the
 * failing frames still exist. A count hook calls the poll function every few thousand VM
 * instructions, so Ctrl-C stops even a busy pure-Lua loop; once it has fired it keeps firing,
 * so a recipe cannot swallow the interrupt with pcall.
 */
#include <stdlib.h>
#include <string.h>

#include "binding.h"

/* VM instructions between two polls: the poll is a flag read, so this costs nothing
 * measurable and answers Ctrl-C within microseconds of Lua work. */
#define SW_LUA_HOOK_COUNT 1000

sw_lua_options sw_lua_options_default(void) {
    sw_lua_options o = {0};
    sw_metric_bus_init(&o.listeners);
    return o;
}

static void count_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    if (!sw_lua_poll(sw_lua_ctx(L))) return;
    /* From now on every instruction raises: a pcall in the recipe may catch one error, but
     * the instruction after it raises again, so the script unwinds to the top instead of
     * carrying on. (Finalisers run with hooks off, so closing the state still works.) */
    lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
    luaL_error(L, "interrupted");
}

/* Opens the libraries, makes `shrinkwrap` requirable, applies safe mode; run under pcall so
 * that an allocation failure is an error, not a panic. */
static int setup(lua_State *L) {
    const sw_lua *lua = lua_touserdata(L, 1);
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_shrinkwrap);
    lua_setfield(L, -2, "shrinkwrap");
    lua_pop(L, 1);
    if (lua->opts.safe) sw_lua_sandbox(L);
    return 0;
}

sw_status sw_lua_new(const sw_lua_options *opts, sw_lua **out) {
    sw_lua *lua = calloc(1, sizeof *lua);
    if (!lua) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate a Lua context");
    lua->opts = opts ? *opts : sw_lua_options_default();
    sw_rng_init(&lua->rng, 0, 0x1a);
    lua->L = luaL_newstate();
    if (!lua->L) {
        free(lua);
        return SW_FAIL(SW_ERR_NOMEM, "cannot create a Lua state");
    }
    lua_State *L = lua->L;
    *(sw_lua **)lua_getextraspace(L) = lua;
    lua_pushcfunction(L, setup);
    lua_pushlightuserdata(L, lua);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        sw_status st = SW_FAIL(SW_ERR_NOMEM, "setting up Lua: %s", lua_tostring(L, -1));
        sw_lua_free(lua);
        return st;
    }
    if (lua->opts.poll) lua_sethook(L, count_hook, LUA_MASKCOUNT, SW_LUA_HOOK_COUNT);
    *out = lua;
    return SW_OK;
}

void sw_lua_free(sw_lua *lua) {
    if (!lua) return;
    /* Closing runs every pending finaliser, which still finds the context through the
     * extra space: lua must outlive lua_close. */
    if (lua->L) lua_close(lua->L);
    free(lua->last_error);
    free(lua);
}

const char *sw_lua_last_error(const sw_lua *lua) {
    return lua->last_error ? lua->last_error : "";
}

bool sw_lua_interrupted(const sw_lua *lua) { return lua->interrupted; }

int sw_lua_live_objects(const sw_lua *lua) { return lua->live_objects; }

/* ---- arguments ---------------------------------------------------------------------------- */

/* Pushes a command-line value: a number when the whole word reads as one, else the string. */
static void push_value(lua_State *L, const char *text) {
    if (lua_stringtonumber(L, text) == 0) lua_pushstring(L, text);
}

/* Sets args[key] for "--key" (with dashes in the key made underscores). */
static void set_key(lua_State *L, const char *key, size_t len) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < len; i++) luaL_addchar(&b, key[i] == '-' ? '_' : key[i]);
    luaL_pushresult(&b);
}

static int build_args(lua_State *L) {
    const char *script = lua_touserdata(L, 1);
    int argc = (int)lua_tointeger(L, 2);
    char *const *argv = lua_touserdata(L, 3);
    lua_newtable(L);
    int args = lua_gettop(L);
    lua_pushstring(L, script ? script : "");
    lua_rawseti(L, args, 0);
    lua_Integer positional = 0;
    for (int i = 0; i < argc; i++) {
        const char *word = argv[i];
        if (strncmp(word, "--", 2) != 0 || word[2] == '\0') {
            push_value(L, word);
            lua_rawseti(L, args, ++positional);
            continue;
        }
        const char *key = word + 2;
        const char *eq = strchr(key, '=');
        if (eq) { /* --key=value */
            set_key(L, key, (size_t)(eq - key));
            push_value(L, eq + 1);
        } else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) { /* --key value */
            set_key(L, key, strlen(key));
            push_value(L, argv[++i]);
        } else if (strncmp(key, "no-", 3) == 0 && key[3]) { /* --no-flag */
            set_key(L, key + 3, strlen(key + 3));
            lua_pushboolean(L, 0);
        } else { /* --flag */
            set_key(L, key, strlen(key));
            lua_pushboolean(L, 1);
        }
        lua_rawset(L, args);
    }
    sw_lua_store_args(L);
    return 0;
}

sw_status sw_lua_set_args(sw_lua *lua, const char *script, int argc, char *const *argv) {
    lua_State *L = lua->L;
    lua_pushcfunction(L, build_args);
    lua_pushlightuserdata(L, (void *)script);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, (void *)argv);
    if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
        sw_status st = SW_FAIL(SW_ERR_NOMEM, "setting sw.args: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return st;
    }
    return SW_OK;
}

/* ---- running ------------------------------------------------------------------------------ */

/* The message handler: appends a traceback to the error, converting a non-string error object
 * through its __tostring (or naming its type). */
static int traceback_handler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Records the error on top of the stack (popped) as the run's outcome. */
static sw_status record_error(sw_lua *lua, sw_status status) {
    lua_State *L = lua->L;
    const char *msg = lua_tostring(L, -1);
    if (!msg) msg = "(error object is not a string)";
    free(lua->last_error);
    lua->last_error = strdup(msg);
    if (lua->interrupted) status = SW_ERR_INTERRUPTED;
    sw_status st = SW_FAIL(status, "%s", msg);
    lua_pop(L, 1);
    return st;
}

/* Runs the chunk on top of the stack (above the handler) and records the outcome. */
static sw_status run_chunk(sw_lua *lua, int handler) {
    lua_State *L = lua->L;
    int rc = lua_pcall(L, 0, 0, handler);
    sw_status st = rc == LUA_OK ? SW_OK : record_error(lua, SW_ERR_ARG);
    lua_settop(L, handler - 1);
    return st;
}

static void reset_outcome(sw_lua *lua) {
    free(lua->last_error);
    lua->last_error = NULL;
}

sw_status sw_lua_run_file(sw_lua *lua, const char *path) {
    lua_State *L = lua->L;
    reset_outcome(lua);
    lua_pushcfunction(L, traceback_handler);
    int handler = lua_gettop(L);
    /* Safe mode runs source text only, as its loaders do. */
    int rc = luaL_loadfilex(L, path, lua->opts.safe ? "t" : NULL);
    if (rc != LUA_OK) {
        sw_status st = record_error(lua, rc == LUA_ERRFILE ? SW_ERR_IO : SW_ERR_ARG);
        lua_settop(L, handler - 1);
        return st;
    }
    return run_chunk(lua, handler);
}

sw_status sw_lua_run_string(sw_lua *lua, const char *code, const char *name) {
    lua_State *L = lua->L;
    reset_outcome(lua);
    lua_pushcfunction(L, traceback_handler);
    int handler = lua_gettop(L);
    if (luaL_loadbufferx(L, code, strlen(code), name ? name : "=(string)", "t") != LUA_OK) {
        sw_status st = record_error(lua, SW_ERR_ARG);
        lua_settop(L, handler - 1);
        return st;
    }
    return run_chunk(lua, handler);
}
