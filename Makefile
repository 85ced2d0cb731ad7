# q35: every target installs what it needs. `make verify` = tests; `make tables` = the main job.
PYTHON ?= python3
PIP    ?= $(PYTHON) -m pip
STAMPS := .cache/stamps
HYPOTHESIS_PROFILE ?= ci
export HYPOTHESIS_PROFILE

.PHONY: setup setup-tables setup-bench build build-fcheck fortran-lint test test-fcheck lean verify tables bench \
        projection clean help

help:
	@echo "make setup      install gfortran (apt) and the dev extras"
	@echo "make build      compile the Fortran kernels into the f2py extension (bridge/_ext)"
	@echo "make verify     build + Lean (or SKIPPED) + the whole test suite  <- the test command"
	@echo "make tables     compression/RMSE + perplexity tables on SmolLM2     <- the main job"
	@echo "make bench      end-to-end CPU benchmark (quick; FULL=1 for the full protocol)"
	@echo "make projection modelled accelerator throughput tables"

$(STAMPS):
	@mkdir -p $(STAMPS)

# gfortran is the one system dependency; install it only when missing.
$(STAMPS)/gfortran: | $(STAMPS)
	@command -v gfortran >/dev/null 2>&1 || { \
	  echo "gfortran not found: installing it with apt-get (needs root)"; \
	  (apt-get update -qq && apt-get install -y -qq gfortran) || { \
	    echo "ERROR: could not install gfortran. Install it yourself: sudo apt-get install -y gfortran"; exit 1; }; }
	@touch $@

$(STAMPS)/dev: pyproject.toml $(STAMPS)/gfortran
	$(PIP) install -q -e ".[dev,projection]"
	@touch $@

$(STAMPS)/tables: pyproject.toml $(STAMPS)/dev
	$(PIP) install -q -e ".[tables]"
	@touch $@

$(STAMPS)/projection: pyproject.toml $(STAMPS)/dev
	$(PIP) install -q -e ".[projection]"
	@touch $@

$(STAMPS)/bench: pyproject.toml $(STAMPS)/dev
	$(PIP) install -q -e ".[bench]"
	@touch $@

setup: $(STAMPS)/dev
setup-tables: $(STAMPS)/tables
setup-bench: $(STAMPS)/bench

build: setup
	$(PYTHON) bridge/build.py

# The same kernels with run-time checks (bounds, etc.), in their own build folder.
build-fcheck: setup
	Q35_FCHECK=1 $(PYTHON) bridge/build.py

fortran-lint: setup
	$(PYTHON) bridge/build.py --lint

lean:
	@if command -v lake >/dev/null 2>&1; then \
	  echo "Lean: lake build in lean/"; cd lean && lake build; \
	else \
	  $(PYTHON) tests/lean_census.py --skipped-banner; \
	fi

test: build build-fcheck fortran-lint
	$(PYTHON) -m pytest -q tests
	Q35_FCHECK=1 HYPOTHESIS_PROFILE=dev $(PYTHON) -m pytest -q tests/test_equivalence.py

verify: build lean test

tables: setup-tables build
	$(PYTHON) -m bench.tables $(ARGS)

bench: setup-bench build
	$(PYTHON) -m bench.llama_bench $(if $(FULL),--full,) $(ARGS)

projection: $(STAMPS)/projection
	$(PYTHON) -m bench.projection --all $(ARGS)

clean:
	rm -rf bridge/_ext .cache/stamps build *.egg-info
