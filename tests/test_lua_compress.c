/* test_lua_compress.c - the compression API from Lua, driven through the C API of the binding:
 * config lists as Lua tables (and their errors, with Lua's 1-based entry numbers), pruners
 * with hand-computed masks, masks tables and files, fused chains built with from_compressor,
 * distillers with a Lua teacher_predict, quantizers and their calibration, ModelSpeedup, and
 * the lifetimes: every C object freed exactly once (ASan checks the "once"), borrowed models,
 * evaluators and compressors kept alive by their borrowers, a compressor collected during a
 * training step finalised only after it. Most checks are Lua assertions; a failed one fails
 * the test with the Lua error and its traceback. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_support.h"

#include "lua/sw_lua.h"

/* ---- fixtures and helpers ----------------------------------------------------------------- */

/* A small CNN for 28x28 images (conv1 4 channels, fc1 16 rows), datasets and an evaluator. */
static const char *PRELUDE =
    "sw = require 'shrinkwrap'\n"
    "nn = sw.nn\n"
    "function tiny(seed)\n"
    "  return nn.Sequential{\n"
    "    nn.Conv2d(1, 4, 3, {padding = 1, name = 'conv1'}), nn.BatchNorm2d(4, {name = 'bn1'}),\n"
    "    nn.ReLU{name = 'relu1'}, nn.MaxPool2d(4, {name = 'pool'}),\n"
    "    nn.Flatten{name = 'flatten'}, nn.Linear(196, 16, {name = 'fc1'}),\n"
    "    nn.ReLU{name = 'relu2'}, nn.Linear(16, 10, {name = 'fc2'}),\n"
    "  }:build{seed = seed or 0}\n"
    "end\n"
    "train = assert(sw.data.fashion_mnist{split = 'train', subset = 64})\n"
    "test = assert(sw.data.fashion_mnist{split = 'test', subset = 32})\n"
    "function evaluator(t)\n"
    "  t = t or {}\n"
    "  t.train = t.train or train; t.test = t.test or test\n"
    "  t.batch_size = t.batch_size or 16; t.eval_every_epoch = false; t.seed = 1\n"
    "  return sw.Evaluator(t)\n"
    "end\n";

static int setup(void **state) {
    sw_lua *lua = NULL;
    if (sw_lua_new(NULL, &lua) != SW_OK) fail_msg("sw_lua_new: %s", sw_error_message());
    if (sw_lua_run_string(lua, PRELUDE, "=prelude") != SW_OK)
        fail_msg("prelude: %s", sw_lua_last_error(lua));
    *state = lua;
    return 0;
}

static int teardown(void **state) {
    sw_lua_free(*state);
    return 0;
}

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

/* Collects twice (finalisers run in the first cycle, memory goes in the second). */
static void collect(sw_lua *lua) { LUA_OK(lua, "collectgarbage(); collectgarbage()"); }

/* ---- config lists ------------------------------------------------------------------------- */

/* Mistakes in a config list raise with the C side's message, the entry numbered as the Lua
 * table numbers it, and the recipe's line; the state stays usable. */
static void test_lua_compress_config_errors_name_the_entry(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua, "m = tiny()");
    sw_status st = sw_lua_run_string(lua,
                                     "local p = sw.L1NormPruner(m, {\n"
                                     "  {op_names = {'conv1'}, sparse_ratio = 0.5},\n"
                                     "  {op_names = {'fc1'}, sparse_ratio = 1.5},\n"
                                     "})\n", "@cfg.lua");
    assert_int_equal(st, SW_ERR_ARG);
    const char *err = sw_lua_last_error(lua);
    assert_non_null(strstr(err, "cfg.lua:1:"));
    assert_non_null(strstr(err, "config_list[2].sparse_ratio: 1.5 is not in [0, 1)"));
    lua_fails_with(lua, "sw.L1NormPruner(m, {{op_names = {'conv9'}, sparse_ratio = 0.5}})",
                   "config_list[1].op_names: \"conv9\" is not a module of the model");
    lua_fails_with(lua, "sw.L1NormPruner(m, {{op_types = {'Conv2d'}, sparsity = 0.5}})",
                   "config_list[1]");
    lua_fails_with(lua, "sw.L1NormPruner(m, {op_types = {'Conv2d'}, sparse_ratio = 0.5})",
                   "looks like a single entry");
    lua_fails_with(lua, "sw.L1NormPruner(m, {{op_types = {'Conv2d'}, sparse_ratio = print}})",
                   "config_list[1].sparse_ratio: a function cannot be a config value");
    lua_fails_with(lua, "local t = {op_types = {'Conv2d'}}; t.self = t\n"
                        "sw.L1NormPruner(m, {t})", "nested too deeply");
    lua_fails_with(lua, "sw.L1NormPruner(m, {{op_types = {'Conv2d', x = 1}}})",
                   "config_list[1].op_types: a table cannot mix array items and named keys");
    lua_fails_with(lua, "sw.L1NormPruner(m, {{op_types = {[1] = 'Conv2d', [3] = 'Linear'}}})",
                   "an array with holes");
    lua_fails_with(lua, "sw.L1NormPruner(m, 42)", "config_list (argument 2) must be a table");
    lua_fails_with(lua, "sw.L1NormPruner(42, {})", "argument 1 must be a model");
    lua_fails_with(lua, "sw.L1NormPruner(m, {}, 42)",
                   "the evaluator (argument 3) must be an sw.Evaluator");
    lua_fails_with(lua, "sw.SlimPruner(m, {{op_types = {'BatchNorm2d'}, sparse_ratio = 0.5}})",
                   "SlimPruner: training_steps (argument 4) is required");
    lua_fails_with(lua, "sw.TaylorPruner(m, {}, nil, 1.5)",
                   "training_steps (argument 4) must be an integer, got 1.5");
    lua_fails_with(lua, "sw.LevelPruner(m, {}, nil, 1)", "at most 3 arguments");
    /* Still usable, and nothing was attached by the failed constructors. */
    LUA_OK(lua, "local p = sw.L1NormPruner(m, {{op_names = {'conv1'}, sparse_ratio = 0.5}})\n"
                "assert(#p:warnings() == 0)\n");
}

