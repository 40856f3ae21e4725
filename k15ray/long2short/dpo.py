"""The DPO loss (paper section 2.4, "DPO"; Rafailov et al. 2023, eq. 7), a pure function.

k1.5 "utilize[s] the Long CoT model to generate multiple response samples. The shortest correct
solution is selected as the positive sample, while longer responses are treated as negative
samples" (pairs: ``k15ray.long2short.selection.preference_pairs``). For a pair (y_w, y_l) of prompt
x, the policy pi_theta and the frozen reference pi_ref (the long-CoT model it starts from):

    h = beta * [ (log pi_theta(y_w|x) - log pi_ref(y_w|x)) - (log pi_theta(y_l|x) - log pi_ref(y_l|x)) ]
    L_DPO = - log sigma(h)

with log pi(y|x) the SEQUENCE log-probability (sum over the response's tokens, as in
``k15ray.mirror_descent``). The implicit rewards are beta * (log pi_theta - log pi_ref) of each side.

Why not TRL's ``DPOTrainer``: TRL (1.16 on PyPI) is not installed and would add ``accelerate``
and ``datasets`` (neither is a dependency today) to every install and CI run, for a loss of four
lines; its trainer expects a ``datasets.Dataset`` and its own tokenisation, while our pairs come
from the rollout actors already tokenised and the tiny Llama takes the project's chat template and
the memory-light ``k15ray.logprobs`` path. The formula is tested against hand-computed values.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def dpo_loss(
    policy_chosen_logp: Tensor,
    policy_rejected_logp: Tensor,
    reference_chosen_logp: Tensor,
    reference_rejected_logp: Tensor,
    beta: float = 0.1,
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-pair DPO loss and implicit rewards: (B,) x 4 -> (loss (B,), chosen_reward (B,), rejected_reward (B,))."""
    if beta <= 0:
        raise ValueError(f"beta must be > 0 (the KL strength of DPO), got {beta}; try 0.1")
    shapes = {tuple(t.shape) for t in (policy_chosen_logp, policy_rejected_logp, reference_chosen_logp,
                                       reference_rejected_logp)}
    if len(shapes) != 1:
        raise ValueError(f"the four log-prob tensors must have one shape (one entry per pair), got {sorted(shapes)}")
    chosen_reward = beta * (policy_chosen_logp - reference_chosen_logp)  # beta * log(pi/pi_ref)(y_w)
    rejected_reward = beta * (policy_rejected_logp - reference_rejected_logp)  # beta * log(pi/pi_ref)(y_l)
    h = chosen_reward - rejected_reward  # h = beta * [log-ratio(y_w) - log-ratio(y_l)]
    loss = -F.logsigmoid(h)  # L = -log sigma(h)
    return loss, chosen_reward.detach(), rejected_reward.detach()

