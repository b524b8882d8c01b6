"""Measure constrained decoding: the same greedy generation with and without the call grammar.

    python scripts/constrained_eval.py --model models/SmolLM2-135M-Instruct --test /tmp/cdata/test.jsonl --n 40
    python scripts/constrained_eval.py --adapter runs/smollm2/adapter --test data/skills/test.jsonl --threads 1
    python scripts/constrained_eval.py --style json --test /tmp/jdata/test.jsonl   # records made with --style json

For each way it reports how many outputs do not parse as a call (datagen.render.answer_call: JSON
when the answer starts with `{`, else datagen.calls.parse_call), how many
parse but do not fit their skill (check_call), the exact-match rate against the gold call, and the
wall time per record (batch 8, max_new_tokens 48, left padding, the tokenizer's chat template, as
eval/predict.py generates). `measure()` returns the numbers as a dict for a benchmark row.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from datagen.calls import CallSyntaxError  # noqa: E402
from datagen.render import answer_call, gold_call  # noqa: E402
from datagen.skills import load_pack  # noqa: E402


def read_records(paths: list[Path], n: int) -> list[dict]:
    records = []
    for path in paths:
        with open(path, encoding="utf-8") as lines:
            records += [json.loads(line) for line in lines if line.strip()]
    return records[:n]


def generate(model, tokenizer, records: list[dict], batch_size: int, max_new_tokens: int, processors=None) -> list[str]:
    """Greedy outputs; `processors` is a `(tokenizer, prompt_length) -> [LogitsProcessor]` factory or None."""
    import torch
    from transformers import LogitsProcessorList

    prompts = [tokenizer.apply_chat_template(record["messages"][:-1], add_generation_prompt=True, tokenize=False)
               for record in records]
    outputs = []
    for start in range(0, len(prompts), batch_size):
        batch = tokenizer(prompts[start:start + batch_size], return_tensors="pt", padding=True,
                          add_special_tokens=False)
        prompt_length = batch["input_ids"].shape[1]
        extra = {"logits_processor": LogitsProcessorList(processors(tokenizer, prompt_length))} if processors else {}
        with torch.inference_mode():
            generated = model.generate(**batch, do_sample=False, max_new_tokens=max_new_tokens,
                                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                                       **extra)
        outputs += tokenizer.batch_decode(generated[:, prompt_length:], skip_special_tokens=True)
    return outputs


def score(records: list[dict], outputs: list[str], skills) -> dict:
    by_name = {skill.name: skill for skill in skills}
    parse_failures = misfits = exact = 0
    for record, output in zip(records, outputs):
        try:
            call = answer_call({"role": "assistant", "content": output})
        except CallSyntaxError:
            parse_failures += 1
            continue
        skill = by_name.get(call.name)
        if skill is None or skill.check_call(call):
            misfits += 1
        exact += call == gold_call(record)
    return {"parse_failures": parse_failures, "invalid_calls": misfits, "exact_match": exact}


def measure(model_dir: str, test_paths: list[Path], n: int = 40, pack: str = "examples/skills", batch_size: int = 8,
            max_new_tokens: int = 48, show: int = 0, threads: int | None = None, adapter: str | None = None,
            style: str = "python") -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from eval.constrain import grammar_processors, token_texts

    if threads:
        torch.set_num_threads(threads)
    skills = load_pack(pack)
    records = read_records(test_paths, n)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter).eval()
    started = time.perf_counter()
    token_texts(tokenizer)  # the one-off per-tokenizer table, timed on its own
    table_seconds = time.perf_counter() - started

    result = {"model": model_dir, "adapter": adapter, "style": style, "records": len(records), "batch_size": batch_size,
              "max_new_tokens": max_new_tokens, "threads": torch.get_num_threads(),
              "token_table_s": round(table_seconds, 2)}
    make_processors = grammar_processors(skills, style, max_new_tokens=max_new_tokens)
    made = []  # every processor the factory hands out, to add up the time spent masking

    def constrained(tokenizer, prompt_length):
        made.extend(make_processors(tokenizer, prompt_length))
        return made[-1:]

    for label, processors in (("free", None), ("constrained", constrained)):
        started = time.perf_counter()
        outputs = generate(model, tokenizer, records, batch_size, max_new_tokens, processors)
        seconds = time.perf_counter() - started
        counts = score(records, outputs, skills)
        result[label] = {
            **counts,
            "parse_failure_rate": counts["parse_failures"] / len(records),
            "exact_match_rate": counts["exact_match"] / len(records),
            "s_per_record": seconds / len(records),
            "masking_s_per_record": sum(processor.seconds for processor in made) / len(records),
            "examples": outputs[:show],
        }
    return result


def print_table(result: dict) -> None:
    model = result["model"] + (f" + {result['adapter']}" if result["adapter"] else "")
    print(f"{model}, {result['style']} style: {result['records']} records, batch {result['batch_size']}, "
          f"max_new_tokens {result['max_new_tokens']}, {result['threads']} threads "
          f"(token table {result['token_table_s']} s, once per tokenizer)")
    print(f"{'':<12} {'parse fail':>10} {'invalid':>8} {'exact':>8} {'s/record':>9} {'masking s/record':>17}")
    for label in ("free", "constrained"):
        row = result[label]
        print(f"{label:<12} {row['parse_failure_rate']:>10.1%} {row['invalid_calls']:>8} "
              f"{row['exact_match_rate']:>8.1%} {row['s_per_record']:>9.3f} {row['masking_s_per_record']:>17.3f}")
        for output in row["examples"]:
            print(f"    {output!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/SmolLM2-135M-Instruct")
    parser.add_argument("--adapter", help="a LoRA adapter folder to put on the model (runs/smollm2/adapter)")
    parser.add_argument("--style", choices=["python", "json"], default="python", help="the answer style of the records")
    parser.add_argument("--test", type=Path, action="append", required=True, help="records JSONL; may be repeated")
    parser.add_argument("--n", type=int, default=40, help="how many records (from the files in order)")
    parser.add_argument("--pack", default="examples/skills")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--show", type=int, default=0, help="print the first SHOW outputs of each way")
    parser.add_argument("--threads", type=int, help="torch CPU threads (1 is faster on a busy 2-core machine)")
    parser.add_argument("--json", type=Path, help="also write the result dict here")
    args = parser.parse_args()
    result = measure(args.model, args.test, args.n, args.pack, args.batch_size, args.max_new_tokens, args.show,
                     args.threads, args.adapter, args.style)
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
