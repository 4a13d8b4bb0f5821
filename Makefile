# The two commands a newcomer needs: `make demo` and `make test`.
# Both create .venv when missing and install the exact versions in constraints.txt.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The checkpoint page's front-end packages, from the npm registry, exactly as locked.
NPM_STAMP := checkpoint/node_modules/.installed

.PHONY: install checkpoint demo test unit integration bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(NPM_STAMP): checkpoint/package.json checkpoint/package-lock.json
	command -v npm >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null)
	cd checkpoint && npm ci --no-audit --no-fund --loglevel=error
	touch $(NPM_STAMP)

checkpoint: $(NPM_STAMP)

demo: $(STAMP) $(NPM_STAMP)
	$(VENV)/bin/healthcode demo

test: $(STAMP) $(NPM_STAMP)
	scripts/ensure-chromium
	$(PY) -m pytest -n 2 --dist loadscope

unit: $(STAMP)
	$(PY) -m pytest tests/unit tests/property

integration: $(STAMP)
	$(PY) -m pytest tests/integration

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .healthcode .pytest_cache .hypothesis checkpoint/node_modules
