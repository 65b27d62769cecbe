# The README's two commands are `make run` and `make test`. Each installs what it needs first.
SHELL := /bin/bash
UV_HOME := .cache/uv-tool
UV := $(UV_HOME)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install jars browser test test-unit run dev loop stack-up stack-down stack-status lint clean

# uv (from PyPI) resolves this dependency set in seconds where pip backtracks for minutes.
$(UV):
	python3 -m venv $(UV_HOME)
	$(UV_HOME)/bin/pip install --quiet --disable-pip-version-check "uv>=0.5,<1"

$(VENV)/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --extra dev --python python3.11
	touch $@

install: $(VENV)/.installed

jars: install
	$(PY) -m devtools.stack.cli fetch-jars

# Debian's Chromium and its chromedriver, for the Dagster UI browser test (tests/integration/test_dagster_ui.py).
# Installed with apt-get (as root, else through sudo) only when missing; the package lists are
# refreshed only if the first attempt fails.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
APT_INSTALL := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver

browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  $(APT_INSTALL) || ($(SUDO) apt-get update && $(APT_INSTALL)); \
	fi

# The test suite starts its own private stack (Kafka, Cassandra) on free ports and stops it at the end.
# It runs the test files on TEST_WORKERS pytest-xdist workers (default 2), each with its own Spark
# session and private stack (module fixtures stay shared within a file). The suite is CPU-bound: two
# workers on 2 cores took 52.6 minutes where one took 57.4 (README, "The two commands"). Files go out
# in the order pytest collects them (--no-loadscope-reorder): the integration files, then the merge
# tests, then the many short unit files, which fill whatever time is left when the long files end.
# pytest-xdist's own order (files with the most tests first) left the single-test whole-flow files,
# the longest of all, for the end, where one worker ran the last of them alone (docs/performance-history.md).
# pytest's last line gives the total time. Lint (ruff check, ruff format --check, the layers' import
# contract, mypy over the engine) runs before the suite: a style slip, a wrong-way import or a type
# error fails in seconds, not after it. Lint, the jars and the browser are made at once (lint is CPU,
# the other two wait on the network on a fresh machine), each one's output kept together; the suite
# starts only when all three succeeded.
TEST_WORKERS ?= 2
test: install
	$(MAKE) --no-print-directory -j3 --output-sync=target lint jars browser
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=30

test-unit: install
	$(PY) -m pytest -q -m "not integration"

stack-up: install jars
	$(PY) -m devtools.stack.cli up

stack-down: install
	$(PY) -m devtools.stack.cli down

stack-status: install
	$(PY) -m devtools.stack.cli status

run: install jars
	$(PY) -m devtools.demo

# `make dev` and `make loop` run on the local stack: CDC_PROFILE=local takes the servers from the settings
# `make stack-up` wrote (.stack/settings.json) and the lake .lake; without it, a deployment must name
# CDC_KAFKA_BOOTSTRAP, CDC_CASSANDRA_HOSTS and CDC_LAKE_ROOT (README, "Pointing it at real clusters").
dev: install jars browser
	$(PY) -m devtools.stack.cli up
	CDC_PROFILE=local DAGSTER_HOME=$(CURDIR)/.dagster_home $(VENV)/bin/dagster dev -w workspace.yaml

# Low latency: one warm process runs the micro-batch job every LOOP_INTERVAL seconds (orchestration/loop.py),
# recorded in the same instance `make dev` shows. Leave the schedule and the lag sensor off meanwhile.
LOOP_INTERVAL ?= 10
loop: install jars
	$(PY) -m devtools.stack.cli up
	CDC_PROFILE=local DAGSTER_HOME=$(CURDIR)/.dagster_home $(PY) -m orchestration.loop --interval $(LOOP_INTERVAL)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy

clean:
	-$(PY) -m devtools.stack.cli down
	rm -rf .stack .lake .dagster_home
