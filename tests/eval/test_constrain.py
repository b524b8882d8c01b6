"""Constrained decoding: the call grammar (unit and property tests); the logits processor on the
real tokenizer is in test_constrain_processor.py."""

import pytest
from grammar_cases import CASES, GRAMMARS, PACK, PACKS, STYLED, TYPED, fits, read, write
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from eval.constrain import START, CallGrammar
from skilltune.calls import Call, parse_call
from skilltune.skills import Param


@pytest.mark.parametrize(
    "text",
    [
        'weather(location="Berlin")',
        "weather()",
        "other()",
        'notes(action="add", note="buy milk")',
        'notes(note="buy milk", action="add")',  # any argument order
        'notes(action="list")',
        'weather(location="")',
        'story(description="café ☕ 東京")',
    ],
)
def test_default_pack_accepts(text):
    grammar = GRAMMARS["default"]
    assert grammar.complete(text)
    assert all(grammar.allows(text[:end]) for end in range(len(text) + 1))


@pytest.mark.parametrize(
    "text",
    [
        'weather(location="Berlin") ',  # nothing after `)`
        'weather(location="Berlin")\n',
        " weather()",  # nothing before the name
        "Weather()",
        "forecast()",
        'weather(city="Berlin")',  # not a parameter of weather
        'weather(location="a", location="b")',  # at most once
        'weather(location="a", ',  # `, ` with no parameter left is a dead end
        "weather(location='Berlin')",  # the targets' double quotes only
        'weather(location="a"b")',
        'weather(location="a\\"b")',  # no escapes inside free strings
        'weather(location="a\\")',  # ... so a backslash cannot end one either (Python reads `\"` as a quote)
        'weather(location="a\nb")',
        'weather(location="a\tb")',
        "weather(location=Berlin)",
        'notes(action="delete")',  # not a choice
        'notes(note="milk")',  # action is required
        'notes(action="add",note="milk")',  # the separator is `, `
        'notes(, action="add")',
        'other(x="y")',
    ],
)
def test_default_pack_refuses(text):
    assert not GRAMMARS["default"].complete(text)


@pytest.mark.parametrize(
    "text, complete",
    [
        ("alarm(hour=7)", True),
        ("alarm(hour=-12)", True),
        ("alarm(hour=0)", True),
        ("alarm(hour=007)", False),  # Python refuses leading zeros
        ("alarm(hour=7.5)", False),
        ("alarm(hour=)", False),
        ("alarm(hour=-)", False),
        ("alarm(hour=7, volume=0.5)", True),
        ("alarm(hour=7, volume=3)", True),
        ("alarm(hour=7, volume=1e-05)", True),
        ("alarm(hour=7, volume=-2.5E+3)", True),
        ("alarm(hour=7, volume=1.)", False),
        ("alarm(hour=7, volume=.5)", False),
        ("alarm(hour=7, vol=3, volume=3)", True),
        ("alarm(hour=7, repeat=True)", True),
        ("alarm(hour=7, repeat=true)", False),
        ('alarm(hour=7, repeat="True")', False),
        ('alarm(hour=7, mode="say \\"hi\\" \\\\ twice")', True),
        ('alarm(hour=7, mode="say")', False),
        ("alarm()", False),  # hour is required
        ("alarm(repeat=False, hour=1)", True),
        ('al(note="x")', True),
        ("al()", False),
    ],
)
def test_typed_values(text, complete):
    grammar = GRAMMARS["typed"]
    assert grammar.complete(text) is complete
    if complete:  # the oracle agrees
        assert fits(parse_call(text), TYPED)


def test_prefixes():
    grammar = GRAMMARS["typed"]
    for prefix in [
        "",
        "a",
        "al",
        "al(",
        "alarm(",
        "alarm(vo",
        "alarm(vol",
        "alarm(hour=-",
        "alarm(hour=1, volume=1.",
        "alarm(hour=1, volume=2e",
        "alarm(hour=1, volume=2e-",
        'alarm(mode="say \\"',
    ]:
        assert grammar.allows(prefix), prefix
        assert not grammar.complete(prefix), prefix
    for prefix in ["b", "alarm(hour=1, hour", "alarm(hour=1 ", "alarm(hour=1,,", "al)", "alarm(hour=01"]:
        assert not grammar.allows(prefix), prefix


