/* test_lua.c - the Lua binding driven through its C API: tensors, models and the sw.nn DSL,
 * errors that raise with the C side's message, garbage collection that frees each C object
 * once and keeps borrowed objects alive, training from Lua (callbacks, training_step,
 * interrupts), and safe mode. Most checks are Lua assertions run by sw_lua_run_string; a failed
 * one fails the test with the Lua error and its traceback. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_support.h"

#include "lua/sw_lua.h"

/* ---- fixtures and helpers ----------------------------------------------------------------- */

static int setup(void **state) {
    sw_lua *lua = NULL;
    if (sw_lua_new(NULL, &lua) != SW_OK) fail_msg("sw_lua_new: %s", sw_error_message());
    *state = lua;
    return 0;
}

static int teardown(void **state) {
    sw_lua_free(*state);
    return 0;
}

/* Runs Lua code that must succeed. */
#define LUA_OK(lua, code)                                                                  \
    do {                                                                                   \
        if (sw_lua_run_string((lua), (code), "=test") != SW_OK)                            \
            fail_msg("Lua failed:\n%s", sw_lua_last_error(lua));                           \
    } while (0)

/* Runs Lua code that must fail with an error containing `needle`. */
static void lua_fails_with(sw_lua *lua, const char *code, const char *needle) {
    sw_status st = sw_lua_run_string(lua, code, "=test");
    if (st == SW_OK) fail_msg("expected an error containing \"%s\" from:\n%s", needle, code);
    if (!strstr(sw_lua_last_error(lua), needle))
        fail_msg("error does not contain \"%s\":\n%s", needle, sw_lua_last_error(lua));
}

static const char *PRELUDE = "sw = require 'shrinkwrap'\n";

/* ---- tensors ------------------------------------------------------------------------------ */

/* Tensors built from nested tables keep their shape and values; + - * / work elementwise with
 * scalars on either side and with tensors of the same shape; reductions agree with hand sums. */
static void test_lua_tensor_arithmetic(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua, PRELUDE);
    LUA_OK(lua, "local t = sw.tensor{{1, 2, 3}, {4, 5, 6}}\n"
                "local s = t:shape(); assert(#s == 2 and s[1] == 2 and s[2] == 3)\n"
                "assert(t:sum() == 21 and t:mean() == 3.5 and t:max() == 6 and t:min() == 1)\n"
                "assert(math.abs(t:norm() - math.sqrt(91)) < 1e-9)\n"
                "local u = (t + 1) * 2 - t / 2\n"
                "assert(u:get(1, 1) == 3.5 and u:get(2, 3) == 11)\n"
                "assert((10 - t):get(1, 2) == 8 and (12 / t):get(2, 3) == 2)\n"
                "assert((t * t):sum() == 91 and (t - t):norm() == 0)\n"
                "assert((-t):sum() == -21 and (-t):abs():equal(t))\n"
                "assert(t:argmax() == 6 and t:count_nonzero() == 6 and #t == 2)\n"
                "local am = sw.tensor{{0, 9, 1}, {7, 2, 3}}:argmax(2)\n"
                "assert(am[1] == 2 and am[2] == 1)\n"
                "assert(sw.zeros{2, 3}:sum() == 0 and sw.ones(2, 3):sum() == 6)\n"
                "assert(sw.full({4}, 2.5):sum() == 10)\n"
                "local r = t:reshape{3, 2}; assert(r:get(3, 2) == 6 and r:numel() == 6)\n"
                "local back = t:totable(); assert(back[2][1] == 4 and #back[1] == 3)\n"
                "assert(tostring(t):find('shape %[2, 3%]'))\n"
                "assert(t:allclose(t + 1e-7) and not t:allclose(t + 1))\n");
}

/* sw.randn and sw.rand are reproducible from sw.manual_seed and roughly distributed as named. */
static void test_lua_tensor_random_is_seeded(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua, PRELUDE);
    LUA_OK(lua, "sw.manual_seed(7); local a = sw.randn{1000}\n"
                "sw.manual_seed(7); local b = sw.randn{1000}\n"
                "assert(a:equal(b) and not a:equal(sw.randn{1000}))\n"
                "assert(math.abs(a:mean()) < 0.15 and math.abs(a:norm() / math.sqrt(1000) - 1) "
                "< 0.1)\n"
                "local u = sw.rand{1000}; assert(u:min() >= 0 and u:max() < 1)\n");
}

