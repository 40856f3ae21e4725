"""The curation report: ``report.json`` (everything) and ``report.md`` (what a person reads)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REASONS = {
    "format": "excluded format",
    "easy_to_hack": "answered correctly without a chain of thought",
    "pass_rate": "pass rate outside [min_pass_rate, max_pass_rate]",
}


def render_markdown(report: dict[str, Any]) -> str:
    """``report.md``: counts kept and dropped (by reason and rule), difficulty buckets, coverage."""
    n_in = report["prompts_in"]
    lines = [
        "# Curation report",
        "",
        f"- input: `{report['input']}` ({n_in} prompts)",
        f"- curated: `{report['output']}` ({report['prompts_kept']} prompts kept)",
        f"- model: `{report['model_dir']}`" if report["model_dir"] else "- model: none (format exclusion only)",
        f"- time: {report['seconds']} s",
        "",
        "## Dropped",
        "",
        "| reason | rule | prompts | share of input |",
        "| --- | --- | --- | --- |",
    ]
    for reason, count in report["dropped_by_reason"].items():
        kind, _, rule = reason.partition(":")  # format:<kind>:<rule> reads "excluded format: <kind>"
        what, _, rule = rule.rpartition(":") if kind == "format" else ("", "", rule)
        label = f"{REASONS.get(kind, kind)}: {what}" if what else REASONS.get(kind, kind)
        lines.append(f"| {label} | {rule or '-'} | {count} | {count / n_in:.1%} |")
    lines += ["", "## Difficulty buckets (1 = easiest)", "", "| difficulty | prompts |", "| --- | --- |"]
    for level, count in sorted(report["difficulty_buckets"].items()):
        lines.append(f"| {level} | {count} |")
    lines += ["", "## Coverage (input -> curated), chart: coverage.png", ""]
    for panel in ("domain", "tag"):
        before, after = report["coverage"]["input"][panel], report["coverage"]["curated"][panel]
        lines += [f"| {panel} | input | curated |", "| --- | --- | --- |"]
        lines += [f"| {k} | {v} | {after.get(k, 0)} |" for k, v in list(before.items())[:30]]
        lines.append("")
    return "\n".join(lines)


def write_report(report: dict[str, Any], out_dir: str | Path) -> None:
    out = Path(out_dir)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "report.md").write_text(render_markdown(report))
