"""Constrained decoding's logits processor on the embedded model's real tokenizer and model."""

import pytest
import torch
from conftest import SMOLLM2, needs_smollm2
from grammar_cases import GRAMMARS, PACK, STYLED, fits, read

from eval.constrain_processor import GrammarLogitsProcessor, grammar_processors, token_texts
from skilltune.records import system_prompt


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(SMOLLM2))
    tokenizer.padding_side = "left"
    return tokenizer


@needs_smollm2
def test_token_texts(tokenizer):
    texts = token_texts(tokenizer)
    assert token_texts(tokenizer) is texts  # cached per tokenizer
    assert len(texts) == len(tokenizer)
    assert texts[tokenizer.eos_token_id] is None and texts[tokenizer.bos_token_id] is None
    (space_milk,) = tokenizer.encode(" milk", add_special_tokens=False)
    assert texts[space_milk] == " milk"  # the leading space counts
    byte_pieces = tokenizer.encode("東", add_special_tokens=False)
    assert len(byte_pieces) > 1 and all(texts[piece] is None for piece in byte_pieces)  # not text on their own
    ids = tokenizer.encode('notes(action="add", note="buy milk")', add_special_tokens=False)
    assert "".join(texts[token] for token in ids) == tokenizer.decode(ids)


def scores_for(tokenizer, preferred: list[str], rows: int = 1):
    """Scores where the given texts' tokens rank in that order above everything else."""
    scores = torch.randn(rows, len(tokenizer), generator=torch.Generator().manual_seed(0))
    for rank, text in enumerate(preferred):
        (token,) = tokenizer.encode(text, add_special_tokens=False)
        scores[:, token] = 100.0 - rank
    return scores


def generated_rows(tokenizer, complete: str, finished: str, unfinished: str, filler: str) -> list[list[int]]:
    """Three generated parts of one length, as generate has them: `complete` (closed on its last
    token), `finished` (closed earlier, then eos and padding) and `unfinished` extended with `filler`."""
    encode = lambda text: tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
    complete_ids, finished_ids, unfinished_ids = encode(complete), encode(finished), encode(unfinished)
    width = len(complete_ids)
    assert len(finished_ids) < width and len(unfinished_ids) <= width
    eos = tokenizer.eos_token_id
    rows = [
        complete_ids,
        finished_ids + [eos] * (width - len(finished_ids)),
        unfinished_ids + encode(filler) * (width - len(unfinished_ids)),
    ]
    assert len({len(row) for row in rows}) == 1, "the filler must be one token"
    return rows


def apply(processor, tokenizer, rows: list[list[int]], scores, prompt_length: int = 3):
    """Run `processor` on a batch whose prompts are `prompt_length` pad tokens and generated parts `rows`."""
    input_ids = torch.tensor([[tokenizer.pad_token_id] * prompt_length + row for row in rows])
    return processor(input_ids, scores.clone())


def kept(out) -> list[list[int]]:
    return [torch.nonzero(row > float("-inf")).flatten().tolist() for row in out]


@needs_smollm2
def test_processor_keeps_the_best_allowed_token(tokenizer):
    grammar = GRAMMARS["default"]
    texts = token_texts(tokenizer)
    scores = scores_for(tokenizer, ["Sure", " weather", "The", "weather", "news"])
    out = apply(GrammarLogitsProcessor(tokenizer, grammar, prompt_length=3), tokenizer, [[]], scores)
    (best,) = kept(out)[0]
    assert texts[best] == "weather"  # "Sure", " weather" and "The" cannot start a call
    # greedy equivalence: the one token kept is the argmax of the fully masked scores
    masked = apply(GrammarLogitsProcessor(tokenizer, grammar, prompt_length=3, keep=None), tokenizer, [[]], scores)
    assert masked[0].argmax().item() == best
    allowed = kept(masked)[0]
    assert all(grammar.allows(texts[token]) for token in allowed)
    assert tokenizer.encode("notes", add_special_tokens=False)[0] in allowed and len(allowed) < 200


