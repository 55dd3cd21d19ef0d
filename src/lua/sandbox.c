/* sandbox.c - safe mode for recipes from others (`shrinkwrap run --safe`).
 *
 * What a safe recipe cannot do: spawn processes (os.execute, io.popen), load native code
 * (package.loadlib, the C searchers of require, package.cpath), load precompiled bytecode
 * (load, loadfile, dofile and require accept source text only: malformed bytecode can crash the
 * VM), reach the debug library (it could restore anything removed here), or write files
 * outside the working directory (io.open for writing, io.output, os.remove, os.rename, and
 * shrinkwrap's own writers such as model:save, all through sw_lua_check_write_path).
 * Reading files stays allowed: recipes read data and models.
 */
#include <string.h>

#include "binding.h"

/* Calls the original function (upvalue 1) with the current arguments, returning all results. */
static int call_original(lua_State *L) {
    int nargs = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, nargs, LUA_MULTRET);
    return lua_gettop(L);
}

/* Replaces t[field] by a closure of fn over the original value. */
static void wrap_field(lua_State *L, int t, const char *field, lua_CFunction fn) {
    t = lua_absindex(L, t);
    lua_getfield(L, t, field);
    lua_pushcclosure(L, fn, 1);
    lua_setfield(L, t, field);
}

static void remove_field(lua_State *L, const char *lib, const char *field) {
    if (lua_getglobal(L, lib) == LUA_TTABLE) {
        lua_pushnil(L);
        lua_setfield(L, -2, field);
    }
    lua_pop(L, 1);
}

/* load(chunk, name, mode, env) with mode forced to "t". The env argument is passed on only
 * when given, because load distinguishes "no env" from "env = nil". */
static int safe_load(lua_State *L) {
    if (lua_gettop(L) < 3) lua_settop(L, 3);
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    return call_original(L);
}

/* loadfile(name, mode, env) with mode forced to "t". */
static int safe_loadfile(lua_State *L) {
    if (lua_gettop(L) < 2) lua_settop(L, 2);
    lua_pushliteral(L, "t");
    lua_replace(L, 2);
    return call_original(L);
}

/* dofile(name): the text of a file, run; errors propagate as dofile's do. */
static int safe_dofile(lua_State *L) {
    const char *name = luaL_optstring(L, 1, NULL);
    lua_settop(L, 1);
    if (luaL_loadfilex(L, name, "t") != LUA_OK) return lua_error(L);
    lua_call(L, 0, LUA_MULTRET);
    return lua_gettop(L) - 1;
}

/* The Lua-file searcher of require, for source text only: finds the file along package.path
 * (package is upvalue 1) and loads it in text mode. */
static int safe_searcher(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    lua_getfield(L, lua_upvalueindex(1), "searchpath");
    lua_pushstring(L, name);
    lua_getfield(L, lua_upvalueindex(1), "path");
    if (!lua_isstring(L, -1)) return luaL_error(L, "package.path must be a string");
    lua_call(L, 2, 2);
    if (lua_isnil(L, -2)) return 1; /* the "no file ..." explanation */
    const char *file = lua_tostring(L, -2);
    if (luaL_loadfilex(L, file, "t") != LUA_OK)
        return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, file,
                          lua_tostring(L, -1));
    lua_pushstring(L, file);
    return 2;
}

/* io.open(path, mode): writing modes only inside the working directory. */
static int safe_io_open(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    const char *mode = luaL_optstring(L, 2, "r");
    if (strpbrk(mode, "wa+")) sw_lua_check_write_path(L, path, "io.open");
    return call_original(L);
}

/* io.output(path) opens the file for writing. */
static int safe_io_output(lua_State *L) {
    if (lua_type(L, 1) == LUA_TSTRING) sw_lua_check_write_path(L, lua_tostring(L, 1), "io.output");
    return call_original(L);
}

static int safe_os_remove(lua_State *L) {
    sw_lua_check_write_path(L, luaL_checkstring(L, 1), "os.remove");
    return call_original(L);
}

static int safe_os_rename(lua_State *L) {
    sw_lua_check_write_path(L, luaL_checkstring(L, 1), "os.rename");
    sw_lua_check_write_path(L, luaL_checkstring(L, 2), "os.rename");
    return call_original(L);
}

/* Applies safe mode to a state whose standard libraries are open. */
void sw_lua_sandbox(lua_State *L) {
    remove_field(L, "os", "execute");
    remove_field(L, "io", "popen");
    remove_field(L, "package", "loadlib");

    /* require: keep the preload searcher, replace the Lua-file one, drop the C ones. */
    lua_getglobal(L, "package");
    int package = lua_gettop(L);
    lua_pushliteral(L, "");
    lua_setfield(L, package, "cpath");
    lua_createtable(L, 2, 0);
    lua_getfield(L, package, "searchers");
    lua_rawgeti(L, -1, 1);
    lua_rawseti(L, -3, 1);
    lua_pop(L, 1);
    lua_pushvalue(L, package);
    lua_pushcclosure(L, safe_searcher, 1);
    lua_rawseti(L, -2, 2);
    lua_setfield(L, package, "searchers");
    lua_pop(L, 1);

    lua_pushglobaltable(L);
    wrap_field(L, -1, "load", safe_load);
    wrap_field(L, -1, "loadfile", safe_loadfile);
    lua_pushcfunction(L, safe_dofile);
    lua_setfield(L, -2, "dofile");
    lua_pop(L, 1);

    lua_getglobal(L, "io");
    wrap_field(L, -1, "open", safe_io_open);
    wrap_field(L, -1, "output", safe_io_output);
    lua_pop(L, 1);
    lua_getglobal(L, "os");
    wrap_field(L, -1, "remove", safe_os_remove);
    wrap_field(L, -1, "rename", safe_os_rename);
    lua_pop(L, 1);

    /* debug: only traceback remains, in the global and in package.loaded. */
    lua_createtable(L, 0, 1);
    lua_getglobal(L, "debug");
    lua_getfield(L, -1, "traceback");
    lua_setfield(L, -3, "traceback");
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_setglobal(L, "debug");
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_insert(L, -2);
    lua_setfield(L, -2, "debug");
    lua_pop(L, 1);
}
