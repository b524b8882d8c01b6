"""LLM generation of training pairs through any OpenAI-compatible chat-completions API.

    OPENAI_API_KEY=... python -m datagen llm --base-url https://api.openai.com/v1 --model MODEL \\
        --per-skill 50 --out data/llm/pairs.jsonl
    python -m datagen llm --base-url http://127.0.0.1:8000/v1 --model local --review review/
    python -m datagen merge-review review/ --pack examples/skills

Why the output can be trusted, and a run can be killed and resumed:

- The plan. Request i of skill s is a pure function of (pack contents, s, i, model, seed, batch):
  the prompt describes the skill (signature, description, JSON Schema of its arguments), shows a
  sample of the pack's examples picked by (seed, s, i), and asks for `batch` new pairs through a
  forced function call (`submit_pairs`); the same JSON as plain `message.content` is accepted too.
  A skill gets requests 0, 1, 2, ... until it has `--per-skill` pairs or hits a cap of 3x the
  requests it would need if every candidate were accepted.
- The cache. Every answer that holds at least one valid pair is stored under `--cache` as
  `<sha256 of the canonical request body>.json` (written to a temporary file, then renamed). The
  key is the request body only: no API key, no base URL. A cached request makes no HTTP call, so a
  finished run re-runs with zero requests. An answer without a valid pair (garbage, an empty or
  oddly shaped message) is judged and rejected but not cached, and such an entry left by an older
  version counts as a miss, so a later run against a healthy server asks again.
- Plan order. Requests are sent concurrently (`--concurrency` in flight, a new one as soon as one returns), but
  their candidates are judged strictly in plan order: skill by skill in pack order, request by
  request, candidate by candidate. What is accepted therefore never depends on timing.
- Append-only output. An accepted pair is written as one line and flushed before the next is
  judged. On start an existing `--out` (and `--rejects`) is read back and checked whole before
  anything is changed: a file that is not that JSONL (text, bad JSON, invalid UTF-8, a folder) is a
  one-line error and is left as it is. A last line without a newline is kept if it is a valid line;
  one that is not (a torn write) is cut off, with a warning naming its line and size. The pairs
  count toward the targets and the dedup set, and replaying the plan from request
  0 (from the cache, mostly) skips them again, so a killed and resumed run ends with exactly the
  pairs an uninterrupted run writes.
- Checks. A candidate must be JSON with a non-empty one-line `user` and either `arguments` (an
  object, made into `Call(skill, arguments)`) or `call` (text, parsed with `parse_call`, never
  executed); the call must pass `Skill.check_call` and survive a round trip through its text; the
  utterance must be new by `normalize()` across the whole pack and everything accepted so far.
  Everything else goes to `--rejects` with the reason. Any JSON answer is read without a crash: a
  tool call's `arguments` may be JSON text or already an object. A run that had pairs to find and
  accepted none fails with one line saying why.

Retries, backoff with jitter and Retry-After are the `openai` client's own (`--max-retries`).
The API key is read from OPENAI_API_KEY only and is handed to the client, nowhere else.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import click

from skilltune.cache import ResponseCache, cache_key
from skilltune.calls import NO_CALL_NAME, Call, CallSyntaxError, parse_call
from skilltune.cli import OneLineErrors, fail
from skilltune.pairs import normalize
from skilltune.jsonio import DataError, schema_problem, write_text
from skilltune.openai_api import EndpointError, async_client, base_url_problem, one_line, post_chat
from skilltune.skills import (
    ASSISTANT_PREFIX,
    EXAMPLES_HEADER,
    PROMPT_HEADER,
    USER_PREFIX,
    Skill,
    SkillFileError,
    load_pack,
    parse_skill_file,
)
from skilltune.window import sliding_window

PAIR_SCHEMA = "pair"
REJECT_SCHEMA = "reject"
TOOL_NAME = "submit_pairs"
TEMPERATURE = 1.0
EXAMPLES_SHOWN = 12  # pack examples per prompt, a different sample for each request
CAP_FACTOR = 3  # a skill gets at most this many times the requests it needs at 100 % acceptance
MAX_REJECT_TEXT = 2000  # a non-JSON answer is kept in the rejects file up to this many characters
STYLES = (
    "short spoken commands",
    "questions",
    "noisy speech transcripts: lowercase, no punctuation, filler words like um or uh",
    "polite, longer requests with some context",
    "casual and terse, the way people talk to a phone",
    "indirect requests that still clearly ask for this skill",
)
SYSTEM_PROMPT = (
    "You write training data for a small model that turns what a user says to a voice assistant "
    "into one function call. You answer only by calling the function you are given."
)


class GenerationError(RuntimeError):
    """A run cannot go on (the API failed after the client's retries); str() is one line."""


class MalformedAnswer(ValueError):
    """An answer that does not hold the pairs JSON; str() is the reject reason."""


# --- the request plan


def requests_needed(per_skill: int, batch: int) -> int:
    return max(1, math.ceil(per_skill / batch))


def request_cap(per_skill: int, batch: int) -> int:
    return CAP_FACTOR * requests_needed(per_skill, batch)


def pairs_tool(skill: Skill, batch: int) -> dict:
    """The function the model is made to call: an array of {user, arguments} for this skill."""
    pair = {
        "type": "object",
        "properties": {
            "user": {"type": "string", "description": "What the user says, one line."},
            "arguments": skill.json_schema(),
        },
        "required": ["user", "arguments"],
        "additionalProperties": False,
    }
    return {
        "type": "function",
        "function": {
            "name": TOOL_NAME,
            "description": f"Submit new training pairs for the skill {skill.name}().",
            "parameters": {
                "type": "object",
                "properties": {"pairs": {"type": "array", "items": pair, "minItems": 1, "maxItems": batch}},
                "required": ["pairs"],
                "additionalProperties": False,
            },
        },
    }


def _example_lines(skill: Skill, index: int, seed: int) -> list[str]:
    # a different, reproducible sample per request (str seeds are stable across processes)
    rng = random.Random(f"{seed}:{skill.name}:{index}")
    chosen = sorted(rng.sample(range(len(skill.examples)), min(EXAMPLES_SHOWN, len(skill.examples))))
    return [f"- {json.dumps(skill.examples[i].user)} -> {skill.examples[i].call.to_python()}" for i in chosen]


def _task_lines(skill: Skill, pack: list[Skill], batch: int) -> list[str]:
    if skill.name == NO_CALL_NAME:
        others = [f"- {s.short_signature()}: {s.description}" for s in pack if s.name != NO_CALL_NAME]
        return [
            "These requests must NOT be for any of these skills:",
            *others,
            "",
            f"Task: write {batch} new, varied things a user might say to a voice assistant that none of "
            "those skills handles: small talk, questions they cannot answer, remarks that only mention "
            "a skill's topic. `arguments` is always {}.",
        ]
    return [
        f"Task: write {batch} new, varied user requests for this skill, each with the arguments of "
        "the call it should produce. Do not repeat or lightly reword the examples. Use new values "
        "for free-text arguments, written exactly as the user says them. Leave an optional argument "
        "out when the request does not give it. A choice argument takes one of its listed values.",
    ]


def request_body(skill: Skill, pack: list[Skill], index: int, *, model: str, seed: int, batch: int) -> dict:
    """The chat-completions body of request `index` for `skill`; nothing in it varies between runs."""
    lines = [
        f"Skill: {skill.signature}",
        f"Description: {skill.description}",
        f"Arguments (JSON Schema): {json.dumps(skill.json_schema(), sort_keys=True)}",
        "",
        "Examples of what users say and the call each one should produce:",
        *_example_lines(skill, index, seed),
        "",
        *_task_lines(skill, pack, batch),
        f"Style for this batch: {STYLES[index % len(STYLES)]}.",
        "",
        f"Answer by calling {TOOL_NAME} with {{\"pairs\": [{{\"user\": \"...\", \"arguments\": {{...}}}}, ...]}}. "
        "If you cannot call functions, answer with only that JSON object.",
        f"Batch {index + 1}, variation {seed}-{index}.",
    ]
    return {
        "model": model,
        "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n".join(lines)}],
        "tools": [pairs_tool(skill, batch)],
        "tool_choice": {"type": "function", "function": {"name": TOOL_NAME}},
        "temperature": TEMPERATURE,
        "seed": seed,
    }


