# Fresh machine: `make run` starts the app, `make test` runs the whole test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench train package clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,train,package]"
	touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/lunglens

test: install
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

lint: install
	$(VENV)/bin/lint-imports

bench: install
	$(PY) bench/load.py
	$(PY) bench/latency.py
	$(PY) bench/batch.py

train: install
	$(PY) -m training.train --data ../shared/data/kermany-cxr-224 --out resources/models
	$(PY) -m training.ood_stats

package: install
	$(PY) packaging/build.py

clean:
	rm -rf build dist $(VENV)
