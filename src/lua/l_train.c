/* l_train.c - training from Lua: sw.Evaluator{...} with its train/evaluate methods, metric
 * callbacks (sw.on_metric), loss functions for training_step hooks.
 *
 * The evaluator userdata owns an sw_evaluator and borrows its datasets; user values keep them
 * (1: train, 2: test), the training_step function (3) and the phase label (4) alive.
 *
 * Lua code runs inside the C training loop in two places: the metric listeners and the
 * training_step hook. Both go through protected_call, which runs a C body under lua_pcall, so
 * a Lua error (or the interrupt hook firing inside a callback) is caught at the callback's
 * boundary: the evaluator is asked to stop at the step boundary, sw_evaluator_train returns
 * normally, and only then is the error raised again in the recipe. No longjmp ever crosses
 * the training loop's C frames.
 */
#include <stdlib.h>
#include <string.h>

#include "../nn/loss.h"
#include "binding.h"

typedef struct sw_lua_evaluator {
    sw_evaluator ev;
    bool ready;     /* ev initialised, to deinit once */
    sw_lua *ctx;
    /* During train(): the running thread and the stack slots (in the frame of train()) of
     * the listeners table and the training_step function (0 = none). */
    lua_State *L;
    int listeners_slot;
    int step_slot;
    char *cb_error; /* owned: the first error raised by a callback in this run */
} sw_lua_evaluator;

enum { UV_TRAIN = 1, UV_TEST, UV_STEP, UV_PHASE, N_UV = UV_PHASE };

/* ---- metric events ------------------------------------------------------------------------ */

void sw_lua_push_metric_event(lua_State *L, const sw_metric_event *ev) {
    lua_createtable(L, 0, 16);
    lua_pushstring(L, sw_metric_kind_name(ev->kind));
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, ev->phase ? ev->phase : "train");
    lua_setfield(L, -2, "phase");
    lua_pushinteger(L, ev->step);
    lua_setfield(L, -2, "step");
    lua_pushinteger(L, ev->total_steps);
    lua_setfield(L, -2, "total_steps");
    lua_pushinteger(L, ev->epoch);
    lua_setfield(L, -2, "epoch");
    lua_pushinteger(L, ev->total_epochs);
    lua_setfield(L, -2, "total_epochs");
    lua_pushnumber(L, ev->loss);
    lua_setfield(L, -2, "loss");
    lua_createtable(L, 0, ev->n_terms);
    for (int i = 0; i < ev->n_terms && i < SW_METRIC_MAX_TERMS; i++) {
        lua_pushnumber(L, ev->term_values[i]);
        lua_setfield(L, -2, ev->term_names[i] ? ev->term_names[i] : "?");
    }
    lua_setfield(L, -2, "terms");
    lua_pushnumber(L, ev->lr);
    lua_setfield(L, -2, "lr");
    lua_pushnumber(L, ev->images_per_sec);
    lua_setfield(L, -2, "images_per_sec");
    lua_pushnumber(L, ev->accuracy);
    lua_setfield(L, -2, "accuracy");
    lua_pushnumber(L, ev->elapsed);
    lua_setfield(L, -2, "elapsed");
    if (ev->message) {
        lua_pushstring(L, ev->message);
        lua_setfield(L, -2, "message");
    }
}

/* The array of sw.on_metric callbacks, created on first use. */
static void push_listeners(lua_State *L) {
    if (lua_getfield(L, LUA_REGISTRYINDEX, SW_LUA_LISTENERS) == LUA_TTABLE) return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, SW_LUA_LISTENERS);
}

/* sw.on_metric(fn): fn(event) is called for every metric event of every evaluator of this
 * state. Returns fn (for sw.off_metric). */
static int l_on_metric(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    push_listeners(L);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_settop(L, 1);
    return 1;
}

/* sw.off_metric(fn): removes a callback; returns whether it was registered. */
static int l_off_metric(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    push_listeners(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, i);
        bool same = lua_rawequal(L, -1, 1);
        lua_pop(L, 1);
        if (!same) continue;
        for (lua_Integer j = i; j < n; j++) {
            lua_rawgeti(L, 2, j + 1);
            lua_rawseti(L, 2, j);
        }
        lua_pushnil(L);
        lua_rawseti(L, 2, n);
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushboolean(L, 0);
    return 1;
}

