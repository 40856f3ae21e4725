"""Benchmark ``scale_out`` (4 GPUs): 2 learners + 2 vLLM engines against the one-GPU colocated run.

Two K15 runs of the same config on k15/Math-v0, one after the other in this process:

* ``one_gpu`` (the baseline): ``learner.num_learners: 0``, vLLM colocated with the learner on one
  GPU (asleep while the learner trains, weights loaded in place);
* ``scaled``: ``learner.num_learners: 2`` (DDP over NCCL, one GPU each) and 2 vLLM rollout actors
  (one GPU each), weights through the object store (NCCL weight sync needs ``num_learners: 0``).

The policy has the Qwen2-0.5B shape (24 layers, hidden 896, vocabulary 151936) with random weights
and the built-in character tokenizer; ``K15_SCALE_MODEL_DIR`` may name a real model directory (a
learning-curve comparison needs one: random weights earn no reward). 64 prompts x k=8, at most 256
response tokens, 8 minibatches. Iterations 0-1 warm up; medians of the others per phase
(``perf/seconds_*``). value = scaled rollout tokens/s, baseline = one_gpu's, ratio = value /
baseline; ``iteration_ratio`` = one_gpu seconds per iteration / scaled's; the per-iteration reward
means of both runs are listed for the curve comparison.

``K15_SCALE_SMOKE=1`` runs the same code on CPU (tiny preset, hf backend, CPU learners) to check
the plumbing; its figures mean nothing.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from _gpu import char_tokenizer_policy, math_k15_config, phase_medians

ITERATIONS = 10


def _model_dir(root: Path, smoke: bool) -> str:
    """Qwen2-0.5B's shape with random weights and the character tokenizer (tiny in smoke)."""
    from transformers import Qwen2Config

    from k15ray.models import create_model

    if os.environ.get("K15_SCALE_MODEL_DIR"):
        return os.environ["K15_SCALE_MODEL_DIR"]
    out = root / ("tiny" if smoke else "qwen2-0.5b-shape")
    if smoke:
        return str(create_model("tiny", out, seed=0))
    return char_tokenizer_policy(
        out,
        Qwen2Config,
        vocab_size=151936,  # the real embedding size; the character tokenizer uses its first rows
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
    )


def _config(root: Path, model_dir: str, smoke: bool, scaled: bool) -> Any:
    if smoke:
        rollout: dict[str, Any] = {"num_workers": 2 if scaled else 1, "num_cpus_per_worker": 1}
    elif scaled:
        rollout = {
            "backend": "vllm",
            "num_workers": 2,
            "num_gpus_per_worker": 1,
            "dtype": "bfloat16",
            "gpu_memory_utilization": 0.6,
        }
    else:
        rollout = {
            "backend": "vllm",
            "colocate": True,
            "dtype": "bfloat16",
            "gpu_memory_utilization": 0.3,
        }
    learner = {
        "num_learners": 2 if scaled else 0,
        "num_threads": 1 if smoke else 0,
    }
    config = math_k15_config(
        root,
        model_dir,
        smoke,
        rollout=rollout,
        learner=learner,
        logdir=str(root / ("rl_scaled" if scaled else "rl_one_gpu")),
    )
    if smoke:
        config.learners(num_cpus_per_learner=0.5)
    return config


def _run_arm(
    root: Path, model_dir: str, smoke: bool, scaled: bool, iterations: int
) -> list[dict[str, Any]]:
    algo = _config(root, model_dir, smoke, scaled).build_algo()
    try:
        return [algo.train() for _ in range(iterations)]
    finally:
        algo.stop()


def run() -> dict[str, Any]:
    import ray

    smoke = os.environ.get("K15_SCALE_SMOKE") == "1"
    iterations = 3 if smoke else ITERATIONS
    with tempfile.TemporaryDirectory(prefix="k15-scale-") as tmp:
        root = Path(tmp)
        started = not ray.is_initialized()
        if started:
            ray.init(
                num_cpus=max(4, os.cpu_count() or 4), include_dashboard=False, log_to_driver=False
            )
        try:
            model_dir = _model_dir(root, smoke)
            one = _run_arm(root, model_dir, smoke, scaled=False, iterations=iterations)
            scaled = _run_arm(root, model_dir, smoke, scaled=True, iterations=iterations)
        finally:
            if started:
                ray.shutdown()
    base, ours = phase_medians(one[2:] or one), phase_medians(scaled[2:] or scaled)
    return {
        "value": ours["rollout_tokens_per_s"],
        "unit": "rollout tokens/s, 2 learners + 2 vLLM engines (4 GPUs)",
        "baseline": base["rollout_tokens_per_s"],
        "ratio": round(ours["rollout_tokens_per_s"] / base["rollout_tokens_per_s"], 3),
        "iteration_ratio": round(base["iteration_s"] / ours["iteration_s"], 3),
        "one_gpu": base,
        "scaled": ours,
        "reward_mean_one_gpu": [round(float(r.get("reward/mean", float("nan"))), 4) for r in one],
        "reward_mean_scaled": [round(float(r.get("reward/mean", float("nan"))), 4) for r in scaled],
        "model": os.environ.get("K15_SCALE_MODEL_DIR")
        or (
            "tiny preset (smoke run)"
            if smoke
            else "Qwen2-0.5B shape, random weights, character tokenizer"
        ),
    }
