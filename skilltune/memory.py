"""How much GPU memory an Axolotl LoRA / QLoRA (or full fine-tune) config needs, before renting a GPU.

    import json, yaml
    from skilltune.memory import estimate

    model = json.load(open("config.json"))                  # the base model's Hugging Face config
    axolotl = yaml.safe_load(open("configs/mistral.yml"))
    print("\\n".join(estimate(model, axolotl).lines()))
    # weights (4-bit nf4)     3.9 GiB
    # ...
    # total                   8.8 GiB

The estimate is the peak of one training step on one GPU, summed from parts: base weights, adapter and
its gradients, optimizer states, activations, logits and a fixed CUDA overhead. It is arithmetic on
the config's shapes (llama, mistral and qwen2 style decoders), not a measurement: expect tens of
percent, and the allocator's reserve (what nvidia-smi shows) on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GIB = 1024**3
# nf4: 4 bits a weight, one absmax per block of 64 weights. Double quantization stores those absmaxes
# as fp8 (8 bits / 64 weights) plus one fp32 constant per 256 blocks (32 bits / 16384 weights):
# 4 + 0.125 + 0.002 = ~4.127 bits a weight. Without it, an fp32 absmax per 64 weights: 4.5 bits.
NF4_BITS = 4 + 8 / 64 + 32 / (64 * 256)
NF4_BITS_NO_DOUBLE_QUANT = 4 + 32 / 64
OVERHEAD = GIB  # CUDA context (~0.5 GiB) and the caching allocator's fragmentation
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
PEFT_DEFAULT_TARGETS = ("q_proj", "v_proj")  # peft's choice for llama/mistral/qwen2 when none are named
LORA_BYTES = 4  # peft upcasts adapter weights to fp32 (autocast_adapter_dtype) whatever the base dtype

# optimizer -> (state tensors per parameter, bytes per state; None: the parameter's own dtype, since
# torch optimizers allocate states with zeros_like). bitsandbytes' 8-bit states add one fp32 absmax per
# 256 values (+1.5 %), left out; paged states can move to CPU under pressure but peak on the GPU.
OPTIMIZERS: dict[str, tuple[int, int | None]] = {
    "adamw_torch": (2, None),
    "adamw_torch_fused": (2, None),
    "adamw_bnb_8bit": (2, 1),
    "adamw_8bit": (2, 1),
    "paged_adamw_8bit": (2, 1),
    "paged_adamw_32bit": (2, 4),
    "lion_8bit": (1, 1),
    "paged_lion_8bit": (1, 1),
    "lion_32bit": (1, 4),
    "paged_lion_32bit": (1, 4),
    "adagrad": (1, None),
    "rmsprop": (1, None),
    "sgd": (0, None),  # Trainer's sgd has no momentum, hence no state
    "adafactor": (0, None),  # factored second moment: a row and a column vector per matrix, ~0
}


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int  # base weights as loaded
    adapter: int  # trainable parameters and their gradients (full fine-tune: the gradients only)
    optimizer: int  # optimizer states of the trainable parameters
    activations: int  # saved for backward at micro_batch_size x sequence_len
    logits: int  # micro_batch x seq x vocab for the loss
    overhead: int  # CUDA context and allocator slack
    notes: tuple[str, ...] = ()
    weights_format: str = "16-bit"  # the label of the weights row: "4-bit nf4", "8-bit int8", "16-bit", "32-bit"

    @property
    def total(self) -> int:
        return self.weights + self.adapter + self.optimizer + self.activations + self.logits + self.overhead

    def lines(self) -> list[str]:
        rows = [
            (f"weights ({self.weights_format})", self.weights),
            ("adapter + gradients", self.adapter),
            ("optimizer states", self.optimizer),
            ("activations", self.activations),
            ("logits + loss", self.logits),
            ("CUDA context + slack", self.overhead),
        ]
        width = max(len(label) for label, _ in rows)
        table = [f"{label:<{width}}  {size / GIB:5.1f} GiB" for label, size in rows]
        total = f"{'total':<{width}}  {self.total / GIB:5.1f} GiB"
        return [*table, "-" * len(total), total, *(f"note: {note}" for note in self.notes)]


def layer_linears(model_config: dict) -> list[tuple[str, int, int, bool]]:
    """(name, in_features, out_features, has_bias) of one decoder layer's projections."""
    hidden, inter = model_config["hidden_size"], model_config["intermediate_size"]
    heads = model_config["num_attention_heads"]
    kv_heads = model_config.get("num_key_value_heads") or heads
    head_dim = model_config.get("head_dim") or hidden // heads
    # Qwen2 has q/k/v biases and no attention_bias key; Llama's attention_bias covers all four
    qkv_bias = bool(model_config.get("attention_bias", model_config.get("model_type") == "qwen2"))
    o_bias, mlp_bias = bool(model_config.get("attention_bias")), bool(model_config.get("mlp_bias"))
    return [
        ("q_proj", hidden, heads * head_dim, qkv_bias),
        ("k_proj", hidden, kv_heads * head_dim, qkv_bias),
        ("v_proj", hidden, kv_heads * head_dim, qkv_bias),
        ("o_proj", heads * head_dim, hidden, o_bias),
        ("gate_proj", hidden, inter, mlp_bias),
        ("up_proj", hidden, inter, mlp_bias),
        ("down_proj", inter, hidden, mlp_bias),
    ]


