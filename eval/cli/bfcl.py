"""`eval bfcl`: score a model on a Berkeley Function Calling Leaderboard category (eval/bfcl.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from skilltune.cli import fail
from skilltune.jsonio import DataError
from skilltune.outputs import check_output_folder


@dataclass(frozen=True)
class BfclSettings:
    category: str  # BFCL category, e.g. simple_python
    out: Path  # folder for the predictions and the result
    predictions: Path | None  # saved {id, output} lines to re-score instead of generating
    backend: str  # transformers or openai
    base_model: str | None  # transformers: the model folder
    adapter: str | None  # transformers: a LoRA adapter on top of it
    base_url: str | None  # openai: the endpoint
    model: str | None  # openai: the model name
    limit: int | None  # only the first N cases
    batch_size: int
    max_new_tokens: int


@click.command()
@click.option(
    "--category",
    default="simple_python",
    show_default=True,
    help="BFCL category, e.g. simple_python, irrelevance, multiple, parallel, live_simple.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder for bfcl-<category>-predictions.jsonl and bfcl-<category>.json.",
)
@click.option(
    "--predictions",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Re-score saved predictions (JSONL of {id, output}) instead of generating.",
)
@click.option("--backend", type=click.Choice(["transformers", "openai"]), default="transformers", show_default=True)
@click.option("--base-model", default=None, help="transformers: the model folder.")
@click.option("--adapter", default=None, help="transformers: a LoRA adapter folder on top of it.")
@click.option("--base-url", default=None, help="openai: the endpoint.")
@click.option("--model", default=None, help="openai: the model name.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N cases.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=128, show_default=True)
def bfcl_command(**options) -> None:
    """Score a model on a Berkeley Function Calling Leaderboard category with this scorer.

    \b
    Examples:
      python -m eval bfcl --category simple_python --base-model models/SmolLM2-135M-Instruct --limit 50 --out runs/bfcl
      python -m eval bfcl --category irrelevance --backend openai --base-url http://127.0.0.1:8000/v1 \\
          --model m --out runs/bfcl
    """
    bfcl(BfclSettings(**options))


def bfcl(settings: BfclSettings) -> None:
    from eval.bfcl import (
        bfcl_files,
        generate_outputs,
        load_bfcl,
        predictions_path,
        read_saved_outputs,
        result_path,
        score_bfcl,
        write_outputs,
        write_result,
    )
    from eval.predict import PredictError

    try:
        cases = load_bfcl(*bfcl_files(settings.category))[: settings.limit]
    except (FileNotFoundError, DataError) as err:
        fail(str(err))
    try:
        check_output_folder(settings.out, [settings.predictions] if settings.predictions else [], kind="eval")
    except DataError as err:
        fail(str(err))
    if settings.predictions is not None:
        try:
            outputs = read_saved_outputs(settings.predictions, cases)
        except DataError as err:
            fail(str(err))
    else:
        _check_backend_options(settings)
        try:
            outputs = generate_outputs(cases, _predictor(settings))
        except PredictError as err:
            fail(str(err))
        write_outputs(predictions_path(settings.out, settings.category), cases, outputs)
    result = score_bfcl(cases, outputs)
    write_result(result_path(settings.out, settings.category), result)
    click.echo(
        f"BFCL {settings.category}: {result['n']} cases, exact match {100 * result['exact_match']:.1f}% strict, "
        f"{100 * result['exact_match_lenient']:.1f}% lenient, no call {100 * result['no_call_rate']:.1f}%, "
        f"parse failures {100 * result['parse_failure_rate']:.1f}%"
    )
    click.echo(f"errors: {result['error_types']}")


def _check_backend_options(settings: BfclSettings) -> None:
    if settings.backend == "openai" and not (settings.base_url and settings.model):
        fail("--backend openai needs --base-url and --model")
    if settings.backend == "transformers" and not settings.base_model:
        fail("--backend transformers needs --base-model")


def _predictor(settings: BfclSettings):
    """The backend the options name; a local model loads here (PredictError when it cannot)."""
    from eval.predict import OpenAIBackend, TransformersBackend

    label = f"bfcl {settings.category}"
    if settings.backend == "openai":
        return OpenAIBackend(settings.base_url, settings.model, max_tokens=settings.max_new_tokens, label=label)
    return TransformersBackend(
        settings.base_model,
        settings.adapter,
        batch_size=settings.batch_size,
        max_new_tokens=settings.max_new_tokens,
        label=label,
    )
