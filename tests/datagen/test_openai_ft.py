"""`python -m datagen openai-export` and `openai-ft`: OpenAI fine-tuning files and jobs.

The job runner talks to tests/openai_server.py on 127.0.0.1 through the real `openai` client
(multipart upload, job creation, polling), so nothing is mocked but the clock in one test.
"""

import json
import shutil
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from openai_server import ScriptedOpenAIServer

from datagen import openai_ft
from datagen.cli import cli
from skilltune.jsonio import schema_problem
from datagen.openai_export import (
    FileCheck,
    default_epochs,
    encoding,
    example_tokens,
    model_limits,
    openai_export_command,
    structure_problems,
)
from datagen.openai_ft import openai_ft_command
from conftest import REPO

SECRET = "sk-test-fine-tune-never-on-disk-77"
LOCAL_ENV = {"OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": None, "NO_PROXY": "127.0.0.1,localhost",
             "no_proxy": "127.0.0.1,localhost"}
BASE = "gpt-4o-mini-2024-07-18"


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """Two small skill datasets from the default pack: python-style and tools-style answers (20 train records)."""
    root = tmp_path_factory.mktemp("datasets")
    for style in ("python", "tools"):
        result = CliRunner().invoke(cli, ["skills", "--pack", str(REPO / "examples" / "skills"), "--out",
                                          str(root / style), "--n", "40", "--style", style])
        assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def server():
    with ScriptedOpenAIServer() as test_server:
        yield test_server


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def export(*args: str):
    return CliRunner().invoke(openai_export_command, list(args))


