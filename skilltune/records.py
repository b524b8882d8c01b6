"""Turn (utterance, call) pairs into Axolotl chat records, in one of three answer styles.

The record is what `type: chat_template` with `field_messages: messages` reads:
    {"messages": [{"role": "system", ...}, {"role": "user", ...},
                  {"role": "assistant", "content": "weather(location=\"Berlin\")"}]}
Styles of the assistant answer:
    python  content `weather(location="Berlin")`
    json    content `{"function_call": {"name": "weather", "arguments": {"location": "Berlin"}}}`
    tools   OpenAI `tool_calls` on the assistant message and a `tools` column with each skill's
            JSON Schema (Axolotl's chat_template loader reads `tools` by default)
`other()` is an ordinary call in every style, so "no skill" is always an explicit answer.
A request for two skills at once (datagen/compound.py) is answered with two calls, in order:
    python  a Python list `[timer(duration="ten minutes"), notes(action="add", note="eggs")]`
    json    a JSON list of the style's objects `[{"function_call": ...}, {"function_call": ...}]`
    tools   two entries in `tool_calls`
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from skilltune.calls import (
    NO_CALL_NAME,
    Call,
    CallSyntaxError,
    call_from_json,
    call_from_tool_call,
    call_to_json,
    calls_to_python,
    parse_calls,
    several_calls_checked,
)
from skilltune.jsonio import loads
from skilltune.skills import Skill

STYLES = ("python", "json", "tools")


def system_prompt(skills: list[Skill]) -> str:
    """One short line naming the skills: "Answer with one function call: weather, ..., or other()."

    Every prompt token is paid for at each training step and each generation: on 2 CPU cores
    this line (~27 tokens) instead of full signatures (~95) halves the time per step. The
    argument names are learned from the training answers.
    """
    names = [skill.name for skill in skills if skill.name != NO_CALL_NAME]
    return f"Answer with one function call: {', '.join(names)}, or {NO_CALL_NAME}()."


SYSTEM_PROMPTS = ("names", "signatures", "none")


def signatures_prompt(skills: list[Skill]) -> str:
    """Each skill's signature and the first sentence of its description, one a line: what a model
    needs to call a skill it never trained on (`--system signatures`, `--holdout-skills`)."""
    lines = [f"Answer with one function call, or {NO_CALL_NAME}() when the request is none of these:"]
    for skill in skills:
        if skill.name != NO_CALL_NAME:
            first_sentence = skill.description.split(". ")[0].rstrip(".")
            lines.append(f"{skill.short_signature()}: {first_sentence}." if first_sentence else skill.short_signature())
    return "\n".join(lines)


def prompt_for(kind: str, skills: list[Skill]) -> str | None:
    """The system prompt of a SYSTEM_PROMPTS kind: one line of names, signatures, or none."""
    if kind not in SYSTEM_PROMPTS:
        raise ValueError(f"unknown system prompt {kind!r}; expected one of {', '.join(SYSTEM_PROMPTS)}")
    return {"names": system_prompt, "signatures": signatures_prompt}[kind](skills) if kind != "none" else None


def tool_definitions(skills: list[Skill]) -> list[dict]:
    return [
        {
            "type": "function",
            "function": {"name": skill.name, "description": skill.description, "parameters": skill.json_schema()},
        }
        for skill in skills
    ]


def answer_message(calls: Call | Sequence[Call], style: str) -> dict:
    """The assistant message answering with one call, or with several in the order given."""
    calls = [calls] if isinstance(calls, Call) else list(calls)
    if style == "python":
        return {"role": "assistant", "content": calls_to_python(calls)}
    if style == "json":
        objects = [call_to_json(call) for call in calls]
        return {
            "role": "assistant",
            "content": json.dumps(objects[0] if len(calls) == 1 else objects, ensure_ascii=False),
        }
    if style == "tools":
        functions = [{"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)} for call in calls]
        tool_calls = [{"type": "function", "function": function} for function in functions]
        return {"role": "assistant", "content": "", "tool_calls": tool_calls}
    raise ValueError(f"unknown style {style!r}; expected one of {', '.join(STYLES)}")


def chat_record(
    system: str | None,
    user: str,
    calls: Call | Sequence[Call],
    style: str = "python",
    tools: list[dict] | None = None,
) -> dict:
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": user}, answer_message(calls, style)]
    record = {"messages": messages}
    if tools is not None:
        record["tools"] = tools
    return record


def answer_calls(message: dict) -> list[Call]:
    """The calls an assistant message holds, whatever its style: one, or two or more in order
    (never other() among several); CallSyntaxError if the answer is not that."""
    if message.get("tool_calls"):
        return several_calls_checked([call_from_tool_call(tool_call) for tool_call in message["tool_calls"]])
    content = message.get("content", "").strip()
    # a JSON answer opens with its object, or with the "[{" of a list of them; `[timer(` is Python
    if content.startswith("{") or (content.startswith("[") and content[1:].lstrip().startswith("{")):
        try:
            value = loads(content)
        except json.JSONDecodeError as err:
            raise CallSyntaxError(f"not JSON: {err.msg}") from None
        except ValueError as err:  # NaN, Infinity, an integer too long to read
            raise CallSyntaxError(f"not JSON: {err}") from None
        if not isinstance(value, list):
            return [call_from_json(value)]
        if len(value) < 2:
            raise CallSyntaxError("a list of calls holds two or more; one call is written alone")
        return several_calls_checked([call_from_json(item) for item in value])
    return parse_calls(content)


def answer_call(message: dict) -> Call:
    """The one call an assistant message holds; CallSyntaxError if none, or several."""
    calls = answer_calls(message)
    if len(calls) != 1:
        raise CallSyntaxError(f"expected exactly one call, the answer makes {len(calls)}")
    return calls[0]


def gold_calls(record: dict) -> list[Call]:
    """The calls a record's final assistant turn holds (records are validated, so they parse)."""
    return answer_calls(record["messages"][-1])


