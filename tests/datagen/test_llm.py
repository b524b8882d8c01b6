"""`python -m datagen llm` against a real local OpenAI-compatible server.

No client is mocked: the real `openai` client talks HTTP to tests/openai_server.py on 127.0.0.1,
so retries, Retry-After, concurrency and caching are exercised the way a real API would. (Its
options and failures: test_cli_llm.py; review files: test_review.py; the append-only files:
tests/core/test_appendlog.py.)
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from command_runs import LLM_ENV, LLM_SECRET, assert_valid_pairs, lines, run_llm
from conftest import PACK, REPO
from openai_server import ScriptedOpenAIServer

from datagen.llm_requests import request_body
from skilltune.cache import cache_key
from skilltune.jsonio import schema_problem
from skilltune.pairs import normalize
from skilltune.skills import load_pack


@pytest.fixture
def server():
    with ScriptedOpenAIServer() as test_server:
        yield test_server


# --- the happy path, the cache, the plan


def test_ok_answers_give_the_wanted_pairs_per_skill(server, tmp_path):
    out = tmp_path / "pairs.jsonl"
    result = run_llm(server, out, "--skills", "weather,notes,other", "--per-skill", "6", "--batch", "3")
    assert result.exit_code == 0, result.output
    rows = lines(out)
    assert_valid_pairs(rows)
    assert sorted({row["skill"] for row in rows}) == ["notes", "other", "weather"]
    assert all(sum(row["skill"] == name for row in rows) == 6 for name in ("notes", "other", "weather"))
    assert {row["call"] for row in rows if row["skill"] == "other"} == {"other()"}
    assert len({normalize(row["user"]) for row in rows}) == len(rows)  # no duplicates
    assert server.total == 6  # 2 requests per skill: all candidates were good
    body = server.log[0]["body"]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "submit_pairs"}}
    assert "6 requests, 0 cache hits, 18 accepted, 0 rejected" in result.stdout


def test_rerun_with_the_same_cache_makes_no_requests_and_the_same_output(server, tmp_path):
    first, second = tmp_path / "a" / "pairs.jsonl", tmp_path / "b" / "pairs.jsonl"
    cache = tmp_path / "cache"
    args = ("--skills", "weather,timer", "--per-skill", "5", "--batch", "2")
    assert run_llm(server, first, *args, cache=cache).exit_code == 0
    made = server.total
    assert made > 0 and len(list(cache.iterdir())) == made  # one cache file per request
    server.reset_counts()
    result = run_llm(server, second, *args, cache=cache)
    assert result.exit_code == 0, result.output
    assert server.total == 0
    assert f"0 requests, {made} cache hits" in result.stdout
    assert second.read_text() == first.read_text()


def test_request_plan_is_fixed_and_keys_hold_no_secret_or_url():
    pack = load_pack(PACK)
    weather = next(skill for skill in pack if skill.name == "weather")

    def key(index=0, model="m", seed=0, batch=5):
        return cache_key(request_body(weather, pack, index, model=model, seed=seed, batch=batch))

    assert key() == key()
    assert len({key(), key(index=1), key(model="n"), key(seed=1), key(batch=4)}) == 5
    text = json.dumps(request_body(weather, pack, 0, model="m", seed=0, batch=5))
    assert "weather(location=" in text and '"additionalProperties": false' in text
    assert "http" not in text and "OPENAI" not in text


# --- retries are the client's: Retry-After, 5xx


def test_429_with_retry_after_is_retried_by_the_client(server, tmp_path):
    server.retry_after = "1"
    server.script(["429"])
    out = tmp_path / "pairs.jsonl"
    started = time.monotonic()
    result = run_llm(server, out, "--skills", "weather", "--per-skill", "3", "--batch", "3")
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert len(lines(out)) == 3
    assert server.counts == {"429": 1, "ok": 1}
    assert [entry["retry_count"] for entry in server.log] == ["0", "1"]  # one request, retried by the client
    assert elapsed >= 0.9  # Retry-After: 1 was honoured (the client's own backoff starts below 0.5 s)
    assert "1 requests" in result.stdout


def test_500_is_retried_and_too_many_500s_fail_cleanly(server, tmp_path):
    server.script(["500"])
    out = tmp_path / "pairs.jsonl"
    result = run_llm(server, out, "--skills", "weather", "--per-skill", "2", "--batch", "2")
    assert result.exit_code == 0, result.output
    assert server.counts == {"500": 1, "ok": 1} and len(lines(out)) == 2

    server.default = "500"
    failed = tmp_path / "failed.jsonl"
    result = run_llm(server, failed, "--skills", "weather", "--per-skill", "2", "--max-retries", "0")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "HTTP 500" in result.stderr
    assert not failed.exists()  # nothing was accepted, so no file at all


# --- bad answers are rejected with reasons


def test_malformed_invalid_and_duplicate_answers_go_to_rejects(server, tmp_path):
    server.script(["malformed", "invalid", "duplicate", "duplicate"])
    out = tmp_path / "pairs.jsonl"
    result = run_llm(server, out, "--skills", "weather", "--per-skill", "6", "--batch", "3", "--concurrency", "1")
    assert result.exit_code == 0, result.output
    rows = lines(out)
    assert len(rows) == 6
    assert_valid_pairs(rows)
    assert not any(word in row["user"] for row in rows for word in ("unknown", "wrong", "broken"))
    rejects = lines(Path(f"{out}.rejects.jsonl"))
    assert all(schema_problem(row, "reject") is None for row in rejects)
    reasons = [row["reason"] for row in rejects]
    for start in ("malformed JSON", "unparsable call", "empty user text", "duplicate of an accepted weather pair"):
        assert any(reason.startswith(start) for reason in reasons), (start, reasons)
    assert any("does not fit" in reason and "no_such_argument" in reason for reason in reasons)
    assert any("no_such_skill()" in reason for reason in reasons)
    assert len(rejects) == 1 + 4 + 3  # malformed answer, 4 misfits, 3 duplicates


def test_plain_content_json_in_a_fence_is_accepted(server, tmp_path):
    server.default = "ok_content"
    out = tmp_path / "pairs.jsonl"
    result = run_llm(server, out, "--skills", "notes", "--per-skill", "4", "--batch", "2")
    assert result.exit_code == 0, result.output
    assert len(lines(out)) == 4 and server.counts == {"ok_content": 2}


# --- crash safety: append-only output, resume after SIGKILL


def _cli_env() -> dict:
    env = {**os.environ, **{k: v for k, v in LLM_ENV.items() if v is not None}}
    env.pop("OPENAI_BASE_URL", None)
    return env


def _count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_sigkill_and_resume_end_with_the_pairs_of_an_uninterrupted_run(tmp_path):
    args = ["--skills", "weather,notes,timer", "--per-skill", "12", "--batch", "2", "--concurrency", "1", "--seed", "7"]
    killed = tmp_path / "killed" / "pairs.jsonl"
    with ScriptedOpenAIServer(default="slow", slow_ms=120) as server:
        command = [
            sys.executable,
            "-m",
            "datagen",
            "llm",
            "--pack",
            str(PACK),
            "--base-url",
            server.url,
            "--model",
            "test-model",
            "--out",
            str(killed),
            "--cache",
            str(killed.parent / "cache"),
            *args,
        ]
        process = subprocess.Popen(
            command, cwd=REPO, env=_cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while _count_lines(killed) < 6 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
        written = _count_lines(killed)
        assert 6 <= written < 36, "the kill should land mid-run"

        server.default = "ok"  # same answers as slow, without the wait
        resumed = run_llm(server, killed, *args)
        assert resumed.exit_code == 0, resumed.output
        fresh = tmp_path / "fresh" / "pairs.jsonl"
        assert run_llm(server, fresh, *args).exit_code == 0

    assert set(killed.read_text().splitlines()) == set(fresh.read_text().splitlines())
    assert killed.read_text() == fresh.read_text()  # even the order: acceptance follows the plan
    assert len(lines(killed)) == 36


def test_a_torn_last_line_is_cut_off_and_the_run_completes_identically(server, tmp_path):
    args = ("--skills", "weather,notes", "--per-skill", "6", "--batch", "2")
    whole = tmp_path / "whole" / "pairs.jsonl"
    assert run_llm(server, whole, *args, cache=tmp_path / "cache").exit_code == 0
    torn = tmp_path / "torn" / "pairs.jsonl"
    torn.parent.mkdir()
    text = whole.read_text()
    cut = text.index("\n", text.index("\n") + 1) + 20  # two whole lines and a piece of the third
    torn.write_text(text[:cut])
    server.reset_counts()
    result = run_llm(server, torn, *args, cache=tmp_path / "cache")
    assert result.exit_code == 0, result.output
    assert f"{torn}:3: dropped a torn last line (19 bytes," in result.stderr
    assert torn.read_text() == text
    assert server.total == 0
    assert not Path(f"{torn}.rejects.jsonl").exists()  # replaying the plan rejects nothing it accepted


PAIR_LINE = b'{"skill": "weather", "user": "rain in Oslo", "call": "weather(location=\\"Oslo\\")", "source": "llm"}'


def test_a_bad_rejects_file_stops_the_run_before_a_torn_out_line_is_cut(server, tmp_path):
    out = tmp_path / "pairs.jsonl"
    out.write_bytes(PAIR_LINE + b'\n{"skill": "wea')
    Path(f"{out}.rejects.jsonl").write_text("notes from a meeting\n")
    result = run_llm(server, out, "--skills", "weather", "--per-skill", "2")
    assert result.exit_code == 1 and ".rejects.jsonl:1: not JSON" in result.stderr
    assert out.read_bytes() == PAIR_LINE + b'\n{"skill": "wea' and server.total == 0


# --- answers of any shape: rejected or used, never a crash, never garbage in the cache


@pytest.mark.parametrize("mode", ["content_number", "content_list", "content_null", "malformed"])
def test_answers_without_a_usable_pair_fail_the_run_and_are_not_cached(server, tmp_path, mode):
    server.default = mode
    out, cache = tmp_path / "pairs.jsonl", tmp_path / "cache"
    args = ("--skills", "weather", "--per-skill", "4", "--batch", "2")
    result = run_llm(server, out, *args, cache=cache)
    assert result.exit_code == 1, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no answer gave a usable pair: 6 answers, ") and "first problem: weather: " in last
    assert "Traceback" not in result.output and not out.exists()
    assert not cache.exists() or not list(cache.iterdir())
    rejects = lines(Path(f"{out}.rejects.jsonl"))
    assert rejects and all(schema_problem(row, "reject") is None for row in rejects)

    server.default = "ok"  # a healthy server later: the requests are made again
    server.reset_counts()
    again = run_llm(server, out, *args, cache=cache)
    assert again.exit_code == 0, again.output
    assert server.total == 2 and len(lines(out)) == 4


def test_an_answer_with_an_empty_pairs_object_is_rejected_and_named(tmp_path):
    message = {
        "content": None,
        "tool_calls": [{"type": "function", "function": {"name": "submit_pairs", "arguments": {"pairs": []}}}],
    }
    with ScriptedOpenAIServer(default="reply", reply=lambda body: message) as server:
        result = run_llm(server, tmp_path / "pairs.jsonl", "--skills", "weather", "--per-skill", "2")
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "error: no answer gave a usable pair: 3 answers, 3 rejected, first problem: weather: empty answer: no pairs"
    ), last


def test_tool_call_arguments_given_as_an_object_are_used(server, tmp_path):
    server.default = "arguments_object"
    out = tmp_path / "pairs.jsonl"
    result = run_llm(server, out, "--skills", "weather,timer", "--per-skill", "4", "--batch", "2")
    assert result.exit_code == 0, result.output
    assert_valid_pairs(lines(out))
    assert len(lines(out)) == 8 and server.total == 4


@pytest.mark.parametrize(
    "stored",
    [
        {"choices": [{"message": {"content": 42}}]},  # cached by earlier versions, which then crashed on it
        {"choices": [{"message": {"tool_calls": [{"function": {"arguments": {"x": 1}}}]}}]},
        {"choices": "none"},
    ],
)
def test_a_cached_answer_without_a_usable_pair_is_a_miss(server, tmp_path, stored):
    pack = load_pack(PACK)
    weather = next(skill for skill in pack if skill.name == "weather")
    body = request_body(weather, pack, 0, model="test-model", seed=0, batch=2)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / f"{cache_key(body)}.json").write_text(json.dumps({"request": body, "response": stored}))
    out = tmp_path / "pairs.jsonl"
    result = run_llm(server, out, "--skills", "weather", "--per-skill", "2", "--batch", "2", cache=cache)
    assert result.exit_code == 0, result.output
    assert server.total == 1 and len(lines(out)) == 2
    assert "0 cache hits" in result.stdout


# --- concurrency


def test_concurrency_8_is_much_faster_than_1(tmp_path):
    args = ("--skills", "weather,notes,timer,news", "--per-skill", "16", "--batch", "2")

    def throughput(concurrency: int) -> float:
        """Requests per second while the server was busy (client start-up and imports left out)."""
        with ScriptedOpenAIServer(latency_ms=50) as server:
            out = tmp_path / f"c{concurrency}" / "pairs.jsonl"
            result = run_llm(server, out, *args, "--concurrency", str(concurrency))
            assert result.exit_code == 0, result.output
            assert server.total == 32
            return server.total / server.busy_seconds()

    serial, parallel = throughput(1), throughput(8)
    assert parallel >= 3 * serial, (serial, parallel)


def test_a_slow_answer_does_not_hold_up_the_other_slots(tmp_path):
    """A sliding window: while one request is slow, the other slots keep sending, never more than --concurrency."""
    args = ("--skills", "weather,notes,timer,news", "--per-skill", "16", "--batch", "2", "--concurrency", "4")
    with ScriptedOpenAIServer(modes=["slow"], slow_ms=1500, latency_ms=20) as server:
        result = run_llm(server, tmp_path / "pairs.jsonl", *args)
        assert result.exit_code == 0, result.output
        log, peak = server.log, server.peak_in_flight()
    assert len(log) == 32
    slow = next(entry for entry in log if entry["mode"] == "slow")
    during = [e for e in log if e is not slow and slow["arrived"] < e["answered"] < slow["answered"]]
    assert len(during) >= 24, len(during)  # in waves of 2 x 4 it would be 7
    assert peak == 4


def test_acceptance_order_does_not_depend_on_answer_timing(tmp_path):
    """Answers come back in random order; the files are still identical, line for line."""
    args = ("--skills", "weather,notes,other", "--per-skill", "9", "--batch", "2", "--concurrency", "8")
    texts = []
    for attempt in range(2):
        with ScriptedOpenAIServer(jitter_ms=40) as server:
            out = tmp_path / str(attempt) / "pairs.jsonl"
            assert run_llm(server, out, *args).exit_code == 0
            texts.append(out.read_text())
    assert texts[0] == texts[1] and len(texts[0].splitlines()) == 27


# --- the API key stays in memory


def test_the_api_key_is_sent_but_never_written(server, tmp_path):
    out = tmp_path / "pairs.jsonl"
    result = run_llm(
        server, out, "--skills", "weather", "--per-skill", "2", "--batch", "2", "--review", str(tmp_path / "review")
    )
    assert result.exit_code == 0, result.output
    assert server.log[0]["authorization"] == f"Bearer {LLM_SECRET}"
    assert LLM_SECRET not in result.output
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert len(files) >= 3  # pairs, cache, review
    assert all(LLM_SECRET.encode() not in path.read_bytes() for path in files)
