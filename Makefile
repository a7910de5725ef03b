# Two commands: `make test` (every check) and `make demo` (the main job). Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SOURCES := oid4vci tests examples benchmarks scripts

.PHONY: test test-slow test-minimum demo lint typecheck pytest bench bench-check bench-baseline clean

PYTEST_ARGS ?= -m "not slow" -n 2

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,dev]'
	touch $(STAMP)

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

typecheck: $(STAMP)
	$(BIN)/mypy --strict

# The CLI tests start many Python processes; with PYTHONDONTWRITEBYTECODE set (as here) each
# would compile the package from source (0.2 s). Compile it once first.
pytest: $(STAMP)
	$(BIN)/python -m compileall -q oid4vci > /dev/null
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The long checks: 500 concurrent wallets (one process; two workers on Redis), a flood against
# `oid4vci serve` while 50 wallets run whole flows, and the long fuzz
# profile (run by .ci/run).
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow tests/hostile_issuer/test_races.py tests/stores/test_scale.py \
		tests/security/test_flood_served.py tests/stores/test_serve_workers.py
	OID4VCI_FUZZ=long $(BIN)/python -m pytest \
		tests/security/test_fuzz_issuer.py tests/hostile_issuer/test_fuzz_wallet.py \
		tests/wallet/test_flow_property.py

# The tests with every runtime dependency (core and runtime extras) at its declared lower
# bound (pyproject.toml), in a second virtualenv (run by .ci/run).
VENV_MIN := .venv-min
MINIMUM_TESTS ?=
test-minimum:
	test -x $(VENV_MIN)/bin/python || $(PYTHON) -m venv $(VENV_MIN)
	$(VENV_MIN)/bin/python scripts/minimum_constraints.py > $(VENV_MIN)/constraints.txt
	$(VENV_MIN)/bin/python -m pip install -q --upgrade pip
	$(VENV_MIN)/bin/python -m pip install -q -c $(VENV_MIN)/constraints.txt -e '.[test]'
	$(VENV_MIN)/bin/python -m compileall -q oid4vci > /dev/null
	$(VENV_MIN)/bin/python -m pytest -m "not slow" -n 2 -q $(MINIMUM_TESTS)

demo: $(STAMP)
	$(BIN)/python -m oid4vci demo

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# The performance gate: instruction counts under callgrind as ratios to the floor, against
# benchmarks/gate_baseline.json (fails when one grows by more than 3 %). Needs valgrind
# (scripts/install-valgrind.sh). bench-baseline rewrites the baseline: commit it on purpose,
# with the reason in the commit message.
bench-check: $(STAMP)
	$(BIN)/python benchmarks/gate.py check

bench-baseline: $(STAMP)
	$(BIN)/python benchmarks/gate.py update

clean:
	rm -rf $(VENV) $(VENV_MIN) .mypy_cache .pytest_cache .ruff_cache .hypothesis
