#!/usr/bin/env bash
# Multi-GPU training with torchrun: tools/dist_train.sh CONFIG NGPUS [train.py args]
set -euo pipefail
CONFIG=$1
NGPUS=$2
PORT=${PORT:-29500}
python -m torch.distributed.run --nproc_per_node="$NGPUS" --master_port="$PORT" \
    "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "${@:3}"
