"""The options and failures of `python -m datagen llm` (datagen/cli/llm.py): one `error: ...` line,
before any request when the options are at fault, naming the endpoint when it is."""

import json
import re
import shutil
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from command_runs import LLM_ENV, LLM_SECRET, lines, run_llm
from conftest import PACK
from openai_server import ScriptedOpenAIServer

from datagen.cli.llm import llm_command
from datagen.llm import reason_kind
from skilltune.jsonio import schema_problem


@pytest.fixture
def server():
    with ScriptedOpenAIServer() as test_server:
        yield test_server


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
        (["--judge-base-url", "http://127.0.0.1:1/v1"], "--judge-base-url needs --judge-model"),
        (["--judge-model", "j", "--judge-base-url", "ftp://x"], "--judge-base-url 'ftp://x': expected http://"),
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
    for args in (
        ["--out", str(blocker / "pairs.jsonl")],
        ["--out", str(tmp_path / "p.jsonl"), "--review", str(blocker / "review")],
        ["--out", str(tmp_path / "p.jsonl"), "--cache", str(blocker / "cache")],
    ):
        result = CliRunner().invoke(
            llm_command,
            [
                "--pack",
                str(PACK),
                "--base-url",
                server.url,
                "--model",
                "m",
                "--skills",
                "weather",
                "--per-skill",
                "2",
                *args,
            ],
            env=LLM_ENV,
        )
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1, args
        assert str(blocker) in result.stderr and "not a folder" in result.stderr
        assert server.total == 0 and blocker.read_text() == "mine\n"


def test_review_into_the_pack_folder_is_refused(server, tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(PACK, pack)
    before = {path.name: path.read_bytes() for path in pack.iterdir()}
    result = CliRunner().invoke(
        llm_command,
        [
            "--pack",
            str(pack),
            "--base-url",
            server.url,
            "--model",
            "m",
            "--skills",
            "weather",
            "--per-skill",
            "2",
            "--review",
            str(pack),
        ],
        env=LLM_ENV,
    )
    assert result.exit_code == 1 and "is the skill pack" in result.stderr
    assert {path.name: path.read_bytes() for path in pack.iterdir()} == before and server.total == 0


def test_unreachable_server_fails_cleanly(tmp_path):
    out = tmp_path / "pairs.jsonl"
    port = _closed_port()
    result = CliRunner().invoke(
        llm_command,
        [
            "--pack",
            str(PACK),
            "--base-url",
            f"http://127.0.0.1:{port}/v1",
            "--model",
            "m",
            "--out",
            str(out),
            "--cache",
            str(tmp_path / "cache"),
            "--max-retries",
            "0",
            "--skills",
            "weather",
        ],
        env=LLM_ENV,
    )
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        rf"error: cannot reach http://127\.0\.0\.1:{port}/v1 \(weather request \d+; --max-retries 0\): "
        r"connection refused \(nothing listens there\)",
        last,
    ), last
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


