# valuecube: two commands on a fresh machine with Python 3.11
#   make demo   set up .venv, run the main job on the bundled data
#   make test   set up .venv (with dev extras), run the test suite
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install bench clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11 ...'"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	@touch $(STAMP)

install: $(STAMP)

DEMO_TRIALS ?= 8

demo: $(STAMP)
	$(BIN)/valuecube segment --config configs/telco.yaml --input data/telco_churn.csv --output out/telco_segments.parquet
	$(BIN)/valuecube segment --config configs/cdnow.yaml --input data/cdnow_master.txt --output out/cdnow_segments.parquet
	$(BIN)/valuecube train --config configs/telco.yaml --trials $(DEMO_TRIALS)

# Headless Chromium + chromedriver for the report's browser test (Debian/Ubuntu apt, as root); once per venv.
CHROMIUM := $(VENV)/.chromium

$(CHROMIUM): | $(BIN)/python
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		(DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null)
	@touch $(CHROMIUM)

test: $(STAMP) $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: demo  # the benchmarks score with the model the demo registers
	$(BIN)/python benchmarks/baseline_quality.py
	$(BIN)/python benchmarks/bench_fuzzy_scoring.py
	$(BIN)/python benchmarks/bench_transaction_features.py
	$(BIN)/python benchmarks/bench_model_quality.py
	$(BIN)/python benchmarks/bench_batch_scoring.py
	$(BIN)/python benchmarks/bench_log_scoring.py
	$(BIN)/python benchmarks/bench_api.py
	$(BIN)/python benchmarks/bench_spark.py

clean:
	rm -rf out .pytest_cache
