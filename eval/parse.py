"""Model text -> the calls it makes, never executing anything.

Model output is data: Python call syntax is read with `ast` (only literal values are accepted) and
JSON with `json`. The formats understood, in the order they are tried:

  Hermes        `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, one block per call
  JSON          `{"function_call": {"name", "arguments"}}`, `{"name", "arguments" | "parameters"}`,
                OpenAI `{"tool_calls": [{"type": "function", "function": {...}}]}`, or a list of these;
                `arguments` may be an object or a JSON string
  Python        `weather(location="Berlin")`, dotted names (`math.factorial(number=5)`), several calls
                as a list `[f(a=1), g(b=2)]` or one per line, all of it possibly inside chatter or
                markdown code fences
  JSON in text  a call-shaped JSON object inside chatter, when no Python call was found (the
                scanner that finds JSON objects in chatter is eval/json_scan.py)

Every step reads the text in time linear in its length (model output is hostile data: a megabyte
of "{" must not take minutes), and an output over MAX_OUTPUT_CHARS is not read at all.

Text with nothing call-like (empty output, "Sorry, I can't set timers.") is no call: `Parsed(())`.
`other()` is the explicit no-call answer. Text that tries to call something and fails is a typed
failure, `Parsed((), "parse:<detail>")`, never an exception. The details (PARSE_ERRORS):

  parse:syntax       unbalanced or invalid Python (a truncated `weather(location="Ber`), or a list
                     of calls that holds something else
  parse:non_literal  an argument value is an expression, not a literal (`f(x=open("a"))`, `f(x=y)`)
  parse:positional   a positional argument without a known signature, or more than it has
  parse:keyword      an argument given twice, or `*args` / `**kwargs`
  parse:json         JSON (or a <tool_call> block) that does not decode or is not shaped like a call
  parse:too_long     longer than MAX_OUTPUT_CHARS characters (a call answer is short; this is runaway
                     generation or junk), whatever it holds
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from eval.json_scan import CLOSERS, json_objects_in
from skilltune.calls import Call, CallSyntaxError, FunctionReading, call_from_function

PARSE_ERRORS = (
    "parse:syntax",
    "parse:non_literal",
    "parse:positional",
    "parse:keyword",
    "parse:json",
    "parse:too_long",
)
# far above any real answer (a call with a few arguments is under 1,000 characters), far below what
# would make scoring one row slow even for a linear parser
MAX_OUTPUT_CHARS = 100_000

# a function name as BFCL writes them too: `weather`, `math.factorial`
_NAME = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_FULL_NAME = re.compile(_NAME)
# where a call may start: a name right before "(", not itself the tail of a longer dotted name,
# so `os.system(` is one call named os.system, never a call named system
_CALL_START = re.compile(rf"(?<![\w.]){_NAME}(?=\()")
# markdown code fence markers (```python); their content stays
_FENCE = re.compile(r"```[\w+-]*")
_TOOL_CALL = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)
# what _closing steps through: string literals (whole, so the brackets in them do not count), an
# opening quote never closed (a one-line string ends at the line; a backslash escapes any
# character), and brackets; the text between them is skipped by the regex engine, not by Python
_BRACKET_SCAN = re.compile(
    r"""(?P<string>"{3}(?:[^\\]|\\.)*?"{3}|'{3}(?:[^\\]|\\.)*?'{3}"""
    r"""|(?!"{3})"(?:[^"\\\n]|\\.)*"|(?!'{3})'(?:[^'\\\n]|\\.)*')"""
    r"""|(?P<unclosed>"{3}|'{3}|["'])|(?P<opening>[(\[{])|(?P<closing>[)\]}])""",
    re.DOTALL,
)


@dataclass(frozen=True)
class Parsed:
    calls: tuple[Call, ...] = ()  # calls found, in order; () when none
    error_type: str | None = None  # "parse:<detail>" when the text tried to call something and failed

    @property
    def ok(self) -> bool:
        return self.error_type is None

    @property
    def is_no_call(self) -> bool:
        """Parsed, and no real call: empty output, plain chatter or `other()`."""
        return self.error_type is None and all(call.is_no_call for call in self.calls)

    @property
    def call(self) -> Call | None:
        """The first call (what callers used before several calls were read)."""
        return self.calls[0] if self.calls else None


class _Failure(Exception):
    """Internal: carries a parse:<detail> out of nested helpers to parse_output."""

    def __init__(self, error_type: str):
        super().__init__(error_type)
        self.error_type = error_type


def parse_output(
    text: str, signatures: Mapping[str, Sequence[str]] | None = None, *, max_chars: int | None = MAX_OUTPUT_CHARS
) -> Parsed:
    """The calls in a model's output; `signatures` (name -> parameter names in order) maps
    positional arguments to names, so `weather("Berlin")` reads as `weather(location="Berlin")`.
    A text over `max_chars` characters is parse:too_long (None: no limit, for benchmarks)."""
    if max_chars is not None and len(text) > max_chars:
        return Parsed((), "parse:too_long")
    stripped = _FENCE.sub("\n", text).strip()
    if not stripped:
        return Parsed()
    try:
        if "<tool_call>" in stripped:
            return Parsed(_hermes_calls(stripped, signatures))
        if stripped[0] in "{[":
            calls = _json_text_calls(stripped)
            if calls is not None:
                return Parsed(calls)
        calls = _python_calls(stripped, signatures)
        if calls is None:
            calls = _embedded_json_calls(stripped)
        if calls is None and stripped[0] == "{":
            # it opened like a JSON answer and nothing decoded: a broken (often truncated) attempt
            raise _Failure("parse:json")
        return Parsed(calls or ())
    except _Failure as failure:
        return Parsed((), failure.error_type)


# --- JSON ------------------------------------------------------------------------------------


def _json_text_calls(text: str) -> tuple[Call, ...] | None:
    """The calls of a text that is one JSON value; None when it is not JSON at all (a Python list
    of calls also starts with "[")."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return _calls_from_json(value)


def _calls_from_json(value) -> tuple[Call, ...]:
    """Any accepted JSON shape -> calls; anything else is parse:json."""
    if isinstance(value, list):
        return tuple(call for item in value for call in _calls_from_json(item))
    if not isinstance(value, dict):
        raise _Failure("parse:json")
    if "tool_calls" in value:  # an OpenAI assistant message; null or [] means no call
        return _calls_from_json(value["tool_calls"] or [])
    if "function_call" in value:
        return (_call_from_function(value["function_call"]),)
    if "function" in value:  # one OpenAI tool call
        return (_call_from_function(value["function"]),)
    return (_call_from_function(value),)


def _lenient_json(text: str):
    try:
        return json.loads(text)  # NaN and Infinity too: a model's number is scored, not refused
    except RecursionError:
        raise ValueError("nested too deeply") from None


# model output names functions as BFCL does (`math.factorial`), and some models write `parameters`
MODEL_FUNCTIONS = FunctionReading(
    is_name=lambda name: bool(_FULL_NAME.fullmatch(name)),
    argument_keys=("arguments", "parameters"),
    decode=_lenient_json,
    null_is_empty=True,
)


def _call_from_function(function) -> Call:
    """`{"name": ..., "arguments" | "parameters": {...} or "<json>"}` -> Call; anything else is
    parse:json (the reason skilltune.calls gives is not kept: output scoring counts failure types)."""
    if not isinstance(function, dict):
        raise _Failure("parse:json")
    try:
        return call_from_function(function, MODEL_FUNCTIONS)
    except CallSyntaxError:
        raise _Failure("parse:json") from None


def _is_call_shaped(value) -> bool:
    # what makes a JSON object inside chatter an answer rather than a piece of data like {"name": "Bob"}
    if not isinstance(value, dict):
        return False
    keys = set(value)
    return bool({"function_call", "tool_calls", "function"} & keys) or (
        "name" in keys and bool({"arguments", "parameters"} & keys)
    )


def _embedded_json_calls(text: str) -> tuple[Call, ...] | None:
    """Call-shaped JSON objects inside chatter ("Here you go: {"name": ...}"); None when none."""
    calls = [call for value in json_objects_in(text) if _is_call_shaped(value) for call in _calls_from_json(value)]
    return tuple(calls) if calls else None


# --- Hermes ----------------------------------------------------------------------------------


def _hermes_calls(text: str, signatures) -> tuple[Call, ...]:
    """Every `<tool_call>...</tool_call>` block; a block cut off at the end of the text still counts
    (and fails), so a truncated answer is a failure rather than no call."""
    calls: list[Call] = []
    for block in _TOOL_CALL.findall(text):
        block = block.strip()
        if block.startswith("{"):
            try:
                value = json.loads(block)
            except (ValueError, RecursionError):
                raise _Failure("parse:json") from None
            calls.extend(_calls_from_json(value))
        else:  # some models put Python call syntax in the block
            calls.extend(_python_calls(block, signatures) or ())
    return tuple(calls)


# --- Python ----------------------------------------------------------------------------------


def _python_calls(text: str, signatures) -> tuple[Call, ...] | None:
    """Every call (or list of calls) in the text, chatter around it ignored; None when nothing
    call-like is there. Calls that parse win over spans that do not: prose holds parentheses
    too ("f(x) is the function"), and one good call is the answer. When every call-like span
    fails, the first failure is the result."""
    calls: list[Call] = []
    failure: _Failure | None = None
    position = 0
    while match := _CALL_START.search(text, position):
        start, opening = match.start(), match.end()
        # only the text since the last span matters: that span ended with ")" or "]", neither of
        # which makes this call a list or a value; all of text[:start] made many calls quadratic
        before = text[position:start].rstrip()
        if before.endswith("["):  # `[f(a=1), g(b=2)]`: the list is the span
            start = opening = position + len(before) - 1
            before = text[position:start].rstrip()
        end = _closing(text, opening)
        if _is_inside_expression(before):
            position = end or len(text)  # skip the value, and the calls in its arguments with it
            continue
        if end is None:  # unbalanced: a truncated call swallows the rest of the text
            failure = failure or _Failure("parse:syntax")
            break
        try:
            calls.extend(_calls_from_source(text[start:end], signatures))
        except _Failure as error:
            failure = failure or error
        position = end  # calls inside this span are its arguments, not answers
    if calls:
        return tuple(calls)
    if failure:
        raise failure
    return None


def _is_inside_expression(before: str) -> bool:
    # in `x = f(a=1)` the call is a value in code, not the answer; calls inside another call's
    # arguments (`weather(location=input())`) are skipped with that call's span, and a dotted
    # tail (`system` of `os.system(...)`) never starts a match at all
    return before.rstrip().endswith("=")


def _closing(text: str, opening: int) -> int | None:
    """The index just past the bracket that closes text[opening], skipping string literals;
    None when the text ends first, a string is left open, or a bracket closes the wrong one."""
    stack = [CLOSERS[text[opening]]]
    for token in _BRACKET_SCAN.finditer(text, opening + 1):
        kind, piece = token.lastgroup, token.group()
        if kind == "unclosed":
            return None
        if kind == "opening":
            stack.append(CLOSERS[piece])
        elif kind == "closing":
            if piece != stack.pop():
                return None
            if not stack:
                return token.end()
    return None


def _calls_from_source(source: str, signatures) -> list[Call]:
    """`f(a=1)` or `[f(a=1), g(b=2)]` -> calls."""
    try:
        node = ast.parse(source, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise _Failure("parse:syntax") from None
    nodes = node.elts if isinstance(node, (ast.List, ast.Tuple)) else [node]
    if not all(isinstance(item, ast.Call) for item in nodes):
        raise _Failure("parse:syntax")
    return [_call_from_node(item, signatures) for item in nodes]


def _dotted_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted_name(node.value)}.{node.attr}"
    raise _Failure("parse:syntax")  # a computed callee such as `f()()`


def _call_from_node(node: ast.Call, signatures) -> Call:
    name = _dotted_name(node.func)
    arguments: dict = {}
    if node.args:
        parameters = list((signatures or {}).get(name, ()))
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            raise _Failure("parse:keyword")
        if len(node.args) > len(parameters):
            raise _Failure("parse:positional")
        for parameter, value in zip(parameters, node.args):
            arguments[parameter] = _literal(value)
    for keyword in node.keywords:
        if keyword.arg is None or keyword.arg in arguments:  # **kwargs, or given twice
            raise _Failure("parse:keyword")
        arguments[keyword.arg] = _literal(keyword.value)
    return Call(name, arguments)


def _literal(node: ast.expr):
    """A literal value as JSON-like data: str, int, float, bool, None, lists (tuples become lists)
    and dicts. Anything else (names, calls, operators, sets, bytes) is parse:non_literal."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, (ast.USub, ast.UAdd))
        and isinstance(node.operand, ast.Constant)
        and type(node.operand.value) in (int, float)  # not bool: -True is not a literal
    ):
        return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(item) for item in node.elts]
    if isinstance(node, ast.Dict) and None not in node.keys:  # a None key is `**other`
        keys = [_literal(key) for key in node.keys]
        if all(isinstance(key, str) for key in keys):  # JSON objects have string keys
            return dict(zip(keys, (_literal(value) for value in node.values)))
    raise _Failure("parse:non_literal")
