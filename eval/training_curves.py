"""The loss curves of a training run, from its trainer_log.jsonl: training and validation loss
against the optimizer step, as numbers (for report.md's line) and as a PNG (loss.png)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from skilltune.trainer_log import read_trainer_log


@dataclass(frozen=True)
class LossCurves:
    train: list[tuple[int, float]]  # (step, training loss since the previous log)
    val: list[tuple[int, float]]  # (step, eval_loss); Axolotl also evaluates at step 0 when a config evaluates

    def __bool__(self) -> bool:
        return bool(self.train or self.val)

    def summary(self) -> str:
        """One line: first and last value of each curve, and how many points it has."""
        parts = []
        for name, points, unit in (("training loss", self.train, "log"), ("validation loss", self.val, "evaluation")):
            if not points:
                parts.append(f"no {name} logged")
                continue
            (first_step, first), (last_step, last) = points[0], points[-1]
            count = f"{len(points)} {unit}{'' if len(points) == 1 else 's'}"
            if len(points) == 1:
                parts.append(f"{name} {last:.4f} at step {last_step} ({count})")
            else:
                parts.append(f"{name} {first:.4f} at step {first_step} -> {last:.4f} at step {last_step} ({count})")
        return "; ".join(parts)


def loss_curves(rows: list[dict]) -> LossCurves:
    """The points of each curve; a null loss (NaN or inf in the run) is left out."""

    def points(key: str) -> list[tuple[int, float]]:
        return [(row["step"], row[key]) for row in rows if row.get(key) is not None]

    return LossCurves(train=points("loss"), val=points("eval_loss"))


def read_loss_curves(path: Path | str) -> LossCurves:
    return loss_curves(read_trainer_log(path))


def write_loss_png(path: Path, curves: LossCurves, title: str) -> None:
    """Training loss as a line, validation loss as a line with a marker on each evaluation."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.2))
    for label, points, style in (("training", curves.train, "-"), ("validation", curves.val, "o-")):
        if points:
            steps, losses = zip(*points)
            axes.plot(steps, losses, style, label=f"{label} loss")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(temporary, dpi=110)
    plt.close(figure)
    temporary.replace(path)  # a reader never sees half a PNG
