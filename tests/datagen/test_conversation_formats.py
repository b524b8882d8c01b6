"""datagen/conversation_formats.py: the log, openai and sharegpt readers, folders, format detection."""

import json

import pytest
from conversation_files import QA, write_log, write_openai

from datagen.conversation_formats import iter_json_array, read_conversations
from skilltune.jsonio import DataError


def test_openai_format_with_titles(tmp_path):
    path = write_openai(tmp_path / "export.jsonl", [QA, [("system", "Be brief."), *QA]], ["Eggs", "Eggs again"])
    conversations = read_conversations((path,))
    assert [(c.name, c.line) for c in conversations] == [("Eggs", 1), ("Eggs again", 2)]
    assert conversations[1].messages[0] == {"role": "system", "content": "Be brief."}


def test_sharegpt_format_maps_roles_and_knows_entry_lines(tmp_path):
    path = tmp_path / "share.json"
    path.write_text(
        "[\n"
        '  {"conversations": [{"from": "human", "value": "hi there"}, {"from": "gpt", "value": "Hello."}]},\n'
        '  {"title": "Poem",\n'
        '   "conversations": [{"from": "system", "value": "Rhyme."}, {"from": "human", "value": "A poem?"},\n'
        '                     {"from": "gpt", "value": "Roses are red."}]}\n'
        "]\n"
    )
    conversations = read_conversations((path,))
    assert [(c.name, c.line) for c in conversations] == [("", 2), ("Poem", 3)]
    assert [m["role"] for m in conversations[1].messages] == ["system", "user", "assistant"]


def test_a_folder_is_read_file_by_file_and_each_format_detected(tmp_path):
    write_log(tmp_path, "a-log", QA)
    write_openai(tmp_path / "b-openai.jsonl", [QA, QA])
    (tmp_path / "c-share.json").write_text(json.dumps([{"conversations": [{"from": "human", "value": "x"}]}]))
    (tmp_path / "notes.txt").write_text("not read")
    conversations = read_conversations((tmp_path,))
    assert [(c.path.name, c.line) for c in conversations] == [
        ("a-log.jsonl", 1),
        ("b-openai.jsonl", 1),
        ("b-openai.jsonl", 2),
        ("c-share.json", 1),
    ]


def test_json_array_reader_names_lines(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[1,\n 2,\n\n {"a":\n  3}\n]\n')
    assert list(iter_json_array(path)) == [(1, 1), (2, 2), (4, {"a": 3})]
    path.write_text("[1,\n 2\n 3]\n")
    with pytest.raises(DataError, match=r"a\.json:3: not JSON: expected ',' or '\]'"):
        list(iter_json_array(path))
    path.write_text('{"conversations": []}')
    with pytest.raises(DataError, match=r"a\.json:1: expected a JSON list"):
        list(iter_json_array(path))
    path.write_text("[]\n[]")
    with pytest.raises(DataError, match=r"a\.json:2: not JSON: extra data"):
        list(iter_json_array(path))
