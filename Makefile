# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
# `make demo` needs only planner's runtime dependencies, not the test tools (a full install also satisfies it).
RUN_STAMP := $(VENV)/.installed-run-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: test demo lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# Byte-compile once: with PYTHONDONTWRITEBYTECODE set, every run would compile every import again.
	$(BIN)/python -m compileall -q -j0 $(VENV)/lib planner > /dev/null
	rm -f $(VENV)/.installed-*
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check planner tests benchmarks
	$(BIN)/mypy planner

test: lint
	$(BIN)/planner schema check
	$(BIN)/pytest -q -p no:cacheprovider

$(RUN_STAMP): pyproject.toml
	@if [ -e $(STAMP) ]; then touch $@; else \
	  $(PYTHON) -m venv $(VENV) && \
	  $(BIN)/python -m pip install --quiet -e . && \
	  $(BIN)/python -m compileall -q -j0 $(VENV)/lib planner > /dev/null && \
	  touch $@; fi

demo: $(RUN_STAMP)
	PYTHON=$(BIN)/python bash examples/demo.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
