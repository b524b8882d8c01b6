"""Constrained decoding: the call grammar (unit and property tests) and the logits processor."""

import json
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from skilltune.calls import Call, call_from_json, call_to_json, parse_call
from skilltune.records import system_prompt
from skilltune.skills import Param, Skill, load_pack
from eval.constrain import START, CallGrammar, GrammarLogitsProcessor, grammar_processors, token_texts
from conftest import REPO, SMOLLM2, needs_smollm2

PACK = load_pack(REPO / "examples" / "skills")


def skill(name: str, **params: Param) -> Skill:
    return Skill(name, f"{name}(...)", "", params)


# Every parameter type, a choice value that needs escaping, a skill name that is a prefix of
# another (al / alarm) and parameter names that are prefixes of each other (vol / volume).
TYPED = [
    skill("alarm", hour=Param("integer", required=True), label=Param("string", required=False),
          repeat=Param("boolean", required=False), volume=Param("number", required=False),
          vol=Param("integer", required=False),
          mode=Param("string", required=False, enum=("loud", "soft", 'say "hi" \\ twice'))),
    skill("al", note=Param("string", required=True)),
    skill("other"),
]
PACKS = {"default": PACK, "typed": TYPED}
CASES = [(pack, style) for pack in PACKS for style in ("python", "json")]
STYLED = {(pack, style): CallGrammar(PACKS[pack], style) for pack, style in CASES}
GRAMMARS = {pack: STYLED[pack, "python"] for pack in PACKS}


def write(call: Call, style: str) -> str:
    """The training target's text in `style` (skilltune.records.answer_message)."""
    return call.to_python() if style == "python" else json.dumps(call_to_json(call), ensure_ascii=False)


def read(text: str, style: str) -> Call:
    """The oracle: the project's own parsers, which know nothing of the grammar."""
    return parse_call(text) if style == "python" else call_from_json(json.loads(text))


def fits(call: Call, skills) -> bool:
    return next(each for each in skills if each.name == call.name).check_call(call) is None


@pytest.mark.parametrize("text", [
    'weather(location="Berlin")',
    "weather()",
    "other()",
    'notes(action="add", note="buy milk")',
    'notes(note="buy milk", action="add")',  # any argument order
    'notes(action="list")',
    'weather(location="")',
    'story(description="café ☕ 東京")',
])
def test_default_pack_accepts(text):
    grammar = GRAMMARS["default"]
    assert grammar.complete(text)
    assert all(grammar.allows(text[:end]) for end in range(len(text) + 1))


@pytest.mark.parametrize("text", [
    'weather(location="Berlin") ',  # nothing after `)`
    'weather(location="Berlin")\n',
    ' weather()',  # nothing before the name
    'Weather()',
    'forecast()',
    'weather(city="Berlin")',  # not a parameter of weather
    'weather(location="a", location="b")',  # at most once
    'weather(location="a", ',  # `, ` with no parameter left is a dead end
    "weather(location='Berlin')",  # the targets' double quotes only
    'weather(location="a"b")',
    'weather(location="a\\"b")',  # no escapes inside free strings
    'weather(location="a\\")',  # ... so a backslash cannot end one either (Python reads `\"` as a quote)
    'weather(location="a\nb")',
    'weather(location="a\tb")',
    'weather(location=Berlin)',
    'notes(action="delete")',  # not a choice
    'notes(note="milk")',  # action is required
    'notes(action="add",note="milk")',  # the separator is `, `
    'notes(, action="add")',
    'other(x="y")',
])
def test_default_pack_refuses(text):
    assert not GRAMMARS["default"].complete(text)


@pytest.mark.parametrize("text, complete", [
    ("alarm(hour=7)", True),
    ("alarm(hour=-12)", True),
    ("alarm(hour=0)", True),
    ("alarm(hour=007)", False),  # Python refuses leading zeros
    ("alarm(hour=7.5)", False),
    ("alarm(hour=)", False),
    ("alarm(hour=-)", False),
    ("alarm(hour=7, volume=0.5)", True),
    ("alarm(hour=7, volume=3)", True),
    ("alarm(hour=7, volume=1e-05)", True),
    ("alarm(hour=7, volume=-2.5E+3)", True),
    ("alarm(hour=7, volume=1.)", False),
    ("alarm(hour=7, volume=.5)", False),
    ("alarm(hour=7, vol=3, volume=3)", True),
    ("alarm(hour=7, repeat=True)", True),
    ("alarm(hour=7, repeat=true)", False),
    ('alarm(hour=7, repeat="True")', False),
    ('alarm(hour=7, mode="say \\"hi\\" \\\\ twice")', True),
    ('alarm(hour=7, mode="say")', False),
    ("alarm()", False),  # hour is required
    ("alarm(repeat=False, hour=1)", True),
    ('al(note="x")', True),
    ("al()", False),
])
def test_typed_values(text, complete):
    grammar = GRAMMARS["typed"]
    assert grammar.complete(text) is complete
    if complete:  # the oracle agrees
        assert fits(parse_call(text), TYPED)


