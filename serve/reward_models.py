"""Registry of MODEL reward models served next to the verifiable rewards (DESIGN.md, "Rewards").

The paper (section 2.3.1) scores math answers that rules cannot check with reward models: a
classic value-head model and a chain-of-thought judge answering in JSON. Their Serve deployments
will be registered here by the reward-models issue; until then the registry is empty, and asking
for a model reward model says so. Nothing here fakes a model.

A builder takes its options mapping and returns a bound Serve ``Application`` whose ingress
deployment offers ``score(prompts, responses) -> list[RewardResult]`` (the handle protocol of
``k15ray.serve.client.ServedReward``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

RewardModelBuilder = Callable[[Mapping[str, Any]], Any]

REWARD_MODEL_BUILDERS: dict[str, RewardModelBuilder] = {}
"""Model reward models by name (e.g. ``value_head``, ``cot_judge``), filled by registration."""


def register_reward_model(name: str) -> Callable[[RewardModelBuilder], RewardModelBuilder]:
    """Decorator: make ``builder`` available as model reward model ``name``."""

    def decorate(builder: RewardModelBuilder) -> RewardModelBuilder:
        if name in REWARD_MODEL_BUILDERS:
            raise ValueError(f"reward model {name!r} is registered twice; pick another name")
        REWARD_MODEL_BUILDERS[name] = builder
        return builder

    return decorate


def build_reward_model_app(name: str, options: Mapping[str, Any]) -> Any:
    """The Serve application of model reward model ``name``; ValueError names the valid ones."""
    if name not in REWARD_MODEL_BUILDERS:
        valid = sorted(REWARD_MODEL_BUILDERS) or "none registered yet"
        raise ValueError(f"reward model {name!r} is unknown; valid names: {valid}")
    return REWARD_MODEL_BUILDERS[name](options)
