"""What ``k15ray eval MODEL DATA`` measures with, and how it shows the result.

Sampling settings (``EvalSettings``), each from the first of:

1. the command's flag (``--k``, ``--temperature``, ``--max-new-tokens``);
2. the ``eval`` section of the run that made the model: the nearest ``config.json`` with an
   ``eval`` mapping, from the model directory upward (``k15ray train`` writes
   ``<output_dir>/config.json``; its models are ``<output_dir>/rl/policy``,
   ``<output_dir>/rl/checkpoint/policy``, ``<output_dir>/sft/final`` ...). ``samples_per_prompt``
   is k; ``temperature: 0`` (a greedy run) means k = 0, greedy only;
3. the defaults of ``k15ray.evaluation`` (the quick-start's held-out settings).

The result is a rich table, overall and per difficulty level (``results_table``), under a header
naming the model, the data and where each setting came from (``header_table``); ``report_json``
holds the same numbers for ``--json``, ``write_plot`` draws them per level (``--plot``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k15ray.evaluation import (
    DEFAULT_K,
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_TEMPERATURE,
    EvalReport,
    LevelReport,
)

RUN_EVAL_FIELDS: dict[str, str] = {
    "k": "samples_per_prompt",
    "temperature": "temperature",
    "max_new_tokens": "max_new_tokens",
}
"""Each setting's field in the run's ``eval`` section (``HeldoutEvalConfig``)."""

FLAGS: dict[str, str] = {"k": "--k", "temperature": "--temperature", "max_new_tokens": "--max-new-tokens"}
"""Each setting's flag of ``k15ray eval``."""

DEFAULTS: dict[str, float | int] = {
    "k": DEFAULT_K,
    "temperature": DEFAULT_TEMPERATURE,
    "max_new_tokens": DEFAULT_MAX_NEW_TOKENS,
}


@dataclass(frozen=True)
class EvalSettings:
    """The sampling settings of one evaluation, and where each came from (``sources``: setting ->
    its flag such as ``"--k"``, ``"run config: eval.temperature"`` (of ``run_config``), or
    ``"default"``)."""

    k: int
    temperature: float
    max_new_tokens: int
    sources: Mapping[str, str]
    run_config: Path | None = None


def find_run_config(model_dir: str | Path) -> Path | None:
    """The nearest ``config.json`` with an ``eval`` mapping, from ``model_dir`` upward; None if none.
    (A Hugging Face model's own ``config.json`` has no ``eval`` key.)"""
    start = Path(model_dir).resolve()
    for folder in (start, *start.parents):
        candidate = folder / "config.json"
        try:
            data = json.loads(candidate.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("eval"), dict):
            return candidate
    return None


def _run_values(run_config: Path) -> dict[str, Any]:
    """The settings the run's ``eval`` section gives (only the fields it holds), validated."""
    from k15ray.config import from_mapping
    from k15ray.config.experiment import HeldoutEvalConfig

    section = json.loads(run_config.read_text())["eval"]
    given = {name: section[key] for name, key in RUN_EVAL_FIELDS.items() if key in section}
    checked = from_mapping(HeldoutEvalConfig, {RUN_EVAL_FIELDS[n]: v for n, v in given.items()}, f"{run_config}: eval")
    return {name: getattr(checked, RUN_EVAL_FIELDS[name]) for name in given}


def settings_for(
    model_dir: str | Path,
    *,
    k: int | None = None,
    temperature: float | None = None,
    max_new_tokens: int | None = None,
) -> EvalSettings:
    """The settings for ``model_dir``: given values (None = not given), else its run's ``eval``
    section, else the defaults (see the module docstring)."""
    given: dict[str, Any] = {"k": k, "temperature": temperature, "max_new_tokens": max_new_tokens}
    run_config = find_run_config(model_dir)
    from_run = _run_values(run_config) if run_config else {}
    keys = {name: f"eval.{key}" for name, key in RUN_EVAL_FIELDS.items()}
    if temperature is None and from_run.get("temperature") == 0:
        # the run measured greedy decoding (its pass@1 is the greedy accuracy): no samples
        from_run["k"], keys["k"] = 0, "eval.temperature = 0"
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, value in given.items():
        if value is not None:
            values[name], sources[name] = value, FLAGS[name]
        elif name in from_run:
            values[name], sources[name] = from_run[name], f"run config: {keys[name]}"
        else:
            values[name], sources[name] = DEFAULTS[name], "default"
    return EvalSettings(int(values["k"]), float(values["temperature"]), int(values["max_new_tokens"]),
                        sources, run_config)


