"""Records tokenized exactly as `axolotl preprocess` will tokenize them: the config validated and
normalized by Axolotl, its tokenizer loaded by Axolotl (added tokens, eos/pad overrides, chat
template) and each record run through Axolotl's `chat_template` prompt strategy. The pre-flight
check (skilltune.preflight) and `make check-config` (skilltune.check_config) both read from here.

    cfg = tokenization_config(Path("configs/mistral.yml"))
    tokenizer, strategy = load_strategy(cfg)
    row = strategy.tokenize_prompt(record)   # input_ids, labels (-100 where not trained)
"""

from __future__ import annotations

from pathlib import Path

import yaml

IGNORE = -100  # the label of a token that is not trained

# Settings that decide how a model loads and trains, not how text is tokenized: set so that a GPU
# config validates on a machine without CUDA (nothing is loaded but the tokenizer)
_NOT_TOKENIZATION = {
    "load_in_4bit": False,
    "load_in_8bit": False,
    "attn_implementation": "sdpa",
    "bf16": False,
    "fp16": False,
    "tf32": False,
    "optimizer": "adamw_torch",
    "deepspeed": None,
    "fsdp_config": None,
    "fsdp_version": None,
}


class ConfigError(ValueError):
    """The config cannot be read or does not validate; str() is one line naming the file."""


def read_config(path: Path) -> dict:
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read: {' '.join(str(err).split())}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not YAML: {getattr(err, 'problem', None) or err}") from None
    if not isinstance(config, dict) or not config.get("base_model"):
        raise ConfigError(f"{path}: not an Axolotl config (no base_model)")
    return config


def key_line(path: Path, key: str) -> int | None:
    """The line of `key` in the YAML at `path` (dotted for nested keys: "fsdp_config.offload_params"),
    read as text so it names the line the user wrote; None where the file does not spell it out."""
    parts, depth, indent = key.split("."), 0, -1
    try:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            margin = len(line) - len(line.lstrip())
            if margin > indent and line.strip().startswith(f"{parts[depth]}:") and (depth or not margin):
                if depth == len(parts) - 1:
                    return number
                depth, indent = depth + 1, margin
    except (OSError, UnicodeDecodeError):
        pass
    return None


def _where(path: Path, key: str) -> str:
    line = key_line(path, key)
    return f"{path}:{line}" if line else str(path)


def validated(config: dict, path: Path):
    """Axolotl's own validation and normalization of `config` (a DictDefault comes back)."""
    from axolotl.utils.config import normalize_config, validate_config
    from axolotl.utils.dict import DictDefault
    from pydantic import ValidationError

    try:
        cfg = validate_config(DictDefault(config))
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "config"
        where = _where(path, str(first["loc"][0])) if first["loc"] else str(path)
        got = f" (got {first['input']!r})" if not isinstance(first.get("input"), dict) else ""
        raise ConfigError(f"{where}: Axolotl rejects it: {key}: {first['msg']}{got}") from None
    except ValueError as err:
        raise ConfigError(f"{path}: Axolotl rejects it: {' '.join(str(err).split())}") from None
    normalize_config(cfg)
    return cfg


def tokenization_config(path: Path):
    """`path` validated by Axolotl with the load-only settings neutralised (see _NOT_TOKENIZATION)."""
    config = read_config(path)
    config.update({key: value for key, value in _NOT_TOKENIZATION.items() if key in config or value is not None})
    if config.get("adapter") == "qlora":
        config["adapter"] = "lora"  # qlora requires load_in_4bit; the tokenization is the same
    return validated(config, path)


def load_strategy(cfg):
    """(tokenizer, Axolotl's chat_template strategy for the config's first dataset)."""
    from axolotl.loaders.tokenizer import load_tokenizer
    from axolotl.prompt_strategies import load

    tokenizer = load_tokenizer(cfg)
    return tokenizer, load("chat_template", tokenizer, cfg, cfg.datasets[0])


def dataset_files(cfg) -> list[Path]:
    """The local JSON-lines files the config trains and validates on."""
    entries = list(cfg.datasets or []) + list(cfg.test_datasets or [])
    return [Path(entry["path"]) for entry in entries if entry.get("path") and Path(entry["path"]).is_file()]
