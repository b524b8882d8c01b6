"""Greedy generation with a local transformers model: the one generator eval and datagen share.

    from skilltune.local_model import Chat, generate, load_model

    model, tokenizer = load_model("models/SmolLM2-135M-Instruct")
    texts = generate(model, tokenizer, [Chat(messages), Chat(messages, tools=tools)], max_new_tokens=64)

API (all names below are public and stay):

    Chat(messages, tools=None)       one conversation to answer; `tools` (OpenAI function specs)
                                     go to the chat template as its `tools`
    load_model(base_model, tokenizer_dir=None, load_in_4bit=False, chat_template=None,
               local_files_only=False, device=None) -> (model, tokenizer)
                                     eval mode, left padding, on `device` (default: cuda when
                                     available, else cpu; float32 on cpu, the checkpoint's dtype
                                     on cuda)
    attach_adapter(model, adapter_dir) -> model with the PEFT LoRA adapter, eval mode
    render_prompts(tokenizer, chats) -> list[str]
                                     each chat through the tokenizer's chat template, with the
                                     generation prompt: the text generation continues
    batches(lengths, batch_size) -> list[list[int]]
                                     how `generate` groups prompts (indices, longest first)
    generate(model, tokenizer, chats, batch_size=32, max_new_tokens=64, label="generating",
             logits_processors=None) -> list[str]
                                     greedy completions, one per chat, in chat order; the same
                                     texts whatever `batch_size` (left padding); `label` names the
                                     progress bar, None shows none
    training_chat_template(config, root=Path(".")) -> str | None
                                     the Jinja template an Axolotl config trains with
    LogitsProcessorsFactory          (tokenizer, padded prompt length, the batch's chats) ->
                                     processors, called once per batch (constrained decoding
                                     plugs in there)

Generation stops at the tokenizer's eos (scripts/prepare_smollm2.py sets it to <|im_end|>).
torch and transformers are imported inside the functions, so importing this module is cheap.
Offline mode is the caller's (HF_HUB_OFFLINE, or `local_files_only=True`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm


@dataclass(frozen=True)
class Chat:
    """One conversation to answer: its messages (ending before the answer) and tools, if any."""

    messages: list[dict]
    tools: list[dict] | None = None


# (tokenizer, padded prompt length of the batch, its chats in row order) -> processors for that
# batch's model.generate
LogitsProcessorsFactory = Callable[[object, int, Sequence[Chat]], list]


def load_model(
    base_model: str | Path,
    tokenizer_dir: str | Path | None = None,
    load_in_4bit: bool = False,
    chat_template: str | None = None,
    local_files_only: bool = False,
    device: str | None = None,
):
    """A model and its tokenizer for greedy generation. `tokenizer_dir`: the tokenizer Axolotl saved
    with the adapter (tokens a config adds, its eos), the embeddings grown to fit it as Axolotl grew
    them in training. `load_in_4bit`: nf4 base weights, as a QLoRA config trained on (bitsandbytes
    runs them on a CPU too). `chat_template`: replaces the tokenizer's own (the template the model
    was trained with, `training_chat_template`). Offline mode is the caller's (the Makefile sets it
    for local models only), so a hub base model that is not cached yet downloads as in training."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir or base_model), local_files_only=local_files_only)
    tokenizer.padding_side = "left"  # generated tokens must follow the prompt directly in a batch
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    options: dict = {"dtype": dtype if device == "cpu" else "auto", "local_files_only": local_files_only}
    if load_in_4bit:  # the settings Axolotl uses for `load_in_4bit: true`
        options["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype
        )
        options["device_map"] = {"": device}
    model = AutoModelForCausalLM.from_pretrained(str(base_model), **options)
    if model.get_input_embeddings().num_embeddings < len(tokenizer):
        torch.manual_seed(0)  # the new rows are drawn at random: the same ones every run
        model.resize_token_embeddings(len(tokenizer))
    if not load_in_4bit:
        model.to(device)
    model.eval()
    return model, tokenizer


