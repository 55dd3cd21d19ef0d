#!/usr/bin/env bash
# The workbench end to end in a real terminal: the binary runs inside tmux, driven with
# send-keys and read with capture-pane (polling until the expected text appears, with a
# timeout). Browsing, expanding and searching a model; help; tiny and large terminals and
# resizing; Ctrl-C; a short training on a subset whose progress and charts move; pause, stop; export
# (the file loads with `shrinkwrap info`); attaching L1Norm, compressing and exporting masks;
# replaying a headless run's metrics log; ASCII and NO_COLOR; SIGTERM during training; and
# after every exit a terminal given back in its normal mode.
bin=$1
source "$(dirname "$0")/lib.sh"

if ! command -v tmux >/dev/null; then
  echo "FAIL: tmux is needed for the terminal tests (apt-get install tmux)" >&2
  exit 1
fi
# One tmux server (socket) per session: a server still shutting down cannot be reached by the
# next session's client.
base="swtui-$$-$RANDOM"
sessions=0
sock="$base-0"
cleanup() {
  local dir="${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)"
  for ((i = 0; i <= sessions; i++)); do
    tmux -L "$base-$i" kill-server 2>/dev/null
    rm -f "$dir/$base-$i"
  done
  rm -rf "$work"
}
trap cleanup EXIT
T() { tmux -L "$sock" "$@"; }

# start W H ENV... -- ARGS... : runs `shrinkwrap tui ARGS` in a fresh session; when it exits,
# its status goes to $work/rc and the terminal's settings to $work/stty.
start() {
  local w=$1 h=$2; shift 2
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  T kill-server 2>/dev/null
  sessions=$((sessions + 1))
  sock="$base-$sessions"
  rm -f "$work/rc" "$work/stty"
  local q=""
  for a in "$@"; do q+=" $(printf '%q' "$a")"; done
  T new-session -d -s tui -x "$w" -y "$h" \
    "cd $(printf '%q' "$work") && env ${envs[*]} $(printf '%q' "$bin") tui$q; echo \$? >rc; stty -a >stty; sleep 600"
}
screen() { T capture-pane -p -t tui >"$work/screen" 2>/dev/null; }
# wait_screen DESCRIPTION PATTERN [TIMEOUT_S] : polls the screen until PATTERN (grep -E) shows
wait_screen() {
  local what=$1 pattern=$2 timeout=${3:-60} n=0
  while [ $n -lt $((timeout * 20)) ]; do
    screen
    if grep -qE -e "$pattern" "$work/screen"; then
      pass
      [ $n -gt 200 ] && echo "   (slow: $what took $((n / 20))s)" >&2
      return 0
    fi
    sleep 0.05; n=$((n + 1))
  done
  fail "$what: /$pattern/ did not appear within ${timeout}s"
  sed 's/^/  | /' "$work/screen" >&2
  return 1
}
# wait_exit DESCRIPTION WANT_RC : waits for the process to end; checks status and terminal
wait_exit() {
  local what=$1 want=$2 n=0
  while [ ! -s "$work/rc" ] || [ ! -s "$work/stty" ]; do
    [ $n -ge 1200 ] && { fail "$what: did not exit within 60s"; return 1; }
    sleep 0.05; n=$((n + 1))
  done
  local rc
  rc=$(cat "$work/rc")
  [ "$rc" = "$want" ] && pass || fail "$what: exit status $rc, expected $want"
  # Back in cooked mode with echo, and out of the alternate screen.
  if grep -qE '(^| )icanon( |$)' "$work/stty" && grep -qE '(^| )echo( |$)' "$work/stty"; then pass
  else fail "$what: terminal not restored"; sed 's/^/  | /' "$work/stty" >&2; fi
  screen
  grep -q "Inspector:" "$work/screen" && fail "$what: the workbench is still on screen" || pass
}
keys() { T send-keys -t tui "$@"; }
# Braille cells (U+2800..U+28FF: bytes E2 A0..A3 xx) on the last screen read.
has_braille() { LC_ALL=C grep -qP '\xe2[\xa0-\xa3]' "$work/screen"; }
section() { echo "-- $1 (${SECONDS}s)" >&2; }
# The step number shown in the progress line ("12/48 ep"), or 0.
step_on_screen() { screen; grep -oE '[0-9]+/[0-9]+ ep' "$work/screen" | head -1 | cut -d/ -f1 || echo 0; }

utf8=(LANG=C.UTF-8 LC_ALL=C.UTF-8)

