# The two commands of the quick start are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
APP_STAMP := $(VENV)/.app-installed
TEST_STAMP := $(VENV)/.test-installed
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: run worker client test conformance lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(APP_STAMP): requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

# The tests run every benchmark peer once, so the peers install here; arq without its
# dependencies, since it pins redis<6 and the application needs redis 6.
$(TEST_STAMP): requirements.txt requirements-test.txt bench/requirements-nodeps.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-test.txt
	$(BIN)/pip install -q --no-deps -r bench/requirements-nodeps.txt
	touch $(APP_STAMP) $@

$(BENCH_STAMP): requirements-bench.txt $(TEST_STAMP)
	$(BIN)/pip install -q -r requirements-bench.txt
	touch $@

## run: install, migrate and start serve (server, embedded worker, dashboard)
run: $(APP_STAMP)
	$(BIN)/python manage.py serve

## worker: run a separate worker against the same Redis
worker: $(APP_STAMP)
	$(BIN)/python manage.py runworker

## client: submit sample tasks to a running server and follow them
client: $(APP_STAMP)
	$(BIN)/python manage.py a2a_client

## test: install and run the whole suite (lint, types, unit, integration, faults, browser, tiny benchmarks)
test: $(TEST_STAMP)
	bash scripts/system-deps.sh
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## conformance: run the A2A conformance kit (TCK_DIR, default ../shared/a2a-tck) against a live serve
conformance: $(TEST_STAMP)
	$(BIN)/python scripts/conformance.py

## lint: ruff, then mypy (strict over queueapp/, dashboard/ and a2a_site/; [tool.mypy] in pyproject.toml)
lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

## bench: run every benchmark side by side with its peers and print the tables
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .venv-tck var test-output .mypy_cache
