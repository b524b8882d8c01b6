import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from eval.match import Expected, argument_counts, judge_calls, match_call, match_calls, same_value
from eval.parse import Parsed, parse_output
from skilltune.calls import Call, parse_call

OK = {"valid": True, "error": [], "error_type": None}


def check(output: str, gold: str, **options) -> dict:
    return match_calls(parse_output(output), [parse_call(gold)], **options)


def test_argument_order_does_not_matter():
    assert check('notes(note="milk", action="add")', 'notes(action="add", note="milk")') == OK


def test_quote_style_does_not_matter():
    assert check("weather(location='Berlin')", 'weather(location="Berlin")')["valid"]


@pytest.mark.parametrize(
    "output, gold, error_type, message",
    [
        (
            'timecheck(location="Berlin")',
            'weather(location="Berlin")',
            "name:mismatch",
            "called timecheck() instead of weather()",
        ),
        ("weather()", 'weather(location="Berlin")', "args:missing", "missing argument(s): location"),
        ('weather(location="Berlin")', "weather()", "args:unexpected", "unexpected argument(s): location"),
        (
            'weather(location="berlin")',
            'weather(location="Berlin")',
            "args:value",
            "location='berlin', expected 'Berlin'",
        ),
        ('timer(minutes="5")', "timer(minutes=5)", "args:type", "minutes='5' is a str, expected int 5"),
        ("no idea", 'weather(location="Berlin")', "relevance:missed_call", "made no call where weather() was expected"),
        ("", 'weather(location="Berlin")', "relevance:missed_call", "no call"),
        ("other()", 'weather(location="Berlin")', "relevance:missed_call", "no call"),
        ('news(topic="cats")', "other()", "relevance:unexpected_call", "called news() where no call was expected"),
        ('weather(location="Ber', 'weather(location="Berlin")', "parse:syntax", "did not parse"),
        ('weather(location="Ber', "other()", "parse:syntax", "did not parse"),
    ],
)
def test_mismatches_are_typed(output, gold, error_type, message):
    result = check(output, gold)
    assert result["valid"] is False
    assert result["error_type"] == error_type
    assert message in result["error"][0]


@pytest.mark.parametrize("output", ["", "no idea", "other()", "   "])
def test_no_call_answers_match_other(output):
    assert check(output, "other()") == OK
    assert match_calls(parse_output(output), []) == OK


def test_several_argument_errors_are_all_listed():
    result = check('notes(action="list", extra="x")', 'notes(action="add", note="milk")')
    assert result["error_type"] == "args:missing"
    assert result["error"] == [
        "missing argument(s): note",
        "unexpected argument(s): extra",
        "action='list', expected 'add'",
    ]


def test_match_call_wrapper_keeps_the_old_shape():
    assert match_call(parse_output('weather(location="Berlin")'), parse_call('weather(location="Berlin")')) == OK
    assert match_call(parse_output("Sorry."), Call("other")) == OK
    assert (
        match_call(parse_output("weather()"), parse_call('weather(location="Berlin")'))["error_type"] == "args:missing"
    )


# --- strict vs lenient values ----------------------------------------------------------------


@pytest.mark.parametrize(
    "predicted, gold, strict, lenient",
    [
        (True, 1, False, False),  # 1 == True in Python; never here
        (1, True, False, False),
        (False, 0, False, False),
        (5, 5.0, False, True),  # an int where a float is expected, numerically equal
        (5.0, 5, False, True),
        (5, 6, False, False),
        ("5", 5, False, False),
        ("New York", "new york", False, True),
        ("New-York, NY.", "newyork ny", False, True),
        ("O'Brien", 'O"Brien', False, True),
        ("Berlin", "Bern", False, False),
        (["A", 1], ["a", 1.0], False, True),
        (["a", "b"], ["b", "a"], False, False),  # order within a list matters
        (["a"], ["a", "b"], False, False),
        ({"k": "X Y"}, {"k": "xy"}, False, True),
        ({"k": 1}, {"k": 1, "j": 2}, False, False),
        ({"K": 1}, {"k": 1}, False, False),  # keys are names: compared exactly
        ([True], [1], False, False),
        (None, None, True, True),
        ([[1, 2]], [[1, 2]], True, True),
    ],
)
def test_value_comparison(predicted, gold, strict, lenient):
    assert same_value(predicted, gold) is strict
    assert same_value(predicted, gold, lenient=True) is lenient


def test_lenient_matching_of_a_whole_call():
    output, gold = 'weather(location="new york", days=3)', 'weather(location="New York", days=3.0)'
    assert check(output, gold)["error_type"] == "args:type"  # strict: 3 is an int, not the float 3.0
    assert check(output, gold, lenient=True) == OK
    assert check('weather(location="Newark", days=3)', gold, lenient=True)["error_type"] == "args:value"
    # a bool is not a number even leniently
    assert check("timer(on=1)", "timer(on=True)", lenient=True)["error_type"] == "args:type"


