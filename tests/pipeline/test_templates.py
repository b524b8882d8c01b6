"""For every config in configs/, a record goes through Axolotl's own tokenization path (its config
validation, `load_tokenizer`, the `chat_template` prompt strategy) with a local tokenizer of that
model family (the stand-ins of skilltune/standins.py), and the trained tokens (labels != -100) must be exactly
the assistant answer plus the end-of-turn token, nothing of the prompt, in all three answer styles.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import REPO, require_smollm2

from eval.parse import parse_output
from skilltune.calls import Call
from skilltune.records import chat_record, system_prompt, tool_definitions
from skilltune.skills import load_pack
from skilltune.standins import FAMILIES, build_standin

CONFIGS = sorted(path.stem for path in (REPO / "configs").glob("*.yml"))
IGNORE = -100


@pytest.fixture(scope="module")
def family_folders(tmp_path_factory):
    cache = tmp_path_factory.mktemp("families")
    return {name: build_standin(name, cache) for name in FAMILIES}


def tokenizer_folder(config_name: str, family_folders) -> Path:
    if config_name == "smollm2":  # the embedded model's real tokenizer is on disk
        return require_smollm2()
    return family_folders[config_name]


def axolotl_strategy(config_name: str, folder: Path):
    """Axolotl's tokenizer and chat_template strategy for configs/<name>.yml with the local tokenizer."""
    from axolotl.loaders.tokenizer import load_tokenizer
    from axolotl.prompt_strategies import load
    from axolotl.utils.config import normalize_config, validate_config
    from axolotl.utils.dict import DictDefault

    config = yaml.safe_load((REPO / "configs" / f"{config_name}.yml").read_text())
    # the GPU settings cannot load on a CPU; none of them changes tokenization
    config.update(
        base_model=str(folder), load_in_4bit=False, adapter="lora", attn_implementation="sdpa", bf16=False, fp16=False
    )
    for key in ("chat_template_jinja",):  # a path relative to the repository root, where make runs
        if key in config:
            config[key] = str(REPO / config[key])
    cfg = validate_config(DictDefault(config))
    normalize_config(cfg)
    tokenizer = load_tokenizer(cfg)
    return tokenizer, load("chat_template", tokenizer, cfg, cfg.datasets[0])


def skill_record(style: str) -> dict:
    pack = load_pack(REPO / "examples" / "skills")
    tools = tool_definitions(pack) if style == "tools" else None
    call = Call("timer", {"duration": "1 hour 10 minutes"})
    return chat_record(system_prompt(pack), "set a timer for an hour and ten minutes", call, style, tools)


def hf_messages(record: dict) -> list[dict]:
    """The messages with tool-call arguments as objects, the transformers convention that Axolotl
    also follows before rendering (qwen_25 would otherwise quote a JSON string a second time)."""
    messages = []
    for message in record["messages"]:
        calls = [
            {**call, "function": {**call["function"], "arguments": json.loads(call["function"]["arguments"])}}
            for call in message.get("tool_calls", [])
        ]
        messages.append({**message, "tool_calls": calls} if calls else message)
    return messages


@pytest.mark.parametrize("style", ["python", "json", "tools"])
@pytest.mark.parametrize("config_name", CONFIGS)
def test_only_the_answer_and_its_end_of_turn_are_trained(config_name, style, family_folders):
    tokenizer, strategy = axolotl_strategy(config_name, tokenizer_folder(config_name, family_folders))
    record = skill_record(style)
    row = strategy.tokenize_prompt(record)
    ids, labels = row["input_ids"], row["labels"]
    trained = [index for index, label in enumerate(labels) if label != IGNORE]
    assert trained, "nothing is trained: the template dropped the answer"
    assert trained == list(range(trained[0], trained[-1] + 1)), "the trained tokens are not one run"
    assert all(labels[index] == ids[index] for index in trained)

    # the run ends on the end-of-turn token that generation stops at
    assert ids[trained[-1]] == tokenizer.eos_token_id
    answer_text = tokenizer.decode([ids[index] for index in trained[:-1]])
    # what the template renders for the answer turn: the full conversation minus its prompt
    full = tokenizer.apply_chat_template(hf_messages(record), tools=record.get("tools"), tokenize=False)
    prompt = tokenizer.apply_chat_template(
        record["messages"][:-1], tools=record.get("tools"), tokenize=False, add_generation_prompt=True
    )
    assert full.startswith(prompt)
    rendered_answer = full[len(prompt) :].rstrip("\n")
    assert rendered_answer.endswith(tokenizer.eos_token)
    # a separator space before the answer may be merged into its first token (Mistral's "[/INST] x")
    assert answer_text.lstrip() == rendered_answer[: -len(tokenizer.eos_token)].lstrip()
    if style != "tools":  # content answers are trained verbatim
        assert answer_text.lstrip() == record["messages"][-1]["content"]

    # what the model learns to write is what the eval parser reads back as the gold call
    assert parse_output(answer_text).calls == (Call("timer", {"duration": "1 hour 10 minutes"}),)
    # and the prompt, skill list included, is in the input but never trained
    prompt_text = tokenizer.decode(ids[: trained[0]])
    assert record["messages"][0]["content"] in prompt_text
    assert "set a timer for an hour and ten minutes" in prompt_text
    if style == "tools":
        assert '"duration"' in prompt_text  # the tool definitions reach the prompt


@pytest.mark.parametrize("config_name", CONFIGS)
def test_every_assistant_turn_of_a_conversation_is_trained(config_name, family_folders):
    """Conversation records (datagen conversations) have several assistant turns: all are learned."""
    tokenizer, strategy = axolotl_strategy(config_name, tokenizer_folder(config_name, family_folders))
    record = {
        "messages": [
            {"role": "system", "content": "You are the help desk."},
            {"role": "user", "content": "Is the shop open on Sunday?"},
            {"role": "assistant", "content": "Yes, from 10 to 4."},
            {"role": "user", "content": "And on holidays?"},
            {"role": "assistant", "content": "Closed on public holidays."},
        ]
    }
    row = strategy.tokenize_prompt(record)
    trained = [token for token, label in zip(row["input_ids"], row["labels"]) if label != IGNORE]
    text = tokenizer.decode(trained)
    assert text.count(tokenizer.eos_token) == 2
    assert [part.strip() for part in text.split(tokenizer.eos_token)[:2]] == [
        "Yes, from 10 to 4.",
        "Closed on public holidays.",
    ]
