"""`python -m skilltune.hub REPO_ID` against a real HTTP server on 127.0.0.1 playing the Hugging Face Hub.

The command runs as a subprocess with HF_ENDPOINT pointing at `FakeHub`, so huggingface_hub's own
`auth_check` makes the request (GET /api/models/{repo_id}/auth-check) and its own `hf_raise_for_status`
turns the scripted answers into GatedRepoError / RepositoryNotFoundError. HF_HOME and HF_HUB_CACHE
are fresh temporary folders, so neither a stored token nor a real cache of this machine is used.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import REPO

TOKEN = "hf_skilltuneMadeUpToken0123456789abcdef"  # never a real token; must never be printed
AUTH_CHECK = re.compile(r"^/api/models/(.+)/auth-check$")
# how each mode answers auth-check: status, X-Error-Code, X-Error-Message
ANSWERS = {
    "ok": (200, None, None),
    "gated": (403, "GatedRepo", "Access to this model is restricted. You must have access to it and be authenticated."),
    "gated401": (401, "GatedRepo", "Access to this model is restricted. You must be authenticated."),
    "missing": (404, "RepoNotFound", "Repository not found"),
    "bad_token": (401, None, "Invalid credentials in Authorization header"),
    "500": (500, None, "Internal Error"),
}


class FakeHub:
    """The Hub's auth-check endpoint, answering per repo id from `repos` (repo id -> mode; "missing" when
    unlisted; "hang" never answers until the server stops). Every request is kept in `requests` as
    (method, path, Authorization header or None)."""

    def __init__(self):
        self.repos: dict[str, str] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self._stop = threading.Event()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                hub.requests.append((self.command, self.path, self.headers.get("Authorization")))
                match = AUTH_CHECK.match(self.path)
                mode = hub.repos.get(match.group(1), "missing") if match else "missing"
                if mode == "hang":
                    hub._stop.wait(60)
                    return
                status, code, message = ANSWERS[mode]
                body = b"{}" if status == 200 else f'{{"error": "{message}"}}'.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if code:
                    self.send_header("X-Error-Code", code)
                if message:
                    self.send_header("X-Error-Message", message)
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_POST = do_GET

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def hub():
    with FakeHub() as server:
        yield server


@pytest.fixture
def closed_port():
    """A port bound on 127.0.0.1 but not listening: connecting is refused, and nothing else can take it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def cache(tmp_path) -> Path:
    path = tmp_path / "hub"
    path.mkdir()
    return path


