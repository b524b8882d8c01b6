import subprocess
import sys

import pytest
from conftest import REPO


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "tiny-llama"
    subprocess.run(
        [sys.executable, "scripts/make_tiny_model.py", "--out", str(out)], cwd=REPO, check=True, capture_output=True
    )
    return out


def test_stats_counts_tokens_and_saves_a_histogram(tmp_path, tiny_tokenizer):
    data = tmp_path / "data"
    subprocess.run(
        [sys.executable, "-m", "datagen", "skills", "--out", str(data), "--n", "200", "--no-system"],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    png = tmp_path / "lengths.png"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "datagen",
            "stats",
            str(data),
            "--tokenizer",
            str(tiny_tokenizer),
            "--sequence-len",
            "20",
            "--histogram",
            str(png),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["skill", "test", "test_noisy", "test_wording", "train", "val"]
    total = next(line for line in lines if line.startswith("total")).split()
    # 200 records: 10 skills x 20; val and test 2 each per skill; held-out wording comes on top
    assert int(total[1]) + int(total[4]) + int(total[5]) == 200
    assert int(total[3]) >= 200  # >= 20 test examples per skill
    train_line = next(line for line in lines if line.startswith("train: tokens"))
    assert "over sequence_len 20" in train_line
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_histogram_needs_a_tokenizer(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "datagen", "stats", str(tmp_path), "--histogram", "x.png"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "--histogram needs --tokenizer" in result.stderr
