"""skilltune/jsonio.py: every bad byte is a `file:line` DataError, and what it writes reads back."""

import json
import os
import subprocess
import sys

import pytest

from skilltune.jsonio import (
    DataError,
    dumps,
    iter_json_lines,
    loads,
    read_json,
    read_text,
    remove_stale_siblings,
    write_json,
    write_jsonl,
    write_text,
)


def lines_of(path):
    return list(iter_json_lines(path))


def test_invalid_utf8_names_the_line_and_column(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": "caf\xe9"}\n')
    with pytest.raises(DataError) as caught:
        lines_of(path)
    assert str(caught.value) == f"{path}:2: not UTF-8 text: byte 0xe9 at column 11"


def test_utf16_is_named_as_such(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes('{"a": 1}\n'.encode("utf-16"))
    with pytest.raises(DataError, match=r":1: is UTF-16 text; save it as UTF-8"):
        lines_of(path)
    with pytest.raises(DataError, match="UTF-16"):
        read_text(path)


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n{"a": 2}\n')
    assert lines_of(path) == [(1, {"a": 1}), (2, {"a": 2})]
    json_path = tmp_path / "m.json"
    json_path.write_bytes(b'\xef\xbb\xbf{"a": 1}')
    assert read_text(json_path) == '{"a": 1}'


@pytest.mark.parametrize("text", ['{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}', '{"a": 1e999}'])
def test_nan_and_infinity_are_not_json(tmp_path, text):
    path = tmp_path / "a.jsonl"
    path.write_text(text + "\n")
    with pytest.raises(DataError, match=rf"{path}:1: not JSON: .*(not a JSON value|out of range)"):
        lines_of(path)


def test_huge_integers_and_deep_nesting_are_errors_not_tracebacks(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": ' + "9" * 5000 + "}\n" + "[" * 100_000 + "\n")
    with pytest.raises(DataError, match=":1: not JSON: .*digits"):
        lines_of(path)
    path.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(DataError, match=":1: not JSON: nested too deeply"):
        lines_of(path)


def test_folders_symlink_loops_and_missing_files_are_one_line(tmp_path):
    loop = tmp_path / "loop.jsonl"
    loop.symlink_to(loop)
    for path in (tmp_path, loop, tmp_path / "missing.jsonl"):
        with pytest.raises(DataError, match=f"^{path}: "):
            lines_of(path)
        with pytest.raises(DataError, match=f"^{path}: "):
            read_text(path)


def test_read_json_names_the_line_of_a_syntax_error(tmp_path):
    path = tmp_path / "report.json"
    path.write_text('{\n  "a": 1,\n  "b": \n}\n')
    with pytest.raises(DataError, match=rf"^{path}:4: not JSON"):
        read_json(path, "report")


def test_lone_surrogates_are_written_escaped_and_read_back(tmp_path):
    party = json.loads('"party \\ud83c"')  # half an emoji, as a model can emit
    row = {
        "index": 0,
        "model": "tuned",
        "split": "test",
        "skill": "other",
        "user": "hi",
        "gold": "other()",
        "output": party,
    }
    jsonl = tmp_path / "predictions.jsonl"
    write_jsonl(jsonl, [row], "prediction")
    assert b'"output": "party \\ud83c"}\n' in jsonl.read_bytes()  # valid UTF-8, valid JSON
    jsonl.read_bytes().decode("utf-8")
    assert lines_of(jsonl) == [(1, row)]
    text = tmp_path / "report.md"
    write_text(text, f"| {party} |\n")
    assert text.read_text(encoding="utf-8") == "| party \\ud83c |\n"


def record(value) -> dict:
    """A tools-style record whose tool schema holds `value` (a place the record schema leaves open)."""
    return {
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "other()"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"default": value}}}],
    }


def test_writers_refuse_nan_naming_the_row(tmp_path):
    path = tmp_path / "rows.jsonl"
    with pytest.raises(DataError, match=rf"{path}:2: refusing to write NaN"):
        write_jsonl(path, [record(1), record(float("nan"))], "record")
    with pytest.raises(DataError, match=rf"{path}: refusing to write NaN"):
        write_json(path, record(float("inf")), "record")
    assert not path.exists()
    with pytest.raises(ValueError, match="NaN"):
        dumps({"a": float("inf")})
    assert loads('{"a": 1.5}') == {"a": 1.5}


def test_a_failed_write_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("old\n")
    with pytest.raises(DataError):
        write_jsonl(path, [record(1), record(float("nan"))], "record")
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["rows.jsonl"]


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    target = tmp_path / "train.jsonl"
    stale = tmp_path / f".train.jsonl.tmp-{dead.pid}-x1"
    mine = tmp_path / f".train.jsonl.tmp-{os.getpid()}-x2"
    other = tmp_path / f".val.jsonl.tmp-{dead.pid}-x3"  # another file's: not this writer's business
    for path in (stale, mine, other):
        path.write_text("partial")
    remove_stale_siblings(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, other.name])
