"""The `python -m eval` command table; each command lives in a module of this package, parses its
options into a settings dataclass and calls plain functions of the eval modules."""

from __future__ import annotations

import click

from eval.cli.bfcl import bfcl_command
from eval.cli.run import run_command
from eval.cli.score import compare_command, score_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Score function-calling models by exact match of parsed calls."""


for command, name in (
    (run_command, "run"),
    (score_command, "score"),
    (score_command, "report"),
    (compare_command, "compare"),
    (bfcl_command, "bfcl"),
):
    cli.add_command(command, name)
