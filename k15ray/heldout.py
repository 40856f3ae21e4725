"""Held-out evaluation: a policy on prompts it never trains on (``k15ray.evaluation.evaluate``).

pass@1 is the accuracy of one sampled answer per prompt, averaged over ``samples_per_prompt``
samples at ``temperature``; with ``temperature: 0`` the one answer is the greedy one (pass@1 of
greedy decoding = greedy accuracy, deterministic, the cheapest and least noisy estimate). The
held-out env's ``score`` is the reward, the same function as in training.
"""

from __future__ import annotations

from typing import Any

from k15ray import metrics as M
from k15ray.config.experiment import HeldoutEvalConfig


def heldout_prompts(env: Any, cfg: HeldoutEvalConfig) -> list[Any]:
    """The first ``num_prompts`` prompts of the held-out env (all when 0)."""
    prompts = list(env.prompts)
    return prompts[: cfg.num_prompts] if cfg.num_prompts else prompts


def evaluate_heldout(model_or_dir: Any, tokenizer: Any, env: Any, cfg: HeldoutEvalConfig) -> dict[str, float]:
    """``pass_at_1`` (greedy or sampled, see the module docstring) and ``response_tokens``."""
    from k15ray.evaluation import evaluate

    greedy = cfg.temperature == 0
    report = evaluate(
        model_or_dir,
        tokenizer,
        heldout_prompts(env, cfg),
        env.score,
        k=0 if greedy else cfg.samples_per_prompt,
        temperature=cfg.temperature,
        max_new_tokens=cfg.max_new_tokens,
        batch_size=cfg.batch_size,
        greedy=greedy,
    )
    accuracy = report.greedy_accuracy if greedy else report.pass_at_1
    assert accuracy is not None, "the pass that was asked for was run"
    return {"pass_at_1": float(accuracy), "response_tokens": float(report.mean_response_tokens)}


def evaluate_policy(policy: Any, tokenizer: Any, env: Any, cfg: HeldoutEvalConfig) -> dict[str, float]:
    """``eval/`` metrics of the learner's ``policy`` (its train/eval mode is restored)."""
    was_training = policy.training
    try:
        figures = evaluate_heldout(policy, tokenizer, env, cfg)
    finally:
        policy.train(was_training)
    return {M.EVAL_PASS_AT_1: figures["pass_at_1"], M.EVAL_RESPONSE_TOKENS: figures["response_tokens"]}
