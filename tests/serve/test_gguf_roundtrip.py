"""The export of the embedded model round-trips: what llama.cpp loads from the GGUF is what
training used (template, prompt text, token ids), and its greedy answers are the merged model's."""

from __future__ import annotations

import json

import pytest
from embedded_export import TEMPLATE, embedded_export

from skilltune.converter_source import sha256_of
from skilltune.export import EXPORT_MANIFEST

EXPECTED = {
    "Modelfile",
    "export.json",
    "grammar.gbnf",
    "merged",
    "model-f16.gguf",
    "model-q8_0.gguf",
    "tools.json",
}


@pytest.fixture(scope="module")
def exported():
    return embedded_export()


@pytest.fixture(scope="module")
def training_tokenizer(exported):
    from skilltune.local_model import load_model

    _, tokenizer = load_model(exported.export / "merged", None, False, TEMPLATE.read_text(encoding="utf-8"))
    return tokenizer


def prompt_of(record: dict) -> list[dict]:
    return record["messages"][:-1]


def test_export_folder_holds_every_file_and_lists_it(exported):
    out = exported.export
    assert {path.name for path in out.iterdir()} == EXPECTED
    manifest = json.loads((out / EXPORT_MANIFEST).read_text())
    for name in ("grammar.gbnf", "tools.json", "Modelfile", "merged/chat_template.jinja"):
        assert manifest["files"][name] == sha256_of(out / name)
    listed = {name for name in manifest["files"]}
    assert listed == {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != EXPORT_MANIFEST}
    assert manifest["style"] == "python" and manifest["served_gguf"] == "model-q8_0.gguf"
    assert manifest["system"] == exported.test_records[0]["messages"][0]["content"]
    assert "FROM ./model-q8_0.gguf" in (out / "Modelfile").read_text()


def test_merged_model_carries_the_training_template_not_the_base_one(exported):
    template = TEMPLATE.read_text(encoding="utf-8")
    assert (exported.merged / "chat_template.jinja").read_text() != template  # as merge-lora left it
    assert (exported.export / "merged" / "chat_template.jinja").read_text() == template


def test_gguf_prompt_and_tokens_are_the_training_ones(exported, training_tokenizer):
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    llama = Llama(str(exported.export / "model-f16.gguf"), vocab_only=True, verbose=False)
    template = llama.metadata["tokenizer.chat_template"]
    assert template == TEMPLATE.read_text(encoding="utf-8")
    assert llama.metadata["tokenizer.ggml.model"] == "gpt2"  # byte-level BPE, as the tokenizer is
    formatter = Jinja2ChatFormatter(template, "<|im_end|>", "<|im_start|>")
    tools = json.loads((exported.export / "tools.json").read_text())
    for record in exported.test_records:
        for record_tools in (None, tools):  # the python-style prompt, and one listing the tools
            trained = training_tokenizer.apply_chat_template(
                prompt_of(record), tools=record_tools, add_generation_prompt=True, tokenize=False
            )
            served = formatter(messages=prompt_of(record), tools=record_tools).prompt
            assert served == trained
            ids = training_tokenizer(trained, add_special_tokens=False)["input_ids"]
            assert llama.tokenize(served.encode(), add_bos=False, special=True) == ids, trained


def test_greedy_answers_match_the_merged_model(exported):
    from llama_cpp import Llama

    from eval.predict import TransformersBackend
    from skilltune.serve_chat import template_handler

    records = exported.test_records[:6]
    merged = TransformersBackend(
        exported.export / "merged", chat_template=TEMPLATE.read_text(encoding="utf-8"), max_new_tokens=16
    ).generate(records)
    llama = Llama(str(exported.export / "model-f16.gguf"), n_ctx=512, verbose=False)
    handler = template_handler(llama)
    served = [
        handler(llama=llama, messages=prompt_of(record), temperature=0, repeat_penalty=1.0, max_tokens=16)["choices"][
            0
        ]["message"]["content"]
        for record in records
    ]
    # the same tokens; only a trailing space differs in how each library detokenizes a cut-off answer
    assert [text.strip() for text in served] == [text.strip() for text in merged]
    quantized = Llama(str(exported.export / "model-q8_0.gguf"), n_ctx=512, verbose=False)
    answer = template_handler(quantized)(llama=quantized, messages=prompt_of(records[0]), temperature=0, max_tokens=8)
    assert answer["choices"][0]["message"]["content"]
