#!/usr/bin/env bash
# `shrinkwrap speedup` end to end: masks files written independently (python3 stdlib, as any
# safetensors tool would), the before/after report, the self-check, and the sped-up file used
# by info, eval, bench and train like any model file; plus clear errors for bad masks.
bin=$1
source "$(dirname "$0")/lib.sh"

if ! command -v python3 >/dev/null; then
  fail "python3 (standard library only) is needed to write the masks files"
  finish
  exit 1
fi

# mkmasks.py OUT SPEC...: SPEC is name:rows:per_row:shape(x-separated):pruned[:target]
# Writes U8 out_channel masks: `pruned` rows (chosen by a fixed seed) are zero, and for a
# weight target a matching bias mask (1 iff the row survives) unless the shape says nobias.
cat >"$work/mkmasks.py" <<'EOF'
import json, random, struct, sys
out, specs = sys.argv[1], sys.argv[2:]
tensors = {}
for i, spec in enumerate(specs):
    name, rows, per, shape, pruned, *rest = spec.split(":")
    rows, per, pruned = int(rows), int(per), int(pruned)
    shape = [int(d) for d in shape.split("x")]
    target = rest[0] if rest else "weight"
    dead = set(random.Random(i + 1).sample(range(rows), pruned))
    mask = bytes(0 if r in dead else 1 for r in range(rows) for _ in range(per))
    tensors[name + "." + target] = (shape, mask)
    if target == "weight" and not (len(rest) > 1 and rest[1] == "nobias"):
        tensors[name + ".bias"] = ([rows], bytes(0 if r in dead else 1 for r in range(rows)))
header, blobs, off = {}, [], 0
for name, (shape, data) in tensors.items():
    header[name] = {"dtype": "U8", "shape": shape, "data_offsets": [off, off + len(data)]}
    blobs.append(data)
    off += len(data)
h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
EOF
masks() { python3 "$work/mkmasks.py" "$@" || fail "writing masks $1"; }

expect_ok "speedup --help" "$bin" speedup --help
expect_grep "speedup --help mentions usage" "usage: shrinkwrap speedup" "$work/out"
expect_ok "top-level help lists speedup" "$bin" --help
expect_grep "speedup in the command list" "^  speedup " "$work/out"

# A briefly trained CNN, so that evaluation means something.
expect_ok "train a small model" "$bin" train --model fmnist_cnn --subset 512 --test-subset 300 \
  --epochs 1 --batch-size 64 --threads 2 --out "$work/cnn.safetensors"

# Masks that prune nothing: the sped-up model is the same model, with the same accuracy.
masks "$work/none.safetensors" "conv1:32:9:32x1x3x3:0"
expect_ok "speedup with masks that prune nothing" "$bin" speedup "$work/cnn.safetensors" \
  "$work/none.safetensors" --out "$work/same.safetensors" --threads 2
expect_grep "nothing shrinks" "parameters 824650 -> 824650" "$work/out"
expect_ok "eval the original" "$bin" eval "$work/cnn.safetensors" --test-subset 300 --threads 2
acc=$(grep -oE 'test accuracy [0-9.]+%' "$work/out")
[ -n "$acc" ] && pass || fail "eval printed no accuracy"
expect_ok "eval the unpruned speedup" "$bin" eval "$work/same.safetensors" --test-subset 300 \
  --threads 2
expect_grep "same accuracy as the original ($acc)" "$acc" "$work/out"

# Half the channels of conv1, conv2 and fc1.
masks "$work/half.safetensors" "conv1:32:9:32x1x3x3:16" "conv2:64:288:64x32x3x3:32" \
  "fc1:256:3136:256x3136:128"
expect_ok "speedup at 50%" "$bin" speedup "$work/cnn.safetensors" "$work/half.safetensors" \
  --out "$work/small.safetensors" --threads 2
conv1_row='^conv1 +Conv2d +\[32,28,28\] -> \[16,28,28\] +\[32,1,3,3\] -> \[16,1,3,3\]'
expect_grep "conv1 before and after" "$conv1_row" "$work/out"
expect_grep "conv2 loses inputs and outputs" "^conv2 .*\[64,32,3,3\] -> \[32,16,3,3\]" "$work/out"
expect_grep "flatten shrinks by whole channels" "^flatten .*\[3136\] -> \[1568\]" "$work/out"
expect_grep "fc1 shrinks both ways" "^fc1 .*\[256,3136\] -> \[128,1568\]" "$work/out"
expect_grep "total parameters" "parameters 824650 -> 207018" "$work/out"
expect_grep "FLOPs are reported" "FLOPs +[0-9.]+M -> [0-9.]+M per image" "$work/out"
expect_grep "the self-check passes" "self-check on 8 probe samples: .*: ok" "$work/out"
[ -s "$work/small.safetensors" ] && pass || fail "sped-up model written"

