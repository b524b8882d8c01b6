"""End-to-end: `make train` in a copy of the repository, the path a user takes.

Each test copies the project's files (not data/, runs/ or models/) into a temporary folder and runs
`make train` there with the repository's .venv (`-o` keeps make from reinstalling it):
  (a) a tiny random-weight Llama built locally: the whole pipeline in about a minute;
  (b) each GPU config unchanged (QLoRA, packing) on its family's stand-in with the CPU switch:
      data, pre-flight, preprocess, 4-bit training, eval on the 4-bit base, `make merge`;
  (c) the real embedded SmolLM2-135M, short schedule: the adapter must beat the base model on
      held-out exact match by at least 30 points.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from conftest import REPO

from skilltune.jsonio import read_json, read_jsonl

VENV = REPO / ".venv"
STAMP = VENV / ".skilltune-installed"

pytestmark = pytest.mark.e2e


def copy_project(destination: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for relative in listed:
        source = REPO / relative
        if source.is_file():
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    # the converted SmolLM2 folder is a cache worth sharing (35 s to rebuild); the tiny model is built fresh
    if (REPO / "models" / "SmolLM2-135M-Instruct" / "skilltune_source.json").exists():
        (destination / "models").mkdir()
        (destination / "models" / "SmolLM2-135M-Instruct").symlink_to(REPO / "models" / "SmolLM2-135M-Instruct")
    return destination


def make(project: Path, *arguments: str, timeout: int, env: dict | None = None) -> subprocess.CompletedProcess:
    if not STAMP.exists():
        pytest.fail(f"{STAMP} missing: run the tests through `make test`, which installs .venv")
    return subprocess.run(
        ["make", "-o", str(STAMP), f"VENV={VENV}", *arguments],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def adapter_tensors(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(folder / "adapter_model.safetensors")


def files_containing(root: Path, secret: str) -> list[Path]:
    needle = secret.encode()
    return [
        path for path in root.rglob("*") if path.is_file() and not path.is_symlink() and needle in path.read_bytes()
    ]


def check_report(project: Path, model: str) -> dict:
    run_dir = project / "runs" / model
    report = read_json(run_dir / "report.json", "report")
    test_records = list(read_jsonl(project / "data" / "skills" / "test.jsonl", "record"))
    assert report["models"] == ["base", "tuned"]
    assert (report["base"]["decoding"], report["tuned"]["decoding"]) == ("free", "grounded")  # make eval's default
    for label in ("base", "tuned"):
        predictions = list(read_jsonl(run_dir / f"predictions-{label}.jsonl", "prediction"))
        expected = min(BASE_LIMIT, len(test_records)) if label == "base" else len(test_records)
        assert len(predictions) == expected == report[label]["n"]
        assert [prediction["index"] for prediction in predictions] == list(range(expected))
        assert 0.0 <= report[label]["exact_match"] <= report[label]["name_accuracy"] <= 1.0
        noisy = list(read_jsonl(run_dir / f"predictions-{label}-noisy.jsonl", "prediction"))
        assert len(noisy) == report[label]["noisy"]["n"] > 0
    assert (run_dir / "report.md").read_text().startswith("# Function-calling eval")
    return report


# the base model is scored on the first BASE_LIMIT records of each split (the Makefile's default)
BASE_LIMIT = int(re.search(r"^BASE_LIMIT \?= (\d+)$", (REPO / "Makefile").read_text(), re.M)[1])
TINY = ("MODEL=tiny-llama", "CONFIG=tests/fixtures/tiny-llama.yml")


def test_make_train_tiny_llama(tmp_path):
    """The whole pipeline on the tiny model, then what a run must also guarantee: W&B logs offline
    into the run folder without writing the key, the same seed gives the same adapter bit for bit,
    and `make merge` gives a model that answers exactly as base + adapter."""
    project = copy_project(tmp_path / "skilltune")
    secret = f"wandb-test-key-{uuid.uuid4().hex}"  # made now, so no file holds it unless the run wrote it
    env = {**os.environ, "WANDB_API_KEY": secret}
    env.pop("WANDB_MODE", None)  # the Makefile's default (offline) is what is tested
    result = make(project, "train", *TINY, "N=300", timeout=900, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    adapter = project / "runs" / "tiny-llama" / "adapter"
    assert (adapter / "adapter_model.safetensors").exists()
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 8
    check_report(project, "tiny-llama")
    assert "exact match per skill:" in result.stdout

    # W&B: offline run folders beside the adapter, training's and the eval's (it resumes the training
    # run by id, so `wandb sync` uploads one run), and no key anywhere
    folders = sorted((project / "runs" / "tiny-llama" / "wandb").glob("offline-run-*"))
    logs = [sorted(folder.glob("run-*.wandb")) for folder in folders]
    assert files_containing(project, secret) == []
    assert len(folders) == 2 and all(len(found) == 1 for found in logs), logs
    assert logs[0][0].name == logs[1][0].name  # one run id
    assert "W&B: eval scores of base, tuned logged into run" in result.stdout
    assert files_containing(project, secret) == []

    # the same config and seed again, into another folder: bit-identical LoRA tensors
    again = project / "runs" / "tiny-llama" / "adapter-again"
    # the thread setting make train ran with (the Makefile exports nproc's count): left unset, torch's CPU
    # kernels sum in another order here even at the same thread count, and every tensor differs in its
    # last bits (seen from pytest run outside make)
    threads = os.environ.get("OMP_NUM_THREADS", str(len(os.sched_getaffinity(0))))
    rerun = subprocess.run(
        [str(VENV / "bin" / "axolotl"), "train", TINY[1].split("=")[1], f"--output-dir={again}"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
        env={**env, "PATH": f"{VENV / 'bin'}:{env['PATH']}", "WANDB_MODE": "disabled", "OMP_NUM_THREADS": threads},
    )
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    first, second = adapter_tensors(adapter), adapter_tensors(again)
    assert sorted(first) == sorted(second) and len(first) == 28  # A and B of 7 projections in 2 layers
    assert [name for name in first if not torch_equal(first[name], second[name])] == []

    # make merge: the merged model's greedy answers are base + adapter's, token for token
    merged = make(project, "merge", *TINY, timeout=600, env=env)
    assert merged.returncode == 0, merged.stdout[-3000:] + merged.stderr[-3000:]
    assert_merged_matches_adapter(
        project / "models" / "tiny-llama",
        adapter,
        adapter / "merged",
        list(read_jsonl(project / "data" / "skills" / "test.jsonl", "record"))[:16],
    )


def torch_equal(a, b) -> bool:
    import torch

    return a.dtype == b.dtype and torch.equal(a, b)


def assert_merged_matches_adapter(base: Path, adapter: Path, merged: Path, records: list[dict]) -> None:
    """Same greedy answers, and the same next-token logits on every prompt (to float32 rounding),
    while the adapter does move the logits away from the base model's (so the check has teeth)."""
    import torch

    from eval.predict import attach_adapter, generate, load_model, prompt_messages

    model, tokenizer = load_model(base)
    prompts = [
        tokenizer.apply_chat_template(prompt_messages(record), add_generation_prompt=True, tokenize=False)
        for record in records
    ]
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)

    def last_logits(any_model):
        with torch.no_grad():
            return any_model(**batch).logits[:, -1, :]

    base_logits = last_logits(model)
    tuned = attach_adapter(model, adapter)
    tuned_logits, with_adapter = last_logits(tuned), generate(tuned, tokenizer, records, max_new_tokens=24)
    merged_model, _ = load_model(merged)
    merged_logits, from_merged = (
        last_logits(merged_model),
        generate(merged_model, tokenizer, records, max_new_tokens=24),
    )
    assert (tuned_logits - base_logits).abs().max() > 1e-3
    assert torch.allclose(merged_logits, tuned_logits, atol=1e-4), (merged_logits - tuned_logits).abs().max()
    assert from_merged == with_adapter