# --- acceptable values and optional arguments ------------------------------------------------

AREA = Expected("area", {"base": [10], "unit": ["units", "u", ""]})


@pytest.mark.parametrize(
    "output, error_type",
    [
        ("area(base=10)", None),  # "" among the values: may be left out
        ("area(base=10, unit='u')", None),  # any acceptable value
        ("area(base=10, unit='cm')", "args:value"),
        ("area(unit='u')", "args:missing"),
        ("area(base=10, height=2)", "args:unexpected"),
    ],
)
def test_expected_lists_acceptable_values(output, error_type):
    for lenient in (False, True):
        assert match_calls(parse_output(output), [AREA], lenient=lenient)["error_type"] == error_type


def test_expected_from_call():
    assert Expected.from_call(parse_call('f(a=1, b="x")')) == Expected("f", {"a": [1], "b": ["x"]})


# --- schemas ---------------------------------------------------------------------------------

SCHEMAS = {
    "timer": {
        "type": "object",
        "properties": {
            "minutes": {"type": "integer"},
            "label": {"type": "string"},
            "sound": {"type": "string", "default": "bell"},
            "repeat": {"type": "integer", "default": 1},
        },
        "required": ["minutes"],
    }
}


@pytest.mark.parametrize(
    "output, gold, lenient, error_type",
    [
        ("timer(minutes=5)", Expected("timer", {"minutes": [5]}), False, None),
        ("timer(minutes=5, volume=3)", Expected("timer", {"minutes": [5], "volume": [3]}), True, "args:unexpected"),
        ("timer(label='tea')", Expected("timer", {"minutes": [5, ""], "label": ["tea"]}), True, "args:missing"),
        ("timer(minutes='5')", Expected("timer", {"minutes": [5]}), True, "args:type"),
        ("timer(minutes=5.0)", Expected("timer", {"minutes": [5]}), True, "args:type"),  # schema says integer
        ("timer(minutes=True)", Expected("timer", {"minutes": [1]}), True, "args:type"),
        # the schema default: leaving it out, or giving it, is fine leniently
        ("timer(minutes=5)", Expected("timer", {"minutes": [5], "sound": ["Bell"]}), True, None),
        ("timer(minutes=5)", Expected("timer", {"minutes": [5], "sound": ["bell"]}), False, "args:missing"),
        ("timer(minutes=5, sound='bell')", Expected("timer", {"minutes": [5]}), True, None),
        ("timer(minutes=5, sound='gong')", Expected("timer", {"minutes": [5]}), True, "args:unexpected"),
        ("timer(minutes=5, sound='bell')", Expected("timer", {"minutes": [5]}), False, "args:unexpected"),
        ("timer(minutes=5, sound='Bell')", Expected("timer", {"minutes": [5]}), True, None),
        # at its default leniently (1.0 == 1), so not unexpected, but not of the schema's type
        ("timer(minutes=5, repeat=1.0)", Expected("timer", {"minutes": [5]}), True, "args:type"),
        ("timer(minutes=5, repeat=1.0)", Expected("timer", {"minutes": [5]}), False, "args:unexpected"),
        # strictly two errors, leniently one: "TEA" is "tea", 5.0 is still not an integer
        ("timer(minutes=5.0, label='TEA')", Expected("timer", {"minutes": [5], "label": ["tea"]}), True, "args:type"),
        ("timer(minutes=5, label='TEA')", Expected("timer", {"minutes": [5], "label": ["tea"]}), False, "args:value"),
    ],
)
def test_schema_aware_matching(output, gold, lenient, error_type):
    result = match_calls(parse_output(output), [gold], lenient=lenient, schemas=SCHEMAS)
    assert result["error_type"] == error_type, result


def test_without_schemas_a_wrong_typed_value_is_a_type_error_only_by_the_gold_value():
    assert match_calls(parse_output("timer(minutes=5.0)"), [Expected("timer", {"minutes": [5]})], lenient=True) == OK


# --- several calls ---------------------------------------------------------------------------

GOLD_TWO = [parse_call('weather(location="Berlin")'), parse_call('weather(location="Oslo")')]


def test_several_calls_match_in_any_order():
    assert match_calls(parse_output('[weather(location="Oslo"), weather(location="Berlin")]'), GOLD_TWO) == OK
    assert match_calls(parse_output('weather(location="Berlin")\nweather(location="Oslo")'), GOLD_TWO) == OK


