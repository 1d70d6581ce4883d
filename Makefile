# Two commands do all the set-up: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint types pytest bench e2e clean

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
	$(BIN)/ruff check agentproc bridge tests bench e2e
	$(BIN)/ruff format --check agentproc bridge tests bench e2e

types: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/run.py

# The end-to-end suite: the real agent CLIs, at the versions pinned in e2e/
# (package-lock.json for the Node CLIs, requirements-aider.txt for aider),
# installed into e2e/ and run against a fake model server on loopback.
E2E_STAMP := e2e/.installed

$(E2E_STAMP): e2e/package.json e2e/package-lock.json e2e/requirements-aider.txt
	# npm ci refuses a lock that lacks other platforms' optional binaries (the
	# registry here has only this one's); install from the lock without rewriting it.
	cd e2e && npm install --no-save --no-audit --no-fund --loglevel=error
	test -x e2e/.venv-aider/bin/python || $(PY) -m venv e2e/.venv-aider
	e2e/.venv-aider/bin/python -m pip install --quiet -r e2e/requirements-aider.txt
	touch $(E2E_STAMP)

e2e: $(STAMP) $(E2E_STAMP)
	sh e2e/offline.sh $(BIN)/pytest -q -p no:cacheprovider e2e/tests

clean:
	rm -rf $(VENV) e2e/node_modules e2e/.venv-aider $(E2E_STAMP) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
