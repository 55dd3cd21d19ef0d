#!/usr/bin/env bash
# `shrinkwrap quantize` end to end on a tiny subset: QAT and PTQ (with BatchNorm folding) into
# int8 files; the int8 accuracy equals the fake-quantized one; eval and bench run the int8
# file; the calibration JSON is written and loads back; int8 files are readable safetensors
# with I8 tensors; config and usage errors name what is wrong.
bin=$1
source "$(dirname "$0")/lib.sh"

data=(--subset 384 --test-subset 300 --threads 2)

expect_ok "quantize --help" "$bin" quantize --help
expect_grep "quantize --help mentions usage" "usage: shrinkwrap quantize" "$work/out"
expect_ok "top-level help lists quantize" "$bin" --help
expect_grep "quantize in the command list" "^  quantize " "$work/out"

expect_ok "train a small MLP" "$bin" train --model fmnist_mlp "${data[@]}" --epochs 1 \
  --batch-size 64 --out "$work/mlp.safetensors"

cat >"$work/q.json" <<'EOF'
[{"op_types": ["Linear"], "quant_dtype": "int8", "quant_scheme": "affine",
  "target_names": ["_input_", "weight", "_output_"],
  "target_settings": {"weight": {"quant_scheme": "symmetric", "granularity": "out_channel"}}}]
EOF

# QAT: fake-quantized and int8 accuracies agree (within 0.3 points; here 1 image of 300).
expect_ok "quantize qat" "$bin" quantize --model "$work/mlp.safetensors" --config "$work/q.json" \
  --method qat --steps 3 --batch-size 64 "${data[@]}" --out "$work/mlp.int8.safetensors" \
  --calibration "$work/calib.json"
cp "$work/out" "$work/qat.out"
expect_grep "three int8 layers" "int8 layers: fc1 fc2 fc3" "$work/qat.out"
fake=$(grep -oE 'test accuracy fake-quantized: [0-9.]+' "$work/qat.out" | grep -oE '[0-9.]+$')
int8=$(grep -oE 'test accuracy int8: [0-9.]+' "$work/qat.out" | grep -oE '[0-9.]+$')
if [ -n "$fake" ] && [ -n "$int8" ] &&
   awk -v a="$fake" -v b="$int8" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.34) }'; then
  pass
else
  fail "int8 accuracy $int8 vs fake-quantized $fake"
fi

# eval runs the int8 file and finds the same accuracy.
expect_ok "eval the int8 file" "$bin" eval "$work/mlp.int8.safetensors" --test-subset 300 \
  --threads 2
expect_grep "eval reports the int8 accuracy" "test accuracy ${int8}%" "$work/out"
expect_grep "eval names the int8 kernel" "int8 kernel" "$work/out"

# bench times the int8 model and the same graph in float, in one run.
expect_ok "bench the int8 file" "$bin" bench "$work/mlp.int8.safetensors" \
  --latency-batches 1,16 --repeats 3 --threads 2
expect_grep "bench: int8 and float latencies" "batch 16: int8 [0-9.]+ ms, float [0-9.]+ ms" \
  "$work/out"
expect_ok "bench --json" "$bin" bench "$work/mlp.int8.safetensors" --latency-batches 1 \
  --repeats 2 --threads 2 --json
expect_grep "bench json" '"format": "int8".*"float_latency_ms"' "$work/out"

# The file is plain safetensors with I8 weights and per-channel scales; the calibration JSON
# has NNI's fields.
python3 - "$work/mlp.int8.safetensors" "$work/calib.json" >"$work/py.out" 2>&1 <<'EOF'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    h = json.loads(f.read(n))
assert h["__metadata__"]["format"] == "shrinkwrap-int8-model", h["__metadata__"]["format"]
assert h["fc1.weight"]["dtype"] == "I8" and h["fc1.weight"]["shape"] == [256, 784]
assert h["fc1.weight_scale"]["shape"] == [256]
nodes = json.loads(h["__metadata__"]["quantization"])["nodes"]
assert nodes["fc1"]["mode"] == "int8"
c = json.load(open(sys.argv[2]))
w = c["fc2"]["weight"]
assert w["quant_dtype"] == "int8" and w["quant_bits"] == 8 and w["shape"] == [128, 1]
assert len(w["scale"]) == 128 and len(w["tracked_max"]) == 128
assert c["fc1"]["_input_0"]["quant_scheme"] == "affine"
print("ok")
EOF
expect_grep "int8 file and calibration JSON are well formed" "^ok$" "$work/py.out"

