#!/usr/bin/env bash
# How accsim's run time grows with network size and array size
# (docs/performance.md, "Scaling"). Runs every shipped TOML workload on
# lu22_fixed and lu22_programmable with PE arrays from 8x8 to 32x32 and
# prints one Markdown row per run: wall time and peak memory of the whole
# command (/usr/bin/time), and the load and simulation times that
# `accsim -v run` logs.
#
#   scripts/scaling.sh [WORKLOAD...]   # default: every workloads/*.toml
#
# Needs a release build (cargo build --release) and GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
accsim=target/release/accsim
[ -x "$accsim" ] || { echo "build first: cargo build --release" >&2; exit 1; }

if [ $# -gt 0 ]; then
    workloads=("$@")
else
    workloads=()
    for f in workloads/*.toml; do workloads+=("$(basename "$f" .toml)"); done
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "| workload | MACs | arch | array | cycles | load s | run s | wall s | peak MB | G MAC/s (run) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for w in "${workloads[@]}"; do
    for base in lu22_fixed lu22_programmable; do
        for size in 8x8 13x12 16x16 32x32; do
            rows=${size%x*}
            cols=${size#*x}
            arch="$tmp/${base}_${size}.toml"
            sed -e "s/^rows = [0-9]*/rows = $rows/" -e "s/^cols = [0-9]*/cols = $cols/" \
                -e "s/^name = \"$base\"/name = \"${base}_$size\"/" "arch_configs/$base.toml" >"$arch"
            if ! /usr/bin/time -f "%e %M" -o "$tmp/time" "$accsim" -v run -q \
                --workload "$w" --arch "$arch" 2>"$tmp/log"; then
                echo "| $w | | $base | $size | refused: $(tail -n 1 "$tmp/log") |"
                continue
            fi
            read -r wall rss <"$tmp/time"
            line=$(grep -o 'load .*' "$tmp/log" | tail -n 1)
            load=$(sed -E 's/^load ([0-9.]+) s.*/\1/' <<<"$line")
            run=$(sed -E 's/.*; run ([0-9.]+) s:.*/\1/' <<<"$line")
            cycles=$(sed -E 's/.*s: ([0-9]+) simulated cycles.*/\1/' <<<"$line")
            macs=$(sed -E 's/.*cycles, ([0-9]+) MACs.*/\1/' <<<"$line")
            gmacs=$(sed -E 's/.*cycles\/s, ([0-9.]+) G MAC\/s.*/\1/' <<<"$line")
            echo "| $w | $macs | $base | $size | $cycles | $load | $run | $wall | $((rss / 1024)) | $gmacs |"
        done
    done
done
