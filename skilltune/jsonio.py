"""JSON and JSONL files checked against the repo's JSON Schemas, written atomically.

Every file skilltune writes has a schema in `skilltune/schemas/`; it is checked
on write and on read, and a bad line is reported as `path:line: reason`. Writers go through a
temporary file (or folder) and a rename, so a failure never leaves a partial output behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

import jsonschema

SCHEMA_DIRS = (Path(__file__).parent / "schemas",)


class DataError(ValueError):
    """Bad data in a file; str() is `path:line: reason` (line 0 when it is about the whole file)."""

    def __init__(self, path: Path | str, line: int, reason: str):
        self.path, self.line, self.reason = str(path), line, reason
        super().__init__(f"{path}:{line}: {reason}" if line else f"{path}: {reason}")


@cache
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


def _open_error(path: Path, err: OSError) -> DataError:
    if isinstance(err, IsADirectoryError):
        return DataError(path, 0, "is a folder, not a file")
    return DataError(path, 0, f"cannot read: {err.strerror or err}")


def _decoded(raw: bytes, path: Path, number: int) -> str:
    """One line (or a whole file, as line 1) of bytes as text; not UTF-8 is a DataError naming where."""
    if number == 1:
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise DataError(path, 1, "is UTF-16 text; save it as UTF-8")
        raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark, as some editors write
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = number + raw.count(b"\n", 0, err.start)
        column = err.start - raw.rfind(b"\n", 0, err.start)
        raise DataError(path, line, f"not UTF-8 text: byte 0x{raw[err.start]:02x} at column {column}") from None


def read_text(path: Path | str) -> str:
    """A whole UTF-8 text file (a byte order mark is dropped); unreadable or not UTF-8 is a DataError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise _open_error(path, err) from None
    return _decoded(data, path, 1)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is out of range for a JSON number")
    return value


# a decoder for callers that walk a document value by value (raw_decode), as strict as loads
STRICT_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float)


def loads(text: str):
    """Strict JSON: NaN, Infinity and numbers that overflow are errors, as in the JSON standard.

    Raises ValueError (json.JSONDecodeError for syntax) with a one-line message."""
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _json_problem(err: ValueError) -> str:
    if isinstance(err, json.JSONDecodeError):
        return f"not JSON: {err.msg} (column {err.colno})"
    return f"not JSON: {' '.join(str(err).split())[:200]}"


def iter_json_lines(path: Path | str) -> Iterator[tuple[int, object]]:
    """Yield (line number, value) for each non-blank line of a JSON-lines file.

    Not UTF-8, not JSON, NaN or Infinity, an unreadable path: a DataError naming file and line."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as err:
        raise _open_error(path, err) from None
    with handle:
        try:
            for number, raw in enumerate(handle, 1):
                line = _decoded(raw, path, number)
                if not line.strip():
                    continue
                try:
                    value = loads(line)
                except ValueError as err:
                    raise DataError(path, number, _json_problem(err)) from None
                yield number, value
        except IsADirectoryError as err:
            raise _open_error(path, err) from None


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
    text = read_text(path)
    try:
        obj = loads(text)
    except json.JSONDecodeError as err:
        raise DataError(path, err.lineno, f"not JSON: {err.msg} (column {err.colno})") from None
    except ValueError as err:
        raise DataError(path, 0, _json_problem(err)) from None
    problem = schema_problem(obj, schema_name)
    if problem:
        raise DataError(path, 0, problem)
    return obj


def dumps(obj, **options) -> str:
    """JSON text of `obj`; NaN and Infinity are refused (ValueError), as no JSON reader takes them."""
    try:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False, **options)
    except ValueError as err:
        raise ValueError(f"refusing to write NaN or Infinity ({err})") from None


def _dump_line(obj) -> str:
    return dumps(obj) + "\n"


def _check_all(rows: Iterable[dict], schema_name: str, path: Path) -> list[dict]:
    rows = list(rows)
    for number, row in enumerate(rows, 1):
        problem = schema_problem(row, schema_name)
        if problem:
            raise DataError(path, number, f"refusing to write an invalid row: {problem}")
    return rows


# --- temporary files and folders that do not outlive their process

_STAGING = re.compile(r"\.(?P<name>.+)\.(?:new|old|tmp)-(?P<pid>\d+)-[^/]*")


def staging_prefix(path: Path, role: str) -> str:
    """The name prefix of a temporary sibling of `path`: hidden, and naming the process that owns it."""
    return f".{path.name}.{role}-{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_siblings(path: Path) -> None:
    """Remove temporary siblings of `path` left by a process that no longer runs (`kill -9`)."""
    with contextlib.suppress(OSError):
        for entry in path.parent.iterdir():
            match = _STAGING.fullmatch(entry.name)
            if match and match["name"] == path.name and not _alive(int(match["pid"])):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)


@contextlib.contextmanager
def terminate_cleanly():
    """Turn SIGTERM and SIGHUP into SystemExit while the block runs, so its cleanup runs too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def leave(signum, _frame):
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_DFL:
            previous[signum] = signal.signal(signum, leave)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def _atomic_file(path: Path):
    """A temporary sibling to write; renamed to `path` on success, removed on any failure.

    Text is UTF-8; a lone surrogate (which model output can hold) is written as its `\\udXXX`
    escape, which in a JSON string is the JSON escape of that code point."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(path)
    with terminate_cleanly():
        handle = tempfile.NamedTemporaryFile(
            "w",
            encoding="utf-8",
            errors="backslashreplace",
            dir=path.parent,
            prefix=staging_prefix(path, "tmp"),
            delete=False,
        )
        try:
            with handle:
                yield handle
            os.chmod(handle.name, 0o644)  # NamedTemporaryFile makes it private; the result is an ordinary file
            os.replace(handle.name, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(handle.name)


def write_jsonl(path: Path | str, rows: Iterable[dict], schema_name: str) -> None:
    """Validate every row first, then write them all through a temporary file and a rename."""
    path = Path(path)
    rows = _check_all(rows, schema_name, path)
    lines = []
    for number, row in enumerate(rows, 1):
        try:
            lines.append(_dump_line(row))
        except ValueError as err:
            raise DataError(path, number, str(err)) from None
    with _atomic_file(path) as handle:
        handle.writelines(lines)


def write_json(path: Path | str, obj: dict, schema_name: str) -> None:
    path = Path(path)
    problem = schema_problem(obj, schema_name)
    if problem:
        raise DataError(path, 0, f"refusing to write invalid JSON: {problem}")
    try:
        text = dumps(obj, indent=2) + "\n"
    except ValueError as err:
        raise DataError(path, 0, str(err)) from None
    with _atomic_file(path) as handle:
        handle.write(text)


def write_text(path: Path | str, text: str) -> None:
    with _atomic_file(Path(path)) as handle:
        handle.write(text)


def sha256_of(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
