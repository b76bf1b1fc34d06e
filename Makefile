# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INDEX ?= index
CORPUS ?= corpus
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2

.PHONY: run test lint build-index clean venv venv-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Runtime: the lean install (no torch; the default encoder is plain numpy).
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# Tests also exercise the sentence-transformers path. torch==2.13.0 is a CPU
# build on local disk here; installed first so pip never pulls a CUDA build.
$(VENV)/.test: pyproject.toml $(VENV)/.runtime
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[st,milvus,test]'
	touch $@

# Headless Chromium for the browser test (Debian package, no download).
/usr/bin/chromium:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

$(INDEX)/current/meta.json: | $(VENV)/.runtime
	$(BIN)/python scripts/build_index.py --corpus $(CORPUS) --index $(INDEX)

build-index: $(VENV)/.runtime
	$(BIN)/python scripts/build_index.py --corpus $(CORPUS) --index $(INDEX)

# WORKERS processes forked after loading, each reading requests whole before
# answering them (web/server.py); Ctrl-C or SIGTERM drains, then exits 0.
run: $(VENV)/.runtime $(INDEX)/current/meta.json
	$(BIN)/python scripts/serve.py --index $(INDEX) --host $(HOST) --port $(PORT) --workers $(WORKERS)

# axe-core (package.json) for the browser test's accessibility checks, from
# npm; Debian's npm is installed first where there is none.
AXE := node_modules/axe-core/axe.min.js
$(AXE): package.json
	command -v npm >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null)
	npm install --no-package-lock --no-audit --no-fund
	touch $@

test: $(VENV)/.test /usr/bin/chromium $(AXE)
	$(BIN)/ruff check qa web scripts tests
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(VENV)/.test
	$(BIN)/ruff check qa web scripts tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis node_modules
