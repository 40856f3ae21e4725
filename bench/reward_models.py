"""Benchmark ``reward_models``: the value-head RM and the CoT judge of paper 2.3.5, trained, checked,
served, and used as the training reward (docs/reward_models.md).

1. Start: the quick-start run (``configs/quickstart.yaml``, seed 0): its SFT model is the start of
   both RL runs and its K15 run is the *verifier* arm (reward = ``verify_math``). Reused from
   ``K15_RM_QUICKSTART`` (a finished run folder) when set.
2. ``k15ray train-rm configs/train_rm.yaml`` on that run's SFT and RL policies.
3. Accuracy of each RM against verifier labels on responses to held-out prompts (``report.json``),
   and on responses of a policy neither RM saw (the policy trained with the judge as reward, step 5,
   on the quick-start's held-out prompts), beside the verifier's own accuracy on the project's
   labelled answer pairs (``bench/data/verify_pairs.jsonl``).
4. Served throughput: items/s of each RM through ``POST /v1/rewards/{value_rm,cot_rm}`` (batches
   of 16 items, 4 requests in flight) against ``score_batch`` in-process on the same items.
5. The judge arm: K15 from the same SFT model and the same settings, with
   ``reward: {kind: cot_rm, backend: serve}`` (the judge on Ray Serve, in the run's Ray); held-out
   pass@1 is measured by the verifier. The fooling rate (judge says correct, verifier says wrong,
   among the verifier-wrong responses) on held-out responses before and after RL.

value = the judge arm's gain (points), baseline = the verifier arm's gain on the same start (points),
ratio = value / baseline (target >= 0.6); extra keys carry every other figure.
Outputs in ``K15_BENCH_DIR`` (default: a temporary directory). Run: ``python bench/run.py reward_models``.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "configs" / "quickstart.yaml"
TRAIN_RM = ROOT / "configs" / "train_rm.yaml"
SERVED_ITEMS = 256
SERVED_BATCH = 16
SERVED_CONCURRENCY = 4


def quickstart_run(base: Path) -> Path:
    """The verifier arm's run folder (reused from ``K15_RM_QUICKSTART``, else trained here)."""
    from k15ray.config.experiment import load_experiment
    from k15ray.job import train

    reused = os.environ.get("K15_RM_QUICKSTART")
    if reused:
        return Path(reused)
    out = base / "verifier"
    if not (out / "summary.json").is_file():
        train(load_experiment(QUICKSTART, {"output_dir": str(out)}), progress=False)
    return out


def verifier_accuracy() -> float:
    """``verify_math`` on the project's labelled answer pairs (bench/verify_math's data)."""
    from k15ray.jsonl import read_jsonl
    from k15ray.rewards.math import verify_math

    pairs = [record for _, record in read_jsonl(ROOT / "bench" / "data" / "verify_pairs.jsonl")]
    return sum(verify_math(p["response"], p["reference"]) == p["label"] for p in pairs) / len(pairs)


def sample_policy(policy_dir: str, heldout: Path, k: int, max_new_tokens: int) -> list[Any]:
    """k responses per held-out prompt at the quick-start's temperature, labelled by the verifier."""
    from k15ray.envs.dataset import load_prompts
    from k15ray.rewards.models.data import sample_examples
    from k15ray.rollout.hf import HFBackend
    from k15ray.types import SamplingParams

    backend = HFBackend.from_pretrained(policy_dir, max_batch_size=128)
    params = SamplingParams(temperature=0.6, seed=1, detect_repeats=False)
    return sample_examples(backend, backend.tokenizer, load_prompts(heldout), k, params, max_new_tokens, policy_dir)


def fooling_rate(judge: Any, examples: list[Any]) -> dict[str, float]:
    """Among the verifier-wrong responses, the fraction the judge calls correct."""
    from k15ray.rewards.models.pipeline import rm_accuracy

    wrong = [e for e in examples if not e.correct]
    figures = rm_accuracy(judge, wrong) if wrong else {"accuracy": 1.0}
    return {"fooling_rate": round(1.0 - figures["accuracy"], 4), "verifier_wrong": len(wrong),
            "verifier_accuracy": round(1 - len(wrong) / len(examples), 4)}


