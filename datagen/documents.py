"""Question/answer training records drawn from a folder of the user's own documents.

    python -m datagen documents examples/documents --out data/documents
    OPENAI_API_KEY=... python -m datagen documents docs/ --out data/documents \\
        --base-url https://api.openai.com/v1 --model gpt-4o-mini --concurrency 16

The job, as data flowing:

- Load. Every file under DIR that matches a `--glob` (default `**/*.md`, `**/*.txt`) and no
  `--exclude`, read as UTF-8 text, in sorted path order. A file that cannot be read (binary,
  not UTF-8, no permission) is named on stderr and skipped; the run goes on.
- Chunk. Each document on its own is cut into windows of `--chunk-size` characters or tokens
  (`--chunk-unit`), a new window every `--step-size` units: windows overlap when the step is
  smaller than the size. Token windows are cut at the tokenizer's character offsets, so a chunk
  is always a verbatim slice of its document.
- Ask. One request per chunk asks for `--questions-per-chunk` questions the chunk answers, as
  typed JSON: `{"questions": [string, ...]}` sent as an OpenAI `response_format` JSON Schema.
  The answer is read with `json` and checked with `jsonschema`; when it is not JSON (a small
  local model often writes a list instead), one question per line is accepted. Whatever fits
  neither is counted and skipped, never evaluated.
- Answer. One request per question, grounded in its chunk, with the rule in the prompt: answer
  only from the text, else say exactly "I don't know." (UNKNOWN_ANSWER). Such answers are kept
  by default, because they teach the model to admit what the text does not say instead of
  inventing it; `--drop-unknown` leaves them out.
- Write. `--out` is replaced whole (nothing partial is ever left): `qa.csv` and `qa.json` (every
  pair with its source and chunk), `train.jsonl` / `val.jsonl` (chat records, split by source
  chunk, so all questions about one chunk land in one split) and `manifest.json` (style "chat").

Backends: with `--base-url`, any OpenAI-compatible endpoint through the project's one client
(skilltune/openai_api.py: its retries, Retry-After, one-line errors), `--concurrency` requests in
flight. Without it, the embedded SmolLM2 (`--model`, a local folder) with greedy transformers
generation: no key, no network. Either way every answer is cached on disk by its request body
(skilltune/cache.py), so a re-run, or a run resumed after a crash, sends only what
is not cached yet. The API key is read from OPENAI_API_KEY only, by the client.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import re
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import click
import jsonschema

from skilltune.pairs import normalize
from datagen.dataset import write_dataset_folder
from skilltune.jsonio import DataError, write_json, write_text
from skilltune.outputs import check_output_folder
# the cache and the one-line error handling of `datagen llm`, shared so both commands behave alike
from skilltune.cli import OneLineErrors, fail
from skilltune.cache import ResponseCache, cache_key
from skilltune.openai_api import EndpointError, async_client, post_chat
from skilltune.records import chat_record_problem
from skilltune.window import sliding_window

DEFAULT_GLOBS = ("**/*.md", "**/*.txt")
DEFAULT_MODEL = Path("models/SmolLM2-135M-Instruct")
DEFAULT_CHUNK_SIZE = {"chars": 2000, "tokens": 400}  # ~400 tokens of English prose either way
UNKNOWN_ANSWER = "I don't know."
SPLITS = ("train", "val")
CSV_COLUMNS = ("split", "source", "chunk", "question", "answer")
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


class DocumentsError(RuntimeError):
    """The run cannot go on; str() is one line."""


# --- loading


@dataclass(frozen=True)
class Document:
    path: str  # relative to DIR, with forward slashes: stable names for outputs and sorting
    text: str


def _excluded(path: Path, root: Path, excluded: set[Path]) -> bool:
    """A file is out when an exclude pattern matches it or one of its folders below `root`."""
    return path in excluded or any(parent in excluded for parent in path.parents if parent != root and root in parent.parents)


def _glob(root: Path, pattern: str, option: str) -> list[Path]:
    if ".." in Path(pattern).parts:  # outside DIR: the paths could not be named relative to it
        raise DocumentsError(f"{option} {pattern!r}: patterns must stay inside DIR (no ..)")
    try:
        return list(root.glob(pattern))
    except (ValueError, NotImplementedError) as err:  # "", "/abs/*.md": pathlib refuses them
        raise DocumentsError(f"{option} {pattern!r}: {err} (patterns are relative to DIR)") from None


def find_files(root: Path, globs: tuple[str, ...] | list[str], excludes: tuple[str, ...] | list[str] = ()) -> list[Path]:
    """Files under `root` matching any glob and no exclude, sorted by their path below `root`.

    Excludes are globs too, relative to `root`; matching a folder excludes all below it
    (`--exclude drafts`, `--exclude '**/old'`), matching a file excludes the file.
    """
    excluded = {path for pattern in excludes for path in _glob(root, pattern, "--exclude")}
    found = {path for pattern in globs for path in _glob(root, pattern, "--glob") if path.is_file()}
    kept = [path for path in found if not _excluded(path, root, excluded)]
    return sorted(kept, key=lambda path: path.relative_to(root).as_posix())


def read_document(path: Path) -> str:
    """The file's text; raises ValueError with the reason when it is not readable UTF-8 text."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ValueError(err.strerror or type(err).__name__) from None
    if b"\x00" in data:  # text files have no NUL bytes; binary ones (images, PDFs, archives) nearly always do
        raise ValueError("binary file (NUL bytes)")
    try:
        text = data.decode("utf-8-sig")  # -sig: a byte-order mark is not part of the text
    except UnicodeDecodeError as err:
        raise ValueError(f"not UTF-8 text (byte {err.start})") from None
    return text.replace("\r\n", "\n")


