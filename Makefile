# The two commands: `make run` starts the three services, `make test` runs the whole suite.
# Both create .venv on first use and reinstall when pyproject.toml or constraints.txt change.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: run demo test lint typecheck pytest bench schemas constraints clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e .
	@touch $@

$(VENV)/.dev-installed: $(VENV)/.run-installed
	$(PIP) -e '.[dev]'
	@touch $@

## run: start catalog (8001), ledger (8002) and notifier (8003) on loopback; Ctrl-C stops all
run: $(VENV)/.run-installed
	@echo "Every request but health checks and the guide needs a bearer token; development ones:"
	@echo "  $(BIN)/python -m services.token --role <role> --org <organization id>"
	@echo "  roles: finance, civil-affairs, street, community, provider, auditor, service"
	PATH="$(CURDIR)/$(BIN):$$PATH" PYTHONUNBUFFERED=1 $(BIN)/honcho -f Procfile start

## demo: start the services, load Wuhou's 2014 and Haiyu's story through their APIs, show it
demo: $(VENV)/.run-installed
	PYTHONUNBUFFERED=1 $(BIN)/python -m demo

## test: lint, type-check and run every test (unit, integration on SQLite and PostgreSQL, e2e)
test: lint typecheck pytest

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

pytest: $(VENV)/.dev-installed
	$(BIN)/pytest

## bench: benchmarks on PostgreSQL (:5432, or a throwaway one); prints them, writes BENCHMARKS.md
bench: $(VENV)/.dev-installed
	PYTHONUNBUFFERED=1 $(BIN)/python -m bench

## schemas: regenerate proto/schema/ from the wire models in proto/
schemas: $(VENV)/.run-installed
	$(BIN)/python -m proto.generate

## constraints: re-pin every installed package (after changing pyproject.toml)
constraints: $(VENV)/.dev-installed
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
