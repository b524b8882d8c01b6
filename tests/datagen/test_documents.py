"""`python -m datagen documents`, its first two steps (datagen/documents.py): loading the files under DIR
and cutting them into chunks. (Questions and answers: test_documents_qa.py; the files written:
test_documents_output.py; options and failures: test_cli_documents.py.)"""

import re
from pathlib import Path

import pytest
from command_runs import run_documents, write_tree
from conftest import REPO, SMOLLM2, needs_smollm2
from openai_server import ScriptedOpenAIServer, documents_reply

from datagen.documents import (
    DEFAULT_GLOBS,
    Document,
    chunk_document,
    find_files,
    load_documents,
    load_tokenizer,
    windows,
)
from skilltune.jsonio import read_json


@pytest.fixture
def server():
    with ScriptedOpenAIServer(default="reply", reply=documents_reply) as test_server:
        yield test_server


# --- loading


def test_default_globs_find_md_and_txt_recursively_in_sorted_order(tmp_path):
    root = write_tree(
        tmp_path / "docs",
        {
            "b.txt": "b",
            "a.md": "a",
            "sub/c.md": "c",
            "sub/deep/d.txt": "d",
            "notes.rst": "no",
            "image.png": b"\x89PNG",
        },
    )
    names = [path.relative_to(root).as_posix() for path in find_files(root, DEFAULT_GLOBS)]
    assert names == ["a.md", "b.txt", "sub/c.md", "sub/deep/d.txt"]


def test_globs_and_excludes_pick_files_and_whole_folders(tmp_path):
    root = write_tree(
        tmp_path / "docs",
        {
            "a.md": "a",
            "drafts/x.md": "x",
            "drafts/old/y.md": "y",
            "sub/old/z.md": "z",
            "sub/keep.md": "k",
            "sub/CHANGES.md": "c",
            "notes.rst": "r",
        },
    )

    def names(globs, excludes=()):
        return [path.relative_to(root).as_posix() for path in find_files(root, globs, excludes)]

    assert names(DEFAULT_GLOBS, ["drafts", "**/old"]) == ["a.md", "sub/CHANGES.md", "sub/keep.md"]
    assert names(DEFAULT_GLOBS, ["**/CHANGES.md", "drafts/**"]) == ["a.md", "sub/keep.md", "sub/old/z.md"]
    assert names(["*.rst", "sub/*.md"]) == ["notes.rst", "sub/CHANGES.md", "sub/keep.md"]


def test_unreadable_files_are_reported_and_skipped(tmp_path, monkeypatch):
    root = write_tree(
        tmp_path / "docs",
        {
            "good.md": "# Fine\nReadable text.\n",
            "binary.txt": b"PK\x03\x04\x00\x00zip bytes",
            "latin1.txt": "caf\u00e9 au lait".encode("latin-1"),
            "blank.md": "  \n\n",
            "locked.md": "secret",
            "bom.txt": "\ufeffText with a byte-order mark.\r\nSecond line.",
        },
    )
    real_read_bytes = Path.read_bytes

    def read_bytes(path):  # the tests run as root, where chmod 000 does not stop a read
        if path.name == "locked.md":
            raise PermissionError(13, "Permission denied", str(path))
        return real_read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    documents, skipped = load_documents(root, DEFAULT_GLOBS)
    assert [document.path for document in documents] == ["bom.txt", "good.md"]
    assert documents[0].text == "Text with a byte-order mark.\nSecond line."
    assert dict(skipped) == {
        "binary.txt": "binary file (NUL bytes)",
        "blank.md": "empty",
        "latin1.txt": "not UTF-8 text (byte 3)",
        "locked.md": "Permission denied",
    }


def test_the_command_names_unreadable_files_on_stderr_and_goes_on(server, tmp_path):
    root = write_tree(tmp_path / "docs", {"good.md": "The lighthouse opens at nine.", "bad.txt": b"\xff\xfe\x00\x01"})
    out = tmp_path / "out"
    result = run_documents(server, root, out, "--questions-per-chunk", "1")
    assert result.exit_code == 0, result.output
    assert f"warning: skipped {root / 'bad.txt'}: binary file (NUL bytes)" in result.stderr
    assert "1 files (1 skipped), 1 chunks, 2 requests" in result.stdout
    assert [pair["source"] for pair in read_json(out / "qa.json", "qa")["pairs"]] == ["good.md"]


def test_the_example_documents_all_load():
    documents, skipped = load_documents(REPO / "examples" / "documents", DEFAULT_GLOBS)
    assert skipped == []
    assert 3 <= len(documents) <= 5
    assert all(200 < len(document.text) < 3000 for document in documents)


# --- chunking