# The sped-up file is a normal model file.
expect_ok "info on the sped-up model" "$bin" info "$work/small.safetensors"
expect_grep "info shows conv2's new shape" "conv2 +Conv2d +\[32, 14, 14\]" "$work/out"
expect_grep "info shows the new total" "207018 parameters" "$work/out"
expect_ok "info compares dense and sped-up" "$bin" info "$work/cnn.safetensors" \
  --compare "$work/small.safetensors"
expect_grep "compare: conv2 side by side" \
  "^conv2 +Conv2d +\[64, 14, 14\] -> \[32, 14, 14\] +18.5k -> 4.64k" "$work/out"
expect_grep "compare: flatten shape" "^flatten .*\[3136\] -> \[1568\]" "$work/out"
expect_grep "compare: totals" "parameters 824650 -> 207018 \(25.1%, 3.98x fewer\)" "$work/out"
expect_fail "compare with masks is refused" "do not go together" "$bin" info \
  "$work/cnn.safetensors" --masks "$work/half.safetensors" --compare "$work/small.safetensors"
expect_fail "compare with a missing model" "nothere" "$bin" info "$work/cnn.safetensors" \
  --compare "$work/nothere.safetensors"
expect_ok "eval the sped-up model" "$bin" eval "$work/small.safetensors" --test-subset 300 \
  --threads 2
expect_grep "eval prints an accuracy" "test accuracy [0-9.]+%" "$work/out"
expect_ok "bench the sped-up model" "$bin" bench "$work/small.safetensors" --steps 2 --warmup 1 \
  --repeats 2 --json
expect_ok "fine-tune the sped-up model" "$bin" train --model "$work/small.safetensors" \
  --subset 256 --test-subset 100 --epochs 1 --threads 2 --out "$work/tuned.safetensors"
expect_ok "info on the fine-tuned model" "$bin" info "$work/tuned.safetensors"
expect_grep "fine-tuning keeps the small shape" "207018 parameters" "$work/out"

# A residual branch pruned away: its nodes go, its Add becomes an Identity.
masks "$work/branch.safetensors" "layer1.1.conv2:32:288:32x32x3x3:32:weight:nobias"
expect_ok "speedup of a pruned-away branch" "$bin" speedup fmnist_resnet \
  "$work/branch.safetensors" \
  --probe-batch 4 --threads 2
expect_grep "the branch is removed" "^layer1.1.conv1 .* removed" "$work/out"
expect_grep "the add becomes an identity" "^layer1.1.add +Add->Identity" "$work/out"
expect_grep "removed nodes counted" "5 node\(s\) removed" "$work/out"

# Dependency groups: disagreeing members are unioned, or refused with --forbid-union.
masks "$work/groups.safetensors" "conv1:32:9:32x1x3x3:16:weight:nobias" \
  "layer1.0.conv2:32:288:32x32x3x3:16:weight:nobias"
expect_ok "speedup with disagreeing group members" "$bin" speedup fmnist_resnet \
  "$work/groups.safetensors" --probe-batch 4 --threads 2
expect_grep "dependency group listed" "group 0: conv1 layer1.0.conv2 layer1.1.conv2" "$work/out"
expect_grep "kept channels reported" "kept as zeros" "$work/out"
expect_fail "--forbid-union refuses" "dependency group conflict" "$bin" speedup fmnist_resnet \
  "$work/groups.safetensors" --forbid-union --threads 2

# Bad input: clear errors, never a crash, no file written.
expect_fail "masks of another model" "conv1" "$bin" speedup fmnist_mlp "$work/half.safetensors" \
  --out "$work/bad.safetensors"
[ ! -e "$work/bad.safetensors" ] && pass || fail "no output after an error"
expect_fail "missing masks file" "nowhere.safetensors" "$bin" speedup fmnist_cnn \
  "$work/nowhere.safetensors"
masks "$work/partial.safetensors" "bn1:32:784:32x28x28:0:_output_0"
python3 - "$work/partial.safetensors" <<'EOF'
import json, struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
n = struct.unpack("<Q", b[:8])[0]
b[8 + n + 5] = 0  # one pixel of channel 0
open(p, "wb").write(bytes(b))
EOF
expect_fail "a mask that zeroes part of a channel" "whole channels" "$bin" speedup fmnist_cnn \
  "$work/partial.safetensors"
printf 'junk' >"$work/junk.safetensors"
expect_fail "corrupt masks file" "junk.safetensors" "$bin" speedup fmnist_cnn \
  "$work/junk.safetensors"
expect_fail "missing arguments" "MASKS" "$bin" speedup fmnist_cnn
expect_fail "bad tolerance" "--tolerance" "$bin" speedup fmnist_cnn "$work/half.safetensors" \
  --tolerance lots
ls "$work" | grep -q '\.tmp\.' && fail "a temporary file was left behind" || pass

finish
