"""A scripted OpenAI-compatible chat-completions server for tests, on 127.0.0.1 only.

It is a real HTTP server (stdlib `ThreadingHTTPServer` in a background thread), so the real
`openai` client talks to it over TCP: retries, Retry-After, timeouts and concurrency are the
client's own, not a mock's. It makes no outgoing connections and binds to 127.0.0.1 port 0.

Each request to `POST /v1/chat/completions` takes the next mode from a script (a queue set by the
constructor or `script()`), or `default` once the queue is empty:

    ok          valid {user, arguments} pairs, sent as a forced tool call
    ok_content  the same pairs as plain `message.content` JSON inside a ```json fence
    slow        sleeps `slow_ms`, then answers like ok
    duplicate   the same pairs for every request of a skill (so all but the first are duplicates)
    429         status 429 with a `Retry-After: <retry_after>` header
    500         status 500
    malformed   200 with content that is not JSON and no tool call
    invalid     JSON pairs that do not fit: unknown argument, wrong function, unparsable call, empty user
    reply       whatever the constructor's `reply(body)` returns: a str becomes `message.content`,
                a dict is the whole message (e.g. with `tool_calls`); for scoring eval prompts

"ok" pairs are a pure function of the request body (skill name from the prompt's `Skill:` line,
argument schema and batch size from the `tools` definition, utterances from a hash of the
messages), so the same request always gets the same answer, from any server instance.

    with ScriptedOpenAIServer(modes=["429", "ok"], latency_ms=50) as server:
        ... base_url=server.url ...
        server.total, server.counts["429"]
"""

from __future__ import annotations

import collections
import hashlib
import json
import random
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

MODES = ("ok", "ok_content", "slow", "duplicate", "429", "500", "malformed", "invalid", "reply")
SKILL_LINE = re.compile(r"^Skill: ([A-Za-z_]\w*)\(", re.MULTILINE)


class ScriptedOpenAIServer:
    """See the module docstring. Counters are updated under a lock; read them via the properties."""

    def __init__(self, modes=(), default: str = "ok", latency_ms: int = 0, slow_ms: int = 200,
                 retry_after: str = "0", jitter_ms: int = 0, reply: Callable[[dict], str | dict] | None = None):
        self.reply = reply  # the answer of "reply" mode, from the request body
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
        self._httpd = _Server(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="openai-test-server", daemon=True)
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

    def __enter__(self) -> "ScriptedOpenAIServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- answers


def _digest(body: dict) -> str:
    return hashlib.sha256(json.dumps(body.get("messages"), sort_keys=True).encode()).hexdigest()


def _prompt_text(body: dict) -> str:
    return "\n".join(str(m.get("content", "")) for m in body.get("messages", []) if isinstance(m, dict))


def _request_shape(body: dict) -> tuple[str, dict, int]:
    """(skill name, argument schema, pairs wanted) as far as the request tells them."""
    match = SKILL_LINE.search(_prompt_text(body))
    skill = match.group(1) if match else "unknown"
    arguments_schema, wanted = {}, 3
    for tool in body.get("tools") or []:
        pairs = tool.get("function", {}).get("parameters", {}).get("properties", {}).get("pairs", {})
        arguments_schema = pairs.get("items", {}).get("properties", {}).get("arguments", {})
        wanted = pairs.get("maxItems", wanted)
    return skill, arguments_schema, wanted


def _arguments(schema: dict, salt: str, number: int) -> dict:
    values = {}
    for name, spec in schema.get("properties", {}).items():
        enum, kind = spec.get("enum"), spec.get("type")
        if enum:
            values[name] = enum[number % len(enum)]
        elif kind in ("integer", "number", "boolean"):
            values[name] = {"integer": number, "number": number + 0.5, "boolean": number % 2 == 0}[kind]
        else:
            values[name] = f"thing {salt} {number}"
    return values


def good_pairs(body: dict, repeat: bool = False) -> list[dict]:
    """Pairs that fit the requested skill; distinct per request unless `repeat`."""
    skill, schema, wanted = _request_shape(body)
    salt = "same" if repeat else _digest(body)[:10]
    return [
        {"user": f"please do {skill} for case {salt} number {number}", "arguments": _arguments(schema, salt, number)}
        for number in range(wanted)
    ]


def bad_pairs(body: dict) -> list[dict]:
    """One pair per kind of misfit the generator must reject."""
    skill, _, _ = _request_shape(body)
    salt = _digest(body)[:10]
    return [
        {"user": f"unknown argument {salt}", "arguments": {"no_such_argument": "x"}},
        {"user": f"wrong function {salt}", "call": "no_such_skill()"},
        {"user": f"broken call {salt}", "call": f"{skill}(oops="},
        {"user": "   ", "arguments": {}},
    ]


def _tool_message(body: dict, pairs: list[dict], number: int) -> dict:
    tool_name = ((body.get("tools") or [{}])[0].get("function") or {}).get("name", "submit_pairs")
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{
            "id": f"call_{number}",
            "type": "function",
            "function": {"name": tool_name, "arguments": json.dumps({"pairs": pairs})},
        }],
    }


def _completion(body: dict, message: dict, number: int) -> dict:
    prompt_tokens = len(_prompt_text(body).split())
    completion_tokens = len(json.dumps(message).split())
    return {
        "id": f"chatcmpl-test-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "test-model"),
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def answer(mode: str, body: dict, number: int, retry_after: str = "0",
           reply: Callable[[dict], str | dict] | None = None) -> tuple[int, dict, dict]:
    """(status, extra headers, JSON body) for one request in `mode` (after any sleeping)."""
    if mode == "429":
        return 429, {"Retry-After": retry_after}, _error("rate limit reached (test server)", "rate_limit_error")
    if mode == "500":
        return 500, {}, _error("internal error (test server)", "server_error")
    if mode == "reply":
        result = reply(body)
        message = {"role": "assistant", **(result if isinstance(result, dict) else {"content": result})}
    elif mode == "malformed":
        message = {"role": "assistant", "content": "Sure! Here are some great examples: user asks for"}
    elif mode == "ok_content":
        text = json.dumps({"pairs": good_pairs(body)}, indent=1)
        message = {"role": "assistant", "content": f"```json\n{text}\n```"}
    elif mode == "invalid":
        message = _tool_message(body, bad_pairs(body), number)
    elif not body.get("tools"):  # ok, slow, duplicate for a client that offers no function
        message = {"role": "assistant", "content": json.dumps({"pairs": good_pairs(body, repeat=mode == "duplicate")})}
    else:  # ok, slow, duplicate
        message = _tool_message(body, good_pairs(body, repeat=mode == "duplicate"), number)
    return 200, {}, _completion(body, message, number)


def _error(message: str, kind: str) -> dict:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default listen backlog of 5 drops bursts of connects: 1 s SYN retries


def _make_handler(server: ScriptedOpenAIServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like real API servers; every reply has Content-Length
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
        timeout = 30  # an idle keep-alive connection's thread ends after this

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/_counts":  # not OpenAI's: lets another process read the counters
                self._send(200, dict(server.counts))
                return
            self._send(404, _error(f"no route GET {self.path}", "invalid_request_error"))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, _error(f"no route POST {self.path}", "invalid_request_error"))
                return
            try:
                body = json.loads(raw)
            except json.JSONDecodeError:
                self._send(400, _error("request body is not JSON", "invalid_request_error"))
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
            self._send(status, payload, headers)

    return Handler


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
