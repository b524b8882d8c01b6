"""Grounded values: a value the skill copies from the request may only be a span of the request.

A span is a piece of the request, exactly as written (case, spelling and inner spaces kept), that
starts and ends on a word boundary: "weather in Berlin please" has the spans "Berlin", "in Berlin"
and "Berlin please", not " Berlin", "erlin", "berlin" or the "s" of "what's". That rules out the
value errors a small model makes most: a leading space, capitals changed, a word half copied, a word
the request never said. Nor does a span start or end with a hesitation ("um", "uh"): in a transcript
they sit next to the value ("open um filezilla"), never in it. Which parameters are copied is the
pack's own knowledge (skilltune.pairs.copied_params: those its examples always say verbatim), so
math's question, which the examples rewrite, stays free.

The checks are per character, as constrained decoding steps: `may_start` says whether a value
written so far can still grow into a span, `is_span` whether it is one. Both look at every
occurrence, since the value read so far may match in several places ("the" in "the news of the day").
"""

from __future__ import annotations

import functools
import re

from skilltune.pairs import copied_params  # the rule datagen expands slots and checks pairs by
from skilltune.skills import Skill


def copied_by_skill(skills: list[Skill]) -> dict[str, frozenset[str]]:
    """Skill name -> the parameters whose values it copies from the request."""
    return {skill.name: frozenset(copied_params(skill)) for skill in skills if copied_params(skill)}


# sounds a speaker makes while thinking; unlike "like" or "so" they are never part of a name or a note
HESITATIONS = frozenset({"um", "umm", "uh", "uhh", "er", "erm", "hmm"})
_WORD = re.compile(r"\S*")  # the request's word from a position on
APOSTROPHES = frozenset("'\u2019")  # typed and typographic


def _hesitation(word: str) -> bool:
    return word.strip(",.").lower() in HESITATIONS


def _starts_word(request: str, index: int, first: str) -> bool:
    """Whether a value beginning with `first` may start at `index`: not inside a word, and not after
    the apostrophe inside one (the "s" of "what's" or the "t" of "don't" ends a word, it is not a new one)."""
    if index == 0:
        return True
    before = request[index - 1]
    if before.isalnum() and first.isalnum():
        return False
    return not (before in APOSTROPHES and index >= 2 and request[index - 2].isalnum())


def _starts(value: str, request: str) -> list[int]:
    """Where `value` occurs in `request` starting on a word boundary, not with a space, not at a hesitation."""
    if not value or value[0].isspace():
        return []
    found, index = [], request.find(value)
    while index != -1:
        if _starts_word(request, index, value[0]) and not _hesitation(_WORD.match(request, index).group(0)):
            found.append(index)
        index = request.find(value, index + 1)
    return found


def _may_end(request: str, end: int) -> bool:
    """Whether a span may end at `end`: on a word boundary, not after a space, not after a hesitation."""
    before = request[:end].split()
    if not before or request[end - 1].isspace():
        return False
    if end < len(request) and request[end].isalnum() and request[end - 1].isalnum():
        return False
    return not _hesitation(before[-1])


@functools.lru_cache(maxsize=64)
def _last_end(request: str) -> int:
    """The furthest place a span of `request` may end; 0 when none may."""
    return next((end for end in range(len(request), 0, -1) if _may_end(request, end)), 0)


def may_start(value: str, request: str) -> bool:
    """True when `value` (non-empty) is the beginning of some span of `request`: it starts where a
    span may start and a span may still end at or after its end, so decoding never walks into a
    value it cannot close ("um" in "open um filezilla", "filezilla uh" at the request's end)."""
    return any(start + len(value) <= _last_end(request) for start in _starts(value, request))


def is_span(value: str, request: str) -> bool:
    """True when `value` is a whole span: it also ends where a span may end."""
    return any(_may_end(request, start + len(value)) for start in _starts(value, request))
