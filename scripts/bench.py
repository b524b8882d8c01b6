"""Benchmarks: `make bench` runs this and writes BENCHMARKS.md (quoted in the README).

    python scripts/bench.py --out BENCHMARKS.md

Rows:
  datagen skills   10,000 records from the default pack, wall time of the whole command (3 runs,
                   median), plus checks: distinct records, byte-identical re-run, no split leakage
  datagen llm      against the local OpenAI-compatible test server with 50 ms latency: sequential
                   (concurrency 1) vs concurrency 32 on the same request plan, and a cached re-run's
                   request count
  eval             scorer throughput (predictions/s); hostile outputs (1 MB of "{", one call with
                   100,000 arguments); batched vs one-at-a-time generation on the embedded model; parse
                   failures and exact match with and without constrained decoding
  training         scripts/bench_training.py: packing efficiency of Axolotl's batches with and without
                   sample_packing, `axolotl train` vs a plain transformers + peft loop in tokens/s
                   (about 15 minutes; --skip-training leaves it out)
Speed targets live here, not in timed tests.

    python scripts/bench.py --only training    # just the training section, put into the existing BENCHMARKS.md
    python scripts/bench.py --only training --training-json runs/bench/training.json   # from an earlier run
    python scripts/bench.py --only scorer      # just the scorer and hostile-output rows (about a minute)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from datagen.split import SPLITS, shared_utterances  # noqa: E402
from skilltune.jsonio import read_jsonl, write_text  # noqa: E402
from skilltune.pairs import normalize  # noqa: E402
from skilltune.records import user_text  # noqa: E402

sys.path.insert(0, str(REPO / "scripts"))
from bench_report import (  # noqa: E402  (the test reaches them through this module)
    hostile_rows,
    keep_section,
    render,
    render_training,
    scorer_rows,
    splice_hostile_rows,
    splice_scorer_rows,
    splice_section,
)


def bench_offline(work: Path) -> dict:
    """`python -m datagen skills --n 10000 --seed 7`, timed as a user runs it (interpreter start-up included)."""
    times, folders = [], []
    for run in range(3):
        out = work / f"offline-{run}"
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "datagen", "skills", "--n", "10000", "--seed", "7", "--out", str(out)],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
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


class ServerProcess:
    """tests/openai_server.py in a process of its own, like a remote API: its request handling
    does not compete with the client for this interpreter's lock."""

    def __init__(self, latency_ms: int):
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "openai_server.py"), "--latency-ms", str(latency_ms)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            raise SystemExit(f"the test server did not start (printed {self.url!r})")

    def total(self) -> int:
        with urllib.request.urlopen(f"{self.url}/_counts", timeout=10) as answer:
            return sum(json.load(answer).values())

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=10)


def bench_llm(work: Path) -> dict:
    """Same plan (9 skills x 100 pairs, 5 a request = 180 requests) at concurrency 1 and 32, then cached."""
    import openai  # noqa: F401  imported before timing, so neither run pays for it
    from click.testing import CliRunner

    from datagen.cli.llm import llm_command

    env = {"OPENAI_API_KEY": "bench-key", "OPENAI_BASE_URL": None}
    args = [
        "--pack",
        str(REPO / "examples" / "skills"),
        "--model",
        "bench",
        "--per-skill",
        "100",
        "--batch",
        "5",
        "--skills",
        "weather,timecheck,timer,notes,news,math,runapp,story,openai",
    ]

    def run(server: ServerProcess, out: Path, concurrency: int) -> float:
        start = time.perf_counter()
        result = CliRunner().invoke(
            llm_command,
            [
                *args,
                "--base-url",
                server.url,
                "--out",
                str(out),
                "--cache",
                str(out.parent / "cache"),
                "--concurrency",
                str(concurrency),
            ],
            env=env,
        )
        if result.exit_code != 0:
            raise SystemExit(f"llm bench failed (concurrency {concurrency}): {result.output}")
        return time.perf_counter() - start

    results = {}
    for concurrency in (1, 32):
        with ServerProcess(latency_ms=50) as server:
            out = work / f"llm-{concurrency}" / "pairs.jsonl"
            elapsed = run(server, out, concurrency)
            results[concurrency] = {
                "s": elapsed,
                "requests": server.total(),
                "pairs": len(out.read_text().splitlines()),
            }
    with ServerProcess(latency_ms=50) as server:
        run(server, work / "llm-32" / "pairs.jsonl", 32)
        results["cached_requests"] = server.total()
    results["same_pairs"] = (work / "llm-1" / "pairs.jsonl").read_bytes() == (
        work / "llm-32" / "pairs.jsonl"
    ).read_bytes()
    return results


