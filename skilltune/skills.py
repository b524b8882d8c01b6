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

    #### Test Examples:
    ### User: could you jot down "call the plumber"
    ### Assistant: notes(action="add", note="call the plumber")

`#### Test Examples:` (optional, last) holds pairs that never reach train or val: requests in other
people's wording, written by the pack's author, scored as the held-out-wording test split.

The signature's values declare each parameter; square brackets make it optional:

    "[slot]"  "<slot>"           optional / required free string (the slot name is documentation)
    "a|b"     "[a|b]"            required / optional choice
    "[slot:int]"  "<slot:float>" typed: str, int, float or bool
    "[a|b=a]"  "[slot:int=5]"    an optional parameter with its default
    5   0.5   True               shorthand for an optional int / float / bool with that default

Every other non-blank line, an unknown header, a
`User:` without `### `, a User without its Assistant, or an Assistant call that does not parse or
does not fit the signature is a SkillFileError naming file and line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import jsonschema

from skilltune.calls import Call, CallSyntaxError, parse_call
from skilltune.jsonio import DataError, read_text

PROMPT_HEADER = "#### Prompt:"
PROMPT_EXAMPLES_HEADER = "#### Prompt Examples:"
EXAMPLES_HEADER = "#### Examples:"
TEST_EXAMPLES_HEADER = "#### Test Examples:"
SECTION_ORDER = (PROMPT_HEADER, PROMPT_EXAMPLES_HEADER, EXAMPLES_HEADER, TEST_EXAMPLES_HEADER)
OPTIONAL_SECTIONS = (PROMPT_EXAMPLES_HEADER, TEST_EXAMPLES_HEADER)
USER_PREFIX = "### User:"
ASSISTANT_PREFIX = "### Assistant:"


class SkillFileError(ValueError):
    """A skill file breaks the format; str() is `path:line: reason`."""

    def __init__(self, path: Path | str, line: int, reason: str):
        self.path, self.line, self.reason = str(path), line, reason
        super().__init__(f"{path}:{line}: {reason}" if line else f"{path}: {reason}")


@dataclass(frozen=True)
class Example:
    user: str
    call: Call
    line: int  # line of the User turn, for error messages further down the pipeline
    in_prompt: bool  # from `#### Prompt Examples:` (few-shot) rather than `#### Examples:`


TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
SHORT_TYPES = {schema_type: short for short, schema_type in TYPES.items()}
NO_DEFAULT = object()


@dataclass(frozen=True)
class Param:
    """One parameter of a skill signature."""

    type: str  # JSON Schema type: string, integer, number or boolean (and array, for BFCL's functions)
    required: bool
    enum: tuple = ()  # the allowed values of a choice
    default: object = NO_DEFAULT
    items: str = ""  # an array's item type, one of the scalars (packs have no arrays; BFCL functions do)

    @property
    def free_string(self) -> bool:
        """A slot whose value is copied from the utterance (and may be swapped between examples)."""
        return self.type == "string" and not self.enum

    def schema(self) -> dict:
        schema = {"type": self.type}
        if self.items:
            schema["items"] = {"type": self.items}
        if self.enum:
            schema["enum"] = list(self.enum)
        if self.default is not NO_DEFAULT:
            schema["default"] = self.default
        return schema

    def short(self, name: str) -> str:
        """How the system prompt shows it: `note`, `action="add"|"list"`, `minutes:int=5`."""
        if self.enum:
            text = f"{name}=" + "|".join(f'"{value}"' for value in self.enum)
        elif self.type == "string":
            text = name
        else:
            text = f"{name}:{SHORT_TYPES[self.type]}"
        if self.default is not NO_DEFAULT:
            text += f" (default {json.dumps(self.default)})"
        return text


