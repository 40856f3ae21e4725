"""Per-run limits and the request a container's worker executes (paper 2.6.4).

A request is one program (its source files) and a list of steps; each step is one process run in
``/work`` with its own rlimits: CPU seconds (``RLIMIT_CPU``, the wall limit rounded up plus one),
address space (``RLIMIT_AS`` = ``memory_mb``), processes (``RLIMIT_NPROC``), file size
(``RLIMIT_FSIZE``), open files (``RLIMIT_NOFILE``), no core dumps; a wall-clock limit after which
every process of the container is SIGKILLed; and a cap on stdout and on stderr.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from k15ray.config.sandbox import SandboxConfig

LANGUAGES = ("python", "cpp")
MAX_TIMEOUT_S = 3600.0
MIN_MEMORY_MB = 32  # the interpreter's own address space at start-up is about 20 MiB
CHILD_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/work",
    "TMPDIR": "/work/tmp",
    "LANG": "C.UTF-8",
}


@dataclass(frozen=True)
class RunLimits:
    """The limits a caller chooses per run (``Sandbox.run``'s keyword arguments)."""

    timeout_s: float = 5.0
    memory_mb: int = 512

    def __post_init__(self) -> None:
        t = self.timeout_s
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise ValueError(f"timeout_s = {t!r}: use a positive number of seconds, e.g. 5.0")
        if t > MAX_TIMEOUT_S:
            raise ValueError(f"timeout_s = {t!r}: use at most {MAX_TIMEOUT_S:.0f} seconds")
        m = self.memory_mb
        if isinstance(m, bool) or not isinstance(m, int) or m < MIN_MEMORY_MB:
            raise ValueError(
                f"memory_mb = {m!r}: use an integer number of MiB >= {MIN_MEMORY_MB}, e.g. 512"
            )


def check_program(code: Any, language: Any) -> None:
    """ValueError for a program the sandbox cannot take, saying what to pass instead."""
    if not isinstance(code, str):
        raise ValueError(f"code must be the program's source as a str, got {type(code).__name__}")
    if language not in LANGUAGES:
        raise ValueError(f"language = {language!r}: use one of {', '.join(LANGUAGES)}")


def check_stdin(stdin: Any, config: SandboxConfig | None = None) -> None:
    """ValueError for a stdin that is not a str, or too large for the container's tmpfs."""
    if not isinstance(stdin, str):
        raise ValueError(f"stdin must be a str (use '' for no input), got {type(stdin).__name__}")
    check_fits("stdin", stdin, config)


def check_fits(what: str, text: str, config: SandboxConfig | None = None) -> None:
    """The program and its stdin are staged in the container's tmpfs: each may use half of it."""
    cap = (config or SandboxConfig()).work_dir_mb << 19  # half the tmpfs, in bytes
    if len(text) > cap // 4 and len(text.encode()) > cap:  # (a str of n chars is <= 4n bytes)
        raise ValueError(
            f"{what} is {len(text.encode()) >> 20} MiB; at most {cap >> 20} MiB fits: "
            f"raise sandbox.work_dir_mb or pass a smaller {what}"
        )


def step(
    argv: Sequence[str],
    stdin: str,
    limits: RunLimits,
    config: SandboxConfig,
    *,
    must_succeed: bool = False,
) -> dict[str, Any]:
    """One process of a request, as the zygote reads it."""
    return {
        "argv": list(argv),
        "stdin": stdin,
        "timeout_s": float(limits.timeout_s),
        "memory_mb": limits.memory_mb,
        "max_processes": config.max_processes,
        "max_file_mb": config.max_file_mb,
        "max_open_files": config.max_open_files,
        "output_limit_bytes": config.output_limit_bytes,
        "env": dict(CHILD_ENV),
        "must_succeed": must_succeed,
    }


def build_request(
    code: str,
    stdins: Sequence[str],
    limits: RunLimits,
    language: str,
    config: SandboxConfig,
    cxx: str | None,
) -> dict[str, Any]:
    """The request that runs ``code`` once per input in ``stdins`` (C++: compiled once first)."""
    if language == "python":
        files = {"main.py": code}
        steps = [step([config.python_path, "-I", "main.py"], s, limits, config) for s in stdins]
        return {"files": files, "steps": steps}
    assert language == "cpp" and cxx is not None
    compile_limits = RunLimits(config.compile_timeout_s, config.compile_memory_mb)
    compile_argv = [cxx, *config.cxx_flags, "-o", "main", "main.cpp"]
    steps = [step(compile_argv, "", compile_limits, config, must_succeed=True)]
    steps += [step(["./main"], s, limits, config) for s in stdins]
    return {"files": {"main.cpp": code}, "steps": steps}


def host_deadline_s(request: dict[str, Any], config: SandboxConfig) -> float:
    """How long the host waits for a reply before it kills the worker: all step limits + grace."""
    return sum(s["timeout_s"] for s in request["steps"]) + config.host_grace_s
