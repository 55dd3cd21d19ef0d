#!/usr/bin/env bash
# test_fuzz_safetensors.sh - builds the libFuzzer targets with clang in a scratch folder,
# checks the seed files with an independent Python reader, and fuzzes the safetensors reader,
# the model-file loader and the architecture parser for a bounded time. Fails on any crash,
# sanitizer report, leak or broken invariant.
#
# Usage (ctest runs it): bash test_fuzz_safetensors.sh <shrinkwrap-binary> <source-dir>
# SW_FUZZ_SECONDS (default 15) sets the time per target.
set -euo pipefail

src=${2:?usage: test_fuzz_safetensors.sh <shrinkwrap-binary> <source-dir>}
seconds=${SW_FUZZ_SECONDS:-15}

cc=$(command -v clang-14 || command -v clang || true)
if [[ -z "$cc" ]]; then
    echo "FAIL: clang is not installed, and libFuzzer comes with it." >&2
    echo "      Install it with scripts/bootstrap (or: apt-get install clang)." >&2
    exit 1
fi
python=$(command -v python3 || true)
if [[ -z "$python" ]]; then
    echo "FAIL: python3 is not installed; it checks the seed files' layout." >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sw-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== configuring and building the fuzz targets with $cc"
CC="$cc" cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Debug -DSW_FUZZ=ON \
    >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" -j2 --target fuzz_safetensors fuzz_model_arch fuzz_make_corpus \
    >"$work/build.log" 2>&1 || { tail -50 "$work/build.log"; exit 1; }
bin="$work/build/tests/fuzz"

echo "== writing seed corpora"
mkdir -p "$work/seeds/st" "$work/seeds/arch"
"$bin/fuzz_make_corpus" "$work/seeds/st" "$work/seeds/arch"

echo "== checking the seeds with an independent reader (python3 json + struct)"
"$python" "$src/tests/fuzz/check_layout.py" "$work/seeds/expected.json" "$work/seeds/st/"*.safetensors

# -detect_leaks=1 is libFuzzer's default with ASan; the artifacts go to the scratch folder and
# are printed on failure (a crash input is reproduced with: <target> <file>).
status=0
run() {
    local target=$1 corpus=$2 dict=$3
    mkdir -p "$work/corpus-$target" "$work/artifacts-$target"
    echo "== fuzzing $target for ${seconds}s"
    if ! "$bin/$target" "$work/corpus-$target" "$corpus" -dict="$dict" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts-$target/" \
        >"$work/$target.log" 2>&1; then
        status=1
        echo "FAIL: $target found a problem:" >&2
        grep -E "ERROR|SUMMARY|invariant|runtime error|==[0-9]+==" "$work/$target.log" | head -40 >&2
        for f in "$work/artifacts-$target"/*; do
            [[ -e "$f" ]] || continue
            echo "--- input $f (base64):" >&2
            base64 "$f" | head -40 >&2
        done
    else
        grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$work/$target.log" || true
    fi
}
run fuzz_safetensors "$work/seeds/st" "$src/tests/fuzz/safetensors.dict"
run fuzz_model_arch "$work/seeds/arch" "$src/tests/fuzz/safetensors.dict"
exit $status
