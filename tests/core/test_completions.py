"""skilltune/completions.py: the cached chat-completions client of datagen llm and datagen documents
(their whole runs against the scripted server are in tests/datagen/)."""

import asyncio
import json

import pytest
from command_runs import local_env
from openai_server import ScriptedOpenAIServer

from skilltune.cache import ResponseCache, cache_key
from skilltune.completions import CachedCompletions, CompletionCounts, EndpointBackend, unfence
from skilltune.openai_api import EndpointError

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def answer(text: str) -> dict:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}


class CountingBackend:
    """Answers every body with `reply`, counting the requests and the times it was opened."""

    def __init__(self, reply: dict):
        self.reply, self.bodies, self.opened = reply, [], 0

    async def __aenter__(self):
        self.opened += 1
        return self

    async def __aexit__(self, *exc):
        return None

    async def complete(self, body: dict, what: str) -> dict:
        self.bodies.append(body)
        return self.reply


def complete_all(completions: CachedCompletions, bodies: list[dict], **options) -> list[dict]:
    async def run():
        async with completions:
            return [await completions.complete(body, "test request", **options) for body in bodies]

    return asyncio.run(run())


def test_an_answer_is_cached_by_its_body_and_a_rerun_sends_nothing(tmp_path):
    backend = CountingBackend(answer("hello"))
    first = CachedCompletions(backend, ResponseCache(tmp_path))
    assert complete_all(first, [BODY, BODY]) == [answer("hello")] * 2
    assert (first.counts.requests, first.counts.cache_hits) == (1, 1) and backend.opened == 1
    stored = json.loads((tmp_path / f"{cache_key(BODY)}.json").read_text())
    assert stored == {"request": BODY, "response": answer("hello")}  # the format existing caches have

    again = CachedCompletions(backend, ResponseCache(tmp_path))
    assert complete_all(again, [BODY]) == [answer("hello")]
    assert (again.counts.requests, again.counts.cache_hits) == (0, 1) and len(backend.bodies) == 1


def test_only_usable_answers_are_cached_and_a_cached_unusable_one_is_a_miss(tmp_path):
    def usable(response):
        return response["choices"][0]["message"]["content"] != "garbage"

    ResponseCache(tmp_path).put(cache_key(BODY), BODY, answer("garbage"))  # left by an older version
    garbage = CachedCompletions(CountingBackend(answer("garbage")), ResponseCache(tmp_path))
    assert complete_all(garbage, [BODY, BODY], usable=usable) == [answer("garbage")] * 2  # returned, to be judged
    assert (garbage.counts.requests, garbage.counts.cache_hits) == (2, 0)
    assert ResponseCache(tmp_path).get(cache_key(BODY)) == answer("garbage")  # not replaced by garbage

    healthy = CachedCompletions(CountingBackend(answer("good")), ResponseCache(tmp_path))
    assert complete_all(healthy, [BODY, BODY], usable=usable) == [answer("good")] * 2
    assert (healthy.counts.requests, healthy.counts.cache_hits) == (1, 1)


def test_counts_are_the_callers_own_statistics(tmp_path):
    class RunStats(CompletionCounts):
        pass

    stats = RunStats()
    complete_all(CachedCompletions(CountingBackend(answer("x")), ResponseCache(tmp_path), stats), [BODY])
    assert (stats.requests, stats.cache_hits) == (1, 0)


@pytest.mark.parametrize(
    "text, inside",
    [
        ('```json\n{"a": 1}\n```', '{"a": 1}'),
        ('```\n["x"]\n```', '["x"]'),
        ("```json {}```", "{}"),
        ('{"a": 1}', '{"a": 1}'),  # no fence: the text as it is
        ('```json\n{"a": 1}', '```json\n{"a": 1}'),  # no closing fence
        ("see ```json\n{}\n```", "see ```json\n{}\n```"),  # the fence must hold the whole text
    ],
)
def test_unfence_takes_what_a_fence_around_the_whole_text_holds(text, inside):
    assert unfence(text) == inside


def test_the_endpoint_backend_answers_and_a_failure_names_the_request(monkeypatch):
    for name, value in local_env("sk-test-completions").items():  # None: not set at all
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)

    async def ask(url: str) -> dict:
        async with EndpointBackend(url, 0, 10) as backend:
            return await backend.complete(BODY, "greeting 1")

    with ScriptedOpenAIServer(default="reply", reply=lambda body: "hello") as server:
        assert asyncio.run(ask(server.url))["choices"][0]["message"]["content"] == "hello"
    with ScriptedOpenAIServer(default="500") as failing:
        with pytest.raises(EndpointError, match=r"answered HTTP 500 \(greeting 1; --max-retries 0\)"):
            asyncio.run(ask(failing.url))