/* Elements are read and written 1-based through t[{i, j}], t:get and t:set; a wrong index is
 * an error naming the range, never an out-of-bounds access. */
static void test_lua_tensor_element_access(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua, PRELUDE);
    LUA_OK(lua, "t = sw.zeros{2, 3}\n"
                "t[{2, 3}] = 5; t:set(1, 2, 7); t:set({1, 1}, -1)\n"
                "assert(t[{2, 3}] == 5 and t:get(1, 2) == 7 and t:get{1, 1} == -1)\n"
                "local v = sw.tensor{10, 20, 30}; v[2] = 21; assert(v[2] == 21 and v[3] == 30)\n");
    lua_fails_with(lua, "return t[{3, 1}]", "tensor index 3 out of range [1, 2] in dimension 1");
    lua_fails_with(lua, "return t[{1, 0}]", "out of range [1, 3] in dimension 2");
    lua_fails_with(lua, "return t:get(1)", "indexed with 1 index");
    lua_fails_with(lua, "t[{1, 1}] = 'x'", "number expected");
    lua_fails_with(lua, "return sw.tensor{{1, 2}, {3}}", "ragged table");
    lua_fails_with(lua, "return sw.tensor{{1, 'a'}}", "not a number");
    lua_fails_with(lua, "return sw.zeros{2, 0}", "must be a positive integer");
}

/* Misuse raises a Lua error with the message, a position and a traceback; it never crashes,
 * and the state stays usable afterwards. */
static void test_lua_errors_raise_with_messages(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua, PRELUDE);
    sw_status st = sw_lua_run_string(lua, "local a = sw.zeros{2, 3}\n"
                                          "local b = sw.zeros{3, 2}\n"
                                          "return a + b\n", "@shapes.lua");
    assert_int_equal(st, SW_ERR_ARG);
    const char *err = sw_lua_last_error(lua);
    assert_non_null(strstr(err, "shapes.lua:3:"));
    assert_non_null(strstr(err, "shapes [2, 3] and [3, 2] differ"));
    assert_non_null(strstr(err, "stack traceback"));
    assert_non_null(strstr(sw_error_message(), "differ"));
    lua_fails_with(lua, "return sw.zeros{2} + 'x'", "expected a number or a tensor");
    lua_fails_with(lua, "return sw.tensor{1}:norm(3):foo()", "attempt to index");
    lua_fails_with(lua, "return sw.zeros{1}.nosuch()", "attempt to call a nil value");
    lua_fails_with(lua, "return sw.models.fmnist_mlp():forward(sw.zeros{3, 5})",
                   "expects input [N, ...]");
    lua_fails_with(lua, "return sw.Evaluator{train = 1}", "train must be a dataset");
    lua_fails_with(lua, "return sw.optim.SGD{lr = 0.1, momentun = 0.9}",
                   "unknown option \"momentun\"");
    lua_fails_with(lua, "return sw.models.fmnist_mlp{pretrained = true, sed = 1}",
                   "unknown key \"sed\"");
    /* A non-string error object is described, not lost. */
    lua_fails_with(lua, "error({})", "error object is a table value");
    /* Still usable. */
    LUA_OK(lua, "assert(sw.ones{2}:sum() == 2)");
}

/* ---- models and the DSL -------------------------------------------------------------------- */

/* Children of a Sequential are named "0", "1", ... as in PyTorch, given names replace the
 * index, and nesting joins names with dots ("layer1.0.conv1"). */
static void test_lua_dsl_names(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua, PRELUDE);
    LUA_OK(lua,
           "local nn = sw.nn\n"
           "local net = nn.Sequential{\n"
           "  nn.Conv2d(1, 4, 3, {padding = 1}), nn.ReLU(),\n"
           "  nn.Sequential{ nn.Sequential{ nn.Conv2d(4, 4, 3, {padding = 1, name = 'conv1'}),\n"
           "                                nn.BatchNorm2d(4, {name = 'bn1'}) } ,\n"
           "                 name = 'layer1' },\n"
           "  nn.Flatten(), nn.Linear(4 * 28 * 28, 10, {name = 'fc'}),\n"
           "}\n"
           "local m = net:build{seed = 3}\n"
           "local names = {}\n"
           "for i, mod in ipairs(m:modules()) do names[i] = mod.name end\n"
           "local want = {'0', '1', 'layer1.0.conv1', 'layer1.0.bn1', '3', 'fc'}\n"
           "assert(#names == #want, table.concat(names, ' '))\n"
           "for i = 1, #want do assert(names[i] == want[i], names[i] .. ' ~= ' .. want[i]) end\n"
           "local mods = m:modules()\n"
           "assert(mods[3].type == 'Conv2d' and mods[3].inputs[1] == '1')\n"
           "assert(mods[6].shape[1] == 10 and mods[6].params == 4 * 28 * 28 * 10 + 10)\n"
           "local info = m:info()\n"
           "assert(info.arch == 'custom' and info.nodes == 6 and info.output_shape[1] == 10)\n"
           "assert(info.params == 40 + 148 + 8 + 31370)\n"
           "assert(m:param('layer1.0.conv1.weight'):numel() == 144)\n"
           "assert(tostring(net):find('%(layer1%): Sequential'))\n");
}

