"""eval/cli/: the commands as a user runs them (`python -m eval ...`), on saved predictions and
reports; `eval run` against a scripted endpoint is tests/eval/test_predict.py's, and its input
checks are tests/pipeline/test_bad_inputs.py's."""

import json
import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from conftest import REPO
from scored_rows import ROWS

from eval.bfcl import bfcl_files, gold_answer_text, load_bfcl
from eval.cli import cli
from skilltune.jsonio import read_json, write_jsonl


def test_the_command_table():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    listed = result.output.split("Commands:")[1].split()
    assert [word for word in listed if word in cli.commands] == ["bfcl", "compare", "report", "run", "score"]
    assert cli.commands["report"] is cli.commands["score"]


# --- score, report, compare and the gate


def test_score_command_rescores_saved_predictions(tmp_path):
    tuned = tmp_path / "predictions-tuned.jsonl"
    write_jsonl(tuned, ROWS, "prediction")
    result = subprocess.run(
        [sys.executable, "-m", "eval", "score", str(tuned), "--out", str(tmp_path / "report")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    report = read_json(tmp_path / "report" / "report.json", "report")
    assert report["models"] == ["tuned"]
    assert report["tuned"]["exact_match"] == 2 / 7
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "| exact match | 28.6% |" in markdown
    assert '`weather(location="Bergen")`' in markdown
    assert "![confusion matrix of tuned](confusion-tuned.png)" in markdown
    assert (tmp_path / "report" / "confusion-tuned.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_score_command_names_the_bad_line(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps({**ROWS[1], "output": 3}) + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "eval", "score", str(path), "--out", str(tmp_path / "r")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert f"{path}:2: output: 3 is not of type 'string'" in result.stderr
    assert not (tmp_path / "r").exists()


def test_extra_split_predictions_become_their_entries(tmp_path):
    clean = tmp_path / "predictions-tuned.jsonl"
    write_jsonl(clean, ROWS, "prediction")
    # on noisy speech the model gets only the other() rows right: 2/7, and makes no call at all;
    # on held-out wording it gets every row right, on unseen skills none
    outputs = {
        "test_noisy": lambda r: "other()" if r["skill"] == "other" else "hmm",
        "test_wording": lambda r: r["gold"],
        "test_unseen": lambda r: 'news(topic="nothing of the kind")',
    }
    files = []
    for split, output in outputs.items():
        files.append(tmp_path / f"predictions-tuned-{split[5:]}.jsonl")
        write_jsonl(files[-1], [{**r, "split": split, "output": output(r)} for r in ROWS], "prediction")
    result = subprocess.run(
        [sys.executable, "-m", "eval", "score", str(clean), *map(str, files), "--out", str(tmp_path / "report")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    report = read_json(tmp_path / "report" / "report.json", "report")
    assert report["tuned"]["exact_match"] == 2 / 7
    noisy = dict(report["tuned"]["noisy"])
    assert noisy.pop("per_skill")["other"]["exact_match"] == 1.0
    assert noisy == {
        "n": 7,
        "exact_match": 2 / 7,
        "exact_match_lenient": 2 / 7,
        "name_accuracy": 2 / 7,
        "parse_failure_rate": 0.0,
    }
    assert report["tuned"]["wording"]["exact_match"] == 1.0 and report["tuned"]["unseen"]["exact_match"] == 0.0
    assert re.search(r"exact match, noisy speech +28\.6%", result.stdout)
    assert re.search(r"exact match, held-out wording +100\.0%", result.stdout)
    assert re.search(r"exact match, unseen skills +0\.0%\nunseen skills examples +7", result.stdout)


def _report(tmp_path, name: str, outputs: list[str]) -> Path:
    path = tmp_path / name / "predictions-tuned.jsonl"
    write_jsonl(path, [{**r, "output": output} for r, output in zip(ROWS, outputs)], "prediction")
    result = subprocess.run(
        [sys.executable, "-m", "eval", "report", str(path), "--out", str(path.parent)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return path.parent / "report.json"


def test_gate_fails_under_the_threshold_and_on_a_drop_against_the_baseline(tmp_path):
    good = _report(tmp_path, "good", [r["gold"] for r in ROWS])  # 100 %
    predictions = tmp_path / "bad" / "predictions-tuned.jsonl"
    write_jsonl(predictions, ROWS, "prediction")  # 2/7 = 28.6 %

    def gate(*options):
        return subprocess.run(
            [sys.executable, "-m", "eval", "score", str(predictions), "--out", str(tmp_path / "r"), *options],
            cwd=REPO,
            capture_output=True,
            text=True,
        )

    assert gate("--min-exact-match", "0.25").returncode == 0
    failed = gate("--min-exact-match", "0.5")
    assert (
        failed.returncode == 1 and "gate failed: tuned: exact match 28.6% is under the threshold 50.0%" in failed.stderr
    )
    dropped = gate("--baseline", str(good), "--max-drop", "0.05")
    assert dropped.returncode == 1 and "dropped from the baseline's 100.0%" in dropped.stderr


def test_compare_puts_runs_side_by_side_and_gates_on_the_first(tmp_path):
    first = _report(tmp_path, "run-a", [r["gold"] for r in ROWS])
    second = _report(tmp_path, "run-b", [r["output"] for r in ROWS])
    result = subprocess.run(
        [sys.executable, "-m", "eval", "compare", str(first.parent), str(second), "--out", str(tmp_path / "cmp")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == ["run-a", "run-b"]
    assert re.search(r"exact match +100\.0% +28\.6%", result.stdout)
    assert "| exact match | 100.0% | 28.6% |" in (tmp_path / "cmp" / "compare.md").read_text()
    gated = subprocess.run(
        [sys.executable, "-m", "eval", "compare", str(first), str(second), "--max-drop", "0.1"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert gated.returncode == 1 and "run-b: exact match 28.6% dropped" in gated.stderr


# --- bfcl


def test_bfcl_command_rescores_saved_predictions(tmp_path):
    simple = load_bfcl(*bfcl_files("simple_python"))
    saved = tmp_path / "predictions.jsonl"
    lines = [{"id": case.id, "output": gold_answer_text(case)} for case in simple[:10]]
    lines[3]["output"] = "no idea"
    saved.write_text("".join(json.dumps(line) + "\n" for line in lines))
    run = [
        sys.executable,
        "-m",
        "eval",
        "bfcl",
        "--category",
        "simple_python",
        "--limit",
        "10",
        "--predictions",
        str(saved),
        "--out",
        str(tmp_path / "out"),
    ]
    result = subprocess.run(run, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "10 cases, exact match 90.0% strict, 90.0% lenient, no call 10.0%" in result.stdout
    scored = json.loads((tmp_path / "out" / "bfcl-simple_python.json").read_text())
    assert [row["id"] for row in scored["rows"] if not row["valid"]] == [simple[3].id]
    saved.write_text(saved.read_text() + "{broken\n")
    broken = subprocess.run(run, cwd=REPO, capture_output=True, text=True)
    assert broken.returncode == 1 and f"{saved}:11: not JSON" in broken.stderr
    lines[5]["output"] = None  # a saved output that is not text: one line naming it, not a traceback
    saved.write_text("".join(json.dumps(line) + "\n" for line in lines))
    null = subprocess.run(run, cwd=REPO, capture_output=True, text=True)
    assert (
        null.returncode == 1
        and null.stderr == f"error: {saved}:6: expected a JSON object with id and output (both strings)\n"
    )
