"""Configuration of the length penalty (paper section 2.3.3)."""

from __future__ import annotations

from dataclasses import dataclass

from k15ray.config import doc, section


@section("length_penalty")
@dataclass(frozen=True)
class LengthPenaltyConfig:
    """How much length reward is added to the task reward, and from which iteration on."""

    weight: float = doc("weight of len_reward added to the reward; 0 turns the penalty off", 0.0)
    warmup_iterations: int = doc(
        "iterations of plain policy optimisation before the constant penalty starts (paper: warm-up)", 0
    )

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ValueError(f"weight: must be >= 0, got {self.weight}; use 0 to turn it off")
        if self.warmup_iterations < 0:
            raise ValueError(
                f"warmup_iterations: must be >= 0, got {self.warmup_iterations}; 0 = from the start"
            )
