#!/usr/bin/env bash
# Multi-process evaluation with torchrun: tools/dist_test.sh CONFIG CHECKPOINT NPROC [test.py args]
# (NPROC per node; GPUs with NCCL, on a machine without GPUs CPU processes with gloo).
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT; interpreter: PYTHON
# (see tools/dist_run.sh).
set -euo pipefail
exec bash "$(dirname "$0")/dist_run.sh" "$3" test.py "$1" "$2" "${@:4}"
