"""``K15Config``: the RLlib ``AlgorithmConfig`` of the K15 algorithm (paper section 2.3, 2.6).

Builder methods take the frozen dataclasses of ``k15ray.config`` (or plain mappings of their
fields) and store them as plain dicts, so that the config survives ``to_dict()`` and Ray Tune can
search over any nested field, e.g. ``param_space["k15_mirror_descent"]["tau"] =
tune.grid_search([0.1, 1.0])``. ``settings()`` turns those dicts into one frozen
``k15ray.config.k15.K15Settings``; ``validate()`` calls it, so a bad value fails before any actor
starts, with the same message as in a YAML file (``mirror_descent.tau must be > 0 ...``) plus the
builder method that sets it. The algorithm, learner and rollout phase hold that typed object.

Builder methods (none collides with a name of ``AlgorithmConfig``):

* ``.environment(env="k15/Math-v0", env_config={...})``: RLlib's own; any Gymnasium id whose
  env exposes ``prompts`` and ``score(prompt, response)`` (``k15ray.envs.TextEnv``);
* ``.k15_environment(entry_point="mypkg.envs:MyEnv", imports=["mypkg.envs"])``: what registers a
  user's env id in every process that makes the env (a Tune trial is a process of its own);
* ``.policy(model_dir=..., dtype=...)``: the causal LM pi_theta (a Hugging Face directory);
* ``.k15_rollouts(rollout=, partial_rollout=, repeat=, sampling=)``;
* ``.k15_training(learner=, mirror_descent=, length_penalty=, reward=)``;
* ``.k15_evaluation(heldout=)``: held-out evaluation every N iterations.

``learner.num_gpus`` and RLlib's ``num_gpus_per_learner`` are one value: setting either sets both;
so are ``learner.num_learners`` and RLlib's ``num_learners`` (data-parallel learner actors,
``k15ray.algorithms.data_parallel``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from k15ray.config.experiment import HeldoutEvalConfig
from k15ray.config.k15 import K15Settings, section_mapping
from k15ray.config.learner import LearnerConfig
from k15ray.config.length_penalty import LengthPenaltyConfig
from k15ray.config.mirror_descent import MirrorDescentConfig
from k15ray.config.partial_rollout import PartialRolloutConfig
from k15ray.config.repeat import RepeatConfig
from k15ray.config.reward import RewardConfig
from k15ray.config.rollout import RolloutConfig
from k15ray.config.sampling import SamplingConfig

# Attribute of K15Config (a Tune param_space key) -> (section of K15Settings, builder that sets it).
SECTIONS: dict[str, tuple[str, str]] = {
    "k15_policy": ("policy", "policy(model_dir=..., dtype=...)"),
    "k15_rollout": ("rollout", "k15_rollouts(rollout=...)"),
    "k15_partial_rollout": ("partial_rollout", "k15_rollouts(partial_rollout=...)"),
    "k15_repeat": ("repeat", "k15_rollouts(repeat=...)"),
    "k15_sampling": ("sampling", "k15_rollouts(sampling=...)"),
    "k15_learner": ("learner", "k15_training(learner=...)"),
    "k15_mirror_descent": ("mirror_descent", "k15_training(mirror_descent=...)"),
    "k15_length_penalty": ("length_penalty", "k15_training(length_penalty=...)"),
    "k15_reward": ("reward", "k15_training(reward=...)"),
    "k15_eval": ("eval", "k15_evaluation(heldout=...)"),
}
_ATTR = {name: attr for attr, (name, _) in SECTIONS.items()}


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

    # One plain dict per section of K15Settings (Tune sweeps their fields; ``settings()`` types them).
    k15_policy: dict[str, Any]
    k15_rollout: dict[str, Any]
    k15_partial_rollout: dict[str, Any]
    k15_repeat: dict[str, Any]
    k15_sampling: dict[str, Any]
    k15_learner: dict[str, Any]
    k15_mirror_descent: dict[str, Any]
    k15_length_penalty: dict[str, Any]
    k15_reward: dict[str, Any]
    k15_eval: dict[str, Any]

    def __init__(self, algo_class: type | None = None) -> None:
        from k15ray.algorithms.k15 import K15

        super().__init__(algo_class=algo_class or K15)
        # No RLlib EnvRunners: rollouts run in k15ray.rollout actors (DESIGN.md, Ray facts).
        self._is_online = False
        self.env: Any = "k15/Math-v0"
        # What registers a user's env id in the process that makes the env (k15_environment).
        self.k15_env_entry_point: str | None = None
        self.k15_env_imports: list[str] = []
        self.k15_logdir: str | None = None  # Trainable's logdir outside Tune (None: a temp dir)
        defaults = K15Settings().to_sections()
        for attr, (name, _) in SECTIONS.items():
            if attr not in self.__dict__:  # k15_learner may exist already (num_gpus_per_learner)
                setattr(self, attr, defaults[name])
        # The main process is the learner; its CPU is the trial's first bundle in Tune.
        self.num_cpus_for_main_process = 1
        # RLlib's "auto": a learner actor (num_learners >= 1) takes 1 CPU on CPU, 0 beside its GPU;
        # with num_learners = 0 the main process's bundle is 1 CPU either way.
        self.num_cpus_per_learner: Any = "auto"
        # The RLModule never sees env spaces; these only satisfy RLlib's spec machinery.
        self.observation_space: Any = gym.spaces.Text(max_length=1)
        self.action_space: Any = gym.spaces.Text(max_length=1)

    # ----------------------------------------------------------------- builder methods
    def policy(
        self, *, model_dir: str | None = NotProvided, dtype: str | None = NotProvided  # type: ignore[assignment]
    ) -> K15Config:
        """The policy pi_theta: a Hugging Face causal-LM directory and the learner's dtype."""
        changes: dict[str, Any] = {}
        if model_dir is not NotProvided:
            changes["model_dir"] = None if model_dir is None else str(model_dir)
        if dtype is not NotProvided:
            changes["dtype"] = dtype
        self.k15_policy = section_mapping("policy", {**self.k15_policy, **changes})
        return self

    def k15_environment(
        self,
        *,
        entry_point: str | None = NotProvided,  # type: ignore[assignment]
        imports: list[str] | tuple[str, ...] = NotProvided,  # type: ignore[assignment]
    ) -> K15Config:
        """What makes ``config.env``'s id known in every process that makes the env (the driver,
        each Tune trial): ``entry_point`` (``"module:Class"`` or ``"path/to/file.py:Class"``)
        registers the id where it is unknown; ``imports`` (module names or ``.py`` files) are
        imported first, and register the ids they define. Relative file paths are made absolute here."""
        from k15ray.envs.registration import absolute_env_source, check_entry_point

        if entry_point is not NotProvided:
            if entry_point is not None:
                if not isinstance(entry_point, str):
                    raise ValueError(
                        f"entry_point={entry_point!r}: give a 'module:Class' string (a Tune trial "
                        "imports it); to pass a class, use K15Config().environment(MyEnvClass)"
                    )
                check_entry_point(entry_point)
                entry_point = absolute_env_source(entry_point)
            self.k15_env_entry_point = entry_point
        if imports is not NotProvided:
            if isinstance(imports, str) or not all(isinstance(m, str) and m for m in imports):
                raise ValueError(f"imports={imports!r}: give a list of module names or .py file paths")
            self.k15_env_imports = [absolute_env_source(m) for m in imports]
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
                setattr(self, attr, section_mapping(SECTIONS[attr][0], value))
        return self

    def k15_training(
        self,
        *,
        learner: LearnerConfig | Mapping[str, Any] | None = None,
        mirror_descent: MirrorDescentConfig | Mapping[str, Any] | None = None,
        length_penalty: LengthPenaltyConfig | Mapping[str, Any] | None = None,
        reward: RewardConfig | Mapping[str, Any] | None = None,
    ) -> K15Config:
        """Optimizer and batch (learner), the objective and tau, the length penalty, the reward
        (the verifier or a model RM, local or served)."""
        for attr, value in (
            ("k15_learner", learner),
            ("k15_mirror_descent", mirror_descent),
            ("k15_length_penalty", length_penalty),
            ("k15_reward", reward),
        ):
            if value is not None:
                setattr(self, attr, section_mapping(SECTIONS[attr][0], value))
        return self

    def k15_evaluation(self, *, heldout: HeldoutEvalConfig | Mapping[str, Any]) -> K15Config:
        """Held-out evaluation every ``heldout.every_iterations`` iterations."""
        self.k15_eval = section_mapping("eval", heldout)
        return self

    # ----------------------------------------------------------------- typed settings
    def settings(self) -> K15Settings:
        """Every K15 section as one frozen, validated ``K15Settings`` (errors name the builder)."""
        try:
            return K15Settings.from_sections({name: getattr(self, attr) for attr, (name, _) in SECTIONS.items()})
        except ValueError as err:
            msg = str(err)
            name = msg.split(".", 1)[0].split(" ", 1)[0]
            attr = _ATTR.get(name)
            hint = f" (K15Config.{attr}, set through K15Config.{SECTIONS[attr][1]})" if attr else ""
            raise ValueError(f"{msg}{hint}") from None

    @property  # type: ignore[override]
    def num_gpus_per_learner(self) -> float:
        """RLlib's GPUs per learner: the same value as ``learner.num_gpus``."""
        return float(self.__dict__.get("k15_learner", {}).get("num_gpus", 0.0))

    @num_gpus_per_learner.setter
    def num_gpus_per_learner(self, value: float) -> None:
        learner = dict(self.__dict__.get("k15_learner") or K15Settings().to_sections()["learner"])
        self.k15_learner = {**learner, "num_gpus": float(value)}

    @property  # type: ignore[override]
    def num_learners(self) -> int:
        """RLlib's learner actors: the same value as ``learner.num_learners`` (0: the main process)."""
        return int(self.__dict__.get("k15_learner", {}).get("num_learners", 0))

    @num_learners.setter
    def num_learners(self, value: int) -> None:
        learner = dict(self.__dict__.get("k15_learner") or K15Settings().to_sections()["learner"])
        self.k15_learner = {**learner, "num_learners": int(value)}

    # ----------------------------------------------------------------- RLlib hooks
    def validate(self) -> None:
        """RLlib's checks, then every K15 section; errors name the field and the fix."""
        super().validate()
        settings = self.settings()
        if not settings.policy.model_dir:
            raise ValueError(
                "policy.model_dir is not set: call K15Config().policy(model_dir=...) with a "
                "Hugging Face model directory (e.g. the output of `k15ray sft`)"
            )
        _check_env(self.env, entry_point=self.k15_env_entry_point, imports=self.k15_env_imports)
        _check_learner_placement(settings)

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from k15ray.algorithms.module import K15PolicyModule

        settings = self.settings()
        return RLModuleSpec(
            module_class=K15PolicyModule,
            model_config={
                "model_dir": settings.policy.model_dir,
                "dtype": settings.policy.dtype,
                "temperature": settings.logprob_temperature,
            },
        )

    def get_default_learner_class(self) -> type:
        from k15ray.algorithms.learner import K15Learner

        return K15Learner

    @property
    def _model_config_auto_includes(self) -> dict[str, Any]:
        return {}


