# Two commands for a newcomer: `make run` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The first supported interpreter found: 3.11, 3.12 or 3.13 (PYTHON=... chooses another).
PYTHON ?= $(shell for p in python3.11 python3.12 python3.13 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' 2>/dev/null \
	&& { command -v $$p; break; }; done)
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: help install migrate seed run test test-tools openapi-linters browser-test fuzz lint format typecheck check clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# Re-installs whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11, 3.12 or 3.13 is required; set PYTHON=/path/to/python3.x"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 13) else "Python 3.11 to 3.13 is required, not " + sys.version.split()[0] + "; set PYTHON=/path/to/python3.x")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its dev tools

migrate: install ## apply database migrations (DATABASE_URL, default var/timeline.db)
	mkdir -p var
	$(BIN)/alembic upgrade head

seed: migrate ## load seed/ into the database (idempotent)
	$(BIN)/python -m app.seed

run: seed ## install, migrate, seed and serve on HOST:PORT (default 127.0.0.1:8000)
	$(BIN)/uvicorn app.main:app --host $(HOST) --port $(PORT) --no-access-log

test: install test-tools ## run the whole suite (SQLite; DATABASE_URL=postgresql://... for PostgreSQL)
	$(BIN)/pytest

test-tools: openapi-linters ## install the outside programs the suite runs, if missing (LibreOffice, nginx, the OpenAPI linters)
	bash tests/consumers/install-libreoffice.sh
	bash deploy/nginx/ensure-nginx.sh

# Redocly and Spectral for tests/consumers/test_openapi_consumers.py, pinned by their lock file;
# re-installed whenever it changes.
LINTERS := tests/consumers/openapi
$(LINTERS)/node_modules/.installed: $(LINTERS)/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: install Node.js 20.19 or later"; exit 1; }
	cd $(LINTERS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

openapi-linters: $(LINTERS)/node_modules/.installed ## install the OpenAPI linters (npm ci)

FUZZ_SECONDS ?= 600
FUZZ_EXAMPLES ?= 100
FUZZ_SEED ?= 20250401
fuzz: install ## schemathesis on a live server for FUZZ_SECONDS (default 600, CI 90) with FUZZ_SEED
	@mkdir -p var && rm -f var/fuzz-summary.txt
	FUZZ_MAX_TIME=$(FUZZ_SECONDS) FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_SEED=$(FUZZ_SEED) \
	  FUZZ_SUMMARY=var/fuzz-summary.txt $(BIN)/pytest tests/fuzz -x; \
	  status=$$?; cat var/fuzz-summary.txt 2>/dev/null; exit $$status

browser-test: install ## the timeline page in headless Chromium (installs Chromium and playwright-core if missing)
	bash tests/browser/run.sh

lint: install ## ruff lint and format check, and the import layers of app/ (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install ## apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install ## mypy --strict on app/
	$(BIN)/mypy

check: lint typecheck test ## everything CI runs on SQLite

clean: ## remove the virtualenv, the local database and caches
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
