"""The measurements scripts/bench_training.py runs in subprocesses of their own
(`bench_training.py --phase packing|plain`): the packing efficiency of Axolotl's dataloader, and
the plain transformers + peft loop `axolotl train` is measured against (the same model, LoRA,
optimizer, schedule and tokenized rows).

Packing efficiency: non-pad tokens / all tokens of the batches the trainer gets. Each variant
runs Axolotl's own path in a process of its own (load_cfg -> load_datasets ->
setup_model_and_trainer -> trainer.get_train_dataloader(), i.e. the multipack batch sampler and
the collator Axolotl trains with) and walks one epoch of batches. Variants: the config as it
is (no packing, micro batch 8, each batch padded to its longest row) and sample_packing with
pad_to_sequence_len at sequence_len 256 and 1024 (like the GPU configs). Packed batches lose
their attention_mask before the model by default (sample_packing_drop_attention_mask, SDPA
reads position_ids); the count keeps it (it holds the sequence number of each token, 0 for
padding), which changes no batch.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from bench_training import LORA_TARGETS, MODEL, timed


def phase_plain(prepared: Path, result: Path, steps: int, warmup: int, t0: float) -> None:
    import torch
    from datasets import load_from_disk
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, get_cosine_schedule_with_warmup

    torch.manual_seed(42)
    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    pad = tokenizer.convert_tokens_to_ids("<|im_end|>")  # the config's pad_token
    rows = load_from_disk(str(prepared))
    model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32, attn_implementation="sdpa")
    model.config.use_cache = False
    model = get_peft_model(
        model,
        LoraConfig(
            r=16, lora_alpha=32, lora_dropout=0.05, target_modules=LORA_TARGETS, bias="none", task_type="CAUSAL_LM"
        ),
    )
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3, weight_decay=0.0)
    total = warmup + steps
    schedule = get_cosine_schedule_with_warmup(optimizer, max(1, round(0.05 * total)), total)

    def collate(batch: list[dict]) -> dict:
        width = max(len(row["input_ids"]) for row in batch)

        def padded(key, value):
            return torch.tensor([row[key] + [value] * (width - len(row[key])) for row in batch])

        return {
            "input_ids": padded("input_ids", pad),
            "labels": padded("labels", -100),
            "attention_mask": padded("attention_mask", 0),
        }

    loader = torch.utils.data.DataLoader(
        rows.select_columns(["input_ids", "labels", "attention_mask"]),
        batch_size=8,
        shuffle=True,
        drop_last=True,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(42),
    )
    record = {"step_end": [], "nonpad": [], "padded": [], "labels": []}
    batches = iter(loader)
    for step in range(total):
        batch = next(batches)
        if step == 0:
            record["first_step_wall"] = time.time()
        record["padded"].append(batch["input_ids"].numel())
        record["nonpad"].append(int(batch["attention_mask"].sum()))
        record["labels"].append(int((batch["labels"] != -100).sum()))
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        record["step_end"].append(time.perf_counter())
    result.write_text(
        json.dumps(
            {
                **timed(record, steps, warmup),
                "startup_s": record["first_step_wall"] - t0,
                "loss_last": float(loss),
                "torch_threads": torch.get_num_threads(),
                "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
            }
        )
    )


def phase_packing(config: Path, result: Path) -> None:
    from axolotl.cli.config import load_cfg
    from axolotl.common.datasets import load_datasets
    from axolotl.train import setup_model_and_trainer

    os.environ["BENCH_TRAINING_PASSIVE"] = "1"  # the StepTimer plugin stays out of this phase
    cfg = load_cfg(str(config))
    meta = load_datasets(cfg=cfg)
    trainer, *_ = setup_model_and_trainer(cfg, meta)
    trainer.args.sample_packing_drop_attention_mask = False  # keep the mask to count padding; same batches
    slots = nonpad = labels = rows = records = batches = 0
    shapes = set()
    for batch in trainer.get_train_dataloader():
        mask = batch["attention_mask"]
        batches += 1
        rows += mask.shape[0]
        slots += mask.numel()
        nonpad += int((mask != 0).sum())
        labels += int((batch["labels"] != -100).sum())
        # unpacked rows hold one record; packed rows number theirs 1, 2, ... in the mask
        records += int(mask.amax(dim=1).sum()) if cfg.sample_packing else mask.shape[0]
        shapes.add(tuple(mask.shape))
    lengths = meta.train_dataset["input_ids"]
    result.write_text(
        json.dumps(
            {
                "sample_packing": bool(cfg.sample_packing),
                "sequence_len": cfg.sequence_len,
                "pad_to_sequence_len": bool(cfg.pad_to_sequence_len),
                "micro_batch_size": cfg.micro_batch_size,
                "collator": type(trainer.data_collator).__name__,
                "batch_sampler": type(trainer._get_train_sampler()).__name__,
                "dataset_records": len(lengths),
                "dataset_tokens": sum(len(row) for row in lengths),
                "batches": batches,
                "rows": rows,
                "records": records,
                "slots": slots,
                "nonpad": nonpad,
                "label_tokens": labels,
                "efficiency": nonpad / slots,
                "batch_shapes": sorted(shapes)[:3] + (["..."] if len(shapes) > 3 else []),
            }
        )
    )