/* The same config list reads the same from a Lua table and from JSON text; sw.null is JSON
 * null (granularity null = element-wise), and empty target_settings stay objects. */
static void test_lua_compress_config_tables_and_json_agree(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua,
           "local a, b = tiny(3), tiny(3)\n"
           "local pa = sw.LevelPruner(a, {{op_names = {'fc1'}, sparse_ratio = 0.25,\n"
           "                               granularity = sw.null, target_settings = {}}})\n"
           "local pb = sw.LevelPruner(b, '[{\"op_names\": [\"fc1\"], \"sparse_ratio\": 0.25,"
           " \"granularity\": null}]')\n"
           "local _, ma = pa:compress()\n"
           "local _, mb = pb:compress()\n"
           "assert(ma.fc1.weight:equal(mb.fc1.weight))\n"
           "assert(ma.fc1.weight:count_nonzero() == 196 * 16 - 784, 'element-wise 25%')\n"
           "assert(type(sw.null) == 'userdata')\n");
    lua_fails_with(lua, "sw.LevelPruner(tiny(), '[{\"op_names\": ')", "LevelPruner");
}

/* A later entry configuring a target again is dropped with a warning that numbers both
 * entries as Lua does. */
static void test_lua_compress_warnings_are_renumbered(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua, "local p = sw.L1NormPruner(tiny(), {\n"
                "  {op_names = {'fc1'}, sparse_ratio = 0.5},\n"
                "  {op_types = {'Linear'}, sparse_ratio = 0.75},\n"
                "})\n"
                "local w = p:warnings()\n"
                "assert(#w >= 1)\n"
                "local all = table.concat(w, '\\n')\n"
                "assert(all:find('config_list%[1%]') and all:find('config_list%[2%]'), all)\n"
                "assert(not all:find('config_list%[0%]'), all)\n");
}

/* ---- pruners and masks -------------------------------------------------------------------- */

/* L1NormPruner removes the rows with the smallest L1 norms: with fc1's row i filled with i,
 * rows 1..8 go at sparse_ratio 0.5, the bias follows the rows, and compress returns the model
 * and the masks; get_masks agrees; the masks apply to the model's forward. */
static void test_lua_compress_l1norm_masks_by_hand(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua,
           "m = tiny(1)\n"
           "local w = sw.zeros{16, 196}\n"
           "for i = 1, 16 do for j = 1, 196 do w[{i, j}] = (j % 2 == 0) and i or -i end end\n"
           "m:set_param('fc1.weight', w)\n"
           "local x = test:batch(1, 4)\n"
           "m:eval()\n"
           "local dense = m(x)\n"
           "p = sw.L1NormPruner(m, {{op_names = {'fc1'}, sparse_ratio = 0.5}})\n"
           "assert(tostring(p) == 'L1NormPruner on custom', tostring(p))\n"
           "assert(p:name() == 'L1NormPruner' and p:model() == m)\n"
           "local model, masks = p:compress()\n"
           "assert(model == m)\n"
           "local mw, mb = masks.fc1.weight, masks.fc1.bias\n"
           "assert(mw:dim() == 2 and mw:size(1) == 16 and mw:size(2) == 196)\n"
           "for i = 1, 16 do\n"
           "  local keep = i > 8 and 1 or 0\n"
           "  assert(mw[{i, 1}] == keep and mw[{i, 196}] == keep and mb[i] == keep, i)\n"
           "end\n"
           "assert(mw:sum() == 8 * 196 and masks.conv1 == nil)\n"
           "assert(p:get_masks().fc1.weight:equal(mw))\n"
           "local rows, total = sw.mask_stats(p)\n"
           "assert(#rows == 2 and total.sparsity == 0.5)\n"
           "assert(not m(x):allclose(dense), 'the wrapped model applies the masks')\n");
    /* A one-shot pruner alone takes no limits. */
    lua_fails_with(lua, "p:compress(3)", "compress");
}

/* Masks round-trip through a file from a table and from a compressor, with metadata; values
 * that are not 0/1 and malformed tables are refused; a missing file is nil, message. */
