"""The paper's ablation baselines as pure losses (section 3.5, "Ablation Studies", and GRPO).

* ReST (Gulcehre et al. 2023), ``rest_loss``: supervised fitting of selected sampled responses
  only, no negative gradient:  L = -(1/|S|) sum_{j in S} log pi(y_j | x)  (or, per token,
  -(sum_{j in S} log pi(y_j | x)) / (sum_{j in S} n_j)). S = the correct samples, or, as in the
  paper's ablation ("fitting the best response sampled from the current model"), the best
  correct sample of each group: ``best_per_group``.
* GRPO-style clipped objective, ``grpo_clipped_loss``: token ratio rho_t = pi(y_t)/pi_old(y_t)
  against the rollout (old) log-probs, group-normalised advantage A_j = (r_j - mean_g r)/(std_g r + eps),

      L = -(1/N) sum_j (1/n_j) sum_t min(rho_t A_j, clip(rho_t, 1-eps, 1+eps) A_j)  [+ beta KL_k3]

  with KL_k3 = exp(ref - logp) - (ref - logp) - 1 per token (optional, beta = ``kl_coef``).
"""

from __future__ import annotations

import torch
from torch import Tensor


def rest_loss(
    logp: Tensor, correct: Tensor, num_tokens: Tensor | None = None
) -> tuple[Tensor, dict[str, float]]:
    """ReST: -mean log pi over the correct samples (N,); per token when ``num_tokens`` is given.

    With no correct sample the loss is 0 (still attached to the graph, so backward works).
    """
    if logp.shape != correct.shape:
        raise ValueError(f"logp {tuple(logp.shape)} and correct {tuple(correct.shape)} must match")
    keep = correct.to(torch.bool)
    selected = logp[keep]  # log pi(y_j | x), j in S
    if num_tokens is None:
        denom = float(max(int(keep.sum()), 1))  # |S|
    else:
        denom = float(max(float(num_tokens[keep].sum()), 1.0))  # sum_{j in S} n_j
    loss = -selected.sum() / denom + 0.0 * logp.sum()
    return loss, {"rest_loss": float(loss.detach()), "rest_fraction_kept": float(keep.float().mean())}


def best_per_group(rewards: Tensor, correct: Tensor, group_index: Tensor) -> Tensor:
    """Bool mask (N,) selecting, in each group, the highest-reward correct sample (first on ties);
    groups without a correct sample select nothing."""
    selected = torch.zeros_like(correct, dtype=torch.bool)
    r = torch.where(correct.to(torch.bool), rewards.detach().to(torch.float64), -torch.inf)
    for g in torch.unique(group_index).tolist():
        members = torch.nonzero(group_index == g).squeeze(-1)  # (k_g,)
        best = members[torch.argmax(r[members])]
        selected[best] = bool(torch.isfinite(r[best]))
    return selected


def group_normalized_advantages(rewards: Tensor, group_index: Tensor, eps: float = 1e-6) -> Tensor:
    """A_j = (r_j - mean_g r) / (std_g r + eps) per group (population std): (N,), (N,) -> (N,)."""
    r = rewards.detach().to(torch.float64)
    g = int(group_index.max()) + 1
    k = torch.bincount(group_index, minlength=g).to(torch.float64)  # (G,)
    mean = torch.zeros(g, dtype=torch.float64, device=r.device).index_add_(0, group_index, r) / k
    centred = r - mean[group_index]
    var = torch.zeros(g, dtype=torch.float64, device=r.device).index_add_(0, group_index, centred**2) / k
    return (centred / (var.sqrt()[group_index] + eps)).to(rewards.dtype)


def grpo_clipped_loss(
    token_logp: Tensor,
    old_token_logp: Tensor,
    advantages: Tensor,
    loss_mask: Tensor,
    clip_epsilon: float = 0.2,
    ref_token_logp: Tensor | None = None,
    kl_coef: float = 0.0,
) -> tuple[Tensor, dict[str, float]]:
    """Token-level PPO-clipped loss with per-sequence advantages: (B, T), (B, T), (B,), (B, T)."""
    if not token_logp.shape == old_token_logp.shape == loss_mask.shape:
        raise ValueError("token_logp, old_token_logp and loss_mask must all be (B, T)")
    mask = loss_mask.to(token_logp.dtype)
    ratio = torch.exp(token_logp - old_token_logp.detach())  # rho_t = pi / pi_old
    adv = advantages.detach().to(token_logp.dtype)[:, None]  # (B, 1)
    surrogate = torch.minimum(ratio * adv, ratio.clamp(1 - clip_epsilon, 1 + clip_epsilon) * adv)
    per_token = -surrogate  # (B, T)
    if ref_token_logp is not None and kl_coef > 0:
        d = ref_token_logp.detach() - token_logp  # log pi_ref - log pi
        per_token = per_token + kl_coef * (torch.exp(d) - d - 1)  # k3 estimator of KL(pi || pi_ref)
    n = mask.sum(dim=-1).clamp(min=1)  # n_j
    loss = ((per_token * mask).sum(dim=-1) / n).mean()  # (1/N) sum_j (1/n_j) sum_t
    clipped = ((ratio - 1).abs() > clip_epsilon).to(mask.dtype)
    stats = {
        "grpo_loss": float(loss.detach()),
        "clip_fraction": float((clipped * mask).sum() / mask.sum().clamp(min=1)),
    }
    return loss, stats
