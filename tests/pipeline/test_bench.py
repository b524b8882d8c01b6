"""scripts/bench.py's --only scorer: the two scorer rows of BENCHMARKS.md are replaced, nothing else."""

import importlib.util

import pytest
from conftest import REPO


def load_bench():
    spec = importlib.util.spec_from_file_location("bench", REPO / "scripts" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCORER = {
    "tuned-like": {"median": 80123.4, "low": 70000, "high": 90000.2},
    "hard": {"median": 30500, "low": 29000, "high": 31000},
}


def test_only_scorer_replaces_the_two_rows_of_the_benchmarks_file():
    bench = load_bench()
    text = (REPO / "BENCHMARKS.md").read_text()
    spliced = bench.splice_scorer_rows(text, bench.scorer_rows(SCORER))
    before, after = text.split("\n"), spliced.split("\n")
    assert len(before) == len(after)
    rows = bench.scorer_rows(SCORER)
    assert all(new in rows for old, new in zip(before, after) if old != new)
    assert [after.count(row) for row in rows] == [1, 1]
    assert "| 80,123 predictions/s (runs 70,000-90,000) |" in spliced
    assert "| 30,500 predictions/s (runs 29,000-31,000) |" in spliced
    # spliced twice gives the same file: the rows are found again by their labels
    assert bench.splice_scorer_rows(spliced, bench.scorer_rows(SCORER)) == spliced


def test_only_scorer_refuses_a_file_without_the_rows():
    bench = load_bench()
    with pytest.raises(SystemExit, match="0 rows starting"):
        bench.splice_scorer_rows("# Benchmarks\n\nnothing here\n", bench.scorer_rows(SCORER))
