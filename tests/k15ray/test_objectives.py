"""Ablation baselines: ReST and the GRPO-style clipped loss, hand-computed."""

from __future__ import annotations

import math

import pytest
import torch

from k15ray.objectives import (
    best_per_group,
    group_normalized_advantages,
    grpo_clipped_loss,
    rest_loss,
)


def test_rest_fits_only_correct_samples() -> None:
    # logp [-1, -2, -4], correct [1, 0, 1] -> -(-1 - 4)/2 = 2.5
    logp = torch.tensor([-1.0, -2.0, -4.0], requires_grad=True)
    loss, stats = rest_loss(logp, torch.tensor([True, False, True]))
    assert loss.item() == pytest.approx(2.5)
    loss.backward()
    assert logp.grad is not None
    assert logp.grad.tolist() == pytest.approx([-0.5, 0.0, -0.5])  # no gradient for the wrong one
    assert stats["rest_fraction_kept"] == pytest.approx(2 / 3)
    # per token: n = [2, 9, 3] -> -(-1 - 4)/(2 + 3) = 1.0
    loss_tok, _ = rest_loss(logp, torch.tensor([True, False, True]), torch.tensor([2, 9, 3]))
    assert loss_tok.item() == pytest.approx(1.0)
    # nothing correct: zero loss that still backpropagates
    zero, _ = rest_loss(logp, torch.tensor([False, False, False]))
    assert zero.item() == 0.0 and zero.requires_grad


def test_best_per_group_selects_the_best_correct_sample() -> None:
    # group 0: j0 (r 1.2, correct), j2 (r 1.4, correct) -> j2; group 1: j1 (r 0.9, wrong), j3 (r 0.3,
    # wrong) -> none; group 2: j4 alone, correct -> j4
    rewards = torch.tensor([1.2, 0.9, 1.4, 0.3, 1.0])
    correct = torch.tensor([True, False, True, False, True])
    sel = best_per_group(rewards, correct, torch.tensor([0, 1, 0, 1, 2]))
    assert sel.tolist() == [False, False, True, False, True]


def test_group_normalized_advantages() -> None:
    # group 0: r [1, 0] mean 0.5 std 0.5 -> [1, -1]; group 1: r [2, 2] std 0 -> [0, 0]
    adv = group_normalized_advantages(torch.tensor([1.0, 2.0, 0.0, 2.0]), torch.tensor([0, 1, 0, 1]), eps=0.0)
    assert adv[[0, 2]].tolist() == pytest.approx([1.0, -1.0])
    adv = group_normalized_advantages(torch.tensor([1.0, 2.0, 0.0, 2.0]), torch.tensor([0, 1, 0, 1]))
    assert adv[[1, 3]].tolist() == [0.0, 0.0]


def test_grpo_clipped_loss_hand_computed() -> None:
    # one sequence, 2 tokens, A = 1, eps = 0.2
    # token 0: ratio e^{0.5} = 1.6487 -> clipped to 1.2 (min(1.6487, 1.2) = 1.2)
    # token 1: ratio e^{-0.1} = 0.904837 -> unclipped
    # loss = -(1.2 + 0.904837)/2 = -1.0524187
    logp = torch.tensor([[-0.5, -1.1]], requires_grad=True)
    old = torch.tensor([[-1.0, -1.0]])
    loss, stats = grpo_clipped_loss(logp, old, torch.tensor([1.0]), torch.ones(1, 2), 0.2)
    assert loss.item() == pytest.approx(-(1.2 + math.exp(-0.1)) / 2, abs=1e-6)
    assert stats["clip_fraction"] == pytest.approx(0.5)
    loss.backward()
    assert logp.grad is not None
    # clipped token has no gradient; the other: d/dlogp -(ratio)/2 = -0.904837/2
    assert logp.grad.tolist()[0] == pytest.approx([0.0, -math.exp(-0.1) / 2], abs=1e-6)
    # negative advantage: min picks the unclipped (more pessimistic) ratio*A for ratio > 1+eps
    loss_neg, _ = grpo_clipped_loss(logp, old, torch.tensor([-1.0]), torch.tensor([[1.0, 0.0]]), 0.2)
    assert loss_neg.item() == pytest.approx(math.exp(0.5), abs=1e-6)  # -(-1.6487)/1


def test_grpo_kl_term() -> None:
    # logp = ref: k3 = e^0 - 0 - 1 = 0; logp - ref = 0.5 -> d = -0.5: e^-0.5 + 0.5 - 1 = 0.1065307
    logp = torch.tensor([[-0.5]])
    base, _ = grpo_clipped_loss(logp, logp, torch.tensor([0.0]), torch.ones(1, 1), 0.2)
    with_kl, _ = grpo_clipped_loss(logp, logp, torch.tensor([0.0]), torch.ones(1, 1), 0.2, torch.tensor([[-1.0]]), 2.0)
    assert base.item() == pytest.approx(0.0)
    assert with_kl.item() == pytest.approx(2.0 * (math.exp(-0.5) + 0.5 - 1), abs=1e-6)