/* A Residual adds its body's output to its input (identity shortcut) or to its shortcut's
 * output, and a Concat stacks its branches' channels: checked against the formulas. */
static void test_lua_dsl_residual_and_concat_compute(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua, PRELUDE);
    LUA_OK(lua,
           "local nn = sw.nn\n"
           "sw.manual_seed(1)\n"
           "local x = sw.randn{3, 2, 4, 4}\n"
           "local res = nn.Residual{ nn.ReLU() }:build{input_shape = {2, 4, 4}}\n"
           "local relu = nn.ReLU():build{input_shape = {2, 4, 4}}\n"
           "assert(res(x):allclose(relu(x) + x, 0, 0))\n"
           "local names = {}\n"
           "for i, mod in ipairs(res:modules()) do names[i] = mod.name end\n"
           "assert(names[1] == '0' and names[2] == 'add')\n"
           "local add = res:modules()[2]\n"
           "assert(add.type == 'Add' and add.inputs[1] == '0' and add.inputs[2] == 'input')\n"
           /* With a shortcut, a 1x1 convolution scaling channel 1 by 2 and channel 2 by 3;
            * the root's name is ignored, as a PyTorch model's root has none. */
           "local blk = nn.Residual{ nn.ReLU(), shortcut = nn.Conv2d(2, 2, 1, {bias = false}),\n"
           "                          name = 'ignored_at_top' }:build{input_shape = {2, 4, 4}}\n"
           "blk:set_param('shortcut.weight', sw.tensor{{{{2}}, {{0}}}, {{{0}}, {{3}}}})\n"
           "local scaled = x:clone()\n"
           "for n = 1, 3 do for h = 1, 4 do for w = 1, 4 do\n"
           "  scaled[{n, 1, h, w}] = 2 * x[{n, 1, h, w}]\n"
           "  scaled[{n, 2, h, w}] = 3 * x[{n, 2, h, w}]\n"
           "end end end\n"
           "assert(blk(x):allclose(relu(x) + scaled, 1e-6, 1e-6))\n"
           "local cat = nn.Concat{ nn.Identity(), nn.ReLU() }:build{input_shape = {2, 4, 4}}\n"
           "local y = cat(x)\n"
           "assert(y:size(2) == 4)\n"
           "local ry = relu(x)\n"
           "for n = 1, 3 do for c = 1, 2 do for h = 1, 4 do for w = 1, 4 do\n"
           "  assert(y[{n, c, h, w}] == x[{n, c, h, w}])\n"
           "  assert(y[{n, c + 2, h, w}] == ry[{n, c, h, w}])\n"
           "end end end end\n"
           "local mods = cat:modules()\n"
           "assert(mods[3].name == 'cat' and mods[3].inputs[1] == '0')\n"
           "assert(mods[3].inputs[2] == '1')\n");
}

/* A whole residual network built with the DSL trains (its loss falls) through an evaluator,
 * and a single unbatched sample runs through the model. */
