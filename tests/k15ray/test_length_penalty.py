"""Length penalty (paper 2.3.3): hand-computed lambdas and the warm-up schedule."""

from __future__ import annotations

import pytest

from k15ray.config.length_penalty import LengthPenaltyConfig
from k15ray.length_penalty import apply_length_penalty, length_penalty, length_penalty_weight


def test_hand_computed_lambdas() -> None:
    # lengths 10, 20, 30, 50: min 10, max 50, span 40
    # lambda = 0.5 - (len - 10)/40 = [0.5, 0.25, 0.0, -0.5]
    # correct [T, F, T, F] -> [0.5, min(0, 0.25) = 0, 0.0, min(0, -0.5) = -0.5]
    got = length_penalty([10, 20, 30, 50], [True, False, True, False])
    assert got == pytest.approx([0.5, 0.0, 0.0, -0.5])
    # a long correct answer is penalised too: len 50 correct -> -0.5
    assert length_penalty([10, 50], [True, True]) == pytest.approx([0.5, -0.5])
    # a short wrong answer gets no bonus: len 10 wrong -> min(0, 0.5) = 0
    assert length_penalty([10, 50], [False, True]) == pytest.approx([0.0, -0.5])


def test_equal_lengths_give_zero() -> None:
    assert length_penalty([7, 7, 7], [True, False, True]) == [0.0, 0.0, 0.0]
    assert length_penalty([], []) == []
    with pytest.raises(ValueError, match="lengths"):
        length_penalty([1, 2], [True])


def test_warmup_then_constant_weight() -> None:
    cfg = LengthPenaltyConfig(weight=0.3, warmup_iterations=2)
    assert [length_penalty_weight(i, cfg) for i in range(5)] == [0.0, 0.0, 0.3, 0.3, 0.3]
    # after warm-up: r + 0.3 * len_reward: lengths 10, 30 -> lambda [0.5, -0.5], both correct
    # -> [1 + 0.15, 1 - 0.15]
    assert apply_length_penalty([1.0, 1.0], [10, 30], [True, True], 4, cfg) == pytest.approx([1.15, 0.85])
    assert apply_length_penalty([1.0, 1.0], [10, 30], [True, True], 1, cfg) == [1.0, 1.0]


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="weight"):
        LengthPenaltyConfig(weight=-1.0)
    with pytest.raises(ValueError, match="warmup_iterations"):
        LengthPenaltyConfig(warmup_iterations=-1)