static void test_lua_compress_masks_files(void **state) {
    sw_lua *lua = *state;
    char code[2048];
    const char *dir = sw_test_tmpdir();
    snprintf(code, sizeof code,
             "local p = sw.FPGMPruner(tiny(2), {{op_names = {'conv1'}, sparse_ratio = 0.5}})\n"
             "local _, masks = p:compress()\n"
             "assert(sw.save_masks(p, '%s/lc_a.safetensors', {pruner = 'FPGM', n = 2}))\n"
             "assert(sw.save_masks(masks, '%s/lc_b.safetensors'))\n"
             "local a = assert(sw.load_masks('%s/lc_a.safetensors'))\n"
             "local b = assert(sw.load_masks('%s/lc_b.safetensors'))\n"
             "assert(a.conv1.weight:equal(masks.conv1.weight))\n"
             "assert(b.conv1.bias:equal(masks.conv1.bias))\n"
             "assert(p:export('%s/lc_c.safetensors'))\n"
             "local c = assert(sw.load_masks('%s/lc_c.safetensors'))\n"
             "assert(c.conv1.weight:sum() == 2 * 9)\n"
             "local none, msg = sw.load_masks('%s/absent.safetensors')\n"
             "assert(none == nil and msg:find('absent'))\n",
             dir, dir, dir, dir, dir, dir, dir);
    LUA_OK(lua, code);
    lua_fails_with(lua, "sw.save_masks({conv1 = {weight = sw.full({2}, 0.5)}}, 'x.safetensors')",
                   "masks[\"conv1\"].weight holds 0.5 at flat position 1");
    lua_fails_with(lua, "sw.save_masks({conv1 = 3}, 'x.safetensors')",
                   "masks[\"conv1\"] must be a table");
    lua_fails_with(lua, "sw.save_masks(5, 'x.safetensors')", "masks must be a table");
}

/* MasksPruner puts given masks (a table, a file's, another pruner's) on a model: its forward
 * equals the pruned model's, training with it attached keeps the masks, and unwrap leaves
 * exact zeros where they mask. */
static void test_lua_compress_masks_pruner(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua,
           "local a, b = tiny(14), tiny(14)\n"
           "local p = sw.L1NormPruner(a, {{op_names = {'conv1', 'fc1'}, sparse_ratio = 0.5}})\n"
           "local _, masks = p:compress()\n"
           "local fixed = sw.MasksPruner(b, masks)\n"
           "assert(fixed:name() == 'MasksPruner')\n"
           "assert(fixed:get_masks().fc1.weight:equal(masks.fc1.weight))\n"
           "local x = test:batch(1, 4)\n"
           "a:eval(); b:eval()\n"
           "assert(a(x):allclose(b(x), 1e-6, 1e-6))\n"
           "evaluator():train(b, 2)\n"
           "fixed:unwrap_model()\n"
           "local w, m = b:param('fc1.weight'), masks.fc1.weight\n"
           "assert((w * (1 - m)):abs():max() == 0, 'pruned weights are zero')\n"
           "assert((w * m):count_nonzero() == m:count_nonzero())\n"
           "local chained = sw.MasksPruner.from_compressor(\n"
           "  sw.LevelPruner(tiny(), {{op_names = {'fc2'}, sparse_ratio = 0.5}}), p)\n"
           "assert(chained:get_masks().conv1 and chained:get_masks().fc2)\n");
    lua_fails_with(lua, "sw.MasksPruner(tiny(), {conv9 = {weight = sw.ones{2}}})", "conv9");
    lua_fails_with(lua, "sw.MasksPruner(tiny(), {}, evaluator())", "takes no evaluator");
}

/* Trained pruners expose what they learned: Slim's factors and Movement's scores, one per
 * block; asking the wrong pruner is an error. */
static void test_lua_compress_trained_pruners(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua,
           "local ev = evaluator()\n"
           "local slim = sw.SlimPruner(tiny(), {{op_types = {'BatchNorm2d'},\n"
           "                                    sparse_ratio = 0.5}}, ev, 2)\n"
           "local _, masks = slim:compress()\n"
           "assert(slim:factors('bn1'):numel() == 4)\n"
           "assert(masks.bn1.weight:count_nonzero() == 2)\n"
           "local mv = sw.MovementPruner(tiny(), {{op_names = {'fc1'}, sparse_ratio = 0.5}},\n"
           "                             ev, 1, 3)\n"
           "local _, mm = mv:compress(4)\n"
           "assert(mv:scores('fc1'):numel() >= 16)\n"
           "assert(math.abs(mm.fc1.weight:mean() - 0.5) < 1e-6)\n"
           "t = mv\n");
    lua_fails_with(lua, "t:factors('fc1')", "factors");
}

/* ---- chains ------------------------------------------------------------------------------- */

/* from_compressor grows one chain on shared wrappers: fused_compressors lists it newest
 * first, one compress on the newest drives every member (the scheduled Taylor pruner reaches
 * its goal), get_masks of the newest holds every pruner's masks, building on an older member
 * is refused, and unwrap detaches the whole chain. */
