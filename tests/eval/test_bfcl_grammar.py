"""eval/bfcl_grammar.py: each BFCL case's functions as a call grammar, and `eval bfcl --decoding constrained`."""

import json

import jsonschema
import pytest
from click.testing import CliRunner
from conftest import REPO, needs_smollm2

from eval.bfcl import BfclCase, bfcl_files, load_bfcl, score_bfcl
from eval.bfcl_grammar import NO_FUNCTION, case_skills
from eval.cli.bfcl import bfcl_command
from eval.constrain import CallGrammar
from skilltune.calls import value_text


@pytest.fixture(scope="module")
def simple():
    return load_bfcl(*bfcl_files("simple_python"))


def one_function_case(properties: dict, required: list[str]) -> BfclCase:
    function = {"name": "geo.area", "parameters": {"type": "dict", "properties": properties, "required": required}}
    return BfclCase("simple_python_x", [{"role": "user", "content": "?"}], [function], [])


def gold_text(case: BfclCase, grammar_params: dict) -> str | None:
    """The first gold call with each argument's first acceptable value, in the grammar's quoting;
    None when the grammar cannot write it (a value it has no form for, or one of another type than
    its schema's: simple_python_307's string `venue` has the answer True)."""
    gold = case.expected[0]
    arguments = []
    for key, values in gold.arguments.items():
        given = [value for value in values if value != ""]
        if not given:
            continue  # optional and left out
        if key not in grammar_params:
            if "" in values:
                continue  # an optional non-scalar: the grammar leaves it out, so may the answer
            return None
        value = given[0]
        items = value if isinstance(value, list) else [value]
        if isinstance(value, dict) or any(not _writable(item) for item in items):
            return None
        if not jsonschema.Draft202012Validator(grammar_params[key].schema()).is_valid(value):
            return None
        arguments.append(f"{key}={value_text(value)}")
    return f"{gold.name}({', '.join(arguments)})"


def _writable(value) -> bool:
    """A scalar the grammar can write: not a list or dict, no quote or backslash in a string."""
    if isinstance(value, str):
        return '"' not in value and "\\" not in value
    return not isinstance(value, (list, dict))


def test_every_gold_answer_of_scalars_and_lists_is_inside_its_case_grammar(simple):
    checked = lists = 0
    for case in simple:
        skills = case_skills(case)
        if skills is None:
            continue
        text = gold_text(case, skills[0].params)
        if text is None:
            continue
        assert CallGrammar(skills).complete(text), (case.id, text)
        checked += 1
        lists += "=[" in text
    assert checked >= 340 and lists >= 30  # most of the 400 are written by the grammar, lists too


def test_the_grammar_refuses_what_bfcl_would_fail(simple):
    case = simple[0]  # calculate_triangle_area(base: integer, height: integer, unit: string), base and height required
    grammar = CallGrammar(case_skills(case))
    assert grammar.complete("calculate_triangle_area(base=10, height=5)")
    assert grammar.complete('calculate_triangle_area(height=5, base=10, unit="units")')
    assert not grammar.allows("The area is")  # prose
    assert not grammar.complete("calculate_triangle_area(base=10)")  # a required argument missing
    assert not grammar.allows("calculate_triangle_area(base=10.5")  # an integer written as a float
    assert not grammar.allows("calculate_triangle_area(side=")  # a parameter it does not have
    assert not grammar.allows("area(")  # a function the case does not offer
    assert grammar.complete("other()")  # saying that no function fits


def test_types_enums_lists_and_what_the_grammar_cannot_write():
    properties = {
        "shape": {"type": "string", "enum": ["circle", "square"]},
        "size": {"type": "float"},
        "exact": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "corners": {"type": "tuple", "items": {"type": "float"}},
        "options": {"type": "dict", "properties": {}},
        "rows": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
    }
    [skill, other] = case_skills(one_function_case(properties, ["shape", "size"]))
    # an optional dict or list of lists is left out
    assert other is NO_FUNCTION and list(skill.params) == ["shape", "size", "exact", "tags", "corners"]
    assert skill.params["shape"].enum == ("circle", "square") and skill.params["size"].type == "number"
    assert skill.params["corners"].type == "array" and skill.params["corners"].items == "number"
    grammar = CallGrammar([skill, other])
    assert grammar.complete('geo.area(shape="circle", size=2.5, exact=True, tags=["a", "b"], corners=[0.5, 1])')
    assert not grammar.allows('geo.area(shape="oval"')
    assert not grammar.allows("geo.area(tags=[1")  # a list of strings
    assert case_skills(one_function_case(properties, ["tags"])) is not None
    # a required dict or list of lists cannot be written by the grammar: the case decodes freely
    assert case_skills(one_function_case(properties, ["options"])) is None
    assert case_skills(one_function_case(properties, ["rows"])) is None


def test_a_function_named_other_leaves_no_way_to_say_none():
    case = BfclCase("irrelevance_x", [], [{"name": "other", "parameters": {"type": "dict", "properties": {}}}], [])
    assert [skill.name for skill in case_skills(case)] == ["other"]


@needs_smollm2
def test_constrained_base_model_calls_the_cases_functions(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the config's paths are relative to the repository
    out = tmp_path / "out"
    args = ["--config", str(REPO / "configs" / "smollm2.yml"), "--no-adapter", "--limit", "6"]
    args += ["--decoding", "constrained", "--max-new-tokens", "40", "--out", str(out)]
    result = CliRunner().invoke(bfcl_command, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "(prompt: tools, decoding: constrained): 6 cases" in result.stdout
    scored = json.loads((out / "bfcl-simple_python.json").read_text())
    assert scored["decoding"] == "constrained" and scored["unconstrained_cases"] == 0
    assert scored["parse_failure_rate"] == 0.0  # every output is a whole call, closed within the budget
    cases = load_bfcl(*bfcl_files("simple_python"))[:6]
    outputs = [json.loads(line)["output"] for line in (out / "bfcl-simple_python-predictions.jsonl").open()]
    for case, output in zip(cases, outputs):
        assert CallGrammar(case_skills(case)).complete(output), (case.id, output)
    assert score_bfcl(cases, outputs)["exact_match"] == scored["exact_match"]


def test_constrained_decoding_needs_a_local_model(tmp_path):
    args = ["--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--model", "m"]
    result = CliRunner().invoke(bfcl_command, [*args, "--decoding", "constrained", "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "--decoding constrained is for --backend transformers" in result.output
