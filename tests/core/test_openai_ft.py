"""`python -m datagen openai-ft`: the job runner (skilltune/openai_ft.py) behind its command.

The job runner talks to tests/openai_server.py on 127.0.0.1 through the real `openai` client
(multipart upload, job creation, polling), so nothing is mocked but the clock in one test.
"""

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from openai_files import BASE, export, make_datasets
from openai_server import ScriptedOpenAIServer

from datagen.cli.openai import openai_ft_command
from skilltune import openai_ft

SECRET = "sk-test-fine-tune-never-on-disk-77"
LOCAL_ENV = {
    "OPENAI_API_KEY": SECRET,
    "OPENAI_BASE_URL": None,
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    return make_datasets(tmp_path_factory.mktemp("datasets"))


@pytest.fixture
def server():
    with ScriptedOpenAIServer() as test_server:
        yield test_server


def exported(datasets, tmp_path, style: str = "python") -> Path:
    out = tmp_path / f"{style}.jsonl"
    result = export(str(datasets / style), "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def run_ft(server, *args: str, base_url: str | None = None):
    options = [*args, "--base-url", base_url or server.url, "--poll-interval", "0", "--max-retries", "0"]
    return CliRunner().invoke(openai_ft_command, options, env=LOCAL_ENV)


def test_openai_ft_runs_a_job_to_success(datasets, server, tmp_path):
    train = exported(datasets, tmp_path, "tools")
    result = run_ft(
        server,
        str(train),
        "--model",
        BASE,
        "--n-epochs",
        "2",
        "--batch-size",
        "4",
        "--learning-rate-multiplier",
        "0.5",
        "--suffix",
        "skills",
        "--seed",
        "7",
    )
    assert result.exit_code == 0, result.output
    model = f"ft:{BASE}:skilltune-test:skills:test1"
    out = result.stdout
    assert f"fine-tuned model: {model}\n" in out
    assert (
        f"python -m eval run --backend openai --base-url {server.url} --model {model} "
        f"--base-model-name {BASE} --test data/skills/test.jsonl --out runs/openai-ft"
    ) in out
    statuses = [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("status: ")]
    assert statuses == ["validating_files", "queued", "running", "succeeded"]
    assert out.count("Created fine-tuning job: ftjob-test1") == 1  # each event printed once, oldest first
    assert (
        out.index("Validating training file") < out.index("Fine-tuning job started") < out.index("New fine-tuned model")
    )
    assert "estimated billed training tokens" in out and "n_epochs 2 (given)" in out

    (uploaded,) = server.uploaded_files
    assert uploaded["data"] == train.read_bytes() and uploaded["purpose"] == "fine-tune"
    (job,) = server.fine_tuning_jobs
    assert job["request"]["training_file"] == uploaded["id"] and job["request"]["model"] == BASE
    assert job["request"]["method"] == {
        "type": "supervised",
        "supervised": {"hyperparameters": {"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 0.5}},
    }
    assert job["request"]["suffix"] == "skills" and job["request"]["seed"] == 7
    assert job["job"]["hyperparameters"] == {"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 0.5}
    assert SECRET not in result.output


def test_a_failing_job_exits_non_zero_with_its_error(datasets, server, tmp_path):
    server.fine_tune = "failed"
    result = run_ft(server, str(exported(datasets, tmp_path)))
    assert result.exit_code == 1
    assert "status: running" in result.stdout and "status: failed" in result.stdout
    assert result.stderr.strip() == (
        "error: job ftjob-test1 failed [server_error]: Fine-tuning failed with an "
        "internal error (scripted by the test server)."
    )
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
    uploaded = client.files.create(
        file=("t.jsonl", b'{"messages": [{"role": "user", "content": "x"}]}\n'), purpose="fine-tune"
    )
    job = client.fine_tuning.jobs.create(training_file=uploaded.id, model=BASE)
    result = run_ft(server, "--job", job.id)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: job {job.id} failed [invalid_training_file]: "
        "The training file is invalid: line 1: no assistant message"
    )


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
