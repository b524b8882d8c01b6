"""The skill pack's call language as a GBNF grammar, for llama.cpp's `--grammar-file`.

The language is the one eval/constrain.py decodes with (its docstring is the reference): the answer
is one call in the data's answer style and nothing else, before or after it:

    python  name(arg=value, arg=value)
    json    {"function_call": {"name": "name", "arguments": {"arg": value, "arg": value}}}

    name: a skill of the pack, `other` included; each arg: a parameter of that skill, at most once,
    in any order; the call closes only once every required parameter is given. Values:
        choice   one of the listed values, quoted as the style writes it (skilltune.calls.value_text)
        string   "..." without `"`, `\\` or unprintable characters
        integer  -?(0|[1-9][0-9]*)
        number   an integer or decimal, optionally with an exponent (1e-05)
        boolean  True | False   (json: true | false)

With `compound` (records from `datagen skills --compound`) the answer may also be a list of two or
more calls, none of them other(): `[timer(...), notes(...)]`, or a JSON list of the objects.

Any order, each parameter once: the grammar has one rule per skill and set of parameters given so
far (2^n rules for n parameters), exactly the states eval/constrain.py steps through. Skills have
a handful of parameters; a skill with more than MAX_PARAMETERS is refused rather than written as a
grammar too big to load. A fixed order would be smaller, but the records keep the order the pack's
examples write, so a fixed order would refuse gold answers.

Where GBNF and Python differ: "unprintable" is Python's str.isprintable() for every assigned code
point (the control, format, separator, surrogate and private-use ranges listed in STRING_CHAR); code
points unassigned in Python's Unicode tables are let through, as GBNF has no general categories.
"""

from __future__ import annotations

import unicodedata
from functools import cache

from skilltune.call_text import STYLES, Style
from skilltune.calls import NO_CALL_NAME
from skilltune.serving import gbnf
from skilltune.serving.gbnf import Rule, group, literal
from skilltune.skills import Skill

MAX_PARAMETERS = 10  # 1024 rules for that skill: llama.cpp loads it in milliseconds


class GrammarError(ValueError):
    """The pack or style cannot be written as a grammar; str() is one line saying why."""


# Both styles write a list of calls the same way: calls_to_python joins with ", ", and json.dumps
# of a list of the objects does too.
LIST_OPEN, LIST_SEPARATOR, LIST_CLOSE = "[", ", ", "]"

NUMBER_RULES = {
    "integer": ('"-"? ("0" | [1-9] [0-9]*)',),
    "number": ('integer ("." [0-9]+)? ([eE] [+-]? [0-9]+)?',),
}
TYPE_RULES = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}


@cache
def _unprintable_ranges() -> tuple[tuple[int, int], ...]:
    """The assigned code points Python's str.isprintable() refuses, as inclusive ranges."""
    unassigned = "Cn"
    ranges: list[list[int]] = []
    for code in range(0x110000):
        char = chr(code)
        if char.isprintable() or unicodedata.category(char) == unassigned:
            continue
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return tuple((low, high) for low, high in ranges)


def string_char() -> str:
    """The class of characters a free string may hold: not `"`, not `\\`, nothing unprintable."""
    excluded = sorted([(ord('"'), ord('"')), (ord("\\"), ord("\\")), *_unprintable_ranges()])
    return gbnf.char_class(excluded, negated=True)


def _slug(name: str) -> str:
    """A rule-name piece for a readable grammar; the skill's index keeps names unique."""
    ascii_part = "".join(char if char.isascii() and char.isalnum() else "-" for char in name)
    return "-".join(part for part in ascii_part.split("-") if part) or "x"


def _value(skill: Skill, name: str, style: Style) -> str:
    param = skill.params[name]
    if param.enum:
        return group([literal(style.quote(value)) for value in param.enum])
    if param.type not in TYPE_RULES:
        raise GrammarError(f"skill {skill.name}: parameter {name} has type {param.type!r}, which no rule writes")
    return TYPE_RULES[param.type]


