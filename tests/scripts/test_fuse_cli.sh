#!/usr/bin/env bash
# `shrinkwrap fuse` end to end on a subset: a dense model, then (b) pruning with a fused
# distiller and (a) pruning with fine-tuning, both exporting masks that speedup accepts;
# clear errors for bad options and configs.
bin=$1
source "$(dirname "$0")/lib.sh"

expect_ok "fuse --help" "$bin" fuse --help
expect_grep "fuse --help mentions usage" "usage: shrinkwrap fuse" "$work/out"
expect_ok "top-level help lists fuse" "$bin" --help
expect_grep "fuse is a command" "^  fuse " "$work/out"

# A dense teacher: the MLP trained briefly on a subset.
expect_ok "train the dense model" "$bin" train --model fmnist_mlp --subset 1024 --test-subset 300 \
  --epochs 1 --batch-size 64 --threads 2 --out "$work/dense.safetensors"

cat >"$work/prune.json" <<'JSON'
[{"op_names": ["fc1", "fc2"], "sparse_ratio": 0.5}]
JSON
cat >"$work/distill.json" <<'JSON'
[{"op_names": ["fc3"], "apply_method": "kl", "lambda": 1.0},
 {"op_names": ["fc2"], "lambda": 0.1}]
JSON

# (b) prune + fused distillation, teacher = the dense model (default), masks and model out.
expect_ok "fuse with a distiller" "$bin" fuse --model "$work/dense.safetensors" \
  --prune-config "$work/prune.json" --distill-config "$work/distill.json" \
  --origin-loss-lambda 0.5 --subset 512 --test-subset 300 --steps 12 --batch-size 32 \
  --threads 2 --out "$work/masks_b.safetensors" --save-model "$work/pruned_b.safetensors" \
  --log "$work/b.jsonl"
expect_grep "fuse prints test accuracy" "test accuracy: [0-9.]+%" "$work/out"
expect_grep "fuse reports the pruned share" "pruned: 50.0% of the masked weights; fused training" \
  "$work/out"
expect_grep "fuse names the masks file" "masks: .*masks_b.safetensors \(4 tensors\)" "$work/out"
expect_grep "fuse names the fusion" "DynamicLayerwiseDistiller fused on L1NormPruner" "$work/err"
expect_grep "the log has distillation terms" '"distill":' "$work/b.jsonl"
expect_grep "the task term is reported" '"task":' "$work/b.jsonl"
[ -s "$work/masks_b.safetensors" ] && pass || fail "masks file written"
[ -s "$work/pruned_b.safetensors" ] && pass || fail "pruned model written"
n_steps=$(grep -c '"event":"step"' "$work/b.jsonl")
[ "$n_steps" -eq 12 ] && pass || fail "12 fused steps logged (got $n_steps)"

# The masks fit the model: speedup removes the pruned units and its self-check agrees.
expect_ok "speedup with the fused masks" "$bin" speedup "$work/dense.safetensors" \
  "$work/masks_b.safetensors" --out "$work/small_b.safetensors"
expect_grep "speedup shrinks fc1" "fc1 .*256 -> 128" "$work/out"
expect_ok "the pruned model evaluates" "$bin" eval "$work/pruned_b.safetensors" --test-subset 300

# --speedup-first trains the sped-up model: the same masks, the same accuracy and losses (the
# small model computes what the masked one does), a smaller saved model.
kl='[{"op_names": ["fc3"], "apply_method": "kl"}]'
for mode in full small; do
  extra=(); [ $mode = small ] && extra=(--speedup-first)
  expect_ok "fuse ($mode width)" "$bin" fuse --model "$work/dense.safetensors" \
    --prune-config "$work/prune.json" --distill-config "$kl" --subset 512 --test-subset 300 \
    --steps 12 --batch-size 32 --threads 2 --seed 3 --out "$work/masks_$mode.safetensors" \
    --save-model "$work/model_$mode.safetensors" "${extra[@]}"
  grep -E '^(test accuracy|last step)' "$work/out" >"$work/result_$mode"
