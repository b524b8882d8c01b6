"""Score saved predictions: parse each output, match it against the gold call, aggregate.

A prediction row (eval/schemas/prediction.schema.json) holds the user text, the gold call as
Python text and the model's raw output, so scoring can be re-run without generating again.

Metrics, over n rows (each rate is in [0, 1]):
  exact_match           strict: same name, every argument value equal after parsing
  exact_match_lenient   BFCL-style: strings compared without case, spaces and punctuation, 5 == 5.0,
                        an omitted optional argument equals "" or its default
  name_accuracy         the first call's name is the gold name (other() for no-call rows)
  parse_failure_rate    the output tried to call something and did not parse
  argument_*            precision / recall / F1 of name=value pairs (strict), micro-averaged
  relevance_*           detection of "a call is needed": precision / recall / F1, where an
                        output counts as a call unless it is a recognised no-call (other(),
                        empty, plain text), so a garbled call attempt counts as a call
"""

from __future__ import annotations

from collections import Counter, defaultdict
from functools import lru_cache
from itertools import islice
from typing import Mapping, Sequence

from datagen.calls import NO_CALL_NAME, Call, parse_call
from eval.match import Expected, argument_counts, match_calls
from eval.parse import Parsed, parse_output

RATE_KEYS = ("n", "exact_match", "exact_match_lenient", "name_accuracy", "parse_failure_rate")
UNPARSED = "(unparsed)"


def predicted_name(parsed: Parsed, is_no_call: bool) -> str:
    """The confusion-matrix column of an output: the first call's name, other, or (unparsed)."""
    if not parsed.ok:
        return UNPARSED
    if is_no_call:
        return NO_CALL_NAME
    return parsed.calls[0].name


def calls_text(parsed: Parsed) -> str | None:
    return "; ".join(call.to_python() for call in parsed.calls) or None


@lru_cache(maxsize=65536)
def _gold(text: str) -> tuple[Call, list[Expected]]:
    """The gold call and what matching compares with ([] for other()), parsed once per text."""
    call = parse_call(text)
    return call, [] if call.is_no_call else [Expected.from_call(call)]


def judge(row: dict, schemas: Mapping[str, dict] | None = None,
          signatures: Mapping[str, Sequence[str]] | None = None) -> dict:
    """One prediction row -> the row plus what scoring needs (`valid`, `valid_lenient`, ...)."""
    gold, expected = _gold(row["gold"])
    if row["output"].strip() == row["gold"].strip():
        # the commonest answer of a tuned model, and one that needs no matching: the gold call
        # itself (it fits its own schema: datagen checked it)
        parsed = Parsed((gold,))
        strict = {"valid": True, "error": [], "error_type": None}
    else:
        parsed = parse_output(row["output"], signatures)
        strict = match_calls(parsed, expected, schemas=schemas)
    # lenient accepts everything strict accepts and differs only in how argument values and
    # defaults compare: a failure before the arguments (parse, relevance, count, name) stands
    lenient = strict
    if not strict["valid"] and strict["error_type"].startswith("args:"):
        lenient = match_calls(parsed, expected, lenient=True, schemas=schemas)
    if strict["valid"]:
        correct = predicted = wanted = len(gold.arguments) if expected else 0
    else:
        correct, predicted, wanted = argument_counts(parsed, expected)
    is_no_call = parsed.is_no_call
    name = predicted_name(parsed, is_no_call)
    return {
        **row,
        "parsed": parsed,
        "predicted": name,
        "name_ok": name == gold.name,
        "parse_failed": not parsed.ok,
        "call_expected": bool(expected),
        "call_made": not is_no_call,
        "arguments": (correct, predicted, wanted),
        "valid": strict["valid"],
        "valid_lenient": lenient["valid"],
        "error": strict["error"],
        "error_type": strict["error_type"],
    }


def ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def _f1(precision: float, recall: float) -> float:
    return ratio(2 * precision * recall, precision + recall)


def _rates(judged: list[dict]) -> dict:
    n = len(judged)
    return {
        "n": n,
        "exact_match": ratio(sum(row["valid"] for row in judged), n),
        "exact_match_lenient": ratio(sum(row["valid_lenient"] for row in judged), n),
        "name_accuracy": ratio(sum(row["name_ok"] for row in judged), n),
        "parse_failure_rate": ratio(sum(row["parse_failed"] for row in judged), n),
    }


def _argument_scores(judged: list[dict]) -> dict:
    correct = sum(row["arguments"][0] for row in judged)
    precision = ratio(correct, sum(row["arguments"][1] for row in judged))
    recall = ratio(correct, sum(row["arguments"][2] for row in judged))
    return {"argument_precision": precision, "argument_recall": recall, "argument_f1": _f1(precision, recall)}


def _relevance_scores(judged: list[dict]) -> dict:
    true_calls = sum(row["call_made"] and row["call_expected"] for row in judged)
    precision = ratio(true_calls, sum(row["call_made"] for row in judged))
    recall = ratio(true_calls, sum(row["call_expected"] for row in judged))
    no_call_rows = [row for row in judged if not row["call_expected"]]
    return {
        "relevance_precision": precision,
        "relevance_recall": recall,
        "relevance_f1": _f1(precision, recall),
        "no_call_accuracy": ratio(sum(not row["call_made"] for row in no_call_rows), len(no_call_rows)),
    }


def confusion(judged: list[dict]) -> dict:
    """{"labels": [...], "matrix": rows = gold name, columns = predicted name, counts}."""
    gold_names = sorted({row["skill"] for row in judged})
    extra = sorted({row["predicted"] for row in judged} - set(gold_names) - {UNPARSED})
    labels = gold_names + extra + ([UNPARSED] if any(row["parse_failed"] for row in judged) else [])
    counts = Counter((row["skill"], row["predicted"]) for row in judged)
    return {"labels": labels, "matrix": [[counts[(gold, predicted)] for predicted in labels] for gold in labels]}


def score(rows: list[dict], worst_per_skill: int = 3, schemas: Mapping[str, dict] | None = None,
          signatures: Mapping[str, Sequence[str]] | None = None) -> dict:
    """Overall and per-skill rates, argument and relevance scores, confusion matrix, failures.

    Example: 9 right of 10 weather rows and 0 of 10 timer rows -> exact_match 0.45,
    per_skill weather 0.9, timer 0.0.
    """
    judged = [judge(row, schemas, signatures) for row in rows]
    by_skill: dict[str, list[dict]] = defaultdict(list)
    for row in judged:
        by_skill[row["skill"]].append(row)
    failures = {}
    for skill, skill_rows in sorted(by_skill.items()):
        # the first failures only: writing out the calls of every failing row costs more than scoring it
        worst = list(islice((row for row in skill_rows if not row["valid"]), worst_per_skill))
        if worst:
            failures[skill] = [
                {**{key: row[key] for key in ("user", "gold", "output", "error_type", "error")},
                 "parsed": calls_text(row["parsed"])}
                for row in worst
            ]
    return {
        **_rates(judged),
        **_argument_scores(judged),
        **_relevance_scores(judged),
        "per_skill": {skill: _rates(skill_rows) for skill, skill_rows in sorted(by_skill.items())},
        "error_types": dict(sorted(Counter(row["error_type"] for row in judged if row["error_type"]).items())),
        "confusion": confusion(judged),
        "failures": failures,
    }


def noisy_entry(scores: dict) -> dict:
    """What a report keeps of a model's scores on the speech-noise split."""
    return {key: scores[key] for key in RATE_KEYS}
