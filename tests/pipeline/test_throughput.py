"""skilltune.throughput driven by a real transformers.Trainer on a tiny Llama (seconds on a CPU);
the GPU check's report and script are tested in test_gpu_check.py."""

from __future__ import annotations

import json
import sys
import time

import pytest
import torch
from conftest import REPO

from skilltune.throughput import ThroughputCallback, base_parameters, count_tokens, peak_tflops

sys.path.insert(0, str(REPO / "scripts"))

ROWS, LENGTH, PAD = 16, 12, 0
BATCH, ACCUMULATION, STEPS = 2, 2, 4
REAL_TOKENS = [4 + (i * 5) % 9 for i in range(ROWS)]  # 4..12 non-padding tokens a row, the rest padding


def dataset():
    generator = torch.Generator().manual_seed(0)
    rows = []
    for n in REAL_TOKENS:
        ids = torch.full((LENGTH,), PAD)
        ids[:n] = torch.randint(1, 64, (n,), generator=generator)
        mask = (torch.arange(LENGTH) < n).long()
        rows.append({"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, -100)})
    return rows


def tiny_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=64,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=64,
        )
    )


class Sleepy:
    """Slows the warm-up step, every measured step and every evaluation by known amounts."""

    WARM_UP, STEP, EVALUATION = 1.5, 0.2, 1.5


def train(tmp_path, callback=True, sleepy=False, **overrides):
    """(throughput.json or None, trainer, wall seconds of trainer.train())."""
    from torch.utils.data import SequentialSampler
    from transformers import Trainer, TrainerCallback, TrainingArguments

    class InOrder(Trainer):
        # in order, so the test knows which rows the warm-up step took
        def _get_train_sampler(self, train_dataset=None):
            return SequentialSampler(self.train_dataset)

        def evaluate(self, *args, **kwargs):
            if sleepy:
                time.sleep(Sleepy.EVALUATION)
            return super().evaluate(*args, **kwargs)

    class SlowSteps(TrainerCallback):
        def __init__(self):
            self.ends, self.evaluated = {}, {}  # step -> when it ended, when its evaluation ended

        def on_step_begin(self, args, state, control, **kwargs):
            time.sleep(Sleepy.WARM_UP if state.global_step == 0 else Sleepy.STEP)

        def on_step_end(self, args, state, control, **kwargs):
            self.ends[state.global_step] = time.perf_counter()

        def on_evaluate(self, args, state, control, **kwargs):
            self.evaluated[state.global_step] = time.perf_counter()

    out = tmp_path / "out"
    options = dict(
        output_dir=str(out),
        per_device_train_batch_size=BATCH,
        gradient_accumulation_steps=ACCUMULATION,
        max_steps=STEPS,
        learning_rate=1e-3,
        logging_steps=100,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
        dataloader_num_workers=0,
    )
    if sleepy:
        options.update(eval_strategy="steps", eval_steps=2, per_device_eval_batch_size=4)
    options.update(overrides)
    callbacks = ([ThroughputCallback()] if callback else []) + ([SlowSteps()] if sleepy else [])
    trainer = InOrder(
        model=tiny_model(),
        args=TrainingArguments(**options),
        train_dataset=dataset(),
        eval_dataset=dataset()[:4] if sleepy else None,
        callbacks=callbacks,
    )
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start
    path = out / "throughput.json"
    return (json.loads(path.read_text()) if path.exists() else None), trainer, wall


@pytest.fixture
def no_peak(monkeypatch):
    monkeypatch.delenv("SKILLTUNE_PEAK_TFLOPS", raising=False)


