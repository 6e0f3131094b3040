# The README's two commands: `make book` builds the rendered book, `make test` runs every test.
# Both create the virtual environment and install everything on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: book test student-copies clean

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

book: $(VENV)/.installed
	$(VENV)/bin/jupyter-book build . --warningiserror --nitpick --keep-going

test: $(VENV)/.installed
	$(PY) -m pytest

clean:
	rm -rf _build
