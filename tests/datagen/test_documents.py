"""`python -m datagen documents`: loader, chunker, question parsing, and whole runs against the real
local OpenAI-compatible test server (tests/openai_server.py, `reply` mode) and the local SmolLM2."""

import hashlib
import json
import random
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from openai_server import ScriptedOpenAIServer, chunk_of, documents_reply

from datagen.cli import cli
from datagen.documents import (
    DEFAULT_GLOBS,
    QUESTIONS_SCHEMA,
    UNKNOWN_ANSWER,
    Chunk,
    Document,
    assign_splits,
    answer_body,
    chunk_document,
    clean_answer,
    documents_command,
    find_files,
    load_documents,
    load_tokenizer,
    parse_questions,
    question_body,
    windows,
)
from skilltune.jsonio import read_json, read_jsonl, sha256_of
from conftest import REPO, SMOLLM2, needs_smollm2

SECRET = "sk-test-documents-never-on-disk-77"
# straight to 127.0.0.1 whatever proxy the environment names; OPENAI_BASE_URL must not leak in
LOCAL_ENV = {"OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": None, "NO_PROXY": "127.0.0.1,localhost",
             "no_proxy": "127.0.0.1,localhost"}
OUTPUT_FILES = {"qa.csv", "qa.json", "train.jsonl", "val.jsonl", "manifest.json"}


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


@pytest.fixture
def server():
    with ScriptedOpenAIServer(default="reply", reply=documents_reply) as test_server:
        yield test_server


def run(server, directory: Path, out: Path, *args: str, cache: Path | None = None):
    options = [str(directory), "--out", str(out), "--cache", str(cache or out.parent / "cache"),
               "--max-retries", "0", "--timeout", "10", *args]
    if server is not None:
        options += ["--base-url", server.url, "--model", "test-model"]
    return CliRunner().invoke(documents_command, options, env=LOCAL_ENV)


def error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    return lines[-1] if lines else ""


# --- loading


def test_default_globs_find_md_and_txt_recursively_in_sorted_order(tmp_path):
    root = write_tree(tmp_path / "docs", {
        "b.txt": "b", "a.md": "a", "sub/c.md": "c", "sub/deep/d.txt": "d", "notes.rst": "no", "image.png": b"\x89PNG",
    })
    names = [path.relative_to(root).as_posix() for path in find_files(root, DEFAULT_GLOBS)]
    assert names == ["a.md", "b.txt", "sub/c.md", "sub/deep/d.txt"]


def test_globs_and_excludes_pick_files_and_whole_folders(tmp_path):
    root = write_tree(tmp_path / "docs", {
        "a.md": "a", "drafts/x.md": "x", "drafts/old/y.md": "y", "sub/old/z.md": "z", "sub/keep.md": "k",
        "sub/CHANGES.md": "c", "notes.rst": "r",
    })

    def names(globs, excludes=()):
        return [path.relative_to(root).as_posix() for path in find_files(root, globs, excludes)]

    assert names(DEFAULT_GLOBS, ["drafts", "**/old"]) == ["a.md", "sub/CHANGES.md", "sub/keep.md"]
    assert names(DEFAULT_GLOBS, ["**/CHANGES.md", "drafts/**"]) == ["a.md", "sub/keep.md", "sub/old/z.md"]
    assert names(["*.rst", "sub/*.md"]) == ["notes.rst", "sub/CHANGES.md", "sub/keep.md"]


def test_unreadable_files_are_reported_and_skipped(tmp_path, monkeypatch):
    root = write_tree(tmp_path / "docs", {
        "good.md": "# Fine\nReadable text.\n",
        "binary.txt": b"PK\x03\x04\x00\x00zip bytes",
        "latin1.txt": "caf\u00e9 au lait".encode("latin-1"),
        "blank.md": "  \n\n",
        "locked.md": "secret",
        "bom.txt": "\ufeffText with a byte-order mark.\r\nSecond line.",
    })
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
    result = run(server, root, out, "--questions-per-chunk", "1")
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


