"""Batched against one-at-a-time generation with TransformersBackend on the same records.

    python scripts/bench_generation.py --test data/skills/test.jsonl --n 48
    python scripts/bench_generation.py --test data/skills/test.jsonl --n 48 --adapter runs/smollm2/adapter

Both runs decode greedily with the same max_new_tokens, so they must produce the same outputs
(checked, and reported as `same_outputs`). Tokens generated are the outputs re-encoded by the
tokenizer: end-of-turn and padding are not counted.

What moves the speed-up on CPU (measured on 2 shared cores, SmolLM2-135M, fp32):
- threads: torch runs one OpenMP thread per core, and its idle threads spin. On cores shared
  with other busy processes the threads wait on each other: a batch-16 step took 3.5 s with 2
  spinning threads, 0.24 s with OMP_WAIT_POLICY=PASSIVE and 0.2-0.3 s with one thread
  (`--threads 1`). Batching then looked slower than one-at-a-time (0.63x).
- compute: one row is bound by reading the weights (~0.09 s a step); 16 rows are bound by
  arithmetic (~0.3 s a step on one thread), so 16 rows decode at most ~4.5x as many tokens a
  second as one row, not 16x (with 2 threads on idle cores: 0.09 s against 0.17 s, ~8.7x).
- batch size: on 2 idle cores, 48 records took 38.9 s at batch 16 (3 batches), 30.9 s at 24 and
  26.9 s at 48 (one batch) against ~170 s one at a time: a step of more rows costs less than
  proportionally more, so the default is 32, and eval.predict.batches splits the records into the
  fewest near-equal batches (48 at 32: 24 + 24), so no batch is a straggler of a few rows.
- stopping: a batch decodes until its longest row ends, one-at-a-time stops each row at its own
  end-of-turn (the base model averages ~36 of 48 tokens; a batch of 16 nearly always runs 48).
- the prompt: ~58 tokens against a tuned model's ~9-token answer. Encoding the prompt is
  arithmetic-bound whatever the batch size, so for short answers batching gains least.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from eval.predict import TransformersBackend  # noqa: E402
from skilltune.jsonio import DataError, read_jsonl  # noqa: E402


def _timed(backend: TransformersBackend, records: list[dict]) -> tuple[float, list[str]]:
    started = time.perf_counter()
    outputs = backend.generate(records)
    return time.perf_counter() - started, outputs


def bench_generation(
    model_dir: str | Path,
    records: list[dict],
    batch_size: int = 32,
    max_new_tokens: int = 48,
    adapter: str | Path | None = None,
) -> dict:
    """Time batch_size 1 and `batch_size` on the same records; seconds, records/s, tokens and speed-up."""
    import torch

    backend = TransformersBackend(model_dir, adapter, batch_size=1, max_new_tokens=max_new_tokens, label="batch 1")
    backend.generate(records[:1])  # warm-up: first-call allocations are not part of either run
    runs = {}
    outputs = {}
    for size in (1, batch_size):
        backend.batch_size, backend.label = size, f"batch {size}"
        seconds, outputs[size] = _timed(backend, records)
        tokens = sum(len(backend.tokenizer(text, add_special_tokens=False)["input_ids"]) for text in outputs[size])
        runs[size] = {
            "batch_size": size,
            "seconds": round(seconds, 2),
            "records_per_s": round(len(records) / seconds, 3),
            "tokens": tokens,
            "tokens_per_s": round(tokens / seconds, 1),
        }
    return {
        "model": str(model_dir),
        "adapter": str(adapter) if adapter else None,
        "records": len(records),
        "max_new_tokens": max_new_tokens,
        "threads": torch.get_num_threads(),
        "one_at_a_time": runs[1],
        "batched": runs[batch_size],
        "speedup": round(runs[1]["seconds"] / runs[batch_size]["seconds"], 2),
        "same_outputs": outputs[1] == outputs[batch_size],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test", type=Path, required=True, help="Records (JSONL), e.g. data/skills/test.jsonl.")
    parser.add_argument("--n", type=int, default=48, help="How many records, from the start of --test.")
    parser.add_argument("--model", type=Path, default=REPO / "models" / "SmolLM2-135M-Instruct")
    parser.add_argument("--adapter", type=Path, default=None, help="A LoRA adapter folder on top of --model.")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own, one per core).")
    args = parser.parse_args()
    if args.n < 1 or args.batch_size < 2 or args.max_new_tokens < 1:
        parser.error("--n and --max-new-tokens must be at least 1, --batch-size at least 2")
    try:
        records = list(read_jsonl(args.test, "record"))[: args.n]
    except (OSError, DataError) as err:
        parser.error(str(err))
    if len(records) < args.n:
        parser.error(f"{args.test}: {len(records)} records, fewer than --n {args.n}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    result = bench_generation(args.model, records, args.batch_size, args.max_new_tokens, args.adapter)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
