"""A scripted OpenAI-compatible chat-completions server for tests, on 127.0.0.1 only.

It is a real HTTP server (stdlib `ThreadingHTTPServer` in a background thread), so the real
`openai` client talks to it over TCP: retries, Retry-After, timeouts and concurrency are the
client's own, not a mock's. It makes no outgoing connections and binds to 127.0.0.1 port 0.

Each request to `POST /v1/chat/completions` takes the next mode from a script (a queue set by the
constructor or `script()`), or `default` once the queue is empty; the modes, the fine-tuning job
routes and what each answers are listed in openai_answers.py.

    with ScriptedOpenAIServer(modes=["429", "ok"], latency_ms=50) as server:
        ... base_url=server.url ...
        server.total, server.counts["429"]
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

from openai_answers import (  # noqa: F401  (documents_reply and chunk_of: imported from here by tests)
    MODES,
    answer,
    chunk_of,
    documents_reply,
    error_body,
    multipart_fields,
    public_job,
    training_file_problem,
)
from openai_http import LocalServer, make_handler


class ScriptedOpenAIServer:
    """See the module docstring. Counters are updated under a lock; read them via the properties."""

    def __init__(
        self,
        modes=(),
        default: str = "ok",
        latency_ms: int = 0,
        slow_ms: int = 200,
        retry_after: str = "0",
        jitter_ms: int = 0,
        reply: Callable[[dict], str | dict] | None = None,
        fine_tune: str = "succeeded",
    ):
        self.reply = reply  # the answer of "reply" mode, from the request body
        self.fine_tune = fine_tune  # how the next fine-tuning jobs end: "succeeded" or "failed"
        self._files: dict[str, dict] = {}  # file id -> {"id", "filename", "purpose", "bytes", "data"}
        self._jobs: dict[str, dict] = {}  # job id -> {"job", "events", "request", "problem"}
        self.default = self._checked_reply(self._checked(default))
        self.latency_ms = latency_ms  # added to every request, whatever its mode
        self.jitter_ms = jitter_ms  # plus a random 0..jitter_ms, so answers come back out of order
        self.slow_ms = slow_ms
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self._queue: collections.deque[str] = collections.deque()
        self._counts: collections.Counter[str] = collections.Counter()
        self._log: list[dict] = []  # one entry per answered request (see `log`)
        self.script(modes)
        self._httpd = LocalServer(("127.0.0.1", 0), make_handler(self))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="openai-test-server", daemon=True
        )
        self._thread.start()

    # --- scripting and counters

    @staticmethod
    def _checked(mode: str) -> str:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
        return mode

    def _checked_reply(self, mode: str) -> str:
        if mode == "reply" and self.reply is None:
            raise ValueError("mode 'reply' needs the constructor's reply= function")
        return mode

    def script(self, modes) -> None:
        """Replace the queue of modes that the next requests take, in arrival order."""
        checked = [self._checked_reply(self._checked(mode)) for mode in modes]
        with self._lock:
            self._queue = collections.deque(checked)

    def next_mode(self) -> str:
        with self._lock:
            mode = self._queue.popleft() if self._queue else self.default
            self._counts[mode] += 1
            return mode

    def record(self, entry: dict) -> None:
        with self._lock:
            self._log.append(entry)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    @property
    def counts(self) -> collections.Counter:
        with self._lock:
            return collections.Counter(self._counts)

    @property
    def log(self) -> list[dict]:
        """One entry per answered request, in answer order: mode, body, authorization, retry_count,
        arrived and answered (time.monotonic())."""
        with self._lock:
            return list(self._log)

    def busy_seconds(self) -> float:
        """From the first request's arrival to the last answer: the wall time the requests took."""
        log = self.log
        return max(e["answered"] for e in log) - min(e["arrived"] for e in log) if log else 0.0

    def peak_in_flight(self) -> int:
        """The most requests the server held at once (an answer leaving counts before an arrival at the same time)."""
        log = self.log
        events = sorted([(entry["arrived"], 1) for entry in log] + [(entry["answered"], -1) for entry in log])
        in_flight = peak = 0
        for _, step in events:
            in_flight += step
            peak = max(peak, in_flight)
        return peak

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()
            self._log.clear()

    # --- files and fine-tuning jobs

    @property
    def uploaded_files(self) -> list[dict]:
        """Every upload: id, filename, purpose and the bytes received (`data`)."""
        with self._lock:
            return [dict(entry) for entry in self._files.values()]

    @property
    def fine_tuning_jobs(self) -> list[dict]:
        """Every job: the job object as last served (`job`), its `events` (oldest first) and the
        create request's body (`request`)."""
        with self._lock:
            return [
                {"job": dict(entry["job"]), "events": list(entry["events"]), "request": entry["request"]}
                for entry in self._jobs.values()
            ]

    def upload(self, filename: str, purpose: str, data: bytes) -> dict:
        with self._lock:
            file_id = f"file-test{len(self._files) + 1}"
            self._files[file_id] = {"id": file_id, "filename": filename, "purpose": purpose, "data": data}
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }

    def create_job(self, body: dict) -> tuple[int, dict]:
        with self._lock:
            training = self._files.get(body.get("training_file"))
            if training is None:
                return 400, error_body(
                    f"invalid training_file: {body.get('training_file')!r} was not uploaded here",
                    "invalid_request_error",
                    param="training_file",
                )
            if not body.get("model"):
                return 400, error_body("model is required", "invalid_request_error", param="model")
            job_id = f"ftjob-test{len(self._jobs) + 1}"
            method = body.get("method") or {"type": "supervised", "supervised": {}}
            given = (
                (method.get(method.get("type"), {}) or {}).get("hyperparameters") or body.get("hyperparameters") or {}
            )
            hyperparameters = {
                name: given.get(name, "auto") for name in ("n_epochs", "batch_size", "learning_rate_multiplier")
            }
            job = {
                "id": job_id,
                "object": "fine_tuning.job",
                "created_at": int(time.time()),
                "model": body["model"],
                "training_file": training["id"],
                "validation_file": body.get("validation_file"),
                "status": "validating_files",
                "hyperparameters": hyperparameters,
                "method": method,
                "fine_tuned_model": None,
                "finished_at": None,
                "error": None,
                "trained_tokens": None,
                "result_files": [],
                "seed": body.get("seed") or 0,
                "organization_id": "org-test",
                "suffix": body.get("suffix"),
                "outcome": self.fine_tune,
            }
            self._jobs[job_id] = {
                "job": job,
                "events": [],
                "request": body,
                "polls": 0,
                "problem": training_file_problem(training["data"]),
            }
            self._event(job_id, f"Created fine-tuning job: {job_id}")
            self._event(job_id, f"Validating training file: {training['id']}")
            return 200, public_job(job)

    def _event(self, job_id: str, message: str, level: str = "info") -> None:
        events = self._jobs[job_id]["events"]
        events.append(
            {
                "id": f"ftevent-{job_id}-{len(events) + 1}",
                "object": "fine_tuning.job.event",
                "created_at": int(time.time()),
                "level": level,
                "message": message,
                "type": "message",
                "data": {},
            }
        )

    def advance_job(self, job_id: str) -> tuple[int, dict]:
        """The job after one more step of its walk (a finished job stays as it is)."""
        with self._lock:
            entry = self._jobs.get(job_id)
            if entry is None:
                return 404, error_body(
                    f"no fine-tuning job {job_id!r}", "invalid_request_error", param="fine_tuning_job_id"
                )
            job = entry["job"]
            entry["polls"] += 1
            if entry["polls"] == 1:
                pass  # the first look finds the job as it was created, still validating its files
            elif job["status"] == "validating_files" and entry["problem"]:
                self._finish(
                    job_id,
                    "failed",
                    {
                        "code": "invalid_training_file",
                        "param": "training_file",
                        "message": f"The training file is invalid: {entry['problem']}",
                    },
                )
            elif job["status"] == "validating_files":
                job["status"] = "queued"
                self._event(job_id, "Files validated, moving job to queued state")
            elif job["status"] == "queued":
                job["status"] = "running"
                self._event(job_id, "Fine-tuning job started")
            elif job["status"] == "running" and job["outcome"] == "failed":
                self._event(job_id, "Step 1: training loss=2.31")
                self._finish(
                    job_id,
                    "failed",
                    {
                        "code": "server_error",
                        "param": None,
                        "message": "Fine-tuning failed with an internal error (scripted by the test server).",
                    },
                )
            elif job["status"] == "running":
                self._event(job_id, "Step 1: training loss=0.42")
                number = job_id.removeprefix("ftjob-")
                job["fine_tuned_model"] = f"ft:{job['model']}:skilltune-test:{job['suffix'] or ''}:{number}"
                job["trained_tokens"] = len(self._files[job["training_file"]]["data"].split())
                self._event(job_id, f"New fine-tuned model created: {job['fine_tuned_model']}")
                self._finish(job_id, "succeeded", None)
            return 200, public_job(job)

    def _finish(self, job_id: str, status: str, error: dict | None) -> None:
        job = self._jobs[job_id]["job"]
        job.update(status=status, error=error, finished_at=int(time.time()))
        if status == "succeeded":
            self._event(job_id, "The job has successfully completed")
        elif status == "failed":
            self._event(job_id, f"The job failed: {error['message']}", level="error")
        else:
            self._event(job_id, "Fine-tuning job cancelled")

    def job_events(self, job_id: str, limit: int) -> tuple[int, dict]:
        with self._lock:
            entry = self._jobs.get(job_id)
            if entry is None:
                return 404, error_body(
                    f"no fine-tuning job {job_id!r}", "invalid_request_error", param="fine_tuning_job_id"
                )
            newest_first = list(reversed(entry["events"]))
            return 200, {"object": "list", "data": newest_first[:limit], "has_more": len(newest_first) > limit}

    def cancel_job(self, job_id: str) -> tuple[int, dict]:
        with self._lock:
            entry = self._jobs.get(job_id)
            if entry is None:
                return 404, error_body(
                    f"no fine-tuning job {job_id!r}", "invalid_request_error", param="fine_tuning_job_id"
                )
            if entry["job"]["status"] in ("succeeded", "failed", "cancelled"):
                return 400, error_body(f"job {job_id} has already {entry['job']['status']}", "invalid_request_error")
            self._finish(job_id, "cancelled", None)
            return 200, public_job(entry["job"])

    # --- lifecycle

    @property
    def url(self) -> str:
        """Base URL for the openai client (it appends /chat/completions)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ScriptedOpenAIServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def main() -> None:
    """Serve in a process of its own (`make bench`), so the server's work does not share the
    client's interpreter lock, as with a real remote API. Prints the base URL, then serves until
    stdin closes or the process is terminated."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--default", default="ok", choices=[mode for mode in MODES if mode != "reply"])
    args = parser.parse_args()
    with ScriptedOpenAIServer(default=args.default, latency_ms=args.latency_ms) as server:
        print(server.url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
