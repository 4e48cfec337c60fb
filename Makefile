# Two commands matter: `make serve` and `make test`. Both create .venv and install what they need.
#   make serve                                   dashboard on http://localhost:5006 (bound to localhost)
#   make serve ADDRESS=0.0.0.0 PORT=8080         reachable from other machines (then also set
#                                                WORKBENCH_DATA_DIR=/data to confine server-side paths)
#   make serve MAX_UPLOAD_MB=500                 larger upload cap (default 200 MB)
#   make test                                    unit + browser tests (installs Debian's chromium as root)
#   make lab                                     JupyterLab in notebooks/
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q
ADDRESS ?= localhost
PORT    ?= 5006
MAX_UPLOAD_MB ?= 200
# Websocket origins Bokeh accepts: the served address, or any host when bound to every interface.
ORIGIN  ?= $(if $(filter 0.0.0.0 ::,$(ADDRESS)),*,$(ADDRESS):$(PORT))
# A page's session waits this long (ms) for its websocket before Bokeh drops it and builds another
# (Bokeh's 15 s is short for a busy 2-core machine; each rebuild costs a full session).
SESSION_WAIT_MS ?= 60000

.PHONY: install install-app install-bench test serve bench lab chromium clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# One stamp per extra set, rebuilt when pyproject.toml or the pins change. pyproject.toml declares
# compatible ranges (the library installs beside other packages); constraints.txt holds the exact
# versions this repository is tested with, and every install here uses them.
PINS := -c constraints.txt

$(VENV)/.stamp-test: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) install $(PINS) -e ".[test,models,bench]"
	touch $@

$(VENV)/.stamp-app: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) install $(PINS) -e ".[app,models]"
	touch $@

$(VENV)/.stamp-bench: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) install $(PINS) -e ".[bench]"
	touch $@

# Numba compiles each kernel at its first call (1–25 s each, about 75 s for all on 2 cores). Do it
# once after installing: the machine code is cached next to the kernel sources and loads in well
# under a second, so the dashboard's first map and first switch of mechanism never wait for a
# compiler. Redone when a kernel source changes (Numba would recompile those at first use anyway).
$(VENV)/.stamp-warm: $(wildcard kernels/*.py kernels/numba/*.py) | $(BIN)/python
	$(BIN)/python -m workbench warm
	touch $@

install: $(VENV)/.stamp-test
install-app: $(VENV)/.stamp-app
install-bench: $(VENV)/.stamp-bench

# The browser tests drive Debian's chromium (Playwright's pip wheel ships only the driver; we never
# run `playwright install`). Installed when missing and we are root; otherwise the tests skip
# with the reason (or fail, under REQUIRE_BROWSER=1 as in .ci/run).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
		else \
			echo "chromium is missing and we are not root: the browser tests will skip (sudo apt-get install chromium)"; \
		fi; }

test: $(VENV)/.stamp-test $(VENV)/.stamp-warm chromium
	$(BIN)/python -m pytest

serve: $(VENV)/.stamp-app $(VENV)/.stamp-warm
	WORKBENCH_MAX_UPLOAD_MB=$(MAX_UPLOAD_MB) $(BIN)/panel serve apps/dashboard.py --setup apps/preload.py \
		--address $(ADDRESS) --port $(PORT) --allow-websocket-origin='$(ORIGIN)' \
		--unused-session-lifetime $(SESSION_WAIT_MS)

lab: $(VENV)/.stamp-test $(VENV)/.stamp-app
	$(BIN)/jupyter lab --notebook-dir=notebooks --ip=$(ADDRESS)

bench: $(VENV)/.stamp-bench
	$(BIN)/python -m benchmarks.core --write benchmarks/RESULTS.md
	$(BIN)/python -m benchmarks.graph --append benchmarks/RESULTS.md

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
	find . -name __pycache__ -prune -exec rm -rf {} +
