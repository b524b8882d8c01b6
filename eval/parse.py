"""Model text -> a call, never executing anything.

The tuned model answers with the call alone (`weather(location="Berlin")`); a base model often
wraps it in chatter. The whole text is tried first, then each line on its own, then each
`name(...)` span inside a line ("Sure! weather(location=\"Berlin\") should do it"). A JSON-style
answer (`{"function_call": {"name": ..., "arguments": {...}}}`) is read with `json`. What does not
parse is a typed failure, not an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import json

from datagen.calls import Call, CallSyntaxError, call_from_json, parse_call

# a name followed by a parenthesised argument list that holds no further parentheses:
# enough for keyword calls with literal string values, which is what the skills take
_CALL_SPAN = re.compile(r"[A-Za-z_]\w*\((?:[^()\"']|\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')*\)")


def _is_inside_expression(before: str) -> bool:
    # `input()` in `weather(location=input())` is an argument, not the answer
    # and `system()` in `os.system()` is an attribute
    tail = before.rstrip()
    return before.endswith(".") or (bool(tail) and tail[-1] in "=(,[{")


@dataclass(frozen=True)
class Parsed:
    call: Call | None
    error_type: str | None = None  # "parse:empty" or "parse:no_call_found" when call is None

    @property
    def ok(self) -> bool:
        return self.call is not None


def parse_output(text: str) -> Parsed:
    """The first call found in `text`, searched whole text, then line by line, then by span."""
    stripped = text.strip().strip("`").strip()
    if not stripped:
        return Parsed(None, "parse:empty")
    if stripped.startswith("{"):  # the json answer style: {"function_call": {...}}
        try:
            return Parsed(call_from_json(json.loads(stripped)))
        except (json.JSONDecodeError, CallSyntaxError):
            pass
    candidates = [stripped] + [line.strip() for line in stripped.splitlines()]
    candidates += [
        match.group(0)
        for line in stripped.splitlines()
        for match in _CALL_SPAN.finditer(line)
        if not _is_inside_expression(line[: match.start()])
    ]
    for candidate in candidates:
        try:
            return Parsed(parse_call(candidate))
        except CallSyntaxError:
            continue
    return Parsed(None, "parse:no_call_found")
