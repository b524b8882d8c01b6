"""Run an OpenAI fine-tuning job on a checked training file, and follow it to the end.

    OPENAI_API_KEY=... python -m datagen openai-ft data/openai/train.jsonl --model gpt-4o-mini-2024-07-18 \\
        --n-epochs 3 --suffix skills
    python -m datagen openai-ft --job ftjob-abc123            # follow a job started earlier
    python -m datagen openai-ft --job ftjob-abc123 --cancel

Steps: the file is checked exactly as `openai-export` checks it (a problem stops the run before
anything is uploaded), uploaded through the files API (purpose fine-tune), and a supervised job is
created with the hyperparameters given (the others left to OpenAI's "auto"). The job is then
polled every --poll-interval seconds; each poll prints a status change and the events not shown
yet, oldest first. A succeeded job prints the fine-tuned model's name and the `python -m eval run`
command that scores it; a failed or cancelled one ends with its error and exit status 1. Ctrl-C
stops following, not the job: it prints the job id and the command to follow it again.

The `openai` client (sync: one request at a time is all this needs) does the retries. The key is
read from OPENAI_API_KEY, handed to the client and nowhere else: it is never printed or written.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import click

from skilltune.jsonio import DataError
from skilltune.openai_api import one_line
from skilltune.cli import OneLineErrors, fail
from datagen.openai_export import (
    DEFAULT_BASE_MODEL,
    TokenizerUnavailable,
    check_file,
    limit_options,
    print_problems,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
FINISHED = ("succeeded", "failed", "cancelled")
EVENTS_PER_POLL = 100  # events fetched per poll; a poll every 10 s never sees more new ones than that
INTERRUPTED = 130  # the shell's exit status for Ctrl-C


class FineTuneError(RuntimeError):
    """A request that failed after the client's retries, or a job that did not succeed; str() is one line."""


def make_client(base_url: str, max_retries: int, timeout: float):
    import openai

    key = os.environ.get("OPENAI_API_KEY")
    if not key and base_url.rstrip("/") == DEFAULT_BASE_URL:
        raise FineTuneError("set OPENAI_API_KEY: the key is read from there only")
    # a local test or proxy server takes any placeholder
    return openai.OpenAI(base_url=base_url, api_key=key or "none", max_retries=max_retries, timeout=timeout)


@contextmanager
def api_errors(base_url: str, doing: str):
    """Turn the client's exceptions into one FineTuneError line naming the URL and the step."""
    import openai

    try:
        yield
    except openai.APIConnectionError as err:  # timeouts included
        raise FineTuneError(f"cannot reach {base_url} ({doing}): {type(err).__name__}: {one_line(err)}") from None
    except openai.APIStatusError as err:
        # the error object's own message, not the client's "Error code: 400 - {...}" rendering of it
        message = err.body.get("message") if isinstance(err.body, dict) and err.body.get("message") else err.message
        raise FineTuneError(f"{base_url} answered HTTP {err.status_code} ({doing}): {one_line(message)}") from None
    except openai.OpenAIError as err:
        raise FineTuneError(f"{base_url} ({doing}): {type(err).__name__}: {one_line(err)}") from None


def hyperparameters(n_epochs: int | None, batch_size: int | None, learning_rate_multiplier: float | None) -> dict:
    given = {"n_epochs": n_epochs, "batch_size": batch_size, "learning_rate_multiplier": learning_rate_multiplier}
    return {name: value for name, value in given.items() if value is not None}


def start_job(client, base_url: str, path: Path, model: str, hyper: dict, suffix: str | None, seed: int | None):
    """Upload `path` and create a supervised fine-tuning job on it; returns the job."""
    with api_errors(base_url, f"uploading {path}"):
        uploaded = client.files.create(file=(path.name, path.read_bytes()), purpose="fine-tune")
    click.echo(f"uploaded {path} as {uploaded.id} ({uploaded.bytes:,} bytes)")
    options = {}
    if suffix:
        options["suffix"] = suffix
    if seed is not None:
        options["seed"] = seed
    # `method` is the current form; the top-level `hyperparameters` argument is deprecated
    method = {"type": "supervised", "supervised": {"hyperparameters": hyper} if hyper else {}}
    with api_errors(base_url, "creating the fine-tuning job"):
        job = client.fine_tuning.jobs.create(training_file=uploaded.id, model=model, method=method, **options)
    shown = ", ".join(f"{name} {value}" for name, value in hyper.items()) or "hyperparameters auto"
    click.echo(f"created job {job.id}: {job.model}, {shown}")
    return job


def follow(client, base_url: str, job_id: str, poll_interval: float):
    """Poll the job until it finishes, printing status changes and new events; returns the last job."""
    status, seen = None, set()
    while True:
        with api_errors(base_url, f"polling job {job_id}"):
            job = client.fine_tuning.jobs.retrieve(job_id)
            events = client.fine_tuning.jobs.list_events(job_id, limit=EVENTS_PER_POLL).data
        if job.status != status:
            status = job.status
            click.echo(f"status: {status}")
        for event in reversed(events):  # the API lists the newest first
            if event.id not in seen:
                seen.add(event.id)
                level = "" if event.level == "info" else f"{event.level}: "
                click.echo(f"  {level}{one_line(event.message)}")
        if status in FINISHED:
            return job
        time.sleep(poll_interval)


