"""Benchmarks: `make bench` runs this and writes BENCHMARKS.md (quoted in the README).

    python scripts/bench.py --out BENCHMARKS.md

Rows:
  datagen skills   10,000 records from the default pack, wall time of the whole command (3 runs,
                   median), plus checks: distinct records, byte-identical re-run, no split leakage
  datagen llm      against the local OpenAI-compatible test server with 50 ms latency: sequential
                   (concurrency 1) vs concurrency 32 on the same request plan, and a cached re-run's
                   request count
Speed targets live here, not in timed tests.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from datagen.expand import normalize  # noqa: E402
from datagen.jsonio import read_jsonl  # noqa: E402
from datagen.render import user_text  # noqa: E402
from datagen.split import SPLITS, shared_utterances  # noqa: E402


def bench_offline(work: Path) -> dict:
    """`python -m datagen skills --n 10000 --seed 7`, timed as a user runs it (interpreter start-up included)."""
    times, folders = [], []
    for run in range(3):
        out = work / f"offline-{run}"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "datagen", "skills", "--n", "10000", "--seed", "7", "--out", str(out)],
                       cwd=REPO, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
        folders.append(out)
    records = [record for split in SPLITS for record in read_jsonl(folders[0] / f"{split}.jsonl", "record")]
    identical = all(
        (folders[0] / name).read_bytes() == (other / name).read_bytes()
        for other in folders[1:]
        for name in ("train.jsonl", "val.jsonl", "test.jsonl", "test_noisy.jsonl", "manifest.json")
    )
    return {
        "median_s": statistics.median(times),
        "records": len(records),
        "distinct": len({normalize(user_text(record)) for record in records}),
        "identical": identical,
        "leaked": len(shared_utterances([folders[0] / f"{split}.jsonl" for split in SPLITS])),
    }


def bench_llm(work: Path) -> dict:
    """Same plan (9 skills x 100 pairs, 5 a request = 180 requests) at concurrency 1 and 32, then cached."""
    from click.testing import CliRunner

    from datagen.llm import llm_command
    from tests.openai_server import ScriptedOpenAIServer

    env = {"OPENAI_API_KEY": "bench-key", "OPENAI_BASE_URL": None}
    args = ["--pack", str(REPO / "examples" / "skills"), "--model", "bench", "--per-skill", "100", "--batch", "5",
            "--skills", "weather,timecheck,timer,notes,news,math,runapp,story,openai"]
    results = {}
    for concurrency in (1, 32):
        with ScriptedOpenAIServer(latency_ms=50) as server:
            out = work / f"llm-{concurrency}" / "pairs.jsonl"
            start = time.perf_counter()
            result = CliRunner().invoke(llm_command, [*args, "--base-url", server.url, "--out", str(out),
                                                      "--cache", str(out.parent / "cache"),
                                                      "--concurrency", str(concurrency)], env=env)
            elapsed = time.perf_counter() - start
            if result.exit_code != 0:
                raise SystemExit(f"llm bench failed: {result.output}")
            results[concurrency] = {"s": elapsed, "requests": server.total,
                                    "pairs": len(out.read_text().splitlines())}
    with ScriptedOpenAIServer(latency_ms=50) as server:
        out = work / "llm-32" / "pairs.jsonl"
        result = CliRunner().invoke(llm_command, [*args, "--base-url", server.url, "--out", str(out),
                                                  "--cache", str(out.parent / "cache"), "--concurrency", "32"], env=env)
        if result.exit_code != 0:
            raise SystemExit(f"llm bench (cached) failed: {result.output}")
        results["cached_requests"] = server.total
    return results


def render(offline: dict, llm: dict) -> str:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    speedup = llm[1]["s"] / llm[32]["s"]
    return "\n".join([
        "# Benchmarks",
        "",
        f"Written by `make bench` (scripts/bench.py) on {time.strftime('%Y-%m-%d')}; machine: {machine}, no GPU.",
        "",
        "## Data generation",
        "",
        "| benchmark | result |",
        "|---|---|",
        f"| `datagen skills --n 10000 --seed 7`, whole command, median of 3 | {offline['median_s']:.2f} s |",
        f"| records written (train + val + test) / distinct normalized utterances | {offline['records']:,} / {offline['distinct']:,} |",
        f"| same seed, byte-identical files on all 3 runs | {'yes' if offline['identical'] else 'NO'} |",
        f"| utterances shared between train, val and test | {offline['leaked']} |",
        f"| `datagen llm`, 180 requests, 50 ms server latency, concurrency 1 | {llm[1]['s']:.2f} s ({llm[1]['requests']} requests, {llm[1]['pairs']} pairs) |",
        f"| same plan, concurrency 32 | {llm[32]['s']:.2f} s ({llm[32]['requests']} requests, {llm[32]['pairs']} pairs) |",
        f"| speed-up, concurrency 32 over 1 | {speedup:.1f}x |",
        f"| re-run with the cache: requests made | {llm['cached_requests']} |",
        "",
        "The LLM rows run against `tests/openai_server.py`, a real HTTP server on 127.0.0.1 speaking the",
        "OpenAI chat-completions API, with every request delayed 50 ms.",
        "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        offline = bench_offline(Path(work))
        llm = bench_llm(Path(work))
    text = render(offline, llm)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
