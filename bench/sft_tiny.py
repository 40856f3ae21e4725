"""Benchmark ``sft_tiny``: the long-CoT SFT warm-up (paper 2.2) of the tiny preset, from scratch.

Generates the arithmetic tasks, measures the untrained model's held-out greedy accuracy (the
baseline), trains the ``tiny`` preset with ``configs/sft_tiny.yaml`` (stopped by wall-clock time),
then evaluates the saved checkpoints on the held-out split. ``value`` is the final held-out greedy
accuracy averaged over difficulty levels; ``ratio`` is ``value - baseline`` (the baseline is about
0, so a quotient would be undefined). Writes ``docs/sft_tiny.png`` (loss and accuracy curves).

Run: ``python bench/run.py sft_tiny`` (about 4.5 minutes on 2 cores).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "sft_tiny.yaml"
PNG = ROOT / "docs" / "sft_tiny.png"
N_TRAIN = 8000
N_HELDOUT = 250  # 50 per level
N_CURVE = 100  # held-out prompts for the intermediate points of the curve
MAX_NEW_TOKENS = 256  # the longest solution is about 215 tokens


def _eval(model_dir: Path, prompts: list[Any]) -> Any:
    from k15ray.evaluation import evaluate

    return evaluate(model_dir, None, prompts, k=0, max_new_tokens=MAX_NEW_TOKENS, batch_size=128)


def _plot(metrics: list[dict[str, Any]], curve: list[tuple[float, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot([m["elapsed_s"] / 60 for m in metrics], [m["loss"] for m in metrics])
    ax1.set(xlabel="training minutes", ylabel="response-token loss", title="SFT loss (tiny preset)")
    ax1.set_yscale("log")
    ax2.plot([c[0] for c in curve], [100 * c[1] for c in curve], marker="o")
    ax2.axhspan(30, 80, color="green", alpha=0.1, label="target band")
    ax2.set(xlabel="training minutes", ylabel="held-out greedy accuracy, %", title="mean over levels")
    ax2.set_ylim(0, 100)
    ax2.legend()
    fig.tight_layout()
    PNG.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PNG, dpi=100)
    plt.close(fig)


def run() -> dict[str, Any]:
    from k15ray.config import load_config
    from k15ray.config.sft import SFTConfig
    from k15ray.envs.dataset import load_prompts
    from k15ray.models import create_model
    from k15ray.sft import checkpoints, train_sft
    from k15ray.tasks import write_splits

    start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="sft-tiny-bench-"))
    paths = write_splits(work / "data", N_TRAIN, N_HELDOUT, seed=0)
    heldout = load_prompts(paths["heldout"])
    curve_prompts = [p for i, p in enumerate(heldout) if i % (N_HELDOUT // N_CURVE) == 0][:N_CURVE]
    config = load_config(SFTConfig, CONFIG, {"data": str(paths["sft"]), "out_dir": str(work / "run")})
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    baseline = _eval(create_model("tiny", work / "untrained", seed=config.seed), heldout)
    t0 = time.perf_counter()
    final = train_sft(config, progress=False)
    train_s = time.perf_counter() - t0
    state = json.loads((final / "trainer_state.json").read_text())
    curve = [(0.0, baseline.greedy_accuracy_level_mean or 0.0)]
    for ckpt in checkpoints(work / "run")[:-1]:
        minutes = json.loads((ckpt / "trainer_state.json").read_text())["elapsed_s"] / 60
        curve.append((minutes, _eval(ckpt, curve_prompts).greedy_accuracy_level_mean or 0.0))
    report = _eval(final, heldout)
    value = report.greedy_accuracy_level_mean or 0.0
    curve.append((state["elapsed_s"] / 60, value))
    metrics = [json.loads(line) for line in (work / "run" / "metrics.jsonl").read_text().splitlines()]
    _plot(metrics, curve)
    base = baseline.greedy_accuracy_level_mean or 0.0
    return {
        "value": round(value, 4),
        "unit": "held-out greedy accuracy, mean over 5 difficulty levels",
        "baseline": round(base, 4),
        "ratio": round(value - base, 4),
        "ratio_kind": "difference (value - baseline); the untrained baseline is ~0",
        "train_minutes": round(state["elapsed_s"] / 60, 2),
        "train_wall_minutes": round(train_s / 60, 2),
        "steps": state["step"],
        "tokens": state["tokens"],
        "final_loss": metrics[-1]["loss"],
        "by_level": {k: v["greedy_accuracy"] for k, v in report.to_dict()["by_difficulty"].items()},
        "mean_response_tokens": round(report.mean_response_tokens, 1),
        "curve": [(round(m, 2), round(a, 3)) for m, a in curve],
        "n_heldout": len(heldout),
        "num_threads": torch.get_num_threads(),
        "bench_wall_minutes": round((time.perf_counter() - start) / 60, 2),
    }


if __name__ == "__main__":
    print(json.dumps(run()))
