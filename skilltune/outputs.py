"""The output-folder rule: where a command may write, checked before any work starts.

A command that writes a folder (`datagen skills|documents|conversations|instructions`, `eval run|
score|bfcl|compare`) refuses, in one line and before it does anything:
  - a path that is a file, or the root folder;
  - a path that holds an input of the run (the skill pack, the documents, the logs, a test file);
  - a non-empty folder that is not an earlier output of skilltune: for a dataset folder, a
    manifest.json that lists every file in it; for an eval folder, one holding eval's predictions
    or report, or the run's adapter (runs/<model>/adapter beside runs/<model>/report.json);
  - a place it cannot write (probed by making and removing a folder there).
Dataset folders are built in a hidden sibling and renamed into place (`atomic_directory`); the
sibling is removed on an error, on Ctrl-C and on SIGTERM, and one left by `kill -9` is removed by
the next run that writes the same folder.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from skilltune.jsonio import (
    DataError,
    iter_json_lines,
    iter_jsonl,
    loads,
    read_json,
    read_text,
    remove_stale_siblings,
    staging_prefix,
    terminate_cleanly,
)

# What `eval run`, `eval score`, `eval bfcl` and `eval compare` write into their --out folder.
EVAL_OUTPUTS = (
    "predictions-*.jsonl",
    "report.json",
    "report.md",
    "confusion-*.png",
    "compare.md",
    "bfcl-*.json",
    "bfcl-*.jsonl",
    ".*.tmp*",
)


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError) as err:  # a symlink loop: RuntimeError before Python 3.13
        raise DataError(path, 0, f"cannot resolve the path: {err}") from None


def _foreign_dataset_entry(folder: Path) -> str | None:
    """What in a dataset folder its manifest.json does not list (None when it lists everything)."""
    entries = sorted(entry.name for entry in folder.iterdir())
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        return f"{entries[0]} and no manifest.json"
    try:
        listed = set(read_json(manifest_path, "manifest")["files"]) | {"manifest.json"}
    except DataError:
        return "a manifest.json skilltune did not write"
    return next((name for name in entries if name not in listed), None)


def _is_eval_output(path: Path) -> bool:
    return path.is_file() and any(fnmatch.fnmatchcase(path.name, pattern) for pattern in EVAL_OUTPUTS)


def _is_skilltune_eval_file(path: Path) -> bool:
    """An eval output that reads as skilltune's (its schema or its first line), not just by name."""
    try:
        if path.name == "report.json":
            read_json(path, "report")
            return True
        if fnmatch.fnmatchcase(path.name, "bfcl-*-predictions.jsonl"):
            first = next(iter_json_lines(path), (0, None))[1]
            return isinstance(first, dict) and {"id", "output"} <= first.keys()
        if fnmatch.fnmatchcase(path.name, "predictions-*.jsonl"):
            return next(iter_jsonl(path, "prediction"), None) is not None
        if fnmatch.fnmatchcase(path.name, "bfcl-*.json"):
            result = loads(read_text(path))
            return isinstance(result, dict) and {"n", "exact_match"} <= result.keys()
        if path.name in ("report.md", "compare.md"):
            return read_text(path).startswith("# Function-calling eval")
    except (DataError, ValueError, OSError):
        pass
    return False


def _eval_folder_problem(folder: Path, input_paths: list[Path]) -> str | None:
    """Why eval may not add its files to `folder`, or None.

    Eval only adds files of its own names, so a folder is eval's when it already holds eval's
    predictions or report, or is the run folder holding this run's adapter (make's layout:
    runs/<model>/adapter beside runs/<model>/report.json)."""
    entries = sorted(folder.iterdir())
    report = folder / "report.json"
    if report.exists() and not _is_skilltune_eval_file(report):
        return "it holds a report.json skilltune did not write"
    if not entries or any(path.is_dir() and path.parent == folder for path in input_paths):
        return None
    if any(_is_skilltune_eval_file(entry) for entry in entries):
        return None
    return f"it holds {entries[0].name}"


