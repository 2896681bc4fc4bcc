# One setup path for people, tests and CI. `make` = set up and run the default pipeline.
VENV ?= .venv
PY := $(VENV)/bin/python
export CUDA_VISIBLE_DEVICES ?=

.PHONY: all setup repro test test-fast ci-regression clean-outputs

all: repro

setup:
	bash scripts/setup.sh

repro: setup
	. $(VENV)/bin/activate && dvc repro

test: setup
	$(PY) -m pytest -q tests

# the unit tests only (no training runs): seconds
test-fast: setup
	$(PY) -m pytest -q tests --deselect tests/test_overfit.py --deselect tests/test_pipeline.py

# CI's mAP regression check (NEU-DET teacher + SD-IDD student at CI scale, ~8 min on 2 cores)
ci-regression: setup
	$(PY) scripts/ci_regression.py --fresh $(CI_REGRESSION_ARGS)

clean-outputs:
	rm -rf data/prepared data/splits checkpoints models plots reports
