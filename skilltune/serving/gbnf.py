"""GBNF text: the grammar format llama.cpp (and llama-cpp-python) constrains generation with.

Only the part of the format the call grammar needs is written, in its plainest spelling:

    # comment
    name ::= alternative | alternative        one rule a line: a newline ends a rule outside ( )
    "text"                                    a literal; `"` and `\\` escaped, anything outside
                                              printable ASCII as \\xHH, \\uHHHH or \\UHHHHHHHH
    [^\\x22\\x5C\\x00-\\x1F]                       a character class; every member escaped, so no
                                              character of it can read as syntax (`]`, `-`, `^`)
    ( a | b )   x*   x+   x?                  grouping and repetition

Rule names are `[a-zA-Z0-9-]+` (llama.cpp's word characters); `root` is where matching starts.
llama.cpp matches code points, so every escape here names a code point, never a byte.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

NAME = re.compile(r"[a-zA-Z0-9-]+")


def _escaped(code: int) -> str:
    if code <= 0xFF:
        return f"\\x{code:02X}"
    if code <= 0xFFFF:
        return f"\\u{code:04X}"
    return f"\\U{code:08X}"


def literal(text: str) -> str:
    """`text` as a GBNF literal that matches exactly its characters."""
    if not text:
        raise ValueError("GBNF has no empty literal; leave the item out instead")
    parts = []
    for char in text:
        if char in '"\\':
            parts.append("\\" + char)
        elif " " <= char <= "~":
            parts.append(char)
        else:
            parts.append(_escaped(ord(char)))
    return '"' + "".join(parts) + '"'


def char_class(ranges: Iterable[tuple[int, int]], negated: bool = False) -> str:
    """A class of code point ranges (inclusive); `negated`: every code point outside them."""
    members = []
    for low, high in ranges:
        if not 0 <= low <= high <= 0x10FFFF:
            raise ValueError(f"bad code point range {low:#x}-{high:#x}")
        members.append(_escaped(low) if low == high else f"{_escaped(low)}-{_escaped(high)}")
    if not members:
        raise ValueError("GBNF has no empty character class")
    return "[" + ("^" if negated else "") + "".join(members) + "]"


def group(alternatives: Sequence[str]) -> str:
    """One item matching any of `alternatives` (each a sequence of items, as text)."""
    return alternatives[0] if len(alternatives) == 1 else "(" + " | ".join(alternatives) + ")"


@dataclass(frozen=True)
class Rule:
    name: str
    alternatives: tuple[str, ...]  # each a space-separated sequence of items
    comment: str = ""  # a line of its own above the rule, for a reader of the file


def render(rules: Sequence[Rule]) -> str:
    """The grammar file: the rules in order, each on one line, names checked to be unique and valid."""
    seen: set[str] = set()
    lines = []
    for rule in rules:
        if not NAME.fullmatch(rule.name):
            raise ValueError(f"{rule.name!r} is not a GBNF rule name ([a-zA-Z0-9-]+)")
        if rule.name in seen:
            raise ValueError(f"GBNF rule {rule.name} is defined twice")
        if not rule.alternatives:
            raise ValueError(f"GBNF rule {rule.name} has no alternatives")
        seen.add(rule.name)
        if rule.comment:
            lines.append("# " + " ".join(rule.comment.split()))  # a comment ends at the line's end
        lines.append(f"{rule.name} ::= {' | '.join(rule.alternatives)}")
    if "root" not in seen:
        raise ValueError("a GBNF grammar needs a root rule")
    return "\n".join(lines) + "\n"