@pytest.mark.parametrize(
    "text, complete",
    [
        ('{"function_call": {"name": "weather", "arguments": {"location": "Berlin"}}}', True),
        ('{"function_call": {"name": "other", "arguments": {}}}', True),
        ('{"function_call": {"name": "notes", "arguments": {"note": "x", "action": "add"}}}', True),
        ('{"function_call": {"name": "notes", "arguments": {"note": "x"}}}', False),  # action is required
        ('{"function_call": {"name": "notes", "arguments": {"action": "add",}}}', False),
        ('{"function_call":{"name":"other","arguments":{}}}', False),  # json.dumps spacing only
        ('{"function_call": {"name": "other", "arguments": {}}} ', False),
        ('{"function_call": {"name": "other"}}', False),
        ('{"function_call": {"name": "weather", "arguments": {"location": null}}}', False),
    ],
)
def test_json_style(text, complete):
    assert STYLED["default", "json"].complete(text) is complete


@pytest.mark.parametrize(
    "text, complete",
    [
        ('{"function_call": {"name": "alarm", "arguments": {"hour": 7, "repeat": true}}}', True),
        ('{"function_call": {"name": "alarm", "arguments": {"hour": 7, "repeat": True}}}', False),
        ('{"function_call": {"name": "alarm", "arguments": {"volume": -1.5e+20, "hour": 0}}}', True),
        ('{"function_call": {"name": "alarm", "arguments": {"hour": "7"}}}', False),
        ('{"function_call": {"name": "alarm", "arguments": {"hour": 7, "mode": "say \\"hi\\" \\\\ twice"}}}', True),
    ],
)
def test_json_style_typed(text, complete):
    assert STYLED["typed", "json"].complete(text) is complete
    if complete:
        assert fits(read(text, "json"), TYPED)


def test_unknown_style():
    with pytest.raises(ValueError, match="tools"):
        CallGrammar(PACK, "tools")


# --- property tests against the independent oracle: the project's parsers + Skill.check_call ----

PRINTABLE = st.characters().filter(lambda char: char.isprintable() and char not in '"\\')


def values(param: Param):
    if param.enum:
        return st.sampled_from(param.enum)
    if param.type == "array":
        return st.lists(values(Param(param.items, required=True)), max_size=4)
    return {
        "string": st.text(PRINTABLE, max_size=12),
        "integer": st.integers(),
        "number": st.integers() | st.floats(allow_nan=False, allow_infinity=False),
        "boolean": st.booleans(),
    }[param.type]


@st.composite
def valid_calls(draw, skills):
    chosen = draw(st.sampled_from(skills))
    optional = [name for name, param in chosen.params.items() if not param.required]
    names = [name for name, param in chosen.params.items() if param.required]
    names += draw(st.lists(st.sampled_from(optional), unique=True)) if optional else []
    names = draw(st.permutations(names))
    return chosen, Call(chosen.name, {name: draw(values(chosen.params[name])) for name in names})


@pytest.mark.parametrize("pack, style", CASES)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_every_valid_call_is_complete_and_every_prefix_allowed(pack, style, data):
    chosen, call = data.draw(valid_calls(PACKS[pack]))
    assert chosen.check_call(call) is None
    text = write(call, style)
    grammar = STYLED[pack, style]
    state = START
    for char in text:  # the incremental path: one step per character, as the processor advances
        state = grammar.step(state, char)
        assert state is not None, text
    assert grammar.is_complete(state) and grammar.complete(text)
    # the shortest completion from anywhere along the way really completes, and is never longer
    for end in range(0, len(text), 3):
        closing = grammar.closing(grammar.advance(START, text[:end]))
        assert grammar.complete(text[:end] + closing)
        assert len(closing) <= len(text) - end


def walk_alphabet(skills, style):
    """Characters to build texts from: the grammar's own, plus some it must refuse."""
    chars = set('"(),= {}[]:0123456789.-+eE') | set("TrueFalstrufs") | set("xé\n\t\\'")
    chars |= set(write(Call("x", {"y": 1}), style))
    for each in skills:
        chars |= set(each.name + "".join(each.params))
        for param in each.params.values():
            chars |= set("".join(param.enum))
    return sorted(chars)


@pytest.mark.parametrize("pack, style", CASES)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_complete_text_is_a_valid_call(pack, style, data):
    """Random walks through the grammar: whatever it calls complete parses and fits its skill."""
    grammar, skills = STYLED[pack, style], PACKS[pack]
    alphabet = walk_alphabet(skills, style)
    text, state = "", START
    while not grammar.is_complete(state) and len(text) < 150:
        allowed = [char for char in alphabet if grammar.step(state, char) is not None]
        assert allowed, f"dead end after {text!r}"
        closing = grammar.closing(state)
        # lean towards finishing (one step in four follows the shortest completion), so most walks end
        char = closing[0] if data.draw(st.integers(0, 3)) == 0 else data.draw(st.sampled_from(allowed))
        text, state = text + char, grammar.step(state, char)
    event("complete" if grammar.is_complete(state) else "cut off")  # see --hypothesis-show-statistics
    if grammar.is_complete(state):
        assert fits(read(text, style), skills), text


