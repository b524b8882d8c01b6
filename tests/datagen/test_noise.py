import random

import pytest

from datagen.noise import (
    DEFAULT_RATES,
    add_filler,
    add_noise,
    as_heard,
    drop_punctuation,
    drop_word,
    lowercase,
    swap_contraction,
    swap_numbers,
)

RNG = random.Random(0)


def test_lowercase_and_punctuation_apply_everywhere():
    text = "What's the weather in St. Louis, please?"
    assert lowercase(text, ["St. Louis"], RNG) == "what's the weather in st. louis, please?"
    assert drop_punctuation(text, [], RNG) == "Whats the weather in St Louis please"


def test_punctuation_drop_keeps_arithmetic():
    assert drop_punctuation("what is (3+4)*5?", [], RNG) == "what is (3+4)*5"


def test_numbers_swap_both_ways_but_not_inside_values_or_expressions():
    assert swap_numbers("wake me in 5 hours", [], random.Random(1)) == "wake me in five hours"
    assert swap_numbers("wake me in five hours", [], random.Random(1)) == "wake me in 5 hours"
    assert swap_numbers("set a timer for 5 minutes", ["5 minutes"], RNG) == "set a timer for 5 minutes"
    assert swap_numbers("what is 12*7", [], RNG) == "what is 12*7"
    assert swap_numbers("what is 2.5 plus one", [], random.Random(0)) == "what is 2.5 plus 1"


def test_contractions_swap_both_ways():
    assert swap_contraction("what is the time", [], RNG) == "what's the time"
    assert swap_contraction("I don't know", [], RNG) == "I do not know"


def test_word_drop_takes_only_small_words_outside_values():
    text = "add buy the milk to my notes"
    for seed in range(20):
        dropped = drop_word(text, ["buy the milk"], random.Random(seed))
        assert "buy the milk" in dropped
        assert len(dropped.split()) == len(text.split()) - 1


def test_filler_is_inserted_near_the_start():
    words = add_filler("open the calculator", [], random.Random(3)).split()
    assert len(words) in (4, 5)  # "you know" is two words
    assert words[-2:] == ["the", "calculator"]


@pytest.mark.parametrize("seed", range(30))
def test_noise_never_touches_the_words_of_a_value(seed):
    text = "Could you please set a timer for 1 hour 10 minutes? Thanks"
    noisy = add_noise(text, ["1 hour 10 minutes"], random.Random(seed))
    assert "1 hour 10 minutes" in noisy


def test_a_copied_value_follows_the_transcript_case():
    said, heard = "weather in New York please", "weather in new york please"
    arguments = {"location": "New York", "units": "metric"}
    assert as_heard(arguments, said, heard) == {"location": "new york", "units": "metric"}
    # a value the utterance did not hold verbatim (math's rewritten question) is left alone
    assert as_heard({"question": "11*6"}, "eleven times six", "eleven times six") == {"question": "11*6"}


def test_a_copied_value_follows_the_transcript_punctuation_or_the_record_is_not_noised():
    said = "is anything happening with Taylor Swift's tour"
    heard = "is anything happening with taylor swifts tour"
    assert as_heard({"topic": "Taylor Swift's tour"}, said, heard) == {"topic": "taylor swifts tour"}
    # a filler inside the value: the words of the gold call are no longer said together
    assert as_heard({"location": "New York"}, "New York weather", "New um York weather") is None


@pytest.mark.parametrize("seed", range(30))
def test_values_stay_protected_after_the_transcript_drops_their_punctuation(seed):
    value = "brainstorm 5 slogans for a bike shop called Spoke & Chain"
    noisy = add_noise(f"openai, {value}", [value], random.Random(seed), {**DEFAULT_RATES, "numbers": 1.0})
    assert "5 slogans" in noisy and as_heard({"prompt": value}, f"openai, {value}", noisy) is not None