done
expect_grep "speedup-first says so" "training the sped-up model" "$work/err"
expect_grep "speedup-first reports the small size" "sped up: [0-9.]+k parameters" "$work/err"
if cmp -s "$work/result_full" "$work/result_small" && [ -s "$work/result_full" ]; then pass
else fail "speedup-first: same accuracy and losses"; diff "$work/result_full" "$work/result_small" >&2; fi
cmp -s "$work/masks_full.safetensors" "$work/masks_small.safetensors" && pass ||
  fail "speedup-first: the same masks"
expect_ok "info on the speedup-first model" "$bin" info "$work/model_small.safetensors"
expect_grep "the saved model is the small one" "fc1 +Linear +\[128\]" "$work/out"
expect_fail "speedup-first with a link whose width changes" "fc2" "$bin" fuse \
  --model "$work/dense.safetensors" --prune-config "$work/prune.json" \
  --distill-config "$work/distill.json" --subset 256 --test-subset 100 --steps 2 \
  --threads 2 --speedup-first --out "$work/never.safetensors"
[ -e "$work/never.safetensors" ] && fail "a refused run wrote masks" || pass

# Adaptive1d with an explicit teacher file.
expect_ok "fuse with adaptive1d" "$bin" fuse --model "$work/dense.safetensors" \
  --teacher "$work/dense.safetensors" --distiller adaptive1d \
  --prune-config '[{"op_names": ["fc2"], "sparse_ratio": 0.7}]' \
  --distill-config '[{"op_names": ["fc3"], "apply_method": "kl"}]' \
  --subset 256 --test-subset 200 --steps 4 --batch-size 64 --threads 2 --quiet \
  --out "$work/masks_c.safetensors"
expect_grep "adaptive1d named" "Adaptive1dLayerwiseDistiller" "$work/err"

# (a) prune then fine-tune with the masks held: same budget, no distiller.
expect_ok "prune and fine-tune" "$bin" fuse --model "$work/dense.safetensors" \
  --prune-config "$work/prune.json" --subset 512 --test-subset 300 --steps 12 --batch-size 32 \
  --threads 2 --out "$work/masks_a.safetensors"
expect_grep "pipeline (a) fine-tunes" "fine-tuning in" "$work/out"
expect_grep "pipeline (a) names itself" "fine-tune with masks held after L1NormPruner" "$work/err"
ls "$work" | grep -q '\.tmp\.' && fail "a temporary file was left behind" || pass

# Errors: usage and configuration, never a crash.
expect_fail "no --out" "--out" "$bin" fuse --model fmnist_mlp --prune-config "$work/prune.json"
expect_fail "unknown pruner" "--pruner" "$bin" fuse --model fmnist_mlp --pruner magic \
  --prune-config "$work/prune.json" --out "$work/x.safetensors"
expect_fail "unknown distiller" "--distiller" "$bin" fuse --model fmnist_mlp --distiller magic \
  --prune-config "$work/prune.json" --distill-config "$work/distill.json" --out "$work/x.safetensors"
expect_fail "teacher without distillation" "--teacher needs --distill-config" "$bin" fuse \
  --model fmnist_mlp --teacher fmnist_mlp --prune-config "$work/prune.json" --out "$work/x.safetensors"
expect_fail "distillation without training" "--epochs or --steps" "$bin" fuse --model fmnist_mlp \
  --prune-config "$work/prune.json" --distill-config "$work/distill.json" --epochs 0 \
  --out "$work/x.safetensors"
expect_fail "bad JSON" "not valid JSON" "$bin" fuse --model fmnist_mlp \
  --prune-config '[{"op_names": ["fc1"], ' --out "$work/x.safetensors"
expect_fail "missing config file" "cannot open" "$bin" fuse --model fmnist_mlp \
  --prune-config "$work/nowhere.json" --out "$work/x.safetensors"
expect_fail "unknown teacher module" 'links to "nowhere", which is not a module of the teacher' "$bin" fuse \
  --model fmnist_mlp --prune-config "$work/prune.json" \
  --distill-config '[{"op_names": ["fc3"], "link": "nowhere"}]' --steps 1 --subset 64 \
  --test-subset 64 --out "$work/x.safetensors"
expect_fail "distillation key in a pruning config" 'unknown key "lambda"' "$bin" fuse \
  --model fmnist_mlp --prune-config '[{"op_names": ["fc1"], "lambda": 1}]' \
  --out "$work/x.safetensors"
[ ! -e "$work/x.safetensors" ] && pass || fail "no masks after a failure"

finish
