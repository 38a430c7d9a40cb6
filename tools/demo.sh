#!/usr/bin/env bash
# `make demo`: the two demo suites side by side, one core and one torch thread each
# (configs/suites/demo_cls.py and demo_seg.py, students as cohorts), and the explanation of
# the KD student as soon as the classification suite is done (docs/demo.md).
# Interpreter: PYTHON (default .venv/bin/python); results under work_dirs/demo.
# Exit status 1 when either suite or the explanation failed.
set -uo pipefail
PY=${PYTHON:-.venv/bin/python}
W=work_dirs/demo
CLS=$W/demo_cls
export OMP_NUM_THREADS=1
"$PY" tools/benchmark.py configs/suites/demo_seg.py --work-dir "$W/demo_seg" --cohort &
seg=$!
"$PY" tools/benchmark.py configs/suites/demo_cls.py --work-dir "$CLS" --cohort &&
  "$PY" tools/explain.py configs/demo/kd_resnet20_resnet8_fewdigits.py \
    "$CLS/kd_resnet20_resnet8_fewdigits/seed_0/epoch_150.pth" \
    --base configs/demo/resnet8_fewdigits.py \
    "$CLS/resnet8_fewdigits/seed_0/epoch_150.pth" --out work_dirs/explain_demo
cls=$?
wait "$seg"
seg=$?
exit $(( cls != 0 || seg != 0 ))
