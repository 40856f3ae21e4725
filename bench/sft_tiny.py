"""Benchmark ``sft_tiny``: the long-CoT SFT warm-up (paper 2.2) of the tiny preset, from scratch.

Generates the arithmetic tasks, measures the untrained model's held-out greedy accuracy (the
baseline), trains the ``tiny`` preset with ``configs/sft_tiny.yaml`` for exactly ``STEPS`` optimizer
steps (the config's wall-clock stop is replaced: the step count, not the machine's speed, decides the
result; the time taken is reported beside it), then evaluates the saved checkpoints on the held-out
split. ``value`` is the final held-out greedy accuracy averaged over difficulty levels; ``ratio`` is
``value - baseline`` (the baseline is about 0, so a quotient would be undefined). Writes
``docs/sft_tiny.png`` (loss and accuracy curves, against steps). Beside it, from the same run:
``sft_tokens_per_s`` / ``plain_tokens_per_s`` = ``speed_ratio``, the training throughput of
k15ray's SFT step against a plain transformers loop on the same model and rows (``_speed``).

Run: ``python bench/run.py sft_tiny`` (about 5 minutes of training on a quiet core, longer on a busy
machine; the figures do not change with the machine's speed, only the minutes do). With
``K15_BENCH_WORK=DIR`` the work goes to DIR and a rerun resumes the training from its newest
checkpoint (stopped runs lose at most ``CURVE_EVERY`` steps), so a busy machine can run it in parts.
"""

from __future__ import annotations

import json
import os
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
STEPS = 1000  # optimizer steps of 4 x 512 tokens (2.05 M tokens); docs/sft.md, "Calibration"
CURVE_EVERY = 250  # a checkpoint (and a curve point) every this many steps
SPEED_STEPS = 20  # optimizer steps per side and round of the tokens/s comparison (``_speed``)


def _eval(model_dir: Path, prompts: list[Any]) -> Any:
    from k15ray.evaluation import evaluate

    return evaluate(model_dir, None, prompts, k=0, max_new_tokens=MAX_NEW_TOKENS, batch_size=128)


