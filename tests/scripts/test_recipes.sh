#!/usr/bin/env bash
# Lua recipes through the real binary: every recipe in recipes/ runs as written with
# `shrinkwrap run --fast` and prints and writes what it promises (the compression recipes'
# masks, calibration and models are read back by the CLI); a config list mistake names the
# entry and the recipe line; sw.args reach the recipe;
# a Lua error shows file:line and a traceback and exits non-zero; --safe blocks process
# spawning and writes outside the working directory; Ctrl-C stops a busy Lua loop and a
# training run with exit 130 and no output file.
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1") # absolute: recipes run in their own dirs
root=$2
source "$(dirname "$0")/lib.sh"

# run_in DIR OUT ERR ARGS...: runs the binary in DIR (created), stdout/stderr to OUT/ERR;
# returns its exit code.
run_in() {
  local dir=$1 out=$2 err=$3
  shift 3
  mkdir -p "$dir"
  (cd "$dir" && "$bin" "$@" >"$out" 2>"$err")
}

expect_ok "run --help" "$bin" run --help
expect_grep "run --help documents --safe" "--safe" "$work/out"
expect_fail "run without a recipe" "expects a RECIPE" "$bin" run
expect_fail "a missing recipe" "cannot open .*no_such_recipe.lua" \
  "$bin" run "$work/no_such_recipe.lua"

