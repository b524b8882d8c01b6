"""`eval score` (alias `report`) and `eval compare`: scores and reports from saved files, and the
release gate that `eval run` shares."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import click

from eval.report import build_report, gate_problems, markdown, side_by_side, write_report
from eval.score import EXTRA_SPLITS, gold_problem, score, split_entry
from skilltune.cli import fail
from skilltune.jsonio import DataError, iter_jsonl, read_json, write_text
from skilltune.outputs import check_output_folder

# --- the release gate, on `score` and `run`


@dataclass(frozen=True)
class GateSettings:
    min_exact_match: float | None  # exit 1 under this exact match
    baseline: Path | None  # a saved report.json to compare against
    max_drop: float  # allowed drop of exact match against the baseline
    gate_model: str | None  # the model of the report gated (default: tuned, else the last)


def gate_options(command):
    """--min-exact-match, --baseline, --max-drop, --gate-model: the release gate."""
    for option in reversed(
        [
            click.option(
                "--min-exact-match",
                type=click.FloatRange(0, 1),
                default=None,
                help="Gate: exit 1 when the gated model's exact match is under this (0-1).",
            ),
            click.option(
                "--baseline",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                default=None,
                help="Gate: a saved report.json; exit 1 when exact match drops below it by more than --max-drop.",
            ),
            click.option(
                "--max-drop",
                type=click.FloatRange(0, 1),
                default=0.0,
                show_default=True,
                help="Gate: allowed drop of exact match against --baseline (0-1).",
            ),
            click.option(
                "--gate-model", default=None, help="Gate: which model of the report (default: tuned, else the last)."
            ),
        ]
    ):
        command = option(command)
    return command


def gate_settings(
    min_exact_match: float | None, baseline: Path | None, max_drop: float, gate_model: str | None
) -> GateSettings:
    """The gate_options' values, as the command received them."""
    return GateSettings(min_exact_match=min_exact_match, baseline=baseline, max_drop=max_drop, gate_model=gate_model)


def _default_model(report: dict, label: str | None) -> str:
    """The model a gate or a comparison looks at: the one named, else tuned, else the last."""
    return label or ("tuned" if "tuned" in report["models"] else report["models"][-1])


def _baseline_scores(baseline: Path, label: str) -> dict:
    """The saved report's scores of `label`, else of its last model."""
    try:
        saved = read_json(baseline, "report")
    except DataError as err:
        fail(str(err))
    fallback = saved["models"][-1] if saved["models"] else None
    reference = saved.get(label) or saved.get(fallback)
    if not isinstance(reference, dict):
        fail(f"{baseline}: no scores for {label!r} or any other model (models: {saved['models']})")
    return reference


def apply_gate(report: dict, gate: GateSettings) -> None:
    """Exit 1 when the gated model misses the threshold or drops against the saved baseline report."""
    if gate.min_exact_match is None and gate.baseline is None:
        return
    label = _default_model(report, gate.gate_model)
    if label not in report["models"]:
        fail(f"--gate-model {label!r}: the report has {', '.join(report['models'])}")
    reference = _baseline_scores(gate.baseline, label) if gate.baseline is not None else None
    problems = gate_problems(report[label], label, gate.min_exact_match, reference, gate.max_drop)
    _exit_on(problems)
    click.echo(f"gate passed: {label}")


def _exit_on(problems: list[str]) -> None:
    for problem in problems:
        click.echo(f"gate failed: {problem}", err=True)
    if problems:
        sys.exit(1)


# --- scoring saved predictions


def load_skills(pack: Path | None):
    """The skills of a pack folder, None without one; a pack that does not load fails the command."""
    from skilltune.skills import SkillFileError, load_pack

    if pack is None:
        return None
    try:
        return load_pack(pack)
    except (SkillFileError, FileNotFoundError) as err:
        fail(str(err))


def _rows_by_model(prediction_files: list[Path]) -> dict[str, dict[str, list[dict]]]:
    """model -> split -> its prediction rows, from all the files; a bad gold answer is a DataError."""
    rows_by_model: dict[str, dict[str, list[dict]]] = {}
    for path in prediction_files:
        rows = 0
        for number, row in iter_jsonl(path, "prediction"):
            problem = gold_problem(row["gold"])
            if problem:
                raise DataError(path, number, problem)
            rows_by_model.setdefault(row["model"], {}).setdefault(row["split"], []).append(row)
            rows += 1
        if not rows:
            fail(f"{path}: no predictions")
    return rows_by_model


def score_and_report(
    prediction_files: list[Path], test_file: str, out: Path, skills=None, training_log: Path | None = None
) -> dict:
    """Score each file; a model's predictions on an extra split (`test_noisy`, `test_wording`,
    `test_unseen`) become that split's entry of its scores (`noisy`, `wording`, `unseen`).
    With the pack's `skills`, matching is schema-aware and positional arguments are named.
    With the run's `training_log` (trainer_log.jsonl), the report also shows the loss curves."""
    schemas = {skill.name: skill.json_schema() for skill in skills} if skills else None
    signatures = {skill.name: skill.parameters for skill in skills} if skills else None
    scores = {}
    for label, by_split in _rows_by_model(prediction_files).items():
        if "test" not in by_split:
            fail(f"model {label!r} has no predictions on the clean test split")
        scores[label] = score(by_split["test"], schemas=schemas, signatures=signatures)
        scores[label]["decoding"] = by_split["test"][0].get("decoding", "free")  # older files: free
        for split, (key, _) in EXTRA_SPLITS.items():
            if split in by_split:
                scores[label][key] = split_entry(score(by_split[split], schemas=schemas, signatures=signatures))
    report = build_report(scores, test_file)
    write_report(out, report, training_log)
    click.echo(side_by_side(report))
    click.echo(f"\nreport: {out / 'report.json'}, {out / 'report.md'}, {out}/confusion-*.png")
    return report