@pytest.mark.parametrize("size, step, message", [
    (0, 0, "--chunk-size must be at least 1, got 0"),
    (10, 0, "--step-size must be at least 1, got 0"),
    (10, 11, "--step-size 11 is larger than --chunk-size 10"),
])
def test_bad_chunk_sizes_are_errors(size, step, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        windows(100, size, step)


def test_character_chunks_overlap_by_size_minus_step():
    document = Document("a.txt", "abcdefghij")
    chunks = chunk_document(document, 4, 3)
    # windows (0, 4) (3, 7) (6, 10): each chunk shares 1 letter with the next
    assert [(chunk.text, chunk.start, chunk.end) for chunk in chunks] == [("abcd", 0, 4), ("defg", 3, 7), ("ghij", 6, 10)]
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
        "one two three four", "three four five six", "five six seven eight", "seven eight nine ten",
    ]
    assert all(text[chunk.start:chunk.end].strip() == chunk.text for chunk in chunks)
    # without overlap: windows (0,4) (4,8) (8,10)
    assert [chunk.text for chunk in chunk_document(Document("n.txt", text), 4, 4, tokenizer)] == [
        "one two three four", "five six seven eight", "nine ten",
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
    result = run(server, examples, out, "--chunk-unit", "tokens", "--chunk-size", "120", "--step-size", "100",
                 "--tokenizer", str(SMOLLM2), "--questions-per-chunk", "1")
    assert result.exit_code == 0, result.output
    assert "longer than the specified maximum" not in result.stderr
    assert len(expected) > len(documents)  # every sample file is over 120 tokens
    assert [pair["chunk"] for pair in read_json(out / "qa.json", "qa")["pairs"]] == expected
    assert read_json(out / "manifest.json", "manifest")["options"]["chunk_unit"] == "tokens"


# --- requests and answers


def test_question_request_is_typed_json_and_answer_request_states_the_rule():
    chunk = Chunk("a.md", 0, 0, 20, "The ferry leaves at 6.")
    body = question_body(chunk, 3, model="m", seed=1, max_tokens=100)
    response_format = body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["strict"] is True
    assert response_format["json_schema"]["schema"] == QUESTIONS_SCHEMA
    assert QUESTIONS_SCHEMA["required"] == ["questions"] and QUESTIONS_SCHEMA["properties"]["questions"]["items"] == {"type": "string"}
    assert "The ferry leaves at 6." in body["messages"][-1]["content"] and "Write 3 different questions" in body["messages"][-1]["content"]
    answer = answer_body(chunk, "When does the ferry leave?", model="m", seed=1, max_tokens=100)
    assert "response_format" not in answer
    assert f"If the text does not contain the answer, reply exactly: {UNKNOWN_ANSWER}" in answer["messages"][-1]["content"]
    assert UNKNOWN_ANSWER == "I don't know."
    assert "a.md" not in json.dumps(body) + json.dumps(answer)  # the cache key does not depend on file names


def test_typed_questions_are_parsed_and_checked():
    parsed = parse_questions('{"questions": ["Where is it?", "When is it?"]}', 3)
    assert (parsed.questions, parsed.skipped, parsed.typed) == (["Where is it?", "When is it?"], 0, True)
    fenced = parse_questions('```json\n{"questions": ["Who wrote it?"]}\n```', 3)
    assert fenced.questions == ["Who wrote it?"] and fenced.typed
    bare = parse_questions('["What is A?", "What is B?"]', 3)
    assert bare.questions == ["What is A?", "What is B?"]
    # three asked for, five given, one a repeat (by normalized text): 3 kept, 2 skipped
    many = parse_questions(json.dumps({"questions": ["Q one?", "q ONE", "Q two?", "Q three?", "Q four?"]}), 3)
    assert many.questions == ["Q one?", "Q two?", "Q three?"] and many.skipped == 2


@pytest.mark.parametrize("garbage", [
    '{"questions": "What is it?"}',  # not an array
    '{"questions": ["ok?", 42]}',  # an item that is not a string
    '{"qs": ["What is it?"]}',  # wrong key
    '{"questions": ["What?"], "extra": 1}',  # additional property
    "42",
])
def test_json_that_is_not_the_typed_shape_is_skipped_and_counted(garbage):
    parsed = parse_questions(garbage, 3)
    assert parsed.questions == [] and parsed.skipped >= 1


def test_plain_text_questions_one_per_line_and_garbage_counted():
    text = "Here are three questions:\n1. What is the kettle's capacity?\n- How long is the warranty?\n\nThanks!\nQ3: Why descale?"
    parsed = parse_questions(text, 3)
    assert parsed.questions == ["What is the kettle's capacity?", "How long is the warranty?", "Why descale?"]
    assert parsed.skipped == 2 and not parsed.typed  # the opening line and "Thanks!"
    assert parse_questions("Sure! Here you go. Enjoy", 3).questions == []
    assert parse_questions("", 3).skipped == 0
    assert parse_questions("{not json at all?", 3).questions == ["{not json at all?"]  # a line ending in ?


def test_refusals_become_exactly_the_unknown_answer():
    for text in ("I don't know.", "i dont know", "  I do not know!  ", "I don\u2019t know."):
        assert clean_answer(text) == UNKNOWN_ANSWER
    assert clean_answer("I don't know the hours, but the text says 9 am.") == "I don't know the hours, but the text says 9 am."
    assert clean_answer("  Nine o'clock. \n") == "Nine o'clock."


def test_val_split_takes_whole_chunks():
    pairs = [{"chunk": f"d.md#{n // 3}", "question": f"q{n}"} for n in range(60)]  # 20 chunks, 3 pairs each
    assign_splits(pairs, 0.1, seed=5)
    val_chunks = {pair["chunk"] for pair in pairs if pair["split"] == "val"}
    train_chunks = {pair["chunk"] for pair in pairs if pair["split"] == "train"}
    assert len(val_chunks) == 2 and not val_chunks & train_chunks  # round(20 * 0.1) = 2 chunks, 6 pairs
    assert sum(pair["split"] == "val" for pair in pairs) == 6
    again = [dict(pair) for pair in pairs]
    assign_splits(again, 0.1, seed=5)
    assert [pair["split"] for pair in again] == [pair["split"] for pair in pairs]


# --- whole runs against the local server


def make_corpus(root: Path, total_bytes: int, files: int = 16) -> int:
    """Random English-like prose, about `total_bytes` over `files` Markdown/text files; returns the size."""
    rng = random.Random(42)
    words = ("the kettle garden ferry budget guest plot water key window morning rule app export warranty "
             "limescale river bench compost shed lounge season member committee harbour lamp door").split()
    written = 0
    for number in range(files):
        paragraphs, size = [f"# Document {number}\n"], 0
        while size < total_bytes // files:
            sentences = [" ".join(rng.choice(words) for _ in range(rng.randint(6, 14))).capitalize() + "."
                         for _ in range(rng.randint(3, 6))]
            paragraph = " ".join(sentences)
            paragraphs.append(paragraph)
            size += len(paragraph) + 2
        path = root / f"part{number // 4}" / f"doc{number:02}.{'md' if number % 2 else 'txt'}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
        written += path.stat().st_size
    return written


def test_one_megabyte_corpus_gives_valid_records_and_a_rerun_makes_no_requests(server, tmp_path):
    root = tmp_path / "corpus"
    size = make_corpus(root, 1_000_000)
    assert size >= 1_000_000
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = ("--chunk-size", "4000", "--step-size", "3600", "--questions-per-chunk", "2", "--concurrency", "16",
            "--val-fraction", "0.1", "--seed", "3")
    started = time.monotonic()
    result = run(server, root, out, *args, cache=cache)
    seconds = time.monotonic() - started
    assert result.exit_code == 0, result.output

    pairs = read_json(out / "qa.json", "qa")["pairs"]
    chunks = {pair["chunk"] for pair in pairs}
    # each of the 16 files of ~62.5 kB: windows of 4000 every 3600 characters
    assert 16 * 17 <= len(chunks) <= 16 * 19
    assert server.total == len(chunks) * 3  # one question request + 2 answer requests per chunk
    assert len(pairs) == 2 * len(chunks)
    assert len(list(cache.iterdir())) == server.total
    print(f"\n1 MB corpus: {size} bytes, {len(chunks)} chunks, {server.total} requests, {seconds:.1f} s")

    assert set(path.name for path in out.iterdir()) == OUTPUT_FILES
    manifest = read_json(out / "manifest.json", "manifest")
    assert manifest["generator"] == "documents" and manifest["style"] == "chat" and manifest["seed"] == 3
    train, val = list(read_jsonl(out / "train.jsonl", "record")), list(read_jsonl(out / "val.jsonl", "record"))
    assert manifest["counts"] == {"train": {"documents": len(train)}, "val": {"documents": len(val)}}
    assert len(train) + len(val) == len(pairs) and 0.05 < len(val) / len(pairs) < 0.15
    assert manifest["files"] == {name: sha256_of(out / name) for name in OUTPUT_FILES - {"manifest.json"}}
    record = train[0]
    assert [message["role"] for message in record["messages"]] == ["user", "assistant"]
    assert record["messages"][1]["content"].startswith("It says: ")
    # split by chunk: no chunk has pairs on both sides
    by_split = {split: {pair["chunk"] for pair in pairs if pair["split"] == split} for split in ("train", "val")}
    assert by_split["val"] and not by_split["train"] & by_split["val"]
    csv_lines = (out / "qa.csv").read_text().splitlines()
    assert csv_lines[0] == "split,source,chunk,question,answer" and len(csv_lines) == len(pairs) + 1

    validated = CliRunner().invoke(cli, ["validate", str(out / "train.jsonl"), str(out / "val.jsonl")])
    assert validated.exit_code == 0, validated.output
    assert f"{len(train)} records OK" in validated.output

    before = {name: (out / name).read_bytes() for name in OUTPUT_FILES}
    server.reset_counts()
    again = run(server, root, out, *args, cache=cache)
    assert again.exit_code == 0, again.output
    assert server.total == 0
    assert f"0 requests, {len(chunks) * 3} cache hits" in again.stdout
    assert {name: (out / name).read_bytes() for name in OUTPUT_FILES} == before
    assert SECRET.encode() not in b"".join(path.read_bytes() for path in [*out.iterdir(), *cache.iterdir()])


def test_unknown_answers_are_kept_exactly_or_dropped_on_request(server, tmp_path):
    root = write_tree(tmp_path / "docs", {"a.md": "UNANSWERABLE. The museum opens at ten.", "b.md": "The bus runs hourly."})
    out = tmp_path / "out"
    result = run(server, root, out, "--questions-per-chunk", "2", "--system", "Answer from the house documents.")
    assert result.exit_code == 0, result.output
    pairs = read_json(out / "qa.json", "qa")["pairs"]
    assert [pair["answer"] == UNKNOWN_ANSWER for pair in pairs] == [False, True, False, False]
    assert "1 answered \"I don't know.\", 0 dropped" in result.stdout
    records = list(read_jsonl(out / "train.jsonl", "record")) + list(read_jsonl(out / "val.jsonl", "record"))
    assert all(record["messages"][0] == {"role": "system", "content": "Answer from the house documents."} for record in records)

    dropped = run(server, root, tmp_path / "dropped", "--questions-per-chunk", "2", "--drop-unknown")
    assert dropped.exit_code == 0, dropped.output
    assert [pair["answer"] for pair in read_json(tmp_path / "dropped" / "qa.json", "qa")["pairs"]].count(UNKNOWN_ANSWER) == 0
    assert "1 answered \"I don't know.\", 1 dropped" in dropped.stdout


def test_garbage_question_answers_are_counted_and_their_chunks_skipped(server, tmp_path):
    root = write_tree(tmp_path / "docs", {"a.md": "GARBAGE here.", "b.md": "The bakery sells rye bread.", "c.md": "GARBAGE too."})
    out = tmp_path / "out"
    result = run(server, root, out, "--questions-per-chunk", "3")
    assert result.exit_code == 0, result.output
    assert "3 chunks, 6 requests" in result.stdout  # 3 question requests, 3 answers for b.md only
    assert "2 answers without a question" in result.stdout and "2 unusable items" in result.stdout
    assert {pair["source"] for pair in read_json(out / "qa.json", "qa")["pairs"]} == {"b.md"}


def test_an_endpoint_answering_500_fails_with_one_line_and_no_output(tmp_path):
    root = write_tree(tmp_path / "docs", {"a.md": "Some text.", "b.md": "More text."})
    out = tmp_path / "out"
    with ScriptedOpenAIServer(default="500") as failing:
        result = run(failing, root, out)
    assert result.exit_code == 1
    assert error_line(result).startswith("error: ") and "HTTP 500" in error_line(result)
    assert not out.exists()
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".out")] == []  # no staging left


