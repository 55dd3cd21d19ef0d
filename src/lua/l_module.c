/* l_module.c - luaopen_shrinkwrap: assembles the module from the C parts (tensors, models,
 * data, training, compression, speedup) and the embedded pure-Lua part (lua/shrinkwrap.lua
 * and its submodules).
 *
 * Loading order: the C functions go into a fresh table M, M becomes package.loaded.shrinkwrap
 * (so the Lua submodules can `require "shrinkwrap"` while it is still being built), every
 * embedded file lua/<stem>.lua is registered as package.preload["shrinkwrap.<stem>"], and
 * finally lua/shrinkwrap.lua runs with M as its argument to add the sugar.
 */
#include <string.h>

#include "../tensor/blas.h"
#include "binding.h"
#include "embedded.h"

/* Registry key of the sw.args table set by sw_lua_set_args. */
#define SW_LUA_ARGS "shrinkwrap.args"

/* Loads an embedded chunk under the chunk name "=lua/<stem>.lua": errors and tracebacks name
 * the source file, and the '=' (which no file loaded from disk has) tells sw._raise which
 * frames are the module's own. */
#define EMBEDDED_PREFIX "=lua/"
static void load_chunk(lua_State *L, const sw_lua_chunk *c) {
    char chunkname[96];
    snprintf(chunkname, sizeof chunkname, EMBEDDED_PREFIX "%s.lua", c->name);
    if (luaL_loadbufferx(L, (const char *)c->code, c->size, chunkname, "t") != LUA_OK)
        lua_error(L);
}

/* package.preload["shrinkwrap.<stem>"]: runs the chunk (upvalue: its index). */
static int preload_chunk(lua_State *L) {
    const sw_lua_chunk *c = &sw_lua_chunks[lua_tointeger(L, lua_upvalueindex(1))];
    load_chunk(L, c);
    lua_pushvalue(L, 1); /* the module name, as require passes it */
    lua_call(L, 1, 1);
    return 1;
}

/* sw.set_threads(n): threads for OpenBLAS and our own loops (0 = all cores); returns the
 * count in effect. */
static int l_set_threads(lua_State *L) {
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0 && n <= 1024, 1, "thread count must be in [0, 1024]");
    lua_pushinteger(L, sw_threads_set((int)n));
    return 1;
}

/* sw._raise(message): raises message blamed on the innermost Lua line outside the module's
 * own files, i.e. the recipe line that called into shrinkwrap ("recipe.lua:12: ..."), however
 * deep inside the module's Lua files the mistake was found. */
static int l_raise(lua_State *L) {
    const char *msg = luaL_checkstring(L, 1);
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        lua_getinfo(L, "Sl", &ar);
        if (ar.currentline <= 0) continue; /* C functions */
        if (strncmp(ar.source, EMBEDDED_PREFIX, strlen(EMBEDDED_PREFIX)) == 0) continue;
        lua_pushfstring(L, "%s:%d: %s", ar.short_src, ar.currentline, msg);
        return lua_error(L);
    }
    lua_pushstring(L, msg);
    return lua_error(L);
}

int luaopen_shrinkwrap(lua_State *L) {
    if (!sw_lua_ctx(L))
        return luaL_error(L, "shrinkwrap: this Lua state was not created by sw_lua_new");
    lua_newtable(L);
    int M = lua_gettop(L);
    sw_lua_open_tensor(L);
    sw_lua_open_model(L);
    sw_lua_open_data(L);
    sw_lua_open_train(L);
    sw_lua_open_compress(L);
    sw_lua_open_distill(L);
    sw_lua_open_quant(L);
    sw_lua_open_speedup(L);
    lua_pushcfunction(L, l_raise);
    lua_setfield(L, M, "_raise");
    lua_pushcfunction(L, l_set_threads);
    lua_setfield(L, M, "set_threads");
    lua_pushstring(L, SW_VERSION);
    lua_setfield(L, M, "version");
    if (lua_getfield(L, LUA_REGISTRYINDEX, SW_LUA_ARGS) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
    }
    lua_setfield(L, M, "args");

    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushvalue(L, M);
    lua_setfield(L, -2, "shrinkwrap");
    lua_pop(L, 1);

    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    int core = -1;
    for (int i = 0; sw_lua_chunks[i].name; i++) {
        if (strcmp(sw_lua_chunks[i].name, "shrinkwrap") == 0) {
            core = i;
            continue;
        }
        const char *name = lua_pushfstring(L, "shrinkwrap.%s", sw_lua_chunks[i].name);
        lua_pushinteger(L, i);
        lua_pushcclosure(L, preload_chunk, 1);
        lua_setfield(L, -3, name);
        lua_pop(L, 1); /* the name */
    }
    lua_pop(L, 1);
    if (core < 0) return luaL_error(L, "shrinkwrap: lua/shrinkwrap.lua is not embedded");
    load_chunk(L, &sw_lua_chunks[core]);
    lua_pushvalue(L, M);
    lua_call(L, 1, 0);
    lua_settop(L, M);
    return 1;
}

/* Stores args (the table on top, popped) where luaopen_shrinkwrap finds it, and in the module
 * if it is loaded already. */
void sw_lua_store_args(lua_State *L) {
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, SW_LUA_ARGS);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, -1, "shrinkwrap") == LUA_TTABLE) {
        lua_pushvalue(L, -3);
        lua_setfield(L, -2, "args");
    }
    lua_pop(L, 3);
}
