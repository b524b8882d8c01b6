"""The packs and grammars the constrained-decoding tests share (test_constrain*.py), and the
round trip from a call to the text of its answer style and back."""

import json

from conftest import REPO
from typed_pack import TYPED

from eval.constrain import CallGrammar
from skilltune.calls import Call, call_from_json, call_to_json, parse_call
from skilltune.skills import Param, Skill, load_pack

PACK = load_pack(REPO / "examples" / "skills")
# lists of each scalar, as BFCL's functions take them (eval/bfcl_grammar.py); packs have none
LISTS = [
    Skill(
        "mean",
        "mean(...)",
        "",
        {
            "values": Param("array", required=True, items="number"),
            "counts": Param("array", required=False, items="integer"),
            "names": Param("array", required=False, items="string"),
            "flags": Param("array", required=False, items="boolean"),
        },
    ),
    Skill("other", "other()", "", {}),
]


PACKS = {"default": PACK, "typed": TYPED, "lists": LISTS}
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
