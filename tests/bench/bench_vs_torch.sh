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
printf '| model | metric | shrinkwrap | PyTorch | ratio (sw/torch) |\n|---|---|---|---|---|\n'
for m in "${models[@]}"; do
  sw=$("$bin" bench "$m" --threads "$threads" --json)
  pt=$("${torch_env[@]}" /usr/bin/python3 "$root/tests/bench/torch_peer.py" --model "$m" --threads "$threads")
  python3 - "$m" "$sw" "$pt" <<'PY'
import json, sys
m, sw, pt = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
rows = [("train images/s", sw["train_images_per_sec"], pt["train_images_per_sec"], "{:.0f}"),
        ("train peak RSS MiB", sw["peak_rss_mib"], pt["peak_rss_mib"], "{:.0f}")]
for b in sw["latency_ms"]:
    rows.append(("latency ms, batch " + b, sw["latency_ms"][b], pt["latency_ms"][b], "{:.3f}"))
for name, a, b, fmt in rows:
    print("| {} | {} | {} | {} | {:.2f} |".format(m, name, fmt.format(a), fmt.format(b), a / b))
PY
done
