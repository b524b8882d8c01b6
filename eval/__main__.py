"""skilltune eval: score function calls by exact match, base model against fine-tuned.

    python -m eval run --config configs/smollm2.yml --test data/skills/test.jsonl --out runs/smollm2
    python -m eval score runs/smollm2/predictions-base.jsonl runs/smollm2/predictions-tuned.jsonl --out runs/smollm2

`run` generates with the config's `base_model` and with it plus the LoRA adapter in the config's
`output_dir`, saves the raw predictions to JSONL, scores them and writes report.json/report.md.
`--backend` picks how (eval/predict.py): transformers (default; CPU or GPU), vllm (CUDA GPU), or
openai: any OpenAI-compatible endpoint, where `--model` is scored as `tuned` (a hosted fine-tune,
a vLLM or llama.cpp server) and `--base-model-name`, if given, as `base`.
`score` re-scores saved predictions without generating again. The commands are in eval/cli/.
"""

from eval.cli import cli

if __name__ == "__main__":
    cli(prog_name="python -m eval")
