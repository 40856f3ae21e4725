"""A reward call that never raises (STYLE rule 8): failures come back as a typed result.

Used by the envs (``TextEnv.score``) and the served rewards alike, so a reward function that
raises, or returns something other than a ``RewardResult``, scores 0 with status ``error``
instead of killing a training iteration or an HTTP request.
"""

from __future__ import annotations

from collections.abc import Callable

from k15ray.types import Prompt, RewardResult


def safe_score(
    reward_fn: Callable[[Prompt, str], RewardResult], prompt: Prompt, response: str
) -> RewardResult:
    """Call ``reward_fn``; an exception becomes ``RewardResult(0, False, "error")`` (STYLE rule 8)."""
    try:
        result = reward_fn(prompt, response)
    except Exception as err:  # a user's reward function must not kill an iteration
        return RewardResult(0.0, False, "error", {"error": f"{type(err).__name__}: {err}"})
    if not isinstance(result, RewardResult):
        return RewardResult(
            0.0, False, "error", {"error": f"reward_fn returned {type(result).__name__}, not RewardResult"}
        )
    return result
