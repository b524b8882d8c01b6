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

    plugins:
      - skilltune.axolotl_plugin.SeedBeforeAdapter
      - skilltune.axolotl_plugin.Nf4TrainableOnCpu
"""

from __future__ import annotations

from axolotl.integrations.base import BasePlugin


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
