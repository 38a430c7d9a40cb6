#!/usr/bin/env bash
# Run a kdbench tool under srun: tools/slurm_run.sh PARTITION JOB_NAME TOOL.py [tool args]
# (used by slurm_train.sh and slurm_test.sh). GPUS (total, default 8), GPUS_PER_NODE
# (default 8), CPUS_PER_TASK (default 5) and SRUN_ARGS come from the environment. One task
# per GPU; mmengine reads the SLURM_* variables (--launcher slurm). Interpreter: $PYTHON,
# else the repository's .venv/bin/python when present, else `python` (tools/interpreter.sh).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/interpreter.sh"
PARTITION=$1
JOB_NAME=$2
TOOL=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
srun -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
    "$PYTHON" -u "$HERE/$TOOL" --launcher slurm "${@:4}"
