"""Stand-ins for the base models of configs/: random-weight models of each family's real
architecture class, with a tokenizer that carries the family's special tokens, BOS/EOS/pad choices
and chat template, placed in a local Hugging Face cache under the config's real repo id.

    folder = build_standin("mistral", cache=Path("models/hub"))          # tiny: seconds, trains on a CPU
    folder = build_standin("mistral", cache=cache, size="real")          # 7B shapes, for a GPU check

With HF_HUB_CACHE pointing at `cache` and HF_HUB_OFFLINE=1, `base_model: mistralai/Mistral-7B-Instruct-v0.3`
resolves to the stand-in, so a config is trained, evaluated and merged unchanged. The vocabulary is
a byte-level BPE trained on the skill pack (any text encodes); what tokenization tests depend on
is exact: which tokens are special, which one ends a turn, whether BOS is added.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STAMP = "skilltune_standin.json"  # marks a stand-in folder and records the real shapes it stands for


@dataclass(frozen=True)
class Family:
    model_type: str  # transformers config class: LlamaConfig, MistralConfig, Qwen2Config
    repo_id: str  # the base_model of configs/<name>.yml
    special_tokens: list[str]
    eos: str
    bos: str | None = None
    pad: str | None = None
    unk: str | None = None
    add_bos: bool = False  # Llama/Mistral tokenizers put BOS before every encoded text
    chat_template: str | None = None  # configs/templates/<file>, or "axolotl:<name>"; None: a base model
    real_shapes: dict = field(default_factory=dict)  # the 7-8B config.json values the stand-in stands for


_LLAMA_SPECIALS = ["<unk>", "<s>", "</s>"]
_MISTRAL_7B = dict(
    vocab_size=32768,
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    max_position_embeddings=32768,
    rope_theta=1e6,
)
FAMILIES = {
    # Llama 2 base: SentencePiece specials only, no chat template, no pad (Axolotl pads with eos)
    "llama2": Family(
        "LlamaConfig",
        "NousResearch/Llama-2-7b-hf",
        _LLAMA_SPECIALS,
        eos="</s>",
        bos="<s>",
        unk="<unk>",
        add_bos=True,
        real_shapes=dict(
            vocab_size=32000,
            hidden_size=4096,
            intermediate_size=11008,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=32,
            max_position_embeddings=4096,
        ),
    ),
    # Mistral 7B Instruct v0.3: control tokens for instructions and tools
    "mistral": Family(
        "MistralConfig",
        "mistralai/Mistral-7B-Instruct-v0.3",
        _LLAMA_SPECIALS
        + [
            "[INST]",
            "[/INST]",
            "[TOOL_CALLS]",
            "[AVAILABLE_TOOLS]",
            "[/AVAILABLE_TOOLS]",
            "[TOOL_RESULTS]",
            "[/TOOL_RESULTS]",
        ],
        eos="</s>",
        bos="<s>",
        unk="<unk>",
        add_bos=True,
        chat_template="mistral_tools.jinja",
        real_shapes=_MISTRAL_7B,
    ),
    # Zephyr 7B beta (Mistral 7B v0.1 vocabulary): its <|user|> markers are plain text, not special
    "zephyr": Family(
        "MistralConfig",
        "HuggingFaceH4/zephyr-7b-beta",
        _LLAMA_SPECIALS,
        eos="</s>",
        bos="<s>",
        unk="<unk>",
        add_bos=True,
        chat_template="zephyr_tools.jinja",
        real_shapes={**_MISTRAL_7B, "vocab_size": 32000, "rope_theta": 1e4},
    ),
    # Llama 3.1 Instruct: header tokens, <|eot_id|> ends a turn
    "llama3": Family(
        "LlamaConfig",
        "NousResearch/Meta-Llama-3.1-8B-Instruct",
        [
            "<|begin_of_text|>",
            "<|end_of_text|>",
            "<|start_header_id|>",
            "<|end_header_id|>",
            "<|eot_id|>",
            "<|eom_id|>",
            "<|python_tag|>",
        ],
        eos="<|eot_id|>",
        bos="<|begin_of_text|>",
        add_bos=True,
        chat_template="llama3_tools.jinja",
        real_shapes=dict(
            vocab_size=128256,
            hidden_size=4096,
            intermediate_size=14336,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            max_position_embeddings=131072,
            rope_theta=5e5,
        ),
    ),
    # Qwen2.5 Instruct: ChatML tokens and <tool_call> tags, no BOS, pad <|endoftext|>
    "qwen2.5": Family(
        "Qwen2Config",
        "Qwen/Qwen2.5-7B-Instruct",
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>"],
        eos="<|im_end|>",
        pad="<|endoftext|>",
        chat_template="axolotl:qwen_25",
        real_shapes=dict(
            vocab_size=152064,
            hidden_size=3584,
            intermediate_size=18944,
            num_hidden_layers=28,
            num_attention_heads=28,
            num_key_value_heads=4,
            max_position_embeddings=32768,
            rope_theta=1e6,
            tie_word_embeddings=False,
        ),
    ),
}


def family_of(base_model: str) -> str:
    """The family name whose repo id is `base_model` (a config's `base_model:`)."""
    for name, family in FAMILIES.items():
        if family.repo_id == base_model:
            return name
    known = ", ".join(family.repo_id for family in FAMILIES.values())
    raise KeyError(f"{base_model}: no stand-in for this base model (stand-ins exist for {known})")


def _training_text() -> list[str]:
    lines = []
    for path in sorted((REPO / "examples" / "skills").glob("*.txt")):
        lines += path.read_text(encoding="utf-8").splitlines()
    return lines + ['{"name": "weather", "arguments": {"location": "Berlin"}}', "system user assistant tools"]


def _chat_template(family: Family) -> str | None:
    if family.chat_template is None:
        return None
    if family.chat_template.startswith("axolotl:"):
        from axolotl.utils.chat_templates import get_chat_template

        return get_chat_template(family.chat_template.split(":", 1)[1])
    return (REPO / "configs" / "templates" / family.chat_template).read_text(encoding="utf-8")


def build_tokenizer(name: str, vocab_size: int = 1200):
    """A fast tokenizer with the family's special tokens, BOS rule, eos/pad/unk and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    family = FAMILIES[name]
    core = Tokenizer(models.BPE(unk_token=family.unk))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=family.special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(_training_text(), trainer=trainer)
    if family.add_bos:
        bos_id = core.token_to_id(family.bos)
        core.post_processor = processors.TemplateProcessing(
            single=f"{family.bos} $A", pair=f"{family.bos} $A {family.bos} $B", special_tokens=[(family.bos, bos_id)]
        )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=family.bos, eos_token=family.eos, pad_token=family.pad, unk_token=family.unk
    )
    template = _chat_template(family)
    if template is not None:
        tokenizer.chat_template = template
    return tokenizer


def model_config(name: str, tokenizer, size: str = "tiny"):
    """The family's transformers config: the real 7-8B shapes (`size="real"`), or a tiny model of the
    same class (2 layers, grouped-query attention kept where the real model has it). Every projection's
    output size is a multiple of 32: bitsandbytes' CPU path repacks 4-bit weights in blocks of 32 rows
    for inference (a 16-row k_proj failed here with "N must be divisible by block_n")."""
    import transformers

    family = FAMILIES[name]
    real = family.real_shapes
    if size == "real":
        shapes = dict(real)
    elif size == "tiny":
        heads = 4
        shapes = dict(
            vocab_size=len(tokenizer),
            hidden_size=128,
            intermediate_size=256,
            num_hidden_layers=2,
            num_attention_heads=heads,
            max_position_embeddings=4096,
            num_key_value_heads=heads * real["num_key_value_heads"] // real["num_attention_heads"] or 1,
            tie_word_embeddings=real.get("tie_word_embeddings", False),
        )
    else:
        raise ValueError(f"size {size!r}: tiny or real")
    shapes["vocab_size"] = max(shapes["vocab_size"], len(tokenizer))
    config_class = getattr(transformers, family.model_type)
    return config_class(
        **shapes,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def _snapshot_dir(cache: Path, repo_id: str) -> tuple[Path, Path]:
    """(models--org--name folder, its snapshots/<revision> folder): the layout huggingface_hub reads."""
    repo_folder = cache / ("models--" + repo_id.replace("/", "--"))
    revision = hashlib.sha1(f"skilltune-standin:{repo_id}".encode()).hexdigest()
    return repo_folder, repo_folder / "snapshots" / revision


def standin_folder(name: str, cache: Path) -> Path:
    return _snapshot_dir(cache, FAMILIES[name].repo_id)[1]


def build_standin(name: str, cache: Path, size: str = "tiny", seed: int = 0) -> Path:
    """Write the stand-in of family `name` into the HF cache `cache` (up to date: returns at once)."""
    import torch
    import transformers
    from transformers import GenerationConfig

    family = FAMILIES[name]
    repo_folder, snapshot = _snapshot_dir(cache, family.repo_id)
    stamp = snapshot / STAMP
    if stamp.exists() and json.loads(stamp.read_text()).get("size") == size:
        return snapshot
    tokenizer = build_tokenizer(name)
    config = model_config(name, tokenizer, size)
    torch.manual_seed(seed)
    model_class = getattr(transformers, family.model_type.replace("Config", "ForCausalLM"))
    # real size: bf16 and on the GPU when there is one, so 7B random weights take seconds, not minutes
    device = "cuda" if size == "real" and torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if size == "real" else torch.float32
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # drawn in bf16 directly: an 8B model in fp32 would need 32 GB first
    try:
        with torch.device(device):
            model = model_class(config)
    finally:
        torch.set_default_dtype(default_dtype)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    staging = snapshot.with_name(f".{snapshot.name}.new")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / STAMP).write_text(
            json.dumps(
                {
                    "family": name,
                    "repo_id": family.repo_id,
                    "size": size,
                    "seed": seed,
                    "real_shapes": family.real_shapes,
                },
                indent=2,
            )
            + "\n"
        )
        shutil.rmtree(snapshot, ignore_errors=True)
        os.replace(staging, snapshot)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    (repo_folder / "refs").mkdir(exist_ok=True)
    (repo_folder / "refs" / "main").write_text(snapshot.name)
    return snapshot