@needs_smollm2
def test_processor_rows_eos_and_finished(tokenizer):
    grammar = GRAMMARS["default"]
    texts = token_texts(tokenizer)
    eos = tokenizer.eos_token_id
    rows = generated_rows(
        tokenizer, 'notes(action="add", note="pick up the kids")', "other()", 'story(description="a', " dragon"
    )
    scores = scores_for(tokenizer, ["<|im_end|>", '")', "\n", " and", ")"], rows=3)
    out = apply(GrammarLogitsProcessor(tokenizer, grammar, prompt_length=3, keep=2), tokenizer, rows, scores)
    complete, finished, unfinished = kept(out)
    assert complete == [eos]  # after `)` only the end
    assert (out[1] == scores[1]).all()  # a finished row is left alone
    unfinished_text = "".join(texts[token] for token in rows[2])
    assert len(unfinished) == 2 and eos not in unfinished
    assert {texts[token] for token in unfinished} == {'")', " and"}
    assert all(grammar.allows(unfinished_text + texts[token]) for token in unfinished)


@needs_smollm2
def test_processor_closes_the_call_within_the_token_budget(tokenizer):
    grammar = GRAMMARS["default"]
    texts = token_texts(tokenizer)
    rows = generated_rows(
        tokenizer, 'notes(action="add", note="pick up the kids")', "other()", 'weather(location="a', " dragon"
    )
    scores = scores_for(tokenizer, [" and", ")", '")', '"'], rows=3)
    width = len(rows[0])
    # two tokens left and the shortest completion `")` has two characters: close now
    tight = GrammarLogitsProcessor(tokenizer, grammar, prompt_length=3, max_new_tokens=width + 2)
    (forced,) = kept(apply(tight, tokenizer, rows, scores))[2]
    assert texts[forced] == '")'  # the best-scored token that writes a start of `")`
    roomy = GrammarLogitsProcessor(tokenizer, grammar, prompt_length=3, max_new_tokens=width + 40)
    (free,) = kept(apply(roomy, tokenizer, rows, scores))[2]
    assert texts[free] == " and"


@pytest.fixture(scope="module")
def smollm2(tokenizer):
    from transformers import AutoModelForCausalLM

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a shared 2-core machine more threads only wait on each other
    yield AutoModelForCausalLM.from_pretrained(str(SMOLLM2), dtype=torch.float32).eval()
    torch.set_num_threads(threads)


@needs_smollm2
@pytest.mark.parametrize("style, records, max_new_tokens", [("python", 6, 20), ("json", 3, 40)])
def test_constrained_generation_gives_valid_calls_then_eos(smollm2, tokenizer, style, records, max_new_tokens):
    """The untuned base model, which answers these in prose (runs/smollm2/report.md), writes valid calls."""
    from transformers import LogitsProcessorList

    examples = [each.examples[0] for each in PACK[:records]]
    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "system", "content": system_prompt(PACK)}, {"role": "user", "content": example.user}],
            add_generation_prompt=True,
            tokenize=False,
        )
        for example in examples
    ]
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    prompt_length = batch["input_ids"].shape[1]
    processors = grammar_processors(PACK, style, max_new_tokens=max_new_tokens)(tokenizer, prompt_length)
    with torch.inference_mode():
        generated = smollm2.generate(
            **batch,
            do_sample=False,
            max_new_tokens=max_new_tokens,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            logits_processor=LogitsProcessorList(processors),
        )
    eos = tokenizer.eos_token_id
    grammar = STYLED["default", style]
    ended = 0
    for row in generated[:, prompt_length:].tolist():
        ids = row[: row.index(eos)] if eos in row else row
        text = tokenizer.decode(ids)
        assert fits(read(text, style), PACK), text
        # the token that closes the call is the last one: eos follows it, or the budget ended there
        closed_at = next(end for end in range(1, len(ids) + 1) if grammar.complete(tokenizer.decode(ids[:end])))
        assert closed_at == len(ids)
        ended += eos in row
    assert ended >= 1  # some rows stopped on their own before the budget
