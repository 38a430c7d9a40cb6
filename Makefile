# Two commands do all the set-up: `make demo` and `make test` (both run `make install`).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export NO_ALBUMENTATIONS_UPDATE := 1

.PHONY: install demo test test-all lint clean bench gpu-check

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt setup.cfg
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

# The students of each seed (the recipes' runs and the grids' trials) train as one cohort
# (docs/cohorts.md); the two suites train side by side, one core each (tools/demo.sh).
demo: install
	PYTHON=$(PY) bash tools/demo.sh

test: install
	$(PY) -m pytest -m "not slow" -q

test-all: install
	$(PY) -m pytest -q

bench: install
	$(PY) tools/bench_distill.py --out work_dirs/bench/distill.json
	$(PY) tools/bench_loader.py configs/cls/kd_resnet32x4_resnet8x4_cifar100.py \
	    --synthetic-cifar 10000 --batches 100 --out work_dirs/bench/loader_cifar.json
	$(PY) tools/bench_loader.py configs/seg/kd_deeplabv3p_r101_r18_voc.py \
	    --synthetic-voc 128 --batches 8 --out work_dirs/bench/loader_voc.json

# Every CUDA path in one check (docs/gpu.md); no `install` step: GPU machines keep their own
# torch. Without a GPU: `make gpu-check SMOKE=1` (tiny shapes on CPU).
CHECK_PY ?= $(if $(shell test -x $(PY) && echo y),$(PY),python3)
gpu-check:
	PYTHONPATH=$(CURDIR) $(CHECK_PY) tools/gpu_check.py --out work_dirs/gpu_check $(if $(SMOKE),--smoke)

lint: install
	$(PY) -m flake8 kdbench tasks tools tests

clean:
	rm -rf $(VENV) work_dirs .pytest_cache
