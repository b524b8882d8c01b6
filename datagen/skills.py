"""Read a skill pack: one text file per skill, parsed strictly.

File format (the one users of voice-assistant skill packs already have):

    #### Prompt:
    notes(action="add|list", note="[note]")
    Add a note or read the notes back.

    #### Prompt Examples:
    ### User: add buy milk to my notes
    ### Assistant: notes(action="add", note="buy milk")

    #### Examples:
    ### User: what is on my list
    ### Assistant: notes(action="list")

The signature's values declare each parameter: `"a|b"` is a required choice (the call must pick
one), `"[slot]"` is an optional free string. Every other non-blank line, an unknown header, a
`User:` without `### `, a User without its Assistant, or an Assistant call that does not parse or
does not fit the signature is a SkillFileError naming file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import jsonschema

from datagen.calls import Call, CallSyntaxError, parse_call

PROMPT_HEADER = "#### Prompt:"
PROMPT_EXAMPLES_HEADER = "#### Prompt Examples:"
EXAMPLES_HEADER = "#### Examples:"
SECTION_ORDER = (PROMPT_HEADER, PROMPT_EXAMPLES_HEADER, EXAMPLES_HEADER)
USER_PREFIX = "### User:"
ASSISTANT_PREFIX = "### Assistant:"


class SkillFileError(ValueError):
    """A skill file breaks the format; str() is `path:line: reason`."""

    def __init__(self, path: Path | str, line: int, reason: str):
        self.path, self.line, self.reason = str(path), line, reason
        super().__init__(f"{path}:{line}: {reason}")


@dataclass(frozen=True)
class Example:
    user: str
    call: Call
    line: int  # line of the User turn, for error messages further down the pipeline
    in_prompt: bool  # from `#### Prompt Examples:` (few-shot) rather than `#### Examples:`


@dataclass
class Skill:
    name: str
    signature: str
    description: str
    choices: dict[str, list[str]]  # parameter -> allowed values; empty list = free string
    examples: list[Example] = field(default_factory=list)
    path: str = ""

    @property
    def parameters(self) -> list[str]:
        return list(self.choices)

    def json_schema(self) -> dict:
        """JSON Schema of the call's arguments: strings, enums for choices, choices required."""
        properties = {}
        for name, allowed in self.choices.items():
            properties[name] = {"type": "string", "enum": allowed} if allowed else {"type": "string"}
        return {
            "type": "object",
            "properties": properties,
            "required": [name for name, allowed in self.choices.items() if allowed],
            "additionalProperties": False,
        }

    @cached_property
    def _validator(self) -> jsonschema.Draft202012Validator:
        return jsonschema.Draft202012Validator(self.json_schema())

    def check_call(self, call: Call) -> str | None:
        """Why `call` does not fit this skill, or None when it does."""
        if call.name != self.name:
            return f"call to {call.name}() in the file of skill {self.name}"
        error = jsonschema.exceptions.best_match(self._validator.iter_errors(call.arguments))
        if error is None:
            return None
        where = ".".join(str(part) for part in error.absolute_path)
        return f"{call.to_python()} does not fit {self.signature}: {where + ': ' if where else ''}{error.message}"

    def short_signature(self) -> str:
        """`notes(action="add"|"list", note)`: what the system prompt shows the model."""
        parts = []
        for name, allowed in self.choices.items():
            parts.append(f"{name}=" + "|".join(f'"{value}"' for value in allowed) if allowed else name)
        return f"{self.name}({', '.join(parts)})"


def _parse_signature(text: str, path: Path, line: int) -> tuple[str, dict[str, list[str]]]:
    try:
        call = parse_call(text)
    except CallSyntaxError as err:
        raise SkillFileError(path, line, f"signature {text!r}: {err}") from None
    choices = {}
    for name, value in call.arguments.items():
        if not isinstance(value, str):
            raise SkillFileError(path, line, f"parameter {name!r}: expected \"[slot]\" or \"a|b\", got {value!r}")
        if value.startswith("[") and value.endswith("]"):
            choices[name] = []
        else:
            options = value.split("|")
            if len(options) < 2 or not all(options):
                raise SkillFileError(path, line, f"parameter {name!r}: expected \"[slot]\" or \"a|b\", got {value!r}")
            choices[name] = options
    return call.name, choices


