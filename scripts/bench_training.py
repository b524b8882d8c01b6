"""Training efficiency on the embedded model (SmolLM2-135M-Instruct, LoRA, CPU): packing and tokens/s.

    .venv/bin/python scripts/bench_training.py --out runs/bench/training.json
    .venv/bin/python scripts/bench.py --only training     # runs this and puts its section into BENCHMARKS.md

Data: `python -m datagen skills --pack examples/skills --n 1000 --seed 0` (798 training records),
tokenized by Axolotl for configs/smollm2.yml (its Jinja chat template, assistant turns trained).

1. Packing efficiency: non-pad tokens / all tokens of the batches the trainer gets. Each variant
   runs Axolotl's own path in a process of its own (load_cfg -> load_datasets ->
   setup_model_and_trainer -> trainer.get_train_dataloader(), i.e. the multipack batch sampler and
   the collator Axolotl trains with) and walks one epoch of batches. Variants: the config as it
   is (no packing, micro batch 8, each batch padded to its longest row) and sample_packing with
   pad_to_sequence_len at sequence_len 256 and 1024 (like the GPU configs). Packed batches lose
   their attention_mask before the model by default (sample_packing_drop_attention_mask, SDPA
   reads position_ids); the count keeps it (it holds the sequence number of each token, 0 for
   padding), which changes no batch.
2. Tokens/s: `axolotl train` on configs/smollm2.yml (unpacked, micro batch 8, sequence_len 256,
   fp32, SDPA, no gradient checkpointing) against a plain transformers + peft loop written here
   (same model, LoRA r16/alpha32/dropout 0.05 on all 7 linear projections, AdamW lr 1e-3 with the
   same cosine schedule, grad-norm clip 1.0, micro batch 8, the same rows Axolotl tokenized, padded
   to the longest row of each batch). Both run WARMUP + STEPS optimizer steps; tokens/s counts
   the non-pad input tokens of the STEPS timed steps over their wall time (end of the last
   warm-up step to end of the last step: data loading, forward, backward, optimizer, logging).
   Axolotl's steps are timed by a plugin of this file (a trainer callback plus a wrapper round
   trainer.training_step that counts each batch); start-up is the `axolotl train` process's wall
   time to its first step, reported apart. `axolotl preprocess` runs first, like in `make train`.

Every measurement runs in a subprocess of its own (Axolotl patches transformers in place). The
machine is shared: the load average before and after each timed run goes into the JSON.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "configs" / "smollm2.yml"
MODEL = REPO / "models" / "SmolLM2-135M-Instruct"
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PACKING_VARIANTS = {  # name: config overrides
    "unpacked-256": {},
    "packed-256": {"sequence_len": 256, "sample_packing": True, "pad_to_sequence_len": True},
    "packed-1024": {"sequence_len": 1024, "sample_packing": True, "pad_to_sequence_len": True},
}


def env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "AXOLOTL_DO_NOT_TRACK": "1", "WANDB_MODE": "disabled",
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(os.cpu_count())),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "scripts"), str(REPO),
                                                        os.environ.get("PYTHONPATH")]))}


class OtherCPU:
    """CPU seconds spent by processes other than the measured child while it ran: the machine's
    busy time (/proc/stat) minus the children's (getrusage). Near 0: the run had the cores to itself."""

    def __enter__(self) -> "OtherCPU":
        self.busy, self.children, self.start = _busy(), _children(), time.time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.time() - self.start
        self.other = max(0.0, (_busy() - self.busy) - (_children() - self.children))


