"""The stand-ins of skilltune/standins.py: each family's real architecture class and special tokens,
found under the config's real repo id in a local hub cache, and QLoRA's pieces working on them on a
CPU (nf4 layers, k-bit preparation, LoRA gradients through 4-bit weights)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from conftest import REPO

from skilltune.standins import FAMILIES, STAMP, build_standin, family_of

GPU_CONFIGS = ["llama2", "mistral", "zephyr", "llama3", "qwen2.5"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hub")
    for name in FAMILIES:
        build_standin(name, folder)
    return folder


@pytest.mark.parametrize("config_name", GPU_CONFIGS)
def test_every_gpu_config_has_a_stand_in_under_its_own_repo_id(config_name):
    base_model = yaml.safe_load((REPO / "configs" / f"{config_name}.yml").read_text())["base_model"]
    assert family_of(base_model) == config_name


def test_an_unknown_base_model_names_the_known_ones():
    with pytest.raises(KeyError, match="stand-ins exist for NousResearch/Llama-2-7b-hf"):
        family_of("someone/else-7b")


@pytest.mark.parametrize(
    "name, architecture",
    [
        ("llama2", "LlamaForCausalLM"),
        ("mistral", "MistralForCausalLM"),
        ("zephyr", "MistralForCausalLM"),
        ("llama3", "LlamaForCausalLM"),
        ("qwen2.5", "Qwen2ForCausalLM"),
    ],
)
def test_the_repo_id_resolves_offline_to_the_familys_class_and_tokens(cache, name, architecture):
    from transformers import AutoConfig, AutoTokenizer

    family = FAMILIES[name]
    config = AutoConfig.from_pretrained(family.repo_id, cache_dir=cache, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(family.repo_id, cache_dir=cache, local_files_only=True)
    assert config.architectures == [architecture]
    assert (tokenizer.eos_token, tokenizer.bos_token, tokenizer.pad_token) == (family.eos, family.bos, family.pad)
    assert config.eos_token_id == tokenizer.eos_token_id
    for token in family.special_tokens:  # each one a single id, never split into pieces
        assert len(tokenizer(token, add_special_tokens=False)["input_ids"]) == 1, token
    encoded = tokenizer("hi")["input_ids"]
    assert (encoded[0] == tokenizer.bos_token_id) == family.add_bos
    assert (tokenizer.chat_template is None) == (name == "llama2")  # a base model ships no template


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_the_tiny_shapes_keep_grouped_attention_and_fit_bitsandbytes_cpu_blocks(cache, name):
    from skilltune.standins import standin_folder

    config = json.loads((standin_folder(name, cache) / "config.json").read_text())
    real = FAMILIES[name].real_shapes
    grouped = real["num_key_value_heads"] < real["num_attention_heads"]
    assert (config["num_key_value_heads"] < config["num_attention_heads"]) == grouped
    head_dim = config["hidden_size"] // config["num_attention_heads"]
    for rows in (config["hidden_size"], config["intermediate_size"], config["num_key_value_heads"] * head_dim):
        assert rows % 32 == 0, rows


def test_a_second_build_leaves_the_stand_in_alone(cache):
    folder = build_standin("mistral", cache)
    weights = folder / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert build_standin("mistral", cache) == folder and weights.stat().st_mtime_ns == before
    stamp = json.loads((folder / STAMP).read_text())
    assert stamp["repo_id"] == "mistralai/Mistral-7B-Instruct-v0.3" and stamp["real_shapes"]["hidden_size"] == 4096


def test_the_script_builds_from_a_config(tmp_path):
    result = subprocess.run(
        [sys.executable, "scripts/make_standin.py", "--config", "configs/qwen2.5.yml", "--cache", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Qwen/Qwen2.5-7B-Instruct: tiny stand-in (Qwen2)" in result.stdout
    assert (tmp_path / "models--Qwen--Qwen2.5-7B-Instruct" / "refs" / "main").read_text()
    refused = subprocess.run(
        [sys.executable, "scripts/make_standin.py", "--config", "configs/smollm2.yml", "--cache", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode == 1
    assert (
        refused.stderr.strip()
        .splitlines()[-1]
        .startswith("error: configs/smollm2.yml: models/SmolLM2-135M-Instruct: no stand-in for this base model")
    )


@pytest.mark.parametrize("name", ["mistral", "qwen2.5"])
def test_qlora_on_a_cpu_nf4_layers_kbit_preparation_and_lora_gradients(cache, name):
    """What `load_in_4bit: true` + `adapter: qlora` do in Axolotl, on the stand-in: nf4 Linear4bit
    layers, prepare_model_for_kbit_training, LoRA on every projection; a training step moves only
    LoRA weights, and evaluation mode (bitsandbytes repacks nf4 weights for a bf16 CPU kernel there)
    gives the training-mode logits to bf16 rounding (seen here: 0.005 apart at logits of about 0.4)."""
    import bitsandbytes as bnb
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.float32,
    )
    model = AutoModelForCausalLM.from_pretrained(
        FAMILIES[name].repo_id,
        cache_dir=cache,
        local_files_only=True,
        quantization_config=quantization,
        device_map={"": "cpu"},
    )
    quantized = [module for module in model.modules() if isinstance(module, bnb.nn.Linear4bit)]
    assert len(quantized) == 7 * model.config.num_hidden_layers  # q k v o gate up down, lm_head kept whole
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=targets, task_type="CAUSAL_LM"))
    torch.manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (2, 24))
    frozen = {key: value.clone() for key, value in model.state_dict().items() if "lora_" not in key}
    optimizer = torch.optim.AdamW([parameter for parameter in model.parameters() if parameter.requires_grad], lr=1e-2)
    model.train()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    grads = {key: parameter.grad for key, parameter in model.named_parameters() if parameter.requires_grad}
    assert grads and all("lora_" in key for key in grads)
    assert all(grads[key].abs().sum() > 0 for key in grads if "lora_B" in key)  # B starts at 0: its grad cannot
    optimizer.step()
    after = model.state_dict()
    assert all(torch.equal(frozen[key], after[key]) for key in frozen)  # the 4-bit base never moves
    with torch.no_grad():
        training_logits = model(input_ids=ids).logits
        model.eval()
        eval_logits = model(input_ids=ids).logits
    assert torch.allclose(training_logits, eval_logits, atol=2e-2), (training_logits - eval_logits).abs().max()


def test_gradients_through_a_4bit_layer_are_those_of_its_dequantized_weights():
    """bitsandbytes warns "an autograd kernel was not registered" for gemv_4bit during CPU training;
    the gradient LoRA layers below a 4-bit layer receive is still exact."""
    import bitsandbytes as bnb
    import torch
    from bitsandbytes.functional import dequantize_4bit

    torch.manual_seed(0)
    layer = bnb.nn.Linear4bit(128, 256, bias=False, compute_dtype=torch.float32, quant_type="nf4")
    layer.weight = bnb.nn.Params4bit(torch.randn(256, 128), requires_grad=False, quant_type="nf4")
    layer = layer.to("cpu")
    weight = dequantize_4bit(layer.weight.data, layer.weight.quant_state).float()
    assert not torch.equal(weight, torch.zeros_like(weight))
    for shape in [(4, 10, 128), (1, 1, 128)]:
        inputs = torch.randn(*shape, requires_grad=True)
        layer(inputs).pow(2).sum().backward()
        through_4bit, inputs.grad = inputs.grad, None
        (inputs @ weight.t()).pow(2).sum().backward()
        assert torch.allclose(through_4bit, inputs.grad, atol=1e-4), shape


@pytest.mark.parametrize("keep_trainable", [False, True])
def test_after_an_eval_forward_4bit_layers_pass_gradients_only_with_the_plugins_fix(keep_trainable):
    """Axolotl evaluates at step 0. On an AVX512-BF16 CPU that repacks every 4-bit layer for a kernel
    with no backward, unless skilltune.axolotl_plugin.Nf4TrainableOnCpu turned the repack off."""
    import bitsandbytes as bnb
    import torch
    from bitsandbytes.functional import dequantize_4bit

    from skilltune.axolotl_plugin import keep_nf4_trainable

    torch.manual_seed(0)
    model = torch.nn.Sequential(bnb.nn.Linear4bit(128, 256, bias=False, compute_dtype=torch.float32, quant_type="nf4"))
    model[0].weight = bnb.nn.Params4bit(torch.randn(256, 128), requires_grad=False, quant_type="nf4")
    model = model.to("cpu")
    weight = dequantize_4bit(model[0].weight.data, model[0].weight.quant_state).float()
    if not model[0].support_avx512bf16_for_cpu:
        pytest.skip("this CPU has no AVX512-BF16: bitsandbytes never repacks here")
    if keep_trainable:
        assert keep_nf4_trainable(model) == 1
    with torch.no_grad():
        model.eval()(torch.randn(2, 5, 128))
    inputs = torch.randn(4, 10, 128, requires_grad=True)
    model.train()(inputs).pow(2).sum().backward()
    if not keep_trainable:
        assert inputs.grad is None  # the bitsandbytes 0.50 behaviour the plugin exists for
        return
    through_4bit, inputs.grad = inputs.grad, None
    (inputs @ weight.t()).pow(2).sum().backward()
    assert torch.allclose(through_4bit, inputs.grad, atol=1e-4)
