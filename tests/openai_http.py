"""The HTTP side of the scripted OpenAI-compatible server (openai_server.py): the routes of chat
completions, file uploads and fine-tuning jobs, each answered from the server's script and state."""

from __future__ import annotations

import json
import random
import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from openai_answers import answer, error_body, multipart_fields

JOB_ROUTE = re.compile(r"^/v1/fine_tuning/jobs/([^/]+)(/events|/cancel)?$")


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default listen backlog of 5 drops bursts of connects: 1 s SYN retries


def make_handler(server):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like real API servers; every reply has Content-Length
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
        timeout = 30  # an idle keep-alive connection's thread ends after this

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def _send(self, status: int, payload: dict, headers: dict | None = None, cut: str | None = None) -> None:
            """`cut`: "short_body" sends half the body under the full Content-Length, then hangs up;
            "cut_json" sends half the body under a Content-Length that matches it."""
            data = json.dumps(payload).encode()
            length = len(data)
            if cut:
                data = data[: len(data) // 2]
                length = length if cut == "short_body" else len(data)
                self.close_connection = True
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(length))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (a timeout test)
                self.close_connection = True

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            path, job = url.path.rstrip("/"), JOB_ROUTE.match(url.path.rstrip("/"))
            if path == "/v1/_counts":  # not OpenAI's: lets another process read the counters
                self._send(200, dict(server.counts))
            elif job and job.group(2) is None:
                self._send(*server.advance_job(job.group(1)))
            elif job and job.group(2) == "/events":
                limit = int((parse_qs(url.query).get("limit") or ["20"])[0])
                self._send(*server.job_events(job.group(1), limit))
            else:
                self._send(404, error_body(f"no route GET {self.path}", "invalid_request_error"))

        def _json_body(self, raw: bytes) -> dict | None:
            try:
                body = json.loads(raw)
            except json.JSONDecodeError:
                body = None
            if not isinstance(body, dict):
                self._send(400, error_body("request body is not a JSON object", "invalid_request_error"))
                return None
            return body

        def _upload(self, raw: bytes) -> None:
            try:
                fields = multipart_fields(self.headers.get("Content-Type", ""), raw)
            except ValueError as err:
                self._send(400, error_body(str(err), "invalid_request_error"))
                return
            filename, data = fields.get("file", (None, None))
            purpose = (fields.get("purpose", (None, b""))[1] or b"").decode()
            if data is None or purpose != "fine-tune":
                self._send(400, error_body("expected a `file` part and purpose=fine-tune", "invalid_request_error"))
                return
            self._send(200, server.upload(filename or "upload.jsonl", purpose, data))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            path = urlsplit(self.path).path.rstrip("/")
            job = JOB_ROUTE.match(path)
            if path == "/v1/files":
                self._upload(raw)
                return
            if path == "/v1/fine_tuning/jobs":
                body = self._json_body(raw)
                if body is not None:
                    self._send(*server.create_job(body))
                return
            if job and job.group(2) == "/cancel":
                self._send(*server.cancel_job(job.group(1)))
                return
            if path != "/v1/chat/completions":
                self._send(404, error_body(f"no route POST {self.path}", "invalid_request_error"))
                return
            body = self._json_body(raw)
            if body is None:
                return
            arrived = time.monotonic()
            mode = server.next_mode()
            entry = {
                "mode": mode,
                "body": body,
                "authorization": self.headers.get("Authorization"),
                "retry_count": self.headers.get("x-stainless-retry-count"),
                "arrived": arrived,
            }
            delay_ms = server.latency_ms + (server.slow_ms if mode == "slow" else 0)
            delay_ms += random.uniform(0, server.jitter_ms)
            if delay_ms:
                time.sleep(delay_ms / 1000)
            status, headers, payload = answer(mode, body, server.total, server.retry_after, server.reply)
            # logged before the reply goes out: once the client has it, the log already shows it
            entry["answered"] = time.monotonic()
            server.record(entry)
            self._send(status, payload, headers, cut=mode if mode in ("short_body", "cut_json") else None)

    return Handler
