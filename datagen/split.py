"""Split pairs into train/val/test per skill and write a dataset folder with its manifest.

No normalized utterance is in two splits: pairs are deduplicated across the whole pack first,
and an utterance two skills claim with different calls is dropped as ambiguous.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

from datagen.expand import Pair, normalize
from datagen.jsonio import DataError, atomic_directory, iter_jsonl, read_jsonl, sha256_of, write_json, write_jsonl
from datagen.render import chat_record, record_problem, user_text

SPLITS = ("train", "val", "test")


def dedup_across_skills(pairs_by_skill: dict[str, list[Pair]]) -> tuple[dict[str, list[Pair]], int]:
    """Drop repeats of a normalized utterance; drop it everywhere when its calls disagree."""
    calls_of: dict[str, set] = defaultdict(set)
    for pairs in pairs_by_skill.values():
        for pair in pairs:
            calls_of[normalize(pair.user)].add(pair.call.to_python())
    ambiguous = {key for key, calls in calls_of.items() if len(calls) > 1}
    seen: set[str] = set()
    kept: dict[str, list[Pair]] = {}
    for skill, pairs in pairs_by_skill.items():
        kept[skill] = []
        for pair in pairs:
            key = normalize(pair.user)
            if key not in ambiguous and key not in seen:
                seen.add(key)
                kept[skill].append(pair)
    return kept, len(ambiguous)


def split_pairs(pairs_by_skill: dict[str, list[Pair]], seed: int, val_fraction: float, test_fraction: float):
    """Stratified split: each skill contributes the same fractions to val and test.

    With 100 pairs, 0.1 and 0.1: test 10, val 10, train 80. A skill with at least 3 pairs puts
    at least one in val and one in test, so every skill is scored.
    """
    rng = random.Random(seed)
    splits: dict[str, list[Pair]] = {name: [] for name in SPLITS}
    for skill in sorted(pairs_by_skill):
        pairs = list(pairs_by_skill[skill])
        rng.shuffle(pairs)
        n_test = round(len(pairs) * test_fraction)
        n_val = round(len(pairs) * val_fraction)
        if len(pairs) >= 3:
            n_test, n_val = max(n_test, 1), max(n_val, 1)
        splits["test"] += pairs[:n_test]
        splits["val"] += pairs[n_test:n_test + n_val]
        splits["train"] += pairs[n_test + n_val:]
    for pairs in splits.values():
        rng.shuffle(pairs)  # mix skills so a training batch is not all one skill
    return splits


def write_dataset(out: Path | str, splits: dict[str, list[Pair]], system: str, manifest_info: dict) -> dict:
    """Write `{train,val,test}.jsonl` and `manifest.json` into `out`, replacing it whole."""
    out = Path(out)
    counts: dict[str, dict[str, int]] = {}
    with atomic_directory(out) as staging:
        files = {}
        for split in SPLITS:
            records = [chat_record(system, pair.user, pair.call) for pair in splits[split]]
            path = staging / f"{split}.jsonl"
            write_jsonl(path, records, "record")
            files[path.name] = sha256_of(path)
            counts[split] = {}
            for pair in splits[split]:
                counts[split][pair.call.name] = counts[split].get(pair.call.name, 0) + 1
            counts[split] = dict(sorted(counts[split].items()))
        manifest = {**manifest_info, "counts": counts, "files": files}
        write_json(staging / "manifest.json", manifest, "manifest")
    return manifest


def validate_records(path: Path | str) -> int:
    """Check a records JSONL file: schema and style rules, naming file:line. Returns the count."""
    count = 0
    for number, record in iter_jsonl(path, "record"):
        problem = record_problem(record)
        if problem:
            raise DataError(path, number, problem)
        count += 1
    return count


def shared_utterances(paths: list[Path | str]) -> set[str]:
    """Normalized utterances found in more than one of the given files (leakage check)."""
    owners: dict[str, set[str]] = defaultdict(set)
    for path in paths:
        for record in read_jsonl(path, "record"):
            owners[normalize(user_text(record))].add(str(path))
    return {key for key, files in owners.items() if len(files) > 1}
