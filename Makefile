# Two commands matter: `make serve` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q
ADDRESS ?= localhost
PORT    ?= 5006

.PHONY: install install-app install-bench test serve bench lab clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# One stamp per extra set, rebuilt when pyproject.toml changes.
$(VENV)/.stamp-test: pyproject.toml | $(BIN)/python
	$(PIP) install -e ".[test]"
	touch $@

$(VENV)/.stamp-app: pyproject.toml | $(BIN)/python
	$(PIP) install -e ".[app]"
	touch $@

$(VENV)/.stamp-bench: pyproject.toml | $(BIN)/python
	$(PIP) install -e ".[bench]"
	touch $@

install: $(VENV)/.stamp-test
install-app: $(VENV)/.stamp-app
install-bench: $(VENV)/.stamp-bench

test: $(VENV)/.stamp-test
	$(BIN)/python -m pytest

serve: $(VENV)/.stamp-app
	@if [ -f apps/dashboard.py ]; then \
		$(BIN)/panel serve apps/dashboard.py --address $(ADDRESS) --port $(PORT) --allow-websocket-origin=$(ADDRESS):$(PORT); \
	else \
		echo "the dashboard arrives with its own issue"; \
		$(BIN)/python -m workbench list; \
	fi

bench: $(VENV)/.stamp-bench
	$(BIN)/python -m benchmarks.core --write benchmarks/RESULTS.md
	$(BIN)/python -m benchmarks.graph --append benchmarks/RESULTS.md

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
	find . -name __pycache__ -prune -exec rm -rf {} +