def count_parameters(model_config: dict) -> dict[str, Any]:
    """Parameter counts of a llama/mistral/qwen2-style model from its config.json dict."""
    vocab, hidden, layers = model_config["vocab_size"], model_config["hidden_size"], model_config["num_hidden_layers"]
    shapes = layer_linears(model_config)
    counts = {
        "embedding": vocab * hidden,
        "linear": layers * sum(fan_in * out + out * bias for _, fan_in, out, bias in shapes),
        # config classes of these families default to untied (PretrainedConfig's True does not apply)
        "lm_head": 0 if model_config.get("tie_word_embeddings", False) else vocab * hidden,
        "norm": (2 * layers + 1) * hidden,  # two RMSNorms a layer and the final one
    }
    return {**counts, "total": sum(counts.values()), "layers": layers, "layer_linears": shapes}


def _half_bytes(axolotl_config: dict) -> int:
    """Bytes of the compute dtype: bf16 (True, "auto", "full") or fp16 is 2, otherwise fp32."""
    return 2 if axolotl_config.get("bf16") or axolotl_config.get("fp16") else 4


def _weights(counts: dict[str, Any], axolotl_config: dict, half: int) -> tuple[str, int]:
    shapes = counts["layer_linears"]
    matrices = counts["layers"] * sum(fan_in * out for _, fan_in, out, _ in shapes)
    rows = counts["layers"] * sum(out for _, _, out, _ in shapes)
    rest = counts["total"] - matrices  # embeddings, lm_head, norms, biases: not quantized, kept in `half`
    if axolotl_config.get("load_in_4bit"):
        kwargs = axolotl_config.get("bnb_config_kwargs") or {}
        bits = NF4_BITS if kwargs.get("bnb_4bit_use_double_quant", True) else NF4_BITS_NO_DOUBLE_QUANT
        return "4-bit nf4", round(matrices * bits / 8) + rest * half
    if axolotl_config.get("load_in_8bit"):
        return "8-bit int8", matrices + 4 * rows + rest * half  # LLM.int8: one byte a weight, fp32 scale a row
    return f"{8 * half}-bit", counts["total"] * half


