# opsdeck — the two commands a newcomer needs:
#   make run    install, then start the whole application locally (no Docker, no AWS account)
#   make test   install, then run every test
# Everything installs into $(VENV); it is refreshed when pyproject.toml changes.

VENV    ?= .venv
# The first of these that actually runs (a pyenv shim may exist but not run).
PYTHON  ?= $(shell for p in python3.12 python3.13 python3.11 python3; do $$p -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null && { echo $$p; break; }; done)
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=

export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: install run test lint format bench synth clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,cdk]"
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/opsdeck local up --demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python -m bench

synth: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" npx --yes aws-cdk@2 synth --quiet

clean:
	rm -rf $(VENV) cdk.out .opsdeck .pytest_cache