@pytest.mark.parametrize(
    "mode, message",
    [
        ("short_body", "was cut short: Not enough data to satisfy content length header"),
        ("cut_json", "the answer is not JSON (cut short?): "),
    ],
)
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
    result = CliRunner().invoke(
        llm_command,
        ["--pack", str(PACK), "--base-url", url, "--model", "m", "--out", str(out), "--skills", "weather"],
        env=LLM_ENV,
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --base-url 'http://***@127.0.0.1:")
    assert "user or password in the URL is not supported" in result.stderr
    assert "hunter2" not in result.output and len(result.stderr.strip().splitlines()) == 1
    assert server.total == 0 and not out.exists()


# --- pairs that fit the schema but make no sense are refused, with their reasons


def _scripted(pairs_by_skill: dict[str, list[dict]], verdict=None):
    """A reply function: each skill's pairs for a generation request (it offers tools), and
    `verdict(request text)` for a judge request (it offers none)."""

    def reply(body):
        prompt = body["messages"][-1]["content"]
        if not body.get("tools"):
            return verdict(prompt)
        skill = re.search(r"^Skill: (\w+)\(", prompt, re.MULTILINE).group(1)
        arguments = json.dumps({"pairs": pairs_by_skill[skill]})
        return {
            "content": None,
            "tool_calls": [{"type": "function", "function": {"name": "submit_pairs", "arguments": arguments}}],
        }

    return reply


NONSENSE_AND_GOOD = {
    "notes": [
        {"user": "A-B-C", "arguments": {"action": "add", "note": ""}},
        {"user": "d,", "arguments": {"action": "list", "note": ""}},
        {"user": "put buy stamps on my list", "arguments": {"action": "add", "note": "buy eggs"}},
        {"user": "read out my notes please", "arguments": {"action": "list", "note": " "}},
        {"user": "add call the vet to my notes", "arguments": {"action": "add", "note": "call the vet"}},
        {"user": "what have I noted so far", "arguments": {"action": "list"}},
    ],
    "openai": [
        {"user": "2015-3-14T16:07:19", "arguments": {"prompt": "write a poem about the moon in hindu culture,"}},
        {"user": "ask the AI to write a haiku about autumn", "arguments": {"prompt": "write a haiku about autumn"}},
        {"user": "explain how tides work", "arguments": {"prompt": "explain how tides work"}},
    ],
}


def test_nonsense_pairs_are_refused_with_their_reasons_and_good_ones_kept(tmp_path):
    out = tmp_path / "pairs.jsonl"
    with ScriptedOpenAIServer(default="reply", reply=_scripted(NONSENSE_AND_GOOD)) as server:
        result = run_llm(server, out, "--skills", "notes,openai", "--per-skill", "2", "--batch", "6")
        assert result.exit_code == 0, result.output
        assert server.total == 2  # one request per skill: both got their two good pairs
    assert [(row["skill"], row["user"]) for row in lines(out)] == [
        ("notes", "add call the vet to my notes"),
        ("notes", "what have I noted so far"),
        ("openai", "ask the AI to write a haiku about autumn"),
        ("openai", "explain how tides work"),
    ]
    rejects = lines(Path(f"{out}.rejects.jsonl"))
    assert all(schema_problem(row, "reject") is None for row in rejects)
    assert {row["candidate"]["user"]: row["reason"] for row in rejects} == {
        "A-B-C": "request has no words",
        "d,": "request has no words",
        "put buy stamps on my list": "note='buy eggs' is not in the request",
        "read out my notes please": "note is empty",
        "2015-3-14T16:07:19": "request has no words",
    }
    assert (
        "4 accepted, 5 rejected [3 request has no words, 1 note=... is not in the request, 1 note is empty]"
        in result.stdout
    )


@pytest.mark.parametrize(
    "reason, kind",
    [
        ("note='buy eggs' is not in the request", "note=... is not in the request"),
        ("note is empty", "note is empty"),
        ("duplicate of a pack example (notes.txt:12)", "duplicate of a pack example"),
        ("malformed JSON: Expecting value (line 1 column 1)", "malformed JSON"),
        ("judge: unclear answer", "judge: unclear answer"),
    ],
)
def test_rejects_are_counted_by_kind(reason, kind):
    assert reason_kind(reason) == kind


JUDGED = {
    "notes": [
        {"user": "add call the vet to my notes", "arguments": {"action": "add", "note": "call the vet"}},
        {"user": "put buy stamps on my list", "arguments": {"action": "add", "note": "buy stamps"}},
        {"user": "what have I noted so far", "arguments": {"action": "list"}},
    ]
}


def _verdict(prompt: str) -> str:
    if '"add call the vet to my notes"' in prompt:
        return "no"
    return "Probably, it depends." if '"put buy stamps on my list"' in prompt else "Yes."


def test_the_judge_refuses_a_pair_it_answers_no_and_its_verdicts_are_cached(tmp_path):
    cache = tmp_path / "cache"
    args = ("--skills", "notes", "--per-skill", "1", "--batch", "3", "--judge-model", "judge-m")
    with ScriptedOpenAIServer(default="reply", reply=_scripted(JUDGED, _verdict)) as server:
        first = run_llm(server, tmp_path / "a" / "pairs.jsonl", *args, cache=cache)
        assert first.exit_code == 0, first.output
        judged = [entry["body"] for entry in server.log if not entry["body"].get("tools")]
        assert len(judged) == 3 and {body["model"] for body in judged} == {"judge-m"}
        assert all(entry["authorization"] == f"Bearer {LLM_SECRET}" for entry in server.log)
        server.reset_counts()
        second = run_llm(server, tmp_path / "b" / "pairs.jsonl", *args, cache=cache)
        assert second.exit_code == 0, second.output
        assert server.total == 1  # only the unclear answer is asked again
    assert [row["user"] for row in lines(tmp_path / "a" / "pairs.jsonl")] == ["what have I noted so far"]
    rejects = lines(tmp_path / "a" / "pairs.jsonl.rejects.jsonl")
    assert {row["candidate"]["user"]: row["reason"] for row in rejects} == {
        "add call the vet to my notes": "judge: no",
        "put buy stamps on my list": "judge: unclear answer",
    }
    assert "1 accepted, 2 rejected [1 judge: no, 1 judge: unclear answer]" in first.stdout
    assert "; judge: 3 requests, 0 cache hits" in first.stdout
    assert "1 cache hits, 1 accepted" in second.stdout and "; judge: 1 requests, 2 cache hits" in second.stdout
    assert (tmp_path / "b" / "pairs.jsonl").read_text() == (tmp_path / "a" / "pairs.jsonl").read_text()


def test_the_judge_can_be_another_server(tmp_path):
    out = tmp_path / "pairs.jsonl"
    with (
        ScriptedOpenAIServer(default="reply", reply=_scripted(JUDGED)) as server,
        ScriptedOpenAIServer(default="reply", reply=lambda body: "YES") as judge,
    ):
        result = run_llm(
            server,
            out,
            "--skills",
            "notes",
            "--per-skill",
            "3",
            "--batch",
            "3",
            "--judge-model",
            "j",
            "--judge-base-url",
            judge.url,
        )
        assert result.exit_code == 0, result.output
        assert server.total == 1 and judge.total == 3
    assert len(lines(out)) == 3
