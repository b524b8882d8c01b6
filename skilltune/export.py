"""A trained adapter as files that serve it: `make export` runs this after `make merge`.

    python -m skilltune.export --config configs/smollm2.yml --out runs/smollm2/export \\
        --converter .venv/llama.cpp-converter/convert_hf_to_gguf.py

writes into --out (replaced whole, and only when it is an earlier export: its export.json lists
every file in it):

    merged/             the merged model (<output_dir>/merged, `axolotl merge-lora`), with the
                        training chat template as its chat_template.jinja
    model-f16.gguf      llama.cpp's convert_hf_to_gguf.py on merged/ (skilltune/gguf_files.py)
    model-q8_0.gguf     llama.cpp's quantizer on the f16 file; model-q4_k_m.gguf likewise
    grammar.gbnf, tools.json, Modelfile   skilltune.serving.files, from the skill pack and config
                        (tools-style data: tools.json only; its calls are read by a tool-call parser)
    export.json         what was exported from where: style, system prompt, files and their sha256

The merged folder Axolotl writes carries the *base* model's chat template (merge-lora copies the base
model's tokenizer files), not the one the config trained with: served as is, the prompt differs from
training, the mistake issue trackers of Ollama and llama.cpp are full of. So the training template
(skilltune.local_model.training_chat_template) replaces it before conversion, and the GGUF's
tokenizer.chat_template is the training layout. Everything is built in a hidden sibling of --out
and renamed into place at the end; a failure leaves --out as it was.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import click
import yaml

from skilltune.converter_source import sha256_of
from skilltune.gguf_files import QUANTIZATIONS, GGUFError, convert, quantize
from skilltune.jsonio import remove_stale_siblings, staging_prefix, terminate_cleanly
from skilltune.local_model import training_chat_template
from skilltune.outputs import replace_folder
from skilltune.serving.files import (
    TOOLS,
    ServingError,
    options_from_manifest,
    tools_text,
    training_system,
    write_serving_files,
)
from skilltune.skills import SkillFileError, load_pack

EXPORT_MANIFEST = "export.json"
F16 = "model-f16.gguf"


class ExportError(RuntimeError):
    """The export cannot be made; str() is one line naming what is missing."""


def gguf_name(kind: str) -> str:
    return f"model-{kind}.gguf"


def read_config(path: Path) -> dict:
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ExportError(f"{path}: cannot read the config: {err}") from None
    if not isinstance(config, dict) or not config.get("output_dir"):
        raise ExportError(f"{path}: not an Axolotl config with an output_dir")
    return config


def check_inputs(config: dict, config_path: Path, root: Path, merged: Path | None) -> tuple[Path, Path]:
    """(adapter folder, merged folder), or a one-line ExportError naming the step to run."""
    adapter = root / config["output_dir"]
    if not (adapter / "adapter_config.json").is_file():
        raise ExportError(f"{adapter}: no trained adapter (adapter_config.json); run `make train` first")
    merged = merged or adapter / "merged"
    if not (merged / "config.json").is_file() or not any(merged.glob("*.safetensors")):
        raise ExportError(f"{merged}: no merged model (config.json, *.safetensors); run `make merge` first")
    return adapter, merged


def training_data_manifest(config: dict, root: Path) -> Path:
    """The manifest.json `datagen skills` wrote beside the config's first training file."""
    datasets = config.get("datasets") or []
    first = datasets[0].get("path") if datasets and isinstance(datasets[0], dict) else None
    manifest = (root / str(first)).parent / "manifest.json" if first else None
    if manifest is None or not manifest.is_file():
        raise ExportError(
            f"{manifest or 'the config'}: no manifest.json beside the training data (it names the answer "
            "style and skill pack the grammar is written for); run `make data` first"
        )
    return manifest


