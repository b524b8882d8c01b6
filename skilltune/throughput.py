"""Training throughput, memory and MFU of a run, written to <output_dir>/throughput.json at its end.

    plugins:
      - skilltune.throughput.ThroughputLog

Figures cover the optimizer steps after the first: the first pays for CUDA context, kernel
autotuning and allocator growth, which a longer run amortizes. Evaluation and checkpoint saving
inside the run are left out too. Tokens are the non-padding input tokens of the micro-batches
this process trained on (per GPU under data parallelism), counted here rather than by the Trainer's
own counter: that one is off unless TrainingArguments turn it on (a gather and a host sync every
micro-batch) and sums the attention mask, which Axolotl's packing fills with sequence numbers.
MFU is the PaLM estimate,
(6 N + 12 layers * hidden * sequence_len) FLOPs per token against the GPU's dense bf16 peak
(SKILLTUNE_PEAK_TFLOPS, or a table by device name; unknown: null). Nothing here changes what
is trained: the callback only reads inputs and clocks, and a failure inside it is logged, not raised.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import time
from pathlib import Path

import torch
from axolotl.integrations.base import BasePlugin
from transformers import TrainerCallback

from skilltune.jsonio import write_text

LOG = logging.getLogger(__name__)

# dense bf16 tensor-core peaks in TFLOPS (SXM parts; H100 PCIe below), by a word of the CUDA device name
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0}


def peak_tflops(device_name: str) -> float | None:
    env = os.environ.get("SKILLTUNE_PEAK_TFLOPS")
    if env:
        return float(env)
    # whole words, so an A10G (a different, slower chip) is not taken for an A10 nor an A100 for either
    words = re.split(r"[^A-Za-z0-9]+", device_name)
    if "H100" in words and "PCIe" in words:
        return 756.0
    return next((PEAK_TFLOPS[word] for word in words if word in PEAK_TFLOPS), None)


def count_tokens(inputs: dict, pad_token_id: int | None):
    """Non-padding tokens of one batch (a 0-dim tensor on the batch's device, or an int)."""
    mask = inputs.get("attention_mask")
    if mask is not None and mask.dim() == 2:
        # `!= 0`, not a sum: Axolotl's packing collator numbers the packed sequences 1, 2, 3... in the mask,
        # which is also why the Trainer's own counter (include_num_input_tokens_seen="non_padding" sums
        # the mask) over-counts packed batches
        return (mask != 0).sum()
    ids = inputs.get("input_ids")
    if ids is None:
        return 0
    if pad_token_id is None or ids.dim() != 2:
        return ids.numel()
    # no mask (Axolotl drops it when packing for flash/sdpa attention): a row is real up to its last non-pad
    # token, so a pad id inside the text (eos doubling as pad, as Axolotl sets it for Llama and Mistral) still
    # counts; the only miss is a row whose last real token is that eos, one token of ~sequence_len
    positions = torch.arange(1, ids.shape[-1] + 1, device=ids.device)
    return ((ids != pad_token_id) * positions).amax(dim=-1).sum()


def base_parameters(model) -> int:
    """Parameters of the base model, adapters left out, 4-bit weights at their logical size."""
    total = 0
    for name, param in model.named_parameters():
        if "lora_" in name:
            continue
        shape = getattr(getattr(param, "quant_state", None), "shape", None)  # bitsandbytes packs 2 weights a byte
        total += math.prod(shape) if shape is not None else getattr(param, "ds_numel", None) or param.numel()
    return total


def _never_raise(method):
    # a measurement must not be able to end a training run (or lose its adapter, saved after train end)
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception:  # noqa: BLE001
            LOG.warning("throughput: %s failed; the run goes on without it", method.__name__, exc_info=True)

    return guarded


class ThroughputCallback(TrainerCallback):
    def __init__(
        self, sequence_len: int | None = None, micro_batch_size: int | None = None, base_model: str | None = None
    ):
        self.sequence_len, self.micro_batch_size, self.base_model = sequence_len, micro_batch_size, base_model

    def _now(self, args) -> float:
        # CUDA runs asynchronously: without a sync the clock would stop before the step's kernels finish
        if args.device.type == "cuda":
            torch.cuda.synchronize(args.device)
        return time.perf_counter()

    @_never_raise
    def on_train_begin(self, args, state, control, model=None, processing_class=None, **kwargs):
        self.model, self.pad_token_id = model, getattr(processing_class, "pad_token_id", None)
        self.seen = torch.zeros((), dtype=torch.int64, device=args.device)  # summed on the device: no sync a batch
        self.longest_row = 0
        self.clock = None  # set at the end of the warm-up step
        self.steps, self.seconds, self.tokens, self.seen_at_clock = 0, 0.0, 0, 0
        # the Trainer shows callbacks no batch, so the model's forward does; eval forwards (not training) are skipped
        self.hook = model.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module, args, kwargs):
        if not module.training:
            return
        try:
            inputs = kwargs if "input_ids" in kwargs or not args else {**kwargs, "input_ids": args[0]}
            self.seen += torch.as_tensor(count_tokens(inputs, self.pad_token_id), device=self.seen.device)
            if inputs.get("input_ids") is not None:
                self.longest_row = max(self.longest_row, inputs["input_ids"].shape[-1])
        except Exception:  # noqa: BLE001
            LOG.warning("throughput: cannot count this batch's tokens", exc_info=True)

    @_never_raise
    def on_step_end(self, args, state, control, **kwargs):
        now, seen = self._now(args), int(self.seen)
        if self.clock is not None:
            self.steps += 1
            self.seconds += now - self.clock
            self.tokens += seen - self.seen_at_clock
        self.clock, self.seen_at_clock = now, seen

    @_never_raise
    def _restart_clock(self, args, state, control, **kwargs):
        # evaluation and saving run between one step's end and the next step: not training time
        if self.clock is not None:
            self.clock, self.seen_at_clock = self._now(args), int(self.seen)

    on_evaluate = on_save = _restart_clock

    def report(self, args) -> dict:
        cuda = args.device.type == "cuda"
        device = torch.cuda.get_device_name(args.device) if cuda else args.device.type
        tokens_per_second = self.tokens / self.seconds if self.seconds > 0 else None
        config = getattr(self.model, "config", None)
        config = config.get_text_config() if hasattr(config, "get_text_config") else config
        layers, hidden = getattr(config, "num_hidden_layers", 0), getattr(config, "hidden_size", 0)
        parameters, sequence_len = base_parameters(self.model), self.sequence_len or self.longest_row
        # MFU counts model FLOPs, not hardware FLOPs: gradient checkpointing's recomputation is not in it
        flops_per_token = 6 * parameters + 12 * layers * hidden * sequence_len
        peak = peak_tflops(device if cuda else "")
        mfu = tokens_per_second * flops_per_token / (peak * 1e12) if peak and tokens_per_second else None
        gib = 2**30
        return {
            "device": device,
            "base_model": self.base_model,
            "steps": self.steps,
            "tokens": self.tokens,
            "seconds": self.seconds,
            "tokens_per_second": tokens_per_second,
            "seconds_per_step": self.seconds / self.steps if self.steps else None,
            "peak_memory_allocated_gib": torch.cuda.max_memory_allocated(args.device) / gib if cuda else 0.0,
            "peak_memory_reserved_gib": torch.cuda.max_memory_reserved(args.device) / gib if cuda else 0.0,
            "mfu": mfu,
            "peak_tflops": peak,
            "flops_per_token": flops_per_token,
            "model_parameters": parameters,
            "sequence_len": sequence_len,
            "micro_batch_size": self.micro_batch_size or args.per_device_train_batch_size,
        }

    @_never_raise
    def on_train_end(self, args, state, control, **kwargs):
        self.hook.remove()
        if not state.is_world_process_zero:
            return
        # through a temporary file and a rename: a reader (gpu_report.py, a watcher) never sees half a file
        write_text(Path(args.output_dir) / "throughput.json", json.dumps(self.report(args), indent=2) + "\n")


class ThroughputLog(BasePlugin):
    def add_callbacks_post_trainer(self, cfg, trainer):
        return [
            ThroughputCallback(
                sequence_len=cfg.sequence_len, micro_batch_size=cfg.micro_batch_size, base_model=cfg.base_model
            )
        ]
