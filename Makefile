# Two commands on a fresh machine:  `make demo` (the main job) and `make test` (the test suite).
# Each creates .venv when missing and installs this package with its test extras into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): setup.py pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# One full OMASGAN pipeline (Task 1 -> 2 -> 3 -> J) on sklearn's digits, leave-one-out, digit 0 held out.
demo: $(STAMP)
	$(BIN)/omasgan run --dataset digits --protocol loo --holdout 0 --seed 0 --out runs/demo-$$(date +%Y%m%d-%H%M%S)

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

clean:
	rm -rf $(VENV) build *.egg-info