def _lora_targets(axolotl_config: dict, notes: list[str]) -> set[str]:
    named = axolotl_config.get("lora_target_modules") or []
    targets = {named} if isinstance(named, str) else set(named)
    if axolotl_config.get("lora_target_linear"):
        targets |= set(ALL_LINEAR)  # Axolotl takes the union of the named modules and all linear layers
    if not targets:
        notes.append(f"no lora_target_modules: peft's default {', '.join(PEFT_DEFAULT_TARGETS)}")
        targets = set(PEFT_DEFAULT_TARGETS)
    if unknown := targets - set(ALL_LINEAR):
        notes.append(f"lora target(s) {', '.join(sorted(unknown))}: not a decoder projection, not counted")
    return targets & set(ALL_LINEAR)


def _saved_modules(counts: dict[str, Any], model_config: dict, axolotl_config: dict, notes: list[str]) -> int:
    """Parameters of the lora_modules_to_save copies (peft trains a copy, the original stays frozen)."""
    sizes = {"embed_tokens": model_config["vocab_size"] * model_config["hidden_size"]}
    sizes["lm_head"] = sizes["embed_tokens"]
    for name, fan_in, out, bias in counts["layer_linears"]:
        sizes[name] = counts["layers"] * (fan_in * out + out * bias)
    total = 0
    for name in axolotl_config.get("lora_modules_to_save") or []:
        if name not in sizes:
            notes.append(f"lora_modules_to_save {name}: unknown size, not counted")
        total += sizes.get(name, 0)
    return total


def _trainable(
    counts: dict[str, Any], model_config: dict, axolotl_config: dict, half: int, notes: list[str]
) -> list[tuple[int, int]]:
    """(parameters, bytes each) of every group the optimizer updates."""
    if not axolotl_config.get("adapter"):
        return [(counts["total"], half)]
    rank = axolotl_config.get("lora_r") or 8  # peft's LoraConfig default
    targets = _lora_targets(axolotl_config, notes)
    # a LoRA pair on an (in -> out) projection: A is r x in, B is out x r
    lora = counts["layers"] * sum(
        rank * (fan_in + out) for name, fan_in, out, _ in counts["layer_linears"] if name in targets
    )
    # the copies keep the module's dtype: Axolotl casts embeddings back to the compute dtype before peft
    return [(lora, LORA_BYTES), (_saved_modules(counts, model_config, axolotl_config, notes), half)]


def _optimizer(axolotl_config: dict, groups: list[tuple[int, int]], notes: list[str]) -> int:
    name = axolotl_config.get("optimizer") or "adamw_torch_fused"  # Axolotl's default
    if name not in OPTIMIZERS:
        notes.append(f"optimizer {name}: unknown, assumed AdamW with fp32 states (8 bytes a parameter)")
    states, width = OPTIMIZERS.get(name, (2, 4))
    return sum(params * states * (width or size) for params, size in groups)


def _layer_bytes_per_token(model_config: dict, counts: dict[str, Any], axolotl_config: dict, half: int) -> int:
    """What autograd keeps from one decoder layer for one token (no attention matrix)."""
    hidden, inter = model_config["hidden_size"], model_config["intermediate_size"]
    dims = {name: (fan_in, out) for name, fan_in, out, _ in counts["layer_linears"]}
    q_dim, kv_dim = dims["q_proj"][1], dims["k_proj"][1]
    norms = 2 * hidden * (4 + half)  # each RMSNorm keeps its input upcast to fp32 and its output
    attention = (2 * q_dim + 2 * kv_dim) * half  # q, k, v after RoPE and the attention output
    mlp = 4 * inter * half  # gate and up outputs, SiLU(gate), and their product (down_proj's input)
    # the projections' own inputs are the tensors above; LoRA with dropout adds, per targeted module,
    # the dropped-out input and its 1-byte mask, and the r-wide output of A
    lora = 0
    if axolotl_config.get("adapter"):
        targets = _lora_targets(axolotl_config, [])
        rank = axolotl_config.get("lora_r") or 8
        dropout = (axolotl_config.get("lora_dropout") or 0) > 0  # peft uses Identity at 0: nothing saved
        lora = sum(dims[name][0] * (half + 1) * dropout + rank * half for name in targets)
    return norms + attention + mlp + lora