def _probe_writable(target: Path) -> None:
    """Make and remove a folder in the nearest existing ancestor of `target`."""
    ancestor = target
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise DataError(target, 0, f"cannot write there: {ancestor} is a file")
    try:
        os.rmdir(tempfile.mkdtemp(dir=ancestor, prefix=".skilltune-probe-"))
    except OSError as err:
        raise DataError(target, 0, f"cannot write there: {err.strerror or err}") from None


def check_output_folder(out: Path | str, inputs: Iterable[Path | str] = (), *, kind: str = "dataset") -> None:
    """Raise DataError (one line naming `out`) unless `out` may be written; touches nothing.

    kind "dataset": the folder is replaced whole, so every file in it must be listed by its
    manifest.json. kind "eval": eval's files are added to it, so it must already be eval's (see
    _eval_folder_problem).
    """
    out = Path(out)
    target = _resolved(out)
    if target == Path(target.anchor):
        raise DataError(out, 0, "is the root folder; give --out a folder of its own")
    if target.exists() and not target.is_dir():
        raise DataError(out, 0, "is a file, not a folder; give --out a new or empty folder")
    input_paths = [_resolved(Path(source)) for source in inputs]
    for source, source_path in zip(inputs, input_paths):
        if kind == "eval":  # eval never removes anything: only an input it could write over, or beside, counts
            inside = source_path == target or (
                source_path.parent == target and source_path.is_file() and not _is_eval_output(source_path)
            )
        else:  # the folder is replaced whole: nothing under it may be an input
            inside = source_path == target or target in source_path.parents
        if inside:
            raise DataError(out, 0, f"holds {source}, an input of this run; give --out a folder of its own")
    if target.is_dir():
        try:
            if kind == "dataset":
                problem = None if not any(target.iterdir()) else _foreign_dataset_entry(target)
                problem = problem and f"is not an earlier dataset of skilltune: it holds {problem}"
            else:
                problem = _eval_folder_problem(target, input_paths)
                problem = problem and f"is not a folder of eval's outputs: {problem}"
        except OSError as err:
            raise DataError(out, 0, f"cannot read the folder: {err.strerror or err}") from None
        if problem:
            raise DataError(out, 0, f"{problem}; give --out a new or empty folder")
    _probe_writable(target)


def check_output_file(out: Path | str, inputs: Iterable[Path | str] = ()) -> None:
    """Raise DataError unless `out` may be (re)written as a file: not a folder, not an input, writable."""
    out = Path(out)
    target = _resolved(out)
    if target.is_dir():
        raise DataError(out, 0, "is a folder; give --out a file name")
    for source in inputs:
        source_path = _resolved(Path(source))
        if source_path == target:
            raise DataError(out, 0, f"is {source}, an input of this run; give --out another file")
        if source_path in target.parents:  # a file added to an input folder (a dataset) is not its own
            raise DataError(out, 0, f"is inside {source}, an input of this run; give --out a file elsewhere")
    _probe_writable(target.parent)


def replace_folder(staging: Path, path: Path) -> None:
    """`staging` renamed to `path`; an earlier output there is moved aside first and removed after,
    and put back if the rename fails."""
    retired = None
    if path.exists():
        retired = Path(tempfile.mkdtemp(dir=path.parent, prefix=staging_prefix(path, "old")))
        os.replace(path, retired / "content")
    try:
        os.replace(staging, path)
    except OSError:
        if retired:  # put the earlier output back
            os.replace(retired / "content", path)
        raise
    if retired:
        shutil.rmtree(retired, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(path: Path | str, inputs: Iterable[Path | str] = ()):
    """Yield a temporary sibling folder; on success it replaces `path` whole, on failure it is removed.

    `path` is checked by the output-folder rule first (see check_output_folder), so the folder
    replaced is only ever an earlier output of skilltune.
    """
    path = Path(path)
    check_output_folder(path, inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(path)
    with terminate_cleanly():
        staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=staging_prefix(path, "new")))
        try:
            staging.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary folder
            yield staging
            replace_folder(staging, path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone already after a successful rename
