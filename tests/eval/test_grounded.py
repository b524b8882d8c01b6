"""Grounded values (eval/grounded.py): copied values are spans of the request, in the grammar and
when the embedded model generates under it."""

import pytest
import torch
from conftest import SMOLLM2, needs_smollm2
from grammar_cases import PACK

from eval.constrain import START, CallGrammar
from eval.constrain_processor import grammar_processors
from eval.grounded import copied_by_skill, is_span, may_start
from skilltune.local_model import Chat
from skilltune.records import system_prompt

REQUEST = "ok so what's the weather in San Francisco, thanks"


@pytest.mark.parametrize(
    "value, span",
    [
        ("San Francisco", True),
        ("weather in San Francisco", True),
        ("San Francisco,", True),  # a comma ends a word
        ("ok", True),
        ("San", True),  # a whole word, though not the whole name: grounding does not judge length
        (" San Francisco", False),  # leading space
        ("San Francisco ", False),  # trailing space
        ("san francisco", False),  # case changed
        ("an Francisco", False),  # starts inside a word
        ("San Fran", False),  # ends inside a word
        ("Berlin", False),  # never said
        ("what's the weather", True),
        ("s the weather", False),  # starts after the apostrophe inside "what's"
        ("s", False),
        ("", False),
    ],
)
def test_spans_start_and_end_on_word_boundaries(value, span):
    assert is_span(value, REQUEST) is span


def test_a_hesitation_is_next_to_a_value_never_in_it():
    request = "uh open um Visual Studio Code uh, hmm now"
    assert is_span("Visual Studio Code", request) and may_start("Visual", request)
    for value in ("um", "um Visual Studio Code", "Visual Studio Code uh", "Visual Studio Code uh,", "hmm"):
        assert not is_span(value, request), value
    # nor may decoding start a value it could not close: no span starts at a hesitation, none ends
    # after the last one ("hmm now" ends on "now", but "hmm" may not start it)
    assert not may_start("um", request) and not may_start("uh ", request) and not may_start("hmm", request)
    assert not may_start("filezilla u", "open filezilla uh") and is_span("filezilla", "open filezilla uh")
    assert may_start("um", "bring an umbrella") and is_span("umbrella", "bring an umbrella")
    assert is_span("like a prayer", "play like a prayer")  # "like" and "so" can be part of a name


def test_a_prefix_may_start_a_span_only_where_a_word_starts():
    assert may_start("San Fr", REQUEST) and may_start("w", REQUEST) and may_start("t", REQUEST)  # "the", "thanks"
    assert not may_start("an F", REQUEST) and not may_start(" San", REQUEST) and not may_start("sAN", REQUEST)


def test_the_pack_copies_locations_and_notes_but_not_math_questions():
    copied = copied_by_skill(PACK)
    assert {"location"} <= copied["weather"] and {"note"} <= copied["notes"] and "math" not in copied
    assert "action" not in copied["notes"]  # a choice is never copied


def test_the_grammar_never_opens_a_value_at_a_hesitation():
    bound = CallGrammar(PACK, "python", grounded=copied_by_skill(PACK)).for_request("uh open um filezilla")
    assert bound.complete('runapp(program="filezilla")')
    assert not bound.allows('runapp(program="um') and not bound.allows('runapp(program="uh')
    assert bound.closing(bound.advance(START, 'runapp(program="file')) == 'zilla")'


def test_the_grammar_bound_to_a_request_only_writes_its_spans():
    grammar = CallGrammar(PACK, "python", grounded=copied_by_skill(PACK))
    bound = grammar.for_request(REQUEST)
    assert bound.complete('weather(location="San Francisco")')
    assert bound.complete('weather(location="San Francisco,")')
    for wrong in (
        'weather(location="san francisco")',
        'weather(location=" San Francisco")',
        'weather(location="Berlin")',
    ):
        assert not bound.complete(wrong) and grammar.complete(wrong)  # the unbound grammar still allows it
    assert not bound.allows('weather(location="San Fran")')  # cut inside a word
    assert bound.complete('math(question="anything at all")')  # not a copied parameter
    # the shortest completion of a grounded value closes on a word boundary of the request
    state = bound.advance(START, 'weather(location="San Fr')
    assert bound.complete('weather(location="San Fr' + bound.closing(state))


@pytest.fixture(scope="module")
def smollm2():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(SMOLLM2))
    tokenizer.padding_side = "left"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a shared 2-core machine more threads only wait on each other
    yield AutoModelForCausalLM.from_pretrained(str(SMOLLM2), dtype=torch.float32).eval(), tokenizer
    torch.set_num_threads(threads)


@needs_smollm2
def test_the_untuned_model_under_grounding_copies_what_was_said(smollm2):
    """Each row of a batch is bound to its own request: the base model, which invents values, can
    only give spans of the request it was asked."""
    from transformers import LogitsProcessorList

    from skilltune.calls import parse_call

    model, tokenizer = smollm2
    requests = ["weather in Reykjavik right now", "add renew the car insurance to my notes", "what's it like in OSLO"]
    chats = [
        Chat([{"role": "system", "content": system_prompt(PACK)}, {"role": "user", "content": request}])
        for request in requests
    ]
    prompts = [
        tokenizer.apply_chat_template(chat.messages, add_generation_prompt=True, tokenize=False) for chat in chats
    ]
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    prompt_length = batch["input_ids"].shape[1]
    make = grammar_processors(PACK, "python", max_new_tokens=24, grounded=True)
    with torch.inference_mode():
        generated = model.generate(
            **batch,
            do_sample=False,
            max_new_tokens=24,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            logits_processor=LogitsProcessorList(make(tokenizer, prompt_length, chats)),
        )
    copied = copied_by_skill(PACK)
    grounded_values = 0
    for request, row in zip(requests, tokenizer.batch_decode(generated[:, prompt_length:], skip_special_tokens=True)):
        call = parse_call(row)
        for name, value in call.arguments.items():
            if name in copied.get(call.name, ()):
                assert is_span(value, request), (request, row)
                grounded_values += 1
    assert grounded_values >= 1  # the check had something to look at
