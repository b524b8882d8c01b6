"""Utterance/call pairs and the normalized form that dedup and leakage checks compare.

Every dataset writer (skills, instructions, documents, conversations) deduplicates by
`normalize`, so one rule decides when two utterances are the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from skilltune.calls import Call


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