def _check_env(env: Any, *, entry_point: str | None = None, imports: list[str] | tuple[str, ...] = ()) -> None:
    """The env must be a Gymnasium id or Tune env name known in this process once ``imports`` are
    imported and ``entry_point`` registered (``k15ray.envs.ensure_registered``), a class path or an
    env class. Runs in every process that builds K15: the driver and each Tune trial."""
    if not env:
        raise ValueError(
            "no environment: call K15Config().environment('k15/Math-v0') or the id of an env "
            "registered with k15ray.envs.register / ray.tune.registry.register_env"
        )
    import k15ray.envs
    from k15ray.envs.registration import is_known, unknown_env_message

    k15ray.envs.ensure_registered(env, entry_point=entry_point, imports=imports)
    if not isinstance(env, str) or "." in env.split("/")[0]:
        return  # an env class, or a "package.module.Class" path: RLlib resolves it
    if not is_known(env):
        raise ValueError(unknown_env_message(env))


def _check_learner_placement(settings: K15Settings) -> None:
    """What cannot run with learner actors (``learner.num_learners >= 1``): the learner then lives
    in actors of its own, not in the main process that a colocated engine or the NCCL sender shares."""
    n = settings.learner.num_learners
    if n == 0:
        return
    if settings.rollout.colocate:
        raise ValueError(
            f"learner.num_learners={n} with rollout.colocate: true: a colocated engine shares the "
            "learner's process, and with num_learners >= 1 the learners are actors of their own; "
            "set rollout.colocate: false (rollout actors) or learner.num_learners: 0"
        )
    if settings.rollout.weight_sync == "nccl":
        raise ValueError(
            f"learner.num_learners={n} with rollout.weight_sync: nccl: the NCCL broadcast is sent "
            "from the main process's GPU, which holds no learner when num_learners >= 1; set "
            "rollout.weight_sync: object_store, or learner.num_learners: 0"
        )


