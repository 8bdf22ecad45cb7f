# make demo / make test each work on a fresh machine: they create .venv,
# install torch==2.13.0 first (the local CPU build), then the project pinned by constraints.txt.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mmrefine-installed
DATA_ROOT ?= ../shared/data

.PHONY: install demo test test-slow test-all lint clean peers

install: $(STAMP)

# Bytecode for every installed module and ours, written once here: pip writes none when
# PYTHONDONTWRITEBYTECODE is set (as on our machines), and then every process compiles torch and
# Lightning from source again (import lightning: 22-25 s instead of 8-10 s; docs/performance.md).
# A few files of the packages are for other Python versions and do not compile: ignored.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(PY) -m compileall -q -j 0 $(VENV)/lib mmrefine > /dev/null || true
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mmrefine demo --config configs/demo.yaml --out runs/demo --fresh

# make test: the fast set (everything not marked slow); make test-slow: the slow set (kill-and-resume
# subprocesses, real-data training, the sweeps with trackers); make test-all and CI (.ci/run): both.
test: $(STAMP)
	$(VENV)/bin/ruff check mmrefine tests benchmarks
	$(PY) -m pytest -q -m "not slow"
	@echo "make test ran the fast set; make test-all (and CI) also runs the tests marked slow"

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

test-all: test test-slow

lint: $(STAMP)
	$(VENV)/bin/ruff check mmrefine tests benchmarks

# AutoGluon, the peer benchmarks/tables_suite.py compares with, in its own environment
# (it pins an older pandas than constraints.txt); the suite finds .venv-peers/bin/python.
peers: .venv-peers/.installed

.venv-peers/.installed: constraints-peers.txt
	test -x .venv-peers/bin/python || $(PYTHON) -m venv .venv-peers
	.venv-peers/bin/python -m pip install --quiet torch==2.13.0
	.venv-peers/bin/python -m pip install --quiet -c constraints-peers.txt "autogluon.tabular[lightgbm,catboost,xgboost]"
	touch $@

clean:
	rm -rf runs lightning_logs .pytest_cache
