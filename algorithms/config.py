"""``K15Config``: the RLlib ``AlgorithmConfig`` of the K15 algorithm (paper section 2.3, 2.6).

Builder methods take the frozen dataclasses of ``k15ray.config`` (or plain mappings of their
fields) and store them as plain dicts, so that the config survives ``to_dict()`` and Ray Tune can
search over any nested field, e.g. ``param_space["k15_mirror_descent"]["tau"] =
tune.grid_search([0.1, 1.0])``. ``validate()`` rebuilds every dataclass, so a bad value fails
before any actor starts, with a message naming the field and the fix.

Builder methods (none collides with a name of ``AlgorithmConfig``):

* ``.environment(env="k15/Math-v0", env_config={...})``: RLlib's own; any Gymnasium id whose
  env exposes ``prompts`` and ``score(prompt, response)`` (``k15ray.envs.TextEnv``);
* ``.policy(model_dir=..., dtype=...)``: the causal LM pi_theta (a Hugging Face directory);
* ``.k15_rollouts(rollout=, partial_rollout=, repeat=, sampling=)``;
* ``.k15_training(learner=, mirror_descent=, length_penalty=)``;
* ``.k15_evaluation(heldout=)``: held-out evaluation every N iterations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

import gymnasium as gym
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from k15ray.config import from_mapping, to_mapping
from k15ray.config.experiment import HeldoutEvalConfig
from k15ray.config.learner import LearnerConfig
from k15ray.config.length_penalty import LengthPenaltyConfig
from k15ray.config.mirror_descent import MirrorDescentConfig
from k15ray.config.partial_rollout import PartialRolloutConfig
from k15ray.config.repeat import RepeatConfig
from k15ray.config.rollout import RolloutConfig
from k15ray.config.sampling import SamplingConfig

T = TypeVar("T")

# Attribute of K15Config -> (dataclass, builder method that sets it).
SECTIONS: dict[str, tuple[type, str]] = {
    "k15_rollout": (RolloutConfig, "k15_rollouts(rollout=...)"),
    "k15_partial_rollout": (PartialRolloutConfig, "k15_rollouts(partial_rollout=...)"),
    "k15_repeat": (RepeatConfig, "k15_rollouts(repeat=...)"),
    "k15_sampling": (SamplingConfig, "k15_rollouts(sampling=...)"),
    "k15_learner": (LearnerConfig, "k15_training(learner=...)"),
    "k15_mirror_descent": (MirrorDescentConfig, "k15_training(mirror_descent=...)"),
    "k15_length_penalty": (LengthPenaltyConfig, "k15_training(length_penalty=...)"),
    "k15_eval": (HeldoutEvalConfig, "k15_evaluation(heldout=...)"),
}
DTYPES = ("float32", "bfloat16")


def _as_mapping(value: Any, cls: type, arg: str) -> dict[str, Any]:
    """A dataclass instance or a mapping of its fields -> a plain dict (validated now)."""
    if isinstance(value, cls):
        return dict(to_mapping(value))
    if isinstance(value, Mapping):
        return dict(to_mapping(from_mapping(cls, value, arg)))
    raise TypeError(f"{arg} must be a {cls.__name__} or a mapping of its fields, got {value!r}")


class K15Config(AlgorithmConfig):
    """Configuration of ``K15`` (see the module docstring for the builder methods).

    Example::

        config = (
            K15Config()
            .environment("k15/Math-v0", env_config={"num_prompts": 2000})
            .policy(model_dir="runs/quickstart/sft/final")
            .k15_training(mirror_descent=MirrorDescentConfig(tau=0.1))
        )
        algo = config.build_algo()
        algo.train()
    """

    def __init__(self, algo_class: type | None = None) -> None:
        from k15ray.algorithms.algorithm import K15

        super().__init__(algo_class=algo_class or K15)
        # No RLlib EnvRunners: rollouts run in k15ray.rollout actors (DESIGN.md, Ray facts).
        self._is_online = False
        self.env: Any = "k15/Math-v0"
        self.k15_policy: dict[str, Any] = {"model_dir": None, "dtype": "float32"}
        self.k15_logdir: str | None = None  # Trainable's logdir outside Tune (None: a temp dir)
        for attr, (cls, _) in SECTIONS.items():
            setattr(self, attr, dict(to_mapping(cls())))
        # The main process is the learner; its CPU is the trial's first bundle in Tune.
        self.num_cpus_for_main_process = 1
        self.num_cpus_per_learner: Any = 0
        # The RLModule never sees env spaces; these only satisfy RLlib's spec machinery.
        self.observation_space: Any = gym.spaces.Text(max_length=1)
        self.action_space: Any = gym.spaces.Text(max_length=1)

    # ----------------------------------------------------------------- builder methods
    def policy(
        self, *, model_dir: str | None = NotProvided, dtype: str | None = NotProvided  # type: ignore[assignment]
    ) -> K15Config:
        """The policy pi_theta: a Hugging Face causal-LM directory and the learner's dtype."""
        if model_dir is not NotProvided:
            self.k15_policy["model_dir"] = None if model_dir is None else str(model_dir)
        if dtype is not NotProvided:
            self.k15_policy["dtype"] = dtype
        return self

    def k15_rollouts(
        self,
        *,
        rollout: RolloutConfig | Mapping[str, Any] | None = None,
        partial_rollout: PartialRolloutConfig | Mapping[str, Any] | None = None,
        repeat: RepeatConfig | Mapping[str, Any] | None = None,
        sampling: SamplingConfig | Mapping[str, Any] | None = None,
    ) -> K15Config:
        """Rollout actors (k, temperature, workers), partial rollouts, repeat detection, sampler."""
        for attr, value in (
            ("k15_rollout", rollout),
            ("k15_partial_rollout", partial_rollout),
            ("k15_repeat", repeat),
            ("k15_sampling", sampling),
        ):
            if value is not None:
                setattr(self, attr, _as_mapping(value, SECTIONS[attr][0], attr))
        return self

    def k15_training(
        self,
        *,
        learner: LearnerConfig | Mapping[str, Any] | None = None,
        mirror_descent: MirrorDescentConfig | Mapping[str, Any] | None = None,
        length_penalty: LengthPenaltyConfig | Mapping[str, Any] | None = None,
    ) -> K15Config:
        """Optimizer and batch (learner), the objective and tau, the length penalty."""
        for attr, value in (
            ("k15_learner", learner),
            ("k15_mirror_descent", mirror_descent),
            ("k15_length_penalty", length_penalty),
        ):
            if value is not None:
                setattr(self, attr, _as_mapping(value, SECTIONS[attr][0], attr))
        return self

    def k15_evaluation(self, *, heldout: HeldoutEvalConfig | Mapping[str, Any]) -> K15Config:
        """Held-out evaluation every ``heldout.every_iterations`` iterations."""
        self.k15_eval = _as_mapping(heldout, HeldoutEvalConfig, "k15_eval")
        return self

    # ----------------------------------------------------------------- typed views
    def section(self, attr: str) -> Any:
        """The dataclass of section ``attr`` (e.g. ``"k15_learner"``), rebuilt and validated."""
        cls, builder = SECTIONS[attr]
        value = getattr(self, attr)
        if isinstance(value, cls):  # set directly as a dataclass
            return value
        try:
            return from_mapping(cls, value, attr)
        except ValueError as err:
            msg = str(err)
            if not msg.startswith(attr):
                msg = f"{attr}.{msg}"
            raise ValueError(f"{msg} (set through K15Config.{builder})") from None

    @property
    def learner_config(self) -> LearnerConfig:
        return self.section("k15_learner")  # type: ignore[no-any-return]

    @property
    def objective_config(self) -> MirrorDescentConfig:
        return self.section("k15_mirror_descent")  # type: ignore[no-any-return]

    # ----------------------------------------------------------------- RLlib hooks
    def validate(self) -> None:
        """RLlib's checks, then every K15 section; errors name the field and the fix."""
        super().validate()
        for attr in SECTIONS:
            self.section(attr)
        model_dir = self.k15_policy.get("model_dir")
        if not model_dir:
            raise ValueError(
                "k15_policy.model_dir is not set: call K15Config().policy(model_dir=...) with a "
                "Hugging Face model directory (e.g. the output of `k15ray sft`)"
            )
        if self.k15_policy.get("dtype", "float32") not in DTYPES:
            raise ValueError(
                f"k15_policy.dtype must be one of {list(DTYPES)}, got {self.k15_policy['dtype']!r}"
            )
        _check_env(self.env)
        if self.num_learners != 0:
            raise ValueError(
                f"num_learners={self.num_learners}: K15 runs its learner in the main process; "
                "call .learners(num_learners=0)"
            )

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from k15ray.algorithms.module import K15PolicyModule

        return RLModuleSpec(
            module_class=K15PolicyModule,
            model_config={
                "model_dir": self.k15_policy.get("model_dir"),
                "dtype": self.k15_policy.get("dtype", "float32"),
            },
        )

    def get_default_learner_class(self) -> type:
        from k15ray.algorithms.learner import K15Learner

        return K15Learner

    @property
    def _model_config_auto_includes(self) -> dict[str, Any]:
        return {}


