"""Small OpenAI fine-tuning inputs for the openai-export and openai-ft tests: two skill datasets
made by `datagen skills`, and `datagen openai-export` to run on them."""

from pathlib import Path

from click.testing import CliRunner
from conftest import REPO

from datagen.cli import cli
from datagen.cli.openai import openai_export_command

BASE = "gpt-4o-mini-2024-07-18"


def make_datasets(root: Path) -> Path:
    """Two small skill datasets from the default pack: python-style and tools-style answers (20 train records)."""
    for style in ("python", "tools"):
        result = CliRunner().invoke(
            cli,
            [
                "skills",
                "--pack",
                str(REPO / "examples" / "skills"),
                "--out",
                str(root / style),
                "--n",
                "40",
                "--style",
                style,
            ],
        )
        assert result.exit_code == 0, result.output
    return root


def export(*args: str):
    return CliRunner().invoke(openai_export_command, list(args))
