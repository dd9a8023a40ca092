# The two commands of the README: `make review` and `make test`. Everything else is set-up they call.
SHELL := /bin/bash
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: setup review test lint bench clean

setup: $(STAMP)

# Reinstalls when the dependency list or the set-up script changes.
$(STAMP): pyproject.toml scripts/setup.sh scripts/build-llama.sh
	bash scripts/setup.sh

review: setup
	$(VENV)/bin/weighbridge review --out reports/default

test: setup
	bash scripts/ensure-chromium.sh
	bash scripts/ensure-postgres.sh
	bash scripts/test.sh

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/mypy

bench: setup
	$(VENV)/bin/python benchmarks/throughput.py

clean:
	rm -rf $(VENV) reports .pytest_cache .mypy_cache .ruff_cache
