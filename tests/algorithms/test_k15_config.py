"""K15Config: builder methods, Tune-friendly dict sections, and errors that say what to fix.

A bad value must fail before any actor starts: in the builder when given a dataclass or mapping,
and in ``validate()`` (run by ``Algorithm.__init__`` before ``setup``) when set behind the
builder's back, as a Tune ``param_space`` does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from k15_testkit import register_toy_env, small_config, tiny_model

from k15ray.algorithms import K15Config
from k15ray.config.experiment import experiment_from_mapping, load_experiment
from k15ray.config.mirror_descent import MirrorDescentConfig


def test_builder_stores_plain_dicts_and_rebuilds_dataclasses() -> None:
    cfg = K15Config().k15_training(mirror_descent=MirrorDescentConfig(tau=0.5), learner={"lr": 2e-4})
    assert cfg.k15_mirror_descent["tau"] == 0.5  # a plain dict: Tune can grid-search it
    settings = cfg.settings()  # one frozen, typed object
    assert settings.mirror_descent == MirrorDescentConfig(tau=0.5)
    assert settings.learner.lr == 2e-4
    d = cfg.to_dict()
    assert d["k15_mirror_descent"]["tau"] == 0.5 and d["k15_learner"]["lr"] == 2e-4


def test_builder_rejects_bad_value_naming_field() -> None:
    with pytest.raises(ValueError, match=r"learner\.lr must be > 0"):
        K15Config().k15_training(learner={"lr": -1.0})
    with pytest.raises(ValueError, match=r"rollout\.unknown_knob: unknown key"):
        K15Config().k15_rollouts(rollout={"unknown_knob": 1})


def test_validate_names_section_field_and_builder(tmp_path: Path) -> None:
    cfg = small_config(tiny_model(tmp_path / "m"), tmp_path / "logs", env=register_toy_env())
    cfg.k15_mirror_descent = {**cfg.k15_mirror_descent, "tau": -1.0}  # as Tune's param_space would
    with pytest.raises(ValueError) as err:
        cfg.validate()
    msg = str(err.value)
    assert msg.startswith("mirror_descent.tau must be > 0") and "try 0.1 to 1.0" in msg
    assert "K15Config.k15_mirror_descent" in msg and "k15_training(mirror_descent" in msg


def test_validate_needs_model_dir_and_known_env(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"model_dir is not set.*policy\(model_dir="):
        K15Config().environment(register_toy_env()).validate()
    cfg = K15Config().environment("nobody/NoSuchEnv-v0").policy(model_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"'nobody/NoSuchEnv-v0' is not registered.*k15ray.envs.register"):
        cfg.validate()


def test_yaml_error_names_section_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("mirror_descent:\n  tau: 0\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: mirror_descent\.tau must be > 0"):
        load_experiment(path)
    with pytest.raises(ValueError, match=r"learner\.lr must be a float"):
        experiment_from_mapping({"learner": {"lr": "fast"}})
    with pytest.raises(ValueError, match=r"rollouts: unknown section; valid sections are"):
        experiment_from_mapping({"rollouts": {}})
    ok = load_experiment(path, {"mirror_descent.tau": 0.5})  # --set fixes it
    assert ok.mirror_descent.tau == 0.5


def _alive_actors() -> int:
    import ray

    return sum(a["State"] == "ALIVE" for a in ray._private.state.actors().values())


def test_bad_config_fails_before_any_actor_starts(ray_session: None, tmp_path: Path) -> None:
    cfg = small_config(tiny_model(tmp_path / "m"), tmp_path / "logs", env=register_toy_env())
    cfg.k15_rollout = {**cfg.k15_rollout, "samples_per_prompt": 0}
    before = _alive_actors()
    with pytest.raises(ValueError, match=r"rollout\.samples_per_prompt must be >= 1"):
        cfg.build_algo()
    assert _alive_actors() == before  # no rollout actor, no learner actor was started


def test_one_error_convention_whatever_the_path(tmp_path: Path) -> None:
    """The same bad value reads ``learner.lr must be > 0`` from YAML, --set, a builder, Tune's
    param_space, and a dataclass built in Python."""
    from k15ray.config.learner import LearnerConfig

    path = tmp_path / "c.yaml"
    path.write_text("learner:\n  lr: -1.0\n")
    messages = []
    for make in (
        lambda: load_experiment(path),
        lambda: load_experiment(tmp_path / "c.yaml", {"learner.lr": -2.0}),
        lambda: K15Config().k15_training(learner={"lr": -1.0}),
        lambda: LearnerConfig(lr=-1.0),
    ):
        with pytest.raises(ValueError) as err:
            make()
        messages.append(str(err.value))
    cfg = K15Config()
    cfg.k15_learner = {**cfg.k15_learner, "lr": -1.0}  # as a Tune param_space sets it
    with pytest.raises(ValueError) as err:
        cfg.settings()
    messages.append(str(err.value))
    for msg in messages:
        assert "learner.lr must be > 0" in msg, messages


def test_num_gpus_per_learner_is_learner_num_gpus() -> None:
    """One value, whichever way it was set: RLlib's builder, the learner section, a Tune dict."""
    cfg = K15Config().learners(num_gpus_per_learner=1)
    assert cfg.settings().learner.num_gpus == 1.0
    cfg = K15Config().k15_training(learner={"num_gpus": 0.5})
    assert cfg.num_gpus_per_learner == 0.5
    restored = K15Config().update_from_dict(cfg.to_dict())
    assert restored.num_gpus_per_learner == 0.5


def test_cross_section_check_names_both_sections() -> None:
    cfg = K15Config().k15_rollouts(sampling={"prompts_per_iteration": 2})
    cfg.k15_learner = {**cfg.k15_learner, "num_minibatches": 4}
    with pytest.raises(ValueError, match=r"learner\.num_minibatches \(4\) must not exceed sampling\.prompts_per_iteration"):
        cfg.settings()