static void test_lua_dsl_graph_model_runs(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua, PRELUDE);
    LUA_OK(lua,
           "local nn = sw.nn\n"
           "local net = nn.Sequential{\n"
           "  nn.Conv2d(1, 8, 3, {stride = 2, padding = 1}), nn.BatchNorm2d(8), nn.ReLU(),\n"
           "  nn.Residual{ nn.Conv2d(8, 8, 3, {padding = 1}), nn.BatchNorm2d(8),\n"
           "               name = 'block' },\n"
           "  nn.Concat{ nn.Conv2d(8, 4, 1), nn.MaxPool2d(3, {stride = 1, padding = 1}) },\n"
           "  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(12, 10),\n"
           "}\n"
           "local m = net:build{seed = 2}\n"
           "local train = assert(sw.data.fashion_mnist{split = 'train', subset = 256})\n"
           "local ev = sw.Evaluator{train = train, batch_size = 32, seed = 1,\n"
           "                        optimizer = sw.optim.Adam{lr = 0.01}}\n"
           "local losses = {}\n"
           "local fn = sw.on_metric(function(e) if e.kind == 'step' then\n"
           "  losses[#losses + 1] = e.loss end end)\n"
           "ev:train(m, 16)\n"
           "sw.off_metric(fn)\n"
           "assert(#losses == 16)\n"
           "local first = (losses[1] + losses[2] + losses[3]) / 3\n"
           "local last = (losses[14] + losses[15] + losses[16]) / 3\n"
           "assert(last < first, ('loss did not fall: %g -> %g'):format(first, last))\n"
           "local x = train:get(1)\n"
           "local y = m:eval()(x)\n"
           "assert(y:dim() == 1 and y:size(1) == 10)\n");
}

/* Layer mistakes in the DSL are reported with the recipe's line and the offending node, not a
 * line inside the module's own Lua files. */
static void test_lua_dsl_errors_name_node_and_line(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua, PRELUDE);
    sw_status st = sw_lua_run_string(lua,
                                     "local nn = sw.nn\n"
                                     "local net = nn.Sequential{ nn.Conv2d(1, 4, 3),\n"
                                     "  nn.Linear(5, 2) }\n"
                                     "local m = net:build()\n", "@dsl.lua");
    assert_int_equal(st, SW_ERR_ARG);
    const char *err = sw_lua_last_error(lua);
    assert_non_null(strstr(err, "dsl.lua:4:"));
    assert_non_null(strstr(err, "\"1\""));
    lua_fails_with(lua, "return sw.nn.Conv2d(1, 0, 3)", "out_channels must be a positive");
    lua_fails_with(lua, "return sw.nn.Conv2d(1, 2, 3, {padd = 1})", "unknown option \"padd\"");
    lua_fails_with(lua, "return sw.nn.Sequential{ 3 }", "entry 1 is not a module");
    lua_fails_with(lua, "return sw.nn.Concat{ sw.nn.ReLU() }", "at least two branches");
    lua_fails_with(lua,
                   "return sw.nn.Sequential{ sw.nn.ReLU{name = 'a'}, sw.nn.ReLU{name = 'a'} }"
                   ":build()", "already used");
}

/* A model saved from Lua loads back with identical parameters, metadata keys are accepted, and
 * a missing file is a recoverable nil, message. */
static void test_lua_model_save_load_roundtrip(void **state) {
    sw_lua *lua = *state;
    char path[512], code[2600];
    snprintf(path, sizeof path, "%s/lua_roundtrip.safetensors", sw_test_tmpdir());
    snprintf(code, sizeof code,
             "sw = require 'shrinkwrap'\n"
             "local m = sw.models.fmnist_mlp{seed = 5}\n"
             "assert(m:save('%s', {origin = 'test', steps = 3}))\n"
             "local back = assert(sw.load('%s'))\n"
             "assert(back:info().arch == 'fmnist_mlp')\n"
             "local a, b = m:state_dict(), back:state_dict()\n"
             "local n = 0\n"
             "for k, v in pairs(a) do assert(v:equal(b[k]), k); n = n + 1 end\n"
             "assert(n == 6)\n"
             "local c = m:clone(); assert(c:param('fc1.weight'):equal(m:param('fc1.weight')))\n"
             "local x = sw.randn{4, 1, 28, 28}\n"
             "assert(m:eval()(x):equal(back:eval()(x)))\n"
             "local none, msg = sw.load('%s/absent.safetensors')\n"
             "assert(none == nil and msg:find('absent.safetensors'))\n"
             "local bad, why = m:save('/nonexistent-dir/x.safetensors')\n"
             "assert(bad == nil and why:find('nonexistent'))\n",
             path, path, sw_test_tmpdir());
    LUA_OK(lua, code);
}

/* sw.models.<name>{pretrained = true} either loads the zoo's weights file or says exactly how
 * to make it. */
