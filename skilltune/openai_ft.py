"""Run an OpenAI fine-tuning job on a checked training file, and follow it to the end.

    OPENAI_API_KEY=... python -m datagen openai-ft data/openai/train.jsonl --model gpt-4o-mini-2024-07-18 \\
        --n-epochs 3 --suffix skills
    python -m datagen openai-ft --job ftjob-abc123            # follow a job started earlier
    python -m datagen openai-ft --job ftjob-abc123 --cancel

Steps: the file is checked exactly as `openai-export` checks it (datagen/cli/openai.py does that
before anything here runs: a problem stops the run before anything is uploaded), uploaded through
the files API (purpose fine-tune), and a supervised job is created with the hyperparameters given
(the others left to OpenAI's "auto"). The job is then polled every poll_interval seconds; each poll
reports a status change and the events not shown yet, oldest first. A succeeded job reports the
fine-tuned model's name and the `python -m eval run` command that scores it; a failed or cancelled
one ends in FineTuneError. Ctrl-C stops following, not the job: JobInterrupted names the job id and
the command to follow it again.

Progress lines go to the `say` callable the caller passes (the command passes click.echo), so this
module prints nothing itself and knows no command-line library.

The `openai` client (sync: one request at a time is all this needs) does the retries. The key is
read from OPENAI_API_KEY, handed to the client and nowhere else: it is never printed or written.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from skilltune.openai_api import one_line

DEFAULT_BASE_URL = "https://api.openai.com/v1"
FINISHED = ("succeeded", "failed", "cancelled")
EVENTS_PER_POLL = 100  # events fetched per poll; a poll every 10 s never sees more new ones than that
INTERRUPTED = 130  # the shell's exit status for Ctrl-C

Say = Callable[[str], None]


class FineTuneError(RuntimeError):
    """A request that failed after the client's retries, or a job that did not succeed; str() is one line."""


class JobInterrupted(Exception):
    """Ctrl-C while starting or following a job; the job, once created, goes on.

    str() is what to tell the user: that nothing was created, or how to follow the job again.
    """

    def __init__(self, job_id: str | None, base_url: str):
        self.job_id = job_id
        if job_id is None:
            super().__init__("\ninterrupted before a job was created")
        else:
            super().__init__(
                f"\ninterrupted: job {job_id} goes on. Follow it again with:\n  {follow_command_line(job_id, base_url)}"
            )


@dataclass
class FineTuneSettings:
    """What `openai-ft` was asked to do: the job to start or follow, and how to talk to the API."""

    file: Path | None  # the checked training file to upload; None: follow job_id
    model: str
    batch_size: int | None  # this and the next two: None leaves the hyperparameter to OpenAI ("auto")
    learning_rate_multiplier: float | None
    n_epochs: int | None
    suffix: str | None
    seed: int | None
    base_url: str
    poll_interval: float
    max_retries: int
    timeout: float
    job_id: str | None
    cancel: bool
    test: str  # the test file named in the eval command reported at the end

    def hyperparameters(self) -> dict:
        given = {
            "n_epochs": self.n_epochs,
            "batch_size": self.batch_size,
            "learning_rate_multiplier": self.learning_rate_multiplier,
        }
        return {name: value for name, value in given.items() if value is not None}


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


def start_job(client, settings: FineTuneSettings, say: Say):
    """Upload settings.file and create a supervised fine-tuning job on it; returns the job."""
    path, base_url, hyper = settings.file, settings.base_url, settings.hyperparameters()
    with api_errors(base_url, f"uploading {path}"):
        uploaded = client.files.create(file=(path.name, path.read_bytes()), purpose="fine-tune")
    say(f"uploaded {path} as {uploaded.id} ({uploaded.bytes:,} bytes)")
    options = {}
    if settings.suffix:
        options["suffix"] = settings.suffix
    if settings.seed is not None:
        options["seed"] = settings.seed
    # `method` is the current form; the top-level `hyperparameters` argument is deprecated
    method = {"type": "supervised", "supervised": {"hyperparameters": hyper} if hyper else {}}
    with api_errors(base_url, "creating the fine-tuning job"):
        job = client.fine_tuning.jobs.create(training_file=uploaded.id, model=settings.model, method=method, **options)
    shown = ", ".join(f"{name} {value}" for name, value in hyper.items()) or "hyperparameters auto"
    say(f"created job {job.id}: {job.model}, {shown}")
    return job


def cancel_job(client, base_url: str, job_id: str, say: Say) -> None:
    with api_errors(base_url, f"cancelling job {job_id}"):
        client.fine_tuning.jobs.cancel(job_id)
    say(f"cancel requested for {job_id}")


def follow(client, base_url: str, job_id: str, poll_interval: float, say: Say):
    """Poll the job until it finishes, reporting status changes and new events; returns the last job."""
    status, seen = None, set()
    while True:
        with api_errors(base_url, f"polling job {job_id}"):
            job = client.fine_tuning.jobs.retrieve(job_id)
            events = client.fine_tuning.jobs.list_events(job_id, limit=EVENTS_PER_POLL).data
        if job.status != status:
            status = job.status
            say(f"status: {status}")
        for event in reversed(events):  # the API lists the newest first
            if event.id not in seen:
                seen.add(event.id)
                level = "" if event.level == "info" else f"{event.level}: "
                say(f"  {level}{one_line(event.message)}")
        if status in FINISHED:
            return job
        time.sleep(poll_interval)


def eval_command(base_url: str, model: str, base_model: str, test: str) -> str:
    """The command that scores the fine-tuned model against its base (eval/__main__.py's `run`)."""
    return shlex.join(
        [
            "python",
            "-m",
            "eval",
            "run",
            "--backend",
            "openai",
            "--base-url",
            base_url,
            "--model",
            model,
            "--base-model-name",
            base_model,
            "--test",
            test,
            "--out",
            "runs/openai-ft",
        ]
    )


def job_outcome(job, base_url: str, test: str, say: Say) -> None:
    """Report a succeeded job's model and eval command; raise FineTuneError for any other end."""
    if job.status == "succeeded":
        if not job.fine_tuned_model:
            raise FineTuneError(f"job {job.id} succeeded but names no fine-tuned model")
        say(f"fine-tuned model: {job.fine_tuned_model}")
        say("score it (key from OPENAI_API_KEY):")
        say(f"  {eval_command(base_url, job.fine_tuned_model, job.model, test)}")
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


def run_job(settings: FineTuneSettings, say: Say) -> None:
    """Start a job on settings.file (or take settings.job_id), cancel it when asked, follow it to its end.

    Returns when the job succeeded, or was cancelled as asked; FineTuneError for any other end and
    for a failed request; JobInterrupted on Ctrl-C, naming the job once there is one.
    """
    job_id = settings.job_id
    try:
        client = make_client(settings.base_url, settings.max_retries, settings.timeout)
        if settings.file is not None:
            job_id = start_job(client, settings, say).id
        elif settings.cancel:
            cancel_job(client, settings.base_url, job_id, say)
        job = follow(client, settings.base_url, job_id, settings.poll_interval, say)
        if not (settings.cancel and job.status == "cancelled"):
            job_outcome(job, settings.base_url, settings.test, say)
    except KeyboardInterrupt:
        raise JobInterrupted(job_id, settings.base_url) from None
