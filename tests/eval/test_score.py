import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from skilltune.jsonio import read_json, write_jsonl
from eval.report import build_report, side_by_side
from eval.match import match_calls
from eval.parse import parse_output
from eval.score import judge, score
from conftest import REPO



def row(index, gold, output, model="tuned"):
    skill = gold.split("(")[0]
    return {"index": index, "model": model, "split": "test", "skill": skill, "user": f"utterance {index}", "gold": gold, "output": output}


ROWS = [
    row(0, 'weather(location="Berlin")', 'weather(location="Berlin")'),  # right
    row(1, 'weather(location="Oslo")', 'weather(location="Bergen")'),  # right name, wrong value
    row(2, 'timer(duration="5 minutes")', 'timer(duration="5 min'),  # a call attempt that does not parse
    row(3, "other()", "other()"),  # right
    row(4, 'weather(location="New York")', 'weather(location="new york")'),  # right only when lenient
    row(5, 'timer(duration="1 hour")', "Sorry, I can't set timers."),  # no call where one was needed
    row(6, "other()", 'news(topic="cats")'),  # a call where none was needed
]


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
        "n": 3, "exact_match": 1 / 3, "exact_match_lenient": 2 / 3, "name_accuracy": 1.0, "parse_failure_rate": 0.0,
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
    listed = lambda worst: [failure["user"] for failure in score(rows, worst_per_skill=worst)["failures"]["notes"]]
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


def test_side_by_side_table_shows_both_models():
    base = score([row(i, r["gold"], "I cannot help", model="base") for i, r in enumerate(ROWS)])
    table = side_by_side(build_report({"base": base, "tuned": score(ROWS)}, "test.jsonl"))
    lines = table.splitlines()
    assert lines[0].split() == ["base", "tuned"]
    # "I cannot help" is a right answer (no call) on the two other() rows only
    assert lines[1].split() == ["exact", "match", "28.6%", "28.6%"]
    assert "  weather" in table and "33.3% of 3" in table


