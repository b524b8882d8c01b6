"""Constrained decoding: the model can only write one call that is valid for the skill pack.

The accepted language is the canonical form of the training targets, with the arguments in any
order. Python style (skilltune.calls.Call.to_python) and JSON style (skilltune.records, json.dumps of
call_to_json) are both supported:

    python  name(arg=value, arg=value)
    json    {"function_call": {"name": "name", "arguments": {"arg": value, "arg": value}}}

    name: a skill of the pack, `other` included; each arg: a parameter of that skill, at most once;
    all required parameters present before the call is closed. Values:
        choice   one of the listed values, quoted as the style writes it
        string   "..." without `"`, `\\` or unprintable characters (newlines, tabs)
        integer  -?(0|[1-9][0-9]*)           (Python refuses leading zeros such as 007, JSON too)
        number   an integer or decimal, optionally with an exponent (both write 1e-05 so), that
                 stays a finite float (1e999 would parse as inf, which no call may hold)
        boolean  True | False   (json: true | false)
        array    a list of one scalar type, as both styles write it: [], [1, 2], ["a", "b"]
                 (BFCL's functions take lists; the pack's skills do not)
    With `grounded` (skill -> copied parameters) and a request (`for_request`), a copied string is a
    span of the request, as eval/grounded.py defines it.

Nothing may follow the closed call except end-of-sequence, and nothing may come before it: the model
must answer with the call and only the call. The `tools` style (tool_calls on the message) is not
text the model writes in a way this module knows, so it is not supported.

Two pieces:
    CallGrammar              a character-level prefix checker over an explicit small state machine,
                             so a candidate token is checked by stepping its few characters from the
                             state of the text so far instead of re-reading the whole text.
    GrammarLogitsProcessor   a transformers LogitsProcessor that masks, per row of a batch, the next
                             tokens that would leave the grammar, and allows eos only after the call
                             (eval/constrain_processor.py).
"""

from __future__ import annotations

import copy
import math
import re
from collections import deque
from typing import NamedTuple

from eval.grounded import is_span, may_start
from skilltune.call_text import STYLES
from skilltune.skills import Skill

# Phases of the state machine. In CALL and ARGS the text must be one of a few fixed options (a name
# with its punctuation; an argument's key with its separator, or the end), so those phases only
# keep the part of the option read so far. Keys and names are identifiers, so no option is a prefix
# of another: `vol=` is not a prefix of `volume=`.
CALL = "call"  # before the name: the name with its punctuation
ARGS = "args"  # between arguments: the next key, or the end of the call
VALUE = "value"  # after a key: its value
DONE = "done"  # the call is closed: only end-of-sequence

INTEGER_PREFIX = re.compile(r"-?(?:0|[1-9][0-9]*)?")
INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
# The prefix pattern lists what may still become a number: "-", "1.", "1.5e", "1e-" ...
NUMBER_PREFIX = re.compile(r"-?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*|(?:\.[0-9]+)?[eE][+-]?[0-9]*)?)?")
NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_OTHER_DIGITS = frozenset("123456789")  # the closing search writes "0" for every digit


def _finite(number_prefix: str) -> bool:
    """Whether a number written so far is still a finite float. More digits only make it larger
    (or, after `e-`, smaller), so once infinite it stays so and the grammar stops it there."""
    digits = number_prefix.rstrip("eE+-.")
    return not digits or math.isfinite(float(digits))


class State(NamedTuple):
    """Where the grammar is after some text. Hashable, so callers can cache per state.

    Inside a free string the characters themselves are not kept: every string position with the
    same skill, parameters used and parameter is the same state, which keeps the set of states small.
    A grounded string keeps them (the value so far must stay a piece of the request).
    """

    phase: str
    text: str = ""  # the part of the current option or non-string value read so far; `"` inside a string
    skill: str = ""
    used: frozenset = frozenset()  # parameters already given, the current one included
    param: str = ""  # the parameter whose value is being read


START = State(CALL)


