import json
import subprocess
import sys
from pathlib import Path

import pytest

from datagen.jsonio import read_json, write_jsonl
from eval.report import build_report, side_by_side
from eval.score import score

REPO = Path(__file__).resolve().parent.parent


def row(index, gold, output, model="tuned"):
    skill = gold.split("(")[0]
    return {"index": index, "model": model, "split": "test", "skill": skill, "user": f"utterance {index}", "gold": gold, "output": output}


ROWS = [
    row(0, 'weather(location="Berlin")', 'weather(location="Berlin")'),  # right
    row(1, 'weather(location="Oslo")', 'weather(location="Bergen")'),  # right name, wrong value
    row(2, 'timer(duration="5 minutes")', "sure, a timer"),  # parse failure
    row(3, "other()", "other()"),  # right
]


def test_score_counts():
    scores = score(ROWS)
    # exact: rows 0 and 3 -> 2/4; name: rows 0, 1, 3 -> 3/4; parse failures: row 2 -> 1/4
    assert (scores["n"], scores["exact_match"], scores["name_accuracy"], scores["parse_failure_rate"]) == (4, 0.5, 0.75, 0.25)
    assert scores["per_skill"]["weather"] == {"n": 2, "exact_match": 0.5, "name_accuracy": 1.0, "parse_failure_rate": 0.0}
    assert scores["per_skill"]["timer"]["exact_match"] == 0.0
    assert scores["error_types"] == {"args:value": 1, "parse:no_call_found": 1}
    assert [failure["user"] for failure in scores["failures"]["weather"]] == ["utterance 1"]
    assert "other" not in scores["failures"]


def test_side_by_side_table_shows_both_models():
    base = score([row(i, r["gold"], "I cannot help", model="base") for i, r in enumerate(ROWS)])
    table = side_by_side(build_report({"base": base, "tuned": score(ROWS)}, "test.jsonl"))
    lines = table.splitlines()
    assert lines[0].split() == ["base", "tuned"]
    assert lines[1].split() == ["exact", "match", "0.0%", "50.0%"]
    assert "  weather" in table and "50.0% of 2" in table


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
    assert report["tuned"]["exact_match"] == 0.5
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "| exact match | 50.0% |" in markdown
    assert "`weather(location=\"Bergen\")`" in markdown


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
    from datagen.jsonio import DataError, write_json

    report = build_report({"tuned": score(ROWS)}, "t.jsonl")
    del report[bad]
    with pytest.raises(DataError, match="is a required property"):
        write_json(tmp_path / "report.json", report, "report")
    assert not (tmp_path / "report.json").exists()


def test_noisy_predictions_become_the_noisy_entry(tmp_path):
    clean = tmp_path / "predictions-tuned.jsonl"
    noisy = tmp_path / "predictions-tuned-noisy.jsonl"
    write_jsonl(clean, ROWS, "prediction")
    # on noisy speech the model gets only the other() row right: 1/4
    noisy_rows = [{**r, "split": "test_noisy", "output": r["output"] if r["skill"] == "other" else "hmm"} for r in ROWS]
    write_jsonl(noisy, noisy_rows, "prediction")
    result = subprocess.run(
        [sys.executable, "-m", "eval", "score", str(clean), str(noisy), "--out", str(tmp_path / "report")],
        cwd=REPO, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    report = read_json(tmp_path / "report" / "report.json", "report")
    assert report["tuned"]["exact_match"] == 0.5
    assert report["tuned"]["noisy"] == {"n": 4, "exact_match": 0.25, "name_accuracy": 0.25, "parse_failure_rate": 0.75}
    assert "exact match, noisy speech  25.0%" in result.stdout
