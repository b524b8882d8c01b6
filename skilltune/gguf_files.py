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

import os
import subprocess
import sys
from pathlib import Path

# the quantizations offered, as llama.cpp's llama_ftype names them (llama.h)
QUANTIZATIONS = {"q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M"}


class GGUFError(RuntimeError):
    """A conversion or quantization failed; str() is one line."""


def _tail(text: str, chars: int = 400) -> str:
    return " ".join(text.split())[-chars:]


def convert(model_dir: Path, out: Path, converter: Path, outtype: str = "f16") -> Path:
    """`model_dir` (config.json, safetensors, tokenizer, chat template) as one GGUF file at `out`."""
    if not converter.is_file():
        raise GGUFError(f"{converter}: no llama.cpp converter; `make export` fetches it (skilltune.converter_source)")
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
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), params)
    if status != 0 or not out.is_file():
        raise GGUFError(f"llama_model_quantize({source} -> {kind}) returned {status}")
    return out


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
