"""Online policy mirror descent, the surrogate loss of Kimi k1.5 (paper section 2.3.2).

In iteration i the reference policy is pi_ref = pi_theta_i. For a prompt x with k samples
(y_j, z_j) ~ pi_ref, rewards r_j and a baseline b, the gradient of eq. (3) is

    (1/k) sum_j [ grad log pi(y_j, z_j | x) * (r_j - b)  -  (tau/2) * grad (log pi/pi_ref)^2 ] .   (3)

We minimise, per sample j,

    loss_j = -logpi_j * (r_j - b)  +  (tau/2) * (logpi_j - logpi_ref_j)^2 ,

whose gradient is exactly the negative of (3)'s summand (r_j, b and logpi_ref_j are constants),
averaged first over the k samples of a group (the 1/k of eq. 3), then over groups (the
expectation over x ~ D). ``logpi_j`` is the SEQUENCE log-probability log pi(y_j, z_j | x): the sum of
the response tokens' log-probs under the loss mask (``k15ray.logprobs.sequence_logprobs``).

Baselines b (``group_baseline``): ``mean`` = r-bar = (1/k) sum_j r_j (the paper's choice), or
``logsumexp`` = tau * log((1/k) sum_j exp(r_j / tau)), the sample estimate of tau * log Z.

Batch representation: flat (N,) tensors over all samples of the batch plus ``group_index`` (N,)
long, group g's samples being those with ``group_index == g`` (ids 0..G-1, any order, groups may
differ in size, e.g. after dropping failed samples). A (G, k) tensor without ``group_index`` is
accepted as G groups of k and flattened.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from k15ray.config.mirror_descent import BASELINES


def group_baseline(rewards: Tensor, kind: str = "mean", tau: float = 1.0) -> Tensor:
    """Baseline b per group of a (G, k) reward tensor -> (G,).

    mean:      b = (1/k) sum_j r_j                       (r-bar, paper 2.3.2)
    logsumexp: b = tau * log((1/k) sum_j exp(r_j / tau))  (tau log Z estimate)
    """
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be (G, k), got shape {tuple(rewards.shape)}")
    index = torch.arange(rewards.shape[0], device=rewards.device).repeat_interleave(rewards.shape[1])
    return flat_group_baseline(rewards.reshape(-1), index, kind, tau)


def _group_sizes(group_index: Tensor, num_groups: int) -> Tensor:
    sizes = torch.bincount(group_index, minlength=num_groups)  # (G,)
    if bool((sizes == 0).any()):
        raise ValueError("group_index must use every id 0..G-1 (renumber groups contiguously)")
    return sizes


def flat_group_baseline(rewards: Tensor, group_index: Tensor, kind: str = "mean", tau: float = 1.0) -> Tensor:
    """Baseline b_g for flat rewards (N,) with ``group_index`` (N,) -> (G,), G = max index + 1."""
    if kind not in BASELINES:
        raise ValueError(f"baseline kind {kind!r} is not one of {list(BASELINES)}")
    if kind == "logsumexp" and not tau > 0:
        raise ValueError(f"tau must be > 0 for the logsumexp baseline, got {tau}")
    r = rewards.detach().to(torch.float64)
    num_groups = int(group_index.max()) + 1 if group_index.numel() else 0
    k = _group_sizes(group_index, num_groups).to(torch.float64)  # (G,)
    if kind == "mean":
        # r-bar_g = (1/k_g) sum_{j in g} r_j
        return torch.zeros(num_groups, dtype=torch.float64, device=r.device).index_add_(0, group_index, r) / k
    # tau * log((1/k) sum_j exp(r_j / tau)), stabilised by the group max m: tau*(m' + log sum exp(r/tau - m'))
    scaled = r / tau  # (N,)
    m = torch.full((num_groups,), -math.inf, dtype=torch.float64, device=r.device).scatter_reduce_(0, group_index, scaled, "amax")
    sums = torch.zeros(num_groups, dtype=torch.float64, device=r.device).index_add_(0, group_index, torch.exp(scaled - m[group_index]))
    return tau * (m + torch.log(sums) - torch.log(k))


def _flatten(logp: Tensor, group_index: Tensor | None) -> tuple[Tensor, Tensor]:
    if group_index is not None:
        if logp.dim() != 1 or group_index.shape != logp.shape:
            raise ValueError(
                f"with group_index, logp must be (N,) and group_index (N,); got {tuple(logp.shape)}"
                f" and {tuple(group_index.shape)}"
            )
        return logp, group_index.long()
    if logp.dim() != 2:
        raise ValueError(f"logp must be (G, k), or (N,) with group_index; got {tuple(logp.shape)}")
    g, k = logp.shape
    return logp.reshape(-1), torch.arange(g, device=logp.device).repeat_interleave(k)


def mirror_descent_loss(
    logp: Tensor,
    reference_logp: Tensor,
    rewards: Tensor,
    tau: float,
    baseline: str = "mean",
    group_index: Tensor | None = None,
    num_tokens: Tensor | None = None,
    token_level_normalization: bool = False,
) -> tuple[Tensor, dict[str, float]]:
    """The surrogate loss whose gradient is -(eq. 3), and its statistics.

    logp: sequence log-probs log pi_theta(y_j, z_j | x) (N,) or (G, k), with grad.
    reference_logp: log pi_theta_i(y_j, z_j | x), same shape (detached here).
    rewards: r_j, same shape. ``group_index`` (N,) long for the flat form (see module docstring).
    token_level_normalization: divide loss_j by its response token count ``num_tokens`` (N,);
    an option only, it changes the objective (the paper sums over the sequence).
    Returns (loss, stats) with stats ``pg_loss``, ``tau_loss``, ``log_ratio_mean``,
    ``log_ratio_max_abs``, ``baseline_mean``, ``advantage_abs_mean``.
    """
    if not tau > 0:
        raise ValueError(f"tau must be > 0 (paper eq. 2), got {tau}")
    flat_logp, index = _flatten(logp, group_index)
    flat_ref = reference_logp.reshape(-1).detach().to(flat_logp.dtype)
    flat_r = rewards.reshape(-1).detach().to(flat_logp.dtype)
    if not flat_ref.shape == flat_r.shape == flat_logp.shape:
        raise ValueError("logp, reference_logp and rewards must have the same number of samples")
    b = flat_group_baseline(flat_r, index, baseline, tau).to(flat_logp.dtype)  # (G,)
    advantage = flat_r - b[index]  # r_j - b
    log_ratio = flat_logp - flat_ref  # log pi/pi_ref
    pg_j = -flat_logp * advantage  # -logpi_j (r_j - b)
    tau_j = (tau / 2) * log_ratio.pow(2)  # (tau/2)(log pi/pi_ref)^2
    if token_level_normalization:
        if num_tokens is None:
            raise ValueError("token_level_normalization needs num_tokens (N,): response token counts")
        n = num_tokens.reshape(-1).to(flat_logp.dtype).clamp(min=1)
        pg_j, tau_j = pg_j / n, tau_j / n
    # (1/G) sum_g (1/k_g) sum_{j in g}: weight 1/(G k_g) per sample
    num_groups = b.shape[0]
    weight = 1.0 / (num_groups * _group_sizes(index, num_groups).to(flat_logp.dtype))[index]
    pg_loss = (pg_j * weight).sum()
    tau_loss = (tau_j * weight).sum()
    stats = {
        "pg_loss": float(pg_loss.detach()),
        "tau_loss": float(tau_loss.detach()),
        "log_ratio_mean": float(log_ratio.detach().mean()),
        "log_ratio_max_abs": float(log_ratio.detach().abs().max()),
        "baseline_mean": float(b.mean()),
        "advantage_abs_mean": float(advantage.abs().mean()),
    }
    return pg_loss + tau_loss, stats
