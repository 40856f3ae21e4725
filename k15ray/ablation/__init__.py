"""The paper's ablations in miniature (Kimi k1.5 2.3.2-2.3.4, Figures 9-10), as Ray Tune experiments.

``k15ray ablate configs/ablations/objective.yaml [...]`` runs every arm of every given ablation with
its seeds as one Tune grid (``k15ray.ablation.experiment``), each trial a ``k15ray train`` run from
the same SFT start, then gathers one table and one figure per ablation (``k15ray.ablation.report``).
The configurations are ``k15ray.ablation.config.AblationConfig``; docs/ablations.md has the figures.
"""

from k15ray.ablation.config import AblationConfig, Expectation, load_ablation
from k15ray.ablation.experiment import run_sweep, trial_dir
from k15ray.ablation.report import write_report

__all__ = [
    "AblationConfig",
    "Expectation",
    "load_ablation",
    "run_sweep",
    "trial_dir",
    "write_report",
]
