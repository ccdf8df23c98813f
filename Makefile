# Liftoff's one task runner. Every target bootstraps .venv itself; the install
# re-runs only when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help run test lint fmt bench bench-scale

help: ## show this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Liftoff needs Python 3.11+; set PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP) ## start a local Temporal, the worker and a demo cohort (Ctrl-C stops all)
	$(BIN)/python scripts/run_local.py

test: $(STAMP) ## run the whole test suite, offline
	$(BIN)/pytest -q

lint: $(STAMP) ## ruff lint, ruff format check, mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP) ## format and autofix with ruff
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP) ## journeys vs bare Temporal (DATABASE=postgresql for their database); emails; usage intake; lists; `liftoff simulate` 200 x 26 weeks
	$(BIN)/python bench/bench.py $(if $(BY_REFERENCE),--playbooks-by-reference) $(if $(DATABASE),--database $(DATABASE))
	$(BIN)/python bench/simulate_bench.py --customers 200 --weeks 26
	$(BIN)/python bench/journey_events_bench.py

bench-scale: $(STAMP) ## CUSTOMERS (default 2000, CACHE bounds the cache) on one worker vs bare Temporal; TICK (default 1000) due at once
	$(BIN)/python bench/scale_bench.py --customers $(or $(CUSTOMERS),2000) $(if $(CACHE),--cache $(CACHE)) $(if $(TICK),--tick $(TICK)) $(if $(COMPRESS),--compress) $(if $(BY_REFERENCE),--playbooks-by-reference)
