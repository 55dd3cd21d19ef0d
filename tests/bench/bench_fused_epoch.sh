#!/usr/bin/env bash
# What fusing a distiller costs: the wall time of one fused epoch (L1Norm pruner + Dynamic
# layer-wise distiller, teacher = the dense model: `shrinkwrap fuse --distill-config`) against one
# fine-tune epoch of the same full-width masked model (`shrinkwrap fuse` without a distiller),
# against the same fused epoch on the sped-up student (`--speedup-first`: the pruned channels are
# removed once the one-shot masks are fixed), and against one epoch of plain training of the
# dense model (`shrinkwrap train`). Runs alternate
# (ROUNDS times each) so drifting machine load hits all three alike; time = the first to the
# last step event of each run's JSON-lines log (start-up and evaluation left out).
#
# Usage: tests/bench/bench_fused_epoch.sh [THREADS] [ROUNDS] [MODEL_FILE] [SPARSE_RATIO]
#   defaults: 2 threads, 2 rounds, assets/models/fmnist_cnn.safetensors, 0.7
#   SW_BIN=/path/to/shrinkwrap skips the bootstrap and release build (use a release build);
#   SUBSET=N trains on N images instead of the whole training set.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
threads=${1:-2}
rounds=${2:-2}
model=${3:-$root/assets/models/fmnist_cnn.safetensors}
ratio=${4:-0.7}
if [ -n "${SW_BIN:-}" ]; then
  bin=$SW_BIN
else
  "$root/scripts/bootstrap"
  bin="$("$root/scripts/build" release)/shrinkwrap"
fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
work=$(mktemp -d "${TMPDIR:-/tmp}/swfused.XXXXXX")
trap 'rm -rf "$work"' EXIT
prune="[{\"op_names\": [\"conv1\", \"conv2\", \"fc1\"], \"sparse_ratio\": $ratio}]"
distill='[{"op_names": ["fc2"], "apply_method": "kl"}]'
common=(--epochs 1 --test-subset 256 --threads "$threads" --seed 1 --quiet)
[ -n "${SUBSET:-}" ] && common+=(--subset "$SUBSET") # quick checks of the script itself

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
fail() { echo "bench_fused_epoch: a run failed:" >&2; cat "$work/err" >&2; exit 1; }
# seconds between the first and the last step event of a JSON-lines log
span() {
  awk -F'"elapsed":' '/"event":"step"/ { split($2, a, /[,}]/); n++; if (n == 1) t0 = a[1]; t = a[1] }
    END { printf "%.2f\n", t - t0 }' "$1"
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(basename "$model"), sparse_ratio $ratio, 1 epoch (${SUBSET:-60000} images, batch 128)," \
     "threads=$threads, OMP_WAIT_POLICY=$OMP_WAIT_POLICY, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| round | dense train s | fine-tune (masked, full width) s | fused prune + distill s | fused / fine-tune | fused, --speedup-first s | speedup-first / fine-tune |"
echo "|---|---|---|---|---|---|---|"
ts=() fs=() ds=() ss=()
for ((r = 1; r <= rounds; r++)); do
  "$bin" train --model "$model" --lr 0.01 "${common[@]}" --log "$work/t$r.jsonl" >/dev/null 2>"$work/err" || fail
  "$bin" fuse --model "$model" --prune-config "$prune" "${common[@]}" \
    --log "$work/f$r.jsonl" --out "$work/f$r.safetensors" >/dev/null 2>"$work/err" || fail
  "$bin" fuse --model "$model" --prune-config "$prune" --distill-config "$distill" \
    "${common[@]}" --log "$work/d$r.jsonl" --out "$work/d$r.safetensors" >/dev/null 2>"$work/err" || fail
  "$bin" fuse --model "$model" --prune-config "$prune" --distill-config "$distill" \
    --speedup-first "${common[@]}" --log "$work/s$r.jsonl" --out "$work/s$r.safetensors" \
    >/dev/null 2>"$work/err" || fail
  t=$(span "$work/t$r.jsonl") f=$(span "$work/f$r.jsonl") d=$(span "$work/d$r.jsonl")
  sf=$(span "$work/s$r.jsonl")
  ts+=("$t") fs+=("$f") ds+=("$d") ss+=("$sf")
  echo "| $r | $t | $f | $d | $(ratio "$d" "$f") | $sf | $(ratio "$sf" "$f") |"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
mt=$(median "${ts[@]}") mf=$(median "${fs[@]}") md=$(median "${ds[@]}") ms=$(median "${ss[@]}")
echo "| median | $mt | $mf | $md | $(ratio "$md" "$mf") | $ms | $(ratio "$ms" "$mf") |"
