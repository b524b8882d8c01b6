"""Turn (utterance, call) pairs into Axolotl chat records.

The record is what `type: chat_template` with `field_messages: messages` reads:
    {"messages": [{"role": "system", ...}, {"role": "user", ...}, {"role": "assistant", "content": "weather(location=\"Berlin\")"}]}
The system prompt names the skills in one line, which keeps a whole record near 60 tokens so
training and inference stay cheap on a CPU.
"""

from __future__ import annotations

from datagen.calls import NO_CALL_NAME, Call, CallSyntaxError, parse_call
from datagen.skills import Skill


def system_prompt(skills: list[Skill]) -> str:
    """One short line naming the skills: "Answer with one function call: weather, ..., or other()."

    Every prompt token is paid for at each training step and each generation: on 2 CPU cores
    this line (~27 tokens) instead of full signatures (~95) halves the time per step. The
    argument names are learned from the training answers.
    """
    names = [skill.name for skill in skills if skill.name != NO_CALL_NAME]
    return f"Answer with one function call: {', '.join(names)}, or {NO_CALL_NAME}()."


def chat_record(system: str, user: str, call: Call) -> dict:
    return {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
            {"role": "assistant", "content": call.to_python()},
        ]
    }


def gold_call(record: dict) -> Call:
    """The call a record's final assistant turn holds (records are validated, so it parses)."""
    return parse_call(record["messages"][-1]["content"])


def record_problem(record: dict) -> str | None:
    """Style rules beyond the JSON Schema: ends with a user turn then an assistant call that parses."""
    messages = record["messages"]
    if messages[-1]["role"] != "assistant":
        return "the last message must be the assistant's answer"
    if messages[-2]["role"] != "user":
        return "the assistant's answer must follow a user message"
    if any(message["role"] == "system" for message in messages[1:]):
        return "a system message may only come first"
    try:
        parse_call(messages[-1]["content"])
    except CallSyntaxError as err:
        return f"assistant answer {messages[-1]['content'][:60]!r}: {err}"
    return None


def user_text(record: dict) -> str:
    return record["messages"][-2]["content"]
