"""Conversation files as a user's assistant exports them, read into messages; anything malformed
is a DataError naming `file:line`.

Inputs of `datagen conversations` (files or folders; a folder means its *.jsonl and *.json files,
each detected on its own):

    log       one conversation per .jsonl file, one {"role", "content"} message a line
    openai    OpenAI fine-tuning JSONL: one {"messages": [...]} conversation a line (optional "title")
    sharegpt  a JSON list of {"conversations": [{"from": "human"|"gpt"|"system", "value"}]} (optional "title")

and of its --mix: public instruction records, OpenAI messages JSONL or Alpaca {"instruction",
"input", "output"} JSON/JSONL. What to keep of them is datagen/conversations.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from skilltune.jsonio import STRICT_DECODER, DataError, iter_json_lines, read_text

FORMATS = ("log", "openai", "sharegpt")
SHAREGPT_ROLES = {"human": "user", "gpt": "assistant", "system": "system"}
ROLES = ("system", "user", "assistant")


@dataclass
class Conversation:
    path: Path
    line: int  # where the conversation starts (1 for a log file)
    name: str  # log file stem or entry title; "" when the entry has none
    messages: list[dict]  # {"role", "content"} as read, roles already mapped to system/user/assistant


def iter_json_array(path: Path) -> Iterator[tuple[int, object]]:
    """Yield (line number, entry) for each entry of a file holding one JSON list.

    json.load would give the entries but not where they are; decoding them one at a time lets a
    bad entry be named by its line, like a bad JSONL line.
    """
    text = read_text(path)  # not UTF-8 is a DataError naming the line
    decoder = STRICT_DECODER
    space = re.compile(r"[ \t\r\n]*")
    line, counted_to = 1, 0

    def line_at(position: int) -> int:
        nonlocal line, counted_to
        line += text.count("\n", counted_to, position)
        counted_to = position
        return line

    position = space.match(text).end()
    if not text.startswith("[", position):
        raise DataError(path, line_at(position), "expected a JSON list [...] of entries")
    position = space.match(text, position + 1).end()
    closed = text.startswith("]", position)
    while not closed:
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as err:
            raise DataError(path, err.lineno, f"not JSON: {err.msg} (column {err.colno})") from None
        except (ValueError, RecursionError) as err:  # NaN, Infinity, an integer too long to read
            raise DataError(path, line_at(position), f"not JSON: {err or 'nested too deeply'}") from None
        yield line_at(position), value
        position = space.match(text, end).end()
        if text.startswith(",", position):
            position = space.match(text, position + 1).end()
        elif text.startswith("]", position):
            closed = True
        else:
            raise DataError(path, line_at(position), "not JSON: expected ',' or ']' after an entry")
    rest = space.match(text, position + 1).end()
    if rest != len(text):
        raise DataError(path, line_at(rest), "not JSON: extra data after the list")


def _message(path: Path, line: int, obj, where: str = "") -> dict:
    """A {"role", "content"} message, checked; other keys (ids, timestamps) are ignored."""
    prefix = f"{where}: " if where else ""
    if not isinstance(obj, dict):
        raise DataError(path, line, f"{prefix}expected an object with role and content")
    if obj.get("role") not in ROLES:
        raise DataError(path, line, f"{prefix}role {obj.get('role')!r} is not one of {', '.join(ROLES)}")
    if not isinstance(obj.get("content"), str):
        raise DataError(path, line, f"{prefix}content must be a string, got {type(obj.get('content')).__name__}")
    return {"role": obj["role"], "content": obj["content"]}


def _title(path: Path, line: int, entry: dict) -> str:
    title = entry.get("title", "")
    if not isinstance(title, str):
        raise DataError(path, line, "title must be a string")
    return title


def openai_messages(path: Path, line: int, entry) -> list[dict]:
    """The messages of one OpenAI-format entry {"messages": [...]}, checked."""
    if not isinstance(entry, dict) or not isinstance(entry.get("messages"), list):
        raise DataError(path, line, 'expected {"messages": [{"role": ..., "content": ...}, ...]}')
    return [_message(path, line, message, f"messages[{index}]") for index, message in enumerate(entry["messages"])]


def read_log(path: Path) -> Iterator[Conversation]:
    messages = [_message(path, number, obj) for number, obj in iter_json_lines(path)]
    yield Conversation(path, 1, path.stem, messages)


def read_openai(path: Path) -> Iterator[Conversation]:
    for number, entry in iter_json_lines(path):
        messages = openai_messages(path, number, entry)
        yield Conversation(path, number, _title(path, number, entry), messages)


def read_sharegpt(path: Path) -> Iterator[Conversation]:
    for number, entry in iter_json_array(path):
        if not isinstance(entry, dict) or not isinstance(entry.get("conversations"), list):
            raise DataError(path, number, 'expected {"conversations": [{"from": ..., "value": ...}, ...]}')
        messages = []
        for index, turn in enumerate(entry["conversations"]):
            where = f"conversations[{index}]"
            if not isinstance(turn, dict) or turn.get("from") not in SHAREGPT_ROLES:
                sender = turn.get("from") if isinstance(turn, dict) else turn
                raise DataError(path, number, f"{where}: from {sender!r} is not one of {', '.join(SHAREGPT_ROLES)}")
            if not isinstance(turn.get("value"), str):
                raise DataError(path, number, f"{where}: value must be a string")
            messages.append({"role": SHAREGPT_ROLES[turn["from"]], "content": turn["value"]})
        yield Conversation(path, number, _title(path, number, entry), messages)


READERS = {"log": read_log, "openai": read_openai, "sharegpt": read_sharegpt}


def detect_format(path: Path) -> str:
    """sharegpt for .json; for .jsonl the first line decides: "messages" -> openai, "role" -> log."""
    if path.suffix == ".json":
        return "sharegpt"
    for number, obj in iter_json_lines(path):
        if isinstance(obj, dict) and "messages" in obj:
            return "openai"
        if isinstance(obj, dict) and "role" in obj:
            return "log"
        raise DataError(
            path,
            number,
            'cannot tell the format: expected {"messages": [...]} (openai) or '
            '{"role", "content"} lines (log); or give --format',
        )
    raise DataError(path, 0, "empty file")


def input_files(paths: tuple[Path, ...]) -> list[Path]:
    files = []
    for path in paths:
        if path.is_dir():
            found = sorted(child for child in path.iterdir() if child.suffix in (".jsonl", ".json") and child.is_file())
            if not found:
                raise DataError(path, 0, "no .jsonl or .json files in this folder")
            files += found
        else:
            files.append(path)
    return files


def read_conversations(paths: tuple[Path, ...], fmt: str = "auto") -> list[Conversation]:
    conversations = []
    for path in input_files(paths):
        try:
            conversations += READERS[detect_format(path) if fmt == "auto" else fmt](path)
        except UnicodeDecodeError:
            raise DataError(path, 0, "not UTF-8 text") from None
    return conversations


# --- public instruction records for --mix


def _alpaca_messages(path: Path, line: int, entry: dict) -> list[dict]:
    for key in ("instruction", "output"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise DataError(path, line, f"{key} must be a non-empty string")
    if not isinstance(entry.get("input", ""), str):
        raise DataError(path, line, "input must be a string")
    request = entry["instruction"].strip()
    if entry.get("input", "").strip():
        request += "\n\n" + entry["input"].strip()
    return [{"role": "user", "content": request}, {"role": "assistant", "content": entry["output"]}]


def public_messages(path: Path) -> Iterator[tuple[int, list[dict]]]:
    """(line number, messages as read) for each record of an OpenAI messages JSONL or Alpaca JSON/JSONL file."""
    entries = iter_json_array(path) if path.suffix == ".json" else iter_json_lines(path)
    for number, entry in entries:
        if isinstance(entry, dict) and "messages" in entry:
            yield number, openai_messages(path, number, entry)
        elif isinstance(entry, dict) and "instruction" in entry:
            yield number, _alpaca_messages(path, number, entry)
        else:
            raise DataError(path, number, 'expected {"messages": [...]} or {"instruction", "input", "output"}')
