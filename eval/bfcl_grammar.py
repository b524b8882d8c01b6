"""Constrained decoding for BFCL: each case's own functions as the call grammar of eval/constrain.py.

A small model shown BFCL's functions often answers in prose or half a call. `eval bfcl --decoding
constrained` keeps every answer inside the language of the case: one Python-style call to one of
its functions, with its parameter names, each at most once, the required ones present, values of
the declared type (string, integer, number, boolean, one of an `enum`, or a list of one of the
first four), or `other()`, which parses as no call, so the model can still say that no function
fits (the irrelevance categories).

A function whose required parameter is a dict, a list of lists or dicts, or `any` cannot be called
through the grammar, so a case with such a function decodes freely (counted in the result as
`unconstrained_cases`); an optional parameter of such a type is left out of the grammar.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from eval.bfcl_prompt import case_record
from eval.predict import chat_of
from skilltune.local_model import Chat
from skilltune.skills import Param, Skill

# the JSON Schema types the grammar writes (BfclCase.schemas has converted BFCL's "float" and the rest)
_SCALARS = ("string", "integer", "number", "boolean")
NO_FUNCTION = Skill("other", "other()", "none of the functions fits the request", {})


def _param(schema: dict, required: bool) -> Param | None:
    """A parameter's JSON Schema as the grammar's Param; None when it is neither a scalar nor a list of them."""
    kind = schema.get("type")
    items = schema.get("items")
    if kind == "array" and isinstance(items, dict) and items.get("type") in _SCALARS:
        return Param("array", required=required, items=items["type"])
    if kind not in _SCALARS:
        return None
    enum = schema.get("enum")
    if kind == "string" and isinstance(enum, list) and enum and all(isinstance(value, str) for value in enum):
        return Param("string", required=required, enum=tuple(enum))
    return Param(kind, required=required)


def case_skills(case) -> list[Skill] | None:
    """The case's functions as skills, `other()` last; None when one of them needs a value the grammar cannot write."""
    skills = []
    for function in case.functions:
        parameters = case.schemas[function["name"]]
        required = set(parameters.get("required", ()))
        params = {}
        for name, schema in parameters.get("properties", {}).items():
            param = _param(schema if isinstance(schema, dict) else {}, name in required)
            if param is None and name in required:
                return None
            if param is not None:
                params[name] = param
        skills.append(Skill(function["name"], f"{function['name']}(...)", function.get("description", ""), params))
    if any(skill.name == NO_FUNCTION.name for skill in skills):
        return skills  # a function named other: then there is no way to say "none", as in BFCL itself
    return [*skills, NO_FUNCTION]


def _chat_key(chat: Chat) -> str:
    # the prompt a row was generated from; equal prompts have equal functions, so equal grammars
    return json.dumps([chat.messages, chat.tools], sort_keys=True)


def bfcl_processors(cases: Sequence, layout: str, max_new_tokens: int):
    """A logits-processors factory for eval/predict.py's TransformersBackend: each row of a batch
    gets its case's grammar (found by its prompt), or none when the case has no scalar grammar.
    Returns (factory, number of cases decoded freely)."""
    from eval.constrain import CallGrammar
    from eval.constrain_processor import GrammarLogitsProcessor

    grammars: dict[str, CallGrammar | None] = {}
    unconstrained = 0
    for case in cases:
        skills = case_skills(case)
        unconstrained += skills is None
        grammars[_chat_key(chat_of(case_record(case, layout)))] = CallGrammar(skills) if skills else None

    def make(tokenizer, prompt_length: int, chats: Sequence[Chat] = ()) -> list[GrammarLogitsProcessor]:
        rows = [grammars.get(_chat_key(chat)) for chat in chats]
        shared = next((grammar for grammar in rows if grammar is not None), None)
        if shared is None:
            return []  # a batch of free rows only
        return [
            GrammarLogitsProcessor(tokenizer, shared, prompt_length, max_new_tokens=max_new_tokens, row_grammars=rows)
        ]

    return make, unconstrained
