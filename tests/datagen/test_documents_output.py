"""The files `datagen documents` writes (datagen/documents_output.py): pairs split by chunk into train
and val, qa.csv, qa.json and the manifest, replaced whole."""

import random
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from command_runs import DOCUMENTS_SECRET, OUTPUT_FILES, run_documents, write_tree
from openai_server import ScriptedOpenAIServer, documents_reply

from datagen.cli import cli
from datagen.documents_output import assign_splits
from skilltune.jsonio import read_json, read_jsonl, sha256_of


@pytest.fixture
def server():
    with ScriptedOpenAIServer(default="reply", reply=documents_reply) as test_server:
        yield test_server


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


def make_corpus(root: Path, total_bytes: int, files: int = 16) -> int:
    """Random English-like prose, about `total_bytes` over `files` Markdown/text files; returns the size."""
    rng = random.Random(42)
    words = (
        "the kettle garden ferry budget guest plot water key window morning rule app export warranty "
        "limescale river bench compost shed lounge season member committee harbour lamp door"
    ).split()
    written = 0
    for number in range(files):
        paragraphs, size = [f"# Document {number}\n"], 0
        while size < total_bytes // files:
            sentences = [
                " ".join(rng.choice(words) for _ in range(rng.randint(6, 14))).capitalize() + "."
                for _ in range(rng.randint(3, 6))
            ]
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
    args = (
        "--chunk-size",
        "4000",
        "--step-size",
        "3600",
        "--questions-per-chunk",
        "2",
        "--concurrency",
        "16",
        "--val-fraction",
        "0.1",
        "--seed",
        "3",
    )
    started = time.monotonic()
    result = run_documents(server, root, out, *args, cache=cache)
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
    again = run_documents(server, root, out, *args, cache=cache)
    assert again.exit_code == 0, again.output
    assert server.total == 0
    assert f"0 requests, {len(chunks) * 3} cache hits" in again.stdout
    assert {name: (out / name).read_bytes() for name in OUTPUT_FILES} == before
    assert DOCUMENTS_SECRET.encode() not in b"".join(path.read_bytes() for path in [*out.iterdir(), *cache.iterdir()])


def test_an_existing_output_survives_a_failed_run(server, tmp_path):
    root = write_tree(tmp_path / "docs", {"a.md": "The pool opens in May."})
    out = tmp_path / "out"
    assert run_documents(server, root, out, "--questions-per-chunk", "1").exit_code == 0
    before = (out / "qa.json").read_bytes()
    (root / "b.md").write_text("A new file, so a new request.")
    with ScriptedOpenAIServer(default="500") as failing:
        assert run_documents(failing, root, out, "--questions-per-chunk", "1").exit_code == 1
    assert (out / "qa.json").read_bytes() == before