@dataclass(frozen=True)
class ScoreSettings:
    predictions: tuple[Path, ...]  # saved predictions files, one per model
    out: Path  # folder for report.json and report.md
    test_file: str  # the test file's name for the report header; "" when not given
    pack: Path | None  # skill pack for schema-aware matching
    gate: GateSettings


@click.command()
@click.argument("predictions", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for report.json and report.md.")
@click.option("--test-file", default="", help="Name of the test file, for the report header.")
@click.option(
    "--pack",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Skill pack for schema-aware matching and positional arguments.",
)
@gate_options
def score_command(
    predictions: tuple[Path, ...],
    out: Path,
    test_file: str,
    pack: Path | None,
    min_exact_match: float | None,
    baseline: Path | None,
    max_drop: float,
    gate_model: str | None,
) -> None:
    """Re-score saved PREDICTIONS files (one per model) without generating; `report` is the same command.

    \b
    Example:
      python -m eval score runs/smollm2/predictions-base.jsonl runs/smollm2/predictions-tuned.jsonl --out runs/smollm2
    """
    rescore(
        ScoreSettings(
            predictions=predictions,
            out=out,
            test_file=test_file,
            pack=pack,
            gate=gate_settings(min_exact_match, baseline, max_drop, gate_model),
        )
    )


def rescore(settings: ScoreSettings) -> None:
    try:
        check_output_folder(settings.out, settings.predictions, kind="eval")
        report = score_and_report(
            list(settings.predictions),
            settings.test_file or "(saved predictions)",
            settings.out,
            load_skills(settings.pack),
        )
    except (DataError, OSError) as err:
        fail(str(err))
    apply_gate(report, settings.gate)


# --- comparing runs


@dataclass(frozen=True)
class CompareSettings:
    reports: tuple[Path, ...]  # report.json files or run folders; the first is the baseline
    model_label: str | None  # the model of each report compared (default: tuned, else the last)
    out: Path | None  # where compare.md goes, if anywhere
    min_exact_match: float | None  # exit 1 when any run is under this
    max_drop: float | None  # exit 1 when a run is below the first by more than this


@click.command()
@click.argument("reports", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--model",
    "model_label",
    default=None,
    help="Which model of each report to compare (default: tuned, else each report's last).",
)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Also write compare.md there.")
@click.option(
    "--min-exact-match",
    type=click.FloatRange(0, 1),
    default=None,
    help="Gate: exit 1 when any run's exact match is under this (0-1).",
)
@click.option(
    "--max-drop",
    type=click.FloatRange(0, 1),
    default=None,
    help="Gate: exit 1 when a run's exact match is below the FIRST run's by more than this (0-1).",
)
def compare_command(
    reports: tuple[Path, ...],
    model_label: str | None,
    out: Path | None,
    min_exact_match: float | None,
    max_drop: float | None,
) -> None:
    """Side by side: one model from each of REPORTS (report.json files or run folders), first = baseline.

    \b
    Example:
      python -m eval compare runs/smollm2 runs/mistral --max-drop 0.02
    """
    compare(
        CompareSettings(
            reports=reports, model_label=model_label, out=out, min_exact_match=min_exact_match, max_drop=max_drop
        )
    )


def _run_scores(path: Path, model_label: str | None) -> dict:
    """The compared model's scores in one report (a run folder means its report.json)."""
    try:
        report = read_json(path, "report")
    except DataError as err:
        fail(str(err) if path.exists() else f"{path}: no such file (a run folder holds report.json)")
    if not report["models"]:
        fail(f"{path}: the report has no models")
    label = _default_model(report, model_label)
    if label not in report["models"] or not isinstance(report.get(label), dict):
        fail(f"{path}: no scores for model {label!r} (it lists {', '.join(report['models'])})")
    return report[label]


def compare(settings: CompareSettings) -> None:
    if settings.out is not None:
        try:
            check_output_folder(settings.out, kind="eval")  # compare.md only: reports there stay as they are
        except DataError as err:
            fail(str(err))
    scores = {}
    for path in settings.reports:
        path = path / "report.json" if path.is_dir() else path
        run_scores = _run_scores(path, settings.model_label)
        name = path.parent.name or str(path)
        while name in scores:  # two runs from folders of the same name
            name += "'"
        scores[name] = run_scores
    table = build_report(scores, "several runs")
    click.echo(side_by_side(table))
    if settings.out is not None:
        write_text(Path(settings.out) / "compare.md", markdown(table))
    first = next(iter(scores))
    problems = []
    for name, run_scores in scores.items():
        baseline = scores[first] if settings.max_drop is not None and name != first else None
        problems += gate_problems(run_scores, name, settings.min_exact_match, baseline, settings.max_drop or 0.0)
    _exit_on(problems)
