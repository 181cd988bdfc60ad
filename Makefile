# The two commands a newcomer needs: `make dev` runs tsprov, `make test` proves it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint typecheck unit browser clean

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

# The browser tests (consent pages, /docs) drive Debian's Chromium, never a downloaded build;
# they leave screenshots of every page in test-artifacts/.
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

unit: $(STAMP) browser
	$(BIN)/pytest -q -p no:cacheprovider

test: lint typecheck unit

clean:
	rm -rf $(VENV) .tsprov .mypy_cache .ruff_cache .pytest_cache
