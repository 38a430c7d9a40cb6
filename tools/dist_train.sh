#!/usr/bin/env bash
# Multi-process training with torchrun: tools/dist_train.sh CONFIG NPROC [train.py args]
# (NPROC per node; GPUs with NCCL, on a machine without GPUs CPU processes with gloo).
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT; interpreter: PYTHON
# (see tools/dist_run.sh).
set -euo pipefail
exec bash "$(dirname "$0")/dist_run.sh" "$2" train.py "$1" "${@:3}"
