"""The request plan of `datagen llm`: request i of skill s, a pure function of (pack, s, i, model,
seed, batch), so a re-run sends the same bodies and finds them in the cache.

The prompt describes the skill (signature, description, JSON Schema of its arguments), shows a
sample of the pack's examples picked by (seed, s, i), and asks for `batch` new pairs through a
forced function call (`submit_pairs`); the same JSON as plain `message.content` is accepted too.
A skill gets requests 0, 1, 2, ... until it has `--per-skill` pairs or hits a cap of CAP_FACTOR
times the requests it would need if every candidate were accepted.
"""

from __future__ import annotations

import json
import math
import random

from skilltune.calls import NO_CALL_NAME
from skilltune.skills import Skill

TOOL_NAME = "submit_pairs"
TEMPERATURE = 1.0
EXAMPLES_SHOWN = 12  # pack examples per prompt, a different sample for each request
CAP_FACTOR = 3  # a skill gets at most this many times the requests it needs at 100 % acceptance
# how the users' requests of one batch are phrased, one style a request in turn (not the answer
# formats of skilltune/records.py's STYLES)
UTTERANCE_STYLES = (
    "short spoken commands",
    "questions",
    "noisy speech transcripts: lowercase, no punctuation, filler words like um or uh",
    "polite, longer requests with some context",
    "casual and terse, the way people talk to a phone",
    "indirect requests that still clearly ask for this skill",
)
SYSTEM_PROMPT = (
    "You write training data for a small model that turns what a user says to a voice assistant "
    "into one function call. You answer only by calling the function you are given."
)


def requests_needed(per_skill: int, batch: int) -> int:
    return max(1, math.ceil(per_skill / batch))


def request_cap(per_skill: int, batch: int) -> int:
    return CAP_FACTOR * requests_needed(per_skill, batch)


def pairs_tool(skill: Skill, batch: int) -> dict:
    """The function the model is made to call: an array of {user, arguments} for this skill."""
    pair = {
        "type": "object",
        "properties": {
            "user": {"type": "string", "description": "What the user says, one line."},
            "arguments": skill.json_schema(),
        },
        "required": ["user", "arguments"],
        "additionalProperties": False,
    }
    return {
        "type": "function",
        "function": {
            "name": TOOL_NAME,
            "description": f"Submit new training pairs for the skill {skill.name}().",
            "parameters": {
                "type": "object",
                "properties": {"pairs": {"type": "array", "items": pair, "minItems": 1, "maxItems": batch}},
                "required": ["pairs"],
                "additionalProperties": False,
            },
        },
    }


def _example_lines(skill: Skill, index: int, seed: int) -> list[str]:
    # a different, reproducible sample per request (str seeds are stable across processes)
    rng = random.Random(f"{seed}:{skill.name}:{index}")
    chosen = sorted(rng.sample(range(len(skill.examples)), min(EXAMPLES_SHOWN, len(skill.examples))))
    return [f"- {json.dumps(skill.examples[i].user)} -> {skill.examples[i].call.to_python()}" for i in chosen]


def _task_lines(skill: Skill, pack: list[Skill], batch: int) -> list[str]:
    if skill.name == NO_CALL_NAME:
        others = [f"- {s.short_signature()}: {s.description}" for s in pack if s.name != NO_CALL_NAME]
        return [
            "These requests must NOT be for any of these skills:",
            *others,
            "",
            f"Task: write {batch} new, varied things a user might say to a voice assistant that none of "
            "those skills handles: small talk, questions they cannot answer, remarks that only mention "
            "a skill's topic. `arguments` is always {}.",
        ]
    return [
        f"Task: write {batch} new, varied user requests for this skill, each with the arguments of "
        "the call it should produce. Do not repeat or lightly reword the examples. Use new values "
        "for free-text arguments, written exactly as the user says them. Leave an optional argument "
        "out when the request does not give it. A choice argument takes one of its listed values.",
    ]


def request_body(skill: Skill, pack: list[Skill], index: int, *, model: str, seed: int, batch: int) -> dict:
    """The chat-completions body of request `index` for `skill`; nothing in it varies between runs."""
    lines = [
        f"Skill: {skill.signature}",
        f"Description: {skill.description}",
        f"Arguments (JSON Schema): {json.dumps(skill.json_schema(), sort_keys=True)}",
        "",
        "Examples of what users say and the call each one should produce:",
        *_example_lines(skill, index, seed),
        "",
        *_task_lines(skill, pack, batch),
        f"Style for this batch: {UTTERANCE_STYLES[index % len(UTTERANCE_STYLES)]}.",
        "",
        f'Answer by calling {TOOL_NAME} with {{"pairs": [{{"user": "...", "arguments": {{...}}}}, ...]}}. '
        "If you cannot call functions, answer with only that JSON object.",
        f"Batch {index + 1}, variation {seed}-{index}.",
    ]
    return {
        "model": model,
        "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n".join(lines)}],
        "tools": [pairs_tool(skill, batch)],
        "tool_choice": {"type": "function", "function": {"name": TOOL_NAME}},
        "temperature": TEMPERATURE,
        "seed": seed,
    }
