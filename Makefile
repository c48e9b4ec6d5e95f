# seqscale: `make demo` and `make test` are the two commands of a fresh machine.
# Every target installs what it needs into .venv first (nothing is cached by hand).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
WORKERS ?= 2
DATA    ?= demo-out/data
JOB_DIR ?= runs/local
ARGS    ?=

.PHONY: install lint test test-fast demo bench train-local clean

$(STAMP): setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

# All tests, slow multi-process ones included (each bounded by a timeout).
test: lint
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

demo: $(STAMP)
	$(BIN)/python -m demo

# N trainer processes on 127.0.0.1 (the real MultiWorkerMirroredStrategy path), logs prefixed [wI].
train-local: $(STAMP)
	$(BIN)/python -m training.launch --workers $(WORKERS) -- --data $(DATA) --job-dir $(JOB_DIR) $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_encoding
	$(BIN)/python -m benchmarks.bench_preprocess
	$(BIN)/python -m benchmarks.bench_training

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache demo-out runs
