"""`python -m datagen instructions`: pairs -> skill records -> pairs, pack checks, derived tools, errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO

from datagen.cli.instructions import instructions_command
from datagen.instructions import derived_prompt, derived_tools, style_problem
from skilltune.calls import Call
from skilltune.jsonio import read_jsonl, schema_problem
from skilltune.records import gold_call

PAIRS = REPO / "examples" / "instructions" / "pairs.jsonl"
PACK = REPO / "examples" / "skills"


def run(*args):
    return CliRunner().invoke(instructions_command, [str(arg) for arg in args])


def pair(instruction: str, name: str, arguments: dict, input_text: str = "") -> dict:
    call = {"name": name, "arguments": arguments}
    return {"instruction": instruction, "input": input_text, "output": {"function_call": call}}


def write_pairs(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def canonical(rows) -> list[str]:
    return sorted(json.dumps(row, sort_keys=True) for row in rows)


@pytest.mark.parametrize("style", ["python", "json", "tools"])
def test_sample_pairs_to_chat_validate_and_come_back_unchanged(tmp_path, style):
    out = tmp_path / "chat"
    result = run(PAIRS, "--to", "chat", "--out", out, "--style", style, "--pack", PACK, "--seed", "1")
    assert result.exit_code == 0, result.output
    # 30 pairs, 3 per function for 10 functions; each function with 3 distinct requests gives
    # val and test at least one: 10 / 10 / 10
    assert result.stdout.strip() == f"wrote {out}: train 10, val 10, test 10"
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["generator"], manifest["style"]) == ("datagen instructions", style)
    assert manifest["counts"]["val"] == {
        name: 1
        for name in ("math", "news", "notes", "openai", "other", "runapp", "story", "timecheck", "timer", "weather")
    }
    files = [str(out / f"{split}.jsonl") for split in ("train", "val", "test")]
    checked = subprocess.run(
        [sys.executable, "-m", "datagen", "validate", *files], cwd=REPO, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr  # calls parse, and no request is in two splits
    first = next(read_jsonl(out / "train.jsonl", "record"))
    assert first["messages"][0]["content"] == (
        "Answer with one function call: math, news, notes, openai, runapp, "
        "story, timecheck, timer, weather, or other()."
    )  # the pack's file order
    assert ("tools" in first) == (style == "tools")

    back = tmp_path / "back.jsonl"
    result = run(out, "--to", "instructions", "--out", back)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"wrote {back}: 30 instruction pairs"
    assert canonical(read_jsonl(back, "instruction")) == canonical(read_jsonl(PAIRS, "instruction"))


def test_round_trip_without_a_pack_keeps_inputs_types_and_nesting(tmp_path):
    rows = [
        pair("Book a table.", "book", {"people": 4, "time": "19:30", "outdoor": False}),
        pair(
            "Book a table for the party below.",
            "book",
            {"people": 12, "time": "20:00"},
            "It's Ana's birthday, twelve of us, 8pm.",
        ),
        pair("Play these songs", "play", {"songs": ["Intro", "Coda"], "volume": 0.6, "shuffle": None}),
        pair("Set the lights", "lights", {"rooms": {"kitchen": 80, "hall": 20}}),
        pair("What can you do?", "other", {}),
    ]
    source = write_pairs(tmp_path / "pairs.jsonl", rows)
    for style in ("python", "json", "tools"):
        out = tmp_path / style
        assert (
            run(
                source, "--to", "chat", "--out", out, "--style", style, "--val-fraction", "0", "--test-fraction", "0"
            ).exit_code
            == 0
        )
        assert sorted(path.name for path in out.iterdir()) == ["manifest.json", "train.jsonl"]
        records = list(read_jsonl(out / "train.jsonl", "record"))
        assert records[0]["messages"][0]["content"] == "Answer with one function call: book, lights, play, or other()."
        assert gold_call(records[0]) == Call("book", {"people": 4, "time": "19:30", "outdoor": False})
        back = tmp_path / f"{style}.jsonl"
        assert run(out, "--to", "instructions", "--out", back).exit_code == 0
        assert canonical(read_jsonl(back, "instruction")) == canonical(rows), style


def test_derived_tools_types_and_required():
    calls = [
        Call("book", {"people": 4, "time": "19:30"}),
        Call("book", {"people": 2.5, "time": "8pm", "vip": True}),
        Call("book", {"people": 3, "note": None}),
        Call("note", {"text": ["a"], "tags": {"x": 1}}),
    ]
    assert derived_tools(calls) == [
        {
            "type": "function",
            "function": {
                "name": "book",
                "parameters": {
                    "type": "object",
                    # people: integer and number seen -> number; note: only null; time missing once -> optional
                    "properties": {
                        "people": {"type": "number"},
                        "time": {"type": "string"},
                        "vip": {"type": "boolean"},
                        "note": {"type": "null"},
                    },
                    "required": ["people"],
                    "additionalProperties": False,
                },
            },
        },
        {
            "type": "function",
            "function": {
                "name": "note",
                "parameters": {
                    "type": "object",
                    "properties": {"text": {"type": "array"}, "tags": {"type": "object"}},
                    "required": ["text", "tags"],
                    "additionalProperties": False,
                },
            },
        },
    ]
    mixed = derived_tools([Call("f", {"x": "a"}), Call("f", {"x": 1})])
    assert mixed[0]["function"]["parameters"]["properties"] == {"x": {"type": ["integer", "string"]}}
    assert derived_prompt(["timer", "alarm"]) == "Answer with one function call: alarm, timer."


def test_repeated_requests_are_dropped_with_a_warning(tmp_path):
    rows = [
        pair("weather in Oslo", "weather", {"location": "Oslo"}),
        pair("Weather in Oslo?", "weather", {"location": "Oslo"}),  # same request normalized
        pair("open paint", "runapp", {"program": "paint"}),
        pair("open paint", "runapp", {"program": "mspaint"}),  # the same request, another call
        pair("time in Lima", "timecheck", {"location": "Lima"}),
    ]
    result = run(
        write_pairs(tmp_path / "p.jsonl", rows),
        "--to",
        "chat",
        "--out",
        tmp_path / "out",
        "--val-fraction",
        "0",
        "--test-fraction",
        "0",
    )
    assert result.exit_code == 0, result.output
    # 5 pairs: the second Oslo is a repeat, both "open paint" are ambiguous -> 2 kept, 3 dropped
    assert result.stderr.strip() == "warning: dropped 3 pairs whose request was already there (or claimed by two calls)"
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["counts"] == {
        "train": {"timecheck": 1, "weather": 1}
    }


def test_style_problem_catches_calls_a_style_cannot_carry():
    assert style_problem(Call("weather", {"location": "Oslo"}), "python") is None
    assert "cannot be written as a python answer" in style_problem(Call("f", {"class": "x"}), "python")
    assert style_problem(Call("f", {"class": "x"}), "json") is None


# --- errors: one line naming file:line, exit 1, no output folder


def _assert_fails_cleanly(tmp_path, result, expected: str):
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"error: {expected}"]
    assert not (tmp_path / "out").exists()
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".out.")]


def test_function_not_in_the_pack(tmp_path):
    source = write_pairs(
        tmp_path / "p.jsonl",
        [pair("weather in Oslo", "weather", {"location": "Oslo"}), pair("play jazz", "music", {"genre": "jazz"})],
    )
    result = run(source, "--to", "chat", "--out", tmp_path / "out", "--pack", PACK)
    _assert_fails_cleanly(
        tmp_path,
        result,
        f"{source}:2: function 'music' is not a skill of the pack (math, news, "
        "notes, openai, other, runapp, story, timecheck, timer, weather)",
    )


def test_arguments_that_do_not_fit_the_skill_schema(tmp_path):
    source = write_pairs(
        tmp_path / "p.jsonl",
        [
            pair("weather in Oslo", "weather", {"location": "Oslo"}),
            pair("lose my notes", "notes", {"action": "delete"}),
            pair("weather in Rome", "weather", {"city": "Rome"}),
        ],
    )
    result = run(source, "--to", "chat", "--out", tmp_path / "out", "--pack", PACK)
    _assert_fails_cleanly(
        tmp_path,
        result,
        f'{source}:2: notes(action="delete") does not fit '
        f'notes(action="add|list", note="[note]"): action: \'delete\' is not one '
        "of ['add', 'list']",
    )


def test_schema_violations_name_the_line(tmp_path):
    source = tmp_path / "p.jsonl"
    source.write_text(
        json.dumps(pair("weather in Oslo", "weather", {"location": "Oslo"}))
        + "\n\n"
        + json.dumps({"instruction": "weather", "input": "", "output": "weather()"})
        + "\n"
    )
    result = run(source, "--to", "chat", "--out", tmp_path / "out")
    _assert_fails_cleanly(tmp_path, result, f"{source}:3: output: 'weather()' is not of type 'object'")
    source.write_text(json.dumps(pair("", "weather", {})) + "\n")
    result = run(source, "--to", "chat", "--out", tmp_path / "out")
    _assert_fails_cleanly(tmp_path, result, f"{source}:1: instruction: '' should be non-empty")


def test_a_call_the_style_cannot_write_is_named(tmp_path):
    source = write_pairs(tmp_path / "p.jsonl", [pair("x", "f", {"class": "a"})])
    result = run(source, "--to", "chat", "--out", tmp_path / "out", "--style", "python")
    assert result.stderr.startswith(f"error: {source}:1: cannot be written as a python answer: ")
    _assert_fails_cleanly(tmp_path, result, result.stderr.strip()[len("error: ") :])


def test_export_refuses_chat_datasets_and_multi_turn_records(tmp_path):
    chat = tmp_path / "chat"
    chat.mkdir()
    (chat / "train.jsonl").write_text(
        json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello."}]}) + "\n"
    )
    (chat / "manifest.json").write_text(
        json.dumps({"generator": "x", "seed": 0, "style": "chat", "source": "", "counts": {}, "files": {}})
    )
    result = run(chat, "--to", "instructions", "--out", tmp_path / "out")
    _assert_fails_cleanly(
        tmp_path,
        result,
        f'{chat / "manifest.json"}: style "chat": free-text answers, not '
        "function calls; nothing to export as instruction pairs",
    )
    records = tmp_path / "records.jsonl"
    turns = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "other()"},
        {"role": "user", "content": "weather"},
        {"role": "assistant", "content": "weather()"},
    ]
    records.write_text(json.dumps({"messages": turns[2:]}) + "\n" + json.dumps({"messages": turns}) + "\n")
    result = run(records, "--to", "instructions", "--out", tmp_path / "out")
    _assert_fails_cleanly(
        tmp_path, result, f"{records}:2: 2 exchanges; an instruction pair holds one request and its call"
    )


def test_export_writes_schema_valid_pairs_from_a_skills_dataset(tmp_path):
    data = tmp_path / "skills"
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "datagen",
            "skills",
            "--out",
            str(data),
            "--n",
            "100",
            "--seed",
            "2",
            "--style",
            "tools",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    result = run(data, "--to", "instructions", "--out", tmp_path / "pairs.jsonl", "--splits", "train")
    assert result.exit_code == 0, result.output
    manifest = json.loads((data / "manifest.json").read_text())
    rows = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert len(rows) == sum(manifest["counts"]["train"].values())
    assert all(schema_problem(row, "instruction") is None for row in rows)
    assert {row["output"]["function_call"]["name"] for row in rows} == set(manifest["counts"]["train"])