def test_score_command_rescores_saved_predictions(tmp_path):
    tuned = tmp_path / "predictions-tuned.jsonl"
    write_jsonl(tuned, ROWS, "prediction")
    result = subprocess.run(
        [sys.executable, "-m", "eval", "score", str(tuned), "--out", str(tmp_path / "report")],
        cwd=REPO, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    report = read_json(tmp_path / "report" / "report.json", "report")
    assert report["models"] == ["tuned"]
    assert report["tuned"]["exact_match"] == 2 / 7
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "| exact match | 28.6% |" in markdown
    assert "`weather(location=\"Bergen\")`" in markdown
    assert "![confusion matrix of tuned](confusion-tuned.png)" in markdown
    assert (tmp_path / "report" / "confusion-tuned.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_score_command_names_the_bad_line(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps({**ROWS[1], "output": 3}) + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "eval", "score", str(path), "--out", str(tmp_path / "r")],
        cwd=REPO, capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert f"{path}:2: output: 3 is not of type 'string'" in result.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("bad", ["models", "test_file"])
def test_report_schema_requires_header_keys(tmp_path, bad):
    from skilltune.jsonio import DataError, write_json

    report = build_report({"tuned": score(ROWS)}, "t.jsonl")
    del report[bad]
    with pytest.raises(DataError, match="is a required property"):
        write_json(tmp_path / "report.json", report, "report")
    assert not (tmp_path / "report.json").exists()


def test_noisy_predictions_become_the_noisy_entry(tmp_path):
    clean = tmp_path / "predictions-tuned.jsonl"
    noisy = tmp_path / "predictions-tuned-noisy.jsonl"
    write_jsonl(clean, ROWS, "prediction")
    # on noisy speech the model gets only the other() rows right: 2/7, and makes no call at all
    noisy_rows = [{**r, "split": "test_noisy", "output": "other()" if r["skill"] == "other" else "hmm"} for r in ROWS]
    write_jsonl(noisy, noisy_rows, "prediction")
    result = subprocess.run(
        [sys.executable, "-m", "eval", "score", str(clean), str(noisy), "--out", str(tmp_path / "report")],
        cwd=REPO, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    report = read_json(tmp_path / "report" / "report.json", "report")
    assert report["tuned"]["exact_match"] == 2 / 7
    assert report["tuned"]["noisy"] == {
        "n": 7, "exact_match": 2 / 7, "exact_match_lenient": 2 / 7, "name_accuracy": 2 / 7, "parse_failure_rate": 0.0,
    }
    assert re.search(r"exact match, noisy speech +28\.6%", result.stdout)


def test_the_identical_answer_shortcut_agrees_with_full_parsing():
    golds = ['weather(location="Berlin")', "other()", 'notes(action="add", note="buy milk")', 'timer(duration="5 minutes")']
    for gold in golds:
        shortcut = judge(row(0, gold, gold))
        full = judge(row(0, gold, f"Here you go: {gold}"))  # chatter: parsed the long way
        for key in ("parsed", "predicted", "name_ok", "parse_failed", "call_expected", "call_made", "arguments",
                    "valid", "valid_lenient", "error", "error_type"):
            assert shortcut[key] == full[key], (gold, key)


CALL_PIECES = ['weather(location="Berlin")', 'weather(location="berlin")', 'weather(location="Oslo")',
               'weather(location="Berlin", unit="c")', "weather()", 'timer(duration="5 min")', "other()",
               'notes(action="add", note="Buy milk!")', 'notes(note="buy milk", action="add")', "weather(location=5)",
               "timer(minutes=5)", "timer(minutes=5.0)"]


@settings(max_examples=300, deadline=None)
@given(gold=st.sampled_from(CALL_PIECES), calls=st.lists(st.sampled_from(CALL_PIECES), max_size=3),
       chatter=st.booleans(), broken=st.booleans())
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


def _report(tmp_path, name: str, outputs: list[str]) -> Path:
    path = tmp_path / name / "predictions-tuned.jsonl"
    write_jsonl(path, [{**r, "output": output} for r, output in zip(ROWS, outputs)], "prediction")
    result = subprocess.run([sys.executable, "-m", "eval", "report", str(path), "--out", str(path.parent)],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return path.parent / "report.json"


def test_gate_fails_under_the_threshold_and_on_a_drop_against_the_baseline(tmp_path):
    good = _report(tmp_path, "good", [r["gold"] for r in ROWS])  # 100 %
    predictions = tmp_path / "bad" / "predictions-tuned.jsonl"
    write_jsonl(predictions, ROWS, "prediction")  # 2/7 = 28.6 %

    def gate(*options):
        return subprocess.run([sys.executable, "-m", "eval", "score", str(predictions), "--out", str(tmp_path / "r"),
                               *options], cwd=REPO, capture_output=True, text=True)

    assert gate("--min-exact-match", "0.25").returncode == 0
    failed = gate("--min-exact-match", "0.5")
    assert failed.returncode == 1 and "gate failed: tuned: exact match 28.6% is under the threshold 50.0%" in failed.stderr
    dropped = gate("--baseline", str(good), "--max-drop", "0.05")
    assert dropped.returncode == 1 and "dropped from the baseline's 100.0%" in dropped.stderr


def test_compare_puts_runs_side_by_side_and_gates_on_the_first(tmp_path):
    first = _report(tmp_path, "run-a", [r["gold"] for r in ROWS])
    second = _report(tmp_path, "run-b", [r["output"] for r in ROWS])
    result = subprocess.run([sys.executable, "-m", "eval", "compare", str(first.parent), str(second),
                             "--out", str(tmp_path / "cmp")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == ["run-a", "run-b"]
    assert re.search(r"exact match +100\.0% +28\.6%", result.stdout)
    assert "| exact match | 100.0% | 28.6% |" in (tmp_path / "cmp" / "compare.md").read_text()
    gated = subprocess.run([sys.executable, "-m", "eval", "compare", str(first), str(second), "--max-drop", "0.1"],
                           cwd=REPO, capture_output=True, text=True)
    assert gated.returncode == 1 and "run-b: exact match 28.6% dropped" in gated.stderr


def test_a_huge_failing_output_is_cut_in_the_report_not_in_the_predictions():
    from eval.score import SHOWN_CHARS

    rows = [row(0, 'weather(location="Oslo")', "{" * 1_000_000), row(1, 'weather(location="Oslo")', "x" * 50)]
    failures = score(rows)["failures"]["weather"]
    long_entry = next(entry for entry in failures if entry["output"].startswith("{"))
    assert long_entry["error_type"] == "parse:too_long"
    assert len(long_entry["output"]) < SHOWN_CHARS + 60 and long_entry["output"].endswith("(998,000 more characters)")
    assert rows[0]["output"] == "{" * 1_000_000
