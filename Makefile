# Two commands on a fresh machine:  `make demo` (the main job) and `make test` (the test suite).
# Each creates .venv when missing and installs this package with its test extras into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo run test test-fast install clean

$(STAMP): setup.py pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-cache-dir --upgrade pip
	$(BIN)/python -m pip install --quiet --no-cache-dir -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The main job: a small real study on sklearn's digits (embedded Ray, local files, no download):
# an Optuna search over Task 3's weights, each trial trained and scored on held-out digits 0 and 1,
# then its best trial and the paper's config rerun on 3 fresh seeds and compared, paired by
# (digit, seed), ending with its tables, the verdict, a report (figures + best-config.json) and the
# paths of its results.
demo: $(STAMP)
	$(BIN)/omasgan search --dataset digits --classes 0,1 --seeds 0 --space task3 --trials 3 --confirm 1 \
		--storage studies --name demo-$$(date +%Y%m%d-%H%M%S) --report

# One full OMASGAN pipeline (Task 1 -> 2 -> 3 -> J) on digits with digit 0 held out.
run: $(STAMP)
	$(BIN)/omasgan run --dataset digits --protocol loo --holdout 0 --seed 0 --out runs/run-$$(date +%Y%m%d-%H%M%S)

test: $(STAMP)
	$(BIN)/python -m pytest -q --durations=15 tests

# The inner loop: every test not marked slow (no Ray, no study, no subprocess).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" tests

clean:
	rm -rf $(VENV) build *.egg-info
