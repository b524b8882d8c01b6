"""Utterance/call pairs, the normalized form that dedup and leakage checks compare, and which
values a skill copies from what the user says (datagen expands and checks them, eval grounds them).

Every dataset writer (skills, instructions, documents, conversations) deduplicates by
`normalize`, so one rule decides when two utterances are the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from skilltune.calls import Call

if TYPE_CHECKING:
    from skilltune.skills import Skill


@dataclass(frozen=True)
class Pair:
    """One utterance and the call it should produce; a compound request (two skills asked at
    once, datagen/compound.py) also holds the calls that follow, in the order they were asked."""

    user: str
    call: Call  # the (first) call: what counts, noise protection and variety look at
    group: str = ""  # normalized base utterance; phrasings of one base share it
    later_calls: tuple[Call, ...] = ()  # the calls after the first, for a compound request

    @property
    def calls(self) -> tuple[Call, ...]:
        """Every call of the answer, in order."""
        return (self.call, *self.later_calls)


def normalize(utterance: str) -> str:
    """The form used for dedup and leakage checks: lowercase, letters/digits only, single spaces.

    "What's the weather in Berlin?" and "whats the weather in berlin" are the same utterance.
    """
    return " ".join(re.sub(r"[^\w\s]", "", utterance.lower()).split())


def find_spoken(value: str, utterance: str, any_case: bool = True) -> re.Match | None:
    """Where `value` is said in `utterance`: whole words only (the location "Rome" is not in
    "Romeo"), any case unless `any_case` is False."""
    flags = re.IGNORECASE if any_case else 0
    return re.search(rf"(?<!\w){re.escape(value)}(?!\w)", utterance, flags=flags)


def spoken_in(value: str, utterance: str) -> bool:
    """Whether `value` is said verbatim in `utterance`: whole words, any case, any run of spaces."""
    return find_spoken(" ".join(value.split()), " ".join(utterance.split())) is not None


def copied_params(skill: Skill) -> list[str]:
    """The free parameters this skill copies from the utterance: those whose value, in every example
    that gives one, is said verbatim in it (weather's location, notes' note). One example that
    rewrites the value (math's "eleven times six" -> "11*6") shows the skill does not copy it."""
    copied = []
    for name, param in skill.params.items():
        values = [(e.call.arguments[name], e.user) for e in skill.examples if name in e.call.arguments]
        if param.free_string and values and all(spoken_in(value, user) for value, user in values):
            copied.append(name)
    return copied