# --- reading answers and judging candidates

_FENCE = re.compile(r"^```[\w-]*[ \t]*\n?(.*?)\n?```$", re.DOTALL)


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def answer_payloads(response) -> tuple[list, list[tuple[object, str]]]:
    """(payloads, problems) of an answer, for any JSON value whatever its shape; never raises.

    A payload should hold the pairs JSON: each tool call's `arguments` (text, or already an object
    or list, as some servers send it), else the message content (text, or a list of text parts).
    A problem is (what to keep in the rejects file, why it holds no pairs)."""
    choices = response.get("choices") if isinstance(response, dict) else None
    if not isinstance(choices, list) or not choices:
        return [], [(None, f"malformed answer: no choices (the answer is {_kind(response)})")]
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    if not isinstance(message, dict):
        return [], [(None, f"malformed answer: the first choice has no message object ({_kind(message)})")]
    calls = message.get("tool_calls")
    calls = list(calls) if isinstance(calls, list) else [] if calls is None else [calls]
    if isinstance(message.get("function_call"), dict):  # the older single-function form some servers still send
        calls.append({"function": message["function_call"]})
    payloads, problems = [], []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        arguments = function.get("arguments") if isinstance(function, dict) else None
        if isinstance(arguments, (str, dict, list)):
            payloads.append(arguments)
        else:
            problems.append((call, f"malformed tool call: arguments is {_kind(arguments)}, not JSON text"))
    if calls:
        return payloads, problems
    content = message.get("content")
    if isinstance(content, list):  # content parts: [{"type": "text", "text": "..."}, ...]
        texts = [part.get("text") for part in content if isinstance(part, dict)]
        content = "".join(text for text in texts if isinstance(text, str)) if texts else content
    if isinstance(content, str) and content.strip():
        return [content], []
    if content is None or isinstance(content, str):
        return [], [(None, "empty answer: no tool call and no content")]
    return [], [(content, f"malformed answer: content is {_kind(content)}, not text")]


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_answer(payload) -> list:
    """The candidates in one payload: {"pairs": [...]} or a bare [...], as text (optionally in a
    ``` fence) or already parsed."""
    if isinstance(payload, str):
        text = payload.strip()
        fenced = _FENCE.match(text)
        if fenced:
            text = fenced.group(1)
        try:
            payload = json.loads(text, parse_constant=_no_constant)
        except json.JSONDecodeError as err:
            raise MalformedAnswer(f"malformed JSON: {err.msg} (line {err.lineno} column {err.colno})") from None
        except ValueError as err:  # NaN, Infinity
            raise MalformedAnswer(f"malformed JSON: {err}") from None
        except RecursionError:
            raise MalformedAnswer("malformed JSON: nested too deeply") from None
    if isinstance(payload, dict) and isinstance(payload.get("pairs"), list):
        return payload["pairs"]
    if isinstance(payload, list):
        return payload
    raise MalformedAnswer('malformed answer: expected {"pairs": [...]}')


