"""How `make train` launches: offline or not, CPU overrides, one process, accelerate with DeepSpeed or FSDP on
several GPUs, torchrun across nodes, Ray. Checked with `make -n` (nothing runs)."""

import json
import os
import subprocess

import pytest
from conftest import REPO

STAMP = ".venv/.skilltune-installed"


# a make of its own, not a sub-make of `make test` (which would pass its flags and print "Entering directory")
MAKE_VARIABLES = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")


def make(*arguments: str, env: dict | None = None) -> subprocess.CompletedProcess:
    # -o: treat the install and the steps before training as done, so only the launch is shown or run
    env = {key: value for key, value in (os.environ if env is None else env).items() if key not in MAKE_VARIABLES}
    return subprocess.run(
        ["make", "-o", STAMP, *arguments], cwd=REPO, capture_output=True, text=True, timeout=120, env=env
    )


def shown(result: subprocess.CompletedProcess) -> str:
    """What `make -n` printed, each run of blanks as one space (empty make variables leave several)."""
    return "\n".join(" ".join(line.split()) for line in result.stdout.splitlines())


def without_offline_mode() -> dict:
    """The environment of a user's shell: the test suite's own HF_HUB_OFFLINE=1 (conftest) taken out."""
    return {key: value for key, value in os.environ.items() if key not in ("HF_HUB_OFFLINE", "HF_HUB_CACHE")}


def make_variable(name: str, *arguments: str) -> str:
    result = make(f"print-{name}", *arguments, env=without_offline_mode())
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split("=", 1)[1]


def test_a_hub_base_model_is_not_offline():
    assert make_variable("HF_HUB_OFFLINE", "MODEL=mistral") == ""
    dry = make("-n", "train", "MODEL=mistral", env=without_offline_mode())
    assert dry.returncode == 0, dry.stderr
    assert "HF_HUB_OFFLINE" not in shown(dry)
    assert "-m skilltune.hub mistralai/Mistral-7B-Instruct-v0.3" in shown(dry)  # access checked before any data work


@pytest.mark.parametrize(
    "arguments",
    [("MODEL=smollm2",), ("CONFIG=tests/fixtures/tiny-llama.yml", "MODEL=tiny"), ("MODEL=mistral", "STANDIN=1")],
)
def test_local_models_and_stand_ins_are_offline(arguments):
    assert make_variable("HF_HUB_OFFLINE", *arguments) == "1"


def test_a_stand_in_is_read_from_its_own_hub_cache():
    assert make_variable("HF_HUB_CACHE", "MODEL=mistral", "STANDIN=1") == str(REPO / "models" / "hub")
    assert make_variable("HF_HUB_CACHE", "MODEL=mistral", "STANDIN=1", "STANDIN_CACHE=/tmp/cache") == "/tmp/cache"
    dry = make("-n", "train", "MODEL=mistral", "STANDIN=1")
    assert "scripts/make_standin.py --config configs/mistral.yml --cache models/hub" in shown(dry)
    assert "skilltune.hub" not in shown(dry)


CPU_FLAGS = (
    "--bf16=False --no-fp16 --tf32=False --attn-implementation=sdpa "
    "--no-lora-mlp-kernel --no-lora-qkv-kernel --no-lora-o-kernel"
)


def test_the_cpu_switch_overrides_gpu_settings_through_axolotls_cli():
    dry = make("-n", "train", "merge", "MODEL=mistral", "CPU=1")
    assert dry.returncode == 0, dry.stderr
    assert f"axolotl preprocess configs/mistral.yml {CPU_FLAGS}" in shown(dry)
    assert f"axolotl train configs/mistral.yml {CPU_FLAGS}" in shown(dry)
    assert f"axolotl merge-lora configs/mistral.yml {CPU_FLAGS}" in shown(dry)
    assert "--no-load-in-4bit" not in shown(dry)  # QLoRA stays QLoRA on a CPU
    assert "--optimizer" not in shown(dry)  # and keeps its paged 8-bit AdamW (bitsandbytes runs it on a CPU)
    assert CPU_FLAGS not in shown(make("-n", "train", "MODEL=mistral", "CPU=0"))


def test_several_gpus_go_through_axolotls_accelerate_launcher_with_the_deepspeed_file():
    result = make("-n", "train", "MODEL=mistral", "GPUS=4", "DEEPSPEED=zero2", "CPU=0")
    assert result.returncode == 0, result.stderr
    assert (
        "axolotl train configs/mistral.yml --deepspeed=configs/deepspeed/zero2.json "
        "--launcher accelerate -- --num_processes 4"
    ) in shown(result)
    assert "-m axolotl.cli.train" not in shown(result)  # the legacy entry point


def test_one_gpu_is_plain_axolotl_train():
    result = make("-n", "train", "MODEL=smollm2", "CPU=0")
    assert result.returncode == 0, result.stderr
    # W&B's offline run folder goes beside the adapter
    assert "\nWANDB_DIR=runs/smollm2 axolotl train configs/smollm2.yml" in shown(result)
    assert "--launcher" not in shown(result) and "--deepspeed" not in shown(result)


