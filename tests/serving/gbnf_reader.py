"""A small reader and matcher of GBNF text, so tests check the grammar file that is written.

It follows llama.cpp's parser (src/llama-grammar.cpp) for the part of GBNF it reads: rules
`name ::= alternates` ending at a newline outside parentheses, `|` that may be followed by a newline,
`#` comments, literals "..." and classes [...] / [^...] with the escapes \\x \\u \\U \\t \\r \\n \\\\ \\" \\[ \\]
\\-, rule references, ( groups ), `.`, and the repetitions * + ? {m} {m,} {m,n}. Token items (<...>)
are refused: the call grammar never writes them. Undefined rules are an error, as in llama.cpp.

Matching is over code points, as llama.cpp matches: `ends(item, pos)` is the set of positions where
`item` can stop when it starts at `pos`, memoised per text, so no backtracking order matters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WORD = re.compile(r"[a-zA-Z0-9-]+")
SIMPLE_ESCAPES = {"t": "\t", "r": "\r", "n": "\n", "\\": "\\", '"': '"', "[": "[", "]": "]", "-": "-"}
HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


class GbnfSyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class Lit:
    text: str


@dataclass(frozen=True)
class Chars:
    ranges: tuple[tuple[int, int], ...]
    negated: bool


@dataclass(frozen=True)
class Ref:
    name: str


@dataclass(frozen=True)
class AnyChar:
    pass


@dataclass(frozen=True)
class Alt:
    sequences: tuple[tuple, ...]


@dataclass(frozen=True)
class Repeat:
    item: object
    low: int
    high: int | None  # None: no upper bound


class Reader:
    def __init__(self, text: str):
        self.text, self.pos = text, 0
        self.rules: dict[str, Alt] = {}

    def peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.text[index] if index < len(self.text) else ""

    def fail(self, what: str):
        raise GbnfSyntaxError(f"{what} at offset {self.pos}: {self.text[self.pos : self.pos + 30]!r}")

    def space(self, newline_ok: bool) -> None:
        while self.peek() and (self.peek() in " \t#" or (newline_ok and self.peek() in "\r\n")):
            if self.peek() == "#":
                while self.peek() and self.peek() not in "\r\n":
                    self.pos += 1
            else:
                self.pos += 1

    def char(self) -> str:
        if self.peek() == "\\":
            kind = self.peek(1)
            if kind in HEX_ESCAPES:
                digits = self.text[self.pos + 2 : self.pos + 2 + HEX_ESCAPES[kind]]
                if len(digits) != HEX_ESCAPES[kind] or not re.fullmatch(r"[0-9a-fA-F]+", digits):
                    self.fail(f"expecting {HEX_ESCAPES[kind]} hex chars")
                self.pos += 2 + len(digits)
                return chr(int(digits, 16))
            if kind not in SIMPLE_ESCAPES:
                self.fail("unknown escape")
            self.pos += 2
            return SIMPLE_ESCAPES[kind]
        if not self.peek():
            self.fail("unexpected end of input")
        self.pos += 1
        return self.text[self.pos - 1]

    def grammar(self) -> dict[str, Alt]:
        self.space(True)
        while self.pos < len(self.text):
            self.rule()
        for alt in self.rules.values():
            self.check_refs(alt)
        return self.rules

    def check_refs(self, item) -> None:
        if isinstance(item, Ref) and item.name not in self.rules:
            raise GbnfSyntaxError(f"Undefined rule identifier '{item.name}'")
        if isinstance(item, Alt):
            for sequence in item.sequences:
                for element in sequence:
                    self.check_refs(element)
        if isinstance(item, Repeat):
            self.check_refs(item.item)

    def rule(self) -> None:
        match = WORD.match(self.text, self.pos)
        if not match:
            self.fail("expecting name")
        self.pos = match.end()
        self.space(False)
        if self.text[self.pos : self.pos + 3] != "::=":
            self.fail("expecting ::=")
        self.pos += 3
        self.space(True)
        if match[0] in self.rules:
            self.fail(f"rule {match[0]} defined twice")  # llama.cpp would silently keep the last one
        self.rules[match[0]] = self.alternates(nested=False)
        if self.peek() in ("\r", "\n"):
            self.pos += 1
        elif self.peek():
            self.fail("expecting newline or end")
        self.space(True)

    def alternates(self, nested: bool) -> Alt:
        sequences = [self.sequence(nested)]
        while self.peek() == "|":
            self.pos += 1
            self.space(True)
            sequences.append(self.sequence(nested))
        return Alt(tuple(sequences))

    def sequence(self, nested: bool) -> tuple:
        items: list = []
        while self.peek():
            char = self.peek()
            if char == '"':
                self.pos += 1
                text = []
                while self.peek() != '"':
                    text.append(self.char())
                self.pos += 1
                items.append(Lit("".join(text)))
            elif char == "[":
                self.pos += 1
                negated = self.peek() == "^"
                self.pos += negated
                ranges = []
                while self.peek() != "]":
                    low = self.char()
                    high = low
                    if self.peek() == "-" and self.peek(1) != "]":
                        self.pos += 1
                        high = self.char()
                    ranges.append((ord(low), ord(high)))
                self.pos += 1
                items.append(Chars(tuple(ranges), negated))
            elif WORD.match(char):
                match = WORD.match(self.text, self.pos)
                self.pos = match.end()
                items.append(Ref(match[0]))
            elif char == "(":
                self.pos += 1
                self.space(True)
                items.append(self.alternates(nested=True))
                if self.peek() != ")":
                    self.fail("expecting ')'")
                self.pos += 1
            elif char == ".":
                self.pos += 1
                items.append(AnyChar())
            elif char in "*+?{":
                if not items:
                    self.fail("expecting preceding item to */+/?/{")
                items.append(self.repeat(items.pop()))
                continue  # repeat() reads its own trailing space
            elif char in "<!":
                self.fail("token items are not read by this reader")
            else:
                break
            self.space(nested)
        return tuple(items)

    def repeat(self, item) -> Repeat:
        char = self.peek()
        self.pos += 1
        if char != "{":
            low, high = {"*": (0, None), "+": (1, None), "?": (0, 1)}[char]
        else:
            match = re.compile(r"\s*(\d+)\s*(?:(,)\s*(\d+)?\s*)?\}").match(self.text, self.pos)
            if not match:
                self.fail("expecting {m}, {m,} or {m,n}")
            self.pos = match.end()
            low = int(match[1])
            high = low if not match[2] else (int(match[3]) if match[3] else None)
        self.space(True)
        return Repeat(item, low, high)


def read_gbnf(text: str) -> dict[str, Alt]:
    """The rules of a GBNF text; GbnfSyntaxError where llama.cpp's parser would refuse it too."""
    rules = Reader(text).grammar()
    if "root" not in rules:
        raise GbnfSyntaxError("no root rule")
    return rules


