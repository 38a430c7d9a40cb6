# Two commands do all the set-up: `make demo` and `make test` (both run `make install`).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export NO_ALBUMENTATIONS_UPDATE := 1

.PHONY: install demo test test-all lint clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt setup.cfg
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

demo: install
	$(PY) tools/benchmark.py configs/suites/demo.py --work-dir work_dirs/demo
	$(PY) tools/explain.py configs/demo/kd_resnet20_resnet8_digits.py \
	    work_dirs/demo/demo_cls/kd_resnet20_resnet8_digits/seed_0/epoch_30.pth \
	    --base configs/demo/resnet8_digits.py \
	    work_dirs/demo/demo_cls/resnet8_digits/seed_0/epoch_30.pth --out work_dirs/explain_demo

test: install
	$(PY) -m pytest -m "not slow" -q

test-all: install
	$(PY) -m pytest -q

lint: install
	$(PY) -m flake8 kdbench tasks tools tests

clean:
	rm -rf $(VENV) work_dirs .pytest_cache
