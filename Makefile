# kerasmt: `make demo` runs every finished study on synthetic data; `make test` runs the test suite.
# Both create (or reuse) a virtual environment in .venv and install requirements.txt into it (the
# checkout, editable, with pyproject's dependencies and the test tools; setuptools >= 77 as pyproject's
# build requirement, so that tests/test_packaging.py can build the wheel with this interpreter).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kerasmt-installed
DEMO_OUT ?= runs/demo

.PHONY: install test demo bench notebooks clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip "setuptools>=77" wheel
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q

demo: install
	$(BIN)/kerasmt demo --out $(DEMO_OUT) --jobs 2

bench: install
	$(BIN)/python benchmarks/fairface_pipeline.py
	$(BIN)/python benchmarks/beauty_pipeline.py
	$(BIN)/python benchmarks/recommender_profiles.py

# The py:percent sources are what maintainers edit: bring their .ipynb pairs up to date, re-execute
# the demo, and copy the executed notebooks into notebooks/ (what is committed, with the sources).
notebooks: install
	$(BIN)/jupytext --quiet --update --to ipynb notebooks/*.py
	$(BIN)/kerasmt demo --out $(DEMO_OUT) --jobs 2
	$(BIN)/python tools/sync_notebooks.py $(DEMO_OUT)

clean:
	rm -rf runs build *.egg-info .pytest_cache
