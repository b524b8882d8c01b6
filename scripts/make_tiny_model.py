"""Build a tiny random-weight Llama and a real BPE tokenizer locally, for fast end-to-end tests.

    python scripts/make_tiny_model.py --out models/tiny-llama

The tokenizer is a byte-level BPE trained on the skill pack's text (so any input encodes), with
ChatML special tokens and a ChatML chat template, the same turn layout as SmolLM2. The model is
a 2-layer Llama (~0.14 M parameters) with seeded random weights. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def training_text(pack: Path) -> list[str]:
    lines = []
    for path in sorted(pack.glob("*.txt")):
        lines += path.read_text(encoding="utf-8").splitlines()
    return lines


def build_tokenizer(pack: Path, vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(training_text(pack), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models/tiny-llama"))
    parser.add_argument("--pack", type=Path, default=Path("examples/skills"))
    parser.add_argument("--vocab-size", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if (args.out / "config.json").exists() and (args.out / "tokenizer.json").exists():
        print(f"{args.out}: up to date")
        return

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(args.pack, args.vocab_size)
    end_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|im_start|>"),
        eos_token_id=end_id,
        pad_token_id=end_id,
    )
    torch.manual_seed(args.seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=end_id, pad_token_id=end_id, bos_token_id=config.bos_token_id
    )
    staging = args.out.with_name(f".{args.out.name}.new")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, args.out)
    n_params = sum(parameter.numel() for parameter in model.parameters())
    print(f"{args.out}: tiny Llama, {n_params:,} parameters, vocab {len(tokenizer)}")


if __name__ == "__main__":
    main()
