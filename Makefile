# Lifeline: `make run` to try it, `make test` to check it. See README.md.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

# make test: PostgreSQL and Redis on this machine (override to point elsewhere).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/lifeline
TEST_BROKER_URL ?= redis://127.0.0.1:6379/0
TEST_ENV := DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL)
# The deploy check runs with production values: DEBUG off, HTTPS on, a long random key.
DEPLOY_CHECK_ENV := DEBUG=false ALLOWED_HOSTS=lifeline.example.com SECRET_KEY=$$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')

# make run-prod: the production processes (Procfile) locally, on PostgreSQL and Redis, DEBUG off.
PROD_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/lifeline
PROD_BROKER_URL ?= redis://127.0.0.1:6379/0
PROD_ENV := DEBUG=false LIFELINE_HTTPS=false DATABASE_URL=$(PROD_DATABASE_URL) CELERY_BROKER_URL=$(PROD_BROKER_URL) \
	SECRET_KEY=$${SECRET_KEY:-run-prod-on-this-machine-only} PORT=$(PORT) HOST=$(HOST) \
	$(if $(EMAIL_HOST),,EMAIL_BACKEND=django.core.mail.backends.filebased.EmailBackend)

.PHONY: run run-prod test lint fmt services clean help bench bench-large bench-growth load

help:
	@echo "make run    install, migrate, load demo data, start web + worker + beat (SQLite, no servers)"
	@echo "make test   the whole suite on PostgreSQL and Redis, with ruff and the migrations check"
	@echo "make chaos  the worker SIGKILLed 500 times mid-pipeline (about an hour); figures into docs/reliability.md"
	@echo "make run-prod  the Procfile (gunicorn, worker, beat) on PostgreSQL and Redis with DEBUG off"
	@echo "make lint   ruff check and format check;  make fmt  rewrite with ruff format"
	@echo "make load   60 s of mixed traffic (50 users) while the pipeline runs; figures into docs/reliability.md"
	@echo "make bench  figures vs their floors on a scratch database (size S; make bench-large for L); not part of make test"
	@echo "make bench-growth  the bench at 10,000 accounts, then how each figure grows to the newest S (and L) report"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.run-deps: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test-deps: pyproject.toml $(VENV)/.run-deps
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.run-deps
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python manage.py seed_demo --if-empty
	$(BIN)/python manage.py setup_schedules
	@echo "Scoring the last 90 days (first time only) and running the pipeline once; beat runs it every 15 minutes."
	$(BIN)/python manage.py evaluate_journeys > /dev/null
	$(BIN)/python manage.py recompute_health --backfill-days 90 --every-days 7 --quiet
	$(BIN)/python manage.py run_pipeline > /dev/null
	@echo
	@echo "  Lifeline is starting on http://$(HOST):$(PORT)/  (API docs: http://$(HOST):$(PORT)/api/docs/)"
	@echo "  Demo logins (password 'lifeline' for all):"
	@echo "    admin                     admin: sees everything; Django admin at /admin/"
	@echo "    manager1 / manager2       managers of the North / South teams"
	@echo "    csm1..csm3 / csm4..csm6   CSMs of the North / South teams"
	@echo "  Ctrl-C stops the web app, the worker and beat."
	@echo
	LIFELINE_HOST=$(HOST) LIFELINE_PORT=$(PORT) PATH="$(BIN):$$PATH" $(BIN)/honcho -f Procfile.dev start

run-prod: $(VENV)/.run-deps
	$(PROD_ENV) $(BIN)/python manage.py collectstatic --noinput -v0
	$(PROD_ENV) $(BIN)/python manage.py migrate --noinput
	$(PROD_ENV) $(BIN)/python manage.py setup_schedules
	@echo "  Lifeline (gunicorn, DEBUG off) is starting on http://$(HOST):$(PORT)/ ; /readyz says if it can serve."
	$(PROD_ENV) PATH="$(BIN):$$PATH" $(BIN)/honcho -f Procfile start web worker beat

services:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
	@for i in $$(seq 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
	@psql "$(TEST_DATABASE_URL:/lifeline=/postgres)" -tAc "SELECT 1 FROM pg_database WHERE datname = 'lifeline'" | grep -q 1 \
		|| psql "$(TEST_DATABASE_URL:/lifeline=/postgres)" -qc "CREATE DATABASE lifeline"

lint: $(VENV)/.test-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(VENV)/.test-deps
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: $(VENV)/.test-deps services lint
	$(TEST_ENV) $(BIN)/python manage.py makemigrations --check --dry-run
	$(TEST_ENV) $(DEPLOY_CHECK_ENV) $(BIN)/python manage.py check --deploy --fail-level WARNING
	$(TEST_ENV) PATH="$(BIN):$$PATH" $(BIN)/python -m pytest --create-db

# make bench: a scratch database (BENCH_DATABASE, dropped first) filled by generate_data, then the
# figures of docs/bench/README.md beside their floors; BENCH_SIZE=S|L, BENCH_ACCOUNTS=N to shrink.
BENCH_SIZE ?= S
BENCH_SERVER ?= postgres://postgres@127.0.0.1:5432

bench: $(VENV)/.run-deps services
	BENCH_SIZE=$(BENCH_SIZE) BENCH_SERVER=$(BENCH_SERVER) $(BIN)/python -m bench

# make load: 60 s of mixed page and API traffic (locust, 50 users) against gunicorn while the
# pipeline runs, on a scratch database (LOAD_DATABASE); figures into docs/reliability.md.
load: $(VENV)/.test-deps services
	$(BIN)/python -m bench.reliability_load

bench-large:
	$(MAKE) bench BENCH_SIZE=L

# make bench-growth: the bench at 10,000 accounts, then each figure's growth exponent from there to
# the newest S report (make bench) and L report (make bench-large) in docs/bench/, if present.
bench-growth: $(VENV)/.run-deps services
	BENCH_ACCOUNTS=10000 BENCH_SERVER=$(BENCH_SERVER) $(BIN)/python -m bench
	$(BIN)/python -m bench.growth $$(ls docs/bench/*-10000.json | tail -1) \
		$$(ls docs/bench/20??-??-??.json | tail -1) $$(ls docs/bench/20??-??-??-L.json 2>/dev/null | tail -1)

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache

# make chaos: tests/integration/test_chaos.py with CHAOS_CYCLES kill cycles (make test runs 20);
# it rewrites the figures table of docs/reliability.md when every invariant held.
CHAOS_CYCLES ?= 500

.PHONY: chaos
chaos: $(VENV)/.test-deps services
	$(TEST_ENV) LIFELINE_CHAOS_CYCLES=$(CHAOS_CYCLES) LIFELINE_CHAOS_REPORT=docs/reliability.md PATH="$(BIN):$$PATH" \
		$(BIN)/python -m pytest tests/integration/test_chaos.py --create-db -p no:cacheprovider -q -s
