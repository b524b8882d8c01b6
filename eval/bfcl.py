"""Read the Berkeley Function Calling Leaderboard's test files, to score a model on them.

The data ships in the pip package bfcl-eval, which `make install` installs without its
dependencies; it is located with importlib and read as JSON, never imported (its dependencies,
the provider SDKs, are absent). Files are JSON lines:

  BFCL_v4_<category>.json                  {"id", "question": [[messages of turn 1], ...],
                                            "function": [{"name", "description", "parameters"}]}
  possible_answer/BFCL_v4_<category>.json  {"id", "ground_truth": [{"func.name": {"arg": [acceptable
                                            values]}}]}, "" among the values: may be left out

Irrelevance categories have no possible answers: the right answer there is no call.

A possible-answer value that is a dict of lists holds acceptable values per key again
(`{"school": ["Bluebird High School", "Bluebird HS"]}`), also inside lists (a list of such dicts).
Such values are expanded into every plain dict they allow, so eval/match.py only ever compares
plain values.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import re
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from eval.bfcl_prompt import case_record
from eval.match import Expected, judge_calls
from eval.parse import parse_output
from eval.score import ratio
from skilltune.jsonio import DataError, iter_json_lines, write_text

# BFCL's parameter types that are not JSON Schema's
_TYPES = {"dict": "object", "float": "number", "tuple": "array"}
_OMITTED = object()  # a nested key that may be left out, while expanding


@dataclass(frozen=True)
class BfclCase:
    id: str
    messages: list[dict]  # the question's chat messages (first turn)
    functions: list[dict]  # as given
    expected: list[Expected]  # [] when no call is the right answer

    # cached: a case is scored once per row, and converting its schemas cost more than matching
    @cached_property
    def schemas(self) -> dict[str, dict]:
        """Function name -> JSON Schema of its arguments object, for eval.match.match_calls."""
        return {function["name"]: _json_schema(function.get("parameters", {})) for function in self.functions}

    @cached_property
    def signatures(self) -> dict[str, list[str]]:
        """Function name -> parameter names in order, so positional arguments can be named."""
        return {
            function["name"]: list(function.get("parameters", {}).get("properties", {})) for function in self.functions
        }


def _json_schema(schema: dict) -> dict:
    """A BFCL parameter schema as JSON Schema: "dict" -> "object", "float" -> "number",
    "tuple" -> "array", "any" -> no type; the rest is kept."""
    converted = dict(schema)
    kind = converted.pop("type", None)
    if isinstance(kind, str) and kind != "any":
        converted["type"] = _TYPES.get(kind, kind)
    if isinstance(schema.get("properties"), dict):
        converted["properties"] = {name: _json_schema(sub) for name, sub in schema["properties"].items()}
    if isinstance(schema.get("items"), dict):
        converted["items"] = _json_schema(schema["items"])
    return converted


def bfcl_data_dir() -> Path:
    """The data folder of the installed bfcl-eval package."""
    spec = importlib.util.find_spec("bfcl_eval")  # finds the package without importing it
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations or not (Path(locations[0]) / "data").is_dir():
        raise FileNotFoundError(
            "the Berkeley Function Calling Leaderboard data (pip package bfcl-eval) is not installed; "
            "run `make install` (in a .venv made before skilltune used it: "
            "`.venv/bin/pip install --no-deps bfcl-eval`, the version pinned in the Makefile)"
        )
    return Path(locations[0]) / "data"


def bfcl_files(category: str, data_dir: Path | None = None) -> tuple[Path, Path | None]:
    """(questions, possible answers or None) of a category such as "simple_python" or "irrelevance"."""
    data_dir = data_dir or bfcl_data_dir()
    # not a bare glob: "multiple" must not find parallel_multiple
    pattern = re.compile(rf"BFCL_v\d+_{re.escape(category)}\.json")
    questions = sorted(path for path in data_dir.glob("BFCL_v*.json") if pattern.fullmatch(path.name))
    if not questions:
        raise FileNotFoundError(f"{data_dir}: no BFCL test file for category {category!r}")
    answers = data_dir / "possible_answer" / questions[-1].name
    if answers.exists():
        return questions[-1], answers
    # without possible answers a case expects no call; that is right only for irrelevance (BFCL's
    # live_relevance wants any call at all, which exact match cannot say)
    if "irrelevance" not in category:
        raise FileNotFoundError(f"{category!r} has no possible answers and is not an irrelevance category: not scored")
    return questions[-1], None


# --- reading ---------------------------------------------------------------------------------


def _json_lines(path: Path):
    """(line number, object) of each non-blank line; a line that is not a JSON object is a DataError."""
    for number, obj in iter_json_lines(path):
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
            raise DataError(path, number, 'expected an object with a string "id"')
        yield number, obj


def _question_problem(obj: dict) -> str | None:
    question, functions = obj.get("question"), obj.get("function")
    if not (isinstance(question, list) and question and isinstance(question[0], list)):
        return '"question" must be a list of turns, each a list of messages'
    if not all(isinstance(message, dict) and "role" in message and "content" in message for message in question[0]):
        return 'each message of "question" needs "role" and "content"'
    if not (
        isinstance(functions, list) and all(isinstance(f, dict) and isinstance(f.get("name"), str) for f in functions)
    ):
        return '"function" must be a list of objects with a "name"'
    if not all(isinstance(f.get("parameters", {}), dict) for f in functions):
        return 'a function\'s "parameters" must be an object'
    return None


def _expected_calls(ground_truth) -> list[Expected]:
    """BFCL's ground truth -> Expected calls; ValueError says what is wrong with it."""
    if not isinstance(ground_truth, list):
        raise ValueError('"ground_truth" must be a list')
    expected = []
    for item in ground_truth:
        if not (isinstance(item, dict) and len(item) == 1):
            raise ValueError('each "ground_truth" item must be {"function name": {arguments}}')
        [(name, arguments)] = item.items()
        if not isinstance(arguments, dict) or not all(isinstance(values, list) for values in arguments.values()):
            raise ValueError(f"{name}: each argument must map to a list of acceptable values")
        expected.append(Expected(name, {key: _acceptable_values(values) for key, values in arguments.items()}))
    return expected