def test_the_report_counts_the_non_padding_tokens_of_the_steps_after_warm_up(tmp_path, no_peak):
    report, trainer, wall = train(tmp_path)
    warm_up_rows = BATCH * ACCUMULATION
    assert report["steps"] == STEPS - 1
    assert report["tokens"] == sum(REAL_TOKENS[warm_up_rows:])
    assert report["tokens"] < (ROWS - warm_up_rows) * LENGTH  # padding is not counted
    assert 0 < report["seconds"] < wall
    assert report["tokens_per_second"] == pytest.approx(report["tokens"] / report["seconds"], rel=1e-9)
    assert report["seconds_per_step"] == pytest.approx(report["seconds"] / report["steps"], rel=1e-9)
    assert report["device"] == "cpu"
    assert report["peak_memory_allocated_gib"] == report["peak_memory_reserved_gib"] == 0.0
    assert report["model_parameters"] == sum(p.numel() for p in trainer.model.parameters())
    assert (report["sequence_len"], report["micro_batch_size"]) == (LENGTH, BATCH)
    assert report["mfu"] is None and report["peak_tflops"] is None  # a CPU has no peak in the table
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_the_count_agrees_with_the_trainers_own_counter_on_unpadded_packing_free_batches(tmp_path, no_peak):
    report, trainer, _ = train(tmp_path, include_num_input_tokens_seen="non_padding")
    assert trainer.state.num_input_tokens_seen == sum(REAL_TOKENS)
    assert report["tokens"] == sum(REAL_TOKENS) - sum(REAL_TOKENS[: BATCH * ACCUMULATION])


def test_neither_the_warm_up_step_nor_evaluation_is_timed(tmp_path, no_peak):
    report, trainer, wall = train(tmp_path, sleepy=True)
    observer = next(callback for callback in trainer.callback_handler.callbacks if hasattr(callback, "ends"))
    # the time between step ends, less the evaluations that ended in between, as a clock beside the callback saw it
    ends, evaluated = observer.ends, observer.evaluated
    expected = sum(ends[k] - evaluated.get(k - 1, ends[k - 1]) for k in range(2, STEPS + 1))
    assert wall > Sleepy.WARM_UP + 2 * Sleepy.EVALUATION + (STEPS - 1) * Sleepy.STEP
    assert report["seconds"] >= (STEPS - 1) * Sleepy.STEP
    # either pause counted would add 1.5 s; on a busy machine the tiny model's steps still vary
    assert report["seconds"] == pytest.approx(expected, abs=0.3)


def test_mfu_is_model_flops_over_the_peak_given_in_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SKILLTUNE_PEAK_TFLOPS", "1000")
    report, trainer, _ = train(tmp_path)
    parameters = sum(p.numel() for p in trainer.model.parameters())
    flops_per_token = 6 * parameters + 12 * 1 * 32 * LENGTH  # 1 layer, hidden 32
    assert report["flops_per_token"] == flops_per_token
    assert report["peak_tflops"] == 1000.0
    assert report["mfu"] == pytest.approx(report["tokens_per_second"] * flops_per_token / 1e15, rel=1e-9)
    assert 0 < report["mfu"] < 1


def test_training_is_the_same_with_the_callback_as_without(tmp_path, no_peak):
    with_report, with_callback, _ = train(tmp_path / "a")
    none, without, _ = train(tmp_path / "b", callback=False)
    assert with_report is not None and none is None
    first, second = with_callback.model.state_dict(), without.model.state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert not torch.equal(first["model.embed_tokens.weight"], tiny_model().state_dict()["model.embed_tokens.weight"])


def test_a_failure_inside_the_callback_does_not_stop_training(tmp_path, no_peak, monkeypatch):
    def broken(self, args):
        raise RuntimeError("no report")

    monkeypatch.setattr(ThroughputCallback, "report", broken)
    report, trainer, _ = train(tmp_path)
    assert report is None and trainer.state.global_step == STEPS
    assert not list((tmp_path / "out").glob(".throughput.*"))


def test_only_the_main_process_writes(tmp_path, no_peak):
    from transformers import TrainerControl, TrainerState, TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[])
    for main, written in [(False, False), (True, True)]:
        callback = ThroughputCallback()
        callback.on_train_begin(args, TrainerState(), TrainerControl(), model=tiny_model())
        callback.on_train_end(args, TrainerState(is_world_process_zero=main), TrainerControl())
        assert (tmp_path / "throughput.json").exists() == written


