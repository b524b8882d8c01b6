"""skilltune eval: score function calls by exact match, base model against fine-tuned.

    python -m eval run --config configs/smollm2.yml --test data/skills/test.jsonl --out runs/smollm2
    python -m eval score runs/smollm2/predictions-base.jsonl runs/smollm2/predictions-tuned.jsonl --out runs/smollm2

`run` generates with the config's `base_model` and with it plus the LoRA adapter in the config's
`output_dir`, saves the raw predictions to JSONL, scores them and writes report.json/report.md.
`score` re-scores saved predictions without generating again.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import yaml

from datagen.jsonio import DataError, read_jsonl, write_jsonl
from eval.report import build_report, side_by_side, write_report
from eval.score import score


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _read_config(path: Path) -> dict:
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        _fail(f"{path}: not valid YAML: {err}")
    for key in ("base_model", "output_dir"):
        if not isinstance(config, dict) or not config.get(key):
            _fail(f"{path}: no `{key}:`")
    return config


def _score_and_report(prediction_files: list[Path], test_file: str, out: Path) -> dict:
    """Score each file; a model's `test_noisy` predictions become the `noisy` entry of its scores."""
    rows_by_model: dict[str, dict[str, list[dict]]] = {}
    for path in prediction_files:
        rows = list(read_jsonl(path, "prediction"))
        if not rows:
            _fail(f"{path}: no predictions")
        for row in rows:
            rows_by_model.setdefault(row["model"], {}).setdefault(row["split"], []).append(row)
    scores = {}
    for label, by_split in rows_by_model.items():
        if "test" not in by_split:
            _fail(f"model {label!r} has no predictions on the clean test split")
        scores[label] = score(by_split["test"])
        if "test_noisy" in by_split:
            noisy = score(by_split["test_noisy"])
            scores[label]["noisy"] = {key: noisy[key] for key in ("n", "exact_match", "name_accuracy", "parse_failure_rate")}
    report = build_report(scores, test_file)
    write_report(out, report)
    click.echo(side_by_side(report))
    click.echo(f"\nreport: {out / 'report.json'}, {out / 'report.md'}")
    return report


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Score function-calling models by exact match of parsed calls."""


@cli.command()
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="Axolotl YAML: base_model and output_dir (the adapter) are read from it.")
@click.option("--test", "test_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="Held-out records (JSONL) to score on.")
@click.option("--noisy-test", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The speech-noise twin of --test (test_noisy.jsonl), scored as each model's `noisy` entry.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for predictions and reports.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=48, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Score only the first N records.")
@click.option("--skip-base", is_flag=True, help="Score only the tuned model.")
def run(config: Path, test_file: Path, noisy_test: Path | None, out: Path, batch_size: int, max_new_tokens: int,
        limit: int | None, skip_base: bool) -> None:
    """Generate with the base model and base + adapter, then score both.

    \b
    Example:
      python -m eval run --config configs/smollm2.yml --test data/skills/test.jsonl --out runs/smollm2
    """
    from eval.predict import attach_adapter, generate, load_model, prediction_rows

    settings = _read_config(config)
    splits = {"test": test_file, "test_noisy": noisy_test} if noisy_test else {"test": test_file}
    records = {}
    try:
        for split, path in splits.items():
            records[split] = list(read_jsonl(path, "record"))[:limit]
            if not records[split]:
                _fail(f"{path}: no records")
    except DataError as err:
        _fail(str(err))
    adapter_dir = Path(settings["output_dir"])
    if not (adapter_dir / "adapter_config.json").exists():
        _fail(f"{adapter_dir}: no trained adapter (adapter_config.json); run `make train` first")

    model, tokenizer = load_model(settings["base_model"])
    prediction_files = []
    stages = [("tuned", True)] if skip_base else [("base", False), ("tuned", True)]
    for label, with_adapter in stages:
        if with_adapter:
            model = attach_adapter(model, adapter_dir)
        for split, split_records in records.items():
            outputs = generate(model, tokenizer, split_records, batch_size, max_new_tokens, label=f"{label} model, {split}")
            path = out / (f"predictions-{label}.jsonl" if split == "test" else f"predictions-{label}-noisy.jsonl")
            write_jsonl(path, prediction_rows(split_records, outputs, label, split), "prediction")
            prediction_files.append(path)
    _score_and_report(prediction_files, str(test_file), out)


@cli.command("score")
@click.argument("predictions", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for report.json and report.md.")
@click.option("--test-file", default="", help="Name of the test file, for the report header.")
def score_command(predictions: tuple[Path, ...], out: Path, test_file: str) -> None:
    """Re-score saved PREDICTIONS files (one per model) without generating.

    \b
    Example:
      python -m eval score runs/smollm2/predictions-base.jsonl runs/smollm2/predictions-tuned.jsonl --out runs/smollm2
    """
    try:
        _score_and_report(list(predictions), test_file or "(saved predictions)", out)
    except DataError as err:
        _fail(str(err))


if __name__ == "__main__":
    cli(prog_name="python -m eval")
