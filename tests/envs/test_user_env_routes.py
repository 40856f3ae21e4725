"""A user's env trains by id wherever the env is made: in the driver, in Ray Tune trials (processes
of their own) and in ``k15ray train`` (a fresh process reading YAML).

The env lives in a module file of its own under ``tmp_path``, as a user's would, and nothing
registers its id in the test process beforehand: what registers it travels with the config
(``K15Config.k15_environment``, the YAML ``env.entry_point`` / ``env.imports``) or with Tune's
registry (``k15ray.envs.register(..., tune=True)``). Each run is one small iteration, colocated
(the rollout backend in the learner's process: one CPU per trial, no actor to start).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

import k15ray.algorithms  # noqa: F401  (registers "K15" with Tune)
import k15ray.envs
from k15ray import metrics as M
from k15ray.algorithms import K15Config

USER_ENV_MODULE = '''
"""A user's env package: a text env whose reward is the fraction of digits in the response."""
import k15ray.envs
from k15ray.envs import TextEnv
from k15ray.types import Prompt, RewardResult


def digit_fraction(prompt, response):
    score = sum(c.isdigit() for c in response) / max(len(response), 1)
    return RewardResult(score, score >= 0.5)


class DigitsEnv(TextEnv):
    def __init__(self, num_prompts=4, **kwargs):
        prompts = [Prompt(id=f"d-{{i}}", question=f"Say some digits #{{i}}", answer="0") for i in range(num_prompts)]
        super().__init__(prompts=prompts, reward_fn=digit_fraction, **kwargs)


{registration}
'''

SMALL_RUN = {
    "rollout": {"colocate": True, "samples_per_prompt": 2, "max_batch_size": 8},
    "partial_rollout": {"budget_tokens": 8, "max_response_tokens": 8},  # groups finish in 1 iteration
    "sampling": {"prompts_per_iteration": 2},
    "learner": {"num_minibatches": 1},
}


def _user_module(folder: Path, name: str, registers: str | None = None) -> Path:
    """Write ``folder/name.py`` defining ``DigitsEnv``; it registers id ``registers`` on import."""
    line = f"k15ray.envs.register({registers!r}, DigitsEnv)" if registers else ""
    path = folder / f"{name}.py"
    path.write_text(USER_ENV_MODULE.format(registration=line))
    return path


def _tiny_model(path: Path) -> str:
    from k15ray.models import create_model

    create_model("tiny", path, seed=0)
    return str(path)


def _small_config(model_dir: str, env_id: str, logdir: Path) -> K15Config:
    config = (
        K15Config()
        .environment(env_id, env_config={"num_prompts": 4})
        .policy(model_dir=model_dir)
        .k15_rollouts(rollout=SMALL_RUN["rollout"], partial_rollout=SMALL_RUN["partial_rollout"])
        .k15_rollouts(sampling=SMALL_RUN["sampling"])
        .k15_training(learner=SMALL_RUN["learner"])
        .debugging(seed=0)
    )
    config.k15_logdir = str(logdir)
    return config


def test_driver_registers_the_id_from_its_entry_point(
    ray_session: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _user_module(tmp_path, "k15user_driver_envs")
    monkeypatch.syspath_prepend(str(tmp_path))  # an importable package, as after `pip install -e .`
    env_id = "k15user/DriverDigits-v0"
    assert env_id not in gym.registry
    config = _small_config(_tiny_model(tmp_path / "m"), env_id, tmp_path / "logs")
    config.k15_environment(entry_point="k15user_driver_envs:DigitsEnv")
    algo = config.build_algo()
    try:
        result = algo.train()
        assert type(algo._rollout.env).__name__ == "DigitsEnv"
    finally:
        algo.stop()
    assert result[M.ROLLOUT_PROMPTS] == 2 and 0.0 <= result[M.REWARD_MEAN] <= 1.0
    assert env_id in gym.registry


def test_tune_trials_register_the_id_in_their_own_process(
    ray_session: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two trials, one per route: ``register(..., tune=True)`` in the driver, and a module named
    by ``k15_environment(imports=[...])`` that registers its id on import. The modules are given
    as .py files: a trial imports them by path (its sys.path does not hold tmp_path)."""
    from ray import tune

    # Tune 2.60 refuses to run while these deprecated variables are set (tests/conftest.py sets them).
    monkeypatch.delenv("TUNE_RESULT_DIR", raising=False)
    monkeypatch.delenv("RAY_AIR_LOCAL_CACHE_DIR", raising=False)
    by_tune_registry, by_import = "k15user/TuneRegistered-v0", "k15user/TuneImported-v0"
    plain = _user_module(tmp_path, "k15user_tune_plain")
    registering = _user_module(tmp_path, "k15user_tune_registering", registers=by_import)
    k15ray.envs.register(by_tune_registry, f"{plain}:DigitsEnv", tune=True)

    config = _small_config(_tiny_model(tmp_path / "m"), by_tune_registry, tmp_path / "logs")
    config.k15_environment(imports=[str(registering)])
    space = config.to_dict()
    space["env"] = tune.grid_search([by_tune_registry, by_import])
    grid = tune.Tuner(
        "K15",
        param_space=space,
        run_config=tune.RunConfig(
            name="user_envs", storage_path=str(tmp_path / "results"), stop={"training_iteration": 1}, verbose=0
        ),
    ).fit()
    assert grid.num_errors == 0, [str(r.error) for r in grid]
    assert sorted(r.config["env"] for r in grid) == sorted([by_tune_registry, by_import])
    for result in grid:
        assert result.metrics[M.ROLLOUT_PROMPTS] == 2 and 0.0 <= result.metrics[M.REWARD_MEAN] <= 1.0


CLI_RUN = """
seed: 0
output_dir: run
data: {{generate: false}}
policy: {{model_dir: {model}}}
env: {{id: k15user/CliDigits-v0, entry_point: "k15user_cli_envs.py:DigitsEnv", config: {{num_prompts: 4}}}}
rollout: {rollout}
partial_rollout: {partial_rollout}
sampling: {sampling}
learner: {learner}
eval: {{final_num_prompts: 2, max_new_tokens: 8}}
run: {{iterations: 1, checkpoint_every: 0, num_cpus: 2}}
"""


@pytest.mark.slow
def test_k15ray_train_registers_the_id_named_in_the_yaml(tmp_path: Path) -> None:
    """The real console script in a fresh process, from the folder holding the env's file
    (``entry_point`` relative to it; a console script does not put the working dir on sys.path)."""
    _user_module(tmp_path, "k15user_cli_envs")
    config = tmp_path / "user_env.yaml"
    sections = {k: json.dumps(v) for k, v in SMALL_RUN.items()}
    config.write_text(CLI_RUN.format(model=_tiny_model(tmp_path / "m"), **sections))
    k15ray_cli = Path(sys.executable).parent / "k15ray"
    done = subprocess.run(
        [str(k15ray_cli), "train", str(config)],
        cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["iterations"] == 1
    assert (tmp_path / "run" / "rl" / "policy" / "config.json").is_file()
