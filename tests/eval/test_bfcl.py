"""eval/bfcl.py on the real Berkeley Function Calling Leaderboard files (pip package bfcl-eval)."""

import importlib.util
import json

import pytest

from eval.bfcl import (
    BfclCase,
    bfcl_data_dir,
    bfcl_files,
    gold_answer_text,
    load_bfcl,
    read_saved_outputs,
    write_outputs,
)
from eval.match import Expected, match_calls
from eval.parse import parse_output
from skilltune.calls import Call
from skilltune.jsonio import DataError


@pytest.fixture(scope="module")
def simple():
    return load_bfcl(*bfcl_files("simple_python"))


@pytest.fixture(scope="module")
def irrelevance():
    questions, answers = bfcl_files("irrelevance")
    assert answers is None  # irrelevance has no possible answers: no call is right
    return load_bfcl(questions)


def valid_rate(cases, answer, lenient):
    """Share of cases where the text answer(case) scores valid."""
    valid = 0
    for case in cases:
        parsed = parse_output(answer(case), case.signatures)
        valid += match_calls(parsed, case.expected, lenient=lenient, schemas=case.schemas)["valid"]
    return valid / len(cases)


def as_text(call: Call) -> str:
    # repr keeps any string a valid Python literal (Call.to_python does not escape line breaks)
    return f"{call.name}(" + ", ".join(f"{key}={value!r}" for key, value in call.arguments.items()) + ")"


def gold_call(case: BfclCase) -> Call:
    return parse_output(gold_answer_text(case), case.signatures).calls[0]


def test_the_files_load(simple, irrelevance):
    assert len(simple) == 400 and len(irrelevance) == 240
    first = simple[0]
    assert first.id == "simple_python_0"
    assert first.messages == [{"role": "user", "content": first.messages[0]["content"]}]
    assert first.expected == [Expected("calculate_triangle_area", {"base": [10], "height": [5], "unit": ["units", ""]})]
    assert gold_answer_text(first) == "calculate_triangle_area(base=10, height=5)"
    assert first.signatures == {"calculate_triangle_area": ["base", "height", "unit"]}
    schema = first.schemas["calculate_triangle_area"]
    assert schema["type"] == "object" and schema["required"] == ["base", "height"]
    assert all(case.expected == [] for case in irrelevance)


def test_gold_answers_score_100_percent_leniently(simple):
    assert valid_rate(simple, gold_answer_text, lenient=True) == 1.0


def test_gold_answers_score_strictly_too(simple):
    # measured floor: 400 of 400, the gold text holds the first acceptable value with its own type
    assert valid_rate(simple, gold_answer_text, lenient=False) == 1.0


def test_case_and_punctuation_changes_pass_only_leniently(simple):
    def shouted(value):
        if isinstance(value, str):
            return value.upper().replace(" ", "_")
        if isinstance(value, float) and value.is_integer():
            return int(value)  # an int where a float is expected
        if isinstance(value, list):
            return [shouted(item) for item in value]
        if isinstance(value, dict):
            return {key: shouted(item) for key, item in value.items()}
        return value

    def answer(case):
        call = gold_call(case)
        return as_text(Call(call.name, {key: shouted(value) for key, value in call.arguments.items()}))

    assert valid_rate(simple, answer, lenient=True) == 1.0
    assert valid_rate(simple, answer, lenient=False) <= 0.35  # measured: 128 of 400 have no string or float to change


def test_a_wrong_number_fails_leniently(simple):
    changed = 0
    for case in simple:
        call = gold_call(case)
        numbers = [key for key, value in call.arguments.items() if type(value) in (int, float)]
        if not numbers:
            continue
        key = numbers[0]
        accepted = [value for value in case.expected[0].arguments[key] if type(value) in (int, float)]
        wrong = Call(call.name, {**call.arguments, key: max(accepted) + 7})
        result = match_calls(parse_output(as_text(wrong)), case.expected, lenient=True, schemas=case.schemas)
        assert result["error_type"] == "args:value", (case.id, result)
        changed += 1
    assert changed == 221  # measured: the simple_python calls that take a number


def test_positional_answers_use_the_signature(simple):
    case = simple[0]
    assert match_calls(parse_output("calculate_triangle_area(10, 5)", case.signatures), case.expected, lenient=True)[
        "valid"
    ]


