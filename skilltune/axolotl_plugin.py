"""An Axolotl plugin that makes LoRA runs reproducible: the same `seed` gives bit-identical adapters.

Axolotl seeds (transformers.set_seed(cfg.seed)) only when it builds the trainer, after the LoRA
matrices were created with random values, so two runs of the same config started from different
random states (seen here: every one of the 28 tensors of a tiny-model adapter differed). This
plugin seeds right before the adapter is created. A config turns it on with

    plugins:
      - skilltune.axolotl_plugin.SeedBeforeAdapter
"""

from __future__ import annotations

from axolotl.integrations.base import BasePlugin


class SeedBeforeAdapter(BasePlugin):
    def pre_lora_load(self, cfg, model):
        from transformers import set_seed

        # Axolotl's own default when the config has no seed (42), so `seed:` left out still reproduces
        set_seed(cfg.seed if cfg.seed is not None else 42)
