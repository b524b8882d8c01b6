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
    """One utterance and the call it should produce."""

    user: str
    call: Call
    group: str = ""  # normalized base utterance; phrasings of one base share it


def normalize(utterance: str) -> str:
    """The form used for dedup and leakage checks: lowercase, letters/digits only, single spaces.

    "What's the weather in Berlin?" and "whats the weather in berlin" are the same utterance.
    """
    return " ".join(re.sub(r"[^\w\s]", "", utterance.lower()).split())
