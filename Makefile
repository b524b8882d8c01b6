# skilltune: the pipeline, one target a step. Every target installs what it needs first (.venv, once).
#
#   make train                          # embedded SmolLM2-135M on CPU: model -> data -> check -> axolotl preprocess/train -> eval
#   make train MODEL=mistral            # any configs/<MODEL>.yml; a hub base_model downloads as Axolotl does
#   make train MODEL=mistral STANDIN=1  # the same config on a tiny random-weight Mistral from a local cache (no GPU, no network)
#   make check-config MODEL=mistral     # validate, render a record with its trained tokens marked, estimate GPU memory
#   make merge MODEL=mistral            # adapter folded into the base model: runs/<model>/adapter/merged
#   make export                         # merged model, GGUF f16/q8_0/q4_k_m, grammar, tools, Modelfile: runs/<model>/export
#   make serve                          # the export behind an OpenAI-compatible server on 127.0.0.1:$(PORT)
#   make test                           # pytest, including end-to-end training runs
#
# Variables: MODEL (configs/$(MODEL).yml), CONFIG (a YAML elsewhere), SEED, N, NOISE, VARIETY, NEGATIVES, STYLE (datagen skills),
# AXOLOTL_ARGS (extra `axolotl` flags, e.g. --max-steps=40), EVAL_ARGS (extra `python -m eval run` flags), DECODING
# (how make eval decodes the tuned model: grounded (default, python/json styles), constrained or free),
# STANDIN=1 (the config's base model replaced by its stand-in, scripts/make_standin.py; STANDIN_SIZE=real: 7-8B shapes), CPU (1: CPU overrides on
# top of the config, 0: none; default 1 where nvidia-smi is missing), GPUS (processes per node), DEEPSPEED
# (zero1|zero2|zero3: configs/deepspeed/), FSDP (qlora: configs/fsdp/qlora.yml), NNODES, NODE_RANK, MASTER_ADDR,
# MASTER_PORT (torchrun rendezvous across machines), RAY_WORKERS (Axolotl's Ray launcher).
# make export/serve: EXPORT_DIR (default runs/<model>/export), QUANT (quantizations, default q8_0 q4_k_m),
# SERVE_QUANT (the GGUF served: q8_0, q4_k_m or f16; default the first of QUANT), PORT (default 8080),
# SERVE_CMAKE_ARGS (llama-cpp-python's build flags).

MODEL ?= smollm2
CONFIG ?= configs/$(MODEL).yml
RUN_DIR ?= runs/$(MODEL)
DATA_DIR ?= data/skills
PACK ?= examples/skills
SEED ?= 0
N ?= 1000
NOISE ?= 0.3
# 30 % of train/val rewritten as people type (quotes, capitals, the skill named, typos): held-out wording
# 84.1 -> 87.8 % for 1 point of the template split (BENCHMARKS.md, Accuracy)
VARIETY ?= 0.3
NEGATIVES ?= 0.2
# 30 % test: a template split of ~300 records (one error = 0.3 points); train keeps ~650 (2 epochs: 162 steps)
TEST_FRACTION ?= 0.3
VAL_FRACTION ?= 0.05
DATAGEN_ARGS ?=
BASE_LIMIT ?= 60
DECODING ?= grounded
STYLE ?= python
AXOLOTL_ARGS ?=
EVAL_ARGS ?=
GPUS ?= 1
DEEPSPEED ?=
PYTEST_ARGS ?=
STANDIN ?=
STANDIN_CACHE ?= models/hub
STANDIN_SIZE ?= tiny
CPU ?= $(if $(shell command -v nvidia-smi 2>/dev/null),0,1)
NNODES ?= 1
NODE_RANK ?= 0
MASTER_ADDR ?=
MASTER_PORT ?= 29500
RAY_WORKERS ?=
FSDP ?=

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.skilltune-installed
# the `serve` extra (llama-cpp-python, built from source) and llama.cpp's converter from the same pinned
# sdist (skilltune/converter_source.py): installed on first `make export`, `make serve` or `make test`
SERVE_STAMP := $(VENV)/.skilltune-serve-installed
CONVERTER := $(VENV)/llama.cpp-converter/convert_hf_to_gguf.py
# GGML_NATIVE=OFF: a build tuned to the build machine's CPU segfaulted on the first decode here (a CPU with
# AMX and AVX-512); the portable build (AVX2) generates correctly. pip caches the wheel it builds: after
# changing SERVE_CMAKE_ARGS (e.g. -DGGML_CUDA=on), reinstall with `pip install --no-cache-dir`.
SERVE_CMAKE_ARGS ?= -DGGML_NATIVE=OFF
OUTPUT_DIR = $(shell sed -n 's/^output_dir: *//p' $(CONFIG) 2>/dev/null)
EXPORT_DIR ?= $(RUN_DIR)/export
QUANT ?= q8_0 q4_k_m
SERVE_QUANT ?=
PORT ?= 8080
BFCL_PACKAGE := bfcl-eval==2026.3.23

