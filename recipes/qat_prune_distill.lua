-- qat_prune_distill.lua - pruning, quantization-aware training and distillation in one run,
-- as NNI's pqd_fuse example: an L1NormPruner masks half of the channels of conv1, conv2 and
-- fc1, a QATQuantizer fused on it fake-quantizes every Conv2d and Linear weight and input to
-- int8 from quant_start_step on (the mask applies after the fake-quant, so pruned weights stay
-- exactly zero), and a DynamicLayerwiseDistiller fused on both teaches the logits from the
-- dense model. After one compress the recipe exports what a deployment needs: the masks, the
-- calibration (scales and zero points) and the sped-up model; then it re-simulates int8 on the
-- sped-up model from the exported calibration with the base Quantizer, as NNI's example does.
--
-- Shows: QATQuantizer.from_compressor(pruner, config_list, quant_start_step); a quantization
-- config list (target_names, quant_dtype, quant_scheme); get_calibration_config() as a Lua
-- table; quantizer:export(path) (calibration JSON) and sw.save_masks(pruner, path);
-- sw.Quantizer(model, config_list) with update_calibration_config; ModelSpeedup; accuracy,
-- parameters and FLOPs along the way.
--
--   shrinkwrap run recipes/qat_prune_distill.lua [--fast] [--model FILE] [--steps 600]
--       [--subset 20000] [--test-subset 2000] [--seed 1]   (docs/RESULTS.md uses the full sets)
local sw = require "shrinkwrap"

local fast = sw.args.fast
local steps = sw.args.steps or (fast and 4 or 600)
-- QAT observes ranges for quant_start steps before fake-quantizing (at most half the run)
local quant_start = fast and 1 or math.min(100, steps // 2)

local train = assert(sw.data.fashion_mnist{ split = "train",
                                            subset = sw.args.subset or (fast and 128 or 20000) })
local test = assert(sw.data.fashion_mnist{ split = "test",
                                           subset = sw.args.test_subset or (fast and 64 or 2000) })
local evaluator = sw.Evaluator{ train = train, test = test, batch_size = fast and 16 or 128,
                                optimizer = sw.optim.SGD{ lr = 0.01, momentum = 0.9 },
                                eval_every_epoch = false, seed = sw.args.seed or 1 }

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
report("dense float (the teacher)", teacher)

-- The three compressors, each on the previous one's wrappers.
local pruner = sw.L1NormPruner(model, {
  { op_names = { "conv1", "conv2", "fc1" }, sparse_ratio = 0.5 },
}, evaluator)
local quant_config = {
  { op_types = { "Conv2d", "Linear" }, target_names = { "_input_", "weight" },
    quant_dtype = "int8", quant_scheme = "affine" },
}
local quantizer = sw.QATQuantizer.from_compressor(pruner, quant_config, quant_start)
local distiller = sw.DynamicLayerwiseDistiller.from_compressor(
  quantizer, { { op_names = { "fc2" }, apply_method = "kl" } }, teacher)

distiller:compress(steps)
report(("pruned + int8 QAT + distilled, %d steps"):format(steps), model)

-- What a deployment needs.
local masks = pruner:get_masks()
local calibration = quantizer:get_calibration_config()
assert(sw.save_masks(pruner, "qpd_masks.safetensors", { pipeline = "qat_prune_distill" }))
assert(quantizer:export("qpd_calibration.json"))
local w = calibration.conv1.weight
print(("calibration of conv1.weight: %s %s, scale %.6g, zero point %g (range %.4g .. %.4g)")
      :format(w.quant_dtype, w.quant_scheme, w.scale[1], w.zero_point[1], w.tracked_min[1],
              w.tracked_max[1]))
local n_targets = 0
for _, targets in pairs(calibration) do
  for _ in pairs(targets) do n_targets = n_targets + 1 end
end

distiller:unwrap_model() -- masks baked in, fake-quantization removed
local speedup = sw.ModelSpeedup(model, test:batch(1, 8), masks)
local small = speedup:speedup_model()
report("sped up, float", small)
assert(small:save("qpd_model.safetensors", { pipeline = "qat_prune_distill" }))

-- int8 again on the small model, from the exported calibration. Per-tensor scales do not
-- depend on how many channels a layer has, so they carry over to the sped-up layers.
local simulated = small:clone()
local sim = sw.Quantizer(simulated, quant_config)
sim:update_calibration_config(calibration)
report("sped up, int8 simulated", simulated)

print()
sw.print_table({ "model", "params", "FLOPs", "accuracy" }, rows)
print()
print(("wrote qpd_masks.safetensors (%d masks), qpd_calibration.json (%d targets) and "
       .. "qpd_model.safetensors"):format(#sw.mask_stats(masks), n_targets))