@pytest.mark.parametrize("answer", ["", "I cannot help with that: no function here fits.", "other()"])
def test_irrelevance_no_call_answers_are_valid(irrelevance, answer):
    assert valid_rate(irrelevance, lambda case: answer, lenient=True) == 1.0
    assert valid_rate(irrelevance, lambda case: answer, lenient=False) == 1.0


def test_irrelevance_calls_are_invalid(irrelevance):
    for case in irrelevance:
        parsed = parse_output(f"{case.functions[0]['name']}()")
        result = match_calls(parsed, case.expected, lenient=True, schemas=case.schemas)
        assert result["error_type"] == "relevance:unexpected_call"


def test_nested_acceptable_values_are_expanded(simple):
    case = next(case for case in simple if case.id == "simple_python_89")
    conditions = case.expected[0].arguments["conditions"]
    assert {"department": "Science", "school": "Bluebird High School"} in conditions
    assert {"department": "Science", "school": "Bluebird HS"} in conditions
    answer = gold_answer_text(case).replace("Bluebird High School", "Bluebird HS")
    assert match_calls(parse_output(answer), case.expected, schemas=case.schemas)["valid"]


def test_expansion_of_a_list_of_dicts_with_optional_keys(tmp_path):
    questions = tmp_path / "q.json"
    answers = tmp_path / "a.json"
    function = {
        "name": "f",
        "parameters": {"type": "dict", "properties": {"rows": {"type": "array"}}, "required": ["rows"]},
    }
    questions.write_text(
        json.dumps({"id": "t_0", "question": [[{"role": "user", "content": "x"}]], "function": [function]}) + "\n"
    )
    truth = {"f": {"rows": [[{"a": [1, 2]}, {"b": ["", "x"]}]]}}
    answers.write_text(json.dumps({"id": "t_0", "ground_truth": [truth]}) + "\n")
    [case] = load_bfcl(questions, answers)
    assert case.expected[0].arguments["rows"] == [
        [{"a": 1}, {}],
        [{"a": 1}, {"b": "x"}],
        [{"a": 2}, {}],
        [{"a": 2}, {"b": "x"}],
    ]
    assert gold_answer_text(case) == "f(rows=[{'a': 1}, {}])"


def test_schemas_use_json_schema_types():
    function = {
        "name": "f",
        "parameters": {
            "type": "dict",
            "properties": {
                "point": {"type": "tuple", "items": {"type": "float"}},
                "options": {"type": "dict", "properties": {"type": {"type": "string"}}},
                "anything": {"type": "any", "description": "kept"},
            },
            "required": ["point"],
        },
    }
    schema = BfclCase("t", [], [function], []).schemas["f"]
    assert schema["type"] == "object"
    assert schema["properties"]["point"] == {"type": "array", "items": {"type": "number"}}
    # a parameter named "type" stays a parameter
    assert schema["properties"]["options"] == {"type": "object", "properties": {"type": {"type": "string"}}}
    assert schema["properties"]["anything"] == {"description": "kept"}
    assert function["parameters"]["type"] == "dict"  # the case's own functions are left as given


def test_category_files_are_found_exactly():
    questions, answers = bfcl_files("multiple")
    assert questions.name == "BFCL_v4_multiple.json" and answers.name == "BFCL_v4_multiple.json"
    assert answers.parent.name == "possible_answer"
    with pytest.raises(FileNotFoundError, match="no_such_category"):
        bfcl_files("no_such_category")
    # no possible answers: only irrelevance means no call is right (live_relevance wants a call)
    with pytest.raises(FileNotFoundError, match="'live_relevance' has no possible answers"):
        bfcl_files("live_relevance")
    assert bfcl_files("live_irrelevance")[1] is None


def test_missing_package_says_make_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="make install"):
        bfcl_data_dir()