def read_answer(response) -> tuple[list, list[tuple[object, str]]]:
    """(candidates, problems) of one answer (see answer_payloads); never raises."""
    payloads, problems = answer_payloads(response)
    candidates = []
    for payload in payloads:
        kept = payload[:MAX_REJECT_TEXT] if isinstance(payload, str) else payload
        try:
            found = parse_answer(payload)
        except MalformedAnswer as err:
            problems.append((kept, str(err)))
            continue
        if not found:
            problems.append((kept, "empty answer: no pairs"))
        candidates += found
    return candidates, problems


def usable(skill: Skill, response) -> bool:
    """Whether an answer holds at least one valid pair for `skill` (new or not): only such an
    answer is cached, or taken from the cache; any other is asked for again next run."""
    candidates, _ = read_answer(response)
    return any(build_pair(skill, candidate)[1] is None for candidate in candidates)


def _candidate_call(skill: Skill, candidate: dict) -> Call:
    """The call a candidate proposes; raises MalformedAnswer / CallSyntaxError."""
    if "arguments" in candidate:
        arguments = {} if candidate["arguments"] is None else candidate["arguments"]
        if not isinstance(arguments, dict):
            raise MalformedAnswer("malformed pair: arguments is not an object")
        return Call(skill.name, arguments)
    if isinstance(candidate.get("call"), str):
        return parse_call(candidate["call"])
    raise MalformedAnswer('malformed pair: expected "arguments" (an object) or "call" (text)')


def build_pair(skill: Skill, candidate) -> tuple[dict | None, str | None]:
    """(pair line, None) when the candidate is a valid pair for `skill`, else (None, reason)."""
    if not isinstance(candidate, dict) or not isinstance(candidate.get("user"), str):
        return None, 'malformed pair: expected {"user": "...", "arguments": {...}}'
    user = candidate["user"].strip()
    if not normalize(user):
        return None, "empty user text"
    if "\n" in user or "\r" in user:
        return None, "user text has a line break"
    try:
        call = _candidate_call(skill, candidate)
    except MalformedAnswer as err:
        return None, str(err)
    except CallSyntaxError as err:
        return None, f"unparsable call: {err}"
    problem = skill.check_call(call)
    if problem:  # check_call says either "call to f() in the file of skill s" or "... does not fit ..."
        return None, problem if "does not fit" in problem else f"does not fit {skill.name}: {problem}"
    text = call.to_python()
    try:
        round_trip = parse_call(text)
    except CallSyntaxError:
        round_trip = None
    if round_trip != call:  # e.g. a line break inside a value: the call text could not carry it
        return None, f"does not fit {skill.name}: the call cannot be written back as one line of call text"
    return {"skill": skill.name, "user": user, "call": text, "source": "llm"}, None


