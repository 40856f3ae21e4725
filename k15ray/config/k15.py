"""The typed settings of one K15 run: every section of the iteration, validated once, frozen.

``K15Config`` (the RLlib adapter) stores each section as a plain dict, so that Ray Tune can sweep any
nested field; ``K15Settings.from_sections`` turns those dicts into the frozen dataclasses below, once,
and the algorithm, its learner and the rollout phase hold this object from then on. Its sections
carry the YAML names of ``k15ray train`` configs, so an error reads the same whatever path the value
came by: ``learner.lr must be > 0, got -1.0; try 1e-4``.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from k15ray.config import from_mapping, to_mapping
from k15ray.config.experiment import HeldoutEvalConfig, PolicyConfig
from k15ray.config.learner import LearnerConfig
from k15ray.config.length_penalty import LengthPenaltyConfig
from k15ray.config.mirror_descent import MirrorDescentConfig
from k15ray.config.partial_rollout import PartialRolloutConfig
from k15ray.config.repeat import RepeatConfig
from k15ray.config.reward import RewardConfig
from k15ray.config.rollout import RolloutConfig
from k15ray.config.sampling import SamplingConfig


@dataclass(frozen=True)
class K15Settings:
    """Every setting one K15 iteration reads, one frozen dataclass per concern."""

    policy: PolicyConfig = field(default_factory=PolicyConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    partial_rollout: PartialRolloutConfig = field(default_factory=PartialRolloutConfig)
    repeat: RepeatConfig = field(default_factory=RepeatConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    mirror_descent: MirrorDescentConfig = field(default_factory=MirrorDescentConfig)
    length_penalty: LengthPenaltyConfig = field(default_factory=LengthPenaltyConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    eval: HeldoutEvalConfig = field(default_factory=HeldoutEvalConfig)

    def __post_init__(self) -> None:
        """Checks that span two sections."""
        if self.learner.num_minibatches > self.sampling.prompts_per_iteration:
            raise ValueError(
                f"learner.num_minibatches ({self.learner.num_minibatches}) must not exceed "
                f"sampling.prompts_per_iteration ({self.sampling.prompts_per_iteration}): a minibatch "
                "holds whole prompt groups; lower num_minibatches"
            )

    @property
    def logprob_temperature(self) -> float:
        """T of the learner's log pi = log softmax(z / T): the rollout's sampling temperature, since
        the sampled policy is softmax(z / T) (T = 1 for greedy rollouts, temperature 0)."""
        from k15ray.logprobs import policy_temperature

        return policy_temperature(self.rollout.temperature)

    @classmethod
    def section_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def section_type(cls, name: str) -> type:
        """The dataclass of section ``name`` (its field's annotation)."""
        return typing.get_type_hints(cls)[name]  # type: ignore[no-any-return]

    @classmethod
    def from_sections(cls, sections: Mapping[str, Any]) -> K15Settings:
        """Build from ``{section name: dataclass or mapping of its fields}``; missing sections
        take their defaults. Errors read ``section.field must ...``."""
        unknown = sorted(set(sections) - set(cls.section_names()))
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown section; valid sections are {list(cls.section_names())}")
        built: dict[str, Any] = {}
        for name, value in sections.items():
            section_cls = cls.section_type(name)
            if isinstance(value, section_cls):
                built[name] = value
            elif isinstance(value, Mapping):
                built[name] = from_mapping(section_cls, value, name)
            else:
                raise ValueError(f"{name} must be a {section_cls.__name__} or a mapping of its fields, got {value!r}")
        return cls(**built)

    def to_sections(self) -> dict[str, dict[str, Any]]:
        """Plain dicts per section (the inverse of ``from_sections``)."""
        return {name: dict(to_mapping(getattr(self, name))) for name in self.section_names()}


def section_mapping(name: str, value: Any) -> dict[str, Any]:
    """One section as a validated plain dict (a dataclass of the section, or a mapping of its fields)."""
    section_cls = K15Settings.section_type(name)
    if isinstance(value, section_cls):
        return dict(to_mapping(value))
    if isinstance(value, Mapping):
        return dict(to_mapping(from_mapping(section_cls, value, name)))
    raise TypeError(f"{name} must be a {section_cls.__name__} or a mapping of its fields, got {value!r}")
