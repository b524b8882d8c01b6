"""eval/json_scan.py: the JSON objects in chatter, each whole one once, left to right.

How parse_output turns them into calls is tests/eval/test_parse.py's (test_json_in_chatter), and so
is the work it does on hostile text (test_parse_work_is_linear_in_the_length counts this module's
lines too)."""

import pytest

from eval.json_scan import CLOSERS, json_objects_in


@pytest.mark.parametrize(
    "text, objects",
    [
        ("no braces here", []),
        ("{} and { } hold no key", []),
        ('a {"x": 1} b {"y": [2, {"z": null}]}', [{"x": 1}, {"y": [2, {"z": None}]}]),
        # an object inside an earlier one is part of it, not found again
        ('{"outer": {"inner": 1}}', [{"outer": {"inner": 1}}]),
        # the first "{" that opens a whole object is taken, even one that looks as if inside a string
        ('Use "{" for it: {"a": 1}', [{"a": 1}]),
        # an object that never closes still holds whole ones
        ('{"calls": [{"a": 1}, {"b": 2}', [{"a": 1}, {"b": 2}]),
        ('{"note": "a } in a string", "n": 1}', [{"note": "a } in a string", "n": 1}]),
    ],
)
def test_objects_in_order(text, objects):
    assert list(json_objects_in(text)) == objects


def test_nan_and_infinity_are_read_as_json_loads_reads_them():
    [value] = json_objects_in('scores: {"x": NaN, "y": -Infinity}')
    assert str(value["x"]) == "nan" and value["y"] == float("-inf")  # NaN != NaN: compared as text


def test_an_object_that_does_not_decode_comes_as_none_and_is_passed_over_whole():
    huge = "1" * 5_000  # JSON to the last brace, but over Python's 4,300-digit limit for int()
    assert list(json_objects_in(f'{{"n": {huge}, "inner": {{"a": 1}}}} then {{"b": 2}}')) == [None, {"b": 2}]


def test_closers_pair_each_bracket():
    assert CLOSERS == {"(": ")", "[": "]", "{": "}"}