static void test_lua_pretrained_is_loaded_or_explained(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua, PRELUDE);
    LUA_OK(lua, "local m, msg = sw.models.fmnist_mlp{pretrained = true}\n"
                "if m then assert(m:info().arch == 'fmnist_mlp')\n"
                "else assert(msg:find('shrinkwrap train %-%-model fmnist_mlp'), msg)\n"
                "     assert(msg:find('assets/models/fmnist_mlp.safetensors'), msg) end\n");
}

/* ---- garbage collection ------------------------------------------------------------------- */

/* Every C object owned by a userdata is freed by the collector exactly once: a model closed
 * by hand (__close, twice) is counted down once, later use raises, and collection after that
 * frees nothing again (ASan would report a double free). */
static void test_lua_gc_frees_exactly_once(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua, PRELUDE);
    int base = sw_lua_live_objects(lua);
    LUA_OK(lua, "models = {}\n"
                "for i = 1, 5 do models[i] = sw.models.fmnist_mlp{seed = i} end\n");
    assert_int_equal(sw_lua_live_objects(lua), base + 5);
    LUA_OK(lua, "models = nil; collectgarbage(); collectgarbage()");
    assert_int_equal(sw_lua_live_objects(lua), base);

    LUA_OK(lua, "m = sw.models.fmnist_mlp{}\n"
                "local gc = getmetatable(m).__gc\n"
                "gc(m); gc(m)\n");
    assert_int_equal(sw_lua_live_objects(lua), base);
    lua_fails_with(lua, "return m:info()", "model has been freed");
    LUA_OK(lua, "assert(tostring(m) == 'model (freed)')\n"
                "m = nil; collectgarbage(); collectgarbage()");
    assert_int_equal(sw_lua_live_objects(lua), base);

    /* to-be-closed variables free at the end of their scope */
    LUA_OK(lua, "do local m <close> = sw.models.fmnist_mlp{} end");
    assert_int_equal(sw_lua_live_objects(lua), base);
}

/* An evaluator keeps its datasets alive after the recipe drops its own references; they are
 * freed once the evaluator is garbage too. */
static void test_lua_evaluator_keeps_datasets_alive(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua, PRELUDE);
    int base = sw_lua_live_objects(lua);
    LUA_OK(lua, "ev = sw.Evaluator{\n"
                "  train = assert(sw.data.fashion_mnist{split = 'train', subset = 64}),\n"
                "  test = assert(sw.data.fashion_mnist{split = 'test', subset = 64}),\n"
                "  batch_size = 32}\n"
                "collectgarbage(); collectgarbage()\n");
    assert_int_equal(sw_lua_live_objects(lua), base + 3);
    LUA_OK(lua, "local m = sw.models.fmnist_mlp{seed = 1}\n"
                "ev:train(m, 2)\n"
                "local acc, loss = ev:evaluate(m)\n"
                "assert(acc >= 0 and acc <= 1 and loss > 0)\n");
    LUA_OK(lua, "ev = nil; collectgarbage(); collectgarbage()");
    assert_int_equal(sw_lua_live_objects(lua), base);
}

/* A loader keeps its dataset alive; closing the dataset early makes the loader raise instead
 * of reading freed memory. Batches cover the dataset once per epoch. */
static void test_lua_loader_borrows_dataset(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua, PRELUDE);
    int base = sw_lua_live_objects(lua);
    LUA_OK(lua, "loader = assert(sw.data.fashion_mnist{split = 'test', subset = 100})\n"
                "  :loader{batch_size = 32, shuffle = true, seed = 3}\n"
                "collectgarbage(); collectgarbage()\n"
                "assert(#loader == 4)\n"
                "local seen, batches = 0, 0\n"
                "for x, y in loader:epoch() do\n"
                "  batches = batches + 1; seen = seen + x:size(1)\n"
                "  assert(#y == x:size(1) and x:size(2) == 1 and x:size(3) == 28)\n"
                "  for _, label in ipairs(y) do assert(label >= 0 and label <= 9) end\n"
                "end\n"
                "assert(seen == 100 and batches == 4)\n");
    assert_int_equal(sw_lua_live_objects(lua), base + 2);
    LUA_OK(lua, "ds = assert(sw.data.fashion_mnist{split = 'test', subset = 10})\n"
                "l2 = ds:loader{batch_size = 4}\n"
                "getmetatable(ds).__close(ds)\n");
    lua_fails_with(lua, "for x in l2:epoch() do end", "dataset has been freed");
    LUA_OK(lua, "loader, ds, l2 = nil; collectgarbage(); collectgarbage()");
    assert_int_equal(sw_lua_live_objects(lua), base);
}