# No telemetry. W&B (configs name a wandb_project) logs offline into $(RUN_DIR)/wandb unless the user sets
# WANDB_MODE=online and WANDB_API_KEY; the key stays in the environment. accelerate and torchrun (Axolotl's
# launchers) must be on PATH; torch gets every core.
export AXOLOTL_DO_NOT_TRACK ?= 1
export WANDB_MODE ?= offline
WANDB_DIR ?= $(RUN_DIR)
export OMP_NUM_THREADS ?= $(shell nproc)
export PATH := $(abspath $(VENV))/bin:$(PATH)

BASE_MODEL = $(shell sed -n 's/^base_model: *//p' $(CONFIG) 2>/dev/null)
# Offline only where the model is local: a folder (models/..., a path) or a stand-in. A hub base_model
# downloads into the Hugging Face cache (~/.cache/huggingface/hub, or HF_HUB_CACHE) as Axolotl does.
LOCAL_MODEL = $(or $(STANDIN),$(filter models/% /% ./% ../%,$(BASE_MODEL)),$(wildcard $(BASE_MODEL)/config.json))
ifneq ($(LOCAL_MODEL),)
export HF_HUB_OFFLINE ?= 1
endif
ifneq ($(STANDIN),)
export HF_HUB_CACHE := $(abspath $(STANDIN_CACHE))
endif

# What a CPU needs on top of a GPU config, as Axolotl CLI overrides (the YAML is not edited): no bf16/fp16/tf32,
# SDPA instead of flash attention, no Triton LoRA kernels. load_in_4bit and the paged 8-bit AdamW stay:
# bitsandbytes runs both on a CPU, so QLoRA itself is exercised.
CPU_ARGS = $(if $(filter 1,$(CPU)),--bf16=False --no-fp16 --tf32=False --attn-implementation=sdpa \
	--no-lora-mlp-kernel --no-lora-qkv-kernel --no-lora-o-kernel)
ARGS = $(CPU_ARGS) $(AXOLOTL_ARGS)

# The local base model each config points at, and the script that makes it (hub ids need none).
PREPARE_models/SmolLM2-135M-Instruct := scripts/prepare_smollm2.py
PREPARE_models/tiny-llama := scripts/make_tiny_model.py

.PHONY: install install-serve model data check-data check-config check-launch preprocess train merge export serve eval lint \
	test test-fast bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	# the Berkeley Function Calling Leaderboard's data files (eval/bfcl.py reads them); --no-deps:
	# we need its JSON only, not the provider SDKs it depends on, and never import it
	$(PY) -m pip install --quiet --no-deps '$(BFCL_PACKAGE)'
	touch $@

install-serve: $(SERVE_STAMP)

# llama-cpp-python's sdist compiles llama.cpp: 552 s on the 2 cores here while a training shared them
# (~4-5 min on idle cores)
$(SERVE_STAMP): $(STAMP)
	CMAKE_ARGS="$(SERVE_CMAKE_ARGS)" $(PY) -m pip install --quiet -e '.[serve]'
	$(PY) -m skilltune.converter_source --dest $(dir $(CONVERTER))
	touch $@

