/* l_speedup.c - sw.ModelSpeedup in Lua: turn a masked model into a physically smaller one.
 *
 *   local fast = sw.ModelSpeedup(model, sw.rand{8, 1, 28, 28}, pruner:get_masks()):speedup_model()
 *
 * As NNI's ModelSpeedup(model, dummy_input, masks).speedup_model(), with two differences
 * (docs/SPEEDUP.md): the original model is left as it is and a new model is returned, and the
 * result is checked against the masked model on the dummy input before it is returned.
 * The speedup userdata owns its sw_speedup and holds the model (a user value, counted as a
 * holder) for as long as it lives, since the analysis borrows it.
 */
#include <string.h>

#include "../speedup/speedup.h"
#include "binding.h"

typedef struct sw_lua_speedup {
    sw_speedup *s; /* owned; NULL once freed */
} sw_lua_speedup;

static sw_lua_speedup *check_speedup(lua_State *L, int idx) {
    sw_lua_speedup *u = luaL_checkudata(L, idx, SW_LUA_SPEEDUP);
    if (!u->s) luaL_error(L, "the speedup has been freed");
    return u;
}

/* Reads the options table at idx: {probe_batch, seed, tolerance, force, forbid_union}. */
static sw_speedup_options read_options(lua_State *L, int idx) {
    sw_speedup_options o = sw_speedup_options_default();
    if (lua_isnoneornil(L, idx)) return o;
    luaL_checktype(L, idx, LUA_TTABLE);
    static const char *const known[] = {"probe_batch", "seed", "tolerance", "force",
                                        "forbid_union", NULL};
    sw_lua_check_keys(L, idx, known, "sw.ModelSpeedup");
    lua_Integer batch = sw_lua_opt_int_field(L, idx, "probe_batch", o.probe_batch);
    if (batch < 1 || batch > 4096)
        luaL_error(L, "sw.ModelSpeedup: probe_batch must be in [1, 4096], got %I", batch);
    o.probe_batch = (int)batch;
    o.seed = (uint64_t)sw_lua_opt_int_field(L, idx, "seed", (lua_Integer)o.seed);
    o.tolerance = (float)sw_lua_opt_num_field(L, idx, "tolerance", o.tolerance);
    if (!(o.tolerance >= 0))
        luaL_error(L, "sw.ModelSpeedup: tolerance must be >= 0, got %f", (double)o.tolerance);
    o.force = sw_lua_opt_bool_field(L, idx, "force", o.force);
    o.forbid_union = sw_lua_opt_bool_field(L, idx, "forbid_union", o.forbid_union);
    return o;
}

/* sw.ModelSpeedup(model, dummy_input, masks [, options]) -> speedup.
 * dummy_input: a batch [N, C, H, W], one sample [C, H, W], or nil for a random probe;
 * masks: {module = {target = tensor}} or a compressor (its chain's masks). */
static int l_speedup_new(lua_State *L) {
    sw_lua_model *mu = sw_lua_check_model(L, 1);
    sw_lua_model_check_idle(L, mu, "sw.ModelSpeedup");
    lua_settop(L, 4);
    sw_speedup_options opt = read_options(L, 4);
    sw_tensor probe_view, *probe = NULL;
    if (!lua_isnil(L, 2)) {
        sw_tensor *x = sw_lua_test_tensor(L, 2);
        if (!x)
            return luaL_error(L, "sw.ModelSpeedup: dummy_input (argument 2) must be a tensor or "
                              "nil, got %s", luaL_typename(L, 2));
        probe_view = *x;
        /* One sample: a batch of one, as model(x) accepts. */
        if (sw_shape_equal(&x->shape, &mu->m->input_shape)) {
            sw_shape b;
            if (sw_shape_batched(&mu->m->input_shape, 1, &b) != SW_OK)
                return sw_lua_raise(L, "sw.ModelSpeedup");
            probe_view = sw_tensor_reshaped(x, &b);
        }
        probe = &probe_view;
    }
    const sw_mask_set *masks = sw_lua_check_mask_set(L, 3, "sw.ModelSpeedup"); /* 5: its box */

    sw_lua_speedup *u = lua_newuserdatauv(L, sizeof *u, 1);
    u->s = NULL;
    luaL_setmetatable(L, SW_LUA_SPEEDUP);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    sw_speedup *s = NULL;
    if (sw_speedup_new(mu->m, probe, masks, &opt, &s) != SW_OK)
        return sw_lua_raise(L, "sw.ModelSpeedup");
    u->s = s;
    sw_lua_model_hold(mu);
    sw_lua_ctx(L)->live_objects++;
    sw_lua_box_free(L, 5);
    return 1;
}