/* ---- callbacks into Lua ------------------------------------------------------------------- */

/* Runs body(lightuserdata arg, <the value in slot>) under lua_pcall on the evaluator's running
 * thread. On an error, keeps the first message, asks the evaluator to stop, and returns
 * SW_ERR_ARG with the message (prefixed by `what`). */
static sw_status protected_call(sw_lua_evaluator *u, lua_CFunction body, void *arg, int slot,
                                const char *what) {
    lua_State *L = u->L;
    if (!lua_checkstack(L, 4)) return SW_FAIL(SW_ERR_NOMEM, "%s: Lua stack exhausted", what);
    lua_pushcfunction(L, body);
    lua_pushlightuserdata(L, arg);
    lua_pushvalue(L, slot);
    if (lua_pcall(L, 2, 0, 0) == LUA_OK) return SW_OK;
    const char *msg = lua_tostring(L, -1);
    if (!msg) msg = "(error object is not a string)";
    if (!u->cb_error) {
        size_t n = strlen(what) + strlen(msg) + 3;
        u->cb_error = malloc(n);
        if (u->cb_error) snprintf(u->cb_error, n, "%s: %s", what, msg);
    }
    sw_status st = SW_FAIL(SW_ERR_ARG, "%s: %s", what, msg);
    lua_pop(L, 1);
    sw_evaluator_request_stop(&u->ev);
    return st;
}

/* Calls every sw.on_metric callback (the table at 2) with the event (light userdata at 1). */
static int dispatch_body(lua_State *L) {
    const sw_metric_event *ev = lua_touserdata(L, 1);
    sw_lua_push_metric_event(L, ev);
    int event = lua_gettop(L);
    for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, 2); i++) {
        lua_rawgeti(L, 2, i);
        lua_pushvalue(L, event);
        lua_call(L, 1, 0);
    }
    return 0;
}

/* The metric listener an evaluator registers for the recipe's callbacks. Events outside a
 * train() call of this binding, or after a callback failed, are not delivered. */
static void lua_metric_listener(void *ctx, const sw_metric_event *ev) {
    sw_lua_evaluator *u = ctx;
    if (!u->L || u->cb_error) return;
    protected_call(u, dispatch_body, (void *)ev, u->listeners_slot, "on_metric callback");
}

typedef struct step_call {
    const sw_batch *batch;
    const sw_tensor *logits;
    double *loss;
    sw_tensor *dlogits;
} step_call;

