"""`eval run`: generate with the base model and the tuned one (or named endpoint models), save the
predictions, score them, gate. Everything that can be wrong with the inputs is found before a
model loads."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click
import yaml

from eval.cli.score import GateSettings, apply_gate, gate_options, gate_settings, load_skills, score_and_report
from eval.decoding import DECODINGS, decoding_runs, processors_for
from eval.score import EXTRA_SPLITS, gold_problem
from skilltune.cli import fail
from skilltune.jsonio import DataError, iter_jsonl, read_text
from skilltune.outputs import check_output_folder

BACKENDS = ("transformers", "openai", "vllm")


@dataclass(frozen=True)
class RunSettings:
    config: Path | None  # Axolotl YAML naming base_model and output_dir (the adapter)
    test_file: Path  # held-out records
    noisy_test: Path | None  # their speech-noise twin
    wording_test: Path | None  # held-out wording (test_wording.jsonl)
    unseen_test: Path | None  # skills kept out of training (test_unseen.jsonl)
    out: Path  # folder for predictions and reports
    backend: str  # one of BACKENDS
    base_url: str | None  # openai: the endpoint
    model: str | None  # openai: the model scored as `tuned`
    base_model_name: str | None  # openai: the model scored as `base`, if any
    concurrency: int  # openai: requests in flight at most
    max_retries: int  # openai: the client's retries
    batch_size: int  # transformers: prompts generated together at most
    max_new_tokens: int
    limit: int | None  # score only the first N records
    skip_base: bool  # score only the tuned model
    base_limit: int | None  # score the base model on the first N records of each split only
    pack: Path | None  # skill pack (default: the test file's manifest.json source)
    decoding: str  # transformers: how the tuned model decodes (eval/decoding.py)
    constrained: bool  # transformers: also score grammar-constrained decoding
    grounded: bool  # transformers: also score it with copied values bound to spans of the request
    gate: GateSettings


@click.command()
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Axolotl YAML: base_model and output_dir (the adapter) are read from it "
    "(required for the transformers and vllm backends).",
)
@click.option(
    "--test",
    "test_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Held-out records (JSONL) to score on.",
)
@click.option(
    "--noisy-test",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The speech-noise twin of --test (test_noisy.jsonl), scored as each model's `noisy` entry.",
)
@click.option(
    "--wording-test",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Held-out wording (test_wording.jsonl: the pack's #### Test Examples:), scored as `wording`.",
)
@click.option(
    "--unseen-test",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Skills kept out of training (test_unseen.jsonl, datagen skills --holdout-skills), scored as `unseen`.",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for predictions and reports.")
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default="transformers",
    show_default=True,
    help="transformers: local, CPU or GPU; openai: any OpenAI-compatible endpoint; vllm: CUDA GPU.",
)
@click.option("--base-url", default=None, help="openai backend: the endpoint, e.g. http://127.0.0.1:8000/v1.")
@click.option("--model", default=None, help="openai backend: the model scored as `tuned` (e.g. a hosted fine-tune).")
@click.option(
    "--base-model-name",
    default=None,
    help="openai backend: a model to score as `base` at the same endpoint (skipped if not given).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="openai backend: requests in flight at most.",
)
@click.option(
    "--max-retries",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="openai backend: the client's retries on 429/5xx/timeouts, with backoff and Retry-After.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="transformers backend: prompts generated together at most (in batches of near-equal size, "
    "prompts of similar length together).",
)
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=48, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Score only the first N records.")
@click.option("--skip-base", is_flag=True, help="Score only the tuned model.")
@click.option(
    "--base-limit",
    type=click.IntRange(min=1),
    default=None,
    help="Score the base model on the first N records of each split only: an untuned model writes prose "
    "to the token limit, ~5x slower per record than a tuned one (make eval: BASE_LIMIT).",
)
@click.option(
    "--pack",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Skill pack for schema-aware matching and --constrained (default: the source in the test "
    "file's manifest.json).",
)
@click.option(
    "--decoding",
    type=click.Choice(DECODINGS),
    default="free",
    show_default=True,
    help="transformers backend: how the tuned model decodes: freely, limited to the pack's call grammar, "
    "or also with copied values bound to spans of the request (make eval: grounded).",
)
@click.option(
    "--constrained",
    is_flag=True,
    help="transformers backend: also score the tuned model with decoding restricted to the pack's "
    "call grammar (as `tuned-constrained`), beside the unconstrained runs.",
)
@click.option(
    "--grounded",
    is_flag=True,
    help="transformers backend: also score the tuned model with the call grammar and every value the "
    "skill copies from the request bound to a span of the request (as `tuned-grounded`).",
)
@gate_options
def run_command(
    min_exact_match: float | None, baseline: Path | None, max_drop: float, gate_model: str | None, **options
) -> None:
    """Generate with the base model and base + adapter (or the named endpoint models), then score both.

    \b
    Examples:
      python -m eval run --config configs/smollm2.yml --test data/skills/test.jsonl --out runs/smollm2
      OPENAI_API_KEY=... python -m eval run --backend openai --base-url https://api.openai.com/v1 \\
          --model ft:gpt-4o-mini:org::id --base-model-name gpt-4o-mini --test data/skills/test.jsonl --out runs/openai
    """
    run(RunSettings(gate=gate_settings(min_exact_match, baseline, max_drop, gate_model), **options))


def run(settings: RunSettings) -> None:
    _check_backend_options(settings)
    runs = decoding_runs(settings.decoding, [name for name in DECODINGS if getattr(settings, name, False)])
    if settings.backend != "transformers" and set(runs.values()) != {"free"}:
        fail("--decoding/--constrained/--grounded need --backend transformers (make eval: DECODING=free)")
    config = _read_config(settings.config) if settings.config is not None else None
    given = {
        "test": settings.test_file,
        "test_noisy": settings.noisy_test,
        "test_wording": settings.wording_test,
        "test_unseen": settings.unseen_test,
    }
    splits = {split: path for split, path in given.items() if path is not None}
    # everything that can be wrong with the inputs and --out is found before a model loads
    records = {split: _test_records(path, settings.limit) for split, path in splits.items()}
    _check_out(settings, config, list(splits.values()))
    skills = _pack_for(settings.test_file, settings.pack)
    style = _style_for(skills, settings.test_file, set(runs.values()))
    decoders = {label: processors_for(name, skills, style, settings.max_new_tokens) for label, name in runs.items()}
    prediction_files = _predict(settings, config, records, runs, decoders)
    try:  # the predictions are saved: `eval score` re-scores them if this fails
        report = score_and_report(
            prediction_files, str(settings.test_file), settings.out, skills, _training_log(config)
        )
    except (DataError, OSError) as err:
        fail(f"{err}; the predictions are saved: {', '.join(map(str, prediction_files))}")
    if config is not None:  # before the gate, which may end the process: a failing run's scores are logged too
        _log_to_training_run(report, config, settings.out)
    apply_gate(report, settings.gate)


def _check_backend_options(settings: RunSettings) -> None:
    backend = settings.backend
    if backend == "openai":
        if not settings.base_url or not settings.model:
            fail("--backend openai needs --base-url and --model (the model to score as `tuned`)")
        if settings.config is not None:
            fail("--config is not used with --backend openai (name the models with --model and --base-model-name)")
        return
    if settings.config is None:
        fail(f"--backend {backend} needs --config (base_model and the adapter in output_dir are read from it)")
    for option, value in (
        ("--base-url", settings.base_url),
        ("--model", settings.model),
        ("--base-model-name", settings.base_model_name),
    ):
        if value is not None:
            fail(f"{option} is only for --backend openai")


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
    from skilltune.calls import calls_to_python
    from skilltune.records import gold_calls, record_problem

    records = []
    try:
        for number, record in iter_jsonl(path, "record"):
            if limit is not None and len(records) >= limit:
                break
            problem = record_problem(record)
            if problem is None:
                try:
                    problem = gold_problem(calls_to_python(gold_calls(record)))
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


def _check_out(settings: RunSettings, config: dict | None, test_files: list[Path]) -> None:
    """--out may take eval's files without writing over an input, and the adapter is trained."""
    inputs = [*test_files, *([settings.config] if settings.config else [])]
    if config is not None:
        adapter_dir = Path(config["output_dir"])
        if not (adapter_dir / "adapter_config.json").exists():
            fail(f"{adapter_dir}: no trained adapter (adapter_config.json); run `make train` first")
        inputs += [adapter_dir] + ([config["base_model"]] if Path(config["base_model"]).exists() else [])
    try:
        check_output_folder(settings.out, inputs, kind="eval")
    except DataError as err:
        fail(str(err))


