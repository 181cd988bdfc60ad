# The two commands a newcomer needs: `make dev` runs tsprov, `make test` proves it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint typecheck unit browser pgbouncer bench clean

$(STAMP): pyproject.toml client/pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]' -e ./client
	touch $(STAMP)

dev: $(STAMP)
	$(BIN)/tsprov dev

lint: $(STAMP)
	$(BIN)/ruff check .

# The client is checked from its own folder, under its own settings (Python 3.10, the oldest
# it supports on the devices it enrols).
typecheck: $(STAMP)
	$(BIN)/mypy --strict service sandbox devstack migrations tests benchmarks
	cd client && ../$(BIN)/mypy --strict src tests

# The browser tests (consent pages, /docs) drive Debian's Chromium, never a downloaded build;
# they leave screenshots of every page in test-artifacts/.
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

# The scaling-out test puts Debian's PgBouncer in front of Postgres, in transaction mode.
pgbouncer:
	@if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ] && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's pgbouncer for the PgBouncer test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer; \
	fi

# The client's tests run the service and the sandbox as processes, under the client's own
# pytest settings (its folder is their root).
unit: $(STAMP) browser pgbouncer
	$(BIN)/pytest -q -p no:cacheprovider
	$(BIN)/pytest -q -p no:cacheprovider client/tests

test: lint typecheck unit

# tsprov next to a bare floor app under load; a few minutes (benchmarks/README.md).
bench: $(STAMP)
	$(BIN)/python -m benchmarks.provision_bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .tsprov .mypy_cache .ruff_cache .pytest_cache
