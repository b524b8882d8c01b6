"""skilltune's Axolotl plugins. A config turns each on under `plugins:`.

SeedBeforeAdapter: the same `seed` gives bit-identical LoRA adapters. Axolotl seeds
(transformers.set_seed(cfg.seed)) only when it builds the trainer, after the LoRA matrices were
created with random values, so two runs of the same config started from different random states
(seen here: every one of the 28 tensors of a tiny-model adapter differed).

Nf4TrainableOnCpu: QLoRA on a CPU trains correctly after an evaluation. On CPUs with AVX512-BF16
(this machine's kind), bitsandbytes 0.50 repacks a 4-bit layer's weights for a faster kernel at its
first forward in eval mode (Axolotl evaluates at step 0 whenever a config evaluates) and never
unpacks them; the repacked kernel has no backward, so from then on no gradient flows through any
4-bit layer (LoRA weights below it learn only through the residual stream), and a layer with a bias
(Qwen2's q/k/v) crashes ("a view of a leaf Variable ... in-place operation"). The plugin turns the
repack off for the run's 4-bit layers; on a GPU it changes nothing.

TrainerLog: the Trainer's log history (loss, eval_loss, learning_rate, grad_norm, step, epoch, one
row per logging or evaluation) lands in <output_dir>/trainer_log.jsonl. The Trainer keeps it only
in trainer_state.json inside checkpoints, and the configs save none (save_strategy "no"), so
without the plugin the loss curve of a run exists only in W&B. The file is rewritten whole after
each log, through a temporary file and a rename, so a reader (eval's report) never sees half of it
and a run that dies keeps the curve up to its last log. Once the adapter is saved and the model
unloaded (Axolotl's post_train_unload, called once; post_train is called twice, the first time before
the adapter is saved) it also finishes the W&B run, when there is one, so run-<id>.wandb is written
before the process exits: eval logs its scores into the same run and needs it. (The empty run
folders once blamed on loaded machines came from the test suite: see tests/conftest.py.)

    plugins:
      - skilltune.axolotl_plugin.SeedBeforeAdapter
      - skilltune.axolotl_plugin.Nf4TrainableOnCpu
      - skilltune.axolotl_plugin.TrainerLog
"""

from __future__ import annotations

import logging
import sys

from axolotl.integrations.base import BasePlugin
from transformers import TrainerCallback

from skilltune.trainer_log import TRAINER_LOG, write_trainer_log

LOG = logging.getLogger(__name__)


class SeedBeforeAdapter(BasePlugin):
    def pre_lora_load(self, cfg, model):
        from transformers import set_seed

        # Axolotl's own default when the config has no seed (42), so `seed:` left out still reproduces
        set_seed(cfg.seed if cfg.seed is not None else 42)


def keep_nf4_trainable(model) -> int:
    """Turn bitsandbytes' CPU inference repack off in `model`'s 4-bit layers; returns how many."""
    import bitsandbytes as bnb

    layers = [
        module
        for module in model.modules()
        if isinstance(module, bnb.nn.Linear4bit) and module.weight.device.type == "cpu"
    ]
    for layer in layers:
        layer.support_avx512bf16_for_cpu = False
    return len(layers)


class Nf4TrainableOnCpu(BasePlugin):
    def post_model_load(self, cfg, model):
        keep_nf4_trainable(model)


class TrainerLogCallback(TrainerCallback):
    """Writes state.log_history to <output_dir>/trainer_log.jsonl after every log and at the end."""

    def _write(self, args, state) -> None:
        if not state.is_world_process_zero:  # one writer under data parallelism
            return
        try:
            write_trainer_log(args.output_dir, state.log_history)
        except (OSError, ValueError) as err:  # a lost log must not end the run (the adapter is saved after it)
            LOG.warning("trainer log: %s not written (%s); training goes on", TRAINER_LOG, err)

    def on_log(self, args, state, control, logs=None, **kwargs):
        self._write(args, state)

    def on_train_end(self, args, state, control, **kwargs):
        self._write(args, state)


class TrainerLog(BasePlugin):
    def add_callbacks_post_trainer(self, cfg, trainer):
        return [TrainerLogCallback()]

    def post_train_unload(self, cfg):
        # wandb only where the run imported it: a config without W&B never loads it
        wandb = sys.modules.get("wandb")
        if wandb is not None and wandb.run is not None:
            wandb.finish()