class Matcher:
    """Which texts the grammar's `root` matches whole."""

    def __init__(self, text: str):
        self.rules = read_gbnf(text)

    def matches(self, text: str) -> bool:
        memo: dict = {}
        return len(text) in self._ends(self.rules["root"], 0, text, memo)

    def _ends(self, item, pos: int, text: str, memo: dict) -> frozenset[int]:
        key = (id(item), pos)
        if key in memo:
            return memo[key]
        memo[key] = frozenset()  # a rule reached again at the same place adds nothing (no left recursion)
        memo[key] = result = frozenset(self._step(item, pos, text, memo))
        return result

    def _step(self, item, pos: int, text: str, memo: dict):
        if isinstance(item, Lit):
            return {pos + len(item.text)} if text.startswith(item.text, pos) else set()
        if isinstance(item, Chars):
            if pos >= len(text):
                return set()
            inside = any(low <= ord(text[pos]) <= high for low, high in item.ranges)
            return {pos + 1} if inside != item.negated else set()
        if isinstance(item, AnyChar):
            return {pos + 1} if pos < len(text) else set()
        if isinstance(item, Ref):
            return self._ends(self.rules[item.name], pos, text, memo)
        if isinstance(item, Alt):
            ends = set()
            for sequence in item.sequences:
                here = {pos}
                for element in sequence:
                    here = {end for start in here for end in self._ends(element, start, text, memo)}
                ends |= here
            return ends
        if isinstance(item, Repeat):
            ends = {pos} if item.low == 0 else set()
            frontier, count = {pos}, 0
            while frontier and (item.high is None or count < item.high):
                frontier = {end for start in frontier for end in self._ends(item.item, start, text, memo)}
                count += 1
                new = frontier if count >= item.low else set()
                if item.high is None and count >= item.low and new <= ends:
                    break
                ends |= new
            return ends
        raise TypeError(f"unknown item {item!r}")
