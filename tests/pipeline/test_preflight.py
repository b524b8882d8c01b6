"""The pre-flight check (python -m skilltune.preflight, run by `make train` before preprocessing):
records Axolotl would drop are refused in one line naming the file, the share and the length needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from skilltune.standins import build_standin


@pytest.fixture(scope="module")
def mistral_folder(tmp_path_factory):
    return build_standin("mistral", tmp_path_factory.mktemp("hub"))


def skill_data(out: Path, style: str) -> Path:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "datagen",
            "skills",
            "--pack",
            "examples/skills",
            "--out",
            str(out),
            "--n",
            "100",
            "--style",
            style,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return out


def config_for(tmp_path: Path, base_model: Path, data: Path, **changes) -> Path:
    config = yaml.safe_load((REPO / "configs" / "mistral.yml").read_text())
    config.update(base_model=str(base_model), **changes)
    config["chat_template_jinja"] = str(REPO / config["chat_template_jinja"])
    config["datasets"][0]["path"] = str(data / "train.jsonl")
    config["test_datasets"][0]["path"] = str(data / "val.jsonl")
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def preflight(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "skilltune.preflight", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def error_line(result: subprocess.CompletedProcess) -> str:
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-2000:]
    return errors[0]


def longest_tokens(folder: Path, path: Path) -> int:
    """The longest record of `path` under the config's template, tokenized here independently."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    template = (REPO / "configs" / "templates" / "mistral_tools.jinja").read_text()
    lengths = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        messages = [
            {
                **m,
                "tool_calls": [
                    {**c, "function": {**c["function"], "arguments": json.loads(c["function"]["arguments"])}}
                    for c in m.get("tool_calls", [])
                ],
            }
            for m in record["messages"]
        ]
        text = tokenizer.apply_chat_template(
            messages, tools=record.get("tools"), chat_template=template, tokenize=False
        )
        lengths.append(len(tokenizer(text, add_special_tokens=False)["input_ids"]))
    return max(lengths)


def test_tools_records_longer_than_sequence_len_are_refused_with_the_length_they_need(tmp_path, mistral_folder):
    data = skill_data(tmp_path / "tools", "tools")
    result = preflight(config_for(tmp_path, mistral_folder, data, sequence_len=256))
    assert result.returncode == 1
    line = error_line(result)
    records = len((data / "train.jsonl").read_text().splitlines())
    assert line.startswith(
        f"error: {data / 'train.jsonl'}:1: {records} of {records} records (100.0%) are longer than sequence_len 256"
    )
    needed = int(line.split("they need sequence_len >= ")[1].split()[0])
    assert needed > 256
    assert abs(needed - longest_tokens(mistral_folder, data / "train.jsonl")) <= 2  # BOS / template edge tokens

    fits = preflight(config_for(tmp_path, mistral_folder, data, sequence_len=needed))
    assert fits.returncode == 0, fits.stderr[-2000:]
    assert f"{data / 'train.jsonl'}: {records} records, longest {needed} tokens" in fits.stdout


def test_one_long_record_is_named_by_its_line_and_share(tmp_path, mistral_folder):
    data = skill_data(tmp_path / "python", "python")
    train = data / "train.jsonl"
    rows = train.read_text().splitlines()
    long = json.loads(rows[0])
    long["messages"][1]["content"] = "weather please " * 2000
    train.write_text("\n".join(rows + [json.dumps(long)]) + "\n")
    result = preflight(config_for(tmp_path, mistral_folder, data))
    assert result.returncode == 1
    share = f"{1 / (len(rows) + 1):.1%}"
    assert error_line(result).startswith(
        f"error: {train}:{len(rows) + 1}: 1 of {len(rows) + 1} records ({share}) are longer than sequence_len 1024"
    )


def test_records_with_nothing_trained_are_refused(tmp_path, mistral_folder):
    data = skill_data(tmp_path / "python", "python")
    config = yaml.safe_load(config_for(tmp_path, mistral_folder, data).read_text())
    for entry in config["datasets"] + config["test_datasets"]:
        entry.update(roles_to_train=["tool"], train_on_eos="none")
    path = tmp_path / "untrained.yml"
    path.write_text(yaml.safe_dump(config))
    result = preflight(path)
    assert result.returncode == 1
    assert "have no trained token" in error_line(result)


def test_a_broken_yaml_is_one_line_with_its_line(tmp_path):
    path = tmp_path / "broken.yml"
    path.write_text("base_model: x\nsequence_len: [1024\n")
    result = preflight(path)
    assert result.returncode == 1
    assert error_line(result).startswith(f"error: {path}:")
    assert "Traceback" not in result.stderr
