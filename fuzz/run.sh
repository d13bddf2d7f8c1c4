#!/usr/bin/env bash
# Runs one accsim fuzz target for a while (docs/testing.md, "Fuzzing").
#
#   fuzz/run.sh TARGET SECONDS [libFuzzer options...]
#   fuzz/run.sh all SECONDS_EACH            # every target in turn (CI smoke)
#
# Seeds fuzz/corpus/TARGET from the shipped files of that format, uses the
# target's dictionary, and runs one job on the stable toolchain (`-s none`:
# no sanitizer, which would need nightly). A finding is written to
# fuzz/artifacts/TARGET/ and the script exits non-zero; turn it into a test
# in tests/fuzz_regressions.rs (docs/testing.md says how).
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(workload_toml arch_toml npy run_input onnx scalesim_csv)
if [ $# -lt 2 ]; then
    echo "usage: fuzz/run.sh TARGET|all SECONDS [libFuzzer options...]" >&2
    echo "targets: ${targets[*]}" >&2
    exit 2
fi
target=$1
seconds=$2
shift 2

if [ "$target" = all ]; then
    for t in "${targets[@]}"; do
        "$0" "$t" "$seconds" "$@"
    done
    exit 0
fi

case $target in
    workload_toml) seeds=(workloads/*.toml tests/data/*.toml); dict=workload_toml ;;
    arch_toml) seeds=(arch_configs/*.toml); dict=arch_toml ;;
    npy | run_input) seeds=(workloads/inputs/*.npy workloads/digits_cnn/*.npy tests/data/onnx/*.input.npy); dict=npy ;;
    onnx) seeds=(workloads/*.onnx tests/data/onnx/*.onnx); dict= ;;
    scalesim_csv) seeds=(workloads/*.csv); dict=scalesim_csv ;;
    *)
        echo "unknown fuzz target '$target'; valid: ${targets[*]}" >&2
        exit 2
        ;;
esac

corpus=fuzz/corpus/$target
mkdir -p "$corpus"
for f in "${seeds[@]}"; do
    if [ -f "$f" ] && [ ! -e "$corpus/$(basename "$f")" ]; then
        cp "$f" "$corpus/"
    fi
done

options=(
    -max_total_time="$seconds"
    # A single input that takes 10 s is a hang: the loaders must refuse
    # work that large up front.
    -timeout=10
    # An input that makes the loader hold 2 GiB is an absurd allocation.
    -rss_limit_mb=2048
    -malloc_limit_mb=2048
    -print_final_stats=1
)
if [ -n "$dict" ]; then
    options+=(-dict="fuzz/dicts/$dict.dict")
fi
if [ "$target" = onnx ]; then
    options+=(-max_len=131072)
fi

# One thread: the loaders' rayon loops only split tiny tensors here, and a
# second worker spinning for work took a core from the shared machine
# (results do not depend on the thread count: docs/testing.md).
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-1}

echo "== fuzz $target for ${seconds}s"
cargo fuzz run -s none "$target" "$corpus" -- "${options[@]}" "$@"