model: $(STAMP)
	@test -f $(CONFIG) || { echo "error: $(CONFIG): no such config (MODEL=$(MODEL))" >&2; exit 1; }
ifneq ($(STANDIN),)
	$(PY) scripts/make_standin.py --config $(CONFIG) --cache $(STANDIN_CACHE) --size $(STANDIN_SIZE)
else ifneq ($(PREPARE_$(BASE_MODEL)),)
	$(PY) $(PREPARE_$(BASE_MODEL)) --out $(BASE_MODEL)
else
	$(PY) -m skilltune.hub $(BASE_MODEL)
endif

data: $(STAMP)
	$(PY) -m datagen skills --pack $(PACK) --out $(DATA_DIR) --seed $(SEED) --n $(N) --noise $(NOISE) --style $(STYLE) \
		--test-fraction $(TEST_FRACTION) --val-fraction $(VAL_FRACTION) --variety $(VARIETY) --negatives $(NEGATIVES) \
		$(DATAGEN_ARGS)

# refuses, before any preprocessing, records the config would drop or truncate (longer than sequence_len)
check-data: model data
	$(PY) -m skilltune.preflight $(CONFIG)

check-config: model
	$(PY) -m skilltune.check_config $(CONFIG) --pack $(PACK) --style $(STYLE)

preprocess: check-data
	axolotl preprocess $(CONFIG) $(ARGS)

# One process (GPU or CPU): Axolotl's default launcher. GPUS=N: accelerate, one process per GPU. NNODES=N: torchrun
# rendezvous at MASTER_ADDR:MASTER_PORT (the same rdzv id on every node). RAY_WORKERS=N: Axolotl's Ray launcher.
RDZV_ID = skilltune-$(MODEL)-$(MASTER_PORT)
LAUNCH = $(strip $(if $(RAY_WORKERS),--use-ray --ray-num-workers $(RAY_WORKERS),\
	$(if $(filter-out 1,$(NNODES)),--launcher torchrun -- --nnodes $(NNODES) --node_rank $(NODE_RANK) \
		--nproc_per_node $(GPUS) --rdzv_backend c10d --rdzv_id $(RDZV_ID) --rdzv_endpoint $(MASTER_ADDR):$(MASTER_PORT),\
	$(if $(filter-out 1,$(GPUS)),--launcher accelerate -- --num_processes $(GPUS)))))
DEEPSPEED_FILE = $(if $(DEEPSPEED),configs/deepspeed/$(DEEPSPEED).json)
FSDP_FILE = $(if $(FSDP),configs/fsdp/$(FSDP).yml)
FSDP_ARGS = $(if $(FSDP),$(shell $(PY) -m skilltune.overrides $(FSDP_FILE)))

# checked before data and preprocessing: a wrong launch should not cost minutes first (an FSDP layer is read
# with the installed Axolotl's own CLI options, so it needs .venv)
check-launch: $(if $(FSDP),$(STAMP))
	@test -z "$(DEEPSPEED_FILE)" || test -f "$(DEEPSPEED_FILE)" || { echo "error: DEEPSPEED=$(DEEPSPEED): no $(DEEPSPEED_FILE) (zero1, zero2 or zero3)" >&2; exit 1; }
	@test -z "$(FSDP_FILE)" || test -f "$(FSDP_FILE)" || { echo "error: FSDP=$(FSDP): no $(FSDP_FILE) (qlora)" >&2; exit 1; }
	$(if $(FSDP_FILE),@$(PY) -m skilltune.overrides $(FSDP_FILE) > /dev/null)
	@test "$(NNODES)" = 1 || test -n "$(MASTER_ADDR)" || { echo "error: NNODES=$(NNODES) needs MASTER_ADDR (the address of node 0, reachable from every node)" >&2; exit 1; }

