"""Every Axolotl YAML in configs/ passes Axolotl 0.19's own config validation (no model is loaded)."""

import pytest
import yaml
from conftest import REPO

CONFIGS = sorted((REPO / "configs").glob("*.yml"))
GPU_CONFIGS = ["llama2", "mistral", "zephyr", "llama3", "qwen2.5"]


def validate(config: dict):
    from axolotl.utils.config import validate_config
    from axolotl.utils.dict import DictDefault

    return validate_config(DictDefault(config))


def test_every_promised_config_is_there():
    names = {path.stem for path in CONFIGS}
    assert {"smollm2", *GPU_CONFIGS} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.stem)
def test_config_passes_axolotl_validation(path):
    config = yaml.safe_load(path.read_text())
    validated = validate(config)
    assert validated["base_model"] == config["base_model"]
    # the pipeline's contract: the skill data in, the adapter out where `make eval` looks for it
    assert config["datasets"][0]["path"] == "data/skills/train.jsonl"
    assert config["test_datasets"][0]["path"] == "data/skills/val.jsonl"
    assert config["output_dir"] == f"runs/{path.stem}/adapter"


@pytest.mark.parametrize("name", GPU_CONFIGS)
def test_gpu_configs_are_qlora_with_packing(name):
    config = yaml.safe_load((REPO / "configs" / f"{name}.yml").read_text())
    assert (config["adapter"], config["load_in_4bit"], config["lora_target_linear"]) == ("qlora", True, True)
    assert config["sample_packing"] and config["gradient_checkpointing"]
    assert config["attn_implementation"] == "flash_attention_2"
    assert config["wandb_project"] == "skilltune"
    assert not any("key" in key for key in config)  # W&B and hub keys come from the environment only


@pytest.mark.parametrize(
    "change", [{"chat_template": "no_such_template"}, {"load_in_4bit": False}, {"micro_batch_size": "four"}]
)
def test_validation_rejects_a_broken_config(change):
    from pydantic import ValidationError

    config = yaml.safe_load((REPO / "configs" / "mistral.yml").read_text())
    with pytest.raises(ValidationError):
        validate({**config, **change})


@pytest.mark.parametrize("name", GPU_CONFIGS)
def test_the_fsdp_layer_over_each_gpu_config_passes_axolotl_validation(name):
    """configs/fsdp/qlora.yml, as `make FSDP=qlora` applies it (every key overrides the config's)."""
    config = yaml.safe_load((REPO / "configs" / f"{name}.yml").read_text())
    layer = yaml.safe_load((REPO / "configs" / "fsdp" / "qlora.yml").read_text())
    validated = validate({**config, **layer})
    assert validated["fsdp_version"] == 2 and validated["load_in_4bit"] is True
    assert validated["fsdp_config"]["cpu_ram_efficient_loading"] is False
    assert validated["optimizer"] == "adamw_torch_fused" and not validated["gradient_checkpointing"]


def test_axolotl_refuses_the_fsdp_layer_with_cpu_ram_efficient_loading():
    """Why the layer turns it off: with load_in_4bit Axolotl's validator rejects it."""
    from pydantic import ValidationError

    config = yaml.safe_load((REPO / "configs" / "mistral.yml").read_text())
    layer = yaml.safe_load((REPO / "configs" / "fsdp" / "qlora.yml").read_text())
    layer["fsdp_config"]["cpu_ram_efficient_loading"] = True
    with pytest.raises((ValidationError, ValueError), match="cpu_ram_efficient_loading"):
        validate({**config, **layer})


def test_every_gpu_config_keeps_qlora_trainable_on_a_cpu():
    for name in GPU_CONFIGS:
        config = yaml.safe_load((REPO / "configs" / f"{name}.yml").read_text())
        assert "skilltune.axolotl_plugin.Nf4TrainableOnCpu" in config["plugins"], name
