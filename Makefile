# Two entry points for a fresh machine: `make demo` (main job) and `make test`.
# Each creates .venv and installs the pinned dependencies first; re-running skips the
# install unless pyproject.toml or requirements.lock changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)

.PHONY: install demo test test-fast lint format

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $@

# The quick study (3 embedded tasks x residual on/off x norm pre/post/none x 2 depths, one
# seed), the seeded cells of three findings (packed), then one comparison report of both.
# Relaunching skips runs that already finished.
demo: install
	$(BIN)/resnorm train -m study=quick
	$(BIN)/resnorm train -m study=quick_claims
	$(BIN)/resnorm report outputs/studies/quick outputs/studies/quick_claims --out reports/quick

test: install
	$(BIN)/ruff check src tests
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

format: install
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests
