"""Eval scores into the training's own W&B run: the headline scores of each model (per split) as
the run's summary, exact match per skill as a wandb.Table.

The run is the one Axolotl's training wrote under `<dir>/wandb/` (the Makefile trains with
WANDB_DIR=runs/<MODEL>): `latest-run`, else the newest run folder, named by its `run-<id>.wandb`
file, or the config's `wandb_run_id` when it names one. It is resumed by id (resume="allow"), in
WANDB_MODE (offline unless set), so `wandb sync` uploads training and eval as one run. W&B is an
extra: anything that goes wrong is one warning line and the eval goes on. Nothing from the
environment is logged; the API key, when set, is read by wandb itself and never written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from eval.report import HEADLINE
from eval.score import EXTRA_SPLITS, RATE_KEYS

# offline-run-20261202_215857-c3h2l3te (-1 when that name was taken), or run-... for a run logged online
RUN_FOLDER = re.compile(r"(?:offline-)?run-(?P<time>\d{8}_\d{6})-[A-Za-z0-9_-]+")
TABLE_COLUMNS = ["model", "split", "skill", *RATE_KEYS]


def _run_folders(wandb_dir: Path) -> list[Path]:
    """Run folders under a wandb folder, `latest-run` first, then newest first."""
    folders = sorted(
        (path for path in wandb_dir.glob("*run-*") if path.is_dir() and RUN_FOLDER.fullmatch(path.name)),
        # runs started in the same second share the time stamp (wandb adds -1 to the second's name)
        key=lambda path: (RUN_FOLDER.fullmatch(path.name)["time"], path.stat().st_mtime_ns),
        reverse=True,
    )
    latest = wandb_dir / "latest-run"
    return ([latest.resolve()] if latest.is_dir() else []) + folders


def training_run(roots: Iterable[Path]) -> tuple[Path, str] | None:
    """(the folder wandb's `dir` was, the run id) of the newest run under the first root holding one."""
    for root in roots:
        for wandb_dir in (root / "wandb", root / ".wandb"):
            for folder in _run_folders(wandb_dir):
                logs = sorted(folder.glob("run-*.wandb"))  # the run's transaction log, named by its id
                if logs:
                    return root, logs[0].name.removeprefix("run-").removesuffix(".wandb")
    return None


def headline_scores(report: dict) -> dict[str, float | int]:
    """`eval/<model>/<metric>` for the clean test split, `eval/<model>/<split>/<metric>` for the others."""
    summary = {}
    for model in report["models"]:
        scores = report[model]
        for key in ("n", *(key for key, _ in HEADLINE)):
            if key in scores:
                summary[f"eval/{model}/{key}"] = scores[key]
        for split_key, _ in EXTRA_SPLITS.values():
            if split_key in scores:
                for key in RATE_KEYS:
                    summary[f"eval/{model}/{split_key}/{key}"] = scores[split_key][key]
    return summary


def per_skill_rows(report: dict) -> list[list]:
    """One row per model, split and skill, in TABLE_COLUMNS order."""
    rows = []
    for model in report["models"]:
        by_split = {"test": report[model]["per_skill"]}
        by_split |= {key: report[model][key]["per_skill"] for key, _ in EXTRA_SPLITS.values() if key in report[model]}
        for split, per_skill in by_split.items():
            for skill, rates in per_skill.items():
                rows.append([model, split, skill, *(rates[key] for key in RATE_KEYS)])
    return rows


def _one_line(err: Exception) -> str:
    text = " ".join(f"{type(err).__name__}: {err}".split())
    key = os.environ.get("WANDB_API_KEY")
    return text.replace(key, "***") if key else text  # an error message must not carry the key to a log


def log_eval_scores(report: dict, config: dict, roots: Iterable[Path]) -> str | None:
    """Log `report`'s scores into the training's run; the line to print, or None when the config
    names no wandb_project or WANDB_MODE is disabled. Never raises."""
    project = config.get("wandb_project")
    mode = os.environ.get("WANDB_MODE") or "offline"
    if not project or mode == "disabled":
        return None
    roots = list(dict.fromkeys(Path(root) for root in roots))
    try:
        found = training_run(roots)
        run_id = config.get("wandb_run_id") or (found[1] if found else None)
        if run_id is None:
            where = ", ".join(str(root / "wandb") for root in roots)
            return f"warning: W&B: no training run under {where}; eval scores not logged"
        import wandb

        run = wandb.init(
            project=project,
            entity=config.get("wandb_entity") or None,
            id=run_id,
            resume="allow",
            dir=str(found[0] if found else roots[0]),
            mode=mode,
            settings=wandb.Settings(console="off", silent=True),
        )
        try:
            run.summary.update(headline_scores(report))
            run.log({"eval/per_skill": wandb.Table(columns=TABLE_COLUMNS, data=per_skill_rows(report))})
            where = f" ({run.settings.sync_dir}; `wandb sync` uploads it)" if run.offline else ""
        finally:
            run.finish()
        return f"W&B: eval scores of {', '.join(report['models'])} logged into run {run_id}{where}"
    except Exception as err:  # noqa: BLE001 - W&B must not be able to fail the eval
        return f"warning: W&B: eval scores not logged ({_one_line(err)})"