def test_windows_arithmetic():
    # 10 units, size 4, step 3: starts 0, 3, 6; the window at 6 reaches the end (6+4 = 10), so it
    # is the last; neighbours share 4 - 3 = 1 unit
    assert windows(10, 4, 3) == [(0, 4), (3, 7), (6, 10)]
    # step = size: no overlap; 10 = 4 + 4 + 2, a short last window
    assert windows(10, 4, 4) == [(0, 4), (4, 8), (8, 10)]
    # 11 units, size 5, step 2: starts 0, 2, 4, 6; 6 + 5 = 11 reaches the end -> 4 windows (not 6)
    assert windows(11, 5, 2) == [(0, 5), (2, 7), (4, 9), (6, 11)]
    # fewer units than one window: one short window; none at all for an empty text
    assert windows(3, 8, 8) == [(0, 3)]
    assert windows(0, 8, 8) == []
    # 1000 units, size 200, step 150: starts 0, 150, ..., 750 (750 + 200 = 950 < 1000), 900 -> 7 windows
    spans = windows(1000, 200, 150)
    assert len(spans) == 7 and spans[-1] == (900, 1000)
    assert all(b[0] - a[0] == 150 and a[1] - b[0] == 50 for a, b in zip(spans, spans[1:-1]))


@pytest.mark.parametrize(
    "size, step, message",
    [
        (0, 0, "--chunk-size must be at least 1, got 0"),
        (10, 0, "--step-size must be at least 1, got 0"),
        (10, 11, "--step-size 11 is larger than --chunk-size 10"),
    ],
)
def test_bad_chunk_sizes_are_errors(size, step, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        windows(100, size, step)


def test_character_chunks_overlap_by_size_minus_step():
    document = Document("a.txt", "abcdefghij")
    chunks = chunk_document(document, 4, 3)
    # windows (0, 4) (3, 7) (6, 10): each chunk shares 1 letter with the next
    assert [(chunk.text, chunk.start, chunk.end) for chunk in chunks] == [
        ("abcd", 0, 4),
        ("defg", 3, 7),
        ("ghij", 6, 10),
    ]
    assert [chunk.id for chunk in chunks] == ["a.txt#0", "a.txt#1", "a.txt#2"]


def test_whitespace_only_chunks_are_dropped_and_chunks_are_trimmed():
    # windows of 5: "ab   " -> "ab", "     " -> dropped, "  cd" -> "cd"; numbering has no gaps
    chunks = chunk_document(Document("w.txt", "ab        cd"), 5, 5)
    assert [(chunk.index, chunk.text, chunk.start) for chunk in chunks] == [(0, "ab", 0), (1, "cd", 10)]


@needs_smollm2
def test_token_chunks_are_cut_at_token_boundaries_with_overlap():
    tokenizer = load_tokenizer(SMOLLM2)
    text = "one two three four five six seven eight nine ten"
    # SmolLM2's BPE makes one token per word here ("one", " two", ... " ten": 10 tokens), so
    # size 4 / step 2 gives token windows (0,4) (2,6) (4,8) (6,10): 4 chunks sharing 2 words each
    chunks = chunk_document(Document("n.txt", text), 4, 2, tokenizer)
    assert [chunk.text for chunk in chunks] == [
        "one two three four",
        "three four five six",
        "five six seven eight",
        "seven eight nine ten",
    ]
    assert all(text[chunk.start : chunk.end].strip() == chunk.text for chunk in chunks)
    # without overlap: windows (0,4) (4,8) (8,10)
    assert [chunk.text for chunk in chunk_document(Document("n.txt", text), 4, 4, tokenizer)] == [
        "one two three four",
        "five six seven eight",
        "nine ten",
    ]
    long_text = (REPO / "examples" / "documents" / "kettle-manual.md").read_text()
    for chunk in chunk_document(Document("k.md", long_text), 64, 48, tokenizer):
        assert len(tokenizer(chunk.text, add_special_tokens=False)["input_ids"]) <= 64


@needs_smollm2
def test_the_command_chunks_by_tokens(server, tmp_path):
    examples = REPO / "examples" / "documents"
    tokenizer = load_tokenizer(SMOLLM2)
    documents, _ = load_documents(examples, DEFAULT_GLOBS)
    expected = [chunk.id for document in documents for chunk in chunk_document(document, 120, 100, tokenizer)]
    out = tmp_path / "out"
    result = run_documents(
        server,
        examples,
        out,
        "--chunk-unit",
        "tokens",
        "--chunk-size",
        "120",
        "--step-size",
        "100",
        "--tokenizer",
        str(SMOLLM2),
        "--questions-per-chunk",
        "1",
    )
    assert result.exit_code == 0, result.output
    assert "longer than the specified maximum" not in result.stderr
    assert len(expected) > len(documents)  # every sample file is over 120 tokens
    assert [pair["chunk"] for pair in read_json(out / "qa.json", "qa")["pairs"]] == expected
    assert read_json(out / "manifest.json", "manifest")["options"]["chunk_unit"] == "tokens"
