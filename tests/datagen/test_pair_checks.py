"""Whether a pair that fits its skill's schema makes sense (datagen/pair_checks.py), on the real
default pack, and how much the checks raise the precision of what `datagen llm` accepts."""

import json

import pytest
from conftest import FIXTURES, PACK

from datagen.llm_answers import build_pair
from datagen.pair_checks import has_words, pair_problem
from skilltune.calls import parse_call
from skilltune.pairs import copied_params
from skilltune.skills import load_pack

SKILLS = {skill.name: skill for skill in load_pack(PACK)}


def problem(user: str, call: str) -> str | None:
    parsed = parse_call(call)
    skill = SKILLS[parsed.name]
    assert skill.check_call(parsed) is None, call  # every case here gets past the schema
    return pair_problem(skill, user, parsed)


@pytest.mark.parametrize(
    "user, call, reason",
    [
        # what a weak local model sent, each accepted by the schema check alone
        ("A-B-C", 'notes(action="add", note="")', "request has no words"),
        ("d,", 'notes(action="list", note="")', "request has no words"),
        (
            "2015-3-14T16:07:19",
            'openai(prompt="write a poem about the moon in hindu culture,")',
            "request has no words",
        ),
        ("42", 'math(question="42")', "request has no words"),
        ("?? !!", "other()", "request has no words"),
        # the same calls under requests that do have words: the next check sees them
        ("add a note please", 'notes(action="add", note="")', "note is empty"),
        ("show me my notes", 'notes(action="list", note="   ")', "note is empty"),
        (
            "write a poem please",
            'openai(prompt="write a poem about the moon in hindu culture,")',
            "prompt='write a poem about the moon in hindu culture,' is not in the request",
        ),
        ("what time is it", 'timecheck(location="Tokyo")', "location='Tokyo' is not in the request"),
        ("add Romeo to my notes", 'notes(action="add", note="Rome")', "note='Rome' is not in the request"),
    ],
)
def test_nonsense_pairs_are_refused_with_their_reason(user, call, reason):
    assert problem(user, call) == reason


@pytest.mark.parametrize(
    "user, call",
    [
        ("add buy milk to my notes", 'notes(action="add", note="buy milk")'),
        ("what's on my list", 'notes(action="list")'),
        ("ADD   Buy Milk to my notes", 'notes(action="add", note="buy  milk")'),  # any case, any spaces
        ("what's eleven times six", 'math(question="11*6")'),  # math rewrites its question: not copied
        ("hiya", "other()"),
        ("run gimp", 'runapp(program="gimp")'),
        ("is it cold in São Paulo", 'weather(location="São Paulo")'),
    ],
)
def test_pairs_that_make_sense_pass(user, call):
    assert problem(user, call) is None


def test_the_copied_parameters_are_those_the_pack_examples_say_verbatim():
    copied = {name: copied_params(skill) for name, skill in SKILLS.items()}
    assert copied["notes"] == ["note"]  # action is a choice, not copied
    assert copied["math"] == []  # its examples rewrite the question as an expression
    assert copied["other"] == []
    for name in ("news", "openai", "runapp", "story", "timecheck", "timer", "weather"):
        assert copied[name] == [next(iter(SKILLS[name].params))], name


def test_the_pack_own_requests_pass_but_for_one_written_in_digits():
    refused = [
        (skill.name, example.user, pair_problem(skill, example.user, example.call))
        for skill in SKILLS.values()
        for example in skill.examples + skill.test_examples
        if pair_problem(skill, example.user, example.call)
    ]
    # only arithmetic written in digits; other() needs only a letter ("k", "hmm" are not skill requests)
    assert {name for name, _, _ in refused} == {"math"}, refused
    assert {user for _, user, _ in refused} <= {"7 x 8?", "6 x 7", "29 mod 4", "1234 + 5678 = ?"}, refused
    assert not has_words("7 x 8?") and has_words("compute (3+4)*5") and has_words("i'm bored")
    assert not has_words("k") and pair_problem(SKILLS["other"], "k", parse_call("other()")) is None


def test_the_llm_path_rejects_with_the_check_reason():
    pair, reason = build_pair(SKILLS["notes"], {"user": "d,", "arguments": {"action": "list", "note": ""}})
    assert pair is None and reason == "request has no words"
    pair, reason = build_pair(
        SKILLS["notes"], {"user": "add buy milk to my notes", "call": 'notes(action="add", note="buy milk")'}
    )
    assert reason is None and pair["call"] == 'notes(action="add", note="buy milk")'


def test_precision_of_the_accepted_pairs_before_and_after_the_checks():
    """40 candidates labelled by hand (tests/fixtures/llm_candidates.jsonl): 24 good, 16 bad, every
    one of them fits its skill's schema, so the schema checks alone accept all 40."""
    rows = [json.loads(line) for line in (FIXTURES / "llm_candidates.jsonl").read_text().splitlines()]
    before, after = [], []
    for row in rows:
        call = parse_call(row["call"])
        skill = SKILLS[row["skill"]]
        if skill.check_call(call) is None:  # all the old path checked
            before.append(row)
        if pair_problem(skill, row["user"], call) is None:
            after.append(row)

    def precision(accepted):
        return sum(row["label"] == "good" for row in accepted) / len(accepted)

    good = [row for row in rows if row["label"] == "good"]
    assert len(rows) == 40 and len(good) == 24 and len(before) == 40
    assert all(row in after for row in good)  # no good pair is lost
    assert round(precision(before), 3) == 0.6
    assert round(precision(after), 3) == 0.889  # 24 of 27: 13 of the 16 bad refused
    # what is left needs a reader of meaning (--judge-model): wrong skill, wrong choice, a value cut short
    assert sorted(row["kind"] for row in after if row["label"] == "bad") == [
        "value cut short (only a judge sees it)",
        "wrong choice (only a judge sees it)",
        "wrong skill (only a judge sees it)",
    ]
