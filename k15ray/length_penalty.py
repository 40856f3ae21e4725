"""Length penalty (paper section 2.3.3).

Among the k sampled responses of one prompt, with len(i) the length of response i,
min_len = min_i len(i) and max_len = max_i len(i):

    lambda_i = 0.5 - (len(i) - min_len) / (max_len - min_len)
    len_reward(i) = lambda_i            if r(x, y_i, y*) = 1 (correct)
                  = min(0, lambda_i)    if r(x, y_i, y*) = 0 (wrong)

and len_reward(i) = 0 for all i when max_len = min_len. The length reward is added to the task
reward with a weight; the weight is 0 during a warm-up of W iterations and constant after
("standard policy optimization without length penalty, followed by a constant length penalty").
"""

from __future__ import annotations

from collections.abc import Sequence

from k15ray.config.length_penalty import LengthPenaltyConfig


def length_penalty(lengths: Sequence[int], correct: Sequence[bool]) -> list[float]:
    """len_reward(i) for the k responses of one prompt (before the weight)."""
    if len(lengths) != len(correct):
        raise ValueError(f"lengths ({len(lengths)}) and correct ({len(correct)}) must have one entry per response")
    if not lengths:
        return []
    min_len, max_len = min(lengths), max(lengths)
    if max_len == min_len:
        return [0.0] * len(lengths)  # all the same length: no length reward
    rewards = []
    for length, ok in zip(lengths, correct, strict=True):
        lam = 0.5 - (length - min_len) / (max_len - min_len)  # lambda = 0.5 - (len - min)/(max - min)
        rewards.append(lam if ok else min(0.0, lam))  # correct -> lambda; wrong -> min(0, lambda)
    return rewards


def length_penalty_weight(iteration: int, config: LengthPenaltyConfig) -> float:
    """The weight of len_reward at ``iteration`` (0-based): 0 during the warm-up, constant after."""
    if iteration < 0:
        raise ValueError(f"iteration must be >= 0, got {iteration}")
    return 0.0 if iteration < config.warmup_iterations else config.weight


def apply_length_penalty(
    rewards: Sequence[float],
    lengths: Sequence[int],
    correct: Sequence[bool],
    iteration: int,
    config: LengthPenaltyConfig,
) -> list[float]:
    """r_i + weight(iteration) * len_reward(i) for one prompt's group."""
    w = length_penalty_weight(iteration, config)
    return [r + w * lr for r, lr in zip(rewards, length_penalty(lengths, correct), strict=True)]
