"""skilltune.axolotl_plugin.TrainerLog: a real transformers.Trainer on a tiny Llama (seconds on a CPU)
with save_strategy "no", as the configs train, keeps its log history in trainer_log.jsonl only
through the plugin."""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch

from skilltune.axolotl_plugin import TrainerLog, TrainerLogCallback
from skilltune.jsonio import read_jsonl
from skilltune.trainer_log import TRAINER_LOG, trainer_log_rows

STEPS, LOGGING_STEPS, EVAL_STEPS = 6, 2, 3


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
            max_position_embeddings=32,
        )
    )


def rows(count: int) -> list[dict]:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 64, (count, 8), generator=generator)
    return [{"input_ids": row, "attention_mask": torch.ones_like(row), "labels": row} for row in ids]


def train(tmp_path, plugin: bool):
    """Train STEPS steps as the configs do (no checkpoints); returns (output_dir, trainer)."""
    from transformers import Trainer, TrainingArguments

    out = tmp_path / "adapter"
    trainer = Trainer(
        model=tiny_model(),
        args=TrainingArguments(
            output_dir=str(out),
            per_device_train_batch_size=2,
            max_steps=STEPS,
            learning_rate=1e-3,
            lr_scheduler_type="linear",
            logging_steps=LOGGING_STEPS,
            eval_strategy="steps",
            eval_steps=EVAL_STEPS,
            per_device_eval_batch_size=4,
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            disable_tqdm=True,
            seed=0,
            dataloader_num_workers=0,
        ),
        train_dataset=rows(16),
        eval_dataset=rows(4),
    )
    if plugin:
        # what Axolotl does with a plugin's post-trainer callbacks (axolotl/core/builders/base.py)
        for callback in TrainerLog().add_callbacks_post_trainer(cfg=None, trainer=trainer):
            trainer.add_callback(callback)
    trainer.train()
    return out, trainer


def test_without_the_plugin_the_trainer_keeps_no_log_history_on_disk(tmp_path):
    out, trainer = train(tmp_path, plugin=False)
    assert any("loss" in entry for entry in trainer.state.log_history)  # it was logged, in memory only
    written = sorted(path.name for path in tmp_path.rglob("*") if path.is_file())
    assert "trainer_state.json" not in written and TRAINER_LOG not in written


def test_the_plugin_writes_the_trainers_log_history_at_the_end(tmp_path):
    out, trainer = train(tmp_path, plugin=True)
    logged = list(read_jsonl(out / TRAINER_LOG, "trainer_log"))
    assert logged == trainer.state.log_history  # every entry, as the Trainer logged it
    losses = [(row["step"], row["loss"]) for row in logged if "loss" in row]
    assert [step for step, _ in losses] == list(range(LOGGING_STEPS, STEPS + 1, LOGGING_STEPS))
    assert all(math.isfinite(loss) and loss > 0 for _, loss in losses)
    evaluated = [row["step"] for row in logged if "eval_loss" in row]
    assert evaluated == list(range(EVAL_STEPS, STEPS + 1, EVAL_STEPS))
    rates = [row["learning_rate"] for row in logged if "learning_rate" in row]
    assert rates == sorted(rates, reverse=True) and rates[0] < 1e-3  # the linear decay, as logged
    assert "train_runtime" in logged[-1]  # the Trainer's closing summary made it in too
    assert not [path for path in out.iterdir() if path.name.startswith(".")]  # no temporary file left


def test_the_log_is_on_disk_after_each_log_not_only_at_the_end(tmp_path):
    """A run that dies keeps the curve up to its last log."""
    callback, args = TrainerLogCallback(), SimpleNamespace(output_dir=str(tmp_path))
    seen = []
    for count in (1, 2):
        history = [{"loss": 1.0 / (step + 1), "step": step} for step in range(count)]
        callback.on_log(args, SimpleNamespace(is_world_process_zero=True, log_history=history), None)
        seen.append(list(read_jsonl(tmp_path / TRAINER_LOG, "trainer_log")))
    assert seen == [[{"loss": 1.0, "step": 0}], [{"loss": 1.0, "step": 0}, {"loss": 0.5, "step": 1}]]


def test_non_finite_numbers_become_null():
    history = [{"loss": float("nan"), "grad_norm": float("inf"), "learning_rate": 1e-3, "step": 1}]
    assert trainer_log_rows(history) == [{"loss": None, "grad_norm": None, "learning_rate": 1e-3, "step": 1}]


def test_only_the_main_process_writes(tmp_path):
    state = SimpleNamespace(is_world_process_zero=False, log_history=[{"loss": 1.0, "step": 1}])
    TrainerLogCallback().on_train_end(SimpleNamespace(output_dir=str(tmp_path)), state, None)
    assert not (tmp_path / TRAINER_LOG).exists()


def test_a_log_that_cannot_be_written_warns_and_training_goes_on(tmp_path, caplog):
    (tmp_path / TRAINER_LOG).mkdir()  # a folder where the file should go: the rename fails
    state = SimpleNamespace(is_world_process_zero=True, log_history=[{"loss": 1.0, "step": 1}])
    TrainerLogCallback().on_train_end(SimpleNamespace(output_dir=str(tmp_path)), state, None)
    assert "trainer_log.jsonl not written" in caplog.text


def test_axolotl_loads_the_plugin_by_the_name_the_configs_list():
    from axolotl.integrations.base import load_plugin

    assert isinstance(load_plugin("skilltune.axolotl_plugin.TrainerLog"), TrainerLog)


def test_post_train_unload_finishes_the_wandb_run_so_its_transaction_log_is_on_disk(tmp_path, monkeypatch):
    import wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = wandb.init(project="plugin-test", dir=str(tmp_path))
    run.log({"loss": 1.0})
    TrainerLog().post_train_unload(cfg=None)
    assert wandb.run is None  # finished: the next wandb.init (eval's) starts from a flushed run
    logs = list(tmp_path.rglob(f"run-{run.id}.wandb"))
    assert len(logs) == 1 and logs[0].stat().st_size > 0, logs
    TrainerLog().post_train_unload(cfg=None)  # no run: nothing to do, no error
