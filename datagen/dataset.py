"""The one dataset writer: `<split>.jsonl` files, any side files, and `manifest.json`, all at once.

Every datagen command that makes training data (skills, instructions, documents, conversations)
writes through `write_dataset_folder`, so each folder has the same shape: records checked against
the record schema, a manifest listing every file with its sha256, and the output-folder rule
(skilltune/outputs.py) applied before the folder is replaced whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from skilltune.jsonio import sha256_of, write_json, write_jsonl
from skilltune.outputs import atomic_directory


def write_dataset_folder(
    out: Path | str,
    splits: Mapping[str, list[dict]],
    manifest: dict,
    inputs: Iterable[Path | str] = (),
    side_files: Mapping[str, Callable[[Path], None]] | None = None,
) -> dict:
    """Write `side_files` (name -> writer of that path), then one `<split>.jsonl` per split, then
    manifest.json: `manifest` plus "files" (name -> sha256, in that order). Returns the manifest."""
    files: dict[str, str] = {}
    with atomic_directory(out, inputs) as staging:
        for name, write in (side_files or {}).items():
            write(staging / name)
            files[name] = sha256_of(staging / name)
        for split, records in splits.items():
            path = staging / f"{split}.jsonl"
            write_jsonl(path, records, "record")
            files[path.name] = sha256_of(path)
        manifest = {**manifest, "files": files}
        write_json(staging / "manifest.json", manifest, "manifest")
    return manifest
