"""How `make train` launches: one process, or accelerate with DeepSpeed on several GPUs."""

import json
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
STAMP = ".venv/.skilltune-installed"


def make(*arguments: str) -> subprocess.CompletedProcess:
    # -o: treat the install and the steps before training as done, so only the launch is shown or run
    return subprocess.run(["make", "-o", STAMP, *arguments], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_several_gpus_go_through_accelerate_with_the_deepspeed_file():
    result = make("-n", "train", "MODEL=mistral", "GPUS=4", "DEEPSPEED=zero2")
    assert result.returncode == 0, result.stderr
    assert ("accelerate launch --num_processes 4 -m axolotl.cli.train configs/mistral.yml "
            "--deepspeed configs/deepspeed/zero2.json") in result.stdout


def test_one_gpu_is_plain_axolotl_train():
    result = make("-n", "train", "MODEL=smollm2")
    assert result.returncode == 0, result.stderr
    # W&B's offline run folder goes beside the adapter
    assert "\nWANDB_DIR=runs/smollm2 axolotl train configs/smollm2.yml" in result.stdout
    assert "accelerate launch" not in result.stdout and "--deepspeed" not in result.stdout


def test_merge_is_axolotl_merge_lora_of_the_config():
    result = make("-n", "merge", "MODEL=mistral")
    assert result.returncode == 0, result.stderr
    assert "\naxolotl merge-lora configs/mistral.yml" in result.stdout


def test_an_unknown_deepspeed_stage_stops_before_launching():
    result = make("-o", "preprocess", "train", "MODEL=smollm2", "DEEPSPEED=zero9")
    assert result.returncode != 0
    assert "error: DEEPSPEED=zero9: no configs/deepspeed/zero9.json (zero1, zero2 or zero3)" in result.stderr


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
    arguments = TrainingArguments(output_dir="unused", per_device_train_batch_size=4, gradient_accumulation_steps=2,
                                  use_cpu=True, report_to=[])
    filled.trainer_config_process(arguments)
    parsed = DeepSpeedConfig(filled.config)
    assert parsed.zero_optimization_stage == stage
    assert (parsed.train_micro_batch_size_per_gpu, parsed.gradient_accumulation_steps, parsed.train_batch_size) == (4, 2, 8)
