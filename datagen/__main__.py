"""skilltune datagen: skill packs to validated Axolotl chat records.

    python -m datagen check examples/skills
    python -m datagen skills --pack examples/skills --out data/skills --seed 0
    python -m datagen validate data/skills/train.jsonl
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from datagen.expand import sample_per_skill
from datagen.jsonio import DataError
from datagen.render import system_prompt
from datagen.skills import SkillFileError, load_pack
from datagen.split import SPLITS, dedup_across_skills, shared_utterances, split_pairs, validate_records, write_dataset


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _load_pack_or_fail(pack: Path):
    try:
        return load_pack(pack)
    except (SkillFileError, FileNotFoundError) as err:
        _fail(str(err))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Make training data for function calling from a skill pack."""


@cli.command()
@click.argument("pack", type=click.Path(path_type=Path), default=Path("examples/skills"))
def check(pack: Path) -> None:
    """Parse every skill file in PACK strictly; print one line per skill.

    \b
    Example:
      python -m datagen check examples/skills
    """
    skills = _load_pack_or_fail(pack)
    for skill in skills:
        prompt_examples = sum(example.in_prompt for example in skill.examples)
        click.echo(
            f"{skill.name:<10} {skill.short_signature():<40} "
            f"{len(skill.examples) - prompt_examples} examples, {prompt_examples} prompt examples"
        )
    click.echo(f"{pack}: {len(skills)} skills OK")


@cli.command()
@click.option("--pack", type=click.Path(path_type=Path), default=Path("examples/skills"), show_default=True,
              help="Folder of skill files.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Dataset folder to (re)write.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--per-skill", type=click.IntRange(min=1), default=100, show_default=True,
              help="Records per skill before splitting (fewer when a skill cannot make that many).")
@click.option("--val-fraction", type=click.FloatRange(0, 0.5), default=0.1, show_default=True)
@click.option("--test-fraction", type=click.FloatRange(0, 0.5), default=0.1, show_default=True)
def skills(pack: Path, out: Path, seed: int, per_skill: int, val_fraction: float, test_fraction: float) -> None:
    """Expand PACK into train/val/test chat records with a manifest.

    \b
    Example:
      python -m datagen skills --pack examples/skills --out data/skills --seed 0 --per-skill 100
    """
    skill_list = _load_pack_or_fail(pack)
    sampled = sample_per_skill(skill_list, per_skill, seed)
    deduped, n_ambiguous = dedup_across_skills(sampled)
    if n_ambiguous:
        click.echo(f"warning: dropped {n_ambiguous} utterances that two skills claim with different calls", err=True)
    splits = split_pairs(deduped, seed, val_fraction, test_fraction)
    manifest = write_dataset(
        out,
        splits,
        system_prompt(skill_list),
        {
            "generator": "datagen skills",
            "seed": seed,
            "style": "python",
            "source": str(pack),
            "options": {"per_skill": per_skill, "val_fraction": val_fraction, "test_fraction": test_fraction},
        },
    )
    totals = {split: sum(manifest["counts"][split].values()) for split in SPLITS}
    click.echo(f"wrote {out}: " + ", ".join(f"{split} {n}" for split, n in totals.items()))


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def validate(files: tuple[Path, ...]) -> None:
    """Check record JSONL FILES against the record schema and style rules; fail on the first bad line.

    Given several files, also fails when one normalized utterance is in two of them (split leakage).

    \b
    Example:
      python -m datagen validate data/skills/train.jsonl data/skills/val.jsonl data/skills/test.jsonl
    """
    try:
        for path in files:
            click.echo(f"{path}: {validate_records(path)} records OK")
        if len(files) > 1:
            leaked = shared_utterances(list(files))
            if leaked:
                _fail(f"{len(leaked)} utterances appear in more than one file, e.g. {sorted(leaked)[0]!r}")
    except DataError as err:
        _fail(str(err))


if __name__ == "__main__":
    cli(prog_name="python -m datagen")
