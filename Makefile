# The README's two set-up commands: `make demo` and `make test`.
# Both install the pinned environment of requirements.lock (scripts/lock writes it), then mlic
# itself (editable, without dependencies: nothing beyond the lock is installed).
# PYTHON: the interpreter the virtual environment is made from; the lock's releases (numpy 2.4,
# contourpy 1.3.3, ...) need 3.11 or newer, so an older one stops here with one line.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mlic-installed
NEWER := import sys; v = sys.version_info; sys.exit(0 if v >= (3, 11) else \
	f"make: requirements.lock needs Python 3.11 or newer; $(PYTHON) is {v[0]}.{v[1]}: run make PYTHON=python3.11 (or newer)")

.PHONY: demo test install

$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -c '$(NEWER)'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py

# pytest exits 5 when it collects nothing: that is a broken suite, so fail loudly.
test: $(STAMP)
	$(PY) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc
