"""Benchmark ``iteration_gpu`` (GPU): where a whole K15 iteration's time goes, rollout log-probs on vs off.

One K15 run on k15/Math-v0, colocated vLLM rollouts (bf16, 30% of the GPU, asleep while the learner
trains) and a float32 learner on the same GPU, the shapes of ``configs/smollm2_gpu.yaml`` (64 prompts
x k=8 samples at temperature 0.7, at most 256 response tokens, 8 minibatches). The policy has the
SmolLM2-135M shape (Llama, 30 layers, hidden 576) with random weights and the built-in character
tokenizer (nothing downloaded; ``K15_ITERATION_MODEL_DIR`` may point at a real model directory).

``rollout.logprobs_every_iterations: 2``: even iterations ask vLLM for the sampled tokens' log-probs
("before": what every iteration did until they became optional), odd ones do not ("after": the
default), so both modes run interleaved in the same process on the same engine and drift hits both
alike. Iterations 0 and 1 warm up; the medians of each mode over the next ``ITERATIONS - 2`` are
reported per phase (``perf/seconds_*``: rollout, reward, reference log-probs, learner, weight sync,
whole iteration). value = rollout tokens/s without log-probs, baseline = with, ratio = value /
baseline; ``iteration_ratio`` = seconds per iteration with / without.

``K15_ITERATION_SMOKE=1`` runs the same code on the CPU (tiny preset, hf backend, small batch) to
check the plumbing; its figures mean nothing.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from _gpu import char_tokenizer_policy, math_k15_config, phase_medians

ITERATIONS = 12


def _model_dir(root: Path, smoke: bool) -> str:
    """A random-weight policy with the character tokenizer: SmolLM2-135M's shape (tiny in smoke)."""
    from transformers import LlamaConfig

    from k15ray.models import create_model

    if os.environ.get("K15_ITERATION_MODEL_DIR"):
        return os.environ["K15_ITERATION_MODEL_DIR"]
    out = root / ("tiny" if smoke else "smollm2-135m-shape")
    if smoke:
        return str(create_model("tiny", out, seed=0))
    return char_tokenizer_policy(
        out,
        LlamaConfig,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
    )


def _config(root: Path, smoke: bool) -> Any:
    gpu = (
        {}
        if smoke
        else {
            "backend": "vllm",
            "colocate": True,
            "dtype": "bfloat16",
            "gpu_memory_utilization": 0.3,
        }
    )
    return math_k15_config(
        root,
        _model_dir(root, smoke),
        smoke,
        rollout={"num_workers": 1, "logprobs_every_iterations": 2, **gpu},
        learner={},
        logdir=str(root / "rl"),
    )


def run() -> dict[str, Any]:
    import ray

    smoke = os.environ.get("K15_ITERATION_SMOKE") == "1"
    iterations = 4 if smoke else ITERATIONS
    with tempfile.TemporaryDirectory(prefix="k15-iteration-") as tmp:
        root = Path(tmp)
        config = _config(root, smoke)
        started = not ray.is_initialized()
        if started:
            ray.init(
                num_cpus=max(2, os.cpu_count() or 2), include_dashboard=False, log_to_driver=False
            )
        algo = config.build_algo()
        try:
            results = [algo.train() for _ in range(iterations)]
        finally:
            algo.stop()
            if started:
                ray.shutdown()
    measured = results[2:]
    on = phase_medians([r for i, r in enumerate(measured, start=2) if i % 2 == 0])
    off = phase_medians([r for i, r in enumerate(measured, start=2) if i % 2 == 1])
    return {
        "value": off["rollout_tokens_per_s"],
        "unit": "rollout tokens/s (log-probs off)",
        "baseline": on["rollout_tokens_per_s"],
        "ratio": round(off["rollout_tokens_per_s"] / on["rollout_tokens_per_s"], 3),
        "iteration_ratio": round(on["iteration_s"] / off["iteration_s"], 3),
        "logprobs_on": on,
        "logprobs_off": off,
        "iterations_each": len(measured) // 2,
        "model": "Llama, SmolLM2-135M shape, random weights, character tokenizer"
        if not (smoke or os.environ.get("K15_ITERATION_MODEL_DIR"))
        else os.environ.get("K15_ITERATION_MODEL_DIR", "tiny preset (smoke run)"),
        "shapes": "64 prompts x k=8, <= 256 response tokens, 8 minibatches, colocated vLLM (bf16) + fp32 learner",
    }