# --- append-only JSONL


def _line(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False) + "\n"


class AppendLog:
    """A JSONL file that only grows by whole, validated lines; opened on the first append.

    Each line is flushed to the operating system before the next candidate is judged, which is all
    that `kill -9` needs; the file is fsynced on close. (After a power cut, the lines written since
    are rebuilt from the cache, which holds every answer they came from.)

    `load` only reads and checks; `repair` then makes the end of the file whole, and is the one
    place that ever shortens it: by a torn last line (no newline, not a valid line: a writer that
    died mid-line), only after every line before it was read as a valid one."""

    def __init__(self, path: Path, schema_name: str):
        self.path, self.schema_name = path, schema_name
        self._handle = None
        self._keep = None  # after load: the bytes of the file to keep, when its end needs repair
        self._torn = None  # after load: (line number, the torn tail's bytes) to drop
        self._needs_newline = False  # the last line is valid but has no newline: add one, cut nothing

    def _row(self, number: int, raw: bytes) -> dict:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataError(self.path, number, f"not UTF-8 (byte {err.start + 1} of the line)") from None
        try:
            obj = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as err:
            reason = f"{err.msg} (column {err.colno})" if isinstance(err, json.JSONDecodeError) else "nested too deeply"
            raise DataError(self.path, number, f"not JSON: {reason}") from None
        problem = schema_problem(obj, self.schema_name)
        if problem:
            raise DataError(self.path, number, f"not a {self.schema_name} line: {problem}")
        return obj

    def load(self) -> list[dict]:
        """The lines already there, validated, without changing the file. A last line with no
        newline is kept if it is a valid line (repair adds the newline); one that is not (a torn
        write: the start of a JSON object that does not parse) is dropped by repair, provided a
        valid line comes before it. Anything else that is not this schema's JSONL is a DataError."""
        if self.path.is_dir():
            raise DataError(self.path, 0, "is a folder, not a JSONL file")
        if self.path.exists() and not self.path.is_file():
            raise DataError(self.path, 0, "is not a regular file")
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline
        rows = []
        for number, raw in enumerate(lines, 1):
            if raw.strip():
                rows.append(self._row(number, raw))
        if not tail.strip():
            if tail:  # blanks after the last newline: harmless, but the next line must start on its own
                self._needs_newline = True
            return rows
        number = len(lines) + 1
        try:
            rows.append(self._row(number, tail))
            self._needs_newline = True
            return rows
        except DataError as err:
            if not (rows and self._looks_torn(tail)):
                raise DataError(self.path, number, f"{err.reason} (the last line, with no newline: not a torn "
                                "line of this command's, so the file is left as it is)") from None
        self._keep, self._torn = data[: len(data) - len(tail)], (number, tail)
        return rows

    @staticmethod
    def _looks_torn(tail: bytes) -> bool:
        """The start of one of our lines, cut: a JSON object's beginning, invalid only at its end."""
        if not tail.lstrip().startswith(b"{"):
            return False
        try:
            text = tail.decode("utf-8")
        except UnicodeDecodeError as err:  # a character cut in two is the last thing in a torn line
            if err.reason != "unexpected end of data":
                return False
            text = tail[: err.start].decode("utf-8", errors="strict")
        try:
            json.loads(text)
        except json.JSONDecodeError as err:
            return not err.msg.startswith("Extra data")
        except RecursionError:
            return False
        return False  # it parses: a whole line, so not torn (it failed the schema)

    def repair(self) -> None:
        """After every file was loaded and checked: drop a torn last line, telling the user."""
        if self._torn is None:
            return
        number, tail = self._torn
        with self.path.open("r+b") as handle:
            handle.truncate(len(self._keep))
            os.fsync(handle.fileno())
        shown = one_line(tail.decode("utf-8", errors="replace"))[:80]
        click.echo(f"warning: {self.path}:{number}: dropped a torn last line ({len(tail)} bytes, no newline, "
                   f"not a whole {self.schema_name} line): {shown}", err=True)
        self._torn = self._keep = None

    def append(self, obj: dict) -> None:
        problem = schema_problem(obj, self.schema_name)
        if problem:  # a bug, not bad model output: candidates are judged before they get here
            raise DataError(self.path, 0, f"refusing to append an invalid line: {problem}")
        if self._handle is None:
            self.repair()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
            if self._needs_newline:  # a valid last line that lacked its newline is kept, and ended
                self._handle.write("\n")
                self._needs_newline = False
        self._handle.write(_line(obj))
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None


