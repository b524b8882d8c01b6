"""JSON and JSONL files checked against the repo's JSON Schemas, written atomically.

Every file skilltune writes has a schema in `datagen/schemas/` or `eval/schemas/`; it is checked
on write and on read, and a bad line is reported as `path:line: reason`. Writers go through a
temporary file (or folder) and a rename, so a failure never leaves a partial output behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

import jsonschema

SCHEMA_DIRS = (Path(__file__).parent / "schemas", Path(__file__).parent.parent / "eval" / "schemas")


class DataError(ValueError):
    """Bad data in a file; str() is `path:line: reason` (line 0 when it is about the whole file)."""

    def __init__(self, path: Path | str, line: int, reason: str):
        self.path, self.line, self.reason = str(path), line, reason
        super().__init__(f"{path}:{line}: {reason}" if line else f"{path}: {reason}")


@lru_cache(maxsize=None)
def validator(schema_name: str) -> jsonschema.Draft202012Validator:
    """The validator for `<schema_name>.schema.json` from one of SCHEMA_DIRS."""
    for directory in SCHEMA_DIRS:
        path = directory / f"{schema_name}.schema.json"
        if path.exists():
            schema = json.loads(path.read_text())
            jsonschema.Draft202012Validator.check_schema(schema)
            return jsonschema.Draft202012Validator(schema)
    raise KeyError(f"no schema named {schema_name!r} in {', '.join(map(str, SCHEMA_DIRS))}")


def schema_problem(obj, schema_name: str) -> str | None:
    """The most relevant schema violation of `obj` as one line, or None."""
    error = jsonschema.exceptions.best_match(validator(schema_name).iter_errors(obj))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path)
    return f"{where + ': ' if where else ''}{error.message}"


def iter_json_lines(path: Path | str) -> Iterator[tuple[int, object]]:
    """Yield (line number, value) for each non-blank line of a JSON-lines file; bad JSON is a DataError."""
    path = Path(path)
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(path, number, f"not JSON: {err.msg} (column {err.colno})") from None


def iter_jsonl(path: Path | str, schema_name: str) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each line of a JSONL file, validated; blank lines are skipped."""
    for number, obj in iter_json_lines(path):
        problem = schema_problem(obj, schema_name)
        if problem:
            raise DataError(path, number, problem)
        yield number, obj


def read_jsonl(path: Path | str, schema_name: str) -> Iterator[dict]:
    """Each object of a JSONL file, validated (see iter_jsonl)."""
    return (obj for _, obj in iter_jsonl(path, schema_name))


def read_json(path: Path | str, schema_name: str) -> dict:
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(path, err.lineno, f"not JSON: {err.msg}") from None
    problem = schema_problem(obj, schema_name)
    if problem:
        raise DataError(path, 0, problem)
    return obj


def _dump_line(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=False) + "\n"


def _check_all(rows: Iterable[dict], schema_name: str, path: Path) -> list[dict]:
    rows = list(rows)
    for number, row in enumerate(rows, 1):
        problem = schema_problem(row, schema_name)
        if problem:
            raise DataError(path, number, f"refusing to write an invalid row: {problem}")
    return rows


@contextlib.contextmanager
def _atomic_file(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", delete=False)
    try:
        with handle:
            yield handle
        os.chmod(handle.name, 0o644)  # NamedTemporaryFile makes it private; the result is an ordinary file
        os.replace(handle.name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(handle.name)
        raise


def write_jsonl(path: Path | str, rows: Iterable[dict], schema_name: str) -> None:
    """Validate every row first, then write them all through a temporary file and a rename."""
    path = Path(path)
    rows = _check_all(rows, schema_name, path)
    with _atomic_file(path) as handle:
        handle.writelines(_dump_line(row) for row in rows)


def write_json(path: Path | str, obj: dict, schema_name: str) -> None:
    path = Path(path)
    problem = schema_problem(obj, schema_name)
    if problem:
        raise DataError(path, 0, f"refusing to write invalid JSON: {problem}")
    with _atomic_file(path) as handle:
        json.dump(obj, handle, indent=2, ensure_ascii=False)
        handle.write("\n")


def write_text(path: Path | str, text: str) -> None:
    with _atomic_file(Path(path)) as handle:
        handle.write(text)


@contextlib.contextmanager
def atomic_directory(path: Path | str):
    """Yield a temporary sibling folder; on success it replaces `path` whole, on failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.new-"))
    staging.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary folder
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    retired = None
    if path.exists():
        retired = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old-"))
        os.replace(path, retired / "content")
    os.replace(staging, path)
    if retired:
        shutil.rmtree(retired, ignore_errors=True)


def sha256_of(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