def _activations(model_config: dict, counts: dict[str, Any], axolotl_config: dict, half: int, notes: list[str]) -> int:
    batch = axolotl_config.get("micro_batch_size") or 1
    seq = axolotl_config.get("sequence_len") or 512  # Axolotl 0.19's default
    tokens = batch * seq
    layer = tokens * _layer_bytes_per_token(model_config, counts, axolotl_config, half)
    attn = axolotl_config.get("attn_implementation")
    if attn is None:
        notes.append("attn_implementation unset: transformers picks sdpa (no seq x seq matrix)")
    if attn == "eager":
        # the fp32 softmax output (kept by softmax) and its 16-bit cast (kept by the matmul with V)
        layer += batch * model_config["num_attention_heads"] * seq * seq * (4 + half)
    # bitsandbytes dequantizes one weight at a time to 16 bits for its matmul
    shapes = counts["layer_linears"]
    quantized = axolotl_config.get("load_in_4bit") or axolotl_config.get("load_in_8bit")
    dequantized = max(fan_in * out for _, fan_in, out, _ in shapes) * half if quantized else 0
    checkpointing = axolotl_config.get("gradient_checkpointing")
    if not checkpointing:
        return counts["layers"] * layer + dequantized
    if checkpointing in ("offload", "offload_disk"):
        notes.append(f"gradient_checkpointing {checkpointing}: the per-layer hidden states live off the GPU")
        return layer + dequantized
    # one hidden state kept at every layer's input, and one layer's activations while it is recomputed
    return counts["layers"] * tokens * model_config["hidden_size"] * half + layer + dequantized


def _logits(model_config: dict, axolotl_config: dict, half: int, notes: list[str]) -> int:
    if axolotl_config.get("cut_cross_entropy") or axolotl_config.get("liger_fused_linear_cross_entropy"):
        notes.append("fused cross-entropy: logits are computed in chunks, not counted")
        return 0
    tokens = (axolotl_config.get("micro_batch_size") or 1) * (axolotl_config.get("sequence_len") or 512)
    # lm_head's 16-bit logits, the loss's fp32 log-probabilities (kept for backward) and their gradient
    return tokens * model_config["vocab_size"] * (half + 4 + 4)


def _config_notes(axolotl_config: dict) -> list[str]:
    notes = []
    if axolotl_config.get("deepspeed") or axolotl_config.get("fsdp") or axolotl_config.get("fsdp_config"):
        notes.append(
            "per GPU without sharding: deepspeed/fsdp split optimizer states, gradients (zero2) "
            "and weights (zero3) across GPUs"
        )
    if not (axolotl_config.get("sample_packing") and axolotl_config.get("pad_to_sequence_len")):
        notes.append("rows are not always full: estimated at sequence_len, the worst case")
    if not axolotl_config.get("adapter"):
        notes.append("full fine-tune: the adapter row holds the gradients of all weights")
    return notes


def estimate(model_config: dict, axolotl_config: dict) -> MemoryEstimate:
    """Peak GPU memory of one training step of `axolotl_config` on the model `model_config` describes."""
    notes = _config_notes(axolotl_config)
    half = _half_bytes(axolotl_config)
    counts = count_parameters(model_config)
    weights_format, weights = _weights(counts, axolotl_config, half)
    groups = _trainable(counts, model_config, axolotl_config, half, notes)
    # a full fine-tune's parameters are the weights already counted: only their gradients are new
    copies = 1 if not axolotl_config.get("adapter") else 2
    return MemoryEstimate(
        weights=weights,
        adapter=sum(params * size * copies for params, size in groups),
        optimizer=_optimizer(axolotl_config, groups, notes),
        activations=_activations(model_config, counts, axolotl_config, half, notes),
        logits=_logits(model_config, axolotl_config, half, notes),
        overhead=OVERHEAD,
        notes=tuple(notes),
        weights_format=weights_format,
    )
