# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Each bootstraps .venv (Python >= 3.10) on first use and whenever the requirements change.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo demo-http test lint typecheck unit bench bench-quick clean system-packages test-airflow31

$(STAMP): pyproject.toml requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt -e .
	touch $(STAMP)

# Debian packages for the real servers the tests and the demo start (OpenSSH's sshd).
system-packages:
	@bash .ci/install-system-packages

demo: $(STAMP) system-packages
	$(BIN)/python -m examples.demo

# The REST API job: a paginated HTTPS API (the local test server) into the warehouse.
demo-http: $(STAMP)
	$(BIN)/python -m examples.demo_http

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples devtools
	$(BIN)/ruff format --check src tests benchmarks examples devtools

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) system-packages
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck unit

# The same suite on the oldest supported Airflow, in its own virtualenv (CI runs both).
VENV31 := .venv-airflow31
STAMP31 := $(VENV31)/.installed

$(STAMP31): pyproject.toml requirements/airflow31.txt
	$(PYTHON) -m venv $(VENV31)
	$(VENV31)/bin/python -m pip install --quiet --upgrade pip
	$(VENV31)/bin/python -m pip install --quiet -r requirements/airflow31.txt -e .
	touch $(STAMP31)

test-airflow31: $(STAMP31) system-packages
	$(VENV31)/bin/python -m pytest $(PYTEST_ARGS)

# Per-item overhead, the metadata-DB load, the proposal's SFTP table against a real sshd, the same
# job chunked over Celery workers, the Items tab's endpoints, then the HTTP table against PostgreSQL
# (Redis, sshd, PostgreSQL: hence system-packages).
bench: $(STAMP) system-packages
	$(BIN)/python -m benchmarks

bench-quick: $(STAMP) system-packages
	$(BIN)/python -m benchmarks --quick

clean:
	rm -rf $(VENV) $(VENV31) .demo .bench .pytest_cache .mypy_cache .ruff_cache
