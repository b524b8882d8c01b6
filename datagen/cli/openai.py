"""`datagen openai-export|openai-ft`: an OpenAI fine-tuning file from skilltune records, and a job run on one.

Making and checking the file is datagen/openai_export.py; running the job is skilltune/openai_ft.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from datagen.openai_export import (
    DEFAULT_BASE_MODEL,
    ExportSettings,
    FileCheck,
    TokenizerUnavailable,
    check_export,
    check_file,
    write_examples,
)
from skilltune.cli import OneLineErrors, fail
from skilltune.jsonio import DataError
from skilltune.openai_ft import DEFAULT_BASE_URL, INTERRUPTED, FineTuneError, FineTuneSettings, JobInterrupted, run_job

MAX_PROBLEMS_SHOWN = 100


def limit_options(command):
    """--max-tokens-per-example and --n-epochs, shared by openai-export and openai-ft."""
    command = click.option(
        "--n-epochs",
        type=click.IntRange(1, 50),
        default=None,
        help="Epochs to estimate billing with (openai-ft: also sent to the job); "
        "default: OpenAI's rule from the number of examples.",
    )(command)
    return click.option(
        "--max-tokens-per-example",
        type=click.IntRange(min=1),
        default=None,
        help="Override the base model's documented per-example token limit.",
    )(command)


def fail_on_problems(check: FileCheck, consequence: str) -> None:
    """Print what the check found (FILE:LINE: reason, the first MAX_PROBLEMS_SHOWN) and fail; or
    return when it found nothing."""
    if not check.problems:
        return
    for problem in check.problems[:MAX_PROBLEMS_SHOWN]:
        click.echo(problem, err=True)
    if len(check.problems) > MAX_PROBLEMS_SHOWN:
        click.echo(f"... and {len(check.problems) - MAX_PROBLEMS_SHOWN} more", err=True)
    fail(f"{check.path}: {len(check.problems)} problems; {consequence}")


def echo_summary(check: FileCheck) -> None:
    for line in check.summary():
        click.echo(line)


@click.command(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="OpenAI fine-tuning JSONL to write (only when every check passes).",
)
@click.option("--split", default="train", show_default=True, help="With a dataset folder: the split file to export.")
@click.option(
    "--base-model",
    default=DEFAULT_BASE_MODEL,
    show_default=True,
    help="The model to fine-tune: sets the per-example token limit and the tokenizer.",
)
@limit_options
def openai_export_command(**options) -> None:
    """Write SOURCE (a dataset folder or a records JSONL) as an OpenAI chat fine-tuning file, checked.

    Every problem is printed as FILE:LINE: reason (FILE being the records file) and nothing is
    written. On success prints examples, tokens and the estimated billed training tokens.

    \b
    Example:
      python -m datagen openai-export data/skills --out data/openai/train.jsonl
      python -m datagen openai-export data/skills/val.jsonl --out data/openai/val.jsonl --n-epochs 3
    """
    settings = ExportSettings(**options)
    try:
        check = check_export(settings)
    except (DataError, ValueError, TokenizerUnavailable) as err:
        fail(str(err))
    fail_on_problems(check, f"{settings.out} not written")
    try:
        write_examples(check, settings.out)
    except DataError as err:  # what the checks let through and the schema or JSON refuses (NaN)
        fail(str(err))
    except OSError as err:
        fail(" ".join(str(err).split()))
    echo_summary(check)
    click.echo(f"wrote {settings.out}")


def usage_problem(settings: FineTuneSettings) -> str | None:
    """Why these options cannot make a run, beyond what click's types check one option at a time."""
    if (settings.file is None) == (settings.job_id is None):
        return "give a training FILE to start a job, or --job ID to follow one"
    if settings.cancel and settings.job_id is None:
        return "--cancel needs --job ID"
    if settings.suffix is not None and not 0 < len(settings.suffix) <= 64:
        return f"--suffix must be 1 to 64 characters, got {len(settings.suffix)}"
    return None


def check_before_upload(settings: FineTuneSettings, max_tokens_per_example: int | None) -> None:
    """Check the training file as openai-export checks what it writes; fail before anything is uploaded."""
    if not settings.file.is_file():
        fail(f"{settings.file}: no such file")
    check = check_file(settings.file, settings.model, max_tokens_per_example, settings.n_epochs)
    fail_on_problems(check, "nothing uploaded")
    echo_summary(check)


@click.command(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", default=DEFAULT_BASE_MODEL, show_default=True, help="The model to fine-tune.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Sent to the job (default: auto).")
@click.option(
    "--learning-rate-multiplier",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Sent to the job (default: auto).",
)
@click.option("--suffix", default=None, help="Up to 64 characters, part of the fine-tuned model's name.")
@click.option("--seed", type=int, default=None, help="Sent to the job, for a reproducible run.")
@limit_options
@click.option(
    "--base-url",
    default=DEFAULT_BASE_URL,
    show_default=True,
    help="The API (a test or proxy server, say). The key comes from OPENAI_API_KEY only.",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds between polls of the job.",
)
@click.option(
    "--max-retries",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="The client's retries per request (429/5xx/timeouts, with backoff).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds per request.",
)
@click.option("--job", "job_id", default=None, help="Follow this existing job instead of starting one (no FILE).")
@click.option("--cancel", is_flag=True, help="With --job: cancel the job, then follow it to its end.")
@click.option(
    "--test",
    default="data/skills/test.jsonl",
    show_default=True,
    help="The test file named in the eval command printed at the end.",
)
def openai_ft_command(max_tokens_per_example: int | None, **options) -> None:
    """Check FILE (OpenAI chat fine-tuning JSONL), upload it, run a fine-tuning job and follow it.

    Exit status 0 when the job succeeds (the fine-tuned model's name and the eval command are
    printed), 1 when a check, a request or the job fails, 130 on Ctrl-C (the job goes on).

    \b
    Example:
      python -m datagen openai-export data/skills --out data/openai/train.jsonl
      OPENAI_API_KEY=... python -m datagen openai-ft data/openai/train.jsonl --model gpt-4o-mini-2024-07-18 \\
          --n-epochs 3 --suffix skills
    """
    settings = FineTuneSettings(**options)  # the per-example limit is the check's alone: the job never sees it
    problem = usage_problem(settings)
    if problem:
        fail(problem)
    try:
        if settings.file is not None:
            check_before_upload(settings, max_tokens_per_example)
        run_job(settings, click.echo)
    except (KeyboardInterrupt, JobInterrupted) as err:
        # Ctrl-C in the file check is a bare KeyboardInterrupt: no job was created yet
        stopped = err if isinstance(err, JobInterrupted) else JobInterrupted(None, settings.base_url)
        click.echo(str(stopped), err=True)
        sys.exit(INTERRUPTED)
    except (DataError, ValueError, TokenizerUnavailable, FineTuneError) as err:  # UnicodeDecodeError is a ValueError
        fail(str(err))
