"""eval/wandb_log.py against real offline W&B runs: a run made as training makes it (known id), then
the eval's scores logged into it, read back from the run files wandb wrote."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest
from scored_rows import ROWS, row
from wandb_records import records, run_of, summary_of

from eval.report import build_report
from eval.score import score, split_entry
from eval.wandb_log import TABLE_COLUMNS, headline_scores, log_eval_scores, per_skill_rows, training_run

CONFIG = {"wandb_project": "skilltune", "wandb_name": "tiny"}


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    secret = f"wandb-test-key-{uuid.uuid4().hex}"  # made now, so no file holds it unless something wrote it
    monkeypatch.setenv("WANDB_API_KEY", secret)
    monkeypatch.delenv("WANDB_DIR", raising=False)
    monkeypatch.delenv("WANDB_RUN_ID", raising=False)
    return secret


def training(run_dir: Path, run_id: str) -> Path:
    """An offline run as Axolotl's training leaves it under <run_dir>/wandb; its run folder."""
    import wandb

    run = wandb.init(project="skilltune", id=run_id, name="tiny", dir=str(run_dir), mode="offline")
    run.log({"train/loss": 2.0})
    run.log({"train/loss": 1.0})
    folder = Path(run.settings.sync_dir)
    run.finish()
    return folder


def report_with_noisy() -> dict:
    base = score([row(i, r["gold"], "I cannot help", model="base") for i, r in enumerate(ROWS)])
    tuned = score(ROWS)
    tuned["noisy"] = split_entry(score(ROWS[:3]))
    return build_report({"base": base, "tuned": tuned}, "test.jsonl")


def newest_folder_of(run_dir: Path, run_id: str, before: set[Path]) -> Path:
    (log,) = {path.resolve() for path in (run_dir / "wandb").glob(f"*run-*/run-{run_id}.wandb")} - before
    return log.parent


def test_the_scores_land_in_the_training_run(tmp_path, offline):
    run_dir = tmp_path / "runs" / "tiny"
    trained = training(run_dir, "train1234")
    report = report_with_noisy()

    line = log_eval_scores(report, CONFIG, [run_dir])

    folder = newest_folder_of(run_dir, "train1234", {(trained / "run-train1234.wandb").resolve()})
    assert line == f"W&B: eval scores of base, tuned logged into run train1234 ({folder}; `wandb sync` uploads it)"
    log = folder / "run-train1234.wandb"
    run = run_of(log)
    assert (run.run_id, run.project) == ("train1234", "skilltune")  # the same run, so sync joins them
    summary = summary_of(log)
    assert summary["eval/tuned/exact_match"] == report["tuned"]["exact_match"] == pytest.approx(2 / 7)
    assert summary["eval/base/parse_failure_rate"] == report["base"]["parse_failure_rate"]
    assert summary["eval/tuned/noisy/exact_match"] == report["tuned"]["noisy"]["exact_match"]
    assert summary["eval/tuned/n"] == 7 and "eval/base/noisy/n" not in summary
    (table_file,) = (folder / "files" / "media" / "table" / "eval").glob("per_skill_*.table.json")
    table = json.loads(table_file.read_text())
    assert table["columns"] == TABLE_COLUMNS
    assert table["data"] == per_skill_rows(report)
    assert ["tuned", "noisy", "weather", 2, 0.5, 0.5, 1.0, 0.0] in table["data"]  # ROWS[:3]: 1 of 2 right
    # the training's own file is untouched: the eval wrote beside it
    assert "eval/tuned/exact_match" not in summary_of(trained / "run-train1234.wandb")
    leaked = [path for path in tmp_path.rglob("*") if path.is_file() and offline.encode() in path.read_bytes()]
    assert leaked == []


def test_the_newest_training_run_is_found(tmp_path, offline):
    run_dir = tmp_path / "run"
    assert training_run([run_dir]) is None
    training(run_dir, "first1")
    training(run_dir, "second2")
    assert training_run([tmp_path / "elsewhere", run_dir]) == (run_dir, "second2")
    (run_dir / "wandb" / "latest-run").unlink()  # without wandb's link, the newest folder by its time stamp
    assert training_run([run_dir]) == (run_dir, "second2")


def test_the_configs_run_id_wins(tmp_path, offline):
    run_dir = tmp_path / "run"
    training(run_dir, "found1")
    line = log_eval_scores(report_with_noisy(), {**CONFIG, "wandb_run_id": "named2"}, [run_dir])
    assert "logged into run named2" in line
    assert list((run_dir / "wandb").glob("*run-*-named2/run-named2.wandb"))


def test_no_training_run_is_one_warning_and_nothing_written(tmp_path, offline):
    line = log_eval_scores(report_with_noisy(), CONFIG, [tmp_path / "run"])
    assert line == f"warning: W&B: no training run under {tmp_path / 'run' / 'wandb'}; eval scores not logged"
    assert list(tmp_path.iterdir()) == []


def test_wandb_unavailable_is_one_warning(tmp_path, offline, monkeypatch):
    run_dir = tmp_path / "run"
    training(run_dir, "train1")
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if wandb were not installed
    line = log_eval_scores(report_with_noisy(), CONFIG, [run_dir])
    assert line.startswith("warning: W&B: eval scores not logged (ModuleNotFoundError: ")
    assert "\n" not in line


def test_a_failing_wandb_is_one_warning_without_the_key(tmp_path, offline, monkeypatch):
    import wandb

    training(tmp_path, "train1")

    def refuse(**kwargs):
        raise wandb.errors.CommError(f"bad key {offline}\nretry later")

    monkeypatch.setattr(wandb, "init", refuse)
    line = log_eval_scores(report_with_noisy(), CONFIG, [tmp_path])
    assert line == "warning: W&B: eval scores not logged (CommError: bad key *** retry later)"


@pytest.mark.parametrize("config, mode", [({}, "offline"), (CONFIG, "disabled")])
def test_nothing_to_do_without_a_project_or_with_wandb_disabled(tmp_path, monkeypatch, config, mode):
    monkeypatch.setenv("WANDB_MODE", mode)
    training(tmp_path, "train1")
    before = sorted(tmp_path.rglob("*"))
    assert log_eval_scores(report_with_noisy(), config, [tmp_path]) is None
    assert sorted(tmp_path.rglob("*")) == before


def test_headline_scores_name_model_split_and_metric():
    report = report_with_noisy()
    scores = headline_scores(report)
    assert scores["eval/base/exact_match"] == report["base"]["exact_match"]
    assert scores["eval/tuned/relevance_f1"] == report["tuned"]["relevance_f1"]
    assert scores["eval/tuned/noisy/n"] == 3
    assert not [key for key in scores if "per_skill" in key or "confusion" in key]


def test_the_reader_sees_every_record_of_a_run(tmp_path, offline):
    folder = training(tmp_path, "train1")
    kinds = [record.WhichOneof("record_type") for record in records(folder / "run-train1.wandb")]
    assert kinds[0] == "header" and "run" in kinds and kinds.count("history") == 2 and kinds[-1] == "exit"


def test_eval_run_looks_in_wandb_dir_then_out_then_beside_the_adapter(tmp_path, offline, monkeypatch, capsys):
    from eval.cli.run import _log_to_training_run, _training_log
    from skilltune.trainer_log import TRAINER_LOG, write_trainer_log

    run_dir = tmp_path / "runs" / "tiny"
    training(run_dir, "beside1")
    config = {**CONFIG, "output_dir": str(run_dir / "adapter")}
    assert _training_log(config) is None and _training_log(None) is None
    write_trainer_log(run_dir / "adapter", [{"loss": 1.0, "step": 1}])
    assert _training_log(config) == run_dir / "adapter" / TRAINER_LOG

    _log_to_training_run(report_with_noisy(), config, tmp_path / "out")  # --out elsewhere: beside the adapter
    assert "logged into run beside1" in capsys.readouterr().out
    training(tmp_path / "wandb_dir", "envdir2")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    _log_to_training_run(report_with_noisy(), config, tmp_path / "out")
    assert "logged into run envdir2" in capsys.readouterr().out
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "none"))
    elsewhere = {**config, "output_dir": str(tmp_path / "x" / "adapter")}
    _log_to_training_run(report_with_noisy(), elsewhere, tmp_path / "out")  # no run in any of the three
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith(f"warning: W&B: no training run under {tmp_path / 'none' / 'wandb'}, ")
