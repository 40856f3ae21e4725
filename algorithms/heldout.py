"""Held-out evaluation inside training: the learner's current policy on prompts it never trains on.

A thin adapter over ``k15ray.evaluation.evaluate`` (pass@1 averaged over k samples, or greedy
accuracy, broken down by difficulty): it takes the first ``num_prompts`` prompts of the held-out
env and scores with that env's ``score`` (the same reward as training).
"""

from __future__ import annotations

from typing import Any

from k15ray.algorithms import metrics as M
from k15ray.config.experiment import HeldoutEvalConfig


def heldout_prompts(env: Any, cfg: HeldoutEvalConfig) -> list[Any]:
    prompts = list(env.prompts)
    return prompts[: cfg.num_prompts] if cfg.num_prompts else prompts


def evaluate_policy(policy: Any, tokenizer: Any, env: Any, cfg: HeldoutEvalConfig) -> dict[str, float]:
    """``eval/`` metrics of ``policy`` on the held-out env (model left in its previous mode)."""
    from k15ray.evaluation import evaluate

    was_training = policy.training
    try:
        report = evaluate(
            policy,
            tokenizer,
            heldout_prompts(env, cfg),
            env.score,
            k=cfg.samples_per_prompt,
            temperature=cfg.temperature,
            max_new_tokens=cfg.max_new_tokens,
            batch_size=cfg.batch_size,
        )
    finally:
        policy.train(was_training)
    return {
        M.EVAL_PASS_AT_1: float(report.pass_at_1),
        M.EVAL_GREEDY_ACCURACY: float(report.greedy_accuracy) if report.greedy_accuracy is not None else float("nan"),
        M.EVAL_RESPONSE_TOKENS: float(report.mean_response_tokens),
    }
