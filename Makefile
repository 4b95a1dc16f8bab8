# Two commands do all set-up: `make run` and `make test`. Both create .venv when needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
INSTALLED_DEV := $(VENV)/.installed-dev
# `make run` listens on loopback whatever PORT says; HOST=0.0.0.0 to listen on every address.
HOST ?= 127.0.0.1

.PHONY: install install-dev run test lint fake-api bench eval clean

install: $(INSTALLED)
install-dev: $(INSTALLED_DEV)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# What production installs (Heroku and the VM): requirements.txt only.
$(INSTALLED): requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# Tests, lint and benchmark tools on top (requirements-dev.txt).
$(INSTALLED_DEV): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@ $(INSTALLED)

## Start the server on http://127.0.0.1:5000 (SQLite; dry-run without credentials).
run: install
	$(BIN)/gunicorn wsgi:app --bind $(HOST):$${PORT:-5000}

## Run the whole test suite (PostgreSQL tests too when TEST_DATABASE_URL is set).
test: install-dev
	$(BIN)/python -m pytest

lint: install-dev
	$(BIN)/ruff check .

## A fake Conversations API on 127.0.0.1:4010, for local runs (TWILIO_API_BASE_URL).
fake-api: install
	$(BIN)/python -m tests.support.fake_conversations --port 4010 --no-auth --any-conversation

## Benchmark (loopback only, bounded in time); writes bench/RESULTS.md and
## bench/out/pacing.md (burst drain, steady load, throttled), then prints the FAQ's
## costs (decision latency with 200 and 5,000 entries, boot, memory per worker).
bench: install-dev
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.pacing
	$(BIN)/python -m bench.faq

## The FAQ's evaluation (docs/faq.md): CLINC150-derived cases, the six held-out sets,
## then the two development sets.
eval: install
	$(BIN)/flask --app wsgi faq eval eval/clinc150/test.jsonl --rules eval/clinc150/faq.toml
	$(BIN)/flask --app wsgi faq eval eval/heldout/cases.jsonl --rules eval/heldout/faq.toml
	$(BIN)/flask --app wsgi faq eval eval/heldout2/cases.jsonl --rules eval/heldout2/faq.toml
	$(BIN)/flask --app wsgi faq eval eval/heldout3/cases.jsonl --rules eval/heldout3/faq.toml
	$(BIN)/flask --app wsgi faq eval eval/heldout4/cases.jsonl --rules eval/heldout4/faq.toml
	$(BIN)/flask --app wsgi faq eval eval/heldout5/cases.jsonl --rules eval/heldout5/faq.toml
	$(BIN)/flask --app wsgi faq eval eval/heldout6/cases.jsonl --rules eval/heldout6/faq.toml
	$(BIN)/flask --app wsgi faq eval eval/dev1/cases.jsonl --rules eval/dev1/faq.toml
	$(BIN)/flask --app wsgi faq eval eval/dev2/cases.jsonl --rules eval/dev2/faq.toml

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
