# CityStream — one entry point for people. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CITYSTREAM := $(BIN)/citystream
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install system-deps up down status demo test unit lint format clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python >= 3.11 is needed (PYTHON=$(PYTHON))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) system-deps ## create .venv and install Python packages and system packages

# PostgreSQL's server, Java and Maven come from Debian's packages: installed here when we
# are root (CI), otherwise named in a one-line message.
system-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing="$$missing postgresql"; \
	command -v java >/dev/null || missing="$$missing default-jre-headless"; \
	command -v mvn >/dev/null || missing="$$missing maven"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing system packages; run: sudo apt-get install$$missing"; exit 1; \
	  fi; \
	fi

up: install ## start the local Kafka broker and PostgreSQL (127.0.0.1)
	$(CITYSTREAM) stack up

down: ## stop the local stack (exactly the PIDs it started)
	@if [ -x $(CITYSTREAM) ]; then $(CITYSTREAM) stack down; fi

status: ## show the local stack's components, addresses and PIDs
	$(CITYSTREAM) stack status

demo: up ## run the main job on the local stack and print the totals
	$(CITYSTREAM) demo

test: install ## lint, then every test against a freshly started local stack
	$(MAKE) --no-print-directory lint
	$(CITYSTREAM) stack up
	set +e; $(BIN)/pytest; rc=$$?; $(CITYSTREAM) stack down; exit $$rc

unit: install ## the tests that open no socket
	$(BIN)/pytest tests/unit

lint: install ## ruff and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install ## apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean: down ## remove the virtual environment and the local stack's data
	rm -rf $(VENV) .stack out
