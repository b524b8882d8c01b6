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
        number   an integer or decimal, optionally with an exponent (both write 1e-05 so)
        boolean  True | False   (json: true | false)

Nothing may follow the closed call except end-of-sequence, and nothing may come before it: the model
must answer with the call and only the call. The `tools` style (tool_calls on the message) is not
text the model writes in a way this module knows, so it is not supported.

Two pieces:
    CallGrammar              a character-level prefix checker over an explicit small state machine,
                             so a candidate token is checked by stepping its few characters from the
                             state of the text so far instead of re-reading the whole text.
    GrammarLogitsProcessor   a transformers LogitsProcessor that masks, per row of a batch, the next
                             tokens that would leave the grammar, and allows eos only after the call.
"""

from __future__ import annotations

import json
import re
import time
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
from transformers import LogitsProcessor

from skilltune.calls import value_text  # the quoting to_python uses, so choice values match the targets exactly
from skilltune.skills import Skill


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
    "json": Style('{"function_call": {"name": "', '", "arguments": {', '"', '": ', ", ", "}}}", "true", "false",
                  lambda value: json.dumps(value, ensure_ascii=False)),
}

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


class State(NamedTuple):
    """Where the grammar is after some text. Hashable, so callers can cache per state.

    Inside a free string the characters themselves are not kept: every string position with the
    same skill, parameters used and parameter is the same state, which keeps the set of states small.
    """

    phase: str
    text: str = ""  # the part of the current option or non-string value read so far; `"` inside a string
    skill: str = ""
    used: frozenset = frozenset()  # parameters already given, the current one included
    param: str = ""  # the parameter whose value is being read


START = State(CALL)


class CallGrammar:
    """Which texts are prefixes of (`allows`) or whole (`complete`) valid calls for `skills`."""

    def __init__(self, skills: list[Skill], style: str = "python"):
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
        self._calls = {self.style.before_name + name + self.style.after_name: State(ARGS, skill=name)
                       for name in self.skills}
        self._args: dict[tuple[str, frozenset], dict[str, State]] = {}
        # Characters enough to finish any call: those of the fixed options and choice values, and
        # "0", which ends every unfinished number ("", "-", "1.", "1e+") and stands in for all
        # digits: more characters would only make the search for the shortest completion wider.
        chars = set('"0') | set("".join(self._calls))
        for skill in skills:
            chars |= set(self.style.separator + self.style.before_key + self.style.after_key + self.style.end)
            chars |= {char for name in skill.params for char in name}
        chars |= {char for literals in self.literals.values() for literal in literals for char in literal}
        self._alphabet = sorted(chars)
        self._closings: dict[State, str | None] = {}

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
                following = self.step(current, char)
                if following is not None and following not in seen:
                    seen.add(following)
                    queue.append((following, text + char))
        return None

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
            options = {separator + style.before_key + name + style.after_key:
                       State(VALUE, skill=skill, used=used | {name}, param=name)
                       for name in self.skills[skill].params if name not in used}
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
        param_type = self.skills[state.skill].params[state.param].type
        if param_type == "string":
            if not state.text:
                return state._replace(text='"') if char == '"' else None
            if char == '"':
                return after
            return state if char.isprintable() and char not in '"\\' else None
        prefix, whole = (INTEGER_PREFIX, INTEGER) if param_type == "integer" else (NUMBER_PREFIX, NUMBER)
        value = state.text + char
        if prefix.fullmatch(value):
            return state._replace(text=value)
        # a number has no closing character: it ends where the separator or the end follows a whole number
        return self.step(after, char) if whole.fullmatch(state.text) else None


# --- generation with transformers -------------------------------------------------------------

_TOKEN_TEXTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def token_texts(tokenizer) -> list[str | None]:
    """What each token id adds to the text when it is generated; None for tokens never allowed.

    Decoded once per tokenizer and cached (about a second for a 49k vocabulary). Each token is
    decoded after a reference token and the reference's text is cut off: a SentencePiece tokenizer
    drops the leading space of a word-initial token decoded alone, and here the space must count.
    None marks special and added tokens (<|im_end|> is markup, not text), empty tokens and byte-level
    pieces of a multi-byte character, whose decode alone is not valid text (it holds U+FFFD).
    """
    if tokenizer in _TOKEN_TEXTS:
        return _TOKEN_TEXTS[tokenizer]
    reference = tokenizer.encode("a", add_special_tokens=False)[-1]
    lead = tokenizer.decode([reference], clean_up_tokenization_spaces=False)
    vocab_size = len(tokenizer)
    decoded = tokenizer.batch_decode([[reference, token] for token in range(vocab_size)],
                                     clean_up_tokenization_spaces=False)
    never = set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder)
    texts: list[str | None] = []
    for token, text in enumerate(decoded):
        piece = text[len(lead):] if text.startswith(lead) else ""
        texts.append(None if token in never or not piece or "\ufffd" in piece else piece)
    _TOKEN_TEXTS[tokenizer] = texts
    return texts


def _eos_ids(tokenizer, eos_token_id) -> frozenset[int]:
    if eos_token_id is None:
        eos_token_id = tokenizer.eos_token_id
    return frozenset([eos_token_id] if isinstance(eos_token_id, int) else eos_token_id)


class GrammarLogitsProcessor(LogitsProcessor):
    """Mask the next tokens that would take a row's generated text out of the grammar.

    Works on batched generation with left padding: every row's generated tokens start at
    `prompt_length`. The text of a row is the concatenation of its tokens' texts (token_texts),
    which is what decode() gives for a byte-level BPE tokenizer such as SmolLM2's; its grammar
    state is cached per generated-token sequence, so each step reads only the newest token.

    `keep` is how many allowed tokens survive per step. Instead of checking all ~49k tokens, the
    candidates are checked in descending score order, in growing top-k chunks, until `keep` allowed
    ones are found (usually among the first 16). With greedy decoding, keep=1 is exactly the same as
    masking every disallowed token: argmax over the allowed tokens is the best allowed token, the
    only one left (up to exact ties between scores, which either way may go to either token).
    Custom processors run before generate's sampling warpers (temperature, top-k, top-p), so for
    sampling with top_k=K pass keep=K, which is exact too; keep=None checks the whole vocabulary
    (exact for any decoding, top_p included; slower: once per distinct grammar state, then cached).
    keep=1 with sampling would make it greedy.

    With `max_new_tokens` (the same number generate gets) a row also finishes in time: once the
    shortest completion of its call (CallGrammar.closing) has as many characters as tokens are left,
    only tokens that write the start of that completion are allowed. Every token writes at least one
    character, so the call closes within the budget, e.g. a string the model will not end is cut
    off with `")` (python style). Without it, a model that rambles inside a string runs out of
    tokens mid-call.

    End-of-sequence is allowed only when the text is a complete call, and then it is the only choice
    (nothing may follow the call). A row that has already produced eos is left untouched: generate pads
    it anyway. A row whose text left the grammar (impossible when this processor chose every token,
    but a caller may prefill) is only allowed to stop.
    """

    CHUNKS = (16, 256, 4096)  # then the rest of the vocabulary

    def __init__(self, tokenizer, grammar: CallGrammar, prompt_length: int, keep: int | None = 1,
                 eos_token_id: int | list[int] | None = None, max_new_tokens: int | None = None):
        if keep is not None and keep < 1:
            raise ValueError("keep must be at least 1, or None for the whole vocabulary")
        self.grammar = grammar
        self.prompt_length = prompt_length
        self.keep = keep
        self.texts = token_texts(tokenizer)
        self.eos = _eos_ids(tokenizer, eos_token_id)
        self.max_new_tokens = max_new_tokens
        self.ids_by_text: dict[str, list[int]] = {}
        if max_new_tokens is not None:
            for token, text in enumerate(self.texts):
                if text is not None:
                    self.ids_by_text.setdefault(text, []).append(token)
        self.seconds = 0.0  # time spent in __call__, for measuring the overhead
        self._states: dict[tuple[int, ...], State | None] = {(): START}
        self._allowed_by_state: dict[State | None, list[int]] = {}  # keep=None only

    def __call__(self, input_ids, scores):
        started = time.perf_counter()
        allowed_mask = torch.zeros_like(scores, dtype=torch.bool)
        for row in range(input_ids.shape[0]):
            generated = tuple(input_ids[row, self.prompt_length:].tolist())
            if self.eos.intersection(generated):
                allowed_mask[row] = True  # finished: whatever comes is replaced by padding
                continue
            state = self.state(generated)
            allowed = self._closing_tokens(state, len(generated), scores[row]) or self._allowed(state, scores[row])
            allowed_mask[row, allowed] = True
        self.seconds += time.perf_counter() - started
        return scores.masked_fill(~allowed_mask, float("-inf"))

    def _closing_tokens(self, state: State | None, generated: int, row_scores) -> list[int]:
        """When the token budget forces it, the best `keep` tokens that write a start of the shortest
        completion; otherwise (or if no token can) none."""
        if self.max_new_tokens is None:
            return []
        closing = self.grammar.closing(state)
        if not closing or len(closing) < self.max_new_tokens - generated:
            return []
        candidates = [token for end in range(1, len(closing) + 1) for token in self.ids_by_text.get(closing[:end], [])]
        candidates.sort(key=lambda token: -row_scores[token].item())
        return candidates[:self.keep] if self.keep is not None else candidates

    def state(self, generated: tuple[int, ...]) -> State | None:
        """Grammar state after the generated tokens; the state before the last one is cached from the step before."""
        if generated not in self._states:
            before = self.state(generated[:-1])
            text = self.texts[generated[-1]] if generated[-1] < len(self.texts) else None
            self._states[generated] = None if text is None else self.grammar.advance(before, text)
        return self._states[generated]

    def _fits(self, state: State | None, token: int) -> bool:
        if token in self.eos:
            return self.grammar.is_complete(state)
        # the model's vocabulary may be padded beyond the tokenizer's; those rows are never text
        text = self.texts[token] if token < len(self.texts) else None
        return text is not None and self.grammar.advance(state, text) is not None

    def _allowed(self, state: State | None, row_scores) -> list[int]:
        if state is None or self.grammar.is_complete(state):
            return sorted(self.eos)
        if self.keep is None:
            if state not in self._allowed_by_state:
                self._allowed_by_state[state] = [t for t in range(row_scores.shape[0]) if self._fits(state, t)]
            return self._allowed_by_state[state] or sorted(self.eos)
        found: list[int] = []
        start = 0
        for end in (*self.CHUNKS, row_scores.shape[0]):
            # topk of a few is ~50x cheaper than sorting the whole vocabulary, and usually enough
            values, order = torch.topk(row_scores, min(end, row_scores.shape[0]))
            for token, value in zip(order[start:].tolist(), values[start:].tolist()):
                if value == float("-inf"):  # an earlier processor ruled it out, and so the rest
                    return found or sorted(self.eos)
                if self._fits(state, token):
                    found.append(token)
                    if len(found) == self.keep:
                        return found
            start = end
        return found or sorted(self.eos)


def grammar_processors(skills: list[Skill], style: str = "python", keep: int | None = 1,
                       max_new_tokens: int | None = None):
    """A factory `(tokenizer, prompt_length) -> [GrammarLogitsProcessor]`, called once per batch.

    The grammar is built once here; the token texts are cached per tokenizer, so a new processor per
    batch (with that batch's prompt length and fresh per-row state) costs little. Pass generate's
    `max_new_tokens` so that every call is closed before the budget ends (see GrammarLogitsProcessor).
    """
    grammar = CallGrammar(skills, style)

    def make(tokenizer, prompt_length: int) -> list[GrammarLogitsProcessor]:
        return [GrammarLogitsProcessor(tokenizer, grammar, prompt_length, keep=keep, max_new_tokens=max_new_tokens)]

    return make
