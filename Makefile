# Two commands do all the set-up: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint types pytest bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# A terminal chat with the echo agent; MESSAGE="..." runs one turn instead.
run: $(STAMP)
	@if [ -n "$${MESSAGE:-}" ]; then $(BIN)/agentproc run echo -m "$$MESSAGE"; \
	else $(BIN)/agentproc chat echo; fi

test: lint types pytest

lint: $(STAMP)
	$(BIN)/ruff check agentproc bridge tests bench
	$(BIN)/ruff format --check agentproc bridge tests bench

types: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
