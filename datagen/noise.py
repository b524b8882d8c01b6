"""Speech-transcript noise: make a typed request look like what a speech recognizer writes.

Each transform is one small, plausible ASR habit:
    lowercase            "What's the weather in Berlin?" -> "what's the weather in berlin?"
    drop punctuation     "what's the weather in berlin?" -> "whats the weather in berlin"
    filler               "set a timer" -> "um set a timer"
    numbers              "set a timer for 5 minutes" <-> "set a timer for five minutes" (outside slot values)
    contractions         "what is" <-> "what's", "do not" <-> "don't"
    word drop            "what is the weather" -> "what is weather" (only small function words)
Words inside the call's argument values are protected from the word-level transforms, so the gold
call still matches what was said; lowercase and punctuation apply everywhere, as a recognizer
would, and a copied value follows the transcript (`as_heard`: "weather in berlin" gives
`location="berlin"`): the model learns one rule, copy the value as written, instead of guessing
the casing of names it never saw.
"""

from __future__ import annotations

import random
import re

from skilltune.pairs import find_spoken

FILLERS = ("um", "uh", "like", "so", "okay", "hmm", "you know")
DROPPABLE = frozenset({"the", "a", "an", "please", "can", "you", "me", "to", "for", "is", "my"})
CONTRACTIONS = {
    "what is": "what's",
    "it is": "it's",
    "i am": "i'm",
    "do not": "don't",
    "does not": "doesn't",
    "can not": "can't",
    "cannot": "can't",
    "i would": "i'd",
    "that is": "that's",
    "there is": "there's",
    "let us": "let's",
    "i will": "i'll",
    "you are": "you're",
    "how is": "how's",
    "where is": "where's",
}
EXPANSIONS = {short: long for long, short in CONTRACTIONS.items() if long != "cannot"}
NUMBER_WORDS = {
    "0": "zero",
    "1": "one",
    "2": "two",
    "3": "three",
    "4": "four",
    "5": "five",
    "6": "six",
    "7": "seven",
    "8": "eight",
    "9": "nine",
    "10": "ten",
    "11": "eleven",
    "12": "twelve",
    "15": "fifteen",
    "20": "twenty",
    "30": "thirty",
    "40": "forty",
    "45": "forty five",
    "50": "fifty",
    "60": "sixty",
    "90": "ninety",
}
WORD_NUMBERS = {word: digits for digits, word in NUMBER_WORDS.items() if " " not in word}


def _protected_spans(text: str, protected: list[str]) -> list[tuple[int, int]]:
    spans = []
    for value in protected:
        if value:
            spans += [match.span() for match in re.finditer(re.escape(value), text, flags=re.IGNORECASE)]
    return spans


def _word_matches(pattern: str, text: str, protected: list[str], boundary: str = r"\w"):
    """Matches of `pattern` (whole words, any case) that do not touch a protected value.

    `boundary` is the class of characters that may not touch the match on either side.
    """
    spans = _protected_spans(text, protected)
    for match in re.finditer(rf"(?<![{boundary}])(?:{pattern})(?![{boundary}])", text, flags=re.IGNORECASE):
        if not any(start < match.end() and match.start() < end for start, end in spans):
            yield match


def _replace(text: str, match: re.Match, new: str) -> str:
    return text[: match.start()] + new + text[match.end() :]


def lowercase(text: str, protected: list[str], rng: random.Random) -> str:
    return text.lower()


def drop_punctuation(text: str, protected: list[str], rng: random.Random) -> str:
    return " ".join(re.sub(r"[^\w\s*/+\-().]|(?<=\w)[.](?=\s|$)", "", text).split())


def add_filler(text: str, protected: list[str], rng: random.Random) -> str:
    words = text.split(" ")
    position = rng.choice([0, 0, 1]) if len(words) > 1 else 0
    return " ".join(words[:position] + [rng.choice(FILLERS)] + words[position:])


def swap_numbers(text: str, protected: list[str], rng: random.Random) -> str:
    table = {**NUMBER_WORDS, **WORD_NUMBERS}
    pattern = "|".join(sorted(map(re.escape, table), key=len, reverse=True))
    # digits glued to an operator or decimal point belong to an expression ("12*7", "2.5"): leave them
    matches = list(_word_matches(pattern, text, protected, boundary=r"\w*/+\-.^"))
    if not matches:
        return text
    match = rng.choice(matches)
    return _replace(text, match, table[match.group(0).lower()])


def swap_contraction(text: str, protected: list[str], rng: random.Random) -> str:
    table = {**CONTRACTIONS, **EXPANSIONS}
    matches = list(_word_matches("|".join(sorted(map(re.escape, table), key=len, reverse=True)), text, protected))
    if not matches:
        return text
    match = rng.choice(matches)
    return _replace(text, match, table[match.group(0).lower()])


def drop_word(text: str, protected: list[str], rng: random.Random) -> str:
    matches = [match for match in _word_matches(r"\w+", text, protected) if match.group(0).lower() in DROPPABLE]
    if not matches or len(text.split()) < 4:
        return text
    match = rng.choice(matches)
    return " ".join(_replace(text, match, "").split())


TRANSFORMS = {
    "lowercase": lowercase,
    "drop_punctuation": drop_punctuation,
    "filler": add_filler,
    "numbers": swap_numbers,
    "contractions": swap_contraction,
    "word_drop": drop_word,
}
# how likely each transform is once a record is picked for noise; lowercase and punctuation are
# what nearly every recognizer does, the rest are occasional
DEFAULT_RATES = {
    "lowercase": 0.9,
    "drop_punctuation": 0.9,
    "filler": 0.3,
    "numbers": 0.5,
    "contractions": 0.4,
    "word_drop": 0.2,
}


def as_heard(arguments: dict, said: str, heard: str) -> dict | None:
    """The arguments with each value copied from `said` spelled as `heard` writes it: its case, its
    punctuation dropped where the transcript dropped it ("Taylor Swift's tour" -> "taylor swifts
    tour"). None when such a value is lost from `heard`: that gold call would ask for words nobody said."""
    result = dict(arguments)
    for name, value in arguments.items():
        copied = isinstance(value, str) and value and find_spoken(value, said, any_case=False)
        if not copied or find_spoken(value, heard, any_case=False):
            continue
        forms = (find_spoken(form, heard) for form in (value, drop_punctuation(value, [], None)))
        match = next((match for match in forms if match), None)
        if match is None:
            return None
        result[name] = match.group(0)
    return result


# transforms a recognizer applies to every character, the values' too: later transforms protect the
# values as they now read
EVERYWHERE = ("lowercase", "drop_punctuation")


def add_noise(text: str, protected: list[str], rng: random.Random, rates: dict[str, float] | None = None) -> str:
    """Apply each transform with its rate, in a fixed order; `protected` are the call's values."""
    rates = DEFAULT_RATES if rates is None else rates
    for name, transform in TRANSFORMS.items():
        if rng.random() < rates.get(name, 0.0):
            text = transform(text, protected, rng)
            if name in EVERYWHERE:
                protected = [transform(value, [], rng) for value in protected]
    return text