def test_an_existing_output_survives_a_failed_run(server, tmp_path):
    root = write_tree(tmp_path / "docs", {"a.md": "The pool opens in May."})
    out = tmp_path / "out"
    assert run(server, root, out, "--questions-per-chunk", "1").exit_code == 0
    before = (out / "qa.json").read_bytes()
    (root / "b.md").write_text("A new file, so a new request.")
    with ScriptedOpenAIServer(default="500") as failing:
        assert run(failing, root, out, "--questions-per-chunk", "1").exit_code == 1
    assert (out / "qa.json").read_bytes() == before


def test_a_failed_run_resumes_from_the_cache(tmp_path):
    root = write_tree(tmp_path / "docs", {f"{name}.md": f"Document {name} says {name} twice." for name in "abcd"})
    out, cache = tmp_path / "out", tmp_path / "cache"
    # one at a time, answers before the next chunk's questions: a#q, a#answer, b#q succeed, b#answer gets 500
    with ScriptedOpenAIServer(modes=["reply"] * 3, default="500", reply=documents_reply) as failing:
        failed = run(failing, root, out, "--questions-per-chunk", "1", "--concurrency", "1", cache=cache)
        assert failed.exit_code == 1 and failing.counts == {"reply": 3, "500": 1}
    assert len(list(cache.iterdir())) == 3 and not out.exists()
    with ScriptedOpenAIServer(default="reply", reply=documents_reply) as healthy:
        resumed = run(healthy, root, out, "--questions-per-chunk", "1", "--concurrency", "1", cache=cache)
        assert resumed.exit_code == 0, resumed.output
        assert healthy.total == 5  # 8 planned requests, 3 already answered
    assert "4 chunks, 5 requests, 3 cache hits; 4 questions" in resumed.stdout


