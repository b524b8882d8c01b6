"""Records and a scripted reply that the endpoint tests of eval share (test_predict, test_cli_openai)."""

from pathlib import Path

import pytest

from skilltune.calls import Call
from skilltune.jsonio import write_jsonl
from skilltune.records import chat_record

SECRET = "sk-test-predict-never-on-disk-7313"
SYSTEM = "Answer with one function call: weather, timer, or other()."
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "weather",
            "description": "Weather at a place",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
        },
    },
]


def records(n: int, style: str = "python") -> list[dict]:
    places = ["Berlin", "Paris", "Nairobi", "Lima", "Oslo", "Hanoi", "Quito", "Accra"]
    return [
        chat_record(
            SYSTEM,
            f"weather in {places[i % len(places)]} number {i}",
            Call("weather", {"location": places[i % 8]}),
            style=style,
            tools=TOOLS if style == "tools" else None,
        )
        for i in range(n)
    ]


def last_user(body: dict) -> str:
    return body["messages"][-1]["content"]


def write_split(tmp_path: Path, data: list[dict]) -> Path:
    path = tmp_path / "test.jsonl"
    write_jsonl(path, data, "record")
    return path


@pytest.fixture
def local_env(monkeypatch):
    """The client goes straight to 127.0.0.1 with a known key, whatever the environment says."""
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