GPU_CONFIGS = ["llama2", "mistral", "zephyr", "llama3", "qwen2.5"]


@pytest.fixture(scope="module")
def standin_cache(tmp_path_factory):
    """One hub cache for the five runs: each stand-in is built once (by the first `make` that needs it)."""
    return tmp_path_factory.mktemp("hub")


@pytest.mark.parametrize("name", GPU_CONFIGS)
def test_make_train_gpu_config_on_its_stand_in_with_qlora_then_merge(tmp_path, standin_cache, name):
    from skilltune.standins import FAMILIES, standin_folder

    project = copy_project(tmp_path / "skilltune")
    # TEST_FRACTION=0.1: a 30-record test split, under BASE_LIMIT, so base and tuned score the same records
    options = ("STANDIN=1", f"STANDIN_CACHE={standin_cache}", "CPU=1", "TEST_FRACTION=0.1")
    result = make(project, "train", f"MODEL={name}", *options, "N=300", "AXOLOTL_ARGS=--max-steps=3", timeout=1200)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert "prepare_model_for_kbit_training" in log  # Axolotl's QLoRA path: the base was loaded in 4 bits
    assert "none dropped" in result.stdout  # the pre-flight check ran before preprocessing
    report = check_report(project, name)
    assert report["tuned"]["n"] == report["base"]["n"] > 0
    adapter = project / "runs" / name / "adapter"
    settings = json.loads((adapter / "adapter_config.json").read_text())
    assert settings["base_model_name_or_path"] == FAMILIES[name].repo_id and settings["r"] == 16

    merged = make(project, "merge", f"MODEL={name}", *options, timeout=600)
    assert merged.returncode == 0, (merged.stdout + merged.stderr)[-4000:]
    assert_merge_folded_the_adapter_in(standin_folder(name, standin_cache), adapter / "merged")


def assert_merge_folded_the_adapter_in(base: Path, merged: Path) -> None:
    """The merged folder is a plain model of the same class whose LoRA-targeted weights moved, and
    only those (norms and embeddings of the base stay as they were, unless the config trains them)."""
    from safetensors.torch import load_file

    base_config, merged_config = (json.loads((folder / "config.json").read_text()) for folder in (base, merged))
    assert merged_config["architectures"] == base_config["architectures"]
    before, after = load_file(base / "model.safetensors"), load_file(merged / "model.safetensors")
    projections = [key for key in before if key.endswith("q_proj.weight") or key.endswith("down_proj.weight")]
    assert projections and all(not torch_equal(before[key].float(), after[key].float()) for key in projections)
    norms = [key for key in before if "norm" in key]
    assert norms and all(torch_equal(before[key].float(), after[key].float()) for key in norms)


def test_make_train_smollm2_beats_base_by_30_points(tmp_path):
    project = copy_project(tmp_path / "skilltune")
    # a 100-record test split keeps the suite's time; make train's default 300 changes no code path
    result = make(project, "train", "MODEL=smollm2", "TEST_FRACTION=0.1", "AXOLOTL_ARGS=--max-steps=40", timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = check_report(project, "smollm2")
    gain = report["tuned"]["exact_match"] - report["base"]["exact_match"]
    assert gain >= 0.30, f"tuned {report['tuned']['exact_match']:.3f} vs base {report['base']['exact_match']:.3f}"
