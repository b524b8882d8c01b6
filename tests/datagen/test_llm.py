"""`python -m datagen llm` and `merge-review` against a real local OpenAI-compatible server.

No client is mocked: the real `openai` client talks HTTP to tests/openai_server.py on 127.0.0.1,
so retries, Retry-After, concurrency and caching are exercised the way a real API would.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from openai_server import ScriptedOpenAIServer

from skilltune.calls import parse_call
from skilltune.pairs import normalize
from skilltune.jsonio import schema_problem
from datagen.llm import llm_command, merge_review_command, request_body
from skilltune.cache import cache_key
from skilltune.skills import load_pack, parse_skill_file
from conftest import REPO

PACK = REPO / "examples" / "skills"
SECRET = "sk-test-never-on-disk-4242"
# the client must go straight to 127.0.0.1, whatever proxy the environment names
LOCAL_ENV = {"OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": None, "NO_PROXY": "127.0.0.1,localhost",
             "no_proxy": "127.0.0.1,localhost"}


@pytest.fixture
def server():
    with ScriptedOpenAIServer() as test_server:
        yield test_server


def run_llm(server, out: Path | None, *args: str, cache: Path | None = None):
    """Run the llm command in-process; returns click's Result."""
    options = ["--pack", str(PACK), "--base-url", server.url, "--model", "test-model", "--max-retries", "3",
               "--timeout", "10", *args]
    if out is not None:
        options += ["--out", str(out), "--cache", str(cache or out.parent / "cache")]
    return CliRunner().invoke(llm_command, options, env=LOCAL_ENV)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_valid_pairs(rows: list[dict]) -> None:
    """Every line fits pair.schema.json and its call fits its skill."""
    skills = {skill.name: skill for skill in load_pack(PACK)}
    for row in rows:
        assert schema_problem(row, "pair") is None, row
        assert skills[row["skill"]].check_call(parse_call(row["call"])) is None, row


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
    env = {**os.environ, **{k: v for k, v in LOCAL_ENV.items() if v is not None}}
    env.pop("OPENAI_BASE_URL", None)
    return env


def _count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_sigkill_and_resume_end_with_the_pairs_of_an_uninterrupted_run(tmp_path):
    args = ["--skills", "weather,notes,timer", "--per-skill", "12", "--batch", "2", "--concurrency", "1", "--seed", "7"]
    killed = tmp_path / "killed" / "pairs.jsonl"
    with ScriptedOpenAIServer(default="slow", slow_ms=120) as server:
        command = [sys.executable, "-m", "datagen", "llm", "--pack", str(PACK), "--base-url", server.url,
                   "--model", "test-model", "--out", str(killed), "--cache", str(killed.parent / "cache"), *args]
        process = subprocess.Popen(command, cwd=REPO, env=_cli_env(), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
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


def test_a_valid_last_line_without_its_newline_is_kept_not_cut(server, tmp_path):
    args = ("--skills", "weather,notes", "--per-skill", "4", "--batch", "2")
    cache = tmp_path / "cache"
    whole = tmp_path / "whole" / "pairs.jsonl"
    assert run_llm(server, whole, *args, cache=cache).exit_code == 0
    text = whole.read_text()
    partial = tmp_path / "partial" / "pairs.jsonl"
    partial.parent.mkdir()
    partial.write_text("\n".join(text.splitlines()[:3]))  # three whole pairs, the last without "\n"
    server.reset_counts()
    result = run_llm(server, partial, *args, cache=cache)
    assert result.exit_code == 0, result.output
    assert "dropped" not in result.stderr
    assert partial.read_text() == text and server.total == 0
    assert "(3 pairs were already there)" in result.stdout


def test_a_torn_line_ending_inside_a_character_is_dropped(server, tmp_path):
    args = ("--skills", "weather", "--per-skill", "4", "--batch", "2")
    cache = tmp_path / "cache"
    whole = tmp_path / "whole" / "pairs.jsonl"
    assert run_llm(server, whole, *args, cache=cache).exit_code == 0
    torn = tmp_path / "torn" / "pairs.jsonl"
    torn.parent.mkdir()
    first = whole.read_bytes().split(b"\n")[0] + b"\n"
    tail = '{"skill": "weather", "user": "Z\u00fc'.encode()[:-1]  # half of the ü
    torn.write_bytes(first + tail)
    result = run_llm(server, torn, *args, cache=cache)
    assert result.exit_code == 0, result.output
    assert f"{torn}:2: dropped a torn last line ({len(tail)} bytes," in result.stderr
    assert torn.read_bytes() == whole.read_bytes()


PAIR_LINE = b'{"skill": "weather", "user": "rain in Oslo", "call": "weather(location=\\"Oslo\\")", "source": "llm"}'
REJECT_LINE = b'{"skill": "weather", "candidate": null, "reason": "empty answer"}'


@pytest.mark.parametrize("option", ["--out", "--rejects"])
@pytest.mark.parametrize(
    "content, message",
    [
        (b"hello world", ":1: not JSON"),  # one line of text, no newline: was cut to 0 bytes
        (b"[1, 2]\n", ":1: not a "),
        (b"VALID\n" + b'{"skill": "caf\xe9"}\n', ":2: not UTF-8"),
        (b"VALID\nnot json either", ":2: not JSON"),  # no newline, but not a torn line of ours
        (b'VALID\n{"skill": "weather"}', ":2: not a "),  # whole JSON without a newline: not torn
        (b'{"skill": "weath', ":1: not JSON"),  # nothing valid before it: the file may not be ours
    ],
)
def test_an_existing_file_that_is_not_our_jsonl_fails_and_is_left_untouched(server, tmp_path, option, content,
                                                                               message):
    target = tmp_path / "mine.txt"
    content = content.replace(b"VALID", PAIR_LINE if option == "--out" else REJECT_LINE)  # a valid first line
    target.write_bytes(content)
    extra = [] if option == "--out" else ["--rejects", str(target)]
    out = tmp_path / "pairs.jsonl" if option == "--rejects" else target
    result = run_llm(server, out, "--skills", "weather", "--per-skill", "2", *extra)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {target}{message}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert target.read_bytes() == content and server.total == 0
    if option == "--rejects":
        assert not out.exists()


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
    message = {"content": None, "tool_calls": [{"type": "function",
                                                "function": {"name": "submit_pairs", "arguments": {"pairs": []}}}]}
    with ScriptedOpenAIServer(default="reply", reply=lambda body: message) as server:
        result = run_llm(server, tmp_path / "pairs.jsonl", "--skills", "weather", "--per-skill", "2")
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no answer gave a usable pair: 3 answers, 3 rejected, "
                           "first problem: weather: empty answer: no pairs"), last


