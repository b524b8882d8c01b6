"""`datagen llm` and `datagen merge-review`: new (utterance, call) pairs from an LLM behind an
OpenAI-compatible API, and reviewed pairs merged back into the pack (datagen/llm.py says how a
run can be trusted and resumed; datagen/review.py how review files work)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import click

from datagen.llm import Generator, Settings
from datagen.review import merge_review
from skilltune.cli import OneLineErrors, fail
from skilltune.jsonio import DataError
from skilltune.openai_api import EndpointError, base_url_problem
from skilltune.skills import Skill, SkillFileError, load_pack


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


class Seconds(click.ParamType):
    """A finite number of seconds more than 0 (click's FloatRange lets inf and nan through)."""

    name = "seconds"

    def convert(self, value, param, ctx):
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            seconds = math.nan
        if not (math.isfinite(seconds) and seconds > 0):
            self.fail(f"{value} is not a number of seconds more than 0", param, ctx)
        return seconds


def _folder_problem(path: Path, what: str) -> str | None:
    """Why files cannot be made at `path` (or inside it, for a folder): an existing ancestor
    that is not a folder. Nothing is created."""
    for ancestor in path.parents:
        if ancestor.exists():
            return None if ancestor.is_dir() else f"{what} {path}: {ancestor} is not a folder"
    return None


def _check_options(s: Settings) -> None:
    if not s.base_url:
        fail("--base-url is required (or set OPENAI_BASE_URL)")
    problem = base_url_problem(s.base_url)
    if problem:
        fail(problem)
    if s.judge_base_url is not None:
        if not s.judge_model:
            fail("--judge-base-url needs --judge-model")
        problem = base_url_problem(s.judge_base_url)
        if problem:
            fail(problem.replace("--base-url", "--judge-base-url", 1))
    if not s.model:
        fail("--model is required")
    if not s.out and not s.review:
        fail("give --out FILE.jsonl and/or --review DIR")
    if s.out and s.rejects.resolve() == s.out.resolve():
        fail("--rejects and --out must be different files")
    if s.review and s.review.resolve() == s.pack.resolve():  # review files are named like the skill files
        fail(
            f"--review {s.review}: is the skill pack; its skill files would be overwritten (merge-review adds "
            "reviewed examples to the pack)"
        )
    for what, path in (("--out", s.out), ("--rejects", s.rejects), ("--review", s.review), ("--cache", s.cache)):
        problem = path and _folder_problem(path, what)
        if problem:
            fail(problem)


def _select(pack: list[Skill], names: list[str] | None) -> list[Skill]:
    if names is None:
        return pack
    known = {skill.name for skill in pack}
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        missing = ", ".join(unknown) or "(empty)"
        fail(f"--skills: no skill named {missing} in the pack (it has {', '.join(sorted(known))})")
    return [skill for skill in pack if skill.name in names]


@click.command(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--pack",
    type=click.Path(path_type=Path),
    default=Path("examples/skills"),
    show_default=True,
    help="Folder of skill files.",
)
@click.option(
    "--base-url",
    envvar="OPENAI_BASE_URL",
    help="OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1 "
    "[env OPENAI_BASE_URL]. The key comes from OPENAI_API_KEY only.",
)
@click.option("--model", help="Model name the server knows.")
@click.option(
    "--per-skill", type=click.IntRange(min=1), default=50, show_default=True, help="Accepted pairs wanted per skill."
)
@click.option(
    "--batch", type=click.IntRange(min=1), default=10, show_default=True, help="Pairs asked for in one request."
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Accepted pairs (JSONL, append-only).")
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Rejected candidates with reasons [default: <out>.rejects.jsonl].",
)
@click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".cache/llm"),
    show_default=True,
    help="One file per answered request; cached requests are not sent again.",
)
@click.option(
    "--concurrency", type=click.IntRange(min=1), default=8, show_default=True, help="Requests in flight at most."
)
@click.option(
    "--max-retries",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Client retries on 429/5xx/timeouts.",
)
@click.option("--timeout", type=Seconds(), default=60.0, show_default=True, help="Seconds per request attempt.")
@click.option("--seed", type=int, default=0, show_default=True, help="Varies the prompts; sent as the API's seed.")
@click.option(
    "--review",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write the pairs as skill files DIR/<skill>.txt to edit and merge-review.",
)
@click.option("--skills", "skill_names", help="Only these skills, comma-separated (default: all).")
@click.option(
    "--judge-model",
    help="Also ask this model, per pair that passed the checks, whether the call answers the request "
    "(yes/no; anything else is a reject). Its answers are cached under --cache too.",
)
@click.option(
    "--judge-base-url",
    help="OpenAI-compatible API of the judge [default: --base-url]; the key comes from OPENAI_API_KEY.",
)
def llm_command(
    pack,
    base_url,
    model,
    per_skill,
    batch,
    out,
    rejects,
    cache,
    concurrency,
    max_retries,
    timeout,
    seed,
    review,
    skill_names,
    judge_model,
    judge_base_url,
) -> None:
    """Generate new (utterance, call) pairs per skill with an LLM behind an OpenAI-compatible API.

    \b
    Example:
      OPENAI_API_KEY=... python -m datagen llm --base-url https://api.openai.com/v1 \\
          --model gpt-4o-mini --per-skill 50 --out data/llm/pairs.jsonl
    """
    names = [name.strip() for name in skill_names.split(",") if name.strip()] if skill_names is not None else None
    if rejects is None and (out or review):
        rejects = Path(f"{out}.rejects.jsonl") if out else review / "rejects.jsonl"
    settings = Settings(
        pack=pack,
        base_url=base_url,
        model=model,
        per_skill=per_skill,
        batch=batch,
        out=out,
        rejects=rejects,
        cache=cache,
        concurrency=concurrency,
        max_retries=max_retries,
        timeout=timeout,
        seed=seed,
        review=review,
        skills=names,
        judge_model=judge_model,
        judge_base_url=judge_base_url,
    )
    _check_options(settings)
    try:
        skills = load_pack(pack)
    except (SkillFileError, FileNotFoundError) as err:
        fail(str(err))
    generator = Generator(settings, skills, _select(skills, names), warn)
    try:
        stats = asyncio.run(generator.run())
    except (EndpointError, DataError, OSError) as err:
        fail(str(err))
    if generator.nothing_accepted():
        fail(generator.nothing_accepted())
    for line in generator.shortfalls():
        warn(line)
    written = ", ".join(str(path) for path in (out, review) if path)
    # the most frequent reasons first, so a model that keeps making the same mistake shows at once
    reasons = ", ".join(f"{count} {kind}" for kind, count in stats.reasons.most_common())
    judge = f"; judge: {stats.judge.requests} requests, {stats.judge.cache_hits} cache hits" if judge_model else ""
    click.echo(
        f"llm: {stats.requests} requests, {stats.cache_hits} cache hits, {stats.accepted} accepted, "
        f"{stats.rejected} rejected{f' [{reasons}]' if reasons else ''} ({stats.resumed} pairs were already there)"
        f"{judge} -> {written}"
    )


@click.command(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("review_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--pack",
    type=click.Path(path_type=Path),
    default=Path("examples/skills"),
    show_default=True,
    help="Skill pack to add the reviewed examples to.",
)
def merge_review_command(review_dir: Path, pack: Path) -> None:
    """Add the examples of reviewed skill files in REVIEW_DIR to the matching skill files of the pack.

    Every review file must parse strictly (errors name file:line); examples whose normalized
    utterance the pack already has are skipped; each pack file is replaced atomically.

    \b
    Example:
      python -m datagen merge-review review/ --pack examples/skills
    """
    try:
        merged = merge_review(review_dir, pack)
    except (SkillFileError, FileNotFoundError) as err:
        fail(str(err))
    for path, added, skipped in merged:
        click.echo(f"{path}: +{added} examples ({skipped} already in the pack)")
    click.echo(f"merge-review: {sum(added for _, added, _ in merged)} examples added to {pack}")
