"""The questions and answers of `datagen documents`: the two requests per chunk, reading their
answers, and the run that sends them (see datagen/documents.py for the whole job).

One request per chunk asks for typed JSON questions (read leniently: a small local model often
writes a list instead); one request per question asks for the answer from the chunk alone, or
exactly UNKNOWN_ANSWER. Requests go through skilltune/completions.py's cached client, to an
endpoint or to the local model (LocalBackend).
"""

from __future__ import annotations

import json
import os
import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema

from datagen.documents import Chunk, DocumentsError
from skilltune import local_model
from skilltune.cache import ResponseCache
from skilltune.completions import CachedCompletions, CompletionBackend, CompletionCounts, unfence
from skilltune.pairs import normalize
from skilltune.window import sliding_window

UNKNOWN_ANSWER = "I don't know."
QUESTION_SYSTEM = "You write questions about documents. Every question must be answerable from the given text alone."
ANSWER_SYSTEM = (
    "You answer questions about a document. Answer only from the text you are given. If the text "
    f"does not contain the answer, say exactly: {UNKNOWN_ANSWER}"
)
# The typed answer, sent as response_format and checked on receipt. It stays inside the subset
# every strict structured-output server takes (all properties required, no extra ones, no length
# or count limits): the number of questions is asked for in the prompt, and extra ones are cut.
QUESTIONS_SCHEMA = {
    "type": "object",
    "properties": {"questions": {"type": "array", "items": {"type": "string"}}},
    "required": ["questions"],
    "additionalProperties": False,
}
_QUESTIONS_VALIDATOR = jsonschema.Draft202012Validator(QUESTIONS_SCHEMA)


# --- requests


def question_body(chunk: Chunk, count: int, *, model: str, seed: int, max_tokens: int) -> dict:
    """Ask for `count` questions about the chunk, typed through response_format's JSON Schema.

    The format is in the prompt as well, for servers (and the local model) that ignore
    response_format. The chunk's source name is left out: the body is the cache key, and the
    same text in a renamed file is the same request.
    """
    prompt = (
        f'Text:\n"""\n{chunk.text}\n"""\n\n'
        f"Write {count} different questions that the text above answers. Each question must make sense "
        "on its own, without seeing the text, and must not be answerable by yes or no.\n"
        f'Answer with only a JSON object: {{"questions": ["...", ...]}} holding {count} strings.'
    )
    return {
        "model": model,
        "messages": [{"role": "system", "content": QUESTION_SYSTEM}, {"role": "user", "content": prompt}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "questions", "strict": True, "schema": QUESTIONS_SCHEMA},
        },
        "temperature": 0,
        "seed": seed,
        "max_tokens": max_tokens,
    }


def answer_body(chunk: Chunk, question: str, *, model: str, seed: int, max_tokens: int) -> dict:
    """Ask for the answer to one question from the chunk alone, with the I-don't-know rule."""
    prompt = (
        f'Text:\n"""\n{chunk.text}\n"""\n\n'
        f"Question: {question}\n\n"
        "Answer the question in one to three sentences, using only the text above. "
        f"If the text does not contain the answer, reply exactly: {UNKNOWN_ANSWER}"
    )
    return {
        "model": model,
        "messages": [{"role": "system", "content": ANSWER_SYSTEM}, {"role": "user", "content": prompt}],
        "temperature": 0,
        "seed": seed,
        "max_tokens": max_tokens,
    }


def message_text(response: dict) -> str:
    """The text an answer carries: the content, else the arguments of a (forced) tool call."""
    choices = response.get("choices") or [{}]
    message = (choices[0] or {}).get("message") or {}
    if isinstance(message.get("content"), str) and message["content"].strip():
        return message["content"]
    for call in message.get("tool_calls") or []:
        arguments = (call.get("function") or {}).get("arguments")
        if isinstance(arguments, str):
            return arguments
    return ""


# --- reading answers

_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d+[.)]|q\d*[:.)]|question\s*\d*[:.)])\s*", re.IGNORECASE)


@dataclass
class ParsedQuestions:
    questions: list[str]
    skipped: int = 0  # items or lines that were not a usable question (or one too many, or a repeat)
    typed: bool = False  # True when the answer was the typed JSON object


def parse_questions(text: str, count: int) -> ParsedQuestions:
    """Up to `count` distinct questions from an answer; never raises, never evaluates anything.

    Typed JSON first: `{"questions": [...]}` checked with jsonschema (a bare JSON array of
    strings is taken too). Otherwise each line that, stripped of a list mark or quotes, ends in
    "?" is one question, and every other non-blank line counts as skipped.
    """
    text = text.strip()
    body = unfence(text).strip()
    items: list | None = None
    typed = False
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, list):
        data = {"questions": data}
    if isinstance(data, dict):
        if _QUESTIONS_VALIDATOR.is_valid(data):
            items, typed = data["questions"], True
        else:  # JSON, but not the typed shape: nothing in it is trusted
            return ParsedQuestions([], skipped=1)
    skipped = 0
    if items is None:
        items = []
        for line in body.splitlines():
            line = _LIST_MARK.sub("", line.strip()).strip().strip("\"'").strip()
            if not line:
                continue
            if line.endswith("?") and len(normalize(line).split()) >= 2:
                items.append(line)
            else:
                skipped += 1
    questions, seen = [], set()
    for item in items:
        question = " ".join(item.split())  # one line: the record's user turn
        key = normalize(question)
        if not key or key in seen or len(questions) == count:
            skipped += 1
            continue
        seen.add(key)
        questions.append(question)
    return ParsedQuestions(questions, skipped, typed)


