"""Ray adapters of the sandbox: an actor per host slot, and a pool of them for the training loop.

Thin by design (STYLE.md rule 1): each ``SandboxActor`` owns one ``Sandbox`` (its own pre-started
containers) and forwards to it. ``make_sandbox_pool(n)`` returns a ``SandboxActorPool`` (a
``ray.util.ActorPool`` that also lists its ``actors``) of ``n`` actors, so the coding reward of
a whole batch can be spread over a cluster::

    pool = make_sandbox_pool(4)
    reports = list(pool.map(lambda a, job: a.run_tests.remote(*job), [(code, tests), ...]))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ray
from ray.util import ActorPool

from k15ray.config import from_mapping, to_mapping
from k15ray.config.sandbox import SandboxConfig
from k15ray.sandbox.result import SandboxResult
from k15ray.sandbox.runner import TestReport, run_tests
from k15ray.sandbox.service import RunRequest, Sandbox
from k15ray.types import CodeTest


class _SandboxActor:
    """Holds one ``Sandbox``; its methods mirror ``Sandbox.run``/``run_many`` and ``run_tests``."""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        cfg = from_mapping(SandboxConfig, config or {}, "sandbox")
        self.sandbox = Sandbox(cfg).start()

    def run(
        self,
        code: str,
        stdin: str = "",
        timeout_s: float = 5.0,
        memory_mb: int = 512,
        language: str = "python",
    ) -> SandboxResult:
        return self.sandbox.run(code, stdin, timeout_s, memory_mb, language)

    def run_many(self, batch: Sequence[RunRequest | Mapping[str, Any]]) -> list[SandboxResult]:
        return self.sandbox.run_many(batch)

    def run_tests(self, code: str, tests: Sequence[CodeTest], **kwargs: Any) -> TestReport:
        return run_tests(code, tests, sandbox=self.sandbox, **kwargs)

    def worker_pids(self) -> list[int]:
        """Host pids of this actor's containers (to check that they are alive or gone)."""
        return self.sandbox.pool.pids

    def close(self) -> None:
        self.sandbox.close()


# max_concurrency lets one actor feed all of its containers at once (the Sandbox is thread-safe).
SandboxActor: Any = ray.remote(num_cpus=1, max_concurrency=8)(_SandboxActor)  # type: ignore[call-overload]


class SandboxActorPool(ActorPool):
    """A ``ray.util.ActorPool`` of ``SandboxActor``s that also keeps the list of its actors."""

    def __init__(self, actors: list[Any]) -> None:
        super().__init__(actors)
        self.actors = list(actors)


def make_sandbox_pool(
    n: int, config: SandboxConfig | None = None, *, num_cpus: float = 1.0
) -> SandboxActorPool:
    """``n`` ``SandboxActor``s (each with ``config.workers`` containers) as a Ray ``ActorPool``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n = {n!r}: use a positive number of sandbox actors")
    if not ray.is_initialized():
        raise ValueError("Ray is not initialised: call ray.init() before make_sandbox_pool")
    cfg = to_mapping(config or SandboxConfig())
    actors = [SandboxActor.options(num_cpus=num_cpus).remote(cfg) for _ in range(n)]
    return SandboxActorPool(actors)
