# The two commands of the README's quick start. Both create/refresh .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP_DEMO := $(VENV)/.installed-demo
STAMP_TEST := $(VENV)/.installed-test

.PHONY: demo test install clean models bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_DEMO): setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(STAMP_TEST): setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@ $(STAMP_DEMO)

install: $(STAMP_DEMO)

demo: $(STAMP_DEMO)
	$(BIN)/verify predict examples/images/digit-7.png --model multiclass
	$(BIN)/verify min-adv-card examples/images/digit-7.png --model multiclass --out demo-output
	@echo "demo: see demo-output/figure.png (original | changed pixels | adversarial) and demo-output/result.json"

test: $(STAMP_TEST)
	$(BIN)/python -m pytest -q

models: $(STAMP_DEMO)
	$(BIN)/python models/train.py

clean:
	rm -rf $(VENV) demo-output build *.egg-info
