"""Training efficiency on the embedded model (SmolLM2-135M-Instruct, LoRA, CPU): packing and tokens/s.

    .venv/bin/python scripts/bench_training.py --out runs/bench/training.json
    .venv/bin/python scripts/bench.py --only training     # runs this and puts its section into BENCHMARKS.md

Data: `python -m datagen skills --pack examples/skills --n 1000 --seed 0` (798 training records),
tokenized by Axolotl for configs/smollm2.yml (its Jinja chat template, assistant turns trained).

1. Packing efficiency: non-pad tokens / all tokens of the trainer's batches (see scripts/bench_phases.py).
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
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "AXOLOTL_DO_NOT_TRACK": "1",
        "WANDB_MODE": "disabled",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(os.cpu_count())),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "scripts"), str(REPO), os.environ.get("PYTHONPATH")])),
    }


class OtherCPU:
    """CPU seconds spent by processes other than the measured child while it ran: the machine's
    busy time (/proc/stat) minus the children's (getrusage). Near 0: the run had the cores to itself."""

    def __enter__(self) -> OtherCPU:
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
    cfg.update(
        val_set_size=0,
        eval_strategy="no",
        save_strategy="no",
        dataset_prepared_path=str(work / name / "prepared"),
        output_dir=str(work / name / "out"),
    )
    cfg.update(overrides)
    if cfg.get("sample_packing"):
        cfg["eval_sample_packing"] = False
    path = work / f"{name}.yml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


# ---------------------------------------------------------------- phase: packing (Axolotl's dataloader)


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
            record = {
                "step_end": [],
                "nonpad": [],
                "padded": [],
                "labels": [],
                "logs": [],
                "gradient_checkpointing": bool(trainer.args.gradient_checkpointing),
                "torch_threads": __import__("torch").get_num_threads(),
                "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
                "collator": type(trainer.data_collator).__name__,
            }
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
    subprocess.run(
        [str(Path(sys.executable).parent / "axolotl"), "preprocess", str(config)],
        cwd=REPO,
        env=env(),
        check=True,
        capture_output=True,
    )
    return time.time() - start


def run_axolotl(config: Path, work: Path, steps: int, warmup: int) -> dict:
    record_path = work / "axolotl-record.json"
    record_path.unlink(missing_ok=True)
    run_env = {**env(), "BENCH_TRAINING_RECORD": str(record_path)}
    axolotl = str(Path(sys.executable).parent / "axolotl")
    start = time.time()
    with OtherCPU() as cpu:
        done = subprocess.run(
            [axolotl, "train", str(config), f"--max-steps={warmup + steps}"],
            cwd=REPO,
            env=run_env,
            capture_output=True,
            text=True,
        )
    wall = time.time() - start
    if done.returncode != 0:
        raise SystemExit(f"axolotl train failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    record = json.loads(record_path.read_text())
    final = next((log for log in record["logs"] if "train_runtime" in log), {})
    measured = timed(record, steps, warmup)
    return {
        **measured,
        "process_wall_s": wall,
        "startup_s": record["first_step_wall"] - start,
        "train_runtime_s": final.get("train_runtime"),
        "after_train_s": start + wall - record["train_end_wall"],
        "gradient_checkpointing": record["gradient_checkpointing"],
        "collator": record["collator"],
        "torch_threads": record["torch_threads"],
        "trainable_params": record["trainable_params"],
        "other_cpu_s": cpu.other,
    }


def timed(record: dict, steps: int, warmup: int) -> dict:
    ends = record["step_end"]
    if len(ends) < warmup + steps:
        raise SystemExit(f"only {len(ends)} steps ran, {warmup + steps} needed")
    seconds = ends[warmup + steps - 1] - ends[warmup - 1]
    window = slice(warmup, warmup + steps)
    nonpad, padded, labels = (sum(record[key][window]) for key in ("nonpad", "padded", "labels"))
    step_times = [b - a for a, b in zip(ends[warmup - 1 : warmup + steps - 1], ends[warmup : warmup + steps])]
    return {
        "steps": steps,
        "warmup_steps": warmup,
        "seconds": seconds,
        "nonpad_tokens": nonpad,
        "padded_tokens": padded,
        "label_tokens": labels,
        "tokens_per_s": nonpad / seconds,
        "padded_tokens_per_s": padded / seconds,
        "median_step_s": statistics.median(step_times),
    }


# ---------------------------------------------------------------- phase: plain transformers + peft loop


def run_plain(prepared: Path, work: Path, steps: int, warmup: int) -> dict:
    result = work / "plain.json"
    with OtherCPU() as cpu:
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--phase",
                "plain",
                "--prepared",
                str(prepared),
                "--result",
                str(result),
                "--steps",
                str(steps),
                "--warmup",
                str(warmup),
                "--t0",
                str(time.time()),
            ],
            cwd=REPO,
            env=env(),
            check=True,
            capture_output=True,
        )
    return {**json.loads(result.read_text()), "process_wall_s": cpu.wall, "other_cpu_s": cpu.other}


def prepared_folder(config_dir: Path) -> Path:
    """The dataset Axolotl saved under dataset_prepared_path (one hashed folder)."""
    found = sorted(
        {Path(p).parent for p in glob.glob(str(config_dir / "prepared" / "**" / "dataset_info.json"), recursive=True)}
    )
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
    subprocess.run(
        [
            sys.executable,
            "-m",
            "datagen",
            "skills",
            "--pack",
            str(REPO / "examples" / "skills"),
            "--out",
            str(data),
            "--n",
            str(n),
            "--seed",
            str(seed),
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    packing = {}
    for name, overrides in PACKING_VARIANTS.items():
        config = write_config(work, f"packing-{name}", data, **overrides)
        result = work / f"packing-{name}.json"
        done = subprocess.run(
            [sys.executable, __file__, "--phase", "packing", "--config", str(config), "--result", str(result)],
            cwd=REPO,
            env=env(),
            capture_output=True,
            text=True,
        )
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
        "machine": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "gpu": False,
        },
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
        from bench_phases import phase_packing

        return phase_packing(args.config, args.result)
    if args.phase == "plain":
        from bench_phases import phase_plain  # the loop Axolotl is measured against

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