def eval_command(base_url: str, model: str, base_model: str, test: str) -> str:
    """The command that scores the fine-tuned model against its base (eval/__main__.py's `run`)."""
    return shlex.join(["python", "-m", "eval", "run", "--backend", "openai", "--base-url", base_url,
                       "--model", model, "--base-model-name", base_model, "--test", test,
                       "--out", "runs/openai-ft"])


def job_outcome(job, base_url: str, test: str) -> None:
    """Print a succeeded job's model and eval command; raise FineTuneError for any other end."""
    if job.status == "succeeded":
        if not job.fine_tuned_model:
            raise FineTuneError(f"job {job.id} succeeded but names no fine-tuned model")
        click.echo(f"fine-tuned model: {job.fine_tuned_model}")
        click.echo("score it (key from OPENAI_API_KEY):")
        click.echo(f"  {eval_command(base_url, job.fine_tuned_model, job.model, test)}")
        return
    error = job.error
    if job.status == "failed" and error is not None and error.message:
        code = f" [{error.code}]" if error.code else ""
        raise FineTuneError(f"job {job.id} failed{code}: {one_line(error.message)}")
    raise FineTuneError(f"job {job.id} {job.status}")


def follow_command_line(job_id: str, base_url: str) -> str:
    words = ["python", "-m", "datagen", "openai-ft", "--job", job_id]
    if base_url != DEFAULT_BASE_URL:
        words += ["--base-url", base_url]
    return shlex.join(words)


@click.command(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", default=DEFAULT_BASE_MODEL, show_default=True, help="The model to fine-tune.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Sent to the job (default: auto).")
@click.option("--learning-rate-multiplier", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Sent to the job (default: auto).")
@click.option("--suffix", default=None, help="Up to 64 characters, part of the fine-tuned model's name.")
@click.option("--seed", type=int, default=None, help="Sent to the job, for a reproducible run.")
@limit_options
@click.option("--base-url", default=DEFAULT_BASE_URL, show_default=True,
              help="The API (a test or proxy server, say). The key comes from OPENAI_API_KEY only.")
@click.option("--poll-interval", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Seconds between polls of the job.")
@click.option("--max-retries", type=click.IntRange(min=0), default=2, show_default=True,
              help="The client's retries per request (429/5xx/timeouts, with backoff).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True,
              help="Seconds per request.")
@click.option("--job", "job_id", default=None, help="Follow this existing job instead of starting one (no FILE).")
@click.option("--cancel", is_flag=True, help="With --job: cancel the job, then follow it to its end.")
@click.option("--test", default="data/skills/test.jsonl", show_default=True,
              help="The test file named in the eval command printed at the end.")
def openai_ft_command(file: Path | None, model: str, batch_size: int | None, learning_rate_multiplier: float | None,
                      suffix: str | None, seed: int | None, max_tokens_per_example: int | None, n_epochs: int | None,
                      base_url: str, poll_interval: float, max_retries: int, timeout: float, job_id: str | None,
                      cancel: bool, test: str) -> None:
    """Check FILE (OpenAI chat fine-tuning JSONL), upload it, run a fine-tuning job and follow it.

    Exit status 0 when the job succeeds (the fine-tuned model's name and the eval command are
    printed), 1 when a check, a request or the job fails, 130 on Ctrl-C (the job goes on).

    \b
    Example:
      python -m datagen openai-export data/skills --out data/openai/train.jsonl
      OPENAI_API_KEY=... python -m datagen openai-ft data/openai/train.jsonl --model gpt-4o-mini-2024-07-18 \\
          --n-epochs 3 --suffix skills
    """
    if (file is None) == (job_id is None):
        fail("give a training FILE to start a job, or --job ID to follow one")
    if cancel and job_id is None:
        fail("--cancel needs --job ID")
    if suffix is not None and not 0 < len(suffix) <= 64:
        fail(f"--suffix must be 1 to 64 characters, got {len(suffix)}")
    try:
        if file is not None:
            if not file.is_file():
                fail(f"{file}: no such file")
            check = check_file(file, model, max_tokens_per_example, n_epochs)
            if check.problems:
                print_problems(check.problems)
                fail(f"{file}: {len(check.problems)} problems; nothing uploaded")
            for line in check.summary():
                click.echo(line)
        client = make_client(base_url, max_retries, timeout)
        if file is not None:
            job_id = start_job(client, base_url, file, model, hyperparameters(n_epochs, batch_size,
                                                                              learning_rate_multiplier),
                               suffix, seed).id
        elif cancel:
            with api_errors(base_url, f"cancelling job {job_id}"):
                client.fine_tuning.jobs.cancel(job_id)
            click.echo(f"cancel requested for {job_id}")
        job = follow(client, base_url, job_id, poll_interval)
        if cancel and job.status == "cancelled":
            return
        job_outcome(job, base_url, test)
    except KeyboardInterrupt:
        if job_id is None:
            click.echo("\ninterrupted before a job was created", err=True)
        else:
            click.echo(f"\ninterrupted: job {job_id} goes on. Follow it again with:\n"
                       f"  {follow_command_line(job_id, base_url)}", err=True)
        sys.exit(INTERRUPTED)
    except (DataError, ValueError, TokenizerUnavailable, FineTuneError) as err:
        fail(str(err))
    except UnicodeDecodeError as err:
        fail(f"{file}: not UTF-8 text ({err.reason})")
