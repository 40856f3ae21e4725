"""Policy mirror descent (paper 2.3.2): hand-computed values and autograd versus eq. (3)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from k15ray.config.mirror_descent import MirrorDescentConfig
from k15ray.logprobs import policy_token_logprobs, sequence_logprobs
from k15ray.mirror_descent import flat_group_baseline, group_baseline, mirror_descent_loss


def test_baselines_hand_computed() -> None:
    r = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # mean: (1 + 0)/2 = 0.5 ; (1 + 1)/2 = 1
    assert group_baseline(r, "mean").tolist() == [0.5, 1.0]
    # logsumexp, tau = 1: log((e^1 + e^0)/2) = log(1.8591409) = 0.6201145 ; log((e + e)/2) = 1
    lse = group_baseline(r, "logsumexp", tau=1.0)
    assert lse.tolist() == pytest.approx([math.log((math.e + 1) / 2), 1.0], abs=1e-12)
    # tau = 0.5: 0.5*log((e^2 + e^0)/2) = 0.5*log(4.1945280) = 0.7169
    assert group_baseline(r, "logsumexp", tau=0.5)[0].item() == pytest.approx(
        0.5 * math.log((math.exp(2) + 1) / 2), abs=1e-12
    )
    # tau -> large: logsumexp baseline -> mean (paper: "tau log Z approaches the expected reward")
    assert group_baseline(r, "logsumexp", tau=1e4)[0].item() == pytest.approx(0.5, abs=1e-4)
    # huge rewards / tiny tau stay finite (stabilised by the group max)
    assert math.isfinite(group_baseline(torch.tensor([[1000.0, 0.0]]), "logsumexp", 0.01)[0].item())


def test_loss_hand_computed_value() -> None:
    # one group, k = 2, tau = 0.5: logp = [-1, -2], ref = [-1.5, -2], r = [1, 0] -> b = 0.5
    # loss_1 = -(-1)(1 - 0.5) + 0.25 * (-1 + 1.5)^2 = 0.5 + 0.0625 = 0.5625
    # loss_2 = -(-2)(0 - 0.5) + 0.25 * 0^2     = -1.0
    # mean = (0.5625 - 1.0)/2 = -0.21875  (pg = (0.5 - 1)/2 = -0.25, tau term = 0.0625/2 = 0.03125)
    logp = torch.tensor([[-1.0, -2.0]], dtype=torch.float64)
    loss, stats = mirror_descent_loss(logp, torch.tensor([[-1.5, -2.0]]), torch.tensor([[1.0, 0.0]]), tau=0.5)
    assert loss.item() == pytest.approx(-0.21875, abs=1e-12)
    assert stats["pg_loss"] == pytest.approx(-0.25) and stats["tau_loss"] == pytest.approx(0.03125)
    assert stats["log_ratio_max_abs"] == pytest.approx(0.5) and stats["log_ratio_mean"] == pytest.approx(0.25)


def test_flat_groups_of_different_sizes_weight_each_group_equally() -> None:
    # group 0 = {j0, j2} r = [1, 0] -> b 0.5; group 1 = {j1} r = [3] -> b 3, advantage 0
    # tau term only via j1: log ratio 1 -> (tau/2)*1 = 0.5 with tau = 1, weight 1/(G k_1) = 1/2
    # pg: group 0 mean of -logp*adv = (-(-1)(0.5) + -(-3)(-0.5))/2 = (0.5 - 1.5)/2 = -0.5, weight 1/G
    # loss = (-0.5 + 0.5)/2 = 0
    logp = torch.tensor([-1.0, -2.0, -3.0], dtype=torch.float64)
    ref = torch.tensor([-1.0, -3.0, -3.0])
    loss, _ = mirror_descent_loss(
        logp, ref, torch.tensor([1.0, 3.0, 0.0]), tau=1.0, group_index=torch.tensor([0, 1, 0])
    )
    assert loss.item() == pytest.approx(0.0, abs=1e-12)
    assert flat_group_baseline(torch.tensor([1.0, 3.0, 0.0]), torch.tensor([0, 1, 0])).tolist() == [0.5, 3.0]
    with pytest.raises(ValueError, match="group_index"):
        mirror_descent_loss(logp, ref, torch.zeros(3), 1.0, group_index=torch.tensor([0, 2, 0]))


def test_token_level_normalisation_is_an_option_dividing_by_length() -> None:
    # same numbers as the hand-computed case, token counts [2, 4]:
    # (0.5625/2 + (-1.0)/4)/2 = (0.28125 - 0.25)/2 = 0.015625
    loss, _ = mirror_descent_loss(
        torch.tensor([[-1.0, -2.0]]), torch.tensor([[-1.5, -2.0]]), torch.tensor([[1.0, 0.0]]),
        tau=0.5, num_tokens=torch.tensor([2, 4]), token_level_normalization=True,
    )
    assert loss.item() == pytest.approx(0.015625)
    assert MirrorDescentConfig().token_level_normalization is False  # never the default


# ---- autograd versus eq. (3) on a tiny causal LM -------------------------------------------------

G, K, T, PROMPT = 2, 3, 7, 3


def tiny_models() -> tuple[LlamaForCausalLM, LlamaForCausalLM]:
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=11, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=16,
    )
    ref = LlamaForCausalLM(cfg).double().eval()
    policy = copy.deepcopy(ref)
    with torch.no_grad():  # theta != theta_ref: the policy moved away from the iteration's start
        for p in policy.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return policy, ref


def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 11, (G * K, T), generator=g)  # G groups of K samples
    mask = torch.zeros(G * K, T)
    mask[:, PROMPT:] = 1  # response tokens only
    mask[0, -2:] = 0  # a shorter response
    rewards = torch.tensor([1.0, 0.0, 0.5, 0.0, 0.0, 1.0], dtype=torch.float64)
    return ids, mask, rewards


def seq_logp(model: LlamaForCausalLM, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return sequence_logprobs(policy_token_logprobs(model, ids), mask)  # (N,) log pi(y_j | x)


def eq3_gradient(
    policy: LlamaForCausalLM, ref_logp: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor,
    rewards: torch.Tensor, tau: float, baseline: torch.Tensor,
) -> list[torch.Tensor]:
    """(1/G) sum_g (1/k) sum_j [grad logpi_j (r_j - b_g) - (tau/2) grad (logpi_j - logpi_ref_j)^2],
    with (tau/2) grad (.)^2 = tau (logpi_j - logpi_ref_j) grad logpi_j, one sample at a time."""
    params = list(policy.parameters())
    total = [torch.zeros_like(p) for p in params]
    for j in range(G * K):
        logp_j = seq_logp(policy, ids[j : j + 1], mask[j : j + 1])[0]
        grad_j = torch.autograd.grad(logp_j, params)
        adv = rewards[j] - baseline[j // K]
        coeff = adv - tau * (logp_j.detach() - ref_logp[j])
        for acc, gj in zip(total, grad_j, strict=True):
            acc += coeff * gj / (G * K)
    return total


@pytest.mark.parametrize("kind", ["mean", "logsumexp"])
def test_autograd_gradient_equals_minus_eq3(kind: str) -> None:
    policy, ref = tiny_models()
    ids, mask, rewards = batch()
    tau = 0.7
    with torch.no_grad():
        ref_logp = seq_logp(ref, ids, mask)
    logp = seq_logp(policy, ids, mask)
    loss, stats = mirror_descent_loss(logp.view(G, K), ref_logp.view(G, K), rewards.view(G, K), tau, kind)
    assert stats["log_ratio_max_abs"] > 1e-3  # theta != theta_ref, so the tau term is active
    grads = torch.autograd.grad(loss, list(policy.parameters()))
    expected = eq3_gradient(policy, ref_logp, ids, mask, rewards, tau, group_baseline(rewards.view(G, K), kind, tau))
    for got, want in zip(grads, expected, strict=True):
        assert torch.allclose(got, -want, atol=1e-6, rtol=0)
    assert max(float(w.abs().max()) for w in expected) > 1e-3  # the check is not vacuous


def test_at_theta_ref_gradient_is_the_mean_baseline_policy_gradient() -> None:
    _, ref = tiny_models()
    policy = copy.deepcopy(ref)  # theta = theta_ref: the tau term has zero gradient
    ids, mask, rewards = batch()
    with torch.no_grad():
        ref_logp = seq_logp(ref, ids, mask)
    loss, _ = mirror_descent_loss(seq_logp(policy, ids, mask).view(G, K), ref_logp.view(G, K), rewards.view(G, K), tau=5.0)
    grads = torch.autograd.grad(loss, list(policy.parameters()))
    # plain policy gradient (1/G) sum_g (1/k) sum_j grad logpi_j (r_j - r-bar_g)
    rbar = rewards.view(G, K).mean(dim=1)
    pg = [torch.zeros_like(p) for p in policy.parameters()]
    for j in range(G * K):
        grad_j = torch.autograd.grad(seq_logp(policy, ids[j : j + 1], mask[j : j + 1])[0], list(policy.parameters()))
        for acc, gj in zip(pg, grad_j, strict=True):
            acc += (rewards[j] - rbar[j // K]) * gj / (G * K)
    for got, want in zip(grads, pg, strict=True):
        assert torch.allclose(got, -want, atol=1e-6, rtol=0)


def test_tau_term_alone_pulls_the_log_ratio_to_zero() -> None:
    policy, ref = tiny_models()
    ids, mask, _ = batch()
    rewards = torch.zeros(G * K, dtype=torch.float64)  # r_j - b = 0: only the tau term acts
    with torch.no_grad():
        ref_logp = seq_logp(ref, ids, mask)
    opt = torch.optim.SGD(policy.parameters(), lr=0.05)
    sizes = []
    for _ in range(5):
        logp = seq_logp(policy, ids, mask)
        loss, stats = mirror_descent_loss(logp.view(G, K), ref_logp.view(G, K), rewards.view(G, K), tau=1.0)
        sizes.append(float((logp.detach() - ref_logp).abs().mean()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(b < a for a, b in zip(sizes, sizes[1:], strict=False))  # |log pi/pi_ref| shrinks each step
    assert sizes[-1] < 0.8 * sizes[0]


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="tau"):
        MirrorDescentConfig(tau=0.0)
    with pytest.raises(ValueError, match="objective"):
        MirrorDescentConfig(objective="ppo")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="baseline"):
        MirrorDescentConfig(baseline="median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tau"):
        mirror_descent_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2), tau=-1.0)
