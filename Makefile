# The one entry point for people and CI. `make run` and `make test` each build .venv
# from scratch when it is missing or pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.frvs-installed
EXTRAS ?= dev,dlib,faiss,milvus,postgres

.PHONY: run test test-fast lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/frvs serve --init

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

# Everything but the tests marked slow (real video end to end, many processes, fuzzing).
test-fast: lint
	$(BIN)/python -m pytest -m "not slow"

bench: $(STAMP)
	@for b in benchmarks/[!_]*.py; do echo "== $$b" >&2; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
