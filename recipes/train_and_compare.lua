-- train_and_compare.lua - several architectures trained with the same budget and compared side
-- by side, one of them with a loss written in Lua (label smoothing).
--
-- Shows: zoo models (sw.models.*) next to a model described with sw.nn; one sw.Evaluator
-- reused for several models; sw.on_metric collecting training time and throughput; a
-- training_step hook, where Lua computes the loss and its gradient from the model's output
-- (the engine does the rest of the backward pass); comparing two models' predictions with
-- tensors (argmax per row); sw.print_table.
--
--   shrinkwrap run recipes/train_and_compare.lua [--fast] [--steps N] [--smoothing 0.1]
local sw = require "shrinkwrap"
local nn = sw.nn

local fast = sw.args.fast
local steps = sw.args.steps or (fast and 6 or 500)
local smoothing = sw.args.smoothing or 0.1
local batch_size = fast and 32 or 128

local train = assert(sw.data.fashion_mnist{ split = "train", subset = fast and 256 or 30000 })
local test = assert(sw.data.fashion_mnist{ split = "test", subset = fast and 200 or 5000 })

-- Cross-entropy against smoothed targets: (1 - eps) on the label, eps spread over all classes.
-- Returns the mean loss and its gradient with respect to the logits, as training_step must.
local function smoothed_cross_entropy(eps)
  return function(batch, output)
    local n, c = output:size(1), output:size(2)
    local logits = output:totable()
    local grad = sw.zeros{ n, c }
    local total = 0
    for i = 1, n do
      local row = logits[i]
      local top = math.max(table.unpack(row))
      local sum = 0
      for j = 1, c do sum = sum + math.exp(row[j] - top) end
      local log_z = top + math.log(sum)
      local label = batch.y[i] + 1 -- class ids are 0-based, Lua positions 1-based
      for j = 1, c do
        local target = eps / c + (j == label and 1 - eps or 0)
        total = total - target * (row[j] - log_z)
        grad[{ i, j }] = (math.exp(row[j] - log_z) - target) / n
      end
    end
    return total / n, grad
  end
end

local small_cnn = nn.Sequential{
  nn.Conv2d(1, 8, 3, { padding = 1 }), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
  nn.Conv2d(8, 16, 3, { padding = 1 }), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
  nn.Flatten(), nn.Linear(16 * 7 * 7, 10),
}

local candidates = {
  { name = "fmnist_mlp (zoo)", model = sw.models.fmnist_mlp{ seed = 1 } },
  { name = "fmnist_cnn (zoo)", model = sw.models.fmnist_cnn{ seed = 1 } },
  { name = "small cnn (sw.nn)", model = small_cnn:build{ seed = 1 } },
  { name = ("fmnist_cnn, smoothing %g"):format(smoothing), model = sw.models.fmnist_cnn{ seed = 1 },
    loss = smoothed_cross_entropy(smoothing) },
}

-- Training time and throughput, from the evaluator's metric events.
local run = {}
sw.on_metric(function(ev)
  if ev.kind == "step" then run.images_per_sec = ev.images_per_sec end
  if ev.kind == "end" then run.seconds = ev.elapsed end
end)

local optimizer = sw.optim.SGD{ lr = 0.05, momentum = 0.9, nesterov = true, weight_decay = 5e-4 }
local shared = sw.Evaluator{ train = train, test = test, batch_size = batch_size, seed = 1,
                             optimizer = optimizer, eval_every_epoch = false }
local rows = {}
for _, c in ipairs(candidates) do
  local evaluator = shared
  if c.loss then
    evaluator = sw.Evaluator{ train = train, test = test, batch_size = batch_size, seed = 1,
                              optimizer = optimizer, eval_every_epoch = false,
                              training_step = c.loss }
  end
  run = {}
  evaluator:train(c.model, steps)
  local accuracy, loss = evaluator:evaluate(c.model)
  c.accuracy = accuracy
  local info = c.model:info()
  rows[#rows + 1] = { c.name, info.params, sw.human(info.flops), ("%.2f%%"):format(accuracy * 100),
                      ("%.4f"):format(loss), ("%.1f"):format(run.seconds),
                      ("%.0f"):format(run.images_per_sec) }
end
print(("\n%d steps of batch %d on %d images, tested on %d:"):format(steps, batch_size, #train,
                                                                  #test))
sw.print_table({ "model", "params", "FLOPs", "accuracy", "loss", "train s", "img/s" }, rows)

-- Where do the zoo CNN and the small DSL CNN agree? Predicted classes are argmax positions - 1.
local x, labels = test:batch(1, #test)
local a = candidates[2].model:eval()(x):argmax(2)
local b = candidates[3].model:eval()(x):argmax(2)
local agree, both_right = 0, 0
for i = 1, #labels do
  if a[i] == b[i] then
    agree = agree + 1
    if a[i] - 1 == labels[i] then both_right = both_right + 1 end
  end
end
sw.printf("fmnist_cnn and the small cnn predict the same class for %.1f%% of the test images " ..
          "(both right on %.1f%%)\n", 100 * agree / #labels, 100 * both_right / #labels)