static int su_gc(lua_State *L) {
    sw_lua_speedup *u = luaL_checkudata(L, 1, SW_LUA_SPEEDUP);
    if (!u->s) return 0;
    sw_speedup_free(u->s);
    u->s = NULL;
    sw_lua_ctx(L)->live_objects--;
    lua_getiuservalue(L, 1, 1);
    sw_lua_model_release(L, lua_touserdata(L, -1));
    return 0;
}

/* speedup:speedup_model() -> a new, smaller model computing what the masked model computes.
 * Raises with the numbers when the self-check on the dummy input fails (unless force). */
static int su_speedup_model(lua_State *L) {
    sw_lua_speedup *u = check_speedup(L, 1);
    lua_getiuservalue(L, 1, 1);
    sw_lua_model_check_idle(L, lua_touserdata(L, -1), "speedup_model");
    sw_lua_model *fast_u = sw_lua_push_model_slot(L);
    sw_model *fast = NULL;
    if (sw_speedup_model(u->s, &fast) != SW_OK) return sw_lua_raise(L, "speedup_model");
    sw_lua_model_adopt(L, fast_u, fast);
    return 1;
}

static void set_int(lua_State *L, const char *key, lua_Integer v) {
    lua_pushinteger(L, v);
    lua_setfield(L, -2, key);
}

static void set_num(lua_State *L, const char *key, double v) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, key);
}

static void set_shape(lua_State *L, const char *key, const sw_shape *s) {
    sw_lua_push_shape(L, s);
    lua_setfield(L, -2, key);
}

/* speedup:report() -> {params_before, params_after, flops_before, flops_after, removed,
 * dep_groups, unpruned, check = {...}, layers = {...}} (after speedup_model; FLOPs per image). */
static int su_report(lua_State *L) {
    sw_lua_speedup *u = check_speedup(L, 1);
    const sw_speedup_report *r = sw_speedup_get_report(u->s);
    if (!r->built) return luaL_error(L, "report: call speedup_model() first");
    lua_createtable(L, 0, 10);
    set_int(L, "params_before", (lua_Integer)r->params_before);
    set_int(L, "params_after", (lua_Integer)r->params_after);
    set_num(L, "flops_before", r->flops_before);
    set_num(L, "flops_after", r->flops_after);
    set_int(L, "removed", r->n_removed);
    set_int(L, "dep_groups", r->n_dep_groups);
    set_int(L, "unpruned", r->n_unpruned);
    if (r->checked) {
        lua_createtable(L, 0, 6);
        set_int(L, "batch", r->check.batch);
        set_num(L, "max_abs_diff", r->check.max_abs_diff);
        set_num(L, "max_abs_ref", r->check.max_abs_ref);
        set_num(L, "rel_diff", r->check.rel_diff);
        set_num(L, "tolerance", r->check.tolerance);
        lua_pushboolean(L, r->check.within_tolerance);
        lua_setfield(L, -2, "ok");
        lua_setfield(L, -2, "check");
    }
    lua_createtable(L, r->n_layers, 0);
    for (int i = 0; i < r->n_layers; i++) {
        const sw_speedup_layer *l = &r->layers[i];
        lua_createtable(L, 0, 14);
        lua_pushstring(L, l->name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, l->type_before);
        lua_setfield(L, -2, "type_before");
        if (l->type_after) {
            lua_pushstring(L, l->type_after);
            lua_setfield(L, -2, "type_after");
        }
        lua_pushboolean(L, l->removed);
        lua_setfield(L, -2, "removed");
        set_shape(L, "out_before", &l->out_before);
        set_shape(L, "out_after", &l->out_after);
        set_int(L, "params_before", (lua_Integer)l->params_before);
        set_int(L, "params_after", (lua_Integer)l->params_after);
        set_num(L, "flops_before", l->flops_before);
        set_num(L, "flops_after", l->flops_after);
        set_int(L, "channels_before", l->channels_before);
        set_int(L, "channels_after", l->channels_after);
        set_int(L, "dep_group", l->dep_group);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "layers");
    return 1;
}

static int su_tostring(lua_State *L) {
    sw_lua_speedup *u = luaL_checkudata(L, 1, SW_LUA_SPEEDUP);
    lua_pushstring(L, u->s ? "ModelSpeedup" : "ModelSpeedup (freed)");
    return 1;
}

static const luaL_Reg meth[] = {
    {"speedup_model", su_speedup_model},
    {"report", su_report},
    {NULL, NULL},
};

static const luaL_Reg metameth[] = {
    {"__gc", su_gc},
    {"__close", su_gc},
    {"__tostring", su_tostring},
    {NULL, NULL},
};

int sw_lua_open_speedup(lua_State *L) {
    sw_lua_new_type(L, SW_LUA_SPEEDUP, meth, metameth);
    lua_pushcfunction(L, l_speedup_new);
    lua_setfield(L, -2, "ModelSpeedup");
    return 0;
}
