#!/usr/bin/env bash
# Slurm evaluation: tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args]
# (GPUS, GPUS_PER_NODE, CPUS_PER_TASK, SRUN_ARGS: see tools/slurm_run.sh)
set -euo pipefail
exec bash "$(dirname "$0")/slurm_run.sh" "$1" "$2" test.py "$3" "$4" "${@:5}"
