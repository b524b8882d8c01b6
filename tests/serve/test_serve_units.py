"""The export and serve pieces that need neither llama-cpp-python nor a model: the server's call
rewriting, the tokenizer fix before conversion, the export folder rule, the converter's source."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
import yaml

from skilltune import converter_source, export
from skilltune.gguf_files import byte_level_tokenizer_fix
from skilltune.serve_chat import answer_text_calls, as_tool_calls, with_system

SYSTEM = "Answer with one function call: weather, or other()."
REPO_ROOT = Path(__file__).resolve().parents[2]


def chat_response(content: str) -> dict:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}


@pytest.mark.parametrize(
    "text",
    [
        'weather(location="Cairo")',
        '{"function_call": {"name": "weather", "arguments": {"location": "Cairo"}}}',
        '<tool_call>\n{"name": "weather", "arguments": {"location": "Cairo"}}\n</tool_call>',
    ],
)
def test_each_answer_style_comes_back_as_tool_calls(text):
    response = as_tool_calls(chat_response(text))
    choice = response["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["function"]["name"] == "weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "Cairo"}


def test_two_calls_keep_their_order():
    text = '[timer(duration="ten minutes"), notes(action="add", note="eggs")]'
    calls = as_tool_calls(chat_response(text))["choices"][0]["message"]["tool_calls"]
    assert [call["function"]["name"] for call in calls] == ["timer", "notes"]
    assert [call["id"] for call in calls] == ["call_0", "call_1"]


@pytest.mark.parametrize(
    "text",
    ["other()", 'weather(location="Ber', "Sorry, I can't do that.", 'weather(location=open("x"))', "<tool_call>{"],
)
def test_no_call_and_broken_answers_stay_text(text):
    choice = as_tool_calls(chat_response(text))["choices"][0]
    assert choice["message"]["content"] == text
    assert "tool_calls" not in choice["message"]
    assert choice["finish_reason"] == "stop"


def test_answer_text_is_read_never_run(tmp_path):
    marker = tmp_path / "ran"
    assert answer_text_calls(f"__import__('pathlib').Path({str(marker)!r}).touch()") is None
    assert not marker.exists()


def test_training_system_prompt_only_when_the_request_has_none():
    user = [{"role": "user", "content": "weather Cairo"}]
    assert with_system(user, SYSTEM) == [{"role": "system", "content": SYSTEM}, *user]
    own = [{"role": "system", "content": "mine"}, *user]
    assert with_system(own, SYSTEM) == own
    assert with_system(user, None) == user


def test_byte_level_bpe_loses_only_its_byte_fallback():
    tokenizer = {
        "model": {"type": "BPE", "byte_fallback": True, "vocab": {"a": 0}},
        "pre_tokenizer": {"type": "ByteLevel"},
        "decoder": {"type": "Sequence"},
    }
    fixed = byte_level_tokenizer_fix(tokenizer)
    assert fixed["model"] == {"type": "BPE", "byte_fallback": False, "vocab": {"a": 0}}
    assert fixed["pre_tokenizer"] == tokenizer["pre_tokenizer"] and fixed["decoder"] == tokenizer["decoder"]
    assert tokenizer["model"]["byte_fallback"] is True  # the model folder's own file is not touched
    # a SentencePiece-style vocabulary really falls back to byte tokens: left alone
    assert byte_level_tokenizer_fix({**tokenizer, "pre_tokenizer": {"type": "Metaspace"}}) is None
    assert byte_level_tokenizer_fix({**tokenizer, "model": {"type": "BPE", "byte_fallback": False}}) is None


def test_embedded_model_tokenizer_needs_the_fix():
    from conftest import SMOLLM2, require_smollm2

    require_smollm2()
    tokenizer = json.loads((SMOLLM2 / "tokenizer.json").read_text(encoding="utf-8"))
    assert byte_level_tokenizer_fix(tokenizer) is not None


def test_an_earlier_export_is_replaced_and_anything_else_refused(tmp_path):
    out = tmp_path / "export"
    assert export.previous_export_problem(out) is None
    out.mkdir()
    assert export.previous_export_problem(out) is None
    (out / "model-f16.gguf").write_bytes(b"x")
    assert "no export.json" in export.previous_export_problem(out)
    (out / export.EXPORT_MANIFEST).write_text(json.dumps({"files": {"model-f16.gguf": "0" * 64}}))
    assert export.previous_export_problem(out) is None
    (out / "notes.txt").write_text("mine")
    assert "notes.txt" in export.previous_export_problem(out)


def test_replace_folder_swaps_whole(tmp_path):
    out, staging = tmp_path / "export", tmp_path / ".staging"
    out.mkdir()
    (out / "old.gguf").write_text("old")
    staging.mkdir()
    (staging / "new.gguf").write_text("new")
    export.replace_folder(staging, out)
    assert sorted(path.name for path in out.iterdir()) == ["new.gguf"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["export"]


def write_config(tmp_path: Path, output_dir: Path) -> Path:
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"base_model": "models/x", "output_dir": str(output_dir), "datasets": []}))
    return config


def test_export_without_an_adapter_says_train_first(tmp_path):
    config = write_config(tmp_path, tmp_path / "adapter")
    with pytest.raises(export.ExportError, match=r"no trained adapter.*run `make train` first"):
        export.build(config, tmp_path / "export", tmp_path / "convert_hf_to_gguf.py")
    assert not (tmp_path / "export").exists()


def test_export_without_a_merged_model_says_merge_first(tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    config = write_config(tmp_path, adapter)
    with pytest.raises(export.ExportError, match=r"no merged model.*run `make merge` first"):
        export.build(config, tmp_path / "export", tmp_path / "convert_hf_to_gguf.py")


def test_export_cli_error_is_one_line(tmp_path):
    from conftest import run_module

    done = run_module("skilltune.export", "--config", write_config(tmp_path, tmp_path / "a"), "--out", tmp_path / "e")
    assert done.returncode != 0
    assert "--converter" in done.stderr  # required option named
    done = run_module(
        "skilltune.export",
        *("--config", write_config(tmp_path, tmp_path / "a"), "--out", tmp_path / "e", "--converter", tmp_path / "c"),
    )
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "run `make train` first" in done.stderr


def fake_sdist(path: Path, extra: dict[str, bytes] | None = None) -> Path:
    files = {
        converter_source.VENDORED + "convert_hf_to_gguf.py": b"print('converter')\n",
        converter_source.VENDORED + "conversion/__init__.py": b"",
        converter_source.VENDORED + "gguf-py/gguf/__init__.py": b"",
        converter_source.VENDORED + "ggml/src/big.c": b"not wanted",
        "llama_cpp_python-0.3.36/llama_cpp/llama.py": b"not wanted",
        **(extra or {}),
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_converter_comes_only_from_the_pinned_archive(tmp_path):
    archive = fake_sdist(tmp_path / converter_source.SDIST)
    with pytest.raises(converter_source.ConverterSourceError, match="sha256"):
        converter_source.extract_converter(archive, tmp_path / "converter")
    assert not (tmp_path / "converter").exists()


def test_converter_extracts_its_three_paths(tmp_path, monkeypatch):
    archive = fake_sdist(tmp_path / converter_source.SDIST)
    monkeypatch.setattr(converter_source, "SDIST_SHA256", hashlib.sha256(archive.read_bytes()).hexdigest())
    dest = tmp_path / "converter"
    script = converter_source.extract_converter(archive, dest)
    assert script == dest / "convert_hf_to_gguf.py" and script.read_text() == "print('converter')\n"
    found = sorted(str(path.relative_to(dest)) for path in dest.rglob("*") if path.is_file())
    assert found == ["SOURCE", "conversion/__init__.py", "convert_hf_to_gguf.py", "gguf-py/gguf/__init__.py"]
    # run again: an earlier extraction is replaced; a folder it did not write is refused
    converter_source.extract_converter(archive, dest)
    (tmp_path / "other").mkdir()
    with pytest.raises(converter_source.ConverterSourceError, match="not a converter folder"):
        converter_source.extract_converter(archive, tmp_path / "other")


def make(*arguments: str):
    import subprocess

    from conftest import REPO

    venv = REPO / ".venv"
    stamps = [f"-o{venv / '.skilltune-installed'}", f"-o{venv / '.skilltune-serve-installed'}"]
    return subprocess.run(
        ["make", "--no-print-directory", *stamps, *arguments], cwd=REPO, capture_output=True, text=True
    )


def test_make_export_and_serve_name_the_missing_step(tmp_path):
    config = write_config(tmp_path, tmp_path / "adapter")
    done = make("export", f"CONFIG={config}", f"EXPORT_DIR={tmp_path / 'export'}")
    assert done.returncode != 0 and "no trained adapter; run make train first" in done.stderr
    done = make("serve", f"EXPORT_DIR={tmp_path / 'export'}")
    assert done.returncode != 0 and "no export; run make export first" in done.stderr
    assert not (tmp_path / "export").exists()


def test_tools_style_data_gets_tools_json_only(tmp_path):
    from conftest import PACK

    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"style": "tools", "options": {}}))
    written = export.write_serving(PACK, tmp_path / "config.yml", tmp_path, "model-q8_0.gguf", manifest, REPO_ROOT)
    assert written == ["tools.json"] and sorted(path.name for path in tmp_path.iterdir()) == sorted(
        ["manifest.json", "tools.json"]
    )
    tools = json.loads((tmp_path / "tools.json").read_text())
    assert "weather" in {tool["function"]["name"] for tool in tools}
    manifest.write_text(json.dumps({"style": "python", "options": {}}))
    with pytest.raises(export.ExportError):  # python style goes through skilltune.serving (no config here)
        export.write_serving(PACK, tmp_path / "config.yml", tmp_path, "model-q8_0.gguf", manifest, REPO_ROOT)
