"""The output-folder rule (datagen/outputs.py): no command replaces or deletes what the user owns.

Each test runs the real command the way a user would and checks three things: exit 1, one
`error:` line naming the path, and every existing file byte-identical afterwards.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

from skilltune.jsonio import DataError
from skilltune.outputs import check_output_folder

PACK = REPO / "examples" / "skills"


def run(module: str, *args, cwd=REPO):
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` (hidden ones too) and its bytes."""
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def one_error_line(result, *fragments: str) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def pack(tmp_path):
    copy = tmp_path / "pack"
    shutil.copytree(PACK, copy)
    return copy


def test_skills_refuses_an_existing_file(tmp_path, pack):
    target = tmp_path / "notes.txt"
    target.write_text("my notes\n")
    one_error_line(run("datagen", "skills", "--pack", pack, "--out", target, "--n", 100), str(target), "is a file")
    assert target.read_text() == "my notes\n"


def test_skills_refuses_the_pack_folder_and_its_parent(tmp_path, pack):
    before = snapshot(tmp_path)
    for out in (pack, tmp_path):
        one_error_line(run("datagen", "skills", "--pack", pack, "--out", out, "--n", 100), "an input of this run")
    assert snapshot(tmp_path) == before


def test_documents_refuses_the_documents_folder(tmp_path):
    documents = tmp_path / "documents"
    shutil.copytree(REPO / "examples" / "documents", documents)
    before = snapshot(documents)
    result = run(
        "datagen",
        "documents",
        documents,
        "--out",
        documents,
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--model",
        "m",
        "--cache",
        tmp_path / "cache",
    )
    one_error_line(result, str(documents), "an input of this run")
    assert snapshot(documents) == before


def test_conversations_refuses_the_logs_folder(tmp_path):
    logs = tmp_path / "logs"
    shutil.copytree(REPO / "examples" / "conversations" / "logs", logs)
    before = snapshot(logs)
    one_error_line(run("datagen", "conversations", logs, "--out", logs), "an input of this run")
    assert snapshot(logs) == before


def test_skills_refuses_a_folder_it_did_not_write(tmp_path, pack):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("chapter 1\n")
    one_error_line(run("datagen", "skills", "--pack", pack, "--out", folder, "--n", 100), "thesis.tex")
    assert (folder / "thesis.tex").read_text() == "chapter 1\n"


def test_skills_rewrites_its_own_output_but_not_a_file_added_to_it(tmp_path, pack):
    out = tmp_path / "data"
    assert run("datagen", "skills", "--pack", pack, "--out", out, "--n", 100).returncode == 0
    second = run("datagen", "skills", "--pack", pack, "--out", out, "--n", 100, "--seed", 1)
    assert second.returncode == 0, second.stderr  # an earlier output is replaced whole
    (out / "lengths.png").write_bytes(b"\x89PNG user file")
    one_error_line(run("datagen", "skills", "--pack", pack, "--out", out, "--n", 100), "lengths.png")
    assert (out / "lengths.png").read_bytes() == b"\x89PNG user file"


@pytest.mark.parametrize("out", ["/", "."])
def test_root_and_working_folder_are_refused(tmp_path, pack, out):
    (tmp_path / "keep.txt").write_text("x")
    before = snapshot(tmp_path)
    one_error_line(run("datagen", "skills", "--pack", pack, "--out", out, "--n", 100, cwd=tmp_path))
    assert snapshot(tmp_path) == before


def test_an_unwritable_place_is_refused_before_any_work(tmp_path, pack):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_error_line(run("datagen", "skills", "--pack", pack, "--out", blocker / "sub", "--n", 100), "cannot write")
    # /proc refuses new folders even to root, which ignores permission bits
    one_error_line(
        run("datagen", "skills", "--pack", pack, "--out", "/proc/skilltune-test", "--n", 100), "cannot write"
    )


def test_a_staging_folder_left_by_kill_9_is_removed_by_the_next_run(tmp_path, pack):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "data"
    stale = tmp_path / f".data.new-{dead.pid}-abc123"
    stale.mkdir()
    (stale / "train.jsonl").write_bytes(b"x" * 1000)
    live = tmp_path / f".data.new-{os.getpid()}-def456"  # a running process's: left alone
    live.mkdir()
    assert run("datagen", "skills", "--pack", pack, "--out", out, "--n", 100).returncode == 0
    assert not stale.exists() and live.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(["pack", "data", live.name])


def test_sigterm_while_writing_leaves_the_old_output_and_no_temporary_folder(tmp_path, pack):
    out = tmp_path / "data"
    assert run("datagen", "skills", "--pack", pack, "--out", out, "--n", 100).returncode == 0
    before = snapshot(out)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "datagen",
            "skills",
            "--pack",
            str(pack),
            "--out",
            str(out),
            "--n",
            "20000",
            "--seed",
            "3",
        ],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not any(path.name.startswith(".data.new-") for path in tmp_path.iterdir()):
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before it began writing"
        time.sleep(0.005)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data", "pack"]
    assert snapshot(out) == before


def test_an_eval_folder_must_already_be_evals(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not a folder of eval's outputs: it holds notes.txt"):
        check_output_folder(folder, kind="eval")
    (folder / "report.json").write_text('{"my": "report"}')
    with pytest.raises(DataError, match="a report.json skilltune did not write"):
        check_output_folder(folder, kind="eval")
    (folder / "report.json").unlink()
    adapter = folder / "adapter"  # make's layout: runs/<model>/adapter, eval writes beside it
    adapter.mkdir()
    check_output_folder(folder, [adapter], kind="eval")
    with pytest.raises(DataError, match="an input of this run"):
        check_output_folder(adapter, [adapter], kind="eval")
    test = folder / "test.jsonl"
    test.write_text("{}\n")
    with pytest.raises(DataError, match="an input of this run"):
        check_output_folder(folder, [test, adapter], kind="eval")


def test_instructions_refuses_to_write_over_its_input(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    shutil.copy(REPO / "examples" / "instructions" / "pairs.jsonl", pairs)
    out = tmp_path / "data"
    assert run("datagen", "instructions", pairs, "--to", "chat", "--out", out).returncode == 0
    before = pairs.read_bytes()
    one_error_line(
        run("datagen", "instructions", out, "--to", "instructions", "--out", out / "train.jsonl"),
        "an input of this run",
    )
    assert pairs.read_bytes() == before


def test_openai_export_refuses_to_write_over_its_input(tmp_path, pack):
    out = tmp_path / "data"
    assert run("datagen", "skills", "--pack", pack, "--out", out, "--n", 100).returncode == 0
    before = snapshot(out)
    one_error_line(run("datagen", "openai-export", out, "--out", out / "train.jsonl"), "an input of this run")
    assert snapshot(out) == before


def test_manifest_json_must_list_the_files(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"not": "ours"}))
    with pytest.raises(DataError, match="manifest.json"):
        check_output_folder(folder)
