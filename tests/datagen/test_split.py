import json
import subprocess
import sys

import pytest
from conftest import REPO

from datagen.held_out import WORDING_TEST
from datagen.split import NOISY_TEST, SPLITS, validate_records
from skilltune.jsonio import DataError, read_jsonl, sha256_of
from skilltune.pairs import normalize
from skilltune.records import user_text


def datagen(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "datagen", *args], cwd=cwd, capture_output=True, text=True)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "skills"
    result = datagen("skills", "--out", str(out), "--seed", "5", "--n", "500")
    assert result.returncode == 0, result.stderr
    return out


def test_dataset_has_splits_and_a_manifest_that_matches_the_files(dataset):
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert (manifest["generator"], manifest["seed"], manifest["style"]) == ("datagen skills", 5, "python")
    written = (*SPLITS, NOISY_TEST, WORDING_TEST)  # the default pack has held-out wording
    assert sorted(manifest["files"]) == sorted(f"{split}.jsonl" for split in written)
    for split in written:
        path = dataset / f"{split}.jsonl"
        assert manifest["files"][path.name] == sha256_of(path)
        records = list(read_jsonl(path, "record"))
        assert sum(manifest["counts"][split].values()) == len(records)
    # 10 skills x 50 records = 500 in train + val + test; each skill puts >= 1 in val and in test
    assert set(manifest["counts"]["test"]) == set(manifest["counts"]["train"]) == set(manifest["counts"]["val"])
    assert len(manifest["counts"]["test"]) == 10
    assert sum(sum(manifest["counts"][split].values()) for split in SPLITS) == 500
    # the noisy test split is the test split again, minus any noisy utterance that would leak
    assert 0.9 * sum(manifest["counts"]["test"].values()) <= sum(manifest["counts"][NOISY_TEST].values())


def test_no_utterance_is_written_twice(dataset):
    owners, records = {}, 0
    for split in SPLITS:
        for record in read_jsonl(dataset / f"{split}.jsonl", "record"):
            key = normalize(user_text(record))
            assert key not in owners, f"{key!r} in {owners[key]} and {split}"
            owners[key] = split
            records += 1
    assert len(owners) == records == 500


def test_same_seed_gives_byte_identical_files(dataset, tmp_path):
    again = tmp_path / "again"
    assert datagen("skills", "--out", str(again), "--seed", "5", "--n", "500").returncode == 0
    for name in ("train.jsonl", "val.jsonl", "test.jsonl", "test_noisy.jsonl", "test_wording.jsonl", "manifest.json"):
        assert (again / name).read_bytes() == (dataset / name).read_bytes(), name


