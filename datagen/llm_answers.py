"""Reading `datagen llm`'s answers and judging their candidates, without a crash whatever JSON
comes back.

A candidate must be JSON with a non-empty one-line `user` and either `arguments` (an object,
made into `Call(skill, arguments)`) or `call` (text, parsed with `parse_call`, never executed);
the call must pass `Skill.check_call`, survive a round trip through its text and make sense with
its request (datagen/pair_checks.py: words, no empty value, copied values said). (Whether the
utterance is new is the run's to judge: datagen/llm.py.) A tool call's `arguments` may be JSON
text or already an object.
"""

from __future__ import annotations

import json

from datagen.pair_checks import pair_problem
from skilltune.calls import Call, CallSyntaxError, parse_call
from skilltune.completions import unfence
from skilltune.pairs import normalize
from skilltune.skills import Skill

MAX_REJECT_TEXT = 2000  # a non-JSON answer is kept in the rejects file up to this many characters


class MalformedAnswer(ValueError):
    """An answer that does not hold the pairs JSON; str() is the reject reason."""


def _kind(value) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "text",
        bool: "a boolean",
        type(None): "null",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def answer_payloads(response) -> tuple[list, list[tuple[object, str]]]:
    """(payloads, problems) of an answer, for any JSON value whatever its shape; never raises.

    A payload should hold the pairs JSON: each tool call's `arguments` (text, or already an object
    or list, as some servers send it), else the message content (text, or a list of text parts).
    A problem is (what to keep in the rejects file, why it holds no pairs)."""
    choices = response.get("choices") if isinstance(response, dict) else None
    if not isinstance(choices, list) or not choices:
        return [], [(None, f"malformed answer: no choices (the answer is {_kind(response)})")]
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    if not isinstance(message, dict):
        return [], [(None, f"malformed answer: the first choice has no message object ({_kind(message)})")]
    calls = message.get("tool_calls")
    calls = list(calls) if isinstance(calls, list) else [] if calls is None else [calls]
    if isinstance(message.get("function_call"), dict):  # the older single-function form some servers still send
        calls.append({"function": message["function_call"]})
    payloads, problems = [], []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        arguments = function.get("arguments") if isinstance(function, dict) else None
        if isinstance(arguments, (str, dict, list)):
            payloads.append(arguments)
        else:
            problems.append((call, f"malformed tool call: arguments is {_kind(arguments)}, not JSON text"))
    if calls:
        return payloads, problems
    content = message.get("content")
    if isinstance(content, list):  # content parts: [{"type": "text", "text": "..."}, ...]
        texts = [part.get("text") for part in content if isinstance(part, dict)]
        content = "".join(text for text in texts if isinstance(text, str)) if texts else content
    if isinstance(content, str) and content.strip():
        return [content], []
    if content is None or isinstance(content, str):
        return [], [(None, "empty answer: no tool call and no content")]
    return [], [(content, f"malformed answer: content is {_kind(content)}, not text")]


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_answer(payload) -> list:
    """The candidates in one payload: {"pairs": [...]} or a bare [...], as text (optionally in a
    ``` fence) or already parsed."""
    if isinstance(payload, str):
        text = unfence(payload.strip())
        try:
            payload = json.loads(text, parse_constant=_no_constant)
        except json.JSONDecodeError as err:
            raise MalformedAnswer(f"malformed JSON: {err.msg} (line {err.lineno} column {err.colno})") from None
        except ValueError as err:  # NaN, Infinity
            raise MalformedAnswer(f"malformed JSON: {err}") from None
        except RecursionError:
            raise MalformedAnswer("malformed JSON: nested too deeply") from None
    if isinstance(payload, dict) and isinstance(payload.get("pairs"), list):
        return payload["pairs"]
    if isinstance(payload, list):
        return payload
    raise MalformedAnswer('malformed answer: expected {"pairs": [...]}')


def read_answer(response) -> tuple[list, list[tuple[object, str]]]:
    """(candidates, problems) of one answer (see answer_payloads); never raises."""
    payloads, problems = answer_payloads(response)
    candidates = []
    for payload in payloads:
        kept = payload[:MAX_REJECT_TEXT] if isinstance(payload, str) else payload
        try:
            found = parse_answer(payload)
        except MalformedAnswer as err:
            problems.append((kept, str(err)))
            continue
        if not found:
            problems.append((kept, "empty answer: no pairs"))
        candidates += found
    return candidates, problems


def usable(skill: Skill, response) -> bool:
    """Whether an answer holds at least one valid pair for `skill` (new or not): only such an
    answer is cached, or taken from the cache; any other is asked for again next run."""
    candidates, _ = read_answer(response)
    return any(build_pair(skill, candidate)[1] is None for candidate in candidates)


def _candidate_call(skill: Skill, candidate: dict) -> Call:
    """The call a candidate proposes; raises MalformedAnswer / CallSyntaxError."""
    if "arguments" in candidate:
        arguments = {} if candidate["arguments"] is None else candidate["arguments"]
        if not isinstance(arguments, dict):
            raise MalformedAnswer("malformed pair: arguments is not an object")
        return Call(skill.name, arguments)
    if isinstance(candidate.get("call"), str):
        return parse_call(candidate["call"])
    raise MalformedAnswer('malformed pair: expected "arguments" (an object) or "call" (text)')


def build_pair(skill: Skill, candidate) -> tuple[dict | None, str | None]:
    """(pair line, None) when the candidate is a valid pair for `skill`, else (None, reason)."""
    if not isinstance(candidate, dict) or not isinstance(candidate.get("user"), str):
        return None, 'malformed pair: expected {"user": "...", "arguments": {...}}'
    user = candidate["user"].strip()
    if not normalize(user):
        return None, "empty user text"
    if "\n" in user or "\r" in user:
        return None, "user text has a line break"
    try:
        call = _candidate_call(skill, candidate)
    except MalformedAnswer as err:
        return None, str(err)
    except CallSyntaxError as err:
        return None, f"unparsable call: {err}"
    problem = skill.check_call(call)
    if problem:  # check_call says either "call to f() in the file of skill s" or "... does not fit ..."
        return None, problem if "does not fit" in problem else f"does not fit {skill.name}: {problem}"
    text = call.to_python()
    try:
        round_trip = parse_call(text)
    except CallSyntaxError:
        round_trip = None
    if round_trip != call:  # e.g. a line break inside a value: the call text could not carry it
        return None, f"does not fit {skill.name}: the call cannot be written back as one line of call text"
    problem = pair_problem(skill, user, call)  # fitting the schema is not making sense
    if problem:
        return None, problem
    return {"skill": skill.name, "user": user, "call": text, "source": "llm"}, None
