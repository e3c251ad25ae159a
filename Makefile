# The two commands of the README's quick start. Both create/refresh .venv themselves, from the
# tested versions in constraints.txt (PIP_CONSTRAINT also pins the build backend).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP_DEMO := $(VENV)/.installed-demo
STAMP_TEST := $(VENV)/.installed-test
STAMP_CHECK := $(VENV)/.installed-check
PIN    := PIP_CONSTRAINT=$(CURDIR)/constraints.txt

.PHONY: demo test check install clean models bench test-latest lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIN) $(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_DEMO): setup.cfg pyproject.toml constraints.txt | $(BIN)/python
	$(PIN) $(BIN)/pip install --quiet -e .
	touch $@

$(STAMP_TEST): setup.cfg pyproject.toml constraints.txt | $(BIN)/python
	$(PIN) $(BIN)/pip install --quiet -e ".[test]"
	touch $@ $(STAMP_DEMO)

install: $(STAMP_DEMO)

demo: $(STAMP_DEMO)
	$(BIN)/verify predict examples/images/digit-7.png --model multiclass
	$(BIN)/verify min-adv-card examples/images/digit-7.png --model multiclass --out demo-output
	@echo "demo: see demo-output/figure.png (original | changed pixels | adversarial) and demo-output/result.json"

test: $(STAMP_TEST)
	$(BIN)/python -m pytest -q

$(STAMP_CHECK): setup.cfg pyproject.toml constraints.txt | $(BIN)/python
	$(PIN) $(BIN)/pip install --quiet -e ".[check]"
	touch $@ $(STAMP_DEMO)

# Static checks (configuration in pyproject.toml and setup.cfg): ruff, the import layering
# (import-linter contracts; README, "How it is built") and mypy on the package.
# All three run; the target fails if any of them does.
check: $(STAMP_CHECK)
	@status=0; \
	$(BIN)/ruff check verify tests benchmarks models || status=1; \
	$(BIN)/lint-imports || status=1; \
	$(BIN)/mypy verify || status=1; \
	exit $$status

# The newest releases of every dependency (no constraints), in their own venv: what would break.
test-latest:
	rm -rf .venv-latest
	$(PYTHON) -m venv .venv-latest
	PIP_CONSTRAINT= .venv-latest/bin/python -m pip install --quiet --upgrade pip
	PIP_CONSTRAINT= .venv-latest/bin/pip install --quiet --upgrade -e ".[test]"
	@.venv-latest/bin/pip freeze --exclude-editable | LC_ALL=C sort > .venv-latest/freeze.txt
	@grep -v '^#' constraints.txt | LC_ALL=C sort | LC_ALL=C comm -13 - .venv-latest/freeze.txt \
	  | sed 's/^/not the tested version: /' || true
	.venv-latest/bin/python -m pytest -q

# Re-pin constraints.txt to what .venv holds now (run make test afterwards).
lock: $(STAMP_TEST)
	{ sed -n '1,/^# `make test-latest`/p' constraints.txt; \
	  $(BIN)/pip freeze --exclude-editable | grep -v '^#' | sort -f; \
	  grep -E '^(pip|setuptools|wheel)==' constraints.txt; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

models: $(STAMP_DEMO)
	$(BIN)/python models/train.py

clean:
	rm -rf $(VENV) .venv-latest demo-output build *.egg-info
