"""The report splicing of scripts/gpu_report.py, and scripts/gpu_check.sh with make, python's
stand-in build and nvidia-smi replaced by recorders (no GPU, no training)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import gpu_report  # noqa: E402

ROW = {
    "device": "NVIDIA H200",
    "steps": 19,
    "tokens_per_second": 12345.6,
    "seconds_per_step": 1.234,
    "peak_memory_allocated_gib": 10.04,
    "peak_memory_reserved_gib": 12.5,
    "mfu": 0.4321,
}
BEFORE = "# Benchmarks\r\n\r\nWritten by make bench.\r\n\r\n## Training\r\n\r\n| a | b |\r\n|---|---|\r\n\r\n"
AFTER = "## Later\n\nkept as it is\n### with a subsection\n"


def test_the_section_is_replaced_and_the_rest_of_the_file_stays_byte_identical(tmp_path):
    benchmarks = tmp_path / "BENCHMARKS.md"
    old = f"{gpu_report.HEADING}\n\nold text\n\n| old | table |\n### old subsection\n\n"
    benchmarks.write_bytes((BEFORE + old + AFTER).encode())
    files = []
    for name, mfu in [("mistral", 0.4321), ("qwen2.5", None)]:
        path = tmp_path / "runs" / f"{name}-gpucheck" / "adapter" / "throughput.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({**ROW, "mfu": mfu}))
        files.append(str(path))
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gpu_report.py"), "--benchmarks", str(benchmarks), *files],
        check=True,
        capture_output=True,
    )
    data = benchmarks.read_bytes()
    assert data.startswith(BEFORE.encode()) and data.endswith(b"\n" + AFTER.encode())
    new = data[len(BEFORE) : -len(AFTER)].decode()
    assert new.startswith(gpu_report.HEADING + "\n") and "old" not in new
    assert "| mistral | NVIDIA H200 | 12,346 | 1.23 | 10.0 | 12.5 | 0.432 |" in new
    assert "| qwen2.5 | NVIDIA H200 | 12,346 | 1.23 | 10.0 | 12.5 | n/a |" in new
    assert not list(tmp_path.glob(".BENCHMARKS.md.*"))


def test_splicing_twice_is_splicing_once():
    old = gpu_report.section([("llama3", ROW)], gpu_report.datetime.date(2025, 1, 1))
    section = gpu_report.section([("mistral", ROW)], gpu_report.datetime.date(2026, 1, 2))
    once = gpu_report.splice(BEFORE + old + "\n" + AFTER, section)
    assert once == BEFORE + section + "\n" + AFTER
    assert gpu_report.splice(once, section) == once


def test_a_missing_section_is_appended_after_the_unchanged_file():
    section = gpu_report.section([("llama3", ROW)], gpu_report.datetime.date(2026, 1, 2))
    assert gpu_report.splice(AFTER, section) == AFTER + "\n" + section
    assert gpu_report.splice("no newline", section) == "no newline\n\n" + section
    assert gpu_report.splice("", section) == section


# scripts/gpu_check.sh

CHECKED = ["mistral", "llama3", "qwen2.5"]


def test_the_dry_run_prints_the_commands_without_a_gpu(tmp_path):
    before = sorted(p.name for p in (REPO / "runs").glob("*-gpucheck")) if (REPO / "runs").exists() else []
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu_check.sh"), "--dry-run"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": _fake_bin_path(nvidia_smi_rc=None, folder=tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    for name in CHECKED:
        assert f" - configs/{name}.yml runs/{name}-gpucheck skilltune.throughput.ThroughputLog" in done.stdout
        assert f"MODEL={name}-gpucheck" in done.stdout
    assert done.stdout.count(" STANDIN_SIZE=real ") == 3 and done.stdout.count(" CPU=0 ") == 3
    assert "skilltune.throughput.ThroughputLog" in done.stdout
    # each 15 GB stand-in is deleted after its run
    assert "rm -rf /tmp/skilltune-hub/models--NousResearch--Meta-Llama-3.1-8B-Instruct\n" in done.stdout
    assert (sorted(p.name for p in (REPO / "runs").glob("*-gpucheck")) if (REPO / "runs").exists() else []) == before


def test_without_a_gpu_it_says_so_in_one_line(tmp_path):
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu_check.sh")],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": _fake_bin_path(nvidia_smi_rc=9, folder=tmp_path)},
    )
    assert done.returncode == 1
    assert done.stdout == "" and len(done.stderr.splitlines()) == 1 and "nvidia-smi" in done.stderr


def _fake_bin_path(nvidia_smi_rc: int | None, folder: Path) -> str:
    """PATH with a fake nvidia-smi exiting `nvidia_smi_rc` in front (None: one that must not be called)."""
    fake = folder / "bin" / "nvidia-smi"
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_text(
        f"#!/bin/sh\nexit {nvidia_smi_rc}\n"
        if nvidia_smi_rc is not None
        else "#!/bin/sh\necho 'nvidia-smi called' >&2\nexit 99\n"
    )
    fake.chmod(0o755)
    return f"{fake.parent}:{os.environ['PATH']}"


FAKE_MAKE = """#!/bin/bash
echo "make $*" >> "$LOG"
[[ " $* " == *" train "* ]] || exit 0
for arg; do case $arg in CONFIG=*) config=${arg#CONFIG=} ;; MODEL=*) model=${arg#MODEL=} ;; esac; done
[[ $model != "$FAIL" ]] || exit 2
out=$("$REAL_PY" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["output_dir"])' "$config")
mkdir -p "$out" && cp "$ROW_JSON" "$out/throughput.json"
"""
FAKE_PY = """#!/bin/bash
if [[ "$*" == "-c import flash_attn" ]]; then echo "flash_attn checked" >> "$LOG"; exit 0; fi
exec "$REAL_PY" "$@"
"""


def test_the_check_runs_each_config_with_the_plugin_added_and_reports_it(tmp_path):
    import yaml

    root = tmp_path / "repo"  # a copy of the repo's pieces the script uses: it works from its own root
    (root / "scripts").mkdir(parents=True)
    for script in ["gpu_check.sh", "gpu_report.py"]:
        shutil.copy(REPO / "scripts" / script, root / "scripts" / script)
    shutil.copytree(REPO / "configs", root / "configs")
    (root / "BENCHMARKS.md").write_text("# Benchmarks\n")
    (root / ".venv" / "bin").mkdir(parents=True)
    bin_path = _fake_bin_path(nvidia_smi_rc=0, folder=tmp_path)
    for path, text in [(root / ".venv" / "bin" / "python", FAKE_PY), (tmp_path / "bin" / "make", FAKE_MAKE)]:
        path.write_text(text)
        path.chmod(0o755)
    (tmp_path / "row.json").write_text(json.dumps(ROW))
    log = tmp_path / "log"
    env = {
        **os.environ,
        "PATH": bin_path,
        "LOG": str(log),
        "REAL_PY": sys.executable,
        "FAIL": "llama3-gpucheck",
        "ROW_JSON": str(tmp_path / "row.json"),
        "CACHE": str(tmp_path / "hub"),
    }
    done = subprocess.run(
        ["bash", str(root / "scripts" / "gpu_check.sh")], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert done.returncode == 1, done.stderr  # llama3's training "failed"
    calls = log.read_text().splitlines()
    assert calls[:2] == ["make install", "flash_attn checked"]
    for name in CHECKED:
        hub = tmp_path / "hub"
        train_call = next(call for call in calls if f"MODEL={name}-gpucheck" in call)
        assert f"CONFIG=runs/{name}-gpucheck/config.yml" in train_call and "CPU=0" in train_call
        # the Makefile's model step builds the real-size stand-in in the check's cache
        assert train_call.startswith("make train ") and " STANDIN=1 STANDIN_SIZE=real " in train_call
        assert f"STANDIN_CACHE={hub}" in train_call
        copy = yaml.safe_load((root / "runs" / f"{name}-gpucheck" / "config.yml").read_text())
        original = yaml.safe_load((root / "configs" / f"{name}.yml").read_text())
        assert copy["plugins"] == original["plugins"] + ["skilltune.throughput.ThroughputLog"]
        assert copy["output_dir"] == f"runs/{name}-gpucheck/adapter"
        assert copy["datasets"][0]["path"] == f"runs/{name}-gpucheck/data/train.jsonl"
        changed = {"plugins", "output_dir", "dataset_prepared_path", "wandb_name", "datasets", "test_datasets"}
        assert {key: copy[key] for key in copy.keys() - changed} == {
            key: original[key] for key in original.keys() - changed
        }
    lines = done.stdout.splitlines()
    assert any(line.startswith("  mistral: 12,346 tokens/s, 1.23 s/step over 19 steps") for line in lines)
    assert any(
        line.startswith("  llama3: no runs/llama3-gpucheck/adapter/throughput.json; make train FAILED")
        for line in lines
    )
    assert lines[-1].startswith("gpu_check: 3 configs in ") and lines[-1].endswith("; failed: llama3")
    benchmarks = (root / "BENCHMARKS.md").read_text()
    assert benchmarks.startswith("# Benchmarks\n\n" + gpu_report.HEADING)
    assert "| mistral |" in benchmarks and "| qwen2.5 |" in benchmarks and "| llama3 |" not in benchmarks
