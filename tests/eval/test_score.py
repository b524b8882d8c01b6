"""eval/score.py: the metrics of prediction rows (reports are test_report.py's, the commands
test_cli.py's)."""

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scored_rows import ROWS, row

from eval.match import match_calls
from eval.parse import parse_output
from eval.report import build_report, side_by_side
from eval.score import judge, score


def test_score_counts():
    scores = score(ROWS)
    # strict: rows 0, 3; lenient: + row 4; name: rows 0, 1, 3, 4; parse failures: row 2
    assert (scores["n"], scores["exact_match"], scores["exact_match_lenient"]) == (7, 2 / 7, 3 / 7)
    assert (scores["name_accuracy"], scores["parse_failure_rate"]) == (4 / 7, 1 / 7)
    # argument pairs: correct 1 (row 0); predicted 4 (rows 0, 1, 4, 6); expected 5 (rows 0, 1, 2, 4, 5)
    assert scores["argument_precision"] == pytest.approx(1 / 4)
    assert scores["argument_recall"] == pytest.approx(1 / 5)
    assert scores["argument_f1"] == pytest.approx(2 * (1 / 4) * (1 / 5) / (1 / 4 + 1 / 5))
    # calls made: rows 0, 1, 2 (a garbled attempt is a call), 4, 6; needed: 0, 1, 2, 4, 5
    for key in ("relevance_precision", "relevance_recall", "relevance_f1"):
        assert scores[key] == pytest.approx(0.8), key
    assert scores["no_call_accuracy"] == 0.5  # row 3 right, row 6 wrong
    assert scores["per_skill"]["weather"] == {
        "n": 3,
        "exact_match": 1 / 3,
        "exact_match_lenient": 2 / 3,
        "name_accuracy": 1.0,
        "parse_failure_rate": 0.0,
    }
    assert scores["per_skill"]["timer"]["exact_match"] == 0.0
    errors = scores["error_types"]
    assert errors.pop("args:value") == 2
    assert errors.pop("relevance:missed_call") == errors.pop("relevance:unexpected_call") == 1
    assert [key for key in errors if key.startswith("parse:")] == list(errors) and sum(errors.values()) == 1
    assert [failure["user"] for failure in scores["failures"]["weather"]] == ["utterance 1", "utterance 4"]
    assert [failure["user"] for failure in scores["failures"]["other"]] == ["utterance 6"]


def test_failures_listed_are_the_worst_of_each_skill():
    gold = 'notes(action="add", note="milk")'
    outputs = [
        'notes(action="add", note="eggs")',  # args:value, 1 of 2 arguments right
        'notes(action="remove", note="eggs")',  # args:value, 0 of 2 right
        gold,  # right: never listed
        'weather(location="Oslo")',  # name:mismatch
        "Sorry, I can't do that.",  # relevance:missed_call
        'notes(action="add", note="mi',  # parse:syntax
    ]
    rows = [row(index, gold, output) for index, output in enumerate(outputs)]

    def listed(worst):
        return [failure["user"] for failure in score(rows, worst_per_skill=worst)["failures"]["notes"]]

    assert listed(3) == ["utterance 5", "utterance 4", "utterance 3"]
    assert listed(5) == ["utterance 5", "utterance 4", "utterance 3", "utterance 1", "utterance 0"]
    assert listed(9) == listed(5)
    assert "notes" not in score(rows, worst_per_skill=0)["failures"]


def test_confusion_matrix_rows_are_gold_and_columns_predicted():
    confusion = score(ROWS)["confusion"]
    assert confusion["labels"] == ["other", "timer", "weather", "news", "(unparsed)"]
    assert confusion["matrix"] == [
        [1, 0, 0, 1, 0],  # other: right once, news() once
        [1, 0, 0, 0, 1],  # timer: no call once, unparsed once
        [0, 0, 3, 0, 0],  # weather: always weather(), values aside
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ]


def test_the_identical_answer_shortcut_agrees_with_full_parsing():
    golds = [
        'weather(location="Berlin")',
        "other()",
        'notes(action="add", note="buy milk")',
        'timer(duration="5 minutes")',
    ]
    for gold in golds:
        shortcut = judge(row(0, gold, gold))
        full = judge(row(0, gold, f"Here you go: {gold}"))  # chatter: parsed the long way
        for key in (
            "parsed",
            "predicted",
            "name_ok",
            "parse_failed",
            "call_expected",
            "call_made",
            "arguments",
            "valid",
            "valid_lenient",
            "error",
            "error_type",
        ):
            assert shortcut[key] == full[key], (gold, key)


CALL_PIECES = [
    'weather(location="Berlin")',
    'weather(location="berlin")',
    'weather(location="Oslo")',
    'weather(location="Berlin", unit="c")',
    "weather()",
    'timer(duration="5 min")',
    "other()",
    'notes(action="add", note="Buy milk!")',
    'notes(note="buy milk", action="add")',
    "weather(location=5)",
    "timer(minutes=5)",
    "timer(minutes=5.0)",
]


