"""The options and failures of `python -m datagen documents` (datagen/cli/documents.py): one
`error: ...` line and exit status 1, and no output folder left behind."""

import pytest
from click.testing import CliRunner
from command_runs import DOCUMENTS_ENV, error_line, run_documents, write_tree
from openai_server import ScriptedOpenAIServer

from datagen.cli import cli
from datagen.cli.documents import documents_command


def test_an_endpoint_answering_500_fails_with_one_line_and_no_output(tmp_path):
    root = write_tree(tmp_path / "docs", {"a.md": "Some text.", "b.md": "More text."})
    out = tmp_path / "out"
    with ScriptedOpenAIServer(default="500") as failing:
        result = run_documents(failing, root, out)
    assert result.exit_code == 1
    assert error_line(result).startswith("error: ") and "HTTP 500" in error_line(result)
    assert not out.exists()
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".out")] == []  # no staging left


def test_an_unreachable_endpoint_is_one_error_line(tmp_path):
    root = write_tree(tmp_path / "docs", {"a.md": "Some text."})
    with ScriptedOpenAIServer() as closed:
        url = closed.url  # a port that was just in use and is now closed
    result = CliRunner().invoke(
        documents_command,
        [
            str(root),
            "--out",
            str(tmp_path / "out"),
            "--cache",
            str(tmp_path / "cache"),
            "--base-url",
            url,
            "--model",
            "m",
            "--max-retries",
            "0",
            "--timeout",
            "5",
        ],
        env=DOCUMENTS_ENV,
    )
    assert result.exit_code == 1
    assert error_line(result).startswith(f"error: cannot reach {url}")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda tmp: [str(tmp / "missing")], "no such folder"),
        (lambda tmp: [str(tmp / "docs"), "--glob", "*.rst"], "no readable files match *.rst"),
        (lambda tmp: [str(tmp / "docs"), "--exclude", "*.md"], "(excluding *.md)"),
        (lambda tmp: [str(tmp / "docs"), "--glob", "/etc/*.conf"], "--glob '/etc/*.conf': "),
        (lambda tmp: [str(tmp / "docs"), "--exclude", "../*"], "--exclude '../*': patterns must stay inside DIR"),
        (
            lambda tmp: [str(tmp / "docs"), "--chunk-size", "100", "--step-size", "200"],
            "--step-size 200 is larger than --chunk-size 100",
        ),
        (lambda tmp: [str(tmp / "docs"), "--chunk-size", "0"], "--chunk-size must be at least 1"),
        (lambda tmp: [str(tmp / "docs"), "--base-url", "localhost:8000", "--model", "m"], "expected http://"),
        (lambda tmp: [str(tmp / "docs"), "--base-url", "http://127.0.0.1:9/v1"], "--model is required"),
        (lambda tmp: [str(tmp / "docs"), "--model", str(tmp / "nomodel")], "no local model there"),
        (lambda tmp: [str(tmp / "docs"), "--chunk-unit", "tokens", "--tokenizer", str(tmp)], "no tokenizer there"),
        (lambda tmp: [str(tmp / "docs"), "--chunk-unit", "words"], "Invalid value for '--chunk-unit'"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_1(tmp_path, make_args, message):
    write_tree(tmp_path / "docs", {"a.md": "Text."})
    result = CliRunner().invoke(
        documents_command,
        [*make_args(tmp_path), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")],
        env=DOCUMENTS_ENV,
    )
    assert result.exit_code == 1, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert error_line(result).startswith("error: ") and message in error_line(result)
    assert not (tmp_path / "out").exists()


def test_the_cli_group_has_the_command_and_help_shows_an_example():
    result = CliRunner().invoke(cli, ["documents", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and "python -m datagen documents examples/documents" in result.output