# --- the run


@dataclass
class Settings:
    pack: Path
    base_url: str
    model: str
    per_skill: int
    batch: int
    out: Path | None
    rejects: Path
    cache: Path
    concurrency: int
    max_retries: int
    timeout: float
    seed: int
    review: Path | None
    skills: list[str] | None


@dataclass
class Stats:
    requests: int = 0  # HTTP requests this run started (the client's own retries not counted)
    cache_hits: int = 0
    accepted: int = 0
    rejected: int = 0
    resumed: int = 0  # pairs already in --out when the run started
    answers: int = 0  # answers judged (fetched or cached)
    replayed: int = 0  # pairs of --out met again while replaying the plan
    first_problem: str | None = None  # the first reject reason of the run


@dataclass
class SkillState:
    skill: Skill
    target: int
    cap: int
    pairs: list[dict] = field(default_factory=list)  # every pair of this skill in --out, old and new
    next_index: int = 0  # the next planned request whose candidates are to be judged

    @property
    def full(self) -> bool:
        return len(self.pairs) >= self.target

    @property
    def done(self) -> bool:
        return self.full or self.next_index >= self.cap


class Generator:
    """One run of `python -m datagen llm`; see the module docstring for the rules it keeps."""

    def __init__(self, settings: Settings, pack: list[Skill], selected: list[Skill]):
        self.settings, self.pack = settings, pack
        cap = request_cap(settings.per_skill, settings.batch)
        self.states = [SkillState(skill, settings.per_skill, cap) for skill in selected]
        self.cache = ResponseCache(settings.cache)
        self.out = AppendLog(settings.out, PAIR_SCHEMA) if settings.out else None
        self.rejects = AppendLog(settings.rejects, REJECT_SCHEMA)
        self.stats = Stats()
        self.fetched: dict[tuple[str, int], dict] = {}  # answers in memory, waiting for their turn
        self.seen: dict[str, str] = {}  # normalized utterance -> where it comes from
        self.replay: Counter = Counter()  # pairs from --out that replaying the plan will meet again
        self.rejects_written: set[str] = set()
        self.progress = None

    # -- start: what is already on disk

    def load_existing(self) -> None:
        for skill in self.pack:
            for example in skill.examples:
                self.seen.setdefault(normalize(example.user), f"a pack example ({Path(skill.path).name}:{example.line})")
        by_name = {state.skill.name: state for state in self.states}
        for pair in self.out.load() if self.out else []:
            self.seen.setdefault(normalize(pair["user"]), f"an accepted {pair['skill']} pair")
            self.replay[(pair["skill"], pair["user"], pair["call"])] += 1
            if pair["skill"] in by_name:
                by_name[pair["skill"]].pairs.append(pair)
            self.stats.resumed += 1
        self.rejects_written = {_line(row) for row in self.rejects.load()}
        # both files were read and checked: only now is a torn last line cut from either
        for log in (self.out, self.rejects):
            if log:
                log.repair()

    # -- fetching

    def wanted(self, in_flight: set) -> list[tuple[SkillState, int]]:
        """Requests to send next, in plan order: for each unfinished skill, the ones its gap needs."""
        wanted = []
        for state in self.states:
            if state.done:
                continue
            missing = state.target - len(state.pairs)
            upto = min(state.cap, state.next_index + math.ceil(missing / self.settings.batch))
            for i in range(state.next_index, upto):
                key = (state.skill.name, i)
                if key not in self.fetched and key not in in_flight:
                    wanted.append((state, i))
        return wanted

    async def fetch(self, client, state: SkillState, index: int) -> dict:
        s = self.settings
        body = request_body(state.skill, self.pack, index, model=s.model, seed=s.seed, batch=s.batch)
        key = cache_key(body)
        cached = self.cache.get(key)
        if cached is not None and usable(state.skill, cached):  # an answer with no valid pair is a miss
            self.stats.cache_hits += 1
            return cached
        self.stats.requests += 1
        response = await _create(client, body, s, f"{state.skill.name} request {index}")
        if usable(state.skill, response):  # garbage is judged (and rejected) but never cached
            self.cache.put(key, body, response)
        return response

    # -- judging, strictly in plan order

    def process(self) -> None:
        """Judge every fetched answer whose turn has come: skill by skill, request by request."""
        for state in self.states:
            while not state.done and (state.skill.name, state.next_index) in self.fetched:
                self.judge_answer(state, self.fetched.pop((state.skill.name, state.next_index)))
                state.next_index += 1
            if not state.done:
                return  # later skills wait for this one, so acceptance never depends on timing

    def judge_answer(self, state: SkillState, response) -> None:
        self.stats.answers += 1
        candidates, problems = read_answer(response)
        for kept, reason in problems:
            self.reject(state, kept, reason)
        for candidate in candidates:
            if state.full:
                break
            self.judge_candidate(state, candidate)
        self._show_progress()

    def judge_candidate(self, state: SkillState, candidate) -> None:
        pair, reason = build_pair(state.skill, candidate)
        if reason:
            self.reject(state, candidate, reason)
            return
        key = normalize(pair["user"])
        if key in self.seen:
            identity = (pair["skill"], pair["user"], pair["call"])
            if self.replay[identity]:  # accepted here by the run that was interrupted
                self.replay[identity] -= 1
                self.stats.replayed += 1
            else:
                self.reject(state, candidate, f"duplicate of {self.seen[key]}")
            return
        self.seen[key] = f"an accepted {state.skill.name} pair"
        if self.out:
            self.out.append(pair)
        state.pairs.append(pair)
        self.stats.accepted += 1
        if self.progress is not None:
            self.progress.update(1)

    def reject(self, state: SkillState, candidate, reason: str) -> None:
        self.stats.rejected += 1
        if self.stats.first_problem is None:
            self.stats.first_problem = f"{state.skill.name}: {reason}"
        row = {"skill": state.skill.name, "candidate": candidate, "reason": reason}
        if _line(row) not in self.rejects_written:  # replaying after a resume writes nothing twice
            self.rejects_written.add(_line(row))
            self.rejects.append(row)

    def _show_progress(self) -> None:
        if self.progress is not None:
            self.progress.set_postfix(
                accepted=self.stats.accepted, rejected=self.stats.rejected,
                requests=self.stats.requests, cached=self.stats.cache_hits, refresh=False,
            )

    # -- the loop

    async def run(self) -> Stats:
        from tqdm import tqdm

        s = self.settings
        self.load_existing()
        missing = sum(max(state.target - len(state.pairs), 0) for state in self.states)
        self.progress = tqdm(total=missing, unit="pair", desc="llm", file=sys.stderr, mininterval=0.5)
        try:
            async with async_client(s.base_url, s.max_retries, s.timeout) as client:
                await self.fetch_all(client)
        finally:
            self.progress.close()
            if self.out:
                self.out.close()
            self.rejects.close()
        if s.review:
            write_review(s.review, [state for state in self.states if state.pairs])
        return self.stats

    async def fetch_all(self, client) -> None:
        """A sliding window: `concurrency` requests in flight, a new one sent as soon as one returns.

        Answers wait in `fetched` until their turn in plan order. After a failure no new request
        is sent; the ones in flight are awaited and judged, then the first failure is raised.
        """

        def next_requests(room: int, in_flight) -> list[tuple[SkillState, int]]:
            return self.wanted({(state.skill.name, index) for state, index in in_flight})[:room]

        def on_result(request: tuple[SkillState, int], response: dict) -> None:
            state, index = request
            self.fetched[(state.skill.name, index)] = response
            self.process()

        await sliding_window(next_requests, lambda request: self.fetch(client, *request), on_result,
                             self.settings.concurrency)

    def nothing_accepted(self) -> str | None:
        """Why a run that had pairs to find accepted none (one line), or None."""
        if self.stats.accepted or self.stats.replayed or all(len(state.pairs) >= state.target for state in self.states):
            return None
        first = f", first problem: {self.stats.first_problem}" if self.stats.first_problem else ""
        return (f"no answer gave a usable pair: {self.stats.answers} answers, {self.stats.rejected} rejected"
                f"{first} (all in {self.settings.rejects}; answers without a valid pair are not cached)")

    def shortfalls(self) -> list[str]:
        return [
            f"{state.skill.name}: {len(state.pairs)} of {state.target} pairs after {state.cap} requests (the cap)"
            for state in self.states
            if not state.full
        ]


