# stockflow: every set-up step lives here, so a fresh clone needs only `make run` or `make test`.
SHELL := /bin/bash
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export TF_ENABLE_ONEDNN_OPTS := 0
export UV_PYTHON := 3.11
# Python caches compiled modules (.pyc) in the venv: with PYTHONDONTWRITEBYTECODE set (as on some CI
# machines) every process recompiled Prefect, pandas & co. at import (Prefect's server: 13 s instead of 7).
unexport PYTHONDONTWRITEBYTECODE
# Prefect's state for `make run` stays inside the project, not in ~/.prefect.
export PREFECT_HOME ?= $(CURDIR)/.prefect

# uv from PATH when present; otherwise pip installs it and it runs as `python3 -m uv`.
UV_BIN := $(shell command -v uv 2>/dev/null)
ifeq ($(UV_BIN),)
UV := python3 -m uv
else
UV := $(UV_BIN)
endif
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: uv-installed setup run test lint typecheck pytest bench up browser-deps clean help

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

uv-installed:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv

$(VENV)/.synced: pyproject.toml uv.lock | uv-installed
	$(UV) sync --frozen --group dev
	@touch $@

setup: $(VENV)/.synced  ## install the locked environment into .venv

run: setup  ## set up, then run the daily pipeline once on embedded defaults (sample data, SQLite, paper broker)
	$(VENV)/bin/stockflow run --mode auto

lint: setup  ## ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup  ## mypy
	$(VENV)/bin/mypy stockflow flows tasks models deployments expectations bench

browser-deps:  ## Debian's chromium for the end-to-end UI test (skipped when absent)
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium could not be installed: the browser test will skip"; \
	  else echo "chromium missing and cannot apt-get here: the browser test will skip"; fi; }

# The suite runs in PYTEST_WORKERS processes (pytest-xdist), one test module per process at a time (module
# fixtures such as a served `stockflow up` stay whole); most of its time is spent waiting on servers and
# subprocesses (3 processes on 2 cores were slower than 2). The slowest modules start first (tests/conftest.py).
# `PYTEST_WORKERS=0 make pytest` runs it in one process.
PYTEST_WORKERS ?= 2
pytest: setup
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

test: setup browser-deps lint typecheck pytest  ## set up, then ruff, mypy and the whole test suite

bench: setup  ## benchmarks at scale on ../shared/data (prints figures, writes .bench/*.json)
	$(UV) sync --frozen --group dev --group bench
	$(PY) -m bench

up: setup  ## start the local operation: Prefect server + UI, deployments, worker, reports server
	$(VENV)/bin/stockflow up

clean:  ## remove the venv and local state
	rm -rf $(VENV) .prefect data reports .bench
