-- fuse_chain.lua - "fuse any compressors you like", as NNI 3.0 puts it: three pruners and two
-- distillers chained with from_compressor on one model and trained by one compress(). Each
-- compressor configures its own layers: L1NormPruner cuts conv1 once, TaylorPruner ranks
-- conv2's filters by first-order Taylor importance while AGPPruner raises its sparsity step
-- by step, L2NormPruner cuts fc1; DynamicLayerwiseDistiller teaches the logits and
-- Adaptive1dLayerwiseDistiller fc1's features from the dense teacher. Then the masks of every
-- pruner of the chain come out of the newest compressor, and speedup makes the model small.
--
-- Shows: X.from_compressor(previous, config_list, ...) for pruners and distillers; AGPPruner
-- wrapping a pruner in the middle of a chain; fused_compressors(); one compress(max_steps) on
-- the newest compressor; get_masks() of the whole chain; warnings(); per-distiller losses();
-- unwrap_model; sw.ModelSpeedup; accuracy, parameters and FLOPs before and after.
--
--   shrinkwrap run recipes/fuse_chain.lua [--fast] [--model FILE] [--steps 400]
local sw = require "shrinkwrap"

local fast = sw.args.fast
local taylor_steps = fast and 1 or 50
local interval, times = fast and 1 or 50, fast and 2 or 6
local steps = sw.args.steps or (fast and 3 or 400)

local train = assert(sw.data.fashion_mnist{ split = "train", subset = fast and 128 or 20000 })
local test = assert(sw.data.fashion_mnist{ split = "test", subset = fast and 64 or 2000 })
local evaluator = sw.Evaluator{ train = train, test = test, batch_size = fast and 16 or 128,
                                optimizer = sw.optim.SGD{ lr = 0.01, momentum = 0.9 },
                                eval_every_epoch = false, seed = 1 }

-- The model: --model FILE, else the zoo CNN's pretrained weights, else a CNN trained briefly.
local model
if sw.args.model then
  model = assert(sw.load(sw.args.model))
else
  local why
  model, why = sw.models.fmnist_cnn{ pretrained = true }
  if not model then
    print("note: " .. why)
    local n = fast and 6 or 400
    print(("training a fresh fmnist_cnn for %d steps instead"):format(n))
    model = sw.models.fmnist_cnn{ seed = 1 }
    evaluator:train(model, n)
  end
end
local teacher = model:clone()
local dense_info, dense_accuracy = model:info(), evaluator:evaluate(model)

-- Three pruners ...
local l1 = sw.L1NormPruner(model, { { op_names = { "conv1" }, sparse_ratio = 0.5 } }, evaluator)
local taylor = sw.TaylorPruner.from_compressor(l1, { { op_names = { "conv2" },
                                                       sparse_ratio = 0.5 } }, taylor_steps)
local agp = sw.AGPPruner(taylor, interval, times)
local l2 = sw.L2NormPruner.from_compressor(agp, { { op_names = { "fc1" }, sparse_ratio = 0.5 } })
-- ... and two distillers, the dense model as their teacher.
local logits = sw.DynamicLayerwiseDistiller.from_compressor(
  l2, { { op_names = { "fc2" }, apply_method = "kl" } }, teacher)
local features = sw.Adaptive1dLayerwiseDistiller.from_compressor(
  logits, { { op_names = { "fc1" }, apply_method = "mse", lambda = 0.1 } }, teacher)

local chain = {}
for _, c in ipairs(features:fused_compressors()) do chain[#chain + 1] = c:name() end
print(("%s: chain of %d, newest first: %s"):format(dense_info.arch, #chain,
                                                   table.concat(chain, " <- ")))

-- One compress drives all six.
features:compress(steps)
local masks = features:get_masks()
local accuracy = evaluator:evaluate(model)
for _, w in ipairs(features:warnings()) do print("warning: " .. w) end
print()
sw.print_masks(masks)

local d1, d2 = logits:losses(), features:losses()
print()
print(("distillation after %d steps: logits (KL) %.4f, fc1 features (MSE) %.4f"):format(
  d1.steps, d1.distill, d2.distill))

features:unwrap_model()
local speedup = sw.ModelSpeedup(model, test:batch(1, 8), masks)
local small = speedup:speedup_model()
local r = speedup:report()
print()
sw.print_table({ "model", "params", "FLOPs", "accuracy" }, {
  { "dense", sw.human(dense_info.params), sw.human(dense_info.flops),
    ("%.2f%%"):format(100 * dense_accuracy) },
  { "fused chain (masked)", sw.human(dense_info.params), sw.human(dense_info.flops),
    ("%.2f%%"):format(100 * accuracy) },
  { "sped up", sw.human(small:info().params), sw.human(small:info().flops),
    ("%.2f%%"):format(100 * evaluator:evaluate(small)) },
})
print(("speedup self-check: max |diff| %.3g (%s)"):format(r.check.max_abs_diff,
                                                          r.check.ok and "ok" or "FAILED"))
assert(sw.save_masks(masks, "fuse_chain_masks.safetensors", { chain = table.concat(chain, ",") }))
assert(small:save("fuse_chain.safetensors"))
print("wrote fuse_chain_masks.safetensors and fuse_chain.safetensors")
