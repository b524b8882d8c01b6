import random

from conftest import REPO

from datagen.expand import PREFIXES, SUFFIXES, expand_skill, generate_pairs, skill_pairs, slot_pools, targets
from skilltune.calls import Call
from skilltune.pairs import normalize
from skilltune.skills import load_pack, parse_skill_file


def _skill(tmp_path, examples: str):
    path = tmp_path / "weather.txt"
    path.write_text('#### Prompt:\nweather(location="[location]")\n\n#### Examples:\n' + examples)
    return parse_skill_file(path)


def test_normalize_ignores_case_and_punctuation():
    assert normalize("What's the weather in  Berlin?") == normalize("whats the weather in berlin")


def test_swaps_values_between_examples_in_the_speakers_casing(tmp_path):
    skill = _skill(
        tmp_path,
        '### User: weather in Berlin\n### Assistant: weather(location="Berlin")\n'
        '### User: is it cold in oslo\n### Assistant: weather(location="oslo")\n'
        '### User: WEATHER FOR LIMA\n### Assistant: weather(location="LIMA")\n'
        "### User: how's the weather\n### Assistant: weather()\n",
    )
    assert slot_pools(skill) == {"location": ["Berlin", "LIMA", "oslo"]}
    originals, swaps = expand_skill(skill)
    assert [pair.user for pair in originals] == [
        "weather in Berlin",
        "is it cold in oslo",
        "WEATHER FOR LIMA",
        "how's the weather",
    ]
    # 3 templates x 3 values = 9 utterances, 3 of them the originals; the call says what the utterance says
    assert {(pair.user, pair.call.to_python()) for pair in swaps} == {
        ("weather in LIMA", 'weather(location="LIMA")'),
        ("weather in oslo", 'weather(location="oslo")'),
        ("is it cold in berlin", 'weather(location="berlin")'),
        ("is it cold in lima", 'weather(location="lima")'),
        ("WEATHER FOR BERLIN", 'weather(location="BERLIN")'),
        ("WEATHER FOR OSLO", 'weather(location="OSLO")'),
    }


def test_value_is_matched_as_whole_words(tmp_path):
    skill = _skill(
        tmp_path,
        '### User: weather in Rome for romeo\n### Assistant: weather(location="Rome")\n'
        '### User: weather in Nice\n### Assistant: weather(location="Nice")\n',
    )
    _, swaps = expand_skill(skill)
    assert ("weather in Nice for romeo", Call("weather", {"location": "Nice"})) in [(p.user, p.call) for p in swaps]


def test_every_expanded_call_keeps_its_value_in_the_utterance():
    for skill in load_pack(REPO / "examples" / "skills"):
        originals, swaps = expand_skill(skill)
        keys = [normalize(pair.user) for pair in originals + swaps]
        assert len(keys) == len(set(keys)), skill.name
        for pair in swaps:
            assert skill.check_call(pair.call) is None
            for name, value in pair.call.arguments.items():
                if name in slot_pools(skill):
                    assert value in pair.user, (pair.user, pair.call)  # verbatim, casing too


def test_generation_is_deterministic_balanced_and_keeps_hand_written_examples():
    skills = load_pack(REPO / "examples" / "skills")
    first = generate_pairs(skills, n=600, negative_ratio=0.1, seed=3)
    assert first == generate_pairs(skills, n=600, negative_ratio=0.1, seed=3)
    assert first != generate_pairs(skills, n=600, negative_ratio=0.1, seed=4)
    # 600 * 0.1 = 60 other(); 540 shared by 9 call skills = 60 each
    assert {name: len(pairs) for name, pairs in first.items()} == {skill.name: 60 for skill in skills}
    for skill in skills:
        users = {pair.user for pair in first[skill.name]}
        written = {example.user for example in skill.examples}
        # more hand-written than the 60 wanted: only they are used, and not just the file's first 60
        assert users <= written if len(written) >= 60 else written <= users
        assert users != {example.user for example in skill.examples[:60]}


def test_targets_share_the_remainder():
    skills = load_pack(REPO / "examples" / "skills")
    counts = targets(skills, n=1003, negative_ratio=0.2)
    # other: round(200.6) = 201; 802 = 9 * 89 + 1 -> the first call skill gets 90
    assert counts["other"] == 201
    assert sorted(counts.values()) == [89] * 8 + [90, 201]
    assert sum(counts.values()) == 1003


def test_wrapped_phrasings_fill_large_requests_and_keep_their_group(tmp_path):
    skill = _skill(
        tmp_path,
        '### User: weather in Berlin\n### Assistant: weather(location="Berlin")\n'
        "### User: how's the weather\n### Assistant: weather()\n",
    )
    pairs = skill_pairs(skill, 40, random.Random(0))
    assert len(pairs) == 40
    assert len({normalize(pair.user) for pair in pairs}) == 40
    assert {pair.group for pair in pairs} == {"weather in berlin", "hows the weather"}
    wrapped = [pair for pair in pairs if pair.group == "weather in berlin" and pair.user != "weather in Berlin"]
    assert wrapped and all("weather in Berlin" in pair.user for pair in wrapped)
    assert all(pair.call == Call("weather", {"location": "Berlin"}) for pair in wrapped)
    # 2 bases x 15 prefixes x 8 suffixes = 240 phrasings at most
    assert len(skill_pairs(skill, 1000, random.Random(0))) == 2 * len(PREFIXES) * len(SUFFIXES)


def test_ten_thousand_distinct_records_are_possible_from_the_default_pack():
    skills = load_pack(REPO / "examples" / "skills")
    pairs = [pair for skill_pairs_ in generate_pairs(skills, 10000, 0.1, 7).values() for pair in skill_pairs_]
    assert len(pairs) == 10000
    assert len({normalize(pair.user) for pair in pairs}) == 10000
