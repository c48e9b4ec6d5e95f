# seqscale: `make demo` and `make test` are the two commands of a fresh machine.
# Every target installs what it needs into .venv first (nothing is cached by hand).

PYTHON ?= python3
comma  := ,
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
WORKERS ?= 2
DATA    ?= demo-out/data
JOB_DIR ?= runs/local
RUN     ?=
ARGS    ?=
OVERLAY ?= cpu-small
IMAGE   ?=
K8S_NAMESPACE ?= $(shell sed -n 's/^namespace: *//p' k8s/overlays/$(OVERLAY)/kustomization.yaml)
# Dataflow: INPUT/OUTPUT, when given, override the spec file's input/output
PROJECT ?=
REGION  ?= us-central1
BUCKET  ?=
INPUT   ?=
OUTPUT  ?=
SPEC    ?=
# Images: make images REGISTRY=europe-docker.pkg.dev/p/repo
REGISTRY ?=
TAG      ?= 0.1.0
BEAM_WORKER_IMAGE ?=
TEMPLATE = gs://$(BUCKET)/templates/seqscale-preprocess-$(TAG).json
include docker/base-images.env

.PHONY: install lint test test-fast demo bench soak train-local clean audit docs \
	k8s-render k8s-apply k8s-logs k8s-delete preprocess-dataflow \
	images trainer-image beam-image predict-image predict-dataflow flex-image pin-images flex-template flex-run

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
	$(BIN)/python -m benchmarks.bench_scale
	$(BIN)/python -m benchmarks.bench_predict
	$(BIN)/python -m benchmarks.bench_training
	$(BIN)/python -m benchmarks.bench_doctor
	$(BIN)/python -m benchmarks.bench_accuracy --seeds 3

# Kubernetes (kustomize + k8s/render.py): one run per RUN (default: a UTC timestamp)
#   make k8s-apply OVERLAY=gpu IMAGE=registry/seqscale-trainer:0.1.0-gpu DATA=gs://b/d JOB_DIR=gs://b/runs
# optional: RUN=name GCP_SA=sa@project.iam.gserviceaccount.com QUEUE=kueue-queue PRIORITY_CLASS=...
#           DEADLINE=seconds JOBSET=1 EXCLUSIVE_TOPOLOGY=cloud.google.com/gke-nodepool
RENDER = $(BIN)/python k8s/render.py --overlay $(OVERLAY) --image "$(IMAGE)" --data "$(DATA)" \
	--job-dir "$(JOB_DIR)" $(if $(RUN),--run $(RUN)) $(if $(GCP_SA),--gcp-service-account $(GCP_SA)) \
	$(if $(QUEUE),--queue $(QUEUE)) $(if $(PRIORITY_CLASS),--priority-class $(PRIORITY_CLASS)) \
	$(if $(DEADLINE),--deadline $(DEADLINE)) $(if $(JOBSET),--jobset) \
	$(if $(EXCLUSIVE_TOPOLOGY),--exclusive-topology $(EXCLUSIVE_TOPOLOGY))

k8s-render: $(STAMP)
	@$(RENDER)

k8s-apply: $(STAMP)
	@tmp=$$(mktemp) && $(RENDER) > $$tmp && kubectl apply -f $$tmp; rc=$$?; rm -f $$tmp; exit $$rc

# Logs of every worker of a run, prefixed with the pod name (rank = the number before the last '-').
k8s-logs:
	@test -n "$(RUN)" || { echo "set RUN=... (printed by k8s-apply)"; exit 2; }
	kubectl logs -n $(K8S_NAMESPACE) -l seqscale.dev/run=$(RUN) --prefix --all-containers -f --max-log-requests 64

# Removes the run's Job/JobSet and ConfigMaps; the namespace, Service and job dir stay.
k8s-delete: $(STAMP)
	@test -n "$(RUN)" || { echo "set RUN=... (printed by k8s-apply)"; exit 2; }
	@tmp=$$(mktemp) && $(RENDER) --part run > $$tmp && kubectl delete --ignore-not-found -f $$tmp; rc=$$?; rm -f $$tmp; exit $$rc

# The Beam job on Dataflow from this machine:
#   make preprocess-dataflow PROJECT=p BUCKET=b SPEC=spec.yaml [INPUT=gs://... OUTPUT=gs://...]
# Workers get the code from --setup_file (each VM installs the sdist at start-up), or, with
# BEAM_WORKER_IMAGE=REGISTRY/seqscale-beam:TAG (make beam-image), from the prebuilt container.
preprocess-dataflow: $(STAMP)
	@test -n "$(PROJECT)" -a -n "$(BUCKET)" || { echo "set PROJECT=... and BUCKET=..."; exit 2; }
	@test -n "$(SPEC)" -o \( -n "$(INPUT)" -a -n "$(OUTPUT)" \) || { echo "set SPEC=spec.yaml, or INPUT=gs://... and OUTPUT=gs://..."; exit 2; }
	$(BIN)/python -m preprocessing $(if $(SPEC),--spec $(SPEC)) $(if $(INPUT),--input '$(INPUT)') $(if $(OUTPUT),--output $(OUTPUT)) \
	  --runner DataflowRunner --project $(PROJECT) --region $(REGION) \
	  --temp_location gs://$(BUCKET)/tmp --staging_location gs://$(BUCKET)/staging \
	  $(if $(BEAM_WORKER_IMAGE),--sdk_container_image $(BEAM_WORKER_IMAGE),--setup_file ./setup.py) $(ARGS)

