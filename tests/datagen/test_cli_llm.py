"""The options and failures of `python -m datagen llm` (datagen/cli/llm.py): one `error: ...` line,
before any request when the options are at fault, naming the endpoint when it is."""

import re
import shutil
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from command_runs import LLM_ENV, run_llm
from conftest import PACK
from openai_server import ScriptedOpenAIServer

from datagen.cli.llm import llm_command


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
