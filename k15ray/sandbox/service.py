"""``Sandbox``: run untrusted programs in isolated, reused containers (paper 2.3.5 and 2.6.4).

The coding reward runs model-written programs against test cases; an RL policy will write fork
bombs, infinite loops and programs that read secrets, so every run is isolated (``bwrap.py``),
limited (``limits.py``) and cleaned up, and the answer is always a ``SandboxResult`` whose
``status`` says how the run ended, never an exception.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from k15ray.config.sandbox import SandboxConfig
from k15ray.sandbox.bwrap import SandboxUnavailableError, bwrap_argv, find_bwrap, find_cxx
from k15ray.sandbox.limits import (
    RunLimits,
    build_request,
    check_fits,
    check_program,
    check_stdin,
    host_deadline_s,
)
from k15ray.sandbox.pool import WorkerDied, WorkerPool
from k15ray.sandbox.result import SandboxResult, Status
from k15ray.sandbox.seccomp import seccomp_program


@dataclass(frozen=True)
class RunRequest:
    """One item of ``Sandbox.run_many``: the arguments of one ``Sandbox.run`` call."""

    code: str
    stdin: str = ""
    timeout_s: float = 5.0
    memory_mb: int = 512
    language: str = "python"


class Sandbox:
    """Runs programs in a pool of pre-started bubblewrap containers.

    >>> sb = Sandbox()                                  # doctest: +SKIP
    >>> sb.run("print(int(input()) * 2)", stdin="21").stdout   # doctest: +SKIP
    '42\\n'

    Containers start on first use (``start()`` starts them now) and stop with ``close()``, at
    garbage collection, or at interpreter exit. Safe to share between threads.
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._bwrap = find_bwrap(self.config)
        self.cxx = find_cxx(self.config)
        seccomp = seccomp_program() if self.config.seccomp else None
        self.pool = WorkerPool(bwrap_argv(self._bwrap, self.config), self.config.workers, seccomp)
        self._finalizer = weakref.finalize(self, self.pool.close)

    def start(self) -> Sandbox:
        self.pool.start()
        return self

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self,
        code: str,
        stdin: str = "",
        timeout_s: float = 5.0,
        memory_mb: int = 512,
        language: str = "python",
    ) -> SandboxResult:
        """Run ``code`` once with ``stdin``; ``timeout_s`` is wall-clock (and CPU) time,
        ``memory_mb`` the address-space limit. ValueError for bad arguments."""
        return self.run_inputs(code, [stdin], timeout_s, memory_mb, language)[0]

    def run_inputs(
        self,
        code: str,
        stdins: Sequence[str],
        timeout_s: float = 5.0,
        memory_mb: int = 512,
        language: str = "python",
    ) -> list[SandboxResult]:
        """Run one program once per input, one after the other in one container (a C++ program
        is compiled once). Each run has the limits of ``run``; one result per input."""
        check_program(code, language)
        check_fits("code", code, self.config)
        if isinstance(stdins, str) or not isinstance(stdins, Sequence):
            raise ValueError("stdins must be a list of str, one input per run")
        for s in stdins:
            check_stdin(s, self.config)
        limits = RunLimits(timeout_s, memory_mb)
        if language == "cpp" and self.cxx is None:
            raise SandboxUnavailableError(
                "no C++ compiler: install the Debian package `g++`, or set sandbox.cxx_path"
            )
        if not stdins:
            return []
        request = build_request(code, list(stdins), limits, language, self.config, self.cxx)
        return self._execute(request, len(stdins))

    def _execute(self, request: dict[str, Any], n_runs: int) -> list[SandboxResult]:
        started = time.monotonic()
        for attempt in (1, 2):
            try:
                reply = self.pool.execute(request, host_deadline_s(request, self.config))
                break
            except WorkerDied as err:
                # A container that died before or during the request (killed from outside, the
                # kernel's OOM killer) is replaced and the request tried once more on a new one.
                if err.timed_out or attempt == 2:
                    status: Status = "timeout" if err.timed_out else "killed"
                    failed = SandboxResult.failure(status, str(err), time.monotonic() - started)
                    return [failed] * n_runs
        outcomes = reply["steps"]
        compiled = len(request["steps"]) > n_runs
        if compiled:
            first = SandboxResult.from_outcome(outcomes[0], stage="compile")
            if not first.ok:
                return [first] * n_runs
            outcomes = outcomes[1:]
        assert len(outcomes) == n_runs, "the worker answered for every step"
        return [SandboxResult.from_outcome(o) for o in outcomes]

    def run_many(self, batch: Sequence[RunRequest | Mapping[str, Any]]) -> list[SandboxResult]:
        """Run a batch concurrently over the pool's workers; results in the batch's order.

        Each item is a ``RunRequest`` or a mapping of ``run``'s keyword arguments. Every item is
        checked before any runs, so a bad one raises ValueError without running the others.
        """
        requests = [_as_request(item, i) for i, item in enumerate(batch)]
        for r in requests:
            check_program(r.code, r.language)
            check_fits("code", r.code, self.config)
            check_stdin(r.stdin, self.config)
            RunLimits(r.timeout_s, r.memory_mb)
        if len(requests) <= 1:
            return [self.run(**vars(r)) for r in requests]
        with ThreadPoolExecutor(min(len(requests), self.pool.size)) as ex:
            return list(ex.map(lambda r: self.run(**vars(r)), requests))


def _as_request(item: RunRequest | Mapping[str, Any], index: int) -> RunRequest:
    if isinstance(item, RunRequest):
        return item
    if not isinstance(item, Mapping):
        raise ValueError(f"batch[{index}]: use a RunRequest or a mapping of run()'s arguments")
    try:
        return RunRequest(**item)
    except TypeError as err:
        raise ValueError(
            f"batch[{index}]: {err}; valid keys are code, stdin, timeout_s, memory_mb, language"
        ) from err


_default: Sandbox | None = None
_default_lock = threading.Lock()


def default_sandbox() -> Sandbox:
    """The process-wide shared ``Sandbox`` (default config), started on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Sandbox()
            atexit.register(_default.close)
        return _default