def _acceptable_values(values: list) -> list:
    return [plain for value in values for plain in _expand(value)]


def _expand(value) -> list:
    """Every plain value an acceptable value allows: a dict holds acceptable values per key
    (a key whose list holds "" may be left out), in a list each element is expanded."""
    # a dict whose values are not all lists is a plain value ({"lateral": 10.5} in live_multiple)
    if isinstance(value, dict) and all(isinstance(alternatives, list) for alternatives in value.values()):
        options = []
        for alternatives in value.values():
            # leaving out first, so the first expansion is the plainest answer
            omit = [_OMITTED] if "" in alternatives else []
            options.append(omit + [plain for option in alternatives if option != "" for plain in _expand(option)])
        keys = list(value)
        return [
            {key: choice for key, choice in zip(keys, choices) if choice is not _OMITTED}
            for choices in itertools.product(*options)
        ]
    if isinstance(value, list):
        return [list(choices) for choices in itertools.product(*(_expand(item) for item in value))]
    return [value]


def load_bfcl(questions: Path, answers: Path | None = None) -> list[BfclCase]:
    """The cases of one category; without answers (the irrelevance categories) no call is expected.
    A bad line raises skilltune.jsonio.DataError naming the file and line."""
    expected: dict[str, list[Expected]] = {}
    if answers is not None:
        for number, obj in _json_lines(answers):
            try:
                expected[obj["id"]] = _expected_calls(obj.get("ground_truth"))
            except ValueError as err:
                raise DataError(answers, number, str(err)) from None
    cases = []
    for number, obj in _json_lines(questions):
        problem = _question_problem(obj)
        if problem:
            raise DataError(questions, number, problem)
        if answers is not None and obj["id"] not in expected:
            raise DataError(answers, 0, f"no possible answer for {obj['id']} ({questions}:{number})")
        cases.append(BfclCase(obj["id"], obj["question"][0], obj["function"], expected.get(obj["id"], [])))
    return cases


