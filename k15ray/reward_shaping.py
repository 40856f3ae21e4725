"""Reward shaping of one iteration: where the length penalty and the repeat penalty are applied.

For the k trajectories of one prompt, with task scores s_j = r(x, y_j, y*) (paper 2.3.2):

    r_j = s_j + w(iteration) * len_reward_j            (paper 2.3.3, ``k15ray.length_penalty``)
              + [finish_j == "repeat"] * repeat_penalty (paper 2.6.2, a trajectory stopped looping)

``apply_length_penalty`` (the documented API of ``k15ray.length_penalty``) owns the schedule
w(iteration): 0 during the warm-up, constant after. The shaped r_j is what the learner's group
baseline b and the objective see. Pure functions: no Ray, no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from k15ray import metrics as M
from k15ray.config.length_penalty import LengthPenaltyConfig
from k15ray.config.repeat import RepeatConfig
from k15ray.length_penalty import apply_length_penalty, length_penalty_weight
from k15ray.types import Trajectory


@dataclass(frozen=True)
class ShapedGroup:
    """The shaped rewards of one group of k and their parts (each of length k)."""

    scores: list[float]
    correct: list[bool]
    rewards: list[float]
    length_part: list[float]
    repeat_part: list[float]


def shape_group_rewards(
    group: Sequence[Trajectory],
    scores: Sequence[float],
    correct: Sequence[bool],
    iteration: int,
    length_cfg: LengthPenaltyConfig,
    repeat_cfg: RepeatConfig,
) -> ShapedGroup:
    """r_j = s_j + w(iteration) * len_reward_j + [finish_j == repeat] * repeat_penalty (module docstring)."""
    lengths = [t.num_response_tokens for t in group]
    with_length = apply_length_penalty(scores, lengths, correct, iteration, length_cfg)
    length_part = [r - s for r, s in zip(with_length, scores, strict=True)]  # w * len_reward_j
    repeat_part = [repeat_cfg.penalty if t.finish_reason == "repeat" else 0.0 for t in group]
    rewards = [r + p for r, p in zip(with_length, repeat_part, strict=True)]
    return ShapedGroup(list(scores), list(correct), rewards, length_part, repeat_part)


def shape_groups(
    groups: Sequence[Sequence[Trajectory]],
    scores: Sequence[Sequence[float]],
    correct: Sequence[Sequence[bool]],
    iteration: int,
    length_cfg: LengthPenaltyConfig,
    repeat_cfg: RepeatConfig,
) -> list[ShapedGroup]:
    """``shape_group_rewards`` of every group; each trajectory's ``reward`` is set to its r_j."""
    shaped = []
    for group, group_scores, group_correct in zip(groups, scores, correct, strict=True):
        one = shape_group_rewards(group, group_scores, group_correct, iteration, length_cfg, repeat_cfg)
        for trajectory, reward in zip(group, one.rewards, strict=True):
            trajectory.reward = float(reward)
        shaped.append(one)
    return shaped


def reward_metrics(shaped: Sequence[ShapedGroup], iteration: int, length_cfg: LengthPenaltyConfig) -> dict[str, float]:
    """The ``reward/`` metrics of an iteration's shaped groups (empty when there are none)."""
    if not shaped:
        return {}
    flat = lambda attr: [v for g in shaped for v in getattr(g, attr)]  # noqa: E731
    # r_j - b = 0 for every j of a group with equal rewards: that group gives no policy gradient
    zero_advantage = sum(len(set(g.rewards)) == 1 for g in shaped)
    return {
        M.REWARD_MEAN: float(np.mean(flat("rewards"))),
        M.REWARD_TASK_MEAN: float(np.mean(flat("scores"))),
        M.REWARD_ACCURACY: float(np.mean(flat("correct"))),
        M.REWARD_LENGTH_PENALTY_MEAN: float(np.mean(flat("length_part"))),
        M.REWARD_LENGTH_PENALTY_WEIGHT: length_penalty_weight(iteration, length_cfg),
        M.REWARD_REPEAT_PENALTY_MEAN: float(np.mean(flat("repeat_part"))),
        M.REWARD_GROUPS_ALL_SAME: zero_advantage / len(shaped),
    }