def attach_adapter(model, adapter_dir: str | Path):
    """`model` with the PEFT LoRA adapter saved in `adapter_dir`, in eval mode."""
    from peft import PeftModel

    if not (Path(adapter_dir) / "adapter_config.json").exists():
        raise FileNotFoundError(f"{adapter_dir}: no adapter_config.json; train first (make train)")
    return PeftModel.from_pretrained(model, str(adapter_dir)).eval()


def render_prompts(tokenizer, chats: Sequence[Chat]) -> list[str]:
    """Each chat as the text its answer continues: the chat template with the generation prompt."""
    return [
        tokenizer.apply_chat_template(chat.messages, tools=chat.tools, add_generation_prompt=True, tokenize=False)
        for chat in chats
    ]


def batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Record indices grouped into batches: longest prompts first, so the rows of a batch need
    little padding (and a GPU meets its memory peak in the first batch), in the fewest batches
    `batch_size` allows, of near-equal sizes (100 records at 32: 25 + 25 + 25 + 25, not
    32 + 32 + 32 + 4, as a batch costs nearly as much whether it holds 4 rows or 32 on a CPU)."""
    order = sorted(range(len(lengths)), key=lambda index: -lengths[index])
    count = -(-len(order) // batch_size)
    size, larger = divmod(len(order), count) if count else (0, 0)
    groups, start = [], 0
    for number in range(count):
        end = start + size + (number < larger)
        groups.append(order[start:end])
        start = end
    return groups


def generate(
    model,
    tokenizer,
    chats: Sequence[Chat],
    batch_size: int = 32,
    max_new_tokens: int = 64,
    label: str | None = "generating",
    logits_processors: LogitsProcessorsFactory | None = None,
) -> list[str]:
    """Greedy completions for each chat, in chat order, generated in batches of similar prompt
    length (`batches`)."""
    prompts = render_prompts(tokenizer, chats)
    lengths = [len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]] if prompts else []
    outputs: list[str] = [""] * len(prompts)
    with tqdm(total=len(prompts), desc=label, unit="ex", disable=label is None) as progress:
        for indices in batches(lengths, batch_size):
            texts = _generate_batch(
                model,
                tokenizer,
                [prompts[index] for index in indices],
                max_new_tokens,
                logits_processors,
                [chats[index] for index in indices],
            )
            for index, text in zip(indices, texts):
                outputs[index] = text
            progress.update(len(indices))
    return outputs


def _generate_batch(
    model,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int,
    logits_processors: LogitsProcessorsFactory | None,
    chats: list[Chat],
) -> list[str]:
    import torch
    from transformers import LogitsProcessorList

    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    prompt_length = batch["input_ids"].shape[1]
    # built per batch: a constrained decoder tracks each row's tokens after the prompt
    processors = LogitsProcessorList(logits_processors(tokenizer, prompt_length, chats) if logits_processors else [])
    with torch.inference_mode():
        generated = model.generate(
            **batch,
            do_sample=False,
            max_new_tokens=max_new_tokens,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            logits_processor=processors,
        )
    return tokenizer.batch_decode(generated[:, prompt_length:], skip_special_tokens=True)


def training_chat_template(config: dict, root: Path = Path(".")) -> str | None:
    """The Jinja chat template an Axolotl config trains with, so prompts at eval time are laid out
    as in training: `chat_template: jinja` reads `chat_template_jinja` (a file, relative to `root`,
    or the template itself); a named Axolotl template (`qwen_25`) comes from Axolotl; None means the
    tokenizer's own (`tokenizer_default`, or no key)."""
    name = config.get("chat_template")
    jinja = config.get("chat_template_jinja")
    if jinja:
        path = root / jinja
        return path.read_text(encoding="utf-8") if "{" not in jinja and path.is_file() else jinja
    if name in (None, "tokenizer_default") or str(name).startswith("tokenizer_default_fallback_"):
        return None
    from axolotl.utils.chat_templates import get_chat_template

    return get_chat_template(name)
