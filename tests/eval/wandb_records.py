"""Read back the records of an offline W&B run file (run-<id>.wandb), for tests/eval/test_wandb_log.py.

wandb 0.31 ships no Python reader (its `datastore` moved into the wandb-core binary). The file is a
LevelDB-style log: a 7-byte header (":W&B", magic, version), then 32 KiB blocks of chunks, each
with a 7-byte header (crc32, length, kind: 1 full, 2 first, 3 middle, 4 last), and each record a
protobuf `wandb.proto.wandb_internal_pb2.Record`."""

from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK, HEADER = 32768, 7
FULL, LAST = 1, 4


def records(path: Path):
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path}: not a W&B run file"
    position, pending = HEADER, b""
    while position + HEADER <= len(data):
        left = BLOCK - position % BLOCK
        _, length, kind = struct.unpack("<IHB", data[position : position + HEADER])
        if left < HEADER or (kind == 0 and length == 0):  # the padding at a block's end
            position += left
            continue
        pending += data[position + HEADER : position + HEADER + length]
        position += HEADER + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def summary_of(path: Path) -> dict:
    """Every plain key the run's summary records set, with its value decoded."""
    summary = {}
    for record in records(path):
        if record.WhichOneof("record_type") == "summary":
            for item in record.summary.update:
                if item.key:
                    summary[item.key] = json.loads(item.value_json)
    return summary


def run_of(path: Path):
    """The run record: run_id, project, resumed, ..."""
    return next(record.run for record in records(path) if record.WhichOneof("record_type") == "run")
