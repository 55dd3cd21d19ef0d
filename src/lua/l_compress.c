/* l_compress.c - compression from Lua: the compressor userdata every pruner, quantizer and
 * distiller shares (compress, get_masks, unwrap_model, export, warnings, chains built with
 * from_compressor), the pruners under NNI's class names, masks as Lua tables and masks files,
 * and config lists written as Lua tables.
 *
 *   local pruner = sw.L1NormPruner(model, {{op_types = {"Conv2d"}, sparse_ratio = 0.5}})
 *   local distiller = sw.DynamicLayerwiseDistiller.from_compressor(pruner, cfg, teacher)
 *   distiller:compress(nil, 3)                     -- max_steps, max_epochs (nil = unset)
 *   local masks = pruner:get_masks()               -- masks.conv1.weight is a tensor
 *
 * Lifetimes. A compressor userdata owns its C compressor and keeps in user values everything
 * the C side borrows: the model (and a distiller's teacher), the evaluator, and the compressor
 * it was built on. Models and compressors count these borrowers ("holders"): closing a handle
 * that a holder still uses only closes the handle, and the last holder frees the C object, so
 * no C pointer ever dangles whatever the order of collection. The model userdata owns the
 * model's wrapper set (one per model, as NNI has one wrapper per module), which every
 * compressor built on the model shares. A compressor collected while its model is being
 * trained is finalised again in a later cycle: freeing it would remove transforms in the middle
 * of a training step.
 *
 * Config lists are Lua tables with NNI's keys ({{op_types = {"Conv2d"}, sparse_ratio = 0.5}}),
 * converted to the cJSON the C side reads; sw.null stands for JSON null. The C side numbers
 * config entries from 0 as Python does; messages are renumbered to Lua's 1-based positions,
 * so `config_list[2]` in an error is the second entry of the recipe's table.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../compress/masks_io.h"
#include "../compress/pruning/pruners.h"
#include "../compress/pruning/trained_pruners.h"
#include "../speedup/mask_set.h"
#include "binding.h"

/* Config values nest a few levels (list, entry, target_settings, setting, list); deeper means
 * a table that contains itself. */
#define MAX_JSON_DEPTH 32

/* sw.null: its address is the value. */
static const char null_sentinel = 0;

static bool is_null(lua_State *L, int idx) {
    return lua_islightuserdata(L, idx) && lua_touserdata(L, idx) == (void *)&null_sentinel;
}

/* ---- Lua <-> JSON ------------------------------------------------------------------------- */

void sw_lua_push_json(lua_State *L, const cJSON *v) {
    luaL_checkstack(L, 3, "JSON value nested too deeply");
    if (cJSON_IsNull(v)) {
        lua_pushlightuserdata(L, (void *)&null_sentinel);
    } else if (cJSON_IsBool(v)) {
        lua_pushboolean(L, cJSON_IsTrue(v));
    } else if (cJSON_IsNumber(v)) {
        /* Shapes, bits and counts read back as integers; exactly integral values only. */
        double d = v->valuedouble;
        if (d == floor(d) && fabs(d) < 9007199254740992.0)
            lua_pushinteger(L, (lua_Integer)d);
        else
            lua_pushnumber(L, d);
    } else if (cJSON_IsString(v)) {
        lua_pushstring(L, v->valuestring);
    } else if (cJSON_IsArray(v)) {
        lua_createtable(L, cJSON_GetArraySize(v), 0);
        lua_Integer i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, v) {
            sw_lua_push_json(L, it);
            lua_rawseti(L, -2, ++i);
        }
    } else if (cJSON_IsObject(v)) {
        lua_newtable(L);
        const cJSON *it;
        cJSON_ArrayForEach(it, v) {
            sw_lua_push_json(L, it);
            lua_setfield(L, -2, it->string);
        }
    } else {
        lua_pushnil(L);
    }
}

static void json_free(void *p) { cJSON_Delete(p); }

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The string keys of the table at t, sorted (so conversions and files do not depend on the
 * order of `pairs`), in an array owned by a userdata pushed on the stack; the strings are
 * anchored by the table. Raises naming `path` for a key that is not a string. */
static const char **sorted_keys(lua_State *L, int t, const char *path, int *n_out) {
    t = lua_absindex(L, t);
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s: key %s is not a name (a string)", path, luaL_tolstring(L, -1, NULL));
        n++;
    }
    const char **keys = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *keys, 0);
    int i = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        keys[i++] = lua_tostring(L, -1);
    }
    qsort(keys, (size_t)n, sizeof *keys, compare_strings);
    *n_out = n;
    return keys;
}

/* How a table converts: an array (keys 1..n), an object (string keys), or an error. */
static bool table_is_array(lua_State *L, int t, const char *path) {
    lua_Integer len = (lua_Integer)lua_rawlen(L, t);
    lua_Integer positions = 0, names = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            names++;
        } else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1 &&
                   lua_tointeger(L, -1) <= len) {
            positions++;
        } else if (lua_isinteger(L, -1)) {
            luaL_error(L, "%s: an array with holes (item %I of %I)", path, lua_tointeger(L, -1),
                       len);
        } else {
            luaL_error(L, "%s: a table of named keys or an array 1..n, not one keyed by a %s",
                       path, luaL_typename(L, -1));
        }
    }
    if (names && positions)
        luaL_error(L, "%s: a table cannot mix array items and named keys", path);
    if (positions != len) luaL_error(L, "%s: an array with holes", path);
    return names == 0;
}

/* Converts the value at idx into a new cJSON attached to `parent` (under `key` for objects),
 * before its children are converted: a raise anywhere leaves the whole tree owned by the
 * root's box. `key` is also what decides how an empty table converts (below). */
