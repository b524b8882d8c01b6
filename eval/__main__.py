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

import json
import sys
from pathlib import Path

import click
import yaml

from skilltune.cli import fail
from skilltune.jsonio import DataError, iter_json_lines, iter_jsonl, read_json, read_text, write_text
from skilltune.outputs import check_output_folder
from eval.report import build_report, gate_problems, markdown, side_by_side, write_report
from eval.score import gold_problem, noisy_entry, score


def _read_config(path: Path) -> dict:
    try:
        config = yaml.safe_load(read_text(path))
    except DataError as err:
        fail(str(err))
    except yaml.YAMLError as err:
        fail(f"{path}: not valid YAML: {' '.join(str(err).split())}")
    for key in ("base_model", "output_dir"):
        if not isinstance(config, dict) or not config.get(key):
            fail(f"{path}: no `{key}:`")
        if not isinstance(config[key], str):
            fail(f"{path}: `{key}: {config[key]!r}` must be a model name or a folder path")
    return config


def _test_records(path: Path, limit: int | None) -> list[dict]:
    """The first `limit` records of a test file, each with a gold answer scoring can read.

    Checked before any model loads: a bad record is one `file:line` error, not a crash after
    minutes of generation."""
    from skilltune.records import gold_call, record_problem

    records = []
    try:
        for number, record in iter_jsonl(path, "record"):
            if limit is not None and len(records) >= limit:
                break
            problem = record_problem(record)
            if problem is None:
                try:
                    problem = gold_problem(gold_call(record).to_python())
                except ValueError as err:  # a value Python will not write back (an int of 5,000 digits)
                    problem = f"gold answer: {err}"
            if problem:
                raise DataError(path, number, problem)
            records.append(record)
    except DataError as err:
        fail(str(err))
    if not records:
        fail(f"{path}: no records")
    return records


