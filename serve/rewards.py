"""The rewards application: verifiable rewards r(x, y, y*) behind HTTP and deployment handles.

Paper section 2.1: math answers are checked against the reference (``k15ray.rewards.math_reward``,
math-verify under a time limit), code against its tests in the sandbox
(``k15ray.rewards.code_reward``). Served rewards call the very same ``RewardFn``s as the
in-process path, so the training loop gets identical scores either way.

One deployment, ``Rewards``, both answers HTTP (FastAPI ingress, route prefix ``/v1/rewards``) and
handles (``score(kind, prompts, responses) -> list[RewardResult]``, used by
``k15ray.serve.client.ServedReward``). Scoring in the ingress itself saves a second hop through
Serve: on 2 cores that doubled the HTTP throughput (134 against 71 req/s, docs/serve.md).

Batching: a request (or handle call) carries a batch of items, and ``@serve.batch`` gathers
concurrent requests (``rewards.max_batch_requests``, ``rewards.batch_wait_timeout_s``) into one
scoring pass: their items, in ``rewards.threads`` round-robin slices, one thread-pool job per slice
(not one per item). ``math_reward`` is thread-safe (math-verify runs in worker processes with their
own time limit), so concurrent slices are safe.

* ``GET /`` lists what is served;
* ``POST /math`` and ``POST /code`` take one item or ``{"items": [...]}`` and answer a
  ``RewardOut`` or ``{"results": [...]}``;
* ``POST /value_rm`` and ``POST /cot_rm``, the same for the model reward models (paper 2.3.5),
  forwarded to their own batched deployments (``serve/reward_models.py``) when served.

No ``from __future__ import annotations`` in this module: through ``@serve.ingress`` FastAPI
must see the request models as real types, or it takes them for query parameters.
"""

import asyncio
import importlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI
from ray import serve

from k15ray.config.serve import RewardServeConfig
from k15ray.rewards.safe import safe_score
from k15ray.serve.http import ApiError, install_edge
from k15ray.serve.reward_models import RewardModelRequest
from k15ray.serve.schemas import (
    CodeItem,
    CodeRewardRequest,
    MathItem,
    MathRewardRequest,
    RewardBatchResponse,
    RewardOut,
)
from k15ray.types import Prompt, RewardFn, RewardResult

REWARD_FUNCTIONS: dict[str, str] = {
    "math": "k15ray.rewards:math_reward",
    "code": "k15ray.rewards:code_reward",
}
"""The in-process ``RewardFn`` behind each served kind (``module:attribute``)."""

REWARDS_DEPLOYMENT = "Rewards"
"""Deployment name inside the rewards application (for handles)."""

REWARDS_APP = "rewards"
"""Default application name of the rewards application."""


def load_reward_fn(kind: str) -> RewardFn:
    """The ``RewardFn`` of ``kind``; ValueError lists the valid kinds."""
    if kind not in REWARD_FUNCTIONS:
        raise ValueError(f"reward kind {kind!r} is unknown; valid kinds: {sorted(REWARD_FUNCTIONS)}")
    module, attribute = REWARD_FUNCTIONS[kind].split(":")
    fn: RewardFn = getattr(importlib.import_module(module), attribute)
    return fn


def math_prompt(item: MathItem) -> Prompt:
    return Prompt(id=item.prompt_id, question="", answer=item.reference, domain="math")


def code_prompt(item: CodeItem) -> Prompt:
    tests = tuple(t.to_type() for t in item.tests)
    return Prompt(id=item.prompt_id, question="", answer="", domain="code", tests=tests)


app = install_edge(FastAPI(title="k15ray rewards"))