/* Closing the state finalises everything still alive (ASan checks nothing leaks). */
static void test_lua_close_frees_everything(void **state) {
    (void)state;
    sw_lua *lua = NULL;
    assert_int_equal(sw_lua_new(NULL, &lua), SW_OK);
    LUA_OK(lua, "sw = require 'shrinkwrap'\n"
                "keep = { sw.models.fmnist_cnn{}, sw.data.fashion_mnist{split = 'test', "
                "subset = 8} }\n"
                "keep[3] = keep[2]:loader{}\n"
                "keep[4] = sw.Evaluator{test = keep[2]}\n");
    assert_int_equal(sw_lua_live_objects(lua), 4);
    sw_lua_free(lua);
}

/* ---- training from Lua ---------------------------------------------------------------------- */

/* The DSL MLP used by the training tests. */
static const char *MLP =
    "sw = require 'shrinkwrap'\n"
    "function mlp(seed)\n"
    "  return sw.nn.Sequential{ sw.nn.Flatten(), sw.nn.Linear(784, 32), sw.nn.ReLU(),\n"
    "                           sw.nn.Linear(32, 10) }:build{seed = seed}\n"
    "end\n"
    "train = assert(sw.data.fashion_mnist{split = 'train', subset = 256})\n"
    "test = assert(sw.data.fashion_mnist{split = 'test', subset = 128})\n";

/* A Lua training_step returning cross-entropy and its gradient trains bit-identically to the
 * built-in loss; it sees the batch's inputs and labels. */
static void test_lua_training_step_matches_builtin_loss(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua, MLP);
    LUA_OK(lua, "local a, b = mlp(1), mlp(1)\n"
                "sw.Evaluator{train = train, batch_size = 32, seed = 4}:train(a, 6)\n"
                "local calls = 0\n"
                "sw.Evaluator{train = train, batch_size = 32, seed = 4,\n"
                "  training_step = function(batch, output)\n"
                "    calls = calls + 1\n"
                "    assert(batch.size == 32 and #batch.y == 32 and batch.x:size(1) == 32)\n"
                "    assert(output:size(1) == 32 and output:size(2) == 10)\n"
                "    return sw.loss.cross_entropy(output, batch.y)\n"
                "  end}:train(b, 6)\n"
                "assert(calls == 6)\n"
                "for k, v in pairs(a:state_dict()) do assert(v:equal(b:param(k)), k) end\n");
}

/* A training_step that returns the wrong things, or raises, stops training with its message;
 * the model and the evaluator stay usable. */
static void test_lua_training_step_errors_are_reported(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua, MLP);
    LUA_OK(lua, "m = mlp(1)\n"
                "bad = sw.Evaluator{train = train, test = test, batch_size = 32,\n"
                "  training_step = function(batch, output) return 1.0 end}\n"
                "boom = sw.Evaluator{train = train, batch_size = 32,\n"
                "  training_step = function(batch, output) error('custom loss exploded') end}\n");
    lua_fails_with(lua, "bad:train(m, 3)", "gradient with respect to the output");
    lua_fails_with(lua, "boom:train(m, 3)", "custom loss exploded");
    LUA_OK(lua, "local acc = bad:evaluate(m); assert(acc >= 0)\n"
                "sw.Evaluator{train = train, batch_size = 32}:train(m, 1)\n");
}

/* on_metric callbacks get every event as a table with its fields; an error in one stops the
 * run with the callback's message; calling the model being trained, or freeing the model, a
 * dataset or the evaluator of the run, from a callback is refused rather than corrupting it. */
