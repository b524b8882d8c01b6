"""`python -m datagen openai-export`: OpenAI fine-tuning files made from skill records, and their checks."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from openai_files import BASE, export, make_datasets

from datagen.cli import cli
from datagen.openai_export import FileCheck, default_epochs, encoding, example_tokens, model_limits, structure_problems
from skilltune.jsonio import schema_problem


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    return make_datasets(tmp_path_factory.mktemp("datasets"))


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


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
                functions = [call["function"] for call in message["tool_calls"]]
                assert functions == [call["function"] for call in source["tool_calls"]]
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
        (
            {"messages": [{"role": "user", "content": "x", "mood": "ok"}, good["messages"][1]]},
            "message 1: unknown key 'mood'",
        ),
        (
            {
                "messages": [
                    good["messages"][0],
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c", "type": "function", "function": {"name": "weather", "arguments": "{oops"}}
                        ],
                    },
                ]
            },
            "message 2 tool_calls[0]: arguments must be the text of a JSON object",
        ),
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
        assert result.exit_code == 0
        assert "Example:\n" in result.output and f"python -m datagen {command}" in result.output


def test_a_copied_dataset_folder_exports_its_chosen_split(datasets, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(datasets / "python", folder)
    out = tmp_path / "val.jsonl"
    result = export(str(folder), "--out", str(out), "--split", "val")
    assert result.exit_code == 0, result.output
    assert len(lines(out)) == len(lines(folder / "val.jsonl")) == 10
