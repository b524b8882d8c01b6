"""Generate predictions with transformers: batched greedy decoding, left padding, CPU or GPU.

The prompt is the record's messages up to the user turn, rendered with the tokenizer's own chat
template, the same one Axolotl trained with (`chat_template: tokenizer_default`). Generation
stops at the tokenizer's end-of-turn token (eos, which scripts/prepare_smollm2.py sets to
<|im_end|>).
"""

from __future__ import annotations

import os
from pathlib import Path

from tqdm import tqdm

from datagen.render import gold_call, user_text


def load_model(base_model: str | Path):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_model))
    tokenizer.padding_side = "left"  # generated tokens must follow the prompt directly in a batch
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(str(base_model), dtype=torch.float32 if device == "cpu" else "auto")
    model.to(device).eval()
    return model, tokenizer


def attach_adapter(model, adapter_dir: str | Path):
    from peft import PeftModel

    if not (Path(adapter_dir) / "adapter_config.json").exists():
        raise FileNotFoundError(f"{adapter_dir}: no adapter_config.json; train first (make train)")
    return PeftModel.from_pretrained(model, str(adapter_dir)).eval()


def generate(model, tokenizer, records: list[dict], batch_size: int = 16, max_new_tokens: int = 64,
             label: str = "generating") -> list[str]:
    """Greedy completions for each record's prompt (all messages before the gold answer)."""
    import torch

    prompts = [
        tokenizer.apply_chat_template(
            record["messages"][:-1], tools=record.get("tools"), add_generation_prompt=True, tokenize=False
        )
        for record in records
    ]
    outputs: list[str] = []
    with tqdm(total=len(prompts), desc=label, unit="ex") as progress:
        for start in range(0, len(prompts), batch_size):
            batch = tokenizer(prompts[start:start + batch_size], return_tensors="pt", padding=True,
                              add_special_tokens=False).to(model.device)
            with torch.inference_mode():
                generated = model.generate(
                    **batch,
                    do_sample=False,
                    max_new_tokens=max_new_tokens,
                    eos_token_id=tokenizer.eos_token_id,
                    pad_token_id=tokenizer.pad_token_id,
                )
            new_tokens = generated[:, batch["input_ids"].shape[1]:]
            outputs += tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            progress.update(len(new_tokens))
    return outputs


def prediction_rows(records: list[dict], outputs: list[str], model_label: str, split: str) -> list[dict]:
    return [
        {
            "index": index,
            "model": model_label,
            "split": split,
            "skill": gold_call(record).name,
            "user": user_text(record),
            "gold": record["messages"][-1]["content"],
            "output": output,
        }
        for index, (record, output) in enumerate(zip(records, outputs))
    ]