def parse_skill_file(path: Path | str) -> Skill:
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise SkillFileError(path, 1, f"not UTF-8 text ({err.reason})") from None

    section = None
    sections_seen: list[str] = []
    prompt_lines: list[tuple[int, str]] = []
    pending_user: tuple[int, str] | None = None
    examples: list[Example] = []
    skill: Skill | None = None

    def finish_prompt(at_line: int) -> Skill:
        if not prompt_lines:
            raise SkillFileError(path, at_line, f"{PROMPT_HEADER} has no signature line")
        sig_line, signature = prompt_lines[0]
        name, choices = _parse_signature(signature, path, sig_line)
        description = " ".join(text for _, text in prompt_lines[1:])
        return Skill(name, signature, description, choices, path=str(path))

    for number, raw in enumerate(lines, 1):
        text = raw.strip()
        if not text:
            continue
        if text.startswith("####"):
            if text not in SECTION_ORDER:
                raise SkillFileError(path, number, f"unknown header {text!r}; expected one of {', '.join(SECTION_ORDER)}")
            if text in sections_seen:
                raise SkillFileError(path, number, f"{text} appears twice")
            expected = SECTION_ORDER[len(sections_seen)]
            if text != expected and not (text == EXAMPLES_HEADER and expected == PROMPT_EXAMPLES_HEADER):
                raise SkillFileError(path, number, f"{text} before {expected}")
            if pending_user:
                raise SkillFileError(path, pending_user[0], "### User: line has no ### Assistant: line after it")
            if section == PROMPT_HEADER:
                skill = finish_prompt(number)
            sections_seen.append(text)
            section = text
            continue
        if section is None:
            raise SkillFileError(path, number, f"text before {PROMPT_HEADER}: {text[:60]!r}")
        if section == PROMPT_HEADER:
            prompt_lines.append((number, text))
            continue
        # example sections: strictly `### User:` then `### Assistant:`
        if text.startswith(USER_PREFIX):
            if pending_user:
                raise SkillFileError(path, pending_user[0], "### User: line has no ### Assistant: line after it")
            utterance = text[len(USER_PREFIX):].strip()
            if not utterance:
                raise SkillFileError(path, number, "empty ### User: line")
            pending_user = (number, utterance)
        elif text.startswith(ASSISTANT_PREFIX):
            if not pending_user:
                raise SkillFileError(path, number, "### Assistant: line without a ### User: line before it")
            try:
                call = parse_call(text[len(ASSISTANT_PREFIX):])
            except CallSyntaxError as err:
                raise SkillFileError(path, number, str(err)) from None
            problem = skill.check_call(call)
            if problem:
                raise SkillFileError(path, number, problem)
            examples.append(Example(pending_user[1], call, pending_user[0], section == PROMPT_EXAMPLES_HEADER))
            pending_user = None
        else:
            hint = " (write '### User:' / '### Assistant:')" if text.lstrip("# ").split(":")[0] in ("User", "Assistant") else ""
            raise SkillFileError(path, number, f"unexpected line in {section[5:-1]}{hint}: {text[:60]!r}")

    end = len(lines) or 1
    if pending_user:
        raise SkillFileError(path, pending_user[0], "### User: line has no ### Assistant: line after it")
    if section is None:
        raise SkillFileError(path, end, f"no {PROMPT_HEADER} section")
    if section == PROMPT_HEADER:
        skill = finish_prompt(end)
    if not examples:
        raise SkillFileError(path, end, "no examples: add ### User: / ### Assistant: pairs under #### Examples:")
    skill.examples = examples
    return skill


def load_pack(directory: Path | str) -> list[Skill]:
    """Every `*.txt` in `directory`, sorted by file name; skill names must be unique."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such skill pack directory")
    paths = sorted(directory.glob("*.txt"))
    if not paths:
        raise FileNotFoundError(f"{directory}: no *.txt skill files")
    skills: list[Skill] = []
    first_seen: dict[str, str] = {}
    for path in paths:
        skill = parse_skill_file(path)
        if skill.name in first_seen:
            raise SkillFileError(path, 1, f"skill {skill.name} is already defined in {first_seen[skill.name]}")
        first_seen[skill.name] = str(path)
        skills.append(skill)
    return skills