def _manifest_of(test_file: Path | None) -> dict:
    """The manifest.json `datagen skills` wrote beside a test file, or {} when there is none."""
    if test_file is None:
        return {}
    try:
        manifest = json.loads(read_text(Path(test_file).parent / "manifest.json"))
    except (DataError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _pack_for(test_file: Path | None, pack: Path | None):
    """The skill pack behind a test file: --pack, else the `source` its manifest.json names."""
    if pack is None:
        source = _manifest_of(test_file).get("source")
        pack = Path(source) if isinstance(source, str) and Path(source).is_dir() else None
    return load_skills(pack)


def _style_for(skills, test_file: Path, decodings: set[str]) -> str:
    """The answer style the data was written in, checked when a grammar will decode in it."""
    style = _manifest_of(test_file).get("style", "python")
    if decodings != {"free"}:
        if not skills:
            fail("constrained and grounded decoding need the skill pack: pass --pack (no manifest.json source found)")
        if style not in ("python", "json"):
            fail(f"constrained and grounded decoding support the python and json answer styles, not {style!r}")
    return style


def _predict(settings: RunSettings, config: dict | None, records: dict[str, list[dict]], runs, decoders) -> list[Path]:
    """Generate with each model on each split and save the predictions; the files written."""
    from eval.predict import PredictError, prediction_rows, write_predictions

    prediction_files = []
    try:
        for label, predictor in _backends(settings, config, decoders):
            for split, split_records in records.items():
                if label == "base" and settings.base_limit is not None:
                    split_records = split_records[: settings.base_limit]
                predictor.label = f"{label} model, {split}"  # the progress bar's name
                outputs = predictor.generate(split_records)
                name = f"predictions-{label}{_file_suffix(split)}.jsonl"
                rows = prediction_rows(split_records, outputs, label, split, runs.get(label, "free"))
                write_predictions(settings.out / name, rows)
                prediction_files.append(settings.out / name)
            del predictor  # the next model loads into the memory this one held
    except (PredictError, DataError) as err:
        fail(str(err))
    except OSError as err:  # --out became unwritable while generating
        fail(" ".join(str(err).split()))
    return prediction_files


def _file_suffix(split: str) -> str:
    """ "" for the template test split, "-noisy", "-wording" or "-unseen" for the others."""
    return "" if split == "test" else f"-{EXTRA_SPLITS[split][0]}"


def _backends(settings: RunSettings, config: dict | None, decoders: dict | None = None):
    """Yield (label, backend): base unless skipped, then tuned. Each is built when its turn comes,
    after the caller has dropped the one before, so only one model is in memory at a time."""
    from eval.predict import OpenAIBackend, TransformersBackend, VLLMBackend, training_chat_template

    skip_base, max_new_tokens = settings.skip_base, settings.max_new_tokens
    if settings.backend == "openai":
        # a hosted fine-tune is scored by naming it (--model); its base only when named too
        options = {
            "concurrency": settings.concurrency,
            "max_retries": settings.max_retries,
            "max_tokens": max_new_tokens,
        }
        if settings.base_model_name and not skip_base:
            yield "base", OpenAIBackend(settings.base_url, settings.base_model_name, label="base", **options)
        yield "tuned", OpenAIBackend(settings.base_url, settings.model, label="tuned", **options)
        return
    base, adapter = config["base_model"], config["output_dir"]
    if settings.backend == "transformers":
        # base and tuned both see the prompt laid out as in training
        # the tokenizer Axolotl saved with the adapter: the tokens a config adds and the eos it sets
        trained_tokenizer = adapter if (Path(adapter) / "tokenizer_config.json").exists() else None
        options = {
            "batch_size": settings.batch_size,
            "max_new_tokens": max_new_tokens,
            "chat_template": training_chat_template(config),
            "tokenizer_dir": trained_tokenizer,
            "load_in_4bit": bool(config.get("load_in_4bit")),
        }
        if not skip_base:
            yield "base", TransformersBackend(base, label="base", **options)
        for label, processors in (decoders or {"tuned": None}).items():
            yield label, TransformersBackend(base, adapter, logits_processors=processors, label=label, **options)
        return
    # one vLLM engine per process (it claims the GPU's memory): the tuned one, LoRA enabled, also
    # answers as the base model when it is given no adapter
    tuned = VLLMBackend(base, adapter, max_new_tokens=max_new_tokens, label="tuned")
    if not skip_base:
        yield "base", VLLMBackend(base, max_new_tokens=max_new_tokens, label="base", llm=tuned.llm)
    yield "tuned", tuned


def _training_log(config: dict | None) -> Path | None:
    """The trainer_log.jsonl the TrainerLog plugin left beside the adapter, when there is one."""
    from skilltune.trainer_log import TRAINER_LOG

    log = Path(config["output_dir"]) / TRAINER_LOG if config is not None else None
    return log if log is not None and log.is_file() else None


def _log_to_training_run(report: dict, config: dict, out: Path) -> None:
    """The scores into the training's W&B run, looked for where the Makefile's WANDB_DIR put it
    (runs/<MODEL>, which is --out), then beside the adapter; a problem is one warning line."""
    import os

    from eval.wandb_log import log_eval_scores

    roots = [Path(os.environ["WANDB_DIR"])] if os.environ.get("WANDB_DIR") else []
    line = log_eval_scores(report, config, [*roots, out, Path(config["output_dir"]).parent])
    if line:
        click.echo(line, err=line.startswith("warning"))