def test_each_gold_call_needs_its_own_predicted_call():
    result = match_calls(parse_output('[weather(location="Berlin"), weather(location="Berlin")]'), GOLD_TWO)
    assert result["error_type"] == "args:value"
    assert result["error"] == ["location='Berlin', expected 'Oslo'"]


def test_pairing_is_not_greedy():
    # gold 1 accepts both calls, gold 2 only the first: only the crossed pairing works
    gold = [Expected("f", {"a": [1, 2]}), Expected("f", {"a": [1]})]
    assert match_calls(parse_output("[f(a=1), f(a=2)]"), gold) == OK


@pytest.mark.parametrize(
    "output",
    [
        'weather(location="Berlin")',
        '[weather(location="Berlin")] * 3',
        'weather(location="Berlin")\nweather(location="Oslo")\nother()',
    ],
)
def test_a_different_number_of_calls(output):
    result = match_calls(parse_output(output), GOLD_TWO)
    assert result["valid"] is False
    assert result["error_type"] in ("calls:count", "relevance:missed_call")
    if output.startswith("weather"):
        assert result["error_type"] == "calls:count"
        assert "expected 2" in result["error"][0]


# --- argument counts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "output, gold, counts",
    [
        ('notes(action="add", note="milk")', ['notes(action="add", note="milk")'], (2, 2, 2)),
        ('notes(action="add", note="eggs", extra=1)', ['notes(action="add", note="milk")'], (1, 3, 2)),
        ('timer(action="add", note="milk")', ['notes(action="add", note="milk")'], (0, 2, 2)),  # names differ
        ("Sorry.", ['notes(action="add", note="milk")'], (0, 0, 2)),
        ('notes(action="ad', ['notes(action="add")'], (0, 0, 1)),
        ('news(topic="cats")', ["other()"], (0, 1, 0)),
        ("other()", ["other()"], (0, 0, 0)),
        ("[g(b=2), f(a=1)]", ["f(a=1)", "g(b=3)"], (1, 2, 2)),
    ],
)
def test_argument_counts(output, gold, counts):
    assert argument_counts(parse_output(output), [parse_call(text) for text in gold]) == counts


def test_argument_counts_leniently_and_with_optional_arguments():
    parsed = parse_output('area(base=10.0, unit="U")')
    assert argument_counts(parsed, [AREA]) == (0, 2, 2)  # strict: 10.0 is not 10, "U" not "u"
    assert argument_counts(parsed, [AREA], lenient=True) == (2, 2, 2)
    assert argument_counts(parse_output("area(base=10)"), [AREA]) == (1, 1, 1)  # unit may be left out


# --- hostile output ------------------------------------------------------------------------


class _CountedName(str):
    """An argument name that counts its comparisons: asking a list for it compares it with every
    element, a set or a dict only on a hash match. (Speed is benchmarked, not timed in tests.)"""

    comparisons = 0

    def __eq__(self, other):
        _CountedName.comparisons += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def _comparisons(n: int, gold_arguments: str) -> int:
    """Name comparisons made matching a call with n arguments in every way a scorer asks."""
    call = Call("f", {_CountedName(f"a{i}"): i for i in range(n)})
    gold = Expected("f", {"x": [1]} if gold_arguments == "other names" else {f"a{i}": [i + 1] for i in range(n)})
    # a schema without half of the names makes those unexpected even when the gold call has them
    schema = {"f": {"properties": {f"a{i}": {"type": "integer"} for i in range(0, n, 2)}}}
    _CountedName.comparisons = 0
    for schemas in (None, schema):
        judge_calls(Parsed((call,)), [gold], schemas=schemas)  # one call against one
        judge_calls(Parsed((call, Call("g"))), [gold, Expected("g")], schemas=schemas)  # paired
        match_calls(Parsed((call,)), [gold], lenient=True, schemas=schemas)
    argument_counts(Parsed((call,)), [gold], lenient=True)
    return _CountedName.comparisons


@pytest.mark.parametrize("gold_arguments", ["other names", "same names"])
def test_matching_many_arguments_is_linear(gold_arguments, monkeypatch):
    # twice the arguments may cost twice the comparisons, not four times: a list lookup per
    # argument made 100,000 arguments take minutes
    monkeypatch.setattr(_CountedName, "comparisons", 0)
    small, large = _comparisons(1_000, gold_arguments), _comparisons(2_000, gold_arguments)
    assert large <= 2.2 * small + 100, (small, large)


HUGE = 10**5000  # past Python's 4,300 digits in a str: repr raises ValueError


