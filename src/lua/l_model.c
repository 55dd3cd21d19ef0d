/* l_model.c - the model userdata: loading and saving, the zoo, the graph builder behind the
 * sw.nn DSL, inspection (info, modules, parameters) and calling a model on a tensor.
 *
 * A model userdata owns its sw_model. Objects that use a model for a long time (compressors,
 * speedups) keep the userdata in a user value of their own, so the model lives while any of
 * them does, and count themselves as holders: closing the handle explicitly while a holder
 * still uses the model only closes the handle, and the last holder frees the model. While an
 * evaluator trains or evaluates it, or a compressor compresses it, the model is "busy": its
 * activations belong to the training step, so calling it or switching its mode from a callback
 * is refused.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../compress/wrapper.h"
#include "../io/model_file.h"
#include "../nn/zoo.h"
#include "binding.h"

/* ---- the userdata ------------------------------------------------------------------------- */

sw_lua_model *sw_lua_push_model_slot(lua_State *L) {
    sw_lua_model *u = lua_newuserdatauv(L, sizeof *u, 0);
    memset(u, 0, sizeof *u);
    luaL_setmetatable(L, SW_LUA_MODEL);
    return u;
}

void sw_lua_model_adopt(lua_State *L, sw_lua_model *u, sw_model *m) {
    u->m = m;
    sw_lua_ctx(L)->live_objects++;
}

sw_lua_model *sw_lua_check_model(lua_State *L, int idx) {
    sw_lua_model *u = luaL_checkudata(L, idx, SW_LUA_MODEL);
    if (!u->m || u->closed)
        luaL_error(L, "the model has been freed (used after garbage collection)");
    return u;
}

/* Frees the C model and the wrapper set it carries (first: releasing the set uninstalls its
 * hooks from the model's nodes). */
static void free_model(lua_State *L, sw_lua_model *u) {
    sw_wrapper_set_release(u->ws);
    u->ws = NULL;
    sw_model_free(u->m);
    u->m = NULL;
    sw_lua_ctx(L)->live_objects--;
}

void sw_lua_model_hold(sw_lua_model *u) { u->holders++; }

void sw_lua_model_release(lua_State *L, sw_lua_model *u) {
    if (--u->holders == 0 && u->closed && u->m) free_model(L, u);
}

void sw_lua_model_check_idle(lua_State *L, const sw_lua_model *u, const char *what) {
    if (u->busy)
        luaL_error(L, "%s: the model is being trained or evaluated right now; use the output "
                   "given to the callback, or a model:clone()", what);
}

/* __gc and __close: frees the model once; a second call finds NULL and does nothing. */
static int mm_gc(lua_State *L) {
    sw_lua_model *u = luaL_checkudata(L, 1, SW_LUA_MODEL);
    /* Only a callback of a run can get here while the model is busy (the collector cannot:
     * the model is on the running evaluator's stack); freeing it would pull the weights out
     * from under the training loop. */
    if (u->busy) return luaL_error(L, "the model is being trained or evaluated; it cannot be "
                                   "freed now");
    if (!u->m || u->closed) return 0;
    /* A compressor or a speedup still borrows the model: only the handle closes. */
    if (u->holders > 0) {
        u->closed = true;
        return 0;
    }
    free_model(L, u);
    return 0;
}

static int mm_tostring(lua_State *L) {
    sw_lua_model *u = luaL_checkudata(L, 1, SW_LUA_MODEL);
    if (!u->m || u->closed) {
        lua_pushliteral(L, "model (freed)");
        return 1;
    }
    lua_pushfstring(L, "model %s: %d nodes, %I parameters", u->m->arch, u->m->n_nodes,
                    (lua_Integer)sw_model_param_count(u->m));
    return 1;
}

/* ---- loading, the zoo, building ----------------------------------------------------------- */

/* sw.load(path) -> model | nil, message */
static int l_load(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    sw_lua_model *u = sw_lua_push_model_slot(L);
    sw_model *m = NULL;
    if (sw_model_load(path, &m) != SW_OK) return sw_lua_fail(L, path);
    sw_lua_model_adopt(L, u, m);
    return 1;
}

