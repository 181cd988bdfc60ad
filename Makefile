# The two commands a newcomer needs: `make dev` runs tsprov, `make test` proves it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint typecheck unit browser bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

dev: $(STAMP)
	$(BIN)/tsprov dev

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict service sandbox devstack migrations tests benchmarks

# The consent-flow browser test drives Debian's Chromium (never a downloaded browser build).
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

unit: $(STAMP) browser
	$(BIN)/pytest -q -p no:cacheprovider

test: lint typecheck unit

# tsprov next to a bare floor app under load; a few minutes (benchmarks/README.md).
bench: $(STAMP)
	$(BIN)/python -m benchmarks.provision_bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .tsprov .mypy_cache .ruff_cache .pytest_cache
