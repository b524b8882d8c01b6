"""Write report.json and report.md for one or more scored models, and a side-by-side table."""

from __future__ import annotations

from pathlib import Path

from datagen.jsonio import write_json, write_text

HEADLINE = (("exact_match", "exact match"), ("name_accuracy", "skill name accuracy"), ("parse_failure_rate", "parse failures"))


def build_report(scores_by_model: dict[str, dict], test_file: str) -> dict:
    return {"test_file": test_file, "models": list(scores_by_model), **scores_by_model}


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def side_by_side(report: dict) -> str:
    """A plain-text table, one column per model: headline metrics, then exact match per skill."""
    models = report["models"]
    skills = sorted({skill for model in models for skill in report[model]["per_skill"]})
    rows = [("", *models)]
    rows += [(title, *(_pct(report[model][key]) for model in models)) for key, title in HEADLINE]
    rows.append(("examples", *(str(report[model]["n"]) for model in models)))
    if all("noisy" in report[model] for model in models):
        rows.append(("exact match, noisy speech", *(_pct(report[model]["noisy"]["exact_match"]) for model in models)))
        rows.append(("noisy examples", *(str(report[model]["noisy"]["n"]) for model in models)))
    rows.append(("exact match per skill:", *("" for _ in models)))
    for skill in skills:
        cells = []
        for model in models:
            rates = report[model]["per_skill"].get(skill)
            cells.append(f"{_pct(rates['exact_match'])} of {rates['n']}" if rates else "-")
        rows.append((f"  {skill}", *cells))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def markdown(report: dict) -> str:
    models = report["models"]
    lines = [f"# Function-calling eval on `{report['test_file']}`", ""]
    lines += ["| metric | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    for key, title in HEADLINE:
        lines.append(f"| {title} | " + " | ".join(_pct(report[model][key]) for model in models) + " |")
    lines.append("| examples | " + " | ".join(str(report[model]["n"]) for model in models) + " |")
    if all("noisy" in report[model] for model in models):
        lines.append("| exact match, noisy speech | " + " | ".join(_pct(report[model]["noisy"]["exact_match"]) for model in models) + " |")
        lines.append("| noisy examples | " + " | ".join(str(report[model]["noisy"]["n"]) for model in models) + " |")
    lines += ["", "## Exact match per skill", "", "| skill | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    skills = sorted({skill for model in models for skill in report[model]["per_skill"]})
    for skill in skills:
        cells = []
        for model in models:
            rates = report[model]["per_skill"].get(skill)
            cells.append(f"{_pct(rates['exact_match'])} ({rates['n']})" if rates else "-")
        lines.append(f"| {skill} | " + " | ".join(cells) + " |")
    for model in models:
        failures = report[model]["failures"]
        if not failures:
            continue
        lines += ["", f"## Failures of {model} (up to 3 per skill)", "", "| skill | user | gold | output | error |", "|---|---|---|---|---|"]
        for skill, rows in failures.items():
            for row in rows:
                output = row["output"].replace("\n", " ")[:80]
                cells = [skill, row["user"], f"`{row['gold']}`", f"`{output}`", row["error_type"] or ""]
                lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(out_dir: Path | str, report: dict) -> None:
    out_dir = Path(out_dir)
    write_json(out_dir / "report.json", report, "report")
    write_text(out_dir / "report.md", markdown(report))
