"""Configuration of repeat detection in rollouts (paper section 2.6.2)."""

from __future__ import annotations

from dataclasses import dataclass

from k15ray.config import doc, section


@section("repeat")
@dataclass(frozen=True)
class RepeatConfig:
    """A rollout is stopped once its tail is one period p <= max_period repeated >= min_repeats
    times over >= min_tokens tokens."""

    enabled: bool = doc("stop looping generations early", True)
    max_period: int = doc("longest period p (in tokens) looked for; cost per token is O(max_period)", 64)
    min_repeats: int = doc("the period must repeat at least this many times", 4)
    min_tokens: int = doc("the repeating tail must cover at least this many tokens", 48)
    penalty: float = doc(
        "added to the reward of a trajectory stopped for repeating (paper: 'additional penalties'); <= 0",
        0.0,
    )

    def __post_init__(self) -> None:
        if self.max_period < 1:
            raise ValueError(f"max_period: must be >= 1, got {self.max_period}")
        if self.min_repeats < 2:
            raise ValueError(f"min_repeats: must be >= 2 (one occurrence is no repeat), got {self.min_repeats}")
        if self.min_tokens < 1:
            raise ValueError(f"min_tokens: must be >= 1, got {self.min_tokens}")
        if self.penalty > 0:
            raise ValueError(f"penalty: must be <= 0 (it penalises loops), got {self.penalty}")