static void to_json(lua_State *L, int idx, cJSON *parent, const char *key, const char *path,
                    const char *parent_key, int depth) {
    idx = lua_absindex(L, idx);
    if (depth > MAX_JSON_DEPTH)
        luaL_error(L, "%s: nested too deeply (a table that contains itself?)", path);
    luaL_checkstack(L, 6, path);
    cJSON *item = NULL;
    bool container = false, array = false;
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
        item = cJSON_CreateBool(lua_toboolean(L, idx));
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            item = cJSON_CreateNumber((double)lua_tointeger(L, idx));
        } else {
            double d = lua_tonumber(L, idx);
            if (!isfinite(d)) luaL_error(L, "%s: %f is not a number JSON can hold", path, d);
            item = cJSON_CreateNumber(d);
        }
        break;
    case LUA_TSTRING:
        item = cJSON_CreateString(lua_tostring(L, idx));
        break;
    case LUA_TLIGHTUSERDATA:
        if (!is_null(L, idx)) goto bad_type;
        item = cJSON_CreateNull();
        break;
    case LUA_TTABLE:
        container = true;
        array = table_is_array(L, idx, path);
        /* An empty table is an empty list, except where NNI's keys hold objects: the value
         * of target_settings and the settings inside it. */
        if (array && lua_rawlen(L, idx) == 0 &&
            ((key && strcmp(key, "target_settings") == 0) ||
             (parent_key && strcmp(parent_key, "target_settings") == 0)))
            array = false;
        item = array ? cJSON_CreateArray() : cJSON_CreateObject();
        break;
    default:
    bad_type:
        luaL_error(L, "%s: a %s cannot be a config value (strings, numbers, booleans, tables "
                   "and sw.null can)", path, luaL_typename(L, idx));
    }
    if (!item) luaL_error(L, "%s: out of memory", path);
    if (cJSON_IsArray(parent))
        cJSON_AddItemToArray(parent, item);
    else
        cJSON_AddItemToObject(parent, key, item);
    if (!container) return;
    if (array) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
        for (lua_Integer i = 1; i <= n; i++) {
            const char *child = lua_pushfstring(L, "%s[%I]", path, i);
            lua_rawgeti(L, idx, i);
            to_json(L, -1, item, NULL, child, key, depth + 1);
            lua_pop(L, 2);
        }
        return;
    }
    int n = 0;
    const char **keys = sorted_keys(L, idx, path, &n);
    for (int i = 0; i < n; i++) {
        const char *child = lua_pushfstring(L, "%s.%s", path, keys[i]);
        lua_getfield(L, idx, keys[i]);
        to_json(L, -1, item, keys[i], child, key, depth + 1);
        lua_pop(L, 2);
    }
    lua_pop(L, 1); /* the keys */
}

cJSON *sw_lua_to_json(lua_State *L, int idx, const char *path, bool empty_object) {
    idx = lua_absindex(L, idx);
    void **slot = sw_lua_push_box(L, json_free);
    /* A holder array owns the tree while it is built; the value is detached from it at the
     * end, so the root need not know its own kind before its children are converted. */
    cJSON *holder = cJSON_CreateArray();
    if (!holder) luaL_error(L, "%s: out of memory", path);
    *slot = holder;
    to_json(L, idx, holder, NULL, path, empty_object ? "target_settings" : NULL, 0);
    cJSON *root = cJSON_DetachItemFromArray(holder, 0);
    cJSON_Delete(holder);
    *slot = root;
    return root;
}

/* ---- messages ----------------------------------------------------------------------------- */

const char *sw_lua_push_renumbered(lua_State *L, const char *msg) {
    static const char key[] = "config_list[";
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    const char *p = msg;
    for (;;) {
        const char *hit = strstr(p, key);
        if (!hit) {
            luaL_addstring(&b, p);
            break;
        }
        hit += sizeof key - 1;
        luaL_addlstring(&b, p, (size_t)(hit - p));
        p = hit;
        if (!isdigit((unsigned char)*hit)) continue;
        char *end = NULL;
        long v = strtol(hit, &end, 10);
        if (*end != ']') continue;
        char num[24];
        snprintf(num, sizeof num, "%ld", v + 1);
        luaL_addstring(&b, num);
        p = end;
    }
    luaL_pushresult(&b);
    return lua_tostring(L, -1);
}

int sw_lua_raise_config(lua_State *L, const char *what) {
    const char *msg = sw_error_message();
    if (!*msg) msg = "unknown error";
    msg = sw_lua_push_renumbered(L, msg);
    if (what) return luaL_error(L, "%s: %s", what, msg);
    return luaL_error(L, "%s", msg);
}

/* ---- masks -------------------------------------------------------------------------------- */

void sw_lua_push_masks(lua_State *L, const sw_masks *m) {
    lua_newtable(L);
    for (int i = 0; i < m->n; i++) {
        const sw_masks_entry *e = &m->items[i];
        if (lua_getfield(L, -1, e->module) != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -1);
            lua_setfield(L, -3, e->module);
        }
        sw_lua_push_tensor_copy(L, &e->mask);
        lua_setfield(L, -2, e->target);
        lua_pop(L, 1);
    }
}

static void masks_free(void *p) {
    sw_masks_deinit(p);
    free(p);
}

/* A new, empty sw_masks owned by a box pushed on the stack. */
static sw_masks *push_masks_box(lua_State *L) {
    void **slot = sw_lua_push_box(L, masks_free);
    sw_masks *m = malloc(sizeof *m);
    if (!m) luaL_error(L, "out of memory");
    sw_masks_init(m);
    *slot = m;
    return m;
}

/* Reads the masks table at idx ({module = {target = tensor}}) into an sw_masks owned by a box
 * pushed on the stack. Every value must be 0 or 1. */
