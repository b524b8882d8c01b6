"""Reports for one or more scored models: report.json, report.md, confusion PNGs, tables, a gate."""

from __future__ import annotations

from pathlib import Path

from eval.score import EXTRA_SPLITS
from eval.training_curves import read_loss_curves, write_loss_png
from skilltune.jsonio import write_json, write_text

# (key in a model's scores, title): the rows every table starts with
HEADLINE = (
    ("exact_match", "exact match"),
    ("exact_match_lenient", "exact match, lenient"),
    ("name_accuracy", "skill name accuracy"),
    ("argument_f1", "argument F1"),
    ("relevance_f1", "relevance F1 (call vs no call)"),
    ("no_call_accuracy", "no-call accuracy"),
    ("parse_failure_rate", "parse failures"),
)


def build_report(scores_by_model: dict[str, dict], test_file: str) -> dict:
    return {"test_file": test_file, "models": list(scores_by_model), **scores_by_model}


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def table_rows(report: dict) -> list[tuple[str, ...]]:
    """Header, headline metrics, noisy-speech rows, then exact match per skill: one column per model."""
    models = report["models"]
    rows = [("", *models)]
    rows += [(title, *(_pct(report[model].get(key, 0.0)) for model in models)) for key, title in HEADLINE]
    rows.append(("examples", *(str(report[model]["n"]) for model in models)))
    if any(report[model].get("decoding", "free") != "free" for model in models):
        rows.append(("decoding", *(report[model].get("decoding", "free") for model in models)))
    for key, what in EXTRA_SPLITS.values():
        if all(key in report[model] for model in models):
            rows.append((f"exact match, {what}", *(_pct(report[model][key]["exact_match"]) for model in models)))
            rows.append((f"{what} examples", *(str(report[model][key]["n"]) for model in models)))
    rows.append(("exact match per skill:", *("" for _ in models)))
    skills = sorted({skill for model in models for skill in report[model]["per_skill"]})
    for skill in skills:
        cells = []
        for model in models:
            rates = report[model]["per_skill"].get(skill)
            cells.append(f"{_pct(rates['exact_match'])} of {rates['n']}" if rates else "-")
        rows.append((f"  {skill}", *cells))
    # compound requests (datagen skills --compound): exact match by the number of gold calls
    if any("2" in report[model].get("by_calls", {}) for model in models):
        for calls, title in (("1", "exact match, 1 call"), ("2", "exact match, 2 calls")):
            entries = [report[model].get("by_calls", {}).get(calls) for model in models]
            rows.append((title, *(f"{_pct(e['exact_match'])} of {e['n']}" if e else "-" for e in entries)))
    return rows


def side_by_side(report: dict) -> str:
    """The rows of `table_rows` as aligned plain text."""
    rows = table_rows(report)
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def _markdown_row(cells) -> str:
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"


def markdown(report: dict, images: dict[str, str] | None = None, loss: tuple[str, str] | None = None) -> str:
    """`loss`: (image file, one-line summary) of the training run's loss curves, when there is a log."""
    models = report["models"]
    rows = table_rows(report)
    lines = [f"# Function-calling eval on `{report['test_file']}`", ""]
    lines += [_markdown_row(("metric", *models)), "|---|" + "---|" * len(models)]
    lines += [_markdown_row((title.strip(), *cells)) for title, *cells in rows[1:]]
    for model, image in (images or {}).items():
        lines += ["", f"## Confusion matrix of {model}", "", f"![confusion matrix of {model}]({image})"]
    if loss is not None:
        loss_image, loss_summary = loss
        lines += [
            "",
            "## Training and validation loss",
            "",
            loss_summary,
            "",
            f"![training and validation loss]({loss_image})",
        ]
    for model in models:
        failures = report[model]["failures"]
        if not failures:
            continue
        lines += [
            "",
            f"## Worst failures of {model} (up to 3 per skill, worst first)",
            "",
            _markdown_row(("skill", "user", "gold", "output", "error")),
            "|---|---|---|---|---|",
        ]
        for skill, failed in failures.items():
            for row in failed:
                output = row["output"].replace("\n", " ")[:80]
                lines.append(
                    _markdown_row((skill, row["user"], f"`{row['gold']}`", f"`{output}`", row["error_type"] or ""))
                )
    return "\n".join(lines) + "\n"


def write_confusion_png(path: Path, confusion: dict, title: str) -> None:
    """Rows: gold skill; columns: what the model called. Counts in the cells."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    labels, matrix = confusion["labels"], confusion["matrix"]
    size = max(4.0, 0.55 * len(labels) + 2)
    figure, axes = plt.subplots(figsize=(size + 1, size))
    image = axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted call")
    axes.set_ylabel("gold call")
    axes.set_title(title)
    peak = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            if count:
                axes.text(
                    j,
                    i,
                    str(count),
                    ha="center",
                    va="center",
                    color="white" if count > peak / 2 else "black",
                    fontsize=8,
                )
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(temporary, dpi=110)
    plt.close(figure)
    temporary.replace(path)  # a reader never sees half a PNG


def write_report(out_dir: Path | str, report: dict, training_log: Path | str | None = None) -> None:
    """report.json, one confusion-<model>.png per model, and report.md showing them; with the
    training run's trainer_log.jsonl, also loss.png and its section in report.md."""
    out_dir = Path(out_dir)
    write_json(out_dir / "report.json", report, "report")
    images = {}
    for model in report["models"]:
        name = f"confusion-{model}.png"
        write_confusion_png(out_dir / name, report[model]["confusion"], f"{model}: gold vs predicted call")
        images[model] = name
    loss = None
    curves = read_loss_curves(training_log) if training_log is not None else None
    if curves:  # a log with no loss in it (a run stopped before its first log) draws nothing
        write_loss_png(out_dir / "loss.png", curves, "training and validation loss")
        loss = ("loss.png", curves.summary())
    write_text(out_dir / "report.md", markdown(report, images, loss))


def gate_problems(
    scores: dict, label: str, min_exact_match: float | None = None, baseline: dict | None = None, max_drop: float = 0.0
) -> list[str]:
    """Why `scores` should not ship: under the threshold, or worse than the baseline by more than max_drop."""
    problems = []
    exact = scores["exact_match"]
    if min_exact_match is not None and exact < min_exact_match:
        problems.append(f"{label}: exact match {_pct(exact)} is under the threshold {_pct(min_exact_match)}")
    if baseline is not None and exact < baseline["exact_match"] - max_drop:
        problems.append(
            f"{label}: exact match {_pct(exact)} dropped from the baseline's {_pct(baseline['exact_match'])} "
            f"(allowed drop {_pct(max_drop)})"
        )
    return problems