def _manifest_of(test_file: Path | None) -> dict:
    """The manifest.json `datagen skills` wrote beside a test file, or {} when there is none."""
    if test_file is None:
        return {}
    try:
        manifest = json.loads(read_text(Path(test_file).parent / "manifest.json"))
    except (DataError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _default_model(report: dict, label: str | None) -> str:
    """The model a gate or a comparison looks at: the one named, else tuned, else the last."""
    return label or ("tuned" if "tuned" in report["models"] else report["models"][-1])


def _pack_for(test_file: Path | None, pack: Path | None):
    """The skill pack behind a test file: --pack, else the `source` its manifest.json names."""
    from skilltune.skills import SkillFileError, load_pack

    if pack is None:
        source = _manifest_of(test_file).get("source")
        pack = Path(source) if isinstance(source, str) and Path(source).is_dir() else None
    if pack is None:
        return None
    try:
        return load_pack(pack)
    except (SkillFileError, FileNotFoundError) as err:
        fail(str(err))


def _gate(report: dict, min_exact_match: float | None, baseline: Path | None, max_drop: float,
          gate_model: str | None) -> None:
    """Exit 1 when the gated model misses the threshold or drops against the saved baseline report."""
    if min_exact_match is None and baseline is None:
        return
    label = _default_model(report, gate_model)
    if label not in report["models"]:
        fail(f"--gate-model {label!r}: the report has {', '.join(report['models'])}")
    reference = None
    if baseline is not None:
        try:
            saved = read_json(baseline, "report")
        except DataError as err:
            fail(str(err))
        fallback = saved["models"][-1] if saved["models"] else None
        reference = saved.get(label) or saved.get(fallback)
        if not isinstance(reference, dict):
            fail(f"{baseline}: no scores for {label!r} or any other model (models: {saved['models']})")
    problems = gate_problems(report[label], label, min_exact_match, reference, max_drop)
    for problem in problems:
        click.echo(f"gate failed: {problem}", err=True)
    if problems:
        sys.exit(1)
    click.echo(f"gate passed: {label}")


def _score_and_report(prediction_files: list[Path], test_file: str, out: Path, skills=None) -> dict:
    """Score each file; a model's `test_noisy` predictions become the `noisy` entry of its scores.
    With the pack's `skills`, matching is schema-aware and positional arguments are named."""
    schemas = {skill.name: skill.json_schema() for skill in skills} if skills else None
    signatures = {skill.name: skill.parameters for skill in skills} if skills else None
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
    scores = {}
    for label, by_split in rows_by_model.items():
        if "test" not in by_split:
            fail(f"model {label!r} has no predictions on the clean test split")
        scores[label] = score(by_split["test"], schemas=schemas, signatures=signatures)
        if "test_noisy" in by_split:
            scores[label]["noisy"] = noisy_entry(score(by_split["test_noisy"], schemas=schemas, signatures=signatures))
    report = build_report(scores, test_file)
    write_report(out, report)
    click.echo(side_by_side(report))
    click.echo(f"\nreport: {out / 'report.json'}, {out / 'report.md'}, {out}/confusion-*.png")
    return report


def gate_options(command):
    """--min-exact-match, --baseline, --max-drop, --gate-model: the release gate."""
    for option in reversed([
        click.option("--min-exact-match", type=click.FloatRange(0, 1), default=None,
                     help="Gate: exit 1 when the gated model's exact match is under this (0-1)."),
        click.option("--baseline", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                     help="Gate: a saved report.json; exit 1 when exact match drops below it by more than --max-drop."),
        click.option("--max-drop", type=click.FloatRange(0, 1), default=0.0, show_default=True,
                     help="Gate: allowed drop of exact match against --baseline (0-1)."),
        click.option("--gate-model", default=None, help="Gate: which model of the report (default: tuned, else the last)."),
    ]):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Score function-calling models by exact match of parsed calls."""


BACKENDS = ("transformers", "openai", "vllm")


def _backends(backend: str, settings: dict | None, base_url: str | None, model: str | None,
              base_model_name: str | None, skip_base: bool, batch_size: int, max_new_tokens: int, concurrency: int,
              max_retries: int, processors=None):
    """Yield (label, backend): base unless skipped, then tuned. Each is built when its turn comes,
    after the caller has dropped the one before, so only one model is in memory at a time."""
    from eval.predict import OpenAIBackend, TransformersBackend, VLLMBackend, training_chat_template

    if backend == "openai":
        # a hosted fine-tune is scored by naming it (--model); its base only when named too
        options = {"concurrency": concurrency, "max_retries": max_retries, "max_tokens": max_new_tokens}
        if base_model_name and not skip_base:
            yield "base", OpenAIBackend(base_url, base_model_name, label="base", **options)
        yield "tuned", OpenAIBackend(base_url, model, label="tuned", **options)
        return
    base, adapter = settings["base_model"], settings["output_dir"]
    if backend == "transformers":
        # base and tuned both see the prompt laid out as in training
        # the tokenizer Axolotl saved with the adapter: the tokens a config adds and the eos it sets
        trained_tokenizer = adapter if (Path(adapter) / "tokenizer_config.json").exists() else None
        options = {"batch_size": batch_size, "max_new_tokens": max_new_tokens,
                   "chat_template": training_chat_template(settings), "tokenizer_dir": trained_tokenizer,
                   "load_in_4bit": bool(settings.get("load_in_4bit"))}
        if not skip_base:
            yield "base", TransformersBackend(base, label="base", **options)
        yield "tuned", TransformersBackend(base, adapter, label="tuned", **options)
        if processors is not None:
            yield "tuned-constrained", TransformersBackend(base, adapter, logits_processors=processors,
                                                           label="tuned-constrained", **options)
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
            fail("--backend openai needs --base-url and --model (the model to score as `tuned`)")
        if config is not None:
            fail("--config is not used with --backend openai (name the models with --model and --base-model-name)")
        return
    if config is None:
        fail(f"--backend {backend} needs --config (base_model and the adapter in output_dir are read from it)")
    for option, value in (("--base-url", base_url), ("--model", model), ("--base-model-name", base_model_name)):
        if value is not None:
            fail(f"{option} is only for --backend openai")


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
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="transformers backend: prompts generated together at most (in batches of near-equal size, "
                   "prompts of similar length together).")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=48, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Score only the first N records.")
@click.option("--skip-base", is_flag=True, help="Score only the tuned model.")
@click.option("--pack", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Skill pack for schema-aware matching and --constrained (default: the source in the test "
                   "file's manifest.json).")
@click.option("--constrained", is_flag=True,
              help="transformers backend: also score the tuned model with decoding restricted to the pack's "
                   "call grammar (as `tuned-constrained`), beside the unconstrained runs.")
@gate_options
def run(config: Path | None, test_file: Path, noisy_test: Path | None, out: Path, backend: str, base_url: str | None,
        model: str | None, base_model_name: str | None, concurrency: int, max_retries: int, batch_size: int,
        max_new_tokens: int, limit: int | None, skip_base: bool, pack: Path | None, constrained: bool,
        min_exact_match: float | None, baseline: Path | None, max_drop: float, gate_model: str | None) -> None:
    """Generate with the base model and base + adapter (or the named endpoint models), then score both.

    \b
    Examples:
      python -m eval run --config configs/smollm2.yml --test data/skills/test.jsonl --out runs/smollm2
      OPENAI_API_KEY=... python -m eval run --backend openai --base-url https://api.openai.com/v1 \\
          --model ft:gpt-4o-mini:org::id --base-model-name gpt-4o-mini --test data/skills/test.jsonl --out runs/openai
    """
    from eval.predict import PredictError, prediction_rows, write_predictions

    _check_backend_options(backend, config, base_url, model, base_model_name)
    if constrained and backend != "transformers":
        fail("--constrained works with --backend transformers only (it plugs into transformers' generate)")
    settings = _read_config(config) if config is not None else None
    splits = {"test": test_file, "test_noisy": noisy_test} if noisy_test else {"test": test_file}
    # everything that can be wrong with the inputs and --out is found before a model loads
    records = {split: _test_records(path, limit) for split, path in splits.items()}
    inputs = [*splits.values(), *([config] if config else [])]
    if settings is not None:
        adapter_dir = Path(settings["output_dir"])
        if not (adapter_dir / "adapter_config.json").exists():
            fail(f"{adapter_dir}: no trained adapter (adapter_config.json); run `make train` first")
        inputs += [adapter_dir] + ([settings["base_model"]] if Path(settings["base_model"]).exists() else [])
    try:
        check_output_folder(out, inputs, kind="eval")
    except DataError as err:
        fail(str(err))
    skills = _pack_for(test_file, pack)
    processors = _grammar(skills, test_file, max_new_tokens) if constrained else None

    prediction_files = []
    try:
        for label, predictor in _backends(backend, settings, base_url, model, base_model_name, skip_base, batch_size,
                                          max_new_tokens, concurrency, max_retries, processors):
            for split, split_records in records.items():
                predictor.label = f"{label} model, {split}"  # the progress bar's name
                outputs = predictor.generate(split_records)
                path = out / (f"predictions-{label}.jsonl" if split == "test" else f"predictions-{label}-noisy.jsonl")
                write_predictions(path, prediction_rows(split_records, outputs, label, split))
                prediction_files.append(path)
            del predictor  # the next model loads into the memory this one held
    except (PredictError, DataError) as err:
        fail(str(err))
    except OSError as err:  # --out became unwritable while generating
        fail(" ".join(str(err).split()))
    try:  # the predictions are saved: `eval score` re-scores them if this fails
        report = _score_and_report(prediction_files, str(test_file), out, skills)
    except (DataError, OSError) as err:
        fail(f"{err}; the predictions are saved: {', '.join(map(str, prediction_files))}")
    _gate(report, min_exact_match, baseline, max_drop, gate_model)


def _grammar(skills, test_file: Path, max_new_tokens: int):
    """The constrained-decoding processors for the pack, in the answer style the data was written in."""
    from eval.constrain import grammar_processors

    if not skills:
        fail("--constrained needs the skill pack: pass --pack (no manifest.json source next to the test file)")
    style = _manifest_of(test_file).get("style", "python")
    if style not in ("python", "json"):
        fail(f"--constrained supports the python and json answer styles, not {style!r}")
    return grammar_processors(skills, style=style, max_new_tokens=max_new_tokens)


@cli.command("score")
@click.argument("predictions", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for report.json and report.md.")
@click.option("--test-file", default="", help="Name of the test file, for the report header.")
@click.option("--pack", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Skill pack for schema-aware matching and positional arguments.")
@gate_options
def score_command(predictions: tuple[Path, ...], out: Path, test_file: str, pack: Path | None,
                  min_exact_match: float | None, baseline: Path | None, max_drop: float, gate_model: str | None) -> None:
    """Re-score saved PREDICTIONS files (one per model) without generating; `report` is the same command.

    \b
    Example:
      python -m eval score runs/smollm2/predictions-base.jsonl runs/smollm2/predictions-tuned.jsonl --out runs/smollm2
    """
    try:
        check_output_folder(out, predictions, kind="eval")
        report = _score_and_report(list(predictions), test_file or "(saved predictions)", out, _pack_for(None, pack))
    except (DataError, OSError) as err:
        fail(str(err))
    _gate(report, min_exact_match, baseline, max_drop, gate_model)


cli.add_command(score_command, "report")


@cli.command()
@click.argument("reports", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--model", "model_label", default=None,
              help="Which model of each report to compare (default: tuned, else each report's last).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Also write compare.md there.")
@click.option("--min-exact-match", type=click.FloatRange(0, 1), default=None,
              help="Gate: exit 1 when any run's exact match is under this (0-1).")
@click.option("--max-drop", type=click.FloatRange(0, 1), default=None,
              help="Gate: exit 1 when a run's exact match is below the FIRST run's by more than this (0-1).")
def compare(reports: tuple[Path, ...], model_label: str | None, out: Path | None, min_exact_match: float | None,
            max_drop: float | None) -> None:
    """Side by side: one model from each of REPORTS (report.json files or run folders), first = baseline.

    \b
    Example:
      python -m eval compare runs/smollm2 runs/mistral --max-drop 0.02
    """
    scores = {}
    if out is not None:
        try:
            check_output_folder(out, kind="eval")  # compare.md only: reports there stay as they are
        except DataError as err:
            fail(str(err))
    for path in reports:
        path = path / "report.json" if path.is_dir() else path
        try:
            report = read_json(path, "report")
        except DataError as err:
            fail(str(err) if path.exists() else f"{path}: no such file (a run folder holds report.json)")
        if not report["models"]:
            fail(f"{path}: the report has no models")
        label = _default_model(report, model_label)
        if label not in report["models"] or not isinstance(report.get(label), dict):
            fail(f"{path}: no scores for model {label!r} (it lists {', '.join(report['models'])})")
        name = path.parent.name or str(path)
        while name in scores:  # two runs from folders of the same name
            name += "'"
        scores[name] = report[label]
    table = build_report(scores, "several runs")
    click.echo(side_by_side(table))
    if out is not None:
        write_text(Path(out) / "compare.md", markdown(table))
    names = list(scores)
    problems = []
    for name in names:
        baseline = scores[names[0]] if max_drop is not None and name != names[0] else None
        problems += gate_problems(scores[name], name, min_exact_match, baseline, max_drop or 0.0)
    for problem in problems:
        click.echo(f"gate failed: {problem}", err=True)
    if problems:
        sys.exit(1)


@cli.command()
@click.option("--category", default="simple_python", show_default=True,
              help="BFCL category, e.g. simple_python, irrelevance, multiple, parallel, live_simple.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder for bfcl-<category>-predictions.jsonl and bfcl-<category>.json.")
@click.option("--predictions", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Re-score saved predictions (JSONL of {id, output}) instead of generating.")
@click.option("--backend", type=click.Choice(["transformers", "openai"]), default="transformers", show_default=True)
@click.option("--base-model", default=None, help="transformers: the model folder.")
@click.option("--adapter", default=None, help="transformers: a LoRA adapter folder on top of it.")
@click.option("--base-url", default=None, help="openai: the endpoint.")
@click.option("--model", default=None, help="openai: the model name.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N cases.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=128, show_default=True)
def bfcl(category: str, out: Path, predictions: Path | None, backend: str, base_model: str | None,
         adapter: str | None, base_url: str | None, model: str | None, limit: int | None, batch_size: int,
         max_new_tokens: int) -> None:
    """Score a model on a Berkeley Function Calling Leaderboard category with this scorer.

    \b
    Examples:
      python -m eval bfcl --category simple_python --base-model models/SmolLM2-135M-Instruct --limit 50 --out runs/bfcl
      python -m eval bfcl --category irrelevance --backend openai --base-url http://127.0.0.1:8000/v1 --model m --out runs/bfcl
    """
    from eval.bfcl import bfcl_files, case_record, load_bfcl, score_bfcl
    from eval.predict import OpenAIBackend, PredictError, TransformersBackend

    try:
        cases = load_bfcl(*bfcl_files(category))[:limit]
    except (FileNotFoundError, DataError) as err:
        fail(str(err))
    predictions_path = Path(out) / f"bfcl-{category}-predictions.jsonl"
    try:
        check_output_folder(out, [predictions] if predictions else [], kind="eval")
    except DataError as err:
        fail(str(err))
    if predictions is not None:
        saved = {}
        try:
            for number, row in iter_json_lines(predictions):
                if not (isinstance(row, dict) and isinstance(row.get("id"), str) and isinstance(row.get("output"), str)):
                    fail(f"{predictions}:{number}: expected a JSON object with id and output (both strings)")
                saved[row["id"]] = row["output"]
        except DataError as err:
            fail(str(err))
        missing = [case.id for case in cases if case.id not in saved]
        if missing:
            fail(f"{predictions}: no output for {len(missing)} case(s), e.g. {missing[0]}")
        outputs = [saved[case.id] for case in cases]
    else:
        if backend == "openai" and not (base_url and model):
            fail("--backend openai needs --base-url and --model")
        if backend == "transformers" and not base_model:
            fail("--backend transformers needs --base-model")
        try:
            predictor = (OpenAIBackend(base_url, model, max_tokens=max_new_tokens, label=f"bfcl {category}")
                         if backend == "openai" else
                         TransformersBackend(base_model, adapter, batch_size=batch_size, max_new_tokens=max_new_tokens,
                                             label=f"bfcl {category}"))
            outputs = predictor.generate([case_record(case) for case in cases])
        except PredictError as err:
            fail(str(err))
        write_text(predictions_path, "".join(json.dumps({"id": case.id, "output": output}) + "\n"
                                             for case, output in zip(cases, outputs)))
    result = score_bfcl(cases, outputs)
    write_text(Path(out) / f"bfcl-{category}.json", json.dumps(result, indent=1) + "\n")
    click.echo(f"BFCL {category}: {result['n']} cases, exact match {100 * result['exact_match']:.1f}% strict, "
               f"{100 * result['exact_match_lenient']:.1f}% lenient, no call {100 * result['no_call_rate']:.1f}%, "
               f"parse failures {100 * result['parse_failure_rate']:.1f}%")
    click.echo(f"errors: {result['error_types']}")


if __name__ == "__main__":
    cli(prog_name="python -m eval")