def _shown(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies below it."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


# ------------------------------------------------------------------------------ showing it


def header_table(model: str | Path, data: str | Path, n_prompts: int, settings: EvalSettings) -> Any:
    """A rich grid: model, data, the run config, and each sampling setting with where it came from."""
    from rich.table import Table
    from rich.text import Text

    def value(text: str, note: str) -> Text:
        return Text.assemble(text, (f"  ({note})", "dim"))  # Text: paths are never read as markup

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("model", Text(str(model)))
    grid.add_row("data", value(str(data), f"{n_prompts} prompts"))
    if settings.run_config:
        grid.add_row("run config", Text(_shown(settings.run_config)))
    greedy = ", greedy only" if settings.k == 0 else ""
    grid.add_row("temperature", value(f"{settings.temperature}", settings.sources["temperature"]))
    grid.add_row("k", value(f"{settings.k}", settings.sources["k"] + greedy))
    grid.add_row("max tokens", value(f"{settings.max_new_tokens}", settings.sources["max_new_tokens"]))
    return grid


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _row(name: str, r: LevelReport) -> tuple[str, ...]:
    return (name, f"{r.n_prompts}", _percent(r.pass_at_1), _percent(r.greedy_accuracy),
            f"{r.mean_response_tokens:.1f}", f"{r.total_response_tokens:,}")


def results_table(report: EvalReport) -> Any:
    """A rich table, one row per difficulty level, then all prompts (and the mean of the levels),
    with a line under it saying what each column counts."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table()
    table.add_column("level")
    for name in ("prompts", "pass@1", "greedy", "mean tokens", "total tokens"):
        table.add_column(name, justify="right")
    for level, figures in sorted(report.by_difficulty.items()):
        table.add_row(*_row(f"{level}", figures))
    table.add_section()
    table.add_row(*_row("all", report.overall), style="bold")
    if len(report.by_difficulty) > 1:
        table.add_row("level mean", "", _percent(report.pass_at_1_level_mean),
                      _percent(report.greedy_accuracy_level_mean), "", "")
    counted = "sampled" if report.k else "greedy"
    legend = (f"pass@1: mean accuracy of k={report.k} samples at temperature {report.temperature}; "
              f"greedy: the argmax answer; tokens: the {counted} responses; {report.seconds:.1f} s")
    return Group(table, Text(legend, style="dim"))


def report_json(report: EvalReport, model: str | Path, data: str | Path, settings: EvalSettings) -> dict[str, Any]:
    """The figures of ``results_table`` and the settings of ``header_table``, for ``--json``."""
    return {
        "model": str(model),
        "data": str(data),
        **report.to_dict(),
        "max_new_tokens": settings.max_new_tokens,
        "sources": dict(settings.sources),
        "run_config": _shown(settings.run_config) if settings.run_config else None,
    }


def write_plot(report: EvalReport, path: str | Path, title: str = "") -> Path:
    """PNG bar chart of pass@1 and greedy accuracy per difficulty level and over all prompts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [(f"level {lv}", r) for lv, r in sorted(report.by_difficulty.items())] + [("all", report.overall)]
    bars = [("pass@1", lambda r: r.pass_at_1), ("greedy", lambda r: r.greedy_accuracy)]
    bars = [(name, get) for name, get in bars if any(get(r) is not None for _, r in groups)]
    width = 0.8 / len(bars)
    fig, ax = plt.subplots(figsize=(1.6 * len(groups) + 2, 3.5))
    for i, (name, get) in enumerate(bars):
        xs = [g + (i - (len(bars) - 1) / 2) * width for g in range(len(groups))]
        heights = [100 * (get(r) or 0.0) for _, r in groups]
        drawn = ax.bar(xs, heights, width, label=name)
        ax.bar_label(drawn, fmt="%.1f", fontsize=8)
    ax.set_xticks(range(len(groups)), [name for name, _ in groups])
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 120)  # room above the bars for the legend
    ax.set_yticks(range(0, 101, 20))
    ax.set_title(title or f"k={report.k}, temperature {report.temperature}")
    ax.legend(loc="upper left", ncol=len(bars), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