static void test_lua_compress_chain(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua,
           "local m = tiny(4)\n"
           "local ev = evaluator()\n"
           "p1 = sw.L1NormPruner(m, {{op_names = {'conv1'}, sparse_ratio = 0.5}}, ev)\n"
           "local p2 = sw.TaylorPruner.from_compressor(p1, {{op_names = {'fc1'},\n"
           "                                                 sparse_ratio = 0.5}}, 1)\n"
           "local agp = sw.AGPPruner(p2, 1, 2)\n"
           "last = sw.LevelPruner.from_compressor(agp, {{op_names = {'fc2'},\n"
           "                                              sparse_ratio = 0.5}})\n"
           "local names = {}\n"
           "for _, c in ipairs(last:fused_compressors()) do names[#names + 1] = c:name() end\n"
           "assert(table.concat(names, ',') ==\n"
           "       'LevelPruner,AGPPruner,TaylorPruner,L1NormPruner', table.concat(names, ','))\n"
           "assert(tostring(last):find('chain of 4'))\n"
           "local model, masks = last:compress(2)\n"
           "assert(model == m)\n"
           "assert(masks.conv1.weight:mean() == 0.5 and masks.fc1.weight:mean() == 0.5)\n"
           "assert(masks.fc2.weight:mean() == 0.5)\n"
           "assert(p1:get_masks().fc2 ~= nil, 'any member sees the chain')\n"
           "last:unwrap_model()\n"
           "assert(p1:is_detached() and last:is_detached())\n"
           "assert(tostring(p1):find('unwrapped'))\n");
    lua_fails_with(lua, "sw.LevelPruner.from_compressor(p1, {})", "already has a successor");
    lua_fails_with(lua, "last:compress()", "unwrapped");
    lua_fails_with(lua, "sw.AGPPruner.from_compressor(last, 1, 2)", "AGPPruner");
    lua_fails_with(lua, "sw.L1NormPruner.from_compressor(tiny(), {})",
                   "argument 1 must be the compressor to build on");
}

/* Compressors of a chain are freed exactly once whatever the order of collection: the newest
 * keeps the older ones (and the model) alive; closing an older handle only closes the handle;
 * dropping everything frees every C object. */
static void test_lua_compress_chain_lifetimes(void **state) {
    sw_lua *lua = *state;
    collect(lua);
    int base = sw_lua_live_objects(lua);
    LUA_OK(lua, "local m = tiny(5)\n"
                "local p = sw.L1NormPruner(m, {{op_names = {'conv1'}, sparse_ratio = 0.5}})\n"
                "newest = sw.LevelPruner.from_compressor(p, {{op_names = {'fc1'},\n"
                "                                            sparse_ratio = 0.5}})\n");
    collect(lua);
    assert_int_equal(sw_lua_live_objects(lua), base + 3); /* model, two pruners */
    /* The older pruner's handle is gone but its masks still come with the chain. */
    LUA_OK(lua, "local _, masks = newest:compress()\n"
                "assert(masks.conv1.weight:mean() == 0.5)\n"
                "local older = newest:fused_compressors()[2]\n"
                "local gc = getmetatable(older).__close\n"
                "gc(older); gc(older)\n"
                "assert(tostring(older) == 'compressor (freed)')\n"
                "assert(not pcall(older.get_masks, older))\n"
                "assert(newest:get_masks().conv1.weight:mean() == 0.5, 'still applied')\n");
    assert_int_equal(sw_lua_live_objects(lua), base + 3);
    LUA_OK(lua, "newest = nil");
    collect(lua);
    assert_int_equal(sw_lua_live_objects(lua), base);
    /* to-be-closed: the pruner goes at the end of its scope, the model with the last ref. */
    LUA_OK(lua, "do local m <close> = tiny()\n"
                "   local p <close> = sw.L2NormPruner(m, {{op_names = {'fc1'},\n"
                "                                          sparse_ratio = 0.5}}) end\n");
    assert_int_equal(sw_lua_live_objects(lua), base);
}

/* A model closed while a compressor holds it stays alive for the compressor (which keeps
 * working) and is freed with it; its own handle raises. */
static void test_lua_compress_model_outlives_handle(void **state) {
    sw_lua *lua = *state;
    collect(lua);
    int base = sw_lua_live_objects(lua);
    LUA_OK(lua, "local m = tiny(6)\n"
                "p = sw.LevelPruner(m, {{op_names = {'fc1'}, sparse_ratio = 0.5}})\n"
                "getmetatable(m).__close(m)\n"
                "assert(tostring(m) == 'model (freed)')\n"
                "assert(not pcall(m.info, m))\n"
                "local _, masks = p:compress()\n"
                "assert(masks.fc1.weight:mean() == 0.5)\n"
                "assert(p:model() == m)\n");
    assert_int_equal(sw_lua_live_objects(lua), base + 2);
    lua_fails_with(lua, "p:unwrap_model():info()", "model has been freed");
    LUA_OK(lua, "p = nil");
    collect(lua);
    assert_int_equal(sw_lua_live_objects(lua), base);
}

/* The evaluator a compressor borrows stays alive with it; closed explicitly, compress raises
 * instead of touching freed memory. */
