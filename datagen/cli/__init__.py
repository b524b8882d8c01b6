"""The `python -m datagen` command table; each command lives in a module of this package (or, until
it moves here, in its feature module) and calls plain functions of the feature modules."""

from __future__ import annotations

import click

from datagen.cli.conversations import conversations_command
from datagen.cli.documents import documents_command
from datagen.cli.instructions import instructions_command
from datagen.cli.llm import llm_command, merge_review_command
from datagen.cli.openai import openai_export_command, openai_ft_command
from datagen.cli.pack import check, skills, stats, validate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Make training data for function calling from a skill pack."""


for command, name in (
    (check, "check"),
    (skills, "skills"),
    (validate, "validate"),
    (stats, "stats"),
    (llm_command, "llm"),
    (merge_review_command, "merge-review"),
    (openai_export_command, "openai-export"),
    (openai_ft_command, "openai-ft"),
    (documents_command, "documents"),
    (conversations_command, "conversations"),
    (instructions_command, "instructions"),
):
    cli.add_command(command, name)
