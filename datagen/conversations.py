"""Import a user's own assistant conversation logs as chat training records.

    python -m datagen conversations examples/conversations/logs --out data/conversations \\
        --mix examples/conversations/public_instructions.jsonl --mix-ratio 1

Inputs (files or folders; a folder means its *.jsonl and *.json files, each detected on its own):

    log       one conversation per .jsonl file, one {"role", "content"} message a line
    openai    OpenAI fine-tuning JSONL: one {"messages": [...]} conversation a line (optional "title")
    sharegpt  a JSON list of {"conversations": [{"from": "human"|"gpt"|"system", "value"}]} (optional "title")

Anything malformed stops the run with `file:line: reason`. Well-formed conversations that would
teach the wrong thing are dropped, each for the first of these reasons (counted and printed):

    auto-named or test log        the log file's name or the entry's title is "test", "untitled",
                                  "New chat", ... (--drop-name-pattern; full match, any case)
    repeated message              the same user or assistant message twice in one conversation: a
                                  retry loop or a stuck assistant, not a dialogue worth learning
    apologetic or confused answer an assistant turn containing one of APOLOGY_PHRASES
    system message mid-conversation   (--system keep only) a system turn after the dialogue began
    no answer to learn from       nothing is left once empty, leading-assistant and trailing-user
                                  turns are removed
    fewer than --min-turns / more than --max-turns   a turn is one user message and its answer
    duplicate conversation        the same dialogue as an earlier one (exported twice)

What is kept is normalized to what the chat record rules demand (render.chat_record_problem):
an optional system message, then user and assistant turns alternating, ending on an answer.
Consecutive messages of one role are joined with a blank line (exports split long turns).

--mix adds public instruction records (OpenAI messages JSONL, or Alpaca {"instruction", "input",
"output"} JSON/JSONL) to the training split only: round(R x user training conversations) of
them, sampled with the seed. The validation split is drawn from the user's conversations alone,
so it measures what the user cares about.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import click

from skilltune.pairs import normalize
from datagen.dataset import write_dataset_folder
from skilltune.jsonio import STRICT_DECODER, DataError, iter_json_lines, read_text
from skilltune.outputs import check_output_folder
from skilltune.cli import OneLineErrors, fail
from skilltune.records import chat_record_problem

FORMATS = ("log", "openai", "sharegpt")
SHAREGPT_ROLES = {"human": "user", "gpt": "assistant", "system": "system"}
ROLES = ("system", "user", "assistant")

# Names chat apps give a conversation nobody named, and the names of throwaway test chats.
DEFAULT_DROP_NAME_PATTERNS = (
    r"test(ing)?([\s_-]*\(?\d+\)?)?",
    r"untitled([\s_-]*\(?\d+\)?)?",
    r"new[\s_-]*(chat|conversation)([\s_-]*\(?\d+\)?)?",
)

# Lowercase; matched as substrings of an assistant turn (curly apostrophes count as straight ones).
# Refusals, apologies and AI disclaimers: a model trained on them learns to hedge and refuse.
APOLOGY_PHRASES = (
    "i'm sorry", "i am sorry", "i apologize", "i apologise", "my apologies",
    "as an ai", "as a language model",
    "i cannot help", "i can't help", "i'm not able to help", "i am not able to help",
    "i'm unable to", "i am unable to",
    "i don't understand", "i do not understand", "i'm confused", "i'm not sure what you mean",
)

# Drop reasons, in the order they are checked and printed.
NAME, REPEATED, APOLOGY, MID_SYSTEM, NO_ANSWER, TOO_FEW, TOO_MANY, DUPLICATE = (
    "auto-named or test log", "repeated message", "apologetic or confused answer",
    "system message mid-conversation", "no answer to learn from",
    "fewer than --min-turns", "more than --max-turns", "duplicate conversation",
)
REASONS = (NAME, REPEATED, APOLOGY, MID_SYSTEM, NO_ANSWER, TOO_FEW, TOO_MANY, DUPLICATE)


@dataclass
class Conversation:
    path: Path
    line: int  # where the conversation starts (1 for a log file)
    name: str  # log file stem or entry title; "" when the entry has none
    messages: list[dict]  # {"role", "content"} as read, roles already mapped to system/user/assistant


# --- reading


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
        raise DataError(path, number, 'cannot tell the format: expected {"messages": [...]} (openai) or '
                                      '{"role", "content"} lines (log); or give --format')
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


# --- filtering and normalization


def _has_repeat(messages: list[dict]) -> bool:
    seen = set()
    for message in messages:
        key = (message["role"], normalize(message["content"]))
        if message["role"] == "system" or not key[1]:
            continue  # "?" or an emoji twice is no loop
        if key in seen:
            return True
        seen.add(key)
    return False


def _apologizes(messages: list[dict]) -> bool:
    return any(
        phrase in message["content"].lower().replace("\u2019", "'")
        for message in messages if message["role"] == "assistant"
        for phrase in APOLOGY_PHRASES
    )


def normalize_turns(messages: list[dict], keep_system: bool) -> tuple[list[dict], str | None]:
    """(messages as alternating user/assistant turns ending on an answer, None) or ([], reason)."""
    system = []
    turns: list[dict] = []
    for message in messages:
        content = message["content"].strip()
        if message["role"] == "system":
            if keep_system and turns:
                return [], MID_SYSTEM
            if keep_system and content:
                system.append(content)
            continue
        if not content:
            continue
        if turns and turns[-1]["role"] == message["role"]:
            turns[-1]["content"] += "\n\n" + content
        elif turns or message["role"] == "user":  # an assistant greeting before the user spoke answers nothing
            turns.append({"role": message["role"], "content": content})
    if turns and turns[-1]["role"] == "user":
        turns.pop()  # an unanswered question teaches nothing
    if not turns:
        return [], NO_ANSWER
    head = [{"role": "system", "content": "\n\n".join(system)}] if system else []
    return head + turns, None


@dataclass
class Filters:
    drop_name_patterns: tuple[str, ...] = DEFAULT_DROP_NAME_PATTERNS
    keep_system: bool = False
    min_turns: int = 1
    max_turns: int | None = None

    def compiled(self) -> list[re.Pattern]:
        return [re.compile(pattern, re.IGNORECASE) for pattern in self.drop_name_patterns]


def filter_conversations(conversations: list[Conversation], filters: Filters) -> tuple[list[dict], Counter]:
    """The records that pass, in input order, and how many were dropped for each reason."""
    names = filters.compiled()
    kept, dropped, seen = [], Counter(), set()
    for conversation in conversations:
        reason = None
        if any(pattern.fullmatch(conversation.name.strip()) for pattern in names if conversation.name.strip()):
            reason = NAME
        elif _has_repeat(conversation.messages):
            reason = REPEATED
        elif _apologizes(conversation.messages):
            reason = APOLOGY
        else:
            messages, reason = normalize_turns(conversation.messages, filters.keep_system)
        if reason is None:
            turns = sum(message["role"] == "assistant" for message in messages)
            key = tuple((message["role"], normalize(message["content"])) for message in messages
                        if message["role"] != "system")
            if turns < filters.min_turns:
                reason = TOO_FEW
            elif filters.max_turns is not None and turns > filters.max_turns:
                reason = TOO_MANY
            elif key in seen:
                reason = DUPLICATE
            else:
                seen.add(key)
        if reason:
            dropped[reason] += 1
            continue
        record = {"messages": messages}
        problem = chat_record_problem(record)
        if problem:  # normalize_turns exists to rule this out; a hit is a bug, named where it came from
            raise DataError(conversation.path, conversation.line, f"normalized conversation is invalid: {problem}")
        kept.append(record)
    return kept, dropped


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


def read_public(path: Path, keep_system: bool) -> list[dict]:
    """Chat records from an OpenAI messages JSONL or Alpaca JSON/JSONL file; each must normalize."""
    try:
        return _read_public(path, keep_system)
    except UnicodeDecodeError:
        raise DataError(path, 0, "not UTF-8 text") from None


def _read_public(path: Path, keep_system: bool) -> list[dict]:
    entries = iter_json_array(path) if path.suffix == ".json" else iter_json_lines(path)
    records = []
    for number, entry in entries:
        if isinstance(entry, dict) and "messages" in entry:
            messages = openai_messages(path, number, entry)
        elif isinstance(entry, dict) and "instruction" in entry:
            messages = _alpaca_messages(path, number, entry)
        else:
            raise DataError(path, number, 'expected {"messages": [...]} or {"instruction", "input", "output"}')
        messages, reason = normalize_turns(messages, keep_system)
        if reason:
            raise DataError(path, number, f"not a usable chat record: {reason}")
        records.append({"messages": messages})
    if not records:
        raise DataError(path, 0, "no records")
    return records


# --- splitting, mixing, writing


def split_and_mix(user: list[dict], public: list[dict], val_fraction: float, mix_ratio: float,
                  seed: int) -> tuple[dict[str, list[dict]], dict[str, dict[str, int]], int]:
    """Splits {"train", "val"}, counts per split and source, and how many public records were wanted.

    val takes round(n x val_fraction) of the user's conversations (at least 1 when the fraction
    is above 0 and there are 2 or more; never all of them). train gets the rest plus
    round(train x mix_ratio) public records, sampled without replacement (all of them when
    fewer are there). E.g. 10 kept, --val-fraction 0.2, --mix-ratio 1.5: val 2, train 8 + 12.
    """
    order = list(range(len(user)))
    random.Random(seed).shuffle(order)
    n_val = round(len(user) * val_fraction)
    if val_fraction > 0 and len(user) >= 2:
        n_val = max(n_val, 1)
    n_val = min(n_val, len(user) - 1)
    val = [user[index] for index in order[:n_val]]
    train_user = [user[index] for index in sorted(order[n_val:])]
    wanted = round(len(train_user) * mix_ratio) if public else 0
    # separate streams: changing --mix-ratio does not change which conversations are in val
    sample = random.Random(seed + 1).sample(public, min(wanted, len(public)))
    train = train_user + sample
    random.Random(seed + 2).shuffle(train)  # public records spread through the epoch, not in one block
    counts = {
        "train": {"conversations": len(train_user), "public": len(sample)},
        "val": {"conversations": len(val), "public": 0},
    }
    return {"train": train, "val": val}, counts, wanted


def report_lines(read: int, kept: int, dropped: Counter) -> list[str]:
    width = max(len(reason) for reason in REASONS) + 10
    lines = [f"{'conversations read':<{width}}{read:>6}", f"{'kept':<{width}}{kept:>6}"]
    lines += [f"{'dropped: ' + reason:<{width}}{dropped[reason]:>6}" for reason in REASONS]
    return lines


# --- command line


@click.command(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Dataset folder to (re)write: train.jsonl, val.jsonl, manifest.json.")
@click.option("--format", "fmt", type=click.Choice(["auto", *FORMATS]), default="auto", show_default=True,
              help="Input format of every file; auto: .json is sharegpt, a .jsonl's first line tells log from openai.")
@click.option("--system", type=click.Choice(["strip", "keep"]), default="strip", show_default=True,
              help="Drop system messages, or keep those before the first turn (joined into one).")
@click.option("--min-turns", type=click.IntRange(min=1), default=1, show_default=True,
              help="Fewest user+answer exchanges a kept conversation has.")
@click.option("--max-turns", type=click.IntRange(min=1), default=None, help="Most exchanges (default: no limit).")
@click.option("--drop-name-pattern", "drop_name_patterns", multiple=True,
              help="Regex (full match, any case) for log file names / titles to drop; repeatable; replaces the "
                   "defaults (test, untitled, New chat, ...). '' drops none.")
@click.option("--mix", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Public instruction records (OpenAI messages JSONL or Alpaca JSON/JSONL) for the train split.")
@click.option("--mix-ratio", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Public records per user conversation in train.")
@click.option("--val-fraction", type=click.FloatRange(0, 0.5), default=0.1, show_default=True,
              help="Share of the user's conversations held out for val (public records never are).")
@click.option("--seed", type=int, default=0, show_default=True, help="Same inputs and seed: byte-identical files.")
def conversations_command(inputs, out, fmt, system, min_turns, max_turns, drop_name_patterns, mix, mix_ratio,
                          val_fraction, seed) -> None:
    """Turn conversation logs (INPUTS: files or folders) into filtered chat records with a val split.

    \b
    Example:
      python -m datagen conversations examples/conversations/logs --out data/conversations \\
          --mix examples/conversations/public_instructions.jsonl --mix-ratio 1 --seed 0
    """
    if max_turns is not None and max_turns < min_turns:
        fail(f"--max-turns {max_turns} is below --min-turns {min_turns}")
    patterns = drop_name_patterns or DEFAULT_DROP_NAME_PATTERNS
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as err:
            fail(f"--drop-name-pattern {pattern!r}: {err}")
    filters = Filters(tuple(patterns), system == "keep", min_turns, max_turns)
    run_inputs = (*inputs, *([mix] if mix else []))
    try:
        check_output_folder(out, run_inputs)
        conversations = read_conversations(inputs, fmt)
        kept, dropped = filter_conversations(conversations, filters)
        public = read_public(mix, filters.keep_system) if mix else []
        if not kept:
            fail(f"no conversation survived the filters ({len(conversations)} read)")
        splits, counts, wanted = split_and_mix(kept, public, val_fraction, mix_ratio, seed)
        write_dataset_folder(out, splits, {
            "generator": "datagen conversations",
            "seed": seed,
            "style": "chat",
            "source": ", ".join(map(str, inputs)),
            "options": {
                "format": fmt, "system": system, "min_turns": min_turns, "max_turns": max_turns,
                "drop_name_patterns": list(patterns), "mix": str(mix) if mix else None, "mix_ratio": mix_ratio,
                "val_fraction": val_fraction,
            },
            "counts": counts,
        }, run_inputs)
    except (DataError, OSError) as err:
        fail(str(err))
    if wanted > counts["train"]["public"]:
        click.echo(f"warning: --mix-ratio {mix_ratio} wants {wanted} public records; {mix} has {len(public)}", err=True)
    for line in report_lines(len(conversations), len(kept), dropped):
        click.echo(line)
    click.echo(f"wrote {out}: train {counts['train']['conversations']} conversations + {counts['train']['public']} "
               f"public, val {counts['val']['conversations']} conversations")
