-- movement.lua - movement pruning (Sanh et al., 2020): instead of keeping the largest weights,
-- keep the weights that training pushes away from zero. MovementPruner learns a score per
-- block while the model fine-tunes (dL/dS = dL/dW * W summed over the block) and masks the
-- lowest scores, with a sparsity that rises along a cubic curve from warmup_step to
-- cooldown_begin_step. The recipe follows the sparsity during training, then compares the
-- blocks movement keeps with the blocks magnitude (L1NormPruner) would keep.
--
-- Shows: sw.MovementPruner(model, config_list, evaluator, warmup_step, cooldown_begin_step);
-- compress(max_steps) training the wrapped model; movement:scores(module) (the learned
-- scores as a tensor); sw.on_metric sampling the masks during training; comparing two
-- pruners' masks tensor by tensor; sw.save_masks and sw.load_masks.
--
--   shrinkwrap run recipes/movement.lua [--fast] [--model FILE] [--ratio 0.7]
--                                       [--warmup 50] [--cooldown 400] [--steps 500]
local sw = require "shrinkwrap"

local fast = sw.args.fast
local ratio = sw.args.ratio or 0.7
local warmup = sw.args.warmup or (fast and 1 or 50)
local cooldown = sw.args.cooldown or (fast and 4 or 400)
local steps = sw.args.steps or (fast and 5 or 500)

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
local dense = model:clone() -- for the magnitude comparison below
local before = evaluator:evaluate(model)

local config_list = { { op_names = { "conv2", "fc1" }, sparse_ratio = ratio } }
local movement = sw.MovementPruner(model, config_list, evaluator, warmup, cooldown)

-- The sparsity movement has reached, sampled along the run.
local samples, every = {}, math.max(1, steps // 5)
local watch = sw.on_metric(function(ev)
  if ev.kind == "step" and (ev.step % every == 0 or ev.step == steps) then
    local _, total = sw.mask_stats(movement:get_masks())
    samples[#samples + 1] = { ev.step, ("%.1f%%"):format(100 * total.sparsity),
                              ("%.4f"):format(ev.loss) }
  end
end)
local _, masks = movement:compress(steps)
sw.off_metric(watch)

print(("%s: MovementPruner, goal %g%% of conv2 and fc1, warmup %d, cooldown from step %d"):format(
  model:info().arch, 100 * ratio, warmup, cooldown))
sw.print_table({ "step", "masked weights", "loss" }, samples)

-- What was learned: one score per block (here: per output channel / row).
print()
for _, name in ipairs({ "conv2", "fc1" }) do
  local s, w = movement:scores(name), masks[name].weight
  local per_block = w:numel() // s:numel()
  print(("%s: %d scores, from %.3g to %.3g (mean %.3g); %d of %d blocks kept"):format(
    name, s:numel(), s:min(), s:max(), s:mean(), w:count_nonzero() // per_block, s:numel()))
end

-- Movement against magnitude: the same goal with L1NormPruner on the dense weights.
local magnitude <close> = sw.L1NormPruner(dense, config_list)
local _, l1 = magnitude:compress()
print()
for _, name in ipairs({ "conv2", "fc1" }) do
  local a, b = masks[name].weight, l1[name].weight
  local both = (a * b):count_nonzero()
  print(("%s: movement and magnitude agree on %.1f%% of the weights they keep"):format(
    name, 100 * both / math.max(1, a:count_nonzero())))
end

local after = evaluator:evaluate(model)
print()
print(("test accuracy %.2f%% before, %.2f%% after movement pruning (%d steps)"):format(
  100 * before, 100 * after, steps))

assert(sw.save_masks(masks, "movement_masks.safetensors", { pruner = "MovementPruner" }))
local back = assert(sw.load_masks("movement_masks.safetensors"))
assert(back.fc1.weight:equal(masks.fc1.weight), "masks survive the file")
print("wrote movement_masks.safetensors")
