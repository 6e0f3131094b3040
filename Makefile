# The README's two commands: `make book` builds the rendered book, `make test` runs every test.
# Both create the virtual environment and install everything on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: book test test-oldest browser-deps student-copies timings slides learner-check wheelhouse clean

# pip compiles the packages as it installs them: do not add --no-compile. Where PYTHONDONTWRITEBYTECODE is set (the
# development machine, CI), nothing would then ever be compiled and every process compiles torch again on import:
# the test command took 21 min 31 s in a fresh clone that way, against 16 min 45 s (2026-12-06).
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

book: $(VENV)/.installed
	$(VENV)/bin/jupyter-book build . --warningiserror --nitpick --keep-going

# tests/test_browser.py drives Debian's headless Chromium. Install it when it is missing and we can (root with
# apt-get, as in CI); otherwise that test skips, or fails when CI=true.
browser-deps:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "Installing chromium and chromium-driver (apt-get) for tests/test_browser.py"; \
	  ( apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
	    >/dev/null ) || echo "warning: could not install chromium; tests/test_browser.py will skip (fail if CI=true)"; \
	else \
	  echo "note: chromium/chromedriver not found and not installable here (needs root and apt-get);" \
	       "tests/test_browser.py will skip (fail if CI=true)"; \
	fi

# Two worker processes (pytest-xdist), each taking whole groups of tests (conftest.py says which); the two cores
# are half idle while one process waits on a notebook kernel, a subprocess or the browser. TEST_WORKERS=0: one
# process.
TEST_WORKERS ?= 2
test: $(VENV)/.installed browser-deps
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup

# The lowest versions requirements.txt allows (.ci/oldest.txt), in their own venv: the unit tests and chapters
# 1-4 (CI's `oldest` job runs it on the lowest Python pyproject.toml allows).
OLDEST := .venv-oldest
test-oldest:
	$(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install --quiet --upgrade pip
	$(OLDEST)/bin/python -m pip install --quiet -r requirements-dev.txt -c .ci/oldest.txt
	$(OLDEST)/bin/python -m pip install --quiet --no-deps -e .
	$(OLDEST)/bin/python -m pip check
	$(OLDEST)/bin/python -m pytest --unit
	$(OLDEST)/bin/python -m pytest notebooks/01-*.ipynb notebooks/02-*.ipynb notebooks/03-*.ipynb notebooks/04-*.ipynb

# Workshop helpers (book/instructor-guide.md): copies without solutions, the measured times per chapter,
# and the slides.
student-copies: $(VENV)/.installed
	$(PY) tools/student_copies.py

timings: $(VENV)/.installed
	$(PY) tools/time_notebooks.py --budget cpu

# One reveal.js deck per session plan (tools/workshop.py), from the chapters' committed outputs, into
# _build/slides/ (index.html lists them); reveal.js is copied next to the decks, so they work offline.
slides: $(VENV)/.installed
	$(PY) tools/slides.py

# A learner's install check (seconds): imports, torch version, device and precision, data, one training step.
# Uses the project's .venv when there is one, else the python on the PATH (a learner's own environment).
learner-check:
	$(if $(wildcard $(PY)),$(PY),$(PYTHON)) -m vgg_helpers.install_check

# A workshop room's offline installs: wheels for Linux, macOS and Windows (CPU torch) and CIFAR-10 in wheelhouse/,
# with wheelhouse/INSTALL.md (the commands per system). Options: python tools/wheelhouse.py --help.
wheelhouse: $(VENV)/.installed
	$(PY) tools/wheelhouse.py

clean:
	rm -rf _build
