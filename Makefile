# CityStream — one entry point for people. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CITYSTREAM := $(BIN)/citystream
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install system-deps timescaledb up down status demo test unit chaos bench lint format clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python >= 3.11 is needed (PYTHON=$(PYTHON))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) system-deps timescaledb ## create .venv, install Python and system packages and TimescaleDB

# PostgreSQL's server, Java and Maven come from Debian's packages: installed here when we
# are root (CI), otherwise named in a one-line message. Chromium opens the pledge report in
# the tests (headless) and takes the README's screenshot; the report is Chinese first, so a
# CJK font must be there for it to draw the text.
system-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing="$$missing postgresql"; \
	command -v java >/dev/null || missing="$$missing default-jre-headless"; \
	command -v mvn >/dev/null || missing="$$missing maven"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	fc-list :lang=zh 2>/dev/null | grep -q . || missing="$$missing fonts-wqy-microhei"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing system packages; run: sudo apt-get install$$missing"; exit 1; \
	  fi; \
	fi

# The TimescaleDB extension for the local PostgreSQL server, once per machine: built from
# ../shared/vendor's archive when it is there (~100 s), otherwise the script prints how to
# install it from Timescale's repository and the stack runs plain PostgreSQL.
timescaledb: system-deps ## install the TimescaleDB extension into the local PostgreSQL server
	@deploy/local/install-timescaledb.sh

up: install ## start the local Kafka broker and PostgreSQL clusters (127.0.0.1)
	$(CITYSTREAM) stack up

down: ## stop the local stack (exactly the PIDs it started)
	@if [ -x $(CITYSTREAM) ]; then $(CITYSTREAM) stack down; fi

status: ## show the local stack's components, addresses and PIDs
	$(CITYSTREAM) stack status

demo: up ## the main job: simulate 2022 and 2024, print the pledge table, write out/report.html
	$(CITYSTREAM) demo

# Two pytest passes (tests/modes.py): every test on TimescaleDB, then tests/integration on the
# stack's plain PostgreSQL cluster; each checks it really ran on its engine.
test: install ## lint, then every test on TimescaleDB and the SQL tests again on plain PostgreSQL
	$(MAKE) --no-print-directory lint
	$(CITYSTREAM) stack up
	set +e; $(BIN)/python -m tests.modes; rc=$$?; $(CITYSTREAM) stack down; exit $$rc

unit: install ## the tests that open no socket
	$(BIN)/pytest tests/unit

# The chaos suite runs its own broker and PostgreSQL (the test stops and restarts them);
# `make test` runs it at 6,000 events, this at 60,000.
chaos: install ## the chaos suite at full size (crashes, Kafka and PostgreSQL outages, rebalances)
	$(CITYSTREAM) stack up
	CITYSTREAM_CHAOS_EVENTS=$${CITYSTREAM_CHAOS_EVENTS:-60000} CITYSTREAM_CHAOS_SECONDS=$${CITYSTREAM_CHAOS_SECONDS:-240} \
	  $(BIN)/pytest tests/chaos -p no:cacheprovider

bench: up ## throughput, latency, naive baseline, query and replay benchmarks → out/bench.json
	$(BIN)/python -m tests.bench $(BENCH_ARGS)

lint: install ## ruff and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install ## apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean: down ## remove the virtual environment and the local stack's data
	rm -rf $(VENV) .stack out
