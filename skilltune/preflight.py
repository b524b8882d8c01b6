"""Pre-flight check before `axolotl preprocess`: every record the config trains or validates on
must fit its `sequence_len` and keep at least one trained token, or Axolotl would silently drop it
(and with every record dropped, crash deep inside training: `empty range for randrange()`).

    python -m skilltune.preflight configs/smollm2.yml

Records are tokenized exactly as Axolotl will (skilltune.axolotl_tokens). On a problem: one line
naming the file, the share of records affected, the length they need, and exit 1.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import click
from tqdm import tqdm

from skilltune.axolotl_tokens import IGNORE, ConfigError, dataset_files, load_strategy, tokenization_config
from skilltune.jsonio import iter_json_lines


@dataclass
class FileLengths:
    path: Path
    records: int = 0
    longest: int = 0
    too_long: list[int] = field(default_factory=list)  # line numbers
    untrained: list[int] = field(default_factory=list)  # line numbers with no trained token


def measure(path: Path, strategy, sequence_len: int) -> FileLengths:
    lengths = FileLengths(path)
    rows = list(iter_json_lines(path))
    for number, row in tqdm(rows, desc=f"tokenizing {path.name}", unit="rec", leave=False, disable=len(rows) < 2000):
        tokenized = strategy.tokenize_prompt(row)
        size = len(tokenized["input_ids"])
        lengths.records += 1
        lengths.longest = max(lengths.longest, size)
        if size > sequence_len:
            lengths.too_long.append(number)
        elif all(label == IGNORE for label in tokenized["labels"]):
            lengths.untrained.append(number)
    return lengths


def problem(lengths: FileLengths, sequence_len: int, config: Path) -> str | None:
    if lengths.too_long:
        share = len(lengths.too_long) / lengths.records
        return (
            f"{lengths.path}:{lengths.too_long[0]}: {len(lengths.too_long)} of {lengths.records} records "
            f"({share:.1%}) are longer than sequence_len {sequence_len} of {config}, so Axolotl would drop them; "
            f"they need sequence_len >= {lengths.longest} (or a shorter prompt, e.g. fewer tools)"
        )
    if lengths.untrained:
        return (
            f"{lengths.path}:{lengths.untrained[0]}: {len(lengths.untrained)} of {lengths.records} records "
            f"have no trained token under {config} (roles_to_train / train_on_eos), so Axolotl would drop them"
        )
    return None


@click.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def main(config: Path) -> None:
    """Refuse records CONFIG would drop (longer than sequence_len, or nothing trained), before preprocessing."""
    try:
        cfg = tokenization_config(config)
        files = dataset_files(cfg)
        if not files:
            raise ConfigError(f"{config}: none of its datasets is a local file (run `make data` first)")
        _, strategy = load_strategy(cfg)
        for path in files:
            lengths = measure(path, strategy, cfg.sequence_len)
            message = problem(lengths, cfg.sequence_len, config)
            if message:
                raise ConfigError(message)
            click.echo(
                f"{path}: {lengths.records} records, longest {lengths.longest} tokens "
                f"(sequence_len {cfg.sequence_len}): none dropped"
            )
    except (ConfigError, ValueError, OSError) as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
