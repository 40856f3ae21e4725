"""Every registered k15/ id passes Gymnasium's checker; users register their own envs by id."""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import k15ray.envs
from k15ray.envs import BUILTIN_ENVS, TextEnv, make_env, register, registered_ids
from k15ray.types import Prompt, RewardResult

# Small and in memory: the vision env would otherwise write its PNGs to a shared cache dir.
SMALL_KWARGS: dict[str, dict[str, Any]] = {
    "k15/Math-v0": {"num_prompts": 16},
    "k15/Vision-v0": {"num_prompts": 12, "image_store": "memory"},
}


@pytest.mark.parametrize("env_id", sorted(BUILTIN_ENVS))
def test_check_env_passes_without_warnings(env_id: str) -> None:
    assert env_id in gym.registry
    env = gym.make(env_id, **SMALL_KWARGS.get(env_id, {}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any Gymnasium warning fails the test
        check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("env_id", sorted(BUILTIN_ENVS))
def test_seeded_resets_are_deterministic(env_id: str) -> None:
    env_a = gym.make(env_id, **SMALL_KWARGS.get(env_id, {}))
    env_b = gym.make(env_id, **SMALL_KWARGS.get(env_id, {}))
    ids_a = [env_a.reset(seed=7)[1]["prompt_id"]] + [env_a.reset()[1]["prompt_id"] for _ in range(5)]
    ids_b = [env_b.reset(seed=7)[1]["prompt_id"]] + [env_b.reset()[1]["prompt_id"] for _ in range(5)]
    assert ids_a == ids_b
    obs_a, _ = env_a.reset(seed=7)
    obs_b, _ = env_b.reset(seed=7)
    if isinstance(obs_a, dict):  # the vision env: text + image
        assert obs_a["text"] == obs_b["text"] and (obs_a["image"] == obs_b["image"]).all()
    else:
        assert obs_a == obs_b


class EchoEnv(TextEnv):
    """A user's env: reward 1 when the response repeats the prompt's answer verbatim."""

    def default_prompts(self) -> list[Prompt]:
        return [Prompt(id=f"echo-{i}", question=f"Say {i}.", answer=str(i)) for i in range(3)]

    def default_reward_fn(self) -> Any:
        def reward(prompt: Prompt, response: str) -> RewardResult:
            ok = response.strip() == prompt.answer
            return RewardResult(float(ok), ok)

        return reward


def test_a_user_env_registers_and_makes_by_id() -> None:
    register("testorg/Echo-v0", EchoEnv, max_turns=2)
    assert "testorg/Echo-v0" in registered_ids()
    register("testorg/Echo-v0", EchoEnv, max_turns=2)  # the same registration again: a no-op
    with pytest.raises(ValueError, match="already registered"):
        register("testorg/Echo-v0", "somewhere:Else")
    env = make_env("testorg/Echo-v0")
    assert isinstance(env.unwrapped, EchoEnv) and env.unwrapped.max_turns == 2
    obs, info = env.reset(options={"prompt_id": "echo-1"})
    assert obs == "Say 1."
    # max_turns=2: a wrong first answer continues the episode, the right one ends it
    obs, reward, terminated, truncated, info = env.step("2")
    assert (reward, terminated, truncated, info["turn"]) == (0.0, False, False, 1)
    obs, reward, terminated, truncated, info = env.step("1")
    assert (reward, terminated, info["turn"]) == (1.0, True, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)


def test_a_user_env_registers_by_entry_point_string() -> None:
    register("testorg/StringEcho-v0", f"{__name__}:EchoEnv", force=True)
    env = gym.make("testorg/StringEcho-v0")
    assert type(env.unwrapped).__name__ == "EchoEnv"


def test_bad_registrations_say_what_to_fix() -> None:
    with pytest.raises(ValueError, match="module:Class"):
        register("testorg/Bad-v0", "no_colon_here")
    with pytest.raises(ValueError, match="unknown env id 'testorg/Missing-v0'"):
        make_env("testorg/Missing-v0")


def test_ray_tune_register_env_works_too(ray_session: None) -> None:
    from ray.tune.registry import register_env

    register_env("echo_tune_env", lambda config: EchoEnv(max_turns=config.get("max_turns", 1)))
    env = make_env("echo_tune_env", {"max_turns": 3})
    assert isinstance(env, EchoEnv) and env.max_turns == 3
    # and a Gymnasium id exported to Tune resolves through Tune's own registry
    k15ray.envs.register_tune_env("k15/Code-v0", name="k15_code_tune")
    from ray.tune.registry import ENV_CREATOR, _global_registry

    created = _global_registry.get(ENV_CREATOR, "k15_code_tune")({"partial_credit": True})
    assert created.unwrapped.partial_credit is True