def test_several_nodes_meet_at_a_torchrun_rendezvous_and_only_node_0_evaluates():
    head = make("-n", "train", "MODEL=mistral", "GPUS=8", "NNODES=2", "NODE_RANK=0", "MASTER_ADDR=head-node", "CPU=0")
    assert head.returncode == 0, head.stderr
    assert (
        "--launcher torchrun -- --nnodes 2 --node_rank 0 --nproc_per_node 8 --rdzv_backend c10d "
        "--rdzv_id skilltune-mistral-29500 --rdzv_endpoint head-node:29500"
    ) in shown(head)
    assert "-m eval run" in shown(head)
    worker = make(
        "-n",
        "train",
        "MODEL=mistral",
        "GPUS=8",
        "NNODES=2",
        "NODE_RANK=1",
        "MASTER_ADDR=head-node",
        "MASTER_PORT=6000",
        "CPU=0",
    )
    assert "--node_rank 1" in shown(worker) and "--rdzv_endpoint head-node:6000" in shown(worker)
    # the rendezvous id is the same on both nodes (Axolotl would draw a random one per node otherwise)
    assert "--rdzv_id skilltune-mistral-6000" in shown(worker)
    assert "-m eval run" not in shown(worker) and "node 1: trained; node 0 evaluates" in shown(worker)


def test_several_nodes_without_a_master_address_stop_before_any_work():
    result = make("train", "MODEL=mistral", "NNODES=2")
    assert result.returncode != 0
    assert "error: NNODES=2 needs MASTER_ADDR" in result.stderr
    assert "datagen" not in shown(result)


def test_ray_goes_through_axolotls_ray_launcher():
    result = make("-n", "train", "MODEL=mistral", "RAY_WORKERS=4", "CPU=0")
    assert result.returncode == 0, result.stderr
    assert "axolotl train configs/mistral.yml --use-ray --ray-num-workers 4" in shown(result)


def test_fsdp_layer_becomes_axolotl_overrides():
    result = make("-n", "train", "MODEL=mistral", "FSDP=qlora", "GPUS=8", "CPU=0")
    assert result.returncode == 0, result.stderr
    assert (
        "--fsdp-version=2 --no-fsdp-config.offload-params --no-fsdp-config.cpu-ram-efficient-loading "
        "--fsdp-config.auto-wrap-policy=TRANSFORMER_BASED_WRAP"
    ) in shown(result)
    assert "--gradient-checkpointing=False --optimizer=adamw_torch_fused" in shown(result)


def test_merge_is_axolotl_merge_lora_of_the_config():
    result = make("-n", "merge", "MODEL=mistral", "CPU=0")
    assert result.returncode == 0, result.stderr
    assert "\naxolotl merge-lora configs/mistral.yml" in shown(result)


@pytest.mark.parametrize(
    "variable, message",
    [
        ("DEEPSPEED=zero9", "error: DEEPSPEED=zero9: no configs/deepspeed/zero9.json (zero1, zero2 or zero3)"),
        ("FSDP=full", "error: FSDP=full: no configs/fsdp/full.yml (qlora)"),
    ],
)
def test_an_unknown_sharding_file_stops_before_any_work(variable, message):
    result = make("train", "MODEL=smollm2", variable)
    assert result.returncode != 0
    assert message in result.stderr
    assert "datagen" not in shown(result)


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_deepspeed_files_hold_their_stage_and_leave_batch_sizes_to_the_trainer(stage):
    config = json.loads((REPO / "configs" / "deepspeed" / f"zero{stage}.json").read_text())
    assert config["zero_optimization"]["stage"] == stage
    # "auto": the Hugging Face trainer fills these from the Axolotl YAML, so the two never disagree
    for key in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "train_batch_size"):
        assert config[key] == "auto", key


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_deepspeed_files_pass_deepspeeds_own_parser_after_the_trainer_fills_them(stage):
    """The path a run takes: transformers fills the "auto" values from the training arguments,
    then DeepSpeed parses the result."""
    from deepspeed.runtime.config import DeepSpeedConfig
    from transformers import TrainingArguments
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    filled = HfTrainerDeepSpeedConfig(str(REPO / "configs" / "deepspeed" / f"zero{stage}.json"))
    arguments = TrainingArguments(
        output_dir="unused", per_device_train_batch_size=4, gradient_accumulation_steps=2, use_cpu=True, report_to=[]
    )
    filled.trainer_config_process(arguments)
    parsed = DeepSpeedConfig(filled.config)
    assert parsed.zero_optimization_stage == stage
    assert (parsed.train_micro_batch_size_per_gpu, parsed.gradient_accumulation_steps, parsed.train_batch_size) == (
        4,
        2,
        8,
    )


def test_an_fsdp_layer_key_axolotl_does_not_know_is_named_with_its_line(tmp_path):
    import sys

    layer = tmp_path / "layer.yml"
    layer.write_text("fsdp_version: 2\nfsdp_config:\n  offload_params: false\n  no_such_key: 3\n")
    result = subprocess.run(
        [sys.executable, "-m", "skilltune.overrides", str(layer)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {layer}:4: fsdp-config.no-such-key: not an `axolotl train` option"
    )
