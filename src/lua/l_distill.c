/* l_distill.c - the distillers in Lua under NNI's names, with teacher_predict as a Lua
 * function:
 *
 *   local d = sw.DynamicLayerwiseDistiller.from_compressor(pruner, {{op_names = {"fc2"},
 *       apply_method = "kl"}}, teacher, function(batch, teacher) return teacher(batch.x) end)
 *
 * The distiller userdata keeps the teacher (held: the C distiller borrows it) and the
 * function. The function runs inside the training step, between the student's forward and
 * its backward, so it is called under lua_pcall: an error in it never unwinds through the C
 * training loop. It stops the run, and compress raises it afterwards with its own file:line.
 * The C side reads the teacher's values from its nodes after the function returns, so the
 * function must run the teacher's forward (calling the teacher on the batch does); what it
 * returns is ignored.
 */
#include <stdlib.h>
#include <string.h>

#include "../compress/distillation/distillers.h"
#include "binding.h"

/* fn(batch, teacher): 1 = the batch (light userdata), 2 = fn, 3 = the teacher userdata. */
static int predict_body(lua_State *L) {
    const sw_batch *batch = lua_touserdata(L, 1);
    lua_pushvalue(L, 2);
    sw_lua_push_batch(L, batch);
    lua_pushvalue(L, 3);
    lua_call(L, 2, 0);
    return 0;
}

sw_status sw_lua_teacher_predict(void *ctx, const sw_batch *batch, sw_model *teacher) {
    (void)teacher; /* the Lua function gets the teacher's userdata, which owns it */
    sw_lua_compressor *u = ctx;
    lua_State *L = u->run_L;
    if (!L)
        return SW_FAIL(SW_ERR_ARG, "teacher_predict: a Lua teacher_predict runs only inside "
                                   "compress");
    if (!lua_checkstack(L, 5)) return SW_FAIL(SW_ERR_NOMEM, "teacher_predict: Lua stack exhausted");
    lua_pushcfunction(L, predict_body);
    lua_pushlightuserdata(L, (void *)batch);
    lua_pushvalue(L, u->predict_slot);
    lua_pushvalue(L, u->teacher_slot);
    if (lua_pcall(L, 3, 0, 0) == LUA_OK) return SW_OK;
    const char *msg = lua_tostring(L, -1);
    if (!msg) msg = "(error object is not a string)";
    if (!u->cb_error) {
        size_t n = strlen(msg) + sizeof "teacher_predict: ";
        u->cb_error = malloc(n);
        if (u->cb_error) snprintf(u->cb_error, n, "teacher_predict: %s", msg);
    }
    sw_status st = SW_FAIL(SW_ERR_ARG, "%s", msg);
    lua_pop(L, 1);
    return st;
}

/* The arguments after the evaluator: teacher_model, teacher_predict (read by the generic
 * constructor), origin_loss_lambda. */
static double origin_lambda(lua_State *L, const sw_lua_build_args *a, const char *cls) {
    return sw_lua_arg_number(L, a->args + 2, cls, "origin_loss_lambda",
                             SW_DISTILL_ORIGIN_LOSS_LAMBDA_DEFAULT);
}

/* DynamicLayerwiseDistiller(model, config_list, evaluator, teacher_model, teacher_predict,
 *                           origin_loss_lambda = 1.0) */
static sw_status build_dynamic(lua_State *L, const sw_lua_build_args *a, sw_compressor **out) {
    double lambda = origin_lambda(L, a, "DynamicLayerwiseDistiller");
    sw_teacher_predict_fn fn = a->lua_predict ? sw_lua_teacher_predict : NULL;
    void *ctx = a->lua_predict ? a->self : NULL;
    return a->from ? sw_distiller_dynamic_from_compressor(a->previous, a->config, a->teacher, fn,
                                                          ctx, lambda, a->ev, out)
                   : sw_distiller_dynamic_new(a->ws, a->config, a->ev, a->teacher, fn, ctx,
                                              lambda, out);
}

/* Adaptive1dLayerwiseDistiller: the same arguments. */
static sw_status build_adaptive1d(lua_State *L, const sw_lua_build_args *a, sw_compressor **out) {
    double lambda = origin_lambda(L, a, "Adaptive1dLayerwiseDistiller");
    sw_teacher_predict_fn fn = a->lua_predict ? sw_lua_teacher_predict : NULL;
    void *ctx = a->lua_predict ? a->self : NULL;
    return a->from ? sw_distiller_adaptive1d_from_compressor(a->previous, a->config, a->teacher,
                                                             fn, ctx, lambda, a->ev, out)
                   : sw_distiller_adaptive1d_new(a->ws, a->config, a->ev, a->teacher, fn, ctx,
                                                 lambda, out);
}

static const sw_lua_class distiller_classes[] = {
    {.name = "DynamicLayerwiseDistiller", .build = build_dynamic, .n_args = 3, .teacher = true},
    {.name = "Adaptive1dLayerwiseDistiller", .build = build_adaptive1d, .n_args = 3,
     .teacher = true},
};

/* distiller:losses() -> {task, distill, final, steps}: the last training step as this
 * distiller saw it (task: the task loss it received; final = origin_loss_lambda * task +
 * distill), and how many steps it has computed. */
static int d_losses(lua_State *L) {
    sw_lua_compressor *u = sw_lua_check_compressor(L, 1);
    sw_distill_losses l;
    if (sw_distiller_losses(u->c, &l) != SW_OK) return sw_lua_raise(L, "losses");
    lua_createtable(L, 0, 4);
    lua_pushnumber(L, l.task);
    lua_setfield(L, -2, "task");
    lua_pushnumber(L, l.distill);
    lua_setfield(L, -2, "distill");
    lua_pushnumber(L, l.final);
    lua_setfield(L, -2, "final");
    lua_pushinteger(L, l.steps);
    lua_setfield(L, -2, "steps");
    return 1;
}

static const luaL_Reg methods[] = {
    {"losses", d_losses},
    {NULL, NULL},
};

int sw_lua_open_distill(lua_State *L) {
    sw_lua_add_compressor_methods(L, methods);
    for (size_t i = 0; i < sizeof distiller_classes / sizeof distiller_classes[0]; i++)
        sw_lua_register_compressor_class(L, &distiller_classes[i]);
    return 0;
}
