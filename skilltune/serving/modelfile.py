"""An Ollama Modelfile that lays a prompt out exactly as the training chat template did.

The training template (skilltune.local_model.training_chat_template: the config's Jinja file, or a
named Axolotl template such as qwen_25) is rendered for a few probe conversations the way
transformers renders it in training, and recognised only when every probe comes out as ChatML:

    <|im_start|>system\\n{system}<|im_end|>\\n<|im_start|>user\\n{user}<|im_end|>\\n<|im_start|>assistant\\n

A template that writes a default system turn when a conversation has none (Qwen 2.5's "You are
Qwen, ...") is recognised too, and that text becomes the Modelfile's SYSTEM when the records carry
no system prompt. Any other layout is refused in one line rather than served with a template that
only looks right.

The TEMPLATE uses only Ollama's legacy variables `.System`, `.Prompt` and `.Response` with
`{{ if }}`: Ollama renders it once per user/assistant pair and cuts the last one at `.Response`,
which reproduces ChatML turn by turn. The SYSTEM is the system prompt the training records carry,
PARAMETER stop ends generation at the end of the assistant turn, and temperature 0 decodes greedily
as eval does.

The tools that training lists in the system turn (the `tools` answer style) and a BOS token are
not part of it: the tools style is refused (files.py), and whether a BOS is added is the GGUF
file's tokenizer setting, as it was the tokenizer's in training.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from skilltune.local_model import training_chat_template

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
CHATML_TEMPLATE = (
    "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n{{ .Response }}<|im_end|>\n"
)
SUPPORTED = "ChatML templates (configs/templates/chatml_tools.jinja, Axolotl's chatml and qwen_25)"

# Probe texts: plain words, so a template that rewrites content (trims it, adds to it) is caught too.
PROBE_SYSTEM, PROBE_USER, PROBE_ANSWER, PROBE_NEXT = "probe system", "probe user", "probe answer", "probe next"


class ModelfileError(ValueError):
    """The config's chat template or the texts cannot be written as a Modelfile; str() is one line."""


@dataclass(frozen=True)
class ChatLayout:
    template: str  # the Modelfile's TEMPLATE
    stops: tuple[str, ...]  # PARAMETER stop values
    default_system: str | None  # what the training template writes as system when a conversation has none


def chatml(messages: list[dict], add_generation_prompt: bool) -> str:
    """A conversation in ChatML: each message a turn, then the assistant's opening if asked."""
    text = "".join(f"{IM_START}{message['role']}\n{message['content']}{IM_END}\n" for message in messages)
    return text + (f"{IM_START}assistant\n" if add_generation_prompt else "")


def _render(template: str, messages: list[dict], add_generation_prompt: bool, tokens: dict) -> str:
    """The text training renders: transformers' own Jinja renderer (what apply_chat_template calls),
    given the config's special tokens as the tokenizer gives its own."""
    from jinja2 import TemplateError
    from transformers.utils.chat_template_utils import render_jinja_template

    try:
        rendered, _ = render_jinja_template(
            conversations=[messages], chat_template=template, add_generation_prompt=add_generation_prompt, **tokens
        )
    except TemplateError as err:
        raise ModelfileError(f"the chat template fails on a plain conversation: {err}") from None
    return rendered[0]


def _default_system(template: str, tokens: dict) -> str | None:
    """What the template writes as the system turn of a conversation without one; None for nothing.
    Raises ModelfileError when that conversation is not ChatML."""
    user_only = [{"role": "user", "content": PROBE_USER}]
    rendered = _render(template, user_only, True, tokens)
    expected = chatml(user_only, True)
    if rendered == expected:
        return None
    match = re.fullmatch(
        re.escape(f"{IM_START}system\n") + "(.*)" + re.escape(IM_END + "\n"), rendered[: -len(expected)], re.S
    )
    if not rendered.endswith(expected) or not match or IM_END in match[1] or not match[1]:
        raise ModelfileError("without a system message it does not render ChatML")
    return match[1]


