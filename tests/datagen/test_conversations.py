"""`python -m datagen conversations`: formats, each filter with exact counts, the public mix, errors."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import REPO
from conversation_files import QA, write_log, write_openai

from datagen.cli.conversations import conversations_command
from datagen.conversation_formats import read_conversations
from datagen.conversations import (
    APOLOGY,
    DUPLICATE,
    MID_SYSTEM,
    NAME,
    NO_ANSWER,
    REASONS,
    REPEATED,
    TOO_FEW,
    TOO_MANY,
    Filters,
    filter_conversations,
    read_public,
    split_and_mix,
)
from skilltune.jsonio import read_jsonl

SAMPLES = REPO / "examples" / "conversations"
LOGS = SAMPLES / "logs"
PUBLIC = SAMPLES / "public_instructions.jsonl"


def run(*args):
    return CliRunner().invoke(conversations_command, [str(arg) for arg in args])


def report(result) -> dict[str, int]:
    """The printed table as {row label: number}."""
    rows = {}
    for line in result.stdout.splitlines():
        label, _, number = line.rpartition(" ")
        if number.isdigit():
            rows[label.strip()] = int(number)
    return rows


def keep_all(**options) -> Filters:
    return Filters(drop_name_patterns=(), **options)


# --- the shipped samples


def test_samples_give_the_documented_counts_and_validate(tmp_path):
    out = tmp_path / "conversations"
    result = run(LOGS, "--out", out, "--mix", PUBLIC, "--mix-ratio", "1", "--seed", "0")
    assert result.exit_code == 0, result.output
    rows = report(result)
    # 6 log files + 6 OpenAI lines + 4 ShareGPT entries = 16 read
    assert rows["conversations read"] == 16
    assert rows["kept"] == 7
    assert {reason: rows[f"dropped: {reason}"] for reason in REASONS} == {
        NAME: 3,  # test.jsonl, untitled-2.jsonl, title "New chat"
        REPEATED: 2,  # repeat-question.jsonl (user), "Stuck translation" (assistant "Bom dia." twice)
        APOLOGY: 2,  # printer-jam.jsonl ("I'm sorry"), "Best pizza topping" ("As an AI")
        MID_SYSTEM: 0,
        NO_ANSWER: 1,  # "Half-finished question": one user message
        TOO_FEW: 0,
        TOO_MANY: 0,
        DUPLICATE: 1,  # "Hiking packing list" repeats "Packing list for a hiking weekend"
    }
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["generator"], manifest["style"], manifest["seed"]) == ("datagen conversations", "chat", 0)
    # 7 kept, val round(0.7) = 1; train 6 user + round(6 x 1) = 6 public
    assert manifest["counts"] == {"train": {"conversations": 6, "public": 6}, "val": {"conversations": 1, "public": 0}}
    assert len(list(read_jsonl(out / "train.jsonl", "record"))) == 12
    checked = subprocess.run(
        [sys.executable, "-m", "datagen", "validate", str(out / "train.jsonl"), str(out / "val.jsonl")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
    assert "train.jsonl: 12 records OK" in checked.stdout and "val.jsonl: 1 records OK" in checked.stdout


def test_turn_bounds_on_the_samples(tmp_path):
    # exchanges of the 7 kept samples: 3, 2, 1, 2, 1, 2, 1; the duplicate has 1 and the bounds
    # are checked before duplicates, so with --min-turns 2 it is "too few" rather than "duplicate"
    at_least_two = report(run(LOGS, "--out", tmp_path / "a", "--min-turns", "2"))
    assert (at_least_two["kept"], at_least_two[f"dropped: {TOO_FEW}"], at_least_two[f"dropped: {DUPLICATE}"]) == (
        4,
        4,
        0,
    )
    at_most_one = report(run(LOGS, "--out", tmp_path / "b", "--max-turns", "1"))
    assert (at_most_one["kept"], at_most_one[f"dropped: {TOO_MANY}"], at_most_one[f"dropped: {DUPLICATE}"]) == (3, 4, 1)


def test_same_seed_same_bytes_and_the_ratio_does_not_move_val(tmp_path):
    args = [LOGS, "--mix", PUBLIC, "--val-fraction", "0.3", "--seed", "4"]
    assert run(*args, "--out", tmp_path / "a").exit_code == 0
    assert run(*args, "--out", tmp_path / "b").exit_code == 0
    assert run(*args, "--out", tmp_path / "c", "--mix-ratio", "0.5").exit_code == 0
    for name in ("train.jsonl", "val.jsonl", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "val.jsonl").read_bytes() == (tmp_path / "c" / "val.jsonl").read_bytes()
    # 7 kept, val round(2.1) = 2, train 5 + round(5 x 0.5) = 3 (2.5 rounds to even)
    counts = json.loads((tmp_path / "c" / "manifest.json").read_text())["counts"]
    assert counts == {"train": {"conversations": 5, "public": 2}, "val": {"conversations": 2, "public": 0}}


# --- formats


def test_log_format_merges_same_role_runs_and_drops_the_unanswered_end(tmp_path):
    path = tmp_path / "bike.jsonl"
    path.write_text(
        '{"role": "user", "content": "I bike to work.", "timestamp": 1}\n\n'
        '{"role": "user", "content": "  12 km.  "}\n'
        '{"role": "assistant", "content": "About 40 minutes."}\n'
        '{"role": "user", "content": "and"}\n'
    )
    [conversation] = read_conversations((path,))
    assert (conversation.name, conversation.line, len(conversation.messages)) == ("bike", 1, 4)
    kept, dropped = filter_conversations([conversation], keep_all())
    assert kept == [
        {
            "messages": [
                {"role": "user", "content": "I bike to work.\n\n12 km."},
                {"role": "assistant", "content": "About 40 minutes."},
            ]
        }
    ]
    assert not dropped


def test_forced_format_reads_an_openai_file_as_a_log_and_fails(tmp_path):
    path = write_openai(tmp_path / "export.jsonl", [QA])
    result = run(path, "--out", tmp_path / "out", "--format", "log")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {path}:1: role None is not one of system, user, assistant"


# --- each filter


def test_name_filter_defaults_and_a_custom_pattern(tmp_path):
    titles = [
        "test",
        "Test 3",
        "untitled-2",
        "New Chat",
        "new conversation (4)",
        "latest test results",
        "Testing ideas",
    ]
    path = write_openai(tmp_path / "export.jsonl", [QA] * len(titles), titles)
    conversations = read_conversations((path,))
    # DUPLICATE would hide names behind repeats; give each its own answer
    for index, conversation in enumerate(conversations):
        conversation.messages[1] = {"role": "assistant", "content": f"answer {index}"}
    kept, dropped = filter_conversations(conversations, Filters())
    assert (len(kept), dropped) == (2, {NAME: 5})  # the last two only contain "test"
    kept, dropped = filter_conversations(conversations, Filters(drop_name_patterns=("latest.*",)))
    assert (len(kept), dropped) == (6, {NAME: 1})


def test_log_file_names_are_names(tmp_path):
    write_log(tmp_path / "logs", "Untitled", QA)
    write_log(tmp_path / "logs", "eggs", QA[:1] + [("assistant", "Nine minutes.")])
    result = run(tmp_path / "logs", "--out", tmp_path / "out", "--val-fraction", "0")
    assert (report(result)["kept"], report(result)[f"dropped: {NAME}"]) == (1, 1)
    result = run(tmp_path / "logs", "--out", tmp_path / "out", "--val-fraction", "0", "--drop-name-pattern", "")
    assert report(result)["kept"] == 2


def test_repeated_messages(tmp_path):
    cases = [
        QA + [("user", "how long do I BOIL an egg"), ("assistant", "Still nine.")],  # user repeat, case/punct aside
        QA + [("user", "And a soft one?"), ("assistant", "About nine minutes for a firm yolk.")],  # assistant repeat
        [("user", "?"), ("assistant", "Yes?"), ("user", "?"), ("assistant", "Go on.")],  # no words: no loop
        [("user", "Echo"), ("assistant", "Echo")],  # the same text from both sides is no repeat
    ]
    kept, dropped = filter_conversations(read_conversations((write_openai(tmp_path / "e.jsonl", cases),)), keep_all())
    assert (len(kept), dropped) == (2, {REPEATED: 2})


def test_apologetic_or_confused_answers(tmp_path):
    cases = [
        [("user", "Fix my sink"), ("assistant", "I\u2019m sorry, I can only talk.")],  # curly apostrophe
        [("user", "Opinion?"), ("assistant", "AS AN AI I have none.")],
        [("user", "Help"), ("assistant", "I cannot help with that.")],
        [("user", "Hm"), ("assistant", "I don't understand the question.")],
        [("user", "I'm sorry I was late."), ("assistant", "No problem at all.")],  # the user may apologize
    ]
    kept, dropped = filter_conversations(read_conversations((write_openai(tmp_path / "e.jsonl", cases),)), keep_all())
    assert (len(kept), dropped) == (1, {APOLOGY: 4})


def test_system_strip_keep_and_mid_conversation(tmp_path):
    cases = [
        [("system", "Be brief."), ("system", "Use metric."), *QA],
        [*QA, ("system", "Now be rude."), ("user", "More?"), ("assistant", "No.")],
    ]
    conversations = read_conversations((write_openai(tmp_path / "e.jsonl", cases),))
    kept, dropped = filter_conversations(conversations, keep_all())  # strip: the default
    assert len(kept) == 2 and not dropped
    assert all(message["role"] != "system" for record in kept for message in record["messages"])
    kept, dropped = filter_conversations(conversations, keep_all(keep_system=True))
    assert (len(kept), dropped) == (1, {MID_SYSTEM: 1})
    assert kept[0]["messages"][0] == {"role": "system", "content": "Be brief.\n\nUse metric."}


def test_no_answer_leading_greeting_and_duplicates(tmp_path):
    cases = [
        [("user", "Plan a party for")],  # nothing answered
        [("assistant", "Hi! Ask me anything."), ("user", "ok")],  # a greeting and an unanswered question
        [("assistant", "Hi! Ask me anything."), *QA],  # the greeting goes, the rest stays
        [("user", "  "), ("assistant", "")],  # empty turns are no turns
        QA,  # same dialogue as the third once the greeting is gone
    ]
    kept, dropped = filter_conversations(read_conversations((write_openai(tmp_path / "e.jsonl", cases),)), keep_all())
    assert kept == [{"messages": [{"role": "user", "content": QA[0][1]}, {"role": "assistant", "content": QA[1][1]}]}]
    assert dropped == {NO_ANSWER: 3, DUPLICATE: 1}


# --- the public mix and the val split


def test_public_reader_takes_alpaca_json_and_openai_lines(tmp_path):
    alpaca = tmp_path / "alpaca.json"
    alpaca.write_text(
        json.dumps(
            [{"instruction": "Double it.", "input": "21", "output": "42"}, {"instruction": "Say hi.", "output": "Hi."}],
            indent=1,
        )
    )
    assert read_public(alpaca, keep_system=False) == [
        {"messages": [{"role": "user", "content": "Double it.\n\n21"}, {"role": "assistant", "content": "42"}]},
        {"messages": [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi."}]},
    ]
    assert len(read_public(PUBLIC, keep_system=False)) == 12  # 8 Alpaca lines + 4 OpenAI lines


def _records(prefix: str, count: int) -> list[dict]:
    return [
        {"messages": [{"role": "user", "content": f"{prefix} {i}"}, {"role": "assistant", "content": "ok"}]}
        for i in range(count)
    ]


@pytest.mark.parametrize(
    "n_user, n_public, val_fraction, ratio, expected",
    [
        (10, 50, 0.2, 1.5, (2, 8, 12)),  # val round(2.0) = 2; train 8; public round(8 x 1.5) = 12
        (7, 50, 0.1, 0.5, (1, 6, 3)),  # val round(0.7) = 1; train 6; public round(3.0) = 3
        (10, 5, 0.1, 2.0, (1, 9, 5)),  # wants round(18) = 18 public, only 5 there: all 5
        (1, 5, 0.1, 1.0, (0, 1, 1)),  # a single conversation is never all val
        (20, 50, 0.0, 0.25, (0, 20, 5)),  # no val; round(5.0) = 5
    ],
)
def test_mix_arithmetic(n_user, n_public, val_fraction, ratio, expected):
    user, public = _records("mine", n_user), _records("public", n_public)
    splits, counts, wanted = split_and_mix(user, public, val_fraction, ratio, seed=3)
    n_val, n_train_user, n_public_used = expected
    assert counts == {
        "train": {"conversations": n_train_user, "public": n_public_used},
        "val": {"conversations": n_val, "public": 0},
    }
    assert wanted == round(n_train_user * ratio)
    assert all(record in user for record in splits["val"])  # val: the user's own only
    assert sum(record in public for record in splits["train"]) == n_public_used
    assert sorted(map(str, splits["val"] + [r for r in splits["train"] if r in user])) == sorted(map(str, user))


def test_val_never_holds_public_records_on_the_samples(tmp_path):
    out = tmp_path / "out"
    assert run(LOGS, "--out", out, "--mix", PUBLIC, "--mix-ratio", "2", "--val-fraction", "0.5").exit_code == 0
    public_requests = {record["messages"][0]["content"] for record in read_public(PUBLIC, keep_system=False)}
    val = list(read_jsonl(out / "val.jsonl", "record"))
    assert len(val) == 4  # round(7 x 0.5) = 4 (3.5 rounds to even)
    assert not any(record["messages"][0]["content"] in public_requests for record in val)
    train = list(read_jsonl(out / "train.jsonl", "record"))
    # train: 3 user + min(round(3 x 2), 12) = 6 public
    assert sum(record["messages"][0]["content"] in public_requests for record in train) == 6
    assert len(train) == 9


# --- bad input: one error line naming file:line, exit 1, no output


def _assert_fails_cleanly(tmp_path, result, expected: str):
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"error: {expected}"]
    assert not (tmp_path / "out").exists()
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".out.")]  # no staging left


def test_bad_log_line(tmp_path):
    path = write_log(tmp_path / "logs", "chat", QA)
    path.write_text(path.read_text() + '{"role": "bot", "content": "beep"}\n')
    result = run(tmp_path / "logs", "--out", tmp_path / "out")
    _assert_fails_cleanly(tmp_path, result, f"{path}:3: role 'bot' is not one of system, user, assistant")


def test_bad_openai_line(tmp_path):
    path = write_openai(tmp_path / "export.jsonl", [QA, QA])
    path.write_text(path.read_text() + '{"messages": [{"role": "user", "content": 5}]}\n{not json\n')
    result = run(path, "--out", tmp_path / "out")
    _assert_fails_cleanly(tmp_path, result, f"{path}:3: messages[0]: content must be a string, got int")


def test_bad_json_line(tmp_path):
    path = write_openai(tmp_path / "export.jsonl", [QA])
    path.write_text(path.read_text() + "{not json\n")
    result = run(path, "--out", tmp_path / "out")
    assert result.stderr.startswith(f"error: {path}:2: not JSON: ")
    _assert_fails_cleanly(tmp_path, result, result.stderr.strip()[len("error: ") :])


def test_bad_sharegpt_entry(tmp_path):
    path = tmp_path / "share.json"
    path.write_text(
        '[\n {"conversations": [{"from": "human", "value": "a"}]},\n\n'
        ' {"conversations": [{"from": "bot", "value": "b"}]}\n]\n'
    )
    result = run(path, "--out", tmp_path / "out")
    _assert_fails_cleanly(tmp_path, result, f"{path}:4: conversations[0]: from 'bot' is not one of human, gpt, system")


def test_bad_public_line(tmp_path):
    write_log(tmp_path / "logs", "chat", QA)
    public = tmp_path / "public.jsonl"
    public.write_text(
        '{"instruction": "a", "input": "", "output": "b"}\n'
        '{"instruction": "c", "input": "", "output": {"function_call": {}}}\n'
    )
    result = run(tmp_path / "logs", "--out", tmp_path / "out", "--mix", public)
    _assert_fails_cleanly(tmp_path, result, f"{public}:2: output must be a non-empty string")


def test_an_existing_output_survives_a_failed_run(tmp_path):
    write_log(tmp_path / "logs", "chat", QA)
    out = tmp_path / "out"
    assert run(tmp_path / "logs", "--out", out).exit_code == 0
    before = (out / "train.jsonl").read_bytes()
    write_log(tmp_path / "logs", "broken", QA).write_text("[]\n")
    result = run(tmp_path / "logs", "--out", out)
    assert result.exit_code == 1 and "broken.jsonl:1: cannot tell the format" in result.stderr
    assert (out / "train.jsonl").read_bytes() == before


def test_nothing_kept_is_an_error(tmp_path):
    write_log(tmp_path / "logs", "test", QA)
    result = run(tmp_path / "logs", "--out", tmp_path / "out")
    _assert_fails_cleanly(tmp_path, result, "no conversation survived the filters (1 read)")
