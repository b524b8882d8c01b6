"""Score saved predictions: parse each output, match it against the gold call, aggregate.

A prediction row (eval/schemas/prediction.schema.json) holds the user text, the gold call as
Python text and the model's raw output, so scoring can be re-run without generating again.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from datagen.calls import parse_call
from eval.match import match_call
from eval.parse import parse_output


def judge(row: dict) -> dict:
    """One prediction row -> the row plus `parsed`, `valid`, `error`, `error_type`, `name_ok`."""
    gold = parse_call(row["gold"])
    parsed = parse_output(row["output"])
    result = match_call(parsed, gold)
    return {
        **row,
        "parsed": parsed.call.to_python() if parsed.call else None,
        "name_ok": parsed.call is not None and parsed.call.name == gold.name,
        **result,
    }


def _rates(judged: list[dict]) -> dict:
    n = len(judged)
    return {
        "n": n,
        "exact_match": sum(row["valid"] for row in judged) / n if n else 0.0,
        "name_accuracy": sum(row["name_ok"] for row in judged) / n if n else 0.0,
        "parse_failure_rate": sum(row["parsed"] is None for row in judged) / n if n else 0.0,
    }


def score(rows: list[dict], worst_per_skill: int = 3) -> dict:
    """Overall and per-skill exact match, name accuracy, parse failures, and failing examples.

    Example: 9 right of 10 weather rows and 0 of 10 timer rows -> exact_match 0.45,
    per_skill weather 0.9, timer 0.0.
    """
    judged = [judge(row) for row in rows]
    by_skill: dict[str, list[dict]] = defaultdict(list)
    for row in judged:
        by_skill[row["skill"]].append(row)
    failures = {
        skill: [
            {key: row[key] for key in ("user", "gold", "output", "parsed", "error_type", "error")}
            for row in skill_rows
            if not row["valid"]
        ][:worst_per_skill]
        for skill, skill_rows in sorted(by_skill.items())
    }
    return {
        **_rates(judged),
        "per_skill": {skill: _rates(skill_rows) for skill, skill_rows in sorted(by_skill.items())},
        "error_types": dict(sorted(Counter(row["error_type"] for row in judged if row["error_type"]).items())),
        "failures": {skill: rows for skill, rows in failures.items() if rows},
    }