def test_prefixes():
    grammar = GRAMMARS["typed"]
    for prefix in ["", "a", "al", "al(", "alarm(", "alarm(vo", "alarm(vol", "alarm(hour=-", "alarm(hour=1, volume=1.",
                   "alarm(hour=1, volume=2e", "alarm(hour=1, volume=2e-", 'alarm(mode="say \\"']:
        assert grammar.allows(prefix), prefix
        assert not grammar.complete(prefix), prefix
    for prefix in ["b", "alarm(hour=1, hour", "alarm(hour=1 ", "alarm(hour=1,,", "al)", "alarm(hour=01"]:
        assert not grammar.allows(prefix), prefix


@pytest.mark.parametrize("text, complete", [
    ('{"function_call": {"name": "weather", "arguments": {"location": "Berlin"}}}', True),
    ('{"function_call": {"name": "other", "arguments": {}}}', True),
    ('{"function_call": {"name": "notes", "arguments": {"note": "x", "action": "add"}}}', True),
    ('{"function_call": {"name": "notes", "arguments": {"note": "x"}}}', False),  # action is required
    ('{"function_call": {"name": "notes", "arguments": {"action": "add",}}}', False),
    ('{"function_call":{"name":"other","arguments":{}}}', False),  # json.dumps spacing only
    ('{"function_call": {"name": "other", "arguments": {}}} ', False),
    ('{"function_call": {"name": "other"}}', False),
    ('{"function_call": {"name": "weather", "arguments": {"location": null}}}', False),
])
def test_json_style(text, complete):
    assert STYLED["default", "json"].complete(text) is complete


@pytest.mark.parametrize("text, complete", [
    ('{"function_call": {"name": "alarm", "arguments": {"hour": 7, "repeat": true}}}', True),
    ('{"function_call": {"name": "alarm", "arguments": {"hour": 7, "repeat": True}}}', False),
    ('{"function_call": {"name": "alarm", "arguments": {"volume": -1.5e+20, "hour": 0}}}', True),
    ('{"function_call": {"name": "alarm", "arguments": {"hour": "7"}}}', False),
    ('{"function_call": {"name": "alarm", "arguments": {"hour": 7, "mode": "say \\"hi\\" \\\\ twice"}}}', True),
])
def test_json_style_typed(text, complete):
    assert STYLED["typed", "json"].complete(text) is complete
    if complete:
        assert fits(read(text, "json"), TYPED)


def test_unknown_style():
    with pytest.raises(ValueError, match="tools"):
        CallGrammar(PACK, "tools")


# --- property tests against the independent oracle: the project's parsers + Skill.check_call ----

PRINTABLE = st.characters().filter(lambda char: char.isprintable() and char not in '"\\')


def values(param: Param):
    if param.enum:
        return st.sampled_from(param.enum)
    return {
        "string": st.text(PRINTABLE, max_size=12),
        "integer": st.integers(),
        "number": st.integers() | st.floats(allow_nan=False, allow_infinity=False),
        "boolean": st.booleans(),
    }[param.type]


@st.composite
def valid_calls(draw, skills):
    chosen = draw(st.sampled_from(skills))
    optional = [name for name, param in chosen.params.items() if not param.required]
    names = [name for name, param in chosen.params.items() if param.required]
    names += draw(st.lists(st.sampled_from(optional), unique=True)) if optional else []
    names = draw(st.permutations(names))
    return chosen, Call(chosen.name, {name: draw(values(chosen.params[name])) for name in names})


