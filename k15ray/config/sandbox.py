"""Configuration of the code-execution sandbox (paper 2.3.5 and 2.6.4; ``k15ray.sandbox``)."""

from __future__ import annotations

from dataclasses import dataclass

from k15ray.config import doc


@dataclass(frozen=True)
class SandboxConfig:
    """Where the sandbox finds its tools, how many workers it keeps, and its fixed limits.

    The per-run limits that callers vary (``timeout_s``, ``memory_mb``) are arguments of
    ``Sandbox.run``; the ones here hold for every run.
    """

    workers: int = doc("pre-started containers in the pool (the paper's container reuse)", 2)
    bwrap_path: str = doc("bubblewrap executable; empty = look for `bwrap` on PATH", "")
    python_path: str = doc(
        "Python interpreter run inside the sandbox (must live under /usr)", "/usr/bin/python3"
    )
    cxx_path: str = doc("C++ compiler inside the sandbox; empty = `g++` on PATH, if any", "")
    cxx_flags: tuple[str, ...] = doc(
        "flags for compiling C++ programs", ("-O2", "-std=c++17", "-pipe")
    )
    compile_timeout_s: float = doc("wall-clock limit for compiling one C++ program", 30.0)
    compile_memory_mb: int = doc("address-space limit for the C++ compiler, MiB", 2048)
    output_limit_bytes: int = doc(
        "cap on stdout and on stderr of one run; beyond it: output_limit", 1 << 20
    )
    max_processes: int = doc("processes and threads one run may hold at once (RLIMIT_NPROC)", 16)
    max_file_mb: int = doc("largest file a run may write, MiB (RLIMIT_FSIZE)", 16)
    max_open_files: int = doc("open file descriptors per process (RLIMIT_NOFILE)", 64)
    work_dir_mb: int = doc(
        "size of the tmpfs work directory /work (and /tmp) of a container, MiB", 64
    )
    host_grace_s: float = doc("extra seconds the host waits for a worker before killing it", 5.0)
    seccomp: bool = doc(
        "refuse SysV IPC, memfd, bpf, ptrace... with a seccomp filter (x86-64, aarch64)", True
    )

    def __post_init__(self) -> None:
        positive = {
            "workers": self.workers,
            "compile_timeout_s": self.compile_timeout_s,
            "compile_memory_mb": self.compile_memory_mb,
            "output_limit_bytes": self.output_limit_bytes,
            "max_processes": self.max_processes,
            "max_file_mb": self.max_file_mb,
            "max_open_files": self.max_open_files,
            "work_dir_mb": self.work_dir_mb,
            "host_grace_s": self.host_grace_s,
        }
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"sandbox.{name} = {value!r}: use a positive number")
        if self.max_open_files < 16:
            raise ValueError(
                f"sandbox.max_open_files = {self.max_open_files}: an interpreter needs at least 16; "
                "use 16 or more"
            )
        if not self.python_path.startswith("/usr/"):
            raise ValueError(
                f"sandbox.python_path = {self.python_path!r}: only /usr is visible inside the "
                "sandbox; use an interpreter under /usr such as /usr/bin/python3"
            )
        if self.cxx_path and not self.cxx_path.startswith("/usr/"):
            raise ValueError(
                f"sandbox.cxx_path = {self.cxx_path!r}: use a compiler under /usr, or '' to search"
            )
