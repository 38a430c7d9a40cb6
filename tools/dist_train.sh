#!/usr/bin/env bash
# Multi-process training with torchrun: tools/dist_train.sh CONFIG NPROC [train.py args]
# (GPUs with NCCL; on a machine without GPUs the processes run on the CPU with gloo.)
set -euo pipefail
CONFIG=$1
NPROC=$2
PORT=${PORT:-29500}
python -m torch.distributed.run --nproc_per_node="$NPROC" --master_port="$PORT" \
    "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "${@:3}"
