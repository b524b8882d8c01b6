"""`python -m skilltune.serve` on the embedded model's export, started and stopped by the test on
127.0.0.1, scored by `eval run --backend openai` like any endpoint."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from conftest import REPO, run_module
from embedded_export import embedded_export

from skilltune.serve_chat import answer_text_calls

STARTUP_S = 180


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def chat(base_url: str, body: dict) -> dict:
    request = urllib.request.Request(
        base_url + "/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def served():
    """(base URL, the export) of a server this fixture starts, and stops after the module."""
    exported = embedded_export()
    port = free_port()
    command = [sys.executable, "-m", "skilltune.serve", "--export", str(exported.export), "--port", str(port)]
    log = open(exported.root / f"server-{port}.log", "w+")  # noqa: SIM115 - read back when it fails to start
    server = subprocess.Popen(
        command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if server.poll() is not None:
                log.seek(0)
                pytest.fail(f"the server exited with {server.returncode}: {log.read()[-2000:]}")
            try:
                get(base_url + "/models")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    pytest.fail(f"the server did not answer within {STARTUP_S} s")
                time.sleep(0.5)
        yield base_url, exported
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    with socket.socket() as probe:  # stopped: the port is free again
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_lists_the_model_under_its_run_name(served):
    base_url, exported = served
    assert [model["id"] for model in get(base_url + "/models")["data"]] == [exported.export.parent.name]


def skill_names(exported) -> list[str]:
    return [tool["function"]["name"] for tool in json.loads((exported.export / "tools.json").read_text())]


def test_eval_run_scores_the_server(served, tmp_path):
    base_url, exported = served
    test_file = exported.root / "data" / "test.jsonl"
    out = tmp_path / "eval"
    done = run_module(
        "eval", "run", "--backend", "openai", "--base-url", base_url, "--model", "smollm2",
        "--test", test_file, "--out", out, "--limit", "5", "--max-new-tokens", "24",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((out / "report.json").read_text())["tuned"]["n"] == 5
    rows = [json.loads(line) for line in (out / "predictions-tuned.jsonl").read_text().splitlines()]
    # the untuned base model writes prose when free; behind the server every answer is a call of
    # the pack (the grammar applies to each request that brings none)
    starts = tuple(f"{name}(" for name in skill_names(exported))
    assert len(rows) == 5 and all(row["output"].startswith(starts) for row in rows), [row["output"] for row in rows]


def test_grammar_leaves_only_whole_calls_or_cut_ones(served):
    """With the grammar an answer that stops is a call that parses; the only other answer is one cut
    at max_tokens (the untuned model may repeat inside a string until then): 0 % parse failures for
    a model that stops, as a tuned one does."""
    base_url, exported = served
    finished = 0
    for record in exported.test_records[:8]:
        body = {"model": "smollm2", "messages": record["messages"][:-1], "temperature": 0, "max_tokens": 48}
        choice = chat(base_url, body)["choices"][0]
        text = choice["message"]["content"]
        if choice["finish_reason"] == "stop":
            finished += 1
            calls = answer_text_calls(text)
            assert calls and calls[0].name in skill_names(exported), text
        else:
            assert choice["finish_reason"] == "length" and text.startswith(tuple(skill_names(exported))), text
    assert finished >= 4


def test_a_request_with_tools_gets_tool_calls(served):
    base_url, exported = served
    tools = json.loads((exported.export / "tools.json").read_text())
    body = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": "what's the weather in Paris"}],
        "temperature": 0,
        "max_tokens": 24,
        "tools": tools,
        # the request's own grammar wins over the pack's: this one admits a single answer
        "grammar": 'root ::= "weather(location=\\"Paris\\")"',
    }
    choice = chat(base_url, body)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "Paris"}
    without_tools = chat(base_url, {key: value for key, value in body.items() if key != "tools"})["choices"][0]
    assert without_tools["message"]["content"] == 'weather(location="Paris")'
    assert not without_tools["message"].get("tool_calls")


def test_greedy_by_default_with_no_repeat_penalty(served):
    base_url, _ = served
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/openapi.json", timeout=10) as response:
        schema = json.loads(response.read())["components"]["schemas"]["CreateChatCompletionRequest"]
    assert schema["properties"]["repeat_penalty"]["default"] == 1.0
