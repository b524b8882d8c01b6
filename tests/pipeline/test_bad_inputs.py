"""Bad input a real user gives: one `error: file:line: reason` line, exit 1, nothing touched.

One test per row of the README's reliability table (datagen and eval commands; `datagen llm` is
covered in test_llm.py, the parser's slow paths in test_parse.py and test_match.py).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from skilltune.jsonio import read_json, write_jsonl

PACK = REPO / "examples" / "skills"


def run(module: str, *args, cwd=REPO):
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def one_error_line(result, starts: str) -> str:
    """The single stderr line, which must start with `error: <starts>`."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {starts}"), lines[0]
    return lines[0]


def record(user: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}


GOOD = [record("weather in Oslo", 'weather(location="Oslo")'), record("hello", "other()")]


def prediction(output: str, gold: str = 'weather(location="Oslo")', index: int = 0) -> dict:
    return {
        "index": index,
        "model": "tuned",
        "split": "test",
        "skill": gold.split("(")[0],
        "user": "weather in Oslo",
        "gold": gold,
        "output": output,
    }


@pytest.fixture
def dataset(tmp_path):
    out = tmp_path / "data"
    result = run("datagen", "skills", "--out", out, "--n", 100)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture
def config(tmp_path):
    """An Axolotl config whose adapter folder exists; its base model does not, so loading any
    model fails loudly: a test that reaches generation fails with a different error."""
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    path = tmp_path / "config.yml"
    path.write_text(f"base_model: {tmp_path / 'no-such-model'}\noutput_dir: {adapter}\n")
    return path


# --- eval run checks its inputs and --out before a model loads


@pytest.mark.parametrize(
    "answer",
    [
        "openai(prompt='what's the meaning of life')",  # from a public validation set
        "weather(location=Oslo)",
        '{"name": "weather", "arguments": {"location": "Oslo"}}',
        "weather(location='Oslo'",
        "not a call at all",
        "weather(location=1e999)",
    ],
)
def test_eval_run_refuses_an_unparsable_gold_answer_before_loading_a_model(tmp_path, config, answer):
    test = tmp_path / "test.jsonl"
    test.write_text("".join(json.dumps(row) + "\n" for row in [*GOOD, record("what is life", answer)]))
    out = tmp_path / "run"
    one_error_line(run("eval", "run", "--config", config, "--test", test, "--out", out), f"{test}:3: ")
    assert not out.exists()


def test_eval_run_refuses_an_unwritable_out_before_loading_a_model(tmp_path, config):
    test = tmp_path / "test.jsonl"
    write_jsonl(test, GOOD, "record")
    one_error_line(
        run("eval", "run", "--config", config, "--test", test, "--out", "/proc/skilltune-run"),
        "/proc/skilltune-run: cannot write",
    )
    one_error_line(
        run("eval", "run", "--config", config, "--test", test, "--out", config.parent / "adapter"),
        f"{config.parent / 'adapter'}: holds {config.parent / 'adapter'}, an input of this run",
    )
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine")
    one_error_line(
        run("eval", "run", "--config", config, "--test", test, "--out", notes),
        f"{notes}: is not a folder of eval's outputs: it holds todo.txt",
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ("base_model: m\noutput_dir: 42\n", "`output_dir: 42` must be a model name or a folder path"),
        ("base_model: [a, b]\noutput_dir: out\n", "`base_model: ['a', 'b']` must be a model name"),
        ("base_model: m\noutput_dir: out\n# caf\xe9\n", "3: not UTF-8 text: byte 0xe9"),
    ],
)
def test_eval_run_names_a_bad_config(tmp_path, dataset, text, message):
    path = tmp_path / "config.yml"
    path.write_bytes(text.encode("latin-1"))
    one_error_line(
        run("eval", "run", "--config", path, "--test", dataset / "test.jsonl", "--out", tmp_path / "r"),
        f"{path}:" if message[0].isdigit() else f"{path}: {message}",
    )


def test_eval_run_names_invalid_utf8_in_the_test_file(tmp_path, config):
    test = tmp_path / "test.jsonl"
    test.write_bytes(json.dumps(GOOD[0]).encode() + b"\n" + json.dumps(GOOD[1]).encode()[:-3] + b'\xff"}]}\n')
    one_error_line(
        run("eval", "run", "--config", config, "--test", test, "--out", tmp_path / "r"),
        f"{test}:2: not UTF-8 text: byte 0xff",
    )


# --- eval score / compare / gates


@pytest.mark.parametrize("gold", ["weather(location=Oslo", '{"function_call": {"name": "weather"}}'])
def test_eval_score_names_a_bad_gold_answer(tmp_path, gold):
    path = tmp_path / "predictions-tuned.jsonl"
    write_jsonl(path, [prediction("other()", "other()"), prediction("other()", gold, 1)], "prediction")
    one_error_line(run("eval", "score", path, "--out", tmp_path), f"{path}:2: gold answer")


