"""An exported model behind llama-cpp-python's OpenAI-compatible server: `make serve` runs this.

    python -m skilltune.serve --export runs/smollm2/export --port 8080 [--quant q8_0|q4_k_m|f16]

The server is llama-cpp-python's own (`llama_cpp.server`, the `serve` extra), with one change of
configuration and one default:
  - chat_format "skilltune" (skilltune/serve_chat.py): the GGUF's training chat template, the
    training system prompt when a request has none, grammar.gbnf unless the request sends a
    `grammar`, and `tool_calls` in the answer when the request lists `tools`;
  - repeat_penalty defaults to 1.0 instead of llama-cpp-python's 1.1: a penalty on repeated tokens
    changes greedy answers (the quotes and commas of a call repeat by design), and training and
    `eval run` decode without one. A request that sends repeat_penalty still gets its own.
It listens on 127.0.0.1 unless --host says otherwise; it has no authentication.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from skilltune.export import EXPORT_MANIFEST, F16, gguf_name
from skilltune.serve_chat import HANDLER_NAME, ServeSettings, register

SERVED_REPEAT_PENALTY = 1.0


class ServeError(RuntimeError):
    """The server cannot start; str() is one line."""


def export_settings(export: Path, quant: str | None, use_grammar: bool = True) -> tuple[Path, ServeSettings]:
    """(the GGUF to serve, the handler's settings) from an export folder's export.json."""
    manifest_path = export / EXPORT_MANIFEST
    if not manifest_path.is_file():
        raise ServeError(f"{export}: no {EXPORT_MANIFEST}; run `make export` first")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    name = manifest.get("served_gguf") if quant is None else (F16 if quant == "f16" else gguf_name(quant))
    model = export / str(name)
    if not model.is_file():
        raise ServeError(f"{model}: not in the export; run `make export` (its QUANT) first")
    grammar_path = export / "grammar.gbnf"
    grammar = grammar_path.read_text(encoding="utf-8") if use_grammar and grammar_path.is_file() else None
    return model, ServeSettings(manifest.get("style", "python"), manifest.get("system"), grammar)


def no_repeat_penalty_by_default() -> None:
    """Set the request models' repeat_penalty default before the server's routes are built (FastAPI
    reads the models when llama_cpp.server.app is imported, so this runs first)."""
    from llama_cpp.server import types

    for model in (types.CreateChatCompletionRequest, types.CreateCompletionRequest):
        model.model_fields["repeat_penalty"].default = SERVED_REPEAT_PENALTY
        model.model_rebuild(force=True)


def make_app(model: Path, settings: ServeSettings, alias: str, threads: int, n_ctx: int):
    no_repeat_penalty_by_default()
    register(settings)
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    model_settings = ModelSettings(
        model=str(model),
        model_alias=alias,
        chat_format=HANDLER_NAME,
        n_ctx=n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    app = create_app(server_settings=ServerSettings(), model_settings=[model_settings])
    schema = app.openapi()["components"]["schemas"]["CreateChatCompletionRequest"]["properties"]
    if schema["repeat_penalty"].get("default") != SERVED_REPEAT_PENALTY:  # a llama-cpp-python that builds routes later
        raise ServeError("could not set the server's repeat_penalty default to 1.0 (llama-cpp-python changed?)")
    return app


@click.command()
@click.option("--export", "export", type=click.Path(path_type=Path), required=True, help="runs/<model>/export")
@click.option("--quant", type=click.Choice(["q8_0", "q4_k_m", "f16"]), default=None, help="Default: the export's.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option("--alias", default=None, help="The model name /v1/models lists (default: the run folder's name).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Default: every core.")
@click.option("--n-ctx", type=click.IntRange(min=256), default=2048, show_default=True)
@click.option("--no-grammar", is_flag=True, help="Do not apply grammar.gbnf by default (free decoding).")
def main(export: Path, quant, host: str, port: int, alias, threads, n_ctx: int, no_grammar: bool) -> None:
    """Serve an exported model: OpenAI-compatible chat completions with the pack's grammar."""
    try:
        from skilltune.gguf_files import import_llama_cpp

        import_llama_cpp()
        model, settings = export_settings(export, quant, not no_grammar)
        app = make_app(model, settings, alias or export.resolve().parent.name, threads or os.cpu_count() or 1, n_ctx)
    except Exception as err:  # one line for the user, whatever failed while loading
        raise SystemExit(f"error: {' '.join(str(err).split())[:300]}") from None
    import uvicorn

    grammar = "grammar.gbnf" if settings.grammar else "no grammar"
    click.echo(f"serve: {model} ({settings.style} style, {grammar}) on http://{host}:{port}/v1", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


if __name__ == "__main__":
    main()
