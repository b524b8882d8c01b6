"""skilltune/appendlog.py: an append-only JSONL file that is read back whole before it grows, and
cut only by a torn last line (the end-to-end resume runs are in tests/datagen/test_llm.py)."""

import json

import pytest

from skilltune.appendlog import AppendLog, jsonl_line
from skilltune.jsonio import DataError

PAIR = {"skill": "weather", "user": "rain in Oslo", "call": 'weather(location="Oslo")', "source": "llm"}
PAIR_LINE = jsonl_line(PAIR).encode()
REJECT_LINE = b'{"skill": "weather", "candidate": null, "reason": "empty answer"}\n'


def log_of(path, schema="pair"):
    """(the log, the warnings it gave)."""
    warnings = []
    return AppendLog(path, schema, warnings.append), warnings


def test_lines_are_appended_whole_and_read_back(tmp_path):
    path = tmp_path / "sub" / "pairs.jsonl"
    log, warnings = log_of(path)
    assert log.load() == [] and not path.exists()  # opened on the first append only
    log.append(PAIR)
    log.append({**PAIR, "user": "snow in Oslo"})
    log.close()
    assert path.read_bytes() == PAIR_LINE + jsonl_line({**PAIR, "user": "snow in Oslo"}).encode()
    assert [row["user"] for row in log_of(path)[0].load()] == ["rain in Oslo", "snow in Oslo"] and not warnings


def test_an_invalid_line_is_never_appended(tmp_path):
    log, _ = log_of(tmp_path / "pairs.jsonl")
    with pytest.raises(DataError, match="refusing to append an invalid line"):
        log.append({"skill": "weather"})
    assert not (tmp_path / "pairs.jsonl").exists()


def test_a_torn_last_line_is_cut_by_repair_with_a_warning(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(PAIR_LINE + b'{"skill": "wea')
    log, warnings = log_of(path)
    assert log.load() == [PAIR]
    assert path.read_bytes() == PAIR_LINE + b'{"skill": "wea'  # load only reads
    log.repair()
    assert path.read_bytes() == PAIR_LINE
    assert warnings == [
        f'{path}:2: dropped a torn last line (14 bytes, no newline, not a whole pair line): {{"skill": "wea'
    ]


def test_a_torn_line_ending_inside_a_character_is_dropped(tmp_path):
    path = tmp_path / "pairs.jsonl"
    tail = '{"skill": "weather", "user": "Z\u00fc'.encode()[:-1]  # half of the ü
    path.write_bytes(PAIR_LINE + tail)
    log, warnings = log_of(path)
    assert log.load() == [PAIR]
    log.append({**PAIR, "user": "fog"})  # the first append repairs a log that was not repaired yet
    log.close()
    assert path.read_bytes() == PAIR_LINE + jsonl_line({**PAIR, "user": "fog"}).encode()
    assert len(warnings) == 1 and warnings[0].startswith(f"{path}:2: dropped a torn last line ({len(tail)} bytes,")


def test_a_valid_last_line_without_its_newline_is_kept_and_ended(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(PAIR_LINE + PAIR_LINE.rstrip(b"\n"))
    log, warnings = log_of(path)
    assert log.load() == [PAIR, PAIR]
    log.repair()
    assert path.read_bytes() == PAIR_LINE + PAIR_LINE.rstrip(b"\n")  # nothing to cut
    log.append(PAIR)
    log.close()
    assert path.read_bytes() == PAIR_LINE * 3 and not warnings


@pytest.mark.parametrize("schema, valid", [("pair", PAIR_LINE), ("reject", REJECT_LINE)])
@pytest.mark.parametrize(
    "content, message",
    [
        (b"hello world", ":1: not JSON"),  # one line of text, no newline: was cut to 0 bytes
        (b"[1, 2]\n", ":1: not a "),
        (b"VALID" + b'{"skill": "caf\xe9"}\n', ":2: not UTF-8"),
        (b"VALIDnot json either", ":2: not JSON"),  # no newline, but not a torn line of ours
        (b'VALID{"skill": "weather"}', ":2: not a "),  # whole JSON without a newline: not torn
        (b'{"skill": "weath', ":1: not JSON"),  # nothing valid before it: the file may not be ours
    ],
)
def test_a_file_that_is_not_this_jsonl_is_an_error_and_left_untouched(tmp_path, schema, valid, content, message):
    path = tmp_path / "mine.txt"
    content = content.replace(b"VALID", valid)
    path.write_bytes(content)
    with pytest.raises(DataError) as raised:
        log_of(path, schema)[0].load()
    assert str(raised.value).startswith(f"{path}{message}")
    assert path.read_bytes() == content


def test_a_folder_is_not_a_log(tmp_path):
    with pytest.raises(DataError, match="is a folder, not a JSONL file"):
        log_of(tmp_path)[0].load()


def test_jsonl_line_keeps_unicode_as_it_is():
    assert jsonl_line({"user": "Zürich"}) == json.dumps({"user": "Zürich"}, ensure_ascii=False) + "\n"
    assert "ü" in jsonl_line({"user": "Zürich"})
