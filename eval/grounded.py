"""Grounded values: a value the skill copies from the request may only be a span of the request.

A span is a piece of the request, exactly as written (case, spelling and inner spaces kept), that
starts and ends on a word boundary: "weather in Berlin please" has the spans "Berlin",
"in Berlin" and "Berlin please", not " Berlin", "erlin" or "berlin". That rules out the value errors
a small model makes most: a leading space, capitals changed, a word half copied, a word the request
never said. Nor does a span start or end with a hesitation ("um", "uh"): in a transcript they sit
next to the value ("open um filezilla"), never in it. Which parameters are copied is the pack's own
knowledge (skilltune.pairs.copied_params: those its examples always say verbatim), so math's
question, which the examples rewrite, stays free.

The checks are per character, as constrained decoding steps: `may_start` says whether a value
written so far can still grow into a span, `is_span` whether it is one. Both look at every
occurrence, since the value read so far may match in several places ("the" in "the news of the day").
"""

from __future__ import annotations

from skilltune.pairs import copied_params  # the rule datagen expands slots and checks pairs by
from skilltune.skills import Skill


def copied_by_skill(skills: list[Skill]) -> dict[str, frozenset[str]]:
    """Skill name -> the parameters whose values it copies from the request."""
    return {skill.name: frozenset(copied_params(skill)) for skill in skills if copied_params(skill)}


# sounds a speaker makes while thinking; unlike "like" or "so" they are never part of a name or a note
HESITATIONS = frozenset({"um", "umm", "uh", "uhh", "er", "erm", "hmm"})


def _hesitation(word: str) -> bool:
    return word.strip(",.").lower() in HESITATIONS


def _starts(value: str, request: str) -> list[int]:
    """Where `value` occurs in `request` starting on a word boundary (and not with a space)."""
    if not value or value[0].isspace():
        return []
    found, index = [], request.find(value)
    while index != -1:
        if index == 0 or not (request[index - 1].isalnum() and value[0].isalnum()):
            found.append(index)
        index = request.find(value, index + 1)
    return found


def may_start(value: str, request: str) -> bool:
    """True when `value` (non-empty) is the beginning of some span of `request`."""
    first, space, _ = value.partition(" ")
    return not (space and _hesitation(first)) and bool(_starts(value, request))


def is_span(value: str, request: str) -> bool:
    """True when `value` is a whole span: it also ends on a word boundary, and not with a space."""
    if not value or value[-1].isspace():
        return False
    words = value.split()
    if _hesitation(words[0]) or _hesitation(words[-1]):
        return False
    for start in _starts(value, request):
        end = start + len(value)
        if end == len(request) or not (request[end].isalnum() and value[-1].isalnum()):
            return True
    return False
