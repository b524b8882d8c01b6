"""The Modelfile that is written, rendered for real records the way Ollama renders it
(ollama_prompt.py), gives exactly the text the training chat template renders for them with the
real tokenizer; its stops are the tokenizer's end of turn; templates that are not ChatML are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import PACK, REPO, SMOLLM2, needs_smollm2, run_module
from ollama_prompt import ollama_prompt, read_modelfile

from skilltune.local_model import Chat, render_prompts, training_chat_template
from skilltune.serving.files import MODELFILE, ServingError, write_serving_files


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[tuple[str, str], Path]:
    """Generated records per (style, system prompt kind); `signatures` is a multi-line prompt."""
    made = {}
    for style, system in (("python", "names"), ("json", "names"), ("python", "none"), ("json", "signatures")):
        out = tmp_path_factory.mktemp(f"{style}-{system}") / "data"
        result = run_module(
            "datagen", "skills", "--pack", PACK, "--n", 300, "--out", out, "--style", style, "--system", system
        )
        assert result.returncode == 0, result.stderr
        made[style, system] = out
    return made


def config_for(name: str, data: Path, folder: Path) -> Path:
    """configs/<name>.yml training on `data` instead of data/skills."""
    path = folder / f"{name}.yml"
    path.write_text((REPO / "configs" / f"{name}.yml").read_text().replace("data/skills/", f"{data}/"))
    return path


def modelfile(name: str, data: Path, tmp_path: Path, style: str) -> dict:
    config = config_for(name, data, tmp_path)
    write_serving_files(PACK, config, tmp_path / "export", "model-q8_0.gguf", style, root=REPO)
    commands = read_modelfile((tmp_path / "export" / MODELFILE).read_text(encoding="utf-8"))
    values = {}
    for command, value in commands:
        values.setdefault(command, []).append(value)
    return values


def records(folder: Path, split: str = "test") -> list[dict]:
    lines = (folder / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def check_renders_as_trained(tokenizer, written: dict, rows: list[dict]) -> None:
    template, system = written["TEMPLATE"][0], (written.get("SYSTEM") or [None])[0]
    for record in rows:
        messages = record["messages"]
        user_only = [messages[-2]]  # what a client sends: the request; Ollama adds the SYSTEM
        training = render_prompts(tokenizer, [Chat(messages[:-1])])[0]
        assert ollama_prompt(template, system, user_only) == training
        assert ollama_prompt(template, system, messages[:-1]) == training
        # a second turn after the trained answer, so the answer's turn is laid out as trained too
        follow = [*messages, {"role": "user", "content": "and in Paris?"}]
        assert ollama_prompt(template, system, follow) == render_prompts(tokenizer, [Chat(follow)])[0]


@pytest.fixture(scope="module")
def smollm2_tokenizer():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(SMOLLM2), local_files_only=True)
    config = yaml.safe_load((REPO / "configs" / "smollm2.yml").read_text())
    tokenizer.chat_template = training_chat_template(config, REPO)
    return tokenizer


@needs_smollm2
@pytest.mark.parametrize(
    "style, system", [("python", "names"), ("json", "names"), ("python", "none"), ("json", "signatures")]
)
def test_smollm2_modelfile_renders_records_as_training_did(datasets, tmp_path, smollm2_tokenizer, style, system):
    data = datasets[style, system]
    written = modelfile("smollm2", data, tmp_path, style)
    assert written["FROM"] == ["./model-q8_0.gguf"] and written["PARAMETER temperature"] == ["0"]
    assert ("SYSTEM" in written) == (system != "none")
    check_renders_as_trained(smollm2_tokenizer, written, records(data) + records(data, "test_wording")[:20])
    # the stop is the token generation ends at: one special token, the tokenizer's eos
    assert written["PARAMETER stop"] == [smollm2_tokenizer.eos_token]
    assert smollm2_tokenizer.convert_tokens_to_ids(written["PARAMETER stop"][0]) == smollm2_tokenizer.eos_token_id


@pytest.mark.parametrize("system", ["names", "none"])
def test_qwen_modelfile_carries_the_default_system_prompt(datasets, tmp_path, system):
    """qwen_25 writes its own system turn when a record has none: the Modelfile's SYSTEM is that
    text, so Ollama renders those records as training did (a stand-in tokenizer of the family)."""
    from skilltune.standins import build_tokenizer

    tokenizer = build_tokenizer("qwen2.5")  # carries Axolotl's qwen_25, the config's template
    data = datasets["python", system]
    written = modelfile("qwen2.5", data, tmp_path, "python")
    if system == "none":
        assert written["SYSTEM"] == ["You are Qwen, created by Alibaba Cloud. You are a helpful assistant."]
    assert written["PARAMETER stop"] == [tokenizer.eos_token]
    check_renders_as_trained(tokenizer, written, records(data))


@pytest.mark.parametrize("name", ["llama3", "mistral", "zephyr"])
def test_a_template_that_is_not_chatml_is_refused_in_one_line(datasets, tmp_path, name):
    config = config_for(name, datasets["python", "names"], tmp_path)
    with pytest.raises(ServingError) as raised:
        write_serving_files(PACK, config, tmp_path / "export", "model.gguf", root=REPO)
    message = str(raised.value)
    assert "\n" not in message and "is not ChatML" in message and str(config) in message
    assert not (tmp_path / "export").exists()  # nothing is written


def test_the_tokenizers_own_template_is_refused(datasets, tmp_path):
    config = yaml.safe_load((REPO / "configs" / "smollm2.yml").read_text())
    del config["chat_template"], config["chat_template_jinja"]
    path = tmp_path / "default.yml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ServingError, match="tokenizer's own chat template"):
        write_serving_files(PACK, path, tmp_path / "export", "model.gguf", root=REPO)


def test_the_renderer_cuts_the_last_turn_at_the_response():
    """The test's stand-in for Ollama: history turns whole, the last one up to .Response."""
    template = "{{ if .System }}S:{{ .System }};{{ end }}U:{{ .Prompt }};A:{{ .Response }};"
    messages = [
        {"role": "user", "content": "1"},
        {"role": "assistant", "content": "2"},
        {"role": "user", "content": "3"},
    ]
    assert ollama_prompt(template, "sys", messages) == "S:sys;U:1;A:2;U:3;A:"
    with pytest.raises(ValueError, match="not rendered here"):
        ollama_prompt("{{ range .Messages }}{{ end }}", None, messages)
