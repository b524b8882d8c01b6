"""How Ollama turns a chat into prompt text with a legacy template, for the part of Go's
text/template the Modelfile uses, so a test can render a record as Ollama would.

Read from Ollama's source:
  - server/routes.go: the Modelfile's SYSTEM is put first when the request has no system message;
  - template/template.go, Execute without `.Messages` in the template: messages are collated
    (consecutive ones of a role merged with a blank line), then the template runs once per
    user/assistant pair with .System, .Prompt and .Response, and the last run is cut after the
    `.Response` field (deleteNode: every node after it, in walk order, is dropped);
  - text/template: `{{ if .X }}` is true for a non-empty string; a missing key renders empty.
Anything else (trim markers, pipelines, range, other functions) is refused, so the renderer can
only ever claim what it implements.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ACTION = re.compile(r"\{\{(.*?)\}\}", re.S)
FIELD = re.compile(r"\.([A-Za-z]+)")


@dataclass
class Text:
    text: str


@dataclass
class Field:
    name: str


@dataclass
class If:
    name: str
    then: list = field(default_factory=list)
    otherwise: list = field(default_factory=list)


def parse(template: str) -> list:
    root: list = []
    stack: list[tuple[list, If | None]] = [(root, None)]  # (list being filled, its If)
    pos = 0
    for match in ACTION.finditer(template):
        if match.start() > pos:
            stack[-1][0].append(Text(template[pos : match.start()]))
        pos = match.end()
        inner = match[1]
        if inner.startswith("-") or inner.endswith("-"):
            raise ValueError(f"trim markers are not rendered here: {match[0]!r}")
        words = inner.split()
        if len(words) == 1 and FIELD.fullmatch(words[0]):
            stack[-1][0].append(Field(words[0][1:]))
        elif len(words) == 2 and words[0] == "if" and FIELD.fullmatch(words[1]):
            node = If(words[1][1:])
            stack[-1][0].append(node)
            stack.append((node.then, node))
        elif words == ["else"] and stack[-1][1] is not None:
            node = stack.pop()[1]
            stack.append((node.otherwise, node))
        elif words == ["end"] and stack[-1][1] is not None:
            stack.pop()
        else:
            raise ValueError(f"action not rendered here: {match[0]!r}")
    if len(stack) != 1:
        raise ValueError("unclosed {{ if }}")
    if pos < len(template):
        root.append(Text(template[pos:]))
    return root


def cut_after_response(nodes: list) -> list:
    """Ollama's deleteNode: keep the nodes up to the `.Response` field, drop every node after it."""
    cut = False

    def walk(items: list) -> list:
        nonlocal cut
        kept = []
        for item in items:
            if cut:
                continue
            if isinstance(item, Field) and item.name == "Response":
                cut = True
                kept.append(item)
            elif isinstance(item, If):
                kept.append(If(item.name, walk(item.then), walk(item.otherwise)))
            else:
                kept.append(item)
        return kept

    return walk(nodes)


def render(nodes: list, values: dict) -> str:
    out = []
    for item in nodes:
        if isinstance(item, Text):
            out.append(item.text)
        elif isinstance(item, Field):
            out.append(values.get(item.name, ""))
        else:
            out.append(render(item.then if values.get(item.name) else item.otherwise, values))
    return "".join(out)


def collate(messages: list[dict]) -> list[dict]:
    collated: list[dict] = []
    for message in messages:
        if collated and collated[-1]["role"] == message["role"] and message["role"] != "tool":
            collated[-1] = {**collated[-1], "content": collated[-1]["content"] + "\n\n" + message["content"]}
        else:
            collated.append(dict(message))
    return collated


def ollama_prompt(template: str, model_system: str | None, messages: list[dict]) -> str:
    """The prompt Ollama's /api/chat builds for `messages` with a Modelfile's TEMPLATE and SYSTEM."""
    if model_system and (not messages or messages[0]["role"] != "system"):
        messages = [{"role": "system", "content": model_system}, *messages]
    nodes = parse(template)
    out = []
    values = {"System": "", "Prompt": "", "Response": ""}
    for message in collate(messages):
        role = message["role"]
        if role == "system":
            if values["Prompt"] or values["Response"]:
                out.append(render(nodes, values))
                values = {"System": "", "Prompt": "", "Response": ""}
            values["System"] = message["content"]
        elif role == "user":
            if values["Response"]:
                out.append(render(nodes, values))
                values = {"System": "", "Prompt": "", "Response": ""}
            values["Prompt"] = message["content"]
        elif role == "assistant":
            values["Response"] = message["content"]
    out.append(render(cut_after_response(nodes), values))
    return "".join(out)


def read_modelfile(text: str) -> list[tuple[str, str]]:
    """(COMMAND, value) pairs of a Modelfile as Ollama's parser/parser.go reads them: `#` lines
    are comments, a value is a bare word, "quoted" or \"\"\"triple quoted\"\"\" (taken verbatim)."""
    commands = []
    pos = 0
    while pos < len(text):
        if text[pos] in " \t\r\n":
            pos += 1
            continue
        if text[pos] == "#":
            pos = text.find("\n", pos) + 1 or len(text)
            continue
        match = re.compile(r"([A-Za-z]+)[ \t]+").match(text, pos)
        if not match:
            raise ValueError(f"not a command at {text[pos : pos + 20]!r}")
        name, pos = match[1].upper(), match.end()
        if name == "PARAMETER":
            key = re.compile(r"([A-Za-z0-9_]+)[ \t]+").match(text, pos)
            name, pos = f"PARAMETER {key[1]}", key.end()
        if text.startswith('"""', pos):
            end = text.index('"""', pos + 3)
            value, pos = text[pos + 3 : end], end + 3
        elif text.startswith('"', pos):
            end = text.index('"', pos + 1)
            value, pos = text[pos + 1 : end], end + 1
        else:
            end = re.compile(r"[^\s]*").match(text, pos).end()
            value, pos = text[pos:end], end
        if pos < len(text) and text[pos] not in "\r\n":
            raise ValueError(f"text after the value of {name}: {text[pos : pos + 20]!r}")
        commands.append((name, value))
    return commands
