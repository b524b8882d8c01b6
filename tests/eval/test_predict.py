"""eval/predict.py backends and `python -m eval run --backend ...`.

The OpenAI backend talks HTTP to tests/openai_server.py on 127.0.0.1 (no client is mocked): order,
tools, retries, Retry-After, the concurrency window and the API key are the real client's. The
transformers backend runs the embedded SmolLM2-135M on CPU with a few short generations.
"""

import copy
import json
import sys

import pytest
from click.testing import CliRunner
from conftest import SMOLLM2, require_smollm2
from endpoint_records import SYSTEM, TOOLS, last_user, local_env, records, write_split
from openai_server import ScriptedOpenAIServer

from eval.cli import cli
from eval.predict import (
    OpenAIBackend,
    PredictError,
    TransformersBackend,
    VLLMBackend,
    output_text,
    prediction_rows,
)
from skilltune.calls import Call
from skilltune.records import chat_record

pytestmark = pytest.mark.usefixtures(local_env.__name__)  # every test: local server, known key


def backend(server: ScriptedOpenAIServer, **options) -> OpenAIBackend:
    return OpenAIBackend(server.url, "test-model", **options)


# --- OpenAI backend


def test_outputs_come_back_in_record_order_despite_jitter():
    data = records(20)
    with ScriptedOpenAIServer(default="reply", reply=last_user, jitter_ms=60) as server:
        outputs = backend(server, concurrency=8).generate(data)
        answered = [last_user(entry["body"]) for entry in server.log]
    assert outputs == [record["messages"][1]["content"] for record in data]
    assert answered != outputs  # the server really answered out of order


def test_request_has_the_prompt_without_the_gold_and_the_tools_when_present():
    data = [records(1, "tools")[0], records(1, "python")[0]]
    with ScriptedOpenAIServer(default="reply", reply=lambda body: "ok") as server:
        backend(server, concurrency=1, max_tokens=17).generate(data)
        bodies = [entry["body"] for entry in server.log]
    for body, record in zip(bodies, data):
        assert body["messages"] == record["messages"][:-1]
        assert body["temperature"] == 0 and body["max_tokens"] == 17 and body["model"] == "test-model"
    assert bodies[0]["tools"] == TOOLS
    assert "tools" not in bodies[1]


def test_tool_call_answers_are_serialized_as_json_text():
    message = {
        "content": None,
        "tool_calls": [
            {"id": "call_7", "type": "function", "function": {"name": "weather", "arguments": '{"location": "Oslo"}'}}
        ],
    }
    with ScriptedOpenAIServer(default="reply", reply=lambda body: message) as server:
        [output] = backend(server).generate(records(1, "tools"))
    assert json.loads(output) == {
        "tool_calls": [{"type": "function", "function": {"name": "weather", "arguments": '{"location": "Oslo"}'}}]
    }
    assert output_text({"content": 'weather(location="Oslo")'}) == 'weather(location="Oslo")'
    assert output_text({"content": None}) == ""


def test_answers_of_the_wrong_shape_are_scored_as_text_not_a_crash():
    assert output_text({"content": 42}) == "42"
    assert output_text({"content": [1, 2]}) == "[1, 2]"
    assert output_text({"tool_calls": "nope", "content": "other()"}) == "other()"
    assert output_text({"tool_calls": [{"function": "x"}, 7]}) == ""
    assert output_text("just text") == '"just text"'
    modes = ["content_number", "content_list", "content_null"]
    with ScriptedOpenAIServer(modes=modes, default="reply", reply=last_user) as server:
        outputs = backend(server, concurrency=1, max_retries=0).generate(records(3))
    assert outputs == ["42", "[1, 2]", ""]


def test_429_with_retry_after_and_500_are_retried_then_succeed():
    with ScriptedOpenAIServer(modes=["429", "500"], default="reply", reply=last_user, retry_after="1") as server:
        outputs = backend(server, max_retries=2).generate(records(1))
        log = server.log
    assert outputs == [records(1)[0]["messages"][1]["content"]]
    assert [entry["mode"] for entry in log] == ["429", "500", "reply"]
    assert [entry["retry_count"] for entry in log] == ["0", "1", "2"]
    assert log[1]["arrived"] - log[0]["answered"] >= 0.9  # the client waited the Retry-After second


def test_too_many_500s_raise_predict_error_naming_endpoint_and_record():
    with ScriptedOpenAIServer(modes=["reply", "reply", "500", "500"], default="reply", reply=last_user) as server:
        with pytest.raises(PredictError) as failure:
            backend(server, concurrency=1, max_retries=1).generate(records(5))
        assert server.total == 4  # nothing is sent after the failure
    message = str(failure.value)
    assert server.url in message and "record 2" in message and "HTTP 500" in message
    assert "\n" not in message


def test_unreachable_endpoint_is_a_predict_error_naming_the_refusal():
    with ScriptedOpenAIServer() as server:
        url = server.url  # closed on leaving: nothing listens there any more
    with pytest.raises(PredictError) as failure:
        OpenAIBackend(url, "m", max_retries=0, timeout=5).generate(records(1))
    assert str(failure.value).endswith(
        f"cannot reach {url} for record 0 (model 'm', max retries 0): connection refused (nothing listens there)"
    )  # not "timed out"