def gold_call(record: dict) -> Call:
    """The one call of a single-call record's final assistant turn (gold_calls for any record)."""
    return answer_call(record["messages"][-1])


def chat_record_problem(record: dict) -> str | None:
    """Rules for any chat record (Q&A, conversations): beyond the JSON Schema, an optional system
    message first, then user and assistant turns alternating, starting with a user turn and ending
    with a non-empty assistant answer (the turn Axolotl trains on)."""
    messages = record["messages"]
    if any(message["role"] == "system" for message in messages[1:]):
        return "a system message may only come first"
    turns = messages[1:] if messages[0]["role"] == "system" else messages
    if not turns or turns[-1]["role"] != "assistant":
        return "the last message must be the assistant's answer"
    for index, message in enumerate(turns):
        expected = "user" if index % 2 == 0 else "assistant"
        if message["role"] != expected:
            number = index + 1 + len(messages) - len(turns)
            return f"message {number} is {message['role']!r}; user and assistant turns must alternate, user first"
    if not (turns[-1]["content"].strip() or turns[-1].get("tool_calls")):
        return "the assistant's answer is empty"
    return None


def record_problem(record: dict) -> str | None:
    """Style rules beyond the JSON Schema for skill records: a chat record whose final assistant
    answer is a call that parses, or several (answer_calls)."""
    messages = record["messages"]
    if messages[-1]["role"] != "assistant":
        return "the last message must be the assistant's answer"
    if messages[-2]["role"] != "user":
        return "the assistant's answer must follow a user message"
    if any(message["role"] == "system" for message in messages[1:]):
        return "a system message may only come first"
    try:
        answer_calls(messages[-1])
    except CallSyntaxError as err:
        return f"assistant answer {messages[-1].get('content', '')[:60]!r}: {err}"
    if messages[-1].get("tool_calls") and "tools" not in record:
        return "an answer with tool_calls needs a `tools` column listing the functions"
    return None


def user_text(record: dict) -> str:
    return record["messages"][-2]["content"]
