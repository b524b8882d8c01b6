"""datagen/held_out.py through `datagen skills`: held-out wording and unseen skills never reach training."""

import shutil
import subprocess
import sys

import pytest
from conftest import REPO

from skilltune.jsonio import read_json, read_jsonl
from skilltune.pairs import normalize
from skilltune.records import gold_call, user_text

WEATHER_TESTS = {
    'is it freezing in "Ulaanbaatar" today': 'weather(location="Ulaanbaatar")',
    "wats the wether in madrid": 'weather(location="madrid")',
    "use the weather skill for KYOTO": 'weather(location="KYOTO")',
}
TIMER_TESTS = {"timer skill: 12 minutes": 'timer(duration="12 minutes")'}


def _pack(tmp_path):
    """The default pack with its own held-out wording replaced: ours for weather and timer, none elsewhere."""
    pack = tmp_path / "pack"
    shutil.copytree(REPO / "examples" / "skills", pack)
    for path in pack.glob("*.txt"):
        text = path.read_text()
        if "#### Test Examples:" in text:
            path.write_text(text[: text.index("#### Test Examples:")].rstrip() + "\n")
    for name, tests in (("weather", WEATHER_TESTS), ("timer", TIMER_TESTS)):
        path = pack / f"{name}.txt"
        lines = "".join(f"### User: {user}\n### Assistant: {call}\n" for user, call in tests.items())
        path.write_text(f"{path.read_text().rstrip()}\n\n#### Test Examples:\n{lines}")
    return pack


def _skills(tmp_path, *args):
    out = tmp_path / "data"
    result = subprocess.run(
        [sys.executable, "-m", "datagen", "skills", "--pack", str(_pack(tmp_path)), "--out", str(out), "--n", "600"]
        + list(args),
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    return result, out


def _records(out, split):
    return list(read_jsonl(out / f"{split}.jsonl", "record"))


def test_test_examples_become_the_wording_split_and_nothing_else(tmp_path):
    result, out = _skills(tmp_path)
    assert result.returncode == 0, result.stderr
    wording = {user_text(record): gold_call(record).to_python() for record in _records(out, "test_wording")}
    assert wording == {**WEATHER_TESTS, **TIMER_TESTS}
    held = {normalize(user) for user in wording}
    for split in ("train", "val", "test", "test_noisy"):
        assert not held & {normalize(user_text(record)) for record in _records(out, split)}, split
    # their values never feed the swaps: Ulaanbaatar and KYOTO appear in no training record
    train_text = (out / "train.jsonl").read_text() + (out / "val.jsonl").read_text()
    assert "Ulaanbaatar" not in train_text and "KYOTO" not in train_text
    assert read_json(out / "manifest.json", "manifest")["counts"]["test_wording"] == {"timer": 1, "weather": 3}
    validated = subprocess.run(
        [sys.executable, "-m", "datagen", "validate", str(out / "test_wording.jsonl")], cwd=REPO, capture_output=True
    )
    assert validated.returncode == 0, validated.stderr


def test_holdout_skills_are_scored_only_as_unseen_with_their_signatures(tmp_path):
    result, out = _skills(tmp_path, "--system", "signatures", "--holdout-skills", "timer,news")
    assert result.returncode == 0, result.stderr
    for split in ("train", "val", "test", "test_noisy", "test_wording"):
        records = _records(out, split)
        assert not {gold_call(record).name for record in records} & {"timer", "news"}, split
        assert "timer(duration)" not in records[0]["messages"][0]["content"]  # trained prompts omit them
        assert "weather(location): Get the current weather" in records[0]["messages"][0]["content"]
    unseen = _records(out, "test_unseen")
    assert {gold_call(record).name for record in unseen} == {"timer", "news"}
    assert "timer skill: 12 minutes" in {user_text(record) for record in unseen}
    prompt = unseen[0]["messages"][0]["content"]
    assert "timer(duration): Start a countdown timer." in prompt and "news(topic)" in prompt
    assert read_json(out / "manifest.json", "manifest")["options"]["holdout_skills"] == ["news", "timer"]


@pytest.mark.parametrize(
    "names, reason",
    [("timer,alarm", "no skill 'alarm' in the pack"), ("other", "other() is the no-call answer")],
)
def test_bad_holdout_skills_fail_in_one_line_before_writing(tmp_path, names, reason):
    result, out = _skills(tmp_path, "--holdout-skills", names)
    assert result.returncode == 1
    assert reason in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_no_system_is_system_none(tmp_path):
    result, out = _skills(tmp_path, "--no-system")
    assert result.returncode == 0, result.stderr
    assert _records(out, "train")[0]["messages"][0]["role"] == "user"
