"""The datasets the other sources write (documents Q&A, conversation logs, instruction pairs) are
what `configs/smollm2.yml` trains on: `datagen validate` accepts them and one `axolotl preprocess`
run loads all three, every row keeping trained (assistant) tokens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from click.testing import CliRunner
from conftest import REPO, needs_smollm2
from openai_server import ScriptedOpenAIServer, documents_reply

from datagen.cli.documents import documents_command
from skilltune.jsonio import read_jsonl

VENV_BIN = Path(sys.executable).parent


def datagen(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "datagen", *args], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


@needs_smollm2  # Axolotl tokenizes with the embedded model's tokenizer
def test_each_source_validates_and_loads_in_axolotl_preprocess(tmp_path):
    documents, conversations, instructions = (
        tmp_path / "documents",
        tmp_path / "conversations",
        tmp_path / "instructions",
    )
    with ScriptedOpenAIServer(default="reply", reply=documents_reply) as server:
        result = CliRunner().invoke(
            documents_command,
            [
                str(REPO / "examples" / "documents"),
                "--out",
                str(documents),
                "--cache",
                str(tmp_path / "cache"),
                "--base-url",
                server.url,
                "--model",
                "test-model",
                "--max-retries",
                "0",
            ],
        )
        assert result.exit_code == 0, result.output
    datagen(
        "conversations",
        "examples/conversations/logs",
        "--mix",
        "examples/conversations/public_instructions.jsonl",
        "--mix-ratio",
        "1",
        "--out",
        str(conversations),
    )
    datagen("instructions", "examples/instructions/pairs.jsonl", "--to", "chat", "--out", str(instructions))
    train_files = [documents / "train.jsonl", conversations / "train.jsonl", instructions / "train.jsonl"]
    datagen("validate", *map(str, train_files))

    config = yaml.safe_load((REPO / "configs" / "smollm2.yml").read_text())
    source = config["datasets"][0]
    config["datasets"] = [{**source, "path": str(path)} for path in train_files]
    config["test_datasets"] = [{**config["test_datasets"][0], "path": str(conversations / "val.jsonl")}]
    config["chat_template_jinja"] = str(REPO / config["chat_template_jinja"])
    config["base_model"] = str(REPO / config["base_model"])
    config["sequence_len"] = 1024  # multi-turn conversations are longer than skill calls: nothing is cut here
    config["dataset_prepared_path"] = str(tmp_path / "prepared")
    config["output_dir"] = str(tmp_path / "adapter")
    config_path = tmp_path / "sources.yml"
    config_path.write_text(yaml.safe_dump(config))

    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", "WANDB_MODE": "disabled"}
    result = subprocess.run(
        [str(VENV_BIN / "axolotl"), "preprocess", str(config_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    from datasets import load_from_disk

    prepared = [load_from_disk(str(folder)) for folder in sorted((tmp_path / "prepared").iterdir()) if folder.is_dir()]
    rows = [row for dataset in prepared for row in dataset]
    train_records = sum(1 for path in train_files for _ in read_jsonl(path, "record"))
    val_records = sum(1 for _ in read_jsonl(conversations / "val.jsonl", "record"))
    assert len(rows) == train_records + val_records
    assert all(any(label != -100 for label in row["labels"]) for row in rows)
