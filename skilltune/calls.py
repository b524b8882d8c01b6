"""Function calls as data: parse Python call syntax with `ast` and write it back.

A call is text such as `weather(location="Berlin")`. It is parsed, never executed:
only a bare name called with keyword arguments whose values are literals is accepted.
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from skilltune.jsonio import loads

NO_CALL_NAME = "other"


class CallSyntaxError(ValueError):
    """The text is not a single keyword-only call with literal values."""


@dataclass(frozen=True)
class Call:
    name: str
    arguments: dict = field(default_factory=dict)

    @property
    def is_no_call(self) -> bool:
        return self.name == NO_CALL_NAME

    def to_python(self) -> str:
        """`weather(location="Berlin")`; keyword order is kept as given."""
        args = ", ".join(f"{key}={value_text(value)}" for key, value in self.arguments.items())
        return f"{self.name}({args})"


def value_text(value) -> str:
    # strings as JSON strings: the double quotes the training targets use, and escapes (\n, \", \\,
    # \u0007) that are also valid Python, so a note with a line break still parses back
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):  # its strings quoted the same way (repr would write 'a')
        return "[" + ", ".join(value_text(item) for item in value) + "]"
    return repr(value)


def parse_call(text: str) -> Call:
    """Parse one call such as `notes(action="add", note="milk")`.

    Raises CallSyntaxError with a short reason for anything else: not Python, not a call,
    an attribute or computed callee, positional arguments, `**kwargs`, repeated keywords,
    or values that are not literals (`f(x=open("a"))`).
    """
    return _call_from_node(_expression(text))


def parse_calls(text: str) -> list[Call]:
    """One call, or a Python list of two or more: `[timer(duration="ten minutes"), notes(action="list")]`.

    Each element follows parse_call's rules; a list of one call, an empty list, or other() among
    several calls (other() means no call at all) is a CallSyntaxError: calls_to_python never
    writes them, so a gold answer has one spelling."""
    node = _expression(text)
    if not isinstance(node, ast.List):
        return [_call_from_node(node)]
    if len(node.elts) < 2:
        raise CallSyntaxError("a list of calls holds two or more; one call is written alone")
    calls = [_call_from_node(element) for element in node.elts]
    return several_calls_checked(calls)


def several_calls_checked(calls: list[Call]) -> list[Call]:
    """`calls` when they can be one answer: one call, or two or more without other()."""
    if len(calls) > 1 and any(call.is_no_call for call in calls):
        raise CallSyntaxError(f"{NO_CALL_NAME}() means no call; it cannot be one of several calls")
    return calls


def calls_to_python(calls: list[Call]) -> str:
    """The answer text of one or more calls: the call itself, or a Python list of them."""
    if len(calls) == 1:
        return calls[0].to_python()
    return f"[{', '.join(call.to_python() for call in calls)}]"


def _expression(text: str) -> ast.expr:
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise CallSyntaxError(f"not Python call syntax: {err.msg}") from None
    return tree.body


def _call_from_node(node: ast.expr) -> Call:
    if not isinstance(node, ast.Call):
        raise CallSyntaxError("not a function call")
    if not isinstance(node.func, ast.Name):
        raise CallSyntaxError("the function must be a plain name")
    if node.args:
        raise CallSyntaxError("positional arguments are not allowed; use name=value")
    arguments = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            raise CallSyntaxError("**kwargs is not allowed")
        if keyword.arg in arguments:
            raise CallSyntaxError(f"argument {keyword.arg!r} is given twice")
        try:
            arguments[keyword.arg] = ast.literal_eval(keyword.value)
        except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
            raise CallSyntaxError(f"argument {keyword.arg!r} is not a literal value") from None
        problem = json_value_problem(arguments[keyword.arg])
        if problem:
            raise CallSyntaxError(f"argument {keyword.arg!r}: {problem}")
    return Call(node.func.id, arguments)


def json_value_problem(value) -> str | None:
    """Why a literal cannot be a JSON value (every call is also sent as JSON), or None.

    1e999 is infinity and NaN follows from it; bytes, sets and complex numbers have no JSON form."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return f"{item} is not a JSON number"
        if isinstance(item, (bytes, set, frozenset, complex)):
            return f"a {type(item).__name__} value has no JSON form"
        if isinstance(item, dict):
            if not all(isinstance(key, str) for key in item):
                return "dictionary keys must be strings"
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return None


def call_to_json(call: Call) -> dict:
    """The JSON style's answer: `{"function_call": {"name": ..., "arguments": {...}}}`."""
    return {"function_call": {"name": call.name, "arguments": dict(call.arguments)}}


def call_from_json(obj) -> Call:
    """Read `{"function_call": {"name", "arguments"}}`; `arguments` may be a dict or a JSON string."""
    if not isinstance(obj, dict) or not isinstance(obj.get("function_call"), dict):
        raise CallSyntaxError('expected {"function_call": {"name": ..., "arguments": {...}}}')
    return call_from_function(obj["function_call"])


def call_from_tool_call(tool_call) -> Call:
    """Read an OpenAI tool call: `{"type": "function", "function": {"name", "arguments": "<json>"}}`."""
    if not isinstance(tool_call, dict) or not isinstance(tool_call.get("function"), dict):
        raise CallSyntaxError('expected {"type": "function", "function": {"name": ..., "arguments": "..."}}')
    return call_from_function(tool_call["function"])


@dataclass(frozen=True)
class FunctionReading:
    """What readers of a `{"name", "arguments"}` object differ in. Records are data this project
    wrote, read exactly (RECORD_FUNCTIONS); model output is read as leniently as models write it
    (eval/parse.py's MODEL_FUNCTIONS: dotted names, `parameters`, null arguments, NaN)."""

    is_name: Callable[[str], bool]  # a function name it accepts
    argument_keys: tuple[str, ...]  # where the arguments may stand, the first key present wins
    decode: Callable[[str], object]  # arguments given as a JSON string -> value; raises ValueError
    null_is_empty: bool  # `"arguments": null` reads as no arguments


RECORD_FUNCTIONS = FunctionReading(
    is_name=str.isidentifier, argument_keys=("arguments",), decode=loads, null_is_empty=False
)


def call_from_function(function: dict, reading: FunctionReading = RECORD_FUNCTIONS) -> Call:
    """`{"name": ..., "arguments": {...} or "<json>"}` -> Call, read as `reading` says.

    Raises CallSyntaxError with a short reason when the name or the arguments are not acceptable."""
    name = function.get("name")
    if not isinstance(name, str) or not reading.is_name(name):
        raise CallSyntaxError(f"function name {name!r} is not an identifier")
    arguments = next((function[key] for key in reading.argument_keys if key in function), {})
    if isinstance(arguments, str):  # OpenAI sends the arguments as a JSON string
        try:
            arguments = reading.decode(arguments) if arguments.strip() else {}
        except ValueError as err:  # syntax, NaN, an integer too long to read
            raise CallSyntaxError(f"arguments are not JSON: {getattr(err, 'msg', err)}") from None
    if arguments is None and reading.null_is_empty:
        arguments = {}
    if not isinstance(arguments, dict):
        raise CallSyntaxError("arguments must be a JSON object")
    return Call(name, arguments)
