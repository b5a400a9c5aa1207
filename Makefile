# The README's commands. `make demo` installs only what the demo uses (the cli extra); `make test` adds
# the test tools and the peers the tests compare against (torch, entmax).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CLI_STAMP := $(VENV)/.installed-cli
ALL_STAMP := $(VENV)/.installed-all

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(CLI_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[cli]"
	touch $(CLI_STAMP)

$(ALL_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[all,test,peers]"
	touch $(CLI_STAMP) $(ALL_STAMP)

demo: $(CLI_STAMP)
	$(BIN)/luce demo --out luce-demo

test: $(ALL_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

bench: $(ALL_STAMP)
	for f in benchmarks/[!_]*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) luce-demo .pytest_cache .ruff_cache