@pytest.mark.parametrize("pack, style", CASES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_mutated_calls_are_complete_only_if_valid(pack, style, data):
    """Near misses of valid calls (one character changed, added or removed) are refused unless valid."""
    _, call = data.draw(valid_calls(PACKS[pack]))
    text = write(call, style)
    at = data.draw(st.integers(0, len(text)))
    char = data.draw(st.sampled_from(walk_alphabet(PACKS[pack], style)))
    edit = data.draw(st.sampled_from(["insert", "replace", "delete"]))
    mutated = {
        "insert": text[:at] + char + text[at:],
        "replace": text[:at] + char + text[at + 1 :],
        "delete": text[:at] + text[at + 1 :],
    }[edit]
    if STYLED[pack, style].complete(mutated):
        assert fits(read(mutated, style), PACKS[pack]), mutated


def test_a_number_stays_a_finite_float():
    grammar = STYLED["typed", "python"]
    assert grammar.complete("alarm(hour=7, volume=1e-05)") and grammar.complete("alarm(hour=7, volume=-1.5e+300)")
    assert grammar.complete("alarm(hour=7, volume=1e-999)")  # underflows to 0.0: finite
    assert not grammar.allows("alarm(hour=7, volume=1e999") and not grammar.allows("alarm(hour=7, volume=2E308")
    assert not grammar.allows("alarm(hour=7, volume=" + "9" * 309)


@pytest.mark.parametrize(
    "text, complete",
    [
        ("mean(values=[])", True),
        ("mean(values=[1, -2.5, 3e-05])", True),
        ('mean(values=[1], names=["a b", "c"], flags=[True, False], counts=[0, 7])', True),
        ("mean(values=[1,2])", False),  # the separator is ", ", as both styles write it
        ("mean(values=[1, ])", False),
        ("mean(values=[01])", False),
        ("mean(values=[1e999])", False),
        ("mean(values=[1], counts=[1.5])", False),  # an integer list holds integers
        ("mean(values=[1], names=['a'])", False),
        ('mean(values=["1"])', False),
        ("mean(values=1)", False),
        ("mean(names=[])", False),  # values is required
    ],
)
def test_lists(text, complete):
    assert STYLED["lists", "python"].complete(text) is complete


def test_a_list_closes_from_anywhere_inside():
    grammar = STYLED["lists", "python"]
    for prefix in ["mean(values=[", "mean(values=[1, ", 'mean(values=[], names=["ab', "mean(values=[2e"]:
        closing = grammar.closing(grammar.advance(START, prefix))
        assert closing is not None and grammar.complete(prefix + closing), prefix


def test_closing_stays_short_when_keys_hold_digits():
    """Keys such as num1 put digits in the search's characters; a number still closes with "0"
    (found in a few steps, not by trying every digit string: BFCL's math.gcd(num1, num2) hung so)."""
    from skilltune.skills import Skill

    params = {name: Param("number", required=True) for name in ("num1", "num2", "num3")}
    grammar = CallGrammar([Skill("math.gcd", "math.gcd(...)", "", params)])
    state = grammar.advance(START, "math.gcd(num1=12")
    closing = grammar.closing(state)
    assert grammar.complete("math.gcd(num1=12" + closing)
    assert closing == ", num2=0, num3=0)"


def test_closing_stays_short_inside_lists_of_numbers():
    """From inside a list of numbers the shortest completion is found without trying every digit
    string: keys that hold digits put them in the search's characters, and two required number
    lists with a long key after them hung a BFCL run."""
    from skilltune.skills import Skill

    params = {
        "values_1": Param("array", required=True, items="number"),
        "weights_23456789": Param("array", required=True, items="integer"),
        "a_rather_long_parameter_name": Param("string", required=True),
    }
    grammar = CallGrammar([Skill("traits", "traits(...)", "", params)])
    for prefix in ("traits(values_1=[1.5, 2", "traits(weights_23456789=[7"):
        closing = grammar.closing(grammar.advance(START, prefix))
        assert closing is not None and grammar.complete(prefix + closing), prefix