static sw_masks *read_masks(lua_State *L, int idx, const char *what) {
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx))
        luaL_error(L, "%s: masks must be a table {module = {target = tensor}} or a compressor, "
                   "got %s", what, luaL_typename(L, idx));
    sw_masks *m = push_masks_box(L);
    int n_modules = 0;
    const char **modules = sorted_keys(L, idx, "masks", &n_modules);
    for (int i = 0; i < n_modules; i++) {
        if (lua_getfield(L, idx, modules[i]) != LUA_TTABLE)
            luaL_error(L, "%s: masks[\"%s\"] must be a table {target = tensor}, got %s", what,
                       modules[i], luaL_typename(L, -1));
        int mt = lua_gettop(L);
        int n_targets = 0;
        const char **targets = sorted_keys(L, mt, modules[i], &n_targets);
        for (int j = 0; j < n_targets; j++) {
            lua_getfield(L, mt, targets[j]);
            sw_tensor *t = sw_lua_test_tensor(L, -1);
            if (!t)
                luaL_error(L, "%s: masks[\"%s\"].%s must be a tensor, got %s", what, modules[i],
                           targets[j], luaL_typename(L, -1));
            if (strlen(targets[j]) >= SW_TARGET_NAME_MAX)
                luaL_error(L, "%s: masks[\"%s\"]: \"%s\" is not a target name (weight, bias, "
                           "_input_0, _output_0, ...)", what, modules[i], targets[j]);
            for (size_t k = 0; k < t->numel; k++)
                if (t->data[k] != 0.0f && t->data[k] != 1.0f)
                    luaL_error(L, "%s: masks[\"%s\"].%s holds %f at flat position %d; masks are "
                               "0 or 1", what, modules[i], targets[j], (double)t->data[k],
                               (int)k + 1);
            if (sw_masks_add(m, modules[i], targets[j], t) != SW_OK) sw_lua_raise(L, what);
            lua_pop(L, 1);
        }
        lua_pop(L, 2); /* the targets' keys, the module's table */
    }
    lua_pop(L, 1); /* the modules' keys: the box is on top again */
    return m;
}

/* The masks at idx, a masks table or a compressor (its chain's masks), as an sw_masks owned by
 * a box pushed on the stack. */
static sw_masks *check_masks(lua_State *L, int idx, const char *what) {
    sw_lua_compressor *cu = sw_lua_test_compressor(L, idx);
    if (!cu) return read_masks(L, idx, what);
    sw_lua_check_compressor(L, idx);
    sw_masks *m = push_masks_box(L);
    if (sw_pruner_get_masks(cu->c, m) != SW_OK) sw_lua_raise(L, what);
    return m;
}

static void mask_set_free(void *p) { sw_mask_set_free(p); }

sw_mask_set *sw_lua_check_mask_set(lua_State *L, int idx, const char *what) {
    idx = lua_absindex(L, idx);
    sw_masks *m = check_masks(L, idx, what);
    int box = lua_gettop(L);
    void **slot = sw_lua_push_box(L, mask_set_free);
    sw_mask_set *ms = NULL;
    if (sw_mask_set_from_masks(m, &ms) != SW_OK) sw_lua_raise(L, what);
    *slot = ms;
    sw_lua_box_free(L, box);
    lua_remove(L, box);
    return ms;
}

/* sw.save_masks(masks_or_compressor, path [, metadata]) -> true | nil, message.
 * A masks file: safetensors, one tensor per "module.target"; metadata: {key = string|number}. */
static int l_save_masks(lua_State *L) {
    const char *path = luaL_checkstring(L, 2);
    sw_lua_check_write_path(L, path, "sw.save_masks");
    lua_settop(L, 3);
    enum { MAX_META = 32 };
    const char *meta[2 * MAX_META + 1];
    int n_meta = 0;
    if (!lua_isnil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        int n = 0;
        const char **keys = sorted_keys(L, 3, "metadata", &n); /* 4 */
        if (n > MAX_META) return luaL_error(L, "sw.save_masks: at most %d metadata entries",
                                            MAX_META);
        for (int i = 0; i < n; i++) {
            lua_getfield(L, 3, keys[i]);
            if (!lua_isstring(L, -1))
                return luaL_error(L, "sw.save_masks: metadata \"%s\" must be a string or a number",
                                  keys[i]);
            meta[2 * n_meta] = keys[i];
            meta[2 * n_meta + 1] = lua_tostring(L, -1); /* stays on the stack */
            n_meta++;
        }
    }
    meta[2 * n_meta] = NULL;
    sw_masks *m = check_masks(L, 1, "sw.save_masks");
    if (sw_masks_save(m, path, n_meta ? meta : NULL) != SW_OK) return sw_lua_fail(L, path);
    lua_pushboolean(L, 1);
    return 1;
}

/* sw.load_masks(path) -> {module = {target = tensor}} | nil, message */
static int l_load_masks(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    sw_masks *m = push_masks_box(L);
    if (sw_masks_load(path, m) != SW_OK) return sw_lua_fail(L, path);
    sw_lua_push_masks(L, m);
    return 1;
}

/* ---- the compressor userdata -------------------------------------------------------------- */

sw_lua_compressor *sw_lua_test_compressor(lua_State *L, int idx) {
    return luaL_testudata(L, idx, SW_LUA_COMPRESSOR);
}

sw_lua_compressor *sw_lua_check_compressor(lua_State *L, int idx) {
    sw_lua_compressor *u = luaL_checkudata(L, idx, SW_LUA_COMPRESSOR);
    if (!u->c || u->closed) luaL_error(L, "the compressor has been freed (closed or collected)");
    return u;
}

/* The model userdata a compressor holds (its user value; pushed). */
static sw_lua_model *push_model_of(lua_State *L, int idx) {
    lua_getiuservalue(L, idx, SW_LUA_CUV_MODEL);
    return lua_touserdata(L, -1);
}

/* Frees the C compressor, then lets go of what it held: its model and teacher (freed if their
 * handles were closed meanwhile) and the compressor it was built on (freed if this was its
 * last holder and its handle was closed). Runs in finalisers: nothing here raises. */
