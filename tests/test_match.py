import pytest

from datagen.calls import parse_call
from eval.match import match_call
from eval.parse import parse_output


def check(output: str, gold: str) -> dict:
    return match_call(parse_output(output), parse_call(gold))


def test_argument_order_does_not_matter():
    result = check('notes(note="milk", action="add")', 'notes(action="add", note="milk")')
    assert result == {"valid": True, "error": [], "error_type": None}


def test_quote_style_does_not_matter():
    assert check("weather(location='Berlin')", 'weather(location="Berlin")')["valid"]


@pytest.mark.parametrize(
    "output, gold, error_type, message",
    [
        ('timecheck(location="Berlin")', 'weather(location="Berlin")', "name:mismatch", "called timecheck() instead of weather()"),
        ("weather()", 'weather(location="Berlin")', "args:missing", "missing argument(s): location"),
        ('weather(location="Berlin")', "weather()", "args:unexpected", "unexpected argument(s): location"),
        ('weather(location="berlin")', 'weather(location="Berlin")', "args:value", "location='berlin', expected 'Berlin'"),
        ("no idea", "other()", "parse:no_call_found", "no parseable call"),
        ("", 'weather(location="Berlin")', "parse:empty", "no parseable call"),
    ],
)
def test_mismatches_are_typed(output, gold, error_type, message):
    result = check(output, gold)
    assert result["valid"] is False
    assert result["error_type"] == error_type
    assert message in result["error"][0]


def test_several_argument_errors_are_all_listed():
    result = check('notes(action="list", extra="x")', 'notes(action="add", note="milk")')
    assert result["error_type"] == "args:missing"
    assert result["error"] == [
        "missing argument(s): note",
        "unexpected argument(s): extra",
        "action='list', expected 'add'",
    ]