void sw_lua_push_batch(lua_State *L, const sw_batch *batch) {
    lua_createtable(L, 0, 3);
    sw_lua_push_tensor_copy(L, &batch->x);
    lua_setfield(L, -2, "x");
    lua_createtable(L, batch->size, 0);
    for (int i = 0; i < batch->size; i++) {
        lua_pushinteger(L, batch->y[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "y");
    lua_pushinteger(L, batch->size);
    lua_setfield(L, -2, "size");
}

/* Calls training_step (at 2) as fn({x=, y=, size=}, logits) and checks that it returned a
 * loss and its gradient with the logits' shape; copies them out. */
static int step_body(lua_State *L) {
    step_call *c = lua_touserdata(L, 1);
    lua_settop(L, 2);
    sw_lua_push_batch(L, c->batch);
    sw_lua_push_tensor_copy(L, c->logits);
    lua_call(L, 2, 2);
    char shape[64];
    sw_shape_format(&c->logits->shape, shape, sizeof shape);
    int is_num = 0;
    lua_Number loss = lua_tonumberx(L, -2, &is_num);
    sw_tensor *grad = sw_lua_test_tensor(L, -1);
    if (!is_num || !grad || !sw_shape_equal(&grad->shape, &c->logits->shape))
        return luaL_error(L, "it must return the loss (a number) and its gradient with respect "
                          "to the output (a tensor of shape %s), e.g. "
                          "`return sw.loss.cross_entropy(output, batch.y)`", shape);
    *c->loss = loss;
    memcpy(c->dlogits->data, grad->data, grad->numel * sizeof(float));
    return 0;
}

static sw_status lua_training_step(void *ctx, const sw_batch *batch, const sw_tensor *logits,
                                   double *loss, sw_tensor *dlogits) {
    sw_lua_evaluator *u = ctx;
    step_call c = {batch, logits, loss, dlogits};
    return protected_call(u, step_body, &c, u->step_slot, "training_step");
}

/* ---- construction ------------------------------------------------------------------------- */

static void read_optimizer(lua_State *L, int t, sw_optim_config *out) {
    static const char *const known[] = {"kind", "lr", "momentum", "dampening", "nesterov",
                                        "weight_decay", "betas", "eps", NULL};
    luaL_checktype(L, t, LUA_TTABLE);
    sw_lua_check_keys(L, t, known, "optimizer");
    const char *kind_name = sw_lua_opt_str_field(L, t, "kind", NULL);
    sw_optim_kind kind;
    if (!kind_name || sw_optim_kind_from_name(kind_name, &kind) != SW_OK)
        luaL_error(L, "optimizer: kind must be \"sgd\", \"adam\" or \"adamw\" (use "
                   "sw.optim.SGD{...}, sw.optim.Adam{...} or sw.optim.AdamW{...})");
    sw_optim_config c = sw_optim_config_default(kind);
    c.lr = (float)sw_lua_opt_num_field(L, t, "lr", c.lr);
    c.momentum = (float)sw_lua_opt_num_field(L, t, "momentum", c.momentum);
    c.dampening = (float)sw_lua_opt_num_field(L, t, "dampening", c.dampening);
    c.nesterov = sw_lua_opt_bool_field(L, t, "nesterov", c.nesterov);
    c.weight_decay = (float)sw_lua_opt_num_field(L, t, "weight_decay", c.weight_decay);
    c.eps = (float)sw_lua_opt_num_field(L, t, "eps", c.eps);
    if (lua_getfield(L, t, "betas") != LUA_TNIL) {
        if (!lua_istable(L, -1) || lua_rawlen(L, -1) != 2)
            luaL_error(L, "optimizer: betas must be {beta1, beta2}");
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2);
        c.beta1 = (float)luaL_checknumber(L, -2);
        c.beta2 = (float)luaL_checknumber(L, -1);
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
    if (!(c.lr > 0)) luaL_error(L, "optimizer: lr must be positive, got %f", (double)c.lr);
    if (c.momentum < 0 || c.weight_decay < 0)
        luaL_error(L, "optimizer: momentum and weight_decay must be >= 0");
    *out = c;
}

static void read_schedule(lua_State *L, int t, sw_lr_schedule *out) {
    sw_lr_schedule s = *out;
    if (lua_type(L, t) == LUA_TSTRING) {
        if (sw_lr_kind_from_name(lua_tostring(L, t), &s.kind) != SW_OK)
            sw_lua_raise(L, "schedule");
        *out = s;
        return;
    }
    static const char *const known[] = {"kind", "warmup", "step_size", "gamma", "total_steps",
                                        "min_lr", NULL};
    luaL_checktype(L, t, LUA_TTABLE);
    sw_lua_check_keys(L, t, known, "schedule");
    const char *kind = sw_lua_opt_str_field(L, t, "kind", NULL);
    if (!kind) luaL_error(L, "schedule: kind is missing (\"constant\", \"step\" or \"cosine\")");
    if (sw_lr_kind_from_name(kind, &s.kind) != SW_OK) sw_lua_raise(L, "schedule");
    s.warmup_steps = (long)sw_lua_opt_int_field(L, t, "warmup", s.warmup_steps);
    s.step_size = (long)sw_lua_opt_int_field(L, t, "step_size", s.step_size);
    s.gamma = (float)sw_lua_opt_num_field(L, t, "gamma", s.gamma);
    s.total_steps = (long)sw_lua_opt_int_field(L, t, "total_steps", s.total_steps);
    s.min_lr = (float)sw_lua_opt_num_field(L, t, "min_lr", s.min_lr);
    if (s.kind == SW_LR_STEP && s.step_size <= 0)
        luaL_error(L, "schedule: a step schedule needs step_size > 0");
    *out = s;
}

static sw_lua_evaluator *to_evaluator(lua_State *L, int idx) {
    return luaL_checkudata(L, idx, SW_LUA_EVALUATOR);
}

static sw_lua_evaluator *check_evaluator(lua_State *L, int idx) {
    sw_lua_evaluator *u = to_evaluator(L, idx);
    if (!u->ready) luaL_error(L, "the evaluator has been freed");
    return u;
}

/* Pushes t[key] and returns it as an open dataset, or NULL when it is nil. */
static sw_lua_dataset *dataset_field(lua_State *L, int t, const char *key) {
    if (lua_getfield(L, t, key) == LUA_TNIL) return NULL;
    if (!luaL_testudata(L, -1, SW_LUA_DATASET))
        luaL_error(L, "sw.Evaluator: %s must be a dataset (from sw.data), got %s", key,
                   luaL_typename(L, -1));
    return sw_lua_check_dataset(L, -1);
}

/* sw.Evaluator{train=ds, test=ds, batch_size=128, eval_batch_size=512, optimizer=...,
 *              schedule=..., augment=..., training_step=fn, seed=0, eval_every_epoch=true,
 *              phase="train"} */
static int l_evaluator_new(lua_State *L) {
    static const char *const known[] = {
        "train", "test", "batch_size", "eval_batch_size", "optimizer", "schedule", "augment",
        "training_step", "seed", "eval_every_epoch", "phase", NULL};
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    sw_lua_check_keys(L, 1, known, "sw.Evaluator");

    sw_train_config cfg = sw_train_config_default();
    lua_Integer bs = sw_lua_opt_int_field(L, 1, "batch_size", cfg.batch_size);
    lua_Integer ebs = sw_lua_opt_int_field(L, 1, "eval_batch_size", cfg.eval_batch_size);
    if (bs < 1 || bs > 65536 || ebs < 1 || ebs > 65536)
        return luaL_error(L, "sw.Evaluator: batch sizes must be in [1, 65536]");
    cfg.batch_size = (int)bs;
    cfg.eval_batch_size = (int)ebs;
    cfg.seed = (uint64_t)sw_lua_opt_int_field(L, 1, "seed", 0);
    cfg.eval_every_epoch = sw_lua_opt_bool_field(L, 1, "eval_every_epoch", 1);
    if (lua_getfield(L, 1, "optimizer") != LUA_TNIL) read_optimizer(L, lua_gettop(L), &cfg.optim);
    lua_pop(L, 1);
    if (lua_getfield(L, 1, "schedule") != LUA_TNIL) read_schedule(L, lua_gettop(L), &cfg.lr);
    lua_pop(L, 1);

    /* Datasets: 2 = train, 3 = test (nil when absent). */
    sw_lua_dataset *train = dataset_field(L, 1, "train");
    sw_lua_dataset *test = dataset_field(L, 1, "test");
    if (!train && !test) return luaL_error(L, "sw.Evaluator: give train=, test= or both");
    cfg.augment = train ? train->augment : (sw_augment){0};
    if (lua_getfield(L, 1, "augment") != LUA_TNIL) cfg.augment = sw_lua_check_augment(L, 4);
    lua_pop(L, 1);
    if (lua_getfield(L, 1, "training_step") != LUA_TNIL) luaL_checktype(L, 4, LUA_TFUNCTION);
    cfg.phase = sw_lua_opt_str_field(L, 1, "phase", "train");
    lua_pushstring(L, cfg.phase); /* 5: anchored below as a user value */
    cfg.phase = lua_tostring(L, 5);

    sw_lua_evaluator *u = lua_newuserdatauv(L, sizeof *u, N_UV);
    memset(u, 0, sizeof *u);
    luaL_setmetatable(L, SW_LUA_EVALUATOR);
    for (int uv = UV_TRAIN; uv <= UV_PHASE; uv++) {
        lua_pushvalue(L, uv + 1);
        lua_setiuservalue(L, -2, uv);
    }
    sw_lua *ctx = sw_lua_ctx(L);
    if (sw_evaluator_init(&u->ev, train ? train->ds : NULL, test ? test->ds : NULL, &cfg) != SW_OK)
        return sw_lua_raise(L, "sw.Evaluator");
    u->ready = true;
    u->ctx = ctx;
    ctx->live_objects++;
    if (!lua_isnil(L, 4)) {
        u->ev.training_step = lua_training_step;
        u->ev.training_step_ctx = u;
    }
    for (int i = 0; i < ctx->opts.listeners.n; i++)
        if (sw_metric_bus_add(&u->ev.bus, ctx->opts.listeners.fn[i],
                              ctx->opts.listeners.ctx[i]) != SW_OK)
            return sw_lua_raise(L, "sw.Evaluator");
    if (sw_metric_bus_add(&u->ev.bus, lua_metric_listener, u) != SW_OK)
        return sw_lua_raise(L, "sw.Evaluator");
    if (ctx->opts.poll) {
        u->ev.poll = sw_lua_poll;
        u->ev.poll_ctx = ctx;
    }
    return 1;
}

static int ev_gc(lua_State *L) {
    sw_lua_evaluator *u = to_evaluator(L, 1);
    /* Only a callback of the run itself can get here while it runs (the collector cannot:
     * the running evaluator is on the stack). */
    if (u->L) return luaL_error(L, "the evaluator is running; it cannot be freed now");
    if (u->ready) {
        sw_evaluator_deinit(&u->ev);
        u->ready = false;
        sw_lua_ctx(L)->live_objects--;
    }
    free(u->cb_error);
    u->cb_error = NULL;
    return 0;
}

/* Checks that the datasets the evaluator borrows are still open (nobody closed them early)
 * and marks them busy (by `delta`) for the duration of a run. */
static void pin_datasets(lua_State *L, int idx, int delta) {
    for (int uv = UV_TRAIN; uv <= UV_TEST; uv++) {
        if (lua_getiuservalue(L, idx, uv) != LUA_TNIL)
            sw_lua_check_dataset(L, -1)->busy += delta;
        lua_pop(L, 1);
    }
}

/* Shapes must agree before any work starts, with a message that says which. */
static void check_fits(lua_State *L, const sw_model *m, const sw_dataset *ds) {
    sw_shape have = sw_shape_3d(ds->channels, ds->height, ds->width);
    sw_shape out = sw_model_output_shape(m);
    char a[64], b[64];
    if (!sw_shape_equal(&m->input_shape, &have))
        luaL_error(L, "model \"%s\" takes inputs of shape %s but %s images are %s", m->arch,
                   sw_shape_format(&m->input_shape, a, sizeof a), ds->name,
                   sw_shape_format(&have, b, sizeof b));
    if (out.ndim != 1 || out.dims[0] != ds->n_classes)
        luaL_error(L, "model \"%s\" has outputs of shape %s but %s has %d classes", m->arch,
                   sw_shape_format(&out, a, sizeof a), ds->name, ds->n_classes);
}

/* Raises the outcome of a run: a callback's error first (it caused the stop), then the
 * status. Frees the kept callback message. */
static void raise_outcome(lua_State *L, sw_lua_evaluator *u, sw_status st, const char *what);

sw_evaluator *sw_lua_check_evaluator(lua_State *L, int idx) {
    return &check_evaluator(L, idx)->ev;
}

/* Everything that can fail comes first (the evaluator and its datasets are open, shapes fit,
 * no run in progress); then the slots are pushed and the run marks set, which cannot fail. */
sw_evaluator *sw_lua_evaluator_begin_run(lua_State *L, int idx, const sw_model *m,
                                         const char *what) {
    idx = lua_absindex(L, idx);
    sw_lua_evaluator *u = check_evaluator(L, idx);
    if (u->L) luaL_error(L, "%s: the evaluator is already running", what);
    pin_datasets(L, idx, 0);
    if (u->ev.train_set) check_fits(L, m, u->ev.train_set);
    if (u->ev.test_set) check_fits(L, m, u->ev.test_set);
    luaL_checkstack(L, 2, what);
    push_listeners(L);
    lua_getiuservalue(L, idx, UV_STEP);
    u->listeners_slot = lua_gettop(L) - 1;
    u->step_slot = lua_gettop(L);
    u->L = L;
    pin_datasets(L, idx, 1);
    return &u->ev;
}

void sw_lua_evaluator_end_run(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    sw_lua_evaluator *u = to_evaluator(L, idx);
    pin_datasets(L, idx, -1);
    u->L = NULL;
}

void sw_lua_evaluator_raise_outcome(lua_State *L, int idx, sw_status st, const char *what) {
    raise_outcome(L, to_evaluator(L, idx), st, what);
}

static void raise_outcome(lua_State *L, sw_lua_evaluator *u, sw_status st, const char *what) {
    if (u->cb_error) {
        lua_pushfstring(L, "%s: %s", what, u->cb_error);
        free(u->cb_error);
        u->cb_error = NULL;
        lua_error(L);
    }
    if (st == SW_ERR_INTERRUPTED && u->ctx->interrupted)
        luaL_error(L, "interrupted: %s", sw_error_message());
    if (st != SW_OK) sw_lua_raise(L, what);
}

static long opt_limit(lua_State *L, int idx, const char *name) {
    if (lua_isnoneornil(L, idx)) return -1;
    lua_Integer v = luaL_checkinteger(L, idx);
    if (v < 0 || v > INT32_MAX)
        luaL_error(L, "evaluator:train: %s must be >= 0 (or nil for no limit), got %I", name, v);
    return (long)v;
}

/* evaluator:train(model, max_steps, max_epochs): nil = no limit (give at least one). */
static int ev_train(lua_State *L) {
    sw_lua_evaluator *u = check_evaluator(L, 1);
    sw_lua_model *mu = sw_lua_check_model(L, 2);
    long max_steps = opt_limit(L, 3, "max_steps");
    long max_epochs = opt_limit(L, 4, "max_epochs");
    lua_settop(L, 2);
    if (u->L) return luaL_error(L, "evaluator:train: this evaluator is already running");
    sw_lua_model_check_idle(L, mu, "evaluator:train");
    pin_datasets(L, 1, 0);
    if (!u->ev.train_set)
        return luaL_error(L, "evaluator:train: the evaluator has no training set (train=)");

    sw_lua_evaluator_begin_run(L, 1, mu->m, "evaluator:train");
    /* From here to the end of the run nothing raises, so the busy marks always come off. */
    mu->busy++;
    sw_status st = sw_evaluator_train(&u->ev, mu->m, max_steps, (int)max_epochs);
    mu->busy--;
    sw_lua_evaluator_end_run(L, 1);
    raise_outcome(L, u, st, "evaluator:train");
    return 0;
}

/* evaluator:evaluate(model) -> accuracy in [0, 1], mean loss (on the test set). */
static int ev_evaluate(lua_State *L) {
    sw_lua_evaluator *u = check_evaluator(L, 1);
    sw_lua_model *mu = sw_lua_check_model(L, 2);
    sw_lua_model_check_idle(L, mu, "evaluator:evaluate");
    pin_datasets(L, 1, 0);
    if (!u->ev.test_set)
        return luaL_error(L, "evaluator:evaluate: the evaluator has no test set (test=)");
    check_fits(L, mu->m, u->ev.test_set);
    double acc = 0, loss = 0;
    mu->busy++;
    sw_status st = sw_evaluator_evaluate(&u->ev, mu->m, &acc, &loss);
    mu->busy--;
    if (st != SW_OK) return sw_lua_raise(L, "evaluator:evaluate");
    lua_pushnumber(L, acc);
    lua_pushnumber(L, loss);
    return 2;
}

static int ev_tostring(lua_State *L) {
    sw_lua_evaluator *u = to_evaluator(L, 1);
    if (!u->ready) {
        lua_pushliteral(L, "evaluator (freed)");
        return 1;
    }
    lua_pushfstring(L, "evaluator (train %s, test %s, batch %d)",
                    u->ev.train_set ? u->ev.train_set->name : "none",
                    u->ev.test_set ? u->ev.test_set->name : "none", u->ev.cfg.batch_size);
    return 1;
}

/* ---- losses ------------------------------------------------------------------------------- */

/* Reads the 0-based class labels at idx (a Lua array of n integers) into a new buffer owned
 * by a userdata pushed on the stack. */
static int *check_labels(lua_State *L, int idx, int n) {
    luaL_checktype(L, idx, LUA_TTABLE);
    if ((int)lua_rawlen(L, idx) != n)
        luaL_error(L, "labels: %d given for a batch of %d", (int)lua_rawlen(L, idx), n);
    int *labels = lua_newuserdatauv(L, (size_t)n * sizeof(int), 0);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, idx, i + 1);
        int ok = 0;
        lua_Integer v = lua_tointegerx(L, -1, &ok);
        if (!ok || v < 0 || v > INT32_MAX)
            luaL_error(L, "labels[%d] is not a class index (0-based integer)", i + 1);
        labels[i] = (int)v;
        lua_pop(L, 1);
    }
    return labels;
}

