# Two commands on a fresh machine (Python 3.11+ and pip):
#   make run    installs everything, migrates and seeds ./data/eventboard.db, serves http://localhost:3000
#   make test   installs everything and runs the whole suite (lint, types, contracts, tests)

SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
HOST ?= 0.0.0.0
PORT ?= 3000

.PHONY: run test install check lint format migrate

$(UV):
	python3 -m pip install --user --quiet uv

install: $(UV)
	$(UV) sync --frozen

run: install
	$(UV) run --frozen uvicorn app.main:app --host $(HOST) --port $(PORT) --no-access-log

test: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy
	$(UV) run --frozen lint-imports
	$(UV) run --frozen pytest

# Production: migrations are an explicit step (the app migrates itself only outside production).
migrate: install
	$(UV) run --frozen alembic upgrade head

format: install
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .
