import json
import keyword
import sys

import pytest
from conftest import REPO
from hypothesis import given, settings
from hypothesis import strategies as st

from eval import json_scan
from eval import parse as parse_module
from eval.parse import PARSE_ERRORS, Parsed, parse_output
from skilltune.calls import Call
from skilltune.records import answer_message, chat_record, tool_definitions
from skilltune.skills import load_pack

WEATHER = Call("weather", {"location": "Berlin"})


@pytest.mark.parametrize(
    "text, expected",
    [
        ('weather(location="Berlin")', [WEATHER]),
        ("weather(location='Berlin')", [WEATHER]),
        ('```\ntimer(duration="5 minutes")\n```', [Call("timer", {"duration": "5 minutes"})]),
        ('```python\nweather(location="Berlin")\n```', [WEATHER]),
        ('Sure! Here you go:\nnews(topic="sports")\nAnything else?', [Call("news", {"topic": "sports"})]),
        ('Sure, weather(location="Berlin") should do it.', [WEATHER]),
        (
            'I would call weather(location="Paris (France)") for that.',
            [Call("weather", {"location": "Paris (France)"})],
        ),
        ("You could try math(question='9*9') here", [Call("math", {"question": "9*9"})]),
        ('weather(\n    location="Berlin",\n)', [WEATHER]),
        ("math.factorial(number=5)", [Call("math.factorial", {"number": 5})]),
        (
            'f(a=[1, (2, 3)], b={"k": [True, None]}, c=-2.5, d=+3, e="")',
            [Call("f", {"a": [1, [2, 3]], "b": {"k": [True, None]}, "c": -2.5, "d": 3, "e": ""})],
        ),
        ("[f(a=1), g(b='x')]", [Call("f", {"a": 1}), Call("g", {"b": "x"})]),
        ("Calls: [f(a=1),\n g(b='x')] done", [Call("f", {"a": 1}), Call("g", {"b": "x"})]),
        ("f(a=1)\ng(b='x')", [Call("f", {"a": 1}), Call("g", {"b": "x"})]),
        # the call inside an argument, or after "=", is not an answer of its own
        ('outer(a="inner(b=1)")', [Call("outer", {"a": "inner(b=1)"})]),
        ('x = f(a=g(b=1))\nweather(location="Berlin")', [WEATHER]),
        # brackets and quotes inside string literals do not end the call
        ('f(a="say \\"hi\\" (x]", b=\'}\')', [Call("f", {"a": 'say "hi" (x]', "b": "}"})]),
        ("f(a='''two\nlines)''') then", [Call("f", {"a": "two\nlines)"})]),
        ('f(a="""q"")""")', [Call("f", {"a": 'q"")'})]),
    ],
)
def test_python_calls(text, expected):
    parsed = parse_output(text)
    assert parsed == Parsed(tuple(expected))
    assert parsed.ok and not parsed.is_no_call and parsed.call == expected[0]


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"function_call": {"name": "weather", "arguments": {"location": "Berlin"}}}', [WEATHER]),
        ('{"function_call": {"name": "weather", "arguments": "{\\"location\\": \\"Berlin\\"}"}}', [WEATHER]),
        ('{"name": "weather", "arguments": {"location": "Berlin"}}', [WEATHER]),
        ('{"name": "weather", "parameters": {"location": "Berlin"}}', [WEATHER]),
        (
            '```json\n{"name": "math.factorial", "arguments": {"number": 5}}\n```',
            [Call("math.factorial", {"number": 5})],
        ),
        ('[{"name": "f", "arguments": {"a": 1}}, {"name": "g", "arguments": {}}]', [Call("f", {"a": 1}), Call("g")]),
        (
            json.dumps(
                {
                    "tool_calls": [
                        {"type": "function", "function": {"name": "weather", "arguments": '{"location": "Berlin"}'}}
                    ]
                }
            ),
            [WEATHER],
        ),
        (json.dumps([{"type": "function", "function": {"name": "f", "arguments": "{}"}}]), [Call("f")]),
        ('Here it is: {"name": "weather", "arguments": {"location": "Berlin"}} - done', [WEATHER]),
        ('<tool_call>\n{"name": "weather", "arguments": {"location": "Berlin"}}\n</tool_call>', [WEATHER]),
        (
            'Let me check.\n<tool_call>{"name": "f", "arguments": {"a": 1}}</tool_call>\n'
            '<tool_call>{"name": "g", "arguments": {"b": [2]}}</tool_call>',
            [Call("f", {"a": 1}), Call("g", {"b": [2]})],
        ),
    ],
)
def test_json_and_tool_call_formats(text, expected):
    assert parse_output(text) == Parsed(tuple(expected))


def test_positional_arguments_need_a_signature():
    signatures = {"weather": ["location", "unit"]}
    assert parse_output('weather("Berlin")', signatures).calls == (WEATHER,)
    assert parse_output('weather("Berlin", unit="C")', signatures).calls == (
        Call("weather", {"location": "Berlin", "unit": "C"}),
    )
    assert parse_output('weather("Berlin")').error_type == "parse:positional"
    assert parse_output('weather("Berlin", "C", 3)', signatures).error_type == "parse:positional"
    assert parse_output('weather("Berlin", location="Oslo")', signatures).error_type == "parse:keyword"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n ",
        "other()",
        "  other()\n",
        "The weather in Berlin is sunny today.",
        "Sorry, I can't set timers.",
        '{"tool_calls": []}',
        "[]",
        "<tool_call></tool_call>",
    ],
)
def test_no_call(text):
    parsed = parse_output(text)
    assert parsed.ok and parsed.is_no_call
    assert parsed.calls in ((), (Call("other"),))


@pytest.mark.parametrize(
    "text, error_type",
    [
        ('weather(location="Berl', "parse:syntax"),
        ('Sure: weather(location="Berlin"', "parse:syntax"),
        ("f(a=1 b=2)", "parse:syntax"),
        ("[f(a=1), 3]", "parse:syntax"),
        ('f(a="one line\n")', "parse:syntax"),  # a one-line string ends at the line
        ("f(a='''never closed)", "parse:syntax"),
        ("weather(location=input())", "parse:non_literal"),
        ('f(x=open("a"))', "parse:non_literal"),
        ("f(x=y)", "parse:non_literal"),
        ("f(x=1 + 2)", "parse:non_literal"),
        ("f(x={1, 2})", "parse:non_literal"),
        ('os.system("ls")', "parse:positional"),
        ("f(a=1, a=2)", "parse:keyword"),
        ("f(**options)", "parse:keyword"),
        ("f(*values)", "parse:keyword"),
        ('{"function_call": 3}', "parse:json"),
        ('{"name": "weather", "arguments": {"location": "Ber', "parse:json"),
        ('{"location": "Berlin"}', "parse:json"),
        ('{"name": "weather", "arguments": "not json"}', "parse:json"),
        ('<tool_call>{"name": "weather", "arguments": {"loc', "parse:json"),
        ("<tool_call>{not json}</tool_call>", "parse:json"),
    ],
)
def test_typed_failure_instead_of_exception(text, error_type):
    parsed = parse_output(text)
    assert parsed == Parsed((), error_type)
    assert not parsed.ok and not parsed.is_no_call and parsed.call is None
    assert error_type in PARSE_ERRORS


def test_a_good_call_wins_over_prose_that_does_not_parse():
    parsed = parse_output('f(x) is a function; use weather(location="Berlin")')
    assert parsed == Parsed((WEATHER,))


def test_a_real_call_next_to_other_is_a_call():
    assert not parse_output('[other(), weather(location="Berlin")]').is_no_call


# --- hostile output --------------------------------------------------------------------------
# Speed is benchmarked (scripts/bench.py), not timed here: these count the work done instead, so a
# quadratic step fails the same way on any machine.


def test_an_output_over_the_length_cap_is_a_typed_failure():
    call = 'weather(location="Berlin")'
    assert parse_output(call.ljust(parse_module.MAX_OUTPUT_CHARS)) == Parsed((WEATHER,))
    assert parse_output(call.ljust(parse_module.MAX_OUTPUT_CHARS + 1)) == Parsed((), "parse:too_long")
    assert parse_output("{" * 1_000_000) == Parsed((), "parse:too_long")
    assert "parse:too_long" in PARSE_ERRORS
    assert parse_output(call.ljust(parse_module.MAX_OUTPUT_CHARS + 1), max_chars=None) == Parsed((WEATHER,))


def _work(text: str, monkeypatch) -> dict[str, int]:
    """What parse_output does on TEXT, counted: lines run of eval/parse.py and of eval/json_scan.py
    (its JSON-in-chatter scanner), characters of text the JSON decoder is handed (a failed decode
    also counts the lines before its error), and characters of text read for the context of each
    Python call."""
    counts = {"lines": 0, "decoded": 0, "context": 0}
    raw_decode, inside_expression = json.JSONDecoder.raw_decode, parse_module._is_inside_expression

    def decoding(self, s, idx=0):
        counts["decoded"] += len(s)
        return raw_decode(self, s, idx)

    def context(before):
        counts["context"] += len(before)
        return inside_expression(before)

    def trace(frame, event, arg):
        if frame.f_code.co_filename not in (parse_module.__file__, json_scan.__file__):
            return None
        if event == "line":
            counts["lines"] += 1
        return trace

    with monkeypatch.context() as patch:  # undone on return, so a second count wraps the originals
        patch.setattr(json.JSONDecoder, "raw_decode", decoding)
        patch.setattr(parse_module, "_is_inside_expression", context)
        sys.settrace(trace)
        try:
            parse_output(text)
        finally:
            sys.settrace(None)
    return counts


HOSTILE = {
    "braces": "{",
    "nested keys": '{"a":',
    "small objects left open": '{"a":1',
    "small objects": 'x {"a": 1} ',
    "brace in a string": '"{"',
    "keys holding braces": '{"{"',
    "parentheses": "(",
    "calls left open": "f(",
    "brackets": "[",
    "lists of calls left open": "[f(",
    "tool call tags": "<tool_call>",
    "tool calls of JSON": '<tool_call>{"a":',
    "code fences": "```",
    "quotes": '"',
    "arguments left open": "f(a=",
    "assignments": "x=f(",
    "calls": "f() ",
    "calls that fail": "f(x) ",
    "values": "= f()",
}


@pytest.mark.parametrize("unit", HOSTILE.values(), ids=HOSTILE.keys())
def test_parse_work_is_linear_in_the_length(unit, monkeypatch):
    # twice the text may cost twice the work, not four times (a step repeated from every "{" or
    # every call, over all the text before it, was quadratic: 1 MB of "{" took minutes)
    repeats = 4_000 // len(unit)
    small, large = _work(unit * repeats, monkeypatch), _work(unit * 2 * repeats, monkeypatch)
    for measure, count in large.items():
        assert count <= 2.2 * small[measure] + 100, (measure, small, large)


@pytest.mark.parametrize(
    "text, expected",
    [
        # the first "{" that opens a whole object is taken, even inside what looks like a string
        ('Use "{" for it: {"name": "f", "arguments": {}}', [Call("f")]),
        ('{"a": "{"name": "f", "arguments": {}}', [Call("f")]),
        # an object that does not close still holds whole ones
        (
            '{"calls": [{"name": "f", "arguments": {"a": 1}}, {"name": "g", "arguments": {}}',
            [Call("f", {"a": 1}), Call("g")],
        ),
        (
            'Sure { {"name": "f", "arguments": {}} and {"function": {"name": "g", "arguments": "{}"}}',
            [Call("f"), Call("g")],
        ),
        (
            'x {"note": "a } in a string", "name": "f", "arguments": {"b": [1, {"c": null}]}}',
            [Call("f", {"b": [1, {"c": None}]})],
        ),
    ],
)
def test_json_in_chatter(text, expected):
    assert parse_output(text) == Parsed(tuple(expected))


# --- properties ------------------------------------------------------------------------------

FRAGMENTS = [
    "(",
    ")",
    '"',
    "'",
    "<tool_call>",
    "</tool_call>",
    "{",
    "}",
    "[",
    "]",
    "f(",
    "=",
    ",",
    ":",
    "\\",
    "```",
    "\n",
    " ",
    "a",
    "x=1",
    '"name"',
    '"arguments"',
    "other()",
    "-",
    ".",
    "*",
    "**",
    "#",
]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join)))
def test_never_raises(text):
    parsed = parse_output(text, {"f": ["a", "b"]})
    assert isinstance(parsed, Parsed)
    assert parsed.error_type is None or parsed.error_type in PARSE_ERRORS
    assert all(isinstance(call, Call) for call in parsed.calls)
    assert not (parsed.calls and parsed.error_type)


def _identifier(pattern: str):
    # `if(...)` or `f(class=1)` are not Python; other() is the no-call answer, not a call
    return st.from_regex(pattern, fullmatch=True).filter(
        lambda name: not any(keyword.iskeyword(part) for part in name.split(".")) and name != "other"
    )


# Call.to_python writes a string's characters as they are, so a line break or NUL in a top-level
# string value would not be Python; nested values are written with repr and may hold anything
plain_text = st.text(st.characters(blacklist_characters="\n\r\x00", blacklist_categories=("Cs",)), max_size=20)
scalars = st.one_of(
    plain_text, st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.none()
)
nested = st.recursive(
    st.one_of(
        st.text(max_size=10), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.none()
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=8,
)
calls = st.builds(
    Call,
    _identifier(r"[a-z_][a-z0-9_]{0,8}(\.[a-z_][a-z0-9_]{0,8})?"),
    st.dictionaries(
        _identifier(r"[a-z_][a-z0-9_]{0,8}"),
        st.one_of(scalars, st.lists(nested, max_size=3), st.dictionaries(st.text(max_size=5), nested, max_size=3)),
        max_size=4,
    ),
)


@settings(max_examples=300, deadline=None)
@given(calls)
def test_round_trip(call):
    assert parse_output(call.to_python()) == Parsed((call,))


TWO_CALLS = (Call("timer", {"duration": "ten minutes"}), Call("notes", {"action": "add", "note": "eggs"}))


@pytest.mark.parametrize("style", ["python", "json"])
def test_a_two_call_answer_as_trained_reads_back_as_both_calls(style):
    assert parse_output(answer_message(TWO_CALLS, style)["content"]) == Parsed(TWO_CALLS)


@pytest.mark.parametrize("template", ["chatml_tools", "llama3_tools", "mistral_tools", "zephyr_tools"])
def test_two_tool_calls_as_each_template_writes_them_read_back_as_both_calls(template):
    # the text after the prompt is what a tools-style model is trained to write (Hermes blocks,
    # JSON lines, Mistral's [TOOL_CALLS] list), rendered as the tokenizer renders it
    from transformers.utils.chat_template_utils import _compile_jinja_template  # slow to import: here only

    tools = tool_definitions(load_pack(REPO / "examples" / "skills"))
    messages = chat_record(None, "set a timer for ten minutes and add eggs", TWO_CALLS, "tools", tools)["messages"]
    jinja = _compile_jinja_template((REPO / "configs" / "templates" / f"{template}.jinja").read_text())
    full, prompt = (
        jinja.render(messages=m, tools=tools, bos_token="<s>", eos_token="</s>") for m in (messages, messages[:1])
    )
    assert full.startswith(prompt)
    assert parse_output(full[len(prompt) :]) == Parsed(TWO_CALLS)


@pytest.mark.parametrize(
    "text, expected",
    [
        ('[timer(duration="ten minutes"), notes(action="add", note="eg', Parsed((), "parse:syntax")),  # cut off
        ('[timer(duration="ten minutes"), notes(action=add)]', Parsed((), "parse:non_literal")),
        ('[timer(duration="ten minutes"), "eggs"]', Parsed((), "parse:syntax")),  # a list holding a non-call
        # a JSON list cut in its second call keeps the first: a count of calls short, not both
        ('[{"name": "timer", "arguments": {"duration": "ten minutes"}}, {"name": "notes"', Parsed(TWO_CALLS[:1])),
    ],
)
def test_a_broken_list_of_calls_never_reads_as_both_calls(text, expected):
    assert parse_output(text) == expected
