# PAN workbook — every entry point a user needs. Each target installs what it needs first.
#   make workbook   run all notebooks headless on the embedded dataset -> results/
#   make test       run the test suite (what .ci/run calls)
#   make bench      run the benchmarks -> results/bench/
#   make reproduce DATASET=sthv2 DATA_ROOT=/data/sthv2   official recipes on a prepared real dataset
#   make reproduce DATASET=ucf101 DATA_ROOT=... SMOKE=1  the same path for a few CPU steps (no paper numbers)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEPS_HASH := $(shell cat pyproject.toml scripts/install_system_deps.sh 2>/dev/null | sha1sum | cut -c1-12)
STAMP := $(VENV)/.installed-$(DEPS_HASH)
PYTEST_ARGS ?=

.PHONY: venv test workbook bench reproduce clean-venv system-deps

$(STAMP):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@# the machine-wide pip config names local mirrors that lack most projects: drop those warnings
	set -o pipefail; $(BIN)/python -m pip install -q -e ".[test]" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (PAN workbook)" >/dev/null
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

system-deps:
	@bash scripts/install_system_deps.sh

test: venv system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# SEEDS="0 1 2 3 4": more seeds than the default three (each seed adds about 4 minutes on the 2-core Xeon of
# results/notebooks/timings.md, about 8 on a 2-core AMD EPYC)
workbook: venv
	$(BIN)/python -m pan_lib.workbook --readme $(if $(SEEDS),--seeds $(SEEDS))

bench: venv
	$(BIN)/python -m pan_lib.bench all

# NPROC=8: every training run goes through torchrun with 8 processes (one per GPU); SEEDS="0 1 2"
# SMOKE=1: the same notebooks and official recipe code in the workbook's small mode (1 epoch, a few
# batches of 2 clips, 1 seed) -> .cache/smoke/<dataset>: checks the path end to end, no paper numbers
SMOKE_ARGS := --small --set batch_size=2 --set num_workers=0
reproduce: venv
	$(BIN)/python -m pan_lib.workbook --dataset "$(DATASET)" --data-root "$(DATA_ROOT)" --recipe official \
		--nproc-per-node "$(or $(NPROC),1)" --seeds $(or $(SEEDS),$(if $(SMOKE),0,0 1 2)) $(if $(SMOKE),$(SMOKE_ARGS)) \
		--out "$(or $(OUT),$(if $(SMOKE),.cache/smoke/$(DATASET),results/$(DATASET)))"

clean-venv:
	rm -rf $(VENV)