def test_tool_call_arguments_given_as_an_object_are_used(server, tmp_path):
    server.default = "arguments_object"
    out = tmp_path / "pairs.jsonl"
    result = run_llm(server, out, "--skills", "weather,timer", "--per-skill", "4", "--batch", "2")
    assert result.exit_code == 0, result.output
    assert_valid_pairs(lines(out))
    assert len(lines(out)) == 8 and server.total == 4


@pytest.mark.parametrize("stored", [
    {"choices": [{"message": {"content": 42}}]},  # cached by earlier versions, which then crashed on it
    {"choices": [{"message": {"tool_calls": [{"function": {"arguments": {"x": 1}}}]}}]},
    {"choices": "none"},
])
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
    result = run_llm(server, out, "--skills", "weather", "--per-skill", "2", "--batch", "2",
                     "--review", str(tmp_path / "review"))
    assert result.exit_code == 0, result.output
    assert server.log[0]["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in result.output
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert len(files) >= 3  # pairs, cache, review
    assert all(SECRET.encode() not in path.read_bytes() for path in files)


# --- errors


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--per-skill", "0"], "'--per-skill': 0 is not in the range x>=1"),
        (["--batch", "many"], "'many' is not a valid integer"),
        (["--concurrency", "0"], "'--concurrency': 0 is not in the range x>=1"),
        (["--max-retries", "-1"], "'--max-retries': -1 is not in the range x>=0"),
        (["--timeout", "0"], "'--timeout': 0 is not a number of seconds more than 0"),
        (["--timeout", "inf"], "'--timeout': inf is not a number of seconds more than 0"),
        (["--timeout", "nan"], "'--timeout': nan is not a number of seconds more than 0"),
        (["--base-url", "http://127.0.0.1:99999/v1"], "Port out of range"),
        (["--base-url", "http://127.0.0.1:port/v1"], "--base-url 'http://127.0.0.1:port/v1'"),
        (["--skills", "weather,nosuch"], "no skill named nosuch"),
        (["--model", ""], "--model is required"),
    ],
)
def test_bad_options_fail_with_one_error_line(server, tmp_path, args, message):
    out = tmp_path / "pairs.jsonl"
    result = run_llm(server, out, *args)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert server.total == 0 and not out.exists()


