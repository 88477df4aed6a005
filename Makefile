# Clientele: the front door. `make up` runs everything on this machine; `make test` proves it.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# Recursive (=): looked up when a recipe runs, after `uv-installed` may have installed it.
UV = $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)

.PHONY: help uv-installed uv-path sync up down infra-up infra-down services-up services-down status test test-unit lint format bench token contract k8s-manifests

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

uv-installed:
	@command -v uv >/dev/null 2>&1 || [ -x $(HOME)/.local/bin/uv ] || python3 -m pip install --quiet uv

uv-path: # the uv that make uses (deploy/local/check-first-run.sh proves a fresh machine finds it)
	@echo $(UV)

sync: uv-installed ## install uv when missing and the locked Python dependencies, compiled to bytecode
	$(UV) sync --frozen --quiet --compile-bytecode
	$(UV) run --frozen --no-sync python -m compileall -q shared/src services/*/src tests/testkit/src

up: sync infra-up services-up ## install what is missing, start Kafka, PostgreSQL, Redis and the five services

down: services-down infra-down ## stop the services and the infrastructure

infra-up: ## start Kafka (KRaft), PostgreSQL and Redis on loopback (installing them when missing)
	deploy/local/infra.sh up

infra-down: ## stop the infrastructure started by infra-up
	deploy/local/infra.sh down

services-up: sync ## migrate every service database and start the five services
	deploy/local/services.sh up

services-down: ## stop the five services
	deploy/local/services.sh down

status: ## what runs
	@deploy/local/infra.sh status; deploy/local/services.sh status

test: sync ## the whole suite against real Kafka, PostgreSQL and Redis (started when none is given)
	$(UV) run --frozen pytest

test-unit: sync ## the tests that need no infrastructure
	$(UV) run --frozen pytest -m "not integration"

lint: sync ## ruff (lint + format check), mypy, and the K8s manifests (fresh, rendered, schema-valid)
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy shared/src tests/testkit/src services/*/src
	$(UV) run --frozen python deploy/k8s/generate.py --check
	KUSTOMIZE=$$(deploy/k8s/tools.sh) $(UV) run --frozen python deploy/k8s/validate.py

format: sync ## apply ruff's fixes and formatting
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .

bench: sync infra-up ## benchmarks against the real stack; report in bench/results/
	$(UV) run --frozen python -m bench

contract: sync ## regenerate docs/asyncapi (AsyncAPI documents, event JSON Schemas) from the registry
	$(UV) run --frozen python -m clientele_shared.events.contract --write

k8s-manifests: sync ## regenerate deploy/k8s (services, Kafka topics and ACLs) from the registry
	$(UV) run --frozen python deploy/k8s/generate.py

token: sync ## mint a development token: make token ARGS="--sub alice --roles sales --directions north"
	.venv/bin/clientele-token keygen --dir .state/keys >/dev/null
	.venv/bin/clientele-token mint --key .state/keys/private.pem $(ARGS)
