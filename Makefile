# revpulse: the two commands of the README are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# pytest processes for `make test`: the integration tests mostly wait on workers, so two
# share 2 cores well (each has its own embedded broker and Redis); an idle one takes
# queued tests from the other (worksteal), so the long smoke runs do not queue on one
TEST_WORKERS ?= 2
STAMP := $(VENV)/.installed

# check: the quick loop while developing: lint, types, unit and property tests (< 2 min)
.PHONY: demo test check lint types unit property integration deploy-check bench soak chaos system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

## demo: install, start the embedded broker + Redis + worker with simulated CRM traffic
demo: $(STAMP)
	$(BIN)/revpulse dev --demo

## test: everything CI runs: lint, types, deploy checks, unit, property and integration tests
test: $(STAMP) system-deps lint types deploy-check
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal

## check: lint, types, and the unit and property tests with a quick Hypothesis profile
check: $(STAMP) lint types
	HYPOTHESIS_PROFILE=quick $(BIN)/pytest -q tests/unit tests/property -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit tests/property

integration: $(STAMP)
	$(BIN)/pytest tests/integration

deploy-check: system-deps
	bash deploy/check.sh

system-deps:
	bash scripts/system-deps.sh

bench: $(STAMP)
	$(BIN)/python -m bench.throughput

## soak: 10 minutes of live traffic while workers are killed; figures must equal the oracle
soak: $(STAMP)
	$(BIN)/python -m bench.soak

## chaos: worker kills, rebalance, Redis and broker faults, poison input, channel flood; one row each
chaos: $(STAMP)
	$(BIN)/python -m bench.chaos

clean:
	rm -rf $(VENV) .revpulse .pytest_cache .mypy_cache .ruff_cache
