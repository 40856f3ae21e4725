"""``k15ray ablate CONFIG... [--out DIR] [--resume]``: load and check the ablations, run the sweep,
write each ablation's table, JSON and figure (the CLI wrapper in ``k15ray.cli`` stays thin)."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from pathlib import Path

from k15ray.ablation.config import AblationConfig, load_ablation
from k15ray.ablation.experiment import run_sweep
from k15ray.ablation.report import write_report
from k15ray.config.experiment import parse_override
from k15ray.errors import UserError


def load_all(configs: Sequence[str], sets: Sequence[str]) -> list[AblationConfig]:
    """Every config with the ``--set`` overrides applied to each; a bad one is a ``UserError``."""
    try:
        overrides = dict(parse_override(item) for item in sets)
        return [load_ablation(path, overrides) for path in configs]
    except ValueError as err:
        raise UserError(str(err)) from err


def ablate(
    configs: Sequence[str],
    out: str,
    *,
    sets: Sequence[str] = (),
    resume: bool = False,
    max_concurrent: int = 0,
    cpus_per_trial: float = 1.0,
    num_cpus: int = 0,
    report_only: bool = False,
    echo: Callable[[str], None] = print,
) -> list[dict[str, object]]:
    """Run the sweep (unless ``report_only``) and write the reports; returns their JSON. Failed
    trials are left out of the tables and reported as a ``UserError`` naming the resume command."""
    if cpus_per_trial <= 0 or max_concurrent < 0 or num_cpus < 0:
        raise UserError(
            "--cpus-per-trial must be > 0 and --max-concurrent / --num-cpus >= 0 (0 = all cores)"
        )
    ablations = load_all(configs, sets)
    command = shlex.join(
        [
            "k15ray",
            "ablate",
            *configs,
            "--out",
            out,
            *(a for s in sets for a in ("--set", s)),
            "--resume",
        ]
    )
    failed: list[str] = []
    if not report_only:
        failed = run_sweep(
            ablations,
            out,
            resume=resume,
            max_concurrent=max_concurrent,
            cpus_per_trial=cpus_per_trial,
            num_cpus=num_cpus,
            resume_command=command,
            echo=echo,
        )
    reports = []
    for ablation in ablations:
        reports.append(write_report(ablation, Path(out).resolve()))
        echo(Path(out, f"{ablation.name}.md").read_text())
        echo(f"{ablation.name}: {Path(out, ablation.name)}.md / .json / .png")
    if failed:
        raise UserError(
            f"{len(failed)} trial(s) failed ({', '.join(failed)}); their errors are in {out}/tune; re-run them with: {command}"
        )
    return reports
