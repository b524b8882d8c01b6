"""The GPU check's table in BENCHMARKS.md, from the throughput.json files its runs wrote.

    python scripts/gpu_report.py runs/mistral-gpucheck/adapter/throughput.json ...   # splice the section
    python scripts/gpu_report.py --summary runs/mistral-gpucheck/adapter/throughput.json  # one line, no file

The section "## GPU check (scripts/gpu_check.sh)" is replaced where it exists, else appended; the
rest of the file stays byte for byte as it was.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from skilltune.jsonio import write_text  # noqa: E402

HEADING = "## GPU check (scripts/gpu_check.sh)"


def label(path: Path) -> str:
    """runs/<run>/adapter/throughput.json -> <run>, without the check's -gpucheck suffix."""
    folder = path.parent.parent if path.parent.name == "adapter" else path.parent
    return folder.name.removesuffix("-gpucheck")


def _number(value, digits: int, thousands: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}" if thousands else f"{value:.{digits}f}"


def summary(name: str, row: dict) -> str:
    return (
        f"{name}: {_number(row['tokens_per_second'], 0, True)} tokens/s, "
        f"{_number(row['seconds_per_step'], 2)} s/step over {row['steps']} steps, "
        f"peak {_number(row['peak_memory_allocated_gib'], 1)} GiB allocated / "
        f"{_number(row['peak_memory_reserved_gib'], 1)} reserved, MFU {_number(row['mfu'], 3)} ({row['device']})"
    )


def section(rows: list[tuple[str, dict]], today: datetime.date) -> str:
    steps = sorted({row["steps"] for _, row in rows})
    lines = [
        HEADING,
        "",
        f"Written by scripts/gpu_report.py on {today.isoformat()}. Each config trained unchanged (QLoRA, its own "
        "attention, sample packing, bf16) on a stand-in with random weights and the real 7-8B shapes "
        "(scripts/make_standin.py --size real); figures from skilltune.throughput.ThroughputLog, per GPU, over "
        f"{' / '.join(map(str, steps))} steps after the first (warm-up), evaluation excluded. Tokens: non-padding "
        "input tokens. MFU: (6 N + 12 layers hidden sequence_len) FLOPs a token over the GPU's dense bf16 peak.",
        "",
        "| config | device | tokens/s | s/step | peak allocated GiB | peak reserved GiB | MFU |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in rows:
        lines.append(
            f"| {name} | {row['device']} | {_number(row['tokens_per_second'], 0, True)} | "
            f"{_number(row['seconds_per_step'], 2)} | {_number(row['peak_memory_allocated_gib'], 1)} | "
            f"{_number(row['peak_memory_reserved_gib'], 1)} | {_number(row['mfu'], 3)} |"
        )
    return "\n".join(lines) + "\n"


def splice(text: str, new_section: str) -> str:
    """`text` with its GPU-check section (heading to the next `#`/`##` heading) replaced, or appended."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip("\r\n") == HEADING), None)
    if start is None:
        return text + ("" if not text else "\n" if text.endswith("\n") else "\n\n") + new_section
    end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith(("# ", "## "))), len(lines))
    rest = "".join(lines[end:])
    return "".join(lines[:start]) + new_section + ("\n" if rest else "") + rest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="throughput.json files, one per config")
    parser.add_argument("--benchmarks", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument("--summary", action="store_true", help="print one line per file; write nothing")
    args = parser.parse_args()
    rows = [(label(path), json.loads(path.read_text(encoding="utf-8"))) for path in args.files]
    if args.summary:
        for name, row in rows:
            print(summary(name, row))
        return
    text = ""
    if args.benchmarks.exists():
        with open(args.benchmarks, encoding="utf-8", newline="") as file:  # newline="": CRLF stays CRLF
            text = file.read()
    write_text(args.benchmarks, splice(text, section(rows, datetime.date.today())))
    print(f"{args.benchmarks}: {HEADING[3:]} section, {len(rows)} configs")


if __name__ == "__main__":
    main()