static void test_lua_compress_evaluator_borrowed(void **state) {
    sw_lua *lua = *state;
    collect(lua);
    int base = sw_lua_live_objects(lua);
    LUA_OK(lua, "p = sw.TaylorPruner(tiny(), {{op_names = {'fc1'}, sparse_ratio = 0.5}},\n"
                "                    evaluator(), 1)\n");
    collect(lua);
    assert_int_equal(sw_lua_live_objects(lua), base + 3); /* model, evaluator, pruner */
    LUA_OK(lua, "p:compress()");
    /* A compressor built from p trains through p's evaluator. */
    LUA_OK(lua, "d = sw.DynamicLayerwiseDistiller.from_compressor(p, {{op_names = {'fc2'}}},\n"
                "                                                 tiny(1))\n"
                "d:compress(1)\n");
    LUA_OK(lua, "ev = evaluator()\n"
                "p3 = sw.TaylorPruner(tiny(), {{op_names = {'fc1'}, sparse_ratio = 0.5}}, ev, 1)\n"
                "getmetatable(ev).__close(ev)\n");
    lua_fails_with(lua, "p3:compress()", "the evaluator has been freed");
    LUA_OK(lua, "p, d, p3, ev = nil");
    collect(lua);
    assert_int_equal(sw_lua_live_objects(lua), base);
}

/* A compressor collected while its model is in a training step (here: from a training_step
 * callback) is not freed in the middle of the step: it is finalised again after the run, and
 * freed exactly once. */
static void test_lua_compress_gc_during_training_waits(void **state) {
    sw_lua *lua = *state;
    collect(lua);
    int base = sw_lua_live_objects(lua);
    LUA_OK(lua,
           "collectgarbage('stop') -- only the callback's full collections run\n"
           "local m = tiny(7)\n"
           "do local junk = sw.LevelPruner(m, {{op_names = {'conv1'}, sparse_ratio = 0.5}}) end\n"
           "local collected = 0\n"
           "local ev = evaluator{training_step = function(batch, out)\n"
           "  collectgarbage(); collectgarbage(); collected = collected + 1\n"
           "  return sw.loss.cross_entropy(out, batch.y)\n"
           "end}\n"
           "keep = sw.TaylorPruner(m, {{op_names = {'fc1'}, sparse_ratio = 0.5}}, ev, 2)\n"
           "local _, masks = keep:compress()\n"
           "assert(collected == 2 and masks.fc1.weight:mean() == 0.5)\n"
           "collectgarbage('restart')\n");
    collect(lua);
    /* model, evaluator, the pruner kept; the junk pruner is gone */
    assert_int_equal(sw_lua_live_objects(lua), base + 3);
    LUA_OK(lua, "keep = nil");
    collect(lua);
    assert_int_equal(sw_lua_live_objects(lua), base);
}

/* While a chain compresses, callbacks cannot unwrap it, build on its model or close its model:
 * the model is busy. */
static void test_lua_compress_busy_model_is_protected(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua, "local m = tiny(8)\n"
                "local errors = {}\n"
                "local p\n"
                "local fn = sw.on_metric(function(ev)\n"
                "  if ev.kind ~= 'step' then return end\n"
                "  errors[#errors + 1] = select(2, pcall(p.unwrap_model, p))\n"
                "  errors[#errors + 1] = select(2, pcall(sw.LevelPruner, m, {}))\n"
                "  errors[#errors + 1] = select(2, pcall(getmetatable(m).__close, m))\n"
                "  errors[#errors + 1] = p:get_masks().fc1 and 'masks' or 'none'\n"
                "end)\n"
                "p = sw.TaylorPruner(m, {{op_names = {'fc1'}, sparse_ratio = 0.5}},\n"
                "                    evaluator(), 1)\n"
                "p:compress()\n"
                "sw.off_metric(fn)\n"
                "assert(#errors == 4, #errors)\n"
                "assert(errors[1]:find('being trained'), errors[1])\n"
                "assert(errors[2]:find('being trained'), errors[2])\n"
                "assert(errors[3]:find('cannot be freed now'), errors[3])\n"
                "assert(errors[4] == 'masks')\n"
                "assert(m:info().params > 0)\n");
}

/* Closing the state frees compressors, speedups and the models they hold, in whatever order
 * the collector finalises them (ASan reports a leak or a double free otherwise). */
static void test_lua_compress_close_frees_everything(void **state) {
    (void)state;
    sw_lua *lua = NULL;
    assert_int_equal(sw_lua_new(NULL, &lua), SW_OK);
    LUA_OK(lua, PRELUDE);
    LUA_OK(lua, "local m = tiny()\n"
                "local teacher = tiny(9)\n"
                "keep = { sw.L1NormPruner(m, {{op_names = {'fc1'}, sparse_ratio = 0.5}}) }\n"
                "keep[2] = sw.DynamicLayerwiseDistiller.from_compressor(keep[1],\n"
                "  {{op_names = {'fc2'}}}, teacher, function(b, t) return t(b.x) end)\n"
                "keep[3] = sw.ModelSpeedup(m, nil, keep[1])\n"
                "getmetatable(m).__close(m)\n"
                "getmetatable(keep[1]).__close(keep[1])\n");
    sw_lua_free(lua);
}

/* ---- distillers --------------------------------------------------------------------------- */

/* A distiller fused on a pruner trains with a Lua teacher_predict, called once per step with
 * the batch and the teacher; its losses() and the metric events' terms report the fused loss;
 * the teacher is held (closing its handle does not free it). */