def test_a_lone_surrogate_in_a_model_output_is_reported_not_a_crash(tmp_path):
    path = tmp_path / "predictions-tuned.jsonl"
    half_emoji = json.loads('"party \\ud83c"')
    write_jsonl(
        path, [prediction(f'weather(location="{half_emoji}")'), prediction(half_emoji, "other()", 1)], "prediction"
    )
    result = run("eval", "score", path, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    report = read_json(tmp_path / "report.json", "report")
    assert report["tuned"]["n"] == 2
    (tmp_path / "report.md").read_text(encoding="utf-8")


def test_a_3700_digit_value_is_scored_as_wrong(tmp_path):
    path = tmp_path / "predictions-tuned.jsonl"
    write_jsonl(
        path,
        [
            prediction("timer(duration=" + "9" * 3700 + ")", 'timer(duration="5 minutes")'),
            prediction("other()", "other()", 1),
        ],
        "prediction",
    )
    result = run("eval", "score", path, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert read_json(tmp_path / "report.json", "report")["tuned"]["exact_match"] == 0.5


def _saved_report(folder: Path) -> Path:
    path = folder / "predictions-tuned.jsonl"
    write_jsonl(path, [prediction('weather(location="Oslo")'), prediction("other()", "other()", 1)], "prediction")
    assert run("eval", "score", path, "--out", folder).returncode == 0
    return folder / "report.json"


def test_compare_names_a_folder_without_a_report_and_a_report_without_the_model(tmp_path):
    report = _saved_report(tmp_path / "a")
    empty = tmp_path / "empty"
    empty.mkdir()
    one_error_line(run("eval", "compare", report.parent, empty), f"{empty / 'report.json'}: no such file")
    one_error_line(
        run("eval", "compare", report, report, "--model", "base"),
        f"{report}: no scores for model 'base' (it lists tuned)",
    )
    broken = json.loads(report.read_text())
    broken["models"] = ["tuned", "base"]  # lists a model it holds no scores for
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "report.json").write_text(json.dumps(broken))
    one_error_line(run("eval", "compare", report, tmp_path / "b", "--model", "base"), f"{report}: no scores")


def test_baseline_without_the_gated_model_is_one_line(tmp_path):
    baseline = _saved_report(tmp_path / "a")
    saved = json.loads(baseline.read_text())
    del saved["tuned"]  # lists tuned, holds no scores for it
    baseline.write_text(json.dumps(saved))
    predictions = _saved_report(tmp_path / "b").parent / "predictions-tuned.jsonl"
    result = run("eval", "score", predictions, "--out", tmp_path / "b", "--baseline", baseline)
    assert result.returncode == 1 and f"error: {baseline}: no scores for 'tuned'" in result.stderr, result.stderr


# --- datagen reads


def test_check_names_a_skill_file_that_is_a_folder_or_a_symlink_loop(tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(PACK, pack)
    (pack / "zz.txt").mkdir()
    one_error_line(run("datagen", "check", pack), f"{pack / 'zz.txt'}: is a folder")
    (pack / "zz.txt").rmdir()
    (pack / "zz.txt").symlink_to(pack / "zz.txt")
    one_error_line(run("datagen", "check", pack), f"{pack / 'zz.txt'}: cannot read")


def test_a_skill_file_with_a_byte_order_mark_is_read(tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(PACK, pack)
    weather = pack / "weather.txt"
    weather.write_bytes(b"\xef\xbb\xbf" + weather.read_bytes())
    result = run("datagen", "check", pack)
    assert result.returncode == 0 and "10 skills OK" in result.stdout, result.stderr


@pytest.mark.parametrize("command", ["validate", "stats", "pairs", "manifest"])
def test_invalid_utf8_is_named_by_file_and_line(tmp_path, dataset, command):
    target = dataset / ("manifest.json" if command == "manifest" else "train.jsonl")
    data = target.read_bytes().split(b"\n")
    data[1] = data[1].replace(b'"', b'\xc3\x28"', 1)  # an invalid two-byte sequence on line 2
    target.write_bytes(b"\n".join(data))
    if command == "validate":
        result, line = run("datagen", "validate", target), 2
    elif command == "stats":
        result, line = run("datagen", "stats", dataset), 2
    elif command == "manifest":
        result, line = run("datagen", "validate", dataset / "test.jsonl"), 2
    else:
        pairs = tmp_path / "pairs.jsonl"
        pairs.write_bytes(b'{"skill": "weather", "user": "w", "call": "weather()", "source": "llm"}\n\xff\n')
        result, line, target = run("datagen", "skills", "--out", tmp_path / "x", "--pairs", pairs), 2, pairs
    one_error_line(result, f"{target}:{line}: not UTF-8 text")


def test_n_the_pack_cannot_meet_is_an_error_naming_the_shortfall(tmp_path):
    out = tmp_path / "data"
    line = one_error_line(run("datagen", "skills", "--out", out, "--n", 1_000_000_000), f"{PACK.relative_to(REPO)}: ")
    assert "--n 1000000000 cannot be met" in line and "of 100000000" in line
    assert not out.exists()


def test_a_pack_with_one_example_per_skill_cannot_be_split(write_pack, tmp_path):
    pack = write_pack(
        {
            "weather.txt": '#### Prompt:\nweather(location="[location]")\nWeather.\n\n#### Examples:\n'
            '### User: weather in Oslo\n### Assistant: weather(location="Oslo")\n',
        }
    )
    out = tmp_path / "data"
    line = one_error_line(run("datagen", "skills", "--pack", pack, "--out", out, "--n", 20), f"{pack}: weather: ")
    assert "1 base utterance(s)" in line
    assert not out.exists()
