# Two commands do all the set-up: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# What running needs (the project and its dependencies), and the tools that
# test, lint, type-check and benchmark it on top; `make run` installs only the first.
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
# Kept for anything that still names the old stamp: it is the full (dev) set-up.
STAMP := $(DEV_STAMP)

# pip and setuptools: no version nag, no progress bars, only what went wrong.
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_PROGRESS_BAR := off

.PHONY: run serve venv test lint types pytest bench e2e clean FORCE

# A .venv whose python is missing or older than 3.11 (made by an older python3)
# is rebuilt: the stamps depend on FORCE then, so their recipes run.
VENV_OK := $(shell $(BIN)/python -c 'import sys; print(sys.version_info >= (3, 11))' 2>/dev/null)
ifneq ($(VENV_OK),True)
VENV_CHECK := FORCE
endif

# .venv itself, made (or remade) by $(PY) when missing or too old; installs nothing.
venv:
	@$(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "make: agentproc needs Python 3.11 or newer; '$(PY)' is $$($(PY) -V 2>&1)." >&2; \
	  echo "make: name a newer one with PY, e.g. make run PY=python3.12" >&2; exit 1; }
	@if [ -e $(VENV) ] && [ "$(VENV_OK)" != True ]; then \
	  echo "make: $(VENV) was made by a Python older than 3.11, or is broken: rebuilding it"; \
	  rm -rf $(VENV); fi
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)

# setuptools reports an editable install as a UserWarning ("Editable
# installation..."); it is not a problem, so it is not shown.
$(RUN_STAMP): pyproject.toml $(VENV_CHECK)
	@$(MAKE) --no-print-directory venv
	PYTHONWARNINGS=ignore::UserWarning $(BIN)/python -m pip install --quiet -e .
	@touch $@

$(DEV_STAMP): $(RUN_STAMP)
	PYTHONWARNINGS=ignore::UserWarning $(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

# A terminal chat with the echo agent; MESSAGE='...' runs one turn instead.
# The message reaches agentproc through the environment, as typed: neither
# make nor the shell expands a $ in it.
run: export AGENTPROC_MAKE_MESSAGE := $(value MESSAGE)
run: $(RUN_STAMP)
	@if [ -n "$$AGENTPROC_MAKE_MESSAGE" ]; then \
	  exec $(BIN)/agentproc run echo -m "$$AGENTPROC_MAKE_MESSAGE"; \
	else exec $(BIN)/agentproc chat echo; fi

# The HTTP API and the web chat page with the echo agent, on http://127.0.0.1:8787/
# (CONFIG=bridge.yaml serves a config instead; see docs/SERVER.md).
serve: $(RUN_STAMP)
	@exec $(BIN)/agentproc serve $(if $(CONFIG),--config "$(CONFIG)")

test: lint types pytest

lint: $(DEV_STAMP)
	$(BIN)/ruff check agentproc bridge profiles tests bench e2e docs/examples
	$(BIN)/ruff format --check agentproc bridge profiles tests bench e2e docs/examples

types: $(DEV_STAMP)
	$(BIN)/mypy

# The browser tests (tests/test_web_page.py) drive Debian's `chromium` package
# through Playwright. Playwright's own `playwright install` is not used: it
# downloads browser builds from outside the package registries. The file is
# its own stamp: when /usr/bin/chromium is missing, this runs
# `apt-get update && apt-get install -y chromium` (with sudo when not root),
# and says plainly what to do when that cannot work.
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	@echo "make: the browser tests need Debian's chromium package; installing it with apt-get"
	@command -v apt-get >/dev/null || { \
	  echo "make: apt-get is not here (not Debian or Ubuntu?): install Chromium so that" \
	    "$(CHROMIUM) runs it, then run make again" >&2; exit 1; }
	@if [ "$$(id -u)" = 0 ]; then sudo=; \
	elif command -v sudo >/dev/null; then sudo=sudo; \
	else echo "make: installing chromium needs root, and sudo is not here: run" \
	  "'apt-get update && apt-get install -y chromium' as root, then make again" >&2; exit 1; fi; \
	$$sudo apt-get update -q && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium || { \
	  echo "make: could not install chromium with apt-get (see above); install it" \
	    "yourself, then run make again" >&2; exit 1; }
	@test -x $(CHROMIUM) || { echo "make: chromium was installed but $(CHROMIUM) is" \
	  "not there" >&2; exit 1; }

pytest: $(DEV_STAMP) $(CHROMIUM)
	$(BIN)/pytest -q

bench: $(DEV_STAMP)
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

e2e: $(DEV_STAMP) $(E2E_STAMP)
	sh e2e/offline.sh $(BIN)/pytest -q -p no:cacheprovider e2e/tests

FORCE:

clean:
	rm -rf $(VENV) e2e/node_modules e2e/.venv-aider $(E2E_STAMP) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