async def _served_items_per_s(base_url: str, kind: str, items: list[dict[str, str]]) -> float:
    import httpx

    batches = [items[i : i + SERVED_BATCH] for i in range(0, len(items), SERVED_BATCH)]
    gate = asyncio.Semaphore(SERVED_CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, timeout=600) as http:
        async def one(batch: list[dict[str, str]]) -> None:
            async with gate:
                r = await http.post(f"/v1/rewards/{kind}", json={"items": batch})
                assert r.status_code == 200, r.text

        await one(batches[0])  # warm-up
        start = time.perf_counter()
        await asyncio.gather(*(one(b) for b in batches))
        return len(items) / (time.perf_counter() - start)


def throughput(value_dir: str, judge_dir: str, examples: list[Any], base_url: str, judge_tokens: int) -> dict[str, Any]:
    """Items/s served (HTTP, batched) and in-process (``score_batch``) of each RM, same items."""
    import torch

    from k15ray.rewards.models import CoTJudge, ValueRM
    from k15ray.types import Prompt

    chosen = examples[:SERVED_ITEMS]
    items = [{"question": e.question, "reference": e.reference, "response": e.response} for e in chosen]
    prompts = [Prompt(str(i), e.question, e.reference) for i, e in enumerate(chosen)]
    responses = [e.response for e in chosen]
    torch.set_num_threads(1)  # as one served replica
    figures: dict[str, Any] = {}
    for kind, rm in (("value_rm", ValueRM(value_dir, max_length=768)),
                     ("cot_rm", CoTJudge(judge_dir, max_new_tokens=judge_tokens))):
        rm.score_batch(prompts[:SERVED_BATCH], responses[:SERVED_BATCH])  # warm-up
        start = time.perf_counter()
        rm.score_batch(prompts, responses)
        local = len(prompts) / (time.perf_counter() - start)
        served = asyncio.run(_served_items_per_s(base_url, kind, items))
        figures[kind] = {"served_items_per_s": round(served, 1), "in_process_items_per_s": round(local, 1),
                         "ratio": round(served / local, 3)}
    return figures


def _finished_run(out: Path) -> Any:
    """The ``TrainResult`` of a finished ``k15ray train`` run folder (summary + history)."""
    from k15ray.job import TrainResult
    from k15ray.run_layout import RunLayout
    from k15ray.run_loop import read_history

    summary = json.loads((out / "summary.json").read_text())
    return TrainResult(summary["before"], summary["after"], summary["iterations"], summary["rl_seconds"],
                       summary["model_dir"], summary["policy_dir"], summary["curves_png"],
                       read_history(RunLayout.of(out).history))


def train_rms(base: Path, start: Path) -> tuple[dict[str, Any], Any, float]:
    """Step 2: ``(report, the train-rm config, minutes)``; a finished report is reused."""
    from k15ray.config import load_config
    from k15ray.config.reward_models import RMTrainConfig
    from k15ray.rewards.models.pipeline import train_reward_models

    rm_out = base / "rm"
    overrides = {"output_dir": str(rm_out), "data.prompts": str(start / "data" / "train.jsonl"),
                 "data.policies": [str(start / "sft" / "final"), str(start / "rl" / "policy")]}
    rm_config = load_config(RMTrainConfig, TRAIN_RM, overrides)
    t_rm = time.perf_counter()
    report_file = rm_out / "report.json"  # a finished stage is reused (a re-run after a failure)
    report = json.loads(report_file.read_text()) if report_file.is_file() else train_reward_models(rm_config, progress=False)
    return report, rm_config, (time.perf_counter() - t_rm) / 60


