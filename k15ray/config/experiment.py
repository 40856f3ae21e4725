"""The top-level experiment configuration of ``k15ray train CONFIG`` (one YAML file, one section per concern).

Sections and their dataclasses::

    seed, output_dir                  top-level scalars
    policy:          PolicyConfig     the model pi_theta starts from (or the SFT warm-up that makes it)
    sft:             SFTConfig        long-CoT SFT warm-up (k15ray.sft), run when policy.model_dir is absent
    env:             EnvSection       Gymnasium id + kwargs of the training environment
    rollout:         RolloutConfig    rollout actors, k samples, temperature
    partial_rollout: PartialRolloutConfig
    repeat:          RepeatConfig
    sampling:        SamplingConfig
    learner:         LearnerConfig
    mirror_descent:  MirrorDescentConfig
    length_penalty:  LengthPenaltyConfig
    reward:          RewardConfig     the training reward: verifier, value_rm or cot_rm; local or served
    eval:            HeldoutEvalConfig
    run:             RunConfig        iterations / time budget, checkpoints, Tune

Every section validates itself; ``load_experiment`` prefixes errors with the section name, so a bad
value reads e.g. ``mirror_descent.tau: must be > 0 ...``.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k15ray.config import LEARNER_DTYPES, check_dtype, doc, from_mapping, load_yaml, section
from k15ray.config.learner import LearnerConfig
from k15ray.config.length_penalty import LengthPenaltyConfig
from k15ray.config.mirror_descent import MirrorDescentConfig
from k15ray.config.partial_rollout import PartialRolloutConfig
from k15ray.config.repeat import RepeatConfig
from k15ray.config.reward import RewardConfig
from k15ray.config.rollout import RolloutConfig
from k15ray.config.sampling import SamplingConfig


@section("eval")
@dataclass(frozen=True)
class HeldoutEvalConfig:
    """Held-out evaluation during training (pass@1 over k samples, or greedy accuracy)."""

    every_iterations: int = doc("evaluate every N iterations; 0 = never during training", 0)
    env_config: dict[str, Any] = doc(
        "env kwargs overriding the training env's for the held-out env (e.g. data_path)",
        default_factory=dict,
    )
    num_prompts: int = doc("during training, evaluate on the first N held-out prompts; 0 = all", 200)
    final_num_prompts: int = doc("k15ray train's before/after evaluation: first N prompts; 0 = all", 0)
    samples_per_prompt: int = doc("k samples per prompt; pass@1 is their mean accuracy", 1)
    temperature: float = doc("sampling temperature; 0 = greedy decoding", 0.0)
    max_new_tokens: int = doc("response length limit of evaluation (tokens)", 512)
    batch_size: int = doc("sequences decoded together (prompts x samples)", 256)

    def __post_init__(self) -> None:
        if self.every_iterations < 0:
            raise ValueError(f"every_iterations: must be >= 0 (0 = never), got {self.every_iterations}")
        if self.num_prompts < 0 or self.final_num_prompts < 0:
            raise ValueError(
                f"num_prompts / final_num_prompts: must be >= 0 (0 = all), got {self.num_prompts} / "
                f"{self.final_num_prompts}"
            )
        if self.samples_per_prompt < 1:
            raise ValueError(f"samples_per_prompt: must be >= 1, got {self.samples_per_prompt}")
        if self.temperature < 0:
            raise ValueError(f"temperature: must be >= 0 (0 = greedy), got {self.temperature}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens: must be >= 1, got {self.max_new_tokens}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {self.batch_size}")


@section("policy")
@dataclass(frozen=True)
class PolicyConfig:
    """The policy's starting checkpoint: a Hugging Face directory, or the SFT warm-up's output."""

    model_dir: str | None = doc(
        "Hugging Face model dir to start RL from; null = <output_dir>/sft, made by the SFT warm-up", None
    )
    dtype: str = doc("learner dtype: float32 or bfloat16", "float32")

    def __post_init__(self) -> None:
        check_dtype(self.dtype, LEARNER_DTYPES)


@section("env")
@dataclass(frozen=True)
class EnvSection:
    """The training environment: a Gymnasium id and its kwargs. The ``k15/`` ids are registered on
    ``import k15ray.envs``; a user's id is registered, in every process that makes the env (the
    ``k15ray train`` process, a Tune trial), by ``entry_point`` or by importing ``imports``."""

    id: str = doc("Gymnasium / Tune env id, e.g. k15/Math-v0", "k15/Math-v0")
    config: dict[str, Any] = doc("keyword arguments of the env constructor", default_factory=dict)
    entry_point: str | None = doc(
        "a user env's class, 'package.module:Class' or 'path/to/file.py:Class', registered as id", None
    )
    imports: tuple[str, ...] = doc(
        "modules ('mypkg.envs') or .py files imported before the env is made; they register their ids",
        (),
    )

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("id: set the environment id, e.g. k15/Math-v0")
        if self.entry_point is not None:
            module, _, attr = self.entry_point.rpartition(":")
            if not module or not attr:
                raise ValueError(
                    f"entry_point: must be 'package.module:Class' or 'path/to/file.py:Class', got "
                    f"{self.entry_point!r}"
                )
        if isinstance(self.imports, str) or any(not isinstance(m, str) or not m for m in self.imports):
            raise ValueError(f"imports: must be a list of module names or .py files, got {self.imports!r}")


@section("run")
@dataclass(frozen=True)
class RunConfig:
    """How long to train and where results go."""

    iterations: int = doc("stop after this many K15 iterations", 100)
    time_budget_minutes: float = doc("also stop once RL has run this long (0 = no limit)", 0.0)
    checkpoint_every: int = doc("save a checkpoint every N iterations (0 = only at the end)", 10)
    use_tune: bool = doc("run K15 as a Ray Tune trial (TensorBoard files in the trial dir)", False)
    num_cpus: int = doc("CPUs Ray may use when k15ray starts it (0 = all cores)", 0)
    address: str = doc(
        "attach to a running Ray cluster instead of starting Ray: auto (the cluster of this machine) "
        "or its head's host:port (docs/scale_out.md); empty = start a local Ray",
        "",
    )

    def __post_init__(self) -> None:
        if self.address and self.num_cpus:
            raise ValueError(
                f"num_cpus: {self.num_cpus} with address: {self.address!r}: a running cluster has its "
                "CPUs already (ray start --num-cpus); set run.num_cpus: 0 (--set run.num_cpus=0)"
            )
        if self.iterations < 1:
            raise ValueError(f"iterations: must be >= 1, got {self.iterations}")
        if self.time_budget_minutes < 0:
            raise ValueError(f"time_budget_minutes: must be >= 0 (0 = no limit), got {self.time_budget_minutes}")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every: must be >= 0, got {self.checkpoint_every}")
        if self.num_cpus < 0:
            raise ValueError(f"num_cpus: must be >= 0 (0 = all cores), got {self.num_cpus}")


SOLUTION_STYLES: tuple[str, ...] = ("standard", "long", "minimal", "short")
"""Solution styles of the generated SFT split (``k15ray.tasks.styles``, which reads them here)."""
DATA_TASKS: tuple[str, ...] = ("arithmetic", "word_problems")
"""Generators of ``data.task`` (``k15ray.job.prepare_data`` picks the writer)."""


@section("data")
@dataclass(frozen=True)
class DataConfig:
    """Generated arithmetic splits for k15/Math-v0 (``k15ray.tasks.write_splits``)."""

    generate: bool = doc(
        "write train/held-out/SFT splits to <output_dir>/data when missing, and use them by default", True
    )
    n_train: int = doc("training prompts (also the SFT set)", 4000)
    n_heldout: int = doc("held-out prompts, disjoint from the training prompts", 300)
    levels: tuple[int, ...] = doc("difficulty levels of the generated problems", (1, 2, 3, 4, 5))
    seed: int = doc("seed of the generated problems", 0)
    style: str = doc("solution style of the SFT split: standard, long or short (k15ray.tasks.styles)", "standard")
    task: str = doc(
        "generated problems: arithmetic (long-CoT column arithmetic) or word_problems (grade-school, "
        "for small chat models; k15ray.tasks.word_problems)", "arithmetic",
    )

    def __post_init__(self) -> None:
        if self.task not in DATA_TASKS:
            raise ValueError(f"task: must be one of {list(DATA_TASKS)}, got {self.task!r}")
        if self.style not in SOLUTION_STYLES:
            raise ValueError(f"style: must be one of {list(SOLUTION_STYLES)}, got {self.style!r}")
        if self.n_train < 1 or self.n_heldout < 1:
            raise ValueError(
                f"n_train and n_heldout: must be >= 1, got {self.n_train} and {self.n_heldout}"
            )
        if not self.levels:
            raise ValueError("levels: give at least one difficulty level, e.g. [1, 2, 3]")


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything ``k15ray train`` needs, assembled from the sections of one YAML file.

    ``sft`` stays a mapping of ``SFTConfig`` fields: its ``data`` and ``out_dir`` default to the
    generated SFT split and ``<output_dir>/sft`` (``k15ray.job.sft_config``).
    """

    seed: int = doc("seed of sampling, rollouts and minibatch order", 0)
    output_dir: str = doc("directory of data, SFT model, RL results, curves", "runs/quickstart")
    data: DataConfig = doc("generated data splits", default_factory=DataConfig)
    policy: PolicyConfig = doc("the starting policy", default_factory=PolicyConfig)
    sft: dict[str, Any] = doc("SFTConfig fields of the warm-up (when policy.model_dir is unset)", default_factory=dict)
    env: EnvSection = doc("the training environment", default_factory=EnvSection)
    rollout: RolloutConfig = doc("rollout actors and sampling", default_factory=RolloutConfig)
    partial_rollout: PartialRolloutConfig = doc("token budget per iteration", default_factory=PartialRolloutConfig)
    repeat: RepeatConfig = doc("repeat detection", default_factory=RepeatConfig)
    sampling: SamplingConfig = doc("prompt sampling strategy", default_factory=SamplingConfig)
    learner: LearnerConfig = doc("optimizer and batch", default_factory=LearnerConfig)
    mirror_descent: MirrorDescentConfig = doc("objective and tau", default_factory=MirrorDescentConfig)
    length_penalty: LengthPenaltyConfig = doc("length penalty", default_factory=LengthPenaltyConfig)
    reward: RewardConfig = doc("the training reward: verifier or a model RM", default_factory=RewardConfig)
    eval: HeldoutEvalConfig = doc("held-out evaluation", default_factory=HeldoutEvalConfig)
    run: RunConfig = doc("duration, checkpoints, Tune", default_factory=RunConfig)


