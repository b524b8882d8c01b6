"""Offline expansion: swap slot values between a skill's examples, then vary the phrasing.

An example whose argument value appears verbatim in its utterance is a template for that
argument: "weather in Berlin" / `weather(location="Berlin")` becomes "weather in Oslo" /
`weather(location="Oslo")` for every other location the skill's examples use. A swapped value
takes the casing the speaker used in the template, in the utterance and in the call alike:
"weather in berlin" gives "weather in oslo" / `weather(location="oslo")`, "WEATHER IN BERLIN"
gives "OSLO". The call copies what was said, as grounded decoding (eval/grounded.py) and the
pack's held-out wordings expect; a call that recapitalizes it teaches the model to rewrite values.

When a skill needs more records than its swaps give, the swapped utterances are wrapped in the
openers and closers people add when they talk to an assistant ("hey, ...", "ok so ..., thanks",
multi-clause "before I forget, ..."). A wrapped utterance keeps its base utterance as `group`, so a
split keeps every phrasing of one base utterance on the same side.
"""

from __future__ import annotations

import itertools
import random

from skilltune.calls import NO_CALL_NAME, Call, CallSyntaxError, parse_call
from skilltune.jsonio import DataError, iter_jsonl
from skilltune.pairs import Pair, find_spoken, normalize
from skilltune.skills import Skill

# openers and closers a speaker wraps around a request; "" = none
PREFIXES = (
    "",
    "hey",
    "hey there,",
    "hi,",
    "okay",
    "ok so",
    "alright,",
    "sorry,",
    "excuse me,",
    "quick question,",
    "one more thing,",
    "before I forget,",
    "I'm in a bit of a hurry,",
    "while I think of it,",
    "so",
)
SUFFIXES = ("", "please", "thanks", "thank you", "for me", "right now", "if you can", "when you get a chance")


def _same_case(new: str, old_spoken: str) -> str:
    if old_spoken.islower():
        return new.lower()
    return new.upper() if old_spoken.isupper() and len(old_spoken) > 1 else new


def slot_pools(skill: Skill) -> dict[str, list[str]]:
    """Free parameter -> the distinct values the examples give it verbatim in the utterance."""
    pools: dict[str, set[str]] = {name: set() for name, param in skill.params.items() if param.free_string}
    for example in skill.examples:
        for name, value in example.call.arguments.items():
            if name in pools and isinstance(value, str) and find_spoken(value, example.user):
                pools[name].add(value)
    return {name: sorted(values) for name, values in pools.items() if values}


def expand_skill(skill: Skill) -> tuple[list[Pair], list[Pair]]:
    """The examples, and every swap of their verbatim slot values for other values of the skill.

    Both lists are in a fixed order and distinct by normalized utterance, across the two.
    """
    pools = slot_pools(skill)
    seen: set[str] = set()
    originals: list[Pair] = []
    swaps: list[Pair] = []

    def add(into: list[Pair], user: str, call: Call) -> None:
        key = normalize(user)
        if key not in seen:
            seen.add(key)
            into.append(Pair(user, call))

    for example in skill.examples:
        add(originals, example.user, example.call)
    for example in skill.examples:
        slots = [
            name
            for name, value in example.call.arguments.items()
            if name in pools and isinstance(value, str) and find_spoken(value, example.user)
        ]
        for values in itertools.product(*(pools[name] for name in slots)):
            user, arguments = example.user, dict(example.call.arguments)
            for name, new_value in zip(slots, values):
                match = find_spoken(arguments[name], user)
                if match is None:  # an earlier swap overwrote this value's words
                    break
                spoken = _same_case(new_value, match.group(0))
                user = user[: match.start()] + spoken + user[match.end() :]
                arguments[name] = spoken
            else:
                add(swaps, user, Call(skill.name, arguments))
    return originals, swaps


def wrap(pair: Pair, prefix: str, suffix: str) -> Pair:
    """`hey` + "what's the weather" + `please` -> "hey what's the weather please"."""
    user = " ".join(part for part in (prefix, pair.user, suffix) if part)
    return Pair(user, pair.call, pair.group)