# seqscale-predict on Dataflow. Its workers load the export with TensorFlow, which --setup_file
# would not install (it installs the package without extras): they run the predict-worker image.
#   make predict-dataflow PROJECT=p BUCKET=b PREDICT_WORKER_IMAGE=REGISTRY/seqscale-predict:TAG \
#        EXPORT=gs://b/runs/exp1/export INPUT='gs://b/latest/*.parquet' OUTPUT=gs://b/forecasts [ARGS='--split test']
predict-dataflow: $(STAMP)
	@test -n "$(PROJECT)" -a -n "$(BUCKET)" -a -n "$(EXPORT)" -a -n "$(INPUT)" -a -n "$(OUTPUT)" || { echo "set PROJECT, BUCKET, EXPORT, INPUT and OUTPUT"; exit 2; }
	@test -n "$(PREDICT_WORKER_IMAGE)" || { echo "set PREDICT_WORKER_IMAGE=REGISTRY/seqscale-predict:$(TAG) (make predict-image): workers need TensorFlow"; exit 2; }
	$(BIN)/python -m prediction --export $(EXPORT) --input '$(INPUT)' --output $(OUTPUT) \
	  --runner DataflowRunner --project $(PROJECT) --region $(REGION) \
	  --temp_location gs://$(BUCKET)/tmp --staging_location gs://$(BUCKET)/staging \
	  --sdk_container_image $(PREDICT_WORKER_IMAGE) $(ARGS)

# Images (need a Docker engine; base images from docker/base-images.env). Push them yourself.
images: trainer-image beam-image predict-image

trainer-image:
	@test -n "$(REGISTRY)" || { echo "set REGISTRY=... (e.g. europe-docker.pkg.dev/PROJECT/REPO)"; exit 2; }
	docker build -f docker/trainer.Dockerfile --build-arg BASE_IMAGE=$(TRAINER_BASE) -t $(REGISTRY)/seqscale-trainer:$(TAG)-gpu .

beam-image:
	@test -n "$(REGISTRY)" || { echo "set REGISTRY=..."; exit 2; }
	docker build -f docker/beam.Dockerfile --target worker --build-arg BEAM_IMAGE=$(BEAM_IMAGE) -t $(REGISTRY)/seqscale-beam:$(TAG) .

predict-image:
	@test -n "$(REGISTRY)" || { echo "set REGISTRY=..."; exit 2; }
	docker build -f docker/beam.Dockerfile --target predict-worker --build-arg BEAM_IMAGE=$(BEAM_IMAGE) -t $(REGISTRY)/seqscale-predict:$(TAG) .

flex-image:
	@test -n "$(REGISTRY)" || { echo "set REGISTRY=..."; exit 2; }
	@case "$(LAUNCHER_IMAGE)" in *@sha256:*) ;; *) echo "LAUNCHER_IMAGE in docker/base-images.env has no digest: run make pin-images"; exit 2;; esac
	docker build -f docker/beam.Dockerfile --target flex --build-arg BEAM_IMAGE=$(BEAM_IMAGE) \
	  --build-arg LAUNCHER_IMAGE=$(LAUNCHER_IMAGE) -t $(REGISTRY)/seqscale-flex:$(TAG) .

pin-images:
	scripts/pin_images.sh

# Dataflow Flex Template: build the template file once, then launch it without a local Beam.
#   make flex-template REGISTRY=... BUCKET=b   (after make flex-image and docker push)
#   make flex-run REGISTRY=... PROJECT=p BUCKET=b SPEC=gs://b/specs/household.yaml
flex-template:
	@test -n "$(REGISTRY)" -a -n "$(BUCKET)" || { echo "set REGISTRY=... and BUCKET=..."; exit 2; }
	gcloud dataflow flex-template build $(TEMPLATE) --image $(REGISTRY)/seqscale-flex:$(TAG) \
	  --sdk-language PYTHON --metadata-file dataflow/metadata.json

flex-run:
	@test -n "$(PROJECT)" -a -n "$(BUCKET)" -a -n "$(SPEC)" || { echo "set PROJECT=... BUCKET=... SPEC=gs://..."; exit 2; }
	gcloud dataflow flex-template run seqscale-preprocess-$$(date -u +%Y%m%d-%H%M%S) --project $(PROJECT) \
	  --region $(REGION) --template-file-gcs-location $(TEMPLATE) --temp-location gs://$(BUCKET)/tmp \
	  --staging-location gs://$(BUCKET)/staging \
	  --parameters spec=$(SPEC),sdk_container_image=$(REGISTRY)/seqscale-flex:$(TAG)$(if $(PARAMS),$(comma)$(PARAMS))

# Known vulnerabilities in the installed dependencies (needs PyPI's JSON API or OSV).
audit: $(STAMP)
	$(BIN)/python -m pip install --quiet pip-audit
	$(BIN)/pip-audit --skip-editable --progress-spinner off

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache demo-out runs