def stage_merged(merged: Path, dest: Path, template: str | None) -> None:
    """A copy of the merged model whose chat template is the training one (None: keep its own)."""
    shutil.copytree(merged, dest)
    if template is None:
        return
    (dest / "chat_template.jinja").write_text(template, encoding="utf-8")
    config_path = dest / "tokenizer_config.json"
    if config_path.is_file():
        # llama.cpp's converter prefers tokenizer_config.json's chat_template over the .jinja file
        tokenizer_config = json.loads(config_path.read_text(encoding="utf-8"))
        if tokenizer_config.pop("chat_template", None) is not None:
            config_path.write_text(json.dumps(tokenizer_config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def previous_export_problem(out: Path) -> str | None:
    """Why `out` may not be replaced (it holds files no export wrote), or None."""
    if not out.exists():
        return None
    if not out.is_dir():
        return "is a file"
    present = {str(path.relative_to(out)) for path in out.rglob("*") if path.is_file() or path.is_symlink()}
    if not present:
        return None
    try:
        listed = set(json.loads((out / EXPORT_MANIFEST).read_text(encoding="utf-8"))["files"]) | {EXPORT_MANIFEST}
    except (OSError, ValueError, KeyError, TypeError):
        return f"holds files and no {EXPORT_MANIFEST} of an earlier export"
    foreign = sorted(present - listed)
    return f"holds {foreign[0]}, which no export wrote" if foreign else None


def build(
    config_path: Path,
    out: Path,
    converter: Path,
    quantizations: tuple[str, ...] = ("q8_0", "q4_k_m"),
    pack: Path | None = None,
    merged: Path | None = None,
    root: Path = Path("."),
) -> Path:
    """The export folder `out`, built whole (see the module docstring); returns `out`."""
    config = read_config(config_path)
    _, merged = check_inputs(config, config_path, root, merged)
    manifest_path = training_data_manifest(config, root)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    pack = pack or root / str(manifest.get("source") or "examples/skills")
    problem = previous_export_problem(out)
    if problem:
        raise ExportError(f"{out}: {problem}; give OUT (--out) a new folder or move those files")
    if not converter.is_file():
        raise ExportError(f"{converter}: no llama.cpp converter; run `make export`, which fetches it")
    template = training_chat_template(config, root)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(out)
    with terminate_cleanly():
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=staging_prefix(out, "new")))
        try:
            staging.chmod(0o755)
            stage_merged(merged, staging / "merged", template)
            click.echo(f"export: converting {merged} -> {F16} (llama.cpp convert_hf_to_gguf.py)", err=True)
            convert(staging / "merged", staging / F16, converter)
            for kind in quantizations:
                click.echo(f"export: quantizing {F16} -> {gguf_name(kind)}", err=True)
                quantize(staging / F16, staging / gguf_name(kind), kind)
            served = gguf_name(quantizations[0]) if quantizations else F16
            serving = write_serving(pack, config_path, staging, served, manifest_path, root)
            files = {
                str(path.relative_to(staging)): sha256_of(path) for path in sorted(staging.rglob("*")) if path.is_file()
            }
            record = {
                "generator": "skilltune.export",
                "config": str(config_path),
                "merged_from": str(merged),
                "pack": str(pack),
                "style": manifest.get("style", "python"),
                # what the served prompt starts with when a request brings no system message (the
                # Modelfile's SYSTEM is the same text)
                "system": training_system(config, root)[1],
                "served_gguf": served,
                "serving_files": serving,
                "converter": (converter.parent / "SOURCE").read_text(encoding="utf-8").strip()
                if (converter.parent / "SOURCE").is_file()
                else str(converter),
                "files": files,
            }
            (staging / EXPORT_MANIFEST).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
            replace_folder(staging, out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone already after a successful rename
    return out


def write_serving(pack: Path, config_path: Path, staging: Path, served: str, manifest: Path, root: Path) -> list[str]:
    """grammar.gbnf, tools.json and the Modelfile (skilltune.serving.files); their names.

    Tools-style data gets tools.json only: skilltune.serving writes no grammar or Modelfile for it
    (its answers are the template's <tool_call> blocks, which a tool-call parser reads), and the
    GGUF files and merged model are as useful for it as for any style."""
    try:
        options = options_from_manifest(manifest)
        if options["style"] == "tools":
            (staging / TOOLS).write_text(tools_text(load_pack(pack)), encoding="utf-8")
            return [TOOLS]
        paths = write_serving_files(pack, config_path, staging, served, root=root, **options)
    except (ServingError, SkillFileError) as err:
        raise ExportError(str(err)) from None
    return [path.name for path in paths]


@click.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), required=True, help="The Axolotl config.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The export folder (runs/<model>/export).")
@click.option(
    "--converter",
    type=click.Path(path_type=Path),
    required=True,
    help="llama.cpp's convert_hf_to_gguf.py (python -m skilltune.converter_source fetches it).",
)
@click.option(
    "--quant",
    "quantizations",
    multiple=True,
    type=click.Choice(list(QUANTIZATIONS)),
    default=("q8_0", "q4_k_m"),
    show_default=True,
    help="Quantizations of the f16 GGUF (repeat); the first is the one the Modelfile and `make serve` use.",
)
@click.option("--pack", type=click.Path(path_type=Path), default=None, help="The skill pack (default: the data's).")
@click.option("--merged", type=click.Path(path_type=Path), default=None, help="Default: <output_dir>/merged.")
def main(config_path: Path, out: Path, converter: Path, quantizations: tuple, pack: Path | None, merged: Path | None):
    """Export a trained adapter: merged model, GGUF files, grammar, tools and Modelfile."""
    try:
        build(config_path, out, converter, tuple(quantizations), pack, merged)
    except (ExportError, GGUFError) as err:
        raise SystemExit(f"error: {err}") from None
    click.echo(f"export: {out}")


if __name__ == "__main__":
    main()
