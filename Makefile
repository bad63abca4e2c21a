# One command to run, one to test; both build the virtual environment first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= config/config.yaml
STAMP  := $(VENV)/.installed

.PHONY: venv run demo test lint bench tools clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $@

## run: the sidecar against the Immich and Discord named in $(CONFIG)
run: venv
	$(BIN)/immich-sidecar run -c $(CONFIG)

## demo: the sidecar against a fake Immich on 127.0.0.1, printing notifications
demo: venv
	$(BIN)/python -m tests.demo

## tools: helm, promtool and hadolint for the chart and Dockerfile checks (into .tools/)
tools:
	bash .ci/install-tools

## test: lint, type-check and the whole test suite
test: venv tools
	$(BIN)/ruff check sidecar tests
	$(BIN)/mypy
	PATH="$(CURDIR)/.tools/bin:$$PATH" $(BIN)/pytest

## bench: performance figures (not part of the pass/fail run)
bench: venv
	$(BIN)/python -m tests.bench

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache
