"""Instruction JSON pairs <-> skill records, both ways.

    python -m datagen instructions examples/instructions/pairs.jsonl --to chat --out data/instructions \\
        --style tools --pack examples/skills
    python -m datagen instructions data/skills --to instructions --out data/skills-pairs.jsonl

An instruction pair (skilltune/schemas/instruction.schema.json, checked on read and on write):

    {"instruction": "what's the weather in Oslo", "input": "",
     "output": {"function_call": {"name": "weather", "arguments": {"location": "Oslo"}}}}

--to chat makes skill records: the instruction (and the input after a blank line, when there is
one) is the user message, the call is the assistant's answer in the --style of `datagen skills`.
These are skill records, not free-text chat: the manifest's style is the answer style, so
`datagen validate` parses every answer. With --pack every call must name one of its skills and fit
that skill's JSON Schema; without it the `tools` column is derived from the calls seen (argument
types from the values, required = present in every call of that function). Records are
deduplicated and split like `datagen skills` (stratified per function, no utterance in two splits).

--to instructions exports a skill dataset folder (or record files) back to pairs: the last user
message, split at its first blank line into instruction and input, and the answer's call. So
pairs -> chat -> pairs gives the same pairs back when no instruction holds a blank line itself.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from datagen.split import dedup_across_skills, record_kind, split_pairs, write_dataset
from skilltune.calls import NO_CALL_NAME, Call, CallSyntaxError, call_to_json
from skilltune.jsonio import DataError, iter_jsonl, write_jsonl
from skilltune.outputs import check_output_file, check_output_folder
from skilltune.pairs import Pair, normalize
from skilltune.records import answer_call, answer_message, chat_record, record_problem, system_prompt, tool_definitions
from skilltune.skills import Skill, load_pack

INPUT_SEPARATOR = "\n\n"


@dataclass
class InstructionSettings:
    """What `datagen instructions` was asked to do."""

    sources: tuple[Path, ...]  # --to chat: pair JSONL files; --to instructions: dataset folders or record files
    target: str  # "chat" or "instructions"
    out: Path
    style: str  # one of STYLES (--to chat)
    pack: Path | None  # the skill pack every call must fit; None: tools derived from the calls
    system: bool
    val_fraction: float
    test_fraction: float
    seed: int
    splits: list[str]  # --to instructions: which <split>.jsonl of a dataset folder to export


def request_text(row: dict) -> str:
    """The user message of a pair: the instruction, then its input after a blank line."""
    return row["instruction"] + (INPUT_SEPARATOR + row["input"] if row.get("input") else "")


def _same_call(a: Call, b: Call) -> bool:
    # JSON text, not ==: True == 1 and 1 == 1.0 in Python, but they are different answers
    return (a.name, json.dumps(a.arguments, sort_keys=True)) == (b.name, json.dumps(b.arguments, sort_keys=True))


def style_problem(call: Call, style: str) -> str | None:
    """Why `call` would not read back unchanged from an answer in `style`, or None."""
    try:
        back = answer_call(answer_message(call, style))
    except CallSyntaxError as err:
        return f"cannot be written as a {style} answer: {err}"
    if not _same_call(back, call):
        return f"a {style} answer reads back as {back.to_python()}"
    return None


def read_instruction_pairs(paths, skills: list[Skill] | None, style: str) -> list[Pair]:
    """Pairs from instruction JSONL files, in file order; any bad line is a DataError naming it."""
    by_name = {skill.name: skill for skill in skills} if skills is not None else None
    pairs = []
    for path in paths:
        for number, row in iter_jsonl(path, "instruction"):
            function = row["output"]["function_call"]
            call = Call(function["name"], function["arguments"])
            if by_name is not None:
                skill = by_name.get(call.name)
                if skill is None:
                    raise DataError(
                        path,
                        number,
                        f"function {call.name!r} is not a skill of the pack ({', '.join(sorted(by_name))})",
                    )
                problem = skill.check_call(call)
            else:
                problem = None
            problem = problem or style_problem(call, style)
            if problem:
                raise DataError(path, number, problem)
            user = request_text(row)
            pairs.append(Pair(user, call, normalize(user)))
    return pairs


def _json_type(value) -> str:
    if isinstance(value, bool):  # before int: bool is an int in Python
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object", type(None): "null"}[type(value)]


def derived_tools(calls: list[Call]) -> list[dict]:
    """A `tools` column from the calls themselves, when no skill pack describes the functions.

    Each argument's type is the JSON type of its values (several types: a list of them; integer
    and number together: number), and it is required when every call of that function gives it.
    """
    seen: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        seen[call.name].append(call)
    tools = []
    for name in sorted(seen):
        types: dict[str, set[str]] = {}
        for call in seen[name]:
            for argument, value in call.arguments.items():
                types.setdefault(argument, set()).add(_json_type(value))
        properties = {}
        for argument, kinds in types.items():
            if {"integer", "number"} <= kinds:
                kinds = kinds - {"integer"}
            properties[argument] = {"type": kinds.pop() if len(kinds) == 1 else sorted(kinds)}
        required = [argument for argument in types if all(argument in call.arguments for call in seen[name])]
        parameters = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
        tools.append({"type": "function", "function": {"name": name, "parameters": parameters}})
    return tools


def derived_prompt(names: list[str]) -> str:
    """The one-line system prompt of `datagen skills` for functions known only by name."""
    listed = [name for name in sorted(names) if name != NO_CALL_NAME]
    text = f"Answer with one function call: {', '.join(listed)}"
    return text + (f", or {NO_CALL_NAME}()." if NO_CALL_NAME in names else ".")


def _split(kept: dict[str, list[Pair]], settings: InstructionSettings) -> dict[str, list[Pair]]:
    if settings.val_fraction or settings.test_fraction:
        return split_pairs(kept, settings.seed, settings.val_fraction, settings.test_fraction)
    # split_pairs gives each function at least one val and test record; zero means none
    return {"train": [pair for function in sorted(kept) for pair in kept[function]]}


def _prompt_and_tools(skills: list[Skill] | None, kept: dict[str, list[Pair]]) -> tuple[str, list[dict]]:
    if skills is not None:
        return system_prompt(skills), tool_definitions(skills)
    return derived_prompt(list(kept)), derived_tools([pair.call for group in kept.values() for pair in group])


def _chat_skills(settings: InstructionSettings) -> list[Skill] | None:
    """The pack's skills (None without --pack), once --out and the sources are known to do for --to chat."""
    check_output_folder(settings.out, (*settings.sources, *([settings.pack] if settings.pack else [])))
    folders = [source for source in settings.sources if source.is_dir()]
    if folders:
        raise DataError(folders[0], 0, "--to chat reads instruction pair .jsonl files, not folders")
    return load_pack(settings.pack) if settings.pack else None


def pairs_to_chat(settings: InstructionSettings) -> tuple[dict, int]:
    """--to chat: write the skill dataset folder; returns its manifest and how many repeated pairs
    were dropped. DataError, SkillFileError, SplitError or OSError when it cannot."""
    skills = _chat_skills(settings)
    pairs = read_instruction_pairs(settings.sources, skills, settings.style)
    if not pairs:
        raise DataError(", ".join(map(str, settings.sources)), 0, "no instruction pairs")
    by_function: dict[str, list[Pair]] = defaultdict(list)
    for pair in pairs:
        by_function[pair.call.name].append(pair)
    kept, _ = dedup_across_skills(by_function)
    dropped = len(pairs) - sum(map(len, kept.values()))
    prompt, tools = _prompt_and_tools(skills, kept)
    manifest = write_dataset(
        settings.out,
        _split(kept, settings),
        lambda pair: chat_record(
            prompt if settings.system else None,
            pair.user,
            pair.call,
            settings.style,
            tools if settings.style == "tools" else None,
        ),
        {
            "generator": "datagen instructions",
            "seed": settings.seed,
            "style": settings.style,
            "source": ", ".join(map(str, settings.sources)),
            "options": {
                "system": settings.system,
                "val_fraction": settings.val_fraction,
                "test_fraction": settings.test_fraction,
            },
        },
        inputs=tuple(settings.sources),
    )
    return manifest, dropped


def record_files(sources, splits: list[str]) -> list[Path]:
    """The record files to export: a folder gives its <split>.jsonl for each split it has."""
    files = []
    for source in sources:
        if source.is_dir():
            found = [source / f"{split}.jsonl" for split in splits if (source / f"{split}.jsonl").is_file()]
            if not found:
                raise DataError(source, 0, f"no {', '.join(f'{split}.jsonl' for split in splits)} in this folder")
            files += found
        else:
            files.append(source)
    return files


def records_to_pairs(path: Path) -> list[dict]:
    """Instruction pairs from a skill record file; a record that is not one request and its call is an error."""
    if record_kind(path) == "chat":
        raise DataError(
            path.with_name("manifest.json"),
            0,
            'style "chat": free-text answers, not function calls; nothing to export as instruction pairs',
        )
    rows = []
    for number, record in iter_jsonl(path, "record"):
        problem = record_problem(record)
        if problem:
            raise DataError(path, number, problem)
        turns = [message for message in record["messages"] if message["role"] != "system"]
        if len(turns) != 2:
            raise DataError(
                path, number, f"{len(turns) // 2} exchanges; an instruction pair holds one request and its call"
            )
        instruction, _, extra = turns[0]["content"].partition(INPUT_SEPARATOR)
        rows.append({"instruction": instruction, "input": extra, "output": call_to_json(answer_call(turns[1]))})
    return rows


def chat_to_pairs(settings: InstructionSettings) -> int:
    """--to instructions: write the pairs of the record files to settings.out; returns how many.
    DataError or OSError when it cannot."""
    files = record_files(settings.sources, settings.splits)
    check_output_file(settings.out, [*settings.sources, *files])
    rows = [row for path in files for row in records_to_pairs(path)]
    write_jsonl(settings.out, rows, "instruction")
    return len(rows)
