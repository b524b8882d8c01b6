"""In-process runs of `datagen llm` and `datagen documents` against the scripted server
(tests/openai_server.py), and the small helpers their tests share."""

import json
from pathlib import Path

from click.testing import CliRunner
from conftest import PACK

from datagen.cli.documents import documents_command
from datagen.cli.llm import llm_command
from skilltune.calls import parse_call
from skilltune.jsonio import schema_problem
from skilltune.skills import load_pack


def local_env(api_key: str) -> dict:
    """The key, and a client that goes straight to 127.0.0.1 whatever proxy the environment names;
    OPENAI_BASE_URL must not leak in."""
    return {
        "OPENAI_API_KEY": api_key,
        "OPENAI_BASE_URL": None,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


def error_line(result) -> str:
    """The last line a command wrote to stderr ("" for none)."""
    lines = result.stderr.strip().splitlines()
    return lines[-1] if lines else ""


# --- datagen llm

LLM_SECRET = "sk-test-never-on-disk-4242"
LLM_ENV = local_env(LLM_SECRET)


def run_llm(server, out: Path | None, *args: str, cache: Path | None = None):
    """Run the llm command in-process; returns click's Result."""
    options = [
        "--pack",
        str(PACK),
        "--base-url",
        server.url,
        "--model",
        "test-model",
        "--max-retries",
        "3",
        "--timeout",
        "10",
        *args,
    ]
    if out is not None:
        options += ["--out", str(out), "--cache", str(cache or out.parent / "cache")]
    return CliRunner().invoke(llm_command, options, env=LLM_ENV)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_valid_pairs(rows: list[dict]) -> None:
    """Every line fits pair.schema.json and its call fits its skill."""
    skills = {skill.name: skill for skill in load_pack(PACK)}
    for row in rows:
        assert schema_problem(row, "pair") is None, row
        assert skills[row["skill"]].check_call(parse_call(row["call"])) is None, row


# --- datagen documents

DOCUMENTS_SECRET = "sk-test-documents-never-on-disk-77"
DOCUMENTS_ENV = local_env(DOCUMENTS_SECRET)
OUTPUT_FILES = {"qa.csv", "qa.json", "train.jsonl", "val.jsonl", "manifest.json"}


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def run_documents(server, directory: Path, out: Path, *args: str, cache: Path | None = None):
    """Run the documents command in-process, on `server` (None: the local model); returns click's Result."""
    options = [
        str(directory),
        "--out",
        str(out),
        "--cache",
        str(cache or out.parent / "cache"),
        "--max-retries",
        "0",
        "--timeout",
        "10",
        *args,
    ]
    if server is not None:
        options += ["--base-url", server.url, "--model", "test-model"]
    return CliRunner().invoke(documents_command, options, env=DOCUMENTS_ENV)
