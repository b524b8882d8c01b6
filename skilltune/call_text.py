"""The fixed text around a call in each answer style the model writes as text, shared by the two
grammars of the call language: eval/constrain.py (constrained decoding) and
skilltune/serving/call_grammar.py (GBNF for llama.cpp). The tools style is not text the model
writes in a way either knows, so it has no entry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from skilltune.calls import value_text  # the quoting to_python uses, so choice values match the targets exactly


@dataclass(frozen=True)
class Style:
    """The fixed text around names, arguments and values in one answer style."""

    before_name: str
    after_name: str  # between the name and the first argument (or the end of a call without any)
    before_key: str
    after_key: str
    separator: str
    end: str
    true: str
    false: str
    quote: Callable[[str], str]  # how a choice value is written


STYLES = {
    "python": Style("", "(", "", "=", ", ", ")", "True", "False", value_text),
    "json": Style(
        '{"function_call": {"name": "',
        '", "arguments": {',
        '"',
        '": ',
        ", ",
        "}}}",
        "true",
        "false",
        lambda value: json.dumps(value, ensure_ascii=False),
    ),
}