async def _create(client, body: dict, s: Settings, what: str) -> dict:
    """One chat completion; the client retries 429/5xx/timeouts itself, with backoff and Retry-After."""
    try:
        return await post_chat(client, body, s.base_url, f" ({what}; --max-retries {s.max_retries})")
    except EndpointError as err:
        raise GenerationError(str(err)) from None


# --- review files


def review_text(skill: Skill, pairs: list[dict]) -> str:
    """A skill file holding `pairs` as its examples, for a person to edit and merge-review."""
    lines = [PROMPT_HEADER, skill.signature]
    if skill.description:
        lines.append(skill.description)
    lines += ["", EXAMPLES_HEADER]
    for pair in pairs:
        lines += [f"{USER_PREFIX} {pair['user']}", f"{ASSISTANT_PREFIX} {pair['call']}"]
    return "\n".join(lines) + "\n"


def write_review(directory: Path, states: list[SkillState]) -> None:
    for state in states:
        write_text(directory / f"{state.skill.name}.txt", review_text(state.skill, state.pairs))


def merge_review(review_dir: Path, pack_dir: Path) -> list[tuple[Path, int, int]]:
    """Append reviewed examples new to the pack; (pack file, added, skipped) per review file.

    Every review file is parsed and checked before any pack file is touched; each pack file is
    rewritten through a temporary file that must parse, then renamed into place.
    """
    paths = sorted(Path(review_dir).glob("*.txt"))
    if not paths:
        raise FileNotFoundError(f"{review_dir}: no *.txt review files")
    reviewed = [parse_skill_file(path) for path in paths]
    pack = {skill.name: skill for skill in load_pack(pack_dir)}
    seen = {normalize(example.user) for skill in pack.values() for example in skill.examples}
    plan = []
    for review in reviewed:
        target = pack.get(review.name)
        if target is None:
            raise SkillFileError(review.path, 1, f"the pack {pack_dir} has no skill {review.name}")
        new = []
        for example in review.examples:
            problem = target.check_call(example.call)
            if problem:
                raise SkillFileError(review.path, example.line, f"does not fit {Path(target.path).name}: {problem}")
            if normalize(example.user) not in seen:
                seen.add(normalize(example.user))
                new.append(example)
        plan.append((target, new, len(review.examples) - len(new)))
    for target, new, _ in plan:
        if new:
            _append_examples(Path(target.path), new)
    return [(Path(target.path), len(new), skipped) for target, new, skipped in plan]