class CallGrammar:
    """Which texts are prefixes of (`allows`) or whole (`complete`) valid calls for `skills`."""

    def __init__(self, skills: list[Skill], style: str = "python", grounded: dict[str, frozenset[str]] | None = None):
        if style not in STYLES:
            raise ValueError(f"constrained decoding supports the styles {', '.join(STYLES)}, not {style!r}")
        self.style = STYLES[style]
        self.skills = {skill.name: skill for skill in skills}
        self.required = {
            skill.name: frozenset(name for name, param in skill.params.items() if param.required) for skill in skills
        }
        # The exact texts a choice or boolean value may take; strings and numbers are read by rules instead.
        self.literals: dict[tuple[str, str], tuple[str, ...]] = {}
        for skill in skills:
            for name, param in skill.params.items():
                if param.enum:
                    self.literals[skill.name, name] = tuple(self.style.quote(value) for value in param.enum)
                elif param.type == "boolean":
                    self.literals[skill.name, name] = (self.style.true, self.style.false)
        self._calls = {
            self.style.before_name + name + self.style.after_name: State(ARGS, skill=name) for name in self.skills
        }
        self._args: dict[tuple[str, frozenset], dict[str, State]] = {}
        # Characters enough to finish any call: those of the fixed options and choice values, and
        # "0", which ends every unfinished number ("", "-", "1.", "1e+") and stands in for all
        # digits: more characters would only make the search for the shortest completion wider.
        chars = set('"0') | set("".join(self._calls))
        for skill in skills:
            chars |= set(self.style.separator + self.style.before_key + self.style.after_key + self.style.end)
            chars |= {char for name in skill.params for char in name}
        chars |= {char for literals in self.literals.values() for literal in literals for char in literal}
        if any(param.type == "array" for skill in skills for param in skill.params.values()):
            chars |= set("[], " + self.style.true + self.style.false)
        self._alphabet = sorted(chars)
        self._closings: dict[State, str | None] = {}
        self.grounded = grounded or {}
        self.request: str | None = None  # set by for_request: the text grounded values are spans of

    def for_request(self, request: str) -> CallGrammar:
        """This grammar with its grounded parameters bound to spans of `request`. A shallow copy:
        the fixed options are shared, completions are searched again (they may need its letters)."""
        bound = copy.copy(self)
        bound.request = request
        bound._closings = {}
        bound._alphabet = sorted(set(self._alphabet) | {char for char in request if char.isprintable()})
        return bound

    def allows(self, prefix: str) -> bool:
        """True when `prefix` can still be extended to a valid call (or is one)."""
        return self.advance(START, prefix) is not None

    def complete(self, text: str) -> bool:
        return self.is_complete(self.advance(START, text))

    @staticmethod
    def is_complete(state: State | None) -> bool:
        return state is not None and state.phase == DONE

    def closing(self, state: State | None) -> str | None:
        """The shortest text that makes a complete call from `state`; None for a dead state.

        Found by a breadth-first search over the grammar's own steps (cached per state), so it can
        never disagree with `step`. Generation uses it to finish the call before the token budget ends.
        """
        if state is None:
            return None
        if state not in self._closings:
            self._closings[state] = self._search_closing(state)
        return self._closings[state]

    def _search_closing(self, state: State) -> str | None:
        queue, seen = deque([(state, "")]), {state}
        while queue:
            current, text = queue.popleft()
            if current.phase == DONE:
                return text
            for char in self._alphabet:
                if char in _OTHER_DIGITS and self._reads_number(current):
                    continue  # "0" stands in for every digit; a key's digits (num1) would only widen the search
                following = self.step(current, char)
                if following is not None and following not in seen:
                    seen.add(following)
                    queue.append((following, text + char))
        return None

    def _reads_number(self, state: State) -> bool:
        if state.phase != VALUE or (state.skill, state.param) in self.literals:
            return False
        param = self.skills[state.skill].params[state.param]
        # a list of numbers too: without this, its items' digit strings made the search exponential
        # (a BFCL case with two required number lists never finished)
        return param.type in ("integer", "number") or param.items in ("integer", "number")

    def advance(self, state: State | None, text: str) -> State | None:
        """The state after reading `text` from `state`; None once the text has left the grammar."""
        for char in text:
            if state is None:
                return None
            state = self.step(state, char)
        return state

    def step(self, state: State, char: str) -> State | None:
        if state.phase == CALL:
            return self._step_option(state, char, self._calls)
        if state.phase == ARGS:
            return self._step_option(state, char, self._arg_options(state.skill, state.used))
        if state.phase == VALUE:
            return self._step_value(state, char)
        return None  # DONE: nothing may follow the call

    @staticmethod
    def _step_option(state: State, char: str, options: dict[str, State]) -> State | None:
        text = state.text + char
        if text in options:
            return options[text]
        return state._replace(text=text) if any(option.startswith(text) for option in options) else None

    def _arg_options(self, skill: str, used: frozenset) -> dict[str, State]:
        """After the name or a value: each unused parameter's key, and the end once nothing required is missing."""
        if (skill, used) not in self._args:
            style = self.style
            separator = style.separator if used else ""  # a call's first argument follows the name directly
            options = {
                separator + style.before_key + name + style.after_key: State(
                    VALUE, skill=skill, used=used | {name}, param=name
                )
                for name in self.skills[skill].params
                if name not in used
            }
            if self.required[skill] <= used:
                options[style.end] = State(DONE)
            self._args[skill, used] = options
        return self._args[skill, used]

    def _step_value(self, state: State, char: str) -> State | None:
        after = State(ARGS, skill=state.skill, used=state.used)
        literals = self.literals.get((state.skill, state.param))
        if literals is not None:
            # quoted choices and booleans are prefix-free: the value ends with its last character
            return self._step_option(state, char, dict.fromkeys(literals, after))
        param = self.skills[state.skill].params[state.param]
        param_type = param.type
        if param_type == "array":
            return self._step_list(state, char, after, param.items)
        if param_type == "string":
            if not state.text:
                return state._replace(text='"') if char == '"' else None
            if self.request is not None and state.param in self.grounded.get(state.skill, ()):
                value = state.text[1:]
                if char == '"':
                    return after if is_span(value, self.request) else None
                fits = char.isprintable() and char != "\\" and may_start(value + char, self.request)
                return state._replace(text=state.text + char) if fits else None
            if char == '"':
                return after
            return state if char.isprintable() and char not in '"\\' else None
        if _number_prefix(state.text + char, param_type):
            return state._replace(text=state.text + char)
        # a number has no closing character: it ends where the separator or the end follows a whole number
        return self.step(after, char) if _whole_number(state.text, param_type) else None

    def _step_list(self, state: State, char: str, after: State, item: str) -> State | None:
        """A list of `item` values. `state.text` says where in the list the text is: "" before it,
        "[" just opened, "[," after a comma, "[ " where an item must start, "[s" inside a string item
        (its characters are not kept, as for a free string), "[n" + a number item so far, "[l" + a
        boolean so far, "[e" after an item."""
        mode, rest = state.text[:2], state.text[2:]
        if not state.text:
            return state._replace(text="[") if char == "[" else None
        if state.text == "[" and char == "]":
            return after
        if state.text == "[" or mode == "[ ":
            return self._start_item(state, char, item)
        if mode == "[,":
            return state._replace(text="[ ") if char == " " else None
        if mode == "[e":
            if char == ",":
                return state._replace(text="[,")
            return after if char == "]" else None
        if mode == "[s":
            if char == '"':
                return state._replace(text="[e")
            return state if char.isprintable() and char not in '"\\' else None
        if mode == "[l":
            literals = (self.style.true, self.style.false)
            if rest + char in literals:
                return state._replace(text="[e")
            return state._replace(text=mode + rest + char) if any(o.startswith(rest + char) for o in literals) else None
        if _number_prefix(rest + char, item):  # mode "[n"
            return state._replace(text=mode + rest + char)
        return self._step_list(state._replace(text="[e"), char, after, item) if _whole_number(rest, item) else None

    def _start_item(self, state: State, char: str, item: str) -> State | None:
        if item == "string":
            return state._replace(text="[s") if char == '"' else None
        if item == "boolean":
            started = any(literal.startswith(char) for literal in (self.style.true, self.style.false))
            return state._replace(text="[l" + char) if started else None
        return state._replace(text="[n" + char) if _number_prefix(char, item) else None


def _number_prefix(text: str, number_type: str) -> bool:
    """Whether `text` may still grow into a number of `number_type` (integer or number)."""
    if number_type == "integer":
        return INTEGER_PREFIX.fullmatch(text) is not None
    return NUMBER_PREFIX.fullmatch(text) is not None and _finite(text)


def _whole_number(text: str, number_type: str) -> bool:
    return (INTEGER if number_type == "integer" else NUMBER).fullmatch(text) is not None
