-- inspect_model.lua - look inside a model with tensors: where its parameters and FLOPs are,
-- what its weights look like, what it predicts, and what magnitude pruning of one layer would
-- do to it, done by hand with a mask built in Lua.
--
-- Shows: sw.load or a zoo model with pretrained weights (training one briefly when the weights
-- file is absent); model:modules() and model:parameters(); model:param() and set_param();
-- tensor reductions (norm, abs, max, mean), element access, reshape; building a 0/1 mask;
-- model:clone(); evaluator:evaluate; predictions for single images.
--
--   shrinkwrap run recipes/inspect_model.lua [--fast] [--model FILE] [--layer conv2]
--                                            [--ratio 0.5]
local sw = require "shrinkwrap"

local fast = sw.args.fast
local ratio = sw.args.ratio or 0.5
local classes = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                  "Sneaker", "Bag", "Ankle boot" }

local train = assert(sw.data.fashion_mnist{ split = "train", subset = fast and 256 or 20000 })
local test = assert(sw.data.fashion_mnist{ split = "test", subset = fast and 200 or 5000 })
local evaluator = sw.Evaluator{ train = train, test = test, batch_size = fast and 32 or 128,
                                seed = 1 }

-- The model: a file given with --model, else the zoo CNN's pretrained weights, else a CNN
-- trained here for a moment.
local model
if sw.args.model then
  model = assert(sw.load(sw.args.model))
else
  local why
  model, why = sw.models.fmnist_cnn{ pretrained = true }
  if not model then
    print("note: " .. why)
    local steps = fast and 8 or 400
    print(("training a fresh fmnist_cnn for %d steps instead"):format(steps))
    model = sw.models.fmnist_cnn{ seed = 1 }
    evaluator:train(model, steps)
  end
end

-- Where the parameters and the FLOPs are.
local info = model:info()
print(("\n%s: %s parameters, %s FLOPs per image"):format(info.arch, sw.human(info.params),
                                                       sw.human(info.flops)))
local rows = {}
for _, m in ipairs(model:modules()) do
  if m.params > 0 then
    rows[#rows + 1] = { m.name, m.type, ("%.1f%%"):format(100 * m.params / info.params),
                        ("%.1f%%"):format(100 * m.flops / info.flops) }
  end
end
sw.print_table({ "module", "type", "params", "FLOPs" }, rows)

-- What the weights look like.
rows = {}
for _, p in ipairs(model:parameters()) do
  if p.trainable and p.name:match("weight$") and #p.shape > 1 then
    local w = model:param(p.name)
    rows[#rows + 1] = { p.name, "[" .. table.concat(p.shape, ", ") .. "]",
                        ("%.3f"):format(w:norm()), ("%.4f"):format(w:abs():mean()),
                        ("%.3f"):format(w:abs():max()) }
  end
end
print()
sw.print_table({ "weight", "shape", "norm", "mean |w|", "max |w|" }, rows)

-- What it predicts for the first test images, with its confidence (softmax in Lua).
model:eval()
local x, labels = test:batch(1, 8)
local logits = model(x):totable()
print()
for i, row in ipairs(logits) do
  local best, sum = 1, 0
  for j = 1, #row do
    if row[j] > row[best] then best = j end
  end
  for j = 1, #row do sum = sum + math.exp(row[j] - row[best]) end
  local mark = best - 1 == labels[i] and "  " or "x "
  print(("%s%-12s %5.1f%%   (true: %s)"):format(mark, classes[best], 100 / sum,
                                                classes[labels[i] + 1]))
end

-- Magnitude pruning of one layer by hand: zero the `ratio` smallest weights through a mask.
local function first_big_layer()
  for _, p in ipairs(model:parameters()) do
    if p.name:match("weight$") and #p.shape > 1 and p.numel >= 1000 then
      return p.name:gsub("%.weight$", "")
    end
  end
end
local layer = sw.args.layer or (model:info().arch == "fmnist_cnn" and "conv2") or first_big_layer()
local name = layer .. ".weight"
local w = model:param(name)
local flat = w:reshape{ w:numel() }
local magnitudes = {}
for i = 1, flat:numel() do magnitudes[i] = math.abs(flat[i]) end
table.sort(magnitudes)
local threshold = magnitudes[math.max(1, math.floor(ratio * #magnitudes))]
local mask = sw.zeros{ flat:numel() }
for i = 1, flat:numel() do
  if math.abs(flat[i]) > threshold then mask[i] = 1 end
end
mask = mask:reshape(w:shape())
local pruned = model:clone()
pruned:set_param(name, w * mask)

local acc_before = evaluator:evaluate(model)
local acc_after = evaluator:evaluate(pruned)
print(("\npruning %s by magnitude: the mask keeps %d of %d weights (%.1f%%)"):format(
  layer, mask:count_nonzero(), mask:numel(), 100 * mask:count_nonzero() / mask:numel()))
print(("test accuracy %.2f%% -> %.2f%% without fine-tuning"):format(100 * acc_before,
                                                                   100 * acc_after))

-- The output channels with the smallest L1 norm: what a channel pruner would remove first.
local shape = w:shape()
local per_channel = w:numel() // shape[1]
local norms = {}
for c = 1, shape[1] do
  local s = 0
  for k = 1, per_channel do s = s + math.abs(flat[(c - 1) * per_channel + k]) end
  norms[#norms + 1] = { channel = c - 1, l1 = s }
end
table.sort(norms, function(a, b) return a.l1 < b.l1 end)
local weakest = {}
for i = 1, math.min(5, #norms) do
  weakest[i] = ("%d (%.2f)"):format(norms[i].channel, norms[i].l1)
end
print(("weakest output channels of %s by L1 norm: %s"):format(layer, table.concat(weakest, ", ")))