def test_an_unreachable_endpoint_is_one_error_line(tmp_path):
    root = write_tree(tmp_path / "docs", {"a.md": "Some text."})
    with ScriptedOpenAIServer() as closed:
        url = closed.url  # a port that was just in use and is now closed
    result = CliRunner().invoke(documents_command, [str(root), "--out", str(tmp_path / "out"), "--cache",
                                                    str(tmp_path / "cache"), "--base-url", url, "--model", "m",
                                                    "--max-retries", "0", "--timeout", "5"], env=LOCAL_ENV)
    assert result.exit_code == 1
    assert error_line(result).startswith(f"error: cannot reach {url}")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("make_args, message", [
    (lambda tmp: [str(tmp / "missing")], "no such folder"),
    (lambda tmp: [str(tmp / "docs"), "--glob", "*.rst"], "no readable files match *.rst"),
    (lambda tmp: [str(tmp / "docs"), "--exclude", "*.md"], "(excluding *.md)"),
    (lambda tmp: [str(tmp / "docs"), "--glob", "/etc/*.conf"], "--glob '/etc/*.conf': "),
    (lambda tmp: [str(tmp / "docs"), "--exclude", "../*"], "--exclude '../*': patterns must stay inside DIR"),
    (lambda tmp: [str(tmp / "docs"), "--chunk-size", "100", "--step-size", "200"],
     "--step-size 200 is larger than --chunk-size 100"),
    (lambda tmp: [str(tmp / "docs"), "--chunk-size", "0"], "--chunk-size must be at least 1"),
    (lambda tmp: [str(tmp / "docs"), "--base-url", "localhost:8000", "--model", "m"], "expected http://"),
    (lambda tmp: [str(tmp / "docs"), "--base-url", "http://127.0.0.1:9/v1"], "--model is required"),
    (lambda tmp: [str(tmp / "docs"), "--model", str(tmp / "nomodel")], "no local model there"),
    (lambda tmp: [str(tmp / "docs"), "--chunk-unit", "tokens", "--tokenizer", str(tmp)], "no tokenizer there"),
    (lambda tmp: [str(tmp / "docs"), "--chunk-unit", "words"], "Invalid value for '--chunk-unit'"),
])
def test_bad_input_is_one_error_line_and_exit_1(tmp_path, make_args, message):
    write_tree(tmp_path / "docs", {"a.md": "Text."})
    result = CliRunner().invoke(documents_command, [*make_args(tmp_path), "--out", str(tmp_path / "out"),
                                                    "--cache", str(tmp_path / "cache")], env=LOCAL_ENV)
    assert result.exit_code == 1, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert error_line(result).startswith("error: ") and message in error_line(result)
    assert not (tmp_path / "out").exists()


