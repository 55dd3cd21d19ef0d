-- prune_with_distill.lua - pipeline (b) of NNI's fusion example: pruning and distillation
-- fused in one training run. DynamicLayerwiseDistiller.from_compressor builds the distiller on
-- the pruner's wrappers, so a single compress() generates the masks and then trains the pruned
-- model on origin_loss_lambda x task loss + what the dense teacher says about conv2's feature
-- maps and the logits. Then the masks are baked in and ModelSpeedup removes the pruned
-- channels. prune_then_distill.lua runs pipeline (a), the same steps one after another, on the
-- same pruning config and budget.
--
-- Shows: L1NormPruner given the evaluator; DynamicLayerwiseDistiller.from_compressor(pruner,
-- config_list, teacher, teacher_predict, origin_loss_lambda) with teacher_predict written in
-- Lua; one compress(max_steps) for the whole chain; the "task" and "distill" loss terms in
-- the metric events; fused_compressors(); get_masks on the pruner; unwrap_model;
-- sw.ModelSpeedup and its report; accuracy, parameters and FLOPs before and after speedup.
--
--   shrinkwrap run recipes/prune_with_distill.lua [--fast] [--model FILE] [--ratio 0.5]
--                                                 [--steps 600]
local sw = require "shrinkwrap"

local fast = sw.args.fast
local ratio = sw.args.ratio or 0.5
local steps = sw.args.steps or (fast and 4 or 600)

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

local rows = {}
local function report(stage, m)
  local info = m:info()
  rows[#rows + 1] = { stage, sw.human(info.params), sw.human(info.flops),
                      ("%.2f%%"):format(100 * evaluator:evaluate(m)) }
end

local teacher = model:clone()
report("dense (the teacher)", teacher)

-- The chain: the pruner, and the distiller fused on it.
local prune_config = { { op_names = { "conv1", "conv2", "fc1" }, sparse_ratio = ratio } }
local distill_config = {
  { op_names = { "conv2" }, apply_method = "mse", lambda = 0.1 },
  { op_names = { "fc2" }, apply_method = "kl" },
}
local pruner = sw.L1NormPruner(model, prune_config, evaluator)
local predictions = 0
local function teacher_predict(batch, t) -- NNI's teacher_predict(batch, teacher_model)
  predictions = predictions + 1
  return t(batch.x)
end
local distiller = sw.DynamicLayerwiseDistiller.from_compressor(pruner, distill_config, teacher,
                                                               teacher_predict, 0.5)
local names = {}
for _, c in ipairs(distiller:fused_compressors()) do names[#names + 1] = c:name() end

-- The loss terms of the fused run, as the metric events report them.
local last_terms
local watch = sw.on_metric(function(ev)
  if ev.kind == "step" then last_terms = ev.terms end
end)
distiller:compress(steps)
sw.off_metric(watch)
report(("pruned + distilled, %d steps (masked)"):format(steps), model)

local masks = pruner:get_masks()
distiller:unwrap_model()
local speedup = sw.ModelSpeedup(model, test:batch(1, 8), masks)
local student = speedup:speedup_model()
local r = speedup:report()
report("sped up", student)

print(("%s, pipeline (b): prune %g%% of conv1, conv2, fc1 fused with distillation -> speedup")
      :format(model:info().arch, 100 * ratio))
print(("chain, newest first: %s; teacher_predict ran %d times"):format(table.concat(names, " <- "),
                                                                        predictions))
sw.print_table({ "stage", "params", "FLOPs", "accuracy" }, rows)
print()
print(("speedup: parameters %s -> %s (%.2fx fewer), FLOPs %s -> %s (%.2fx fewer); "
       .. "self-check max |diff| %.3g: %s"):format(
  sw.human(r.params_before), sw.human(r.params_after), r.params_before / r.params_after,
  sw.human(r.flops_before), sw.human(r.flops_after), r.flops_before / r.flops_after,
  r.check.max_abs_diff, r.check.ok and "ok" or "FAILED"))
print(("last step's loss terms: task %.4f (x 0.5), distill %.4f"):format(last_terms.task,
                                                                          last_terms.distill))

assert(student:save("prune_with_distill.safetensors", { pipeline = "prune + distil, speedup" }))
print("wrote prune_with_distill.safetensors")