def test_packed_batches_count_their_tokens_not_axolotls_sequence_numbers():
    from axolotl.utils.collators import V2BatchSamplerDataCollatorForSeq2Seq

    from skilltune.standins import build_tokenizer

    tokenizer = build_tokenizer("qwen2.5")
    lengths = [5, 3, 7]  # three records packed into one row, padded to 16
    records = [
        {
            "input_ids": list(range(1, n + 1)),
            "attention_mask": [1] * n,
            "labels": [1] * n,
            "position_ids": list(range(n)),
        }
        for n in lengths
    ]
    batch = V2BatchSamplerDataCollatorForSeq2Seq(tokenizer, padding=True, pad_to_multiple_of=16)([records])
    assert batch["input_ids"].shape == (1, 16)
    assert batch["attention_mask"].sum() == 5 + 2 * 3 + 3 * 7  # what summing the mask would count
    assert count_tokens(batch, tokenizer.pad_token_id) == sum(lengths)


def test_without_a_mask_padding_is_the_pad_tokens_after_a_rows_last_real_one():
    ids = torch.tensor([[5, 0, 7, 0, 0], [5, 0, 0, 0, 0], [0, 0, 0, 0, 0]])  # the pad id inside a text counts
    assert count_tokens({"input_ids": ids}, pad_token_id=0) == 3 + 1 + 0
    assert count_tokens({"input_ids": ids}, pad_token_id=None) == 15


def test_packed_batches_without_a_mask_count_their_tokens_when_eos_doubles_as_pad():
    from axolotl.utils.collators import V2BatchSamplerDataCollatorForSeq2Seq

    from skilltune.standins import build_tokenizer

    tokenizer = build_tokenizer("qwen2.5")
    pad = tokenizer.pad_token_id
    # what Axolotl trains on when packing for flash attention: no attention_mask, eos (= pad) ending records
    records = [{"input_ids": [*range(1, n), pad], "labels": [1] * n, "position_ids": list(range(n))} for n in (5, 3, 7)]
    records[-1]["input_ids"][-1] = 9  # the row's last record ends in another token
    batch = V2BatchSamplerDataCollatorForSeq2Seq(tokenizer, padding=True, pad_to_multiple_of=16)([records])
    assert "attention_mask" not in batch and batch["input_ids"].shape == (1, 16)
    assert count_tokens(batch, pad) == 5 + 3 + 7


def test_base_parameters_count_4_bit_weights_at_full_size_and_leave_adapters_out():
    import bitsandbytes as bnb

    class Layer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = bnb.nn.Linear4bit(64, 96, bias=True, quant_type="nf4", compute_dtype=torch.float32)
            self.lora_A = torch.nn.Linear(64, 4, bias=False)

    layer = Layer().to("cpu")  # quantizes: the weight is stored packed, 2 values a byte
    assert layer.proj.weight.numel() == 64 * 96 // 2
    assert base_parameters(layer) == 64 * 96 + 96


@pytest.mark.parametrize(
    "name, peak",
    [
        ("NVIDIA H100 80GB HBM3", 989.0),
        ("NVIDIA H200", 989.0),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA L4", 121.0),
        ("NVIDIA A10", 125.0),
        ("NVIDIA A10G", None),
        ("NVIDIA L40S", None),
        ("", None),
    ],
)
def test_the_peak_is_looked_up_by_device_name(name, peak, no_peak):
    assert peak_tflops(name) == peak


def test_the_environment_overrides_the_table(monkeypatch):
    monkeypatch.setenv("SKILLTUNE_PEAK_TFLOPS", "400")
    assert peak_tflops("NVIDIA H100 80GB HBM3") == 400.0


def test_axolotl_loads_the_plugin_and_it_adds_the_callback_with_the_configs_sizes():
    from axolotl.integrations.base import load_plugin
    from axolotl.utils.dict import DictDefault

    plugin = load_plugin("skilltune.throughput.ThroughputLog")
    callbacks = plugin.add_callbacks_post_trainer(
        DictDefault(sequence_len=1024, micro_batch_size=4, base_model="mistralai/Mistral-7B-Instruct-v0.3"), None
    )
    assert [type(callback) for callback in callbacks] == [ThroughputCallback]
    assert (callbacks[0].sequence_len, callbacks[0].micro_batch_size) == (1024, 4)
