"""eval/match.py with a two-call gold answer (a compound request, datagen skills --compound): both
calls must be made and right, in either order. (test_match.py holds the one-call cases.)"""

import pytest

from eval.match import argument_counts, judge_calls, match_calls
from eval.parse import parse_output
from eval.score import parsed_gold

GOLD_TEXT = '[timer(duration="ten minutes"), notes(action="add", note="eggs")]'
_, GOLD = parsed_gold(GOLD_TEXT)  # the gold text as eval score reads it from a prediction row


@pytest.mark.parametrize(
    "output",
    [
        GOLD_TEXT,
        '[notes(action="add", note="eggs"), timer(duration="ten minutes")]',  # the other order
        'timer(duration="ten minutes")\nnotes(note="eggs", action="add")',  # one a line, keywords reordered
        '<tool_call>{"name": "notes", "arguments": {"action": "add", "note": "eggs"}}</tool_call>'
        '<tool_call>{"name": "timer", "arguments": {"duration": "ten minutes"}}</tool_call>',
    ],
)
def test_both_calls_right_in_either_order_is_an_exact_match(output):
    assert match_calls(parse_output(output), GOLD)["valid"]
    assert judge_calls(parse_output(output), GOLD).strict["valid"]


@pytest.mark.parametrize(
    "output, error_type, message",
    [
        ('timer(duration="ten minutes")', "calls:count", "made 1 call(s) (timer()), expected 2"),
        ('[timer(duration="ten minutes"), notes(action="add", note="milk")]', "args:value", "note='milk'"),
        ('[timer(duration="ten minutes"), weather(location="Berlin")]', "name:mismatch", "instead of notes()"),
        ('[timer(duration="ten minutes"), timer(duration="ten minutes")]', "name:mismatch", "instead of notes()"),
        (
            '[timer(duration="ten minutes"), notes(action="add", note="eggs"), news(topic="cats")]',
            "calls:count",
            "made 3 call(s)",
        ),
        ("other()", "relevance:missed_call", "made no call"),
        ('[timer(duration="ten minutes"), notes(action="add", note="eg', "parse:syntax", "did not parse"),
    ],
)
def test_one_call_missing_or_wrong_is_not_an_exact_match(output, error_type, message):
    for result in (match_calls(parse_output(output), GOLD), judge_calls(parse_output(output), GOLD).strict):
        assert not result["valid"] and result["error_type"] == error_type
        assert message in " ".join(result["error"])


def test_leniency_and_argument_counts_cover_both_calls():
    output = parse_output('[notes(action="add", note="Eggs"), timer(duration="ten minutes")]')
    verdict = judge_calls(output, GOLD)
    assert not verdict.strict["valid"] and verdict.lenient["valid"]
    # 3 gold name=value pairs; the timer's and the notes action are right, the note is not (strictly)
    assert verdict.arguments == argument_counts(output, GOLD) == (2, 3, 3)


def test_the_gold_text_reads_as_two_calls_and_a_list_of_one_is_refused():
    calls, expected = parsed_gold(GOLD_TEXT)
    assert [call.name for call in calls] == [gold.name for gold in expected] == ["timer", "notes"]
    with pytest.raises(ValueError, match="two or more"):
        parsed_gold('[timer(duration="ten minutes")]')
