"""grammar.gbnf: the GBNF text that is written, read back by a GBNF reader written for the tests
(gbnf_reader.py), accepts every gold answer of real generated splits and refuses malformed calls;
on mutated answers it agrees with eval/constrain.py, the grammar it mirrors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from conftest import PACK, REPO, run_module
from gbnf_reader import GbnfSyntaxError, Lit, Matcher, read_gbnf
from typed_pack import TYPED, skill

from eval.constrain import CallGrammar
from skilltune.calls import Call, call_to_json
from skilltune.serving import gbnf
from skilltune.serving.call_grammar import MAX_PARAMETERS, GrammarError, call_grammar
from skilltune.serving.files import GRAMMAR, write_serving_files
from skilltune.skills import Param, load_pack

SKILLS = load_pack(PACK)


def write(call: Call, style: str) -> str:
    return call.to_python() if style == "python" else json.dumps(call_to_json(call), ensure_ascii=False)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[tuple[str, bool], Path]:
    """`datagen skills --n 300` in both styles, without and with compound answers."""
    made = {}
    for style in ("python", "json"):
        for compound in (False, True):
            out = tmp_path_factory.mktemp(f"{style}-{compound}") / "data"
            extra = ["--compound", "0.2"] if compound else []
            result = run_module("datagen", "skills", "--pack", PACK, "--n", 300, "--out", out, "--style", style, *extra)
            assert result.returncode == 0, result.stderr
            made[style, compound] = out
    return made


def gold_answers(folder: Path) -> list[str]:
    answers = []
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            answers.append(json.loads(line)["messages"][-1]["content"])
    return answers


@pytest.mark.parametrize("compound", [False, True])
@pytest.mark.parametrize("style", ["python", "json"])
def test_the_written_grammar_accepts_every_gold_answer(datasets, tmp_path, style, compound):
    folder = datasets[style, compound]
    config = tmp_path / "smollm2.yml"
    config.write_text((REPO / "configs" / "smollm2.yml").read_text().replace("data/skills/", f"{folder}/"))
    write_serving_files(PACK, config, tmp_path / "export", "model.gguf", style, compound=compound, root=REPO)
    matcher = Matcher((tmp_path / "export" / GRAMMAR).read_text(encoding="utf-8"))
    answers = gold_answers(folder)
    assert len(answers) > 500 and any(answer.startswith("[") for answer in answers) == compound
    refused = [answer for answer in answers if not matcher.matches(answer)]
    assert refused == []


@pytest.mark.parametrize("style", ["python", "json"])
def test_lists_of_calls_only_where_the_records_have_them(datasets, style):
    lists = [answer for answer in gold_answers(datasets[style, True]) if answer.startswith("[")]
    single = Matcher(call_grammar(SKILLS, style))
    assert lists and not any(single.matches(answer) for answer in lists)
    listed = Matcher(call_grammar(SKILLS, style, compound=True))
    weather, other = write(Call("weather", {"location": "Oslo"}), style), write(Call("other"), style)
    assert listed.matches(f"[{weather}, {weather}, {weather}]")
    for bad in (f"[{weather}]", "[]", f"[{weather}, {other}]", f"[{weather},{weather}]", f"[{weather}, {weather}"):
        assert not listed.matches(bad), bad


def malformed(style: str) -> dict[str, str]:
    """Answers the grammar must refuse, by what is wrong with them."""
    ok = write(Call("weather", {"location": "Berlin"}), style)
    texts = {
        "unknown skill": write(Call("weathr", {"location": "Berlin"}), style),
        "unknown parameter": write(Call("weather", {"place": "Berlin"}), style),
        "missing required": write(Call("notes", {"note": "milk"}), style),
        "choice not listed": write(Call("notes", {"action": "delete"}), style),
        "other with an argument": write(Call("other", {"location": "Berlin"}), style),
        "text after the call": ok + " ok",
        "a newline after the call": ok + "\n",
        "two calls, no list": ok + ok,
        "text before the call": "Sure: " + ok,
        "a space before the call": " " + ok,
        "unterminated string": ok.replace('Berlin"', "Berlin"),
        "unclosed call": ok[:-1],
        "escaped quote": ok.replace("Berlin", 'Ber\\"lin'),
        "newline in a string": ok.replace("Berlin", "Ber\nlin"),
        "tab in a string": ok.replace("Berlin", "Ber\tlin"),
        "no-break space in a string": ok.replace("Berlin", "Ber\u00a0lin"),
        "empty": "",
    }
    if style == "python":
        texts |= {
            "repeated parameter": 'notes(action="add", action="add")',
            "single quotes": "weather(location='Berlin')",
            "no space after the comma": 'notes(action="add",note="milk")',
            "space around =": 'weather(location = "Berlin")',
            "positional": 'weather("Berlin")',
        }
    else:
        texts |= {
            "repeated parameter": '{"function_call": {"name": "notes", "arguments": '
            '{"action": "add", "action": "add"}}}',
            "compact JSON": json.dumps(call_to_json(Call("weather", {"location": "Berlin"})), separators=(",", ":")),
            "arguments as a string": '{"function_call": {"name": "weather", "arguments": "{}"}}',
        }
    return texts


@pytest.mark.parametrize("style", ["python", "json"])
def test_malformed_calls_are_refused(style):
    matcher = Matcher(call_grammar(SKILLS, style))
    assert matcher.matches(write(Call("notes", {"note": "milk", "action": "add"}), style))  # any order
    accepted = {what: text for what, text in malformed(style).items() if matcher.matches(text)}
    assert accepted == {}


@pytest.mark.parametrize("style", ["python", "json"])
def test_typed_values(style):
    matcher = Matcher(call_grammar(TYPED, style))
    good = [
        Call("alarm", {"hour": 7}),
        Call("alarm", {"hour": -12, "volume": 0.5, "vol": 3}),
        Call("alarm", {"volume": 1e-05, "hour": 0, "repeat": True}),
        Call("alarm", {"mode": 'say "hi" \\ twice', "label": "wake up ☀️ 𝄞", "hour": 6, "repeat": False}),
        Call("alarm", {"hour": 6, "volume": 3}),
        Call("al", {"note": ""}),
        Call("other"),
    ]
    for call in good:
        assert matcher.matches(write(call, style)), call
    base = write(Call("alarm", {"hour": 7}), style)
    seven = "7)" if style == "python" else "7}}}"
    bad = {
        "a string for an integer": base.replace(seven, '"7"' + seven[1:]),
        "a decimal for an integer": base.replace(seven, "7.5" + seven[1:]),
        "a leading zero": base.replace(seven, "07" + seven[1:]),
        "a plus sign": base.replace(seven, "+7" + seven[1:]),
        "the other style's boolean": (
            "alarm(hour=7, repeat=true)"
            if style == "python"
            else '{"function_call": {"name": "alarm", "arguments": {"hour": 7, "repeat": True}}}'
        ),
        "a number ending in a dot": write(Call("alarm", {"hour": 7, "volume": 1.0}), style).replace("1.0", "1."),
        "an unquoted choice": write(Call("alarm", {"hour": 7, "mode": "loud"}), style).replace('"loud"', "loud"),
        "a prefix of a choice": write(Call("alarm", {"hour": 7, "mode": "lou"}), style),
        "a prefix of a name": write(Call("ala", {"hour": 7}), style),
        "a prefix of a parameter": write(Call("alarm", {"hour": 7, "volu": 1}), style),
    }
    assert {what: text for what, text in bad.items() if matcher.matches(text)} == {}


def mutations(text: str, rng: random.Random) -> list[str]:
    alphabet = list('"(),=: {}[]0123456789.-eE\\abcdefghijklmnopqrstuvwxyzTF\n')
    out = [text[:cut] for cut in range(0, len(text), max(1, len(text) // 6))]
    for _ in range(12):
        at = rng.randrange(len(text) + 1)
        out.append(text[:at] + rng.choice(alphabet) + text[at:])
        if at < len(text):
            out.append(text[:at] + text[at + 1 :])
            out.append(text[:at] + rng.choice(alphabet) + text[at + 1 :])
    return out


@pytest.mark.parametrize("style", ["python", "json"])
def test_agrees_with_the_constrained_decoding_grammar(datasets, style):
    """eval/constrain.py is the reference language: on gold answers and thousands of near misses,
    the GBNF file says what CallGrammar.complete says."""
    rng = random.Random(0)
    for skills, answers in (
        (SKILLS, gold_answers(datasets[style, False])[:60]),
        (
            TYPED,
            [
                write(Call("alarm", {"mode": "soft", "hour": 10, "volume": 2.5e-3, "repeat": True}), style),
                write(Call("alarm", {"vol": -3, "hour": 0, "label": "gym"}), style),
                write(Call("al", {"note": "x"}), style),
            ],
        ),
    ):
        matcher, reference = Matcher(call_grammar(skills, style)), CallGrammar(skills, style)
        texts = [mutated for answer in answers for mutated in [answer, *mutations(answer, rng)]]
        differ = [text for text in texts if matcher.matches(text) != reference.complete(text)]
        accepted = sum(reference.complete(text) for text in texts)
        assert len(texts) > 100 and 0 < accepted < len(texts) and differ == []


def test_a_skill_with_too_many_parameters_is_refused():
    params = {f"p{index}": Param("string", required=False) for index in range(MAX_PARAMETERS + 1)}
    with pytest.raises(GrammarError, match=f"has {MAX_PARAMETERS + 1} parameters.*at most {MAX_PARAMETERS}"):
        call_grammar([skill("wide", **params)], "python")
    assert "wide" in call_grammar([skill("wide", **dict(list(params.items())[:MAX_PARAMETERS]))], "python")


def test_tools_style_is_refused():
    with pytest.raises(GrammarError, match="python, json, not 'tools'"):
        call_grammar(SKILLS, "tools")


def test_literals_and_classes_read_back():
    """gbnf.literal/char_class escape what llama.cpp would misread; the reader gets the text back."""
    tricky = 'a "quoted" \\ back\nslash\t[x] -^ ☀️ 𝄞 \x00\x7f'
    rules = read_gbnf(
        f"root ::= {gbnf.literal(tricky)} {gbnf.char_class([(0x2D, 0x2D), (0x5D, 0x5E)], negated=True)}\n"
    )
    assert rules["root"].sequences[0][0] == Lit(tricky)
    matcher = Matcher(f"root ::= {gbnf.char_class([(0x2D, 0x2D), (0x5D, 0x5E)])}+\n")
    assert matcher.matches("-]^") and not matcher.matches("a")
    with pytest.raises(GbnfSyntaxError, match="Undefined rule"):
        read_gbnf("root ::= missing\n")
