"""Shared test setup: offline, the repository root, the embedded-model marker, shared helpers.

Tests import the constants and helpers here by name (`from conftest import REPO, needs_smollm2`);
tests/ is on sys.path, so `openai_server` (the scripted OpenAI-compatible server) imports too.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
FIXTURES = TESTS / "fixtures"
PACK = REPO / "examples" / "skills"
SMOLLM2 = REPO / "models" / "SmolLM2-135M-Instruct"  # the embedded model `make model` prepares
sys.path[:0] = [str(REPO), str(TESTS)]
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["AXOLOTL_DO_NOT_TRACK"] = "1"
os.environ.setdefault("WANDB_MODE", "disabled")


@pytest.fixture(autouse=True)
def no_wandb_service_outlives_its_test():
    """A test that runs wandb in this process starts wandb's service, which exports WANDB_SERVICE. Left
    set, every later subprocess (make train in the end-to-end tests) attaches to that service instead of
    starting its own, and its offline run folder stayed empty: no run-<id>.wandb for eval to resume."""
    outside = os.environ.get("WANDB_SERVICE")  # a shell inside a wandb run keeps its own
    yield
    if os.environ.get("WANDB_SERVICE") != outside and "wandb" in sys.modules:
        sys.modules["wandb"].teardown()  # stops the service and unsets WANDB_SERVICE


# tests that need the embedded model skip, naming the command that makes it, where it is not built
SMOLLM2_MISSING = (
    None if (SMOLLM2 / "model.safetensors").exists() else f"{SMOLLM2} is missing: `make model` prepares it"
)
needs_smollm2 = pytest.mark.skipif(SMOLLM2_MISSING is not None, reason=SMOLLM2_MISSING or "")


def require_smollm2() -> Path:
    """The embedded model's folder; skips the calling test (or fixture) where it is not built."""
    if SMOLLM2_MISSING:
        pytest.skip(SMOLLM2_MISSING)
    return SMOLLM2


def run_module(module: str, *args, cwd=REPO, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m MODULE ARGS...` as a user runs it, from the repository root by default."""
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )


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
