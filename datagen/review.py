"""Review files: generated pairs written as skill files for a person to edit, and merged back.

    python -m datagen llm ... --review review/
    python -m datagen merge-review review/ --pack examples/skills

A review file is a skill file whose examples are the generated pairs; after editing, merge-review
appends the examples that are new to the pack (by normalized utterance) to the matching skill
files, each replaced atomically and only after every review file parsed and fits.
"""

from __future__ import annotations

import os
from pathlib import Path

from skilltune.jsonio import write_text
from skilltune.pairs import normalize
from skilltune.skills import (
    ASSISTANT_PREFIX,
    EXAMPLES_HEADER,
    PROMPT_HEADER,
    TEST_EXAMPLES_HEADER,
    USER_PREFIX,
    Skill,
    SkillFileError,
    load_pack,
    parse_skill_file,
)


def review_text(skill: Skill, pairs: list[dict]) -> str:
    """A skill file holding `pairs` as its examples, for a person to edit and merge-review."""
    lines = [PROMPT_HEADER, skill.signature]
    if skill.description:
        lines.append(skill.description)
    lines += ["", EXAMPLES_HEADER]
    for pair in pairs:
        lines += [f"{USER_PREFIX} {pair['user']}", f"{ASSISTANT_PREFIX} {pair['call']}"]
    return "\n".join(lines) + "\n"


def write_review(directory: Path, pairs_by_skill: list[tuple[Skill, list[dict]]]) -> None:
    """One review file DIR/<skill>.txt per skill, named like its skill file in the pack."""
    for skill, pairs in pairs_by_skill:
        write_text(directory / f"{skill.name}.txt", review_text(skill, pairs))


def merge_review(review_dir: Path, pack_dir: Path) -> list[tuple[Path, int, int]]:
    """Append reviewed examples new to the pack; (pack file, added, skipped) per review file.

    Every review file is parsed and checked before any pack file is touched; each pack file is
    rewritten through a temporary file that must parse, then renamed into place.
    """
    paths = sorted(Path(review_dir).glob("*.txt"))
    if not paths:
        raise FileNotFoundError(f"{review_dir}: no *.txt review files")
    reviewed = [parse_skill_file(path) for path in paths]
    pack = {skill.name: skill for skill in load_pack(pack_dir)}
    seen = {normalize(example.user) for skill in pack.values() for example in skill.examples}
    plan = []
    for review in reviewed:
        target = pack.get(review.name)
        if target is None:
            raise SkillFileError(review.path, 1, f"the pack {pack_dir} has no skill {review.name}")
        new = []
        for example in review.examples:
            problem = target.check_call(example.call)
            if problem:
                raise SkillFileError(review.path, example.line, f"does not fit {Path(target.path).name}: {problem}")
            if normalize(example.user) not in seen:
                seen.add(normalize(example.user))
                new.append(example)
        plan.append((target, new, len(review.examples) - len(new)))
    for target, new, _ in plan:
        if new:
            _append_examples(Path(target.path), new)
    return [(Path(target.path), len(new), skipped) for target, new, skipped in plan]


def _append_examples(path: Path, examples) -> None:
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text += "\n"
    lines = text.splitlines(keepends=True)
    # new pairs go at the end of `#### Examples:`, before `#### Test Examples:` (held out) if there is one
    end = next((i for i, line in enumerate(lines) if line.strip() == TEST_EXAMPLES_HEADER), len(lines))
    head, tail = "".join(lines[:end]), "".join(lines[end:])
    if not any(line.strip() == EXAMPLES_HEADER for line in lines):
        head += f"\n{EXAMPLES_HEADER}\n"
    head += "".join(f"{USER_PREFIX} {e.user}\n{ASSISTANT_PREFIX} {e.call.to_python()}\n" for e in examples)
    text = head + ("\n" + tail if tail else "")
    staging = path.with_name(f".{path.name}.merge")
    staging.write_text(text, encoding="utf-8")
    try:
        parse_skill_file(staging)  # never replace a pack file with one that does not parse
    except SkillFileError:
        staging.unlink()
        raise
    os.replace(staging, path)
