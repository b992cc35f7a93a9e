# Two commands for a new machine (only python3 >= 3.11 and make are needed):
#   make demo   set everything up, then run the main job on the embedded default (SQLite)
#   make test   set everything up, then run lint, type checks and the tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/publisher demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/python -m pytest -n 2 -q

test: lint typecheck unit

bench: setup
	$(BIN)/python -m bench all --json

clean:
	rm -rf $(VENV) .publisher .pytest_cache .mypy_cache .ruff_cache