static void free_compressor(lua_State *L, int idx, sw_lua_compressor *u) {
    idx = lua_absindex(L, idx);
    sw_compressor_free(u->c);
    u->c = NULL;
    sw_lua_ctx(L)->live_objects--;
    free(u->cb_error);
    u->cb_error = NULL;
    if (!lua_checkstack(L, 2)) return; /* out of memory: the borrowed objects leak, safely */
    sw_lua_model_release(L, push_model_of(L, idx));
    lua_pop(L, 1);
    if (lua_getiuservalue(L, idx, SW_LUA_CUV_TEACHER) == LUA_TUSERDATA)
        sw_lua_model_release(L, lua_touserdata(L, -1));
    lua_pop(L, 1);
    if (lua_getiuservalue(L, idx, SW_LUA_CUV_PREVIOUS) == LUA_TUSERDATA) {
        sw_lua_compressor *p = lua_touserdata(L, -1);
        if (--p->holders == 0 && p->closed && p->c) free_compressor(L, -1, p);
    }
    lua_pop(L, 1);
}

/* __gc and __close. */
static int c_gc(lua_State *L) {
    sw_lua_compressor *u = luaL_checkudata(L, 1, SW_LUA_COMPRESSOR);
    if (!u->c) return 0;
    lua_settop(L, 1);
    u->closed = true;
    sw_lua_model *mu = push_model_of(L, 1);
    lua_pop(L, 1);
    if (mu->busy) {
        /* The model is in a training step: removing transforms now would pull state out from
         * under it. Setting the metatable again marks the object for finalisation once more,
         * so the collector calls this again in a later cycle. */
        luaL_setmetatable(L, SW_LUA_COMPRESSOR);
        return 0;
    }
    if (u->holders > 0) return 0; /* a newer compressor of the chain frees it */
    free_compressor(L, 1, u);
    return 0;
}

static int c_tostring(lua_State *L) {
    sw_lua_compressor *u = luaL_checkudata(L, 1, SW_LUA_COMPRESSOR);
    if (!u->c || u->closed) {
        lua_pushliteral(L, "compressor (freed)");
        return 1;
    }
    const sw_compressor *c = u->c;
    int n = sw_compressor_chain_length(c);
    lua_pushfstring(L, "%s on %s", c->ops->name, c->model->arch);
    if (n > 1) lua_pushfstring(L, " (newest of a chain of %d)", n);
    else lua_pushliteral(L, "");
    lua_pushstring(L, sw_compressor_is_detached(c) ? " (unwrapped)" : "");
    lua_concat(L, 3);
    return 1;
}

/* ---- construction ------------------------------------------------------------------------- */

lua_Number sw_lua_arg_number(lua_State *L, int idx, const char *cls, const char *name,
                             lua_Number dflt) {
    if (lua_isnoneornil(L, idx)) return dflt;
    if (lua_type(L, idx) != LUA_TNUMBER)
        luaL_error(L, "%s: %s (argument %d) must be a number, got %s", cls, name, idx,
                   luaL_typename(L, idx));
    return lua_tonumber(L, idx);
}

lua_Integer sw_lua_arg_integer(lua_State *L, int idx, const char *cls, const char *name,
                               lua_Integer dflt, bool required) {
    if (lua_isnoneornil(L, idx)) {
        if (required) luaL_error(L, "%s: %s (argument %d) is required", cls, name, idx);
        return dflt;
    }
    if (!lua_isinteger(L, idx))
        luaL_error(L, "%s: %s (argument %d) must be an integer, got %s", cls, name, idx,
                   lua_type(L, idx) == LUA_TNUMBER ? lua_tostring(L, idx) : luaL_typename(L, idx));
    return lua_tointeger(L, idx);
}

/* The model's wrapper set, created with the first compressor built on it. */
static sw_wrapper_set *model_wrappers(lua_State *L, sw_lua_model *mu, const char *what) {
    if (!mu->ws && sw_wrapper_set_new(mu->m, &mu->ws) != SW_OK) sw_lua_raise(L, what);
    return mu->ws;
}

/* The config list at idx: a Lua array of entries, or JSON text. Owned by a box pushed on the
 * stack. */
static const cJSON *check_config(lua_State *L, int idx, const char *what) {
    if (lua_type(L, idx) == LUA_TSTRING) {
        void **slot = sw_lua_push_box(L, json_free);
        cJSON *cfg = NULL;
        if (sw_config_list_parse(lua_tostring(L, idx), &cfg) != SW_OK)
            sw_lua_raise(L, what);
        *slot = cfg;
        return cfg;
    }
    if (!lua_istable(L, idx))
        luaL_error(L, "%s: config_list (argument 2) must be a table such as "
                   "{{op_types = {\"Conv2d\"}, sparse_ratio = 0.5}}, got %s", what,
                   luaL_typename(L, idx));
    lua_pushnil(L);
    bool named = false;
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        named = named || lua_type(L, -1) == LUA_TSTRING;
    }
    if (named)
        luaL_error(L, "%s: config_list must be a list of entries, {{...}, {...}}; this looks "
                   "like a single entry (wrap it in braces)", what);
    lua_pushfstring(L, "%s: config_list", what);
    const cJSON *cfg = sw_lua_to_json(L, idx, lua_tostring(L, -1), false);
    lua_remove(L, -2);
    return cfg;
}

/* The generic constructor behind sw.<Name>(...) and sw.<Name>.from_compressor(...); the
 * class table has been removed from the arguments. */
