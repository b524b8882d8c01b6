"""Local stand-ins for the tokenizers of each base-model family in configs/ (the real ones cannot be
downloaded here): a byte-level BPE trained on the skill pack's text, carrying the family's special
tokens, BOS/EOS/pad choices and model type, plus a config.json Axolotl reads. What the label-mask
test checks depends on exactly these: which tokens are special, which token ends a turn, and
whether BOS is added. The vocabulary itself is small and made up.

    folder = build_family("mistral", tmp_path)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Family:
    model_type: str  # transformers config class: LlamaConfig, MistralConfig, Qwen2Config
    special_tokens: list[str]
    eos: str
    bos: str | None = None
    pad: str | None = None
    unk: str | None = None
    add_bos: bool = False  # Llama/Mistral tokenizers put BOS before every encoded text
    extra: dict = field(default_factory=dict)


_LLAMA_SPECIALS = ["<unk>", "<s>", "</s>"]
FAMILIES = {
    # Llama 2 base: SentencePiece specials only, no chat template, no pad (Axolotl pads with eos)
    "llama2": Family("LlamaConfig", _LLAMA_SPECIALS, eos="</s>", bos="<s>", unk="<unk>", add_bos=True),
    # Mistral 7B Instruct v0.3: control tokens for instructions and tools
    "mistral": Family("MistralConfig", _LLAMA_SPECIALS + ["[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]",
                                                          "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]"],
                      eos="</s>", bos="<s>", unk="<unk>", add_bos=True),
    # Zephyr 7B beta (Mistral 7B v0.1 vocabulary): its <|user|> markers are plain text, not special
    "zephyr": Family("MistralConfig", _LLAMA_SPECIALS, eos="</s>", bos="<s>", unk="<unk>", add_bos=True),
    # Llama 3.1 Instruct: header tokens, <|eot_id|> ends a turn
    "llama3": Family("LlamaConfig", ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                                     "<|eot_id|>", "<|eom_id|>", "<|python_tag|>"],
                     eos="<|eot_id|>", bos="<|begin_of_text|>", add_bos=True),
    # Qwen2.5 Instruct: ChatML tokens and <tool_call> tags, no BOS, pad <|endoftext|>
    "qwen2.5": Family("Qwen2Config", ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>"],
                      eos="<|im_end|>", pad="<|endoftext|>"),
}


def _training_text() -> list[str]:
    lines = []
    for path in sorted((REPO / "examples" / "skills").glob("*.txt")):
        lines += path.read_text(encoding="utf-8").splitlines()
    return lines + ['{"name": "weather", "arguments": {"location": "Berlin"}}', "system user assistant tools"]


def build_family(name: str, out: Path, vocab_size: int = 1200) -> Path:
    """Write `<out>/<name>/` with tokenizer files and a tiny config.json; returns the folder."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    family = FAMILIES[name]
    core = Tokenizer(models.BPE(unk_token=family.unk))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=family.special_tokens,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(_training_text(), trainer=trainer)
    if family.add_bos:
        bos_id = core.token_to_id(family.bos)
        core.post_processor = processors.TemplateProcessing(
            single=f"{family.bos} $A", pair=f"{family.bos} $A {family.bos} $B", special_tokens=[(family.bos, bos_id)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token=family.bos, eos_token=family.eos,
                                        pad_token=family.pad, unk_token=family.unk)
    folder = out / name
    tokenizer.save_pretrained(folder)
    config_class = getattr(transformers, family.model_type)
    config_class(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                 num_attention_heads=4, num_key_value_heads=2,
                 bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id).save_pretrained(folder)
    return folder
