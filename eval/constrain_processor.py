"""Constrained decoding with transformers: a logits processor that keeps generation inside the
call grammar of eval/constrain.py, per row of a batch, with end-of-sequence only after the call."""

from __future__ import annotations

import time
import weakref
from collections.abc import Sequence

import torch
from transformers import LogitsProcessor

from eval.constrain import START, CallGrammar, State
from eval.grounded import copied_by_skill
from skilltune.local_model import Chat
from skilltune.skills import Skill

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
    decoded = tokenizer.batch_decode(
        [[reference, token] for token in range(vocab_size)], clean_up_tokenization_spaces=False
    )
    never = set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder)
    texts: list[str | None] = []
    for token, text in enumerate(decoded):
        piece = text[len(lead) :] if text.startswith(lead) else ""
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

    `row_grammars` gives each row its own grammar (grounded values: CallGrammar.for_request with
    that row's request; BFCL: the case's functions); without it every row shares `grammar`. A row
    whose grammar is None decodes freely.

    End-of-sequence is allowed only when the text is a complete call, and then it is the only choice
    (nothing may follow the call). A row that has already produced eos is left untouched: generate pads
    it anyway. A row whose text left the grammar (impossible when this processor chose every token,
    but a caller may prefill) is only allowed to stop.
    """

    CHUNKS = (16, 256, 4096)  # then the rest of the vocabulary

    def __init__(
        self,
        tokenizer,
        grammar: CallGrammar,
        prompt_length: int,
        keep: int | None = 1,
        eos_token_id: int | list[int] | None = None,
        max_new_tokens: int | None = None,
        row_grammars: Sequence[CallGrammar | None] | None = None,
    ):
        if keep is not None and keep < 1:
            raise ValueError("keep must be at least 1, or None for the whole vocabulary")
        self.grammar = grammar
        self.row_grammars = list(row_grammars) if row_grammars is not None else None
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
        # keyed by (grammar of the row, its generated tokens): rows sharing a grammar share states
        self._states: dict[tuple[int, tuple[int, ...]], State | None] = {}
        self._allowed_by_state: dict[tuple[int, State | None], list[int]] = {}  # keep=None only

    def _grammar_of(self, row: int) -> tuple[int, CallGrammar | None]:
        if self.row_grammars is None:
            return 0, self.grammar
        return row, self.row_grammars[row]

    def __call__(self, input_ids, scores):
        started = time.perf_counter()
        allowed_mask = torch.zeros_like(scores, dtype=torch.bool)
        for row in range(input_ids.shape[0]):
            generated = tuple(input_ids[row, self.prompt_length :].tolist())
            if self.eos.intersection(generated):
                allowed_mask[row] = True  # finished: whatever comes is replaced by padding
                continue
            key, grammar = self._grammar_of(row)
            if grammar is None:
                allowed_mask[row] = True
                continue
            state = self.state(generated, key, grammar)
            allowed = self._closing_tokens(grammar, state, len(generated), scores[row]) or self._allowed(
                key, grammar, state, scores[row]
            )
            allowed_mask[row, allowed] = True
        self.seconds += time.perf_counter() - started
        return scores.masked_fill(~allowed_mask, float("-inf"))

    def _closing_tokens(self, grammar: CallGrammar, state: State | None, generated: int, row_scores) -> list[int]:
        """When the token budget forces it, the best `keep` tokens that write a start of the shortest
        completion; otherwise (or if no token can) none."""
        if self.max_new_tokens is None:
            return []
        closing = grammar.closing(state)
        if not closing or len(closing) < self.max_new_tokens - generated:
            return []
        candidates = [token for end in range(1, len(closing) + 1) for token in self.ids_by_text.get(closing[:end], [])]
        candidates.sort(key=lambda token: -row_scores[token].item())
        return candidates[: self.keep] if self.keep is not None else candidates

    def state(self, generated: tuple[int, ...], key: int = 0, grammar: CallGrammar | None = None) -> State | None:
        """Grammar state after the generated tokens; the state before the last one is cached from the step before."""
        if not generated:
            return START
        if (key, generated) not in self._states:
            grammar = grammar or self.grammar
            before = self.state(generated[:-1], key, grammar)
            text = self.texts[generated[-1]] if generated[-1] < len(self.texts) else None
            self._states[key, generated] = None if text is None else grammar.advance(before, text)
        return self._states[key, generated]

    def _fits(self, grammar: CallGrammar, state: State | None, token: int) -> bool:
        if token in self.eos:
            return grammar.is_complete(state)
        # the model's vocabulary may be padded beyond the tokenizer's; those rows are never text
        text = self.texts[token] if token < len(self.texts) else None
        return text is not None and grammar.advance(state, text) is not None

    def _allowed(self, key: int, grammar: CallGrammar, state: State | None, row_scores) -> list[int]:
        if state is None or grammar.is_complete(state):
            return sorted(self.eos)
        if self.keep is None:
            if (key, state) not in self._allowed_by_state:
                self._allowed_by_state[key, state] = [
                    t for t in range(row_scores.shape[0]) if self._fits(grammar, state, t)
                ]
            return self._allowed_by_state[key, state] or sorted(self.eos)
        found: list[int] = []
        start = 0
        for end in (*self.CHUNKS, row_scores.shape[0]):
            # topk of a few is ~50x cheaper than sorting the whole vocabulary, and usually enough
            values, order = torch.topk(row_scores, min(end, row_scores.shape[0]))
            for token, value in zip(order[start:].tolist(), values[start:].tolist()):
                if value == float("-inf"):  # an earlier processor ruled it out, and so the rest
                    return found or sorted(self.eos)
                if self._fits(grammar, state, token):
                    found.append(token)
                    if len(found) == self.keep:
                        return found
            start = end
        return found or sorted(self.eos)


def grammar_processors(
    skills: list[Skill],
    style: str = "python",
    keep: int | None = 1,
    max_new_tokens: int | None = None,
    grounded: bool = False,
):
    """A factory `(tokenizer, prompt_length, chats) -> [GrammarLogitsProcessor]`, called once per batch.

    The grammar is built once here; the token texts are cached per tokenizer, so a new processor per
    batch (with that batch's prompt length and fresh per-row state) costs little. Pass generate's
    `max_new_tokens` so that every call is closed before the budget ends (see GrammarLogitsProcessor).
    `grounded`: the values each skill copies from the request are spans of the chat's last user
    message (eval/grounded.py), a grammar per row.
    """
    grammar = CallGrammar(skills, style, grounded=copied_by_skill(skills) if grounded else None)

    def make(tokenizer, prompt_length: int, chats: Sequence[Chat] = ()) -> list[GrammarLogitsProcessor]:
        rows = [grammar.for_request(last_user_text(chat)) for chat in chats] if grounded else None
        processor = GrammarLogitsProcessor(
            tokenizer, grammar, prompt_length, keep=keep, max_new_tokens=max_new_tokens, row_grammars=rows
        )
        return [processor]

    return make


def last_user_text(chat: Chat) -> str:
    """The request a grounded value must come from: the chat's last user message."""
    users = [message.get("content") or "" for message in chat.messages if message.get("role") == "user"]
    return users[-1] if users else ""