def _busy() -> float:
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except OSError:
        return 0.0
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _children() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def write_config(work: Path, name: str, data: Path, **overrides) -> Path:
    """configs/smollm2.yml pointed at DATA, with no eval, no W&B, no checkpoints."""
    import yaml

    cfg = yaml.safe_load(CONFIG.read_text())
    cfg["base_model"] = str(MODEL)
    cfg["chat_template_jinja"] = str(REPO / cfg["chat_template_jinja"])
    cfg["datasets"][0]["path"] = str(data / "train.jsonl")
    cfg.pop("test_datasets", None)
    cfg.pop("wandb_project", None)
    cfg.pop("wandb_name", None)
    cfg["plugins"] = [*cfg.get("plugins", []), "bench_training.StepTimer"]
    cfg.update(val_set_size=0, eval_strategy="no", save_strategy="no",
               dataset_prepared_path=str(work / name / "prepared"), output_dir=str(work / name / "out"))
    cfg.update(overrides)
    if cfg.get("sample_packing"):
        cfg["eval_sample_packing"] = False
    path = work / f"{name}.yml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


# ---------------------------------------------------------------- phase: packing (Axolotl's dataloader)

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
    result.write_text(json.dumps({
        "sample_packing": bool(cfg.sample_packing), "sequence_len": cfg.sequence_len,
        "pad_to_sequence_len": bool(cfg.pad_to_sequence_len), "micro_batch_size": cfg.micro_batch_size,
        "collator": type(trainer.data_collator).__name__,
        "batch_sampler": type(trainer._get_train_sampler()).__name__,
        "dataset_records": len(lengths), "dataset_tokens": sum(len(row) for row in lengths),
        "batches": batches, "rows": rows, "records": records, "slots": slots, "nonpad": nonpad,
        "label_tokens": labels, "efficiency": nonpad / slots,
        "batch_shapes": sorted(shapes)[:3] + (["..."] if len(shapes) > 3 else []),
    }))


# ---------------------------------------------------------------- phase: Axolotl training (plugin)

_PLUGIN = None


def __getattr__(name: str):
    """`bench_training.StepTimer` for Axolotl's plugin loader; built on demand, so this file
    imports without Axolotl."""
    global _PLUGIN
    if name != "StepTimer":
        raise AttributeError(name)
    if _PLUGIN is None:
        _PLUGIN = _make_plugin()
    return _PLUGIN


def _make_plugin():
    from axolotl.integrations.base import BasePlugin
    from transformers import TrainerCallback

    class StepTimer(BasePlugin):
        """Times each optimizer step and counts each batch's tokens; writes BENCH_TRAINING_RECORD."""

        def post_trainer_create(self, cfg, trainer):
            if os.environ.get("BENCH_TRAINING_PASSIVE") or not os.environ.get("BENCH_TRAINING_RECORD"):
                return
            path = Path(os.environ["BENCH_TRAINING_RECORD"])
            record = {"step_end": [], "nonpad": [], "padded": [], "labels": [], "logs": [],
                      "gradient_checkpointing": bool(trainer.args.gradient_checkpointing),
                      "torch_threads": __import__("torch").get_num_threads(),
                      "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
                      "collator": type(trainer.data_collator).__name__}
            step = trainer.training_step

            def counting_step(model, inputs, *args, **kwargs):
                ids, mask = inputs["input_ids"], inputs.get("attention_mask")
                record["padded"].append(ids.numel())
                record["nonpad"].append(int((mask != 0).sum()) if mask is not None else ids.numel())
                record["labels"].append(int((inputs["labels"] != -100).sum()))
                return step(model, inputs, *args, **kwargs)

            trainer.training_step = counting_step

            class Callback(TrainerCallback):
                def on_step_begin(self, args, state, control, **kwargs):
                    record.setdefault("first_step_wall", time.time())

                def on_step_end(self, args, state, control, **kwargs):
                    record["step_end"].append(time.perf_counter())

                def on_log(self, args, state, control, logs=None, **kwargs):
                    record["logs"].append(dict(logs or {}))
                    path.write_text(json.dumps(record))

                def on_train_end(self, args, state, control, **kwargs):
                    record["train_end_wall"] = time.time()
                    path.write_text(json.dumps(record))

            trainer.add_callback(Callback())

    return StepTimer


