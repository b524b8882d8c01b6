"""The questions and answers of `datagen documents` (datagen/documents_qa.py): the two requests, reading
their answers, and whole runs against the local test server and the local SmolLM2."""

import json
import time

import pytest
from click.testing import CliRunner
from command_runs import DOCUMENTS_ENV, run_documents, write_tree
from conftest import needs_smollm2
from openai_server import ScriptedOpenAIServer, documents_reply

from datagen.cli.documents import documents_command
from datagen.documents import Chunk
from datagen.documents_qa import (
    QUESTIONS_SCHEMA,
    UNKNOWN_ANSWER,
    answer_body,
    clean_answer,
    parse_questions,
    question_body,
)
from skilltune.jsonio import read_json, read_jsonl


@pytest.fixture
def server():
    with ScriptedOpenAIServer(default="reply", reply=documents_reply) as test_server:
        yield test_server


# --- requests and answers


def test_question_request_is_typed_json_and_answer_request_states_the_rule():
    chunk = Chunk("a.md", 0, 0, 20, "The ferry leaves at 6.")
    body = question_body(chunk, 3, model="m", seed=1, max_tokens=100)
    response_format = body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["strict"] is True
    assert response_format["json_schema"]["schema"] == QUESTIONS_SCHEMA
    assert QUESTIONS_SCHEMA["required"] == ["questions"] and QUESTIONS_SCHEMA["properties"]["questions"]["items"] == {
        "type": "string"
    }
    assert (
        "The ferry leaves at 6." in body["messages"][-1]["content"]
        and "Write 3 different questions" in body["messages"][-1]["content"]
    )
    answer = answer_body(chunk, "When does the ferry leave?", model="m", seed=1, max_tokens=100)
    assert "response_format" not in answer
    assert (
        f"If the text does not contain the answer, reply exactly: {UNKNOWN_ANSWER}" in answer["messages"][-1]["content"]
    )
    assert UNKNOWN_ANSWER == "I don't know."
    assert "a.md" not in json.dumps(body) + json.dumps(answer)  # the cache key does not depend on file names


def test_typed_questions_are_parsed_and_checked():
    parsed = parse_questions('{"questions": ["Where is it?", "When is it?"]}', 3)
    assert (parsed.questions, parsed.skipped, parsed.typed) == (["Where is it?", "When is it?"], 0, True)
    fenced = parse_questions('```json\n{"questions": ["Who wrote it?"]}\n```', 3)
    assert fenced.questions == ["Who wrote it?"] and fenced.typed
    bare = parse_questions('["What is A?", "What is B?"]', 3)
    assert bare.questions == ["What is A?", "What is B?"]
    # three asked for, five given, one a repeat (by normalized text): 3 kept, 2 skipped
    many = parse_questions(json.dumps({"questions": ["Q one?", "q ONE", "Q two?", "Q three?", "Q four?"]}), 3)
    assert many.questions == ["Q one?", "Q two?", "Q three?"] and many.skipped == 2


@pytest.mark.parametrize(
    "garbage",
    [
        '{"questions": "What is it?"}',  # not an array
        '{"questions": ["ok?", 42]}',  # an item that is not a string
        '{"qs": ["What is it?"]}',  # wrong key
        '{"questions": ["What?"], "extra": 1}',  # additional property
        "42",
    ],
)
def test_json_that_is_not_the_typed_shape_is_skipped_and_counted(garbage):
    parsed = parse_questions(garbage, 3)
    assert parsed.questions == [] and parsed.skipped >= 1


def test_plain_text_questions_one_per_line_and_garbage_counted():
    text = (
        "Here are three questions:\n1. What is the kettle's capacity?\n- How long is the warranty?\n\n"
        "Thanks!\nQ3: Why descale?"
    )
    parsed = parse_questions(text, 3)
    assert parsed.questions == ["What is the kettle's capacity?", "How long is the warranty?", "Why descale?"]
    assert parsed.skipped == 2 and not parsed.typed  # the opening line and "Thanks!"
    assert parse_questions("Sure! Here you go. Enjoy", 3).questions == []
    assert parse_questions("", 3).skipped == 0
    assert parse_questions("{not json at all?", 3).questions == ["{not json at all?"]  # a line ending in ?


def test_refusals_become_exactly_the_unknown_answer():
    for text in ("I don't know.", "i dont know", "  I do not know!  ", "I don\u2019t know."):
        assert clean_answer(text) == UNKNOWN_ANSWER
    assert (
        clean_answer("I don't know the hours, but the text says 9 am.")
        == "I don't know the hours, but the text says 9 am."
    )
    assert clean_answer("  Nine o'clock. \n") == "Nine o'clock."


# --- whole runs against the local server


