"""Predictions from a model, through one interface and three backends.

A backend turns records into raw output texts, one per record, in record order:

    backend.generate(records) -> list[str]

The prompt is the record's messages before the gold answer (`record["messages"][:-1]`) plus its
`tools` when it has them. Backends:

    TransformersBackend  a local model (and optional PEFT LoRA adapter): batched greedy decoding,
                         left padding, the tokenizer's own chat template, CPU or GPU
    OpenAIBackend        any OpenAI-compatible chat-completions endpoint (hosted fine-tunes,
                         vLLM or llama.cpp servers): temperature 0, bounded concurrency
    VLLMBackend          vLLM's offline engine on a CUDA GPU (the optional `gpu` extra)

Loading and greedy generation of a local model are skilltune/local_model.py's (datagen uses them
too); the chat template is the one Axolotl trained with (`training_chat_template`).
Generation stops at the tokenizer's end-of-turn token (eos, which scripts/prepare_smollm2.py sets
to <|im_end|>).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Protocol

from tqdm import tqdm

from skilltune.calls import calls_to_python
from skilltune.jsonio import write_jsonl
from skilltune.local_model import (  # noqa: F401  (attach_adapter, batches, training_chat_template: eval's API too)
    Chat,
    LogitsProcessorsFactory,
    attach_adapter,
    batches,
    load_model,
    render_prompts,
    training_chat_template,
)
from skilltune.local_model import generate as generate_chats
from skilltune.openai_api import EndpointError, async_client, one_line, post_chat
from skilltune.records import gold_calls, user_text


class PredictError(RuntimeError):
    """Predictions cannot be made (a backend is missing, an endpoint failed); str() is one line."""


class Backend(Protocol):
    label: str

    def generate(self, records: list[dict]) -> list[str]:
        """One raw output text per record, in record order."""


def prompt_messages(record: dict) -> list[dict]:
    """The conversation the model answers: everything before the gold answer."""
    return record["messages"][:-1]


# --- transformers


def chat_of(record: dict) -> Chat:
    """The record as the conversation a model answers: the prompt and the record's tools."""
    return Chat(prompt_messages(record), record.get("tools"))


def generate(
    model,
    tokenizer,
    records: list[dict],
    batch_size: int = 32,
    max_new_tokens: int = 64,
    label: str = "generating",
    logits_processors: LogitsProcessorsFactory | None = None,
) -> list[str]:
    """Greedy completions for each record's prompt (all messages before the gold answer), in
    record order: skilltune.local_model.generate on the records' chats."""
    return generate_chats(
        model,
        tokenizer,
        [chat_of(record) for record in records],
        batch_size,
        max_new_tokens,
        label=label,
        logits_processors=logits_processors,
    )


class TransformersBackend:
    """A local model, plus a PEFT LoRA adapter when `adapter` is given, decoding greedily in batches.

    `logits_processors(tokenizer, prompt_length, chats)` is called once per batch and its processors go
    to `model.generate(logits_processor=...)` (constrained decoding plugs in there).
    """

    def __init__(
        self,
        base_model: str | Path,
        adapter: str | Path | None = None,
        batch_size: int = 32,
        max_new_tokens: int = 64,
        logits_processors: LogitsProcessorsFactory | None = None,
        label: str | None = None,
        chat_template: str | None = None,
        tokenizer_dir: str | Path | None = None,
        load_in_4bit: bool = False,
    ):
        if batch_size < 1 or max_new_tokens < 1:
            raise ValueError(f"batch_size ({batch_size}) and max_new_tokens ({max_new_tokens}) must be at least 1")
        if adapter is not None and not (Path(adapter) / "adapter_config.json").exists():
            raise PredictError(f"{adapter}: no trained adapter (adapter_config.json); run `make train` first")
        self.label = label or ("tuned" if adapter else "base")
        self.batch_size, self.max_new_tokens, self.logits_processors = batch_size, max_new_tokens, logits_processors
        try:
            # chat_template: the one the model was trained with (training_chat_template)
            self.model, self.tokenizer = load_model(base_model, tokenizer_dir, load_in_4bit, chat_template)
            if adapter is not None:
                self.model = attach_adapter(self.model, adapter)
        except OSError as err:  # transformers' "not found": a missing folder, offline hub, broken files
            what = f"{base_model} + {adapter}" if adapter else str(base_model)
            raise PredictError(f"{what}: cannot load: {one_line(err)}") from None

    def generate(self, records: list[dict]) -> list[str]:
        return generate(
            self.model,
            self.tokenizer,
            records,
            self.batch_size,
            self.max_new_tokens,
            label=self.label,
            logits_processors=self.logits_processors,
        )


# --- OpenAI-compatible endpoints


def output_text(message) -> str:
    """An answer message as the text the parser reads: its tool calls as JSON, else its content.

    Total over any JSON a server sends: what is not the documented shape is scored as the text
    it is (a content of 42 is the output "42"), never a crash that loses the other answers."""
    if not isinstance(message, dict):
        return json.dumps(message, ensure_ascii=False)
    tool_calls = message.get("tool_calls")
    functions = (
        [call.get("function") for call in tool_calls if isinstance(call, dict)] if isinstance(tool_calls, list) else []
    )
    calls = [
        {"type": "function", "function": {"name": f.get("name"), "arguments": f.get("arguments")}}
        for f in functions
        if isinstance(f, dict)
    ]
    if calls:
        return json.dumps({"tool_calls": calls}, ensure_ascii=False)
    content = message.get("content")
    if content is None:
        return ""
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)


