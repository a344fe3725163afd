# The one entry point for people and CI. `make run` and `make test` each build .venv
# from scratch when it is missing or pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.frvs-installed
EXTRAS ?= dev,dlib,faiss,milvus,postgres

.PHONY: run test test-fast lint bench clean

$(STAMP): pyproject.toml | system
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	# Compiled once here: where PYTHONDONTWRITEBYTECODE is set, every process (each CLI
	# command, each test's server) would otherwise compile FRVS's modules again (0.2 s).
	$(BIN)/python -m compileall -q src
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/frvs serve --init

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

# The quick loop while coding: lint, then the unit and contract tests not marked slow (each
# module and each port's implementations, in process). The integration, browser and slow
# tests (real servers, video end to end, many processes, fuzzing) run in 'make test'.
test-fast: lint
	$(BIN)/python -m pytest -m "not slow" tests/unit tests/contract

bench: $(STAMP)
	@for b in benchmarks/[!_]*.py; do echo "== $$b" >&2; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# Debian packages, installed when missing (scripts/system-packages.sh: apt-get as root or
# through sudo, one clear message otherwise): what building .venv and serving need, and
# what the tests use beyond it (FFmpeg, PostgreSQL, Chromium, GStreamer's RTSP server,
# Mosquitto).
RUN_PACKAGES ?= python3 python3-venv python3-dev build-essential ca-certificates
TEST_PACKAGES ?= $(RUN_PACKAGES) git curl ffmpeg postgresql postgresql-contrib chromium \
    fonts-dejavu-core gstreamer1.0-tools gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 \
    python3-gi gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
    gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav mosquitto
SYSTEM_PACKAGES ?= $(RUN_PACKAGES)

.PHONY: system services

# The system step: the packages of the goal asked for (the tests need more), taken by
# 'make run' and 'make test' before anything else.
ifneq ($(filter test test-fast,$(MAKECMDGOALS)),)
SYSTEM_PACKAGES := $(TEST_PACKAGES)
endif
system:
	@scripts/system-packages.sh $(SYSTEM_PACKAGES)

# PostgreSQL and Mosquitto for the tests, started when not running.
services: system
	@scripts/services.sh

run: system
test: system services
test-fast: system services