def served_stage(base: Path, sft_dir: str, report: dict[str, Any], judge_tokens: int) -> tuple[dict[str, Any], Any]:
    """Steps 4-5 with both RMs on Ray Serve: ``(throughput figures, the judge arm's TrainResult)``."""
    import ray
    from serve_load import _free_port  # bench/ is on sys.path (bench/run.py)

    from k15ray.config.experiment import load_experiment
    from k15ray.config.serve import (
        RewardModelServeConfig,
        RewardServeConfig,
        SandboxServeConfig,
        ServeConfig,
    )
    from k15ray.job import train
    from k15ray.noise import ray_runtime_env
    from k15ray.rewards.models import read_rm_examples
    from k15ray.serve.app import run_local, shutdown

    value_dir, judge_dir = report["models"]["value_rm"]["dir"], report["models"]["cot_rm"]["dir"]
    # logical CPUs: 2 rollout actors + the learner + the judge replica (phases take turns on the cores)
    ray.init(num_cpus=max(6, os.cpu_count() or 1), include_dashboard=False, log_to_driver=False,
             configure_logging=False, runtime_env=ray_runtime_env())
    port = _free_port()
    models = RewardModelServeConfig(value_rm=value_dir, cot_rm=judge_dir, num_cpus=1.0, max_batch_size=64,
                                    max_length=768, judge_max_new_tokens=judge_tokens)
    run_local(ServeConfig(host="127.0.0.1", port=port, rewards=RewardServeConfig(kinds=("math",), models=models),
                          sandbox=SandboxServeConfig(enabled=False)))
    try:
        heldout_examples = read_rm_examples(base / "rm" / "data" / "heldout.jsonl")
        served = throughput(value_dir, judge_dir, heldout_examples, f"http://127.0.0.1:{port}", judge_tokens)
        judge_out = base / "judge"
        if (judge_out / "summary.json").is_file():
            return served, _finished_run(judge_out)
        cfg = load_experiment(QUICKSTART, {
            "output_dir": str(judge_out), "policy.model_dir": sft_dir,
            "reward.kind": "cot_rm", "reward.backend": "serve", "run.time_budget_minutes": 30,
        })
        return served, train(cfg, progress=False)
    finally:
        shutdown()
        ray.shutdown()


def run() -> dict[str, Any]:
    from k15ray import metrics as M
    from k15ray.rewards.models import CoTJudge, ValueRM
    from k15ray.rewards.models.pipeline import rm_accuracy

    base = Path(os.environ.get("K15_BENCH_DIR") or tempfile.mkdtemp(prefix="k15-bench-rm-"))
    t0 = time.perf_counter()
    start = quickstart_run(base)
    verifier_arm = json.loads((start / "summary.json").read_text())
    sft_dir = str(start / "sft" / "final")
    report, rm_config, rm_minutes = train_rms(base, start)
    judge_tokens = rm_config.cot_rm.max_new_tokens
    served, judge_arm = served_stage(base, sft_dir, report, judge_tokens)
    value_dir, judge_dir = report["models"]["value_rm"]["dir"], report["models"]["cot_rm"]["dir"]

    heldout = start / "data" / "heldout.jsonl"
    judge = CoTJudge(judge_dir, max_new_tokens=judge_tokens)
    value_rm = ValueRM(value_dir, max_length=768)
    before = sample_policy(sft_dir, heldout, 2, 384)
    after = sample_policy(str(judge_arm.policy_dir), heldout, 2, 384)  # unseen by both RMs
    unseen = {name: rm_accuracy(rm, after) for name, rm in (("value_rm", value_rm), ("cot_rm", judge))}
    verifier_gain = float(verifier_arm["gain_points"])
    figures = {
        "value": round(judge_arm.gain_points, 2),
        "unit": "points of held-out pass@1 (verifier-measured) gained by K15 with the served judge as reward",
        "baseline": round(verifier_gain, 2),
        "ratio": round(judge_arm.gain_points / verifier_gain, 3) if verifier_gain > 0 else float("nan"),
        "verifier_arm": {"before": verifier_arm["before"]["pass_at_1"], "after": verifier_arm["after"]["pass_at_1"],
                         "gain_points": verifier_gain},
        "judge_arm": {"before": judge_arm.before["pass_at_1"], "after": judge_arm.after["pass_at_1"],
                      "gain_points": round(judge_arm.gain_points, 2), "rl_minutes": round(judge_arm.rl_seconds / 60, 2)},
        "accuracy_heldout_prompts": {k: {m: v[m] for m in ("accuracy", "accuracy_correct", "accuracy_wrong", "not_ok", "n")}
                                     for k, v in report["models"].items()},
        "accuracy_unseen_policy": unseen,
        "verifier_accuracy_on_labelled_pairs": round(verifier_accuracy(), 4),
        "fooling_in_training": {  # reward/fooling_rate of the judge arm's first and last iterations
            "first": judge_arm.history[0].get(M.REWARD_FOOLING_RATE), "last": judge_arm.history[-1].get(M.REWARD_FOOLING_RATE),
        },
        "fooling_before_rl": fooling_rate(judge, before),
        "fooling_after_rl": fooling_rate(judge, after),
        "served": served,
        "rm_data": {k: report[k] for k in ("samples", "sampled_accuracy", "train", "heldout")},
        "train_rm_minutes": round(rm_minutes, 2),
        "wall_minutes": round((time.perf_counter() - t0) / 60, 2),
        "outputs": str(base),
    }
    (base / "reward_models.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    print(json.dumps(run()))