def test_output_places_that_cannot_be_written_fail_before_any_request(server, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("mine\n")
    for args in (["--out", str(blocker / "pairs.jsonl")], ["--out", str(tmp_path / "p.jsonl"), "--review",
                                                            str(blocker / "review")],
                 ["--out", str(tmp_path / "p.jsonl"), "--cache", str(blocker / "cache")]):
        result = CliRunner().invoke(llm_command, ["--pack", str(PACK), "--base-url", server.url, "--model", "m",
                                                  "--skills", "weather", "--per-skill", "2", *args], env=LOCAL_ENV)
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1, args
        assert str(blocker) in result.stderr and "not a folder" in result.stderr
        assert server.total == 0 and blocker.read_text() == "mine\n"


def test_review_into_the_pack_folder_is_refused(server, tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(PACK, pack)
    before = {path.name: path.read_bytes() for path in pack.iterdir()}
    result = CliRunner().invoke(llm_command, ["--pack", str(pack), "--base-url", server.url, "--model", "m",
                                              "--skills", "weather", "--per-skill", "2", "--review", str(pack)],
                                env=LOCAL_ENV)
    assert result.exit_code == 1 and "is the skill pack" in result.stderr
    assert {path.name: path.read_bytes() for path in pack.iterdir()} == before and server.total == 0


def test_unreachable_server_fails_cleanly(tmp_path):
    out = tmp_path / "pairs.jsonl"
    port = _closed_port()
    result = CliRunner().invoke(llm_command, [
        "--pack", str(PACK), "--base-url", f"http://127.0.0.1:{port}/v1", "--model", "m",
        "--out", str(out), "--cache", str(tmp_path / "cache"), "--max-retries", "0", "--skills", "weather",
    ], env=LOCAL_ENV)
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(rf"error: cannot reach http://127\.0\.0\.1:{port}/v1 \(weather request \d+; --max-retries 0\): "
                        r"connection refused \(nothing listens there\)", last), last
    assert "timed out" not in last.lower()
    assert not out.exists() and not Path(f"{out}.rejects.jsonl").exists()


def test_a_server_that_does_not_answer_in_time_is_a_timeout_not_a_refusal(tmp_path):
    with ScriptedOpenAIServer(default="slow", slow_ms=3000) as server:
        out = tmp_path / "pairs.jsonl"
        result = run_llm(server, out, "--skills", "weather", "--max-retries", "0", "--timeout", "0.5")
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: no answer from {server.url} within 0.5 s (timed out) (weather request "), last
    assert not out.exists()


@pytest.mark.parametrize("mode, message", [
    ("short_body", "was cut short: Not enough data to satisfy content length header"),
    ("cut_json", "the answer is not JSON (cut short?): "),
])
def test_a_truncated_response_body_is_one_line_naming_the_endpoint(server, tmp_path, mode, message):
    server.default = mode
    out = tmp_path / "pairs.jsonl"
    result = run_llm(server, out, "--skills", "weather", "--max-retries", "0")
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and server.url in last and message in last, last
    assert "Traceback" not in result.output and not out.exists()
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_credentials_in_the_base_url_are_one_error_that_never_shows_the_password(server, tmp_path):
    out = tmp_path / "pairs.jsonl"
    url = server.url.replace("http://", "http://user:hunter2-secret@")
    result = CliRunner().invoke(llm_command, ["--pack", str(PACK), "--base-url", url, "--model", "m",
                                              "--out", str(out), "--skills", "weather"], env=LOCAL_ENV)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --base-url 'http://***@127.0.0.1:")
    assert "user or password in the URL is not supported" in result.stderr
    assert "hunter2" not in result.output and len(result.stderr.strip().splitlines()) == 1
    assert server.total == 0 and not out.exists()


# --- review files and merge-review


def test_review_then_merge_review_adds_the_kept_new_examples(server, tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(PACK, pack)
    review = tmp_path / "review"
    result = CliRunner().invoke(llm_command, [
        "--pack", str(pack), "--base-url", server.url, "--model", "m", "--cache", str(tmp_path / "cache"),
        "--review", str(review), "--skills", "weather,notes", "--per-skill", "4", "--batch", "2",
    ], env=LOCAL_ENV)
    assert result.exit_code == 0, result.output
    reviewed = parse_skill_file(review / "weather.txt")
    assert len(reviewed.examples) == 4 and len(parse_skill_file(review / "notes.txt").examples) == 4

    # the person drops the last pair and adds one the pack already has
    text = (review / "weather.txt").read_text().splitlines()[:-2]
    text += ["### User: What's the weather in Berlin?", '### Assistant: weather(location="Berlin")']
    (review / "weather.txt").write_text("\n".join(text) + "\n")
    before = {skill.name: len(skill.examples) for skill in load_pack(pack)}
    original = (pack / "weather.txt").read_text()

    merged = CliRunner().invoke(merge_review_command, [str(review), "--pack", str(pack)])
    assert merged.exit_code == 0, merged.output
    after = {skill.name: skill for skill in load_pack(pack)}
    assert len(after["weather"].examples) == before["weather"] + 3
    assert len(after["notes"].examples) == before["notes"] + 4
    assert (pack / "weather.txt").read_text().startswith(original)  # appended, nothing else touched
    assert [e.user for e in after["weather"].examples[-3:]] == [e.user for e in reviewed.examples[:3]]

    again = CliRunner().invoke(merge_review_command, [str(review), "--pack", str(pack)])
    assert again.exit_code == 0 and "0 examples added" in again.stdout


def test_merge_review_rejects_a_bare_user_line_with_file_and_line(tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(PACK, pack)
    review = tmp_path / "review"
    review.mkdir()
    (review / "weather.txt").write_text(
        '#### Prompt:\nweather(location="[location]")\n\n#### Examples:\n'
        "User: is it hot in Lima\n"  # line 5: no '### '
        '### Assistant: weather(location="Lima")\n'
    )
    before = (pack / "weather.txt").read_text()
    result = CliRunner().invoke(merge_review_command, [str(review), "--pack", str(pack)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {review / 'weather.txt'}:5: ")
    assert (pack / "weather.txt").read_text() == before