def clean_answer(text: str) -> str:
    """The answer text, with any phrasing of the refusal made exactly UNKNOWN_ANSWER."""
    text = unfence(text.strip()).strip()
    if is_unknown(text):
        return UNKNOWN_ANSWER
    return text


def is_unknown(text: str) -> bool:
    """ "I don't know.", "I do not know", "I don’t know" with a curly apostrophe, in any case."""
    words = normalize(text.replace("\u2019", "'"))
    return words in ("i dont know", "i do not know")


# --- the local backend


class LocalBackend:
    """A local model folder with greedy generation by skilltune/local_model.py (eval's generator
    too): offline, no key.

    The reply has the chat-completions shape, so it is cached and read like a server's.
    response_format is not enforced here (the prompt still asks for JSON); a 135M model seldom
    writes valid JSON, which is why question answers are parsed leniently.
    """

    def __init__(self, folder: Path):
        if not (folder / "config.json").exists():  # checked now, before any progress bar, not at the first request
            raise DocumentsError(
                f"--model {folder}: no local model there (run scripts/prepare_smollm2.py, "
                "which make train does, or give --base-url for an endpoint)"
            )
        self.folder = folder
        self.model = self.tokenizer = None

    def load(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        # on the CPU in float32 even where there is a GPU: the answers (and so the cache) stay the
        # ones this backend has always given
        self.model, self.tokenizer = local_model.load_model(self.folder, local_files_only=True, device="cpu")

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return None

    async def complete(self, body: dict, what: str) -> dict:
        # loaded on the first uncached request: a fully cached re-run never loads the model
        if self.model is None:
            self.load()
        return self.generate(body)

    def generate(self, body: dict) -> dict:
        chat = local_model.Chat(body["messages"])
        [text] = local_model.generate(self.model, self.tokenizer, [chat], max_new_tokens=body["max_tokens"], label=None)
        return {
            "object": "chat.completion",
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        }


# --- the run


@dataclass
class Settings:
    model: str
    questions_per_chunk: int = 3
    seed: int = 0
    max_tokens: int = 256
    concurrency: int = 8
    drop_unknown: bool = False


@dataclass
class Stats(CompletionCounts):
    """A run's counts; `requests` are those it sent (or generated locally), the client's retries not counted."""

    chunks: int = 0
    questions: int = 0
    skipped: int = 0  # question items or lines that were not usable (see parse_questions)
    unparsed: int = 0  # question answers that gave no question at all
    duplicates: int = 0  # questions already asked about an earlier chunk
    unknown: int = 0  # answers that are UNKNOWN_ANSWER
    dropped: int = 0  # pairs left out: empty answers, and unknown ones with --drop-unknown


@dataclass
class ChunkResult:
    chunk: Chunk
    questions: list[str] = field(default_factory=list)
    answers: dict[int, str] = field(default_factory=dict)  # question index -> answer text


@dataclass
class _Job:
    body: dict
    what: str  # for error messages: "questions for a.md#0"
    chunk_number: int
    question_number: int | None = None  # None: the question request of the chunk


class QAGenerator:
    """Questions and answers for every chunk: a sliding window of requests, results in plan order."""

    def __init__(
        self, chunks: list[Chunk], settings: Settings, backend: CompletionBackend, cache: ResponseCache, progress=None
    ):
        self.settings, self.progress = settings, progress
        self.results = [ChunkResult(chunk) for chunk in chunks]
        self.stats = Stats(chunks=len(chunks))
        self.completions = CachedCompletions(backend, cache, self.stats)  # every answer is kept

    def _request_options(self) -> dict:
        s = self.settings
        return {"model": s.model, "seed": s.seed, "max_tokens": s.max_tokens}

    async def fetch(self, job: _Job) -> dict:
        return await self.completions.complete(job.body, job.what)

    def on_answer(self, job: _Job, response: dict) -> list[_Job]:
        """Record one answer; a question answer returns the answer requests it calls for."""
        result = self.results[job.chunk_number]
        if job.question_number is not None:
            result.answers[job.question_number] = clean_answer(message_text(response))
            return []
        parsed = parse_questions(message_text(response), self.settings.questions_per_chunk)
        self.stats.skipped += parsed.skipped
        self.stats.unparsed += not parsed.questions
        result.questions = parsed.questions
        return [
            _Job(
                answer_body(result.chunk, question, **self._request_options()),
                f"answer {number} for {result.chunk.id}",
                job.chunk_number,
                number,
            )
            for number, question in enumerate(parsed.questions)
        ]

    async def run(self) -> list[ChunkResult]:
        """A sliding window: `concurrency` requests in flight, the next sent as soon as one returns.

        Answer requests go ahead of the remaining question requests, so a chunk is finished soon
        after it is started. After a failure nothing new is sent; the requests in flight are
        awaited, then the first failure is raised. Results are stored by chunk and question
        number, so what is written never depends on the order answers come back in.
        """
        pending = deque(
            _Job(
                question_body(result.chunk, self.settings.questions_per_chunk, **self._request_options()),
                f"questions for {result.chunk.id}",
                number,
            )
            for number, result in enumerate(self.results)
        )

        def next_jobs(room: int, _in_flight) -> list[_Job]:
            return [pending.popleft() for _ in range(min(room, len(pending)))]

        def on_result(job: _Job, response: dict) -> None:
            follow_ups = self.on_answer(job, response)
            pending.extendleft(reversed(follow_ups))
            if self.progress is not None:
                self.progress.total += len(follow_ups)
                self.progress.set_postfix(requests=self.stats.requests, cached=self.stats.cache_hits, refresh=False)
                self.progress.update(1)

        async with self.completions:
            await sliding_window(next_jobs, self.fetch, on_result, self.settings.concurrency)
        return self.results
