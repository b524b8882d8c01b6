"""Review files (datagen/review.py): `datagen llm --review` writes them, a person edits them, and
`datagen merge-review` adds the kept new examples to the pack."""

import shutil

import pytest
from click.testing import CliRunner
from command_runs import LLM_ENV
from conftest import PACK
from openai_server import ScriptedOpenAIServer

from datagen.cli.llm import llm_command, merge_review_command
from skilltune.skills import load_pack, parse_skill_file


@pytest.fixture
def server():
    with ScriptedOpenAIServer() as test_server:
        yield test_server


def test_review_then_merge_review_adds_the_kept_new_examples(server, tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(PACK, pack)
    review = tmp_path / "review"
    result = CliRunner().invoke(
        llm_command,
        [
            "--pack",
            str(pack),
            "--base-url",
            server.url,
            "--model",
            "m",
            "--cache",
            str(tmp_path / "cache"),
            "--review",
            str(review),
            "--skills",
            "weather,notes",
            "--per-skill",
            "4",
            "--batch",
            "2",
        ],
        env=LLM_ENV,
    )
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
    # appended to the training examples, before the held-out section; nothing else touched
    head, marker, held_out = original.partition("#### Test Examples:")
    merged_text = (pack / "weather.txt").read_text()
    assert merged_text.startswith(head.rstrip()) and merged_text.endswith(marker + held_out)
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