# ---- every recipe, in fast mode ----------------------------------------------------------------
n_recipes=0
for recipe in "$root"/recipes/*.lua; do
  name=$(basename "$recipe" .lua)
  n_recipes=$((n_recipes + 1))
  dir="$work/r_$name"
  if run_in "$dir" "$work/$name.out" "$work/$name.err" run "$recipe" --fast --threads 2; then
    pass
  else
    fail "recipe $name --fast exits 0"
    sed 's/^/  | /' "$work/$name.err" | tail -20 >&2
    continue
  fi
  [ -s "$work/$name.out" ] && pass || fail "recipe $name prints something"
  head -n 20 "$recipe" | grep -qE '^-- .*(Shows|shows):' && pass ||
    fail "recipe $name has a header comment saying what it shows"
  grep -q 'sw.args.fast' "$recipe" && pass || fail "recipe $name honours --fast"
  ls "$dir" | grep -q '\.tmp\.' && fail "recipe $name left a temporary file" || pass
done
[ "$n_recipes" -ge 10 ] && pass || fail "recipes/ holds at least ten recipes (found $n_recipes)"
for name in custom_model train_and_compare inspect_model sensitivity agp_schedule movement \
  prune_then_distill prune_with_distill fuse_chain qat_prune_distill; do
  [ -f "$root/recipes/$name.lua" ] && pass || fail "recipes/$name.lua exists"
done

# What each recipe promises.
out="$work/custom_model.out"
expect_grep "custom_model prints the generated names" "^block1\.conv1 +Conv2d" "$out"
expect_grep "custom_model prints nested branch names" "^mixed\.branch3x3\.2 +Conv2d" "$out"
expect_grep "custom_model reports accuracy" \
  "test accuracy: [0-9.]+% before training, [0-9.]+% after 8 steps" "$out"
expect_grep "custom_model's reload agrees" "outputs differ by 0$" "$out"
expect_grep "custom_model shows training progress on stderr" "train: 8 steps" \
  "$work/custom_model.err"
saved="$work/r_custom_model/custom_model.safetensors"
[ -s "$saved" ] && pass || fail "custom_model writes custom_model.safetensors"
expect_ok "the saved custom model is a model file" "$bin" info "$saved"
expect_grep "info shows the residual add" "add +Add" "$work/out"
expect_grep "info shows the concat" "cat +Concat" "$work/out"

out="$work/train_and_compare.out"
for row in "fmnist_mlp \(zoo\)" "fmnist_cnn \(zoo\)" "small cnn \(sw\.nn\)" \
  "fmnist_cnn, smoothing 0\.1"; do
  expect_grep "train_and_compare has a row for $row" "^$row +[0-9]+ +[0-9.]+[kM]? +[0-9.]+%" "$out"
done
expect_grep "train_and_compare compares predictions" "predict the same class for [0-9.]+%" "$out"

out="$work/inspect_model.out"
expect_grep "inspect_model lists weights" "^conv2\.weight +\[64, 32, 3, 3\]" "$out"
expect_grep "inspect_model prunes by hand" "mask keeps 9216 of 18432 weights" "$out"
expect_grep "inspect_model names weak channels" "weakest output channels of conv2" "$out"

# The compression recipes. Their numbers depend on whether pretrained weights exist, so the
# checks are about what is printed and written, not about accuracy.
out="$work/sensitivity.out"
for layer in "conv1 +Conv2d +320" "conv2 +Conv2d +18\.5k" "fc1 +Linear +803k"; do
  expect_grep "sensitivity has a row for $layer" "^$layer +[0-9.]+% +[0-9.]+%$" "$out"
done
expect_grep "sensitivity names the ratios" "^layer +type +params +50% +90%$" "$out"
expect_grep "sensitivity gives its verdict" \
  "^at 90%: most tolerant [a-z0-9]+ \([0-9.]+%\), most sensitive [a-z0-9]+" "$out"

out="$work/agp_schedule.out"
for k in 1 2 3; do
  expect_grep "agp_schedule reports interval $k" \
    "^ +$k +$((2 * k)) +[0-9.]+% +[0-9.]+% +[0-9.]+$" "$out"
done
expect_grep "agp_schedule follows the cubic curve" "^ +1 +2 +56\.3% +5[0-9]\.[0-9]%" "$out"
expect_grep "agp_schedule reaches the goal" "^ +3 +6 +80\.0% +(79\.[5-9]|80\.0)%" "$out"
expect_grep "agp_schedule prints the masks" "^fc1 +weight +\[256, 3136\]" "$out"
expect_grep "agp_schedule reports accuracy" \
  "test accuracy [0-9.]+% before, [0-9.]+% after pruning to 80% with AGP \(6 steps\)" "$out"
dir="$work/r_agp_schedule"
[ -s "$dir/agp_masks.safetensors" ] && [ -s "$dir/agp_pruned.safetensors" ] && pass ||
  fail "agp_schedule writes its masks and its pruned model"
# The files are the CLI's formats: speedup reads the masks written from Lua.
expect_ok "speedup accepts the masks written by a recipe" \
  "$bin" speedup "$dir/agp_pruned.safetensors" "$dir/agp_masks.safetensors" --threads 2
expect_grep "speedup of the recipe's model shrinks conv2" "^conv2 .*64 -> 1[0-9]" "$work/out"

out="$work/movement.out"
expect_grep "movement follows the sparsity" "^ +4 +69\.[0-9]% +[0-9.]+$" "$out"
expect_grep "movement shows fc1's scores" "^fc1: [0-9]+ scores, from .* blocks kept$" "$out"
expect_grep "movement compares with magnitude" \
  "^conv2: movement and magnitude agree on [0-9.]+% of the weights they keep$" "$out"
[ -s "$work/r_movement/movement_masks.safetensors" ] && pass ||
  fail "movement writes movement_masks.safetensors"

out="$work/prune_then_distill.out"
expect_grep "prune_then_distill reports the dense model" \
  "^dense \(the teacher\) +825k +9\.48M +[0-9.]+%$" "$out"
expect_grep "prune_then_distill reports the sped-up model" \
  "^sped up +207k +2\.53M +[0-9.]+%$" "$out"
expect_grep "prune_then_distill reports the distilled model" \
  "^sped up \+ distilled, 4 steps +207k +2\.53M +[0-9.]+%$" "$out"
expect_grep "prune_then_distill's speedup passes its self-check" \
  "self-check max \|diff\| .*: ok" "$out"
expect_grep "prune_then_distill halves fc1" "^  fc1 +256 -> 128 channels$" "$out"
expect_ok "prune_then_distill's model is a model file" \
  "$bin" info "$work/r_prune_then_distill/prune_then_distill.safetensors"

out="$work/prune_with_distill.out"
expect_grep "prune_with_distill fuses the distiller on the pruner" \
  "^chain, newest first: DynamicLayerwiseDistiller <- L1NormPruner; teacher_predict ran 4 times" \
  "$out"
expect_grep "prune_with_distill reports the sped-up model" \
  "^sped up +207k +2\.53M +[0-9.]+%$" "$out"
expect_grep "prune_with_distill reports both loss terms" \
  "last step's loss terms: task [0-9.]+ \(x 0\.5\), distill [0-9.]+" "$out"
[ -s "$work/r_prune_with_distill/prune_with_distill.safetensors" ] && pass ||
  fail "prune_with_distill writes its model"

out="$work/fuse_chain.out"
expect_grep "fuse_chain builds six compressors" "chain of 6, newest first: \
Adaptive1dLayerwiseDistiller <- DynamicLayerwiseDistiller <- L2NormPruner <- AGPPruner <- \
TaylorPruner <- L1NormPruner$" "$out"
expect_grep "fuse_chain gets every pruner's masks" "^total +410944/821888 +50\.0%$" "$out"
expect_grep "fuse_chain reports both distillers" \
  "distillation after 3 steps: logits \(KL\) [0-9.]+, fc1 features \(MSE\) [0-9.]+" "$out"
expect_grep "fuse_chain speeds up" "^sped up +207k +2\.53M +[0-9.]+%$" "$out"
dir="$work/r_fuse_chain"
[ -s "$dir/fuse_chain_masks.safetensors" ] && [ -s "$dir/fuse_chain.safetensors" ] && pass ||
  fail "fuse_chain writes its masks and its model"

out="$work/qat_prune_distill.out"
expect_grep "qat_prune_distill shows a calibration" \
  "^calibration of conv1\.weight: int8 affine, scale [0-9.e-]+, zero point -?[0-9]+" "$out"
expect_grep "qat_prune_distill re-simulates int8 on the small model" \
  "^sped up, int8 simulated +207k +2\.53M +[0-9.]+%$" "$out"
expect_grep "qat_prune_distill lists its files" \
  "wrote qpd_masks\.safetensors \(6 masks\), qpd_calibration\.json \(8 targets\)" "$out"
dir="$work/r_qat_prune_distill"
expect_grep "the calibration file is NNI's calibration JSON" '"quant_dtype":[[:space:]]*"int8"' \
  "$dir/qpd_calibration.json"
python3 -c "import json, sys; assert json.load(open(sys.argv[1]))['conv1']['weight']['scale']" \
  "$dir/qpd_calibration.json" 2>/dev/null && pass || fail "qpd_calibration.json parses as JSON"
expect_ok "qat_prune_distill's sped-up model is a model file" \
  "$bin" info "$dir/qpd_model.safetensors"
[ -s "$dir/qpd_masks.safetensors" ] && pass || fail "qat_prune_distill writes its masks"

# A config list mistake in a recipe: the C side's message, Lua's entry number, the line.
printf '%s\n' 'local sw = require "shrinkwrap"' \
  'local pruner = sw.L1NormPruner(sw.models.fmnist_cnn{}, {' \
  '  { op_names = { "conv1" }, sparse_ratio = 0.5 },' \
  '  { op_names = { "conv2" }, sparse_ratio = 1.5 },' \
  '})' >"$work/bad_config.lua"
expect_fail "a bad config list fails the recipe with the entry and the line" \
  "bad_config\.lua:2: L1NormPruner: config_list\[2\]\.sparse_ratio: 1\.5 is not in \[0, 1\)" \
  "$bin" run "$work/bad_config.lua"

# ---- arguments --------------------------------------------------------------------------------
cat >"$work/args.lua" <<'EOF'
local sw = require "shrinkwrap"
local a = sw.args
print(("steps=%s %s fast=%s lr=%s name=%s first=%s max_steps=%s augment=%s"):format(
  a.steps, math.type(a.steps), a.fast, a.lr, a.name, a[1], a.max_steps, a.augment))
EOF
expect_ok "args recipe" "$bin" run "$work/args.lua" --steps 20 --fast --lr=0.5 --name cnn word \
  --max-steps 3 --no-augment
expect_grep "sw.args converts and names" \
  "steps=20 integer fast=true lr=0.5 name=cnn first=word max_steps=3 augment=false" "$work/out"

# ---- errors -----------------------------------------------------------------------------------
cat >"$work/error.lua" <<'EOF'
local function helper(what)
  error("recipe failed on purpose: " .. what)
end
helper("demo")
EOF
expect_fail "a Lua error exits non-zero with file:line" \
  "error\.lua:2: recipe failed on purpose: demo" "$bin" run "$work/error.lua"
expect_grep "the error has a traceback" "stack traceback:" "$work/err"
expect_grep "the traceback names the calling line" "error\.lua:4: in main chunk" "$work/err"
[ "$(grep -c . "$work/out")" -eq 0 ] && pass || fail "nothing on stdout for a failed recipe"

cat >"$work/c_error.lua" <<'EOF'
local sw = require "shrinkwrap"
local wrong = sw.zeros{2, 3} + sw.zeros{3, 2}
EOF
expect_fail "a C-side error reaches the recipe with its message" \
  "c_error\.lua:2: tensor \+ tensor: shapes \[2, 3\] and \[3, 2\] differ" \
  "$bin" run "$work/c_error.lua"

printf 'local x = = 1\n' >"$work/syntax.lua"
expect_fail "a syntax error names file and line" "syntax\.lua:1:" "$bin" run "$work/syntax.lua"

# ---- safe mode ---------------------------------------------------------------------------------
cat >"$work/spawn.lua" <<'EOF'
os.execute("touch pwned")
EOF
run_in "$work/safe" "$work/safe.out" "$work/safe.err" run --safe "$work/spawn.lua"
[ $? -eq 1 ] && pass || fail "--safe: os.execute fails the recipe"
expect_grep "--safe: os.execute is gone" "attempt to call a nil value \(field 'execute'\)" \
  "$work/safe.err"
[ ! -e "$work/safe/pwned" ] && pass || fail "--safe: no process was spawned"
run_in "$work/safe" "$work/safe.out" "$work/safe.err" run "$work/spawn.lua" --safe
[ $? -eq 1 ] && [ ! -e "$work/safe/pwned" ] && pass || fail "--safe after the recipe applies too"

cat >"$work/write.lua" <<'EOF'
local f = assert(io.open("inside.txt", "w")); f:write("ok"); f:close()
print("inside ok")
io.open("/tmp/shrinkwrap-safe-test-outside.txt", "w")
EOF
run_in "$work/safe" "$work/safe.out" "$work/safe.err" run --safe "$work/write.lua"
[ $? -eq 1 ] && pass || fail "--safe: writing outside the working directory fails"
expect_grep "--safe: writes inside are allowed" "inside ok" "$work/safe.out"
expect_grep "--safe: the refusal says why" "safe mode writes only inside the working directory" \
  "$work/safe.err"
[ ! -e /tmp/shrinkwrap-safe-test-outside.txt ] && pass || fail "--safe: nothing written outside"

cat >"$work/popen.lua" <<'EOF'
local p = io.popen("echo hi")
EOF
expect_fail "--safe: io.popen is gone" "field 'popen'" "$bin" run --safe "$work/popen.lua"

# ---- Ctrl-C -----------------------------------------------------------------------------------
cat >"$work/busy.lua" <<'EOF'
io.stdout:write("ready\n"); io.stdout:flush()
local n = 0
while true do n = (n + 1) % 7 end
EOF
"$bin" run "$work/busy.lua" >"$work/busy.out" 2>"$work/busy.err" &
pid=$!
if wait_for_grep "ready" "$work/busy.out" 60 $pid; then
  kill -INT $pid
  wait $pid
  rc=$?
  [ $rc -eq 130 ] && pass || fail "Ctrl-C stops a busy Lua loop with 130 (got $rc)"
  expect_grep "the interrupt is reported" "interrupted" "$work/busy.err"
else
  fail "the busy recipe never started"
  kill $pid 2>/dev/null
  wait $pid
fi

cat >"$work/long_train.lua" <<'EOF'
local sw = require "shrinkwrap"
local train = assert(sw.data.fashion_mnist{split = "train", subset = 20000})
local model = sw.models.fmnist_mlp{seed = 1}
sw.Evaluator{train = train, batch_size = 32}:train(model, 5000)
assert(model:save("never.safetensors"))
EOF
mkdir -p "$work/int"
(cd "$work/int" && exec "$bin" run "$work/long_train.lua" --threads 2 --log "$work/int/log.jsonl" \
  >"$work/int.out" 2>"$work/int.err") &
pid=$!
if wait_for_grep '"event": *"step"' "$work/int/log.jsonl" 120 $pid; then
  kill -INT $pid
  wait $pid
  rc=$?
  [ $rc -eq 130 ] && pass || fail "Ctrl-C during training exits 130 (got $rc)"
  expect_grep "the training interrupt is reported" "interrupted" "$work/int.err"
  [ ! -e "$work/int/never.safetensors" ] && pass || fail "no model saved after Ctrl-C"
  expect_grep "the log ends the run as stopped" '"message": *"stopped"' "$work/int/log.jsonl"
else
  fail "training in a recipe never reached a first step"
  kill $pid 2>/dev/null
  wait $pid
fi

finish