def test_the_cli_group_has_the_command_and_help_shows_an_example():
    result = CliRunner().invoke(cli, ["documents", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and "python -m datagen documents examples/documents" in result.output


# --- the offline default: the embedded SmolLM2


@needs_smollm2
def test_local_smollm2_backend_runs_offline_and_a_rerun_is_cached(tmp_path):
    root = write_tree(tmp_path / "docs", {"rules.txt": (
        "Check-out is by 11 am. Breakfast is served in the garden room from 7:30 to 10 am. "
        "Dogs are welcome in the two ground-floor rooms for a fee of 15 euros per night."
    )})
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = [str(root), "--out", str(out), "--cache", str(cache), "--questions-per-chunk", "1", "--max-tokens", "24"]
    env = {**LOCAL_ENV, "OPENAI_API_KEY": None}
    started = time.monotonic()
    result = CliRunner().invoke(documents_command, args, env=env)
    seconds = time.monotonic() - started
    assert result.exit_code == 0, result.output
    # greedy decoding is deterministic: one question (plain text, not JSON), then one answer
    assert "1 chunks, 2 requests, 0 cache hits; 1 questions" in result.stdout
    pairs = read_json(out / "qa.json", "qa")["pairs"]
    assert len(pairs) == 1 and pairs[0]["question"].endswith("?") and pairs[0]["answer"]
    assert read_json(out / "manifest.json", "manifest")["options"]["backend"] == "local"
    assert len(list(cache.iterdir())) == 2
    print(f"\nlocal SmolLM2, 1 chunk, 1 question: {seconds:.1f} s; {pairs[0]}")

    again = CliRunner().invoke(documents_command, args, env=env)
    assert again.exit_code == 0, again.output
    assert "0 requests, 2 cache hits" in again.stdout
