# Two commands on a fresh machine: `make up` runs the whole service, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install up demo test lint clean bench reliability

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

install: $(BIN)/.installed

up: install
	$(BIN)/switchboard up

demo: install
	$(BIN)/switchboard demo

lint: install
	$(BIN)/ruff check .

test: install lint
	$(BIN)/pytest -q

# The reliability suite alone (issue 9); measured figures go to var/reliability.jsonl (see RELIABILITY.md).
reliability: install
	mkdir -p var && SWITCHBOARD_RELIABILITY_RESULTS=var/reliability.jsonl $(BIN)/pytest -q -m reliability

# The benchmark suite (issue 8): both brokers, a table on stdout, figures in bench/results.json (< 20 min).
bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info