static void test_lua_compress_distiller_teacher_predict(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua,
           "local m = tiny(10)\n"
           "local calls, sizes, seen = 0, {}, {}\n"
           "local p = sw.L1NormPruner(m, {{op_names = {'fc1'}, sparse_ratio = 0.5}}, evaluator())\n"
           "local d = sw.DynamicLayerwiseDistiller.from_compressor(p,\n"
           "  {{op_names = {'fc2'}, apply_method = 'kl'}}, tiny(11),\n"
           "  function(batch, t)\n"
           "    calls = calls + 1; sizes[#sizes + 1] = batch.size; seen[t] = true\n"
           "    assert(t ~= m and #batch.y == batch.size)\n"
           "    return t(batch.x)\n"
           "  end, 0.5)\n"
           "collectgarbage(); collectgarbage() -- the teacher lives in the distiller only\n"
           "local terms\n"
           "local fn = sw.on_metric(function(ev)\n"
           "  if ev.kind == 'step' then terms = ev.terms end\n"
           "end)\n"
           "local model = d:compress(3)\n"
           "sw.off_metric(fn)\n"
           "assert(model == m and calls == 3 and sizes[1] == 16)\n"
           "local l = d:losses()\n"
           "assert(l.steps == 3 and l.distill > 0)\n"
           "assert(math.abs(l.final - (0.5 * l.task + l.distill)) < 1e-9)\n"
           "assert(math.abs(terms.distill - l.distill) < 1e-6)\n"
           "assert(math.abs(terms.task - 0.5 * l.task) < 1e-6)\n"
           "assert(d:get_masks().fc1.weight:mean() == 0.5)\n"
           "local n = 0; for _ in pairs(seen) do n = n + 1 end; assert(n == 1)\n"
           "-- with the default teacher_predict, a closed teacher handle still teaches\n"
           "local teacher = tiny(11)\n"
           "local d2 = sw.DynamicLayerwiseDistiller(tiny(), {{op_names = {'fc2'}}}, evaluator(),\n"
           "                                        teacher)\n"
           "getmetatable(teacher).__close(teacher)\n"
           "d2:compress(1)\n"
           "assert(d2:losses().steps == 1)\n");
    lua_fails_with(lua, "sw.L1NormPruner(tiny(), {{op_names = {'fc1'}, sparse_ratio = 0.5}})"
                        ":losses()", "is not a distiller");
}

/* An error inside teacher_predict stops the run and is raised by compress with its own
 * file:line; a teacher that is not a model, or the student as its own teacher, is refused. */
static void test_lua_compress_teacher_predict_errors(void **state) {
    sw_lua *lua = *state;
    sw_status st = sw_lua_run_string(lua,
                                     "local m = tiny()\n"
                                     "local d = sw.DynamicLayerwiseDistiller(m,\n"
                                     "  {{op_names = {'fc2'}}}, evaluator(), tiny(1),\n"
                                     "  function(batch, t)\n"
                                     "    error('no teacher today')\n"
                                     "  end)\n"
                                     "d:compress(2)\n", "@predict.lua");
    assert_int_equal(st, SW_ERR_ARG);
    const char *err = sw_lua_last_error(lua);
    assert_non_null(strstr(err, "predict.lua:7: compress: teacher_predict: predict.lua:5: "
                                "no teacher today"));
    lua_fails_with(lua, "sw.DynamicLayerwiseDistiller(tiny(), {}, nil, 42)",
                   "teacher_model (argument 4) must be a model");
    lua_fails_with(lua, "sw.DynamicLayerwiseDistiller(tiny(), {}, nil, tiny(), 42)",
                   "teacher_predict (argument 5) must be a function");
    lua_fails_with(lua, "local m = tiny(); sw.DynamicLayerwiseDistiller(m, "
                        "{{op_names = {'fc2'}}}, nil, m)", "DynamicLayerwiseDistiller");
}

/* Adaptive1dLayerwiseDistiller bridges a narrower student layer to the teacher's with an
 * adapter, and trains. */
static void test_lua_compress_adaptive1d(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua, "local student = nn.Sequential{ nn.Flatten{name = 'flatten'},\n"
                "  nn.Linear(784, 8, {name = 'fc1'}), nn.ReLU{name = 'relu'},\n"
                "  nn.Linear(8, 10, {name = 'fc2'}) }:build()\n"
                "local teacher = nn.Sequential{ nn.Flatten{name = 'flatten'},\n"
                "  nn.Linear(784, 32, {name = 'fc1'}), nn.ReLU{name = 'relu'},\n"
                "  nn.Linear(32, 10, {name = 'fc2'}) }:build()\n"
                "local d = sw.Adaptive1dLayerwiseDistiller(student, {{op_names = {'fc1'}}},\n"
                "                                          evaluator(), teacher)\n"
                "d:compress(2)\n"
                "assert(d:losses().steps == 2 and d:losses().distill > 0)\n");
}

/* ---- quantizers --------------------------------------------------------------------------- */

/* QAT fused on a pruner: the calibration config is a Lua table with NNI's fields, compress
 * returns it, export writes it as JSON, and the base Quantizer loaded with it computes exactly
 * what the QAT model computes in eval mode. */
