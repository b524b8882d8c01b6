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

Values are model output, so hostile: a NaN equals nothing (not even a NaN), an int with thousands
of digits or past Python's limit on digits in a str is a wrong value like any other, never an
exception, and matching is linear in the number of arguments.

A scorer asks `judge_calls` for all three answers of a row at once (strict, lenient, argument
counts): one call against one gold call, the commonest wrong answer, is then compared once.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from eval.parse import Parsed
from skilltune.calls import NO_CALL_NAME, Call

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
    def from_call(cls, call: Call) -> Expected:
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


def _shown(value) -> str:
    """repr for an error message; an int past Python's limit on digits in a str (4,300 by
    default, sys.set_int_max_str_digits), alone or inside a list or dict, raises ValueError there."""
    try:
        return repr(value)
    except ValueError:
        return f"<{type(value).__name__} too long to show>"


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


def _at_default(argument: str, values: list, properties: dict) -> bool:
    # lenient and schema-aware: leaving an argument out equals giving its default
    return "default" in properties.get(argument, {}) and _acceptable(properties[argument]["default"], values, True)


def _value_error(
    argument: str, value, acceptable: list | None, accepted: bool, properties: dict, lenient: bool
) -> tuple[str, str] | None:
    """What is wrong with one given argument that is not unexpected, or None; `accepted` says
    whether its value is among the `acceptable` ones (None: not in the gold call, given at its
    default) in this mode."""
    if argument in properties and not _schema_type_ok(value, properties[argument]):
        # checked even when the value would pass: 5.0 for an integer is a type error
        return "args:type", f"{argument}={_shown(value)} is not of type {properties[argument]['type']}"
    if accepted:
        return None
    wanted = _shown(acceptable[0]) if len(acceptable) == 1 else f"one of {_shown(acceptable)}"
    gold_kinds = {_kind(option, lenient) for option in acceptable if option != ""}
    if gold_kinds and _kind(value, lenient) not in gold_kinds:
        kinds = " or ".join(sorted(gold_kinds))
        return "args:type", f"{argument}={_shown(value)} is a {_kind(value, lenient)}, expected {kinds} {wanted}"
    return "args:value", f"{argument}={_shown(value)}, expected {wanted}"


def _argument_errors(missing: list[str], unexpected: list[str], value_errors: list) -> list[tuple[str, str]]:
    errors = []
    if missing:
        errors.append(("args:missing", f"missing argument(s): {', '.join(missing)}"))
    if unexpected:
        errors.append(("args:unexpected", f"unexpected argument(s): {', '.join(unexpected)}"))
    return errors + value_errors


@dataclass(frozen=True)
class _Comparison:
    """One call against one gold call in both modes: the errors, as (error type, message), [] when
    it matches; and how many of its arguments are strictly right (argument precision and recall)."""

    strict: list[tuple[str, str]]
    lenient: list[tuple[str, str]]
    correct: int

    def errors(self, lenient: bool) -> list[tuple[str, str]]:
        return self.lenient if lenient else self.strict


