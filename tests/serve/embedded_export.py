"""One export of the embedded SmolLM2 for the serve tests, built once per test session.

The adapter is a real PEFT LoRA adapter with its B matrices at their initial zeros, so the merged
model is the base model's weights: the export path (template swap, llama.cpp's converter, the
quantizer, the serving files) runs as on a trained adapter, and the merged folder is made the way
`axolotl merge-lora` leaves it, with the *base* model's chat template, which the export must
replace. (The tiny test model cannot stand in: llama.cpp's converter only accepts BPE tokenizers
whose pre-tokenizer it recognises, and the tiny model's tokenizer is trained locally.)
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import PACK, REPO, SMOLLM2, require_smollm2, run_module

from skilltune.jsonio import read_jsonl

CONVERTER = REPO / ".venv" / "llama.cpp-converter" / "convert_hf_to_gguf.py"
TEMPLATE = REPO / "configs" / "templates" / "chatml_tools.jinja"


@dataclass(frozen=True)
class EmbeddedExport:
    root: Path
    config: Path
    merged: Path  # the merged model as merge-lora leaves it (the base model's template)
    export: Path
    test_records: list


def require_llama_cpp():
    """llama_cpp, or a skip saying how to install it (`make test` installs it, so CI runs these)."""
    return pytest.importorskip(
        "llama_cpp", reason="llama-cpp-python is not installed: `make install-serve` (make test installs it)"
    )


def write_identity_adapter(folder: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(SMOLLM2)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    get_peft_model(model, lora).save_pretrained(folder)  # lora_B starts at zero: merged == base


@functools.cache
def _build() -> EmbeddedExport:
    from skilltune.export import build

    root = Path(tempfile.mkdtemp(prefix="skilltune-serve-test-"))
    atexit.register(shutil.rmtree, root, True)
    data = root / "data"
    done = run_module("datagen", "skills", "--pack", PACK, "--out", data, "--n", "60", "--seed", "0")
    assert done.returncode == 0, done.stderr[-2000:]
    adapter = root / "adapter"
    write_identity_adapter(adapter)
    shutil.copytree(SMOLLM2, adapter / "merged")
    config = root / "config.yml"
    dataset = {"path": str(data / "train.jsonl"), "type": "chat_template", "field_messages": "messages"}
    config.write_text(
        yaml.safe_dump(
            {
                "base_model": str(SMOLLM2),
                "chat_template": "jinja",
                "chat_template_jinja": str(TEMPLATE),
                "datasets": [dataset],
                "output_dir": str(adapter),
            }
        )
    )
    out = root / "export"
    build(config, out, CONVERTER, ("q8_0",), root=REPO)
    return EmbeddedExport(root, config, adapter / "merged", out, list(read_jsonl(data / "test.jsonl", "record")))


def embedded_export() -> EmbeddedExport:
    """The shared export; skips without the embedded model or llama-cpp-python."""
    require_smollm2()
    require_llama_cpp()
    assert CONVERTER.is_file(), f"{CONVERTER} missing: `make install-serve` fetches llama.cpp's converter"
    return _build()
