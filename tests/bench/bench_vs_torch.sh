#!/usr/bin/env bash
# Training throughput, inference latency and peak RSS of shrinkwrap against PyTorch, same run,
# same models, batch and threads. Usage: tests/bench/bench_vs_torch.sh [THREADS] [MODELS...]
# Installs the peer (python3-torch, OpenBLAS-openmp runtime) if missing; runs torch on
# OpenBLAS-openmp with torch.set_num_threads(THREADS), its best configuration here.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
threads=${1:-2}
shift || true
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(fmnist_cnn fmnist_resnet)

SW_BOOTSTRAP_EXTRA="python3-torch libopenblas0-openmp" "$root/scripts/bootstrap"
bin="$("$root/scripts/build" release)/shrinkwrap"
export OMP_NUM_THREADS=$threads
# On a shared machine, OpenMP threads that spin while waiting fight the other processes and
# both engines lose badly (seen here: 20x at batch 1); passive waiting is each engine at its
# best under load. Override with OMP_WAIT_POLICY=active on a quiet machine.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
# OPENBLAS_CORETYPE, when set, fixes OpenBLAS's kernels for both engines (both inherit it).
# Unset, OpenBLAS 0.3.21 picks its Haswell kernels on this AVX-512 CPU and shrinkwrap re-selects
# SkylakeX (src/tensor/blas.c) while PyTorch keeps Haswell for its BLAS calls (its convolutions
# use oneDNN); OPENBLAS_CORETYPE=SkylakeX gives PyTorch the same kernels as shrinkwrap.
torch_env=(env LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp)

printf '%s\n' "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, threads=$threads, batch 128, OMP_WAIT_POLICY=$OMP_WAIT_POLICY, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto}, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| model | metric | shrinkwrap | PyTorch | ratio (sw/torch), median (range) of %s rounds |\n|---|---|---|---|---|\n' "${SW_BENCH_ROUNDS:-3}"
# Shared machines drift by 10-20% from one minute to the next; each round runs both engines
# back to back, and the table gives, per metric, the median of the per-round ratios (and the
# median values beside them). SW_BENCH_ROUNDS=1 for a quick look.
rounds=${SW_BENCH_ROUNDS:-3}
for m in "${models[@]}"; do
  sws=() pts=()
  for ((r = 0; r < rounds; r++)); do
    sws+=("$("$bin" bench "$m" --threads "$threads" --json)")
    pts+=("$("${torch_env[@]}" /usr/bin/python3 "$root/tests/bench/torch_peer.py" --model "$m" --threads "$threads")")
  done
  python3 - "$m" "${#sws[@]}" "${sws[@]}" "${pts[@]}" <<'PY'
import json, statistics, sys
m, n = sys.argv[1], int(sys.argv[2])
sw = [json.loads(a) for a in sys.argv[3:3 + n]]
pt = [json.loads(a) for a in sys.argv[3 + n:3 + 2 * n]]
def metric(d, key):
    return d["latency_ms"][key[1]] if isinstance(key, tuple) else d[key]
keys = [("train images/s", "train_images_per_sec", "{:.0f}"),
        ("train peak RSS MiB", "peak_rss_mib", "{:.0f}")]
for b in sw[0]["latency_ms"]:
    keys.append(("latency ms, batch " + b, ("latency_ms", b), "{:.3f}"))
for name, key, fmt in keys:
    a = [metric(d, key) for d in sw]
    b = [metric(d, key) for d in pt]
    ratios = [x / y for x, y in zip(a, b)]
    spread = " ({:.2f}-{:.2f})".format(min(ratios), max(ratios)) if n > 1 else ""
    print("| {} | {} | {} | {} | {:.2f}{} |".format(m, name, fmt.format(statistics.median(a)),
          fmt.format(statistics.median(b)), statistics.median(ratios), spread))
PY
done
