# Support by Time: one entry point for setting up, running and testing.
# `make demo` and `make test` are the README's two commands.

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(VENV)/bin/pip
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: demo install install-test test lint audit worker beat serve bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

install: $(PY)
	$(PIP) install --quiet -c requirements.lock -e .

install-test: $(PY)
	$(PIP) install --quiet -c requirements.lock -e '.[test]'
	./scripts/install-chromium
	./scripts/install-dovecot

## The embedded default: SQLite, eager Celery, demo data, printed logins.
demo: install
	DEBUG=1 $(PY) manage.py migrate --no-input -v0
	DEBUG=1 $(PY) manage.py seed_demo
	@echo "\nSupport by Time runs at http://$(HOST):$(PORT)/ (admin: http://$(HOST):$(PORT)/admin/)\n"
	DEBUG=1 $(PY) manage.py runserver $(HOST):$(PORT)

## The whole test suite (DATABASE_URL / REDIS_URL select PostgreSQL and Redis).
test: install-test
	SECRET_KEY=$${SECRET_KEY:-test-only-secret-key-not-for-production} \
		$(PY) manage.py collectstatic --no-input -v0
	$(PY) -m pytest

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/bandit -q -r customers packages tickets billing clientarea api supportbilling webhooks whmcs \
		-x '*/migrations/*,*/seed_demo.py'
	SECRET_KEY=$${SECRET_KEY:-test-only-secret-key-not-for-production} \
		$(VENV)/bin/mypy customers packages tickets billing clientarea api supportbilling webhooks whmcs

# Known vulnerabilities in the pinned dependencies (needs PyPI's JSON API or OSV).
audit: install-test
	$(VENV)/bin/pip install --quiet pip-audit
	$(VENV)/bin/pip-audit -r requirements.lock

serve: install
	$(PY) manage.py migrate --no-input
	$(PY) manage.py collectstatic --no-input -v0
	$(VENV)/bin/gunicorn supportbilling.wsgi --bind $(HOST):$(PORT) --workers 4

worker: install
	$(VENV)/bin/celery -A supportbilling worker --loglevel=info

beat: install
	$(VENV)/bin/celery -A supportbilling beat --loglevel=info

## Benchmarks on PostgreSQL (DATABASE_URL, REDIS_URL); figures in docs/performance.md.
bench: install-test
	$(PIP) install --quiet -c requirements.lock -e '.[test,bench]'
	SECRET_KEY=$${SECRET_KEY:-bench} $(PY) bench/rollup.py
	SECRET_KEY=$${SECRET_KEY:-bench} $(PY) bench/export.py
	SECRET_KEY=$${SECRET_KEY:-bench} $(PY) bench/portal.py
	SECRET_KEY=$${SECRET_KEY:-bench} $(PY) bench/operator.py
	SECRET_KEY=$${SECRET_KEY:-bench} $(PY) bench/pages.py
	SECRET_KEY=$${SECRET_KEY:-bench} $(PY) bench/load.py

clean:
	rm -rf $(VENV) staticfiles db.sqlite3
