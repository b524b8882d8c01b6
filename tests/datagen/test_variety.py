"""datagen/variety.py: rewrites keep the call exact and copied values verbatim."""

import random

from conftest import PACK

from datagen.variety import add_variety, mention_skill, misspell, quote_value, recase_value, shout
from skilltune.calls import parse_call
from skilltune.pairs import Pair, normalize
from skilltune.skills import load_pack

SKILLS = load_pack(PACK)
FREE = {skill.name: {name for name, param in skill.params.items() if param.free_string} for skill in SKILLS}
NOTE = Pair(
    "add return the library books to my notes", parse_call('notes(action="add", note="return the library books")')
)


def test_quote_keeps_the_value_unquoted_in_the_call():
    for seed in range(10):
        quoted = quote_value(NOTE, random.Random(seed), FREE)
        assert quoted.call == NOTE.call
        assert quoted.user != NOTE.user and normalize(quoted.user) == normalize(NOTE.user)


def test_recase_changes_value_and_call_together_but_never_a_choice():
    for seed in range(20):
        recased = recase_value(NOTE, random.Random(seed), FREE)
        if recased is None:  # the casing drawn was the one already there
            continue
        assert recased.call.arguments["action"] == "add"
        assert recased.call.arguments["note"] in recased.user
        assert recased.call.arguments["note"].lower() == "return the library books"


def test_shout_raises_the_request_and_its_copied_values_but_not_a_choice_or_a_rewrite():
    shouted = shout(NOTE, random.Random(0), FREE)
    assert shouted.user == "ADD RETURN THE LIBRARY BOOKS TO MY NOTES"
    assert shouted.call == parse_call('notes(action="add", note="RETURN THE LIBRARY BOOKS")')
    math = shout(Pair("what is 12*12", parse_call('math(question="12*12")')), random.Random(0), FREE)
    assert math.user == "WHAT IS 12*12" and math.call == parse_call('math(question="12*12")')
    # a value that is not the request's own words cannot follow it, and capitals are capitals already
    for said_otherwise in (
        Pair("weather in paris", parse_call('weather(location="Paris")')),
        Pair("what is twelve times twelve", parse_call('math(question="12*12")')),
    ):
        assert shout(said_otherwise, random.Random(0), FREE) is None
    assert shout(Pair("OPEN GIMP", parse_call('runapp(program="GIMP")')), random.Random(0), FREE) is None


def test_misspell_types_words_wrong_but_never_a_value_or_a_number():
    weather = Pair("what is the weather in San Francisco right now", parse_call('weather(location="San Francisco")'))
    math = Pair("what is twelve times twelve", parse_call('math(question="12*12")'))
    changed = set()
    for seed in range(30):
        for pair in (NOTE, weather, math):
            typed = misspell(pair, random.Random(seed), FREE)
            assert typed.call == pair.call and typed.user != pair.user
            changed.add(typed.user)
        assert "return the library books" in misspell(NOTE, random.Random(seed), FREE).user
        assert "San Francisco" in misspell(weather, random.Random(seed), FREE).user
        assert misspell(math, random.Random(seed), FREE).user.count("twelve") == 2
    assert len(changed) > 20  # slips and shorthands vary


def test_mention_names_the_skill_and_never_for_other():
    assert mention_skill(NOTE, random.Random(0), FREE).user.endswith(NOTE.user)
    assert "notes" in mention_skill(NOTE, random.Random(0), FREE).user.split(NOTE.user)[0]
    assert mention_skill(Pair("good morning", parse_call("other()")), random.Random(0), FREE) is None


def test_add_variety_rewrites_only_train_and_val_and_never_crosses_splits():
    pairs = [Pair(f"weather in Paris number {i}", parse_call('weather(location="Paris")'), str(i)) for i in range(200)]
    splits = {"train": pairs[:100], "val": pairs[100:150], "test": pairs[150:]}
    result = add_variety(splits, 1.0, 0, SKILLS)
    assert result["test"] == splits["test"]
    changed = [new for old, new in zip(splits["train"], result["train"]) if new != old]
    assert len(changed) > 50
    for new in changed:
        location = new.call.arguments["location"]
        assert location in new.user and location.lower() == "paris"
    keys = [normalize(pair.user) for split in result.values() for pair in split]
    assert len(keys) == len(set(keys))
