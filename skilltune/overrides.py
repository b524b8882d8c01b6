"""A YAML of Axolotl config keys as `axolotl train` command-line overrides, so a layer such as
configs/fsdp/qlora.yml goes on top of any model's config without editing it.

    python -m skilltune.overrides configs/fsdp/qlora.yml
    # --fsdp-version=2 --no-fsdp-config.offload-params ... --optimizer=adamw_torch_fused

Flags are spelled as Axolotl's own CLI declares them (read from the `axolotl train` command): a
boolean flag option as --key / --no-key, every other option as --key=value, nested keys as
--parent.child. A key that command does not know is an error, named with its line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import yaml

from skilltune.axolotl_tokens import key_line


def _options() -> dict[str, click.Option]:
    from axolotl.cli.main import train

    return {name.lstrip("-"): param for param in train.params if isinstance(param, click.Option) for name in param.opts}


def _flatten(mapping: dict, prefix: str = "") -> list[tuple[str, object]]:
    items = []
    for key, value in mapping.items():
        name = prefix + str(key).replace("_", "-")
        items += _flatten(value, name + ".") if isinstance(value, dict) else [(name, value)]
    return items


def cli_flags(layer: dict, options: dict[str, click.Option]) -> list[str]:
    """The override flags for `layer`; KeyError names a key `axolotl train` has no option for."""
    flags = []
    for name, value in _flatten(layer):
        option = options.get(name)
        if option is None:
            raise KeyError(name)
        if option.is_flag:
            flags.append(f"--{name}" if value else f"--no-{name}")
        else:
            flags.append(f"--{name}={value}")
    return flags


@click.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def main(path: Path) -> None:
    """Print PATH's keys as `axolotl train` override flags, on one line."""
    try:
        layer = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (UnicodeDecodeError, yaml.YAMLError) as err:
        sys.exit(f"error: {path}: not YAML ({' '.join(str(err).split())})")
    if not isinstance(layer, dict):
        sys.exit(f"error: {path}:1: a mapping of Axolotl config keys is expected")
    try:
        click.echo(" ".join(cli_flags(layer, _options())))
    except KeyError as err:
        line = key_line(path, err.args[0].replace("-", "_")) or 1
        sys.exit(f"error: {path}:{line}: {err.args[0]}: not an `axolotl train` option")


if __name__ == "__main__":
    main()
