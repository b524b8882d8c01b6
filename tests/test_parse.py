import pytest

from datagen.calls import Call
from eval.parse import parse_output


@pytest.mark.parametrize(
    "text, expected",
    [
        ('weather(location="Berlin")', Call("weather", {"location": "Berlin"})),
        ('  other()\n', Call("other", {})),
        ('```\ntimer(duration="5 minutes")\n```', Call("timer", {"duration": "5 minutes"})),
        ('Sure! Here you go:\nnews(topic="sports")\nAnything else?', Call("news", {"topic": "sports"})),
        ('I would call weather(location="Paris (France)") for that.', Call("weather", {"location": "Paris (France)"})),
        ("You could try math(question='9*9') here", Call("math", {"question": "9*9"})),
    ],
)
def test_finds_the_call(text, expected):
    parsed = parse_output(text)
    assert parsed.ok and parsed.call == expected


@pytest.mark.parametrize(
    "text, error_type",
    [
        ("", "parse:empty"),
        ("   \n ", "parse:empty"),
        ("The weather in Berlin is sunny today.", "parse:no_call_found"),
        ('weather(location="Berl', "parse:no_call_found"),
        ('weather(location=input())', "parse:no_call_found"),
    ],
)
def test_typed_failure_instead_of_exception(text, error_type):
    parsed = parse_output(text)
    assert not parsed.ok
    assert parsed.error_type == error_type


def test_json_style_answer():
    parsed = parse_output('{"function_call": {"name": "weather", "arguments": {"location": "Oslo"}}}')
    assert parsed.call == Call("weather", {"location": "Oslo"})
    assert parse_output('{"function_call": {"name": "weather", "arguments": "{\\"location\\": \\"Oslo\\"}"}}').ok
    assert parse_output('{"function_call": 3}').error_type == "parse:no_call_found"
