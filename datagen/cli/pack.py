"""`datagen check|skills|validate|stats`: a skill pack to checked training records, and their counts."""

from __future__ import annotations

from pathlib import Path

import click

from datagen.compound import add_compounds
from datagen.expand import generate_pairs, read_pair_files, shortfalls
from datagen.held_out import add_held_out, holdout_skill_names
from datagen.split import (
    RECORD_KINDS,
    SplitError,
    add_speech_noise,
    dedup_across_skills,
    shared_utterances,
    split_pairs,
    validate_records,
    write_dataset,
)
from datagen.variety import add_variety
from skilltune.cli import fail
from skilltune.jsonio import DataError
from skilltune.outputs import check_output_folder
from skilltune.records import STYLES, SYSTEM_PROMPTS, chat_record, prompt_for, tool_definitions
from skilltune.skills import SkillFileError, load_pack


def _load_pack_or_fail(pack: Path):
    try:
        return load_pack(pack)
    except (SkillFileError, FileNotFoundError) as err:
        fail(str(err))


def split_fraction_options(command):
    """--val-fraction and --test-fraction, shared by skills and instructions (which splits the same way)."""
    for name in ("--test-fraction", "--val-fraction"):  # the last applied is listed first
        command = click.option(name, type=click.FloatRange(0, 0.5), default=0.1, show_default=True)(command)
    return command


def echo_split_totals(out: Path, manifest: dict) -> None:
    """`wrote OUT: train N, val N, ...`: the records per split of a dataset folder just written."""
    totals = {split: sum(counts.values()) for split, counts in manifest["counts"].items()}
    click.echo(f"wrote {out}: " + ", ".join(f"{split} {n}" for split, n in totals.items()))


@click.command()
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


@click.command()
@click.option(
    "--pack",
    type=click.Path(path_type=Path),
    default=Path("examples/skills"),
    show_default=True,
    help="Folder of skill files.",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Dataset folder to (re)write.")
@click.option(
    "--n",
    "total",
    type=click.IntRange(min=10),
    default=1000,
    show_default=True,
    help="Records in all splits together, balanced over the skills.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed and pack: byte-identical files.")
@click.option(
    "--negatives",
    type=click.FloatRange(0, 0.9),
    default=0.1,
    show_default=True,
    help="Share of other() (not a skill request) records.",
)
@click.option(
    "--noise",
    type=click.FloatRange(0, 1),
    default=0.3,
    show_default=True,
    help="Share of train/val records given speech-transcript noise; test_noisy.jsonl is all noisy.",
)
@click.option(
    "--variety",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of train/val records rewritten as people type: a value quoted or recased, the skill named.",
)
@click.option(
    "--compound",
    type=click.FloatRange(0, 0.5),
    default=0.0,
    show_default=True,
    help="Share of train/val/test records asking for two skills at once, answered with two calls "
    "(test_noisy gains their noisy copies).",
)
@click.option(
    "--style",
    type=click.Choice(STYLES),
    default="python",
    show_default=True,
    help="Answer style: python call text, JSON function_call, or OpenAI tool_calls + tools column.",
)
@click.option(
    "--system",
    type=click.Choice(SYSTEM_PROMPTS),
    default="names",
    show_default=True,
    help="System prompt of each record: one line naming the skills, each skill's signature and "
    "one-line description (what a model needs for skills it never trained on), or none.",
)
@click.option("--no-system", is_flag=True, help="The same as --system none.")
@click.option(
    "--holdout-skills",
    default="",
    metavar="A,B",
    help="Keep these skills out of train, val and test; write all their records to test_unseen.jsonl, "
    "whose prompts list every skill (use with --system signatures).",
)
@click.option(
    "--pairs",
    "pair_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Pairs from `datagen llm` (JSONL) to use beside the pack's examples; repeatable.",
)
@split_fraction_options
def skills(
    pack: Path,
    out: Path,
    total: int,
    seed: int,
    negatives: float,
    noise: float,
    variety: float,
    compound: float,
    style: str,
    system: str,
    no_system: bool,
    holdout_skills: str,
    pair_files: tuple[Path, ...],
    val_fraction: float,
    test_fraction: float,
) -> None:
    """Expand PACK into train/val/test(+test_noisy) chat records with a manifest.

    Each skill's `#### Test Examples:` go to test_wording.jsonl (held-out wording), never to training.

    \b
    Example:
      python -m datagen skills --pack examples/skills --out data/skills --n 1000 --seed 0
    """
    inputs = (pack, *pair_files)
    try:
        check_output_folder(out, inputs)
    except DataError as err:
        fail(str(err))
    skill_list = _load_pack_or_fail(pack)
    system = "none" if no_system else system
    try:
        held_out = holdout_skill_names(holdout_skills, skill_list)
    except ValueError as err:
        fail(f"{pack}: {err}")
    try:
        extra = read_pair_files(pair_files, skill_list)
    except DataError as err:
        fail(str(err))
    pairs = generate_pairs(skill_list, total, negatives, seed, extra)
    short = shortfalls(pairs, skill_list, total, negatives)
    if short:  # a smaller share of some skills would skew the mix the options ask for
        made = sum(map(len, pairs.values()))
        fail(
            f"{pack}: --n {total} cannot be met: the pack gives {'; '.join(short[:4])}"
            f"{f' (and {len(short) - 4} more)' if len(short) > 4 else ''} distinct records "
            f"({made} in all); lower --n or add examples"
        )
    deduped, n_ambiguous = dedup_across_skills(pairs)
    if n_ambiguous:
        click.echo(f"warning: dropped {n_ambiguous} utterances that two skills claim with different calls", err=True)
    unseen_pairs = {name: deduped.pop(name) for name in held_out}
    try:
        splits = add_speech_noise(split_pairs(deduped, seed, val_fraction, test_fraction), noise, seed)
    except SplitError as err:
        fail(f"{pack}: {err}")
    splits = add_variety(add_held_out(splits, skill_list, held_out, unseen_pairs), variety, seed, skill_list)
    splits = add_compounds(splits, compound, seed)  # after held-out wording left: no part of a compound is held out
    # a held-out skill is shown only in the prompts of its own test records
    trained = [skill for skill in skill_list if skill.name not in held_out]
    prompts = {False: prompt_for(system, trained), True: prompt_for(system, skill_list)}
    tools = {False: tool_definitions(trained), True: tool_definitions(skill_list)} if style == "tools" else None

    def render(pair):
        unseen = pair.call.name in held_out
        return chat_record(prompts[unseen], pair.user, pair.calls, style, tools[unseen] if tools else None)

    manifest_info = {
        "generator": "datagen skills",
        "seed": seed,
        "style": style,
        "source": str(pack),
        "options": {
            "n": total,
            "negatives": negatives,
            "noise": noise,
            "variety": variety,
            "compound": compound,
            "system": system,
            "holdout_skills": sorted(held_out),
            "pairs": [str(path) for path in pair_files],
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
        },
    }
    try:
        manifest = write_dataset(out, splits, render, manifest_info, inputs)
    except (DataError, OSError) as err:
        fail(str(err))
    echo_split_totals(out, manifest)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--kind",
    type=click.Choice(["auto", *RECORD_KINDS]),
    default="auto",
    show_default=True,
    help="skills: every answer is a call; chat: free-text answers; auto: from the folder's manifest.json",
)
def validate(files: tuple[Path, ...], kind: str) -> None:
    """Check record JSONL FILES against the record schema and style rules; fail on the first bad line.

    Skill records must answer with a call; chat records (documents, conversations, instruction
    pairs: manifest style "chat") with alternating user/assistant turns ending in an answer.
    Given several files, also fails when one normalized utterance is in two of them (split leakage).

    \b
    Example:
      python -m datagen validate data/skills/train.jsonl data/skills/val.jsonl data/skills/test.jsonl
    """
    try:
        for path in files:
            click.echo(f"{path}: {validate_records(path, None if kind == 'auto' else kind)} records OK")
        if len(files) > 1:
            leaked = shared_utterances(list(files))
            if leaked:
                fail(f"{len(leaked)} utterances appear in more than one file, e.g. {sorted(leaked)[0]!r}")
    except DataError as err:
        fail(str(err))


