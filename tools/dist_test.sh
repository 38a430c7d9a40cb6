#!/usr/bin/env bash
# Multi-process evaluation with torchrun: tools/dist_test.sh CONFIG CHECKPOINT NPROC [test.py args]
# (GPUs with NCCL; on a machine without GPUs the processes run on the CPU with gloo.)
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
PORT=${PORT:-29500}
python -m torch.distributed.run --nproc_per_node="$NPROC" --master_port="$PORT" \
    "$(dirname "$0")/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
