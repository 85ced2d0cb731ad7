# q35: every target installs what it needs. `make verify` = tests; `make tables` = the main job.
PYTHON ?= python3
PIP    ?= $(PYTHON) -m pip
STAMPS := .cache/stamps
HYPOTHESIS_PROFILE ?= ci
export HYPOTHESIS_PROFILE

.PHONY: setup setup-tables setup-bench build build-fcheck fortran-lint test test-fcheck lean verify tables bench \
        projection gemv crossover quantize-bench clean help

help:
	@echo "make setup      install gfortran (apt) and the dev extras"
	@echo "make build      (re)compile the Fortran kernels of the editable install (meson-python, build/)"
	@echo "make verify     build + Lean (or SKIPPED) + the whole test suite  <- the test command"
	@echo "make tables     compression/RMSE + perplexity tables on SmolLM2     <- the main job"
	@echo "make bench      end-to-end CPU benchmark (quick; FULL=1 for the full protocol)"
	@echo "make projection modelled accelerator throughput tables"
	@echo "make gemv       GEMV: q35 A8/float vs numpy/torch fp32 vs ggml Q3_K/Q4_0/Q4_K, bandwidth bound"
	@echo "make crossover  fused float kernel vs tiled BLAS vs A8 by batch size (checks BLAS_MIN_BATCH)"
	@echo "make quantize-bench  quantizer throughput: q35 modes vs ggml (imatrix or not) vs HQQ"

$(STAMPS):
	@mkdir -p $(STAMPS)

# gfortran is the one system dependency; install it only when missing.
$(STAMPS)/gfortran: | $(STAMPS)
	@command -v gfortran >/dev/null 2>&1 || { \
	  echo "gfortran not found: installing it with apt-get (needs root)"; \
	  (apt-get update -qq && apt-get install -y -qq gfortran) || { \
	    echo "ERROR: could not install gfortran. Install it yourself: sudo apt-get install -y gfortran"; exit 1; }; }
	@touch $@

# An editable meson-python install (as NumPy/SciPy develop): `import q35` recompiles what changed in build/.
BUILD_DEPS := "meson-python>=0.15" "meson>=1.2" ninja "numpy>=1.26"
EDITABLE   := $(PIP) install -q --no-build-isolation -e

$(STAMPS)/dev: pyproject.toml meson.build $(STAMPS)/gfortran
	$(PIP) install -q $(BUILD_DEPS)
	$(EDITABLE) ".[dev,projection]"
	@touch $@

$(STAMPS)/tables: pyproject.toml $(STAMPS)/dev
	$(EDITABLE) ".[tables]"
	@touch $@

$(STAMPS)/projection: pyproject.toml $(STAMPS)/dev
	$(EDITABLE) ".[projection]"
	@touch $@

$(STAMPS)/bench: pyproject.toml $(STAMPS)/dev
	$(EDITABLE) ".[bench]"
	@touch $@

# The peers' packages, so that the anchor and ggml-kernel tests run instead of skipping: hqq (pure Python) and
# llama-cpp-python, compiled once from its sdist (about 6 minutes on 2 cores; cached in ~/.cache/q35/wheels).
# A failed build (no compiler, registry down) is reported in one loud line and the tests that need the peers skip
# with that reason; the stamp stays absent so the next run tries again.
$(STAMPS)/anchors: $(STAMPS)/dev
	@if $(PYTHON) -c "from bench import anchors; anchors.ensure_hqq(); anchors.ensure_llama_cpp()"; then touch $@; \
	else echo "ANCHORS UNAVAILABLE: hqq/llama-cpp-python could not be installed (see above); their tests will skip"; fi

setup: $(STAMPS)/dev
setup-tables: $(STAMPS)/tables
setup-bench: $(STAMPS)/bench

build: setup
	MESONPY_EDITABLE_VERBOSE=1 $(PYTHON) -c "import q35.fast.extension as e; print('q35 kernels ready:', e.LOADED_FROM)"

# The same kernels with run-time checks (bounds, etc.), in .cache/fcheck/.
build-fcheck: setup
	$(PYTHON) tests/fortran_build.py --fcheck

fortran-lint: setup
	$(PYTHON) tests/fortran_build.py --lint

lean:
	@if command -v lake >/dev/null 2>&1; then \
	  echo "Lean: lake build in lean/"; cd lean && lake build; \
	else \
	  $(PYTHON) tests/formal/lean_census.py --skipped-banner; \
	fi

test: build build-fcheck fortran-lint $(STAMPS)/anchors
	$(PYTHON) -m pytest -q tests
	Q35_KERNEL_EXTENSION=$$($(PYTHON) tests/fortran_build.py --fcheck) HYPOTHESIS_PROFILE=dev \
	  $(PYTHON) -m pytest -q tests/core/test_equivalence.py tests/core/test_a8.py tests/core/test_gptq.py

verify: build lean test

tables: setup-tables build
	$(PYTHON) -m bench.tables $(ARGS)

bench: setup-bench build
	$(PYTHON) -m bench.llama $(if $(FULL),--full,) $(ARGS)

# Kernel benchmarks: GEMV vs fp32 and ggml, the float paths' batch crossover, quantizer throughput.
gemv: setup-bench build
	$(PYTHON) -m bench.gemv_bench $(ARGS)

crossover: setup-bench build
	$(PYTHON) -m bench.gemv_bench --crossover $(ARGS)

quantize-bench: setup-bench build
	$(PYTHON) -m bench.quantize_bench $(ARGS)

projection: $(STAMPS)/projection
	$(PYTHON) -m bench.projection --all $(ARGS)

clean:
	rm -rf build .cache/stamps .cache/fcheck
