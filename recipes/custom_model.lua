-- custom_model.lua - a network of your own, described with the sw.nn DSL, trained, evaluated,
-- saved and loaded back.
--
-- Shows: sw.nn.Sequential with PyTorch-style names ("0", "1", ... or names you give), nesting
-- ("block1.conv1"), a residual block (sw.nn.Residual: an Add node joining the body and the
-- identity), an Inception-style block (sw.nn.Concat: branches on the same input, channels
-- concatenated); printing the description; model:modules() and model:info(); an sw.Evaluator
-- with an optimizer and an LR schedule; training on a Fashion-MNIST subset; model:save with
-- metadata; sw.load; comparing the two models' outputs with tensor arithmetic.
--
--   shrinkwrap run recipes/custom_model.lua [--fast] [--steps N] [--out FILE] [--seed S]
--
-- --fast trains a few steps on a small subset (what the tests run).
local sw = require "shrinkwrap"
local nn = sw.nn

local fast = sw.args.fast
local steps = sw.args.steps or (fast and 8 or 600)
local out = sw.args.out or "custom_model.safetensors"
local seed = sw.args.seed or 1

local net = nn.Sequential{
  nn.Conv2d(1, 16, 3, { padding = 1, name = "stem" }),           -- 16 x 28 x 28
  nn.BatchNorm2d(16), nn.ReLU(),
  nn.MaxPool2d(2),                                                -- 16 x 14 x 14
  nn.Residual{                                                    -- x + body(x)
    nn.Conv2d(16, 16, 3, { padding = 1, bias = false, name = "conv1" }),
    nn.BatchNorm2d(16, { name = "bn1" }),
    nn.ReLU{ name = "relu1" },
    nn.Conv2d(16, 16, 3, { padding = 1, bias = false, name = "conv2" }),
    nn.BatchNorm2d(16, { name = "bn2" }),
    name = "block1",
  },
  nn.ReLU(),
  nn.Concat{                                                      -- 16 + 16 channels
    nn.Conv2d(16, 16, 1, { name = "branch1x1" }),
    nn.Sequential{ nn.Conv2d(16, 8, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, { padding = 1 }),
                   name = "branch3x3" },
    name = "mixed",
  },
  nn.ReLU(),
  nn.AdaptiveAvgPool2d(1), nn.Flatten(),                          -- 32
  nn.Linear(32, 10, { name = "fc" }),
}
print(net)

local model = net:build{ input_shape = { 1, 28, 28 }, seed = seed }
local rows = {}
for _, m in ipairs(model:modules()) do
  rows[#rows + 1] = { m.name, m.type, "[" .. table.concat(m.shape, ", ") .. "]", m.params,
                      sw.human(m.flops) }
end
sw.print_table({ "module", "type", "output", "params", "FLOPs" }, rows)
local info = model:info()
sw.printf("%s model: %d parameters, %s FLOPs per image\n", info.arch, info.params,
          sw.human(info.flops))

local train = assert(sw.data.fashion_mnist{ split = "train", subset = fast and 256 or 20000,
                                            augment = not fast })
local test = assert(sw.data.fashion_mnist{ split = "test", subset = fast and 200 or 5000 })
local evaluator = sw.Evaluator{
  train = train, test = test, seed = seed,
  batch_size = fast and 32 or 128,
  optimizer = sw.optim.SGD{ lr = 0.05, momentum = 0.9, nesterov = true, weight_decay = 5e-4 },
  schedule = sw.schedule.cosine{ warmup = fast and 2 or 30 },
}

local before = evaluator:evaluate(model)
evaluator:train(model, steps)
local accuracy, loss = evaluator:evaluate(model)
sw.printf("test accuracy: %.2f%% before training, %.2f%% after %d steps (loss %.4f)\n",
          before * 100, accuracy * 100, steps, loss)

assert(model:save(out, { recipe = "custom_model", test_accuracy = ("%.4f"):format(accuracy),
                         steps = steps }))
local back = assert(sw.load(out))
local x = test:batch(1, 16)
model:eval()
back:eval()
local diff = (model(x) - back(x)):abs():max()
sw.printf("saved %s; the reloaded model's outputs differ by %g\n", out, diff)
assert(diff == 0, "the reloaded model disagrees with the trained one")