def check_cluster_fits(
    settings: K15Settings, resources: Mapping[str, float], cpus_per_learner: float | str = "auto"
) -> None:
    """Fail before any actor starts when the Ray cluster (``ray.cluster_resources()``) cannot hold
    the learner actors and the rollout actors; the message says what to lower. ``cpus_per_learner``
    is RLlib's ``num_cpus_per_learner`` ("auto": 1 for a CPU learner, 0 beside a GPU)."""
    learner, rollout = settings.learner, settings.rollout
    n = learner.num_learners
    cpus, gpus = float(resources.get("CPU", 0.0)), float(resources.get("GPU", 0.0))
    workers = 0 if rollout.colocate else rollout.num_workers
    if cpus_per_learner == "auto":
        cpus_per_learner = 0.0 if learner.num_gpus > 0 else 1.0
    need_cpus = n * float(cpus_per_learner) + workers * rollout.num_cpus_per_worker
    if need_cpus > cpus:
        raise ValueError(
            f"the run needs {need_cpus:g} CPUs (learner.num_learners={n} x {float(cpus_per_learner):g}"
            f" + rollout.num_workers={workers} x rollout.num_cpus_per_worker="
            f"{rollout.num_cpus_per_worker:g}) but the Ray cluster has {cpus:g}; lower those numbers "
            "or attach to a larger cluster (k15ray train --address)"
        )
    need_gpus = max(n, 1) * learner.num_gpus + workers * rollout.num_gpus_per_worker
    if need_gpus > gpus:
        raise ValueError(
            f"the run needs {need_gpus:g} GPUs (learner.num_learners={n} x learner.num_gpus="
            f"{learner.num_gpus:g} + rollout.num_workers={workers} x rollout.num_gpus_per_worker="
            f"{rollout.num_gpus_per_worker:g}) but the Ray cluster has {gpus:g}; lower those "
            "numbers or attach to a larger cluster (k15ray train --address)"
        )