static void test_lua_compress_quantizer_calibration(void **state) {
    sw_lua *lua = *state;
    char code[3072];
    snprintf(code, sizeof code,
             "local m = tiny(12)\n"
             "local cfg = {{op_types = {'Conv2d', 'Linear'},\n"
             "              target_names = {'_input_', 'weight'},\n"
             "              quant_dtype = 'int8', quant_scheme = 'affine'}}\n"
             "local p = sw.L1NormPruner(m, {{op_names = {'fc1'}, sparse_ratio = 0.5}},\n"
             "                          evaluator())\n"
             "local q = sw.QATQuantizer.from_compressor(p, cfg, 1)\n"
             "local model, cal = q:compress(3)\n"
             "assert(model == m)\n"
             "local w = cal.conv1.weight\n"
             "assert(w.quant_dtype == 'int8' and w.quant_bits == 8)\n"
             "assert(w.quant_scheme == 'affine')\n"
             "assert(#w.shape == 1 and w.shape[1] == 1 and #w.scale == 1 and w.scale[1] > 0)\n"
             "assert(cal.fc1._input_0 and cal.fc2.weight)\n"
             "assert(q:export('%s/lc_cal.json'))\n"
             "local f = assert(io.open('%s/lc_cal.json'))\n"
             "local text = f:read('a'); f:close()\n"
             "assert(text:find('\"quant_dtype\"') and text:find('conv1'))\n"
             "-- the same numbers through the base Quantizer on a copy with the masks baked in\n"
             "local x = test:batch(1, 8)\n"
             "m:eval()\n"
             "local expected = m(x)\n"
             "local copy = m:clone()\n"
             "local masks = p:get_masks()\n"
             "copy:set_param('fc1.weight', copy:param('fc1.weight') * masks.fc1.weight)\n"
             "copy:set_param('fc1.bias', copy:param('fc1.bias') * masks.fc1.bias)\n"
             "local fixed = sw.Quantizer(copy, cfg)\n"
             "assert(fixed:update_calibration_config(cal) == fixed)\n"
             "copy:eval()\n"
             "local got = copy(x)\n"
             "assert(got:allclose(expected, 1e-5, 1e-5), tostring((got - expected):abs():max()))\n"
             "assert(fixed:get_calibration_config().conv1.weight.scale[1] == w.scale[1])\n",
             sw_test_tmpdir(), sw_test_tmpdir());
    LUA_OK(lua, code);
    lua_fails_with(lua, "sw.L1NormPruner(tiny(), {}):get_calibration_config()",
                   "is not a quantizer");
    lua_fails_with(lua, "sw.Quantizer.from_compressor(sw.L1NormPruner(tiny(), {}), {})",
                   "not built from a compressor");
    lua_fails_with(lua, "sw.Quantizer(tiny(), {}, evaluator())", "takes no evaluator");
    lua_fails_with(lua, "sw.QATQuantizer(tiny(), {{op_types = {'Conv2d'}, "
                        "quant_dtype = 'int17'}})", "config_list[1]");
}

/* LsqQuantizer's init argument: "data" starts the scales from the values seen (not NNI's 0.01),
 * alone and from_compressor; anything else is refused. */
static void test_lua_compress_lsq_init(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua, "local cfg = {{op_types = {'Linear'}, target_names = {'weight'},\n"
                "              quant_dtype = 'int4', quant_scheme = 'symmetric'}}\n"
                "local function first_scale(q)\n"
                "  return q:get_calibration_config().fc1.weight.scale[1]\n"
                "end\n"
                "local m = tiny(3)\n"
                "local q = sw.LsqQuantizer(m, cfg, evaluator(), 'data')\n"
                "m:eval(); m(test:batch(1, 4))\n"
                "local s = first_scale(q)\n"
                "assert(s > 0 and math.abs(s - 0.01) > 1e-4, 'data init gave ' .. s)\n"
                "q:unwrap_model()\n"
                "local m2 = tiny(3)\n"
                "local q2 = sw.LsqQuantizer(m2, cfg, evaluator())\n"
                "m2:eval(); m2(test:batch(1, 4))\n"
                "assert(math.abs(first_scale(q2) - 0.01) < 1e-7)\n"
                "local m3 = tiny(3)\n"
                "local p = sw.L1NormPruner(m3, {{op_names = {'fc1'}, sparse_ratio = 0.5}})\n"
                "local q3 = sw.LsqQuantizer.from_compressor(p, cfg, 'data')\n"
                "m3:eval(); m3(test:batch(1, 4))\n"
                "assert(math.abs(first_scale(q3) - s) < 1e-6)\n");
    lua_fails_with(lua, "sw.LsqQuantizer(tiny(), {{op_types = {'Linear'}, quant_dtype = 'int4'}}, "
                        "evaluator(), 'paper')", "init must be");
    lua_fails_with(lua, "sw.LsqQuantizer(tiny(), {{op_types = {'Linear'}, quant_dtype = 'int4'}}, "
                        "evaluator(), 3)", "init (argument");
}

/* ---- speedup ------------------------------------------------------------------------------ */

/* ModelSpeedup makes a smaller model that computes what the masked model computes; the report
 * counts parameters and FLOPs; masks come as a table or a compressor; masks that do not fit
 * the model are refused naming the module. */