def experiment_from_mapping(data: Mapping[str, Any], where: str = "") -> ExperimentConfig:
    """Build an ``ExperimentConfig`` section by section; errors read ``section.field: what to fix``."""
    hints = typing.get_type_hints(ExperimentConfig)
    unknown = sorted(set(data) - set(hints))
    if unknown:
        raise ValueError(f"{where}{unknown[0]}: unknown section; valid sections are {sorted(hints)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        tp = hints[name]
        try:
            if isinstance(tp, type) and dataclasses.is_dataclass(tp):
                kwargs[name] = from_mapping(tp, value or {}, name)
            elif tp is int and (not isinstance(value, int) or isinstance(value, bool)):
                raise ValueError(f"expected an integer, got {value!r}")
            elif typing.get_origin(tp) is dict and not isinstance(value, Mapping):
                raise ValueError(f"expected a mapping, got {value!r}")
            else:
                kwargs[name] = dict(value) if isinstance(value, Mapping) else (str(value) if tp is str else value)
        except ValueError as err:
            msg = str(err)
            raise ValueError(f"{where}{msg if msg.startswith(name) else f'{name}.{msg}'}") from None
    return ExperimentConfig(**kwargs)


def parse_override(item: str) -> tuple[str, Any]:
    """``key.sub=value`` (value parsed as YAML: numbers, booleans, lists) -> (dotted key, value)."""
    import yaml

    if "=" not in item:
        raise ValueError(f"--set {item!r}: expected key=value, e.g. --set mirror_descent.tau=0.5")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def load_experiment(path: str | Path, overrides: Mapping[str, Any] | None = None) -> ExperimentConfig:
    """Read a YAML experiment config and apply dotted-key ``overrides`` (``--set`` values)."""
    data = load_yaml(path)
    for dotted, value in (overrides or {}).items():
        set_dotted(data, dotted, value, where="--set ")
    return experiment_from_mapping(data, where=f"{path}: ")


def set_dotted(data: dict[str, Any], dotted: str, value: Any, where: str = "") -> None:
    """``data["a"]["b"] = value`` for ``dotted = "a.b"``, making missing sections; a key that is
    not a section is a ``ValueError`` starting with ``where``."""
    node = data
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ValueError(f"{where}{dotted}: {key} is not a section")
    node[leaf] = value
