#!/usr/bin/env bash
#SBATCH --job-name=accsim-sweep
#SBATCH --cpus-per-task=4
#SBATCH --time=02:00:00
# A sweep on a Slurm cluster: one job-array task per shard, then a merge
# job that starts when every task has succeeded (docs/sweeps.md, "Shards").
#
#   scripts/slurm_sweep.sh SPEC OUT SHARDS [sbatch options...]
#
# run on the login node, from the repository, submits
#   1. an array of SHARDS tasks (this script, SLURM_ARRAY_TASK_ID = 0..SHARDS-1),
#      each running
#        accsim sweep SPEC --out OUT/shard-I --shard I/SHARDS --resume -j CPUS -q
#   2. a merge job, --dependency=afterok on the array:
#        accsim merge OUT/shard-* --out OUT
# and prints both job ids. OUT must be on a file system the compute nodes
# share (the merge job reads every shard's directory). The #SBATCH lines
# above are defaults; options given after SHARDS (e.g. --partition=short
# --time=08:00:00) are passed to both sbatch calls and override them.
# A task that fails or is preempted can be resubmitted alone
# (sbatch --array=I scripts/slurm_sweep.sh SPEC OUT SHARDS): `--resume`
# keeps its finished points; then submit the merge again
# (ACCSIM_SLURM_ROLE=merge, see below).
#
# Environment: ACCSIM, the accsim binary (default: target/release/accsim of
# the submitting checkout; build it first with `cargo build --release`).
set -euo pipefail

usage() {
    echo "usage: scripts/slurm_sweep.sh SPEC OUT SHARDS [sbatch options...]" >&2
    exit 2
}
[ $# -ge 3 ] || usage
spec=$1
out=$2
shards=$3
shift 3
if ! [[ "$shards" =~ ^[1-9][0-9]*$ ]]; then
    echo "scripts/slurm_sweep.sh: SHARDS '$shards' is not a positive integer" >&2
    exit 2
fi
accsim=${ACCSIM:-$PWD/target/release/accsim}

case ${ACCSIM_SLURM_ROLE:-submit} in
    shard)
        # One array task: this task's shard, with the CPUs Slurm gave it.
        exec "$accsim" sweep "$spec" --out "$out/shard-${SLURM_ARRAY_TASK_ID}" \
            --shard "${SLURM_ARRAY_TASK_ID}/${shards}" --resume \
            -j "${SLURM_CPUS_PER_TASK:-1}" -q
        ;;
    merge)
        exec "$accsim" merge "$out"/shard-* --out "$out" -q
        ;;
    submit)
        if [ ! -x "$accsim" ]; then
            echo "scripts/slurm_sweep.sh: no accsim binary at $accsim (cargo build --release, or set ACCSIM)" >&2
            exit 2
        fi
        mkdir -p "$out"
        # sbatch runs a copy of this script, so every path is made absolute
        # and the role travels in the environment.
        script=$(realpath "$0")
        spec=$(realpath "$spec")
        out=$(realpath "$out")
        array_job=$(ACCSIM="$accsim" ACCSIM_SLURM_ROLE=shard sbatch --parsable \
            --export=ALL --array="0-$((shards - 1))" --output="$out/slurm-%A_%a.out" \
            "$@" "$script" "$spec" "$out" "$shards")
        array_job=${array_job%%;*}
        merge_job=$(ACCSIM="$accsim" ACCSIM_SLURM_ROLE=merge sbatch --parsable \
            --export=ALL --dependency="afterok:${array_job}" --cpus-per-task=1 \
            --output="$out/slurm-%j-merge.out" \
            "$@" "$script" "$spec" "$out" "$shards")
        echo "submitted shards as job array ${array_job} and the merge as job ${merge_job%%;*}"
        echo "results: $out/results.csv once job ${merge_job%%;*} has finished"
        ;;
    *)
        echo "scripts/slurm_sweep.sh: ACCSIM_SLURM_ROLE '${ACCSIM_SLURM_ROLE}' is not one of submit, shard, merge" >&2
        exit 2
        ;;
esac