def gold_answer_text(case: BfclCase) -> str:
    """The gold answer as Python call text: each argument's first acceptable value; an optional one
    ("" among its values and not required by the schema) is left out. Several calls are written
    as a list, no call as `other()`."""
    schemas = case.schemas
    calls = []
    for gold in case.expected:
        required = set(schemas.get(gold.name, {}).get("required", ()))
        arguments = []
        for key, values in gold.arguments.items():
            given = [value for value in values if value != ""] or values
            if given and (key in required or "" not in values):
                arguments.append(f"{key}={given[0]!r}")  # repr: a Python literal, escapes and all
        calls.append(f"{gold.name}({', '.join(arguments)})")
    if not calls:
        return "other()"
    return calls[0] if len(calls) == 1 else "[" + ", ".join(calls) + "]"


def score_bfcl(cases: list[BfclCase], outputs: list[str]) -> dict:
    """Strict and lenient exact match of each output against the case's acceptable calls, with
    the case's schemas (unknown or missing required arguments fail) and signatures (positional
    arguments). No-call rate counts outputs that make no call."""
    if len(cases) != len(outputs):
        raise ValueError(f"{len(cases)} cases but {len(outputs)} outputs")
    rows = []
    for case, output in zip(cases, outputs):
        parsed = parse_output(output, case.signatures)
        verdict = judge_calls(parsed, case.expected, schemas=case.schemas)
        strict, lenient = verdict.strict, verdict.lenient
        rows.append(
            {
                "id": case.id,
                "output": output,
                "valid": strict["valid"],
                "valid_lenient": lenient["valid"],
                "no_call": parsed.is_no_call,
                "parse_failed": not parsed.ok,
                "error_type": lenient["error_type"],
            }
        )
    n = len(rows)
    return {
        "n": n,
        "exact_match": ratio(sum(row["valid"] for row in rows), n),
        "exact_match_lenient": ratio(sum(row["valid_lenient"] for row in rows), n),
        "no_call_rate": ratio(sum(row["no_call"] for row in rows), n),
        "parse_failure_rate": ratio(sum(row["parse_failed"] for row in rows), n),
        "error_types": dict(sorted(Counter(row["error_type"] for row in rows if row["error_type"]).items())),
        "rows": rows,
    }


# --- a run: outputs saved or generated, the result written -------------------------------------


def predictions_path(out: Path | str, category: str) -> Path:
    """Where a run saves the raw outputs it generated: {id, output} per line."""
    return Path(out) / f"bfcl-{category}-predictions.jsonl"


def result_path(out: Path | str, category: str) -> Path:
    return Path(out) / f"bfcl-{category}.json"


def read_saved_outputs(path: Path, cases: list[BfclCase]) -> list[str]:
    """Each case's output from a saved predictions file (JSON lines of {id, output}), in case order.
    A bad line, or a case the file has no output for, raises DataError."""
    saved = {}
    for number, row in iter_json_lines(path):
        if not (isinstance(row, dict) and isinstance(row.get("id"), str) and isinstance(row.get("output"), str)):
            raise DataError(path, number, "expected a JSON object with id and output (both strings)")
        saved[row["id"]] = row["output"]
    missing = [case.id for case in cases if case.id not in saved]
    if missing:
        raise DataError(path, 0, f"no output for {len(missing)} case(s), e.g. {missing[0]}")
    return [saved[case.id] for case in cases]


def generate_outputs(cases: list[BfclCase], predictor, layout: str) -> list[str]:
    """Each case's raw output from `predictor` (an eval/predict.py backend), in case order, the
    functions shown in the prompt layout named (eval/bfcl_prompt.py)."""
    return predictor.generate([case_record(case, layout) for case in cases])


def write_outputs(path: Path, cases: list[BfclCase], outputs: list[str]) -> None:
    """Generated outputs as a predictions file `read_saved_outputs` reads back."""
    write_text(
        path, "".join(json.dumps({"id": case.id, "output": output}) + "\n" for case, output in zip(cases, outputs))
    )


def write_result(path: Path, result: dict) -> None:
    write_text(path, json.dumps(result, indent=1) + "\n")
