import subprocess
import sys

import pytest
from conftest import FIXTURES, REPO

from skilltune.skills import Param, SkillFileError, load_pack, parse_skill_file

FIXTURE = (FIXTURES / "weather_ok.txt").read_text()
NOTES = """#### Prompt:
notes(action="add|list", note="[note]")
Notes.

#### Examples:
### User: add milk to my notes
### Assistant: notes(action="add", note="milk")
"""


def test_fixture_parses_into_skill_with_examples(tmp_path):
    path = tmp_path / "weather.txt"
    path.write_text(FIXTURE)
    skill = parse_skill_file(path)
    assert skill.name == "weather"
    assert skill.params == {"location": Param("string", required=False)}
    assert skill.description == "Current weather for a place."
    assert [(e.user, e.call.to_python(), e.in_prompt) for e in skill.examples] == [
        ("what's the weather in Berlin", 'weather(location="Berlin")', True),
        ("is it raining in oslo", 'weather(location="Oslo")', False),
        ("how's the weather", "weather()", False),
    ]
    assert skill.examples[1].line == 10


def test_enum_parameter_is_required_choice(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text(NOTES)
    skill = parse_skill_file(path)
    assert skill.json_schema() == {
        "type": "object",
        "properties": {"action": {"type": "string", "enum": ["add", "list"]}, "note": {"type": "string"}},
        "required": ["action"],
        "additionalProperties": False,
    }
    assert skill.short_signature() == 'notes(action="add"|"list", note)'


@pytest.mark.parametrize(
    "replace, add, line, reason",
    [
        # a bare `User:` line, which a widely used parser silently drops
        (None, "User: hello there\n", 14, "unexpected line in Examples (write '### User:'"),
        (None, "### User: hello there\n", 14, "no ### Assistant: line after it"),
        (None, "### Assistant: weather()\n", 14, "without a ### User: line"),
        (None, "#### Notes:\n", 14, "unknown header '#### Notes:'"),
        (None, "### User: hi\n### Assistant: weather(location=Berlin)\n", 15, "is not a literal value"),
        (None, '### User: hi\n### Assistant: weather(city="Berlin")\n', 15, "does not fit"),
        (None, '### User: hi\n### Assistant: news(topic="x")\n', 15, "call to news() in the file of skill weather"),
        (None, '### User: hi\n### Assistant: weather("Berlin")\n', 15, "positional arguments are not allowed"),
        (None, "### User: hi\n### Assistant: what's up\n", 15, "not Python call syntax"),
        (('weather(location="[location]")', "weather(location=Berlin)"), "", 2, "signature"),
        (("#### Prompt:", "#### Prompt"), "", 1, "unknown header '#### Prompt'"),
        (
            ("Current weather for a place.", "Current weather.\n#### Examples:\n#### Examples:"),
            "",
            5,
            "#### Examples: appears twice",
        ),
        # held-out wording comes last, after the training examples
        (("#### Prompt Examples:", "#### Test Examples:"), "", 5, "#### Test Examples: before #### Examples:"),
        (("#### Examples:\n", "#### Test Examples:\n"), "", 9, "#### Test Examples: before #### Examples:"),
        (None, "#### Test Examples:\n### User: hi\n### Assistant: weather(city='Oslo')\n", 16, "does not fit"),
    ],
)
def test_bad_skill_file_names_file_and_line(tmp_path, replace, add, line, reason):
    text = FIXTURE
    if replace:
        text = text.replace(*replace)
    path = tmp_path / "weather.txt"
    path.write_text(text + add)
    with pytest.raises(SkillFileError) as caught:
        parse_skill_file(path)
    assert (caught.value.path, caught.value.line) == (str(path), line), str(caught.value)
    assert reason in str(caught.value)
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_test_examples_are_kept_apart_from_training_examples(tmp_path):
    path = tmp_path / "weather.txt"
    path.write_text(
        FIXTURE + '\n#### Test Examples:\n### User: is it cold in "Reykjavik"\n'
        '### Assistant: weather(location="Reykjavik")\n'
    )
    skill = parse_skill_file(path)
    assert [e.user for e in skill.test_examples] == ['is it cold in "Reykjavik"']
    assert skill.test_examples[0].line == 16 and not skill.test_examples[0].in_prompt
    assert "Reykjavik" not in {e.call.arguments.get("location") for e in skill.examples}


def test_sections_out_of_order_name_the_later_one(tmp_path):
    path = tmp_path / "weather.txt"
    swapped = FIXTURE.replace("#### Examples:", "#### Prompt Examples:", 1)
    path.write_text(swapped.replace("#### Prompt Examples:", "#### Examples:", 1))  # Examples first
    with pytest.raises(SkillFileError, match=r"weather.txt:9: #### Prompt Examples: after #### Examples:"):
        parse_skill_file(path)


def test_enum_value_outside_choices_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text(NOTES + '### User: delete it\n### Assistant: notes(action="delete")\n')
    with pytest.raises(SkillFileError, match=r"notes.txt:9: .*'delete' is not one of \['add', 'list'\]"):
        parse_skill_file(path)


def test_missing_required_choice_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text(NOTES + '### User: milk\n### Assistant: notes(note="milk")\n')
    with pytest.raises(SkillFileError, match=r"notes.txt:9: .*'action' is a required property"):
        parse_skill_file(path)


def test_duplicate_skill_names_in_pack(write_pack):
    pack = write_pack({"a.txt": FIXTURE, "b.txt": FIXTURE})
    with pytest.raises(SkillFileError, match=r"b.txt:1: skill weather is already defined in .*a.txt"):
        load_pack(pack)


def test_default_pack_has_ten_skills_with_enough_examples():
    skills = load_pack(REPO / "examples" / "skills")
    assert sorted(skill.name for skill in skills) == [
        "math",
        "news",
        "notes",
        "openai",
        "other",
        "runapp",
        "story",
        "timecheck",
        "timer",
        "weather",
    ]
    for skill in skills:
        assert len(skill.examples) >= 15, skill.name
        assert len(skill.test_examples) >= 20, skill.name  # the held-out-wording split


def test_check_command_fails_on_bare_user_line_naming_file_and_line(write_pack):
    pack = write_pack({"weather.txt": FIXTURE.replace("### User: how's the weather", "User: how's the weather")})
    result = subprocess.run(
        [sys.executable, "-m", "datagen", "check", str(pack)], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert f"{pack / 'weather.txt'}:12: unexpected line" in result.stderr


def test_check_command_passes_on_default_pack():
    result = subprocess.run([sys.executable, "-m", "datagen", "check"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "10 skills OK" in result.stdout


ALARM = """#### Prompt:
alarm(hour="<hour:int>", minute=0, repeat="[once|daily=once]", loud=False, label="[label]", volume="[volume:float]")
Set an alarm.

#### Examples:
### User: wake me at 7
### Assistant: alarm(hour=7)
### User: daily alarm at 6 30 called gym, loud
### Assistant: alarm(hour=6, minute=30, repeat="daily", label="gym", loud=True)
"""


def test_typed_parameters_and_defaults_become_json_schema(tmp_path):
    path = tmp_path / "alarm.txt"
    path.write_text(ALARM)
    skill = parse_skill_file(path)
    assert skill.json_schema() == {
        "type": "object",
        "properties": {
            "hour": {"type": "integer"},
            "minute": {"type": "integer", "default": 0},
            "repeat": {"type": "string", "enum": ["once", "daily"], "default": "once"},
            "loud": {"type": "boolean", "default": False},
            "label": {"type": "string"},
            "volume": {"type": "number"},
        },
        "required": ["hour"],
        "additionalProperties": False,
    }
    assert skill.short_signature() == (
        'alarm(hour:int, minute:int (default 0), repeat="once"|"daily" (default "once"), '
        "loud:bool (default false), label, volume:float)"
    )
    assert [param for param, p in skill.params.items() if p.free_string] == ["label"]


@pytest.mark.parametrize(
    "call, reason",
    [
        ("alarm(minute=5)", "'hour' is a required property"),
        ('alarm(hour="7")', "'7' is not of type 'integer'"),
        ("alarm(hour=7, loud=1)", "1 is not of type 'boolean'"),
        ("alarm(hour=True)", "True is not of type 'integer'"),
        ('alarm(hour=7, repeat="weekly")', "'weekly' is not one of ['once', 'daily']"),
    ],
)
def test_typed_parameters_are_checked(tmp_path, call, reason):
    path = tmp_path / "alarm.txt"
    path.write_text(ALARM + f"### User: hi\n### Assistant: {call}\n")
    with pytest.raises(SkillFileError) as caught:
        parse_skill_file(path)
    assert caught.value.line == 11 and reason in caught.value.reason, str(caught.value)


@pytest.mark.parametrize(
    "value, reason",
    [
        ('"<hour:integer>"', "unknown type 'integer'"),
        ('"<hour=7>"', "only an optional parameter"),
        ('"[hour:int=seven]"', "default 'seven' in '[hour:int=seven]' is not of type int"),
        ('"[once|daily=weekly]"', "default 'weekly' is not one of"),
        ('"hour"', 'expected "[slot]", "<slot>"'),
        ("None", 'expected "[slot]", "<slot>"'),
    ],
)
def test_bad_parameter_declarations_name_the_signature_line(tmp_path, value, reason):
    path = tmp_path / "alarm.txt"
    path.write_text(ALARM.replace('"<hour:int>"', value))
    with pytest.raises(SkillFileError) as caught:
        parse_skill_file(path)
    assert caught.value.line == 2 and "parameter 'hour'" in caught.value.reason and reason in caught.value.reason, str(
        caught.value
    )


@pytest.mark.parametrize("style", ["python", "json", "tools"])
def test_a_pack_with_typed_parameters_makes_valid_records(tmp_path, style):
    from skilltune.jsonio import read_jsonl
    from skilltune.records import gold_call

    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "other.txt").write_text((REPO / "examples" / "skills" / "other.txt").read_text())
    more = "".join(
        f"### User: set an alarm for {hour} o'clock\n### Assistant: alarm(hour={hour})\n"
        f"### User: wake me up at {hour} {minute} every day\n"
        f'### Assistant: alarm(hour={hour}, minute={minute}, repeat="daily")\n'
        for hour, minute in [(5, 15), (8, 45), (9, 20), (10, 5), (11, 50)]
    )
    (pack / "alarm.txt").write_text(ALARM + more)
    skill = parse_skill_file(pack / "alarm.txt")
    out = tmp_path / "data"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "datagen",
            "skills",
            "--pack",
            str(pack),
            "--n",
            "100",
            "--style",
            style,
            "--noise",
            "0.5",
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    calls = [gold_call(record) for record in read_jsonl(out / "train.jsonl", "record")]
    alarms = [call for call in calls if call.name == "alarm"]
    assert alarms and all(skill.check_call(call) is None for call in alarms)
    assert all(isinstance(call.arguments["hour"], int) for call in alarms)
    assert any(isinstance(call.arguments.get("minute"), int) for call in alarms)