def run_preprocess(config: Path) -> float:
    start = time.time()
    subprocess.run([str(Path(sys.executable).parent / "axolotl"), "preprocess", str(config)],
                   cwd=REPO, env=env(), check=True, capture_output=True)
    return time.time() - start


def run_axolotl(config: Path, work: Path, steps: int, warmup: int) -> dict:
    record_path = work / "axolotl-record.json"
    record_path.unlink(missing_ok=True)
    run_env = {**env(), "BENCH_TRAINING_RECORD": str(record_path)}
    axolotl = str(Path(sys.executable).parent / "axolotl")
    start = time.time()
    with OtherCPU() as cpu:
        done = subprocess.run([axolotl, "train", str(config), f"--max-steps={warmup + steps}"],
                              cwd=REPO, env=run_env, capture_output=True, text=True)
    wall = time.time() - start
    if done.returncode != 0:
        raise SystemExit(f"axolotl train failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    record = json.loads(record_path.read_text())
    final = next((log for log in record["logs"] if "train_runtime" in log), {})
    timed = _timed(record, steps, warmup)
    return {**timed, "process_wall_s": wall,
            "startup_s": record["first_step_wall"] - start, "train_runtime_s": final.get("train_runtime"),
            "after_train_s": start + wall - record["train_end_wall"],
            "gradient_checkpointing": record["gradient_checkpointing"], "collator": record["collator"],
            "torch_threads": record["torch_threads"], "trainable_params": record["trainable_params"],
            "other_cpu_s": cpu.other}


def _timed(record: dict, steps: int, warmup: int) -> dict:
    ends = record["step_end"]
    if len(ends) < warmup + steps:
        raise SystemExit(f"only {len(ends)} steps ran, {warmup + steps} needed")
    seconds = ends[warmup + steps - 1] - ends[warmup - 1]
    window = slice(warmup, warmup + steps)
    nonpad, padded, labels = (sum(record[key][window]) for key in ("nonpad", "padded", "labels"))
    step_times = [b - a for a, b in zip(ends[warmup - 1:warmup + steps - 1], ends[warmup:warmup + steps])]
    return {"steps": steps, "warmup_steps": warmup, "seconds": seconds, "nonpad_tokens": nonpad,
            "padded_tokens": padded, "label_tokens": labels, "tokens_per_s": nonpad / seconds,
            "padded_tokens_per_s": padded / seconds, "median_step_s": statistics.median(step_times)}


# ---------------------------------------------------------------- phase: plain transformers + peft loop

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
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=LORA_TARGETS,
                                             bias="none", task_type="CAUSAL_LM"))
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3, weight_decay=0.0)
    total = warmup + steps
    schedule = get_cosine_schedule_with_warmup(optimizer, max(1, round(0.05 * total)), total)

    def collate(batch: list[dict]) -> dict:
        width = max(len(row["input_ids"]) for row in batch)
        def padded(key, value):
            return torch.tensor([row[key] + [value] * (width - len(row[key])) for row in batch])
        return {"input_ids": padded("input_ids", pad), "labels": padded("labels", -100),
                "attention_mask": padded("attention_mask", 0)}

    loader = torch.utils.data.DataLoader(rows.select_columns(["input_ids", "labels", "attention_mask"]),
                                         batch_size=8, shuffle=True, drop_last=True, collate_fn=collate,
                                         generator=torch.Generator().manual_seed(42))
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
    result.write_text(json.dumps({**_timed(record, steps, warmup), "startup_s": record["first_step_wall"] - t0,
                                  "loss_last": float(loss), "torch_threads": torch.get_num_threads(),
                                  "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad)}))


def run_plain(prepared: Path, work: Path, steps: int, warmup: int) -> dict:
    result = work / "plain.json"
    with OtherCPU() as cpu:
        subprocess.run([sys.executable, __file__, "--phase", "plain", "--prepared", str(prepared),
                        "--result", str(result), "--steps", str(steps), "--warmup", str(warmup), "--t0", str(time.time())],
                       cwd=REPO, env=env(), check=True, capture_output=True)
    return {**json.loads(result.read_text()), "process_wall_s": cpu.wall, "other_cpu_s": cpu.other}


def prepared_folder(config_dir: Path) -> Path:
    """The dataset Axolotl saved under dataset_prepared_path (one hashed folder)."""
    found = sorted({Path(p).parent for p in glob.glob(str(config_dir / "prepared" / "**" / "dataset_info.json"),
                                                        recursive=True)})
    if len(found) != 1:
        raise SystemExit(f"expected one prepared dataset under {config_dir / 'prepared'}, found {found}")
    return found[0]


# ---------------------------------------------------------------- orchestration

def versions() -> dict:
    from importlib.metadata import version

    return {name: version(name) for name in ("torch", "transformers", "peft", "axolotl", "accelerate", "datasets")}


def bench(work: Path, steps: int = 20, warmup: int = 2, repeats: int = 2, n: int = 1000, seed: int = 0) -> dict:
    if not (MODEL / "config.json").exists():
        raise SystemExit(f"{MODEL}: missing; run `make model` first")
    data = work / "data"
    subprocess.run([sys.executable, "-m", "datagen", "skills", "--pack", str(REPO / "examples" / "skills"),
                    "--out", str(data), "--n", str(n), "--seed", str(seed)], cwd=REPO, check=True, capture_output=True)
    packing = {}
    for name, overrides in PACKING_VARIANTS.items():
        config = write_config(work, f"packing-{name}", data, **overrides)
        result = work / f"packing-{name}.json"
        done = subprocess.run([sys.executable, __file__, "--phase", "packing", "--config", str(config),
                               "--result", str(result)], cwd=REPO, env=env(), capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"packing {name} failed:\n{done.stderr[-3000:]}")
        packing[name] = json.loads(result.read_text())
    config = write_config(work, "train", data)
    preprocess_s = run_preprocess(config)
    runs = {"axolotl": [], "plain": []}
    for _ in range(repeats):  # alternated, so a slow spell of the machine hits both
        runs["axolotl"].append(run_axolotl(config, work, steps, warmup))
        runs["plain"].append(run_plain(prepared_folder(work / "train"), work, steps, warmup))
    return {
        "machine": {"platform": platform.platform(), "machine": platform.machine(), "cpus": os.cpu_count(),
                    "python": platform.python_version(), "gpu": False},
        "versions": versions(),
        "data": f"datagen skills --pack examples/skills --n {n} --seed {seed}",
        "date": time.strftime("%Y-%m-%d"),
        "packing": packing,
        "preprocess_s": preprocess_s,
        "throughput": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "training.json")
    parser.add_argument("--steps", type=int, default=20, help="Timed optimizer steps (default 20).")
    parser.add_argument("--warmup", type=int, default=2, help="Untimed steps before them (default 2).")
    parser.add_argument("--repeats", type=int, default=2, help="Axolotl and plain runs, alternated (default 2).")
    parser.add_argument("--work", type=Path, help="Keep the data, configs and records here (default: a temp dir).")
    parser.add_argument("--phase", choices=["packing", "plain"], help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--prepared", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--t0", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "packing":
        return phase_packing(args.config, args.result)
    if args.phase == "plain":
        return phase_plain(args.prepared, args.result, args.steps, args.warmup, args.t0)
    with tempfile.TemporaryDirectory() as temp:
        work = args.work or Path(temp)
        work.mkdir(parents=True, exist_ok=True)
        result = bench(work, args.steps, args.warmup, args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    from bench_report import render_training  # the same rendering make bench splices in

    print("\n".join(render_training(result)))


if __name__ == "__main__":
    main()
