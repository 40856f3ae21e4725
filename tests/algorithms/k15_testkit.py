"""Shared helpers of the K15 algorithm tests: a tiny random policy, a toy text env, small configs.

The toy env's reward is continuous (the fraction of digit characters in the response), so a
random tiny model's k samples never all score the same and every iteration has a policy gradient.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym

from k15ray.algorithms import K15Config
from k15ray.envs import TextEnv
from k15ray.types import Prompt, RewardResult

TOY_ENV_ID = "k15test/DigitFraction-v0"


def digit_fraction(prompt: Prompt, response: str) -> RewardResult:
    """r = (digits in the response) / (characters in it); "correct" when r >= 0.5."""
    score = sum(c.isdigit() for c in response) / max(len(response), 1)
    return RewardResult(score, score >= 0.5)


class DigitFractionEnv(TextEnv):
    """A text env whose reward favours digits: 12 prompts "Say some digits #i"."""

    def __init__(self, num_prompts: int = 12, **kwargs: Any) -> None:
        prompts = [Prompt(id=f"toy-{i}", question=f"Say some digits #{i}", answer="0") for i in range(num_prompts)]
        super().__init__(prompts=prompts, reward_fn=digit_fraction, **kwargs)


def register_toy_env() -> str:
    """Register the toy env with Gymnasium through ``k15ray.envs.register`` (idempotent)."""
    import k15ray.envs

    if TOY_ENV_ID not in gym.registry:
        k15ray.envs.register(TOY_ENV_ID, DigitFractionEnv)
    return TOY_ENV_ID


def tiny_model(path: Path) -> str:
    """The built-in tiny preset with random weights, saved in Hugging Face format."""
    from k15ray.models import create_model

    if not (path / "config.json").is_file():
        create_model("tiny", path, seed=0)
    return str(path)


def small_config(model_dir: str, logdir: Path, env: str = TOY_ENV_ID, **learner: Any) -> K15Config:
    """A K15 config small enough for CI: 3 prompts x k=4, <= 24 response tokens, budget 12."""
    return (
        K15Config()
        .environment(env)
        .policy(model_dir=model_dir)
        .k15_rollouts(
            rollout={"num_workers": 1, "samples_per_prompt": 4, "max_batch_size": 16},
            partial_rollout={"budget_tokens": 12, "max_response_tokens": 24},
        )
        .k15_rollouts(sampling={"prompts_per_iteration": 3})
        .k15_training(learner={"num_minibatches": 2, "lr": 1e-3, **learner})
        .debugging(seed=0)
        .update_from_dict({"k15_logdir": str(logdir)})
    )
