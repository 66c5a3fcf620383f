# Sprintboard — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export SPRINTBOARD_ENV ?= development
# The suite runs in three processes: most tests wait on servers and browsers, so three
# keep two cores busy (a free worker takes over queued tests from a busy one).
# `make test PYTEST_PARALLEL=` runs it in one.
PYTEST_PARALLEL ?= -n 3 --dist worksteal

HTMX_VERSION := 2.0.11
HTMX_SSE_VERSION := 2.2.4
HTMX_WS_VERSION := 2.0.4
SORTABLE_VERSION := 1.15.7
AXE_VERSION := 4.14.1
VENDOR := app/static/vendor
# Browser code only the tests load (never served by the app).
TEST_VENDOR := tests/vendor

.DEFAULT_GOAL := help
.PHONY: help run serve test lint fmt typecheck migrate revision demo vendor chromium nginx bench bench-quick clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed

run: $(VENV)/.installed ## install, migrate, load demo data, serve on http://127.0.0.1:$${PORT:-8000}
	$(BIN)/sprintboard db upgrade
	$(BIN)/sprintboard demo --if-empty
	exec $(BIN)/sprintboard serve

migrate: $(VENV)/.installed ## upgrade the database in DATABASE_URL to the newest migration
	$(BIN)/sprintboard db upgrade

revision: $(VENV)/.installed-dev ## autogenerate a migration: make revision m="what changed"
	$(BIN)/alembic revision --autogenerate -m "$(m)"

demo: $(VENV)/.installed ## load the demo data (idempotent)
	$(BIN)/sprintboard demo

chromium: ## install Debian's Chromium for the browser tests when it is missing
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium with apt-get…"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The proxy test runs Debian's nginx with its own configuration; the package's own
# service is kept from starting (policy-rc.d says no while it installs).
nginx: ## install Debian's nginx for the proxy test when it is missing (its service not started)
	@command -v nginx >/dev/null 2>&1 || { \
	  echo "installing nginx with apt-get…"; \
	  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; \
	  status=$$?; rm -f /usr/sbin/policy-rc.d; exit $$status; }

test: $(VENV)/.installed-dev chromium nginx ## install test needs; run the whole suite on SQLite, then what uses the database on PostgreSQL
	SPRINTBOARD_ENV=test $(BIN)/pytest $(PYTEST_PARALLEL) --durations=10 $(PYTEST_ARGS)
	SPRINTBOARD_ENV=test SPRINTBOARD_TEST_DATABASE=postgresql $(BIN)/pytest $(PYTEST_PARALLEL) --durations=10 $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev ## ruff lint and format check, mypy, the import rules (import-linter)
	$(BIN)/ruff check app tests migrations bench
	$(BIN)/ruff format --check app tests migrations bench
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(VENV)/.installed-dev ## format and fix what ruff can
	$(BIN)/ruff format app tests migrations bench
	$(BIN)/ruff check --fix app tests migrations bench

vendor: ## fetch pinned htmx, its SSE and WebSocket extensions, SortableJS (and axe-core for the tests) from the npm registry
	rm -rf build/vendor && mkdir -p build/vendor $(VENDOR) $(TEST_VENDOR)
	cd build/vendor && npm pack --silent htmx.org@$(HTMX_VERSION) htmx-ext-sse@$(HTMX_SSE_VERSION) htmx-ext-ws@$(HTMX_WS_VERSION) sortablejs@$(SORTABLE_VERSION) axe-core@$(AXE_VERSION) >/dev/null
	cd build/vendor && mkdir htmx sse ws sortable axe && tar -xzf htmx.org-$(HTMX_VERSION).tgz -C htmx && tar -xzf htmx-ext-sse-$(HTMX_SSE_VERSION).tgz -C sse && tar -xzf htmx-ext-ws-$(HTMX_WS_VERSION).tgz -C ws && tar -xzf sortablejs-$(SORTABLE_VERSION).tgz -C sortable && tar -xzf axe-core-$(AXE_VERSION).tgz -C axe
	cp build/vendor/htmx/package/dist/htmx.min.js $(VENDOR)/htmx.min.js
	cp build/vendor/htmx/package/LICENSE $(VENDOR)/htmx.LICENSE
	cp build/vendor/sse/package/sse.js $(VENDOR)/sse.js
	cp build/vendor/sse/package/LICENSE $(VENDOR)/sse.LICENSE
	cp build/vendor/ws/package/ws.js $(VENDOR)/ws.js
	cp build/vendor/ws/package/LICENSE $(VENDOR)/ws.LICENSE
	cp build/vendor/sortable/package/Sortable.min.js $(VENDOR)/Sortable.min.js
	cp build/vendor/sortable/package/LICENSE $(VENDOR)/Sortable.LICENSE
	printf 'htmx.org %s (npm) -> htmx.min.js, license htmx.LICENSE (0BSD)\nhtmx-ext-sse %s (npm) -> sse.js, license sse.LICENSE\nhtmx-ext-ws %s (npm) -> ws.js, license ws.LICENSE\nsortablejs %s (npm) -> Sortable.min.js, license Sortable.LICENSE (MIT)\nRegenerate with: make vendor\n' $(HTMX_VERSION) $(HTMX_SSE_VERSION) $(HTMX_WS_VERSION) $(SORTABLE_VERSION) > $(VENDOR)/VERSIONS
	cp build/vendor/axe/package/axe.min.js $(TEST_VENDOR)/axe.min.js
	cp build/vendor/axe/package/LICENSE $(TEST_VENDOR)/axe.LICENSE
	printf 'axe-core %s (npm) -> axe.min.js, license axe.LICENSE (MPL-2.0); loaded by the browser tests only\nRegenerate with: make vendor\n' $(AXE_VERSION) > $(TEST_VENDOR)/VERSIONS
	rm -rf build/vendor; rmdir build 2>/dev/null || true

bench: $(VENV)/.installed-dev ## run the benchmarks (at most 10 minutes) and write docs/benchmarks.md
	$(BIN)/python -m bench

bench-quick: $(VENV)/.installed-dev ## a one-minute version of the benchmarks
	$(BIN)/python -m bench --quick

clean: ## remove the virtualenv, caches and the development database
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build instance
