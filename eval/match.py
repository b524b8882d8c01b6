"""Compare a parsed prediction with the gold call: exact match of name and keyword arguments.

Every check returns one shape, as the Berkeley Function Calling Leaderboard's checker does:
`{"valid": bool, "error": [messages], "error_type": "family:detail" or None}`.
Argument order never matters (`f(a="1", b="2")` equals `f(b="2", a="1")`); values must be equal
after parsing, so `"Berlin"` and `'Berlin'` match while `"berlin"` does not.
"""

from __future__ import annotations

from datagen.calls import Call
from eval.parse import Parsed


def match_call(predicted: Parsed, gold: Call) -> dict:
    if predicted.call is None:
        return {"valid": False, "error": ["the output holds no parseable call"], "error_type": predicted.error_type}
    call = predicted.call
    if call.name != gold.name:
        return {
            "valid": False,
            "error": [f"called {call.name}() instead of {gold.name}()"],
            "error_type": "name:mismatch",
        }
    errors = []
    missing = sorted(set(gold.arguments) - set(call.arguments))
    unexpected = sorted(set(call.arguments) - set(gold.arguments))
    if missing:
        errors.append(("args:missing", f"missing argument(s): {', '.join(missing)}"))
    if unexpected:
        errors.append(("args:unexpected", f"unexpected argument(s): {', '.join(unexpected)}"))
    for name in sorted(set(gold.arguments) & set(call.arguments)):
        if call.arguments[name] != gold.arguments[name]:
            errors.append(("args:value", f"{name}={call.arguments[name]!r}, expected {gold.arguments[name]!r}"))
    if errors:
        return {"valid": False, "error": [message for _, message in errors], "error_type": errors[0][0]}
    return {"valid": True, "error": [], "error_type": None}