@pytest.fixture
def check(tmp_path, cache):
    """check(repo_id, endpoint, **env) -> the finished `python -m skilltune.hub repo_id`, run against `endpoint`
    with an empty HF_HOME and the `cache` HF_HUB_CACHE; env adds variables (None removes one)."""

    def run(repo_id: str, endpoint: str, timeout: float = 60, **env: str | None) -> subprocess.CompletedProcess:
        environment = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("HF_", "HUGGING_FACE_"))
            and name != "TRANSFORMERS_OFFLINE"
            and not name.lower().endswith("_proxy")
        }  # conftest's HF_HUB_OFFLINE=1 too
        environment |= {
            "HF_ENDPOINT": endpoint,
            "HF_HUB_CACHE": str(cache),
            "HF_HOME": str(tmp_path / "home"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
        }
        for name, value in env.items():
            if value is None:
                environment.pop(name, None)
            else:
                environment[name] = value
        return subprocess.run(
            [sys.executable, "-m", "skilltune.hub", repo_id],
            cwd=REPO,
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one line a failed check says, after checking it failed with exactly that on stderr."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def put_in_cache(cache: Path, repo_id: str) -> None:
    """The layout huggingface_hub leaves after downloading `repo_id`'s config.json at main."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    folder = cache / f"models--{repo_id.replace('/', '--')}"
    (folder / "snapshots" / commit).mkdir(parents=True)
    (folder / "snapshots" / commit / "config.json").write_text('{"model_type": "llama"}\n')
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(commit)


@pytest.mark.parametrize("mode", ["gated", "gated401"])
def test_a_gated_repo_without_a_token_asks_for_hf_token(hub, check, mode):
    hub.repos["org/gated"] = mode
    line = error_line(check("org/gated", hub.url))
    assert "org/gated" in line and "gated" in line and "set HF_TOKEN" in line
    assert hub.requests == [("GET", "/api/models/org/gated/auth-check", None)]  # no stored token was sent


def test_a_gated_repo_the_token_cannot_open_says_no_access_yet_and_never_prints_the_token(hub, check):
    hub.repos["org/gated"] = "gated"
    result = check("org/gated", hub.url, HF_TOKEN=TOKEN)
    line = error_line(result)
    assert "org/gated" in line and "HF_TOKEN has no access yet" in line
    assert hub.requests == [("GET", "/api/models/org/gated/auth-check", f"Bearer {TOKEN}")]
    assert TOKEN not in result.stdout + result.stderr


def test_a_token_the_hub_rejects_is_named_and_never_printed(hub, check):
    hub.repos["org/model"] = "bad_token"
    result = check("org/model", hub.url, HF_TOKEN=TOKEN)
    line = error_line(result)
    assert "org/model" in line and "does not accept HF_TOKEN" in line and "cannot reach" not in line
    assert hub.requests == [("GET", "/api/models/org/model/auth-check", f"Bearer {TOKEN}")]
    assert TOKEN not in result.stdout + result.stderr


def test_an_unknown_repo_is_no_such_model(hub, check):
    line = error_line(check("org/nothing-here", hub.url))
    assert "org/nothing-here" in line and "no such model" in line
    assert [path for _, path, _ in hub.requests] == ["/api/models/org/nothing-here/auth-check"]


def test_an_error_answer_is_reported_in_one_line(hub, check):
    hub.repos["org/model"] = "500"
    line = error_line(check("org/model", hub.url))
    assert "org/model" in line and "answered with an error" in line and "500" in line


def test_an_accessible_repo_downloads_into_the_cache_on_first_load(hub, check, cache):
    hub.repos["org/open"] = "ok"
    result = check("org/open", hub.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"org/open: downloads on first load into {cache}\n"
    assert hub.requests == [("GET", "/api/models/org/open/auth-check", None)]


def test_a_hub_that_refuses_connections_cannot_be_reached(check, closed_port):
    started = time.monotonic()
    line = error_line(check("org/model", f"http://127.0.0.1:{closed_port}", HF_HUB_ETAG_TIMEOUT="2"))
    assert "org/model" in line and "cannot reach the Hugging Face Hub" in line
    assert time.monotonic() - started < 30


def test_a_hub_that_never_answers_times_out(hub, check):
    hub.repos["org/model"] = "hang"
    started = time.monotonic()
    line = error_line(check("org/model", hub.url, timeout=30, HF_HUB_ETAG_TIMEOUT="1"))
    assert "org/model" in line and "cannot reach the Hugging Face Hub" in line
    assert time.monotonic() - started < 30
    assert len(hub.requests) == 1


def test_offline_and_not_cached_fails_without_a_request(hub, check):
    hub.repos["org/open"] = "ok"
    line = error_line(check("org/open", hub.url, HF_HUB_OFFLINE="1"))
    assert "org/open" in line and "HF_HUB_OFFLINE=1" in line
    assert hub.requests == []


@pytest.mark.parametrize("offline", ["1", None])
def test_a_cached_repo_is_fine_without_asking_the_hub(hub, check, cache, offline):
    hub.repos["org/gated"] = "gated"  # what the hub would say, if asked
    put_in_cache(cache, "org/gated")
    result = check("org/gated", hub.url, HF_HUB_OFFLINE=offline)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"org/gated: in the cache {cache}\n"
    assert hub.requests == []


def test_a_malformed_repo_id_fails_in_one_line_without_a_request(hub, check):
    line = error_line(check("org/name/extra", hub.url))
    assert "org/name/extra" in line and "not a Hugging Face model id" in line
    assert hub.requests == []