@pytest.mark.parametrize(
    "which, line, damage, reason",
    [
        ("questions", 7, lambda text: text[: len(text) // 2], "not JSON"),
        ("questions", 3, lambda text: json.dumps({**json.loads(text), "question": "hi"}), "question"),
        ("answers", 5, lambda text: json.dumps({**json.loads(text), "ground_truth": {"f": {}}}), "ground_truth"),
        ("answers", 9, lambda text: json.dumps({"ground_truth": []}), "id"),
    ],
)
def test_a_corrupted_file_names_file_and_line(tmp_path, which, line, damage, reason):
    sources = dict(zip(("questions", "answers"), bfcl_files("simple_python")))
    copies = {}
    for name, source in sources.items():
        lines = source.read_text(encoding="utf-8").splitlines()
        if name == which:
            lines[line - 1] = damage(lines[line - 1])
        copies[name] = tmp_path / source.name if name == "questions" else tmp_path / f"answers-{source.name}"
        copies[name].write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as raised:
        load_bfcl(copies["questions"], copies["answers"])
    assert (raised.value.path, raised.value.line) == (str(copies[which]), line)
    assert reason in raised.value.reason
    assert str(raised.value).startswith(f"{copies[which]}:{line}: ")


def test_a_question_without_an_answer_is_an_error(tmp_path):
    questions, answers = bfcl_files("simple_python")
    short = tmp_path / "answers.json"
    short.write_text("\n".join(answers.read_text().splitlines()[:10]) + "\n")
    with pytest.raises(DataError, match="no possible answer for simple_python_10"):
        load_bfcl(questions, short)


def test_score_bfcl_counts_gold_wrong_and_no_call_answers(simple):
    from eval.bfcl import score_bfcl

    cases = simple[:30]
    outputs = [gold_answer_text(case) for case in cases[:20]] + ["I don't know."] * 5 + ["not_a_function(x=1)"] * 5
    result = score_bfcl(cases, outputs)
    assert (result["n"], result["exact_match_lenient"], result["no_call_rate"]) == (30, 20 / 30, 5 / 30)
    assert result["error_types"] == {"relevance:missed_call": 5, "name:mismatch": 5}
    with pytest.raises(ValueError, match="30 cases but 2 outputs"):
        score_bfcl(cases, outputs[:2])


def test_each_case_converts_its_schemas_once(monkeypatch):
    """Scoring a case on many rows converts its schemas once; the verdicts stay what per-row
    conversion gave (each row its own freshly loaded case: nothing shared)."""
    import eval.bfcl
    from eval.bfcl import score_bfcl

    def cases():
        return load_bfcl(*bfcl_files("parallel_multiple"))[:12]

    conversions = 0
    convert = eval.bfcl._json_schema

    def counted(schema):
        nonlocal conversions
        conversions += 1  # nested parameters count too: compared like for like below
        return convert(schema)

    answers = [
        lambda case: gold_answer_text(case),
        lambda case: "I don't know.",
        lambda case: gold_answer_text(case)[:20],
    ]
    monkeypatch.setattr(eval.bfcl, "_json_schema", counted)
    once = cases()
    score_bfcl(once, [answers[0](case) for case in once])
    per_case = conversions
    conversions = 0
    shared = cases()
    rows = [case for case in shared for _ in answers]
    outputs = [answer(case) for case in shared for answer in answers]
    result = score_bfcl(rows, outputs)
    assert per_case > 0 and conversions == per_case  # three rows a case, still one conversion each
    loads = [cases() for _ in answers]  # a loaded copy of each case per row
    fresh = [loads[copy][index] for index in range(len(shared)) for copy in range(len(answers))]
    assert [case.id for case in fresh] == [case.id for case in rows]
    assert score_bfcl(fresh, outputs) == result
    assert 0 < result["exact_match"] < 1 and result["error_types"]


def test_case_record_offers_the_functions_as_tools(simple):
    from eval.bfcl_prompt import case_record

    record = case_record(simple[0], "tools")
    assert record["messages"][:-1] == simple[0].messages
    function = record["tools"][0]["function"]
    assert function["name"] == simple[0].functions[0]["name"]
    assert function["parameters"]["type"] == "object"  # BFCL's "dict", as JSON Schema


def test_saved_outputs_come_back_in_case_order(simple, tmp_path):
    path = tmp_path / "bfcl-simple_python-predictions.jsonl"
    cases = simple[:3]
    write_outputs(path, cases, ["a", "b", "c"])
    assert read_saved_outputs(path, cases) == ["a", "b", "c"]
    assert read_saved_outputs(path, cases[::-1]) == ["c", "b", "a"]


@pytest.mark.parametrize(
    "lines, message",
    [
        (['{"id": "simple_python_0", "output": 7}'], ":1: expected a JSON object with id and output (both strings)"),
        (['{"id": "simple_python_0", "output": "x"}'], ": no output for 1 case(s), e.g. simple_python_1"),
        (['{"id": "simple_python_0", "output": "x"}', "{broken"], ":2: not JSON"),
    ],
)
def test_bad_saved_outputs_name_the_file_and_line(simple, tmp_path, lines, message):
    path = tmp_path / "saved.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as failure:
        read_saved_outputs(path, simple[:2])
    assert str(failure.value).startswith(f"{path}{message}")
