"""Configuration of the policy-optimisation objective (paper section 2.3.2 and its ablations)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from k15ray.config import doc, section

Objective = Literal["mirror_descent", "rest", "grpo"]
Baseline = Literal["mean", "logsumexp"]
OBJECTIVES: tuple[str, ...] = ("mirror_descent", "rest", "grpo")
BASELINES: tuple[str, ...] = ("mean", "logsumexp")


@section("mirror_descent")
@dataclass(frozen=True)
class MirrorDescentConfig:
    """Which surrogate loss the learner minimises and its constants."""

    objective: Objective = doc(
        "loss: mirror_descent (paper eq. 3), rest (fit correct samples only) or grpo (clipped ratio)",
        "mirror_descent",
    )
    tau: float = doc("tau > 0: strength of the KL / squared-log-ratio regulariser of eq. (2)-(3)", 0.1)
    baseline: Baseline = doc(
        "b in eq. (3): mean = mean group reward r-bar; logsumexp = tau*log((1/k)*sum exp(r_j/tau))",
        "mean",
    )
    token_level_normalization: bool = doc(
        "divide each sample's loss by its response token count (NOT the paper's; off by default)", False
    )
    clip_epsilon: float = doc("grpo only: PPO clip range epsilon of the token ratio", 0.2)
    grpo_kl_coef: float = doc("grpo only: weight of the k3 KL estimate to the reference policy", 0.0)

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(
                f"objective: {self.objective!r} is not one of {list(OBJECTIVES)}; pick one of them"
            )
        if not self.tau > 0:
            raise ValueError(f"tau: must be > 0 (paper eq. 2), got {self.tau}; try 0.1 to 1.0")
        if self.baseline not in BASELINES:
            raise ValueError(f"baseline: {self.baseline!r} is not one of {list(BASELINES)}")
        if not 0 < self.clip_epsilon < 1:
            raise ValueError(f"clip_epsilon: must be in (0, 1), got {self.clip_epsilon}; try 0.2")
        if self.grpo_kl_coef < 0:
            raise ValueError(f"grpo_kl_coef: must be >= 0, got {self.grpo_kl_coef}; 0 turns it off")
