"""Compare parsed predictions with the gold calls, strictly or the way BFCL's checker does.

Every check returns one shape, as the Berkeley Function Calling Leaderboard's checker does:
`{"valid": bool, "error": [readable messages], "error_type": "family:detail" or None}`.

A gold call is an `Expected`: a name and, per argument, every acceptable value; "" among them means
the argument may be left out (BFCL's possible-answer format). A plain `Call` is one acceptable
value per argument. Gold `[]` or `[other()]` means no call is expected.

Strict: same name, every argument value equal after parsing with the same type (True is not 1, and
1 is not 1.0), argument order ignored, no missing or unexpected argument.
Lenient (BFCL): strings are compared lowercased without spaces and , . / - _ * ^ ' " (so "New York"
equals "new-york"), numbers by value (5 == 5.0), lists element by element and dicts key by key with
the same rules; with schemas an argument may also be left out, or given, at its schema "default".
Schemas (function name -> JSON Schema of the arguments object) add: an argument outside
"properties" is unexpected, a "required" one left out is missing, a value of the wrong JSON type
is args:type.

Error types, the first found is the row's:
  parse:*                     the output did not parse (eval/parse.py)
  relevance:unexpected_call   a call where none was expected
  relevance:missed_call       no call where one was expected
  calls:count                 a different number of calls
  name:mismatch               another function
  args:missing                an argument that may not be left out is absent
  args:unexpected             an argument the gold call (or the schema) does not have
  args:type                   a value of another type (a string for an integer, ...)
  args:value                  a value of the right type that is not acceptable
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from datagen.calls import NO_CALL_NAME, Call
from eval.parse import Parsed

# what lenient string comparison ignores, BFCL's set plus quotes and every kind of whitespace
_IGNORED_IN_STRINGS = re.compile(r"""[\s,./\-_*^'"]""")
# JSON Schema type -> the Python types of parsed values; bool is excluded from numbers below
_SCHEMA_TYPES = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


@dataclass(frozen=True)
class Expected:
    """One gold call with every acceptable value per argument; "" means it may be omitted."""

    name: str
    arguments: dict[str, list] = field(default_factory=dict)

    @classmethod
    def from_call(cls, call: Call) -> "Expected":
        return cls(call.name, {key: [value] for key, value in call.arguments.items()})

    def optional(self, argument: str) -> bool:
        return "" in self.arguments.get(argument, ())


def _expected(gold: Sequence[Call | Expected]) -> list[Expected]:
    """Gold calls as Expected, without other(): other() is the absence of a call."""
    expected = [item if isinstance(item, Expected) else Expected.from_call(item) for item in gold]
    return [item for item in expected if item.name != NO_CALL_NAME]


def _result(errors: list[tuple[str, str]]) -> dict:
    if not errors:
        return {"valid": True, "error": [], "error_type": None}
    return {"valid": False, "error": [message for _, message in errors], "error_type": errors[0][0]}


def _names(calls) -> str:
    return ", ".join(f"{call.name}()" for call in calls)


# --- values ----------------------------------------------------------------------------------


def _normalized(text: str) -> str:
    return _IGNORED_IN_STRINGS.sub("", text).lower()


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def same_value(predicted, gold, lenient: bool = False) -> bool:
    """Equal as parsed values: strictly with the same types all the way down, or leniently."""
    if lenient and _is_number(predicted) and _is_number(gold):
        return predicted == gold
    if lenient and isinstance(predicted, str) and isinstance(gold, str):
        return _normalized(predicted) == _normalized(gold)
    if type(predicted) is not type(gold):  # so True != 1 and 1 != 1.0 (strict) and "5" != 5
        return False
    if isinstance(gold, list):
        return len(predicted) == len(gold) and all(same_value(p, g, lenient) for p, g in zip(predicted, gold))
    if isinstance(gold, dict):
        return predicted.keys() == gold.keys() and all(same_value(predicted[k], gold[k], lenient) for k in gold)
    return predicted == gold


def _kind(value, lenient: bool) -> str:
    # the "type" in an args:type error; lenient mode does not tell int from float
    if lenient and _is_number(value):
        return "number"
    return type(value).__name__


def _acceptable(value, acceptable: list, lenient: bool) -> bool:
    return any(same_value(value, option, lenient) for option in acceptable)


def _schema_type_ok(value, schema: dict) -> bool:
    """The value has the JSON type the schema names (no "type", or an unknown one, accepts all)."""
    names = schema.get("type")
    names = [names] if isinstance(names, str) else names or []
    if not names or any(name not in _SCHEMA_TYPES for name in names):
        return True
    for name in names:
        if isinstance(value, _SCHEMA_TYPES[name]) and not (isinstance(value, bool) and name in ("integer", "number")):
            return True
    return False


# --- one call --------------------------------------------------------------------------------


def _at_default(argument: str, values: list, properties: dict, lenient: bool) -> bool:
    # lenient and schema-aware: leaving an argument out equals giving its default
    return lenient and "default" in properties.get(argument, {}) and _acceptable(
        properties[argument]["default"], values, lenient
    )


def _compare(call: Call, expected: Expected, lenient: bool, schema: dict | None) -> list[tuple[str, str]]:
    """Every way `call` differs from `expected`, as (error type, message); [] when it matches."""
    if call.name != expected.name:
        return [("name:mismatch", f"called {call.name}() instead of {expected.name}()")]
    given, gold = call.arguments, expected.arguments
    properties = schema.get("properties", {}) if schema else {}
    required = set(schema.get("required", ())) if schema else set()
    closed = schema is not None and "properties" in schema  # no argument outside "properties"
    missing = sorted(
        argument
        for argument, values in gold.items()
        if argument not in given
        and (argument in required or not ("" in values or _at_default(argument, values, properties, lenient)))
    )
    if required:
        missing += sorted(required.difference(given, missing))
    unexpected = sorted(
        argument
        for argument, value in given.items()
        if (closed and argument not in properties)
        or (argument not in gold and not _at_default(argument, [value], properties, lenient))
    )
    errors = []
    if missing:
        errors.append(("args:missing", f"missing argument(s): {', '.join(missing)}"))
    if unexpected:
        errors.append(("args:unexpected", f"unexpected argument(s): {', '.join(unexpected)}"))
    for argument in sorted(given):
        if argument in unexpected:
            continue
        value = given[argument]
        if argument in properties and not _schema_type_ok(value, properties[argument]):
            # checked even when the value would pass: 5.0 for an integer is a type error
            errors.append(("args:type", f"{argument}={value!r} is not of type {properties[argument]['type']}"))
            continue
        acceptable = gold.get(argument)
        if acceptable is None or _acceptable(value, acceptable, lenient):  # None: given at its default
            continue
        wanted = repr(acceptable[0]) if len(acceptable) == 1 else f"one of {acceptable!r}"
        gold_kinds = {_kind(option, lenient) for option in acceptable if option != ""}
        if gold_kinds and _kind(value, lenient) not in gold_kinds:
            kinds = " or ".join(sorted(gold_kinds))
            errors.append(("args:type", f"{argument}={value!r} is a {_kind(value, lenient)}, expected {kinds} {wanted}"))
        else:
            errors.append(("args:value", f"{argument}={value!r}, expected {wanted}"))
    return errors


def _pairs(calls: Sequence[Call], expected: Sequence[Expected], fits) -> dict[int, int]:
    """A largest pairing {expected index: call index} of distinct calls where fits(call, expected):
    augmenting paths (Kuhn's algorithm), so f(a=1), f(a=1) cannot both take one f(a=1)."""
    owner: dict[int, int] = {}  # call index -> expected index

    def place(gold: int, seen: set[int]) -> bool:
        for index, call in enumerate(calls):
            if index not in seen and fits(call, expected[gold]):
                seen.add(index)
                if index not in owner or place(owner[index], seen):
                    owner[index] = gold
                    return True
        return False

    for gold in range(len(expected)):
        place(gold, set())
    return {gold: index for index, gold in owner.items()}


# --- public ----------------------------------------------------------------------------------


def match_calls(
    parsed: Parsed,
    gold: Sequence[Call | Expected],
    *,
    lenient: bool = False,
    schemas: Mapping[str, dict] | None = None,
) -> dict:
    """Does the prediction make exactly the gold calls? Order of calls and of arguments is ignored."""
    expected = _expected(gold)
    if not parsed.ok:
        return _result([(parsed.error_type, f"the output tried to call something and did not parse ({parsed.error_type})")])
    if not expected:
        if parsed.is_no_call:
            return _result([])
        return _result([("relevance:unexpected_call", f"called {_names(parsed.calls)} where no call was expected")])
    if parsed.is_no_call:
        return _result([("relevance:missed_call", f"made no call where {_names(expected)} was expected")])
    calls = parsed.calls
    if len(calls) != len(expected):
        return _result([("calls:count", f"made {len(calls)} call(s) ({_names(calls)}), expected {len(expected)} ({_names(expected)})")])

    def compare(call: Call, gold_call: Expected) -> list[tuple[str, str]]:
        return _compare(call, gold_call, lenient, schemas.get(gold_call.name) if schemas else None)

    if len(expected) == 1:  # one call against one: its differences are the answer, nothing to pair
        return _result(compare(calls[0], expected[0]))
    pairs = _pairs(calls, expected, lambda call, gold_call: not compare(call, gold_call))
    if len(pairs) == len(expected):
        return _result([])
    # explain the first gold call left unpaired, against a leftover call of the same name if any
    gold_index = next(index for index in range(len(expected)) if index not in pairs)
    leftover = [call for index, call in enumerate(calls) if index not in pairs.values()]
    same_name = [call for call in leftover if call.name == expected[gold_index].name]
    return _result(compare((same_name or leftover)[0], expected[gold_index]))


def match_call(parsed: Parsed, gold: Call) -> dict:
    """One gold call (other() meaning none): what eval/score.py called before several calls."""
    return match_calls(parsed, [gold])


def argument_counts(
    parsed: Parsed, gold: Sequence[Call | Expected], *, lenient: bool = False
) -> tuple[int, int, int]:
    """(correct, predicted, expected) name=value pairs over all calls, for argument precision and
    recall. Each gold call is paired with the predicted call of its name that gets the most right;
    a pair with different names has nothing correct. Expected pairs are the arguments that may not
    be left out, plus optional ones the paired call gave (so recall never exceeds 1)."""
    expected = _expected(gold)
    calls = [call for call in parsed.calls if not call.is_no_call] if parsed.ok else []

    def correct(call: Call, gold_call: Expected) -> int:
        return sum(
            argument in gold_call.arguments and _acceptable(value, gold_call.arguments[argument], lenient)
            for argument, value in call.arguments.items()
        )

    right = wanted = 0
    unused = list(calls)
    for gold_call in expected:
        candidates = [call for call in unused if call.name == gold_call.name]
        best = max(candidates, key=lambda call: correct(call, gold_call), default=None)
        wanted += sum(not gold_call.optional(argument) for argument in gold_call.arguments)
        if best is not None:
            unused.remove(best)
            right += correct(best, gold_call)
            wanted += sum(gold_call.optional(argument) and argument in best.arguments for argument in gold_call.arguments)
    return right, sum(len(call.arguments) for call in calls), wanted
