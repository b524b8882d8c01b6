"""trainer_log.jsonl: the Trainer's log history of a run, one row per logging or evaluation.

Written by the Axolotl plugin skilltune.axolotl_plugin.TrainerLog into the run's output_dir (beside
the adapter), read by eval's report for the loss curves. Kept apart from the plugin so a reader
does not import Axolotl."""

from __future__ import annotations

import math
from pathlib import Path

from skilltune.jsonio import read_jsonl, write_jsonl

TRAINER_LOG = "trainer_log.jsonl"  # in the run's output_dir


def _finite(value):
    # a diverged run logs NaN or inf losses; JSON has no such numbers, so they become null
    return None if isinstance(value, float) and not math.isfinite(value) else value


def trainer_log_rows(log_history: list[dict]) -> list[dict]:
    """The Trainer's log_history as trainer_log.jsonl rows: each entry as logged, non-finite numbers null."""
    return [{key: _finite(value) for key, value in entry.items()} for entry in log_history]


def write_trainer_log(output_dir: Path | str, log_history: list[dict]) -> None:
    """Through a temporary file and a rename: a reader never sees half a log."""
    write_jsonl(Path(output_dir) / TRAINER_LOG, trainer_log_rows(log_history), "trainer_log")


def read_trainer_log(path: Path | str) -> list[dict]:
    """Every row, checked against the trainer_log schema (a bad line is a `path:line` DataError)."""
    return list(read_jsonl(path, "trainer_log"))
