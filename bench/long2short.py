"""Benchmark ``long2short``: the four long2short methods of paper 2.4 against the long-CoT model.

The analogue of the paper's Figure 7 on the generated arithmetic task (levels 1-2, the quick-start's:
3-5 need far more SFT than fits in CPU-minutes), all from one seed on a 2-core CPU:

1. data: the same problems with long-CoT solutions (``style: long``, mean 3.7x the column chain)
   and with short ones (``style: short``, the one-line chain: no worked steps);
2. long: ``configs/long2short_long.yaml`` (long-CoT SFT warm-up stopped at 50% like the quick-start's,
   then K15 without a length penalty): the "long SFT" and "long RL" points, and the penalty-off arm
   of the length-penalty curve;
3. short: the same tiny preset and seed, SFT on the short solutions for as many steps (so as many
   training tokens) as the long warm-up took;
4. merge: ``merge_models(long RL, short SFT, weight 0.5)``;
5. shortest rejection sampling: 8 samples of ``N_SAMPLE_PROMPTS`` train prompts from long RL through the
   rollout actors, SFT of long RL on the shortest correct ones;
6. DPO: ``configs/long2short_dpo.yaml`` from long RL, on the same prompts;
7. long2short RL: ``configs/long2short.yaml`` from long RL (penalty from iteration 0, 160 tokens max),
   ``L2S_ITERATIONS`` iterations;
8. length penalty on (paper 2.3.3): K15 from the long SFT model as in 2., for as many iterations,
   plus the length penalty (weight ``LP_WEIGHT`` after a warm-up of ``LP_WARMUP`` iterations);
9. held-out pass@1 (k=4, temperature 0.6, 384 tokens, all 300 held-out prompts) and mean response
   tokens of every model, each measured as soon as the model exists (``eval_*.json`` in the output
   folder; the RL runs' own before/after figures are the same measurement);
   ``docs/long2short_efficiency.png`` (accuracy vs tokens) and ``docs/long2short_length.png``
   (response length per iteration, penalty on/off).

Every run is bounded by iterations, not minutes (``run.time_budget_minutes: 0``).

``value``: long2short RL's mean response tokens as a fraction of long RL's (target <= 0.6);
``baseline``: long RL's pass@1 (%); ``ratio``: long2short RL's pass@1 / long RL's (target: within
2 points). Environment: ``K15_BENCH_DIR`` keeps the outputs (a rerun skips finished stages),
``K15_BENCH_SEED`` (default 0). About 35 minutes on a quiet 2-core machine (far more on a busy one).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LONG_CONFIG = ROOT / "configs" / "long2short_long.yaml"
L2S_CONFIG = ROOT / "configs" / "long2short.yaml"
SHORT_SFT_CONFIG = ROOT / "configs" / "long2short_sft_short.yaml"
DPO_CONFIG = ROOT / "configs" / "long2short_dpo.yaml"
EFFICIENCY_PNG = ROOT / "docs" / "long2short_efficiency.png"
LENGTH_PNG = ROOT / "docs" / "long2short_length.png"
LP_WEIGHT = 0.5
"""Length-penalty weight of the penalty-on arm (paper 2.3.3)."""
LP_WARMUP = 10
"""Its warm-up: iterations of plain policy optimisation first."""
N_SAMPLE_PROMPTS = 200
"""Train prompts that rejection sampling and DPO draw 8 samples of (1,600 responses each)."""
L2S_ITERATIONS = 40
"""Iterations of long2short RL (the config's; the penalty acts from iteration 0)."""
RS_SFT_STEPS = 40
"""SFT steps on the shortest correct samples (about 3 epochs of ~350 examples packed ~25 a step)."""
RS_SFT_LR = 2e-4
"""Their peak learning rate: a fine-tune of the RL model, not a warm-up from scratch."""
POINTS = ("long SFT", "short SFT", "long RL", "merge", "shortest RS", "DPO", "long2short RL")


def _train(config: Path, out: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """``k15ray train`` of ``config`` into ``out`` (skipped when ``out/summary.json`` exists)."""
    from k15ray.config.experiment import load_experiment
    from k15ray.job import train
    from k15ray.run_layout import RunLayout
    from k15ray.run_loop import read_history

    layout = RunLayout.of(out)
    if not layout.summary_json.is_file():
        t0 = time.perf_counter()
        train(load_experiment(config, {**overrides, "output_dir": str(out)}), progress=False)
        (out / "wall_s.txt").write_text(f"{time.perf_counter() - t0:.1f}")
    summary = json.loads(layout.summary_json.read_text())
    summary["history"] = read_history(layout.history)
    summary["wall_minutes"] = round(float((out / "wall_s.txt").read_text()) / 60, 2)
    return summary


def _sft(config_path: Path, out: Path, overrides: dict[str, Any]) -> str:
    from k15ray.config import load_config
    from k15ray.config.sft import SFTConfig
    from k15ray.sft import train_sft

    final = out / "final"
    if not (final / "config.json").is_file():
        train_sft(load_config(SFTConfig, config_path, {**overrides, "out_dir": str(out)}), progress=False)
    return str(final)


def _evaluate(model_dir: str, cfg: Any, cache: Path) -> dict[str, float]:
    """Held-out pass@1 and mean response tokens (``k15ray.job.heldout_accuracy``), cached in ``cache``."""
    from k15ray.job import heldout_accuracy

    if not cache.is_file():
        cache.write_text(json.dumps(heldout_accuracy(model_dir, cfg)))
    return dict(json.loads(cache.read_text()))


def _pareto(points: dict[str, dict[str, float]]) -> list[str]:
    """Names of the points no other point beats on both accuracy (higher) and tokens (lower)."""
    front = []
    for name, p in points.items():
        dominated = any(
            q["pass_at_1"] >= p["pass_at_1"] and q["response_tokens"] <= p["response_tokens"]
            and (q["pass_at_1"], q["response_tokens"]) != (p["pass_at_1"], p["response_tokens"])
            for other, q in points.items() if other != name
        )
        if not dominated:
            front.append(name)
    return front


def _plot(points: dict[str, dict[str, float]], off: list[dict[str, float]], on: list[dict[str, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from k15ray import metrics as M

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name, p in points.items():
        ax.scatter(p["response_tokens"], 100 * p["pass_at_1"], s=40)
        ax.annotate(name, (p["response_tokens"], 100 * p["pass_at_1"]), textcoords="offset points", xytext=(5, 4))
    ax.set(xlabel="mean response tokens (held-out)", ylabel="held-out pass@1, %",
           title="Token efficiency of the long2short methods (cf. paper Fig. 7)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(EFFICIENCY_PNG, dpi=100)
    plt.close(fig)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for rows, label in ((off, "no length penalty"), (on, f"length penalty {LP_WEIGHT} after {LP_WARMUP} it.")):
        its = [r["iteration"] for r in rows]
        ax1.plot(its, [r.get(M.ROLLOUT_RESPONSE_LEN_MEAN) for r in rows], label=label)
        ax2.plot(its, [100 * r.get(M.REWARD_ACCURACY, 0.0) for r in rows], label=label)
    ax1.axvline(LP_WARMUP, color="grey", ls=":", lw=1)
    ax1.set(xlabel="K15 iteration", ylabel="mean response tokens (rollouts)", title="Response length per iteration")
    ax2.set(xlabel="K15 iteration", ylabel="training accuracy of the k samples, %", title="Accuracy per iteration")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(LENGTH_PNG, dpi=100)
    plt.close(fig)


def _stages(work: Path, seed: int) -> tuple[dict[str, str], dict[str, Any], Any]:
    """Stages 1-8: every model directory, the runs' summaries and the evaluation config."""
    from k15ray.config import load_config
    from k15ray.config.dpo import DPOConfig
    from k15ray.config.experiment import load_experiment
    from k15ray.job import prepare_data
    from k15ray.long2short.dpo_trainer import train_dpo
    from k15ray.long2short.merge import merge_models
    from k15ray.long2short.rejection import rejection_sample
    from k15ray.tasks import write_splits

    # iterations, not minutes, bound every run: a busy machine is slower but runs the same
    common = {"seed": seed, "data.seed": seed, "run.time_budget_minutes": 0}
    long_run = _train(LONG_CONFIG, work / "long", common)
    cfg = prepare_data(replace(load_experiment(LONG_CONFIG, common), output_dir=str(work / "long")))

    def evaluate(name: str) -> None:  # right away: a stopped run keeps the figures it has
        _evaluate(models[name], cfg, work / f"eval_{name.replace(' ', '_')}.json")

    data = work / "long" / "data"
    short_data = work / "short_data"
    if not (short_data / "sft.jsonl").is_file():
        write_splits(short_data, 4000, 300, seed=seed, levels=(1, 2), style="short")
    sft_steps = json.loads((Path(long_run["model_dir"]) / "trainer_state.json").read_text())["step"]
    models = {"long SFT": long_run["model_dir"], "long RL": long_run["policy_dir"]}
    models["short SFT"] = _sft(SHORT_SFT_CONFIG, work / "short", {
        "data": str(short_data / "sft.jsonl"), "eval_data": "", "eval_every_steps": 0, "stop_at_accuracy": 0.0,
        "max_steps": sft_steps, "seed": seed,  # as many steps (= training tokens) as the long warm-up
    })
    evaluate("short SFT")
    if not (work / "merge" / "model.safetensors").is_file():
        merge_models(models["long RL"], models["short SFT"], work / "merge", weight=0.5)
    models["merge"] = str(work / "merge")
    evaluate("merge")
    if not (work / "rs.jsonl").is_file():
        rejection_sample(models["long RL"], data / "train.jsonl", work / "rs.jsonl", n=8, temperature=1.0,
                         max_new_tokens=384, num_workers=2, limit=N_SAMPLE_PROMPTS, seed=seed)
    models["shortest RS"] = _sft(SHORT_SFT_CONFIG, work / "rs_sft", {
        "data": str(work / "rs.jsonl"), "model.path": models["long RL"], "eval_data": "",
        "eval_every_steps": 0, "stop_at_accuracy": 0.0, "max_steps": RS_SFT_STEPS, "lr": RS_SFT_LR,
        "warmup_steps": 5, "seed": seed,
    })
    evaluate("shortest RS")
    if not (work / "dpo" / "final" / "config.json").is_file():
        train_dpo(load_config(DPOConfig, DPO_CONFIG, {
            "model_dir": models["long RL"], "data": str(data / "train.jsonl"), "out_dir": str(work / "dpo"),
            "num_prompts": N_SAMPLE_PROMPTS, "seed": seed,
        }), progress=False)
    models["DPO"] = str(work / "dpo" / "final")
    evaluate("DPO")
    l2s_run = _train(L2S_CONFIG, work / "l2s_rl", {
        **common, "policy.model_dir": models["long RL"], "run.iterations": L2S_ITERATIONS,
    })
    models["long2short RL"] = l2s_run["policy_dir"]
    lp_run = _train(LONG_CONFIG, work / "long_lp", {  # as many iterations as the penalty-off run made
        **common, "policy.model_dir": long_run["model_dir"], "run.iterations": long_run["iterations"],
        "length_penalty.weight": LP_WEIGHT, "length_penalty.warmup_iterations": LP_WARMUP,
    })
    return models, {"long": long_run, "long_lp": lp_run, "l2s": l2s_run}, cfg


def run() -> dict[str, Any]:
    start = time.perf_counter()
    seed = int(os.environ.get("K15_BENCH_SEED", "0"))
    work = Path(os.environ.get("K15_BENCH_DIR") or tempfile.mkdtemp(prefix="k15-l2s-"))
    work.mkdir(parents=True, exist_ok=True)
    models, runs, cfg = _stages(work, seed)
    from k15ray import metrics as M

    # train() measured these three already, with the same eval settings, prompts and seed
    measured = {"long SFT": runs["long"]["before"], "long RL": runs["long"]["after"],
                "long2short RL": runs["l2s"]["after"]}
    points = {name: measured.get(name) or _evaluate(models[name], cfg, work / f"eval_{name.replace(' ', '_')}.json")
              for name in POINTS}
    _plot(points, runs["long"]["history"], runs["long_lp"]["history"])
    long_rl, l2s = points["long RL"], points["long2short RL"]
    front = _pareto({k: v for k, v in points.items() if k != "long SFT"})  # the six points of the issue

    def tail_len(rows: list[dict[str, float]]) -> float:
        last = [r[M.ROLLOUT_RESPONSE_LEN_MEAN] for r in rows[-5:] if M.ROLLOUT_RESPONSE_LEN_MEAN in r]
        return round(sum(last) / max(len(last), 1), 1)

    return {
        "value": round(l2s["response_tokens"] / long_rl["response_tokens"], 3),
        "unit": "long2short RL mean response tokens / long RL's (held-out; target <= 0.6)",
        "baseline": round(100 * long_rl["pass_at_1"], 2),
        "ratio": round(l2s["pass_at_1"] / long_rl["pass_at_1"], 3) if long_rl["pass_at_1"] else None,
        "accuracy_delta_points": round(100 * (l2s["pass_at_1"] - long_rl["pass_at_1"]), 2),
        "table": {k: {"pass_at_1": round(100 * v["pass_at_1"], 2), "mean_tokens": round(v["response_tokens"], 1)}
                  for k, v in points.items()},
        "pareto_front": front,
        "length_penalty": {
            "off": {"after_pass_at_1": round(100 * runs["long"]["after"]["pass_at_1"], 2),
                    "after_tokens": round(runs["long"]["after"]["response_tokens"], 1),
                    "rollout_len_last5": tail_len(runs["long"]["history"])},
            "on": {"after_pass_at_1": round(100 * runs["long_lp"]["after"]["pass_at_1"], 2),
                   "after_tokens": round(runs["long_lp"]["after"]["response_tokens"], 1),
                   "rollout_len_last5": tail_len(runs["long_lp"]["history"])},
            "weight": LP_WEIGHT, "warmup_iterations": LP_WARMUP,
        },
        "wall_minutes": {k: r["wall_minutes"] for k, r in runs.items()},
        "bench_wall_minutes": round((time.perf_counter() - start) / 60, 2),
        "seed": seed,
        "outputs": str(work),
        "pngs": [str(EFFICIENCY_PNG.relative_to(ROOT)), str(LENGTH_PNG.relative_to(ROOT))],
    }


if __name__ == "__main__":
    print(json.dumps(run()))