class OpenAIBackend:
    """Any OpenAI-compatible chat-completions endpoint, at temperature 0.

    Up to `concurrency` requests are in flight (a new one starts as soon as one returns). Retries,
    backoff and Retry-After on 429/5xx/timeouts are the `openai` client's own (`max_retries`).
    The API key comes from OPENAI_API_KEY only and goes to the client, nowhere else.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        concurrency: int = 8,
        max_retries: int = 5,
        timeout: float = 60.0,
        max_tokens: int = 64,
        label: str | None = None,
    ):
        if concurrency < 1 or max_retries < 0 or timeout <= 0 or max_tokens < 1:
            raise ValueError("concurrency and max_tokens must be at least 1, max_retries at least 0, timeout positive")
        self.base_url, self.model = base_url, model
        self.concurrency, self.max_retries = concurrency, max_retries
        self.timeout, self.max_tokens = timeout, max_tokens
        self.label = label or model

    def request_body(self, record: dict) -> dict:
        body = {
            "model": self.model,
            "messages": prompt_messages(record),
            "temperature": 0,
            "max_tokens": self.max_tokens,
        }
        if record.get("tools"):
            body["tools"] = record["tools"]
        return body

    def generate(self, records: list[dict]) -> list[str]:
        return asyncio.run(self._generate(records))

    async def _generate(self, records: list[dict]) -> list[str]:
        window = asyncio.Semaphore(self.concurrency)
        client = async_client(self.base_url, self.max_retries, self.timeout)
        with tqdm(total=len(records), desc=self.label, unit="ex") as progress:
            failed = asyncio.Event()

            async def one(index: int, record: dict) -> str:
                async with window:
                    if failed.is_set():  # woken by the failed request's free slot: send nothing more
                        raise asyncio.CancelledError
                    try:
                        text = await self._complete(client, index, record)
                    except PredictError:
                        failed.set()
                        raise
                progress.update(1)
                return text

            async with client:
                tasks = [asyncio.create_task(one(index, record)) for index, record in enumerate(records)]
                try:
                    return await asyncio.gather(*tasks)  # results in task order, i.e. record order
                finally:
                    # after a failure no more requests go out: the rest are cancelled and awaited
                    # before the client closes
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)

    async def _complete(self, client, index: int, record: dict) -> str:
        where = f"record {index} (model {self.model!r}, max retries {self.max_retries})"
        try:
            response = await post_chat(client, self.request_body(record), self.base_url, f" for {where}")
        except EndpointError as err:
            raise PredictError(str(err)) from None
        choices = response.get("choices")
        if not (isinstance(choices, list) and choices and isinstance(choices[0], dict)):
            raise PredictError(f"{self.base_url} answered {where} with no choices")
        return output_text(choices[0].get("message") or {})


# --- vLLM


class VLLMBackend:
    """vLLM's offline engine (CUDA GPU; `pip install 'skilltune[gpu]'`), greedy.

    Prompts are rendered with the tokenizer's chat template exactly as TransformersBackend renders
    them (per record, with its tools) and passed as token ids. `llm` reuses an engine already built:
    a process holds one engine's GPU memory, and one built with `enable_lora=True` (any backend here
    with an adapter) also answers as the bare base model when given no adapter.
    """

    def __init__(
        self,
        base_model: str | Path,
        adapter: str | Path | None = None,
        max_new_tokens: int = 64,
        label: str | None = None,
        llm=None,
    ):
        try:
            import vllm
            from vllm.lora.request import LoRARequest
        except ImportError:
            raise PredictError("vLLM is not installed: pip install 'skilltune[gpu]' (needs a CUDA GPU)") from None
        if adapter is not None and not (Path(adapter) / "adapter_config.json").exists():
            raise PredictError(f"{adapter}: no trained adapter (adapter_config.json); run `make train` first")
        self.label = label or ("tuned" if adapter else "base")
        # the default max_lora_rank (16) is the rank configs/*.yml train with
        self.llm = llm or vllm.LLM(model=str(base_model), enable_lora=adapter is not None)
        self.sampling = vllm.SamplingParams(temperature=0, max_tokens=max_new_tokens)
        self.lora = LoRARequest("adapter", 1, str(adapter)) if adapter is not None else None

    def generate(self, records: list[dict]) -> list[str]:
        tokenizer = self.llm.get_tokenizer()
        texts = render_prompts(tokenizer, [chat_of(record) for record in records])
        # the template already holds the special tokens; `LLM.chat` encodes its prompts the same way
        prompts = [{"prompt_token_ids": tokenizer.encode(text, add_special_tokens=False)} for text in texts]
        results = self.llm.generate(prompts, self.sampling, use_tqdm=True, lora_request=self.lora)
        return [result.outputs[0].text for result in results]  # vLLM returns them in prompt order


# --- saved predictions


def prediction_rows(
    records: list[dict], outputs: list[str], model_label: str, split: str, decoding: str = "free"
) -> list[dict]:
    return [
        {
            "index": index,
            "model": model_label,
            "split": split,
            "decoding": decoding,
            "skill": gold_calls(record)[0].name,  # a compound request counts under its first call
            "user": user_text(record),
            # as Python call text whatever the answer style (tool_calls answers have no content)
            "gold": calls_to_python(gold_calls(record)),
            "output": output,
        }
        for index, (record, output) in enumerate(zip(records, outputs, strict=True))
    ]


def write_predictions(path: Path | str, rows: list[dict]) -> None:
    """Checked against skilltune/schemas/prediction.schema.json, then written atomically."""
    write_jsonl(path, rows, "prediction")
