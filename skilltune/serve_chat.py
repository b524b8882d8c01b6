"""The chat handler `make serve` plugs into llama-cpp-python's OpenAI-compatible server.

llama-cpp-python's own handlers each fall short of serving a skilltune model as trained:
  - the GGUF's chat template (`chat_template.default`) lays the prompt out as training did, but
    applies no grammar unless each request sends one, and returns calls as text even when the
    request lists `tools`;
  - `chatml-function-calling` returns `tool_calls`, but with a prompt and a call layout of its own
    that the model never saw.
This handler keeps the GGUF's template and adds what a served tuned model needs:
  1. the training system prompt when a request brings no system message (as Ollama's SYSTEM does);
  2. the skill pack's grammar (grammar.gbnf) when a request sends no `grammar` of its own;
  3. with `tools` in the request (and tool_choice not "none"), the calls in the answer come back
     as OpenAI `tool_calls` (finish_reason "tool_calls"); `other()` (no skill) stays text.
A model trained in the python or json style never saw tool definitions in its prompt, so a
request's `tools` only decide the shape of the answer; a tools-style model gets them rendered by
its template, as in training. Streamed answers are passed through as text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from skilltune.calls import Call, CallSyntaxError, call_from_function
from skilltune.jsonio import loads
from skilltune.records import answer_calls

HANDLER_NAME = "skilltune"
_TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)


@dataclass(frozen=True)
class ServeSettings:
    style: str  # the data's answer style: python, json or tools
    system: str | None = None  # the training records' system prompt
    grammar: str | None = None  # GBNF text applied to requests that send none


def with_system(messages: list[dict], system: str | None) -> list[dict]:
    """`messages` with the training system prompt first, unless they bring one (or there is none)."""
    if not system or (messages and messages[0].get("role") == "system"):
        return messages
    return [{"role": "system", "content": system}, *messages]


def answer_text_calls(text: str) -> list[Call] | None:
    """The calls an answer text holds in any style (Hermes <tool_call> blocks, JSON, Python), read
    as data, never run; None when it is not a well-formed call answer."""
    try:
        blocks = _TOOL_CALL.findall(text)
        if blocks:
            return [call_from_function(loads(block)) for block in blocks]  # {"name", "arguments"}
        return answer_calls({"content": text})
    except (CallSyntaxError, ValueError, TypeError, AttributeError):
        return None


def tool_calls_of(calls: list[Call]) -> list[dict]:
    return [
        {
            "id": f"call_{index}",
            "type": "function",
            "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)},
        }
        for index, call in enumerate(calls)
    ]


def as_tool_calls(response: dict) -> dict:
    """A chat completion whose text answer is a call, rewritten with `tool_calls` (in place)."""
    for choice in response.get("choices") or []:
        message = choice.get("message") or {}
        calls = answer_text_calls(message.get("content") or "")
        if calls and not any(call.is_no_call for call in calls):
            message["content"] = None
            message["tool_calls"] = tool_calls_of(calls)
            choice["finish_reason"] = "tool_calls"
    return response


def template_handler(llama):
    """llama-cpp-python's handler for the GGUF's own chat template (its tokenizer.chat_template),
    built the way Llama builds `chat_template.default`, from public API only."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        raise ValueError("the GGUF has no tokenizer.chat_template; re-export it with `make export`")

    def token_text(token: int) -> str:
        return llama.detokenize([token], special=True).decode("utf-8", errors="replace") if token >= 0 else ""

    eos, bos = llama.token_eos(), llama.token_bos()
    return Jinja2ChatFormatter(template, token_text(eos), token_text(bos), stop_token_ids=[eos]).to_chat_handler()


def make_handler(settings: ServeSettings):
    """The chat-completion handler (llama-cpp-python's LlamaChatCompletionHandler signature)."""
    from llama_cpp import LlamaGrammar

    default_grammar = LlamaGrammar.from_string(settings.grammar, verbose=False) if settings.grammar else None
    templates: dict[int, object] = {}  # one per loaded model (the server may reload it)

    def handler(*, llama, messages, tools=None, tool_choice=None, functions=None, grammar=None, **kwargs):
        key = id(llama)
        if key not in templates:
            templates[key] = template_handler(llama)
        tools = tools or ([{"type": "function", "function": f} for f in functions] if functions else None)
        wants_calls = bool(tools) and tool_choice != "none" and not kwargs.get("stream")
        if settings.style != "tools":  # never in its training prompt; the grammar bounds the calls instead
            tools, tool_choice = None, None
        response = templates[key](
            llama=llama,
            messages=with_system(list(messages), settings.system),
            tools=tools,
            tool_choice=tool_choice,
            grammar=grammar or default_grammar,
            **kwargs,
        )
        return as_tool_calls(response) if wants_calls and isinstance(response, dict) else response

    return handler


def register(settings: ServeSettings) -> None:
    """Make `chat_format: skilltune` name this handler in llama-cpp-python's registry."""
    from llama_cpp.llama_chat_format import LlamaChatCompletionHandlerRegistry

    LlamaChatCompletionHandlerRegistry().register_chat_completion_handler(
        HANDLER_NAME, make_handler(settings), overwrite=True
    )
