"""Score through the served rewards from Python: ``reward.backend: serve`` of the training loop.

``ServedReward(kind)`` is a ``RewardFn`` (``k15ray.types``): ``reward(prompt, response)`` returns
the ``RewardResult`` that the in-process ``RewardFn`` of that kind would return, computed by the
``Rewards`` deployment of a running rewards application, reached through a Serve
``DeploymentHandle`` (no HTTP). ``score_batch`` sends many pairs in one call;
``ascore_batch`` does the same from async code (async actors must not block their loop).

It is picklable (the handle is looked up lazily, per process), so it can travel into Ray actors.
A failed call (application not running, timeout) returns ``status="error"`` results with score 0,
never an exception (STYLE.md rule 8).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from k15ray.types import Prompt, RewardResult

DEFAULT_APP = "rewards"
DEPLOYMENT = "Rewards"
KINDS = ("math", "code", "value_rm", "cot_rm")
"""Verifiable rewards and model reward models (docs/reward_models.md) the ``Rewards`` deployment serves."""


class ServedReward:
    """A ``RewardFn`` backed by a Serve deployment handle.

    Args:
        kind: ``math``, ``code``, ``value_rm`` or ``cot_rm`` (must be served by the application).
        app_name: name of the rewards application (``k15ray serve`` uses ``rewards``).
        timeout_s: longest wait for one call, seconds.
    """

    def __init__(self, kind: str = "math", app_name: str = DEFAULT_APP, timeout_s: float = 120.0) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind {kind!r} is unknown; use one of {list(KINDS)}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.kind = kind
        self.app_name = app_name
        self.timeout_s = timeout_s
        self._handle: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handle": None}  # handles are looked up again where unpickled

    @property
    def handle(self) -> Any:
        """The ``DeploymentHandle`` of the ``Rewards`` deployment (looked up on first use)."""
        if self._handle is None:
            from ray import serve

            self._handle = serve.get_deployment_handle(DEPLOYMENT, self.app_name)
        return self._handle

    def __call__(self, prompt: Prompt, response: str) -> RewardResult:
        return self.score_batch([prompt], [response])[0]

    def score_batch(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[RewardResult]:
        """Score ``len(prompts)`` pairs in one call (blocking; not for use inside an event loop)."""
        self._check(prompts, responses)
        if not prompts:
            return []
        try:
            response = self.handle.score.remote(self.kind, list(prompts), list(responses))
            return list(response.result(timeout_s=self.timeout_s))
        except Exception as err:  # not running, timed out, replica died: typed results instead
            return self._failed(len(prompts), err)

    async def ascore_batch(
        self, prompts: Sequence[Prompt], responses: Sequence[str]
    ) -> list[RewardResult]:
        """``score_batch`` for async code: awaits the handle instead of blocking."""
        import asyncio

        self._check(prompts, responses)
        if not prompts:
            return []
        try:
            call = self.handle.score.remote(self.kind, list(prompts), list(responses))
            return list(await asyncio.wait_for(call, timeout=self.timeout_s))
        except Exception as err:
            return self._failed(len(prompts), err)

    @staticmethod
    def _check(prompts: Sequence[Prompt], responses: Sequence[str]) -> None:
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses; pair them up")

    def _failed(self, n: int, err: Exception) -> list[RewardResult]:
        details = {
            "error": f"{type(err).__name__}: {err}"[:500],
            "served": f"{self.app_name}/{DEPLOYMENT}/{self.kind}",
        }
        return [RewardResult(0.0, False, "error", details) for _ in range(n)]
