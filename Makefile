# shiftlab: `make demo` and `make test` each set everything up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
# Debian packages: the demo dataset, and what the tests' oracles, the browser test and the PostgreSQL store test need.
APT_PACKAGES := dataset-fashion-mnist libmagickwand-dev chromium chromium-driver postgresql
FMNIST := /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz

.PHONY: demo test setup apt venv lint clean

setup: apt venv

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) >/dev/null \
	      || { echo "apt-get install failed for:$$missing" >&2; exit 1; }; \
	  else \
	    echo "missing Debian packages:$$missing -- run: sudo apt-get install -y$$missing" >&2; \
	    [ -f $(FMNIST) ] || exit 1; \
	  fi; \
	fi

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/shiftlab demo

test: setup lint
	$(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check shiftlab tests benchmarks
	$(VENV)/bin/mypy shiftlab
	$(VENV)/bin/mypy --strict --follow-imports=silent shiftlab/core shiftlab/store
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
