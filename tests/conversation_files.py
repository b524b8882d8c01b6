"""Conversation files in the formats `datagen conversations` reads, for its tests."""

import json
from pathlib import Path

QA = [("user", "How long do I boil an egg?"), ("assistant", "About nine minutes for a firm yolk.")]


def write_log(folder: Path, name: str, messages: list[tuple[str, str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps({"role": role, "content": content}) + "\n" for role, content in messages))
    return path


def write_openai(path: Path, conversations: list[list[tuple[str, str]]], titles=None) -> Path:
    lines = []
    for index, messages in enumerate(conversations):
        entry = {"messages": [{"role": role, "content": content} for role, content in messages]}
        if titles:
            entry["title"] = titles[index]
        lines.append(json.dumps(entry))
    path.write_text("\n".join(lines) + "\n")
    return path
