# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Each bootstraps .venv (Python >= 3.10) on first use and whenever the requirements change.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck unit bench bench-quick clean system-packages

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

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) system-packages
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m benchmarks.overhead

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks.overhead --quick

clean:
	rm -rf $(VENV) .demo .bench .pytest_cache .mypy_cache .ruff_cache
