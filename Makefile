# skilltune: the pipeline, one target a step. Every target installs what it needs first (.venv, once).
#
#   make train                 # embedded SmolLM2-135M on CPU: model -> data -> axolotl preprocess/train -> eval
#   make train MODEL=mistral   # any configs/<MODEL>.yml
#   make merge MODEL=mistral   # adapter folded into the base model: runs/<model>/adapter/merged
#   make test                  # pytest, including two end-to-end training runs
#
# Variables: MODEL (configs/$(MODEL).yml), CONFIG (a YAML elsewhere), SEED, N, NOISE, STYLE (datagen skills),
# AXOLOTL_ARGS (extra `axolotl` flags, e.g. --max-steps=40), EVAL_ARGS (extra `python -m eval run` flags),
# GPUS (more than 1: `accelerate launch --num_processes GPUS`), DEEPSPEED (zero1|zero2|zero3: configs/deepspeed/).

MODEL ?= smollm2
CONFIG ?= configs/$(MODEL).yml
RUN_DIR ?= runs/$(MODEL)
DATA_DIR ?= data/skills
PACK ?= examples/skills
SEED ?= 0
N ?= 1000
NOISE ?= 0.3
STYLE ?= python
AXOLOTL_ARGS ?=
EVAL_ARGS ?=
GPUS ?= 1
DEEPSPEED ?=
PYTEST_ARGS ?=

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.skilltune-installed
BFCL_PACKAGE := bfcl-eval==2026.3.23

# No hub downloads, no telemetry. W&B (configs name a wandb_project) logs offline into
# $(RUN_DIR)/wandb unless the user sets WANDB_MODE=online and WANDB_API_KEY; the key stays in the environment.
# accelerate (Axolotl's launcher) must be on PATH; torch gets both cores.
export HF_HUB_OFFLINE ?= 1
export AXOLOTL_DO_NOT_TRACK ?= 1
export WANDB_MODE ?= offline
WANDB_DIR ?= $(RUN_DIR)
export OMP_NUM_THREADS ?= $(shell nproc)
export PATH := $(abspath $(VENV))/bin:$(PATH)

# The local base model each config points at, and the script that makes it (hub ids need none).
BASE_MODEL = $(shell sed -n 's/^base_model: *//p' $(CONFIG))
PREPARE_models/SmolLM2-135M-Instruct := scripts/prepare_smollm2.py
PREPARE_models/tiny-llama := scripts/make_tiny_model.py

.PHONY: install model data preprocess train merge eval test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	# the Berkeley Function Calling Leaderboard's data files (eval/bfcl.py reads them); --no-deps:
	# we need its JSON only, not the provider SDKs it depends on, and never import it
	$(PY) -m pip install --quiet --no-deps '$(BFCL_PACKAGE)'
	touch $@

model: $(STAMP)
	@test -f $(CONFIG) || { echo "error: $(CONFIG): no such config (MODEL=$(MODEL))" >&2; exit 1; }
	$(if $(PREPARE_$(BASE_MODEL)),$(PY) $(PREPARE_$(BASE_MODEL)) --out $(BASE_MODEL),@echo "$(BASE_MODEL): loaded by Axolotl itself")

data: $(STAMP)
	$(PY) -m datagen skills --pack $(PACK) --out $(DATA_DIR) --seed $(SEED) --n $(N) --noise $(NOISE) --style $(STYLE)

preprocess: model data
	axolotl preprocess $(CONFIG) $(AXOLOTL_ARGS)

# one GPU (or the CPU): plain `axolotl train`; several: accelerate starts one process per GPU
TRAIN_LAUNCHER = $(if $(filter-out 1,$(GPUS)),accelerate launch --num_processes $(GPUS) -m axolotl.cli.train,axolotl train)
DEEPSPEED_FILE = $(if $(DEEPSPEED),configs/deepspeed/$(DEEPSPEED).json)

train: preprocess
	@test -z "$(DEEPSPEED_FILE)" || test -f "$(DEEPSPEED_FILE)" || { echo "error: DEEPSPEED=$(DEEPSPEED): no $(DEEPSPEED_FILE) (zero1, zero2 or zero3)" >&2; exit 1; }
	mkdir -p $(WANDB_DIR)
	WANDB_DIR=$(WANDB_DIR) $(TRAIN_LAUNCHER) $(CONFIG) $(if $(DEEPSPEED_FILE),--deepspeed $(DEEPSPEED_FILE)) $(AXOLOTL_ARGS)
	$(MAKE) --no-print-directory -o $(STAMP) eval  # installed above; -o is not passed down to sub-makes

# the base model with the trained adapter folded in, a plain transformers folder: <output_dir>/merged
merge: $(STAMP)
	@test -f $(CONFIG) || { echo "error: $(CONFIG): no such config (MODEL=$(MODEL))" >&2; exit 1; }
	axolotl merge-lora $(CONFIG) $(AXOLOTL_ARGS)

eval: $(STAMP)
	$(PY) -m eval run --config $(CONFIG) --test $(DATA_DIR)/test.jsonl --out $(RUN_DIR) \
		$(if $(wildcard $(DATA_DIR)/test_noisy.jsonl),--noisy-test $(DATA_DIR)/test_noisy.jsonl) $(EVAL_ARGS)

# the embedded model first: the backend and constrained-decoding tests run on it (they skip without it)
test: $(STAMP)
	$(PY) scripts/prepare_smollm2.py --out models/SmolLM2-135M-Instruct
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) scripts/bench.py --out BENCHMARKS.md

clean:
	rm -rf data runs last_run_prepared wandb .pytest_cache
