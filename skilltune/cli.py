"""How every datagen command fails: one `error: ...` line on stderr and exit status 1."""

from __future__ import annotations

import sys

import click


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


class OneLineErrors(click.Command):
    """Bad options end like every other failure here: one `error: ...` line and exit status 1."""

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as err:
            fail(err.format_message())
