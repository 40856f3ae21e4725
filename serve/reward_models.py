"""Model reward models on Ray Serve (paper section 2.3.5; docs/reward_models.md).

The value-head RM (``value_rm``) and the chain-of-thought judge (``cot_rm``) each run in their own
deployment, a child of the rewards application's ingress (``serve/rewards.py``), which answers
``POST /v1/rewards/value_rm`` and ``/v1/rewards/cot_rm`` and forwards ``score`` handle calls of
those kinds (``k15ray.serve.client.ServedReward("cot_rm")``). Requests carry one item or
``{"items": [...]}`` of ``{"question", "reference", "response"}``, and answer ``RewardOut`` or
``{"results": [...]}``, as the verifiable rewards do.

Dynamic batching: every (prompt, response) pair of every concurrent request goes through one
``@serve.batch`` method, so pairs that arrive together share one forward pass (value RM) or one
batched generation (judge). Each result's ``details["batch_size"]`` says how many pairs shared it.

A builder takes its options mapping (``model_dir`` plus ``RewardModelServeConfig`` fields) and
returns the bound deployment (a Serve ``Application``) whose ``score(prompts, responses) ->
list[RewardResult]`` the rewards ingress calls.

No ``from __future__ import annotations``: FastAPI must see the request models as real types.
"""

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol, cast

from pydantic import BaseModel, ConfigDict, Field
from ray import serve

from k15ray.config.serve import REWARD_MODELS, RewardModelServeConfig
from k15ray.serve.schemas import _OneOrMany
from k15ray.types import Prompt, RewardResult

RewardModelBuilder = Callable[[Mapping[str, Any]], Any]

REWARD_MODEL_BUILDERS: dict[str, RewardModelBuilder] = {}
"""Model reward models by name (``value_rm``, ``cot_rm``), filled by registration."""


class BatchScorer(Protocol):
    """What a served reward model wraps: ``ValueRM`` and ``CoTJudge`` both are one."""

    def score_batch(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[RewardResult]: ...


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


def reward_model_options(name: str, config: RewardModelServeConfig) -> dict[str, Any]:
    """The builder options of ``name`` from the rewards application's config."""
    served = config.served()
    if name not in served:
        raise ValueError(f"rewards.models.{name} is empty; give the model directory (--reward-model {name}=DIR)")
    return {"model_dir": served[name], "config": config}


def load_scorer(name: str, model_dir: str, config: RewardModelServeConfig) -> BatchScorer:
    """The in-process reward model ``name`` (``ValueRM`` or ``CoTJudge``) over ``model_dir``."""
    from k15ray.rewards.models import CoTJudge, ValueRM

    if name == "value_rm":
        return ValueRM(model_dir, device=config.device, dtype=config.dtype,
                       max_length=config.max_length, batch_size=config.max_batch_size)
    if name == "cot_rm":
        return CoTJudge(model_dir, device=config.device, dtype=config.dtype,
                        max_new_tokens=config.judge_max_new_tokens, batch_size=config.max_batch_size)
    raise ValueError(f"reward model {name!r} is unknown; valid names: {list(REWARD_MODELS)}")


@serve.deployment
class RewardModelDeployment:
    """One model reward model, batched across concurrent requests (``@serve.batch``)."""

    def __init__(self, name: str, model_dir: str, config: RewardModelServeConfig) -> None:
        import torch

        torch.set_num_threads(max(1, int(config.num_cpus) or 1))
        self.name = name
        self.scorer = load_scorer(name, model_dir, config)
        batcher: Any = self.score_pairs  # @serve.batch's wrapper carries the setters
        batcher.set_max_batch_size(config.max_batch_size)
        batcher.set_batch_wait_timeout_s(config.batch_wait_timeout_s)

    async def score(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[RewardResult]:
        """The handle API: one ``RewardResult`` per pair, in order; pairs join shared batches."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses; pair them up")
        return list(await asyncio.gather(*(self.score_pairs((p, r)) for p, r in zip(prompts, responses, strict=True))))

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.01)
    async def score_pairs(self, pairs: list[tuple[Prompt, str]]) -> list[RewardResult]:
        """One forward pass (in a worker thread, so the event loop keeps taking requests)."""
        prompts = [p for p, _ in pairs]
        responses = [r for _, r in pairs]
        try:
            results = await asyncio.to_thread(self.scorer.score_batch, prompts, responses)
        except Exception as err:  # a reward failure is a typed result (STYLE rule 8)
            error = f"{type(err).__name__}: {err}"[:500]
            results = [RewardResult(0.0, False, "error", {"error": error}) for _ in pairs]
        return [replace(r, details={**r.details, "batch_size": len(pairs)}) for r in results]


def _builder(name: str) -> RewardModelBuilder:
    def build(options: Mapping[str, Any]) -> Any:
        config = options.get("config") or RewardModelServeConfig()
        if not options.get("model_dir"):
            raise ValueError(f"{name}: options need model_dir, the reward model's directory")
        return cast(Any, RewardModelDeployment).options(
            name=f"RewardModel_{name}",
            ray_actor_options={"num_cpus": config.num_cpus, "num_gpus": config.num_gpus},
            max_ongoing_requests=max(64, 4 * config.max_batch_size),
        ).bind(name, str(options["model_dir"]), config)

    return build


for _name in REWARD_MODELS:
    register_reward_model(_name)(_builder(_name))


# ------------------------------------------------------------------------------------ HTTP edge


class RewardModelItem(BaseModel):
    """One response to judge against the question and its reference answer."""

    model_config = ConfigDict(extra="forbid")

    response: str
    reference: str
    question: str = ""
    prompt_id: str = "served"

    def to_prompt(self) -> Prompt:
        return Prompt(id=self.prompt_id, question=self.question, answer=self.reference, domain="math")


class RewardModelRequest(_OneOrMany):
    """``POST /v1/rewards/value_rm`` or ``/cot_rm``: one item's fields, or ``{"items": [...]}``."""

    single: RewardModelItem | None = None
    items: list[RewardModelItem] | None = Field(None, min_length=1)

    def all_items(self) -> list[RewardModelItem]:
        return self.items if self.items is not None else [self.single] if self.single else []
