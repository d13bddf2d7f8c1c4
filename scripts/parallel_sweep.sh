#!/usr/bin/env bash
# A sweep split into shards run by GNU parallel, on this machine or on
# several hosts over ssh, then merged (docs/sweeps.md, "Shards").
#
#   scripts/parallel_sweep.sh SPEC OUT SHARDS
#
# Each shard I (0 <= I < SHARDS) runs
#   accsim sweep SPEC --out OUT/shard-I --shard I/SHARDS --resume -j JOBS_PER_SHARD -q
# as one GNU parallel job, and when all have succeeded
#   accsim merge OUT/shard-* --out OUT
# writes OUT/results.csv, the Pareto fronts, tables and plots: the same
# bytes as an unsharded `accsim sweep SPEC --out OUT`. Every shard has its
# own directory, so no two writers ever share one. A failed or killed run
# can simply be started again: finished points are kept (`--resume`).
#
# Environment:
#   ACCSIM          the accsim binary (default: target/release/accsim of
#                   this checkout); on other hosts, the same path must hold
#                   one built from the same commit
#   SSHLOGIN        GNU parallel's --sshlogin list, e.g. "4/node1,4/node2"
#                   (4 jobs on each); default ":" (this machine only)
#   JOBS            parallel jobs per host (default: 1 per CPU)
#   JOBS_PER_SHARD  accsim -j inside each shard (default 1)
#   COPY_BACK       1 when OUT is not on a directory every host shares: each
#                   host writes its shards under the same path and parallel
#                   copies them back here (--return) and deletes them there
#                   (--cleanup). Default 0: OUT is shared (NFS, Lustre, ...)
#
# Remote hosts run in this checkout's path (--workdir), so SPEC, the
# workload and architecture files and OUT resolve as they do here; keep a
# checkout (and build) at the same path on every host.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -ne 3 ]; then
    echo "usage: scripts/parallel_sweep.sh SPEC OUT SHARDS" >&2
    exit 2
fi
spec=$1
out=$2
shards=$3
if ! [[ "$shards" =~ ^[1-9][0-9]*$ ]]; then
    echo "scripts/parallel_sweep.sh: SHARDS '$shards' is not a positive integer" >&2
    exit 2
fi
if ! command -v parallel >/dev/null 2>&1; then
    echo "scripts/parallel_sweep.sh: GNU parallel is not installed (Debian: apt-get install parallel)" >&2
    exit 2
fi
accsim=${ACCSIM:-$PWD/target/release/accsim}
sshlogin=${SSHLOGIN:-:}
jobs_per_shard=${JOBS_PER_SHARD:-1}

options=(--halt now,fail=1 --sshlogin "$sshlogin" --workdir "$PWD")
if [ -n "${JOBS:-}" ]; then
    options+=(--jobs "$JOBS")
fi
if [ "${COPY_BACK:-0}" = 1 ]; then
    options+=(--return "$out/shard-{}" --cleanup)
fi

mkdir -p "$out"
# shellcheck disable=SC2016 # {} is GNU parallel's placeholder, not a shell variable
parallel "${options[@]}" \
    "$accsim" sweep "$spec" --out "$out/shard-{}" --shard "{}/$shards" \
    --resume -j "$jobs_per_shard" -q \
    ::: $(seq 0 $((shards - 1)))
"$accsim" merge "$out"/shard-* --out "$out" -q