static void test_lua_metric_callbacks(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua, MLP);
    LUA_OK(lua, "kinds = {}\n"
                "local f = sw.on_metric(function(e)\n"
                "  kinds[#kinds + 1] = e.kind\n"
                "  if e.kind == 'step' then assert(e.loss > 0 and e.lr > 0 and e.total_steps == 4)"
                " end\n"
                "  if e.kind == 'eval' then assert(e.accuracy >= 0 and e.accuracy <= 1) end\n"
                "  if e.kind == 'end' then assert(e.message == 'completed') end\n"
                "end)\n"
                "sw.Evaluator{train = train, test = test, batch_size = 64}:train(mlp(1), 4)\n"
                "assert(sw.off_metric(f) and not sw.off_metric(f))\n"
                "local s = table.concat(kinds, ' ')\n"
                "assert(s == 'begin step step step step epoch eval end', s)\n");
    LUA_OK(lua, "m = mlp(2)\n"
                "ev = sw.Evaluator{train = train, batch_size = 32}\n"
                "f = sw.on_metric(function(e) if e.kind == 'step' and e.step == 2 then\n"
                "  error('listener gave up') end end)\n");
    lua_fails_with(lua, "ev:train(m, 8)", "listener gave up");
    LUA_OK(lua, "sw.off_metric(f)\n"
                "f = sw.on_metric(function(e) if e.kind == 'step' then m(sw.zeros{1, 1, 28, 28})"
                " end end)\n");
    lua_fails_with(lua, "ev:train(m, 2)", "being trained or evaluated");
    /* Nothing a run uses can be freed from inside it. */
    LUA_OK(lua, "sw.off_metric(f)\n"
                "f = sw.on_metric(function(e) getmetatable(m).__close(m) end)\n");
    lua_fails_with(lua, "ev:train(m, 2)", "it cannot be freed now");
    LUA_OK(lua, "sw.off_metric(f)\n"
                "f = sw.on_metric(function(e) getmetatable(train).__close(train) end)\n");
    lua_fails_with(lua, "ev:train(m, 2)", "in use by a running evaluator");
    LUA_OK(lua, "sw.off_metric(f)\n"
                "f = sw.on_metric(function(e) getmetatable(ev).__gc(ev) end)\n");
    lua_fails_with(lua, "ev:train(m, 2)", "the evaluator is running");
    LUA_OK(lua, "sw.off_metric(f); ev:train(m, 1); assert(m:info().params > 0)");
}

/* ---- interrupts and safe mode ------------------------------------------------------------- */

typedef struct poll_state {
    int calls;
    int fire_after; /* returns true from this call on */
} poll_state;

static bool test_poll(void *ctx) {
    poll_state *p = ctx;
    return ++p->calls >= p->fire_after;
}

/* The count hook stops a runaway Lua loop through the poll function, and pcall cannot swallow
 * the interrupt for long. */
static void test_lua_interrupt_stops_busy_loop(void **state) {
    (void)state;
    poll_state p = {0, 50};
    sw_lua_options opts = sw_lua_options_default();
    opts.poll = test_poll;
    opts.poll_ctx = &p;
    sw_lua *lua = NULL;
    assert_int_equal(sw_lua_new(&opts, &lua), SW_OK);
    sw_status st = sw_lua_run_string(lua, "while true do pcall(function() "
                                          "for i = 1, 1e6 do end end) end", "=loop");
    assert_int_equal(st, SW_ERR_INTERRUPTED);
    assert_true(sw_lua_interrupted(lua));
    assert_non_null(strstr(sw_lua_last_error(lua), "interrupted"));
    sw_lua_free(lua);
}

/* Counts STEP events; the poll below fires once two have been seen. */
static void count_steps(void *ctx, const sw_metric_event *ev) {
    if (ev->kind == SW_METRIC_STEP) ++*(int *)ctx;
}

static bool poll_after_two_steps(void *ctx) { return *(int *)ctx >= 2; }

/* An interrupt during training stops it at the step boundary where it is noticed: the recipe
 * gets the error "interrupted", host listeners saw exactly the steps taken, and the state
 * reports the interrupt. */
static void test_lua_interrupt_stops_training(void **state) {
    (void)state;
    int steps = 0;
    sw_lua_options opts = sw_lua_options_default();
    opts.poll = poll_after_two_steps;
    opts.poll_ctx = &steps;
    sw_metric_bus_add(&opts.listeners, count_steps, &steps);
    sw_lua *lua = NULL;
    assert_int_equal(sw_lua_new(&opts, &lua), SW_OK);
    LUA_OK(lua, MLP);
    sw_status st = sw_lua_run_string(lua, "m = mlp(1)\n"
                                          "sw.Evaluator{train = train, batch_size = 16}"
                                          ":train(m, 1000)\n", "=train");
    assert_int_equal(st, SW_ERR_INTERRUPTED);
    assert_non_null(strstr(sw_lua_last_error(lua), "interrupted"));
    assert_int_equal(steps, 2);
    assert_true(sw_lua_interrupted(lua));
    sw_lua_free(lua);
}