def _compare(call: Call, expected: Expected, schema: dict | None) -> _Comparison:
    """Every way `call` differs from `expected`, strictly and leniently, in one pass over its
    arguments. Lenient only relaxes strict (a value equal strictly is equal leniently, and a
    default only excuses), so an argument strict accepts needs no second look."""
    if call.name != expected.name:
        error = [("name:mismatch", f"called {call.name}() instead of {expected.name}()")]
        return _Comparison(error, error, 0)
    given, gold = call.arguments, expected.arguments
    properties = schema.get("properties", {}) if schema else {}
    required = set(schema.get("required", ())) if schema else set()
    closed = schema is not None and "properties" in schema  # no argument outside "properties"
    # a required argument the gold call lacks is missing in both modes
    absent_required = sorted(required.difference(given, gold))
    missing = sorted(
        argument
        for argument, values in gold.items()
        if argument not in given and (argument in required or "" not in values)
    )
    lenient_missing = [
        argument
        for argument in missing
        if argument in required or not _at_default(argument, gold[argument], properties)
    ]
    unexpected = sorted(
        argument for argument in given if (closed and argument not in properties) or argument not in gold
    )
    lenient_unexpected = [
        argument
        for argument in unexpected
        if (closed and argument not in properties) or not _at_default(argument, [given[argument]], properties)
    ]
    # the lists above are sorted for the messages; asking a list for each argument was quadratic
    # (100,000 unexpected arguments took minutes)
    unexpected_set, lenient_unexpected_set = set(unexpected), set(lenient_unexpected)
    correct = 0
    strict_errors, lenient_errors = [], []
    for argument in sorted(given):
        value, acceptable = given[argument], gold.get(argument)
        right = acceptable is not None and _acceptable(value, acceptable, False)
        correct += right
        strict_error = None
        if argument not in unexpected_set:
            strict_error = _value_error(argument, value, acceptable, right, properties, lenient=False)
            if strict_error:
                strict_errors.append(strict_error)
        if argument in lenient_unexpected_set:
            continue
        if strict_error or argument in unexpected_set:  # what strict accepts, lenient accepts
            accepted = right or acceptable is None or _acceptable(value, acceptable, True)
            lenient_error = _value_error(argument, value, acceptable, accepted, properties, lenient=True)
            if lenient_error:
                lenient_errors.append(lenient_error)
    return _Comparison(
        _argument_errors(missing + absent_required, unexpected, strict_errors),
        _argument_errors(lenient_missing + absent_required, lenient_unexpected, lenient_errors),
        correct,
    )


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
        return _result(
            [(parsed.error_type, f"the output tried to call something and did not parse ({parsed.error_type})")]
        )
    if not expected:
        if parsed.is_no_call:
            return _result([])
        return _result([("relevance:unexpected_call", f"called {_names(parsed.calls)} where no call was expected")])
    if parsed.is_no_call:
        return _result([("relevance:missed_call", f"made no call where {_names(expected)} was expected")])
    calls = parsed.calls
    if len(calls) != len(expected):
        return _result(
            [
                (
                    "calls:count",
                    f"made {len(calls)} call(s) ({_names(calls)}), expected {len(expected)} ({_names(expected)})",
                )
            ]
        )

    def compare(call: Call, gold_call: Expected) -> list[tuple[str, str]]:
        return _compare(call, gold_call, schemas.get(gold_call.name) if schemas else None).errors(lenient)

    if len(expected) == 1:  # one call against one: its differences are the answer, nothing to pair
        return _result(compare(calls[0], expected[0]))
    pairs = _pairs(calls, expected, lambda call, gold_call: not compare(call, gold_call))
    if len(pairs) == len(expected):
        return _result([])
    # explain the first gold call left unpaired, against a leftover call of the same name if any
    gold_index = next(index for index in range(len(expected)) if index not in pairs)
    paired = set(pairs.values())
    leftover = [call for index, call in enumerate(calls) if index not in paired]
    same_name = [call for call in leftover if call.name == expected[gold_index].name]
    return _result(compare((same_name or leftover)[0], expected[gold_index]))


def match_call(parsed: Parsed, gold: Call) -> dict:
    """One gold call (other() meaning none): what eval/score.py called before several calls."""
    return match_calls(parsed, [gold])


def _wanted(gold_call: Expected, call: Call | None) -> int:
    # the gold call's arguments that may not be left out, plus the optional ones the call gave
    given = call.arguments if call is not None else {}
    return sum(not gold_call.optional(argument) or argument in given for argument in gold_call.arguments)


def argument_counts(parsed: Parsed, gold: Sequence[Call | Expected], *, lenient: bool = False) -> tuple[int, int, int]:
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
        wanted += _wanted(gold_call, best)
        if best is not None:
            unused.remove(best)
            right += correct(best, gold_call)
    return right, sum(len(call.arguments) for call in calls), wanted


@dataclass(frozen=True)
class Verdict:
    """What a scorer needs of one prediction: match_calls strictly and leniently, and the strict
    argument_counts (correct, predicted, expected)."""

    strict: dict
    lenient: dict
    arguments: tuple[int, int, int]


def judge_calls(
    parsed: Parsed, gold: Sequence[Call | Expected], *, schemas: Mapping[str, dict] | None = None
) -> Verdict:
    """match_calls(strict), match_calls(lenient) and argument_counts of one prediction, with the
    same answers as asking each. One call against one gold call of its name, the commonest wrong
    answer, is compared once for all three (asking each compared it three times)."""
    expected = _expected(gold)
    calls = parsed.calls
    if parsed.ok and len(expected) == 1 and len(calls) == 1 and calls[0].name == expected[0].name:
        call, gold_call = calls[0], expected[0]
        comparison = _compare(call, gold_call, schemas.get(gold_call.name) if schemas else None)
        return Verdict(
            _result(comparison.strict),
            _result(comparison.lenient),
            (comparison.correct, len(call.arguments), _wanted(gold_call, call)),
        )
    strict = match_calls(parsed, expected, schemas=schemas)
    # lenient differs from strict only in how argument values and defaults compare: a failure
    # before the arguments (parse, relevance, count of calls, name) stands
    lenient = strict
    if not strict["valid"] and strict["error_type"].startswith("args:"):
        lenient = match_calls(parsed, expected, lenient=True, schemas=schemas)
    return Verdict(strict, lenient, argument_counts(parsed, expected))
