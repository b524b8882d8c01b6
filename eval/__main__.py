"""skilltune eval: score function calls by exact match, base model against fine-tuned.

    python -m eval run --config configs/smollm2.yml --test data/skills/test.jsonl --out runs/smollm2
    python -m eval score runs/smollm2/predictions-base.jsonl runs/smollm2/predictions-tuned.jsonl --out runs/smollm2

`run` generates with the config's `base_model` and with it plus the LoRA adapter in the config's
`output_dir`, saves the raw predictions to JSONL, scores them and writes report.json/report.md.
`--backend` picks how (eval/predict.py): transformers (default; CPU or GPU), vllm (CUDA GPU), or
openai: any OpenAI-compatible endpoint, where `--model` is scored as `tuned` (a hosted fine-tune,
a vLLM or llama.cpp server) and `--base-model-name`, if given, as `base`.
`score` re-scores saved predictions without generating again.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import yaml

from datagen.jsonio import DataError, read_jsonl
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


BACKENDS = ("transformers", "openai", "vllm")


def _backends(backend: str, settings: dict | None, base_url: str | None, model: str | None,
              base_model_name: str | None, skip_base: bool, batch_size: int, max_new_tokens: int, concurrency: int,
              max_retries: int):
    """Yield (label, backend): base unless skipped, then tuned. Each is built when its turn comes,
    after the caller has dropped the one before, so only one model is in memory at a time."""
    from eval.predict import OpenAIBackend, TransformersBackend, VLLMBackend

    if backend == "openai":
        # a hosted fine-tune is scored by naming it (--model); its base only when named too
        options = {"concurrency": concurrency, "max_retries": max_retries, "max_tokens": max_new_tokens}
        if base_model_name and not skip_base:
            yield "base", OpenAIBackend(base_url, base_model_name, label="base", **options)
        yield "tuned", OpenAIBackend(base_url, model, label="tuned", **options)
        return
    base, adapter = settings["base_model"], settings["output_dir"]
    if backend == "transformers":
        if not skip_base:
            yield "base", TransformersBackend(base, batch_size=batch_size, max_new_tokens=max_new_tokens, label="base")
        yield "tuned", TransformersBackend(base, adapter, batch_size=batch_size, max_new_tokens=max_new_tokens,
                                           label="tuned")
        return
    # one vLLM engine per process (it claims the GPU's memory): the tuned one, LoRA enabled, also
    # answers as the base model when it is given no adapter
    tuned = VLLMBackend(base, adapter, max_new_tokens=max_new_tokens, label="tuned")
    if not skip_base:
        yield "base", VLLMBackend(base, max_new_tokens=max_new_tokens, label="base", llm=tuned.llm)
    yield "tuned", tuned


def _check_backend_options(backend: str, config: Path | None, base_url: str | None, model: str | None,
                           base_model_name: str | None) -> None:
    if backend == "openai":
        if not base_url or not model:
            _fail("--backend openai needs --base-url and --model (the model to score as `tuned`)")
        if config is not None:
            _fail("--config is not used with --backend openai (name the models with --model and --base-model-name)")
        return
    if config is None:
        _fail(f"--backend {backend} needs --config (base_model and the adapter in output_dir are read from it)")
    for option, value in (("--base-url", base_url), ("--model", model), ("--base-model-name", base_model_name)):
        if value is not None:
            _fail(f"{option} is only for --backend openai")


@cli.command()
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Axolotl YAML: base_model and output_dir (the adapter) are read from it "
                   "(required for the transformers and vllm backends).")
@click.option("--test", "test_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="Held-out records (JSONL) to score on.")
@click.option("--noisy-test", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The speech-noise twin of --test (test_noisy.jsonl), scored as each model's `noisy` entry.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for predictions and reports.")
@click.option("--backend", type=click.Choice(BACKENDS), default="transformers", show_default=True,
              help="transformers: local, CPU or GPU; openai: any OpenAI-compatible endpoint; vllm: CUDA GPU.")
@click.option("--base-url", default=None, help="openai backend: the endpoint, e.g. http://127.0.0.1:8000/v1.")
@click.option("--model", default=None, help="openai backend: the model scored as `tuned` (e.g. a hosted fine-tune).")
@click.option("--base-model-name", default=None,
              help="openai backend: a model to score as `base` at the same endpoint (skipped if not given).")
@click.option("--concurrency", type=click.IntRange(min=1), default=8, show_default=True,
              help="openai backend: requests in flight at most.")
@click.option("--max-retries", type=click.IntRange(min=0), default=5, show_default=True,
              help="openai backend: the client's retries on 429/5xx/timeouts, with backoff and Retry-After.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="transformers backend: prompts generated together.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=48, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Score only the first N records.")
@click.option("--skip-base", is_flag=True, help="Score only the tuned model.")
def run(config: Path | None, test_file: Path, noisy_test: Path | None, out: Path, backend: str, base_url: str | None,
        model: str | None, base_model_name: str | None, concurrency: int, max_retries: int, batch_size: int,
        max_new_tokens: int, limit: int | None, skip_base: bool) -> None:
    """Generate with the base model and base + adapter (or the named endpoint models), then score both.

    \b
    Examples:
      python -m eval run --config configs/smollm2.yml --test data/skills/test.jsonl --out runs/smollm2
      OPENAI_API_KEY=... python -m eval run --backend openai --base-url https://api.openai.com/v1 \\
          --model ft:gpt-4o-mini:org::id --base-model-name gpt-4o-mini --test data/skills/test.jsonl --out runs/openai
    """
    from eval.predict import PredictError, prediction_rows, write_predictions

    _check_backend_options(backend, config, base_url, model, base_model_name)
    settings = _read_config(config) if config is not None else None
    splits = {"test": test_file, "test_noisy": noisy_test} if noisy_test else {"test": test_file}
    records = {}
    try:
        for split, path in splits.items():
            records[split] = list(read_jsonl(path, "record"))[:limit]
            if not records[split]:
                _fail(f"{path}: no records")
    except DataError as err:
        _fail(str(err))
    if settings is not None:
        adapter_dir = Path(settings["output_dir"])
        if not (adapter_dir / "adapter_config.json").exists():
            _fail(f"{adapter_dir}: no trained adapter (adapter_config.json); run `make train` first")

    prediction_files = []
    try:
        for label, predictor in _backends(backend, settings, base_url, model, base_model_name, skip_base, batch_size,
                                          max_new_tokens, concurrency, max_retries):
            for split, split_records in records.items():
                predictor.label = f"{label} model, {split}"  # the progress bar's name
                outputs = predictor.generate(split_records)
                path = out / (f"predictions-{label}.jsonl" if split == "test" else f"predictions-{label}-noisy.jsonl")
                write_predictions(path, prediction_rows(split_records, outputs, label, split))
                prediction_files.append(path)
            del predictor  # the next model loads into the memory this one held
    except (PredictError, DataError) as err:
        _fail(str(err))
    except OSError as err:  # an unwritable --out
        _fail(" ".join(str(err).split()))
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
