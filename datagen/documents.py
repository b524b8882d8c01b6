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
(skilltune/completions.py, the client `datagen llm` uses too), so a re-run, or a run resumed after
a crash, sends only what is not cached yet. The API key is read from OPENAI_API_KEY only, by the
client.

Where each step lives: loading and chunking here; asking and answering in datagen/documents_qa.py;
pairs, splits and files in datagen/documents_output.py; the command in datagen/cli/documents.py.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

DEFAULT_GLOBS = ("**/*.md", "**/*.txt")
DEFAULT_MODEL = Path("models/SmolLM2-135M-Instruct")  # the tokenizer of token chunks, and the local model
DEFAULT_CHUNK_SIZE = {"chars": 2000, "tokens": 400}  # ~400 tokens of English prose either way


class DocumentsError(RuntimeError):
    """The run cannot go on; str() is one line."""


# --- loading


@dataclass(frozen=True)
class Document:
    path: str  # relative to DIR, with forward slashes: stable names for outputs and sorting
    text: str


def _excluded(path: Path, root: Path, excluded: set[Path]) -> bool:
    """A file is out when an exclude pattern matches it or one of its folders below `root`."""
    return path in excluded or any(
        parent in excluded for parent in path.parents if parent != root and root in parent.parents
    )


def _glob(root: Path, pattern: str, option: str) -> list[Path]:
    if ".." in Path(pattern).parts:  # outside DIR: the paths could not be named relative to it
        raise DocumentsError(f"{option} {pattern!r}: patterns must stay inside DIR (no ..)")
    try:
        return list(root.glob(pattern))
    except (ValueError, NotImplementedError) as err:  # "", "/abs/*.md": pathlib refuses them
        raise DocumentsError(f"{option} {pattern!r}: {err} (patterns are relative to DIR)") from None


def find_files(
    root: Path, globs: tuple[str, ...] | list[str], excludes: tuple[str, ...] | list[str] = ()
) -> list[Path]:
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
        raise DocumentsError(
            f"--tokenizer {folder}: no tokenizer there "
            "(for the default run scripts/prepare_smollm2.py, which make train does)"
        )
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    if not tokenizer.is_fast:
        raise DocumentsError(f"--tokenizer {folder}: a fast tokenizer (tokenizer.json) is needed for character offsets")
    # whole documents are tokenized once to find the windows, never fed to a model: the
    # "longer than the maximum sequence length" warning would only be noise
    tokenizer.model_max_length = sys.maxsize
    return tokenizer
