"""Offline expansion: swap slot values between a skill's examples to make new utterances.

An example whose argument value appears verbatim in its utterance is a template for that
argument: "weather in Berlin" / `weather(location="Berlin")` becomes "weather in Oslo" /
`weather(location="Oslo")` for every other location the skill's examples use. The call keeps
the value as the pack writes it; the utterance keeps the casing the speaker used
("weather in berlin" gives "weather in oslo").
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass

from datagen.calls import Call
from datagen.skills import Skill


@dataclass(frozen=True)
class Pair:
    """One utterance and the call it should produce."""

    user: str
    call: Call


def normalize(utterance: str) -> str:
    """The form used for dedup and leakage checks: lowercase, letters/digits only, single spaces.

    "What's the weather in Berlin?" and "whats the weather in berlin" are the same utterance.
    """
    return " ".join(re.sub(r"[^\w\s]", "", utterance.lower()).split())


def _find(value: str, utterance: str) -> re.Match | None:
    # whole words only, so the location "Rome" is not found inside "Romeo"
    return re.search(rf"(?<!\w){re.escape(value)}(?!\w)", utterance, flags=re.IGNORECASE)


def _same_case(new: str, old_spoken: str) -> str:
    return new.lower() if old_spoken.islower() else new


def slot_pools(skill: Skill) -> dict[str, list[str]]:
    """Free parameter -> the distinct values the examples give it verbatim in the utterance."""
    pools: dict[str, set[str]] = {name: set() for name, allowed in skill.choices.items() if not allowed}
    for example in skill.examples:
        for name, value in example.call.arguments.items():
            if name in pools and isinstance(value, str) and _find(value, example.user):
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
            if name in pools and isinstance(value, str) and _find(value, example.user)
        ]
        for values in itertools.product(*(pools[name] for name in slots)):
            user, arguments = example.user, dict(example.call.arguments)
            for name, new_value in zip(slots, values):
                match = _find(arguments[name], user)
                if match is None:  # an earlier swap overwrote this value's words
                    break
                user = user[: match.start()] + _same_case(new_value, match.group(0)) + user[match.end():]
                arguments[name] = new_value
            else:
                add(swaps, user, Call(skill.name, arguments))
    return originals, swaps


def sample_per_skill(skills: list[Skill], per_skill: int, seed: int) -> dict[str, list[Pair]]:
    """Up to `per_skill` pairs per skill: all hand-written examples, topped up with random swaps."""
    rng = random.Random(seed)
    chosen: dict[str, list[Pair]] = {}
    for skill in skills:
        originals, swaps = expand_skill(skill)
        room = max(per_skill - len(originals), 0)
        chosen[skill.name] = originals[:per_skill] + rng.sample(swaps, min(room, len(swaps)))
    return chosen
