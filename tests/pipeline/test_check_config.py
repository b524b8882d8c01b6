"""`make check-config`: a config validated, one record rendered with its trained tokens marked, what
reaches the prompt, and a GPU memory estimate, before a GPU is rented."""

from __future__ import annotations

import re
import subprocess
import sys

import yaml
from conftest import REPO

from skilltune.standins import build_standin

STAMP = ".venv/.skilltune-installed"


def test_make_check_config_on_the_mistral_stand_in(tmp_path):
    result = subprocess.run(
        ["make", "-o", STAMP, "check-config", "MODEL=mistral", "STANDIN=1", f"STANDIN_CACHE={tmp_path}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "configs/mistral.yml: passes Axolotl's validation (base_model mistralai/Mistral-7B-Instruct-v0.3)" in out
    assert "tokenizer: " in out and "eos </s>" in out and "a stand-in's small vocabulary" in out
    # the rendered record: Mistral's [INST] layout, only the call and </s> between the marks
    rendered = out.split("trained tokens between « »:\n", 1)[1].split("\n  system prompt", 1)[0]
    trained = re.findall("«(.*?)»", rendered, flags=re.S)
    assert len(trained) == 1 and trained[0].strip().endswith("</s>")
    call = trained[0].strip().removesuffix("</s>")
    assert re.fullmatch(r"[a-z]+\(.*\)", call), call
    assert rendered.startswith("<s>[INST]") and "[/INST]" in rendered.split("«")[0]
    assert "system prompt: in the prompt" in out
    assert "tools: 10 of 10 definitions in the prompt" in out
    assert "end of turn: </s> trained" in out
    total = float(re.search(r"total +([0-9.]+) GiB", out).group(1))
    assert 6 <= total <= 20  # the real Mistral-7B's shapes at the config's micro batch and sequence length
    assert "estimated from the real model's shapes (stand-in loaded)" in out


def test_a_template_that_drops_tools_is_named(tmp_path):
    """Axolotl's `chatml` template renders no tool definitions: check-config says so."""
    folder = build_standin("qwen2.5", tmp_path / "hub")
    config = yaml.safe_load((REPO / "configs" / "smollm2.yml").read_text())
    config.update(base_model=str(folder), chat_template="chatml")
    config.pop("chat_template_jinja")
    config.pop("special_tokens")
    path = tmp_path / "chatml.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "skilltune.check_config", str(path), "--style", "tools"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "tools: 0 of 10 definitions in the prompt (the chat template drops tools)" in result.stdout


def test_a_config_axolotl_rejects_is_one_line(tmp_path):
    config = yaml.safe_load((REPO / "configs" / "mistral.yml").read_text())
    config["micro_batch_size"] = "four"
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "skilltune.check_config", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    line = (
        1 + [number for number, text in enumerate(path.read_text().splitlines()) if text.startswith("micro_batch")][0]
    )
    assert errors == [
        f"error: {path}:{line}: Axolotl rejects it: micro_batch_size: Input should be a valid integer, "
        "unable to parse string as an integer (got 'four')"
    ]
