# Two commands do all set-up: `make run` and `make test`. Both create .venv when needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install run test lint fake-api bench clean

install: $(INSTALLED)

$(INSTALLED): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

## Start the server on http://127.0.0.1:5000 (SQLite; dry-run without credentials).
run: install
	$(BIN)/gunicorn wsgi:app

## Run the whole test suite (PostgreSQL tests too when TEST_DATABASE_URL is set).
test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .

## A fake Conversations API on 127.0.0.1:4010, for local runs (TWILIO_API_BASE_URL).
fake-api: install
	$(BIN)/python -m tests.fake_conversations --port 4010 --no-auth

## Benchmark (loopback only, bounded in time); writes bench/RESULTS.md and
## bench/out/pacing.md (burst drain, steady load, throttled).
bench: install
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.pacing

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