def _append_examples(path: Path, examples) -> None:
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text += "\n"
    if not any(line.strip() == EXAMPLES_HEADER for line in text.splitlines()):
        text += f"\n{EXAMPLES_HEADER}\n"  # Examples is always the last section, so appending lands in it
    text += "".join(f"{USER_PREFIX} {e.user}\n{ASSISTANT_PREFIX} {e.call.to_python()}\n" for e in examples)
    staging = path.with_name(f".{path.name}.merge")
    staging.write_text(text, encoding="utf-8")
    try:
        parse_skill_file(staging)  # never replace a pack file with one that does not parse
    except SkillFileError:
        staging.unlink()
        raise
    os.replace(staging, path)


# --- command line


class Seconds(click.ParamType):
    """A finite number of seconds more than 0 (click's FloatRange lets inf and nan through)."""

    name = "seconds"

    def convert(self, value, param, ctx):
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            seconds = math.nan
        if not (math.isfinite(seconds) and seconds > 0):
            self.fail(f"{value} is not a number of seconds more than 0", param, ctx)
        return seconds


def _folder_problem(path: Path, what: str) -> str | None:
    """Why files cannot be made at `path` (or inside it, for a folder): an existing ancestor
    that is not a folder. Nothing is created."""
    for ancestor in path.parents:
        if ancestor.exists():
            return None if ancestor.is_dir() else f"{what} {path}: {ancestor} is not a folder"
    return None


def _check_options(s: Settings) -> None:
    if not s.base_url:
        fail("--base-url is required (or set OPENAI_BASE_URL)")
    problem = base_url_problem(s.base_url)
    if problem:
        fail(problem)
    if not s.model:
        fail("--model is required")
    if not s.out and not s.review:
        fail("give --out FILE.jsonl and/or --review DIR")
    if s.out and s.rejects.resolve() == s.out.resolve():
        fail("--rejects and --out must be different files")
    if s.review and s.review.resolve() == s.pack.resolve():  # review files are named like the skill files
        fail(f"--review {s.review}: is the skill pack; its skill files would be overwritten (merge-review adds "
             "reviewed examples to the pack)")
    for what, path in (("--out", s.out), ("--rejects", s.rejects), ("--review", s.review), ("--cache", s.cache)):
        problem = path and _folder_problem(path, what)
        if problem:
            fail(problem)