def skill_pairs(skill: Skill, count: int, rng: random.Random, extra: list[Pair] = ()) -> list[Pair]:
    """Up to `count` distinct pairs: hand-written examples and `extra` (LLM pairs) first, then swaps,
    then wrapped phrasings; a seeded sample of the hand-written ones when they alone exceed `count`.

    Deterministic for a given `rng` state. Fewer than `count` only when every base utterance has
    been used with every prefix and suffix.
    """
    originals, swaps = expand_skill(skill)
    known = {normalize(pair.user) for pair in originals + swaps}
    added = [pair for pair in extra if normalize(pair.user) not in known]
    originals += list({normalize(pair.user): pair for pair in added}.values())
    bases = [Pair(pair.user, pair.call, normalize(pair.user)) for pair in originals + swaps]
    if count <= len(originals):  # more hand-written than wanted: a seeded sample, not the file's first lines
        return rng.sample(bases[: len(originals)], count)
    if count <= len(bases):
        return bases[: len(originals)] + rng.sample(bases[len(originals) :], count - len(originals))
    chosen = list(bases)
    seen = {normalize(pair.user) for pair in chosen}
    # every (base, prefix, suffix) once, in a seeded order; (i, 0, 0) is the base itself
    combos = [
        (i, p, q) for i in range(len(bases)) for p in range(len(PREFIXES)) for q in range(len(SUFFIXES)) if p or q
    ]
    rng.shuffle(combos)
    for i, p, q in combos:
        if len(chosen) >= count:
            break
        pair = wrap(bases[i], PREFIXES[p], SUFFIXES[q])
        key = normalize(pair.user)
        if key not in seen:
            seen.add(key)
            chosen.append(pair)
    return chosen


def targets(skills: list[Skill], n: int, negative_ratio: float) -> dict[str, int]:
    """How many records each skill gets: `negative_ratio` of `n` for other(), the rest shared evenly.

    n=1000, ratio 0.1, 9 call skills + other: other 100, each call skill 100.
    """
    call_skills = [skill.name for skill in skills if skill.name != NO_CALL_NAME]
    has_no_call = len(call_skills) < len(skills)
    negatives = round(n * negative_ratio) if has_no_call else 0
    share, extra = divmod(n - negatives, len(call_skills))
    counts = {name: share + (index < extra) for index, name in enumerate(call_skills)}
    if has_no_call:
        counts[NO_CALL_NAME] = negatives
    return counts


def generate_pairs(
    skills: list[Skill], n: int, negative_ratio: float, seed: int, extra: dict[str, list[Pair]] | None = None
) -> dict[str, list[Pair]]:
    """`n` pairs in all, balanced over the skills (see `targets`), deterministic for `seed`.

    `extra` holds further pairs per skill (from `datagen llm`), used like hand-written examples.
    """
    rng = random.Random(seed)
    counts = targets(skills, n, negative_ratio)
    extra = extra or {}
    chosen = {skill.name: skill_pairs(skill, counts[skill.name], rng, extra.get(skill.name, [])) for skill in skills}
    for skill in skills:  # every emitted call is checked against its skill's JSON Schema
        for pair in chosen[skill.name]:
            problem = skill.check_call(pair.call)
            if problem:
                raise ValueError(f"{skill.path}: expansion made an invalid call for {pair.user!r}: {problem}")
    return chosen


def shortfalls(chosen: dict[str, list[Pair]], skills: list[Skill], n: int, negative_ratio: float) -> list[str]:
    """`skill: made of wanted` for each skill that got fewer pairs than `targets` asked for."""
    wanted = targets(skills, n, negative_ratio)
    return [f"{name}: {len(chosen[name])} of {count}" for name, count in wanted.items() if len(chosen[name]) < count]


def read_pair_files(paths, skills: list[Skill]) -> dict[str, list[Pair]]:
    """Pairs written by `datagen llm`, per skill, each call re-checked against the pack's skill."""
    by_name = {skill.name: skill for skill in skills}
    extra: dict[str, list[Pair]] = {}
    for path in paths:
        for number, row in iter_jsonl(path, "pair"):
            skill = by_name.get(row["skill"])
            if skill is None:
                raise DataError(path, number, f"skill {row['skill']!r} is not in the pack")
            try:
                call = parse_call(row["call"])
            except CallSyntaxError as err:
                raise DataError(path, number, str(err)) from None
            problem = skill.check_call(call)
            if problem:
                raise DataError(path, number, problem)
            extra.setdefault(skill.name, []).append(Pair(row["user"], call, normalize(row["user"])))
    return extra
