# TuneGraph: the two commands are `make run` (set up, load the real catalog, serve the search
# API and page) and `make test` (set up, then lint, type-check and run every test against a real
# Neo4j).
# Both are safe to run again; `setup` only does what is missing.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PY := .venv/bin/python
TG := .venv/bin/tunegraph
DATA ?= ../shared/data
CATALOG ?= .tunegraph/catalog.jsonl.gz
PORT ?= 7687
HOST ?= 127.0.0.1
API_PORT ?= 8000
WORKERS ?= 2

.PHONY: setup system python neo4j-runtime run load text-vectors embeddings test lint clean

setup: system python neo4j-runtime

# System packages a fresh machine may lack: a JDK (javac too) and Maven for Neo4j, Debian's
# Chromium for the browser test (Playwright drives it; it never downloads a browser), and wrk
# for the load benchmark.
system:
	@missing=""; \
	command -v javac >/dev/null || missing="$$missing openjdk-17-jdk-headless"; \
	command -v mvn >/dev/null || missing="$$missing maven"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# The Python environment, pinned by requirements.lock (made with `uv pip compile`).
python:
	@command -v uv >/dev/null || python3 -m pip install -q uv
	@[ -x $(PY) ] || uv venv -q .venv --python python3.11
	@uv pip sync -q --python $(PY) requirements.lock
	@uv pip install -q --python $(PY) --no-deps -e .

# Neo4j 5.26.30 Community jars from Maven Central, cached in ~/.cache/tunegraph.
neo4j-runtime: python
	@$(TG) neo4j install

# Load the real public catalog into the local Neo4j: converted once; the first load into an
# empty database uses the offline importer, later ones an ordinary (idempotent) ingest.
load: setup
	@[ -f $(CATALOG) ] || $(TG) convert --data-dir $(DATA) --out $(CATALOG)
	@$(TG) ingest --initial --port $(PORT) $(CATALOG)

# Text vectors for the "text" source: the static model is distilled from the installed
# MiniLM once (cached), then only entities without a vector are embedded.
text-vectors: load
	@$(TG) train text

# Optional: graph embeddings (PyKEEN RotatE, PyG LightGCN) for the "kge" and "gnn" expanders;
# minutes on 2 cores. A running service picks them up at its next start.
embeddings: load
	@$(TG) train graph

# The main job: the real catalog in Neo4j, then the search API and page in the foreground.
run: text-vectors
	@$(TG) neo4j status
	@echo "TuneGraph search page: http://$(HOST):$(API_PORT)/  (API under /v1, OpenAPI at /schema)"
	@TUNEGRAPH_HOST=$(HOST) $(TG) serve --port $(API_PORT) --workers $(WORKERS)

lint: python
	@.venv/bin/ruff check .
	@.venv/bin/mypy graph ingest retrievers bandit api bench tests

test: setup lint
	@$(PY) -m pytest

clean:
	-$(TG) neo4j stop
	rm -rf .tunegraph
