"""Latency and tokens/s of an OpenAI-compatible endpoint, one request at a time, on test records.

    python scripts/bench_serve.py --base-url http://127.0.0.1:8080/v1 --test data/skills/test.jsonl --n 60

Each request is the one `eval run --backend openai` sends for the record (its prompt messages,
temperature 0, the same max_tokens), sent alone, so the latency is the server's own and not a
queue's. Printed as JSON: median, p90 and mean latency per request, prompt and completion tokens per
request (the server's `usage`), and completion tokens per second of wall time (prompt processing
included, as a caller sees it), per request and then the median. A warm-up request goes first and
is not counted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from eval.predict import OpenAIBackend  # noqa: E402
from skilltune.jsonio import read_jsonl  # noqa: E402


def post(url: str, body: dict, timeout: float) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def bench(base_url: str, records: list[dict], model: str, max_tokens: int, timeout: float = 120.0) -> dict:
    backend = OpenAIBackend(base_url, model, max_tokens=max_tokens)
    url = base_url.rstrip("/") + "/chat/completions"
    post(url, backend.request_body(records[0]), timeout)  # warm-up: first-request allocations
    latencies, tokens, prompt_tokens = [], [], []
    for record in records:
        start = time.perf_counter()
        answer = post(url, backend.request_body(record), timeout)
        latencies.append(time.perf_counter() - start)
        usage = answer.get("usage") or {}
        tokens.append(int(usage.get("completion_tokens", 0)))
        prompt_tokens.append(int(usage.get("prompt_tokens", 0)))
    ordered = sorted(latencies)
    return {
        "requests": len(records),
        "latency_median_s": round(statistics.median(latencies), 3),
        "latency_p90_s": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 3),
        "prompt_tokens_mean": round(statistics.mean(prompt_tokens), 1),
        "completion_tokens_mean": round(statistics.mean(tokens), 1),
        "latency_mean_s": round(statistics.mean(latencies), 3),
        # per request, then the median: a few requests stalled by other processes on shared cores
        # would otherwise decide a mean
        "completion_tokens_per_s_median": round(statistics.median(n / t for n, t in zip(tokens, latencies)), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--n", type=int, default=60, help="records (the first N)")
    parser.add_argument("--model", default="tuned")
    parser.add_argument("--max-tokens", type=int, default=48, help="as eval run's --max-new-tokens default")
    args = parser.parse_args()
    records = list(read_jsonl(args.test, "record"))[: args.n]
    print(json.dumps(bench(args.base_url, records, args.model, args.max_tokens), indent=2))


if __name__ == "__main__":
    main()