def _plot(metrics: list[dict[str, Any]], curve: list[tuple[int, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot([m["step"] for m in metrics], [m["loss"] for m in metrics])
    ax1.set(xlabel="optimizer step", ylabel="response-token loss", title="SFT loss (tiny preset)")
    ax1.set_yscale("log")
    ax2.plot([c[0] for c in curve], [100 * c[1] for c in curve], marker="o")
    ax2.axhspan(30, 80, color="green", alpha=0.1, label="target band")
    ax2.set(xlabel="optimizer step", ylabel="held-out greedy accuracy, %", title="mean over levels")
    ax2.set_ylim(0, 100)
    ax2.legend()
    fig.tight_layout()
    PNG.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PNG, dpi=100)
    plt.close(fig)


def _speed(model_dir: Path, config: Any, steps: int = SPEED_STEPS) -> dict[str, float]:
    """Training tokens/s of k15ray's SFT step against a plain transformers loop, same run.

    Both start from the same weights and take ``steps`` optimizer steps on the same examples, those
    of the first ``steps`` micro-batches (``batch_size`` packed rows of ``seq_len`` tokens each),
    alternating in two rounds (best of each side); tokens/s counts the examples' tokens (no
    padding). Plain: the packed rows as they are, ``model(input_ids, labels=input_ids)`` with the
    model's default causal attention over the whole row, ``loss.backward()``, ``AdamW.step()``
    (what a transformers user writes first, doing less: no example isolation, no clipping).
    k15ray: ``k15ray.sft._train_step`` on the layout of ``config.batching`` (response-only loss,
    each example attending only to itself, gradient clipping)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from k15ray.packing import StepBatches, load_examples, row_tensors
    from k15ray.sft import _train_step

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    pad = tokenizer.pad_token_id
    batches = StepBatches(load_examples(config.data, tokenizer), config.batching, config.seq_len,
                          config.batch_size, config.seed)
    data_tokens = sum(batches.tokens(i) for i in range(steps))
    ours_steps = [batches.tensors(i, pad) for i in range(steps)]
    plain_steps = [torch.tensor([row_tensors(row, config.seq_len, pad)[0] for row in batches.rows_of(i)])
                   for i in range(steps)]

    def ours(model: Any, optimizer: Any) -> None:
        for mbs in ours_steps:
            _train_step(model, optimizer, mbs, config, config.lr)

    def plain(model: Any, optimizer: Any) -> None:
        for input_ids in plain_steps:
            model(input_ids=input_ids, labels=input_ids).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    best = {"k15ray": 0.0, "plain": 0.0}
    sides = {}
    for name in best:
        model = AutoModelForCausalLM.from_pretrained(str(model_dir))
        model.train()
        sides[name] = (model, torch.optim.AdamW(model.parameters(), lr=config.lr))
    for _ in range(2):
        for name, fn in (("k15ray", ours), ("plain", plain)):
            t0 = time.perf_counter()
            fn(*sides[name])
            best[name] = max(best[name], data_tokens / (time.perf_counter() - t0))
    return {
        "sft_tokens_per_s": round(best["k15ray"]),
        "plain_tokens_per_s": round(best["plain"]),
        "speed_ratio": round(best["k15ray"] / best["plain"], 3),
        "speed_batching": config.batching,
    }


def run() -> dict[str, Any]:
    from k15ray.config import load_config
    from k15ray.config.sft import SFTConfig
    from k15ray.envs.dataset import load_prompts
    from k15ray.models import create_model
    from k15ray.sft import checkpoints, train_sft
    from k15ray.tasks import write_splits

    start = time.perf_counter()
    work = Path(os.environ.get("K15_BENCH_WORK") or tempfile.mkdtemp(prefix="sft-tiny-bench-"))
    paths = {name: work / "data" / f"{name}.jsonl" for name in ("train", "heldout", "sft")}
    if not all(p.is_file() for p in paths.values()):
        paths = write_splits(work / "data", N_TRAIN, N_HELDOUT, seed=0)
    heldout = load_prompts(paths["heldout"])
    curve_prompts = [p for i, p in enumerate(heldout) if i % (N_HELDOUT // N_CURVE) == 0][:N_CURVE]
    config = load_config(
        SFTConfig,
        CONFIG,
        {
            "data": str(paths["sft"]),
            "out_dir": str(work / "run"),
            "max_steps": STEPS,
            "max_minutes": 0.0,  # steps decide, not the clock
            "save_every_steps": CURVE_EVERY,
            "save_every_minutes": 0.0,
        },
    )
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    untrained = create_model("tiny", work / "untrained", seed=config.seed)
    speed = _speed(untrained, config)
    baseline = _eval(untrained, heldout)
    t0 = time.perf_counter()
    final = train_sft(config, progress=False)
    train_s = time.perf_counter() - t0
    state = json.loads((final / "trainer_state.json").read_text())
    curve = [(0, baseline.greedy_accuracy_level_mean or 0.0)]
    for ckpt in checkpoints(work / "run")[:-1]:
        step = json.loads((ckpt / "trainer_state.json").read_text())["step"]
        curve.append((step, _eval(ckpt, curve_prompts).greedy_accuracy_level_mean or 0.0))
    report = _eval(final, heldout)
    value = report.greedy_accuracy_level_mean or 0.0
    curve.append((state["step"], value))
    metrics = [
        json.loads(line) for line in (work / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    _plot(metrics, curve)
    base = baseline.greedy_accuracy_level_mean or 0.0
    return {
        "value": round(value, 4),
        "unit": "held-out greedy accuracy, mean over 5 difficulty levels",
        "baseline": round(base, 4),
        "ratio": round(value - base, 4),
        "ratio_kind": "difference (value - baseline); the untrained baseline is ~0",
        "steps": state["step"],
        "tokens": state["tokens"],
        "train_minutes": round(state["elapsed_s"] / 60, 2),
        "train_wall_minutes": round(train_s / 60, 2),
        "train_tokens_per_s": round(state["tokens"] / max(state["elapsed_s"], 1e-9)),
        **speed,
        "final_loss": metrics[-1]["loss"],
        "by_level": {k: v["greedy_accuracy"] for k, v in report.to_dict()["by_difficulty"].items()},
        "mean_response_tokens": round(report.mean_response_tokens, 1),
        "curve": [(step, round(a, 3)) for step, a in curve],  # (optimizer step, accuracy)
        "n_heldout": len(heldout),
        "num_threads": torch.get_num_threads(),
        "bench_wall_minutes": round((time.perf_counter() - start) / 60, 2),
    }


if __name__ == "__main__":
    print(json.dumps(run()))
