import json
import re

import pytest
from conftest import REPO

from skilltune.calls import Call
from skilltune.records import chat_record, gold_call, gold_calls, record_problem, system_prompt, tool_definitions
from skilltune.skills import load_pack

SKILLS = load_pack(REPO / "examples" / "skills")
CALL = Call("notes", {"action": "add", "note": "buy milk"})


def test_python_style():
    record = chat_record("sys", "add buy milk", CALL, "python")
    assert record == {
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "add buy milk"},
            {"role": "assistant", "content": 'notes(action="add", note="buy milk")'},
        ]
    }


def test_json_style():
    record = chat_record(None, "add buy milk", CALL, "json")
    assert [message["role"] for message in record["messages"]] == ["user", "assistant"]
    answer = json.loads(record["messages"][-1]["content"])
    assert answer == {"function_call": {"name": "notes", "arguments": {"action": "add", "note": "buy milk"}}}


def test_tools_style_has_tool_calls_and_a_tools_column():
    tools = tool_definitions(SKILLS)
    record = chat_record("sys", "add buy milk", CALL, "tools", tools)
    answer = record["messages"][-1]
    assert answer["content"] == ""
    assert answer["tool_calls"] == [
        {"type": "function", "function": {"name": "notes", "arguments": '{"action": "add", "note": "buy milk"}'}}
    ]
    notes = next(tool for tool in record["tools"] if tool["function"]["name"] == "notes")
    assert notes["function"]["parameters"]["properties"]["action"]["enum"] == ["add", "list"]
    assert record_problem(record) is None
    del record["tools"]
    assert "needs a `tools` column" in record_problem(record)


@pytest.mark.parametrize("style", ["python", "json", "tools"])
def test_gold_call_reads_every_style(style):
    record = chat_record("sys", "x", CALL, style, tool_definitions(SKILLS) if style == "tools" else None)
    assert gold_call(record) == CALL


def test_system_prompt_names_every_skill_once():
    prompt = system_prompt(SKILLS)
    assert prompt.startswith("Answer with one function call: ")
    for skill in SKILLS:
        assert prompt.count(f"{skill.name},") + prompt.count(f"{skill.name}()") == 1, skill.name


def test_record_problem_rules():
    record = chat_record("sys", "hi", CALL)
    assert record_problem(record) is None
    record["messages"].append({"role": "user", "content": "more"})
    assert record_problem(record) == "the last message must be the assistant's answer"


def test_chat_record_problem_rules():
    from skilltune.records import chat_record_problem

    def record(*roles, last="an answer"):
        messages = [{"role": role, "content": f"{role} text"} for role in roles]
        messages[-1]["content"] = last
        return {"messages": messages}

    assert chat_record_problem(record("system", "user", "assistant", "user", "assistant")) is None
    assert chat_record_problem(record("user", "assistant")) is None
    assert chat_record_problem(record("user", "assistant", "user")) == "the last message must be the assistant's answer"
    assert "must alternate" in chat_record_problem(record("user", "user", "assistant"))
    assert "must alternate" in chat_record_problem(record("assistant", "user", "assistant"))
    assert chat_record_problem(record("user", "system", "assistant")) == "a system message may only come first"
    assert chat_record_problem(record("user", "assistant", last="  ")) == "the assistant's answer is empty"


TIMER = Call("timer", {"duration": "ten minutes"})
NOTE = Call("notes", {"action": "add", "note": "eggs"})


@pytest.mark.parametrize("style", ["python", "json", "tools"])
def test_two_calls_in_every_style_read_back_in_order_and_validate(style):
    tools = tool_definitions(SKILLS) if style == "tools" else None
    record = chat_record("sys", "set a timer for ten minutes and add eggs", [TIMER, NOTE], style, tools)
    assert record_problem(record) is None
    assert gold_calls(record) == [TIMER, NOTE]
    assert gold_calls(chat_record("sys", "x", CALL, style, tools)) == [CALL]
    with pytest.raises(ValueError, match="exactly one call, the answer makes 2"):
        gold_call(record)  # a caller that wants one call never gets the first of two silently
    answer = record["messages"][-1]
    expected = {
        "python": lambda: answer["content"] == '[timer(duration="ten minutes"), notes(action="add", note="eggs")]',
        "json": lambda: (
            json.loads(answer["content"])
            == [
                {"function_call": {"name": "timer", "arguments": {"duration": "ten minutes"}}},
                {"function_call": {"name": "notes", "arguments": {"action": "add", "note": "eggs"}}},
            ]
        ),
        "tools": lambda: [tool_call["function"]["name"] for tool_call in answer["tool_calls"]] == ["timer", "notes"],
    }[style]
    assert expected()


@pytest.mark.parametrize(
    "content, reason",
    [
        ('[timer(duration="ten minutes")]', "two or more"),  # one call is written alone
        ("[]", "two or more"),
        ('[timer(duration="ten minutes"), other()]', r"other\(\) means no call"),
        ('[timer(duration="ten minutes"), "eggs"]', "not a function call"),
        ('[{"function_call": {"name": "timer", "arguments": {}}}]', "two or more"),
        ('[{"function_call": {"name": "timer", "arguments": {}}}, {"function_call": {"name": "other"}}]', "no call"),
        ('[{"function_call": {"name": "timer", "arguments": {}}}, {"name": "notes"}]', "function_call"),
    ],
)
def test_record_problem_refuses_a_list_that_is_not_two_calls(content, reason):
    record = {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": content}]}
    assert re.search(reason, record_problem(record))


def test_record_problem_refuses_other_among_several_tool_calls():
    record = chat_record("sys", "x", [TIMER, Call("other")], "tools", tool_definitions(SKILLS))
    assert "means no call" in record_problem(record)