@click.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--tokenizer",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Local tokenizer folder (e.g. models/SmolLM2-135M-Instruct) to count tokens with.",
)
@click.option("--sequence-len", type=click.IntRange(min=1), default=None, help="Flag records longer than this.")
@click.option(
    "--histogram",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Save a token-length histogram PNG here (needs --tokenizer).",
)
def stats(folder: Path, tokenizer: Path | None, sequence_len: int | None, histogram: Path | None) -> None:
    """Records per skill and split in FOLDER; token lengths with --tokenizer.

    \b
    Example:
      python -m datagen stats data/skills --tokenizer models/SmolLM2-135M-Instruct --sequence-len 256 \\
          --histogram runs/lengths.png
    """
    from datagen.stats import dataset_stats, save_histogram

    if histogram and not tokenizer:
        fail("--histogram needs --tokenizer")
    loaded = None
    if tokenizer:
        from transformers import AutoTokenizer

        loaded = AutoTokenizer.from_pretrained(str(tokenizer))
    try:
        result = dataset_stats(folder, loaded, sequence_len)
    except DataError as err:
        fail(str(err))
    if not result:
        fail(f"{folder}: no *.jsonl files")
    skills = sorted({skill for entry in result.values() for skill in entry["per_skill"]})
    # one space more than the longest name, so names such as test_wording never run together
    name_width = max(len(name) for name in ["total", *skills]) + 1
    width = max(len(split) for split in result) + 1
    click.echo(f"{'skill':<{name_width}}" + "".join(f"{split:>{width}}" for split in result))
    for skill in skills:
        counts = "".join(f"{entry['per_skill'].get(skill, 0):>{width}}" for entry in result.values())
        click.echo(f"{skill:<{name_width}}{counts}")
    click.echo(f"{'total':<{name_width}}" + "".join(f"{entry['records']:>{width}}" for entry in result.values()))
    for split, entry in result.items():
        if "tokens" in entry:
            tokens = entry["tokens"]
            line = (
                f"{split}: tokens min {tokens['min']}, median {tokens['median']}, p95 {tokens['p95']}, "
                f"max {tokens['max']}, total {tokens['total']}"
            )
            if sequence_len:
                line += f"; {tokens['over_sequence_len']} over sequence_len {sequence_len}"
            click.echo(line)
    if histogram:
        save_histogram(result, sequence_len, histogram)
        click.echo(f"histogram: {histogram}")
