# The README's two set-up commands: `make demo` and `make test`.
# Both install the pinned environment of requirements.lock (scripts/lock writes it), then mlic
# itself (editable, without dependencies: nothing beyond the lock is installed).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mlic-installed

.PHONY: demo test install

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
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