# --- outside a terminal: help, and clear errors -----------------------------------------------
expect_ok "tui --help" "$bin" tui --help
expect_grep "tui --help shows the usage" "usage: shrinkwrap tui \[MODEL\]" "$work/out"
expect_fail "tui needs a terminal" "needs a terminal" "$bin" tui fmnist_mlp </dev/null
expect_fail "--log names a missing file" "--log .*no such readable file" "$bin" tui --log "$work/none"

# --- browsing at 80x24: navigate, expand, search, help, tiny and large sizes ---------------------
section "browsing"
start 80 24 "${utf8[@]}" -- fmnist_resnet
wait_screen "opens on the first module" 'Inspector: conv1 \(Conv2d\)'
wait_screen "shows the module tree" 'layer3 +526k'
keys j
wait_screen "j moves down" 'Inspector: bn1 \(BatchNorm2d\)'
keys j j l
wait_screen "l enters the expanded layer1" 'Inspector: layer1\.0 \(container\)'
keys l
wait_screen "l expands a block: its Add appears" '^ +add +Add'
keys / d o w n s Enter
wait_screen "search finds a module and expands its parents" 'layer2\.0\.downsample \(container\)'
keys n
wait_screen "n goes to the next match" 'layer2\.0\.downsample\.0 \(Conv2d\)'
keys '?'
wait_screen "? shows the keys" 'Keys \(any other key closes\)'
wait_screen "help lists training" 't +train: epochs, steps, lr, batch, subset'
keys Escape
wait_screen "Esc closes the help" '^ Log'
T resize-window -t tui -x 60 -y 15
wait_screen "a tiny terminal gets a message" 'terminal too small: 60x15'
T resize-window -t tui -x 200 -y 60
wait_screen "a large terminal shows more columns" 'zero +output +FLOPs +type +params'
wait_screen "large layout keeps the inspector" 'layer2\.0\.downsample\.0 \(Conv2d\)'
T resize-window -t tui -x 80 -y 24
wait_screen "back to 80x24" '^ Modules +type +params'
keys C-c
wait_exit "Ctrl-C (SIGINT) ends the session" 130

# --- training at 80x24 on a subset: progress and charts move; pause, stop, export; attach and
# compress; q while training asks; SIGTERM during training ------------------------------------
section "training"
start 80 24 "${utf8[@]}" -- fmnist_cnn --subset 256 --test-subset 64
wait_screen "cnn opens" 'Inspector: conv1 \(Conv2d\)'
keys t
wait_screen "t opens the training form" 'Train'
# 20 epochs of 16 steps: long enough that pausing and stopping happen mid-run on any machine.
keys C-u 2 0 Down Down Down C-u 1 6 Enter
wait_screen "training starts" 'train: 320 steps, 20 epochs' 120
wait_screen "progress shows steps" '[1-9][0-9]*/320 ep [0-9]+/20 ETA' 120
# The step read from the very capture kept for comparison, so a later, larger step means a
# different screen.
screen; cp "$work/screen" "$work/first"
first=$(grep -oE '[0-9]+/[0-9]+ ep' "$work/first" | head -1 | cut -d/ -f1)
first=${first:-0}
n=0; second=$first
while [ "$second" -le "$first" ] && [ $n -lt 2400 ]; do sleep 0.05; second=$(step_on_screen); n=$((n + 1)); done
[ "$second" -gt "$first" ] && pass || fail "the step counter increases ($first -> $second)"
cmp -s "$work/first" "$work/screen" && fail "the screen changes as training goes" || pass
has_braille && pass || fail "the loss chart is drawn in braille"
keys p
wait_screen "p pauses" 'PAUSED'
keys p
wait_screen "p resumes" 'running [0-9]+%'
keys s
wait_screen "s stops at a step boundary" 'training stopped at a step boundary' 120
wait_screen "the stopped run shows as stopped" '[0-9]+/320 stopped in'
section "export"
keys e
wait_screen "e opens the export form" 'model file fmnist_cnn\.trained\.safetensors'
keys Enter
wait_screen "export saves the model" 'saved fmnist_cnn\.trained\.safetensors'
expect_ok "the exported model loads" "$bin" info "$work/fmnist_cnn.trained.safetensors"
expect_grep "the exported model has the cnn's parameters" "824650 parameters" "$work/out"
ls "$work" | grep -q '\.tmp\.' && fail "a temporary file was left behind" || pass

