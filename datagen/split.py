"""Split pairs into train/val/test per skill and write a dataset folder with its manifest.

No normalized utterance is in two splits: pairs are deduplicated across the whole pack first,
and an utterance two skills claim with different calls is dropped as ambiguous.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from pathlib import Path

from datagen.dataset import write_dataset_folder
from datagen.noise import add_noise, as_heard
from skilltune.calls import Call
from skilltune.jsonio import DataError, iter_jsonl, read_json, read_jsonl
from skilltune.pairs import Pair, normalize
from skilltune.records import chat_record_problem, record_problem, user_text

SPLITS = ("train", "val", "test")
NOISY_TEST = "test_noisy"


class SplitError(ValueError):
    """A split that cannot be made as asked; str() is one line naming the skill."""


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
    """Stratified split by group: each skill gives about the same fractions of its records to val and test.

    All phrasings of one base utterance (one `group`) land in the same split. With 100 records in
    100 groups, 0.1 and 0.1: test 10, val 10, train 80. A skill with at least 3 groups puts at
    least one in val and one in test, so every skill is scored.
    """
    rng = random.Random(seed)
    splits: dict[str, list[Pair]] = {name: [] for name in SPLITS}
    needed = 1 + (val_fraction > 0) + (test_fraction > 0)
    for skill in sorted(pairs_by_skill):
        groups: dict[str, list[Pair]] = defaultdict(list)
        for pair in pairs_by_skill[skill]:
            groups[pair.group or normalize(pair.user)].append(pair)
        if 0 < len(groups) < needed:
            # all phrasings of a base utterance stay in one split, so one base cannot feed train and test
            raise SplitError(
                f"{skill}: {len(groups)} base utterance(s), and train"
                f"{', val' if val_fraction else ''}{' and test' if test_fraction else ''} need one each "
                f"({needed} at least); add examples to the skill or set the fractions to 0"
            )
        order = list(groups)
        rng.shuffle(order)
        total = len(pairs_by_skill[skill])
        wanted = {"test": round(total * test_fraction), "val": round(total * val_fraction)}
        if len(order) >= 3:
            wanted = {split: max(count, 1) for split, count in wanted.items()}
        taken = {"test": 0, "val": 0}
        for key in order:
            split = next((name for name in ("test", "val") if taken[name] < wanted[name]), "train")
            if split != "train":
                taken[split] += len(groups[key])
            splits[split] += groups[key]
    for pairs in splits.values():
        rng.shuffle(pairs)  # mix skills so a training batch is not all one skill
    return splits


def add_speech_noise(splits: dict[str, list[Pair]], share: float, seed: int) -> dict[str, list[Pair]]:
    """Give `share` of train and val records ASR-style noise, and make `test_noisy` from all of test.

    A noisy utterance is used only when its normalized form is new to every split (or is its own
    clean form's), so noise never leaks an utterance across splits nor repeats one within a split,
    and only when every copied value can still be read in it (datagen.noise.as_heard).
    """
    rng = random.Random(seed + 1)  # a stream of its own: changing --noise does not reshuffle the splits
    used = {normalize(pair.user) for pairs in splits.values() for pair in pairs}

    def noisy(pair: Pair) -> Pair | None:
        values = [value for value in pair.call.arguments.values() if isinstance(value, str)]
        user = add_noise(pair.user, values, rng)
        arguments = as_heard(pair.call.arguments, pair.user, user)
        key = normalize(user)
        if arguments is None or (key != normalize(pair.user) and key in used):
            return None
        used.add(key)
        return Pair(user, Call(pair.call.name, arguments), pair.group)

    result = {}
    for split in ("train", "val"):
        result[split] = [(noisy(pair) or pair) if rng.random() < share else pair for pair in splits[split]]
    result["test"] = list(splits["test"])
    result[NOISY_TEST] = [pair for pair in (noisy(pair) for pair in splits["test"]) if pair]
    return result


def write_dataset(
    out: Path | str, splits: dict[str, list[Pair]], render, manifest_info: dict, inputs: tuple = ()
) -> dict:
    """Render each split's pairs (`render(pair) -> record`) and write the folder, counts per skill
    in its manifest (datagen.dataset: `out` is replaced whole, after the output-folder rule)."""
    counts = {split: dict(sorted(Counter(pair.call.name for pair in pairs).items())) for split, pairs in splits.items()}
    records = {split: [render(pair) for pair in pairs] for split, pairs in splits.items()}
    return write_dataset_folder(out, records, {**manifest_info, "counts": counts}, inputs)


RECORD_KINDS = ("skills", "chat")


def record_kind(path: Path | str) -> str:
    """ "chat" when the file's folder has a manifest with style "chat" (documents, conversations,
    instruction pairs: free-text answers), else "skills" (every answer must be a call)."""
    manifest = Path(path).with_name("manifest.json")
    if manifest.is_file() and read_json(manifest, "manifest")["style"] == "chat":
        return "chat"
    return "skills"


def validate_records(path: Path | str, kind: str | None = None) -> int:
    """Check a records JSONL file: schema and style rules, naming file:line. Returns the count.

    `kind` ("skills" or "chat") picks the answer rules; None reads it from the folder's manifest.
    """
    problem_of = chat_record_problem if (kind or record_kind(path)) == "chat" else record_problem
    count = 0
    for number, record in iter_jsonl(path, "record"):
        problem = problem_of(record)
        if problem:
            raise DataError(path, number, problem)
        count += 1
    return count


def shared_utterances(paths: list[Path | str]) -> set[str]:
    """Normalized utterances found in more than one of the given files (leakage check).

    `test_noisy.jsonl` is the noisy twin of `test.jsonl` in the same folder, so the two may share.
    """
    owners: dict[str, set[Path]] = defaultdict(set)
    for path in map(Path, paths):
        for record in read_jsonl(path, "record"):
            owners[normalize(user_text(record))].add(path)
    return {key for key, files in owners.items() if len({_twin_of(path) for path in files}) > 1}


def _twin_of(path: Path) -> Path:
    return path.with_name("test.jsonl") if path.name == f"{NOISY_TEST}.jsonl" else path
