"""llama.cpp's own HF -> GGUF converter, from a pinned source: the llama-cpp-python sdist.

    python -m skilltune.converter_source --dest .venv/llama.cpp-converter

Why this source: the serving package (llama-cpp-python, the `serve` extra) is built from the same
sdist, which vendors one llama.cpp commit under vendor/llama.cpp: its `convert_hf_to_gguf.py`, the
`conversion/` package that script imports, and its `gguf-py`. Taking all three from that archive
means the GGUF files are written by exactly the llama.cpp that later loads them. The PyPI `gguf`
package (0.19.0, a dependency of transformers' GGUF support) carries the same version number but
older code than the vendored gguf-py; the converter puts its own gguf-py first on sys.path (unless
NO_LOCAL_GGUF is set, which we never set), so the pair always matches.

The archive is fetched with pip (the registry's ordinary client) and checked against the sha256
PyPI lists for it; only those three paths (and llama.cpp's LICENSE) are extracted, as plain files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import click

LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.36"
SDIST = "llama_cpp_python-0.3.36.tar.gz"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"  # as PyPI lists it
VENDORED = "llama_cpp_python-0.3.36/vendor/llama.cpp/"
WANTED = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/", "LICENSE")
CONVERTER = "convert_hf_to_gguf.py"


class ConverterSourceError(RuntimeError):
    """The converter cannot be fetched or checked; str() is one line."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_sdist(folder: Path) -> Path:
    """The pinned sdist in `folder`, through pip (its cache makes a second fetch cheap)."""
    command = [sys.executable, "-m", "pip", "download", LLAMA_CPP_PYTHON]
    command += ["--no-binary", ":all:", "--no-deps", "--quiet", "-d", str(folder)]
    done = subprocess.run(command, capture_output=True, text=True)
    archive = folder / SDIST
    if done.returncode != 0 or not archive.is_file():
        tail = " ".join((done.stderr or done.stdout).split())[-300:]
        raise ConverterSourceError(f"pip could not download the {LLAMA_CPP_PYTHON} sdist: {tail}")
    return archive


def extract_converter(archive: Path, dest: Path) -> Path:
    """The converter's files from `archive` into `dest`, replaced whole; returns the script's path."""
    found = sha256_of(archive)
    if found != SDIST_SHA256:
        raise ConverterSourceError(f"{archive}: sha256 {found}, expected {SDIST_SHA256} (a different archive)")
    if dest.exists() and not (dest / "SOURCE").is_file():
        raise ConverterSourceError(f"{dest}: exists and is not a converter folder this wrote; give another --dest")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.new-"))
    try:
        _extract(archive, staging)
        (staging / "SOURCE").write_text(f"{LLAMA_CPP_PYTHON} sdist {SDIST} sha256 {SDIST_SHA256}\n", encoding="utf-8")
        if dest.exists():  # an earlier extraction of this tool (SOURCE checked above)
            shutil.rmtree(dest)
        os.replace(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest / CONVERTER


def _extract(archive: Path, dest: Path) -> None:
    with tarfile.open(archive, "r:gz") as tar:
        members = []
        for member in tar.getmembers():
            relative = member.name.removeprefix(VENDORED)
            if member.name.startswith(VENDORED) and relative.startswith(WANTED) and (member.isfile() or member.isdir()):
                member.name = relative
                members.append(member)
        # the "data" filter refuses absolute paths, links out of dest and device files
        tar.extractall(dest, members=members, filter="data")
    if not (dest / CONVERTER).is_file() or not (dest / "conversion").is_dir() or not (dest / "gguf-py").is_dir():
        raise ConverterSourceError(f"{archive}: no {VENDORED}{CONVERTER}, conversion/ and gguf-py/ in it")


def fetch_converter(dest: Path, archive: Path | None = None) -> Path:
    """Download (unless `archive` is given), check and extract; returns the converter script."""
    if archive is not None:
        return extract_converter(archive, dest)
    with tempfile.TemporaryDirectory(prefix="skilltune-sdist-") as folder:
        return extract_converter(download_sdist(Path(folder)), dest)


@click.command()
@click.option("--dest", type=click.Path(path_type=Path), required=True, help="Folder for the converter's files.")
@click.option(
    "--archive",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help=f"A local {SDIST} instead of downloading it (checked the same way).",
)
def main(dest: Path, archive: Path | None) -> None:
    """Fetch llama.cpp's convert_hf_to_gguf.py, conversion/ and gguf-py from the pinned sdist."""
    try:
        script = fetch_converter(dest, archive)
    except (ConverterSourceError, OSError, tarfile.TarError) as err:
        raise SystemExit(f"error: {err}") from None
    click.echo(f"converter: {script} ({LLAMA_CPP_PYTHON}, sha256 checked)")


if __name__ == "__main__":
    main()
