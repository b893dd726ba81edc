# Two commands on a fresh machine (Python 3.11+ and pip):
#   make run    installs everything, migrates and seeds ./data/eventboard.db, serves http://localhost:3000
#   make test   installs everything and runs the whole suite (lint, types, contracts, tests)

SHELL := /bin/bash
# Loopback only unless asked (`make run HOST=0.0.0.0`): in development, tokens are signed with a
# published key. X-Forwarded-For is never believed by uvicorn; the app believes it only from
# TRUSTED_PROXIES. The stdlib event loop: uvloop costs the same here and, with handlers that
# finish without waiting, leaves some connections waiting hundreds of ms (bench/RESULTS.md).
HOST ?= 127.0.0.1
PORT ?= 3000
SHUTDOWN_GRACE_SECONDS ?= 10
# uv from PATH, else the one pip installs for this Python (`python3 -m uv`).
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: run test install uv lint migrate format cluster bench

uv:
	@$(UV) --version >/dev/null 2>&1 \
	  || python3 -m pip install --user --quiet uv \
	  || python3 -m pip install --quiet uv

install: uv
	$(UV) sync --frozen

# Running needs no test tools: only the runtime packages are installed (`--inexact` leaves any
# others in place, so `make run` after `make test` uninstalls nothing).
run: uv
	$(UV) sync --frozen --no-dev --inexact
	@echo "EventBoard on http://$(HOST):$(PORT) - API docs at http://$(HOST):$(PORT)/api" >&2
	$(UV) run --no-sync uvicorn app.main:app --host $(HOST) --port $(PORT) --no-access-log \
	  --no-proxy-headers --loop asyncio --timeout-graceful-shutdown $(SHUTDOWN_GRACE_SECONDS)

test: install lint
	$(UV) run --frozen pytest
	@echo "The end-to-end suite again, on PostgreSQL with module workers over NATS:"
	TEST_STACK=postgresql-nats $(UV) run --frozen pytest tests/e2e

lint: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy
	$(UV) run --frozen lint-imports

# A local cluster on PostgreSQL and NATS: gateway + two events workers + one auth worker.
cluster: install
	PORT=$(PORT) bash scripts/cluster.sh

# Production: migrations are an explicit step (the app migrates itself only outside production).
migrate: install
	$(UV) run --frozen alembic upgrade head

format: install
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

# The performance suite (needs wrk: apt-get install wrk, and Node.js + npm for the NestJS peer);
# writes bench/RESULTS.md. About 15 min.
bench: install
	$(UV) run --frozen python bench/run.py --profile --write
