-- agp_schedule.lua - pruning gradually while the model trains: AGPPruner raises the sparsity
-- of an L1NormPruner step by step along the automated gradual pruning curve
-- (Zhu & Gupta, 2017), goal x (1 - (1 - k/T)^3) after the k-th of T intervals, so the network
-- adapts to each cut before the next one. The recipe watches the masks change during training
-- and compares the sparsity reached at each interval with the curve.
--
-- Shows: sw.AGPPruner(pruner, interval_steps, total_times) over an L1NormPruner given the
-- evaluator; compress(max_steps) training the wrapped model; sw.on_metric reading the pruner's
-- masks between steps; sw.mask_stats and sw.print_masks; pruner:export(path) writing the masks
-- file; unwrap_model() baking the masks into the weights; model:save.
--
--   shrinkwrap run recipes/agp_schedule.lua [--fast] [--model FILE] [--ratio 0.8]
--                                           [--interval 50] [--times 10]
local sw = require "shrinkwrap"

local fast = sw.args.fast
local goal = sw.args.ratio or 0.8
local interval = sw.args.interval or (fast and 2 or 50)
local times = sw.args.times or (fast and 3 or 10)

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
    local steps = fast and 6 or 400
    print(("training a fresh fmnist_cnn for %d steps instead"):format(steps))
    model = sw.models.fmnist_cnn{ seed = 1 }
    evaluator:train(model, steps)
  end
end
local before = evaluator:evaluate(model)

-- The pruner says what and how much; AGP says when.
local config_list = {
  { op_names = { "conv1", "conv2", "fc1" }, sparse_ratio = goal },
}
local pruner = sw.L1NormPruner(model, config_list, evaluator)
local agp = sw.AGPPruner(pruner, interval, times)
print(("%s: %s over %d intervals of %d steps, goal %g%% of conv1, conv2, fc1"):format(
  model:info().arch, tostring(agp), times, interval, 100 * goal))

-- After every interval, read the masks the schedule has reached.
local schedule = {}
local watch = sw.on_metric(function(ev)
  if ev.kind == "step" and ev.step % interval == 0 and ev.step <= interval * times then
    local _, total = sw.mask_stats(pruner:get_masks())
    schedule[#schedule + 1] = { step = ev.step, sparsity = total.sparsity, loss = ev.loss }
  end
end)
local _, masks = agp:compress(interval * times)
sw.off_metric(watch)

print()
local rows = {}
for k, s in ipairs(schedule) do
  local curve = goal * (1 - (1 - k / times) ^ 3)
  rows[#rows + 1] = { k, s.step, ("%.1f%%"):format(100 * curve),
                      ("%.1f%%"):format(100 * s.sparsity), ("%.4f"):format(s.loss) }
end
sw.print_table({ "interval", "step", "AGP curve", "masked weights", "loss" }, rows)

print()
sw.print_masks(masks)
local after = evaluator:evaluate(model)
print()
print(("test accuracy %.2f%% before, %.2f%% after pruning to %g%% with AGP (%d steps)"):format(
  100 * before, 100 * after, 100 * goal, interval * times))

assert(agp:export("agp_masks.safetensors"))
agp:unwrap_model()
assert(model:save("agp_pruned.safetensors", { pruner = "AGPPruner(L1NormPruner)",
                                              sparse_ratio = goal }))
print("wrote agp_masks.safetensors and agp_pruned.safetensors (masks baked into the weights)")