# The calibration loads back into a fresh quantization of the same model (no training).
expect_ok "quantize --load-calibration" "$bin" quantize --model "$work/mlp.safetensors" \
  --config "$work/q.json" --load-calibration "$work/calib.json" "${data[@]}" \
  --out "$work/mlp2.int8.safetensors"
expect_grep "loaded calibration gives an int8 model" "int8 layers: fc1 fc2 fc3" "$work/out"

# PTQ on a CNN with conv1 + bn1 + relu1 folded: BN and ReLU disappear into the int8 conv.
cat >"$work/cnn.json" <<'EOF'
[{"op_names": ["conv1"], "quant_dtype": "int8", "quant_scheme": "affine",
  "target_names": ["_input_", "weight", "_output_"],
  "target_settings": {"weight": {"quant_scheme": "symmetric", "granularity": "out_channel"}},
  "fuse_names": [["conv1", "bn1", "relu1"]]},
 {"op_names": ["conv2", "fc1", "fc2"], "quant_dtype": "int8", "quant_scheme": "affine",
  "target_names": ["_input_", "weight"]}]
EOF
expect_ok "quantize ptq with BN folding" "$bin" quantize --model fmnist_cnn --config \
  "$work/cnn.json" --method ptq --steps 2 --batch-size 32 "${data[@]}" \
  --out "$work/cnn.int8.safetensors"
expect_grep "folded modules" "folded into them: bn1 relu1" "$work/out"
expect_grep "four int8 layers" "int8 layers: conv1 conv2 fc1 fc2" "$work/out"

# Errors name the entry and the key, or the option.
expect_fail "--lsq-init only for lsq" "--lsq-init is for lsq" "$bin" quantize --model \
  fmnist_mlp --config "$work/q.json" --method qat --lsq-init data --out "$work/x.safetensors"
expect_fail "--lsq-init values" "--lsq-init is nni or data" "$bin" quantize --model \
  fmnist_mlp --config "$work/q.json" --method lsq --lsq-init paper --out "$work/x.safetensors"
expect_fail "unknown dtype" 'config_list\[0\]\.quant_dtype' "$bin" quantize --model \
  "$work/mlp.safetensors" --config '[{"op_types": ["Linear"], "quant_dtype": "int9x"}]' \
  "${data[@]}" --out "$work/x.safetensors"
expect_fail "unknown scheme" 'quant_scheme.*"asym"' "$bin" quantize --model \
  "$work/mlp.safetensors" \
  --config '[{"op_types": ["Linear"], "quant_dtype": "int8", "quant_scheme": "asym"}]' \
  "${data[@]}" --out "$work/x.safetensors"
expect_fail "fuse pair that is not conv + its BN" 'fusable pattern' "$bin" quantize --model \
  fmnist_cnn --config \
  '[{"op_names": ["conv1"], "quant_dtype": "int8", "fuse_names": [["conv1", "conv2"]]}]' \
  "${data[@]}" --out "$work/x.safetensors"
expect_fail "unknown method" '--method is qat' "$bin" quantize --model "$work/mlp.safetensors" \
  --config "$work/q.json" --method int8 --out "$work/x.safetensors"
expect_fail "missing --out" '--out' "$bin" quantize --model "$work/mlp.safetensors" \
  --config "$work/q.json"
expect_fail "quant-start-step is qat's" 'quant-start-step is for qat' "$bin" quantize --model \
  "$work/mlp.safetensors" --config "$work/q.json" --method ptq --quant-start-step 3 \
  --out "$work/x.safetensors"
[ ! -e "$work/x.safetensors" ] && pass || fail "a failed run wrote its output"

finish
