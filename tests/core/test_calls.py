import pytest

from skilltune.calls import Call, CallSyntaxError, parse_call


@pytest.mark.parametrize(
    "text, name, arguments",
    [
        ('weather(location="Berlin")', "weather", {"location": "Berlin"}),
        ("weather(location='Berlin')", "weather", {"location": "Berlin"}),
        ("  weather()  ", "weather", {}),
        ('notes(note="milk", action="add")', "notes", {"note": "milk", "action": "add"}),
        ('f(n=3, x=1.5, flag=True, items=["a", {"b": None}])', "f", {"n": 3, "x": 1.5, "flag": True, "items": ["a", {"b": None}]}),
    ],
)
def test_parse_call(text, name, arguments):
    assert parse_call(text) == Call(name, arguments)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("the weather is nice", "not Python call syntax"),
        ("weather", "not a function call"),
        ('os.system(cmd="ls")', "plain name"),
        ('weather("Berlin")', "positional"),
        ("weather(**{'location': 'x'})", r"\*\*kwargs"),
        ('weather(location="a", location="b")', "given twice"),
        ('weather(location=__import__("os").getcwd())', "not a literal"),
        ("weather(location=city)", "not a literal"),
        ("", "not Python call syntax"),
    ],
)
def test_parse_call_refuses(text, reason):
    with pytest.raises(CallSyntaxError, match=reason):
        parse_call(text)


def test_to_python_round_trips_quotes_and_backslashes():
    call = Call("openai", {"prompt": 'say "hi" \\ bye', "n": 2})
    assert call.to_python() == 'openai(prompt="say \\"hi\\" \\\\ bye", n=2)'
    assert parse_call(call.to_python()) == call


def test_other_is_the_no_call():
    assert parse_call("other()").is_no_call
    assert not parse_call("weather()").is_no_call


@pytest.mark.parametrize("note", ["milk\nand eggs", 'say "hi"', "back\\slash", "tab\there", "bell\u0007", "café ☕"])
def test_strings_with_escapes_round_trip(note):
    call = Call("notes", {"action": "add", "note": note})
    assert parse_call(call.to_python()) == call


@pytest.mark.parametrize("text, reason", [
    ("f(x=1e999)", "inf is not a JSON number"),
    ("f(x=[1, -1e999])", "-inf is not a JSON number"),
    ('f(x=b"raw")', "a bytes value has no JSON form"),
    ("f(x={1, 2})", "a set value has no JSON form"),
    ("f(x=1j)", "a complex value has no JSON form"),
    ("f(x={1: 2})", "dictionary keys must be strings"),
])
def test_values_with_no_json_form_are_refused(text, reason):
    # every call is also written as JSON (tools style, the OpenAI upload): Infinity there is not JSON
    with pytest.raises(CallSyntaxError, match=reason):
        parse_call(text)


def test_json_arguments_with_nan_are_refused():
    from skilltune.calls import call_from_tool_call

    with pytest.raises(CallSyntaxError, match="not JSON"):
        call_from_tool_call({"type": "function", "function": {"name": "f", "arguments": '{"x": NaN}'}})