def _skill_rules(index: int, skill: Skill, style: Style) -> list[Rule]:
    """The call of one skill: its name, then one rule per set of parameters given so far (a bit mask
    over the signature's parameters), offering each parameter not yet given and, once every required
    one is there, the end of the call."""
    names = list(skill.params)
    if len(names) > MAX_PARAMETERS:
        raise GrammarError(
            f"skill {skill.name} has {len(names)} parameters; the grammar writes one rule per set of given "
            f"parameters (2^{len(names)}), so it takes at most {MAX_PARAMETERS}"
        )
    base = f"skill{index}-{_slug(skill.name)}"
    required = {bit for bit, name in enumerate(names) if skill.params[name].required}
    rules = [
        Rule(
            base,
            (f"{literal(style.before_name + skill.name + style.after_name)} {base}-0",),
            f"{skill.name}: {skill.signature}",
        )
    ]
    for mask in range(1 << len(names)):
        given = {bit for bit in range(len(names)) if mask >> bit & 1}
        alternatives = []
        for bit, name in enumerate(names):
            if bit in given:
                continue
            separator = style.separator if given else ""  # the first argument follows the name directly
            key = literal(separator + style.before_key + name + style.after_key)
            alternatives.append(f"{key} {_value(skill, name, style)} {base}-{mask | 1 << bit}")
        if required <= given:
            alternatives.append(literal(style.end))
        shown = ", ".join(names[bit] for bit in sorted(given)) or "nothing"
        rules.append(Rule(f"{base}-{mask}", tuple(alternatives), f"{skill.name} with {shown} given"))
    return rules


def call_rules(skills: list[Skill], style: str = "python", compound: bool = False) -> list[Rule]:
    """The grammar's rules: `root` first, then each skill's, then the value rules they use."""
    if style not in STYLES:
        raise GrammarError(f"the grammar supports the answer styles {', '.join(STYLES)}, not {style!r}")
    if not skills:
        raise GrammarError("the skill pack has no skills")
    punctuation = STYLES[style]
    per_skill = [_skill_rules(index, skill, punctuation) for index, skill in enumerate(skills)]
    calls = tuple(rules[0].name for rules in per_skill)
    listed = tuple(rules[0].name for rules, skill in zip(per_skill, skills) if skill.name != NO_CALL_NAME)
    root = ["call"]
    extra = []
    if compound and listed:
        # two or more calls, never other() among them (skilltune.calls.several_calls_checked)
        root.append(f"{literal(LIST_OPEN)} listed ({literal(LIST_SEPARATOR)} listed)+ {literal(LIST_CLOSE)}")
        extra.append(Rule("listed", listed, "a call of a list: any skill but other"))
    rules = [
        Rule("root", tuple(root), f"one call in the {style} answer style" + (", or a list of calls" if extra else "")),
        Rule("call", calls, "a call of any skill of the pack"),
        *extra,
    ]
    for skill_rules in per_skill:
        rules.extend(skill_rules)
    used = {TYPE_RULES[param.type] for skill in skills for param in skill.params.values() if not param.enum}
    if "string" in used:
        rules.append(Rule("string", ('"\\"" string-char* "\\""',), 'a free string: no escapes, so no `"` or `\\`'))
        rules.append(Rule("string-char", (string_char(),), "printable, and neither the quote nor the backslash"))
    if "boolean" in used:
        rules.append(Rule("boolean", (literal(punctuation.true), literal(punctuation.false))))
    if "number" in used or "integer" in used:  # a number is read as an integer and its fraction
        rules.append(Rule("integer", NUMBER_RULES["integer"], "no leading zeros: Python and JSON refuse 007"))
    if "number" in used:
        rules.append(Rule("number", NUMBER_RULES["number"], "both styles write 1e-05 so"))
    return rules


def call_grammar(skills: list[Skill], style: str = "python", compound: bool = False) -> str:
    """The GBNF text of the call language of `skills` in `style` (module docstring)."""
    return gbnf.render(call_rules(skills, style, compound))
