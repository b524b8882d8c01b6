"""`datagen instructions`: instruction JSON pairs to skill records (--to chat), and back (--to instructions)."""

from __future__ import annotations

from pathlib import Path

import click

from datagen.cli.pack import echo_split_totals, split_fraction_options
from datagen.instructions import InstructionSettings, chat_to_pairs, pairs_to_chat
from datagen.split import SPLITS, SplitError
from skilltune.cli import OneLineErrors, fail
from skilltune.jsonio import DataError
from skilltune.records import STYLES
from skilltune.skills import SkillFileError


def comma_list(ctx, param, value: str) -> list[str]:
    """--splits "train, val" as ["train", "val"]; empty names are dropped."""
    return [name.strip() for name in value.split(",") if name.strip()]


@click.command(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--to",
    "target",
    type=click.Choice(["chat", "instructions"]),
    required=True,
    help="chat: instruction pair JSONL files -> skill dataset folder; instructions: the reverse.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="--to chat: dataset folder to (re)write; --to instructions: the pairs JSONL file.",
)
@click.option(
    "--style",
    type=click.Choice(STYLES),
    default="python",
    show_default=True,
    help="Answer style of the skill records (--to chat).",
)
@click.option(
    "--pack",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Skill pack every call must fit; its schemas are the tools column. Default: derive tools from the calls.",
)
@click.option(
    "--system/--no-system",
    default=True,
    show_default=True,
    help="Start each record with the one-line system prompt naming the functions (--to chat).",
)
@split_fraction_options
@click.option("--seed", type=int, default=0, show_default=True, help="Same pairs and seed: byte-identical files.")
@click.option(
    "--splits",
    default=",".join(SPLITS),
    show_default=True,
    callback=comma_list,
    help="--to instructions: which <split>.jsonl of a dataset folder to export, comma-separated.",
)
def instructions_command(**options) -> None:
    """Convert instruction pairs (SOURCES: JSONL files) to skill records, or skill datasets back to pairs.

    \b
    Example:
      python -m datagen instructions examples/instructions/pairs.jsonl --to chat --out data/instructions \\
          --style tools --pack examples/skills
      python -m datagen instructions data/instructions --to instructions --out pairs.jsonl
    """
    settings = InstructionSettings(**options)
    try:
        if settings.target == "instructions":
            click.echo(f"wrote {settings.out}: {chat_to_pairs(settings)} instruction pairs")
            return
        manifest, dropped = pairs_to_chat(settings)
    except (DataError, SkillFileError, SplitError, OSError) as err:
        fail(str(err))
    if dropped:
        click.echo(
            f"warning: dropped {dropped} pairs whose request was already there (or claimed by two calls)", err=True
        )
    echo_split_totals(settings.out, manifest)
