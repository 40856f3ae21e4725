"""Configuration of partial rollouts (paper section 2.6.2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from k15ray.config import doc, section

LossMaskMode = Literal["all", "current"]


@section("partial_rollout")
@dataclass(frozen=True)
class PartialRolloutConfig:
    """Per-iteration token budget, maximum response length and which segments enter the loss."""

    budget_tokens: int = doc(
        "output tokens one trajectory may generate per iteration; the rest waits in the buffer", 512
    )
    max_response_tokens: int = doc("total response length at which a trajectory is truncated", 1024)
    loss_mask: LossMaskMode = doc(
        "segments in the loss: all, or current (each trajectory's last generating iteration only)", "all"
    )

    def __post_init__(self) -> None:
        if self.budget_tokens < 1:
            raise ValueError(f"budget_tokens: must be >= 1, got {self.budget_tokens}")
        if self.max_response_tokens < 1:
            raise ValueError(f"max_response_tokens: must be >= 1, got {self.max_response_tokens}")
        if self.budget_tokens > self.max_response_tokens:
            raise ValueError(
                f"budget_tokens ({self.budget_tokens}) > max_response_tokens ({self.max_response_tokens}):"
                " lower budget_tokens (set them equal to turn partial rollouts off)"
            )
        if self.loss_mask not in ("all", "current"):
            raise ValueError(f"loss_mask: {self.loss_mask!r} is not one of ['all', 'current']")
