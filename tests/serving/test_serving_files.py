"""write_serving_files: tools.json is the pack's schemas (and the training data's `tools` column),
the Modelfile's SYSTEM is what the training records carry, nothing else in the folder is touched,
and a failure leaves the folder as it was."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from conftest import PACK, REPO, run_module

from skilltune.records import gold_calls, prompt_for
from skilltune.serving.files import (
    GRAMMAR,
    MODELFILE,
    TOOLS,
    ServingError,
    options_from_manifest,
    write_serving_files,
)
from skilltune.skills import load_pack

SKILLS = load_pack(PACK)


def generate(out: Path, *options) -> Path:
    result = run_module("datagen", "skills", "--pack", PACK, "--n", 300, "--out", out, *options)
    assert result.returncode == 0, result.stderr
    return out


def config_for(data: Path, folder: Path) -> Path:
    path = folder / "smollm2.yml"
    path.write_text((REPO / "configs" / "smollm2.yml").read_text().replace("data/skills/", f"{data}/"))
    return path


def system_line(modelfile: Path) -> str | None:
    text = modelfile.read_text(encoding="utf-8")
    return text.split('SYSTEM """', 1)[1].split('"""', 1)[0] if 'SYSTEM """' in text else None


def test_tools_json_is_the_packs_schemas(tmp_path):
    data = generate(tmp_path / "data")
    write_serving_files(PACK, config_for(data, tmp_path), tmp_path / "export", "model.gguf", root=REPO)
    tools = json.loads((tmp_path / "export" / TOOLS).read_text(encoding="utf-8"))
    assert [tool["type"] for tool in tools] == ["function"] * len(SKILLS)
    assert [tool["function"]["name"] for tool in tools] == [skill.name for skill in SKILLS]
    for tool, skill in zip(tools, SKILLS):
        assert tool["function"]["description"] == skill.description
        assert tool["function"]["parameters"] == skill.json_schema()
        jsonschema.Draft202012Validator.check_schema(tool["function"]["parameters"])
    # every gold call of the data fits its tool's parameters, and a call off the schema does not
    by_name = {tool["function"]["name"]: tool["function"]["parameters"] for tool in tools}
    for line in (data / "test.jsonl").read_text(encoding="utf-8").splitlines():
        for call in gold_calls(json.loads(line)):
            jsonschema.validate(call.arguments, by_name[call.name])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"action": "delete"}, by_name["notes"])
    # and it is the `tools` column tools-style training records carry
    tools_data = generate(tmp_path / "tools-data", "--style", "tools")
    record = json.loads((tools_data / "train.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert record["tools"] == tools


def test_writes_three_files_and_touches_nothing_else(tmp_path):
    data = generate(tmp_path / "data")
    out = tmp_path / "export"
    out.mkdir()
    (out / "model.gguf").write_bytes(b"GGUF")
    (out / "notes.txt").write_text("mine")
    paths = write_serving_files(PACK, config_for(data, tmp_path), out, "model.gguf", root=REPO)
    assert paths == [out / GRAMMAR, out / TOOLS, out / MODELFILE]
    assert sorted(path.name for path in out.iterdir()) == sorted([GRAMMAR, TOOLS, MODELFILE, "model.gguf", "notes.txt"])
    assert (out / "notes.txt").read_text() == "mine" and (out / "model.gguf").read_bytes() == b"GGUF"
    assert system_line(out / MODELFILE) == prompt_for("names", SKILLS)


def test_a_failure_leaves_the_folder_as_it_was(tmp_path):
    data = generate(tmp_path / "data")
    out = tmp_path / "export"
    write_serving_files(PACK, config_for(data, tmp_path), out, "model.gguf", root=REPO)
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    llama3 = tmp_path / "llama3.yml"
    llama3.write_text((REPO / "configs" / "llama3.yml").read_text())
    for call in (
        lambda: write_serving_files(PACK, llama3, out, "model.gguf", "json", root=REPO),
        lambda: write_serving_files(PACK, config_for(data, tmp_path), out, "model.gguf", "tools", root=REPO),
        lambda: write_serving_files(PACK, config_for(data, tmp_path), out, "my model.gguf", root=REPO),
        lambda: write_serving_files(tmp_path / "no-pack", config_for(data, tmp_path), out, "model.gguf", root=REPO),
    ):
        with pytest.raises(ServingError) as raised:
            call()
        assert "\n" not in str(raised.value)
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before


def test_options_from_the_manifest_and_held_out_skills(tmp_path):
    data = generate(tmp_path / "data", "--style", "json", "--compound", "0.2", "--holdout-skills", "news")
    options = options_from_manifest(data / "manifest.json")
    assert options == {"style": "json", "system": "names", "compound": True, "holdout": ("news",)}
    # without the training file the SYSTEM is datagen's prompt for the trained skills: no news
    missing = tmp_path / "gone"
    out = tmp_path / "export"
    write_serving_files(PACK, config_for(missing, tmp_path), out, "model.gguf", **options, root=REPO)
    trained = [skill for skill in SKILLS if skill.name != "news"]
    assert system_line(out / MODELFILE) == prompt_for("names", trained)
    assert (
        system_line(out / MODELFILE)
        == json.loads((data / "train.jsonl").read_text().splitlines()[0])["messages"][0]["content"]
    )
    assert '"["' in (out / GRAMMAR).read_text()  # compound answers: the grammar takes lists
    with pytest.raises(ServingError, match="not a manifest"):
        (tmp_path / "bad.json").write_text("{}")
        options_from_manifest(tmp_path / "bad.json")


def test_the_system_prompt_comes_from_the_training_records(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    record = {
        "messages": [
            {"role": "system", "content": "Call one skill.\nOr other()."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "other()"},
        ]
    }
    (data / "train.jsonl").write_text(json.dumps(record) + "\n")
    out = tmp_path / "export"
    write_serving_files(PACK, config_for(data, tmp_path), out, "model.gguf", root=REPO)
    assert system_line(out / MODELFILE) == "Call one skill.\nOr other()."
    record["messages"][0]["content"] = 'Say """ here'  # would end Ollama's triple-quoted value early
    (data / "train.jsonl").write_text(json.dumps(record) + "\n")
    with pytest.raises(ServingError, match='holds """'):
        write_serving_files(PACK, config_for(data, tmp_path), tmp_path / "other", "model.gguf", root=REPO)
