"""What one sandboxed run returns: a typed result, never an exception (STYLE.md rule 8)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["ok", "runtime_error", "timeout", "memory", "output_limit", "killed"]
"""How a run ended:

* ``ok``: exit status 0 within every limit;
* ``runtime_error``: a non-zero exit status, a crash signal (SIGSEGV, SIGABRT, ...) or, with
  ``stage == "compile"``, a program that did not compile;
* ``timeout``: the wall-clock or CPU-time limit was reached (the whole run was killed);
* ``memory``: an allocation failed against the address-space limit (MemoryError, bad_alloc);
* ``output_limit``: stdout or stderr passed ``SandboxConfig.output_limit_bytes`` (run killed);
* ``killed``: killed by a signal the sandbox did not send, or the worker itself died.
"""

STATUSES: tuple[Status, ...] = (
    "ok",
    "runtime_error",
    "timeout",
    "memory",
    "output_limit",
    "killed",
)
Stage = Literal["compile", "run"]


@dataclass(frozen=True)
class SandboxResult:
    """The outcome of running one program on one input.

    ``exit_code`` is the exit status, or minus the signal number when a signal ended the program
    (``-9`` for SIGKILL). ``stdout``/``stderr`` are decoded as UTF-8 (bad bytes replaced) and cut
    at the output cap. ``wall_s`` is the program's own wall-clock time inside the container.
    """

    status: Status
    stdout: str
    stderr: str
    exit_code: int
    wall_s: float
    cpu_s: float = 0.0
    stage: Stage = "run"

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def from_outcome(cls, outcome: Mapping[str, Any], stage: Stage = "run") -> SandboxResult:
        """Build from one step outcome of the zygote's reply (see ``_zygote.py``)."""
        status = outcome["status"]
        assert status in STATUSES, f"unknown status {status!r} from the sandbox worker"
        return cls(
            status=status,
            stdout=str(outcome["stdout"]),
            stderr=str(outcome["stderr"]),
            exit_code=int(outcome["exit_code"]),
            wall_s=float(outcome["wall_s"]),
            cpu_s=float(outcome["cpu_s"]),
            stage=stage,
        )

    @classmethod
    def failure(
        cls, status: Status, message: str, wall_s: float, stage: Stage = "run"
    ) -> SandboxResult:
        """A run the host had to abandon (worker died or stopped answering)."""
        return cls(
            status=status, stdout="", stderr=message, exit_code=-9, wall_s=wall_s, stage=stage
        )