def load_documents(root: Path, globs, excludes=()) -> tuple[list[Document], list[tuple[str, str]]]:
    """(documents, [(path, reason), ...] of skipped files); blank files are skipped too."""
    documents, skipped = [], []
    for path in find_files(root, globs, excludes):
        name = path.relative_to(root).as_posix()
        try:
            text = read_document(path)
        except ValueError as err:
            skipped.append((name, str(err)))
            continue
        if not text.strip():
            skipped.append((name, "empty"))
            continue
        documents.append(Document(name, text))
    return documents, skipped


# --- chunking


@dataclass(frozen=True)
class Chunk:
    source: str  # the document's path below DIR
    index: int  # chunk number within the document, from 0
    start: int  # character offsets of the chunk in the document
    end: int
    text: str

    @property
    def id(self) -> str:
        return f"{self.source}#{self.index}"


def check_chunk_sizes(size: int, step: int) -> None:
    if size < 1:
        raise ValueError(f"--chunk-size must be at least 1, got {size}")
    if step < 1:
        raise ValueError(f"--step-size must be at least 1, got {step}")
    if step > size:
        raise ValueError(f"--step-size {step} is larger than --chunk-size {size}: text between chunks would be lost")


def windows(length: int, size: int, step: int) -> list[tuple[int, int]]:
    """[start, end) windows over `length` units: a new one every `step`, each `size` long or cut
    at the end; the last window is the first that reaches the end, so none lies inside another.

    length 10, size 4, step 3 -> (0, 4) (3, 7) (6, 10): overlaps of 1 unit, the last reaches 10.
    length 10, size 4, step 4 -> (0, 4) (4, 8) (8, 10): no overlap, a short last window.
    """
    check_chunk_sizes(size, step)
    spans = []
    start = 0
    while start < length:
        end = min(start + size, length)
        spans.append((start, end))
        if end == length:
            break
        start += step
    return spans


