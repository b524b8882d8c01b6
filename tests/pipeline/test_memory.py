"""skilltune.memory against known points: published parameter counts, peft's LoRA counts, the nf4
format's bits per weight and the memory a QLoRA 7B run is seen to take."""

import re

import pytest
import yaml
from conftest import REPO

from skilltune.memory import GIB, NF4_BITS, count_parameters, estimate

MISTRAL_7B = dict(
    vocab_size=32768,
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
)
LLAMA2_7B = dict(
    vocab_size=32000,
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
)
QWEN25_7B = dict(
    model_type="qwen2",
    vocab_size=152064,
    hidden_size=3584,
    intermediate_size=18944,
    num_hidden_layers=28,
    num_attention_heads=28,
    num_key_value_heads=4,
    tie_word_embeddings=False,
)


@pytest.fixture(scope="module")
def mistral_yml() -> dict:
    return yaml.safe_load((REPO / "configs" / "mistral.yml").read_text())


@pytest.mark.parametrize(
    "shapes, published",
    [(MISTRAL_7B, 7.25e9), (LLAMA2_7B, 6.74e9), (QWEN25_7B, 7.62e9)],
    ids=["mistral-7b", "llama2-7b", "qwen2.5-7b"],
)
def test_parameter_counts_match_the_published_sizes(shapes, published):
    counts = count_parameters(shapes)
    assert abs(counts["total"] - published) / published < 0.01
    assert counts["total"] == counts["embedding"] + counts["linear"] + counts["lm_head"] + counts["norm"]


def test_parameter_counts_equal_transformers_models_built_on_the_meta_device():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    configs = [
        transformers.MistralConfig(**MISTRAL_7B),
        transformers.LlamaConfig(**LLAMA2_7B),
        transformers.Qwen2Config(**{k: v for k, v in QWEN25_7B.items() if k != "model_type"}),
    ]
    for config in configs:
        with torch.device("meta"):  # shapes only, no memory
            model = transformers.AutoModelForCausalLM.from_config(config)
        # to_dict() is what config.json holds (Qwen2's has no attention_bias key: the biases come from model_type)
        assert count_parameters(config.to_dict())["total"] == sum(p.numel() for p in model.parameters())


def test_tied_embeddings_drop_the_lm_head():
    untied, tied = count_parameters(MISTRAL_7B), count_parameters({**MISTRAL_7B, "tie_word_embeddings": True})
    assert tied["lm_head"] == 0
    assert untied["total"] - tied["total"] == 32768 * 4096


def test_lora_on_all_linear_layers_counts_r_times_in_plus_out():
    # r * (in + out) for q, k, v, o (kv dim 8 heads x 128 = 1024), gate, up, down; 32 layers, r 16
    per_layer = 16 * ((4096 + 4096) + 2 * (4096 + 1024) + (4096 + 4096) + 3 * (4096 + 14336))
    assert 32 * per_layer == 41_943_040  # peft's "trainable params" for Mistral-7B, r 16, all linear
    config = {"adapter": "lora", "lora_r": 16, "lora_target_linear": True, "optimizer": "adamw_torch"}
    memory = estimate(MISTRAL_7B, config)
    assert memory.adapter == 32 * per_layer * (4 + 4)  # fp32 weights and fp32 gradients
    assert memory.optimizer == 32 * per_layer * 8  # AdamW's two fp32 moments


def test_lora_on_q_and_v_only_matches_peft():
    # peft prints "trainable params: 3,407,872" for Mistral-7B with r 8 on q_proj and v_proj
    memory = estimate(MISTRAL_7B, {"adapter": "lora", "lora_r": 8, "lora_target_modules": ["q_proj", "v_proj"]})
    assert memory.adapter == 3_407_872 * 8


def test_lora_count_matches_peft_on_the_meta_device():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    peft = pytest.importorskip("peft")
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(transformers.MistralConfig(**MISTRAL_7B))
    lora = peft.get_peft_model(model, peft.LoraConfig(r=16, target_modules="all-linear"))
    trainable, _ = lora.get_nb_trainable_parameters()
    assert estimate(MISTRAL_7B, {"adapter": "qlora", "lora_r": 16, "lora_target_linear": True}).adapter == trainable * 8


