"""JSON objects inside chatter, found in time linear in the text (model output is hostile data).

eval/parse.py reads a call-shaped JSON object a model wrote inside prose ("Here you go:
{"name": ...}") with `json_objects_in`; which of the objects are calls is parse.py's to decide.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

# the bracket that closes each opening one
CLOSERS = {"(": ")", "[": "]", "{": "}"}
# where a JSON object with a key may start in chatter: "{" then optional whitespace and a quote
# (`{}` holds no call); the regex engine skips everything else, so a megabyte of "{" is one search
_OBJECT_START = re.compile(r'\{(?=[ \t\n\r]*")')
# one JSON token after optional whitespace, as json.loads reads them (NaN and Infinity included);
# a string cannot hold a raw control character or an unknown escape
_JSON_TOKEN = re.compile(
    r'[ \t\n\r]*(?:(?P<string>"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*")'
    r"|(?P<scalar>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false|null|NaN|-?Infinity)"
    r"|(?P<mark>[][{}:,]))"
)


def json_objects_in(text: str) -> Iterator[object]:
    """The JSON objects in `text`, decoded, left to right; one inside an earlier object is part of
    it. An object that is JSON to the last brace but will not decode comes as None.

    Left to right, the first "{" that opens a whole JSON object is taken, and the search goes on
    after it. Decoding from every "{" was quadratic: each failure built a JSONDecodeError, which
    counts the lines from the start of the text. Instead `_scan_object` reads an object token by
    token and notes the answer for every "{" it reads as a bracket (the same as reading from that
    "{"), so a read starts only at a "{" that earlier reads saw inside a string. Two reads that
    disagree there see every later quote the other way round (a backslash outside a string ends
    a read), so no third one starts where both went: a character is read at most twice, and only
    complete objects are decoded, each character at most once."""
    ends: dict[int, int | None] = {}  # "{" position -> index past its object, None: not JSON
    resume = 0
    for start in _OBJECT_START.finditer(text):
        position = start.start()
        if position < resume:
            continue
        if position not in ends:
            _scan_object(text, position, ends)
        end = ends[position]
        if end is None:
            continue
        yield _decoded(text[position:end])
        resume = end


def _decoded(source: str):
    """json.loads, None when it fails: an object `_scan_object` accepted can still hold a number
    over Python's 4,300-digit limit, or be nested deeper than the decoder recurses (the object is
    then passed over whole)."""
    try:
        return json.loads(source)
    except (ValueError, RecursionError):
        return None


def _scan_object(text: str, start: int, ends: dict[int, int | None]) -> None:
    """Read the JSON object at text[start] ("{") token by token as far as it is JSON, without
    building it, and note in `ends` where it and every object opened inside it end: the index
    past its "}", or None for those still open where the text stops being JSON."""
    containers: list[tuple[str, int]] = []  # each open "{" or "[" and where it opened
    expect = "value"  # what may come next: a value, a key, a colon or a comma
    closable = False  # whether the open container may close here: just opened, or after a value
    position = start
    while token := _JSON_TOKEN.match(text, position):
        kind = token.lastgroup
        piece = token.group(kind)
        if kind != "mark":  # a string or a scalar
            if expect == "key" and kind == "string":
                expect, closable = "colon", False
            elif expect == "value":
                expect, closable = "comma", True
            else:
                break
        elif piece in "{[" and expect == "value":
            containers.append((piece, token.start(kind)))
            expect, closable = ("key" if piece == "{" else "value"), True
        elif piece in "}]" and closable and CLOSERS[containers[-1][0]] == piece:
            opened, begun = containers.pop()
            if opened == "{":
                ends[begun] = token.end()
            if not containers:
                return
            expect, closable = "comma", True
        elif piece == ":" and expect == "colon":
            expect, closable = "value", False
        elif piece == "," and expect == "comma":
            expect, closable = ("key" if containers[-1][0] == "{" else "value"), False
        else:
            break
        position = token.end()
    for opened, begun in containers:
        if opened == "{":
            ends[begun] = None
