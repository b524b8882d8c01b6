"""datagen/compound.py and `datagen skills --compound`: two skills in one request, two calls in the answer."""

import json
import subprocess
import sys

import pytest
from conftest import PACK, REPO

from datagen.compound import CONNECTIVES, add_compounds, join
from datagen.expand import generate_pairs
from datagen.noise import drop_punctuation
from datagen.split import add_speech_noise, dedup_across_skills, split_pairs
from skilltune.calls import Call, parse_call
from skilltune.jsonio import read_json, read_jsonl
from skilltune.pairs import Pair, normalize
from skilltune.records import gold_calls, user_text
from skilltune.skills import load_pack

SKILLS = load_pack(PACK)
TIMER = Pair("Set a timer for ten minutes.", parse_call('timer(duration="ten minutes")'), "set a timer for ten minutes")
NOTE = Pair("Add eggs to my list", parse_call('notes(action="add", note="eggs")'), "add eggs to my list")


def _folded(calls):
    # a value as heard: the transcript's case, its punctuation dropped where the transcript dropped it
    return [
        (call.name, {key: drop_punctuation(str(value).lower(), [], None) for key, value in call.arguments.items()})
        for call in calls
    ]


def _splits(seed=0, noise=0.3):
    pairs, _ = dedup_across_skills(generate_pairs(SKILLS, 1000, 0.1, seed, []))
    return add_speech_noise(split_pairs(pairs, seed, 0.1, 0.1), noise, seed)


def test_join_reads_as_one_sentence_with_both_calls_in_order():
    compound = join(TIMER, NOTE, "{} and {}")
    assert compound.user == "Set a timer for ten minutes and add eggs to my list"
    assert compound.calls == (TIMER.call, NOTE.call) and compound.group == TIMER.group
    # a second request that opens with "I" or with a copied value keeps its case: the value stays verbatim
    berlin = Pair("Berlin weather please", parse_call('weather(location="Berlin")'))
    assert join(NOTE, berlin, "{}, then {}").user == "Add eggs to my list, then Berlin weather please"
    story = Pair("I'd love a story about owls", parse_call('story(description="owls")'))
    assert join(NOTE, story, "{} and also {}").user.endswith(" and also I'd love a story about owls")


def test_a_share_of_train_val_and_test_becomes_compound_and_nothing_crosses_splits():
    splits = _splits()
    result = add_compounds(splits, 0.2, seed=0)
    for split in ("train", "val", "test"):
        before, after = splits[split], result[split]
        assert len(after) == len(before)  # a compound replaces one single record
        compounds = [pair for pair in after if pair.later_calls]
        assert len(compounds) == pytest.approx(0.2 * len(before), abs=2)
        singles = {normalize(pair.user): pair for pair in before}
        groups = {pair.group for pair in before}
        for pair in compounds:
            first, second = pair.calls
            assert first.name != second.name and not first.is_no_call and not second.is_no_call
            assert pair.group in groups  # the compound stays where its parts are
            # the second request is a record of the same split, still there alone (its first letter
            # may be lowered to continue the sentence: normalized, the compound ends with it)
            tails = [
                single
                for single in singles.values()
                if single.call == second and normalize(pair.user).endswith(normalize(single.user))
            ]
            assert any(tail in after for tail in tails)
        # the skill counts (by first call) are those of the split before
        assert sorted(pair.call.name for pair in after) == sorted(pair.call.name for pair in before)
    keys = [normalize(pair.user) for name, pairs in result.items() if name != "test_noisy" for pair in pairs]
    assert len(keys) == len(set(keys))
    noisy_compounds = [pair for pair in result["test_noisy"] if pair.later_calls]
    test_compounds = [pair for pair in result["test"] if pair.later_calls]
    assert 0 < len(noisy_compounds) <= len(test_compounds)
    for pair in noisy_compounds:  # a test compound as heard: its copied values in the transcript's case
        assert any(_folded(pair.calls) == _folded(twin.calls) for twin in test_compounds)
        for value in (value for call in pair.calls for value in call.arguments.values()):
            assert value in pair.user or value.lower() not in pair.user.lower()
    assert result["test_noisy"][: len(splits["test_noisy"])] == splits["test_noisy"]
    train_keys = {normalize(pair.user) for pair in result["train"] + result["val"]}
    assert not train_keys & {normalize(pair.user) for pair in result["test_noisy"]}


