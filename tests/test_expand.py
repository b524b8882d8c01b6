from pathlib import Path

from datagen.calls import Call
from datagen.expand import expand_skill, normalize, sample_per_skill, slot_pools
from datagen.skills import load_pack, parse_skill_file

REPO = Path(__file__).resolve().parent.parent


def _skill(tmp_path, examples: str):
    path = tmp_path / "weather.txt"
    path.write_text('#### Prompt:\nweather(location="[location]")\n\n#### Examples:\n' + examples)
    return parse_skill_file(path)


def test_normalize_ignores_case_and_punctuation():
    assert normalize("What's the weather in  Berlin?") == normalize("whats the weather in berlin")


def test_swaps_values_between_examples_and_keeps_speaker_casing(tmp_path):
    skill = _skill(
        tmp_path,
        "### User: weather in Berlin\n### Assistant: weather(location=\"Berlin\")\n"
        "### User: is it cold in oslo\n### Assistant: weather(location=\"Oslo\")\n"
        "### User: how's the weather\n### Assistant: weather()\n",
    )
    assert slot_pools(skill) == {"location": ["Berlin", "Oslo"]}
    originals, swaps = expand_skill(skill)
    assert [pair.user for pair in originals] == ["weather in Berlin", "is it cold in oslo", "how's the weather"]
    # 2 templates x 2 values = 4 utterances, 2 of them the originals
    assert {(pair.user, pair.call.to_python()) for pair in swaps} == {
        ("weather in Oslo", 'weather(location="Oslo")'),
        ("is it cold in berlin", 'weather(location="Berlin")'),
    }


def test_value_is_matched_as_whole_words(tmp_path):
    skill = _skill(
        tmp_path,
        "### User: weather in Rome for romeo\n### Assistant: weather(location=\"Rome\")\n"
        "### User: weather in Nice\n### Assistant: weather(location=\"Nice\")\n",
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
                    assert value.lower() in pair.user.lower(), (pair.user, pair.call)


def test_sampling_is_deterministic_and_keeps_hand_written_examples():
    skills = load_pack(REPO / "examples" / "skills")
    first = sample_per_skill(skills, per_skill=60, seed=3)
    assert first == sample_per_skill(skills, per_skill=60, seed=3)
    assert first != sample_per_skill(skills, per_skill=60, seed=4)
    for skill in skills:
        users = {pair.user for pair in first[skill.name]}
        assert {example.user for example in skill.examples} <= users
        assert len(first[skill.name]) <= 60
