"""Every registered k15/ id passes Gymnasium's checker; users register their own envs by id."""

from __future__ import annotations

import warnings
from pathlib import Path
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
    with pytest.raises(ValueError, match="'testorg/Missing-v0' is not registered in this process"):
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


ENV_FILE = '''
import k15ray.envs
from k15ray.envs import TextEnv
from k15ray.types import Prompt, RewardResult


class FileEnv(TextEnv):
    def __init__(self, **kwargs):
        prompts = [Prompt(id="f-0", question="Say 0.", answer="0")]
        super().__init__(prompts=prompts, reward_fn=lambda p, r: RewardResult(1.0, True), **kwargs)


k15ray.envs.register("testorg/FileImported-v0", FileEnv)
'''


def test_modules_given_as_files_register_their_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "k15test_file_envs.py").write_text(ENV_FILE)
    monkeypatch.chdir(tmp_path)  # a relative path resolves against the working directory
    k15ray.envs.ensure_registered("testorg/FileImported-v0", imports=["k15test_file_envs.py"])
    assert "testorg/FileImported-v0" in gym.registry
    register("testorg/FileEntry-v0", "k15test_file_envs.py:FileEnv", force=True)
    assert type(make_env("testorg/FileEntry-v0").unwrapped).__name__ == "FileEnv"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "k15test_file_envs.py").write_text(ENV_FILE)
    with pytest.raises(ValueError, match="already imported from .*rename the file"):
        k15ray.envs.import_env_modules([str(tmp_path / "other" / "k15test_file_envs.py")])
    with pytest.raises(ValueError, match="does not exist"):
        k15ray.envs.import_env_modules(["missing_envs.py"])
    with pytest.raises(ValueError, match="give the path of its .py file"):
        k15ray.envs.import_env_modules(["k15test_no_such_module"])


def test_an_entry_point_registers_an_unknown_id_only() -> None:
    k15ray.envs.ensure_registered("testorg/Lazy-v0", entry_point=f"{__name__}:EchoEnv")
    assert gym.registry["testorg/Lazy-v0"].entry_point == f"{__name__}:EchoEnv"
    # known already (here: a built-in id): nothing changes
    k15ray.envs.ensure_registered("k15/Math-v0", entry_point=f"{__name__}:EchoEnv")
    assert gym.registry["k15/Math-v0"].entry_point == BUILTIN_ENVS["k15/Math-v0"]


def test_the_tune_creator_registers_the_id_in_the_process_it_runs_in(ray_session: None) -> None:
    """A Tune trial unpickles the creator in a process whose Gymnasium registry lacks the id."""
    import cloudpickle
    from ray.tune.registry import ENV_CREATOR, _global_registry

    register("testorg/TuneEcho-v0", f"{__name__}:EchoEnv", tune=True, max_turns=2)
    creator = cloudpickle.loads(cloudpickle.dumps(_global_registry.get(ENV_CREATOR, "testorg/TuneEcho-v0")))
    del gym.registry["testorg/TuneEcho-v0"]  # as in a fresh trial process
    env = creator({})
    assert isinstance(env.unwrapped, EchoEnv) and env.unwrapped.max_turns == 2


def test_an_unknown_id_says_how_to_register_it_for_every_process() -> None:
    from k15ray.algorithms.config import _check_env

    with pytest.raises(ValueError, match="not registered in this process") as err:
        _check_env("nobody/Elsewhere-v0")
    for route in ("entry_point", "imports", "k15_environment", "tune=True"):
        assert route in str(err.value)


def test_the_yaml_env_section_checks_entry_point_and_imports() -> None:
    from k15ray.config.experiment import experiment_from_mapping

    env = experiment_from_mapping({"env": {"id": "a/B-v0", "entry_point": "envs.py:B", "imports": ["m"]}}).env
    assert (env.entry_point, env.imports) == ("envs.py:B", ("m",))
    with pytest.raises(ValueError, match="env.entry_point must be 'package.module:Class'"):
        experiment_from_mapping({"env": {"entry_point": "no_colon"}})
    with pytest.raises(ValueError, match="env.imports must be a list"):
        experiment_from_mapping({"env": {"imports": "mypkg.envs"}})