static int construct(lua_State *L, const sw_lua_class *cls, bool from) {
    char what[96];
    snprintf(what, sizeof what, "%s%s", cls->name, from ? ".from_compressor" : "");
    bool on_model = !from && !cls->on_pruner;
    int first = on_model ? 4 : (cls->on_pruner ? 2 : 3);
    int ev_idx = on_model ? 3 : first + cls->n_args;
    int top = first + cls->n_args - 1 > ev_idx ? first + cls->n_args - 1 : ev_idx;
    if (lua_gettop(L) > top)
        return luaL_error(L, "%s: at most %d arguments, got %d", what, top, lua_gettop(L));
    lua_settop(L, top);

    sw_lua_build_args a = {0};
    a.from = from;
    a.args = first;
    sw_lua_compressor *prev = NULL;
    int model_idx = 1;
    if (on_model) {
        if (!luaL_testudata(L, 1, SW_LUA_MODEL))
            return luaL_error(L, "%s: argument 1 must be a model, got %s", what,
                              luaL_typename(L, 1));
        sw_lua_check_model(L, 1);
    } else {
        if (!sw_lua_test_compressor(L, 1))
            return luaL_error(L, "%s: argument 1 must be the %s to build on, got %s", what,
                              cls->on_pruner ? "pruner" : "compressor", luaL_typename(L, 1));
        prev = sw_lua_check_compressor(L, 1);
        push_model_of(L, 1);
        model_idx = lua_gettop(L);
    }
    sw_lua_model *mu = lua_touserdata(L, model_idx);
    sw_lua_model_check_idle(L, mu, what);
    if (!lua_isnil(L, ev_idx)) {
        if (cls->no_evaluator) return luaL_error(L, "%s takes no evaluator", what);
        if (!luaL_testudata(L, ev_idx, SW_LUA_EVALUATOR))
            return luaL_error(L, "%s: the evaluator (argument %d) must be an sw.Evaluator, got %s",
                              what, ev_idx, luaL_typename(L, ev_idx));
        a.ev = sw_lua_check_evaluator(L, ev_idx);
    }
    sw_lua_model *teacher = NULL;
    if (cls->teacher) {
        if (!luaL_testudata(L, first, SW_LUA_MODEL))
            return luaL_error(L, "%s: teacher_model (argument %d) must be a model, got %s", what,
                              first, luaL_typename(L, first));
        teacher = sw_lua_check_model(L, first);
        a.teacher = teacher->m;
        if (!lua_isnil(L, first + 1) && !lua_isfunction(L, first + 1))
            return luaL_error(L, "%s: teacher_predict (argument %d) must be a function "
                              "(batch, teacher) or nil, got %s", what, first + 1,
                              luaL_typename(L, first + 1));
        a.lua_predict = lua_isfunction(L, first + 1);
    }
    if (cls->masks)
        a.masks = check_masks(L, 2, what);
    else if (!cls->on_pruner)
        a.config = check_config(L, 2, what);
    int config_box = cls->on_pruner ? 0 : lua_gettop(L);

    /* The userdata exists, consistent (c = NULL), before the C object. */
    sw_lua_compressor *u = lua_newuserdatauv(L, sizeof *u, SW_LUA_CUV_COUNT);
    memset(u, 0, sizeof *u);
    luaL_setmetatable(L, SW_LUA_COMPRESSOR);
    int self = lua_gettop(L);
    lua_pushvalue(L, model_idx);
    lua_setiuservalue(L, self, SW_LUA_CUV_MODEL);
    if (prev) {
        lua_pushvalue(L, 1);
        lua_setiuservalue(L, self, SW_LUA_CUV_PREVIOUS);
    }
    if (teacher) {
        lua_pushvalue(L, first);
        lua_setiuservalue(L, self, SW_LUA_CUV_TEACHER);
        lua_pushvalue(L, first + 1);
        lua_setiuservalue(L, self, SW_LUA_CUV_PREDICT);
    }
    if (on_model) a.ws = model_wrappers(L, mu, what);
    a.previous = prev ? prev->c : NULL;
    a.self = u;
    luaL_checkstack(L, 4, what);

    sw_compressor *c = NULL;
    if (cls->build(L, &a, &c) != SW_OK) {
        /* Most messages name the class already ("L1NormPruner.from_compressor: ..."). */
        bool named = strncmp(sw_error_message(), cls->name, strlen(cls->name)) == 0;
        return sw_lua_raise_config(L, named ? NULL : what);
    }

    /* Adopt: nothing below raises. */
    u->c = c;
    sw_lua_ctx(L)->live_objects++;
    sw_lua_model_hold(mu);
    if (teacher) sw_lua_model_hold(teacher);
    if (prev) prev->holders++;
    /* The evaluator the C compressor uses: the one given, or the previous compressor's. */
    if (c->ev && a.ev && c->ev == a.ev) {
        lua_pushvalue(L, ev_idx);
        lua_setiuservalue(L, self, SW_LUA_CUV_EVAL);
    } else if (c->ev && prev) {
        lua_getiuservalue(L, 1, SW_LUA_CUV_EVAL);
        lua_setiuservalue(L, self, SW_LUA_CUV_EVAL);
    }
    if (config_box) sw_lua_box_free(L, config_box);
    lua_pushvalue(L, self);
    return 1;
}

/* sw.<Name>(...): __call of the class table (argument 1). */
static int l_class_call(lua_State *L) {
    const sw_lua_class *cls = lua_touserdata(L, lua_upvalueindex(1));
    lua_remove(L, 1);
    return construct(L, cls, false);
}

/* sw.<Name>.from_compressor(previous, ...) */
static int l_class_from(lua_State *L) {
    const sw_lua_class *cls = lua_touserdata(L, lua_upvalueindex(1));
    return construct(L, cls, true);
}

static int l_class_tostring(lua_State *L) {
    const sw_lua_class *cls = lua_touserdata(L, lua_upvalueindex(1));
    lua_pushfstring(L, "class %s", cls->name);
    return 1;
}

void sw_lua_register_compressor_class(lua_State *L, const sw_lua_class *cls) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, cls->name);
    lua_setfield(L, -2, "name");
    lua_pushlightuserdata(L, (void *)cls);
    lua_pushcclosure(L, l_class_from, 1);
    lua_setfield(L, -2, "from_compressor");
    lua_createtable(L, 0, 2);
    lua_pushlightuserdata(L, (void *)cls);
    lua_pushcclosure(L, l_class_call, 1);
    lua_setfield(L, -2, "__call");
    lua_pushlightuserdata(L, (void *)cls);
    lua_pushcclosure(L, l_class_tostring, 1);
    lua_setfield(L, -2, "__tostring");
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, cls->name);
}

