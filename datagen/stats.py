"""Dataset statistics: records per skill and split, and token lengths against a sequence_len.

    python -m datagen stats data/skills --tokenizer models/SmolLM2-135M-Instruct --sequence-len 256

Lengths are measured the way training sees them: the whole record rendered by the tokenizer's own
chat template (with the `tools` column where there is one).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from skilltune.jsonio import read_jsonl
from skilltune.records import gold_calls


def token_lengths(records: list[dict], tokenizer) -> list[int]:
    texts = [
        tokenizer.apply_chat_template(record["messages"], tools=record.get("tools"), tokenize=False)
        for record in records
    ]
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def dataset_stats(folder: Path, tokenizer=None, sequence_len: int | None = None) -> dict:
    """Per split: record count, counts per skill and, with a tokenizer, length summary."""
    stats = {}
    for path in sorted(folder.glob("*.jsonl")):
        records = list(read_jsonl(path, "record"))
        entry = {
            "records": len(records),
            # a compound record counts under its first call, as the manifest counts it
            "per_skill": dict(sorted(Counter(gold_calls(r)[0].name for r in records).items())),
        }
        if tokenizer is not None and records:
            lengths = sorted(token_lengths(records, tokenizer))
            entry["tokens"] = {
                "min": lengths[0],
                "median": lengths[len(lengths) // 2],
                "p95": lengths[min(len(lengths) - 1, int(len(lengths) * 0.95))],
                "max": lengths[-1],
                "total": sum(lengths),
            }
            if sequence_len:
                entry["tokens"]["over_sequence_len"] = sum(length > sequence_len for length in lengths)
            entry["lengths"] = lengths
        stats[path.stem] = entry
    return stats


def save_histogram(stats: dict, sequence_len: int | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on a training box
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for split, entry in stats.items():
        if "lengths" in entry:
            axis.hist(entry["lengths"], bins=40, alpha=0.6, label=f"{split} ({entry['records']})")
    if sequence_len:
        axis.axvline(sequence_len, color="red", linestyle="--", label=f"sequence_len {sequence_len}")
    axis.set_xlabel("tokens per record (chat template applied)")
    axis.set_ylabel("records")
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