section "attach"
keys g a
wait_screen "a lists the pruners" 'L1Norm +pruner'
keys Enter
wait_screen "the pruner's form" 'sparse_ratio 0\.5'
keys Enter
wait_screen "attached: a badge on conv1" 'conv1 P:L1 0%'
wait_screen "the chain view lists it" '1 L1NormPruner'
keys c
wait_screen "c opens the compress form" 'Compress with the attached chain'
keys Enter
wait_screen "compress prunes half of conv1's filters" 'conv1 P:L1 50%'
wait_screen "the inspector shows the mask" 'weight +mask\(L1Norm\): 50\.0% zero'
keys e
wait_screen "export offers a masks file" 'masks file fmnist_cnn\.masks\.safetensors'
keys Enter
wait_screen "export writes the masks" 'saved masks fmnist_cnn\.masks\.safetensors'
expect_ok "the pruned model loads" "$bin" info "$work/fmnist_cnn.trained.safetensors"
grep -aq '"conv1.weight"' "$work/fmnist_cnn.masks.safetensors" && pass || fail "masks file names conv1.weight"

section "speedup, recipe, sensitivity"
keys e Down Down C-u
keys -l "fast.safetensors"
keys Enter
wait_screen "a sped-up export shows the before/after view" 'Before / after speedup: fast\.safetensors' 120
wait_screen "it compares parameters" 'parameters +[0-9.]+[kM]? +[0-9.]+[kM]? +[0-9.]+x'
keys x
expect_ok "the sped-up model loads" "$bin" info "$work/fast.safetensors"
keys w C-u
keys -l "wb.lua"
keys Enter
wait_screen "w saves a recipe" 'saved recipe wb\.lua'
expect_ok "the recipe runs headless" "$bin" run "$work/wb.lua" --masks "$work/replay.masks.safetensors"
expect_grep "the recipe writes its masks" "wrote masks" "$work/out"
keys g S
wait_screen "S fills the sensitivity table" 'accuracy drop \(4/4\)' 120
keys x

section "quit and signal while training"
keys t Enter
wait_screen "a second run trains (with the pruner attached)" 'train: 320 steps' 60
wait_screen "it makes progress" '[1-9][0-9]*/320 ep' 120
keys q
wait_screen "q asks while work runs" 'stop it and quit\? \(y/n\)'
keys n
wait_screen "n keeps working" 'running [0-9]+%'
pane_pid=$(T display-message -p -t tui '#{pane_pid}')
tui_pid=$(pgrep -P "$pane_pid" -f ' tui ' | head -1)
if [ -n "$tui_pid" ]; then kill -TERM "$tui_pid"; pass; else fail "found the workbench's process"; fi
wait_exit "SIGTERM ends the session" 143

section "recipe inside the workbench"
start 80 24 "${utf8[@]}" -- fmnist_cnn --recipe wb.lua
wait_screen "--recipe shows the recipe's output in the log" 'wrote masks fmnist_cnn\.masks\.safetensors' 60
wait_screen "and says when it finished" 'recipe wb\.lua finished'
keys q
wait_exit "q quits after a recipe" 0

# --- a headless run's metrics log, replayed at 200x60 ---------------------------------------------
section "replay"
expect_ok "a headless run writes a log" "$bin" train --model fmnist_mlp --subset 256 \
  --test-subset 128 --epochs 2 --batch-size 32 --log "$work/run.jsonl" --quiet
start 200 60 "${utf8[@]}" -- fmnist_mlp --log run.jsonl
wait_screen "--log replays the run" 'opened run\.jsonl: [0-9]+ events, 1 run'
wait_screen "its charts and progress" '16/16 completed in'
wait_screen "the accuracy chart" 'accuracy [0-9.]+%'
has_braille && pass || fail "replayed charts are drawn in braille"
keys o C-u
keys -l "$work/nowhere.jsonl"
wait_screen "o checks the file in place" '\^ no such file'
keys Escape q
wait_exit "q quits the replay" 0

# --- ASCII locale and NO_COLOR: plain characters only ----------------------------------------------
section "ascii"
start 80 24 LANG=C LC_ALL=C NO_COLOR=1 -- fmnist_mlp --log run.jsonl
wait_screen "the ASCII screen opens" 'opened run\.jsonl'
LC_ALL=C grep -qP '[\x80-\xff]' "$work/screen" && fail "only ASCII without a UTF-8 locale" || pass
grep -qE "[.'-]" "$work/screen" && pass || fail "charts drawn with ASCII"
keys q
wait_exit "q quits in ASCII" 0

finish
