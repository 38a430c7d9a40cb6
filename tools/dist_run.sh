#!/usr/bin/env bash
# Run a kdbench tool under torchrun: tools/dist_run.sh NPROC TOOL.py [tool args]
# (used by dist_train.sh and dist_test.sh). From the environment, as mmengine projects:
#   NNODES (default 1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), MASTER_PORT (or PORT; 29500)
# for multi-node runs: start the same command on every node with its own NODE_RANK.
# Interpreter: $PYTHON, else the repository's .venv/bin/python when present, else `python`.
set -euo pipefail
NPROC=$1
TOOL=$2
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/interpreter.sh"
exec "$PYTHON" -m torch.distributed.run --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${MASTER_PORT:-${PORT:-29500}}" \
    --nproc_per_node="$NPROC" "$HERE/$TOOL" "${@:3}" --launcher pytorch
