# Set-up and checks. `make demo` and `make test` create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The torch to install when .venv has none. 2.13.0 is a normal PyPI release (CUDA build on
# Linux); on the project's CI machines the same pin resolves to a local CPU wheel.
TORCH  ?= torch==2.13.0

.PHONY: install demo test lint presets bench bench-deps clean

# --no-compile: Python writes the bytecode of what a run imports on first import, which halves
# the install (torch and its dependencies hold tens of thousands of modules no run imports)
PIP    := $(BIN)/pip install -q --no-compile

$(BIN)/mst-live: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(PIP) "$(TORCH)"
	$(PIP) -e .
	touch $@

# what the tests and the linter add; then the bytecode of everything installed, since the suite starts
# many processes and an environment may forbid writing it on import (PYTHONDONTWRITEBYTECODE); a
# third-party file that does not compile is no failure of ours
$(BIN)/pytest: $(BIN)/mst-live
	$(PIP) -e ".[test]"
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null 2>&1 || true
	touch $@

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
