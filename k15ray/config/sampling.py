"""Configuration of the prompt sampling strategy (paper section 2.3.4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from k15ray.config import doc, section

Strategy = Literal["uniform", "curriculum", "prioritized", "curriculum+prioritized"]
CurriculumMode = Literal["warmup_then_hard", "staged"]
STRATEGIES: tuple[str, ...] = ("uniform", "curriculum", "prioritized", "curriculum+prioritized")
INITIAL_SUCCESS: tuple[str, ...] = ("none", "pass_rate")
CURRICULUM_MODES: tuple[str, ...] = ("warmup_then_hard", "staged")


@section("sampling")
@dataclass(frozen=True)
class SamplingConfig:
    """Which prompts of D each iteration trains on."""

    prompts_per_iteration: int = doc("prompts sampled per iteration; the batch is prompts x k", 32)
    strategy: Strategy = doc(
        "uniform, curriculum (difficulty labels), prioritized (1 - s_i) or curriculum+prioritized (both: "
        "the curriculum's pool, weighted by 1 - s_i)",
        "uniform",
    )
    curriculum_mode: CurriculumMode = doc(
        "curriculum: warmup_then_hard (all of D, then difficulty >= hard_difficulty) or staged (easy to hard)",
        "warmup_then_hard",
    )
    warmup_iterations: int = doc("warmup_then_hard: iterations sampling from all of D", 10)
    hard_difficulty: int = doc("warmup_then_hard: prompts with difficulty >= this are 'hard'", 2)
    stage_iterations: int = doc(
        "staged: iterations per stage; stage s samples difficulty <= the (s+1)-th lowest level", 10
    )
    priority_floor: float = doc("prioritized: P(i) proportional to max(1 - s_i, floor) > 0", 0.05)
    success_ema: float = doc(
        "weight of the newest success in s_i (exponential moving average); 0 = plain running mean", 0.0
    )
    initial_success: str = doc(
        "none (s_i starts at 0) or pass_rate (s_i starts at the pass rate `k15ray curate` stored on the "
        "prompt, tag pass_rate=..., counted as one observation)",
        "none",
    )

    def __post_init__(self) -> None:
        if self.prompts_per_iteration < 1:
            raise ValueError(
                f"prompts_per_iteration: must be >= 1, got {self.prompts_per_iteration}; "
                "set the number of prompts sampled per iteration, e.g. 32"
            )
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy: {self.strategy!r} is not one of {list(STRATEGIES)}")
        if self.curriculum_mode not in CURRICULUM_MODES:
            raise ValueError(
                f"curriculum_mode: {self.curriculum_mode!r} is not one of {list(CURRICULUM_MODES)}"
            )
        if self.warmup_iterations < 0:
            raise ValueError(f"warmup_iterations: must be >= 0, got {self.warmup_iterations}")
        if self.stage_iterations < 1:
            raise ValueError(f"stage_iterations: must be >= 1, got {self.stage_iterations}")
        if not 0 < self.priority_floor <= 1:
            raise ValueError(
                f"priority_floor: must be in (0, 1] so that no prompt starves, got {self.priority_floor}; try 0.05"
            )
        if self.initial_success not in INITIAL_SUCCESS:
            raise ValueError(
                f"initial_success: {self.initial_success!r} is not one of {list(INITIAL_SUCCESS)}"
            )
        if not 0 <= self.success_ema <= 1:
            raise ValueError(f"success_ema: must be in [0, 1], got {self.success_ema}; 0 = running mean")
