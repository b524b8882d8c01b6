"""Score saved predictions: parse each output, match it against the gold call, aggregate.

A prediction row (skilltune/schemas/prediction.schema.json) holds the user text, the gold call as
Python text (a Python list of calls for a compound request) and the model's raw output, so scoring
can be re-run without generating again.

Metrics, over n rows (each rate is in [0, 1]):
  exact_match           strict: same name, every argument value equal after parsing; with two gold
                        calls both must be made and right, in either order (eval/match.py pairs them)
  exact_match_lenient   BFCL-style: strings compared without case, spaces and punctuation, 5 == 5.0,
                        an omitted optional argument equals "" or its default
  name_accuracy         the first call's name is the gold name (other() for no-call rows); with
                        several gold calls, the names called are the gold names, in any order
  parse_failure_rate    the output tried to call something and did not parse
  argument_*            precision / recall / F1 of name=value pairs (strict), micro-averaged
  relevance_*           detection of "a call is needed": precision / recall / F1, where an
                        output counts as a call unless it is a recognised no-call (other(),
                        empty, plain text), so a garbled call attempt counts as a call
  by_calls              n and exact_match of the rows with 1 gold call, and with 2 ("1", "2")
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache

from eval.match import Expected, Verdict, judge_calls
from eval.parse import Parsed, parse_output
from skilltune.calls import NO_CALL_NAME, Call, parse_calls

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
def parsed_gold(text: str) -> tuple[tuple[Call, ...], list[Expected]]:
    """The gold calls (one, or a list of several) and what matching compares with ([] for
    other()), parsed once per text."""
    calls = tuple(parse_calls(text))
    return calls, [Expected.from_call(call) for call in calls if not call.is_no_call]


def gold_problem(text: str) -> str | None:
    """Why `text` cannot be a gold answer (scoring reads it as Python call text), or None."""
    try:
        parsed_gold(text)
    except (ValueError, RecursionError) as err:  # CallSyntaxError is a ValueError
        return f"gold answer {text[:60]!r} is not call text such as f(x=1): {err or 'nested too deeply'}"
    return None


def judge(
    row: dict, schemas: Mapping[str, dict] | None = None, signatures: Mapping[str, Sequence[str]] | None = None
) -> dict:
    """One prediction row -> the row plus what scoring needs (`valid`, `valid_lenient`, ...)."""
    gold_calls, expected = parsed_gold(row["gold"])
    if row["output"].strip() == row["gold"].strip():
        # the commonest answer of a tuned model, and one that needs no matching: the gold call
        # itself (it fits its own schema: datagen checked it)
        parsed = Parsed(gold_calls)
        arguments = sum(len(call.arguments) for call in expected)
        match = {"valid": True, "error": [], "error_type": None}  # eval.match's answer for a match
        verdict = Verdict(match, match, (arguments, arguments, arguments))
    else:
        parsed = parse_output(row["output"], signatures)
        verdict = judge_calls(parsed, expected, schemas=schemas)
    is_no_call = parsed.is_no_call
    name = predicted_name(parsed, is_no_call)
    if len(gold_calls) == 1:
        name_ok = name == gold_calls[0].name
    else:  # several calls may come in any order, as exact match takes them
        name_ok = parsed.ok and sorted(call.name for call in parsed.calls) == sorted(call.name for call in gold_calls)
    return {
        **row,
        "parsed": parsed,
        "predicted": name,
        "name_ok": name_ok,
        "gold_calls": len(gold_calls),
        "parse_failed": not parsed.ok,
        "call_expected": bool(expected),
        "call_made": not is_no_call,
        "arguments": verdict.arguments,
        "valid": verdict.strict["valid"],
        "valid_lenient": verdict.lenient["valid"],
        "error": verdict.strict["error"],
        "error_type": verdict.strict["error_type"],
    }


def ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def _f1(precision: float, recall: float) -> float:
    return ratio(2 * precision * recall, precision + recall)


# how bad a failure is, worst first: the error families in the order a reader should see them
_ERROR_SEVERITY = (
    "parse:",
    "relevance:",
    "calls:",
    "name:",
    "args:missing",
    "args:unexpected",
    "args:type",
    "args:value",
)


@cache  # a handful of error types, asked once per failing row
def _severity(error_type: str) -> int:
    return next(
        (rank for rank, prefix in enumerate(_ERROR_SEVERITY) if error_type.startswith(prefix)), len(_ERROR_SEVERITY)
    )


def badness(row: dict) -> tuple[int, float]:
    """Sort key of a failing judged row, worst first: its error family (a parse failure, then a
    call where none was due or none where one was, a wrong count of calls, a wrong function, then
    argument errors), then the share of the gold arguments it got right (fewer first)."""
    correct, _, wanted = row["arguments"]
    return _severity(row["error_type"] or ""), ratio(correct, wanted)


def _failure_order(entry: tuple) -> tuple:
    badness_key, number, _ = entry
    return badness_key, number  # equally bad: the earlier row first


# what a rate counts, per row: a judged row's flags in this order (RATE_KEYS after "n")
_RATE_FLAGS = ("valid", "valid_lenient", "name_ok", "parse_failed")


@dataclass
class _Tally:
    """Everything score() counts, added up in one pass over the judged rows (a pass per metric
    cost as much as judging the rows)."""

    # skill -> [rows, then one count per _RATE_FLAGS]
    by_skill: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0] * (1 + len(_RATE_FLAGS))))
    arguments: list[int] = field(default_factory=lambda: [0, 0, 0])  # correct, predicted, expected
    # calls made, calls expected, made where expected, no-call rows, no call made on them
    relevance: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])
    error_types: Counter = field(default_factory=Counter)
    by_calls: dict[int, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))  # rows, exact
    cells: Counter = field(default_factory=Counter)  # (gold name, predicted name) -> rows
    # skill -> its worst failing rows so far, as (badness, row number, row), at most worst_per_skill
    failures: dict[str, list[tuple]] = field(default_factory=lambda: defaultdict(list))

    def add(self, row: dict, worst_per_skill: int) -> None:
        counts = self.by_skill[row["skill"]]
        counts[0] += 1
        for index, flag in enumerate(_RATE_FLAGS, 1):
            counts[index] += row[flag]
        for index, value in enumerate(row["arguments"]):
            self.arguments[index] += value
        made, expected = row["call_made"], row["call_expected"]
        relevance = self.relevance
        relevance[0] += made
        relevance[1] += expected
        relevance[2] += made and expected
        relevance[3] += not expected
        relevance[4] += not expected and not made
        if row["error_type"]:
            self.error_types[row["error_type"]] += 1
        by_calls = self.by_calls[row["gold_calls"]]
        by_calls[0] += 1
        by_calls[1] += row["valid"]
        self.cells[(row["skill"], row["predicted"])] += 1
        if not row["valid"] and worst_per_skill > 0:
            kept = self.failures[row["skill"]]
            entry = (badness(row), counts[0], row)
            if len(kept) < worst_per_skill:
                kept.append(entry)
                kept.sort(key=_failure_order)
            elif _failure_order(entry) < _failure_order(kept[-1]):
                kept[-1] = entry
                kept.sort(key=_failure_order)


def _rates(counts: Sequence[int]) -> dict:
    n, *flags = counts
    return {"n": n, **{key: ratio(count, n) for key, count in zip(RATE_KEYS[1:], flags)}}


def _argument_scores(tally: _Tally) -> dict:
    correct, predicted, expected = tally.arguments
    precision, recall = ratio(correct, predicted), ratio(correct, expected)
    return {"argument_precision": precision, "argument_recall": recall, "argument_f1": _f1(precision, recall)}


def _relevance_scores(tally: _Tally) -> dict:
    made, expected, true_calls, no_call_rows, no_call_right = tally.relevance
    precision, recall = ratio(true_calls, made), ratio(true_calls, expected)
    return {
        "relevance_precision": precision,
        "relevance_recall": recall,
        "relevance_f1": _f1(precision, recall),
        "no_call_accuracy": ratio(no_call_right, no_call_rows),
    }


def _confusion(tally: _Tally) -> dict:
    """{"labels": [...], "matrix": rows = gold name, columns = predicted name, counts}."""
    gold_names = sorted(tally.by_skill)
    predicted = {name for _, name in tally.cells}
    extra = sorted(predicted - set(gold_names) - {UNPARSED})
    labels = gold_names + extra + ([UNPARSED] if UNPARSED in predicted else [])
    return {"labels": labels, "matrix": [[tally.cells[(gold, name)] for name in labels] for gold in labels]}


SHOWN_CHARS = 2000  # of a failing output in the report: enough to see what went wrong


def _shortened(text: str | None) -> str | None:
    if text is None or len(text) <= SHOWN_CHARS:
        return text
    return f"{text[:SHOWN_CHARS]}… ({len(text) - SHOWN_CHARS:,} more characters)"


def _failure_entry(row: dict) -> dict:
    """A failing row as the report shows it; a long output is cut (predictions-*.jsonl keeps it whole)."""
    return {
        **{key: row[key] for key in ("user", "gold", "error_type", "error")},
        "output": _shortened(row["output"]),
        "parsed": _shortened(calls_text(row["parsed"])),
    }


def score(
    rows: list[dict],
    worst_per_skill: int = 3,
    schemas: Mapping[str, dict] | None = None,
    signatures: Mapping[str, Sequence[str]] | None = None,
) -> dict:
    """Overall and per-skill rates, argument and relevance scores, confusion matrix, and the
    `worst_per_skill` worst failures of each skill (`badness`).

    Example: 9 right of 10 weather rows and 0 of 10 timer rows -> exact_match 0.45,
    per_skill weather 0.9, timer 0.0.
    """
    tally = _Tally()
    for row in rows:
        tally.add(judge(row, schemas, signatures), worst_per_skill)
    per_skill = {skill: _rates(counts) for skill, counts in sorted(tally.by_skill.items())}
    overall = [sum(column) for column in zip(*tally.by_skill.values())] or [0] * (1 + len(_RATE_FLAGS))
    return {
        **_rates(overall),
        **_argument_scores(tally),
        **_relevance_scores(tally),
        "per_skill": per_skill,
        "error_types": dict(sorted(tally.error_types.items())),
        "by_calls": {
            str(calls): {"n": n, "exact_match": ratio(exact, n)} for calls, (n, exact) in sorted(tally.by_calls.items())
        },
        "confusion": _confusion(tally),
        "failures": {
            skill: [_failure_entry(row) for _, _, row in failing]
            for skill, failing in sorted(tally.failures.items())
            if failing
        },
    }


# the test splits scored beside the clean template split: file split -> (key in a model's scores, what it measures)
EXTRA_SPLITS = {
    "test_noisy": ("noisy", "noisy speech"),
    "test_wording": ("wording", "held-out wording"),
    "test_unseen": ("unseen", "unseen skills"),
}


def split_entry(scores: dict) -> dict:
    """What a report keeps of a model's scores on an extra split: its rates, and exact match per skill."""
    per_skill = {skill: {key: rates[key] for key in RATE_KEYS} for skill, rates in scores["per_skill"].items()}
    return {**{key: scores[key] for key in RATE_KEYS}, "per_skill": per_skill}
