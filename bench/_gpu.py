"""Shared set-up of the GPU benchmarks: a random-weight model of a real shape (no downloads)."""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

PHASES = {
    "rollout_s": "perf/seconds_rollout",
    "reward_s": "perf/seconds_reward",
    "reference_s": "perf/seconds_reference_logp",
    "learner_s": "perf/seconds_learner",
    "weight_sync_s": "perf/seconds_weight_sync",
    "iteration_s": "perf/seconds_iteration",
    "rollout_tokens": "rollout/tokens",
    "rollout_tokens_per_s": "perf/rollout_tokens_per_s",
}
"""A K15 iteration's phases as the GPU benchmarks report them: their name -> the metric."""


def phase_medians(results: list[dict[str, Any]]) -> dict[str, float]:
    """Median over ``results`` (K15 results) of every phase in ``PHASES`` that they report."""
    return {
        name: round(statistics.median(float(r[key]) for r in results if key in r), 4)
        for name, key in PHASES.items()
        if any(key in r for r in results)
    }


def math_k15_config(
    root: Path,
    model_dir: str,
    smoke: bool,
    rollout: dict[str, Any],
    learner: dict[str, Any],
    logdir: str,
) -> Any:
    """The GPU benchmarks' K15 run on k15/Math-v0 (1,000 generated problems of levels 1, 2, 4):
    ``configs/smollm2_gpu.yaml``'s shapes (64 prompts x k=8 at T 0.7, <= 256 response tokens; a
    smoke run 4 x 4, <= 32), an fp32 learner at lr 2e-6, no held-out evaluation; ``rollout`` and
    ``learner`` add or override their sections' fields."""
    from k15ray.algorithms import K15Config
    from k15ray.tasks import write_splits

    splits = write_splits(root / "data", n_train=1000, n_heldout=10, seed=0, levels=[1, 2, 4])
    config = (
        K15Config()
        .environment("k15/Math-v0", env_config={"data_path": str(splits["train"])})
        .policy(model_dir=model_dir, dtype="float32")
        .k15_rollouts(
            rollout={
                "samples_per_prompt": 4 if smoke else 8,
                "temperature": 0.7,
                "max_batch_size": 512,
                **rollout,
            },
            partial_rollout={
                "budget_tokens": 32 if smoke else 256,
                "max_response_tokens": 32 if smoke else 256,
            },
            sampling={"prompts_per_iteration": 4 if smoke else 64},
        )
        .k15_training(
            learner={
                "lr": 2e-6,
                "num_minibatches": 2 if smoke else 8,
                "num_gpus": 0 if smoke else 1,
                **learner,
            }
        )
        .k15_evaluation(heldout={"every_iterations": 0})
        .debugging(seed=0)
    )
    config.k15_logdir = logdir
    return config


def char_tokenizer_policy(out: Path, config_class: Any, **shape: Any) -> str:
    """A random-weight causal LM of ``config_class(**shape)`` with the built-in character tokenizer
    (its pad/bos/eos ids; ``vocab_size`` defaults to the tokenizer's), saved to ``out``."""
    import torch
    from transformers import AutoModelForCausalLM

    from k15ray.models import build_tokenizer, save_tokenizer

    tokenizer = build_tokenizer()
    config = config_class(
        **{"vocab_size": len(tokenizer), **shape},
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(str(out))
    save_tokenizer(tokenizer, out)
    return str(out)


def qwen2_05b_dir() -> Path:
    """A Qwen2-0.5B-shaped model with random weights in bf16, saved once per machine.

    ``K15_BENCH_MODEL_DIR`` overrides the location; the default is a temporary directory.
    """
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    root = Path(
        os.environ.get("K15_BENCH_MODEL_DIR") or Path(tempfile.gettempdir()) / "k15-qwen2-0.5b"
    )
    if (root / "config.json").is_file():
        return root
    config = Qwen2Config(
        vocab_size=151936,
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        max_position_embeddings=32768,
        tie_word_embeddings=True,
        eos_token_id=151643,
        bos_token_id=151643,
    )
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(root)
    return root


def throughput_backend() -> Any:
    """The vLLM engine of the throughput benchmarks: ``qwen2_05b_dir()`` without tokenizer or
    sleep mode, 60% of GPU memory, engine seed 0 (a ``k15ray.rollout.vllm.VLLMBackend``)."""
    from k15ray.rollout.vllm import VLLMBackend

    return VLLMBackend(
        qwen2_05b_dir(),
        gpu_memory_utilization=0.6,
        skip_tokenizer_init=True,
        enable_sleep_mode=False,
        seed=0,
    )


def random_prompts(n: int, length: int, vocab: int = 151000, seed: int = 0) -> list[list[int]]:
    import random

    rng = random.Random(seed)
    return [[rng.randrange(100, vocab) for _ in range(length)] for _ in range(n)]
