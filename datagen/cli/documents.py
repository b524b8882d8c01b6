"""`datagen documents`: question/answer chat records from a folder of the user's own documents
(datagen/documents.py describes the job)."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import click

from datagen.documents import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_GLOBS,
    DEFAULT_MODEL,
    DocumentsError,
    check_chunk_sizes,
    chunk_document,
    load_documents,
    load_tokenizer,
)
from datagen.documents_output import assign_splits, qa_pairs, write_outputs
from datagen.documents_qa import UNKNOWN_ANSWER, LocalBackend, QAGenerator, Settings
from skilltune.cache import ResponseCache
from skilltune.cli import OneLineErrors, fail
from skilltune.completions import EndpointBackend
from skilltune.jsonio import DataError
from skilltune.openai_api import EndpointError
from skilltune.outputs import check_output_folder


def _check_base_url(base_url: str) -> None:
    # the form only, before any work; the rest of base_url_problem (a port, a user:password) is
    # post_chat's to refuse, at the first request the cache cannot answer
    if not re.match(r"^https?://[^/\s]+", base_url):
        fail(f"--base-url {base_url!r}: expected http://HOST[:PORT]/PATH or https://...")


@click.command(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Output folder, replaced whole: qa.csv, qa.json, train.jsonl, val.jsonl, manifest.json.",
)
@click.option(
    "--glob",
    "globs",
    multiple=True,
    help=f"Files to read, relative to DIR; repeatable. [default: {', '.join(DEFAULT_GLOBS)}]",
)
@click.option(
    "--exclude", "excludes", multiple=True, help="Files or folders to leave out (globs relative to DIR); repeatable."
)
@click.option("--chunk-unit", type=click.Choice(["chars", "tokens"]), default="chars", show_default=True)
@click.option(
    "--chunk-size",
    type=int,
    default=None,
    help=f"Units per chunk [default: {DEFAULT_CHUNK_SIZE['chars']} chars, {DEFAULT_CHUNK_SIZE['tokens']} tokens].",
)
@click.option(
    "--step-size",
    type=int,
    default=None,
    help="Units from one chunk's start to the next; below --chunk-size chunks overlap [default: --chunk-size].",
)
@click.option(
    "--tokenizer",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_MODEL,
    show_default=True,
    help="Local tokenizer folder for --chunk-unit tokens.",
)
@click.option("--questions-per-chunk", type=int, default=3, show_default=True)
@click.option(
    "--base-url",
    help="OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1; the key comes from "
    "OPENAI_API_KEY only. Without it: the local --model, offline.",
)
@click.option(
    "--model", help=f"Model name the server knows; without --base-url a local model folder [default: {DEFAULT_MODEL}]."
)
@click.option(
    "--max-tokens",
    type=int,
    default=256,
    show_default=True,
    help="Longest answer per request (max_tokens / max_new_tokens).",
)
@click.option(
    "--concurrency", type=int, default=8, show_default=True, help="Requests in flight at most (endpoint only)."
)
@click.option("--max-retries", type=int, default=5, show_default=True, help="Client retries on 429/5xx/timeouts.")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds per request attempt.")
@click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".cache/documents"),
    show_default=True,
    help="One file per answered request; cached requests are not sent again.",
)
@click.option(
    "--val-fraction",
    type=click.FloatRange(0, 0.5),
    default=0.1,
    show_default=True,
    help="Share of chunks whose pairs go to val.jsonl.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Picks the val chunks; sent as the API's seed.")
@click.option(
    "--drop-unknown",
    is_flag=True,
    help=f"Leave out pairs answered {UNKNOWN_ANSWER!r} (kept by default: they teach grounding).",
)
@click.option("--system", default=None, help="A system message to start every training record with (default: none).")
def documents_command(
    directory,
    out,
    globs,
    excludes,
    chunk_unit,
    chunk_size,
    step_size,
    tokenizer,
    questions_per_chunk,
    base_url,
    model,
    max_tokens,
    concurrency,
    max_retries,
    timeout,
    cache,
    val_fraction,
    seed,
    drop_unknown,
    system,
) -> None:
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
    for name, value, least in (
        ("--questions-per-chunk", questions_per_chunk, 1),
        ("--max-tokens", max_tokens, 1),
        ("--concurrency", concurrency, 1),
        ("--max-retries", max_retries, 0),
    ):
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
        fail(
            f"{directory}: no readable files match {', '.join(globs)}"
            + (f" (excluding {', '.join(excludes)})" if excludes else "")
        )
    try:
        chunker = load_tokenizer(tokenizer) if chunk_unit == "tokens" else None
        chunks = [chunk for document in documents for chunk in chunk_document(document, chunk_size, step_size, chunker)]
    except DocumentsError as err:
        fail(str(err))

    if base_url:
        backend = EndpointBackend(base_url, max_retries, timeout)
    else:
        model = model or str(DEFAULT_MODEL)
        try:
            backend, concurrency = LocalBackend(Path(model)), 1  # one local generation at a time
        except DocumentsError as err:
            fail(str(err))
    settings = Settings(
        model=model,
        questions_per_chunk=questions_per_chunk,
        seed=seed,
        max_tokens=max_tokens,
        concurrency=concurrency,
        drop_unknown=drop_unknown,
    )
    progress = tqdm(total=len(chunks), unit="request", desc="documents", file=sys.stderr, mininterval=0.5)
    generator = QAGenerator(chunks, settings, backend, ResponseCache(cache), progress)
    try:
        results = asyncio.run(generator.run())
    except (DocumentsError, EndpointError, OSError) as err:
        progress.close()
        fail(str(err))
    progress.close()

    stats = generator.stats
    pairs = qa_pairs(results, drop_unknown, stats)
    if not pairs:
        fail(f"no question/answer pairs from {len(chunks)} chunks ({stats.unparsed} question answers held no question)")
    assign_splits(pairs, val_fraction, seed)
    try:
        manifest = write_outputs(
            out,
            pairs,
            system,
            {
                "generator": "documents",
                "seed": seed,
                "source": str(directory),
                "options": {
                    "globs": list(globs),
                    "excludes": list(excludes),
                    "chunk_unit": chunk_unit,
                    "chunk_size": chunk_size,
                    "step_size": step_size,
                    "questions_per_chunk": questions_per_chunk,
                    "backend": "endpoint" if base_url else "local",
                    "model": model,
                    "max_tokens": max_tokens,
                    "val_fraction": val_fraction,
                    "drop_unknown": drop_unknown,
                    "system": system,
                },
            },
            run_inputs,
        )
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
