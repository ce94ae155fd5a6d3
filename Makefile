# sloguard — the two commands: `make demo` and `make test`.
# Both create or update the virtual environment themselves.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=
DEMO_ARGS ?=
LINT_PATHS := $(wildcard src tests benchmarks fuzz)

.PHONY: demo test lint typecheck bench servers venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: venv
	$(BIN)/sloguard demo $(DEMO_ARGS)

servers:
	@bash scripts/install-servers.sh

lint: venv
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/lint-imports

typecheck: venv
	$(BIN)/mypy

test: venv servers lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	bash scripts/test-pythons.sh $(PYTEST_ARGS)

bench: venv servers
	$(BIN)/python -m pytest -m slow -p no:randomly $(PYTEST_ARGS) || test $$? -eq 5
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .venv-3.12 .venv-3.13 .sloguard .mypy_cache .ruff_cache
