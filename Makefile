# make demo / make test each work on a fresh machine: they create .venv,
# install torch==2.13.0 first (the local CPU build), then the project pinned by constraints.txt.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mmrefine-installed
DATA_ROOT ?= ../shared/data

.PHONY: install demo test lint clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mmrefine demo --config configs/demo.yaml --out runs/demo --fresh

test: $(STAMP)
	$(VENV)/bin/ruff check mmrefine tests benchmarks
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check mmrefine tests benchmarks

clean:
	rm -rf runs lightning_logs .pytest_cache
