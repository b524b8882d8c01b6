"""Compound requests: two skills asked for in one utterance, answered with two calls.

    "set a timer for ten minutes" + "add eggs to my list"
    -> "set a timer for ten minutes and add eggs to my list"
    -> [timer(duration="ten minutes"), notes(action="add", note="eggs")]

A share of each of train, val and test (`--compound`) becomes compound: a single-call record of a
call skill is replaced by itself joined with a record of another call skill from the same split
(never other(), which is no call). The replaced record's utterance lives on inside the compound and
the second part stays in the split alone too, so a split keeps its size, its skill counts (a
compound counts under its first call) and every utterance it had, and nothing crosses splits.
The answer lists the calls in the order they were asked; eval's exact match accepts either order.

`test_noisy` (the noisy twin of test) gains a speech-noised copy of each test compound; its
single-call records stay as they were. Other splits (held-out wording, unseen skills) are untouched.
"""

from __future__ import annotations

import random
import re

from datagen.noise import add_noise, as_heard
from datagen.split import NOISY_TEST
from skilltune.calls import Call
from skilltune.pairs import Pair, normalize

COMPOUND_SPLITS = ("train", "val", "test")
# how people chain two requests in one breath; {} {} are the two requests, in order
CONNECTIVES = ("{} and {}", "{}, then {}", "{} and also {}", "{} and after that {}", "{}, and then {}")
TRIES = 4  # joins tried for one record before it stays single (each new utterance must be unique)
# punctuation that ends a request: dropped where the second request follows
_ENDING = re.compile(r"[\s.!?,;]+$")


def _string_values(pair: Pair) -> list[str]:
    return [value for call in pair.calls for value in call.arguments.values() if isinstance(value, str)]


def _continuing(text: str, pair: Pair) -> str:
    """`text` (the second request) as the middle of a sentence: "Open spotify" -> "open spotify",
    but "I'd like ...", "NASA ..." and a first word copied into an argument value keep their case
    (lowering "Berlin" in `location="Berlin"` would break the verbatim copy)."""
    first = text.split(" ", 1)[0]
    if not first[:1].isupper() or first[1:] != first[1:].lower() or first == "I" or first[:2] in ("I'", "I\u2019"):
        return text
    if any(first in value for value in _string_values(pair)):
        return text
    return text[0].lower() + text[1:]


def join(first: Pair, second: Pair, connective: str) -> Pair:
    """One compound pair: both requests in one utterance, both calls in order, the first's group
    (both parts come from one split, so the compound's group is a group of that split)."""
    user = connective.format(_ENDING.sub("", first.user), _continuing(second.user, second))
    return Pair(user, first.call, first.group, (second.call,))


def _joinable(pair: Pair) -> bool:
    return not pair.later_calls and not pair.call.is_no_call


def _compound_split(pairs: list[Pair], share: float, rng: random.Random, used: set[str]) -> tuple[list[Pair], list]:
    """`pairs` with round(share x len) records replaced by compounds (fewer when too few joins are
    unique or no second skill is there), and the compounds made."""
    candidates = [index for index, pair in enumerate(pairs) if _joinable(pair)]
    wanted = min(round(share * len(pairs)), len(candidates))
    firsts = sorted(rng.sample(candidates, wanted))
    chosen = set(firsts)
    seconds_of: dict[str, list[int]] = {}  # skill -> the records of other skills a compound may add
    result, made = list(pairs), []
    for index in firsts:
        first = pairs[index]
        name = first.call.name
        if name not in seconds_of:
            seconds_of[name] = [i for i in candidates if i not in chosen and pairs[i].call.name != name]
        if not seconds_of[name]:
            continue
        for _ in range(TRIES):
            compound = join(first, pairs[rng.choice(seconds_of[name])], rng.choice(CONNECTIVES))
            key = normalize(compound.user)
            if key not in used:
                used.add(key)
                result[index] = compound
                made.append(compound)
                break
    return result, made


def _noisy(pair: Pair, rng: random.Random, used: set[str]) -> Pair | None:
    """The compound as a speech recognizer writes it, its copied values spelled as heard (as
    datagen.split's noise does); None when that utterance is already taken or lost a value."""
    user = add_noise(pair.user, _string_values(pair), rng)
    heard = [as_heard(call.arguments, pair.user, user) for call in pair.calls]
    key = normalize(user)
    if None in heard or (key != normalize(pair.user) and key in used):
        return None
    used.add(key)
    first, *later = (Call(call.name, arguments) for call, arguments in zip(pair.calls, heard, strict=True))
    return Pair(user, first, pair.group, tuple(later))


def add_compounds(splits: dict[str, list[Pair]], share: float, seed: int) -> dict[str, list[Pair]]:
    """Make `share` of each of train, val and test compound (module docstring); test_noisy gains
    the noisy copies of test's compounds. No normalized utterance is repeated in or across splits.
    The same splits, share and seed give the same result."""
    if share <= 0:
        return dict(splits)
    rng = random.Random(seed + 3)  # its own stream: --compound does not reshuffle splits, noise or variety
    used = {normalize(pair.user) for pairs in splits.values() for pair in pairs}
    result = dict(splits)
    made: dict[str, list[Pair]] = {}
    for split in COMPOUND_SPLITS:
        if split in splits:
            result[split], made[split] = _compound_split(splits[split], share, rng, used)
    if NOISY_TEST in splits:
        noisy = (_noisy(pair, rng, used) for pair in made.get("test", []))
        result[NOISY_TEST] = list(splits[NOISY_TEST]) + [pair for pair in noisy if pair]
    return result
