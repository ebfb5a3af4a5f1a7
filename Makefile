# dealcast — two commands: `make demo` (the main job on synthetic data) and `make test`.
# Both create .venv from the lock file on first use and are fast once it exists.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
UV_VERSION := 0.13.8

# Offline, quiet tools whose state stays in this folder (also for dvc/prefect/mlflow run by hand
# through make). The CLI sets the same defaults itself.
export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW := ignore
export MLFLOW_DISABLE_TELEMETRY := true
export MLFLOW_LOGGING_LEVEL := WARNING
export DVC_NO_ANALYTICS := 1
export DO_NOT_TRACK := 1
export UV_COMPILE_BYTECODE := 1
# dvc stages call `dealcast`: put the venv first on PATH for everything make runs.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: demo test lint format bench lock repro clean install mlflow-ui prefect-ui

demo: $(STAMP)
	$(BIN)/dealcast demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
	  { echo "dealcast needs Python 3.11 or newer; run e.g. 'make PYTHON=python3.12 demo'"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing dealcast and its locked dependencies into $(VENV) (first run only)"
	@if $(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION); then \
	  $(BIN)/uv pip install --python $(BIN)/python --quiet -r requirements.lock && \
	  $(BIN)/uv pip install --python $(BIN)/python --quiet --no-deps -e . ; \
	else \
	  $(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock && \
	  $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e . ; \
	fi
	@touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_generate.py
	$(BIN)/python benchmarks/bench_features.py

repro: $(STAMP)
	$(BIN)/dvc repro

# The UIs, on 127.0.0.1, over this project's MLflow database and Prefect home.
mlflow-ui: $(STAMP)
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow ui \
	  --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port 5000 --workers 1

prefect-ui: $(STAMP)
	PREFECT_UI_ENABLED=true $(BIN)/prefect server start --host 127.0.0.1 --port 4200

# Re-resolve the lock file after changing dependencies in pyproject.toml.
lock:
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
	  -o requirements.lock --quiet

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