train: check-launch preprocess
	mkdir -p $(WANDB_DIR)
	WANDB_DIR=$(WANDB_DIR) axolotl train $(CONFIG) $(if $(DEEPSPEED_FILE),--deepspeed=$(DEEPSPEED_FILE)) $(FSDP_ARGS) $(ARGS) $(LAUNCH)
	$(if $(filter 0,$(NODE_RANK)),$(MAKE) --no-print-directory -o $(STAMP) eval,@echo "node $(NODE_RANK): trained; node 0 evaluates")

# the base model with the trained adapter folded in, a plain transformers folder: <output_dir>/merged
merge: $(STAMP)
	@test -f $(CONFIG) || { echo "error: $(CONFIG): no such config (MODEL=$(MODEL))" >&2; exit 1; }
	axolotl merge-lora $(CONFIG) $(ARGS)

# re-merged only when the adapter is newer than the merged weights; the export folder is replaced whole,
# and only when it is an earlier export (skilltune/export.py)
export: $(SERVE_STAMP)
	@test -f $(CONFIG) || { echo "error: $(CONFIG): no such config (MODEL=$(MODEL))" >&2; exit 1; }
	@test -f $(OUTPUT_DIR)/adapter_config.json || { echo "error: $(OUTPUT_DIR): no trained adapter; run make train first (MODEL=$(MODEL))" >&2; exit 1; }
	@find $(OUTPUT_DIR)/merged -name '*.safetensors' -newer $(OUTPUT_DIR)/adapter_config.json 2>/dev/null | grep -q . \
		|| $(MAKE) --no-print-directory -o $(STAMP) merge
	$(PY) -m skilltune.export --config $(CONFIG) --out $(EXPORT_DIR) --converter $(CONVERTER) $(addprefix --quant ,$(QUANT))

serve: $(SERVE_STAMP)
	@test -f $(EXPORT_DIR)/export.json || { echo "error: $(EXPORT_DIR): no export; run make export first (MODEL=$(MODEL))" >&2; exit 1; }
	$(PY) -m skilltune.serve --export $(EXPORT_DIR) --port $(PORT) --alias $(MODEL) $(if $(SERVE_QUANT),--quant $(SERVE_QUANT))

eval: $(STAMP)
	$(PY) -m eval run --config $(CONFIG) --test $(DATA_DIR)/test.jsonl --out $(RUN_DIR) \
		$(if $(BASE_LIMIT),--base-limit $(BASE_LIMIT)) $(if $(filter python json,$(STYLE)),--decoding $(DECODING)) \
		$(if $(wildcard $(DATA_DIR)/test_noisy.jsonl),--noisy-test $(DATA_DIR)/test_noisy.jsonl) \
		$(if $(wildcard $(DATA_DIR)/test_wording.jsonl),--wording-test $(DATA_DIR)/test_wording.jsonl) \
		$(if $(wildcard $(DATA_DIR)/test_unseen.jsonl),--unseen-test $(DATA_DIR)/test_unseen.jsonl) $(EVAL_ARGS)

# ruff: lint rules and the formatter's layout, both from pyproject.toml; `make test` (CI) runs it first
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# the embedded model first: the backend and constrained-decoding tests run on it (they skip without it);
# the serve extra too, so tests/serve (GGUF export, the server) run rather than skip
test: $(STAMP) $(SERVE_STAMP) lint
	$(PY) scripts/prepare_smollm2.py --out models/SmolLM2-135M-Instruct
	$(PY) -m pytest $(PYTEST_ARGS)

# everything but the end-to-end training runs (the e2e marker), on two workers: the loop while editing
test-fast: $(STAMP)
	$(PY) scripts/prepare_smollm2.py --out models/SmolLM2-135M-Instruct
	$(PY) -m pytest -m "not e2e" -n 2 $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) scripts/bench.py --out BENCHMARKS.md

# make print-HF_HUB_OFFLINE MODEL=mistral: a variable's value as this Makefile computes it (tests read these)
print-%:
	@echo '$*=$($*)'

clean:
	rm -rf data runs last_run_prepared wandb .pytest_cache
