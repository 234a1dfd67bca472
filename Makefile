# The two commands of the README: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: run test test-sqlite test-postgres worker bench .env

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: requirements.txt | $(PY)
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.installed

# On every `make run`: it adds what .env lacks (a token; a webhook secret once webhook URLs are set).
.env:
	$(PYTHON) scripts/ensure_env.py .env

## Web, WebSocket and the WhatsApp sessions in one process (SQLite, no Redis needed).
run: $(VENV)/.installed .env
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py serve

## The whole suite on SQLite, then again on Postgres when it is reachable (CI requires it).
test: test-sqlite test-postgres

test-sqlite: $(VENV)/.installed-dev
	$(PY) -m pytest $(PYTEST_ARGS)

test-postgres: $(VENV)/.installed-dev
	@if $(PY) scripts/service_up.py "$(TEST_POSTGRES_URL)"; then \
		DATABASE_URL="$(TEST_POSTGRES_URL)" $(PY) -m pytest -m "not sqlite_only" $(PYTEST_ARGS); \
	elif [ -n "$$REQUIRE_SERVICES" ]; then \
		echo "Postgres at $(TEST_POSTGRES_URL) is not reachable and REQUIRE_SERVICES is set"; exit 1; \
	else echo "Postgres not reachable: the Postgres run of the suite is skipped"; fi

bench: $(VENV)/.installed-dev
	$(PY) bench/send_pdf_throughput.py