@settings(max_examples=300, deadline=None)
@given(
    gold=st.sampled_from(CALL_PIECES),
    calls=st.lists(st.sampled_from(CALL_PIECES), max_size=3),
    chatter=st.booleans(),
    broken=st.booleans(),
)
@example(gold='weather(location="Berlin")', calls=['weather(location="berlin")'], chatter=True, broken=False)
@example(gold="timer(minutes=5)", calls=["timer(minutes=5.0)"], chatter=False, broken=False)  # strict: args:type
def test_judge_lenient_shortcut_agrees_with_asking_lenient_match(gold, calls, chatter, broken):
    # judge asks the lenient matcher only after an argument-level strict failure; for any output
    # its answer must equal the matcher's own
    output = calls[0] if len(calls) == 1 else f"[{', '.join(calls)}]" if calls else "no idea"
    output = f"Sure: {output} done" if chatter else output
    output = output[:-2] if broken else output
    judged = judge(row(0, gold, output))
    expected = [call for call in parse_output(gold).calls if not call.is_no_call]
    lenient = match_calls(parse_output(output), expected, lenient=True)
    assert judged["valid_lenient"] == lenient["valid"], (gold, output, judged["error_type"])


def test_a_huge_failing_output_is_cut_in_the_report_not_in_the_predictions():
    from eval.score import SHOWN_CHARS

    rows = [row(0, 'weather(location="Oslo")', "{" * 1_000_000), row(1, 'weather(location="Oslo")', "x" * 50)]
    failures = score(rows)["failures"]["weather"]
    long_entry = next(entry for entry in failures if entry["output"].startswith("{"))
    assert long_entry["error_type"] == "parse:too_long"
    assert len(long_entry["output"]) < SHOWN_CHARS + 60 and long_entry["output"].endswith("(998,000 more characters)")
    assert rows[0]["output"] == "{" * 1_000_000


TWO = '[timer(duration="ten minutes"), notes(action="add", note="eggs")]'
TWO_CALL_ROWS = [  # (gold, output): compound requests beside single calls
    (TWO, TWO),  # right: the identical-answer shortcut
    (TWO, '[notes(action="add", note="eggs"), timer(duration="ten minutes")]'),  # right, the other order
    (TWO, 'timer(duration="ten minutes")'),  # one call of two
    (TWO, '[timer(duration="ten minutes"), notes(action="add", note="milk")]'),  # one right, one wrong
    ('weather(location="Berlin")', 'weather(location="Berlin")'),
    ('weather(location="Oslo")', 'weather(location="Bergen")'),
    ("other()", "other()"),
]


def _prediction_rows():
    rows = [row(index, gold, output) for index, (gold, output) in enumerate(TWO_CALL_ROWS)]
    return [{**r, "skill": parse_output(r["gold"]).calls[0].name} for r in rows]  # the first call's name


def test_exact_match_by_number_of_gold_calls():
    scores = score(_prediction_rows())
    assert scores["by_calls"] == {"1": {"n": 3, "exact_match": 2 / 3}, "2": {"n": 4, "exact_match": 0.5}}
    assert scores["exact_match"] == 4 / 7
    # names: both compound rows in either order and the one with a wrong value; not one call of two
    assert scores["name_accuracy"] == 6 / 7
    assert scores["error_types"] == {"args:value": 2, "calls:count": 1}
    assert scores["per_skill"]["timer"]["n"] == 4  # a compound counts under its first call
    single = score(_prediction_rows()[4:])
    assert "2" not in single["by_calls"]
    # the report's rows by call count are shown only when some record has two calls
    table = side_by_side(build_report({"tuned": single}, "test.jsonl"))
    assert "exact match, 1 call" not in table
    assert "exact match, 2 calls" in side_by_side(build_report({"tuned": scores}, "test.jsonl"))


def test_saved_two_call_predictions_are_scored_and_reported_by_call_count(tmp_path):
    from click.testing import CliRunner
    from conftest import PACK

    from eval.cli.run import _test_records
    from eval.cli.score import score_command
    from eval.predict import prediction_rows, write_predictions
    from skilltune.calls import parse_calls
    from skilltune.jsonio import read_json, write_jsonl
    from skilltune.records import chat_record, tool_definitions
    from skilltune.skills import load_pack

    tools = tool_definitions(load_pack(PACK))
    records = [
        chat_record(None, f"request {i}", parse_calls(gold), "tools", tools)
        for i, (gold, _) in enumerate(TWO_CALL_ROWS)
    ]
    write_jsonl(tmp_path / "test.jsonl", records, "record")
    checked = _test_records(tmp_path / "test.jsonl", None)  # eval run's gold check, before a model loads
    rows = prediction_rows(checked, [output for _, output in TWO_CALL_ROWS], "tuned", "test")
    assert [r["gold"] for r in rows[:2]] == [TWO, TWO] and rows[0]["skill"] == "timer"
    write_predictions(tmp_path / "predictions-tuned.jsonl", rows)
    result = CliRunner().invoke(
        score_command, [str(tmp_path / "predictions-tuned.jsonl"), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 0, result.output
    report = read_json(tmp_path / "r" / "report.json", "report")
    assert report["tuned"]["by_calls"]["2"] == {"n": 4, "exact_match": 0.5}
    markdown = (tmp_path / "r" / "report.md").read_text()
    assert "| exact match, 1 call | 66.7% of 3 |" in markdown and "| exact match, 2 calls | 50.0% of 4 |" in markdown
    assert "exact match, 2 calls" in result.output
