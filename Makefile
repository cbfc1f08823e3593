# Set-up and checks. `make demo` and `make test` create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The torch to install when .venv has none. 2.13.0 is a normal PyPI release (CUDA build on
# Linux); on the project's CI machines the same pin resolves to a local CPU wheel.
TORCH  ?= torch==2.13.0

.PHONY: install demo test lint presets bench bench-deps clean

VENV_UP := test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
PIP     := $(BIN)/pip install -q

# the runtime alone, for the demo, with --no-compile: Python writes the bytecode of what a run
# imports on its first import, which halves the install (torch and its dependencies hold tens
# of thousands of modules no run imports)
$(BIN)/mst-live: pyproject.toml
	$(VENV_UP)
	$(BIN)/python -c "import torch" 2>/dev/null || $(PIP) --no-compile "$(TORCH)"
	$(PIP) --no-compile -e .
	touch $@

# the runtime with what the tests and the linter add, its bytecode written at install: the suite
# starts many processes, and an environment may forbid writing bytecode on import
# (PYTHONDONTWRITEBYTECODE, as on the CI machines), which would compile torch in each of them
$(BIN)/pytest: pyproject.toml
	$(VENV_UP)
	$(BIN)/python -c "import torch" 2>/dev/null || $(PIP) "$(TORCH)"
	$(PIP) -e ".[test]"
	touch $@ $(BIN)/mst-live

install: $(BIN)/mst-live

demo: install
	$(BIN)/mst-live demo --out out

lint: $(BIN)/pytest
	$(BIN)/ruff check mst_live tests scripts

# every CPU path torch takes capped at AVX2 (its kernels, oneDNN, fbgemm, MKL), as on most laptops,
# whatever CPU runs the tests
AVX2_CAP := ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 FBGEMM_ENABLE_INSTRUCTIONS=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2

test: lint
	$(AVX2_CAP) $(BIN)/python -m pytest -q

presets: install
	$(BIN)/python scripts/make_presets.py

# basic-pitch without its dependencies (TensorFlow, numpy < 2): its ONNX model is all we use
bench-deps: $(BIN)/pytest
	$(PIP) -e ".[test,bench]"
	$(BIN)/pip install -q --no-deps basic-pitch==0.4.0

bench: bench-deps
	$(BIN)/python scripts/bench_foundation.py
	$(BIN)/python scripts/bench_phase.py
	$(BIN)/python scripts/bench_compute.py
	$(BIN)/python scripts/bench_engine.py
	$(BIN)/python scripts/bench_threads.py
	$(BIN)/python scripts/bench_live.py
	$(BIN)/python scripts/bench_memory.py
	$(BIN)/python scripts/bench_quality.py
	$(BIN)/python scripts/bench_ceilings.py
	$(BIN)/python scripts/bench_known_answer.py
	$(BIN)/python scripts/bench_morph.py
	$(BIN)/python scripts/bench_style_gap.py
	$(BIN)/python scripts/bench_curves.py

clean:
	rm -rf $(VENV) out .pytest_cache
