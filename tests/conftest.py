"""Shared test setup: offline, and a helper to write small skill packs."""

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["AXOLOTL_DO_NOT_TRACK"] = "1"
os.environ.setdefault("WANDB_MODE", "disabled")


@pytest.fixture
def write_pack(tmp_path):
    """write_pack({"weather.txt": "..."}) -> folder holding those skill files."""

    def write(files: dict[str, str]) -> Path:
        pack = tmp_path / "pack"
        pack.mkdir(exist_ok=True)
        for name, text in files.items():
            (pack / name).write_text(text)
        return pack

    return write