def test_validate_accepts_the_dataset(dataset):
    result = datagen("validate", *(str(dataset / f"{split}.jsonl") for split in (*SPLITS, NOISY_TEST)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("records OK") == 4


def test_validate_names_file_and_line_of_a_bad_record(dataset, tmp_path):
    lines = (dataset / "val.jsonl").read_text().splitlines()
    bad = json.loads(lines[2])
    bad["messages"][-1]["content"] = "I think you want the weather"
    lines[2] = json.dumps(bad)
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:3: assistant answer .*not Python call syntax"):
        validate_records(path)
    result = datagen("validate", str(path))
    assert result.returncode == 1
    assert f"{path}:3:" in result.stderr


def test_validate_reports_broken_json_and_schema_errors(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text(
        '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "other()"}]}\n'
        '{"messages": \n'
    )
    assert f"{path}:2: not JSON" in datagen("validate", str(path)).stderr
    path.write_text('{"messages": [{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "other()"}]}\n')
    assert f"{path}:1: messages/0/role: 'robot' is not one of" in datagen("validate", str(path)).stderr


def test_validate_flags_an_utterance_shared_between_files(dataset, tmp_path):
    leaked = tmp_path / "leaked.jsonl"
    leaked.write_text((dataset / "train.jsonl").read_text().splitlines()[0] + "\n")
    result = datagen("validate", str(dataset / "train.jsonl"), str(leaked))
    assert result.returncode == 1
    assert "1 utterances appear in more than one file" in result.stderr


def test_bad_pack_leaves_no_partial_output(write_pack, tmp_path):
    pack = write_pack({"weather.txt": '#### Prompt:\nweather(location="[location]")\n\n#### Examples:\nUser: hi\n'})
    out = tmp_path / "out"
    result = datagen("skills", "--pack", str(pack), "--out", str(out))
    assert result.returncode == 1
    assert f"{pack / 'weather.txt'}:5:" in result.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [pack]


def test_phrasings_of_one_base_utterance_stay_in_one_split():
    from datagen.split import split_pairs
    from skilltune.calls import Call
    from skilltune.pairs import Pair

    pairs = [
        Pair(
            f"{prefix} weather in city {i}".strip(), Call("weather", {"location": f"city {i}"}), f"weather in city {i}"
        )
        for i in range(30)
        for prefix in ("", "hey", "ok so")
    ]
    splits = split_pairs({"weather": pairs}, seed=1, val_fraction=0.1, test_fraction=0.1)
    home = {}
    for split, members in splits.items():
        for pair in members:
            assert home.setdefault(pair.group, split) == split
    # 90 records in groups of 3: 0.1 -> 9 records -> 3 groups each for test and val
    assert (len(splits["test"]), len(splits["val"]), len(splits["train"])) == (9, 9, 72)


def test_speech_noise_changes_the_requested_share_and_never_leaks():
    from datagen.split import add_speech_noise
    from skilltune.calls import Call
    from skilltune.pairs import Pair

    pairs = [
        Pair(f"What is the weather in City{i}, please?", Call("weather", {"location": f"City{i}"})) for i in range(400)
    ]
    splits = {"train": pairs[:300], "val": pairs[300:350], "test": pairs[350:]}
    noisy = add_speech_noise(splits, share=0.5, seed=0)
    changed = sum(a.user != b.user for a, b in zip(splits["train"], noisy["train"]))
    assert 120 <= changed <= 180  # about half of 300
    assert len(noisy[NOISY_TEST]) == 50
    assert all(pair.call.arguments["location"].lower() in pair.user.lower() for pair in noisy[NOISY_TEST])
    owners = {}
    for split in SPLITS:
        for pair in noisy[split]:
            assert owners.setdefault(normalize(pair.user), split) == split


def test_speech_noise_never_repeats_an_utterance_within_a_split():
    from datagen.split import add_speech_noise
    from skilltune.calls import Call
    from skilltune.pairs import Pair

    # "um ..." twins: noise that adds a filler to the plain one would repeat its twin
    pairs = [
        Pair(f"{filler}what is the weather in City{i}", Call("weather", {"location": f"City{i}"}))
        for i in range(200)
        for filler in ("", "um ", "uh ", "like ")
    ]
    splits = {"train": pairs[:600], "val": pairs[600:700], "test": pairs[700:]}
    noisy = add_speech_noise(splits, share=1.0, seed=3)
    keys = [normalize(pair.user) for split in SPLITS for pair in noisy[split]]
    assert len(keys) == len(set(keys)) == 800
    noisy_keys = [normalize(pair.user) for pair in noisy[NOISY_TEST]]
    assert len(noisy_keys) == len(set(noisy_keys))
    assert not set(noisy_keys) & {normalize(pair.user) for split in ("train", "val") for pair in noisy[split]}


def test_llm_pairs_join_the_dataset_and_bad_ones_name_their_line(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    rows = [
        {
            "skill": "weather",
            "user": "any chance of sunshine over Reykjavik",
            "call": 'weather(location="Reykjavik")',
            "source": "llm",
        },
        {"skill": "timer", "user": "ping me after 7 minutes", "call": 'timer(duration="7 minutes")', "source": "llm"},
    ]
    pairs.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out"
    result = datagen("skills", "--out", str(out), "--n", "1300", "--noise", "0", "--pairs", str(pairs))
    assert result.returncode == 0, result.stderr
    users = {user_text(r) for split in SPLITS for r in read_jsonl(out / f"{split}.jsonl", "record")}
    # 115 records per call skill is more than its hand-written examples (82-89) plus LLM pairs, so all are
    # kept (and no speech noise rewrites them)
    assert {row["user"] for row in rows} <= users
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(rows[0]) + "\n" + json.dumps({**rows[1], "call": 'timer(length="7 minutes")'}) + "\n")
    result = datagen("skills", "--out", str(tmp_path / "out2"), "--pairs", str(bad))
    assert result.returncode == 1
    assert f'{bad}:2: timer(length="7 minutes") does not fit' in result.stderr
    assert not (tmp_path / "out2").exists()


def test_validate_reads_the_record_kind_from_the_manifest(tmp_path):
    from skilltune.jsonio import write_json, write_jsonl

    answer = {
        "messages": [
            {"role": "user", "content": "What is the refund window?"},
            {"role": "assistant", "content": "30 days from delivery."},
        ]
    }
    write_jsonl(tmp_path / "train.jsonl", [answer], "record")
    with pytest.raises(DataError, match=r"train.jsonl:1"):  # no manifest: skill rules, a free-text answer is no call
        validate_records(tmp_path / "train.jsonl")
    write_json(
        tmp_path / "manifest.json",
        {
            "generator": "documents",
            "seed": 0,
            "style": "chat",
            "source": "docs",
            "counts": {"train": {"documents": 1}},
            "files": {},
        },
        "manifest",
    )
    assert validate_records(tmp_path / "train.jsonl") == 1
    assert validate_records(tmp_path / "train.jsonl", "chat") == 1
