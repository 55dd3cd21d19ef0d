-- prune_then_distill.lua - pipeline (a) of NNI's fusion example, one step after another:
-- prune the trained model once (L1NormPruner), bake the masks in, remove the pruned channels
-- for real (ModelSpeedup), then recover the accuracy by distilling the dense model into the
-- smaller one. prune_with_distill.lua runs pipeline (b), the two fused in one training run,
-- on the same pruning config and budget, so the two printouts compare.
--
-- Shows: a one-shot pruner alone (compress without an evaluator); get_masks; unwrap_model;
-- sw.ModelSpeedup(model, dummy_input, masks):speedup_model() and its report (parameters,
-- FLOPs, self-check); Adaptive1dLayerwiseDistiller on the sped-up student, whose fc1 is
-- narrower than the teacher's (a trainable Linear adapter bridges the widths) and whose
-- logits learn from the teacher's through KL; distiller:losses(); accuracy, parameters and
-- FLOPs before and after speedup; saving the small model.
--
--   shrinkwrap run recipes/prune_then_distill.lua [--fast] [--model FILE] [--ratio 0.5]
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

-- The teacher is the dense model as it is now.
local teacher = model:clone()
report("dense (the teacher)", teacher)

-- 1. Prune once: half of the output channels of conv1, conv2 and fc1, smallest L1 norm first.
local prune_config = { { op_names = { "conv1", "conv2", "fc1" }, sparse_ratio = ratio } }
local pruner = sw.L1NormPruner(model, prune_config)
local _, masks = pruner:compress()
report("pruned (masked)", model)
pruner:unwrap_model()

-- 2. Speedup: a new model without the pruned channels, checked against the masked one.
local dummy = test:batch(1, 8)
local speedup = sw.ModelSpeedup(model, dummy, masks)
local student = speedup:speedup_model()
local r = speedup:report()
report("sped up", student)

-- 3. Distil the teacher into the small student: fc1's outputs (128 wide now, 256 in the
--    teacher) through an adapter, with MSE, and the logits with KL.
local distill_config = {
  { op_names = { "fc1" }, apply_method = "mse", lambda = 0.1 },
  { op_names = { "fc2" }, apply_method = "kl" },
}
local distiller = sw.Adaptive1dLayerwiseDistiller(student, distill_config, evaluator, teacher)
distiller:compress(steps)
local losses = distiller:losses()
distiller:unwrap_model()
report(("sped up + distilled, %d steps"):format(steps), student)

print(("%s, pipeline (a): prune %g%% of conv1, conv2, fc1 -> speedup -> distil"):format(
  model:info().arch, 100 * ratio))
sw.print_table({ "stage", "params", "FLOPs", "accuracy" }, rows)
print()
print(("speedup: parameters %s -> %s (%.2fx fewer), FLOPs %s -> %s (%.2fx fewer); "
       .. "self-check max |diff| %.3g: %s"):format(
  sw.human(r.params_before), sw.human(r.params_after), r.params_before / r.params_after,
  sw.human(r.flops_before), sw.human(r.flops_after), r.flops_before / r.flops_after,
  r.check.max_abs_diff, r.check.ok and "ok" or "FAILED"))
for _, l in ipairs(r.layers) do
  if l.channels_before ~= l.channels_after and (l.type_before == "Conv2d"
                                                or l.type_before == "Linear") then
    print(("  %-6s %d -> %d channels"):format(l.name, l.channels_before, l.channels_after))
  end
end
print(("last distillation step: task loss %.4f, distillation %.4f"):format(losses.task,
                                                                           losses.distill))

assert(student:save("prune_then_distill.safetensors", { pipeline = "prune, speedup, distil" }))
print("wrote prune_then_distill.safetensors")
