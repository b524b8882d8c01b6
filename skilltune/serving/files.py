"""The serving files of an export folder, written from a skill pack and an Axolotl config:

    grammar.gbnf  the pack's call language in the data's answer style (call_grammar.py), for
                  llama.cpp's `--grammar-file` or llama-cpp-python's LlamaGrammar
    tools.json    the pack as OpenAI tools (skilltune.records.tool_definitions, the `tools` column
                  of tools-style records)
    Modelfile     for `ollama create`: the GGUF file, the training chat template, the records'
                  system prompt, stop tokens and greedy decoding (modelfile.py)

Everything is built before anything is written, so a pack or config that cannot be served leaves
the folder as it was; each file is written to a temporary sibling and renamed into place. Only
these three names are written; nothing else in the folder is touched.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from skilltune.jsonio import DataError, dumps, iter_json_lines, loads, read_text, write_text
from skilltune.records import prompt_for, tool_definitions
from skilltune.serving.call_grammar import STYLES, GrammarError, call_grammar
from skilltune.serving.modelfile import ModelfileError, modelfile_text, training_layout
from skilltune.skills import SkillFileError, load_pack

GRAMMAR, TOOLS, MODELFILE = "grammar.gbnf", "tools.json", "Modelfile"


class ServingError(ValueError):
    """The serving files cannot be written; str() is one line saying why."""


def options_from_manifest(manifest_path: Path | str) -> dict:
    """write_serving_files' keyword arguments for the dataset a manifest.json describes (`datagen
    skills` writes it): the answer style, the system prompt kind, whether answers may be compound,
    and the skills held out of training (absent from the trained system prompt)."""
    try:
        manifest = loads(read_text(manifest_path))
    except DataError as err:
        raise ServingError(str(err)) from None
    except ValueError as err:
        raise ServingError(f"{manifest_path}: not JSON: {err}") from None
    if not isinstance(manifest, dict) or "style" not in manifest:
        raise ServingError(f"{manifest_path}: not a manifest of `datagen skills` (no style)")
    options = manifest.get("options") or {}
    return {
        "style": manifest["style"],
        "system": options.get("system", "names"),
        "compound": bool(options.get("compound")),
        "holdout": tuple(options.get("holdout_skills") or ()),
    }


def training_system(config: dict, root: Path) -> tuple[bool, str | None]:
    """(found, prompt): the system prompt of the first record of the config's first training dataset,
    the text the model was trained after; found is False when that file is not there."""
    datasets = config.get("datasets") or []
    path = root / str(datasets[0].get("path", "")) if datasets and isinstance(datasets[0], dict) else None
    if path is None or not path.is_file():
        return False, None
    try:
        _, record = next(iter_json_lines(path), (0, None))
    except DataError as err:
        raise ServingError(str(err)) from None
    messages = record.get("messages") if isinstance(record, dict) else None
    if not messages:
        return False, None
    first = messages[0]
    return True, first.get("content") if first.get("role") == "system" else None


def tools_text(skills) -> str:
    """tools.json's text: the pack as OpenAI tools, the `tools` column tools-style records carry."""
    return dumps(tool_definitions(skills), indent=2) + "\n"


def write_serving_files(
    pack_dir: Path | str,
    config_path: Path | str,
    out_dir: Path | str,
    gguf_name: str,
    style: str = "python",
    *,
    system: str = "names",
    compound: bool = False,
    holdout: tuple[str, ...] = (),
    root: Path | str = ".",
) -> list[Path]:
    """Write grammar.gbnf, tools.json and Modelfile into `out_dir`; their paths, in that order.

    `gguf_name`: the GGUF file the Modelfile's FROM names, relative to `out_dir`. `style`, `system`,
    `compound`, `holdout`: how the records were made (options_from_manifest reads them). The SYSTEM
    is the system message of the config's first training record where that file exists (what the
    model saw), else the prompt `datagen skills --system SYSTEM` writes for the pack without the
    held-out skills. `root`: what the config's relative paths start from (the repository root).
    Raises ServingError with one line for a pack, style or config that cannot be served."""
    root, out_dir = Path(root), Path(out_dir)
    if style not in STYLES:
        raise ServingError(
            f"grammar.gbnf and the Modelfile support the answer styles {', '.join(STYLES)}, not {style!r} "
            "(a tools-style model is served with the server's own tool-call parsing)"
        )
    try:
        skills = load_pack(pack_dir)
        config = yaml.safe_load(read_text(config_path))
    except (SkillFileError, FileNotFoundError, DataError, yaml.YAMLError) as err:
        raise ServingError(str(err)) from None
    if not isinstance(config, dict):
        raise ServingError(f"{config_path}: not an Axolotl config (a YAML mapping)")
    unknown = sorted(set(holdout) - {skill.name for skill in skills})
    if unknown:
        raise ServingError(f"{pack_dir}: held-out skills {', '.join(unknown)} are not in the pack")
    found, system_text = training_system(config, root)
    if not found:
        trained = [skill for skill in skills if skill.name not in holdout]
        try:
            system_text = prompt_for(system, trained)
        except ValueError as err:
            raise ServingError(str(err)) from None
    written_by = f"Written by skilltune.serving from {config_path} and the skill pack {pack_dir} ({style} style)."
    try:
        grammar = f"# {written_by}\n" + call_grammar(skills, style, compound)
        layout = training_layout(config, root, str(config_path))
        modelfile = modelfile_text(
            layout, gguf_name, system_text, f"{written_by}\nTEMPLATE and stops reproduce the training chat template."
        )
    except (GrammarError, ModelfileError) as err:
        raise ServingError(str(err)) from None
    texts = {
        GRAMMAR: grammar,
        TOOLS: tools_text(skills),
        MODELFILE: modelfile,
    }
    paths = []
    for name, text in texts.items():
        write_text(out_dir / name, text)
        paths.append(out_dir / name)
    return paths