static void test_lua_compress_speedup(void **state) {
    sw_lua *lua = *state;
    LUA_OK(lua,
           "local m = tiny(13)\n"
           "local p = sw.L1NormPruner(m, {{op_names = {'conv1', 'fc1'}, sparse_ratio = 0.5}})\n"
           "local _, masks = p:compress()\n"
           "p:unwrap_model()\n"
           "local x = test:batch(1, 8)\n"
           "m:eval()\n"
           "local masked = m(x)\n"
           "local s = sw.ModelSpeedup(m, x, masks)\n"
           "local fast = s:speedup_model()\n"
           "fast:eval()\n"
           "assert(fast(x):allclose(masked, 1e-4, 1e-4))\n"
           "local r = s:report()\n"
           "assert(r.params_before == m:info().params and r.params_after == fast:info().params)\n"
           "assert(r.params_after < r.params_before and r.flops_after < r.flops_before)\n"
           "assert(r.check.ok and r.check.batch == 8)\n"
           "local found = false\n"
           "for _, l in ipairs(r.layers) do if l.name == 'fc1' then\n"
           "  found = true; assert(l.channels_before == 16 and l.channels_after == 8) end end\n"
           "assert(found)\n"
           "local one = sw.ModelSpeedup(m, test:get(1), p):speedup_model()\n"
           "assert(one:info().params == fast:info().params)\n"
           "assert(tostring(s) == 'ModelSpeedup')\n");
    lua_fails_with(lua, "sw.ModelSpeedup(tiny(), nil, {fc1 = {weight = sw.ones{3, 3}}})",
                   "fc1");
    lua_fails_with(lua, "sw.ModelSpeedup(tiny(), nil, {}):report()", "speedup_model() first");
    lua_fails_with(lua, "sw.ModelSpeedup(tiny(), 5, {})", "dummy_input (argument 2)");
    lua_fails_with(lua, "sw.ModelSpeedup(tiny(), nil, {}, {probe = 3})", "unknown key \"probe\"");
}

/* ---- interrupts --------------------------------------------------------------------------- */

static void count_steps(void *ctx, const sw_metric_event *ev) {
    if (ev->kind == SW_METRIC_STEP) (*(int *)ctx)++;
}

static bool poll_after_two_steps(void *ctx) { return *(int *)ctx >= 2; }

/* Ctrl-C during a fused compress stops it at a step boundary and raises "interrupted"; the
 * chain's masks stay consistent. */
static void test_lua_compress_interrupt_stops_compress(void **state) {
    (void)state;
    int steps = 0;
    sw_lua_options opts = sw_lua_options_default();
    opts.poll = poll_after_two_steps;
    opts.poll_ctx = &steps;
    sw_metric_bus_add(&opts.listeners, count_steps, &steps);
    sw_lua *lua = NULL;
    assert_int_equal(sw_lua_new(&opts, &lua), SW_OK);
    LUA_OK(lua, PRELUDE);
    sw_status st = sw_lua_run_string(lua,
                                     "p = sw.L1NormPruner(tiny(), {{op_names = {'fc1'},\n"
                                     "  sparse_ratio = 0.5}}, evaluator())\n"
                                     "d = sw.DynamicLayerwiseDistiller.from_compressor(p,\n"
                                     "  {{op_names = {'fc2'}}}, tiny(1))\n"
                                     "d:compress(1000)\n", "=compress");
    assert_int_equal(st, SW_ERR_INTERRUPTED);
    assert_non_null(strstr(sw_lua_last_error(lua), "interrupted"));
    assert_int_equal(steps, 2);
    sw_lua_free(lua);
}

/* ---- safe mode ---------------------------------------------------------------------------- */

/* In safe mode the compression API writes files only inside the working directory: masks
 * files and exports elsewhere are refused before anything is written. */
static void test_lua_compress_safe_mode_confines_writes(void **state) {
    (void)state;
    sw_lua_options opts = sw_lua_options_default();
    opts.safe = true;
    sw_lua *lua = NULL;
    assert_int_equal(sw_lua_new(&opts, &lua), SW_OK);
    LUA_OK(lua, PRELUDE);
    LUA_OK(lua, "p = sw.L1NormPruner(tiny(), {{op_names = {'fc1'}, sparse_ratio = 0.5}})\n"
                "p:compress()\n");
    lua_fails_with(lua, "sw.save_masks(p, '/tmp/shrinkwrap-safe-masks.safetensors')",
                   "safe mode writes only inside the working directory");
    lua_fails_with(lua, "p:export('../escape.safetensors')",
                   "safe mode writes only inside the working directory");
    sw_lua_free(lua);
    assert_int_equal(access("/tmp/shrinkwrap-safe-masks.safetensors", F_OK), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lua_compress_config_errors_name_the_entry, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lua_compress_config_tables_and_json_agree, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lua_compress_warnings_are_renumbered, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lua_compress_l1norm_masks_by_hand, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lua_compress_masks_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lua_compress_masks_pruner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lua_compress_trained_pruners, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lua_compress_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lua_compress_chain_lifetimes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lua_compress_model_outlives_handle, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lua_compress_evaluator_borrowed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lua_compress_gc_during_training_waits, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lua_compress_busy_model_is_protected, setup,
                                        teardown),
        cmocka_unit_test(test_lua_compress_close_frees_everything),
        cmocka_unit_test_setup_teardown(test_lua_compress_distiller_teacher_predict, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lua_compress_teacher_predict_errors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lua_compress_adaptive1d, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lua_compress_lsq_init, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lua_compress_quantizer_calibration, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lua_compress_speedup, setup, teardown),
        cmocka_unit_test(test_lua_compress_interrupt_stops_compress),
        cmocka_unit_test(test_lua_compress_safe_mode_confines_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
