# The two commands a newcomer needs: `make demo` and `make test`.
# Both create .venv when missing and install the exact versions in constraints.txt.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test unit integration bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/healthcode demo

test: $(STAMP)
	scripts/ensure-chromium
	$(PY) -m pytest

unit: $(STAMP)
	$(PY) -m pytest tests/unit tests/property

integration: $(STAMP)
	$(PY) -m pytest tests/integration

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .healthcode .pytest_cache .hypothesis
