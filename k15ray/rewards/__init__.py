"""Reward functions r(x, y, y*) (paper section 2.1): math answers and code tests.

``verify_math(response, reference) -> bool`` is a public entry point (DESIGN.md); ``math_reward``
and ``code_reward`` are ``RewardFn``s (``k15ray.types``) returning a ``RewardResult``;
``safe_score(reward_fn, prompt, response)`` calls any of them without ever raising.
"""

from k15ray.rewards.code import code_reward, extract_code
from k15ray.rewards.math import MathCheck, check_math, math_reward, verify_math
from k15ray.rewards.safe import safe_score

__all__ = ["MathCheck", "check_math", "code_reward", "extract_code", "math_reward", "safe_score", "verify_math"]
