#!/usr/bin/env bash
# `shrinkwrap prune` end to end on a subset: every pruner once, its exact sparsity read back
# through `info --masks`; config errors that name the file, the entry and the key; masks that do
# not fit a model; fine-tuning with --save-model evaluated by `eval`; Ctrl-C leaving no file.
bin=$1
source "$(dirname "$0")/lib.sh"

expect_ok "prune --help" "$bin" prune --help
expect_grep "prune --help mentions usage" "usage: shrinkwrap prune" "$work/out"
for word in level l1norm l2norm fpgm slim taylor linear agp movement --training-steps \
  --regular-scale --interval-steps --total-times --sub-pruner --warmup-step \
  --cooldown-begin-step --auto-dependency --finetune-epochs --save-model --lr --subset --log; do
  expect_grep "prune --help documents $word" "$word" "$work/out"
done
expect_ok "top-level help" "$bin" --help
expect_grep "prune is a command" "^  prune " "$work/out"
expect_ok "info --help" "$bin" info --help
expect_grep "info --help documents --masks" "--masks FILE" "$work/out"

# Tiny runs: the binary is the sanitizer build.
small=(--subset 256 --test-subset 200 --batch-size 32 --threads 2 --quiet)

# prune_and_check NAME CONFIG "PRUNE OPTIONS" PATTERN... : prunes the zoo fmnist_cnn (seed 0),
# then every PATTERN must match a line of `info fmnist_cnn --masks` (the same architecture).
prune_and_check() {
  local name=$1 config=$2 opts=$3; shift 3
  # shellcheck disable=SC2086
  expect_ok "prune $name" "$bin" prune --model fmnist_cnn --config "$config" \
    --out "$work/$name.safetensors" --log "$work/$name.jsonl" "${small[@]}" $opts
  cp "$work/out" "$work/$name.out"
  cp "$work/err" "$work/$name.err"
  expect_grep "prune $name prints the dense accuracy" "test accuracy before pruning: [0-9.]+%" \
    "$work/$name.out"
  expect_grep "prune $name prints the masked accuracy" "test accuracy after masking: [0-9.]+%" \
    "$work/$name.out"
  expect_grep "prune $name estimates speedup" "speedup would remove .* parameters" \
    "$work/$name.out"
  expect_ok "info --masks after $name" "$bin" info fmnist_cnn --masks "$work/$name.safetensors"
  local pattern
  for pattern in "$@"; do expect_grep "$name: $pattern" "$pattern" "$work/out"; done
}

one='"op_names": ["conv1", "conv2", "fc1"], "sparse_ratio": 0.5'
prune_and_check level "[{\"op_names\": [\"fc1\"], \"sparse_ratio\": 0.75}]" "--pruner level" \
  "^fc1 .* 75\.0% +256/256$" "^conv1 .* - +32/32$"
cat >"$work/l1.json" <<JSON
[{$one}]
JSON
prune_and_check l1norm "$work/l1.json" "--pruner l1norm" \
  "^conv1 .* 50\.0% +16/32$" "^bn1 .* - +16/32$" "^conv2 .* 50\.0% +32/64$" \
  "^fc1 .* 50\.0% +128/256$" "^fc2 .* - +10/10$" \
  "masks .*: 6 tensors; 410944 of 821888 parameters under masks are masked \(50\.0%\)"
prune_and_check l2norm '[{"op_names": ["conv2"], "sparse_ratio": 0.25}]' "--pruner l2norm" \
  "^conv2 .* 25\.0% +48/64$" "^pool2 .* - +48/64$"
prune_and_check fpgm '[{"op_names": ["conv1"], "sparse_ratio": 0.5}]' "--pruner fpgm" \
  "^conv1 .* 50\.0% +16/32$"
prune_and_check slim '[{"op_types": ["BatchNorm2d"], "sparse_ratio": 0.5}]' \
  "--pruner slim --training-steps 2 --regular-scale 0.01" \
  "^bn1 .* 50\.0% +16/32$" "^bn2 .* 50\.0% +32/64$" "^conv1 .* - +32/32$"
prune_and_check taylor '[{"op_names": ["conv2"], "sparse_ratio": 0.5}]' \
  "--pruner taylor --training-steps 2" "^conv2 .* 50\.0% +32/64$"
