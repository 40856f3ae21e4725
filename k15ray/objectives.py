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

``OBJECTIVE_FNS`` is the registry the learner picks from by ``mirror_descent.objective``: each entry
reads the learner's batch and the policy's token log-probs, for eq. (3) of paper 2.3.2 and these two.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from k15ray import batch as B
from k15ray.config.mirror_descent import MirrorDescentConfig
from k15ray.logprobs import sequence_logprobs


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


# ----------------------------------------------------------------------------- the registry
# Each objective reads the learner's batch (``k15ray.batch`` columns, as tensors) and the policy's
# token log-probs (N, T), and returns (loss, stats). ``MirrorDescentConfig.objective`` names one.
ObjectiveFn = Callable[[Mapping[str, Tensor], Tensor, MirrorDescentConfig], tuple[Tensor, dict[str, float]]]


def mirror_descent_objective(
    batch: Mapping[str, Tensor], token_logp: Tensor, cfg: MirrorDescentConfig
) -> tuple[Tensor, dict[str, float]]:
    """Eq. (3) of paper 2.3.2 on SEQUENCE log-probs (``k15ray.mirror_descent.mirror_descent_loss``)."""
    from k15ray.mirror_descent import mirror_descent_loss

    mask = batch[B.LOSS_MASK]
    logp = sequence_logprobs(token_logp, mask)  # (N,) log pi_theta(y_j, z_j | x)
    reference_logp = sequence_logprobs(batch[B.REFERENCE_TOKEN_LOGP], mask)  # (N,) log pi_theta_i
    return mirror_descent_loss(
        logp,
        reference_logp,
        batch[B.REWARD],
        tau=cfg.tau,
        baseline=cfg.baseline,
        group_index=batch[B.GROUP_INDEX].long(),
        num_tokens=batch[B.NUM_TOKENS],
        token_level_normalization=cfg.token_level_normalization,
    )


def rest_objective(
    batch: Mapping[str, Tensor], token_logp: Tensor, cfg: MirrorDescentConfig
) -> tuple[Tensor, dict[str, float]]:
    """ReST: fit the correct samples only (``rest_loss``)."""
    logp = sequence_logprobs(token_logp, batch[B.LOSS_MASK])  # (N,)
    num_tokens = batch[B.NUM_TOKENS] if cfg.token_level_normalization else None
    return rest_loss(logp, batch[B.CORRECT] > 0.5, num_tokens)


def grpo_objective(
    batch: Mapping[str, Tensor], token_logp: Tensor, cfg: MirrorDescentConfig
) -> tuple[Tensor, dict[str, float]]:
    """GRPO-style clipped ratio against pi_old = pi_ref = pi_theta_i (``grpo_clipped_loss``)."""
    advantages = group_normalized_advantages(batch[B.REWARD], batch[B.GROUP_INDEX].long())  # (N,)
    return grpo_clipped_loss(
        token_logp,
        batch[B.REFERENCE_TOKEN_LOGP],
        advantages,
        batch[B.LOSS_MASK],
        clip_epsilon=cfg.clip_epsilon,
        ref_token_logp=batch[B.REFERENCE_TOKEN_LOGP],
        kl_coef=cfg.grpo_kl_coef,
    )


OBJECTIVE_FNS: dict[str, ObjectiveFn] = {
    "mirror_descent": mirror_descent_objective,
    "rest": rest_objective,
    "grpo": grpo_objective,
}


def objective_fn(name: str) -> ObjectiveFn:
    """The objective called ``name``; an unknown name lists the valid ones."""
    if name not in OBJECTIVE_FNS:
        raise ValueError(f"mirror_descent.objective {name!r} is not one of {sorted(OBJECTIVE_FNS)}")
    return OBJECTIVE_FNS[name]
