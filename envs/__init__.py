"""Gymnasium text environments (math, code, vision), imported as ``k15ray.envs``.

Importing this package registers ``k15/Math-v0``, ``k15/Code-v0`` and ``k15/Vision-v0``::

    import gymnasium as gym
    import k15ray.envs

    env = gym.make("k15/Math-v0")
    obs, info = env.reset(seed=0)                         # obs: the question text
    obs, reward, terminated, truncated, info = env.step("... \\\\boxed{42}")
    info["reward_result"]                                 # RewardResult(score, correct, status, details)

The training loop uses the unwrapped env directly: ``env.unwrapped.prompts`` (the prompt set D)
and ``env.unwrapped.score(prompt, response) -> RewardResult``. A user's env is registered with
``register(id, "mypkg.envs:MyEnv")``; ``ensure_registered`` registers it again in another process
(a Tune trial, ``k15ray train``) from an entry point or modules to import. See docs/envs.md.
"""

from k15ray.envs.base import PRINTABLE_CHARSET, TextEnv, prompt_text, text_space
from k15ray.envs.dataset import (
    iter_prompts,
    load_prompts,
    prompt_from_record,
    prompt_to_record,
    write_prompts,
)
from k15ray.envs.registration import (
    BUILTIN_ENVS,
    ensure_registered,
    import_env_modules,
    make_env,
    register,
    register_builtin_envs,
    register_tune_env,
    registered_ids,
)

register_builtin_envs()

__all__ = [
    "BUILTIN_ENVS",
    "PRINTABLE_CHARSET",
    "TextEnv",
    "ensure_registered",
    "import_env_modules",
    "iter_prompts",
    "load_prompts",
    "make_env",
    "prompt_from_record",
    "prompt_to_record",
    "prompt_text",
    "register",
    "register_builtin_envs",
    "register_tune_env",
    "registered_ids",
    "text_space",
    "write_prompts",
]
