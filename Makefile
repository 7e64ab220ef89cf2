# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates .venv (once) and installs the project into it. torch is pinned
# first so the local CPU build is used instead of the multi-GB CUDA wheels.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
TORCH_PIN ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_PIN)"
	$(BIN)/python -m pip install -q -e ".[apps,test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/rnnkit charrnn train --out runs/demo --overwrite

test: $(STAMP)
	$(BIN)/ruff check rnnkit tests examples benchmarks
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/rnn_speed.py

lint: $(STAMP)
	$(BIN)/ruff check rnnkit tests examples benchmarks

clean:
	rm -rf $(VENV) runs
