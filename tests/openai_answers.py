"""What the scripted OpenAI-compatible server (openai_server.py) answers: a pure function of
the mode and the request body, so the same request always gets the same answer from any server.

Chat completions for each mode (pairs that fit a skill, pairs that do not, content of the wrong
shape, ...), fine-tuning job objects and their error bodies, the minimal training-file check, the
multipart upload reader, and a scripted model of `datagen documents` (`documents_reply`).

The modes of `POST /v1/chat/completions`:

    ok          valid {user, arguments} pairs, sent as a forced tool call
    ok_content  the same pairs as plain `message.content` JSON inside a ```json fence
    slow        sleeps `slow_ms`, then answers like ok
    duplicate   the same pairs for every request of a skill (so all but the first are duplicates)
    429         status 429 with a `Retry-After: <retry_after>` header
    500         status 500
    malformed   200 with content that is not JSON and no tool call
    invalid     JSON pairs that do not fit: unknown argument, wrong function, unparsable call, empty user
    content_number / content_list / content_null
                200 whose message `content` is 42 / [1, 2] / null, with no tool call
    arguments_object
                the ok pairs in a tool call whose `arguments` is a JSON object, not JSON text
    short_body  200 whose Content-Length promises more than is sent before the connection closes
    cut_json    200 whose body (with a matching Content-Length) is JSON cut off halfway
    reply       whatever the constructor's `reply(body)` returns: a str becomes `message.content`,
                a dict is the whole message (e.g. with `tool_calls`); for scoring eval prompts

Files and fine-tuning jobs, as the `openai` client's `files.create` and `fine_tuning.jobs.*` call them:

    POST /v1/files                          multipart upload; the bytes are kept (`uploaded_files`)
    POST /v1/fine_tuning/jobs               a job on an uploaded file (400 for an unknown file id)
    GET  /v1/fine_tuning/jobs/{id}          the job; the first GET finds it validating_files, and each
                                            GET after moves it one step: queued, running, succeeded
    GET  /v1/fine_tuning/jobs/{id}/events   its events, newest first, one or more per step
    POST /v1/fine_tuning/jobs/{id}/cancel   cancelled, unless it has finished

The training file is checked minimally at validation (each line a JSON object whose messages include
an assistant message); a bad one fails the job with error code `invalid_training_file` naming the
line. `fine_tune="failed"` (constructor or attribute) scripts a job that fails while running, with
an error object, instead of succeeding. Jobs, with the create request's body, are in `fine_tuning_jobs`.

"ok" pairs are a pure function of the request body (skill name from the prompt's `Skill:` line,
argument schema and batch size from the `tools` definition, utterances from a hash of the
messages), so the same request always gets the same answer, from any server instance.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP

MODES = (
    "ok",
    "ok_content",
    "slow",
    "duplicate",
    "429",
    "500",
    "malformed",
    "invalid",
    "content_number",
    "content_list",
    "content_null",
    "arguments_object",
    "short_body",
    "cut_json",
    "reply",
)
CONTENT_MODES = {"content_number": 42, "content_list": [1, 2], "content_null": None}
SKILL_LINE = re.compile(r"^Skill: ([A-Za-z_]\w*)\(", re.MULTILINE)


def _digest(body: dict) -> str:
    return hashlib.sha256(json.dumps(body.get("messages"), sort_keys=True).encode()).hexdigest()


def _prompt_text(body: dict) -> str:
    return "\n".join(str(m.get("content", "")) for m in body.get("messages", []) if isinstance(m, dict))


def _request_shape(body: dict) -> tuple[str, dict, int]:
    """(skill name, argument schema, pairs wanted) as far as the request tells them."""
    match = SKILL_LINE.search(_prompt_text(body))
    skill = match.group(1) if match else "unknown"
    arguments_schema, wanted = {}, 3
    for tool in body.get("tools") or []:
        pairs = tool.get("function", {}).get("parameters", {}).get("properties", {}).get("pairs", {})
        arguments_schema = pairs.get("items", {}).get("properties", {}).get("arguments", {})
        wanted = pairs.get("maxItems", wanted)
    return skill, arguments_schema, wanted


def _arguments(schema: dict, salt: str, number: int) -> dict:
    values = {}
    for name, spec in schema.get("properties", {}).items():
        enum, kind = spec.get("enum"), spec.get("type")
        if enum:
            values[name] = enum[number % len(enum)]
        elif kind in ("integer", "number", "boolean"):
            values[name] = {"integer": number, "number": number + 0.5, "boolean": number % 2 == 0}[kind]
        else:
            values[name] = f"thing {salt} {number}"
    return values


def good_pairs(body: dict, repeat: bool = False) -> list[dict]:
    """Pairs that fit the requested skill and make sense (datagen/pair_checks.py: the request says
    every free value of its call); distinct per request unless `repeat`."""
    skill, schema, wanted = _request_shape(body)
    salt = "same" if repeat else _digest(body)[:10]
    return [
        {"user": f"please do {skill} with thing {salt} {number}", "arguments": _arguments(schema, salt, number)}
        for number in range(wanted)
    ]


def bad_pairs(body: dict) -> list[dict]:
    """One pair per kind of misfit the generator must reject."""
    skill, _, _ = _request_shape(body)
    salt = _digest(body)[:10]
    return [
        {"user": f"unknown argument {salt}", "arguments": {"no_such_argument": "x"}},
        {"user": f"wrong function {salt}", "call": "no_such_skill()"},
        {"user": f"broken call {salt}", "call": f"{skill}(oops="},
        {"user": "   ", "arguments": {}},
    ]


def _tool_message(body: dict, pairs: list[dict], number: int) -> dict:
    tool_name = ((body.get("tools") or [{}])[0].get("function") or {}).get("name", "submit_pairs")
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": f"call_{number}",
                "type": "function",
                "function": {"name": tool_name, "arguments": json.dumps({"pairs": pairs})},
            }
        ],
    }


def _completion(body: dict, message: dict, number: int) -> dict:
    prompt_tokens = len(_prompt_text(body).split())
    completion_tokens = len(json.dumps(message).split())
    return {
        "id": f"chatcmpl-test-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "test-model"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def answer(
    mode: str, body: dict, number: int, retry_after: str = "0", reply: Callable[[dict], str | dict] | None = None
) -> tuple[int, dict, dict]:
    """(status, extra headers, JSON body) for one request in `mode` (after any sleeping)."""
    if mode == "429":
        return 429, {"Retry-After": retry_after}, error_body("rate limit reached (test server)", "rate_limit_error")
    if mode == "500":
        return 500, {}, error_body("internal error (test server)", "server_error")
    if mode == "reply":
        result = reply(body)
        message = {"role": "assistant", **(result if isinstance(result, dict) else {"content": result})}
    elif mode in CONTENT_MODES:
        message = {"role": "assistant", "content": CONTENT_MODES[mode]}
    elif mode == "arguments_object":
        message = _tool_message(body, good_pairs(body), number)
        message["tool_calls"][0]["function"]["arguments"] = {"pairs": good_pairs(body)}
    elif mode == "malformed":
        message = {"role": "assistant", "content": "Sure! Here are some great examples: user asks for"}
    elif mode == "ok_content":
        text = json.dumps({"pairs": good_pairs(body)}, indent=1)
        message = {"role": "assistant", "content": f"```json\n{text}\n```"}
    elif mode == "invalid":
        message = _tool_message(body, bad_pairs(body), number)
    elif not body.get("tools"):  # ok, slow, duplicate for a client that offers no function
        message = {"role": "assistant", "content": json.dumps({"pairs": good_pairs(body, repeat=mode == "duplicate")})}
    else:  # ok, slow, duplicate
        message = _tool_message(body, good_pairs(body, repeat=mode == "duplicate"), number)
    return 200, {}, _completion(body, message, number)


def error_body(message: str, kind: str, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}


def public_job(job: dict) -> dict:
    """The job as the API shows it (without the test server's own bookkeeping)."""
    return {key: value for key, value in job.items() if key not in ("suffix", "outcome")}


def training_file_problem(data: bytes) -> str | None:
    """A minimal check of an uploaded training file: "line N: reason" or None."""
    lines = data.decode("utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines, 1):
        try:
            example = json.loads(line)
        except json.JSONDecodeError:
            return f"line {number}: not JSON"
        messages = example.get("messages") if isinstance(example, dict) else None
        if not isinstance(messages, list) or not messages:
            return f"line {number}: no messages"
        if not any(isinstance(message, dict) and message.get("role") == "assistant" for message in messages):
            return f"line {number}: no assistant message"
    return None if lines else "the file is empty"


def multipart_fields(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """{field name: (file name or None, bytes)} of a multipart/form-data body, read by the stdlib's MIME parser."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    if not message.is_multipart():
        raise ValueError("not a multipart/form-data body")
    return {
        part.get_param("name", header="content-disposition"): (part.get_filename(), part.get_payload(decode=True))
        for part in message.iter_parts()
    }


# --- a scripted model of datagen documents, for the `reply` mode

CHUNK_TEXT = re.compile(r'Text:\n"""\n(.*?)\n"""', re.DOTALL)


def chunk_of(body: dict) -> str:
    return CHUNK_TEXT.search(body["messages"][-1]["content"]).group(1)


def documents_reply(body: dict) -> str:
    """Question requests (they carry response_format) get the typed JSON, distinct per chunk; a
    chunk holding GARBAGE gets prose with no question. Answer requests get the chunk's first
    words, or the refusal when the question is about "nothing"."""
    text = chunk_of(body)
    if "response_format" in body:
        if "GARBAGE" in text:
            return "Sure! Here are some great questions for you. Enjoy"
        count = int(re.search(r"Write (\d+) different questions", body["messages"][-1]["content"]).group(1))
        tag = hashlib.sha256(text.encode()).hexdigest()[:10]
        questions = [f"What does passage {tag} say about topic {n}?" for n in range(count)]
        if "UNANSWERABLE" in text:
            questions[-1] = f"What does passage {tag} say about nothing?"
        return json.dumps({"questions": questions})
    question = body["messages"][-1]["content"].split("Question: ", 1)[1].split("\n", 1)[0]
    if "nothing" in question:
        return "I don't know"  # no period: the generator must still write exactly UNKNOWN_ANSWER
    return "It says: " + " ".join(text.split()[:8])
