import pytest

from skilltune.calls import Call, CallSyntaxError, parse_call


@pytest.mark.parametrize(
    "text, name, arguments",
    [
        ('weather(location="Berlin")', "weather", {"location": "Berlin"}),
        ("weather(location='Berlin')", "weather", {"location": "Berlin"}),
        ("  weather()  ", "weather", {}),
        ('notes(note="milk", action="add")', "notes", {"note": "milk", "action": "add"}),
        (
            'f(n=3, x=1.5, flag=True, items=["a", {"b": None}])',
            "f",
            {"n": 3, "x": 1.5, "flag": True, "items": ["a", {"b": None}]},
        ),
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


@pytest.mark.parametrize(
    "text, reason",
    [
        ("f(x=1e999)", "inf is not a JSON number"),
        ("f(x=[1, -1e999])", "-inf is not a JSON number"),
        ('f(x=b"raw")', "a bytes value has no JSON form"),
        ("f(x={1, 2})", "a set value has no JSON form"),
        ("f(x=1j)", "a complex value has no JSON form"),
        ("f(x={1: 2})", "dictionary keys must be strings"),
    ],
)
def test_values_with_no_json_form_are_refused(text, reason):
    # every call is also written as JSON (tools style, the OpenAI upload): Infinity there is not JSON
    with pytest.raises(CallSyntaxError, match=reason):
        parse_call(text)


def test_json_arguments_with_nan_are_refused():
    from skilltune.calls import call_from_tool_call

    with pytest.raises(CallSyntaxError, match="not JSON"):
        call_from_tool_call({"type": "function", "function": {"name": "f", "arguments": '{"x": NaN}'}})


@pytest.mark.parametrize(
    "function, reason",
    [
        ({"name": "math.factorial", "arguments": {}}, "is not an identifier"),  # dotted: model output only
        ({"name": "f", "arguments": None}, "must be a JSON object"),
        ({"name": "f", "arguments": "[1]"}, "must be a JSON object"),
        ({"name": "f", "arguments": "{bad"}, "not JSON"),
    ],
)
def test_call_from_function_reads_records_exactly(function, reason):
    from skilltune.calls import call_from_function

    with pytest.raises(CallSyntaxError, match=reason):
        call_from_function(function)


def test_call_from_function_reads_as_the_reading_says():
    from skilltune.calls import RECORD_FUNCTIONS, FunctionReading, call_from_function

    # `parameters` is no key of a record's call, so it is not read there
    assert call_from_function({"name": "f", "parameters": {"x": 1}, "arguments": '{"y": 2}'}) == Call("f", {"y": 2})
    assert call_from_function({"name": "f", "parameters": {"x": 1}}) == Call("f")
    lenient = FunctionReading(
        is_name=lambda name: True,
        argument_keys=("arguments", "parameters"),
        decode=RECORD_FUNCTIONS.decode,
        null_is_empty=True,
    )
    assert call_from_function({"name": "a.b", "parameters": {"x": 1}}, lenient) == Call("a.b", {"x": 1})
    assert call_from_function({"name": "f", "arguments": None, "parameters": {"x": 1}}, lenient) == Call("f")
    assert call_from_function({"name": "f", "arguments": "  "}, lenient) == Call("f")