@pytest.mark.parametrize("pack, style", CASES)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_every_valid_call_is_complete_and_every_prefix_allowed(pack, style, data):
    chosen, call = data.draw(valid_calls(PACKS[pack]))
    assert chosen.check_call(call) is None
    text = write(call, style)
    grammar = STYLED[pack, style]
    state = START
    for char in text:  # the incremental path: one step per character, as the processor advances
        state = grammar.step(state, char)
        assert state is not None, text
    assert grammar.is_complete(state) and grammar.complete(text)
    # the shortest completion from anywhere along the way really completes, and is never longer
    for end in range(0, len(text), 3):
        closing = grammar.closing(grammar.advance(START, text[:end]))
        assert grammar.complete(text[:end] + closing)
        assert len(closing) <= len(text) - end


def walk_alphabet(skills, style):
    """Characters to build texts from: the grammar's own, plus some it must refuse."""
    chars = set('"(),= {}:0123456789.-+eE') | set("TrueFalstrufs") | set("xé\n\t\\'")
    chars |= set(write(Call("x", {"y": 1}), style))
    for each in skills:
        chars |= set(each.name + "".join(each.params))
        for param in each.params.values():
            chars |= set("".join(param.enum))
    return sorted(chars)


@pytest.mark.parametrize("pack, style", CASES)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_complete_text_is_a_valid_call(pack, style, data):
    """Random walks through the grammar: whatever it calls complete parses and fits its skill."""
    grammar, skills = STYLED[pack, style], PACKS[pack]
    alphabet = walk_alphabet(skills, style)
    text, state = "", START
    while not grammar.is_complete(state) and len(text) < 150:
        allowed = [char for char in alphabet if grammar.step(state, char) is not None]
        assert allowed, f"dead end after {text!r}"
        closing = grammar.closing(state)
        # lean towards finishing (one step in four follows the shortest completion), so most walks end
        char = closing[0] if data.draw(st.integers(0, 3)) == 0 else data.draw(st.sampled_from(allowed))
        text, state = text + char, grammar.step(state, char)
    event("complete" if grammar.is_complete(state) else "cut off")  # see --hypothesis-show-statistics
    if grammar.is_complete(state):
        assert fits(read(text, style), skills), text


@pytest.mark.parametrize("pack, style", CASES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_mutated_calls_are_complete_only_if_valid(pack, style, data):
    """Near misses of valid calls (one character changed, added or removed) are refused unless valid."""
    _, call = data.draw(valid_calls(PACKS[pack]))
    text = write(call, style)
    at = data.draw(st.integers(0, len(text)))
    char = data.draw(st.sampled_from(walk_alphabet(PACKS[pack], style)))
    edit = data.draw(st.sampled_from(["insert", "replace", "delete"]))
    mutated = {"insert": text[:at] + char + text[at:], "replace": text[:at] + char + text[at + 1:],
               "delete": text[:at] + text[at + 1:]}[edit]
    if STYLED[pack, style].complete(mutated):
        assert fits(read(mutated, style), PACKS[pack]), mutated


# --- the logits processor on the real tokenizer -----------------------------------------------



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
    rows = [complete_ids, finished_ids + [eos] * (width - len(finished_ids)),
            unfinished_ids + encode(filler) * (width - len(unfinished_ids))]
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
    rows = generated_rows(tokenizer, 'notes(action="add", note="pick up the kids")', "other()",
                          'story(description="a', " dragon")
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
    rows = generated_rows(tokenizer, 'notes(action="add", note="pick up the kids")', "other()",
                          'weather(location="a', " dragon")
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
    prompts = [tokenizer.apply_chat_template([{"role": "system", "content": system_prompt(PACK)},
                                              {"role": "user", "content": example.user}],
                                             add_generation_prompt=True, tokenize=False) for example in examples]
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    prompt_length = batch["input_ids"].shape[1]
    processors = grammar_processors(PACK, style, max_new_tokens=max_new_tokens)(tokenizer, prompt_length)
    with torch.inference_mode():
        generated = smollm2.generate(**batch, do_sample=False, max_new_tokens=max_new_tokens,
                                     eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                                     logits_processor=LogitsProcessorList(processors))
    eos = tokenizer.eos_token_id
    grammar = STYLED["default", style]
    ended = 0
    for row in generated[:, prompt_length:].tolist():
        ids = row[:row.index(eos)] if eos in row else row
        text = tokenizer.decode(ids)
        assert fits(read(text, style), PACK), text
        # the token that closes the call is the last one: eos follows it, or the budget ended there
        closed_at = next(end for end in range(1, len(ids) + 1) if grammar.complete(tokenizer.decode(ids[:end])))
        assert closed_at == len(ids)
        ended += eos in row
    assert ended >= 1  # some rows stopped on their own before the budget