void sw_lua_add_compressor_methods(lua_State *L, const luaL_Reg *methods) {
    luaL_getmetatable(L, SW_LUA_COMPRESSOR);
    lua_getfield(L, -1, "__index");
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 2);
}

/* ---- methods shared by every compressor --------------------------------------------------- */

static long opt_limit(lua_State *L, int idx, const char *name) {
    if (lua_isnoneornil(L, idx)) return -1;
    lua_Integer v = luaL_checkinteger(L, idx);
    if (v < 0 || v > INT32_MAX)
        luaL_error(L, "compress: %s must be >= 0 (or nil for unset), got %I", name, v);
    return (long)v;
}

/* Pushes the Lua teacher_predict function and the teacher of every distiller in the chain
 * ending at idx that has one, newest first; returns how many pairs. */
static int push_chain_callbacks(lua_State *L, int idx) {
    int n = 0;
    lua_pushvalue(L, idx);
    for (;;) {
        luaL_checkstack(L, 4, "compress");
        if (lua_getiuservalue(L, -1, SW_LUA_CUV_PREDICT) == LUA_TFUNCTION) {
            lua_getiuservalue(L, -2, SW_LUA_CUV_TEACHER);
            lua_rotate(L, -3, 2); /* member on top again */
            n++;
        } else {
            lua_pop(L, 1);
        }
        if (lua_getiuservalue(L, -1, SW_LUA_CUV_PREVIOUS) != LUA_TUSERDATA) {
            lua_pop(L, 2);
            return n;
        }
        lua_remove(L, -2);
    }
}

/* Walks the chain ending at idx in the order of push_chain_callbacks and points each Lua
 * teacher_predict at its slots (run != NULL) or detaches it (run == NULL). Needs 3 free stack
 * slots; never raises. */
static void set_chain_run(lua_State *L, int idx, lua_State *run, int base) {
    int k = 0;
    lua_pushvalue(L, idx);
    for (;;) {
        sw_lua_compressor *m = lua_touserdata(L, -1);
        int type = lua_getiuservalue(L, -1, SW_LUA_CUV_PREDICT);
        lua_pop(L, 1);
        if (type == LUA_TFUNCTION) {
            m->run_L = run;
            m->predict_slot = base + 2 * k;
            m->teacher_slot = base + 2 * k + 1;
            k++;
        }
        if (lua_getiuservalue(L, -1, SW_LUA_CUV_PREVIOUS) != LUA_TUSERDATA) {
            lua_pop(L, 2);
            return;
        }
        lua_remove(L, -2);
    }
}

/* Takes the first error a Lua teacher_predict of the chain raised (pushed as a string, or
 * nothing pushed and false) and forgets the others. */
static bool take_chain_error(lua_State *L, int idx) {
    bool found = false;
    lua_pushvalue(L, idx);
    for (;;) {
        sw_lua_compressor *m = lua_touserdata(L, -1);
        if (m->cb_error) {
            if (!found) {
                lua_pushstring(L, m->cb_error);
                lua_insert(L, -2);
                found = true;
            }
            free(m->cb_error);
            m->cb_error = NULL;
        }
        if (lua_getiuservalue(L, -1, SW_LUA_CUV_PREVIOUS) != LUA_TUSERDATA) {
            lua_pop(L, 2);
            return found;
        }
        lua_remove(L, -2);
    }
}

/* compressor:compress(max_steps, max_epochs) -> model, masks (pruners) | model, calibration
 * (quantizers) | model (distillers). nil = unset; a chain compresses as one (NNI's fused
 * compress); one-shot pruners alone take neither limit. */
static int c_compress(lua_State *L) {
    sw_lua_compressor *u = sw_lua_check_compressor(L, 1);
    long max_steps = opt_limit(L, 2, "max_steps");
    long max_epochs = opt_limit(L, 3, "max_epochs");
    lua_settop(L, 1);
    sw_lua_model *mu = push_model_of(L, 1); /* 2 */
    sw_lua_model_check_idle(L, mu, "compress");
    int ev_idx = 0;
    if (lua_getiuservalue(L, 1, SW_LUA_CUV_EVAL) == LUA_TUSERDATA) ev_idx = 3;
    int base = lua_gettop(L) + 1;
    push_chain_callbacks(L, 1);
    luaL_checkstack(L, 6, "compress"); /* begin_run's 2, set_chain_run's 3 */
    if (ev_idx) sw_lua_evaluator_begin_run(L, ev_idx, mu->m, "compress");
    /* From here to the end of the run nothing raises, so the marks always come off. */
    set_chain_run(L, 1, L, base);
    mu->busy++;
    sw_status st = sw_compressor_compress(u->c, max_steps, (int)max_epochs);
    mu->busy--;
    set_chain_run(L, 1, NULL, 0);
    if (ev_idx) sw_lua_evaluator_end_run(L, ev_idx);
    if (take_chain_error(L, 1)) return luaL_error(L, "compress: %s", lua_tostring(L, -1));
    if (ev_idx)
        sw_lua_evaluator_raise_outcome(L, ev_idx, st == SW_ERR_INTERRUPTED ? st : SW_OK,
                                       "compress");
    if (st != SW_OK) return sw_lua_raise_config(L, "compress");

    lua_pushvalue(L, 2);
    switch (u->c->ops->mode) {
    case SW_MODE_PRUNING: {
        sw_masks *m = push_masks_box(L);
        if (sw_pruner_get_masks(u->c, m) != SW_OK) return sw_lua_raise(L, "compress");
        sw_lua_push_masks(L, m);
        lua_remove(L, -2);
        return 2;
    }
    case SW_MODE_QUANTIZATION:
        lua_getfield(L, 1, "get_calibration_config");
        lua_pushvalue(L, 1);
        lua_call(L, 1, 1);
        return 2;
    default:
        return 1;
    }
}