def test_the_mistral_qlora_config_lands_where_such_runs_are_seen(mistral_yml):
    # QLoRA 7B, micro batch 4 x 1024 tokens, checkpointing, flash attention: ~10-16 GB peak in practice
    memory = estimate(MISTRAL_7B, mistral_yml)
    assert 6 * GIB < memory.total < 20 * GIB
    assert memory.total == sum(
        [memory.weights, memory.adapter, memory.optimizer, memory.activations, memory.logits, memory.overhead]
    )
    # nf4 projections at ~4.127 bits a weight, embeddings, lm_head and norms in bf16
    counts = count_parameters(MISTRAL_7B)
    expected = counts["linear"] * NF4_BITS / 8 + (counts["total"] - counts["linear"]) * 2
    assert NF4_BITS == pytest.approx(4.127, abs=0.001)
    assert memory.weights == pytest.approx(expected, rel=1e-6)
    assert memory.logits >= 4 * 1024 * 32768 * 8  # fp32 logits and their gradient, at least
    assert memory.notes == ()  # packed full rows, flash attention, one GPU: nothing to warn about


def test_4bit_weights_are_over_three_times_smaller_than_16bit(mistral_yml):
    quantized = estimate(MISTRAL_7B, mistral_yml)
    half = estimate(MISTRAL_7B, {**mistral_yml, "load_in_4bit": False, "adapter": "lora"})
    assert half.weights == count_parameters(MISTRAL_7B)["total"] * 2
    assert half.weights > 3 * quantized.weights
    assert quantized.weights_format == "4-bit nf4" and half.weights_format == "16-bit"


def test_without_double_quant_nf4_costs_half_a_bit_more(mistral_yml):
    double = estimate(MISTRAL_7B, mistral_yml)
    single = estimate(MISTRAL_7B, {**mistral_yml, "bnb_config_kwargs": {"bnb_4bit_use_double_quant": False}})
    linear = count_parameters(MISTRAL_7B)["linear"]
    assert single.weights - double.weights == pytest.approx(linear * (4.5 - NF4_BITS) / 8, rel=1e-6)


def test_gradient_checkpointing_lowers_activations(mistral_yml):
    with_checkpoints = estimate(MISTRAL_7B, mistral_yml)
    without = estimate(MISTRAL_7B, {**mistral_yml, "gradient_checkpointing": False})
    # one hidden state a layer plus one layer, against all 32 layers' activations
    assert without.activations > 5 * with_checkpoints.activations
    assert without.weights == with_checkpoints.weights


def test_offloaded_checkpoints_keep_the_hidden_states_off_the_gpu(mistral_yml):
    on_gpu = estimate(MISTRAL_7B, mistral_yml)
    offload = estimate(MISTRAL_7B, {**mistral_yml, "gradient_checkpointing": "offload"})
    # 32 layers x 4 x 1024 tokens x 4096 x bf16 no longer on the GPU
    assert on_gpu.activations - offload.activations == 32 * 4 * 1024 * 4096 * 2
    assert any("offload" in note for note in offload.notes)


def test_lora_dropout_keeps_each_targeted_input_and_its_mask(mistral_yml):
    dropout = estimate(MISTRAL_7B, mistral_yml)
    none = estimate(MISTRAL_7B, {**mistral_yml, "lora_dropout": 0.0})  # peft's Identity: nothing kept
    # inputs of q, k, v, o, gate, up (4096 each) and down (14336): a bf16 copy and a 1-byte mask, one layer
    assert dropout.activations - none.activations == 4 * 1024 * (6 * 4096 + 14336) * (2 + 1)


def test_a_bigger_batch_or_longer_rows_raise_activations_and_logits(mistral_yml):
    base = estimate(MISTRAL_7B, mistral_yml)
    for change in ({"micro_batch_size": 8}, {"sequence_len": 2048}):
        bigger = estimate(MISTRAL_7B, {**mistral_yml, **change})
        assert bigger.activations > base.activations
        assert bigger.logits == 2 * base.logits
        assert bigger.weights == base.weights and bigger.optimizer == base.optimizer


def test_eager_attention_adds_the_seq_squared_matrix(mistral_yml):
    flash = estimate(MISTRAL_7B, mistral_yml)
    eager = estimate(MISTRAL_7B, {**mistral_yml, "attn_implementation": "eager"})
    sdpa = estimate(MISTRAL_7B, {**mistral_yml, "attn_implementation": "sdpa"})
    assert sdpa.activations == flash.activations
    # checkpointed: one layer's batch x heads x seq x seq scores, kept twice: transformers' eager softmax
    # runs in fp32 (its output is saved, 4 bytes) and is cast to bf16 for the matmul with V (saved, 2 bytes)
    assert eager.activations - flash.activations == 4 * 32 * 1024 * 1024 * (4 + 2)
    long_flash = estimate(MISTRAL_7B, {**mistral_yml, "sequence_len": 2048})
    long_eager = estimate(MISTRAL_7B, {**mistral_yml, "sequence_len": 2048, "attn_implementation": "eager"})
    # the extra grows with the square of the row length
    assert long_eager.activations - long_flash.activations == 4 * (eager.activations - flash.activations)


