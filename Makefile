# LeadLoop: `make run` to try it, `make test` to check it. Needs only Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEPS_HASH := $(shell cat pyproject.toml | $(PYTHON) -c "import hashlib,sys;print(hashlib.sha1(sys.stdin.buffer.read()).hexdigest()[:12])")
RUNTIME := $(VENV)/.installed-run-$(DEPS_HASH)
DEV     := $(VENV)/.installed-dev-$(DEPS_HASH)
# Two test processes (pytest-xdist): the suite is written to share one PostgreSQL and Redis.
PYTEST_ARGS ?= -n 2

.PHONY: run test lint typecheck layers checks pytest messages clean help

help:
	@echo "make run   install, migrate, load demo data, start web + worker + beat"
	@echo "make test  install dev tools, then lint, type-check, layers, checks and all tests"

$(BIN)/python:
	@$(PYTHON) -c "import sys; sys.exit(0 if sys.version_info >= (3, 11) else 'LeadLoop needs Python 3.11 or newer (found ' + sys.version.split()[0] + ')')"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME): pyproject.toml | $(BIN)/python
	$(BIN)/python scripts/requirements.py > $(VENV)/requirements.txt
	$(BIN)/python -m pip install --quiet -r $(VENV)/requirements.txt
	@rm -f $(VENV)/.installed-run-*; touch $@

$(DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python scripts/requirements.py dev > $(VENV)/requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r $(VENV)/requirements-dev.txt
	@rm -f $(VENV)/.installed-dev-* $(VENV)/.installed-run-*; touch $@ $(RUNTIME)

run: $(RUNTIME)
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py runstack

lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEV)
	LEADLOOP_TESTING=1 $(BIN)/mypy

layers: $(DEV)
	$(BIN)/lint-imports --no-cache

checks: $(DEV)
	LEADLOOP_TESTING=1 $(BIN)/python manage.py check --fail-level WARNING
	LEADLOOP_TESTING=1 $(BIN)/python manage.py makemigrations --check --dry-run
	DEBUG=0 SECRET_KEY=check-deploy-$$(date +%s)-not-a-real-key-but-long-enough-for-the-check ALLOWED_HOSTS=leadloop.example.cn \
		$(BIN)/python manage.py check --deploy --fail-level WARNING

pytest: $(DEV)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck layers checks pytest

# Regenerate and compile translations (needs GNU gettext; the compiled .mo is committed).
messages: $(DEV)
	LEADLOOP_TESTING=1 $(BIN)/python manage.py makemessages -l zh_Hans --no-obsolete -i ".venv/*" -i "bench/*" -i "tests/*"
	LEADLOOP_TESTING=1 $(BIN)/python manage.py compilemessages -l zh_Hans -i ".venv"

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .mypy_cache .ruff_cache