prune_and_check linear '[{"op_names": ["conv1"], "sparse_ratio": 0.5}]' \
  "--pruner linear --sub-pruner l1norm --interval-steps 1 --total-times 2" \
  "^conv1 .* 50\.0% +16/32$"
prune_and_check agp '[{"op_names": ["conv2"], "sparse_ratio": 0.5}]' \
  "--pruner agp --sub-pruner taylor --interval-steps 2 --total-times 2" \
  "^conv2 .* 50\.0% +32/64$"
prune_and_check movement '[{"op_names": ["fc1"], "sparse_ratio": 0.5}]' \
  "--pruner movement --warmup-step 1 --cooldown-begin-step 3" "^fc1 .* 50\.0% +128/256$"

# The trained pruners ran exactly the steps their schedule needs, in the "prune" phase.
count_steps() { grep -cE '"event": *"step", *"phase": *"prune"' "$1"; }
for pair in slim:2 taylor:2 linear:2 agp:4 movement:3 l1norm:0; do
  n=$(count_steps "$work/${pair%%:*}.jsonl")
  [ "$n" -eq "${pair##*:}" ] && pass || fail "${pair%%:*} trains ${pair##*:} steps (got $n)"
done
expect_grep "agp names its sub-pruner" "AGPPruner over TaylorPruner" "$work/agp.err"
expect_grep "the masks file records the pruner" "AGPPruner\(TaylorPruner\)" "$work/agp.safetensors"

# Config errors name the file, the entry and the key; nothing is written.
cat >"$work/unknown_key.json" <<'JSON'
[{"op_names": ["conv1"], "sparse_ratio": 0.5}, {"op_names": ["conv2"], "sparse_ratoi": 0.5}]
JSON
cat >"$work/no_op.json" <<'JSON'
[{"op_names": ["conv9"], "sparse_ratio": 0.5}]
JSON
cat >"$work/ratio.json" <<'JSON'
[{"op_names": ["conv1"], "sparse_ratio": 1.5}]
JSON
bad=(--model fmnist_cnn --out "$work/bad.safetensors" "${small[@]}")
expect_fail "unknown key" 'unknown_key\.json: .*config_list\[1\]: unknown key "sparse_ratoi"' \
  "$bin" prune --pruner l1norm --config "$work/unknown_key.json" "${bad[@]}"
expect_fail "op name not in the model" \
  'no_op\.json: .*config_list\[0\]\.op_names: "conv9" is not a module' \
  "$bin" prune --pruner l1norm --config "$work/no_op.json" "${bad[@]}"
expect_fail "ratio out of range" \
  'ratio\.json: .*config_list\[0\]\.sparse_ratio: 1\.5 is not in \[0, 1\)' \
  "$bin" prune --pruner l1norm --config "$work/ratio.json" "${bad[@]}"
expect_fail "ratio out of range with --auto-dependency" \
  'ratio\.json: config_list\[0\]\.sparse_ratio: 1\.5' \
  "$bin" prune --pruner l1norm --auto-dependency --config "$work/ratio.json" "${bad[@]}"
expect_fail "config text that is not JSON" "--config: .*not valid JSON" \
  "$bin" prune --pruner l1norm --config '[{"op_names": ["conv1"], ' "${bad[@]}"
expect_fail "missing config file" "cannot open the config list" \
  "$bin" prune --pruner l1norm --config "$work/nowhere.json" "${bad[@]}"
[ ! -e "$work/bad.safetensors" ] && pass || fail "a failed prune wrote masks"

# Usage errors: options that do not fit the pruner.
expect_fail "unknown pruner" "--pruner is level, l1norm" \
  "$bin" prune --pruner magic --config "$work/l1.json" "${bad[@]}"
expect_fail "slim without --training-steps" "slim trains before it prunes" \
  "$bin" prune --pruner slim --config "$work/l1.json" "${bad[@]}"
expect_fail "--steps with a one-shot pruner" "--epochs and --steps bound the pruning run" \
  "$bin" prune --pruner l1norm --steps 3 --config "$work/l1.json" "${bad[@]}"