/* compressor:get_masks() -> {module = {target = tensor}}: the masks of every pruner of the
 * chain (NNI: of every pruning target of the shared wrappers). */
static int c_get_masks(lua_State *L) {
    sw_lua_compressor *u = sw_lua_check_compressor(L, 1);
    sw_masks *m = push_masks_box(L);
    if (sw_pruner_get_masks(u->c, m) != SW_OK) return sw_lua_raise(L, "get_masks");
    sw_lua_push_masks(L, m);
    return 1;
}

/* compressor:unwrap_model() -> model. Bakes every mask into the weights and removes every
 * compressor's transforms from the model: the whole chain is detached afterwards. */
static int c_unwrap_model(lua_State *L) {
    sw_lua_compressor *u = sw_lua_check_compressor(L, 1);
    sw_lua_model *mu = push_model_of(L, 1);
    sw_lua_model_check_idle(L, mu, "unwrap_model");
    if (sw_compressor_unwrap_model(u->c) != SW_OK) return sw_lua_raise(L, "unwrap_model");
    return 1;
}

/* compressor:warnings() -> array of messages (config entries that select nothing, targets
 * configured twice, an evaluator given twice, masks unwrap could not bake). */
static int c_warnings(lua_State *L) {
    sw_lua_compressor *u = sw_lua_check_compressor(L, 1);
    const sw_warnings *w = sw_compressor_warnings(u->c);
    int n = sw_warnings_count(w);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        sw_lua_push_renumbered(L, sw_warnings_get(w, i));
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* compressor:export(path) -> true | nil, message: pruners write their chain's masks file,
 * quantizers their calibration (JSON). */
static int c_export(lua_State *L) {
    sw_lua_compressor *u = sw_lua_check_compressor(L, 1);
    const char *path = luaL_checkstring(L, 2);
    sw_lua_check_write_path(L, path, "export");
    sw_status st = sw_compressor_export(u->c, path);
    if (st == SW_ERR_UNSUPPORTED) return sw_lua_raise(L, "export");
    if (st != SW_OK) return sw_lua_fail(L, path);
    lua_pushboolean(L, 1);
    return 1;
}

/* compressor:fused_compressors() -> array, newest first (NNI's fused_compressors). */
static int c_fused_compressors(lua_State *L) {
    sw_lua_check_compressor(L, 1);
    lua_settop(L, 1);
    lua_newtable(L); /* 2 */
    lua_pushvalue(L, 1);
    for (lua_Integer i = 1;; i++) {
        lua_pushvalue(L, -1);
        lua_rawseti(L, 2, i);
        if (lua_getiuservalue(L, -1, SW_LUA_CUV_PREVIOUS) != LUA_TUSERDATA) break;
        lua_remove(L, -2);
    }
    lua_settop(L, 2);
    return 1;
}

static int c_is_detached(lua_State *L) {
    lua_pushboolean(L, sw_compressor_is_detached(sw_lua_check_compressor(L, 1)->c));
    return 1;
}

/* compressor:name() -> NNI's class name */
static int c_name(lua_State *L) {
    lua_pushstring(L, sw_lua_check_compressor(L, 1)->c->ops->name);
    return 1;
}

/* compressor:model() -> the model it compresses */
static int c_model(lua_State *L) {
    sw_lua_check_compressor(L, 1);
    push_model_of(L, 1);
    return 1;
}

/* ---- pruners ------------------------------------------------------------------------------ */

#define ONE_SHOT_BUILD(fn, algo)                                                              \
    static sw_status fn(lua_State *L, const sw_lua_build_args *a, sw_compressor **out) {    \
        (void)L;                                                                             \
        return a->from ? sw_pruner_##algo##_from_compressor(a->previous, a->config, a->ev, out) \
                       : sw_pruner_##algo##_new(a->ws, a->config, a->ev, out);               \
    }
ONE_SHOT_BUILD(build_level, level)
ONE_SHOT_BUILD(build_l1norm, l1norm)
ONE_SHOT_BUILD(build_l2norm, l2norm)
ONE_SHOT_BUILD(build_fpgm, fpgm)

/* SlimPruner(model, config_list, evaluator, training_steps, regular_scale = 1.0) */
static sw_status build_slim(lua_State *L, const sw_lua_build_args *a, sw_compressor **out) {
    lua_Integer steps = sw_lua_arg_integer(L, a->args, "SlimPruner", "training_steps", 0, true);
    double scale = sw_lua_arg_number(L, a->args + 1, "SlimPruner", "regular_scale",
                                     SW_SLIM_REGULAR_SCALE_DEFAULT);
    return a->from ? sw_pruner_slim_from_compressor(a->previous, a->config, (long)steps, scale,
                                                    a->ev, out)
                   : sw_pruner_slim_new(a->ws, a->config, a->ev, (long)steps, scale, out);
}

/* TaylorPruner(model, config_list, evaluator, training_steps) */
static sw_status build_taylor(lua_State *L, const sw_lua_build_args *a, sw_compressor **out) {
    lua_Integer steps = sw_lua_arg_integer(L, a->args, "TaylorPruner", "training_steps", 0, true);
    return a->from ? sw_pruner_taylor_from_compressor(a->previous, a->config, (long)steps, a->ev,
                                                      out)
                   : sw_pruner_taylor_new(a->ws, a->config, a->ev, (long)steps, out);
}

/* LinearPruner / AGPPruner(pruner, interval_steps, total_times, evaluator) */
static void schedule_args(lua_State *L, const sw_lua_build_args *a, const char *cls,
                          long *interval, int *times) {
    lua_Integer i = sw_lua_arg_integer(L, a->args, cls, "interval_steps", 0, true);
    lua_Integer t = sw_lua_arg_integer(L, a->args + 1, cls, "total_times", 0, true);
    if (t < INT32_MIN || t > INT32_MAX) luaL_error(L, "%s: total_times is out of range", cls);
    *interval = (long)i;
    *times = (int)t;
}

static sw_status build_linear(lua_State *L, const sw_lua_build_args *a, sw_compressor **out) {
    long interval;
    int times;
    schedule_args(L, a, "LinearPruner", &interval, &times);
    return a->from ? sw_pruner_linear_from_compressor(a->previous, interval, times, a->ev, out)
                   : sw_pruner_linear_new(a->previous, interval, times, a->ev, out);
}

static sw_status build_agp(lua_State *L, const sw_lua_build_args *a, sw_compressor **out) {
    long interval;
    int times;
    schedule_args(L, a, "AGPPruner", &interval, &times);
    return a->from ? sw_pruner_agp_from_compressor(a->previous, interval, times, a->ev, out)
                   : sw_pruner_agp_new(a->previous, interval, times, a->ev, out);
}

/* MovementPruner(model, config_list, evaluator, warmup_step, cooldown_begin_step,
 *                regular_scale = 1.0) */
static sw_status build_movement(lua_State *L, const sw_lua_build_args *a, sw_compressor **out) {
    const char *cls = "MovementPruner";
    lua_Integer warmup = sw_lua_arg_integer(L, a->args, cls, "warmup_step", 0, true);
    lua_Integer cooldown = sw_lua_arg_integer(L, a->args + 1, cls, "cooldown_begin_step", 0, true);
    double scale = sw_lua_arg_number(L, a->args + 2, cls, "regular_scale",
                                     SW_MOVEMENT_REGULAR_SCALE_DEFAULT);
    return a->from ? sw_pruner_movement_from_compressor(a->previous, a->config, (long)warmup,
                                                        (long)cooldown, scale, a->ev, out)
                   : sw_pruner_movement_new(a->ws, a->config, a->ev, (long)warmup,
                                            (long)cooldown, scale, out);
}

/* MasksPruner(model, masks): fixed masks (a masks table, a masks file's sw.load_masks, or a
 * compressor's) on a model, e.g. to fine-tune with them held; compress does nothing. */
static sw_status build_masks(lua_State *L, const sw_lua_build_args *a, sw_compressor **out) {
    (void)L;
    return a->from ? sw_pruner_masks_from_compressor(a->previous, a->masks, out)
                   : sw_pruner_masks_new(a->ws, a->masks, out);
}

static const sw_lua_class pruner_classes[] = {
    {.name = "LevelPruner", .build = build_level},
    {.name = "L1NormPruner", .build = build_l1norm},
    {.name = "L2NormPruner", .build = build_l2norm},
    {.name = "FPGMPruner", .build = build_fpgm},
    {.name = "SlimPruner", .build = build_slim, .n_args = 2},
    {.name = "TaylorPruner", .build = build_taylor, .n_args = 1},
    {.name = "LinearPruner", .build = build_linear, .n_args = 2, .on_pruner = true},
    {.name = "AGPPruner", .build = build_agp, .n_args = 2, .on_pruner = true},
    {.name = "MovementPruner", .build = build_movement, .n_args = 3},
    {.name = "MasksPruner", .build = build_masks, .no_evaluator = true, .masks = true},
};

/* Pushes values[n] as a 1-D tensor. */
static void push_values(lua_State *L, const float *values, size_t n) {
    sw_shape s = sw_shape_1d((int)n);
    sw_tensor *t = sw_lua_push_tensor(L, &s);
    memcpy(t->data, values, n * sizeof *values);
}

/* slim:factors(module, target) -> the learned factors (one per block) as a 1-D tensor */
static int c_factors(lua_State *L) {
    sw_lua_compressor *u = sw_lua_check_compressor(L, 1);
    const char *module = luaL_checkstring(L, 2), *target = luaL_optstring(L, 3, "weight");
    const float *v = NULL;
    size_t n = 0;
    if (sw_pruner_slim_factors(u->c, module, target, &v, &n) != SW_OK)
        return sw_lua_raise(L, "factors");
    push_values(L, v, n);
    return 1;
}

/* movement:scores(module, target) -> the learned scores (one per block) as a 1-D tensor */
static int c_scores(lua_State *L) {
    sw_lua_compressor *u = sw_lua_check_compressor(L, 1);
    const char *module = luaL_checkstring(L, 2), *target = luaL_optstring(L, 3, "weight");
    const float *v = NULL;
    size_t n = 0;
    if (sw_pruner_movement_scores(u->c, module, target, &v, &n) != SW_OK)
        return sw_lua_raise(L, "scores");
    push_values(L, v, n);
    return 1;
}

/* ---- registration ------------------------------------------------------------------------- */

static const luaL_Reg meth[] = {
    {"compress", c_compress},
    {"get_masks", c_get_masks},
    {"unwrap_model", c_unwrap_model},
    {"warnings", c_warnings},
    {"export", c_export},
    {"fused_compressors", c_fused_compressors},
    {"is_detached", c_is_detached},
    {"name", c_name},
    {"model", c_model},
    {"factors", c_factors},
    {"scores", c_scores},
    {NULL, NULL},
};

static const luaL_Reg metameth[] = {
    {"__gc", c_gc},
    {"__close", c_gc},
    {"__tostring", c_tostring},
    {NULL, NULL},
};

static const luaL_Reg functions[] = {
    {"save_masks", l_save_masks},
    {"load_masks", l_load_masks},
    {NULL, NULL},
};

int sw_lua_open_compress(lua_State *L) {
    sw_lua_new_type(L, SW_LUA_COMPRESSOR, meth, metameth);
    luaL_setfuncs(L, functions, 0);
    lua_pushlightuserdata(L, (void *)&null_sentinel);
    lua_setfield(L, -2, "null");
    for (size_t i = 0; i < sizeof pruner_classes / sizeof pruner_classes[0]; i++)
        sw_lua_register_compressor_class(L, &pruner_classes[i]);
    return 0;
}
