"""`datagen llm --judge-model`: a second model asked, per pair that passed every other check,
whether the call answers the request.

The judge answers yes or no and nothing else; anything else ("Yes, because...", "maybe", a tool
call) is read as a refusal, "judge: unclear answer", since a verdict that has to be guessed at
is no verdict. The request body is a pure function of (judge model, skill, request, call), so
the verdicts are cached like the generation answers (skilltune/cache.py): a re-run asks the
judge nothing it has answered. Only a clear yes or no is cached; an unclear answer is asked
again next run, as a generation answer without a valid pair is.
"""

from __future__ import annotations

import asyncio
import json
import re

from skilltune.completions import CachedCompletions
from skilltune.skills import Skill

JUDGE_SYSTEM_PROMPT = (
    "You check training data for a voice assistant that turns what a user says into one function "
    "call. Answer with one word: yes or no."
)
_VERDICT = re.compile(r"(yes|no)\.?", re.IGNORECASE)  # a lone word, a closing period at most
UNCLEAR = "judge: unclear answer"
REFUSED = "judge: no"


def judge_body(skill: Skill, user: str, call: str, model: str) -> dict:
    """The chat-completions body asking whether `call` answers `user`; nothing in it varies between runs."""
    lines = [
        f"Skill: {skill.signature}",
        f"Description: {skill.description}",
        "",
        f"Request: {json.dumps(user, ensure_ascii=False)}",
        f"Call: {call}",
        "",
        "Is the request something a person would say to a voice assistant, and is the call exactly "
        "what it asks for, with every argument taken from the request? Answer yes or no.",
    ]
    return {
        "model": model,
        "messages": [
            {"role": "system", "content": JUDGE_SYSTEM_PROMPT},
            {"role": "user", "content": "\n".join(lines)},
        ],
        "temperature": 0,
    }


def read_verdict(response) -> bool | None:
    """True for yes, False for no, None for any other answer (of any JSON shape)."""
    choices = response.get("choices") if isinstance(response, dict) else None
    first = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    match = _VERDICT.fullmatch(content.strip()) if isinstance(content, str) else None
    return match.group(1).lower() == "yes" if match else None


class Judge:
    """Verdicts on pairs through a cached client, at most `concurrency` judge requests in flight."""

    def __init__(self, completions: CachedCompletions, model: str, concurrency: int):
        self.completions, self.model = completions, model
        self.slots = asyncio.Semaphore(concurrency)

    async def problem(self, skill: Skill, pair: dict) -> str | None:
        """None when the judge says yes, else the reject reason."""
        body = judge_body(skill, pair["user"], pair["call"], self.model)
        async with self.slots:
            response = await self.completions.complete(
                body, f"judge of a {skill.name} pair", lambda answer: read_verdict(answer) is not None
            )
        verdict = read_verdict(response)
        return None if verdict else UNCLEAR if verdict is None else REFUSED

    async def problems(self, skill: Skill, pairs: list[dict]) -> dict[tuple[str, str], str | None]:
        """(user, call) -> the judge's problem with it, for each distinct pair, asked concurrently."""
        keys = list(dict.fromkeys((pair["user"], pair["call"]) for pair in pairs))
        found = await asyncio.gather(*(self.problem(skill, {"user": user, "call": call}) for user, call in keys))
        return dict(zip(keys, found))
