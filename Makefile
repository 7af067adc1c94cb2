PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: install run test lint migrate worker beat bench clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) manage.py migrate --noinput

# Runs the product with demo data on 127.0.0.1:$(PORT), Celery tasks in-process: one uvicorn
# process serves HTTP (static files through WhiteNoise) and the GraphQL WebSocket (/v1/ws).
run: migrate
	$(PY) manage.py seed_demo --if-empty --base-url http://127.0.0.1:$(PORT)
	$(PY) -m uvicorn stateset.asgi:application --host 127.0.0.1 --port $(PORT)

# Runs the whole test suite (PostgreSQL/Redis tests run when DATABASE_URL/REDIS_URL are set).
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# ruff, then the import contracts (.importlinter: the layers, api/ kept private, no cycles).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

worker: install
	$(VENV)/bin/celery -A stateset worker -l info

beat: install
	$(VENV)/bin/celery -A stateset beat -l info

bench: install
	$(PY) bench/customers_list.py
	$(PY) bench/events_list.py
	$(PY) bench/graphql_list.py
	$(PY) bench/graphql_subscriptions.py

# Contract check: the real server (fresh database, two organizations) against its own OpenAPI
# document with schemathesis, then a cross-tenant check; see tests/contract/run_schemathesis.py.
.PHONY: contract
contract: install
	$(PY) tests/contract/run_schemathesis.py $(CONTRACT_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3
