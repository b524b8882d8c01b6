"""A pack with every parameter type, shared by the tests of both call grammars (eval/constrain.py
and skilltune/serving/call_grammar.py): a choice value that needs escaping, a skill name that is
a prefix of another (al / alarm) and parameter names that are prefixes of each other (vol / volume)."""

from skilltune.skills import Param, Skill


def skill(name: str, **params: Param) -> Skill:
    return Skill(name, f"{name}(...)", "", params)


TYPED = [
    skill(
        "alarm",
        hour=Param("integer", required=True),
        label=Param("string", required=False),
        repeat=Param("boolean", required=False),
        volume=Param("number", required=False),
        vol=Param("integer", required=False),
        mode=Param("string", required=False, enum=("loud", "soft", 'say "hi" \\ twice')),
    ),
    skill("al", note=Param("string", required=True)),
    skill("other"),
]