def recognise(template: str, tokens: dict | None = None) -> str | None:
    """Check that `template` renders ChatML (module docstring); its default system text, if any.
    Raises ModelfileError naming the probe that does not come out as ChatML."""
    system = {"role": "system", "content": PROBE_SYSTEM}
    user = {"role": "user", "content": PROBE_USER}
    answer = {"role": "assistant", "content": PROBE_ANSWER}
    probes = {
        "the prompt of a record": ([system, user], True),
        "a record with its answer, as trained": ([system, user, answer], False),
        "a second turn": ([system, user, answer, {"role": "user", "content": PROBE_NEXT}], True),
    }
    for what, (messages, add_generation_prompt) in probes.items():
        if _render(template, messages, add_generation_prompt, tokens or {}) != chatml(messages, add_generation_prompt):
            raise ModelfileError(f"{what} does not render as ChatML")
    return _default_system(template, tokens or {})


def training_layout(config: dict, root: Path = Path("."), source: str = "the config") -> ChatLayout:
    """The layout the config trains with, as a Modelfile TEMPLATE and stops; ModelfileError, one line
    naming `source` and the template, for a template that is not ChatML."""
    name = config.get("chat_template_jinja") or config.get("chat_template") or "tokenizer_default"
    template = training_chat_template(config, root)
    if template is None:
        raise ModelfileError(
            f"{source}: trains with the tokenizer's own chat template ({name}); the Modelfile is written for "
            f"{SUPPORTED}: set chat_template: jinja and chat_template_jinja"
        )
    tokens = {key: value for key, value in (config.get("special_tokens") or {}).items() if isinstance(value, str)}
    try:
        default_system = recognise(template, tokens)
    except ModelfileError as err:
        raise ModelfileError(
            f"{source}: the chat template {name} is not ChatML ({err}); the Modelfile is written for {SUPPORTED}"
        ) from None
    eos = tokens.get("eos_token")
    stops = (IM_END,) if eos in (None, IM_END) else (IM_END, eos)
    if any(not stop or '"' in stop or any(char.isspace() for char in stop) for stop in stops):
        raise ModelfileError(f"{source}: eos_token {eos!r} cannot be a quoted PARAMETER stop value")
    return ChatLayout(CHATML_TEMPLATE, stops, default_system)


def _quoted(text: str, what: str) -> str:
    """`text` as a Modelfile triple-quoted value, which Ollama takes verbatim up to the next `\"\"\"`;
    it drops unprintable characters, so a text holding one (or the quotes) is refused."""
    if '"""' in text:
        raise ModelfileError(f'the {what} holds """, which would end the Modelfile value early')
    odd = next((char for char in text if not (char.isprintable() or char in "\n\t")), None)
    if odd is not None:
        raise ModelfileError(f"the {what} holds the unprintable character {odd!r}, which Ollama drops")
    return f'"""{text}"""'


def modelfile_text(layout: ChatLayout, gguf_name: str, system: str | None, header: str = "") -> str:
    """The Modelfile: FROM the GGUF file beside it, TEMPLATE, SYSTEM (the records' system prompt, or
    the template's own default when the records carry none), stops and greedy decoding."""
    if not gguf_name or any(char.isspace() for char in gguf_name) or gguf_name.startswith('"'):
        raise ModelfileError(f"GGUF file name {gguf_name!r}: FROM takes a path without spaces or quotes")
    system = system or layout.default_system
    lines = [f"# {line}" for line in header.splitlines()]
    lines.append(f"FROM {gguf_name if '/' in gguf_name else './' + gguf_name}")
    lines.append(f"TEMPLATE {_quoted(layout.template, 'template')}")
    if system:
        lines.append(f"SYSTEM {_quoted(system, 'system prompt')}")
    lines.extend(f'PARAMETER stop "{stop}"' for stop in layout.stops)
    lines.append("PARAMETER temperature 0")
    return "\n".join(lines) + "\n"
