"""The files of `datagen documents`: question/answer pairs in plan order, split by chunk into
train and val, written as qa.csv, qa.json, train.jsonl, val.jsonl and manifest.json."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

from datagen.dataset import write_dataset_folder
from datagen.documents_qa import UNKNOWN_ANSWER, ChunkResult, Stats
from skilltune.jsonio import DataError, write_json, write_text
from skilltune.pairs import normalize
from skilltune.records import chat_record_problem

# the two splits of a documents dataset (datagen/split.py's SPLITS add a test split for skill pairs)
TRAIN_VAL_SPLITS = ("train", "val")
CSV_COLUMNS = ("split", "source", "chunk", "question", "answer")


def qa_pairs(results: list[ChunkResult], drop_unknown: bool, stats: Stats) -> list[dict]:
    """One pair per question with a usable answer, in plan order; a question already asked about
    an earlier chunk is left out, so no question is in two splits (or twice in one)."""
    pairs, seen = [], set()
    for result in results:
        for number, question in enumerate(result.questions):
            key = normalize(question)
            if key in seen:
                stats.duplicates += 1
                continue
            seen.add(key)
            stats.questions += 1
            answer = result.answers.get(number, "")
            stats.unknown += answer == UNKNOWN_ANSWER
            if not answer or (drop_unknown and answer == UNKNOWN_ANSWER):
                stats.dropped += 1
                continue
            chunk = result.chunk
            pairs.append(
                {
                    "source": chunk.source,
                    "chunk": chunk.id,
                    "start": chunk.start,
                    "end": chunk.end,
                    "question": question,
                    "answer": answer,
                }
            )
    return pairs


def assign_splits(pairs: list[dict], val_fraction: float, seed: int) -> None:
    """Set each pair's "split": whole chunks go to val, about `val_fraction` of the chunks.

    Splitting by chunk keeps every question about one passage on one side. With 20 chunks and
    0.1: 2 chunks (and all their pairs) in val. At least one chunk goes to val when the fraction
    is above 0 and there are 2 or more chunks. (Overlapping chunks share some text across the
    split; use --step-size equal to --chunk-size to avoid that.)
    """
    chunk_ids = sorted({pair["chunk"] for pair in pairs})
    random.Random(seed).shuffle(chunk_ids)
    wanted = round(len(chunk_ids) * val_fraction)
    if val_fraction > 0 and len(chunk_ids) >= 2:
        wanted = max(wanted, 1)
    wanted = min(wanted, len(chunk_ids) - 1) if chunk_ids else 0  # keep at least one chunk to train on
    val = set(chunk_ids[:wanted])
    for pair in pairs:
        pair["split"] = "val" if pair["chunk"] in val else "train"


def qa_chat_record(pair: dict, system: str | None) -> dict:
    """The chat record of one pair: its answer is text (skilltune/records.py's chat_record answers with a call)."""
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": pair["question"]}, {"role": "assistant", "content": pair["answer"]}]
    return {"messages": messages}


def csv_text(pairs: list[dict]) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    writer.writerows([pair[column] for column in CSV_COLUMNS] for pair in pairs)
    return buffer.getvalue()


def write_outputs(out: Path, pairs: list[dict], system: str | None, manifest_info: dict, inputs: tuple = ()) -> dict:
    """qa.csv, qa.json, train.jsonl, val.jsonl and manifest.json, replacing `out` whole."""
    splits = {}
    for split in TRAIN_VAL_SPLITS:
        records = [qa_chat_record(pair, system) for pair in pairs if pair["split"] == split]
        for number, record in enumerate(records, 1):
            problem = chat_record_problem(record)
            if problem:  # a bug: answers are never empty here
                raise DataError(out / f"{split}.jsonl", number, f"refusing to write: {problem}")
        splits[split] = records
    side_files = {
        "qa.csv": lambda path: write_text(path, csv_text(pairs)),
        "qa.json": lambda path: write_json(path, {"source": manifest_info["source"], "pairs": pairs}, "qa"),
    }
    counts = {split: {"documents": len(records)} for split, records in splits.items()}
    return write_dataset_folder(out, splits, {**manifest_info, "style": "chat", "counts": counts}, inputs, side_files)