@dataclass
class Skill:
    name: str
    signature: str
    description: str
    params: dict[str, Param]
    examples: list[Example] = field(default_factory=list)  # training examples (prompt examples too)
    path: str = ""
    test_examples: list[Example] = field(default_factory=list)  # held-out wording: never trained on

    @property
    def parameters(self) -> list[str]:
        return list(self.params)

    def json_schema(self) -> dict:
        """JSON Schema of the call's arguments: types, enums, defaults, required ones, nothing else."""
        return {
            "type": "object",
            "properties": {name: param.schema() for name, param in self.params.items()},
            "required": [name for name, param in self.params.items() if param.required],
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
        return f"{self.name}({', '.join(param.short(name) for name, param in self.params.items())})"


SIGNATURE_FORMS = '"[slot]", "<slot>", "a|b", "[a|b]", "[slot:int]", "[slot:int=5]" or a default such as 5'


def _parse_param(value) -> Param:
    """A signature value as a Param; ValueError says what is wrong with it."""
    if isinstance(value, bool):
        return Param("boolean", required=False, default=value)
    if isinstance(value, int):
        return Param("integer", required=False, default=value)
    if isinstance(value, float):
        return Param("number", required=False, default=value)
    if not isinstance(value, str):
        raise ValueError(f"expected {SIGNATURE_FORMS}, got {value!r}")
    optional = value.startswith("[") and value.endswith("]")
    required_slot = value.startswith("<") and value.endswith(">")
    body = value[1:-1] if optional or required_slot else value
    spec, has_default, default_text = body.partition("=")
    if has_default and not optional:
        raise ValueError(f"only an optional parameter (in square brackets) can have a default: {value!r}")
    if "|" in spec:
        options = spec.split("|")
        if required_slot or len(options) < 2 or not all(options):
            raise ValueError(f"expected {SIGNATURE_FORMS}, got {value!r}")
        if has_default and default_text not in options:
            raise ValueError(f"default {default_text!r} is not one of {options}")
        return Param(
            "string", required=not optional, enum=tuple(options), default=default_text if has_default else NO_DEFAULT
        )
    if not (optional or required_slot) or not spec:
        raise ValueError(f"expected {SIGNATURE_FORMS}, got {value!r}")
    slot, _, type_name = spec.partition(":")
    schema_type = TYPES.get(type_name or "str")
    if not slot or schema_type is None:
        raise ValueError(f"unknown type {type_name!r} in {value!r}; expected one of {', '.join(TYPES)}")
    param = Param(schema_type, required=required_slot)
    if has_default:
        param = Param(schema_type, required=False, default=_typed_default(default_text, schema_type, value))
    return param


def _typed_default(text: str, schema_type: str, value: str):
    try:
        if schema_type == "integer":
            return int(text)
        if schema_type == "number":
            return float(text)
    except ValueError:
        raise ValueError(f"default {text!r} in {value!r} is not of type {SHORT_TYPES[schema_type]}") from None
    if schema_type == "boolean":
        if text.lower() not in ("true", "false"):
            raise ValueError(f"default {text!r} in {value!r} is not true or false")
        return text.lower() == "true"
    return text


def _parse_signature(text: str, path: Path, line: int) -> tuple[str, dict[str, Param]]:
    try:
        call = parse_call(text)
    except CallSyntaxError as err:
        raise SkillFileError(path, line, f"signature {text!r}: {err}") from None
    params = {}
    for name, value in call.arguments.items():
        try:
            params[name] = _parse_param(value)
        except ValueError as err:
            raise SkillFileError(path, line, f"parameter {name!r}: {err}") from None
    return call.name, params


def parse_skill_file(path: Path | str) -> Skill:
    path = Path(path)
    try:
        lines = read_text(path).splitlines()
    except DataError as err:  # not UTF-8 (naming the line), a folder, a symlink loop
        raise SkillFileError(path, err.line, err.reason) from None

    section = None
    sections_seen: list[str] = []
    prompt_lines: list[tuple[int, str]] = []
    pending_user: tuple[int, str] | None = None
    examples: list[Example] = []
    test_examples: list[Example] = []
    skill: Skill | None = None

    def finish_prompt(at_line: int) -> Skill:
        if not prompt_lines:
            raise SkillFileError(path, at_line, f"{PROMPT_HEADER} has no signature line")
        sig_line, signature = prompt_lines[0]
        name, params = _parse_signature(signature, path, sig_line)
        description = " ".join(text for _, text in prompt_lines[1:])
        return Skill(name, signature, description, params, path=str(path))

    for number, raw in enumerate(lines, 1):
        text = raw.strip()
        if not text:
            continue
        if text.startswith("####"):
            if text not in SECTION_ORDER:
                raise SkillFileError(
                    path, number, f"unknown header {text!r}; expected one of {', '.join(SECTION_ORDER)}"
                )
            if text in sections_seen:
                raise SkillFileError(path, number, f"{text} appears twice")
            # sections come in SECTION_ORDER; only the optional ones may be skipped
            last = SECTION_ORDER.index(sections_seen[-1]) if sections_seen else -1
            skipped = SECTION_ORDER[last + 1 : SECTION_ORDER.index(text)]
            missing = next((header for header in skipped if header not in OPTIONAL_SECTIONS), None)
            if SECTION_ORDER.index(text) < last:
                raise SkillFileError(path, number, f"{text} after {sections_seen[-1]}")
            if missing:
                raise SkillFileError(path, number, f"{text} before {missing}")
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
            utterance = text[len(USER_PREFIX) :].strip()
            if not utterance:
                raise SkillFileError(path, number, "empty ### User: line")
            pending_user = (number, utterance)
        elif text.startswith(ASSISTANT_PREFIX):
            if not pending_user:
                raise SkillFileError(path, number, "### Assistant: line without a ### User: line before it")
            try:
                call = parse_call(text[len(ASSISTANT_PREFIX) :])
            except CallSyntaxError as err:
                raise SkillFileError(path, number, str(err)) from None
            problem = skill.check_call(call)
            if problem:
                raise SkillFileError(path, number, problem)
            example = Example(pending_user[1], call, pending_user[0], section == PROMPT_EXAMPLES_HEADER)
            (test_examples if section == TEST_EXAMPLES_HEADER else examples).append(example)
            pending_user = None
        else:
            hint = (
                " (write '### User:' / '### Assistant:')"
                if text.lstrip("# ").split(":")[0] in ("User", "Assistant")
                else ""
            )
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
    skill.examples, skill.test_examples = examples, test_examples
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