def test_compounds_are_deterministic_for_the_seed_and_leave_other_splits_alone():
    splits = {**_splits(), "test_wording": [NOTE]}
    first = add_compounds(splits, 0.1, seed=3)
    assert first == add_compounds(splits, 0.1, seed=3)
    assert first["train"] != add_compounds(splits, 0.1, seed=4)["train"]
    assert first["test_wording"] == [NOTE]
    assert add_compounds(splits, 0.0, seed=3) == splits
    connectives = {c.split("{}")[1] for c in CONNECTIVES}
    used = {c for pair in first["train"] if pair.later_calls for c in connectives if c in pair.user}
    assert len(used) > 2


def test_no_compound_without_a_second_call_skill():
    only_timers = [Pair(f"set a timer for {i} minutes", Call("timer", {"duration": f"{i} minutes"})) for i in range(20)]
    others = [Pair(f"hello number {i}", Call("other")) for i in range(20)]
    result = add_compounds({"train": only_timers + others, "val": [], "test": []}, 0.5, seed=0)
    assert result["train"] == only_timers + others


def _skills(tmp_path, *args):
    out = tmp_path / "data"
    command = [sys.executable, "-m", "datagen", "skills", "--pack", str(PACK), "--out", str(out), "--n", "1000"]
    result = subprocess.run([*command, *args], cwd=REPO, capture_output=True, text=True)
    return result, out


@pytest.mark.parametrize("style", ["python", "json", "tools"])
def test_skills_compound_writes_two_call_records_that_validate(tmp_path, style):
    result, out = _skills(tmp_path, "--compound", "0.1", "--style", style)
    assert result.returncode == 0, result.stderr
    files = sorted(out.glob("*.jsonl"))
    check = subprocess.run(
        [sys.executable, "-m", "datagen", "validate", *map(str, files)], cwd=REPO, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    manifest = read_json(out / "manifest.json", "manifest")
    assert manifest["options"]["compound"] == 0.1
    for split in ("train", "val", "test", "test_noisy"):
        records = list(read_jsonl(out / f"{split}.jsonl", "record"))
        two = [record for record in records if len(gold_calls(record)) == 2]
        assert len(two) >= round(0.1 * len(records)) - 2, split
        answer = two[0]["messages"][-1]
        if style == "python":
            assert answer["content"].startswith("[") and answer["content"].endswith(")]")
        elif style == "json":
            assert [item.keys() for item in json.loads(answer["content"])] == [{"function_call"}] * 2
        else:
            assert len(answer["tool_calls"]) == 2
        # the manifest counts a compound under its first call
        assert sum(manifest["counts"][split].values()) == len(records)
    train = list(read_jsonl(out / "train.jsonl", "record"))
    assert len({user_text(record) for record in train}) == len(train)  # a compound never repeats a request


def test_compound_zero_writes_the_records_of_a_run_without_the_option(tmp_path):
    result, out = _skills(tmp_path, "--compound", "0")
    assert result.returncode == 0, result.stderr
    result, default = _skills(tmp_path / "default")
    assert result.returncode == 0, result.stderr
    for path in sorted(out.glob("*.jsonl")):
        assert path.read_bytes() == (default / path.name).read_bytes(), path.name
    records = [record for split in ("train", "val", "test") for record in read_jsonl(out / f"{split}.jsonl", "record")]
    assert all(len(gold_calls(record)) == 1 for record in records)
    result = subprocess.run(
        [sys.executable, "-m", "datagen", "skills", "--out", str(tmp_path / "x"), "--compound", "0.6"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "0.6" in result.stderr and not (tmp_path / "x").exists()