def test_unknown_answers_are_kept_exactly_or_dropped_on_request(server, tmp_path):
    root = write_tree(
        tmp_path / "docs", {"a.md": "UNANSWERABLE. The museum opens at ten.", "b.md": "The bus runs hourly."}
    )
    out = tmp_path / "out"
    result = run_documents(
        server, root, out, "--questions-per-chunk", "2", "--system", "Answer from the house documents."
    )
    assert result.exit_code == 0, result.output
    pairs = read_json(out / "qa.json", "qa")["pairs"]
    assert [pair["answer"] == UNKNOWN_ANSWER for pair in pairs] == [False, True, False, False]
    assert '1 answered "I don\'t know.", 0 dropped' in result.stdout
    records = list(read_jsonl(out / "train.jsonl", "record")) + list(read_jsonl(out / "val.jsonl", "record"))
    assert all(
        record["messages"][0] == {"role": "system", "content": "Answer from the house documents."} for record in records
    )

    dropped = run_documents(server, root, tmp_path / "dropped", "--questions-per-chunk", "2", "--drop-unknown")
    assert dropped.exit_code == 0, dropped.output
    assert [pair["answer"] for pair in read_json(tmp_path / "dropped" / "qa.json", "qa")["pairs"]].count(
        UNKNOWN_ANSWER
    ) == 0
    assert '1 answered "I don\'t know.", 1 dropped' in dropped.stdout


def test_garbage_question_answers_are_counted_and_their_chunks_skipped(server, tmp_path):
    root = write_tree(
        tmp_path / "docs", {"a.md": "GARBAGE here.", "b.md": "The bakery sells rye bread.", "c.md": "GARBAGE too."}
    )
    out = tmp_path / "out"
    result = run_documents(server, root, out, "--questions-per-chunk", "3")
    assert result.exit_code == 0, result.output
    assert "3 chunks, 6 requests" in result.stdout  # 3 question requests, 3 answers for b.md only
    assert "2 answers without a question" in result.stdout and "2 unusable items" in result.stdout
    assert {pair["source"] for pair in read_json(out / "qa.json", "qa")["pairs"]} == {"b.md"}


def test_a_failed_run_resumes_from_the_cache(tmp_path):
    root = write_tree(tmp_path / "docs", {f"{name}.md": f"Document {name} says {name} twice." for name in "abcd"})
    out, cache = tmp_path / "out", tmp_path / "cache"
    # one at a time, answers before the next chunk's questions: a#q, a#answer, b#q succeed, b#answer gets 500
    with ScriptedOpenAIServer(modes=["reply"] * 3, default="500", reply=documents_reply) as failing:
        failed = run_documents(failing, root, out, "--questions-per-chunk", "1", "--concurrency", "1", cache=cache)
        assert failed.exit_code == 1 and failing.counts == {"reply": 3, "500": 1}
    assert len(list(cache.iterdir())) == 3 and not out.exists()
    with ScriptedOpenAIServer(default="reply", reply=documents_reply) as healthy:
        resumed = run_documents(healthy, root, out, "--questions-per-chunk", "1", "--concurrency", "1", cache=cache)
        assert resumed.exit_code == 0, resumed.output
        assert healthy.total == 5  # 8 planned requests, 3 already answered
    assert "4 chunks, 5 requests, 3 cache hits; 4 questions" in resumed.stdout


# --- the offline default: the embedded SmolLM2


@needs_smollm2
def test_local_smollm2_backend_runs_offline_and_a_rerun_is_cached(tmp_path):
    root = write_tree(
        tmp_path / "docs",
        {
            "rules.txt": (
                "Check-out is by 11 am. Breakfast is served in the garden room from 7:30 to 10 am. "
                "Dogs are welcome in the two ground-floor rooms for a fee of 15 euros per night."
            )
        },
    )
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = [str(root), "--out", str(out), "--cache", str(cache), "--questions-per-chunk", "1", "--max-tokens", "24"]
    env = {**DOCUMENTS_ENV, "OPENAI_API_KEY": None}
    started = time.monotonic()
    result = CliRunner().invoke(documents_command, args, env=env)
    seconds = time.monotonic() - started
    assert result.exit_code == 0, result.output
    # greedy decoding is deterministic: one question (plain text, not JSON), then one answer
    assert "1 chunks, 2 requests, 0 cache hits; 1 questions" in result.stdout
    pairs = read_json(out / "qa.json", "qa")["pairs"]
    assert len(pairs) == 1 and pairs[0]["question"].endswith("?") and pairs[0]["answer"]
    assert read_json(out / "manifest.json", "manifest")["options"]["backend"] == "local"
    assert len(list(cache.iterdir())) == 2
    print(f"\nlocal SmolLM2, 1 chunk, 1 question: {seconds:.1f} s; {pairs[0]}")

    again = CliRunner().invoke(documents_command, args, env=env)
    assert again.exit_code == 0, again.output
    assert "0 requests, 2 cache hits" in again.stdout
