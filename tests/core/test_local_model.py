"""skilltune/local_model.py: the local transformers generator eval's TransformersBackend and
datagen's documents LocalBackend share, on the embedded SmolLM2-135M (CPU, a few short generations).

The backend on top of it (records in, outputs in record order) is tests/eval/test_predict.py's."""

import pytest
from conftest import REPO, require_smollm2

from skilltune.local_model import Chat, batches, generate, load_model, render_prompts, training_chat_template

SYSTEM = "Answer with one function call: weather, timer, or other()."
LOCATION = {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
TOOLS = [
    {"type": "function", "function": {"name": "weather", "description": "Weather at a place", "parameters": LOCATION}}
]


@pytest.fixture(scope="module")
def smollm2():
    import torch

    # one torch thread: on cores shared with other busy processes, torch's threads wait on each
    # other and a decoding step takes ~6x longer than with one (measured on 2 shared cores)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load_model(require_smollm2())
    torch.set_num_threads(threads)


def varied_chats() -> list[Chat]:
    """Users of very different lengths, so left padding is long within a batch."""
    users = [
        "weather in Oslo",
        "what's the weather going to be like this afternoon in Rio de Janeiro, Brazil",
        "timer",
        "set a timer for ten minutes please, the pasta is on",
        "hi",
        "rain in Lima tomorrow?",
    ]
    return [Chat([{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]) for user in users]


def test_batched_and_one_at_a_time_give_the_same_outputs(smollm2):
    model, tokenizer = smollm2
    chats = varied_chats()
    prompts = render_prompts(tokenizer, chats)
    lengths = [len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) for prompt in prompts]
    # 6 chats at batch size 4: two batches of 3, longest prompts first; the first really is padded
    longest_first = sorted(range(6), key=lambda index: -lengths[index])
    assert batches(lengths, 4) == [longest_first[:3], longest_first[3:]]
    first = [lengths[index] for index in batches(lengths, 4)[0]]
    assert max(first) - min(first) >= 10
    batched = generate(model, tokenizer, chats, batch_size=4, max_new_tokens=24)
    assert generate(model, tokenizer, chats, batch_size=1, max_new_tokens=24, label=None) == batched
    assert all(batched)


@pytest.mark.parametrize(
    "count, batch_size, sizes",
    [(0, 4, []), (1, 32, [1]), (5, 2, [2, 2, 1]), (100, 32, [25, 25, 25, 25]), (64, 32, [32, 32]), (33, 32, [17, 16])],
)
def test_batches_are_few_even_and_longest_first(count, batch_size, sizes):
    lengths = [(index * 37) % 11 for index in range(count)]
    groups = batches(lengths, batch_size)
    assert [len(group) for group in groups] == sizes
    assert sorted(index for group in groups for index in group) == list(range(count))  # each chat once
    flat = [lengths[index] for group in groups for index in group]
    assert flat == sorted(lengths, reverse=True)


def test_logits_processors_are_built_per_batch_and_change_the_output(smollm2):
    from transformers import LogitsProcessor

    model, tokenizer = smollm2
    chats = varied_chats()[:3]
    calls: list[int] = []
    batch_sizes: list[int] = []
    first_choice: dict[int, list[int]] = {}  # batch number -> greedy first token of each row

    class Record(LogitsProcessor):  # passive: notes the first token each row chose
        def __init__(self, batch: int, prompt_length: int):
            self.batch, self.prompt_length = batch, prompt_length

        def __call__(self, input_ids, scores):
            if input_ids.shape[1] == self.prompt_length:
                first_choice[self.batch] = scores.argmax(-1).tolist()
            return scores

    class Ban(Record):  # bans, at the first step, the token each row chose there
        def __call__(self, input_ids, scores):
            if input_ids.shape[1] == self.prompt_length:
                scores[range(len(scores)), first_choice[self.batch]] = float("-inf")
            return scores

    def factory(kind):
        def processors(given_tokenizer, prompt_length: int, batch_chats) -> list:
            assert given_tokenizer is tokenizer
            assert all(chat in chats for chat in batch_chats)  # the batch's own chats, one per row
            batch_sizes.append(len(batch_chats))
            calls.append(prompt_length)
            return [kind(len(calls) % 2, prompt_length)]  # two batches per run: 2 + 1 chats

        return processors

    plain = generate(model, tokenizer, chats, batch_size=2, max_new_tokens=6, logits_processors=factory(Record))
    assert len(calls) == 2 and sorted(first_choice) == [0, 1]  # one call per batch
    assert sorted(batch_sizes) == [1, 2]
    banned = generate(model, tokenizer, chats, batch_size=2, max_new_tokens=6, logits_processors=factory(Ban))
    assert len(calls) == 4
    assert calls[2:] == calls[:2]  # the padded prompt length of each batch
    for before, after in zip(plain, banned):
        assert before != after


def test_prompts_are_the_chat_template_with_tools_and_the_generation_prompt(smollm2):
    _, tokenizer = smollm2
    messages = [{"role": "user", "content": "weather in Oslo"}]
    assert render_prompts(tokenizer, [Chat(messages)]) == [
        tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ]
    shows_tools = (
        "{% for t in tools or [] %}<{{ t.function.name }}>{% endfor %}"
        "{% for m in messages %}[{{ m.content }}]{% endfor %}{% if add_generation_prompt %}>>{% endif %}"
    )
    _, templated = load_model(require_smollm2(), chat_template=shows_tools, local_files_only=True, device="cpu")
    assert render_prompts(templated, [Chat(messages, tools=TOOLS), Chat(messages)]) == [
        "<weather>[weather in Oslo]>>",
        "[weather in Oslo]>>",
    ]
    assert templated.padding_side == "left" and templated.pad_token is not None


def test_no_label_shows_no_progress_bar(smollm2, capsys):
    model, tokenizer = smollm2
    [text] = generate(model, tokenizer, varied_chats()[:1], max_new_tokens=2, label=None)
    assert isinstance(text, str) and capsys.readouterr().err == ""


def test_training_chat_template_is_the_one_the_config_trains_with():
    import yaml

    smollm2 = yaml.safe_load((REPO / "configs" / "smollm2.yml").read_text())
    assert training_chat_template(smollm2, REPO) == (REPO / "configs" / "templates" / "chatml_tools.jinja").read_text()
    assert training_chat_template({"chat_template": "tokenizer_default"}) is None
    assert training_chat_template({}) is None
    assert "<tool_call>" in training_chat_template({"chat_template": "qwen_25"})  # Axolotl's own, by name
    inline = "{% for m in messages %}{{ m.content }}{% endfor %}"
    assert training_chat_template({"chat_template": "jinja", "chat_template_jinja": inline}) == inline
