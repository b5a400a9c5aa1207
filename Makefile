# The README's commands. `make demo` installs only what the demo uses (the cli extra); `make test` adds
# the test tools and the peers the tests compare against (torch, entmax).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BUILD_STAMP := $(VENV)/.installed-build
CLI_STAMP := $(VENV)/.installed-cli
ALL_STAMP := $(VENV)/.installed-all

# The editable install rebuilds the compiled kernels with the venv's meson and ninja.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The build tools of pyproject.toml's [build-system], in the venv: an editable meson-python install
# needs them there (no build isolation), to rebuild the kernels when their sources change.
$(BUILD_STAMP): | $(BIN)/python
	$(BIN)/python -m pip install --quiet "meson-python>=0.16" "meson>=1.4" "cython>=3.0.10" ninja
	touch $(BUILD_STAMP)

$(CLI_STAMP): pyproject.toml meson.build | $(BUILD_STAMP)
	$(BIN)/python -m pip install --quiet --no-build-isolation -e ".[cli]"
	touch $(CLI_STAMP)

$(ALL_STAMP): pyproject.toml meson.build | $(BUILD_STAMP)
	$(BIN)/python -m pip install --quiet --no-build-isolation -e ".[all,test,peers]"
	touch $(CLI_STAMP) $(ALL_STAMP)

demo: $(CLI_STAMP)
	$(BIN)/luce demo --out luce-demo

test: $(ALL_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

bench: $(ALL_STAMP)
	for f in benchmarks/[!_]*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) build luce-demo .pytest_cache .ruff_cache