/* Where pretrained zoo weights are looked for: the source tree, then beside the binary.
 * Paths that do not fit PATH_MAX are skipped. */
static int pretrained_candidates(const char *name, char paths[2][PATH_MAX]) {
    int n = 0;
    int len = snprintf(paths[n], PATH_MAX, "%s/assets/models/%s.safetensors", SW_SOURCE_DIR,
                       name);
    if (len > 0 && len < PATH_MAX) n++;
    char exe[PATH_MAX];
    ssize_t exe_len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (exe_len > 0) {
        exe[exe_len] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) *slash = '\0';
        size_t need = strlen(exe) + strlen(name) + sizeof "/assets/models/.safetensors";
        if (need <= PATH_MAX) {
            memcpy(paths[n], exe, strlen(exe) + 1);
            strcat(paths[n], "/assets/models/");
            strcat(paths[n], name);
            strcat(paths[n], ".safetensors");
            n++;
        }
    }
    return n;
}

/* sw.models.<name>{pretrained=false, seed=0} -> model | nil, message.
 * Fresh weights come from the PyTorch-default initialisation with `seed`; pretrained ones
 * from assets/models/<name>.safetensors. */
static int l_zoo_model(lua_State *L) {
    const char *name = lua_tostring(L, lua_upvalueindex(1));
    if (lua_isnoneornil(L, 1)) lua_newtable(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    static const char *const known[] = {"pretrained", "seed", NULL};
    sw_lua_check_keys(L, 1, known, name);
    bool pretrained = sw_lua_opt_bool_field(L, 1, "pretrained", 0);
    lua_Integer seed = sw_lua_opt_int_field(L, 1, "seed", 0);
    sw_lua_model *u = sw_lua_push_model_slot(L);
    sw_model *m = NULL;
    if (!pretrained) {
        if (sw_zoo_build(name, (uint64_t)seed, &m) != SW_OK) return sw_lua_raise(L, name);
        sw_lua_model_adopt(L, u, m);
        return 1;
    }
    char paths[2][PATH_MAX];
    int n = pretrained_candidates(name, paths);
    for (int i = 0; i < n; i++) {
        if (access(paths[i], F_OK) != 0) continue;
        if (sw_model_load(paths[i], &m) != SW_OK) return sw_lua_fail(L, paths[i]);
        sw_lua_model_adopt(L, u, m);
        if (strcmp(m->arch, name) != 0) {
            lua_pushnil(L);
            lua_pushfstring(L, "%s holds a \"%s\" model, not \"%s\"", paths[i], m->arch, name);
            return 2;
        }
        return 1;
    }
    const char *home = n > 0 ? paths[0] : "assets/models/<name>.safetensors";
    lua_pushnil(L);
    lua_pushfstring(L, "no pretrained weights for %s: looked for %s%s%s; make them with "
                    "`shrinkwrap train --model %s --epochs 5 --out %s`",
                    name, home, n > 1 ? " and " : "", n > 1 ? paths[1] : "", name, home);
    return 2;
}

/* Reads a 2-D hyper-parameter: an integer (both sides) or {height, width}. */
static void read_pair(lua_State *L, int t, const char *key, int out[2]) {
    int type = lua_getfield(L, t, key);
    if (type == LUA_TNUMBER && lua_isinteger(L, -1)) {
        out[0] = out[1] = (int)lua_tointeger(L, -1);
    } else if (type == LUA_TTABLE && lua_rawlen(L, -1) == 2) {
        for (int k = 0; k < 2; k++) {
            lua_rawgeti(L, -1, k + 1);
            if (!lua_isinteger(L, -1))
                luaL_error(L, "\"%s\" must be an integer or {height, width}", key);
            out[k] = (int)lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
    } else if (type != LUA_TNIL) {
        luaL_error(L, "\"%s\" must be an integer or {height, width}", key);
    }
    lua_pop(L, 1);
}

static int read_int(lua_State *L, int t, const char *key, int dflt) {
    lua_Integer v = sw_lua_opt_int_field(L, t, key, dflt);
    if (v < INT_MIN || v > INT_MAX) luaL_error(L, "\"%s\" is out of range", key);
    return (int)v;
}

/* The hyper-parameters of one node description (keys as PyTorch's constructor arguments). */
static sw_layer_hparams read_hparams(lua_State *L, int t, sw_layer_kind kind) {
    sw_layer_hparams hp = sw_layer_hparams_default(kind);
    hp.in_features = read_int(L, t, "in_features", hp.in_features);
    hp.out_features = read_int(L, t, "out_features", hp.out_features);
    hp.in_channels = read_int(L, t, "in_channels", hp.in_channels);
    hp.out_channels = read_int(L, t, "out_channels", hp.out_channels);
    hp.num_features = read_int(L, t, "num_features", hp.num_features);
    hp.groups = read_int(L, t, "groups", hp.groups);
    read_pair(L, t, "kernel_size", hp.kernel);
    read_pair(L, t, "stride", hp.stride);
    read_pair(L, t, "padding", hp.padding);
    read_pair(L, t, "dilation", hp.dilation);
    hp.bias = sw_lua_opt_bool_field(L, t, "bias", hp.bias);
    hp.eps = (float)sw_lua_opt_num_field(L, t, "eps", hp.eps);
    hp.momentum = (float)sw_lua_opt_num_field(L, t, "momentum", hp.momentum);
    hp.p = (float)sw_lua_opt_num_field(L, t, "p", hp.p);
    return hp;
}

/* Adds the node described by the table at t ({name=, type=, inputs={...}, <hparams>}). */
static void add_node(lua_State *L, sw_model *m, int t, int index) {
    static const char *const known[] = {
        "name", "type", "inputs", "in_features", "out_features", "in_channels",
        "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias",
        "num_features", "eps", "momentum", "p", NULL};
    if (lua_getfield(L, t, "name") != LUA_TSTRING)
        luaL_error(L, "sw.nn: node %d has no name (a string)", index);
    const char *name = lua_tostring(L, -1);
    lua_pop(L, 1); /* anchored by the node table */
    lua_pushfstring(L, "sw.nn: node \"%s\"", name);
    sw_lua_check_keys(L, t, known, lua_tostring(L, -1));
    lua_pop(L, 1);
    const char *type = sw_lua_opt_str_field(L, t, "type", NULL);
    sw_layer_kind kind;
    if (!type || sw_layer_kind_from_name(type, &kind) != SW_OK)
        luaL_error(L, "sw.nn: node \"%s\": unknown layer type \"%s\"", name, type ? type : "");
    sw_layer_hparams hp = read_hparams(L, t, kind);

    const char *inputs[SW_MAX_INPUTS];
    int n_inputs = 0;
    if (lua_getfield(L, t, "inputs") == LUA_TTABLE) {
        int n = (int)lua_rawlen(L, -1);
        if (n > SW_MAX_INPUTS)
            luaL_error(L, "sw.nn: node \"%s\" has %d inputs, at most %d", name, n, SW_MAX_INPUTS);
        for (int i = 0; i < n; i++) {
            /* Only strings: a number converted here would be a fresh string that nothing
             * anchors once popped. */
            if (lua_rawgeti(L, -1, i + 1) != LUA_TSTRING)
                luaL_error(L, "sw.nn: node \"%s\": input %d is not a node name", name, i + 1);
            inputs[n_inputs++] = lua_tostring(L, -1);
            lua_pop(L, 1); /* anchored by the inputs table, still on the stack */
        }
    }
    sw_layer *layer = NULL;
    if (sw_layer_new(kind, &hp, &layer) != SW_OK) {
        lua_pushfstring(L, "sw.nn: node \"%s\" (%s)", name, type);
        sw_lua_raise(L, lua_tostring(L, -1));
    }
    if (sw_model_add(m, name, layer, inputs, n_inputs, NULL) != SW_OK) sw_lua_raise(L, "sw.nn");
    lua_pop(L, 1); /* inputs */
}

/* sw._build_model{arch=, input_shape={...}, seed=, nodes={...}} -> model.
 * The graph the sw.nn DSL compiles to: nodes in execution order, the last one the output. */
static int l_build_model(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *arch = sw_lua_opt_str_field(L, 1, "arch", "custom");
    lua_Integer seed = sw_lua_opt_int_field(L, 1, "seed", 0);
    if (lua_getfield(L, 1, "input_shape") != LUA_TTABLE)
        return luaL_error(L, "sw.nn: input_shape must be a table such as {1, 28, 28}");
    sw_shape input_shape = sw_lua_check_shape(L, lua_gettop(L));
    lua_pop(L, 1);
    if (lua_getfield(L, 1, "nodes") != LUA_TTABLE || lua_rawlen(L, -1) == 0)
        return luaL_error(L, "sw.nn: the network has no layers");
    int nodes = lua_gettop(L);

    sw_lua_model *u = sw_lua_push_model_slot(L);
    int result = lua_gettop(L);
    sw_model *m = NULL;
    if (sw_model_new(arch, &input_shape, &m) != SW_OK) return sw_lua_raise(L, "sw.nn");
    sw_lua_model_adopt(L, u, m); /* from here an error leaves a partial model to the GC */
    int n = (int)lua_rawlen(L, nodes);
    for (int i = 1; i <= n; i++) {
        if (lua_rawgeti(L, nodes, i) != LUA_TTABLE)
            return luaL_error(L, "sw.nn: node %d is not a table", i);
        add_node(L, m, lua_gettop(L), i);
        lua_pop(L, 1);
    }
    if (sw_model_finalize(m) != SW_OK) return sw_lua_raise(L, "sw.nn");
    sw_model_init_params(m, (uint64_t)seed);
    lua_pushvalue(L, result);
    return 1;
}

/* ---- methods ------------------------------------------------------------------------------ */

/* model:save(path [, metadata]) -> true | nil, message. metadata: {key = string|number}. */
static int m_save(lua_State *L) {
    sw_lua_model *u = sw_lua_check_model(L, 1);
    const char *path = luaL_checkstring(L, 2);
    sw_lua_check_write_path(L, path, "model:save");
    enum { MAX_META = 32 };
    const char *meta[2 * MAX_META + 1];
    int n = 0;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        lua_settop(L, 3);
        lua_newtable(L); /* 4: anchors the converted strings */
        lua_pushnil(L);
        while (lua_next(L, 3)) {
            if (n == MAX_META)
                return luaL_error(L, "model:save: at most %d metadata entries", MAX_META);
            if (lua_type(L, -2) != LUA_TSTRING)
                return luaL_error(L, "model:save: metadata keys must be strings");
            meta[2 * n] = lua_tostring(L, -2); /* anchored by the metadata table */
            luaL_tolstring(L, -1, NULL);
            meta[2 * n + 1] = lua_tostring(L, -1);
            lua_rawseti(L, 4, n + 1); /* anchors the converted value */
            lua_pop(L, 1);            /* the original value; the key stays for lua_next */
            n++;
        }
    }
    meta[2 * n] = NULL;
    if (sw_model_save(u->m, path, n ? meta : NULL) != SW_OK) return sw_lua_fail(L, path);
    lua_pushboolean(L, 1);
    return 1;
}

/* model:info() -> {arch, params, flops, nodes, input_shape, output_shape, training} */
static int m_info(lua_State *L) {
    sw_model *m = sw_lua_check_model(L, 1)->m;
    lua_createtable(L, 0, 7);
    lua_pushstring(L, m->arch);
    lua_setfield(L, -2, "arch");
    lua_pushinteger(L, (lua_Integer)sw_model_param_count(m));
    lua_setfield(L, -2, "params");
    lua_pushnumber(L, sw_model_flops(m));
    lua_setfield(L, -2, "flops");
    lua_pushinteger(L, m->n_nodes);
    lua_setfield(L, -2, "nodes");
    sw_lua_push_shape(L, &m->input_shape);
    lua_setfield(L, -2, "input_shape");
    sw_shape out = sw_model_output_shape(m);
    sw_lua_push_shape(L, &out);
    lua_setfield(L, -2, "output_shape");
    lua_pushboolean(L, m->training);
    lua_setfield(L, -2, "training");
    return 1;
}

/* model:modules() -> array of {name, type, shape, params, flops, inputs}, in execution order
 * (shape: the per-sample output shape). */
static int m_modules(lua_State *L) {
    sw_model *m = sw_lua_check_model(L, 1)->m;
    lua_createtable(L, m->n_nodes, 0);
    for (int i = 0; i < m->n_nodes; i++) {
        const sw_node *node = &m->nodes[i];
        lua_createtable(L, 0, 6);
        lua_pushstring(L, node->name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, node->layer->ops->type_name);
        lua_setfield(L, -2, "type");
        sw_lua_push_shape(L, &node->out_shape);
        lua_setfield(L, -2, "shape");
        lua_pushinteger(L, (lua_Integer)node->param_count);
        lua_setfield(L, -2, "params");
        lua_pushnumber(L, node->flops);
        lua_setfield(L, -2, "flops");
        lua_createtable(L, node->n_inputs, 0);
        for (int j = 0; j < node->n_inputs; j++) {
            lua_pushstring(L, node->inputs[j] == SW_NODE_INPUT ? "input"
                                                               : m->nodes[node->inputs[j]].name);
            lua_rawseti(L, -2, j + 1);
        }
        lua_setfield(L, -2, "inputs");
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* model(x) / model:forward(x): x is [N, input_shape...] or one sample [input_shape...]; the
 * output is a new tensor ([N, ...] or one sample's). Runs in the model's current mode. */
static int m_forward(lua_State *L) {
    sw_lua_model *u = sw_lua_check_model(L, 1);
    sw_tensor *x = sw_lua_check_tensor(L, 2);
    sw_lua_model_check_idle(L, u, "model(x)");
    sw_model *m = u->m;
    bool single = sw_shape_equal(&x->shape, &m->input_shape);
    sw_tensor batched = *x;
    if (single) {
        sw_shape b;
        if (sw_shape_batched(&m->input_shape, 1, &b) != SW_OK) return sw_lua_raise(L, "model(x)");
        batched = sw_tensor_reshaped(x, &b);
    }
    const sw_tensor *out = NULL;
    if (sw_model_forward(m, &batched, &out) != SW_OK) return sw_lua_raise(L, "model(x)");
    sw_tensor *y = sw_lua_push_tensor_copy(L, out);
    if (single) {
        sw_shape sample = sw_model_output_shape(m);
        y->shape = sample; /* same numel: drops the batch dimension of 1 */
    }
    return 1;
}

static int mm_call(lua_State *L) { return m_forward(L); }

static int set_mode(lua_State *L, bool training) {
    sw_lua_model *u = sw_lua_check_model(L, 1);
    sw_lua_model_check_idle(L, u, training ? "model:train()" : "model:eval()");
    sw_model_set_training(u->m, training);
    lua_settop(L, 1);
    return 1;
}

static int m_train(lua_State *L) { return set_mode(L, true); }
static int m_eval(lua_State *L) { return set_mode(L, false); }

static int m_is_training(lua_State *L) {
    lua_pushboolean(L, sw_lua_check_model(L, 1)->m->training);
    return 1;
}

static int m_clone(lua_State *L) {
    sw_model *m = sw_lua_check_model(L, 1)->m;
    sw_lua_model *u = sw_lua_push_model_slot(L);
    sw_model *copy = NULL;
    if (sw_model_clone(m, &copy) != SW_OK) return sw_lua_raise(L, "model:clone()");
    sw_lua_model_adopt(L, u, copy);
    sw_model_set_training(copy, m->training);
    return 1;
}

/* ---- parameters --------------------------------------------------------------------------- */

typedef struct param_list {
    lua_State *L;
    int n;
} param_list;

static void push_param_info(void *ctx, const sw_node *node, sw_param *p, const char *full) {
    (void)node;
    param_list *pl = ctx;
    lua_State *L = pl->L;
    lua_createtable(L, 0, 4);
    lua_pushstring(L, full);
    lua_setfield(L, -2, "name");
    sw_lua_push_shape(L, &p->value.shape);
    lua_setfield(L, -2, "shape");
    lua_pushinteger(L, (lua_Integer)p->value.numel);
    lua_setfield(L, -2, "numel");
    lua_pushboolean(L, p->trainable);
    lua_setfield(L, -2, "trainable");
    lua_rawseti(L, -2, ++pl->n);
}

/* model:parameters() -> array of {name, shape, numel, trainable} (buffers included, not
 * trainable), in the order of the model file. */
static int m_parameters(lua_State *L) {
    sw_model *m = sw_lua_check_model(L, 1)->m;
    lua_newtable(L);
    param_list pl = {L, 0};
    sw_model_visit_params(m, push_param_info, &pl);
    return 1;
}

typedef struct param_find {
    const char *name;
    sw_param *found;
} param_find;

static void find_param(void *ctx, const sw_node *node, sw_param *p, const char *full) {
    (void)node;
    param_find *pf = ctx;
    if (!pf->found && strcmp(full, pf->name) == 0) pf->found = p;
}

static sw_param *check_param(lua_State *L, sw_model *m, const char *name) {
    param_find pf = {name, NULL};
    sw_model_visit_params(m, find_param, &pf);
    if (!pf.found)
        luaL_error(L, "model has no parameter \"%s\" (model:parameters() lists them)", name);
    return pf.found;
}

/* model:param(name) -> a copy of "conv1.weight", "bn1.running_mean", ... */
static int m_param(lua_State *L) {
    sw_model *m = sw_lua_check_model(L, 1)->m;
    sw_param *p = check_param(L, m, luaL_checkstring(L, 2));
    sw_lua_push_tensor_copy(L, &p->value);
    return 1;
}

/* model:set_param(name, tensor): overwrites the values (same shape); returns the model. */
static int m_set_param(lua_State *L) {
    sw_model *m = sw_lua_check_model(L, 1)->m;
    const char *name = luaL_checkstring(L, 2);
    sw_tensor *t = sw_lua_check_tensor(L, 3);
    sw_param *p = check_param(L, m, name);
    if (!sw_shape_equal(&p->value.shape, &t->shape)) {
        char a[64], b[64];
        return luaL_error(L, "set_param(\"%s\"): the parameter is %s, the tensor %s", name,
                          sw_shape_format(&p->value.shape, a, sizeof a),
                          sw_shape_format(&t->shape, b, sizeof b));
    }
    memcpy(p->value.data, t->data, t->numel * sizeof(float));
    lua_settop(L, 1);
    return 1;
}

static void push_param_value(void *ctx, const sw_node *node, sw_param *p, const char *full) {
    (void)node;
    lua_State *L = ctx;
    sw_lua_push_tensor_copy(L, &p->value);
    lua_setfield(L, -2, full);
}

/* model:state_dict() -> {["conv1.weight"] = tensor, ...} (copies) */
static int m_state_dict(lua_State *L) {
    sw_model *m = sw_lua_check_model(L, 1)->m;
    lua_newtable(L);
    sw_model_visit_params(m, push_param_value, L);
    return 1;
}

/* ---- registration ------------------------------------------------------------------------- */

static const luaL_Reg meth[] = {
    {"save", m_save},         {"info", m_info},
    {"modules", m_modules},   {"forward", m_forward},
    {"train", m_train},       {"eval", m_eval},
    {"is_training", m_is_training},
    {"clone", m_clone},       {"parameters", m_parameters},
    {"param", m_param},       {"set_param", m_set_param},
    {"state_dict", m_state_dict},
    {NULL, NULL},
};

static const luaL_Reg metameth[] = {
    {"__gc", mm_gc},     {"__close", mm_gc}, {"__tostring", mm_tostring},
    {"__call", mm_call}, {NULL, NULL},
};

int sw_lua_open_model(lua_State *L) {
    sw_lua_new_type(L, SW_LUA_MODEL, meth, metameth);
    lua_pushcfunction(L, l_load);
    lua_setfield(L, -2, "load");
    lua_pushcfunction(L, l_build_model);
    lua_setfield(L, -2, "_build_model");
    /* sw.models: one constructor per zoo name. */
    lua_newtable(L);
    for (const char *const *name = sw_zoo_names(); *name; name++) {
        lua_pushstring(L, *name);
        lua_pushcclosure(L, l_zoo_model, 1);
        lua_setfield(L, -2, *name);
    }
    lua_setfield(L, -2, "models");
    return 0;
}
