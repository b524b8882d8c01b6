"""Import a user's own assistant conversation logs as chat training records.

    python -m datagen conversations examples/conversations/logs --out data/conversations \\
        --mix examples/conversations/public_instructions.jsonl --mix-ratio 1

Inputs are conversation logs, files or folders, in the log, openai or sharegpt format
(datagen/conversation_formats.py reads them). Anything malformed stops the run with
`file:line: reason`. Well-formed conversations that would teach the wrong thing are dropped,
each for the first of these reasons (counted and printed):

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

import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from datagen.conversation_formats import Conversation, public_messages, read_conversations
from datagen.dataset import write_dataset_folder
from skilltune.jsonio import DataError
from skilltune.outputs import check_output_folder
from skilltune.pairs import normalize
from skilltune.records import chat_record_problem

# Names chat apps give a conversation nobody named, and the names of throwaway test chats.
DEFAULT_DROP_NAME_PATTERNS = (
    r"test(ing)?([\s_-]*\(?\d+\)?)?",
    r"untitled([\s_-]*\(?\d+\)?)?",
    r"new[\s_-]*(chat|conversation)([\s_-]*\(?\d+\)?)?",
)

# Lowercase; matched as substrings of an assistant turn (curly apostrophes count as straight ones).
# Refusals, apologies and AI disclaimers: a model trained on them learns to hedge and refuse.
APOLOGY_PHRASES = (
    "i'm sorry",
    "i am sorry",
    "i apologize",
    "i apologise",
    "my apologies",
    "as an ai",
    "as a language model",
    "i cannot help",
    "i can't help",
    "i'm not able to help",
    "i am not able to help",
    "i'm unable to",
    "i am unable to",
    "i don't understand",
    "i do not understand",
    "i'm confused",
    "i'm not sure what you mean",
)

# Drop reasons, in the order they are checked and printed.
NAME, REPEATED, APOLOGY, MID_SYSTEM, NO_ANSWER, TOO_FEW, TOO_MANY, DUPLICATE = (
    "auto-named or test log",
    "repeated message",
    "apologetic or confused answer",
    "system message mid-conversation",
    "no answer to learn from",
    "fewer than --min-turns",
    "more than --max-turns",
    "duplicate conversation",
)
REASONS = (NAME, REPEATED, APOLOGY, MID_SYSTEM, NO_ANSWER, TOO_FEW, TOO_MANY, DUPLICATE)


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
        for message in messages
        if message["role"] == "assistant"
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
            key = tuple(
                (message["role"], normalize(message["content"])) for message in messages if message["role"] != "system"
            )
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


def read_public(path: Path, keep_system: bool) -> list[dict]:
    """Chat records from an OpenAI messages JSONL or Alpaca JSON/JSONL file; each must normalize."""
    try:
        return _read_public(path, keep_system)
    except UnicodeDecodeError:
        raise DataError(path, 0, "not UTF-8 text") from None


def _read_public(path: Path, keep_system: bool) -> list[dict]:
    records = []
    for number, messages in public_messages(path):
        messages, reason = normalize_turns(messages, keep_system)
        if reason:
            raise DataError(path, number, f"not a usable chat record: {reason}")
        records.append({"messages": messages})
    if not records:
        raise DataError(path, 0, "no records")
    return records


# --- splitting, mixing, the report


def split_and_mix(
    user: list[dict], public: list[dict], val_fraction: float, mix_ratio: float, seed: int
) -> tuple[dict[str, list[dict]], dict[str, dict[str, int]], int]:
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


# --- the whole run


class NothingKept(ValueError):
    """Every conversation read was dropped; str() is the one-line reason."""


@dataclass
class ConversationSettings:
    """What `datagen conversations` was asked to do."""

    inputs: tuple[Path, ...]  # log files or folders of them
    out: Path
    fmt: str  # "auto" or one of FORMATS
    system: str  # "strip" or "keep"
    min_turns: int
    max_turns: int | None
    drop_name_patterns: tuple[str, ...]
    mix: Path | None  # public instruction records for the train split
    mix_ratio: float
    val_fraction: float
    seed: int

    def filters(self) -> Filters:
        return Filters(
            drop_name_patterns=self.drop_name_patterns,
            keep_system=self.system == "keep",
            min_turns=self.min_turns,
            max_turns=self.max_turns,
        )

    def manifest(self, counts: dict[str, dict[str, int]]) -> dict:
        return {
            "generator": "datagen conversations",
            "seed": self.seed,
            "style": "chat",
            "source": ", ".join(map(str, self.inputs)),
            "options": {
                "format": self.fmt,
                "system": self.system,
                "min_turns": self.min_turns,
                "max_turns": self.max_turns,
                "drop_name_patterns": list(self.drop_name_patterns),
                "mix": str(self.mix) if self.mix else None,
                "mix_ratio": self.mix_ratio,
                "val_fraction": self.val_fraction,
            },
            "counts": counts,
        }


@dataclass
class Outcome:
    """What a run read, kept and wrote."""

    read: int
    kept: int
    dropped: Counter
    counts: dict[str, dict[str, int]]  # split_and_mix's counts per split and source
    public_wanted: int
    public_available: int


def make_dataset(settings: ConversationSettings) -> Outcome:
    """Read, filter, split and mix the conversations and write the dataset folder settings.out.

    DataError for bad input or an --out that may not be written, OSError for a failed write,
    NothingKept when no conversation is left; nothing is written then.
    """
    run_inputs = (*settings.inputs, *([settings.mix] if settings.mix else []))
    check_output_folder(settings.out, run_inputs)
    conversations = read_conversations(settings.inputs, settings.fmt)
    filters = settings.filters()
    kept, dropped = filter_conversations(conversations, filters)
    public = read_public(settings.mix, filters.keep_system) if settings.mix else []  # its errors come first
    if not kept:
        raise NothingKept(f"no conversation survived the filters ({len(conversations)} read)")
    splits, counts, wanted = split_and_mix(kept, public, settings.val_fraction, settings.mix_ratio, settings.seed)
    write_dataset_folder(settings.out, splits, settings.manifest(counts), run_inputs)
    return Outcome(
        read=len(conversations),
        kept=len(kept),
        dropped=dropped,
        counts=counts,
        public_wanted=wanted,
        public_available=len(public),
    )
