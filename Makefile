# Fresh machine: `make run` starts the app, `make test` runs the whole test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
APP := $(VENV)/.installed-app
DEV := $(VENV)/.installed-dev

.PHONY: install install-dev run test lint bench train package clean

# ONNX Runtime for this machine: cpu (default), gpu (NVIDIA CUDA) or directml (Windows);
# exactly one per environment (see pyproject.toml).
RUNTIME ?= cpu

# The app alone: no torch, no PyInstaller, no test tools.
$(APP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(RUNTIME)]"
	touch $@

# Everything the tests, training, benchmarks and packaging need.
$(DEV): $(APP)
	$(PY) -m pip install --quiet -e ".[$(RUNTIME),test,train,package]"
	touch $@

install: $(APP)
install-dev: $(DEV)

run: $(APP)
	$(VENV)/bin/lunglens

test: $(DEV)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

lint: $(DEV)
	$(VENV)/bin/lint-imports

bench: $(DEV)
	$(PY) bench/load.py
	$(PY) bench/latency.py
	$(PY) bench/batch.py

train: $(DEV)
	$(PY) -m training.train --data ../shared/data/kermany-cxr-224 --out resources/models
	$(PY) -m training.ood_stats
	$(PY) packaging/make_samples.py

package: $(DEV)
	$(PY) packaging/build.py

clean:
	rm -rf build dist $(VENV)