/* sw.args gets numbers converted, flags, negated flags, dashed keys and positional words. */
static void test_lua_args(void **state) {
    sw_lua *lua = *state;
    char *argv[] = {"--steps", "20", "--lr=0.5", "--fast", "--max-steps", "-3", "--name",
                    "cnn", "extra", "--no-augment", "--last"};
    assert_int_equal(sw_lua_set_args(lua, "r.lua", 11, argv), SW_OK);
    LUA_OK(lua, "local a = require('shrinkwrap').args\n"
                "assert(a[0] == 'r.lua' and a.steps == 20 and math.type(a.steps) == 'integer')\n"
                "assert(a.lr == 0.5 and a.fast == true and a.max_steps == -3)\n"
                "assert(a.name == 'cnn' and a[1] == 'extra' and a.augment == false)\n"
                "assert(a.last == true and a[2] == nil)\n");
}

/* Safe mode removes process spawning, native code, bytecode and the debug library, and keeps
 * writes inside the working directory; reading and the module still work. */
static void test_lua_safe_mode_blocks_escapes(void **state) {
    (void)state;
    sw_lua_options opts = sw_lua_options_default();
    opts.safe = true;
    sw_lua *lua = NULL;
    assert_int_equal(sw_lua_new(&opts, &lua), SW_OK);
    char cwd[1024];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(sw_test_tmpdir()), 0);
    LUA_OK(lua, "assert(os.execute == nil and io.popen == nil and package.loadlib == nil)\n"
                "assert(package.cpath == '' and #package.searchers == 2)\n"
                "assert(debug.getinfo == nil and debug.sethook == nil and debug.traceback)\n"
                "local ok = pcall(require, 'socket.core'); assert(not ok)\n"
                "local f, err = load(string.dump(function() return 1 end))\n"
                "assert(f == nil and err:find('binary'))\n"
                "assert(load('return 41 + 1')() == 42)\n"
                "local out = assert(io.open('inside.txt', 'w')); out:write('ok'); out:close()\n"
                "assert(io.open('inside.txt'):read('a') == 'ok')\n"
                "assert(os.remove('inside.txt'))\n"
                "local sw = require 'shrinkwrap'\n"
                "assert(sw.models.fmnist_mlp{}:save('model.safetensors'))\n");
    lua_fails_with(lua, "io.open('/tmp/sw-safe-escape.txt', 'w')", "safe mode writes only");
    lua_fails_with(lua, "io.open('../escape.txt', 'a')", "safe mode writes only");
    lua_fails_with(lua, "io.output('/tmp/sw-safe-escape.txt')", "safe mode writes only");
    lua_fails_with(lua, "os.remove('/tmp/sw-safe-absent-file')", "safe mode writes only");
    lua_fails_with(lua, "require('shrinkwrap').models.fmnist_mlp{}:save('/tmp/x.safetensors')",
                   "safe mode writes only");
    lua_fails_with(lua, "os.execute('true')", "attempt to call a nil value");
    assert_int_equal(access("/tmp/sw-safe-escape.txt", F_OK), -1);
    assert_int_equal(chdir(cwd), 0);
    sw_lua_free(lua);
}

/* Without safe mode the standard libraries are complete. */
static void test_lua_default_mode_is_unrestricted(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua, "assert(os.execute and io.popen and package.loadlib and debug.getinfo)");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lua_tensor_arithmetic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lua_tensor_random_is_seeded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lua_tensor_element_access, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lua_errors_raise_with_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lua_dsl_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lua_dsl_residual_and_concat_compute, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lua_dsl_graph_model_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lua_dsl_errors_name_node_and_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lua_model_save_load_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lua_pretrained_is_loaded_or_explained, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lua_gc_frees_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lua_evaluator_keeps_datasets_alive, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lua_loader_borrows_dataset, setup, teardown),
        cmocka_unit_test(test_lua_close_frees_everything),
        cmocka_unit_test_setup_teardown(test_lua_training_step_matches_builtin_loss, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lua_training_step_errors_are_reported, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lua_metric_callbacks, setup, teardown),
        cmocka_unit_test(test_lua_interrupt_stops_busy_loop),
        cmocka_unit_test(test_lua_interrupt_stops_training),
        cmocka_unit_test_setup_teardown(test_lua_args, setup, teardown),
        cmocka_unit_test(test_lua_safe_mode_blocks_escapes),
        cmocka_unit_test_setup_teardown(test_lua_default_mode_is_unrestricted, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
