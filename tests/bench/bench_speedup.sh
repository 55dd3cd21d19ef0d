#!/usr/bin/env bash
# Speedup benchmark: inference latency at batch 1 and 256 of dense vs sped-up fmnist_cnn and
# fmnist_resnet at 50% and 75% channel sparsity, the FLOP ratio beside the measured time ratio,
# and PyTorch running the same shrunk architecture (built from the sped-up model file by
# tests/bench/torch_peer.py --model-file), same run, same threads.
#
# Usage: tests/bench/bench_speedup.sh [THREADS] [REPEATS]
#   SW_BIN=/path/to/shrinkwrap skips the bootstrap and release build (use a release build).
#   On a machine shared with other work, OMP_WAIT_POLICY=passive keeps the OpenMP threads of
#   both engines from spinning against each other (the header line records it).
# Masks: every Conv2d/Linear but the classifier loses the given fraction of its output channels
# (fixed seed); in fmnist_resnet the convs whose outputs meet at an Add share one mask, as a
# dependency-aware pruner gives them, so the sparsity is real.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
threads=${1:-2}
repeats=${2:-50}
if [ -n "${SW_BIN:-}" ]; then
  bin=$SW_BIN
else
  SW_BOOTSTRAP_EXTRA="python3-torch libopenblas0-openmp" "$root/scripts/bootstrap"
  bin="$("$root/scripts/build" release)/shrinkwrap"
fi
export OMP_NUM_THREADS=$threads
torch_env=(env LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3)
work=$(mktemp -d "${TMPDIR:-/tmp}/swbench.XXXXXX")
trap 'rm -rf "$work"' EXIT

# masks.py MODEL SPARSITY OUT: out_channel masks (U8) for every prunable layer of MODEL.
cat >"$work/masks.py" <<'EOF'
import json, random, struct, sys
model, sparsity, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
layers, shared = [], []   # (name, shape, bias); groups of names sharing one mask
if model == "fmnist_cnn":
    layers = [("conv1", [32, 1, 3, 3], True), ("conv2", [64, 32, 3, 3], True),
              ("fc1", [256, 3136], True)]
    shared = [["conv1"], ["conv2"], ["fc1"]]
else:
    layers.append(("conv1", [32, 1, 3, 3], False))
    cin, widths = 32, [32, 64, 128]
    for s, w in enumerate(widths):
        stream = ["conv1"] if s == 0 else []
        for b in range(2):
            p = "layer%d.%d" % (s + 1, b)
            layers.append((p + ".conv1", [w, cin if b == 0 else w, 3, 3], False))
            shared.append([p + ".conv1"])
            layers.append((p + ".conv2", [w, w, 3, 3], False))
            stream.append(p + ".conv2")
            if s > 0 and b == 0:
                layers.append((p + ".downsample.0", [w, cin, 1, 1], False))
                stream.append(p + ".downsample.0")
        shared.append(stream)
        cin = w
tensors, info = {}, {n: (sh, b) for n, sh, b in layers}
for g, names in enumerate(shared):
    rows = info[names[0]][0][0]
    dead = set(random.Random(1000 + g).sample(range(rows), int(rows * sparsity)))
    for n in names:
        shape, bias = info[n]
        per = 1
        for d in shape[1:]:
            per *= d
        tensors[n + ".weight"] = (shape, bytes(0 if r in dead else 1 for r in range(rows)
                                               for _ in range(per)))
        if bias:
            tensors[n + ".bias"] = ([rows], bytes(0 if r in dead else 1 for r in range(rows)))
header, blobs, off = {}, [], 0
for name, (shape, data) in tensors.items():
    header[name] = {"dtype": "U8", "shape": shape, "data_offsets": [off, off + len(data)]}
    blobs.append(data)
    off += len(data)
h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
open(out, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
EOF

sw_latency() {
  "$bin" bench "$1" --no-train --json --threads "$threads" --latency-batches 1,256 \
    --repeats "$repeats"
}
torch_latency() {
  "${torch_env[@]}" "$root/tests/bench/torch_peer.py" "$@" --threads "$threads" --steps 0 \
    --latency-batches 1,256 --repeats "$repeats"
}

printf '%s\n' "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, threads=$threads, median of $repeats, ${SW_SPEEDUP_ROUNDS:-3} rounds," \
  "OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-default}, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto}, load average $(cut -d' ' -f1 /proc/loadavg)" |
  paste -sd ' '

printf '%s' "| model | sparsity | batch | FLOP ratio | dense ms | sped-up ms | time ratio | "
printf '%s\n' "time ratio / FLOP ratio | PyTorch dense ms | PyTorch sped-up ms | sped-up sw/torch |"
printf '|---|---|---|---|---|---|---|---|---|---|---|\n'
# The machine's speed drifts over tens of seconds, so each of the ROUNDS rounds measures the
# dense and the sped-up model back to back (alternating which goes first) and the table gives
# the median of the rounds' time ratios; the ms columns are medians too. PyTorch runs once.
rounds=${SW_SPEEDUP_ROUNDS:-3}
for m in fmnist_cnn fmnist_resnet; do
  tdense=$(torch_latency --model "$m")
  for sp in 0.5 0.75; do
    python3 "$work/masks.py" "$m" "$sp" "$work/masks.safetensors"
    "$bin" speedup "$m" "$work/masks.safetensors" --out "$work/small.safetensors" \
      --threads "$threads" >/dev/null
    pairs=()
    for ((r = 0; r < rounds; r++)); do
      if ((r % 2)); then
        small=$(sw_latency "$work/small.safetensors"); dense=$(sw_latency "$m")
      else
        dense=$(sw_latency "$m"); small=$(sw_latency "$work/small.safetensors")
      fi
      pairs+=("$dense" "$small")
    done
    tsmall=$(torch_latency --model-file "$work/small.safetensors")
    python3 - "$m" "$sp" "$tdense" "$tsmall" "${pairs[@]}" <<'PY'
import json, statistics, sys
m, sp = sys.argv[1], float(sys.argv[2])
tdense, tsmall = (json.loads(a)["latency_ms"] for a in sys.argv[3:5])
runs = [json.loads(a) for a in sys.argv[5:]]
dense_runs, small_runs = runs[0::2], runs[1::2]
fr = dense_runs[0]["flops"] / small_runs[0]["flops"]  # per-image FLOPs, dense / sped-up
med = statistics.median
for b in ("1", "256"):
    d = [r["latency_ms"][b] for r in dense_runs]
    s = [r["latency_ms"][b] for r in small_runs]
    ratios = [x / y for x, y in zip(d, s)]
    tr = med(ratios)
    spread = " ({:.2f}-{:.2f})".format(min(ratios) / fr, max(ratios) / fr) if len(ratios) > 1 else ""
    cells = [m, "{:.0f}%".format(100 * sp), b, "{:.2f}x".format(fr), "{:.3f}".format(med(d)),
             "{:.3f}".format(med(s)), "{:.2f}x".format(tr), "{:.2f}{}".format(tr / fr, spread),
             "{:.3f}".format(tdense[b]), "{:.3f}".format(tsmall[b]),
             "{:.2f}".format(med(s) / tsmall[b])]
    print("| " + " | ".join(cells) + " |")
PY
  done
done