def _select(pack: list[Skill], names: list[str] | None) -> list[Skill]:
    if names is None:
        return pack
    known = {skill.name for skill in pack}
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        fail(f"--skills: no skill named {', '.join(unknown) or '(empty)'} in the pack (it has {', '.join(sorted(known))})")
    return [skill for skill in pack if skill.name in names]


@click.command(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--pack", type=click.Path(path_type=Path), default=Path("examples/skills"), show_default=True,
              help="Folder of skill files.")
@click.option("--base-url", envvar="OPENAI_BASE_URL", help="OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1 "
              "[env OPENAI_BASE_URL]. The key comes from OPENAI_API_KEY only.")
@click.option("--model", help="Model name the server knows.")
@click.option("--per-skill", type=click.IntRange(min=1), default=50, show_default=True, help="Accepted pairs wanted per skill.")
@click.option("--batch", type=click.IntRange(min=1), default=10, show_default=True, help="Pairs asked for in one request.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Accepted pairs (JSONL, append-only).")
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path),
              help="Rejected candidates with reasons [default: <out>.rejects.jsonl].")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=Path(".cache/llm"),
              show_default=True, help="One file per answered request; cached requests are not sent again.")
@click.option("--concurrency", type=click.IntRange(min=1), default=8, show_default=True, help="Requests in flight at most.")
@click.option("--max-retries", type=click.IntRange(min=0), default=5, show_default=True, help="Client retries on 429/5xx/timeouts.")
@click.option("--timeout", type=Seconds(), default=60.0, show_default=True, help="Seconds per request attempt.")
@click.option("--seed", type=int, default=0, show_default=True, help="Varies the prompts; sent as the API's seed.")
@click.option("--review", type=click.Path(file_okay=False, path_type=Path),
              help="Also write the pairs as skill files DIR/<skill>.txt to edit and merge-review.")
@click.option("--skills", "skill_names", help="Only these skills, comma-separated (default: all).")
def llm_command(pack, base_url, model, per_skill, batch, out, rejects, cache, concurrency, max_retries, timeout,
                seed, review, skill_names) -> None:
    """Generate new (utterance, call) pairs per skill with an LLM behind an OpenAI-compatible API.

    \b
    Example:
      OPENAI_API_KEY=... python -m datagen llm --base-url https://api.openai.com/v1 \\
          --model gpt-4o-mini --per-skill 50 --out data/llm/pairs.jsonl
    """
    names = [name.strip() for name in skill_names.split(",") if name.strip()] if skill_names is not None else None
    if rejects is None and (out or review):
        rejects = Path(f"{out}.rejects.jsonl") if out else review / "rejects.jsonl"
    settings = Settings(pack, base_url, model, per_skill, batch, out, rejects, cache, concurrency, max_retries,
                        timeout, seed, review, names)
    _check_options(settings)
    try:
        skills = load_pack(pack)
    except (SkillFileError, FileNotFoundError) as err:
        fail(str(err))
    generator = Generator(settings, skills, _select(skills, names))
    try:
        stats = asyncio.run(generator.run())
    except (GenerationError, DataError, OSError) as err:
        fail(str(err))
    if generator.nothing_accepted():
        fail(generator.nothing_accepted())
    for line in generator.shortfalls():
        click.echo(f"warning: {line}", err=True)
    written = ", ".join(str(path) for path in (out, review) if path)
    click.echo(
        f"llm: {stats.requests} requests, {stats.cache_hits} cache hits, {stats.accepted} accepted, "
        f"{stats.rejected} rejected ({stats.resumed} pairs were already there) -> {written}"
    )


@click.command(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("review_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--pack", type=click.Path(path_type=Path), default=Path("examples/skills"), show_default=True,
              help="Skill pack to add the reviewed examples to.")
def merge_review_command(review_dir: Path, pack: Path) -> None:
    """Add the examples of reviewed skill files in REVIEW_DIR to the matching skill files of the pack.

    Every review file must parse strictly (errors name file:line); examples whose normalized
    utterance the pack already has are skipped; each pack file is replaced atomically.

    \b
    Example:
      python -m datagen merge-review review/ --pack examples/skills
    """
    try:
        merged = merge_review(review_dir, pack)
    except (SkillFileError, FileNotFoundError) as err:
        fail(str(err))
    for path, added, skipped in merged:
        click.echo(f"{path}: +{added} examples ({skipped} already in the pack)")
    click.echo(f"merge-review: {sum(added for _, added, _ in merged)} examples added to {pack}")