def _check_env(env: Any) -> None:
    """The env must be a known Gymnasium id, a Tune env name, a class path or an env class."""
    if not env:
        raise ValueError(
            "no environment: call K15Config().environment('k15/Math-v0') or the id of an env "
            "registered with k15ray.envs.register / ray.tune.registry.register_env"
        )
    if not isinstance(env, str) or "." in env.split("/")[0]:
        return  # an env class, or a "package.module.Class" path: RLlib resolves it
    from ray.tune.registry import ENV_CREATOR, _global_registry

    import k15ray.envs

    if env not in gym.registry and not _global_registry.contains(ENV_CREATOR, env):
        raise ValueError(
            f"environment {env!r} is not registered; registered ids: {k15ray.envs.registered_ids()}. "
            "Register it with k15ray.envs.register(id, 'module:Class') or "
            "ray.tune.registry.register_env(name, creator), or fix K15Config().environment(...)"
        )


def replace_section(config: K15Config, attr: str, **changes: Any) -> K15Config:
    """A copy of ``config`` whose section ``attr`` has ``changes`` applied (validated)."""
    cls, _ = SECTIONS[attr]
    new = config.copy(copy_frozen=False)
    setattr(new, attr, dict(to_mapping(dataclasses.replace(new.section(attr), **changes))))
    return new