@pytest.mark.parametrize("lenient", [False, True], ids=["strict", "lenient"])
@pytest.mark.parametrize(
    "value",
    [int("9" * 3700), -int("9" * 3700), HUGE, [1, HUGE], {"k": HUGE}, float("nan"), float("inf"), float("-inf")],
    ids=["3700 digits", "-3700 digits", "5001 digits", "in a list", "in a dict", "nan", "inf", "-inf"],
)
def test_huge_and_non_finite_numbers_are_wrong_values(value, lenient):
    # a mismatch like any other, never an exception (5 == 5.0 leniently must not need float())
    parsed = Parsed((Call("f", {"x": value}),))
    for gold in ([1], [1.0], [2.5], [[1, 2]], [{"k": 1}], [float("nan")]):
        result = match_calls(parsed, [Expected("f", {"x": gold})], lenient=lenient)
        assert not result["valid"] and result["error_type"] in ("args:value", "args:type")
        assert all(isinstance(message, str) for message in result["error"])
    verdict = judge_calls(parsed, [Expected("f", {"x": [1]})])
    assert not verdict.strict["valid"] and not verdict.lenient["valid"] and verdict.arguments == (0, 1, 1)


@pytest.mark.parametrize("lenient", [False, True], ids=["strict", "lenient"])
@pytest.mark.parametrize(
    "output",
    [
        f"f(x={'9' * 3700})",
        f"f(x=-{'9' * 3700})",
        "f(x=1e999)",
        '{"name": "f", "arguments": {"x": NaN}}',
        '{"name": "f", "arguments": {"x": -Infinity}}',
        '{"name": "f", "arguments": {"x": %s}}' % ("9" * 3700),
    ],
)
def test_huge_and_non_finite_numbers_in_model_output(output, lenient):
    for gold in ("f(x=1)", "f(x=1.0)"):
        result = check(output, gold, lenient=lenient)
        assert not result["valid"] and result["error_type"] in ("args:value", "args:type")


def test_too_long_output_is_a_parse_failure():
    result = match_calls(parse_output("f(x=1)" + " " * 200_000), [parse_call("f(x=1)")])
    assert result["error_type"] == "parse:too_long" and not result["valid"]


# --- judge_calls: the three answers at once --------------------------------------------------

VALUES = st.sampled_from(
    ["Berlin", "berlin", "BER-LIN", "", 5, 5.0, 6, True, None, [1, 2], [1.0, 2], {"a": "X"}, {"a": "x"}, "5"]
)
ARGUMENT_NAMES = st.sampled_from(["a", "b", "c"])
NAMES = st.sampled_from(["f", "g"])
CALLS = st.builds(Call, NAMES, st.dictionaries(ARGUMENT_NAMES, VALUES, max_size=3))
EXPECTED = st.builds(
    Expected, NAMES, st.dictionaries(ARGUMENT_NAMES, st.lists(VALUES, min_size=1, max_size=3), max_size=3)
)
PROPERTY = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["string", "integer", "number", "boolean", "array", "object"]),
        "default": VALUES,
    },
)
SCHEMA = st.fixed_dictionaries(
    {},
    optional={
        "properties": st.dictionaries(ARGUMENT_NAMES, PROPERTY, max_size=3),
        "required": st.lists(ARGUMENT_NAMES, max_size=2, unique=True),
    },
)
PARSED = st.one_of(
    st.just(Parsed((), "parse:syntax")),
    st.just(Parsed((Call("other", {}),))),
    st.builds(Parsed, st.lists(CALLS, max_size=2).map(tuple)),
    # one call named as the first gold call: the path judge_calls compares once
    st.builds(lambda arguments: Parsed((Call("f", arguments),)), st.dictionaries(ARGUMENT_NAMES, VALUES, max_size=3)),
)


@settings(max_examples=1500, deadline=None)
@given(
    parsed=PARSED, gold=st.lists(EXPECTED, max_size=2), schemas=st.none() | st.dictionaries(NAMES, SCHEMA, max_size=2)
)
@example(parsed=Parsed((Call("f", {"a": "berlin"}),)), gold=[Expected("f", {"a": ["Berlin"]})], schemas=None)
@example(
    parsed=Parsed((Call("f", {"a": 5.0, "b": 1}),)),
    gold=[Expected("f", {"a": [5]})],
    schemas={"f": {"properties": {"a": {"type": "integer"}, "b": {"default": 1.0}}, "required": ["a"]}},
)
def test_judge_calls_answers_as_asking_each(parsed, gold, schemas):
    # judge_calls compares one call against one gold call once for strict, lenient and the
    # argument counts; its answers must be those of match_calls and argument_counts asked apart
    verdict = judge_calls(parsed, gold, schemas=schemas)
    assert verdict.strict == match_calls(parsed, gold, schemas=schemas)
    assert verdict.lenient["valid"] == match_calls(parsed, gold, lenient=True, schemas=schemas)["valid"]
    assert verdict.arguments == argument_counts(parsed, gold)
    if verdict.strict["valid"]:  # lenient only relaxes strict
        assert verdict.lenient["valid"]
