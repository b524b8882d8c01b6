"""The test splits no training record can reach: held-out wording and unseen skills.

`test_wording.jsonl` holds each trained skill's `#### Test Examples:`, pairs the pack's author wrote
in other people's wording. The template split (`test.jsonl`) is made of the same templates, slot
values and wrappers as train, so it flatters: a model that learns the pack's wording scores there
and fails on requests phrased another way. These pairs never feed swaps, slot pools or wrappers.

`test_unseen.jsonl` (`--holdout-skills a,b`) holds every record of skills kept out of train and
val, so a model is scored on skills it only knows from their signatures in the prompt.

A held-out utterance is removed from every training split (and the template test split), so no
normalized utterance is both trained on and scored as held out.
"""

from __future__ import annotations

from skilltune.calls import NO_CALL_NAME
from skilltune.pairs import Pair, normalize
from skilltune.skills import Skill

WORDING_TEST = "test_wording"
UNSEEN_TEST = "test_unseen"
TEMPLATE_SPLITS = ("train", "val", "test", "test_noisy")


def holdout_skill_names(option: str, skills: list[Skill]) -> set[str]:
    """`timer,news` -> {"timer", "news"}; ValueError naming the first unknown or unfit name."""
    names = [name.strip() for name in option.split(",") if name.strip()]
    known = {skill.name for skill in skills}
    for name in names:
        if name not in known:
            raise ValueError(f"--holdout-skills: no skill {name!r} in the pack (it has {', '.join(sorted(known))})")
        if name == NO_CALL_NAME:
            raise ValueError(f"--holdout-skills: {NO_CALL_NAME}() is the no-call answer, it cannot be held out")
    if len(known - set(names) - {NO_CALL_NAME}) < 1:
        raise ValueError("--holdout-skills: at least one call skill must stay in training")
    return set(names)


def test_example_pairs(skill: Skill) -> list[Pair]:
    """The skill's `#### Test Examples:` as pairs, each its own group."""
    return [Pair(example.user, example.call, normalize(example.user)) for example in skill.test_examples]


def add_held_out(
    splits: dict[str, list[Pair]], skills: list[Skill], held_out: set[str], unseen_pairs: dict[str, list[Pair]]
) -> dict[str, list[Pair]]:
    """`splits` plus `test_wording` (trained skills' test examples) and, with `held_out` skills,
    `test_unseen` (their pairs and test examples); held-out utterances leave the other splits."""
    wording = [pair for skill in skills if skill.name not in held_out for pair in test_example_pairs(skill)]
    unseen = [pair for name in sorted(held_out) for pair in unseen_pairs.get(name, [])]
    unseen += [pair for skill in skills if skill.name in held_out for pair in test_example_pairs(skill)]
    held = {normalize(pair.user) for pair in wording + unseen}
    result = {
        split: [pair for pair in pairs if normalize(pair.user) not in held] if split in TEMPLATE_SPLITS else pairs
        for split, pairs in splits.items()
    }
    if wording:
        result[WORDING_TEST] = _distinct(wording)
    if unseen:
        result[UNSEEN_TEST] = _distinct(unseen)
    return result


def _distinct(pairs: list[Pair]) -> list[Pair]:
    """First pair of each normalized utterance: a test example may repeat a generated one."""
    seen: dict[str, Pair] = {}
    for pair in pairs:
        seen.setdefault(normalize(pair.user), pair)
    return list(seen.values())
