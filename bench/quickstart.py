"""Benchmark ``quickstart``: held-out pass@1 gained by K15 RL over the SFT model, end to end.

Runs ``k15ray train configs/quickstart.yaml`` (SFT warm-up of the tiny model, then K15 on
k15/Math-v0) once per seed, each in a fresh output directory, and reports:

* ``value``: the mean over seeds of (pass@1 after RL - pass@1 of the SFT model), in points;
* ``baseline``: the mean pass@1 of the SFT models (points), measured in the same runs;
* ``ratio``: mean pass@1 after / mean pass@1 before;
* ``seeds``: each seed's before, after, gain and wall-clock minutes (SFT + evals + RL).

Seeds: ``K15_BENCH_SEEDS`` (comma-separated, default ``0,1,2``); outputs in ``K15_BENCH_DIR``
(default: a temporary directory). Target (docs/k15.md): gain >= 15 points, <= 10 minutes per seed
on a quiet 2-core machine.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "quickstart.yaml"


def seeds() -> list[int]:
    raw = os.environ.get("K15_BENCH_SEEDS", "0,1,2")
    return [int(s) for s in raw.split(",") if s.strip()]


def run_seed(seed: int, out_dir: Path) -> dict[str, Any]:
    """One end-to-end quick-start run; its figures."""
    from k15ray.config.experiment import load_experiment
    from k15ray.job import train

    cfg = load_experiment(CONFIG, {"seed": seed, "output_dir": str(out_dir), "data.seed": seed})
    t0 = time.perf_counter()
    result = train(cfg, progress=False)
    return {
        "seed": seed,
        "before_pass_at_1": round(100 * result.before["pass_at_1"], 2),
        "after_pass_at_1": round(100 * result.after["pass_at_1"], 2),
        "gain_points": round(result.gain_points, 2),
        "iterations": result.iterations,
        "rl_minutes": round(result.rl_seconds / 60, 2),
        "wall_minutes": round((time.perf_counter() - t0) / 60, 2),
    }


def run() -> dict[str, Any]:
    base = Path(os.environ.get("K15_BENCH_DIR") or tempfile.mkdtemp(prefix="k15-bench-"))
    runs = [run_seed(seed, base / f"seed{seed}") for seed in seeds()]
    before = statistics.mean(r["before_pass_at_1"] for r in runs)
    after = statistics.mean(r["after_pass_at_1"] for r in runs)
    return {
        "value": round(after - before, 2),
        "unit": "points of held-out pass@1 gained by RL (mean over seeds)",
        "baseline": round(before, 2),
        "ratio": round(after / before, 3) if before else float("inf"),
        "after": round(after, 2),
        "max_wall_minutes": max(r["wall_minutes"] for r in runs),
        "seeds": runs,
        "config": str(CONFIG.relative_to(ROOT)),
        "outputs": str(base),
    }
