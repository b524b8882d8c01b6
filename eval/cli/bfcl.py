"""`eval bfcl`: score a model on a Berkeley Function Calling Leaderboard category (eval/bfcl.py).

The model sees the case's functions in one of eval/bfcl_prompt.py's layouts: through its chat
template's `tools` when that template renders them (the template a --config trains with, such as
configs/templates/chatml_tools.jinja), else in BFCL's own system prompt for prompting models.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from eval.bfcl_config import ModelSettings, model_settings
from skilltune.cli import fail
from skilltune.jsonio import DataError
from skilltune.outputs import check_output_folder


@dataclass(frozen=True)
class BfclSettings:
    category: str  # BFCL category, e.g. simple_python
    out: Path  # folder for the predictions and the result
    predictions: Path | None  # saved {id, output} lines to re-score instead of generating
    backend: str  # transformers or openai
    config: Path | None  # transformers: Axolotl YAML naming base_model, the template, the adapter
    base_model: str | None  # transformers: the model folder (without --config)
    adapter: str | None  # transformers: a LoRA adapter on top of it
    no_adapter: bool  # transformers with --config: the base model alone
    prompt_layout: str  # auto, or one of eval.bfcl_prompt.PROMPT_LAYOUTS
    base_url: str | None  # openai: the endpoint
    model: str | None  # openai: the model name
    limit: int | None  # only the first N cases
    batch_size: int
    max_new_tokens: int
    decoding: str  # transformers: free, or constrained to the case's functions (eval/bfcl_grammar.py)


@click.command()
@click.option(
    "--category",
    default="simple_python",
    show_default=True,
    help="BFCL category, e.g. simple_python, irrelevance, multiple, parallel, live_simple.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder for bfcl-<category>-predictions.jsonl and bfcl-<category>.json.",
)
@click.option(
    "--predictions",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Re-score saved predictions (JSONL of {id, output}) instead of generating.",
)
@click.option("--backend", type=click.Choice(["transformers", "openai"]), default="transformers", show_default=True)
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="transformers: an Axolotl YAML; base_model, the chat template it trains with, load_in_4bit and "
    "the adapter (output_dir, when it holds adapter_config.json) are read from it.",
)
@click.option("--base-model", default=None, help="transformers: the model folder (or use --config).")
@click.option("--adapter", default=None, help="transformers: a LoRA adapter folder on top of it.")
@click.option("--no-adapter", is_flag=True, help="transformers with --config: score the base model alone.")
@click.option(
    "--prompt-layout",
    type=click.Choice(["auto", "tools", "system_prompt"]),
    default="auto",
    show_default=True,
    help="How the functions are shown. auto: `tools` through the chat template when it renders them, "
    "else BFCL's system prompt (always for --backend openai).",
)
@click.option("--base-url", default=None, help="openai: the endpoint.")
@click.option("--model", default=None, help="openai: the model name.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N cases.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=128, show_default=True)
@click.option(
    "--decoding",
    type=click.Choice(["free", "constrained"]),
    default="free",
    show_default=True,
    help="transformers: constrained writes one call to one of the case's functions, or other() for none "
    "(cases whose functions need a list or dict value decode freely).",
)
def bfcl_command(**options) -> None:
    """Score a model on a Berkeley Function Calling Leaderboard category with this scorer.

    \b
    Examples:
      python -m eval bfcl --category simple_python --config configs/smollm2.yml --limit 50 --out runs/bfcl
      python -m eval bfcl --category simple_python --config configs/smollm2.yml --no-adapter --out runs/bfcl
      python -m eval bfcl --category simple_python --base-model models/SmolLM2-135M-Instruct --out runs/bfcl
      python -m eval bfcl --category simple_python --config configs/smollm2.yml --decoding constrained \\
          --out runs/bfcl-constrained
      python -m eval bfcl --category irrelevance --backend openai --base-url http://127.0.0.1:8000/v1 \\
          --model m --out runs/bfcl
    """
    bfcl(BfclSettings(**options))


def bfcl(settings: BfclSettings) -> None:
    from eval.bfcl import (
        bfcl_files,
        generate_outputs,
        load_bfcl,
        predictions_path,
        read_saved_outputs,
        result_path,
        score_bfcl,
        write_outputs,
        write_result,
    )
    from eval.predict import PredictError

    # everything that can be wrong with the inputs and --out is found before a model loads
    try:
        cases = load_bfcl(*bfcl_files(settings.category))[: settings.limit]
    except (FileNotFoundError, DataError) as err:
        fail(str(err))
    model = None if settings.predictions is not None else _model_settings(settings)
    try:
        check_output_folder(settings.out, _inputs(settings, model), kind="eval")
    except DataError as err:
        fail(str(err))
    layout, unconstrained = None, None
    if settings.predictions is not None:
        try:
            outputs = read_saved_outputs(settings.predictions, cases)
        except DataError as err:
            fail(str(err))
    else:
        try:
            predictor = _predictor(settings, model)
            layout = _layout(settings, predictor)
            unconstrained = _constrain(settings, predictor, cases, layout)
            outputs = generate_outputs(cases, predictor, layout)
        except PredictError as err:
            fail(str(err))
        write_outputs(predictions_path(settings.out, settings.category), cases, outputs)
    decoding = None if settings.predictions is not None else settings.decoding
    facts = {**_prompt_facts(settings, model, layout), "decoding": decoding, "unconstrained_cases": unconstrained}
    result = {"category": settings.category, **facts, **score_bfcl(cases, outputs)}
    write_result(result_path(settings.out, settings.category), result)
    shown = f" (prompt: {layout}, decoding: {decoding})" if layout else ""
    click.echo(
        f"BFCL {settings.category}{shown}: {result['n']} cases, exact match {100 * result['exact_match']:.1f}% "
        f"strict, {100 * result['exact_match_lenient']:.1f}% lenient, no call {100 * result['no_call_rate']:.1f}%, "
        f"parse failures {100 * result['parse_failure_rate']:.1f}%"
    )
    click.echo(f"errors: {result['error_types']}")


def _model_settings(settings: BfclSettings) -> ModelSettings | None:
    """The local model the options name (None for --backend openai); a bad option is one line."""
    if settings.backend == "openai":
        if not (settings.base_url and settings.model):
            fail("--backend openai needs --base-url and --model")
        if settings.decoding != "free":
            fail("--decoding constrained is for --backend transformers (an endpoint's decoding cannot be masked)")
        for option, given in (
            ("--config", settings.config),
            ("--base-model", settings.base_model),
            ("--adapter", settings.adapter),
        ):
            if given:
                fail(f"{option} is for --backend transformers, not openai")
        return None
    try:
        return model_settings(settings.config, settings.base_model, settings.adapter, settings.no_adapter)
    except ValueError as err:
        fail(str(err))


def _inputs(settings: BfclSettings, model: ModelSettings | None) -> list[Path]:
    """What --out must not write over: the saved predictions, the config, the adapter, a local model."""
    inputs = [path for path in (settings.predictions, settings.config) if path is not None]
    if model is not None:
        inputs += [Path(path) for path in (model.adapter, model.base_model) if path and Path(path).exists()]
    return inputs


def _predictor(settings: BfclSettings, model: ModelSettings | None):
    """The backend the options name; a local model loads here (PredictError when it cannot)."""
    from eval.predict import OpenAIBackend, TransformersBackend

    label = f"bfcl {settings.category}"
    if model is None:
        return OpenAIBackend(settings.base_url, settings.model, max_tokens=settings.max_new_tokens, label=label)
    return TransformersBackend(
        model.base_model,
        model.adapter,
        batch_size=settings.batch_size,
        max_new_tokens=settings.max_new_tokens,
        label=label,
        chat_template=model.chat_template,
        tokenizer_dir=model.tokenizer_dir,
        load_in_4bit=model.load_in_4bit,
    )


def _constrain(settings: BfclSettings, predictor, cases, layout: str) -> int | None:
    """With --decoding constrained, plug each case's grammar into the local predictor; returns how
    many cases still decode freely (their functions need list or dict values), else None."""
    if settings.decoding == "free":
        return None
    from eval.bfcl_grammar import bfcl_processors

    predictor.logits_processors, unconstrained = bfcl_processors(cases, layout, settings.max_new_tokens)
    return unconstrained


def _layout(settings: BfclSettings, predictor) -> str:
    """The prompt layout: asked for, or `tools` where the local template shows them."""
    from eval.bfcl_prompt import renders_tools

    local = getattr(predictor, "tokenizer", None)  # an endpoint's template cannot be looked at
    shows_tools = local is not None and renders_tools(local)
    if settings.prompt_layout == "auto":
        return "tools" if shows_tools else "system_prompt"
    if settings.prompt_layout == "tools" and local is not None and not shows_tools:
        fail(
            "--prompt-layout tools: this model's chat template does not render `tools`, so it would see "
            "no functions; use --config with a template that renders them, or --prompt-layout system_prompt"
        )
    return settings.prompt_layout


def _prompt_facts(settings: BfclSettings, model: ModelSettings | None, layout: str | None) -> dict:
    """What the result records about how the outputs were made."""
    if settings.predictions is not None:
        return {"predictions": str(settings.predictions), "prompt_layout": None}
    if model is None:
        return {"backend": "openai", "model": settings.model, "prompt_layout": layout}
    return {
        "backend": "transformers",
        "config": str(settings.config) if settings.config else None,
        "base_model": model.base_model,
        "adapter": model.adapter,
        "chat_template": model.template_source,
        "prompt_layout": layout,
    }
