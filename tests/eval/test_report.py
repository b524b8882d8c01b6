"""eval/report.py: tables, the report schema and the gate's verdicts (report.md and the PNGs, as
the score command writes them, are test_cli.py's)."""

import pytest
from scored_rows import ROWS, row

from eval.report import build_report, gate_problems, side_by_side
from eval.score import score


def test_side_by_side_table_shows_both_models():
    base = score([row(i, r["gold"], "I cannot help", model="base") for i, r in enumerate(ROWS)])
    table = side_by_side(build_report({"base": base, "tuned": score(ROWS)}, "test.jsonl"))
    lines = table.splitlines()
    assert lines[0].split() == ["base", "tuned"]
    # "I cannot help" is a right answer (no call) on the two other() rows only
    assert lines[1].split() == ["exact", "match", "28.6%", "28.6%"]
    assert "  weather" in table and "33.3% of 3" in table


@pytest.mark.parametrize("bad", ["models", "test_file"])
def test_report_schema_requires_header_keys(tmp_path, bad):
    from skilltune.jsonio import DataError, write_json

    report = build_report({"tuned": score(ROWS)}, "t.jsonl")
    del report[bad]
    with pytest.raises(DataError, match="is a required property"):
        write_json(tmp_path / "report.json", report, "report")
    assert not (tmp_path / "report.json").exists()


def test_gate_problems_name_the_threshold_and_the_drop():
    scores = score(ROWS)  # exact match 2/7 = 28.6 %
    assert gate_problems(scores, "tuned") == []
    assert gate_problems(scores, "tuned", min_exact_match=0.25) == []
    assert gate_problems(scores, "tuned", min_exact_match=0.5) == [
        "tuned: exact match 28.6% is under the threshold 50.0%"
    ]
    assert gate_problems(scores, "tuned", baseline={"exact_match": 0.3}, max_drop=0.05) == []
    assert gate_problems(scores, "tuned", baseline={"exact_match": 0.5}, max_drop=0.05) == [
        "tuned: exact match 28.6% dropped from the baseline's 50.0% (allowed drop 5.0%)"
    ]
