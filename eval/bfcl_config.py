"""The local model `eval bfcl` scores, from an Axolotl config or from plain options.

With a config the model is prompted as `eval run` prompts it: the config's base_model, the chat
template it trains with (skilltune.local_model.training_chat_template), the tokenizer Axolotl saved
beside the adapter, 4-bit weights when it trains QLoRA, and the adapter in output_dir once it is
trained. Every problem is a ValueError whose text is one line naming the config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from skilltune.jsonio import DataError, read_text

TOKENIZERS_OWN = "the tokenizer's own"


@dataclass(frozen=True)
class ModelSettings:
    base_model: str
    adapter: str | None  # a LoRA adapter folder, or None for the base model alone
    chat_template: str | None  # Jinja text replacing the tokenizer's own; None keeps it
    template_source: str  # where chat_template came from, for the result file
    tokenizer_dir: str | None  # the tokenizer Axolotl saved with the adapter, when there is one
    load_in_4bit: bool


def model_settings(
    config_path: Path | None, base_model: str | None, adapter: str | None, no_adapter: bool
) -> ModelSettings:
    """What to load, from --config or --base-model (exactly one), --adapter and --no-adapter."""
    if config_path is not None and base_model:
        raise ValueError("--config and --base-model both name the base model; give one of them")
    if adapter and no_adapter:
        raise ValueError("--adapter and --no-adapter contradict each other")
    if config_path is None:
        if not base_model:
            raise ValueError("--backend transformers needs --config (an Axolotl YAML) or --base-model")
        if no_adapter:
            raise ValueError(
                "--no-adapter goes with --config (without it no adapter is used unless --adapter names one)"
            )
        return ModelSettings(base_model, adapter, None, TOKENIZERS_OWN, None, False)
    config = read_config(config_path)
    output_dir = config.get("output_dir")
    trained = output_dir is not None and (Path(output_dir) / "adapter_config.json").is_file()
    if adapter is None and trained and not no_adapter:
        adapter = output_dir
    chat_template, source = _chat_template(config_path, config)
    # as in `eval run`: base and tuned both use the tokenizer Axolotl saved (its added tokens, its eos)
    saved_tokenizer = output_dir if output_dir and (Path(output_dir) / "tokenizer_config.json").is_file() else None
    return ModelSettings(
        config["base_model"], adapter, chat_template, source, saved_tokenizer, bool(config.get("load_in_4bit"))
    )


def read_config(path: Path) -> dict:
    """An Axolotl YAML with a `base_model:` (and, if given, a string `output_dir:`)."""
    try:
        config = yaml.safe_load(read_text(path))
    except DataError as err:
        raise ValueError(str(err)) from None
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: not an Axolotl config (a YAML mapping with base_model:)")
    if not config.get("base_model"):
        raise ValueError(f"{path}: no `base_model:`")
    for key in ("base_model", "output_dir", "chat_template_jinja"):
        if config.get(key) is not None and not isinstance(config[key], str):
            raise ValueError(f"{path}: `{key}: {config[key]!r}` must be a string (a name or a path)")
    return config


def _chat_template(path: Path, config: dict) -> tuple[str | None, str]:
    """The template the config trains with, and where it came from."""
    from skilltune.local_model import training_chat_template

    jinja = config.get("chat_template_jinja")
    # training_chat_template takes a value without "{" that is no file for the template text itself:
    # a misspelt path would prompt with that path as the whole template
    if jinja and "{" not in jinja and not Path(jinja).is_file():
        raise ValueError(f"{path}: `chat_template_jinja: {jinja}`: no such file")
    try:
        template = training_chat_template(config)
    except (ValueError, KeyError, ImportError) as err:
        reason = " ".join(str(err).split())
        raise ValueError(f"{path}: `chat_template: {config.get('chat_template')}`: {reason}") from None
    if template is None:
        return None, TOKENIZERS_OWN
    if jinja:
        return template, jinja if "{" not in jinja else "chat_template_jinja (inline)"
    return template, f"Axolotl's {config.get('chat_template')}"
