"""The code-execution sandbox behind ``k15/Code-v0`` (paper sections 2.3.5 and 2.6.4).

* ``Sandbox().run(code, stdin="", timeout_s=5.0, memory_mb=512, language="python")`` runs one
  program in an isolated, reused bubblewrap container and returns a ``SandboxResult``;
  ``run_many`` runs a batch over the pool.
* ``run_tests(code, tests, compare=...)`` scores a solution against stdin/stdout tests.
* ``SandboxActor`` / ``make_sandbox_pool(n)``: the Ray adapters (imported lazily: Ray is heavy).

See docs/sandbox.md for the isolation it gives and its measured speed.
"""

from __future__ import annotations

from typing import Any

from k15ray.sandbox.bwrap import SandboxUnavailableError
from k15ray.sandbox.result import STATUSES, SandboxResult, Status
from k15ray.sandbox.runner import TestReport, compare_output, run_tests
from k15ray.sandbox.service import RunRequest, Sandbox, default_sandbox

__all__ = [
    "STATUSES",
    "RunRequest",
    "Sandbox",
    "SandboxActor",
    "SandboxActorPool",
    "SandboxResult",
    "SandboxUnavailableError",
    "Status",
    "TestReport",
    "compare_output",
    "default_sandbox",
    "make_sandbox_pool",
    "run_tests",
]


def __getattr__(name: str) -> Any:
    if name in ("SandboxActor", "SandboxActorPool", "make_sandbox_pool"):
        from k15ray.sandbox import actor

        return getattr(actor, name)
    raise AttributeError(f"module 'k15ray.sandbox' has no attribute {name!r}")
