# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Real data root; override with `make test RLSCHED_DATA_DIR=/path`. Empty = download into the cache folder.
# A relative path is taken from this folder and made absolute, so jobs that start elsewhere still find it.
RLSCHED_DATA_DIR ?=
ifneq ($(strip $(RLSCHED_DATA_DIR)),)
override RLSCHED_DATA_DIR := $(abspath $(RLSCHED_DATA_DIR))
endif
export RLSCHED_DATA_DIR

.PHONY: venv demo test test-slow lint bench tune sync-wandb clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) experiments/train.py experiment=demo out_dir=results/demo/train
	$(PY) experiments/transfer.py experiment=demo_transfer artifact=results/demo/train/controller out_dir=results/demo/transfer

test: $(STAMP)
	$(PY) -m pytest -m "not slow" -q

test-slow: $(STAMP)
	$(PY) -m pytest -m slow -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Tune every baseline on a task with Optuna, the same number of trials each, e.g.
# `make tune TUNE_ARGS="env=demo model=mlp n_trials=24"`; studies -> results/tuning/<task>/study.log (Optuna's
# journal: a re-run resumes it) and trials.csv, winners -> conf/tuned/<task>.yaml.
BASELINES := constant step_decay exponential cosine plateau one_cycle warmup_cosine
empty :=
space := $(empty) $(empty)
comma := ,
tune: $(STAMP)
	$(PY) experiments/tune.py "baselines=[$(subst $(space),$(comma),$(strip $(BASELINES)))]" $(TUNE_ARGS)

# Upload every offline W&B run under DIRS (training, benchmark and sweep runs alike), e.g.
# `make sync-wandb DIRS="outputs multirun results"`.
DIRS ?= outputs
sync-wandb: $(STAMP)
	$(PY) scripts/sync_wandb.py $(DIRS)

bench: $(STAMP)
	$(PY) scripts/bench_env.py

clean:
	rm -rf outputs multirun
