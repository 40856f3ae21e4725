"""The run's curves: training reward and accuracy, response length and held-out pass@1 per iteration."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from k15ray import metrics as M


def write_curves(history: Sequence[dict[str, float]], before: dict[str, float], after: dict[str, float], path: Path) -> Path:
    """PNG of training reward/accuracy, response length and held-out pass@1 per iteration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    its = [h["iteration"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    axes[0].plot(its, [h.get(M.REWARD_ACCURACY, math.nan) for h in history], label="train accuracy (k samples)")
    axes[0].plot(its, [h.get(M.REWARD_MEAN, math.nan) for h in history], label="shaped reward", alpha=0.6)
    axes[0].set_title("training batch")
    axes[1].plot(its, [h.get(M.ROLLOUT_RESPONSE_LEN_MEAN, math.nan) for h in history], label="mean")
    axes[1].plot(its, [h.get(M.ROLLOUT_RESPONSE_LEN_P95, math.nan) for h in history], label="p95", alpha=0.6)
    axes[1].set_title("response length (tokens)")
    evals = [(h["iteration"], h[M.EVAL_PASS_AT_1]) for h in history if not math.isnan(h.get(M.EVAL_PASS_AT_1, math.nan))]
    points = [(0.0, before["pass_at_1"]), *evals]
    if history:
        points.append((its[-1], after["pass_at_1"]))
    axes[2].plot([p[0] for p in points], [100 * p[1] for p in points], marker="o")
    axes[2].set_title(f"held-out pass@1 (%): {100 * before['pass_at_1']:.1f} -> {100 * after['pass_at_1']:.1f}")
    for ax in axes:
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    axes[0].legend()
    axes[1].legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