static int batch_rows(lua_State *L, const sw_tensor *t, const char *what) {
    if (t->shape.ndim != 2) luaL_error(L, "%s: expects [N, classes] logits", what);
    return t->shape.dims[0];
}

/* sw.loss.cross_entropy(logits [N, C], labels) -> mean loss, gradient [N, C] */
static int l_cross_entropy(lua_State *L) {
    sw_tensor *logits = sw_lua_check_tensor(L, 1);
    int n = batch_rows(L, logits, "cross_entropy");
    int *labels = check_labels(L, 2, n);
    sw_tensor *grad = sw_lua_push_tensor(L, &logits->shape);
    double loss = 0;
    if (sw_loss_cross_entropy(logits, labels, 1.0f, &loss, grad) != SW_OK)
        return sw_lua_raise(L, "cross_entropy");
    lua_pushnumber(L, loss);
    lua_insert(L, -2);
    return 2;
}

/* sw.loss.mse(pred, target) -> mean squared error, gradient w.r.t. pred */
static int l_mse(lua_State *L) {
    sw_tensor *pred = sw_lua_check_tensor(L, 1), *target = sw_lua_check_tensor(L, 2);
    sw_tensor *grad = sw_lua_push_tensor(L, &pred->shape);
    double loss = 0;
    if (sw_loss_mse(pred, target, 1.0f, &loss, grad, NULL) != SW_OK) return sw_lua_raise(L, "mse");
    lua_pushnumber(L, loss);
    lua_insert(L, -2);
    return 2;
}