def chunk_document(document: Document, size: int, step: int, tokenizer=None) -> list[Chunk]:
    """Chunks of `size` characters (no tokenizer) or tokens (a fast tokenizer) every `step` units.

    Chunks that are only whitespace are dropped; the rest keep their exact text, leading and
    trailing whitespace trimmed (offsets still name the untrimmed window).
    """
    text = document.text
    if tokenizer is None:
        bounds = windows(len(text), size, step)
    else:
        offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        # token window [a, b) covers characters from token a's start to token b-1's end
        bounds = [(offsets[a][0], offsets[b - 1][1]) for a, b in windows(len(offsets), size, step)]
    chunks = []
    for start, end in bounds:
        piece = text[start:end].strip()
        if piece:
            chunks.append(Chunk(document.path, len(chunks), start, end, piece))
    return chunks


def load_tokenizer(folder: Path):
    """A local tokenizer folder, offline; it must be a fast tokenizer (character offsets)."""
    from transformers import AutoTokenizer

    if not (folder / "tokenizer_config.json").exists() and not (folder / "tokenizer.json").exists():
        raise DocumentsError(f"--tokenizer {folder}: no tokenizer there (for the default run scripts/prepare_smollm2.py, which make train does)")
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    if not tokenizer.is_fast:
        raise DocumentsError(f"--tokenizer {folder}: a fast tokenizer (tokenizer.json) is needed for character offsets")
    # whole documents are tokenized once to find the windows, never fed to a model: the
    # "longer than the maximum sequence length" warning would only be noise
    tokenizer.model_max_length = sys.maxsize
    return tokenizer


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

_FENCE = re.compile(r"^```[\w-]*[ \t]*\n?(.*?)\n?```$", re.DOTALL)
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
    fenced = _FENCE.match(text)
    body = fenced.group(1).strip() if fenced else text
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
    text = text.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    if is_unknown(text):
        return UNKNOWN_ANSWER
    return text


def is_unknown(text: str) -> bool:
    """"I don't know.", "I do not know", "I don’t know" with a curly apostrophe, in any case."""
    words = normalize(text.replace("\u2019", "'"))
    return words in ("i dont know", "i do not know")


# --- backends


class HTTPBackend:
    """Any OpenAI-compatible endpoint, through the project's one client (its own retries)."""

    def __init__(self, base_url: str, max_retries: int, timeout: float):
        self.base_url, self.max_retries, self.timeout = base_url, max_retries, timeout
        self.client = None

    async def __aenter__(self):
        self.client = async_client(self.base_url, self.max_retries, self.timeout)
        await self.client.__aenter__()
        return self

    async def __aexit__(self, *exc):
        await self.client.__aexit__(*exc)

    async def complete(self, body: dict, what: str) -> dict:
        try:
            return await post_chat(self.client, body, self.base_url, f" ({what}; --max-retries {self.max_retries})")
        except EndpointError as err:
            raise DocumentsError(str(err)) from None


