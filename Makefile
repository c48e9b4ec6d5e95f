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
OVERLAY ?= cpu-small
IMAGE   ?=
K8S_NAMESPACE ?= $(if $(filter gpu,$(OVERLAY)),seqscale,seqscale-dev)
# Dataflow
PROJECT ?=
REGION  ?= us-central1
BUCKET  ?=
INPUT   ?= gs://$(BUCKET)/raw/*.parquet
OUTPUT  ?= gs://$(BUCKET)/datasets/seqscale
SPEC    ?=

.PHONY: install lint test test-fast demo bench soak train-local clean audit docs \
	k8s-render k8s-apply k8s-logs k8s-delete preprocess-dataflow

$(STAMP): setup.py constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
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

# The job-dir concurrency soak at full length: 5 runs of 150 two-worker epochs (make test runs 1).
soak: $(STAMP)
	SEQSCALE_SOAK_RUNS=5 $(BIN)/python -m pytest -q tests/training/test_soak.py tests/training/test_jobdir.py

# docs/flags.md from the argument parsers (tests/test_docs.py fails when it is stale)
docs: $(STAMP)
	$(BIN)/python scripts/flag_reference.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_encoding
	$(BIN)/python -m benchmarks.bench_preprocess
	$(BIN)/python -m benchmarks.bench_training

# Kubernetes (kustomize): OVERLAY=gpu|cpu-small IMAGE=registry/name:tag DATA=gs://... JOB_DIR=gs://...
k8s-render:
	@k8s/render.sh $(OVERLAY) "$(IMAGE)" "$(DATA)" "$(JOB_DIR)"

k8s-apply:
	k8s/render.sh $(OVERLAY) "$(IMAGE)" "$(DATA)" "$(JOB_DIR)" | kubectl apply -f -

k8s-logs:
	kubectl logs -n $(K8S_NAMESPACE) -l app.kubernetes.io/name=seqscale-train --prefix --all-containers -f --max-log-requests 64

k8s-delete:
	k8s/render.sh $(OVERLAY) "$(IMAGE)" "$(DATA)" "$(JOB_DIR)" | kubectl delete --ignore-not-found -f -

# The Beam job on Dataflow: make preprocess-dataflow PROJECT=p REGION=r BUCKET=b SPEC=spec.yaml
preprocess-dataflow: $(STAMP)
	@test -n "$(PROJECT)" -a -n "$(BUCKET)" || { echo "set PROJECT=... and BUCKET=..."; exit 2; }
	$(BIN)/python -m preprocessing $(if $(SPEC),--spec $(SPEC)) --input '$(INPUT)' --output $(OUTPUT) \
	  --runner DataflowRunner --project $(PROJECT) --region $(REGION) \
	  --temp_location gs://$(BUCKET)/tmp --staging_location gs://$(BUCKET)/staging \
	  --setup_file ./setup.py $(ARGS)

# Known vulnerabilities in the installed dependencies (needs PyPI's JSON API or OSV).
audit: $(STAMP)
	$(BIN)/python -m pip install --quiet pip-audit
	$(BIN)/pip-audit --skip-editable --progress-spinner off

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache demo-out runs