/* sw.loss.kl_div(student, teacher [, temperature=1]) -> loss, gradient w.r.t. student */
static int l_kl_div(lua_State *L) {
    sw_tensor *s = sw_lua_check_tensor(L, 1), *t = sw_lua_check_tensor(L, 2);
    float temperature = (float)luaL_optnumber(L, 3, 1.0);
    sw_tensor *grad = sw_lua_push_tensor(L, &s->shape);
    double loss = 0;
    if (sw_loss_kl_div(s, t, temperature, 1.0f, &loss, grad) != SW_OK)
        return sw_lua_raise(L, "kl_div");
    lua_pushnumber(L, loss);
    lua_insert(L, -2);
    return 2;
}

/* sw.count_correct(logits [N, C], labels) -> rows whose argmax is the label */
static int l_count_correct(lua_State *L) {
    sw_tensor *logits = sw_lua_check_tensor(L, 1);
    int n = batch_rows(L, logits, "count_correct");
    int *labels = check_labels(L, 2, n);
    lua_pushinteger(L, sw_count_correct(logits, labels));
    return 1;
}

/* ---- registration ------------------------------------------------------------------------- */

static const luaL_Reg ev_meth[] = {
    {"train", ev_train}, {"evaluate", ev_evaluate}, {NULL, NULL},
};
static const luaL_Reg ev_metameth[] = {
    {"__gc", ev_gc}, {"__close", ev_gc}, {"__tostring", ev_tostring}, {NULL, NULL},
};
static const luaL_Reg loss_functions[] = {
    {"cross_entropy", l_cross_entropy}, {"mse", l_mse}, {"kl_div", l_kl_div}, {NULL, NULL},
};
static const luaL_Reg functions[] = {
    {"Evaluator", l_evaluator_new}, {"on_metric", l_on_metric}, {"off_metric", l_off_metric},
    {"count_correct", l_count_correct}, {NULL, NULL},
};

int sw_lua_open_train(lua_State *L) {
    sw_lua_new_type(L, SW_LUA_EVALUATOR, ev_meth, ev_metameth);
    luaL_setfuncs(L, functions, 0);
    luaL_newlib(L, loss_functions);
    lua_setfield(L, -2, "loss");
    return 0;
}