def test_an_endpoint_that_does_not_answer_in_time_is_a_timeout():
    with ScriptedOpenAIServer(default="slow", slow_ms=3000) as server:
        with pytest.raises(PredictError) as failure:
            OpenAIBackend(server.url, "m", max_retries=0, timeout=0.5).generate(records(1))
    assert str(failure.value).startswith(f"no answer from {server.url} within 0.5 s (timed out) for record 0")


@pytest.mark.parametrize(
    "mode, message",
    [
        ("short_body", "was cut short: Not enough data to satisfy content length header"),
        ("cut_json", "the answer is not JSON (cut short?): "),
    ],
)
def test_a_truncated_response_body_is_a_one_line_predict_error(mode, message):
    with ScriptedOpenAIServer(default=mode) as server:
        with pytest.raises(PredictError) as failure:
            OpenAIBackend(server.url, "m", max_retries=0, timeout=5).generate(records(1))
    text = str(failure.value)
    assert server.url in text and message in text and "record 0" in text and "\n" not in text


def test_credentials_in_the_base_url_are_an_error_that_never_shows_the_password():
    with ScriptedOpenAIServer(default="reply", reply=last_user) as server:
        url = server.url.replace("http://", "http://user:hunter2-secret@")
        with pytest.raises(PredictError) as failure:
            OpenAIBackend(url, "m", max_retries=0, timeout=5).generate(records(1))
        assert server.total == 0
    text = str(failure.value)
    assert "http://***@127.0.0.1:" in text and "not supported" in text and "hunter2" not in text


def test_at_most_concurrency_requests_are_in_flight():
    with ScriptedOpenAIServer(default="reply", reply=last_user, latency_ms=60, jitter_ms=30) as server:
        outputs = backend(server, concurrency=3).generate(records(15))
        log, peak = server.log, server.peak_in_flight()
    assert len(outputs) == 15 and len(log) == 15
    assert peak == 3


def test_prediction_rows_hold_the_gold_as_python_call_text_in_every_style():
    for style in ("python", "json", "tools"):
        [row] = prediction_rows(records(1, style), ["out"], "tuned", "test")
        assert row["gold"] == 'weather(location="Berlin")' and row["output"] == "out" and row["index"] == 0


# --- vLLM


def test_vllm_backend_without_vllm_names_the_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "vllm", None)  # an import of vllm fails, installed or not
    with pytest.raises(
        PredictError, match=r"vLLM is not installed: pip install 'skilltune\[gpu\]' \(needs a CUDA GPU\)"
    ):
        VLLMBackend("models/SmolLM2-135M-Instruct")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    config = tmp_path / "c.yml"
    config.write_text(f"base_model: {SMOLLM2}\noutput_dir: {adapter}\n")
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "--backend",
            "vllm",
            "--config",
            str(config),
            "--test",
            str(write_split(tmp_path, records(1))),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 1
    assert result.output.startswith("error: vLLM is not installed")


# --- transformers on the embedded SmolLM2-135M (CPU)


@pytest.fixture(scope="module")
def smollm2():
    import torch

    # one torch thread: on cores shared with other busy processes, torch's threads wait on each
    # other and a decoding step takes ~6x longer than with one (measured on 2 shared cores)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield TransformersBackend(require_smollm2(), batch_size=4, max_new_tokens=24)
    torch.set_num_threads(threads)


def varied_records() -> list[dict]:
    """Users of very different lengths, so left padding is long within a batch."""
    users = [
        "weather in Oslo",
        "what's the weather going to be like this afternoon in Rio de Janeiro, Brazil",
        "timer",
        "set a timer for ten minutes please, the pasta is on",
        "hi",
        "rain in Lima tomorrow?",
    ]
    return [chat_record(SYSTEM, user, Call("other", {})) for user in users]


def test_batched_and_one_at_a_time_give_the_same_outputs(smollm2):
    data = varied_records()
    batched = smollm2.generate(data)
    one_at_a_time = copy.copy(smollm2)
    one_at_a_time.batch_size = 1
    assert one_at_a_time.generate(data) == batched
    assert all(batched)


def test_the_backend_answers_each_records_prompt_and_tools_with_the_shared_generator(smollm2):
    # how chats are batched, decoded and constrained is tests/core/test_local_model.py's
    from skilltune.local_model import Chat, generate

    data = [*records(2, "tools"), *varied_records()[:2]]
    chats = [Chat(record["messages"][:-1], record.get("tools")) for record in data]
    assert smollm2.generate(data) == generate(smollm2.model, smollm2.tokenizer, chats, batch_size=4, max_new_tokens=24)


def test_the_backend_builds_its_logits_processors_once_per_batch(smollm2):
    prompt_lengths: list[int] = []
    short = copy.copy(smollm2)
    short.batch_size, short.max_new_tokens = 2, 2
    short.logits_processors = lambda tokenizer, prompt_length, chats: prompt_lengths.append(prompt_length) or []
    short.generate(varied_records()[:3])
    assert len(prompt_lengths) == 2  # 3 records at batch size 2: 2 + 1


def test_eval_predict_names_the_shared_generators_functions():
    from eval import predict
    from skilltune import local_model

    # eval/cli/run.py and scripts import these from eval.predict; they are the shared generator's
    for name in ("training_chat_template", "load_model", "attach_adapter", "batches"):
        assert getattr(predict, name) is getattr(local_model, name)
