"""End-to-end: `make train` in a copy of the repository, the path a user takes.

Each test copies the project's files (not data/, runs/ or models/) into a temporary folder and runs
`make train` there with the repository's .venv (`-o` keeps make from reinstalling it). Two runs:
  (a) a tiny random-weight Llama built locally: the whole pipeline in about a minute;
  (b) the real embedded SmolLM2-135M, short schedule: the adapter must beat the base model on
      held-out exact match by at least 30 points.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from datagen.jsonio import read_json, read_jsonl

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv"
STAMP = VENV / ".skilltune-installed"

pytestmark = pytest.mark.e2e


def copy_project(destination: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    for relative in listed:
        source = REPO / relative
        if source.is_file():
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    # the converted SmolLM2 folder is a cache worth sharing (35 s to rebuild); the tiny model is built fresh
    if (REPO / "models" / "SmolLM2-135M-Instruct" / "skilltune_source.json").exists():
        (destination / "models").mkdir()
        (destination / "models" / "SmolLM2-135M-Instruct").symlink_to(REPO / "models" / "SmolLM2-135M-Instruct")
    return destination


def make(project: Path, *arguments: str, timeout: int) -> subprocess.CompletedProcess:
    if not STAMP.exists():
        pytest.fail(f"{STAMP} missing: run the tests through `make test`, which installs .venv")
    return subprocess.run(
        ["make", "-o", str(STAMP), f"VENV={VENV}", *arguments],
        cwd=project, capture_output=True, text=True, timeout=timeout,
    )


def check_report(project: Path, model: str) -> dict:
    run_dir = project / "runs" / model
    report = read_json(run_dir / "report.json", "report")
    test_records = list(read_jsonl(project / "data" / "skills" / "test.jsonl", "record"))
    assert report["models"] == ["base", "tuned"]
    for label in ("base", "tuned"):
        predictions = list(read_jsonl(run_dir / f"predictions-{label}.jsonl", "prediction"))
        assert len(predictions) == len(test_records) == report[label]["n"]
        assert 0.0 <= report[label]["exact_match"] <= report[label]["name_accuracy"] <= 1.0
        noisy = list(read_jsonl(run_dir / f"predictions-{label}-noisy.jsonl", "prediction"))
        assert len(noisy) == report[label]["noisy"]["n"] > 0
    assert (run_dir / "report.md").read_text().startswith("# Function-calling eval")
    return report


def test_make_train_tiny_llama(tmp_path):
    project = copy_project(tmp_path / "skilltune")
    result = make(project, "train", "MODEL=tiny-llama", "CONFIG=tests/fixtures/tiny-llama.yml", "N=300", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    adapter = project / "runs" / "tiny-llama" / "adapter"
    assert (adapter / "adapter_model.safetensors").exists()
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 8
    check_report(project, "tiny-llama")
    assert "exact match per skill:" in result.stdout


def test_make_train_smollm2_beats_base_by_30_points(tmp_path):
    project = copy_project(tmp_path / "skilltune")
    result = make(project, "train", "MODEL=smollm2", "AXOLOTL_ARGS=--max-steps=40", timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = check_report(project, "smollm2")
    gain = report["tuned"]["exact_match"] - report["base"]["exact_match"]
    assert gain >= 0.30, f"tuned {report['tuned']['exact_match']:.3f} vs base {report['base']['exact_match']:.3f}"
