"""An append-only JSON-lines file: it only grows by whole lines, each checked against a schema.

`datagen llm` keeps its accepted pairs and its rejects in such files, so a run killed at any
moment (even `kill -9`) can be resumed: every line on disk is whole and valid, and a torn last
line left by a writer that died mid-line is recognised and cut off (see AppendLog).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from skilltune.jsonio import DataError, schema_problem
from skilltune.openai_api import one_line


def jsonl_line(obj: dict) -> str:
    """`obj` as one line of JSONL, newline included: the bytes an AppendLog writes for it."""
    return json.dumps(obj, ensure_ascii=False) + "\n"


class AppendLog:
    """A JSONL file that only grows by whole, validated lines; opened on the first append.

    Each line is flushed to the operating system before `append` returns, which is all that
    `kill -9` needs; the file is fsynced on close. (After a power cut, the lines written since must
    be rebuilt by the caller: `datagen llm` rebuilds them from its cache of every answer.)

    `load` only reads and checks; `repair` then makes the end of the file whole, and is the one
    place that ever shortens it: by a torn last line (no newline, not a valid line: a writer that
    died mid-line), only after every line before it was read as a valid one."""

    def __init__(self, path: Path, schema_name: str, warn: Callable[[str], None]):
        # `warn` shows the one thing a log says on its own (a torn line cut off); the command
        # line decides how, so this module stays free of any user interface
        self.path, self.schema_name, self.warn = path, schema_name, warn
        self._handle = None
        self._keep = None  # after load: the bytes of the file to keep, when its end needs repair
        self._torn = None  # after load: (line number, the torn tail's bytes) to drop
        self._needs_newline = False  # the last line is valid but has no newline: add one, cut nothing

    def _row(self, number: int, raw: bytes) -> dict:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataError(self.path, number, f"not UTF-8 (byte {err.start + 1} of the line)") from None
        try:
            obj = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as err:
            reason = f"{err.msg} (column {err.colno})" if isinstance(err, json.JSONDecodeError) else "nested too deeply"
            raise DataError(self.path, number, f"not JSON: {reason}") from None
        problem = schema_problem(obj, self.schema_name)
        if problem:
            raise DataError(self.path, number, f"not a {self.schema_name} line: {problem}")
        return obj

    def load(self) -> list[dict]:
        """The lines already there, validated, without changing the file. A last line with no
        newline is kept if it is a valid line (repair adds the newline); one that is not (a torn
        write: the start of a JSON object that does not parse) is dropped by repair, provided a
        valid line comes before it. Anything else that is not this schema's JSONL is a DataError."""
        if self.path.is_dir():
            raise DataError(self.path, 0, "is a folder, not a JSONL file")
        if self.path.exists() and not self.path.is_file():
            raise DataError(self.path, 0, "is not a regular file")
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline
        rows = []
        for number, raw in enumerate(lines, 1):
            if raw.strip():
                rows.append(self._row(number, raw))
        if not tail.strip():
            if tail:  # blanks after the last newline: harmless, but the next line must start on its own
                self._needs_newline = True
            return rows
        number = len(lines) + 1
        try:
            rows.append(self._row(number, tail))
            self._needs_newline = True
            return rows
        except DataError as err:
            if not (rows and self._looks_torn(tail)):
                raise DataError(
                    self.path,
                    number,
                    f"{err.reason} (the last line, with no newline: not a torn "
                    "line of this command's, so the file is left as it is)",
                ) from None
        self._keep, self._torn = data[: len(data) - len(tail)], (number, tail)
        return rows

    @staticmethod
    def _looks_torn(tail: bytes) -> bool:
        """The start of one of our lines, cut: a JSON object's beginning, invalid only at its end."""
        if not tail.lstrip().startswith(b"{"):
            return False
        try:
            text = tail.decode("utf-8")
        except UnicodeDecodeError as err:  # a character cut in two is the last thing in a torn line
            if err.reason != "unexpected end of data":
                return False
            text = tail[: err.start].decode("utf-8", errors="strict")
        try:
            json.loads(text)
        except json.JSONDecodeError as err:
            return not err.msg.startswith("Extra data")
        except RecursionError:
            return False
        return False  # it parses: a whole line, so not torn (it failed the schema)

    def repair(self) -> None:
        """After every file was loaded and checked: drop a torn last line, telling `warn`."""
        if self._torn is None:
            return
        number, tail = self._torn
        with self.path.open("r+b") as handle:
            handle.truncate(len(self._keep))
            os.fsync(handle.fileno())
        shown = one_line(tail.decode("utf-8", errors="replace"))[:80]
        self.warn(
            f"{self.path}:{number}: dropped a torn last line ({len(tail)} bytes, no newline, "
            f"not a whole {self.schema_name} line): {shown}"
        )
        self._torn = self._keep = None

    def append(self, obj: dict) -> None:
        problem = schema_problem(obj, self.schema_name)
        if problem:  # a bug of the caller's, which checks its lines before it appends them
            raise DataError(self.path, 0, f"refusing to append an invalid line: {problem}")
        if self._handle is None:
            self.repair()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
            if self._needs_newline:  # a valid last line that lacked its newline is kept, and ended
                self._handle.write("\n")
                self._needs_newline = False
        self._handle.write(jsonl_line(obj))
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None