def test_paged_adamw_8bit_keeps_a_quarter_of_adamw_torch(mistral_yml):
    eight_bit = estimate(MISTRAL_7B, mistral_yml)
    torch_adamw = estimate(MISTRAL_7B, {**mistral_yml, "optimizer": "adamw_torch"})
    assert mistral_yml["optimizer"] == "paged_adamw_8bit"
    assert eight_bit.optimizer * 4 == torch_adamw.optimizer > 0
    assert estimate(MISTRAL_7B, {**mistral_yml, "optimizer": "sgd"}).optimizer == 0


def test_an_unknown_optimizer_is_assumed_to_be_adamw_and_said_so(mistral_yml):
    unknown = estimate(MISTRAL_7B, {**mistral_yml, "optimizer": "shiny_new_opt"})
    assert unknown.optimizer == estimate(MISTRAL_7B, {**mistral_yml, "optimizer": "adamw_torch"}).optimizer
    assert any("shiny_new_opt" in note and "8 bytes" in note for note in unknown.notes)


def test_modules_to_save_add_trainable_copies_of_embeddings_and_lm_head(mistral_yml):
    plain = estimate(MISTRAL_7B, mistral_yml)
    saved = estimate(MISTRAL_7B, {**mistral_yml, "lora_modules_to_save": ["embed_tokens", "lm_head"]})
    copies = 2 * 32768 * 4096
    assert saved.adapter - plain.adapter == copies * (2 + 2)  # bf16 copy and bf16 gradient
    assert saved.optimizer - plain.optimizer == copies * 2  # two 8-bit moments
    assert saved.weights == plain.weights  # the frozen originals stay


def test_missing_keys_take_axolotl_defaults():
    implicit = estimate(MISTRAL_7B, {"adapter": "lora", "lora_target_linear": True, "bf16": True})
    explicit = estimate(
        MISTRAL_7B,
        {
            "adapter": "lora",
            "lora_target_linear": True,
            "bf16": True,
            "micro_batch_size": 1,
            "sequence_len": 512,
            "lora_r": 8,
            "gradient_checkpointing": False,
            "optimizer": "adamw_torch_fused",
        },
    )
    assert implicit == explicit
    assert implicit.logits == 512 * 32768 * (2 + 4 + 4)


def test_without_half_precision_everything_is_fp32():
    config = {"adapter": "lora", "lora_target_linear": True}
    fp32, bf16 = estimate(MISTRAL_7B, config), estimate(MISTRAL_7B, {**config, "bf16": "auto"})
    assert fp32.weights == 2 * bf16.weights and fp32.weights_format == "32-bit"
    assert fp32.adapter == bf16.adapter  # LoRA weights are fp32 either way
    assert fp32.activations > bf16.activations


def test_full_fine_tune_counts_gradients_and_states_of_every_weight():
    memory = estimate(MISTRAL_7B, {"bf16": True, "optimizer": "adamw_torch", "gradient_checkpointing": True})
    params = count_parameters(MISTRAL_7B)["total"]
    assert memory.adapter == params * 2  # bf16 gradients
    assert memory.optimizer == params * 4  # torch AdamW keeps its moments in the parameters' dtype
    assert memory.total > 50 * GIB  # why 7B full fine-tunes need an 80 GB GPU
    assert any("full fine-tune" in note for note in memory.notes)


def test_sharding_and_unpadded_rows_are_noted(mistral_yml):
    notes = estimate(
        MISTRAL_7B, {**mistral_yml, "deepspeed": "configs/deepspeed/zero2.json", "pad_to_sequence_len": False}
    ).notes
    assert any("per GPU without sharding" in note for note in notes)
    assert any("worst case" in note for note in notes)


def test_lines_show_each_part_in_gib_with_one_decimal(mistral_yml):
    memory = estimate(MISTRAL_7B, {**mistral_yml, "deepspeed": "configs/deepspeed/zero2.json"})
    lines = memory.lines()
    assert re.fullmatch(r"weights \(4-bit nf4\) +\d+\.\d GiB", lines[0])
    assert float(lines[0].split()[-2]) == round(memory.weights / GIB, 1)
    total = next(line for line in lines if line.startswith("total"))
    assert float(total.split()[-2]) == round(memory.total / GIB, 1)
    assert lines[-1].startswith("note: per GPU")
