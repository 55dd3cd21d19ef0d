#!/usr/bin/env bash
# The headless command line end to end: help, training on a subset, saving, eval, info, bench,
# Ctrl-C at a step boundary leaving no file, and clear errors for bad input.
bin=$1
source "$(dirname "$0")/lib.sh"

# Every command documents its options.
expect_ok "top-level help" "$bin" --help
for c in train eval info bench; do
  expect_ok "$c --help" "$bin" $c --help
  expect_grep "$c --help mentions usage" "usage: shrinkwrap $c" "$work/out"
done
expect_fail "unknown command" "unknown command" "$bin" frobnicate

# Train a small CNN on a subset, with a JSON-lines log.
expect_ok "train on a subset" "$bin" train --model fmnist_cnn --subset 1024 --test-subset 500 \
  --epochs 1 --batch-size 64 --threads 2 --out "$work/m.safetensors" --log "$work/log.jsonl"
expect_grep "train prints test accuracy" "test accuracy: [0-9.]+%" "$work/out"
[ -s "$work/m.safetensors" ] && pass || fail "model file written"
expect_grep "log has step events" '"event": *"step"' "$work/log.jsonl"
expect_grep "log has an eval event" '"event": *"eval"' "$work/log.jsonl"
acc=$(grep -oE 'test accuracy: [0-9.]+' "$work/out" | grep -oE '[0-9.]+$')
awk -v a="$acc" 'BEGIN { exit !(a > 50) }' && pass || fail "1024 images x 1 epoch reach >50% (got $acc)"
ls "$work" | grep -q '\.tmp\.' && fail "a temporary file was left behind" || pass

# The saved model evaluates to the same accuracy and shows its tree.
expect_ok "eval the saved model" "$bin" eval "$work/m.safetensors" --test-subset 500
expect_grep "eval agrees with train" "test accuracy $acc%" "$work/out"
expect_ok "info" "$bin" info "$work/m.safetensors"
expect_grep "info shows conv2's shape" "conv2 +Conv2d +\[64, 14, 14\]" "$work/out"
expect_grep "info shows the total" "824650 parameters" "$work/out"

# Bench runs and reports both parts.
expect_ok "bench" "$bin" bench fmnist_mlp --steps 3 --warmup 1 --repeats 3 --json
expect_grep "bench json" '"train_images_per_sec"' "$work/out"

# bench --profile: a time for every node, in the text table and in the JSON. In inference the
# CNN's conv-bn-relu chains run fused, timed as their conv (the later members read 0).
expect_ok "bench --profile" "$bin" bench fmnist_cnn --steps 2 --warmup 1 --repeats 2 \
  --latency-batches 4 --threads 2 --profile
expect_grep "profile table header" "node +type +train fwd +train bwd +infer" "$work/out"
expect_grep "profile row for conv2" "^  conv2 +Conv2d +[0-9.]+ +[0-9.]+ +[0-9.]+" "$work/out"
expect_grep "profile total" "^  total " "$work/out"
expect_fail "bench --profile with nothing to time" "nothing to time" "$bin" bench fmnist_mlp \
  --no-train --no-latency --profile
expect_ok "bench --profile --json" "$bin" bench fmnist_cnn --steps 2 --warmup 1 --repeats 2 \
  --latency-batches 4 --threads 2 --profile --json
python3 - "$work/out" <<'PY' && pass || fail "bench --profile --json: one entry per node, times where they belong"
import json, sys
d = json.load(open(sys.argv[1]))
p = {e["node"]: e for e in d["profile"]}
names = ["conv1", "bn1", "relu1", "pool1", "conv2", "bn2", "relu2", "pool2", "flatten", "fc1",
         "relu3", "fc2"]
assert [e["node"] for e in d["profile"]] == names, d["profile"]
assert all(e["train_forward_ms"] >= 0 and e["train_backward_ms"] >= 0 for e in d["profile"])
assert p["conv2"]["train_forward_ms"] > 0 and p["conv2"]["train_backward_ms"] > 0
assert p["conv2"]["infer_ms"] > 0 and p["fc1"]["infer_ms"] > 0
assert p["bn2"]["infer_ms"] == 0 and p["relu2"]["infer_ms"] == 0   # fused into conv2
assert p["bn2"]["train_forward_ms"] > 0                            # training does not fuse
PY

# Ctrl-C during training: stops at a step boundary, says so, writes nothing.
"$bin" train --model fmnist_cnn --subset 20000 --epochs 3 --threads 2 \
  --out "$work/interrupted.safetensors" --log "$work/int.jsonl" >"$work/int.out" 2>"$work/int.err" &
pid=$!
if wait_for_grep '"event": *"step"' "$work/int.jsonl" 120 $pid; then
  kill -INT $pid
  wait $pid; rc=$?
  [ $rc -eq 130 ] && pass || fail "interrupted train exits 130 (got $rc)"
  expect_grep "interrupt is reported" "interrupted" "$work/int.err"
  [ ! -e "$work/interrupted.safetensors" ] && pass || fail "no output after Ctrl-C"
  ls "$work" | grep -q '\.tmp\.' && fail "temporary left after Ctrl-C" || pass
else
  fail "training never reached a first step"; kill $pid 2>/dev/null; wait $pid
fi

# Bad input: clear errors, never a crash.
expect_fail "missing dataset" "apt-get install dataset-fashion-mnist|--data" \
  "$bin" train --data "$work/nowhere" --epochs 1
printf 'not a model' >"$work/junk.safetensors"
expect_fail "corrupt model file" "junk.safetensors" "$bin" info "$work/junk.safetensors"
head -c 300 "$work/m.safetensors" >"$work/cut.safetensors"
expect_fail "truncated model file" "cut.safetensors" "$bin" eval "$work/cut.safetensors"
expect_fail "unknown model" "fmnist_cnn" "$bin" info resnet9000
expect_fail "bad option value" "--epochs" "$bin" train --epochs many
expect_fail "mnist needs a folder" "MNIST.*--data" "$bin" train --dataset mnist --epochs 1

finish
