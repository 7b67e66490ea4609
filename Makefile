# community-bot: `make run` serves the embedded default, `make test` runs the whole suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test venv dev-venv services browser deploy-tools fault-tools migration clean

$(BIN)/communitybot: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.dev: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

venv: $(BIN)/communitybot

dev-venv: $(VENV)/.dev

run: venv
	$(BIN)/communitybot db upgrade
	$(BIN)/communitybot serve

services:
	bash scripts/ensure_services.sh

browser:
	bash scripts/ensure_browser.sh

deploy-tools:
	bash scripts/ensure_deploy_tools.sh

fault-tools:
	bash scripts/ensure_fault_tools.sh

test: dev-venv services browser deploy-tools fault-tools
	$(BIN)/python -m pytest -q

migration: dev-venv
	bash scripts/regen_initial_migration.sh

clean:
	rm -rf var test-artifacts
