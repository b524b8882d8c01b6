"""Time eval/bfcl.py's scorer against BFCL's own checker on the same synthetic predictions.

    .venv/bin/python scripts/bench_bfcl.py                 # both, best of 3 runs each
    .venv/bin/python scripts/bench_bfcl.py --ours-only     # skilltune's scorer alone

The predictions: for every case of BFCL's single-turn Python categories (those below), its first
ground truth as call text (eval.bfcl.gold_answer_text; a plain-text refusal for the irrelevance
categories) and one wrong answer (a misspelt function name, a refusal where a call is due, or the
gold text cut in half), so about 7,000 rows in all.

BFCL's side is its own code, unmodified: `default_decode_ast_prompting` (model_handler/utils.py)
then `ast_checker` (eval_checker/ast_eval/ast_checker.py), or the relevance rule of
eval_runner.py for irrelevance. bfcl-eval is installed without its dependencies, so the modules
its import chain pulls in for other paths (provider SDKs through constants/model_config.py,
tree-sitter's Java/JavaScript parsers, tenacity's retry decorator, filelock) are stand-ins here;
none of them is called on the Python path timed. The script also checks that eval/bfcl_prompt.py's
system prompt is exactly what BFCL's `system_prompt_pre_processing_chat_model` builds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from eval.bfcl import bfcl_files, gold_answer_text, load_bfcl, score_bfcl  # noqa: E402

CATEGORIES = (
    "simple_python",
    "multiple",
    "parallel",
    "parallel_multiple",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
    "irrelevance",
    "live_irrelevance",
)
REFUSAL = "I cannot answer that with the functions given."


def wrong_answer(gold: str, index: int) -> str:
    kind = index % 3
    if kind == 0:
        return gold.replace("(", "_v2(", 1)  # a function the case does not offer
    if kind == 1:
        return REFUSAL
    return gold[: len(gold) // 2]  # cut short: does not parse


def predictions(cases) -> tuple[list, list[str]]:
    """(case per row, output per row): each case's right answer, then a wrong one."""
    rows, outputs = [], []
    for index, case in enumerate(cases):
        if case.expected:
            right = gold_answer_text(case)
            wrong = wrong_answer(right, index)
        else:
            name = case.functions[0]["name"] if case.functions else "lookup"  # a few offer no function
            right, wrong = REFUSAL, f"{name}()"
        rows += [case, case]
        outputs += [right, wrong]
    return rows, outputs


def best_of(runs: int, work) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def _stand_in(name: str, **attributes) -> None:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    sys.modules[name] = module


def import_bfcl_checker():
    """BFCL's decoder, checker and system prompt builder, with stand-ins for the modules of other paths."""

    class _Config:  # ast_checker asks only whether a model's names had "." turned into "_"
        underscore_to_dot = False

    class _Configs(dict):
        def __missing__(self, name):
            return _Config()

    _stand_in("bfcl_eval.constants.model_config", MODEL_CONFIG_MAPPING=_Configs())
    _stand_in("bfcl_eval.model_handler.parser.java_parser", parse_java_function_call=None)
    _stand_in("bfcl_eval.model_handler.parser.js_parser", parse_javascript_function_call=None)
    _stand_in(
        "tenacity",
        retry=None,
        retry_if_exception_message=None,
        retry_if_exception_type=None,
        wait_random_exponential=None,
    )
    _stand_in("filelock", FileLock=None)
    from bfcl_eval.constants.enums import Language
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
    from bfcl_eval.model_handler import utils

    return Language, ast_checker, utils


def raw_entries(category: str) -> tuple[list[dict], list[dict] | None]:
    questions, answers = bfcl_files(category)
    read = lambda path: [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]  # noqa: E731
    return read(questions), read(answers) if answers else None


def bfcl_score(category: str, entries: list[dict], answers: list[dict] | None, outputs: list[str], bfcl) -> float:
    """Share of valid rows by BFCL's own rules (each entry twice, as in `predictions`)."""
    Language, ast_checker, utils = bfcl
    valid = 0
    for index, output in enumerate(outputs):
        entry = entries[index // 2]
        try:
            decoded = utils.default_decode_ast_prompting(output)
        except Exception:  # BFCL's own rule: an output that does not decode makes no call
            decoded = None
        if answers is None:  # irrelevance: right when nothing decodes, or it decodes to no call
            valid += decoded is None or utils.is_empty_output(decoded)
            continue
        if decoded is None or not utils.is_function_calling_format_output(decoded):
            continue
        truth = answers[index // 2]["ground_truth"]
        valid += ast_checker(entry["function"], decoded, truth, Language.PYTHON, category, "bench")["valid"]
    return valid / len(outputs)


def check_system_prompt(bfcl) -> int:
    """Cases whose BFCL system prompt differs from eval/bfcl_prompt.py's (0 is the goal)."""
    import copy

    from eval.bfcl_prompt import system_prompt_messages

    _, _, utils = bfcl
    differ = 0
    for category in CATEGORIES:
        entries, _ = raw_entries(category)
        for entry, case in zip(entries, load_bfcl(*bfcl_files(category))):
            theirs_entry = utils.add_language_specific_hint_to_function_doc([copy.deepcopy(entry)])[0]
            theirs = utils.system_prompt_pre_processing_chat_model(
                copy.deepcopy(theirs_entry["question"][0]), theirs_entry["function"], entry["id"]
            )
            differ += theirs != system_prompt_messages(case)
    return differ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ours-only", action="store_true")
    options = parser.parse_args()
    load_start = time.perf_counter()
    data = {category: predictions(load_bfcl(*bfcl_files(category))) for category in CATEGORIES}
    print(f"loaded {len(CATEGORIES)} categories in {time.perf_counter() - load_start:.2f} s")
    n = sum(len(outputs) for _, outputs in data.values())
    results = {}

    def ours():
        for category, (rows, outputs) in data.items():
            results[category] = score_bfcl(rows, outputs)["exact_match"]

    ours_s = best_of(options.runs, ours)
    print(f"skilltune: {n} rows in {ours_s:.3f} s ({n / ours_s:,.0f} rows/s)")
    if options.ours_only:
        return
    bfcl = import_bfcl_checker()
    raw = {category: raw_entries(category) for category in CATEGORIES}
    theirs_results = {}

    def theirs():
        for category, (_, outputs) in data.items():
            theirs_results[category] = bfcl_score(category, *raw[category], outputs, bfcl)

    theirs_s = best_of(options.runs, theirs)
    print(f"BFCL ast_checker: {n} rows in {theirs_s:.3f} s ({n / theirs_s:,.0f} rows/s)")
    print(f"skilltune / BFCL speed: {theirs_s / ours_s:.2f}x")
    for category in CATEGORIES:
        print(f"  {category:24} valid: skilltune {results[category]:.3f}, BFCL {theirs_results[category]:.3f}")
    try:
        print(f"system prompts that differ from BFCL's: {check_system_prompt(bfcl)}")
    except ImportError:
        print("system prompt check skipped: eval/bfcl_prompt.py not there yet")


if __name__ == "__main__":
    main()