def exported(datasets, tmp_path, style: str = "python") -> Path:
    out = tmp_path / f"{style}.jsonl"
    result = export(str(datasets / style), "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def run_ft(server, *args: str, base_url: str | None = None):
    options = [*args, "--base-url", base_url or server.url, "--poll-interval", "0", "--max-retries", "0"]
    return CliRunner().invoke(openai_ft_command, options, env=LOCAL_ENV)


# --- export


@pytest.mark.parametrize("style", ["python", "tools"])
def test_export_of_a_skill_dataset_gives_valid_lines_that_round_trip(datasets, tmp_path, style):
    out = tmp_path / "train.jsonl"
    result = CliRunner().invoke(cli, ["openai-export", str(datasets / style), "--out", str(out)])  # as registered
    assert result.exit_code == 0, result.output
    records, examples = lines(datasets / style / "train.jsonl"), lines(out)
    assert len(examples) == len(records) == 20
    for record, example in zip(records, examples):
        assert schema_problem(example, "openai_example") is None
        assert structure_problems(example) == []
        assert [m["role"] for m in example["messages"]] == [m["role"] for m in record["messages"]]
        assert example.get("tools") == record.get("tools")
        for source, message in zip(record["messages"], example["messages"]):
            if source.get("tool_calls"):  # the call kept, with an id; the empty content dropped
                assert "content" not in message
                assert [call["function"] for call in message["tool_calls"]] == [c["function"] for c in source["tool_calls"]]
                assert all(call["id"] and call["type"] == "function" for call in message["tool_calls"])
            else:
                assert message == source
    # 20 examples: 20 x 3 = 60 < 100 target examples, so OpenAI's default is 100 // 20 = 5 epochs
    enc = encoding("o200k_base")
    total = sum(example_tokens(example, enc) for example in examples)
    assert f"20 examples, {total:,} tokens" in result.stdout
    assert "n_epochs 5 (OpenAI's default for 20 examples)" in result.stdout
    assert f"estimated billed training tokens: {5 * total:,} (5 epochs x {total:,})" in result.stdout
    if style == "tools":  # every example carries the ten tool definitions: far more tokens than the call
        assert total > 20 * 500


def test_a_record_without_an_assistant_message_and_an_over_long_record_are_flagged_by_line(datasets, tmp_path):
    source = tmp_path / "records.jsonl"
    records = lines(datasets / "python" / "train.jsonl")
    records[2]["messages"] = records[2]["messages"][:-1]  # line 3: no answer
    # line 7: " hello" is one o200k token, so 70,000 of them are 70,000 tokens + the rest of the record
    records[6]["messages"][1]["content"] = "hi" + " hello" * 70_000
    source.write_text("".join(json.dumps(record) + "\n" for record in records))
    out = tmp_path / "out.jsonl"
    result = export(str(source), "--out", str(out))
    assert result.exit_code == 1
    problems = result.stderr.splitlines()
    assert problems[0] == f"{source}:3: no assistant message"
    assert problems[1].startswith(f"{source}:7: 70,0") and problems[1].endswith(" tokens > 65,536")
    assert problems[-1] == f"error: {source}: 2 problems; {out} not written"
    assert not out.exists()

    # with a lower limit of the user's, ordinary records are too long too
    result = export(str(datasets / "python" / "train.jsonl"), "--out", str(out), "--max-tokens-per-example", "40")
    assert result.exit_code == 1 and " tokens > 40" in result.stderr and not out.exists()


def test_format_problems_are_named_per_line(tmp_path):
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "other()"}]}
    bad = [
        ([1, 2], "not a JSON object"),
        ({"messages": []}, "no messages list"),
        ({**good, "extra": 1}, "unknown key 'extra'"),
        ({"messages": [{"role": "bot", "content": "x"}, good["messages"][1]]}, "message 1: unknown role 'bot'"),
        ({"messages": [{"role": "user", "content": 5}, good["messages"][1]]}, "message 1: content must be a string"),
        ({"messages": [{"role": "user", "content": "x", "mood": "ok"}, good["messages"][1]]}, "message 1: unknown key 'mood'"),
        ({"messages": [good["messages"][0], {"role": "assistant", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "weather", "arguments": "{oops"}}]}]},
         "message 2 tool_calls[0]: arguments must be the text of a JSON object"),
    ]
    source = tmp_path / "bad.jsonl"
    source.write_text("".join(json.dumps(example) + "\n" for example, _ in bad))
    result = export(str(source), "--out", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 1
    for number, (_, reason) in enumerate(bad, 1):
        assert any(line.startswith(f"{source}:{number}: {reason}") for line in result.stderr.splitlines()), reason
    assert f"{source}: 7 examples; OpenAI needs at least 10" in result.stderr


def test_token_and_epoch_arithmetic():
    enc = encoding("o200k_base")
    assert enc.encode("hello world") == [24912, 2375]  # tiktoken's own o200k ids: the real encoding, offline
    example = {"messages": [{"role": "user", "content": "hello world"}, {"role": "assistant", "content": "hi"}]}
    # 3 for the reply + user: 3 + "user" 1 + "hello world" 2 + assistant: 3 + "assistant" 1 + "hi" 1 = 14
    assert example_tokens(example, enc) == 14
    named = {"messages": [{"role": "user", "content": "hello world", "name": "bo"}, example["messages"][1]]}
    assert example_tokens(named, enc) == 14 + 1 + 1  # "bo" is one token, plus one for having a name

    # OpenAI's default epochs (the cookbook's rule): 3, unless examples x 3 leaves [100, 25,000]
    assert default_epochs(3) == 25  # 9 < 100: 100 // 3 = 33, capped at 25
    assert default_epochs(20) == 5  # 60 < 100: 100 // 20
    assert default_epochs(34) == 3  # 102: in range
    assert default_epochs(8_000) == 3  # 24,000: in range
    assert default_epochs(10_000) == 2  # 30,000 > 25,000: 25,000 // 10,000
    assert default_epochs(30_000) == 1  # 25,000 // 30,000 = 0, raised to 1

    # billed tokens: each example capped at the limit, times the epochs
    check = FileCheck(Path("f"), BASE, limit=50, encoding_name="o200k_base", examples=[{}, {}], tokens=[10, 100])
    assert check.billable_tokens == 10 + 50
    assert check.n_epochs == 25 and check.billed_tokens == 25 * 60  # 2 examples: 100 // 2 = 50, capped at 25
    check.n_epochs_given = 2
    assert check.billed_tokens == 120

    assert model_limits(BASE) == (65_536, "o200k_base")
    assert model_limits("ft:gpt-3.5-turbo-0125:org::abc") == (16_385, "cl100k_base")
    assert model_limits("some-new-model", 1000) == (1000, "o200k_base")
    with pytest.raises(ValueError, match="--max-tokens-per-example"):
        model_limits("some-new-model")


# --- the job runner


def test_openai_ft_runs_a_job_to_success(datasets, server, tmp_path):
    train = exported(datasets, tmp_path, "tools")
    result = run_ft(server, str(train), "--model", BASE, "--n-epochs", "2", "--batch-size", "4",
                    "--learning-rate-multiplier", "0.5", "--suffix", "skills", "--seed", "7")
    assert result.exit_code == 0, result.output
    model = f"ft:{BASE}:skilltune-test:skills:test1"
    out = result.stdout
    assert f"fine-tuned model: {model}\n" in out
    assert (f"python -m eval run --backend openai --base-url {server.url} --model {model} "
            f"--base-model-name {BASE} --test data/skills/test.jsonl --out runs/openai-ft") in out
    statuses = [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("status: ")]
    assert statuses == ["validating_files", "queued", "running", "succeeded"]
    assert out.count("Created fine-tuning job: ftjob-test1") == 1  # each event printed once, oldest first
    assert out.index("Validating training file") < out.index("Fine-tuning job started") < out.index("New fine-tuned model")
    assert "estimated billed training tokens" in out and "n_epochs 2 (given)" in out

    (uploaded,) = server.uploaded_files
    assert uploaded["data"] == train.read_bytes() and uploaded["purpose"] == "fine-tune"
    (job,) = server.fine_tuning_jobs
    assert job["request"]["training_file"] == uploaded["id"] and job["request"]["model"] == BASE
    assert job["request"]["method"] == {"type": "supervised", "supervised": {"hyperparameters": {
        "n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 0.5}}}
    assert job["request"]["suffix"] == "skills" and job["request"]["seed"] == 7
    assert job["job"]["hyperparameters"] == {"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 0.5}
    assert SECRET not in result.output


def test_a_failing_job_exits_non_zero_with_its_error(datasets, server, tmp_path):
    server.fine_tune = "failed"
    result = run_ft(server, str(exported(datasets, tmp_path)))
    assert result.exit_code == 1
    assert "status: running" in result.stdout and "status: failed" in result.stdout
    assert result.stderr.strip() == ("error: job ftjob-test1 failed [server_error]: Fine-tuning failed with an "
                                     "internal error (scripted by the test server).")
    assert server.fine_tuning_jobs[0]["request"]["method"] == {"type": "supervised", "supervised": {}}  # all auto


def test_a_file_with_problems_is_not_uploaded(server, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    result = run_ft(server, str(bad))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == f"{bad}:1: no assistant message"
    assert result.stderr.splitlines()[-1] == f"error: {bad}: 2 problems; nothing uploaded"
    assert server.uploaded_files == [] and server.fine_tuning_jobs == []


def test_the_server_fails_a_job_whose_file_it_finds_invalid(server, tmp_path, datasets):
    """The test server's own minimal validation: a job on a file without answers fails with its line."""
    import openai

    client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0)
    uploaded = client.files.create(file=("t.jsonl", b'{"messages": [{"role": "user", "content": "x"}]}\n'),
                                   purpose="fine-tune")
    job = client.fine_tuning.jobs.create(training_file=uploaded.id, model=BASE)
    result = run_ft(server, "--job", job.id)
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"error: job {job.id} failed [invalid_training_file]: "
                                     "The training file is invalid: line 1: no assistant message")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_base_url_is_one_error_line(datasets, server, tmp_path):
    train = exported(datasets, tmp_path)
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    result = run_ft(server, str(train), base_url=url)
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(f"error: cannot reach {url} (uploading {train}): APIConnectionError")


def test_ctrl_c_prints_the_job_and_following_it_again_finishes(datasets, server, tmp_path, monkeypatch):
    def interrupt(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(openai_ft.time, "sleep", interrupt)  # Ctrl-C during the first wait between polls
    result = run_ft(server, str(exported(datasets, tmp_path)), "--poll-interval", "5")
    assert result.exit_code == 130
    assert "interrupted: job ftjob-test1 goes on" in result.stderr
    assert f"python -m datagen openai-ft --job ftjob-test1 --base-url {server.url}" in result.stderr
    assert server.fine_tuning_jobs[0]["job"]["status"] == "validating_files"

    monkeypatch.undo()
    again = run_ft(server, "--job", "ftjob-test1")
    assert again.exit_code == 0, again.output
    assert "fine-tuned model: ft:" in again.stdout and len(server.uploaded_files) == 1  # nothing uploaded again


def test_cancel_a_running_job(datasets, server, tmp_path):
    import openai

    client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0)
    uploaded = client.files.create(file=("t.jsonl", exported(datasets, tmp_path).read_bytes()), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(training_file=uploaded.id, model=BASE)
    result = run_ft(server, "--job", job.id, "--cancel")
    assert result.exit_code == 0, result.output
    assert "status: cancelled" in result.stdout and "Fine-tuning job cancelled" in result.stdout
    again = run_ft(server, "--job", job.id, "--cancel")  # a finished job cannot be cancelled
    assert again.exit_code == 1 and "answered HTTP 400 (cancelling job ftjob-test1)" in again.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "give a training FILE to start a job, or --job ID to follow one"),
        (["--cancel", "x.jsonl"], "--cancel needs --job ID"),
        (["x.jsonl", "--suffix", "s" * 65], "--suffix must be 1 to 64 characters"),
        (["x.jsonl", "--n-epochs", "0"], "--n-epochs"),
        (["no-such.jsonl"], "no-such.jsonl: no such file"),
        (["TRAIN", "--model", "some-new-model"], "no documented per-example token limit for 'some-new-model'"),
    ],
)
def test_bad_input_is_one_error_line(datasets, server, tmp_path, args, message):
    train = exported(datasets, tmp_path)
    args = [str(train) if arg == "TRAIN" else arg for arg in args]
    result = run_ft(server, *args)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert server.uploaded_files == []


def test_the_openai_api_needs_the_key_from_the_environment(datasets, tmp_path):
    train = exported(datasets, tmp_path)
    result = CliRunner().invoke(openai_ft_command, [str(train)], env={"OPENAI_API_KEY": None})
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == "error: set OPENAI_API_KEY: the key is read from there only"


def test_export_bad_input_is_one_error_line(datasets, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, message in [
        ([str(empty), "--out", "o.jsonl"], f"{empty}: no train.jsonl in this folder"),
        ([str(datasets / "python"), "--out", "o.jsonl", "--split", "nope"], "no nope.jsonl"),
        ([str(datasets / "python")], "Missing option '--out'"),
        ([str(datasets / "python"), "--out", "o.jsonl", "--base-model", "x"], "no documented per-example token limit"),
    ]:
        result = export(*args)
        assert result.exit_code == 1, args
        assert result.stderr.startswith("error: ") and message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1


def test_help_has_an_example_block():
    for command in ("openai-export", "openai-ft"):
        result = CliRunner().invoke(cli, [command, "--help"])
        assert result.exit_code == 0 and "Example:\n" in result.output and f"python -m datagen {command}" in result.output


def test_a_copied_dataset_folder_exports_its_chosen_split(datasets, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(datasets / "python", folder)
    out = tmp_path / "val.jsonl"
    result = export(str(folder), "--out", str(out), "--split", "val")
    assert result.exit_code == 0, result.output
    assert len(lines(out)) == len(lines(folder / "val.jsonl")) == 10