class LocalBackend:
    """A local model folder with greedy transformers generation: offline, no key.

    The reply has the chat-completions shape, so it is cached and read like a server's.
    response_format is not enforced here (the prompt still asks for JSON); a 135M model seldom
    writes valid JSON, which is why question answers are parsed leniently.
    """

    def __init__(self, folder: Path):
        if not (folder / "config.json").exists():  # checked now, before any progress bar, not at the first request
            raise DocumentsError(f"--model {folder}: no local model there (run scripts/prepare_smollm2.py, "
                                 "which make train does, or give --base-url for an endpoint)")
        self.folder = folder
        self.model = self.tokenizer = None

    def load(self) -> None:
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(str(self.folder), dtype=torch.float32, local_files_only=True).eval()

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
        import torch

        prompt = self.tokenizer.apply_chat_template(body["messages"], add_generation_prompt=True, tokenize=False)
        inputs = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            output = self.model.generate(**inputs, do_sample=False, max_new_tokens=body["max_tokens"],
                                         eos_token_id=self.tokenizer.eos_token_id,
                                         pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
        text = self.tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        return {"object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}


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
class Stats:
    chunks: int = 0
    requests: int = 0  # requests this run sent (or generated locally); the client's retries not counted
    cache_hits: int = 0
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

    def __init__(self, chunks: list[Chunk], settings: Settings, backend, cache: ResponseCache, progress=None):
        self.settings, self.backend, self.cache, self.progress = settings, backend, cache, progress
        self.results = [ChunkResult(chunk) for chunk in chunks]
        self.stats = Stats(chunks=len(chunks))

    def _request_options(self) -> dict:
        s = self.settings
        return {"model": s.model, "seed": s.seed, "max_tokens": s.max_tokens}

    async def fetch(self, job: _Job) -> dict:
        key = cache_key(job.body)
        cached = self.cache.get(key)
        if cached is not None:
            self.stats.cache_hits += 1
            return cached
        self.stats.requests += 1
        response = await self.backend.complete(job.body, job.what)
        self.cache.put(key, job.body, response)
        return response

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
            _Job(answer_body(result.chunk, question, **self._request_options()), f"answer {number} for {result.chunk.id}",
                 job.chunk_number, number)
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
            _Job(question_body(result.chunk, self.settings.questions_per_chunk, **self._request_options()),
                 f"questions for {result.chunk.id}", number)
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

        async with self.backend:
            await sliding_window(next_jobs, self.fetch, on_result, self.settings.concurrency)
        return self.results


# --- pairs, splits and files


def qa_pairs(results: list[ChunkResult], drop_unknown: bool, stats: Stats) -> list[dict]:
    """One pair per question with a usable answer, in plan order; a question already asked about
    an earlier chunk is left out, so no question is in two splits (or twice in one)."""
    pairs, seen = [], set()
    for result in results:
        for number, question in enumerate(result.questions):
            key = normalize(question)
            if key in seen:
                stats.duplicates += 1
                continue
            seen.add(key)
            stats.questions += 1
            answer = result.answers.get(number, "")
            stats.unknown += answer == UNKNOWN_ANSWER
            if not answer or (drop_unknown and answer == UNKNOWN_ANSWER):
                stats.dropped += 1
                continue
            chunk = result.chunk
            pairs.append({"source": chunk.source, "chunk": chunk.id, "start": chunk.start, "end": chunk.end,
                          "question": question, "answer": answer})
    return pairs


def assign_splits(pairs: list[dict], val_fraction: float, seed: int) -> None:
    """Set each pair's "split": whole chunks go to val, about `val_fraction` of the chunks.

    Splitting by chunk keeps every question about one passage on one side. With 20 chunks and
    0.1: 2 chunks (and all their pairs) in val. At least one chunk goes to val when the fraction
    is above 0 and there are 2 or more chunks. (Overlapping chunks share some text across the
    split; use --step-size equal to --chunk-size to avoid that.)
    """
    chunk_ids = sorted({pair["chunk"] for pair in pairs})
    random.Random(seed).shuffle(chunk_ids)
    wanted = round(len(chunk_ids) * val_fraction)
    if val_fraction > 0 and len(chunk_ids) >= 2:
        wanted = max(wanted, 1)
    wanted = min(wanted, len(chunk_ids) - 1) if chunk_ids else 0  # keep at least one chunk to train on
    val = set(chunk_ids[:wanted])
    for pair in pairs:
        pair["split"] = "val" if pair["chunk"] in val else "train"


def chat_record(pair: dict, system: str | None) -> dict:
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": pair["question"]}, {"role": "assistant", "content": pair["answer"]}]
    return {"messages": messages}


def csv_text(pairs: list[dict]) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    writer.writerows([pair[column] for column in CSV_COLUMNS] for pair in pairs)
    return buffer.getvalue()


def write_outputs(out: Path, pairs: list[dict], system: str | None, manifest_info: dict, inputs: tuple = ()) -> dict:
    """qa.csv, qa.json, train.jsonl, val.jsonl and manifest.json, replacing `out` whole."""
    splits = {}
    for split in SPLITS:
        records = [chat_record(pair, system) for pair in pairs if pair["split"] == split]
        for number, record in enumerate(records, 1):
            problem = chat_record_problem(record)
            if problem:  # a bug: answers are never empty here
                raise DataError(out / f"{split}.jsonl", number, f"refusing to write: {problem}")
        splits[split] = records
    side_files = {
        "qa.csv": lambda path: write_text(path, csv_text(pairs)),
        "qa.json": lambda path: write_json(path, {"source": manifest_info["source"], "pairs": pairs}, "qa"),
    }
    counts = {split: {"documents": len(records)} for split, records in splits.items()}
    return write_dataset_folder(out, splits, {**manifest_info, "style": "chat", "counts": counts}, inputs, side_files)


# --- command line


def _check_base_url(base_url: str) -> None:
    if not re.match(r"^https?://[^/\s]+", base_url):
        fail(f"--base-url {base_url!r}: expected http://HOST[:PORT]/PATH or https://...")


@click.command(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder, replaced whole: qa.csv, qa.json, train.jsonl, val.jsonl, manifest.json.")
@click.option("--glob", "globs", multiple=True, help="Files to read, relative to DIR; repeatable. "
              f"[default: {', '.join(DEFAULT_GLOBS)}]")
@click.option("--exclude", "excludes", multiple=True,
              help="Files or folders to leave out (globs relative to DIR); repeatable.")
@click.option("--chunk-unit", type=click.Choice(["chars", "tokens"]), default="chars", show_default=True)
@click.option("--chunk-size", type=int, default=None,
              help=f"Units per chunk [default: {DEFAULT_CHUNK_SIZE['chars']} chars, {DEFAULT_CHUNK_SIZE['tokens']} tokens].")
@click.option("--step-size", type=int, default=None,
              help="Units from one chunk's start to the next; below --chunk-size chunks overlap [default: --chunk-size].")
@click.option("--tokenizer", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_MODEL, show_default=True,
              help="Local tokenizer folder for --chunk-unit tokens.")
@click.option("--questions-per-chunk", type=int, default=3, show_default=True)
@click.option("--base-url", help="OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1; the key comes from "
              "OPENAI_API_KEY only. Without it: the local --model, offline.")
@click.option("--model", help=f"Model name the server knows; without --base-url a local model folder [default: {DEFAULT_MODEL}].")
@click.option("--max-tokens", type=int, default=256, show_default=True, help="Longest answer per request (max_tokens / max_new_tokens).")
@click.option("--concurrency", type=int, default=8, show_default=True, help="Requests in flight at most (endpoint only).")
@click.option("--max-retries", type=int, default=5, show_default=True, help="Client retries on 429/5xx/timeouts.")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds per request attempt.")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=Path(".cache/documents"),
              show_default=True, help="One file per answered request; cached requests are not sent again.")
@click.option("--val-fraction", type=click.FloatRange(0, 0.5), default=0.1, show_default=True,
              help="Share of chunks whose pairs go to val.jsonl.")
@click.option("--seed", type=int, default=0, show_default=True, help="Picks the val chunks; sent as the API's seed.")
@click.option("--drop-unknown", is_flag=True, help=f"Leave out pairs answered {UNKNOWN_ANSWER!r} (kept by default: they teach grounding).")
@click.option("--system", default=None, help="A system message to start every training record with (default: none).")
def documents_command(directory, out, globs, excludes, chunk_unit, chunk_size, step_size, tokenizer, questions_per_chunk,
                      base_url, model, max_tokens, concurrency, max_retries, timeout, cache, val_fraction, seed,
                      drop_unknown, system) -> None:
    """Question/answer chat records from the text and Markdown files under DIR.

    Each chunk of each file gets --questions-per-chunk questions, then one answer per question
    drawn from the chunk alone (or exactly "I don't know."). Answers are cached by request, so
    a re-run sends nothing already answered.

    \b
    Example:
      python -m datagen documents examples/documents --out data/documents
      OPENAI_API_KEY=... python -m datagen documents docs/ --out data/documents \\
          --base-url https://api.openai.com/v1 --model gpt-4o-mini --chunk-unit tokens --chunk-size 300
      python -m datagen validate data/documents/train.jsonl data/documents/val.jsonl
    """
    from tqdm import tqdm

    chunk_size = DEFAULT_CHUNK_SIZE[chunk_unit] if chunk_size is None else chunk_size
    step_size = chunk_size if step_size is None else step_size
    try:
        check_chunk_sizes(chunk_size, step_size)
    except ValueError as err:
        fail(str(err))
    for name, value, least in (("--questions-per-chunk", questions_per_chunk, 1), ("--max-tokens", max_tokens, 1),
                               ("--concurrency", concurrency, 1), ("--max-retries", max_retries, 0)):
        if value < least:
            fail(f"{name} must be at least {least}, got {value}")
    if not timeout > 0:
        fail(f"--timeout must be more than 0 seconds, got {timeout}")
    if base_url:
        _check_base_url(base_url)
        if not model:
            fail("--model is required with --base-url")
    if not directory.is_dir():
        fail(f"{directory}: no such folder")
    run_inputs = (directory, cache, *([tokenizer] if tokenizer else []))
    try:
        check_output_folder(out, run_inputs)
    except DataError as err:
        fail(str(err))

    globs = globs or DEFAULT_GLOBS
    try:
        documents, skipped = load_documents(directory, globs, excludes)
    except DocumentsError as err:
        fail(str(err))
    for name, reason in skipped:
        click.echo(f"warning: skipped {directory / name}: {reason}", err=True)
    if not documents:
        fail(f"{directory}: no readable files match {', '.join(globs)}"
              + (f" (excluding {', '.join(excludes)})" if excludes else ""))
    try:
        chunker = load_tokenizer(tokenizer) if chunk_unit == "tokens" else None
        chunks = [chunk for document in documents for chunk in chunk_document(document, chunk_size, step_size, chunker)]
    except DocumentsError as err:
        fail(str(err))

    if base_url:
        backend = HTTPBackend(base_url, max_retries, timeout)
    else:
        model = model or str(DEFAULT_MODEL)
        try:
            backend, concurrency = LocalBackend(Path(model)), 1  # one local generation at a time
        except DocumentsError as err:
            fail(str(err))
    settings = Settings(model, questions_per_chunk, seed, max_tokens, concurrency, drop_unknown)
    progress = tqdm(total=len(chunks), unit="request", desc="documents", file=sys.stderr, mininterval=0.5)
    generator = QAGenerator(chunks, settings, backend, ResponseCache(cache), progress)
    try:
        results = asyncio.run(generator.run())
    except (DocumentsError, OSError) as err:
        progress.close()
        fail(str(err))
    progress.close()

    stats = generator.stats
    pairs = qa_pairs(results, drop_unknown, stats)
    if not pairs:
        fail(f"no question/answer pairs from {len(chunks)} chunks ({stats.unparsed} question answers held no question)")
    assign_splits(pairs, val_fraction, seed)
    try:
        manifest = write_outputs(out, pairs, system, {
            "generator": "documents",
            "seed": seed,
            "source": str(directory),
            "options": {
                "globs": list(globs), "excludes": list(excludes), "chunk_unit": chunk_unit, "chunk_size": chunk_size,
                "step_size": step_size, "questions_per_chunk": questions_per_chunk,
                "backend": "endpoint" if base_url else "local", "model": model, "max_tokens": max_tokens,
                "val_fraction": val_fraction, "drop_unknown": drop_unknown, "system": system,
            },
        }, run_inputs)
    except (DataError, OSError) as err:
        fail(str(err))
    counts = {split: entry["documents"] for split, entry in manifest["counts"].items()}
    click.echo(
        f"documents: {len(documents)} files ({len(skipped)} skipped), {stats.chunks} chunks, "
        f"{stats.requests} requests, {stats.cache_hits} cache hits; {stats.questions} questions "
        f"({stats.skipped} unusable items, {stats.unparsed} answers without a question, {stats.duplicates} repeats), "
        f"{stats.unknown} answered {UNKNOWN_ANSWER!r}, {stats.dropped} dropped -> {out}: "
        + ", ".join(f"{split} {n}" for split, n in counts.items())
    )
