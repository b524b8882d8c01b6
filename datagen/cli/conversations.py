"""`datagen conversations`: a user's own conversation logs to filtered chat records with a val split."""

from __future__ import annotations

import re
from pathlib import Path

import click

from datagen.conversation_formats import FORMATS
from datagen.conversations import (
    DEFAULT_DROP_NAME_PATTERNS,
    ConversationSettings,
    NothingKept,
    Outcome,
    make_dataset,
    report_lines,
)
from skilltune.cli import OneLineErrors, fail
from skilltune.jsonio import DataError


def usage_problem(settings: ConversationSettings) -> str | None:
    """Why these options cannot make a run, beyond what click's types check one option at a time."""
    if settings.max_turns is not None and settings.max_turns < settings.min_turns:
        return f"--max-turns {settings.max_turns} is below --min-turns {settings.min_turns}"
    for pattern in settings.drop_name_patterns:
        try:
            re.compile(pattern)
        except re.error as err:
            return f"--drop-name-pattern {pattern!r}: {err}"
    return None


def echo_outcome(settings: ConversationSettings, outcome: Outcome) -> None:
    counts = outcome.counts
    if outcome.public_wanted > counts["train"]["public"]:
        click.echo(
            f"warning: --mix-ratio {settings.mix_ratio} wants {outcome.public_wanted} public records; "
            f"{settings.mix} has {outcome.public_available}",
            err=True,
        )
    for line in report_lines(outcome.read, outcome.kept, outcome.dropped):
        click.echo(line)
    click.echo(
        f"wrote {settings.out}: train {counts['train']['conversations']} conversations + "
        f"{counts['train']['public']} public, val {counts['val']['conversations']} conversations"
    )


@click.command(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Dataset folder to (re)write: train.jsonl, val.jsonl, manifest.json.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", *FORMATS]),
    default="auto",
    show_default=True,
    help="Input format of every file; auto: .json is sharegpt, a .jsonl's first line tells log from openai.",
)
@click.option(
    "--system",
    type=click.Choice(["strip", "keep"]),
    default="strip",
    show_default=True,
    help="Drop system messages, or keep those before the first turn (joined into one).",
)
@click.option(
    "--min-turns",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Fewest user+answer exchanges a kept conversation has.",
)
@click.option("--max-turns", type=click.IntRange(min=1), default=None, help="Most exchanges (default: no limit).")
@click.option(
    "--drop-name-pattern",
    "drop_name_patterns",
    multiple=True,
    help="Regex (full match, any case) for log file names / titles to drop; repeatable; replaces the "
    "defaults (test, untitled, New chat, ...). '' drops none.",
)
@click.option(
    "--mix",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Public instruction records (OpenAI messages JSONL or Alpaca JSON/JSONL) for the train split.",
)
@click.option(
    "--mix-ratio",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Public records per user conversation in train.",
)
@click.option(
    "--val-fraction",
    type=click.FloatRange(0, 0.5),
    default=0.1,
    show_default=True,
    help="Share of the user's conversations held out for val (public records never are).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same inputs and seed: byte-identical files.")
def conversations_command(drop_name_patterns: tuple[str, ...], **options) -> None:
    """Turn conversation logs (INPUTS: files or folders) into filtered chat records with a val split.

    \b
    Example:
      python -m datagen conversations examples/conversations/logs --out data/conversations \\
          --mix examples/conversations/public_instructions.jsonl --mix-ratio 1 --seed 0
    """
    settings = ConversationSettings(drop_name_patterns=drop_name_patterns or DEFAULT_DROP_NAME_PATTERNS, **options)
    problem = usage_problem(settings)
    if problem:
        fail(problem)
    try:
        outcome = make_dataset(settings)
    except (DataError, OSError, NothingKept) as err:
        fail(str(err))
    echo_outcome(settings, outcome)
