"""Wording variety: how people type a request that a pack's templates never show.

Templates write each value one way ("weather in Paris"); people quote names, change their case,
and name the skill they want. A model trained on templates alone copies values only in the forms
it saw ("open \"Visual Studio Code\"" gave a value with its quotes kept, "Ask OpenAI to ..." a
fragment). Each rewrite keeps the call exact, because a copied value stays a verbatim copy:
    quote        "add buy milk to my notes" -> "add 'buy milk' to my notes"        note="buy milk"
    recase       "weather in Paris" -> "weather in PARIS"                           location="PARIS"
    shout        "weather in Paris" -> "WEATHER IN PARIS"                           location="PARIS"
                 (caps lock: the whole request, and every copied value with it)
    mention      "weather in Paris" -> "use the weather skill: weather in Paris"    location="Paris"
    misspell     "what is the weather in Paris" -> "wat is teh wether in Paris"    location="Paris"
                 (texting shorthand or a slipped key, in words outside the copied values)
Only train and val are rewritten (a share of them, `--variety`); the template test split stays as
the templates make it, and held-out wording is what measures whether this generalizes.
"""

from __future__ import annotations

import random
import re

from datagen.noise import WORD_NUMBERS
from skilltune.calls import NO_CALL_NAME, Call
from skilltune.pairs import Pair, find_spoken, normalize
from skilltune.skills import Skill

QUOTES = ('"{}"', "'{}'", "\u201c{}\u201d")
CASINGS = (str.upper, str.title, str.lower)
MENTIONS = (
    "use the {name} skill:",
    "{name} skill,",
    "{name}:",
    "with the {name} skill,",
    "hey {name},",
    "can the {name} skill do this:",
)


def _copied(pair: Pair, free: dict[str, set[str]]) -> list[tuple[str, re.Match]]:
    """(parameter, where its value is in the utterance) for each free string value copied verbatim
    (`free`: skill -> its free string parameters; a choice such as action="add" is never touched)."""
    found = []
    for name, value in pair.call.arguments.items():
        if name in free.get(pair.call.name, ()) and isinstance(value, str) and value.strip():
            match = find_spoken(value, pair.user, any_case=False)
            if match:
                found.append((name, match))
    return found


def quote_value(pair: Pair, rng: random.Random, free: dict[str, set[str]]) -> Pair | None:
    copied = _copied(pair, free)
    if not copied:
        return None
    _, match = rng.choice(copied)
    user = pair.user[: match.start()] + rng.choice(QUOTES).format(match.group(0)) + pair.user[match.end() :]
    return Pair(user, pair.call, pair.group)


def recase_value(pair: Pair, rng: random.Random, free: dict[str, set[str]]) -> Pair | None:
    copied = _copied(pair, free)
    if not copied:
        return None
    name, match = rng.choice(copied)
    new = rng.choice(CASINGS)(match.group(0))
    if new == match.group(0):
        return None
    user = pair.user[: match.start()] + new + pair.user[match.end() :]
    return Pair(user, Call(pair.call.name, {**pair.call.arguments, name: new}), pair.group)


def shout(pair: Pair, rng: random.Random, free: dict[str, set[str]]) -> Pair | None:
    """The whole request in capitals; each copied value follows. None when a free string value is
    not in the request as written (it could not follow) or the request has no letters to raise."""
    values = {name: value for name, value in pair.call.arguments.items() if name in free.get(pair.call.name, ())}
    if len(_copied(pair, free)) != len(values) or pair.user.upper() == pair.user:
        return None
    raised = {name: value.upper() for name, value in values.items()}
    return Pair(pair.user.upper(), Call(pair.call.name, {**pair.call.arguments, **raised}), pair.group)


# how people shorten words when they type fast; a word not listed gets a slipped key instead
SHORTHANDS = {
    "you": "u",
    "are": "r",
    "please": "plz",
    "what": "wat",
    "what's": "wats",
    "today": "2day",
    "tonight": "2nite",
    "to": "2",
    "for": "4",
    "the": "teh",
    "right": "rite",
    "now": "rn",
    "tomorrow": "tmrw",
    "minutes": "mins",
    "seconds": "secs",
    "thanks": "thx",
    "because": "cuz",
    "going": "gonna",
}


NUMBER_NAMES = frozenset(WORD_NUMBERS) | {"hundred", "thousand", "million", "half", "quarter"}


def _slip(word: str, rng: random.Random) -> str:
    """One typing slip: a letter dropped, doubled or swapped with the next."""
    at = rng.randrange(1, len(word) - 1)  # first and last letters stay: the word stays readable
    kind = rng.choice(("drop", "double", "swap"))
    if kind == "drop":
        return word[:at] + word[at + 1 :]
    if kind == "double":
        return word[:at] + word[at] + word[at:]
    return word[:at] + word[at + 1] + word[at] + word[at + 2 :]


def misspell(pair: Pair, rng: random.Random, free: dict[str, set[str]]) -> Pair | None:
    """One or two words outside every argument value typed wrong. A call whose values are not
    copied (math's "twelve times twelve" -> "12*12") keeps its number words and digits intact."""
    protected = [match.span() for _, match in _copied(pair, free)]
    words = [
        match
        for match in re.finditer(r"[A-Za-z][A-Za-z']*", pair.user)
        if not any(start < match.end() and match.start() < end for start, end in protected)
        and match.group(0).lower() not in NUMBER_NAMES
        and (match.group(0).lower() in SHORTHANDS or len(match.group(0)) >= 4)
    ]
    if not words:
        return None
    user = pair.user
    for match in sorted(rng.sample(words, min(len(words), rng.choice((1, 2)))), key=re.Match.start, reverse=True):
        word = match.group(0)
        short = SHORTHANDS.get(word.lower())
        new = short if short and (len(word) < 4 or rng.random() < 0.5) else _slip(word, rng)
        user = user[: match.start()] + new + user[match.end() :]
    return Pair(user, pair.call, pair.group)


def mention_skill(pair: Pair, rng: random.Random, free: dict[str, set[str]]) -> Pair | None:
    if pair.call.name == NO_CALL_NAME:  # naming a skill would make it a request for that skill
        return None
    user = f"{rng.choice(MENTIONS).format(name=pair.call.name)} {pair.user}"
    return Pair(user, pair.call, pair.group)


REWRITES = (quote_value, recase_value, shout, mention_skill, misspell)


def add_variety(splits: dict[str, list[Pair]], share: float, seed: int, skills: list[Skill]) -> dict[str, list[Pair]]:
    """Rewrite `share` of train and val pairs with one rewrite each; the other splits as they are.

    A rewrite is kept only when its normalized utterance is its own pair's or new to every split,
    so no utterance crosses splits."""
    rng = random.Random(seed + 2)  # its own stream: --variety does not reshuffle splits or noise
    used = {normalize(pair.user) for pairs in splits.values() for pair in pairs}
    free = {skill.name: {name for name, param in skill.params.items() if param.free_string} for skill in skills}

    def rewritten(pair: Pair) -> Pair:
        new = rng.choice(REWRITES)(pair, rng, free)
        if new is None:
            return pair
        key = normalize(new.user)
        if key != normalize(pair.user):
            if key in used:
                return pair
            used.add(key)
        return new

    result = dict(splits)
    for split in ("train", "val"):
        result[split] = [rewritten(pair) if rng.random() < share else pair for pair in splits[split]]
    return result