def bench_scorer(work: Path) -> dict:
    """Parse + match + aggregate, predictions per second, on 20,000 rows built from 20,000
    generated records, with two mixes of outputs:
      tuned-like  80 % the gold call itself, 20 % wrong value / chatter / no call / broken call
      hard        only the four kinds of wrong answer: every row is parsed and matched in full
    Each mix is timed 7 times, each from a cold start (the gold-call cache emptied, as for the first
    model scored on a test set); median and range. Under "hostile": bench_hostile's timings.
    """
    from eval.score import parsed_gold, score
    from skilltune.calls import parse_call

    data = work / "scorer-data"
    subprocess.run(
        [sys.executable, "-m", "datagen", "skills", "--n", "20000", "--seed", "11", "--out", str(data)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    # 20,000 distinct utterances with their gold calls, so no cache sees the same row twice
    records = [record for split in SPLITS for record in read_jsonl(data / f"{split}.jsonl", "record")]
    wrong = [
        lambda gold: gold.replace('="', '="x'),
        lambda gold: f"Sure! {gold} should do it.",
        lambda gold: "I am not sure what you mean.",
        lambda gold: gold[:-3],
    ]
    mixes = {"tuned-like": [lambda gold: gold] * 16 + wrong, "hard": wrong}
    results = {}
    for mix, outputs in mixes.items():
        rows = []
        for index in range(20_000):
            record = records[index % len(records)]
            gold = record["messages"][-1]["content"]
            rows.append(
                {
                    "index": index,
                    "model": "bench",
                    "split": "test",
                    "skill": parse_call(gold).name,
                    "user": user_text(record),
                    "gold": gold,
                    "output": outputs[index % len(outputs)](gold),
                }
            )
        rates = []
        for _ in range(7):
            parsed_gold.cache_clear()
            began = time.perf_counter()
            score(rows)
            rates.append(len(rows) / (time.perf_counter() - began))
        results[mix] = {"median": statistics.median(rates), "low": min(rates), "high": max(rates)}
    results["distinct_golds"] = len({row["gold"] for row in rows})
    results["hostile"] = bench_hostile()
    return results


def bench_hostile() -> dict:
    """Seconds, median of 3, on outputs made to be slow, against the gold call f(x=1): 1 MB of "{"
    through judge() (over the length cap: parse:too_long) and through parse_output without the
    cap; one call with 100,000 keyword arguments through judge_calls (strict, lenient and argument
    counts) and, 1.3 MB long, through parse_output without the cap. The cap is not what makes them
    fast: each step is linear in the length."""
    from eval.match import Expected, judge_calls
    from eval.parse import parse_output
    from eval.score import judge
    from skilltune.calls import Call

    def seconds(work) -> float:
        times = []
        for _ in range(3):
            began = time.perf_counter()
            work()
            times.append(time.perf_counter() - began)
        return statistics.median(times)

    braces = "{" * 1_000_000
    many = "f(" + ", ".join(f"a{i}={i}" for i in range(100_000)) + ")"
    parsed = parse_output(many, max_chars=None)
    gold = [Expected.from_call(Call("f", {"x": 1}))]
    row = {"index": 0, "model": "bench", "split": "test", "skill": "f", "user": "", "gold": "f(x=1)"}
    return {
        "braces_judge": seconds(lambda: judge({**row, "output": braces})),
        "braces_parse": seconds(lambda: parse_output(braces, max_chars=None)),
        "many_match": seconds(lambda: judge_calls(parsed, gold)),
        "many_parse": seconds(lambda: parse_output(many, max_chars=None)),
    }


def bench_models(work: Path) -> dict:
    """On the embedded model: batched vs one-at-a-time generation, and constrained decoding."""
    sys.path.insert(0, str(REPO / "scripts"))
    from bench_generation import bench_generation
    from constrained_eval import measure

    model = REPO / "models" / "SmolLM2-135M-Instruct"
    if not (model / "config.json").exists():
        raise SystemExit(f"{model}: missing; run `make model` first")
    data = work / "model-data"
    subprocess.run(
        [sys.executable, "-m", "datagen", "skills", "--n", "1000", "--seed", "5", "--out", str(data)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    records = list(read_jsonl(data / "test.jsonl", "record"))[:48]
    return {
        "generation": bench_generation(str(model), records, batch_size=32, max_new_tokens=48),
        "constrained": measure(str(model), [data / "test.jsonl"], n=40, pack=str(REPO / "examples" / "skills")),
    }


def bench_training(work: Path, result: Path | None = None) -> list[str]:
    """scripts/bench_training.py in a process of its own (or its RESULT JSON of an earlier run);
    its section of BENCHMARKS.md."""
    sys.path.insert(0, str(REPO / "scripts"))
    if result is None:
        result = work / "training.json"
        subprocess.run(
            [sys.executable, str(REPO / "scripts" / "bench_training.py"), "--out", str(result)],
            cwd=REPO,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return render_training(json.loads(result.read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    parser.add_argument("--skip-models", action="store_true", help="Leave out the rows that run the model (minutes).")
    parser.add_argument(
        "--skip-training",
        action="store_true",
        help="Leave out the training section (scripts/bench_training.py, about 15 minutes).",
    )
    parser.add_argument(
        "--only",
        choices=["training", "scorer"],
        help="Run this part alone and put it into the existing --out file; the rest stays.",
    )
    parser.add_argument(
        "--training-json",
        type=Path,
        help="Render the training section from this scripts/bench_training.py result instead of running it.",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        if args.only == "training":
            text = splice_section(
                args.out.read_text() if args.out.exists() else "# Benchmarks\n",
                bench_training(Path(work), args.training_json),
            )
            write_text(args.out, text)
            print(text)
            return
        if args.only == "scorer":
            scorer = bench_scorer(Path(work))
            rows, hostile = scorer_rows(scorer), hostile_rows(scorer["hostile"])
            write_text(args.out, splice_hostile_rows(splice_scorer_rows(args.out.read_text(), rows), hostile))
            print("\n".join(rows + hostile))
            return
        offline = bench_offline(Path(work))
        llm = bench_llm(Path(work))
        scorer = bench_scorer(Path(work))
        models = None if args.skip_models else bench_models(Path(work))
        training = (
            ["## Training", "", "Skipped (`--skip-training`).", ""]
            if args.skip_training
            else bench_training(Path(work), args.training_json)
        )
    previous = args.out.read_text() if args.out.exists() else ""
    text = splice_section(render(offline, llm, scorer, models), training)
    # sections measured by whole training runs or a server, not here
    for hand_measured in ("## Accuracy", "## BFCL outside check", "## Serving"):
        text = keep_section(previous, text, hand_measured)
    write_text(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