@serve.deployment(name=REWARDS_DEPLOYMENT)
@serve.ingress(app)
class RewardsDeployment:
    """Scores (prompt, response) pairs with the ``RewardFn`` of each served kind."""

    def __init__(
        self, config: RewardServeConfig, max_body_bytes: int, reward_models: Mapping[str, Any] | None = None
    ) -> None:
        app.state.max_body_bytes = max_body_bytes
        self.config = config
        self.models = dict(reward_models or {})  # name -> handle of its RewardModelDeployment
        self.fns = {kind: load_reward_fn(kind) for kind in config.kinds}
        self.pool = ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="reward")
        batcher: Any = self._score_batch  # the @serve.batch wrapper takes its limits at run time
        batcher.set_max_batch_size(config.max_batch_requests)
        batcher.set_batch_wait_timeout_s(config.batch_wait_timeout_s)
        self.stats = {"batches": 0, "requests": 0, "items": 0}

    async def score(
        self, kind: str, prompts: Sequence[Prompt], responses: Sequence[str]
    ) -> list[RewardResult]:
        """The handle API: one ``RewardResult`` per (prompt, response) pair, in order."""
        if kind not in self.fns and kind not in self.models:
            raise ValueError(f"reward {kind!r} is not served here; served: {sorted([*self.fns, *self.models])}")
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses; pair them up")
        if not prompts:
            return []
        if kind in self.models:
            return list(await self.models[kind].score.remote(list(prompts), list(responses)))
        return await self._score_batch((kind, list(prompts), list(responses)))

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.002)
    async def _score_batch(
        self, calls: list[tuple[str, list[Prompt], list[str]]]
    ) -> list[list[RewardResult]]:
        """Every item of every concurrent call, in ``threads`` round-robin slices (round-robin
        spreads the slow math-verify items), one thread-pool job per slice."""
        items = [
            (self.fns[kind], p, r)
            for kind, prompts, responses in calls
            for p, r in zip(prompts, responses, strict=True)
        ]
        n_slices = min(self.config.threads, len(items))
        slices = [list(range(k, len(items), n_slices)) for k in range(n_slices)]

        def score_slice(indices: list[int]) -> list[RewardResult]:
            return [safe_score(*items[i]) for i in indices]

        loop = asyncio.get_running_loop()
        scored = await asyncio.gather(*(loop.run_in_executor(self.pool, score_slice, s) for s in slices))
        flat: list[RewardResult | None] = [None] * len(items)
        for indices, results in zip(slices, scored, strict=True):
            for i, result in zip(indices, results, strict=True):
                flat[i] = result
        self.stats["batches"] += 1
        self.stats["requests"] += len(calls)
        self.stats["items"] += len(items)
        out, start = [], 0
        for _, prompts, _ in calls:
            out.append([r for r in flat[start : start + len(prompts)] if r is not None])
            start += len(prompts)
        return out

    def batch_stats(self) -> dict[str, int]:
        """Handle method: scoring passes of the dynamic batcher so far, the requests and items in
        them (requests / batches is how many concurrent requests shared a pass)."""
        return dict(self.stats)

    @app.get("/")
    async def served(self) -> dict[str, list[str]]:
        return {"rewards": sorted(self.fns), "reward_models": sorted(self.models)}

    @app.post("/math", response_model=None)
    async def math(self, body: MathRewardRequest) -> RewardOut | RewardBatchResponse:
        items = body.all_items()
        results = await self._http_score("math", [math_prompt(i) for i in items], [i.response for i in items])
        return self._answer(results, batch=body.items is not None)

    @app.post("/code", response_model=None)
    async def code(self, body: CodeRewardRequest) -> RewardOut | RewardBatchResponse:
        items = body.all_items()
        results = await self._http_score("code", [code_prompt(i) for i in items], [i.response for i in items])
        return self._answer(results, batch=body.items is not None)

    @app.post("/value_rm", response_model=None)
    async def value_rm(self, body: RewardModelRequest) -> RewardOut | RewardBatchResponse:
        return await self._model_answer("value_rm", body)

    @app.post("/cot_rm", response_model=None)
    async def cot_rm(self, body: RewardModelRequest) -> RewardOut | RewardBatchResponse:
        return await self._model_answer("cot_rm", body)

    async def _model_answer(self, name: str, body: RewardModelRequest) -> RewardOut | RewardBatchResponse:
        items = body.all_items()
        if name not in self.models:
            raise ApiError(
                404, f"reward model {name!r} is not served here (serving {sorted(self.models)}); "
                f"start the server with --reward-model {name}=DIR", code="reward_not_served",
            )
        results = await self._http_score(name, [i.to_prompt() for i in items], [i.response for i in items])
        return self._answer(results, batch=body.items is not None)

    async def _http_score(self, kind: str, prompts: list[Prompt], responses: list[str]) -> list[RewardResult]:
        if kind not in self.fns and kind not in self.models:
            raise ApiError(
                404, f"reward {kind!r} is not served here (serving {sorted(self.fns)}); "
                f"start the server with --rewards {','.join([*sorted(self.fns), kind])}",
                code="reward_not_served",
            )
        if len(prompts) > self.config.max_batch_items:
            raise ApiError(
                400, f"{len(prompts)} items exceed the limit of {self.config.max_batch_items} per "
                "request; split the batch", param="items",
            )
        return await self.score(kind, prompts, responses)

    @staticmethod
    def _answer(results: list[RewardResult], batch: bool) -> RewardOut | RewardBatchResponse:
        outs = [RewardOut.of(r) for r in results]
        return RewardBatchResponse(results=outs) if batch else outs[0]