expect_fail "agp without a schedule" "agp needs --interval-steps N and --total-times T" \
  "$bin" prune --pruner agp --config "$work/l1.json" "${bad[@]}"
expect_fail "movement as a sub-pruner" "--sub-pruner is level" \
  "$bin" prune --pruner linear --sub-pruner movement --interval-steps 1 --total-times 1 \
  --config "$work/l1.json" "${bad[@]}"
expect_fail "--training-steps for l1norm" "--training-steps is for slim and taylor" \
  "$bin" prune --pruner l1norm --training-steps 3 --config "$work/l1.json" "${bad[@]}"
expect_fail "a schedule too short" "needs 4 optimizer steps" \
  "$bin" prune --pruner agp --interval-steps 2 --total-times 2 --steps 3 \
  --config "$work/l1.json" "${bad[@]}"
expect_fail "no --out" "--out" \
  "$bin" prune --model fmnist_cnn --pruner l1norm --config "$work/l1.json"

# Masks that do not fit a model are refused, naming the entry.
expect_fail "masks on another architecture" '"conv1" is not a module' \
  "$bin" info fmnist_mlp --masks "$work/l1norm.safetensors"
expect_fail "a mask of the wrong shape" "fc1\.weight has shape \[256, 3136\]" \
  "$bin" info fmnist_mlp --masks "$work/level.safetensors"
expect_fail "a missing masks file" "nowhere\.safetensors" \
  "$bin" info fmnist_cnn --masks "$work/nowhere.safetensors"

# Fine-tuning with the masks held, the pruned model saved and evaluated on its own.
expect_ok "prune and fine-tune" "$bin" prune --model fmnist_cnn --pruner l1norm \
  --config "$work/l1.json" --finetune-epochs 1 --out "$work/ft.safetensors" \
  --save-model "$work/ft_model.safetensors" --subset 256 --test-subset 200 --batch-size 64 \
  --threads 2 --log "$work/ft.jsonl"
cp "$work/out" "$work/ft.out"
expect_grep "fine-tuned accuracy printed" "test accuracy after fine-tuning: [0-9.]+%" "$work/ft.out"
expect_grep "fine-tuning steps logged" '"phase": *"finetune"' "$work/ft.jsonl"
[ -s "$work/ft_model.safetensors" ] && pass || fail "pruned model written"
acc=$(grep -oE 'after fine-tuning: [0-9.]+%' "$work/ft.out" | grep -oE '[0-9.]+')
expect_ok "eval the pruned model" "$bin" eval "$work/ft_model.safetensors" --test-subset 200
expect_grep "eval agrees with the fine-tuned masked model" "test accuracy $acc%" "$work/out"
expect_ok "speedup accepts the masks" "$bin" speedup "$work/ft_model.safetensors" \
  "$work/ft.safetensors"
expect_grep "speedup removes conv1's pruned channels" "conv1 .*32 -> 16" "$work/out"
ls "$work" | grep -q '\.tmp\.' && fail "a temporary file was left behind" || pass

# Ctrl-C during fine-tuning: stops at a step boundary, exits 130, writes nothing.
"$bin" prune --model fmnist_cnn --pruner l1norm --config "$work/l1.json" --finetune-epochs 3 \
  --subset 20000 --test-subset 100 --threads 2 --out "$work/int.safetensors" \
  --save-model "$work/int_model.safetensors" --log "$work/int.jsonl" \
  >"$work/int.out" 2>"$work/int.err" &
pid=$!
if wait_for_grep '"event": *"step"' "$work/int.jsonl" 300 $pid; then
  kill -INT $pid
  wait $pid; rc=$?
  [ $rc -eq 130 ] && pass || fail "interrupted prune exits 130 (got $rc)"
  expect_grep "interrupt is reported" "interrupted; nothing was written" "$work/int.err"
  [ ! -e "$work/int.safetensors" ] && pass || fail "no masks after Ctrl-C"
  [ ! -e "$work/int_model.safetensors" ] && pass || fail "no model after Ctrl-C"
  ls "$work" | grep -q '\.tmp\.' && fail "temporary left after Ctrl-C" || pass
else
  fail "fine-tuning never reached a first step"; kill $pid 2>/dev/null; wait $pid
fi

finish
