#!/usr/bin/env bash
# What the workbench costs: training throughput of the same run with the UI open (inside tmux,
# charts redrawn live, metrics recorded with --record) versus headless (`shrinkwrap train
# --log`), alternating UI and headless runs so that drifting machine load hits both alike.
# Throughput = images of the step events / time between the first and the last step event, read
# from each run's JSON-lines log, so start-up and evaluation passes are left out of both. The
# last row gives the median of each column; its ratio is the median of the rounds' ratios.
#
# Usage: tests/bench/bench_tui_overhead.sh [THREADS] [STEPS] [ROUNDS] [MODEL]
#   defaults: 2 threads, 300 steps of batch 128, 3 rounds, fmnist_cnn
#   SW_BIN=/path/to/shrinkwrap skips the bootstrap and release build (use a release build).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
threads=${1:-2}
steps=${2:-300}
rounds=${3:-3}
model=${4:-fmnist_cnn}
if [ -n "${SW_BIN:-}" ]; then
  bin=$(realpath "$SW_BIN") # the UI run starts in another folder
else
  "$root/scripts/bootstrap"
  bin="$("$root/scripts/build" release)/shrinkwrap"
fi
command -v tmux >/dev/null || { echo "bench_tui_overhead: tmux is needed" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/swtuibench.XXXXXX")
# One tmux server (socket) per round: a server still shutting down cannot take the next session.
base="swtuibench-$$"
sock="$base-0"
cleanup() {
  for s in "${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$base"-*; do
    tmux -L "$(basename "$s")" kill-server 2>/dev/null
    rm -f "$s"
  done
  rm -rf "$work"
}
trap cleanup EXIT
subset=$((steps * 128))
[ "$subset" -gt 60000 ] && subset=60000

# images/s between the first and the last step event of a JSON-lines log
throughput() {
  awk -F'"elapsed":' '/"event":"step"/ {
      split($2, a, /[,}]/); t = a[1]; n++; if (n == 1) t0 = t; last = t }
    END { if (n < 2) { print "nan"; exit } printf "%.1f\n", (n - 1) * 128 / (last - t0) }' "$1"
}

headless() {
  "$bin" train --model "$model" --epochs 1 --steps "$steps" --subset "$subset" \
    --test-subset 256 --threads "$threads" --seed 1 --quiet --log "$work/h$1.jsonl" \
    >/dev/null 2>&1
  throughput "$work/h$1.jsonl"
}

ui() {
  local rec="$work/u$1.jsonl" stream="$work/u$1.fifo" done_fifo="$work/u$1.done" n=0 done_fd
  # The workbench writes its metrics into a FIFO that a background reader copies to $rec and
  # that tells us, through a second FIFO, when the run's "end" event came: the harness then
  # waits in one blocking read. (It used to poll the file with grep five times a second, and
  # those processes competed with the two training threads on the two cores: a measured part
  # of the "cost of the UI".)
  mkfifo "$stream" "$done_fifo"
  exec {done_fd}<>"$done_fifo"
  (
    while IFS= read -r line; do
      printf '%s\n' "$line" >>"$rec"
      case $line in *'"event":"end"'*) echo end >"$done_fifo"; break ;; esac
    done
    exec cat >>"$rec" # keep draining: the workbench never writes into a closed pipe
  ) <"$stream" &
  local reader=$!
  tmux -L "$sock" kill-server 2>/dev/null || true
  sock="$base-$1"
  tmux -L "$sock" new-session -d -s b -x 120 -y 40 \
    "cd $work && LANG=C.UTF-8 OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-} $bin tui $model --subset $subset --test-subset 256 --threads $threads --record $stream; sleep 600"
  until tmux -L "$sock" capture-pane -p -t b 2>/dev/null | grep -q 'Inspector:'; do
    sleep 0.1; n=$((n + 1)); [ $n -gt 600 ] && { echo "the workbench did not open" >&2; exit 1; }
  done
  tmux -L "$sock" send-keys -t b t
  n=0
  until tmux -L "$sock" capture-pane -p -t b 2>/dev/null | grep -q 'Train'; do
    sleep 0.1; n=$((n + 1)); [ $n -gt 600 ] && { echo "the training form did not open" >&2; exit 1; }
  done
  # epochs 1, steps $steps; the form's other fields keep their defaults (batch 128)
  tmux -L "$sock" send-keys -t b C-u 1 Down C-u $(echo "$steps" | sed 's/./& /g') Enter
  read -r -t 1800 -u "$done_fd" _ || { echo "the UI run did not finish" >&2; exit 1; }
  exec {done_fd}<&-
  tmux -L "$sock" send-keys -t b q
  tmux -L "$sock" kill-server 2>/dev/null || true
  wait "$reader" 2>/dev/null || true
  throughput "$rec"
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ), $model, $steps steps of batch 128, threads=$threads," \
     "OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| round | headless images/s | UI images/s | UI / headless |"
echo "|---|---|---|---|"
# Rounds alternate which run goes first, so that a drift of the machine's speed within a round
# does not always favour the same side; the verdict is the median of the per-round ratios.
hs=() us=() rs=()
for ((r = 1; r <= rounds; r++)); do
  if ((r % 2)); then h=$(headless "$r"); u=$(ui "$r"); else u=$(ui "$r"); h=$(headless "$r"); fi
  ratio=$(awk -v h="$h" -v u="$u" 'BEGIN {printf "%.3f", u / h}')
  hs+=("$h"); us+=("$u"); rs+=("$ratio")
  echo "| $r | $h | $u | $ratio |"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "| median | $(median "${hs[@]}") | $(median "${us[@]}") | $(median "${rs[@]}") |"
