"""Whether a (request, call) pair that fits its skill's JSON Schema also makes sense.

A schema lets through what a weak model writes when it has nothing to say: `"A-B-C"` ->
`notes(action="add", note="")`, `"2015-3-14T16:07:19"` -> `openai(prompt="write a poem ...")`.
`pair_problem` refuses such a pair with a short reason; datagen llm sends every candidate
through it after the schema check (datagen/llm.py) and keeps the reason in its rejects file.
"""

from __future__ import annotations

import re

from skilltune.calls import NO_CALL_NAME, Call
from skilltune.pairs import copied_params, spoken_in
from skilltune.skills import Skill

# a word is a run of letters (any script; an apostrophe inside joins "what's" or "i'm" into one)
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")
SHOWN = 60  # characters of a value quoted in a reason


def _letters(word: str) -> int:
    return sum(char.isalpha() for char in word)


def has_words(user: str) -> bool:
    """Whether `user` reads as something a person says: two words of 2+ letters ("open spotify",
    "what is 12*7"), or one word of 4+ letters ("hiya", "headlines?", "compute (3+4)*5").

    Symbols, numbers, timestamps ("2015-3-14T16:07:19": its only letter is T), initials ("A-B-C")
    and a stray letter ("d,") have neither. A lone long word is allowed because the pack's own
    requests include them; two short ones because that is how terse requests are said ("run gimp").
    Of the default pack's call requests only arithmetic in digits fails ("7 x 8?", "6 x 7"), a loss
    worth the noise it keeps out."""
    words = [word for word in _WORD.findall(user) if _letters(word) >= 2]
    return len(words) >= 2 or any(_letters(word) >= 4 for word in words)


def _shown(value: str) -> str:
    return repr(value if len(value) <= SHOWN else value[: SHOWN - 3] + "...")


def pair_problem(skill: Skill, user: str, call: Call) -> str | None:
    """Why the pair makes no sense (a short reason), or None; `call` already fits `skill`."""
    # other() answers what is not a skill request, "k" and "hmm" included: a letter is enough there
    said = any(char.isalpha() for char in user) if call.name == NO_CALL_NAME else has_words(user)
    if not said:
        return "request has no words"
    for name, value in call.arguments.items():
        # an optional parameter the request does not give is left out, never set to ""
        if isinstance(value, str) and not value.strip():
            return f"{name} is empty"
    for name in copied_params(skill):
        value = call.arguments.get(name)
        # the skill copies this value from what the user says: one they did not say is made up
        if isinstance(value, str) and not spoken_in(value, user):
            return f"{name}={_shown(value)} is not in the request"
    return None
