# carbonledger: every target does its own set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: demo test test-fast lint typecheck pytest install install-dev postgres chromium bench clean reliability

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e '.[demo]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e '.[dev,torch]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(VENV)/bin/carbonledger demo

# Start the local PostgreSQL if it is down (CI machines have it installed, not always running).
postgres:
	@if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then \
	  echo "starting PostgreSQL"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; \
	  for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; \
	fi

# The browser test drives Debian's chromium through Playwright (never a downloaded browser).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "installing Debian's chromium for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

lint: install-dev
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

typecheck: install-dev
	$(VENV)/bin/mypy

# The suite runs on every core (pytest-xdist; PYTEST_WORKERS=0 runs it in one process). A test
# file stays on one worker (--dist loadfile), so a module-scoped fixture (the demo, the big
# MLflow stores, the deploy roles) is built once. (--dist loadgroup would be finer, but on
# pytest 9.2 it silently stops grouping: pytest-xdist issue 1386.)
PYTEST_WORKERS ?= auto
XDIST := $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile)

pytest: install-dev postgres chromium
	CARBONLEDGER_TEST_DATABASE_URL=$${CARBONLEDGER_TEST_DATABASE_URL:-$(PG_URL)} \
	  $(VENV)/bin/pytest -q $(XDIST) --durations=30 $(PYTEST_ARGS)

test: lint typecheck pytest

# The inner loop: the suite without the browser, server-restart and load cases (markers
# browser, restart, load), and without lint and mypy.
test-fast: install-dev postgres
	CARBONLEDGER_TEST_DATABASE_URL=$${CARBONLEDGER_TEST_DATABASE_URL:-$(PG_URL)} \
	  $(VENV)/bin/pytest -q $(XDIST) -m "not browser and not restart and not load" $(PYTEST_ARGS)

# Fault injection, hostile input and access tests (also part of `make test`).
reliability: install-dev postgres
	CARBONLEDGER_TEST_DATABASE_URL=$${CARBONLEDGER_TEST_DATABASE_URL:-$(PG_URL)} \
	  $(VENV)/bin/pytest -q $(XDIST) tests/reliability $(PYTEST_ARGS)

bench: install-dev
	$(PY) bench/overhead.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
