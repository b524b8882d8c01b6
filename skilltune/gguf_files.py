"""A transformers model folder -> GGUF files, with llama.cpp's own tools only.

    convert(model_dir, out, converter)   f16 GGUF: llama.cpp's convert_hf_to_gguf.py (see
                                         skilltune/converter_source.py for where it comes from)
    quantize(source, out, "q8_0")        llama.cpp's quantizer through llama-cpp-python's low-level
                                         API (llama_model_quantize), the code the llama-quantize
                                         binary runs, so no second llama.cpp build is needed

The converter runs as its own process: it imports its vendored gguf-py ahead of the installed one,
which must not leak into this process.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# the quantizations offered, as llama.cpp's llama_ftype names them (llama.h)
QUANTIZATIONS = {"q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M"}


class GGUFError(RuntimeError):
    """A conversion or quantization failed; str() is one line."""


def _tail(text: str, chars: int = 400) -> str:
    return " ".join(text.split())[-chars:]


def byte_level_tokenizer_fix(tokenizer: dict) -> dict | None:
    """tokenizer.json with byte_fallback off, when it is byte-level BPE that claims byte fallback; else None.

    The embedded SmolLM2's tokenizer.json comes out of transformers' GGUF loader (scripts/
    prepare_smollm2.py) as byte-level BPE with `byte_fallback: true`. llama.cpp's converter reads
    byte_fallback as "a SentencePiece-style Llama vocabulary" and writes tokenizer.ggml.model
    "llama", whose tokenizer then crashes on the first byte it looks up (std::out_of_range in
    llama_vocab::byte_to_token). With byte-level pre-tokenization every byte is in the vocabulary,
    so the fallback never fires: turning it off changes no token and sends the converter down its
    GPT-2 BPE path (it recognises SmolLM's pre-tokenizer there)."""
    model, pre = tokenizer.get("model") or {}, tokenizer.get("pre_tokenizer") or {}
    if model.get("type") != "BPE" or not model.get("byte_fallback") or pre.get("type") != "ByteLevel":
        return None
    return {**tokenizer, "model": {**model, "byte_fallback": False}}


def conversion_view(model_dir: Path, view: Path) -> Path:
    """`model_dir` as the converter should read it: links to its files, and a fixed tokenizer.json
    where byte_level_tokenizer_fix applies (the model folder itself is left as trained)."""
    tokenizer_path = model_dir / "tokenizer.json"
    if not tokenizer_path.is_file():
        return model_dir
    fixed = byte_level_tokenizer_fix(json.loads(tokenizer_path.read_text(encoding="utf-8")))
    if fixed is None:
        return model_dir
    view.mkdir()
    for path in model_dir.iterdir():
        if path.name != "tokenizer.json":
            (view / path.name).symlink_to(path.resolve())
    (view / "tokenizer.json").write_text(json.dumps(fixed, ensure_ascii=False), encoding="utf-8")
    return view


def convert(model_dir: Path, out: Path, converter: Path, outtype: str = "f16") -> Path:
    """`model_dir` (config.json, safetensors, tokenizer, chat template) as one GGUF file at `out`."""
    if not converter.is_file():
        raise GGUFError(f"{converter}: no llama.cpp converter; `make export` fetches it (skilltune.converter_source)")
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.view-") as scratch:
        return _convert(conversion_view(model_dir, Path(scratch) / "model"), out, converter, outtype)


def _convert(model_dir: Path, out: Path, converter: Path, outtype: str) -> Path:
    command = [sys.executable, str(converter), str(model_dir), "--outtype", outtype, "--outfile", str(out)]
    # without NO_LOCAL_GGUF the converter imports its vendored gguf-py, not the installed PyPI one
    # (converter_source.py says why); offline: all it reads is in model_dir, it must not reach the hub
    env = {key: value for key, value in os.environ.items() if key != "NO_LOCAL_GGUF"}
    env["HF_HUB_OFFLINE"] = "1"
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0 or not out.is_file():
        raise GGUFError(f"convert_hf_to_gguf.py failed on {model_dir}: {_tail(done.stderr or done.stdout)}")
    return out


def quantize(source: Path, out: Path, kind: str, threads: int = 0) -> Path:
    """`source` (an f16 or f32 GGUF) quantized to `kind` (QUANTIZATIONS) at `out`."""
    if kind not in QUANTIZATIONS:
        raise GGUFError(f"unknown quantization {kind!r}; expected one of {', '.join(QUANTIZATIONS)}")
    llama_cpp = import_llama_cpp()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANTIZATIONS[kind])
    params.nthread = threads  # 0: llama.cpp uses every core
    # llama.cpp prints a line per tensor (and, for q4_k_m on narrow models, a fallback warning per
    # tensor) straight to stderr: kept in a file, shown only when the quantization fails
    with tempfile.TemporaryFile(mode="w+b") as log, _stderr_to(log):
        status = llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), params)
        log.seek(0)
        printed = log.read().decode("utf-8", errors="replace")
    if status != 0 or not out.is_file():
        raise GGUFError(f"llama_model_quantize({source} -> {kind}) returned {status}: {_tail(printed)}")
    return out


@contextlib.contextmanager
def _stderr_to(stream):
    """File descriptor 2 (where C code writes) sent to `stream` while the block runs."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(stream.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_llama_cpp():
    """llama_cpp, or a one-line GGUFError saying how to install it."""
    try:
        import llama_cpp
    except ImportError:
        raise GGUFError(
            "llama-cpp-python is not installed: `make export` installs it, or "
            "CMAKE_ARGS=\"-DGGML_NATIVE=OFF\" pip install 'skilltune[serve]'"
        ) from None
    return llama_cpp
