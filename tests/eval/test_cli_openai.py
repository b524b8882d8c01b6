"""`python -m eval run --backend openai` against the scripted server on 127.0.0.1, as a user runs it."""

import pytest
from click.testing import CliRunner
from endpoint_records import SECRET, last_user, local_env, records, write_split
from openai_server import ScriptedOpenAIServer

from eval.cli import cli
from skilltune.jsonio import read_json, read_jsonl

pytestmark = pytest.mark.usefixtures(local_env.__name__)  # every test: local server, known key


def test_run_scores_a_named_endpoint_model_and_writes_no_key(tmp_path):
    data = records(6)
    gold = {record["messages"][1]["content"]: record["messages"][2]["content"] for record in data}
    out = tmp_path / "out"

    def reply(body: dict) -> str:  # the "fine-tune" knows every answer, the "base" model none
        return gold[last_user(body)] if body["model"] == "ft:tuned" else "I cannot help with that."

    with ScriptedOpenAIServer(default="reply", reply=reply) as server:
        result = CliRunner().invoke(
            cli,
            [
                "run",
                "--backend",
                "openai",
                "--base-url",
                server.url,
                "--model",
                "ft:tuned",
                "--base-model-name",
                "plain",
                "--concurrency",
                "4",
                "--test",
                str(write_split(tmp_path, data)),
                "--out",
                str(out),
            ],
        )
        log = server.log
    assert result.exit_code == 0, result.output
    assert {entry["authorization"] for entry in log} == {f"Bearer {SECRET}"}
    assert read_json(out / "report.json", "report")["models"] == ["base", "tuned"]
    tuned = list(read_jsonl(out / "predictions-tuned.jsonl", "prediction"))
    assert [row["output"] for row in tuned] == [row["gold"] for row in tuned]
    assert {row["output"] for row in read_jsonl(out / "predictions-base.jsonl", "prediction")} == {
        "I cannot help with that."
    }
    written = [path for path in out.rglob("*") if path.is_file()]
    assert written and not [path for path in written if SECRET.encode() in path.read_bytes()]  # PNGs too
    assert SECRET not in result.output


def test_base_limit_scores_the_base_model_on_the_first_records_only(tmp_path):
    data = records(6)
    with ScriptedOpenAIServer(default="reply", reply=lambda body: "hello") as server:
        args = ["run", "--backend", "openai", "--base-url", server.url, "--model", "ft:t", "--base-model-name", "b"]
        result = CliRunner().invoke(
            cli, args + ["--base-limit", "2", "--test", str(write_split(tmp_path, data)), "--out", str(tmp_path / "o")]
        )
        asked = [body["model"] for body in (entry["body"] for entry in server.log)]
    assert result.exit_code == 0, result.output
    base = list(read_jsonl(tmp_path / "o" / "predictions-base.jsonl", "prediction"))
    assert [row["user"] for row in base] == [record["messages"][1]["content"] for record in data[:2]]
    assert len(list(read_jsonl(tmp_path / "o" / "predictions-tuned.jsonl", "prediction"))) == 6
    assert asked.count("b") == 2 and asked.count("ft:t") == 6


def test_run_without_base_model_name_scores_only_the_named_model(tmp_path):
    with ScriptedOpenAIServer(default="reply", reply=lambda body: 'weather(location="Berlin")') as server:
        result = CliRunner().invoke(
            cli,
            [
                "run",
                "--backend",
                "openai",
                "--base-url",
                server.url,
                "--model",
                "ft:x",
                "--test",
                str(write_split(tmp_path, records(2))),
                "--out",
                str(tmp_path / "o"),
            ],
        )
    assert result.exit_code == 0, result.output
    assert read_json(tmp_path / "o" / "report.json", "report")["models"] == ["tuned"]
    assert not (tmp_path / "o" / "predictions-base.jsonl").exists()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (
            ["--backend", "openai", "--base-url", "http://127.0.0.1:9/v1"],
            "--backend openai needs --base-url and --model",
        ),
        (["--backend", "transformers"], "--backend transformers needs --config"),
        (
            ["--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--decoding", "grounded"],
            "need --backend transformers",
        ),
        (
            ["--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--config", "CONFIG"],
            "--config is not used with --backend openai",
        ),
    ],
)
def test_run_option_errors_are_one_line(tmp_path, arguments, message):
    config = tmp_path / "c.yml"
    config.write_text("base_model: x\noutput_dir: y\n")
    arguments = [str(config) if argument == "CONFIG" else argument for argument in arguments]
    result = CliRunner().invoke(
        cli, ["run", *arguments, "--test", str(write_split(tmp_path, records(1))), "--out", str(tmp_path / "o")]
    )
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_endpoint_failure_in_run_is_one_line_exit_1(tmp_path):
    with ScriptedOpenAIServer(default="500") as server:
        result = CliRunner().invoke(
            cli,
            [
                "run",
                "--backend",
                "openai",
                "--base-url",
                server.url,
                "--model",
                "m",
                "--max-retries",
                "1",
                "--test",
                str(write_split(tmp_path, records(1))),
                "--out",
                str(tmp_path / "o"),
            ],
        )
        assert server.total == 2
    assert result.exit_code == 1
    last_line = result.output.strip().splitlines()[-1]  # after the progress bar
    assert last_line.startswith(f"error: {server.url} answered HTTP 500 for record 0 (model 'm', max retries 1)")
