-- sensitivity.lua - which layers tolerate pruning? Each prunable layer is pruned alone, at
-- several ratios, with L1NormPruner (whole output channels / rows, smallest L1 norm first) on a
-- fresh copy of the trained model, and evaluated without any fine-tuning. The table shows the
-- test accuracy of every (layer, ratio); layers whose accuracy holds up can be pruned hard,
-- the others gently. This is the classic sensitivity analysis that precedes a pruning config.
--
-- Shows: sw.L1NormPruner with a config list per layer; compress() of a one-shot pruner (no
-- evaluator, no training); masks from compress; sw.mask_stats; model:clone() so that every
-- trial starts from the same weights; `<close>` variables that free each copy and its pruner
-- as soon as the trial ends; a table built with sw.print_table.
--
--   shrinkwrap run recipes/sensitivity.lua [--fast] [--model FILE] [--ratios 0.25,0.5,0.75]
local sw = require "shrinkwrap"

local fast = sw.args.fast
local train = assert(sw.data.fashion_mnist{ split = "train", subset = fast and 128 or 20000 })
local test = assert(sw.data.fashion_mnist{ split = "test", subset = fast and 64 or 2000 })
local evaluator = sw.Evaluator{ train = train, test = test, batch_size = fast and 16 or 128,
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

local ratios = { 0.25, 0.5, 0.75, 0.9 }
if fast then ratios = { 0.5, 0.9 } end
if sw.args.ratios then
  ratios = {}
  for r in tostring(sw.args.ratios):gmatch("[^,]+") do ratios[#ratios + 1] = tonumber(r) end
end

-- Every Conv2d and Linear except the classifier, whose outputs are the classes.
local layers = {}
local modules = model:modules()
for i, m in ipairs(modules) do
  if (m.type == "Conv2d" or m.type == "Linear") and i < #modules then
    layers[#layers + 1] = m
  end
end

local baseline = evaluator:evaluate(model)
print(("%s: %s parameters; test accuracy %.2f%% on %d images, unpruned"):format(
  model:info().arch, sw.human(model:info().params), 100 * baseline, #test))
print()

local header = { "layer", "type", "params" }
for _, r in ipairs(ratios) do header[#header + 1] = ("%g%%"):format(100 * r) end
local rows, worst = {}, {}
for _, layer in ipairs(layers) do
  local row = { layer.name, layer.type, sw.human(layer.params) }
  for _, ratio in ipairs(ratios) do
    local copy <close> = model:clone()
    local pruner <close> = sw.L1NormPruner(copy, {
      { op_names = { layer.name }, sparse_ratio = ratio },
    })
    local _, masks = pruner:compress()
    local stats = sw.mask_stats(masks)
    assert(stats[1].module == layer.name, "the pruner masked the layer it was given")
    local accuracy = evaluator:evaluate(copy)
    row[#row + 1] = ("%.1f%%"):format(100 * accuracy)
    worst[layer.name] = accuracy -- at the last (highest) ratio
  end
  rows[#rows + 1] = row
end
print(("test accuracy with one layer pruned (L1 norm, output channels), %d layers x %d ratios:")
      :format(#layers, #ratios))
sw.print_table(header, rows)

-- The verdict at the highest ratio.
local most, least
for _, layer in ipairs(layers) do
  local a = worst[layer.name]
  if not most or a > worst[most] then most = layer.name end
  if not least or a < worst[least] then least = layer.name end
end
print()
print(("at %g%%: most tolerant %s (%.1f%%), most sensitive %s (%.1f%%); unpruned %.1f%%"):format(
  100 * ratios[#ratios], most, 100 * worst[most], least, 100 * worst[least], 100 * baseline))
