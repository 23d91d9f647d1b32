# The README's two commands: `make run` (set up .venv, run the embedded demo) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2
SNAKEMAKE_ARGS ?=
PYTEST_ARGS ?=

.PHONY: run test report lint dry-run clean help

help:
	@echo "make run     create .venv, install genolm, run the pipeline on config/config.yaml"
	@echo "make test    create .venv, install genolm with test tools, run the whole test suite"
	@echo "make report  Snakemake's own report of the last run (results/report/snakemake.html)"
	@echo "make lint    ruff, snakefmt --check and snakemake --lint"

# torch is pinned in pyproject.toml (torch==2.13.0): an unpinned torch would pull gigabytes of CUDA wheels.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --editable '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --workflow-profile workflow/profiles/default --cores $(CORES) $(SNAKEMAKE_ARGS)
	@echo "genolm: report written to $(CURDIR)/results/report/index.html"

report: $(STAMP)
	$(BIN)/snakemake --workflow-profile workflow/profiles/default --cores 1 --report results/report/snakemake.html

dry-run: $(STAMP)
	$(BIN)/snakemake --workflow-profile workflow/profiles/default --cores $(CORES) --dry-run $(SNAKEMAKE_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf results logs benchmarks .snakemake
