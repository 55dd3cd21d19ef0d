/* l_quant.c - the quantizers in Lua under NNI's names, and their calibration config as a Lua
 * table:
 *
 *   local q = sw.QATQuantizer(model, {{op_types = {"Conv2d"}, target_names = {"weight"},
 *                                       quant_dtype = "int8", quant_scheme = "affine"}},
 *                             evaluator, 100)            -- quant_start_step
 *   q:compress(400)
 *   local cal = q:get_calibration_config()     -- cal.conv1.weight.scale = {...}
 *   q:export("calibration.json")
 *
 * Calibration tables mirror the JSON of calibration.h: module -> target -> {quant_dtype,
 * quant_scheme, quant_bits, shape, scale, zero_point, tracked_min, tracked_max}, values as
 * row-major arrays over `shape`; an unset scale is sw.null.
 */
#include <string.h>

#include "../compress/quantization/quantizers.h"
#include "binding.h"

#define ONE_ARGLESS_BUILD(fn, algo)                                                             \
    static sw_status fn(lua_State *L, const sw_lua_build_args *a, sw_compressor **out) {      \
        (void)L;                                                                               \
        return a->from ? sw_quantizer_##algo##_from_compressor(a->previous, a->config, a->ev, \
                                                               out)                            \
                       : sw_quantizer_##algo##_new(a->ws, a->config, a->ev, out);              \
    }
ONE_ARGLESS_BUILD(build_lsqplus, lsqplus)
ONE_ARGLESS_BUILD(build_ptq, ptq)
ONE_ARGLESS_BUILD(build_bnn, bnn)

/* QATQuantizer(model, config_list, evaluator, quant_start_step = 0) */
static sw_status build_qat(lua_State *L, const sw_lua_build_args *a, sw_compressor **out) {
    lua_Integer start = sw_lua_arg_integer(L, a->args, "QATQuantizer", "quant_start_step", 0,
                                           false);
    return a->from ? sw_quantizer_qat_from_compressor(a->previous, a->config, (long)start, a->ev,
                                                      out)
                   : sw_quantizer_qat_new(a->ws, a->config, a->ev, (long)start, out);
}

/* LsqQuantizer(model, config_list, evaluator, init = "nni"): "data" starts the scales as the
 * LSQ paper does (2 mean|x| / sqrt(qmax)) instead of NNI's 0.01 (docs/QUANTIZATION.md). */
static sw_status build_lsq(lua_State *L, const sw_lua_build_args *a, sw_compressor **out) {
    const char *init = "nni";
    if (!lua_isnil(L, a->args)) {
        if (lua_type(L, a->args) != LUA_TSTRING)
            luaL_error(L, "LsqQuantizer: init (argument %d) must be \"nni\" or \"data\", got %s",
                       a->args, luaL_typename(L, a->args));
        init = lua_tostring(L, a->args);
        if (strcmp(init, "nni") != 0 && strcmp(init, "data") != 0)
            luaL_error(L, "LsqQuantizer: init must be \"nni\" or \"data\", not \"%s\"", init);
    }
    SW_TRY(a->from ? sw_quantizer_lsq_from_compressor(a->previous, a->config, a->ev, out)
                   : sw_quantizer_lsq_new(a->ws, a->config, a->ev, out));
    if (strcmp(init, "data") != 0) return SW_OK;
    sw_status st = sw_quantizer_lsq_set_data_init(*out, true);
    if (st != SW_OK) {
        sw_compressor_free(*out);
        *out = NULL;
    }
    return st;
}

/* DoReFaQuantizer(model, config_list, evaluator, quantize_gradients = false, seed = 0) */
static sw_status build_dorefa(lua_State *L, const sw_lua_build_args *a, sw_compressor **out) {
    bool grads = false;
    if (!lua_isnil(L, a->args)) {
        if (!lua_isboolean(L, a->args))
            luaL_error(L, "DoReFaQuantizer: quantize_gradients (argument %d) must be true or "
                       "false, got %s", a->args, luaL_typename(L, a->args));
        grads = lua_toboolean(L, a->args);
    }
    lua_Integer seed = sw_lua_arg_integer(L, a->args + 1, "DoReFaQuantizer", "seed", 0, false);
    return a->from ? sw_quantizer_dorefa_from_compressor(a->previous, a->config, grads,
                                                         (uint64_t)seed, a->ev, out)
                   : sw_quantizer_dorefa_new(a->ws, a->config, a->ev, grads, (uint64_t)seed, out);
}

/* Quantizer(model, config_list): NNI's base class, clamp_round with scales from
 * update_calibration_config; re-creates a quantized simulation from a calibration. */
static sw_status build_fixed(lua_State *L, const sw_lua_build_args *a, sw_compressor **out) {
    (void)L;
    if (a->from)
        return SW_FAIL(SW_ERR_UNSUPPORTED,
                       "the base Quantizer is not built from a compressor; build it on the "
                       "model: sw.Quantizer(model, config_list)");
    return sw_quantizer_fixed_new(a->ws, a->config, out);
}

static const sw_lua_class quantizer_classes[] = {
    {.name = "QATQuantizer", .build = build_qat, .n_args = 1},
    {.name = "LsqQuantizer", .build = build_lsq, .n_args = 1},
    {.name = "LsqPlusQuantizer", .build = build_lsqplus},
    {.name = "PtqQuantizer", .build = build_ptq},
    {.name = "DoReFaQuantizer", .build = build_dorefa, .n_args = 2},
    {.name = "BNNQuantizer", .build = build_bnn},
    {.name = "Quantizer", .build = build_fixed, .no_evaluator = true},
};

static void json_free(void *p) { cJSON_Delete(p); }

/* quantizer:get_calibration_config() -> module -> target -> {scale, zero_point, ...} */
static int q_get_calibration_config(lua_State *L) {
    sw_lua_compressor *u = sw_lua_check_compressor(L, 1);
    cJSON *cfg = NULL;
    if (sw_quant_calibration_get(u->c, &cfg) != SW_OK)
        return sw_lua_raise(L, "get_calibration_config");
    /* Boxed while it converts: pushing may raise (memory). */
    void **slot = sw_lua_push_box(L, json_free);
    *slot = cfg;
    sw_lua_push_json(L, cfg);
    return 1;
}

/* quantizer:update_calibration_config(calibration) -> the quantizer. Loads scales, zero
 * points and ranges (dtype, bits, scheme and block shapes must match the targets). */
static int q_update_calibration_config(lua_State *L) {
    sw_lua_compressor *u = sw_lua_check_compressor(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    const cJSON *cfg = sw_lua_to_json(L, 2, "calibration", false);
    if (sw_quant_calibration_update(u->c, cfg) != SW_OK)
        return sw_lua_raise(L, "update_calibration_config");
    sw_lua_box_free(L, 3);
    lua_settop(L, 1);
    return 1;
}

static const luaL_Reg methods[] = {
    {"get_calibration_config", q_get_calibration_config},
    {"update_calibration_config", q_update_calibration_config},
    {NULL, NULL},
};

int sw_lua_open_quant(lua_State *L) {
    sw_lua_add_compressor_methods(L, methods);
    for (size_t i = 0; i < sizeof quantizer_classes / sizeof quantizer_classes[0]; i++)
        sw_lua_register_compressor_class(L, &quantizer_classes[i]);
    return 0;
}
