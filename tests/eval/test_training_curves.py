"""eval/training_curves.py and the loss section of report.md: curves read from a run's
trainer_log.jsonl (as skilltune.axolotl_plugin.TrainerLog writes it), drawn into loss.png."""

from __future__ import annotations

import numpy as np
import pytest
from scored_rows import ROWS

from eval.report import build_report, write_report
from eval.score import score
from eval.training_curves import loss_curves, read_loss_curves, write_loss_png
from skilltune.jsonio import DataError
from skilltune.trainer_log import TRAINER_LOG, write_trainer_log

# the shape of an Axolotl run's log history (eval_strategy epoch: Axolotl evaluates at step 0 and at the end)
HISTORY = [
    {"eval_loss": 2.5, "eval_runtime": 0.3, "epoch": 0, "step": 0},
    {"loss": 2.4, "grad_norm": 0.4, "learning_rate": 0.001, "epoch": 0.1, "step": 10},
    {"loss": 1.1, "grad_norm": 0.5, "learning_rate": 0.0008, "epoch": 0.2, "step": 20},
    {"loss": float("nan"), "grad_norm": float("nan"), "learning_rate": 0.0005, "epoch": 0.3, "step": 30},
    {"loss": 0.3, "grad_norm": 0.2, "learning_rate": 0.0001, "epoch": 0.4, "step": 40},
    {"eval_loss": 0.35, "eval_runtime": 0.3, "epoch": 0.4, "step": 40},
    {"train_runtime": 4.2, "train_loss": 1.2, "epoch": 0.4, "step": 40},
]

# matplotlib's first two line colours: training, then validation
TRAINING_RGB, VALIDATION_RGB = (0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)


def pixels_of(png, rgb) -> int:
    import matplotlib.image

    image = (matplotlib.image.imread(png)[..., :3] * 255).round().astype(int)
    return int((np.abs(image - np.array(rgb)).sum(axis=-1) <= 6).sum())


def test_curves_hold_each_logged_loss_and_leave_out_nan(tmp_path):
    write_trainer_log(tmp_path, HISTORY)
    curves = read_loss_curves(tmp_path / TRAINER_LOG)
    assert curves.train == [(10, 2.4), (20, 1.1), (40, 0.3)]  # the NaN at step 30 was written as null
    assert curves.val == [(0, 2.5), (40, 0.35)]
    assert curves.summary() == (
        "training loss 2.4000 at step 10 -> 0.3000 at step 40 (3 logs); "
        "validation loss 2.5000 at step 0 -> 0.3500 at step 40 (2 evaluations)"
    )


def test_a_single_evaluation_and_no_evaluation_are_said_so():
    once = loss_curves([{"loss": 1.5, "step": 5}, {"eval_loss": 1.25, "step": 5}])
    assert once.summary() == "training loss 1.5000 at step 5 (1 log); validation loss 1.2500 at step 5 (1 evaluation)"
    never = loss_curves([{"loss": 1.5, "step": 5}])
    assert never.summary() == "training loss 1.5000 at step 5 (1 log); no validation loss logged"
    assert not loss_curves([{"train_runtime": 1.0, "step": 0}])


def test_the_png_draws_both_curves(tmp_path):
    both, train_only = tmp_path / "both.png", tmp_path / "train.png"
    curves = loss_curves(HISTORY)
    write_loss_png(both, curves, "loss")
    write_loss_png(train_only, loss_curves([row for row in HISTORY if "eval_loss" not in row]), "loss")
    assert both.read_bytes().startswith(b"\x89PNG")
    assert pixels_of(both, TRAINING_RGB) > 200 and pixels_of(both, VALIDATION_RGB) > 200
    assert pixels_of(train_only, TRAINING_RGB) > 200 and pixels_of(train_only, VALIDATION_RGB) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["both.png", "train.png"]  # no temporary left


def test_write_report_with_a_training_log_shows_the_curves(tmp_path):
    write_trainer_log(tmp_path / "adapter", HISTORY)
    report = build_report({"tuned": score(ROWS)}, "test.jsonl")
    write_report(tmp_path / "out", report, training_log=tmp_path / "adapter" / TRAINER_LOG)
    text = (tmp_path / "out" / "report.md").read_text()
    section = text.split("## Training and validation loss\n", 1)[1]
    assert section.startswith("\ntraining loss 2.4000 at step 10 -> 0.3000 at step 40 (3 logs); validation loss")
    assert "![training and validation loss](loss.png)" in section
    assert pixels_of(tmp_path / "out" / "loss.png", VALIDATION_RGB) > 200


def test_write_report_without_a_log_or_without_loss_in_it_has_no_loss_section(tmp_path):
    report = build_report({"tuned": score(ROWS)}, "test.jsonl")
    write_report(tmp_path / "plain", report)
    write_trainer_log(tmp_path / "adapter", [{"train_runtime": 1.0, "step": 0}])
    write_report(tmp_path / "empty", report, training_log=tmp_path / "adapter" / TRAINER_LOG)
    for out in ("plain", "empty"):
        assert "Training and validation loss" not in (tmp_path / out / "report.md").read_text()
        assert not (tmp_path / out / "loss.png").exists()


def test_a_broken_log_is_a_file_and_line_error(tmp_path):
    log = tmp_path / TRAINER_LOG
    log.write_text('{"loss": 1.0, "step": 1}\n{"loss": "high", "step": 2}\n')
    with pytest.raises(DataError, match=r"trainer_log.jsonl:2"):
        read_loss_curves(log)
