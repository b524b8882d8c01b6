"""`make check-config`: what a config will do with the data, before a GPU is rented.

    python -m skilltune.check_config configs/mistral.yml --pack examples/skills --style python

1. Axolotl validates the YAML as written.
2. Axolotl loads its tokenizer (the hub's files, a local folder or a stand-in).
3. One skill record, made from the pack, goes through Axolotl's own tokenization; the text is
   printed as the model sees it, with the trained tokens between « and » (what
   `axolotl preprocess --debug` shows as (label, id) pairs).
4. Whether the system prompt and the tool definitions reach the prompt (some templates drop them),
   and whether the end-of-turn token generation stops at is trained.
5. An estimate of the GPU memory a training step takes at the config's sizes (skilltune.memory).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from skilltune.axolotl_tokens import IGNORE, ConfigError, load_strategy, read_config, tokenization_config, validated
from skilltune.records import chat_record, system_prompt, tool_definitions
from skilltune.skills import load_pack
from skilltune.standins import STAMP

OPEN, CLOSE = "«", "»"


def sample_record(pack: Path, style: str) -> dict:
    skills = load_pack(pack)
    skill = next(skill for skill in skills if skill.examples)
    example = skill.examples[0]
    tools = tool_definitions(skills) if style == "tools" else None
    return chat_record(system_prompt(skills), example.user, example.call, style, tools)


def marked_text(tokenizer, input_ids: list[int], labels: list[int], color: bool = False) -> str:
    """The decoded tokens, each run of trained tokens wrapped in « » (green on a terminal)."""
    pieces, run, trained = [], [], None
    for token, label in zip(input_ids, labels):
        is_trained = label != IGNORE
        if trained is not None and is_trained != trained:
            pieces.append((trained, tokenizer.decode(run)))
            run = []
        run.append(token)
        trained = is_trained
    if run:
        pieces.append((trained, tokenizer.decode(run)))
    start, end = ("\033[32m" + OPEN, CLOSE + "\033[0m") if color else (OPEN, CLOSE)
    return "".join(f"{start}{text}{end}" if is_trained else text for is_trained, text in pieces)


def prompt_findings(tokenizer, record: dict, row: dict) -> list[str]:
    """What of the record reaches the untrained (prompt) part, and how the answer ends."""
    prompt = tokenizer.decode([token for token, label in zip(row["input_ids"], row["labels"]) if label == IGNORE])
    system = record["messages"][0]["content"]
    findings = [f"system prompt: {'in the prompt' if system.strip() in prompt else 'MISSING from the prompt'}"]
    if record.get("tools"):
        names = [tool["function"]["name"] for tool in record["tools"]]
        seen = [name for name in names if f'"{name}"' in prompt or f"'{name}'" in prompt]
        findings.append(
            f"tools: {len(seen)} of {len(names)} definitions in the prompt"
            + ("" if len(seen) == len(names) else " (the chat template drops tools)")
        )
    trained = [token for token, label in zip(row["input_ids"], row["labels"]) if label != IGNORE]
    eos = tokenizer.eos_token_id
    findings.append(
        f"end of turn: {tokenizer.eos_token} {'trained' if trained and trained[-1] == eos else 'NOT trained'}"
        f" ({len(trained)} trained tokens of {len(row['input_ids'])})"
    )
    return findings


def model_shapes(cfg) -> tuple[dict, str]:
    """The base model's config.json values, and where they come from (a stand-in names the real shapes)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(cfg.base_model)
    folder = Path(cfg.base_model)
    if not folder.is_dir():
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(cfg.base_model, "config.json")
        folder = Path(found).parent if isinstance(found, str) else folder
    if (folder / STAMP).exists():
        return json.loads((folder / STAMP).read_text())["real_shapes"], "the real model's shapes (stand-in loaded)"
    return config.to_dict(), "the model's config.json"


@click.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--pack",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("examples/skills"),
    show_default=True,
    help="skill pack the sample record is made from",
)
@click.option("--style", type=click.Choice(["python", "json", "tools"]), default="python", show_default=True)
def main(config: Path, pack: Path, style: str) -> None:
    """Validate CONFIG, render one record with its trained tokens marked, estimate GPU memory."""
    from skilltune.memory import estimate

    try:
        settings = read_config(config)
        validated(dict(settings), config)
        click.echo(f"{config}: passes Axolotl's validation (base_model {settings['base_model']})")
        cfg = tokenization_config(config)
        tokenizer, strategy = load_strategy(cfg)
    except ConfigError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    shapes, source = model_shapes(cfg)
    standin = source.endswith("(stand-in loaded)")
    click.echo(
        f"tokenizer: {type(tokenizer).__name__}, {len(tokenizer)} tokens, bos {tokenizer.bos_token}, "
        f"eos {tokenizer.eos_token}, pad {tokenizer.pad_token}"
        + (" (a stand-in's small vocabulary: texts take more tokens than with the real one)" if standin else "")
    )
    for record_style in dict.fromkeys([style, "tools"]):  # tools too: does the template carry them?
        record = sample_record(pack, record_style)
        row = strategy.tokenize_prompt(record)
        fits = "fits" if len(row["input_ids"]) <= cfg.sequence_len else "DOES NOT FIT"
        click.echo(
            f"\n--- a {record_style}-style record, {len(row['input_ids'])} tokens ({fits} sequence_len "
            f"{cfg.sequence_len}); trained tokens between {OPEN} {CLOSE}:"
        )
        if record_style == style:
            click.echo(marked_text(tokenizer, row["input_ids"], row["labels"], color=sys.stdout.isatty()))
        for finding in prompt_findings(tokenizer, record, row):
            click.echo(f"  {finding}")
    memory = estimate(shapes, settings)
    click.echo(f"\nGPU memory for one training step, estimated from {source}:")
    for line in memory.lines():
        click.echo(f"  {line}")


if __name__ == "__main__":
    main()
