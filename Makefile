# One command to run, one to test; both build the virtual environment first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= config/config.yaml
STAMP  := $(VENV)/.installed
# pytest-xdist: two workers per core (most tests wait on real time, not the CPU), each dealt an
# equal share of the expected time, and a worker that runs out of tests takes over half of
# another's (tests/conftest.py; it also says which tests never overlap). PARALLEL= runs in one
# process.
PARALLEL ?= -n auto --dist worksteal

.PHONY: venv run demo test test-fast lint fmt bench tools docs schema translations clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,docs]'
	touch $@

## run: the sidecar against the Immich and Discord named in $(CONFIG)
run: venv
	$(BIN)/immich-sidecar run -c $(CONFIG)

## demo: the sidecar against a fake Immich on 127.0.0.1, printing notifications
demo: venv
	$(BIN)/python -m tests.demo

## tools: helm, kubernetes-validate, hadolint, actionlint, check-jsonschema, promtool and
## shellcheck for the chart, Dockerfile, workflow and compose checks (into .tools/)
tools:
	bash .ci/install-tools

## lint: ruff (rules and formatting), mypy (strict), the layout rules, README.md's length and the
## docs site built --strict; changes nothing
lint: venv
	$(BIN)/ruff check sidecar tests
	$(BIN)/ruff format --check sidecar tests
	$(BIN)/mypy
	$(BIN)/python -m tests.layout
	$(BIN)/python -m tests.readme_length
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

## docs: build the documentation site into build/site (open build/site/index.html)
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## schema: after a change to sidecar/config.schema.json, write what is generated from it (its
## copy config/config.schema.json, docs/reference/configuration.md, the chart's values.schema.json)
schema: venv
	$(BIN)/python -m tests.schemagen

## fmt: format the code and apply ruff's safe fixes
fmt: venv
	$(BIN)/ruff check --fix sidecar tests
	$(BIN)/ruff format sidecar tests

## test: lint, then the whole test suite
test: lint tools
	PATH="$(CURDIR)/.tools/bin:$$PATH" $(BIN)/pytest $(PARALLEL)

## test-fast: lint, then every test but the end-to-end and slow ones (for the edit-test loop)
test-fast: lint
	$(BIN)/pytest -q $(PARALLEL) -m "not e2e and not slow and not container"

## translations: extract the texts into messages.pot, update every .po, compile the .mo files
LOCALES := sidecar/locales
translations: venv
	$(BIN)/pybabel --quiet extract -F $(LOCALES)/babel.cfg --no-default-keywords \
	  -k T_:1c,2 -k TP_:1c,2,3 -k locale_str --sort-by-file --no-wrap --add-location=file \
	  --project immich-discord-sidecar --copyright-holder "immich-discord-sidecar contributors" \
	  -o $(LOCALES)/messages.pot sidecar
	$(BIN)/pybabel --quiet update -D messages -i $(LOCALES)/messages.pot -d $(LOCALES) \
	  --no-wrap --ignore-obsolete --ignore-pot-creation-date
	$(BIN)/pybabel --quiet compile -D messages -d $(LOCALES) --statistics

## bench: performance figures (not part of the pass/fail run)
bench: venv
	$(BIN)/python -m tests.bench

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache
