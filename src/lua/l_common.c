/* l_common.c - helpers every file of the Lua binding uses: errors, option fields, types. */
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "binding.h"

sw_lua *sw_lua_ctx(lua_State *L) { return *(sw_lua **)lua_getextraspace(L); }

int sw_lua_raise(lua_State *L, const char *what) {
    const char *msg = sw_error_message();
    if (!*msg) msg = "unknown error";
    if (what)
        return luaL_error(L, "%s: %s", what, msg);
    return luaL_error(L, "%s", msg);
}

int sw_lua_fail(lua_State *L, const char *what) {
    const char *msg = sw_error_message();
    if (!*msg) msg = "unknown error";
    lua_pushnil(L);
    if (what)
        lua_pushfstring(L, "%s: %s", what, msg);
    else
        lua_pushstring(L, msg);
    return 2;
}

bool sw_lua_poll(void *ctx) {
    sw_lua *lua = ctx;
    if (!lua->opts.poll) return false;
    if (lua->opts.poll(lua->opts.poll_ctx)) lua->interrupted = true;
    return lua->interrupted;
}

/* True when `path` names something inside `cwd`: a relative path none of whose components is
 * "..", or an absolute path that starts with cwd followed by '/' and has no "..". Symbolic
 * links inside the working directory are trusted (the sandbox is against accidents and simple
 * mischief, not a jail). */
static bool path_inside(const char *path, const char *cwd) {
    if (!*path) return false;
    const char *rest = path;
    if (path[0] == '/') {
        size_t n = strlen(cwd);
        if (strncmp(path, cwd, n) != 0 || (path[n] != '/' && n > 1)) return false;
        rest = path + n;
    }
    /* Reject any ".." component. */
    for (const char *p = rest; *p;) {
        while (*p == '/') p++;
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.') return false;
        p += len;
    }
    return true;
}

void sw_lua_check_write_path(lua_State *L, const char *path, const char *what) {
    if (!sw_lua_ctx(L)->opts.safe) return;
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) cwd[0] = '\0';
    if (!cwd[0] || !path_inside(path, cwd))
        luaL_error(L, "%s: safe mode writes only inside the working directory, not to \"%s\"",
                   what, path);
}

void sw_lua_new_type(lua_State *L, const char *name, const luaL_Reg *meth,
                     const luaL_Reg *metameth) {
    luaL_newmetatable(L, name);
    luaL_setfuncs(L, metameth, 0);
    lua_getfield(L, -1, "__index");
    bool has_index = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (!has_index) {
        lua_newtable(L);
        luaL_setfuncs(L, meth, 0);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
}

lua_Integer sw_lua_opt_int_field(lua_State *L, int t, const char *key, lua_Integer dflt) {
    lua_Integer v = dflt;
    int type = lua_getfield(L, t, key);
    if (type != LUA_TNIL) {
        int ok = 0;
        v = lua_tointegerx(L, -1, &ok);
        if (!ok)
            luaL_error(L, "option \"%s\" must be an integer, got %s", key,
                       type == LUA_TNUMBER ? lua_tostring(L, -1) : luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    return v;
}

lua_Number sw_lua_opt_num_field(lua_State *L, int t, const char *key, lua_Number dflt) {
    lua_Number v = dflt;
    int type = lua_getfield(L, t, key);
    if (type != LUA_TNIL) {
        if (type != LUA_TNUMBER)
            luaL_error(L, "option \"%s\" must be a number, got %s", key, luaL_typename(L, -1));
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

int sw_lua_opt_bool_field(lua_State *L, int t, const char *key, int dflt) {
    int v = dflt;
    int type = lua_getfield(L, t, key);
    if (type != LUA_TNIL) {
        if (type != LUA_TBOOLEAN)
            luaL_error(L, "option \"%s\" must be true or false, got %s", key,
                       luaL_typename(L, -1));
        v = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

const char *sw_lua_opt_str_field(lua_State *L, int t, const char *key, const char *dflt) {
    const char *v = dflt;
    int type = lua_getfield(L, t, key);
    if (type != LUA_TNIL) {
        if (type != LUA_TSTRING)
            luaL_error(L, "option \"%s\" must be a string, got %s", key, luaL_typename(L, -1));
        v = lua_tostring(L, -1);
    }
    /* The string is anchored by the table, which the caller keeps on the stack. */
    lua_pop(L, 1);
    return v;
}

void sw_lua_check_keys(lua_State *L, int t, const char *const *known, const char *what) {
    t = lua_absindex(L, t);
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1); /* value */
        if (lua_type(L, -1) != LUA_TSTRING) continue; /* array part: the caller's business */
        const char *key = lua_tostring(L, -1);
        bool found = false;
        for (const char *const *k = known; *k && !found; k++) found = strcmp(*k, key) == 0;
        if (found) continue;
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (const char *const *k = known; *k; k++) {
            if (k != known) luaL_addstring(&b, ", ");
            luaL_addstring(&b, *k);
        }
        luaL_pushresult(&b);
        luaL_error(L, "%s: unknown key \"%s\" (known: %s)", what, key, lua_tostring(L, -1));
    }
}

void sw_lua_push_shape(lua_State *L, const sw_shape *shape) {
    lua_createtable(L, shape->ndim, 0);
    for (int d = 0; d < shape->ndim; d++) {
        lua_pushinteger(L, shape->dims[d]);
        lua_rawseti(L, -2, d + 1);
    }
}

/* ---- boxes: C objects owned by a userdata while Lua code that may raise runs ------------- */

#define SW_LUA_BOX "shrinkwrap.box"

typedef struct sw_lua_box {
    void *p;
    void (*free_fn)(void *);
} sw_lua_box;

static int box_gc(lua_State *L) {
    sw_lua_box *b = luaL_checkudata(L, 1, SW_LUA_BOX);
    if (b->p) b->free_fn(b->p);
    b->p = NULL;
    return 0;
}

void **sw_lua_push_box(lua_State *L, void (*free_fn)(void *)) {
    sw_lua_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->p = NULL;
    b->free_fn = free_fn;
    if (luaL_newmetatable(L, SW_LUA_BOX)) {
        lua_pushcfunction(L, box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return &b->p;
}

void sw_lua_box_free(lua_State *L, int idx) {
    sw_lua_box *b = luaL_checkudata(L, idx, SW_LUA_BOX);
    if (b->p) b->free_fn(b->p);
    b->p = NULL;
}
