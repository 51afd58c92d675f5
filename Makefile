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

.PHONY: help install migrate seed run test test-tools browser-test fuzz lint format typecheck check clean

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

test-tools: ## install the outside programs the suite runs, if missing (LibreOffice, nginx from apt)
	bash tests/consumers/install-libreoffice.sh
	bash deploy/nginx/ensure-nginx.sh

FUZZ_EXAMPLES ?= 100
fuzz: install ## schemathesis on a live server: FUZZ_EXAMPLES per operation (default 100, CI 5), FUZZ_SEED
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest tests/fuzz -x

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
