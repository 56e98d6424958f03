# Two commands matter: `make run` (install, migrate, serve on SQLite) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements-dev.lock pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install run migrate test test-fast lint format bench lock clean

$(STAMP): requirements-dev.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/alembic upgrade head

run: migrate
	$(BIN)/python -m entrypoints.main

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -q

test-fast: install
	$(BIN)/pytest -q -m "not slow"

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

BENCH_STAMP := $(VENV)/.bench-installed-$(shell cat requirements-bench.lock 2>/dev/null | cksum | cut -d' ' -f1)

$(BENCH_STAMP): requirements-bench.lock $(STAMP)
	$(BIN)/python -m pip install -q -r requirements-bench.lock
	@rm -f $(VENV)/.bench-installed-*
	@touch $(BENCH_STAMP)

# `make bench` (full scale, several minutes) or `make bench ARGS=--quick`; not part of `make test`.
bench: install $(BENCH_STAMP)
	$(BIN)/python -m bench.run $(ARGS)

lock:
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 -o requirements.lock -q
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements-dev.lock -q
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra bench --python-version 3.11 -o requirements-bench.lock -q

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
